//! The typed async API that HTTP handlers call. Every call has a timeout
//! and maps ractor's failures to [`ChatError`]; handlers never build reply
//! ports themselves.

use crate::addresses::ConversationAddresses;
use crate::ask::ask;
use crate::cluster::{RedisLink, RedisNonces, RedisSessions};
use crate::conversation::{
    ConversationMsg, Page, PageQuery, PresenceEntry, ReactionMap, Request, SearchPage, SearchQuery,
    StreamOpen, Subscription, Unread,
};
use crate::domain::{
    AttachmentMeta, AttachmentUpload, AttachmentVariant, Conversation, ConversationId, Message,
    NewMessage, Sender,
};
use crate::error::ChatError;
use crate::events::Origin;
use crate::log_records::LogStart;
use crate::nonces::{ActorNonces, NonceRegistry};
use crate::sessions::{ActorSessions, SessionRegistry};
use crate::settings::Settings;
use crate::store::SharedStore;
use crate::supervisor::{
    ConversationSupervisor, ProgressBoard, SupervisorArgs, SupervisorMsg, SupervisorStats,
};
use crate::wal::{Recovered, Wal, WalError};
use bytes::Bytes;
use ractor::{Actor, ActorRef, RpcReplyPort};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running actor system.
#[derive(Clone)]
pub struct System {
    supervisor: ActorRef<SupervisorMsg>,
    sessions: Arc<dyn SessionRegistry>,
    nonces: Arc<dyn NonceRegistry>,
    local_sessions: ActorSessions,
    local_nonces: ActorNonces,
    settings: Arc<Settings>,
    board: Arc<ProgressBoard>,
    addresses: Arc<ConversationAddresses>,
    log: Option<Wal>,
    cluster: Option<RedisLink>,
    /// Where the supervisor finds the cluster's link for the
    /// conversations it spawns.
    cluster_slot: Arc<OnceLock<RedisLink>>,
    /// Storage, for the cluster's storing task.
    store: SharedStore,
    /// In a cluster: the storing task and what stops it.
    storing: Arc<Mutex<Option<StoringTask>>>,
}

/// The cluster's storing task and the token that stops it.
type StoringTask = (CancellationToken, JoinHandle<()>);

/// One conversation's share of what a shutdown left unstored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnstoredConversation {
    /// The conversation.
    pub id: ConversationId,
    /// Acknowledged messages not in storage.
    pub messages: usize,
    /// Documents (reactions, revisions) whose stored copy is behind.
    pub documents: usize,
}

/// What a shutdown could not store in time, by conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Unstored {
    /// Conversations with something unstored, by id.
    pub conversations: Vec<UnstoredConversation>,
}

/// Conversations a report names one by one; the rest are counted.
const NAMED_IN_REPORT: usize = 50;

impl Unstored {
    /// Acknowledged messages not stored.
    pub fn messages(&self) -> usize {
        self.conversations.iter().map(|c| c.messages).sum()
    }

    /// Documents not stored.
    pub fn documents(&self) -> usize {
        self.conversations.iter().map(|c| c.documents).sum()
    }
}

impl std::fmt::Display for Unstored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} acknowledged messages and {} documents of {} conversations are unstored:",
            self.messages(),
            self.documents(),
            self.conversations.len()
        )?;
        for c in self.conversations.iter().take(NAMED_IN_REPORT) {
            write!(
                f,
                " {} ({} messages, {} documents)",
                c.id, c.messages, c.documents
            )?;
        }
        if self.conversations.len() > NAMED_IN_REPORT {
            write!(
                f,
                " and {} more",
                self.conversations.len() - NAMED_IN_REPORT
            )?;
        }
        Ok(())
    }
}

