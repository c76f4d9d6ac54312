//! A conversation's Redis Stream: the sequence source and the replay
//! buffer of every instance. Entries are appended by one Lua script that
//! also claims a message id (a repeat answers the first claim instead),
//! hands out `seq = max(last + 1, floor + 1, now_µs)` (the rule of the
//! in-process sequencer, so ids stay comparable; `now` is the later of the
//! instance's clock and Redis's, so after Redis lost its data the next
//! sequence is still above every earlier one: those were handed out at
//! an earlier microsecond of the one Redis clock, or are at most the
//! appending instance's `floor`), adds each entry under
//! the stream id `{seq}-0`, and publishes it on the conversation's
//! channel, all in one round trip. Readers fill gaps with `XRANGE`.
//!
//! Keys: `chats3:seq:{id}` (the last sequence), `chats3:events:{id}` (the
//! stream; each entry has `p`, the sequence before it, and `e`, its JSON),
//! `chats3:msgid:{id}:{messageId}` (`"{seq} {senderUserId}"`, expiring),
//! `chats3:dirty` (the conversations with entries to store, see
//! `storing`), `chats3:since:{id}` (the first sequence of a stream that
//! began after the conversation had events: Redis lost its data, or the
//! conversation was used alone before; a resume from before it may have
//! missed what was lost and gets `resync`); channel `chats3:notice:{id}` carries `"{seq} {prev} {json}"`.

use super::{RedisLink, key, millis};
use crate::domain::ConversationId;
use crate::error::ChatError;
use std::sync::LazyLock;
use std::time::Duration;

/// Every notice channel matches this pattern.
pub(crate) const NOTICE_PATTERN: &str = "chats3:notice:*";

/// Entries a stream holds at most: past it appends answer 503 (only a
/// storage outage long enough to keep the flusher from trimming gets here).
const MAX_STREAM_LEN: usize = 200_000;

/// Entries one `XRANGE` reads at most.
pub(crate) const RANGE_COUNT: usize = 512;

static APPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local claim = KEYS[5]
if claim then
  local known = redis.call('GET', claim)
  if known then return {'known', known} end
end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[3]) then return {'full', ''} end
local head = redis.call('GET', KEYS[1])
local last = tonumber(head or '0')
local floor = tonumber(ARGV[1])
local clock = redis.call('TIME')
local now = math.max(tonumber(ARGV[2]), tonumber(clock[1]) * 1000000 + tonumber(clock[2]))
local seqs = {string.format('%d', last)}
for i = 9, #ARGV do
  local seq = math.max(last + 1, floor + 1, now)
  local s, p = string.format('%d', seq), string.format('%d', last)
  redis.call('XADD', KEYS[2], s .. '-0', 'p', p, 'e', ARGV[i])
  redis.call('PUBLISH', ARGV[4], s .. ' ' .. p .. ' ' .. ARGV[i])
  seqs[#seqs + 1] = s
  last = seq
end
redis.call('SET', KEYS[1], string.format('%d', last))
if not head and ARGV[8] ~= '1' then redis.call('SET', KEYS[4], seqs[2]) end
redis.call('ZADD', KEYS[3], 'NX', math.floor(now / 1000), ARGV[7])
if claim then redis.call('SET', claim, seqs[2] .. ' ' .. ARGV[5], 'PX', ARGV[6]) end
return {'ok', unpack(seqs)}
",
    )
});

/// An id claim: a message id taken by its sender for `ttl`.
#[derive(Clone, Copy)]
pub(crate) struct Claim<'a> {
    pub message_id: &'a str,
    pub sender_user_id: &'a str,
    pub ttl: Duration,
}

/// What an append did.
#[derive(Debug)]
pub(crate) enum Appended {
    /// The entries were added with these sequences, in order, after
    /// `prev` (the stream's last sequence before them).
    Added { prev: u64, seqs: Vec<u64> },
    /// The claimed id was taken first by this sender at this sequence;
    /// nothing was added.
    Known { seq: u64, sender_user_id: String },
}

/// One entry read back: its sequence, the one before it, and its JSON.
pub(crate) type Entry = (u64, u64, String);

/// The conversations whose streams hold entries above what storage holds,
/// scored by the millisecond the oldest of them was appended.
pub(crate) const DIRTY_KEY: &str = "chats3:dirty";

pub(crate) fn stream_key(id: &ConversationId) -> String {
    key("events", id.as_str())
}

pub(crate) fn seq_key(id: &ConversationId) -> String {
    key("seq", id.as_str())
}

fn since_key(id: &ConversationId) -> String {
    key("since", id.as_str())
}

/// Where a conversation's stream stands, as a loading instance reads it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamMarks {
    /// The last sequence storage holds (0: none through the cluster).
    pub stored: u64,
    /// The last sequence handed out (0: none).
    pub head: u64,
    /// The first sequence of a stream that began after events it does
    /// not hold (see the module's doc); 0 when it holds them all.
    pub since: u64,
}

/// The channel a conversation's notices go out on.
pub(crate) fn notice_channel(id: &ConversationId) -> String {
    key("notice", id.as_str())
}

