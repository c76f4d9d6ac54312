//! Who counts toward a conversation's participant limit, across every
//! instance: one sorted set per conversation of the users who count
//! (scored by when they stop counting: a join's hold, or the next renewal
//! of an open stream's entry), one of the users with open streams (whose
//! display names are taken), and their names. The check and the entry of a
//! join are one Lua script, so two instances never both admit the 51st
//! participant or a second user of one name.
//!
//! The users with open streams on any instance are also what `room-state`
//! lists: each instance renews its streaming users with their display
//! names, and a stream opening reads everyone's back.
//!
//! Keys: `chats3:roster:{id}`, `chats3:streaming:{id}` (sorted sets of
//! user ids), `chats3:names:{id}` (user id → display name, trimmed and in
//! lower case), `chats3:people:{id}` (user id → display name as shown);
//! each expires a day after its last change.

use super::{RedisLink, key};
use crate::domain::ConversationId;
use crate::error::ChatError;
use std::sync::LazyLock;

/// How long a conversation's roster outlives its last change.
const ROSTER_KEYS_TTL_MS: u64 = 24 * 3600 * 1000;

static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  return 'full'
end
if ARGV[2] ~= '' then
  for _, user in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if user ~= ARGV[1] and redis.call('HGET', KEYS[3], user) == ARGV[2] then
      return 'taken'
    end
  end
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], 'GT', ARGV[4], ARGV[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
return 'ok'
",
    )
});

static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
for i = 2, #ARGV - 1, 2 do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[i])
  redis.call('ZADD', KEYS[2], 'GT', ARGV[1], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[#ARGV]) end
return 1
",
    )
});

static REMOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
",
    )
});

static STREAMING: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local listed = {}
local users = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'LIMIT', 0, ARGV[2])
for _, user in ipairs(users) do
  listed[#listed + 1] = user
  listed[#listed + 1] = redis.call('HGET', KEYS[2], user) or user
end
return listed
",
    )
});

/// Users listed by one `room-state` read at most.
const MAX_LISTED: usize = 1000;

/// A request to count a user in.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub user_id: String,
    /// The display name to reserve; `None` for an embedded user, whose
    /// name the integrator chose.
    pub display_name: Option<String>,
    pub now_ms: i64,
    /// Until when the join counts without an open stream.
    pub hold_until_ms: i64,
    pub max_participants: usize,
}

fn roster_keys(id: &ConversationId) -> [String; 3] {
    [
        key("roster", id.as_str()),
        key("streaming", id.as_str()),
        key("names", id.as_str()),
    ]
}

fn people_key(id: &ConversationId) -> String {
    key("people", id.as_str())
}

/// A display name as uniqueness compares it.
fn folded(name: &str) -> String {
    name.trim().to_lowercase()
}

impl RedisLink {
    /// Counts a user in, unless the conversation is full (403) or an
    /// active participant has the display name (409).
    pub(crate) async fn admit(
        &self,
        id: &ConversationId,
        admission: &Admission,
    ) -> Result<(), ChatError> {
        let mut invocation = ADMIT.prepare_invoke();
        for k in roster_keys(id) {
            invocation.key(k);
        }
        invocation
            .arg(&admission.user_id)
            .arg(
                admission
                    .display_name
                    .as_deref()
                    .map(folded)
                    .unwrap_or_default(),
            )
            .arg(admission.now_ms)
            .arg(admission.hold_until_ms)
            .arg(admission.max_participants)
            .arg(ROSTER_KEYS_TTL_MS);
        let answer: String = self.invoke(&invocation).await?;
        match answer.as_str() {
            "ok" => Ok(()),
            "full" => Err(ChatError::Forbidden("Conversation is full".into())),
            "taken" => Err(ChatError::Conflict(
                "Display name is already taken in this conversation".into(),
            )),
            other => Err(ChatError::Invalid(format!(
                "the admission script answered {other:?}"
            ))),
        }
    }

    /// Keeps the users with open streams here (`(user id, display
    /// name)`) counted, their names taken and listed in `room-state`
    /// until `until_ms`.
    pub(crate) async fn renew(
        &self,
        id: &ConversationId,
        users: &[(String, String)],
        until_ms: i64,
    ) -> Result<(), ChatError> {
        if users.is_empty() {
            return Ok(());
        }
        let [roster, streaming, _] = roster_keys(id);
        let mut invocation = RENEW.prepare_invoke();
        invocation
            .key(roster)
            .key(streaming)
            .key(people_key(id))
            .arg(until_ms);
        for (user, name) in users {
            invocation.arg(user).arg(name);
        }
        invocation.arg(ROSTER_KEYS_TTL_MS);
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    /// The users with a stream open on any instance at `now_ms`, with
    /// their display names.
    pub(crate) async fn streaming(
        &self,
        id: &ConversationId,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, ChatError> {
        let [_, streaming, _] = roster_keys(id);
        let mut invocation = STREAMING.prepare_invoke();
        invocation
            .key(streaming)
            .key(people_key(id))
            .arg(now_ms)
            .arg(MAX_LISTED);
        let listed: Vec<String> = self.invoke(&invocation).await?;
        let mut listed = listed.into_iter();
        let mut users = Vec::new();
        while let (Some(user), Some(name)) = (listed.next(), listed.next()) {
            users.push((user, name));
        }
        Ok(users)
    }

    /// Stops counting a user (a leave).
    pub(crate) async fn remove(&self, id: &ConversationId, user_id: &str) -> Result<(), ChatError> {
        let mut invocation = REMOVE.prepare_invoke();
        for k in roster_keys(id) {
            invocation.key(k);
        }
        invocation.key(people_key(id)).arg(user_id);
        self.invoke::<i64>(&invocation).await.map(drop)
    }
}