impl System {
    /// Starts the supervisor and the registries. With a write-ahead log
    /// (as [`Wal::open`] returns it), the sessions and nonces it holds are
    /// replayed before this returns, and the registries write to it.
    pub async fn start(
        store: SharedStore,
        settings: Settings,
        log: Option<(Wal, Recovered)>,
    ) -> Result<Self, ChatError> {
        let LogStart {
            sessions,
            nonces,
            conversations: conversation_log,
            restored,
        } = LogStart::open(log).map_err(|e| ChatError::Log(WalError::Failed(Arc::new(e))))?;
        let settings = Arc::new(settings);
        let board = Arc::new(ProgressBoard::default());
        let addresses = Arc::new(ConversationAddresses::default());
        let cluster_slot = Arc::new(OnceLock::new());
        let (supervisor, _) = Actor::spawn(
            None,
            ConversationSupervisor,
            SupervisorArgs {
                store: store.clone(),
                settings: settings.clone(),
                board: board.clone(),
                addresses: addresses.clone(),
                log: conversation_log.clone(),
                replay: restored.conversations,
                cluster: cluster_slot.clone(),
            },
        )
        .await
        .map_err(|e| ChatError::spawn_failed("the conversation supervisor", e))?;
        let local_sessions = ActorSessions::start(
            &settings,
            sessions,
            restored.sessions.into_values().collect(),
        )
        .await?;
        let local_nonces =
            ActorNonces::start(&settings, nonces, restored.nonces.into_iter().collect()).await?;
        Ok(System {
            sessions: Arc::new(local_sessions.clone()),
            nonces: Arc::new(local_nonces.clone()),
            supervisor,
            local_sessions,
            local_nonces,
            settings,
            board,
            addresses,
            log: conversation_log.map(|(wal, _)| wal),
            cluster: None,
            cluster_slot,
            store,
            storing: Arc::default(),
        })
    }

    /// Joins a cluster: sessions and ticket nonces live in its Redis from
    /// now on, shared by every instance (the in-process registries stay
    /// idle); conversations loaded from now on share their events through
    /// their Redis Streams, and this instance takes its turn storing them.
    pub fn in_cluster(self, link: RedisLink) -> Self {
        if self.cluster_slot.set(link.clone()).is_ok() {
            crate::cluster::notices::listen(link.clone(), self.addresses.clone());
            let stop = CancellationToken::new();
            let task = crate::cluster::storing::run(
                link.clone(),
                self.store.clone(),
                self.settings.clone(),
                stop.clone(),
            );
            *self.storing.lock().unwrap_or_else(PoisonError::into_inner) = Some((stop, task));
        }
        System {
            sessions: Arc::new(RedisSessions::new(link.clone(), self.settings.session_ttl)),
            nonces: Arc::new(RedisNonces::new(link.clone(), self.settings.nonce_ttl)),
            cluster: Some(link),
            ..self
        }
    }

    /// The cluster's Redis, when this instance is in one.
    pub fn cluster(&self) -> Option<&RedisLink> {
        self.cluster.as_ref()
    }

    /// The write-ahead log, when it is on (for its figures).
    pub fn log(&self) -> Option<&Wal> {
        self.log.as_ref()
    }

    /// The knobs the actors run with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The addresses of loaded conversations (tests of the cache).
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> &ConversationAddresses {
        &self.addresses
    }

    /// A handle to one conversation (spawned lazily on first call).
    pub fn conversation(&self, id: ConversationId) -> ConversationHandle {
        ConversationHandle {
            id,
            supervisor: self.supervisor.clone(),
            addresses: self.addresses.clone(),
            timeout: self.settings.call_timeout,
            must_exist: false,
        }
    }

    /// A handle to a conversation that must already exist: for a stored
    /// one it is loaded as usual, an unknown id answers 404 without
    /// loading anything. For requests anyone can send with any id
    /// (embeds, system messages, admin lookups).
    pub fn existing_conversation(&self, id: ConversationId) -> ConversationHandle {
        ConversationHandle {
            must_exist: true,
            ..self.conversation(id)
        }
    }

    /// The session registry.
    pub fn sessions(&self) -> &Arc<dyn SessionRegistry> {
        &self.sessions
    }