/// The conversation a notice channel belongs to.
pub(crate) fn channel_conversation(channel: &str) -> Option<ConversationId> {
    let name = channel.strip_prefix(&NOTICE_PATTERN[..NOTICE_PATTERN.len() - 1])?;
    ConversationId::parse(name)
}

/// Parses a notice: `(seq, prev, json)`.
pub(crate) fn parse_notice(payload: &str) -> Option<(u64, u64, &str)> {
    let (seq, rest) = payload.split_once(' ')?;
    let (prev, json) = rest.split_once(' ')?;
    Some((seq.parse().ok()?, prev.parse().ok()?, json))
}

impl RedisLink {
    /// Appends `entries` (JSON texts, in order) to a conversation's stream
    /// above `floor`, claiming `claim` first when given.
    /// `starts` is true for the create of the conversation, whose stream
    /// has no earlier events to miss.
    pub(crate) async fn append(
        &self,
        id: &ConversationId,
        floor: u64,
        now_us: u64,
        claim: Option<Claim<'_>>,
        starts: bool,
        entries: &[String],
    ) -> Result<Appended, ChatError> {
        let mut invocation = APPEND.prepare_invoke();
        invocation
            .key(seq_key(id))
            .key(stream_key(id))
            .key(DIRTY_KEY)
            .key(since_key(id));
        let (sender, ttl) = match &claim {
            Some(claim) => {
                invocation.key(key(
                    "msgid",
                    &format!("{}:{}", id.as_str(), claim.message_id),
                ));
                (claim.sender_user_id, millis(claim.ttl))
            }
            None => ("", 1),
        };
        invocation
            .arg(floor)
            .arg(now_us)
            .arg(MAX_STREAM_LEN)
            .arg(notice_channel(id))
            .arg(sender)
            .arg(ttl)
            .arg(id.as_str())
            .arg(if starts { "1" } else { "0" });
        for entry in entries {
            invocation.arg(entry.as_str());
        }
        let answer: Vec<String> = self.invoke(&invocation).await?;
        let invalid = || ChatError::Invalid(format!("the append script answered {answer:?}"));
        match answer.first().map(String::as_str) {
            Some("ok") => {
                let mut numbers = answer[1..]
                    .iter()
                    .map(|s| s.parse::<u64>().map_err(|_| invalid()));
                let prev = numbers.next().ok_or_else(invalid)??;
                let seqs = numbers.collect::<Result<Vec<_>, _>>()?;
                Ok(Appended::Added { prev, seqs })
            }
            Some("known") => {
                let (seq, sender) = answer
                    .get(1)
                    .and_then(|known| known.split_once(' '))
                    .ok_or_else(invalid)?;
                Ok(Appended::Known {
                    seq: seq.parse().map_err(|_| invalid())?,
                    sender_user_id: sender.to_owned(),
                })
            }
            Some("full") => Err(ChatError::Overloaded {
                message: "Too many events are waiting to be stored; retry shortly",
                retry_after: Duration::from_secs(2),
            }),
            _ => Err(invalid()),
        }
    }

    /// Where the conversation's stream stands, in one round trip.
    pub(crate) async fn marks(&self, id: &ConversationId) -> Result<StreamMarks, ChatError> {
        let values: Vec<Option<u64>> = self
            .call(
                redis::cmd("MGET")
                    .arg(key("stored", id.as_str()))
                    .arg(seq_key(id))
                    .arg(since_key(id)),
            )
            .await?;
        let value = |i: usize| values.get(i).copied().flatten().unwrap_or(0);
        Ok(StreamMarks {
            stored: value(0),
            head: value(1),
            since: value(2),
        })
    }

    /// Up to [`RANGE_COUNT`] entries after `after` (and at most `until`),
    /// oldest first.
    pub(crate) async fn range(
        &self,
        id: &ConversationId,
        after: u64,
        until: Option<u64>,
    ) -> Result<Vec<Entry>, ChatError> {
        self.range_of(id, after, until, RANGE_COUNT).await
    }

    /// Up to `count` entries after `after` (and at most `until`), oldest
    /// first.
    pub(crate) async fn range_of(
        &self,
        id: &ConversationId,
        after: u64,
        until: Option<u64>,
        count: usize,
    ) -> Result<Vec<Entry>, ChatError> {
        let end = until.map_or_else(|| "+".to_owned(), |u| format!("{u}-0"));
        let reply: redis::streams::StreamRangeReply = self
            .call(
                redis::cmd("XRANGE")
                    .arg(stream_key(id))
                    .arg(format!("({after}-0"))
                    .arg(end)
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|entry| {
                let seq = entry.id.split_once('-')?.0.parse().ok()?;
                let prev: String = entry.get("p")?;
                let json: String = entry.get("e")?;
                Some((seq, prev.parse().ok()?, json))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_and_channels_parse_back() {
        assert_eq!(
            parse_notice("17 12 {\"a\": 1}"),
            Some((17, 12, "{\"a\": 1}"))
        );
        assert_eq!(parse_notice("17"), None);
        let id = ConversationId::parse("room-1").unwrap();
        assert_eq!(channel_conversation(&notice_channel(&id)), Some(id));
        assert_eq!(channel_conversation("chats3:other:room-1"), None);
    }
}
