//! The requests that change what every instance sees, served in a
//! cluster: each is checked as when alone, then appended to the
//! conversation's stream (see [`super::shared`]) and answered once its
//! entry is applied here. Requests that change nothing shared are served
//! as when alone.

use super::ConversationState;
use super::editing::reaction_event;
use super::id_filters::WaitingPost;
use super::metadata::CLOSED_EVENT;
use super::posting::system_notice;
use super::protocol::{Reply, Request};
use super::shared::{EventChange, MemberChange, RosterStep, SharedEntry, Then};
use crate::cluster::roster::Admission;
use crate::domain::{Message, NewMessage, Role, Sender};
use crate::error::ChatError;
use crate::events::Origin;
use serde_json::Value;
use std::time::Duration;

impl ConversationState {
    /// Serves `request` if it changes what every instance sees; gives it
    /// back otherwise.
    pub(super) fn serve_shared(&mut self, request: Request, now: i64) -> Option<Request> {
        match request {
            Request::Post {
                sender,
                message,
                origin,
                reply,
            } => self.post_shared(&sender, message, &origin, now, reply),
            Request::Join {
                user_id,
                join_code,
                display_name,
                reply,
            } => match self.check_join(&join_code, &display_name, now) {
                Err(e) => drop(reply.send(Err(e))),
                Ok(()) => {
                    let step = self.admission(&user_id, Some(&display_name), now);
                    let notice = format!("{display_name} joined the conversation");
                    let member = MemberChange::Joined {
                        user_id,
                        display_name,
                    };
                    let entry = self.notice_entry(notice, Some(member), now);
                    self.append_after(Some(step), vec![entry], None, done(reply));
                }
            },
            Request::Admit { user, reply } => match self.check_admit(now) {
                Err(e) => drop(reply.send(Err(e))),
                Ok(()) => {
                    let step = self.admission(&user.user_id, None, now);
                    let entry = SharedEntry::Member(MemberChange::Joined {
                        user_id: user.user_id,
                        display_name: user.display_name,
                    });
                    self.append_after(Some(step), vec![entry], None, done(reply));
                }
            },
            Request::Leave {
                user,
                session_id,
                end_session,
                reply,
            } => {
                if let Err(e) = self.meta() {
                    let _ = reply.send(Err(e));
                    return None;
                }
                let notice = format!("{} left the conversation", user.display_name);
                let member = MemberChange::Left {
                    user_id: user.user_id.clone(),
                    session_id: end_session.then_some(session_id),
                };
                let entries = vec![
                    self.notice_entry(notice, Some(member), now),
                    event_entry(
                        "peer-leave",
                        &user.user_id,
                        None,
                        Value::Object(Default::default()),
                        None,
                    ),
                ];
                let step = RosterStep::Remove(user.user_id.clone());
                self.append_after(Some(step), entries, None, done(reply));
            }
            Request::Signal {
                from,
                kind,
                to,
                data,
                reply,
            } => match self.meta() {
                Err(e) => drop(reply.send(Err(e))),
                Ok(_) => {
                    let entry = event_entry(&kind, &from, to, data, None);
                    let SharedEntry::Event { event_id, .. } = &entry else {
                        unreachable!("built as an event above");
                    };
                    let event_id = event_id.clone();
                    self.append(vec![entry], None, answer(reply, event_id));
                }
            },
            Request::React {
                user_id,
                message_id,
                emoji,
                added,
                reply,
            } => match self.reaction_changes(&user_id, &message_id, &emoji, added) {
                Err(e) => drop(reply.send(Err(e))),
                Ok(false) => drop(reply.send(Ok(()))),
                Ok(true) => {
                    let (kind, data) = reaction_event(&user_id, &message_id, &emoji, added);
                    let change = EventChange::Reaction {
                        message_id,
                        user_id: user_id.clone(),
                        emoji,
                        added,
                    };
                    let entry = event_entry(kind, &user_id, None, data, Some(change));
                    self.append(vec![entry], None, done(reply));
                }
            },
            Request::Revise {
                user_id,
                message_id,
                body,
                reply,
            } => self.revise_shared(&user_id, message_id, body, now, reply),
            Request::Read {
                user_id,
                message_id,
                origin,
                reply,
            } => match self.read_advance(&user_id, &message_id) {
                Err(e) => drop(reply.send(Err(e))),
                Ok(None) => drop(reply.send(Ok(()))),
                Ok(Some(seq)) => {
                    let data = Self::read_data(&user_id, &message_id, now);
                    let change = EventChange::ReadMark {
                        user_id: user_id.clone(),
                        message_id,
                        seq,
                    };
                    let entry = event_entry("message-read", &user_id, None, data, Some(change))
                        .sent_from(&origin, self.instance_id());
                    self.append(vec![entry], None, done(reply));
                }
            },
            Request::SetPresence {
                user_id,
                status,
                reply,
            } => match self.meta() {
                Err(e) => drop(reply.send(Err(e))),
                Ok(_) => {
                    let data = serde_json::json!({ "userId": user_id, "status": status });
                    let change = EventChange::Presence {
                        user_id: user_id.clone(),
                        status,
                    };
                    let entry = event_entry("presence-update", &user_id, None, data, Some(change));
                    self.append(vec![entry], None, done(reply));
                }
            },
            other => return Some(other),
        }
        None
    }