    /// The ticket nonce registry.
    pub fn nonces(&self) -> &Arc<dyn NonceRegistry> {
        &self.nonces
    }

    /// Live conversations and pending writes.
    pub async fn stats(&self) -> Result<SupervisorStats, ChatError> {
        ask(
            &self.supervisor,
            self.settings.call_timeout,
            SupervisorMsg::Stats,
        )
        .await
    }

    /// Stops every conversation, waiting at most `limit` while they flush.
    /// Whatever acknowledged is not stored then (the limit ran out, or a
    /// final write failed) is the error, by conversation.
    pub async fn shutdown(&self, limit: Duration) -> Result<(), Unstored> {
        self.local_sessions.actor.stop(None);
        self.local_nonces.actor.stop(None);
        let stopped = self
            .supervisor
            .stop_and_wait(Some("shutdown".into()), Some(limit))
            .await;
        if stopped.is_err() {
            tracing::warn!(?limit, "conversations still flushing at the shutdown limit");
        }
        let storing = self
            .storing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = storing {
            stop.cancel();
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!(
                    "the cluster's storing task outlived the shutdown limit; other instances store what is left"
                );
            }
        }
        let unstored = self.unstored();
        if unstored.conversations.is_empty() {
            Ok(())
        } else {
            Err(unstored)
        }
    }

    /// What is acknowledged but not stored, now.
    fn unstored(&self) -> Unstored {
        let Ok(board) = self.board.lock() else {
            return Unstored::default();
        };
        let mut conversations: Vec<UnstoredConversation> = board
            .iter()
            .map(|(id, progress)| UnstoredConversation {
                id: id.clone(),
                messages: progress.pending.load(Ordering::Acquire),
                documents: progress.unsaved_documents.load(Ordering::Acquire),
            })
            .filter(|c| c.messages > 0 || c.documents > 0)
            .collect();
        conversations.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Unstored { conversations }
    }
}

/// Typed calls into one conversation.
#[derive(Clone)]
pub struct ConversationHandle {
    id: ConversationId,
    supervisor: ActorRef<SupervisorMsg>,
    addresses: Arc<ConversationAddresses>,
    timeout: Duration,
    /// An unknown id answers 404 instead of loading a conversation.
    must_exist: bool,
}

impl ConversationHandle {
    /// The conversation's id.
    pub fn id(&self) -> &ConversationId {
        &self.id
    }

    /// The conversation's actor: the cached address of a loaded one (which
    /// exists, so `must_exist` holds), else the supervisor's answer.
    async fn actor(&self) -> Result<ActorRef<ConversationMsg>, ChatError> {
        match self.addresses.get(&self.id) {
            Some(actor) => Ok(actor),
            None => self.actor_from_supervisor().await,
        }
    }

    /// Asks the supervisor, which loads the conversation if needed.
    async fn actor_from_supervisor(&self) -> Result<ActorRef<ConversationMsg>, ChatError> {
        let id = self.id.clone();
        let must_exist = self.must_exist;
        ask(&self.supervisor, self.timeout, |reply| SupervisorMsg::Get {
            id,
            must_exist,
            reply,
        })
        .await?
    }

