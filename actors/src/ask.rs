//! One request to an actor and its reply, bounded in time, with ractor's
//! failures mapped to [`ChatError`].

use crate::error::ChatError;
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use std::time::Duration;

/// Sends a request and waits for the reply, at most `timeout`.
pub(crate) async fn ask<M, T>(
    actor: &ActorRef<M>,
    timeout: Duration,
    build: impl FnOnce(RpcReplyPort<T>) -> M,
) -> Result<T, ChatError>
where
    M: ractor::Message,
    T: Send + 'static,
{
    match actor.call(build, Some(timeout)).await {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(ChatError::TimedOut(timeout)),
        // It stopped before answering, or its mailbox is closed.
        Ok(CallResult::SenderError) | Err(_) => Err(ChatError::ActorGone("the actor")),
    }
}