    /// A `peer-leave` after the grace, for every instance's streams.
    pub(super) fn share_peer_leave(&mut self, user_id: &str) {
        let entry = event_entry(
            "peer-leave",
            user_id,
            None,
            Value::Object(Default::default()),
            None,
        );
        let step = RosterStep::Remove(user_id.to_owned());
        self.append_after(Some(step), vec![entry], None, Box::new(|_, _| {}));
    }

    /// The metadata after a create, for every instance.
    pub(super) fn share_meta(&mut self) {
        if let (Some(_), Some(meta)) = (self.shared(), self.meta.clone()) {
            self.append_first(vec![SharedEntry::Meta(meta)]);
        }
    }

    /// The metadata after a close, and `conversation-closed` for every
    /// instance's streams.
    pub(super) fn share_closed(&mut self) {
        let Some(meta) = self.meta.clone() else {
            return;
        };
        let data = serde_json::to_value(&meta).unwrap_or_default();
        let entries = vec![
            SharedEntry::Meta(meta),
            event_entry(CLOSED_EVENT, "system", None, data, None),
        ];
        self.append(entries, None, Box::new(|_, _| {}));
    }

    /// The roster step that counts a user in: held for `join_hold` until
    /// a stream of theirs keeps them counted.
    fn admission(&self, user_id: &str, display_name: Option<&str>, now: i64) -> RosterStep {
        let settings = &self.args.settings;
        let hold = i64::try_from(settings.join_hold.as_millis()).unwrap_or(i64::MAX);
        RosterStep::Admit(Admission {
            user_id: user_id.to_owned(),
            display_name: display_name.map(str::to_owned),
            now_ms: now,
            hold_until_ms: now.saturating_add(hold),
            max_participants: settings.max_participants,
        })
    }

    fn notice_entry(&self, body: String, member: Option<MemberChange>, now: i64) -> SharedEntry {
        let message = self.message_of(&Sender::system(), system_notice(body, now), now);
        Self::message_entry(message, None, member)
    }

    fn message_entry(
        message: Message,
        remember_until: Option<i64>,
        member: Option<MemberChange>,
    ) -> SharedEntry {
        SharedEntry::Message {
            message: Box::new(message),
            remember_until,
            member,
            origin: None,
        }
    }

