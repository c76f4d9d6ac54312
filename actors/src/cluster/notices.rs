//! The one pub/sub connection of an instance: a pattern subscription to
//! every conversation's notice channel (and stored-mark channel), each
//! notice handed to the conversation's actor when it is loaded here (others read the stream
//! when they load). When the subscription is lost (Redis restarted, the
//! network dropped) it is made again, and every loaded conversation then
//! reads what it may have missed from its stream.

use super::RedisLink;
use super::storing::{STORED_PATTERN, stored_conversation};
use super::stream::{NOTICE_PATTERN, channel_conversation, parse_notice};
use crate::addresses::ConversationAddresses;
use crate::conversation::Internal;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The pause between attempts to subscribe, doubling up to its bound.
const RETRY_FROM: Duration = Duration::from_millis(100);
const RETRY_UP_TO: Duration = Duration::from_secs(2);

/// Listens for notices until aborted.
pub(crate) fn listen(link: RedisLink, addresses: Arc<ConversationAddresses>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = RETRY_FROM;
        loop {
            match subscribe(&link).await {
                Ok(pubsub) => {
                    delay = RETRY_FROM;
                    for actor in addresses.all() {
                        let _ = actor.cast(Internal::CatchUp.into());
                    }
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        dispatch(&addresses, &message);
                    }
                    tracing::warn!("the Redis notice subscription ended; subscribing again");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "subscribing to Redis notices failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_UP_TO);
        }
    })
}

async fn subscribe(link: &RedisLink) -> Result<redis::aio::PubSub, redis::RedisError> {
    let connecting = link.client().get_async_pubsub();
    let mut pubsub = tokio::time::timeout(link.timeout(), connecting)
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
        })??;
    pubsub.psubscribe(NOTICE_PATTERN).await?;
    pubsub.psubscribe(STORED_PATTERN).await?;
    Ok(pubsub)
}

fn dispatch(addresses: &ConversationAddresses, message: &redis::Msg) {
    let channel = message.get_channel_name();
    let (id, stored) = match (channel_conversation(channel), stored_conversation(channel)) {
        (Some(id), _) => (id, false),
        (None, Some(id)) => (id, true),
        (None, None) => return,
    };
    let Some(actor) = addresses.get(&id) else {
        return;
    };
    let Ok(payload) = message.get_payload::<String>() else {
        return;
    };
    if stored {
        if let Ok(seq) = payload.parse() {
            let _ = actor.cast(Internal::Stored(seq).into());
        }
    } else if let Some((seq, prev, json)) = parse_notice(&payload) {
        let _ = actor.cast(
            Internal::Notice {
                seq,
                prev,
                json: json.to_owned(),
            }
            .into(),
        );
    }
}