    /// Asks the conversation; if its actor stopped in between (idle stop,
    /// restart), drops its address and asks the fresh one once more.
    async fn ask<T: Send + 'static>(
        &self,
        build: impl Fn(RpcReplyPort<Result<T, ChatError>>) -> Request,
    ) -> Result<T, ChatError> {
        let message = |reply| ConversationMsg::from(build(reply));
        let actor = self.actor().await?;
        let first = ask(&actor, self.timeout, message).await;
        match first {
            Err(ChatError::ActorGone(_)) => {
                self.addresses.forget(&self.id, actor.get_id());
                ask(&self.actor().await?, self.timeout, message).await?
            }
            other => other?,
        }
    }

    /// Makes the conversation actor fail, as a panic would (tests of
    /// supervision only: the `fault-injection` feature).
    #[cfg(any(test, feature = "fault-injection"))]
    pub async fn crash(&self) -> Result<(), ChatError> {
        use crate::conversation::Internal;
        let actor = self.actor().await?;
        actor
            .cast(Internal::Crash.into())
            .map_err(|_| ChatError::ActorGone("the conversation"))
    }

    /// Creates the conversation with a fresh join code and no title.
    pub async fn create(&self) -> Result<Conversation, ChatError> {
        self.create_titled(None).await
    }

    /// Creates the conversation with a fresh join code and `title` (already
    /// validated) when given.
    pub async fn create_titled(&self, title: Option<String>) -> Result<Conversation, ChatError> {
        self.ask(|reply| Request::Create {
            keep_existing: false,
            title: title.clone(),
            reply,
        })
        .await
    }

    /// Creates the conversation as [`Self::create`] does unless it exists;
    /// answers its metadata either way (an existing one as it is: a closed
    /// conversation stays closed).
    pub async fn create_if_absent(&self) -> Result<Conversation, ChatError> {
        let creating = ConversationHandle {
            must_exist: false,
            ..self.clone()
        };
        creating
            .ask(|reply| Request::Create {
                keep_existing: true,
                title: None,
                reply,
            })
            .await
    }

    /// The conversation's metadata.
    pub async fn get(&self) -> Result<Conversation, ChatError> {
        self.ask(Request::Get).await
    }

    /// Closes the conversation to new joins.
    pub async fn close(&self) -> Result<Conversation, ChatError> {
        self.ask(Request::Close).await
    }

    /// Joins a new user with a code (see [`System::join`]). An unknown id
    /// answers like a wrong code, without loading a conversation.
    pub(crate) async fn join(
        &self,
        user_id: &str,
        join_code: &str,
        display_name: &str,
    ) -> Result<(), ChatError> {
        let existing = ConversationHandle {
            must_exist: true,
            ..self.clone()
        };
        existing
            .ask(|reply| Request::Join {
                user_id: user_id.to_owned(),
                join_code: join_code.to_owned(),
                display_name: display_name.to_owned(),
                reply,
            })
            .await
            .map_err(|e| match e {
                ChatError::NotFound(_) => crate::conversation::invalid_join(),
                e => e,
            })
    }

    /// Admits a user with a verified ticket.
    pub(crate) async fn admit(&self, user: &Sender) -> Result<(), ChatError> {
        self.ask(|reply| Request::Admit {
            user: user.clone(),
            reply,
        })
        .await
    }

    /// Accepts a message; answers it as stored. None of the sender's
    /// streams get it back.
    pub async fn post(&self, sender: &Sender, message: NewMessage) -> Result<Message, ChatError> {
        self.post_from(sender, message, Origin::Sender).await
    }

    /// Accepts a message sent from `origin`: the sender's streams it names
    /// get no echo, their others do.
    pub async fn post_from(
        &self,
        sender: &Sender,
        message: NewMessage,
        origin: Origin,
    ) -> Result<Message, ChatError> {
        self.ask(|reply| Request::Post {
            sender: sender.clone(),
            message: message.clone(),
            origin: origin.clone(),
            reply,
        })
        .await
    }

    /// Leaves the conversation (see [`System::leave`]).
    pub(crate) async fn leave(
        &self,
        user: &Sender,
        session_id: &str,
        end_session: bool,
    ) -> Result<(), ChatError> {
        self.ask(|reply| Request::Leave {
            user: user.clone(),
            session_id: session_id.to_owned(),
            end_session,
            reply,
        })
        .await
    }

    /// Relays a signaling event; returns its event id.
    pub async fn signal(
        &self,
        from: &str,
        kind: &str,
        to: Option<&str>,
        data: &Value,
    ) -> Result<String, ChatError> {
        self.ask(|reply| Request::Signal {
            from: from.to_owned(),
            kind: kind.to_owned(),
            to: to.map(str::to_owned),
            data: data.clone(),
            reply,
        })
        .await
    }

    /// Opens an event stream, resuming after `open.resume_from` if given.
    pub async fn subscribe(&self, open: StreamOpen) -> Result<Subscription, ChatError> {
        self.ask(|reply| Request::Subscribe(open.clone(), reply))
            .await
    }

    /// A page of history.
    pub async fn history(&self, query: PageQuery) -> Result<Page, ChatError> {
        self.ask(|reply| Request::History(query, reply)).await
    }

    /// A page of the messages whose text holds `query.text`, newest first.
    pub async fn search(&self, query: SearchQuery) -> Result<SearchPage, ChatError> {
        self.ask(|reply| Request::Search(query.clone(), reply))
            .await
    }

    /// The reaction map.
    pub async fn reactions(&self) -> Result<ReactionMap, ChatError> {
        self.ask(Request::Reactions).await
    }

    /// Adds or removes a reaction.
    pub async fn react(
        &self,
        user_id: &str,
        message_id: &str,
        emoji: &str,
        added: bool,
    ) -> Result<(), ChatError> {
        self.ask(|reply| Request::React {
            user_id: user_id.to_owned(),
            message_id: message_id.to_owned(),
            emoji: emoji.to_owned(),
            added,
            reply,
        })
        .await
    }

    /// Stores an attachment, its thumbnail and its metadata.
    pub async fn put_attachment(
        &self,
        upload: AttachmentUpload,
    ) -> Result<AttachmentMeta, ChatError> {
        self.ask(|reply| Request::PutAttachment(Box::new(upload.clone()), reply))
            .await
    }

    /// An attachment's metadata and a link that downloads one of its forms
    /// without a session for a while.
    pub async fn attachment_link(
        &self,
        attachment_id: &str,
        variant: AttachmentVariant,
    ) -> Result<(AttachmentMeta, String), ChatError> {
        self.ask(|reply| Request::AttachmentLink(attachment_id.to_owned(), variant, reply))
            .await
    }

    /// An attachment's metadata and the bytes of one of its forms.
    pub async fn attachment_data(
        &self,
        attachment_id: &str,
        variant: AttachmentVariant,
    ) -> Result<(AttachmentMeta, Bytes), ChatError> {
        self.ask(|reply| Request::AttachmentData(attachment_id.to_owned(), variant, reply))
            .await
    }

    /// Edits (`Some(body)`) or soft-deletes (`None`) one's own message.
    pub async fn revise(
        &self,
        user_id: &str,
        message_id: &str,
        body: Option<String>,
    ) -> Result<Message, ChatError> {
        self.ask(|reply| Request::Revise {
            user_id: user_id.to_owned(),
            message_id: message_id.to_owned(),
            body: body.clone(),
            reply,
        })
        .await
    }

    /// Moves the user's read mark forward to a message (404 for one the
    /// conversation does not know) and broadcasts `message-read` to every
    /// stream but those `origin` names.
    pub async fn read(
        &self,
        user_id: &str,
        message_id: &str,
        origin: Origin,
    ) -> Result<(), ChatError> {
        self.ask(|reply| Request::Read {
            user_id: user_id.to_owned(),
            message_id: message_id.to_owned(),
            origin: origin.clone(),
            reply,
        })
        .await
    }

    /// The user's unread count and read mark.
    pub async fn unread(&self, user_id: &str) -> Result<Unread, ChatError> {
        self.ask(|reply| Request::Unread {
            user_id: user_id.to_owned(),
            reply,
        })
        .await
    }

    /// Announced presence of users.
    pub async fn presence(&self) -> Result<HashMap<String, PresenceEntry>, ChatError> {
        self.ask(Request::Presence).await
    }

    /// Announces a user's presence.
    pub async fn set_presence(&self, user_id: &str, status: &str) -> Result<(), ChatError> {
        self.ask(|reply| Request::SetPresence {
            user_id: user_id.to_owned(),
            status: status.to_owned(),
            reply,
        })
        .await
    }
}