    /// A post in a cluster: memory first, then (for an id it does not
    /// know) the stored history's id filters, then the Redis claim with
    /// the append. The filters are asked before the claim rather than
    /// after it misses because claim and append are one script. Together
    /// they cover every id: the filters what is stored below the tail, the
    /// tail what is newer, and the claim what another instance appended
    /// that has not reached this one yet.
    fn post_shared(
        &mut self,
        sender: &Sender,
        new: NewMessage,
        origin: &Origin,
        now: i64,
        reply: Reply<Message>,
    ) {
        match self.classify_post(sender, &new) {
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
            Ok(Some(seq)) => {
                self.answer_stored(seq, reply);
                return;
            }
            Ok(None) => {}
        }
        let post = WaitingPost {
            sender: sender.clone(),
            new,
            origin: origin.clone(),
            reply,
        };
        if let Some(post) = self.consult_filters(post) {
            self.append_post(&post.sender, post.new, &post.origin, now, post.reply);
        }
    }

    /// Appends a post that neither memory nor stored history claims,
    /// claiming its id in Redis (which answers a claim of another
    /// instance's post as a repeat).
    pub(super) fn append_post(
        &mut self,
        sender: &Sender,
        new: NewMessage,
        origin: &Origin,
        now: i64,
        reply: Reply<Message>,
    ) {
        if let Err(e) = self.check_capacity() {
            let _ = reply.send(Err(e));
            return;
        }
        let remember_until = self.remember_until(sender, &new, now);
        let claim = match (&new.message_id, remember_until) {
            (Some(id), Some(until)) => Some((
                id.clone(),
                claimant(sender),
                Duration::from_millis(u64::try_from(until - now).unwrap_or(1)),
            )),
            _ => None,
        };
        let message = self.message_of(sender, new, now);
        let entry = Self::message_entry(message, remember_until, None)
            .sent_from(origin, self.instance_id());
        self.append(
            vec![entry],
            claim,
            Box::new(move |state, applied| match applied {
                Ok(seq) => match state.tail.at(seq) {
                    Some(m) => drop(reply.send(Ok(m.message.clone()))),
                    None => state.answer_stored(seq, reply),
                },
                Err(e) => drop(reply.send(Err(e))),
            }),
        );
    }

    fn revise_shared(
        &mut self,
        user_id: &str,
        message_id: String,
        body: Option<String>,
        now: i64,
        reply: Reply<Message>,
    ) {
        let deleting = body.is_none();
        let revision = match self.plan_revision(user_id, &message_id, body, now) {
            Ok(revision) => revision,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let Some(mut updated) = self.tail.get(&message_id).map(|m| m.message.clone()) else {
            let _ = reply.send(Err(ChatError::NotFound("Message not found")));
            return;
        };
        super::revisions::apply(&revision, &mut updated);
        let (kind, data) = if deleting {
            (
                "message-deleted",
                serde_json::json!({ "messageId": message_id }),
            )
        } else {
            (
                "message-edited",
                serde_json::to_value(&updated).unwrap_or_default(),
            )
        };
        let change = EventChange::Revision {
            message_id,
            revision,
        };
        let entry = event_entry(kind, user_id, None, data, Some(change));
        self.append(vec![entry], None, answer(reply, updated));
    }
}

/// An event entry with a fresh event id.
fn event_entry(
    kind: &str,
    from: &str,
    to: Option<String>,
    data: Value,
    change: Option<EventChange>,
) -> SharedEntry {
    SharedEntry::Event {
        event_id: uuid::Uuid::new_v4().to_string(),
        kind: kind.to_owned(),
        from: from.to_owned(),
        to,
        data,
        change,
        origin: None,
    }
}

/// Who claims a message id: the service apart from any user (an
/// embedded user may be called "system").
fn claimant(sender: &Sender) -> String {
    match sender.role {
        Role::System => format!("service:{}", sender.user_id),
        _ => format!("user:{}", sender.user_id),
    }
}

/// Answers `()` once applied.
fn done(reply: Reply<()>) -> Then {
    answer(reply, ())
}

/// Answers `value` once applied.
fn answer<T: Send + Sync + 'static>(reply: Reply<T>, value: T) -> Then {
    Box::new(move |_, applied| drop(reply.send(applied.map(|_| value))))
}
