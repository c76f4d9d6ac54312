//! A registry actor of keyed entries that expire: each entry carries the
//! time it was stored (or, for a sliding registry, last read), a bound on
//! the number of entries answers [`ChatError::Overloaded`], and a periodic
//! sweep forgets what expired. Sessions and ticket nonces are two uses of it
//! ([`crate::sessions`], [`crate::nonces`]). With the write-ahead log on,
//! the actor logs its changes and checkpoints (see [`journal`]).

mod journal;

use crate::error::ChatError;
use crate::time::now_ms;
pub(crate) use journal::{Journal, Journaling};
use journal::{Logged, SNAPSHOT_CHUNK};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;

/// When an entry's time to live starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Every read restarts the entry's time to live.
    Sliding,
    /// An entry lives for its time to live from when it was stored.
    Fixed,
}

/// The rules one registry runs by.
#[derive(Debug, Clone)]
pub(crate) struct RegistryRules {
    /// How long an entry lives.
    pub ttl: Duration,
    /// Whether reads extend an entry's life.
    pub expiry: Expiry,
    /// Entries held at most; a new entry past it is refused.
    pub max: usize,
    /// How often expired entries are forgotten.
    pub sweep_every: Duration,
    /// The answer to a new entry past `max`.
    pub when_full: Overflow,
}

/// What a full registry answers (the message and `Retry-After` of the 503).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Overflow {
    /// Shown to the client.
    pub message: &'static str,
    /// When to try again.
    pub retry_after: Duration,
}

/// An entry with the time its life started (stored, or last read when
/// sliding), in epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamped<V> {
    /// The stored value.
    pub value: V,
    /// Start of the entry's current life.
    pub since_ms: i64,
}

impl<V> Stamped<V> {
    /// `value`, whose life started at `since_ms`.
    pub(crate) fn new(value: V, since_ms: i64) -> Self {
        Stamped { value, since_ms }
    }
}

/// An entry as the registry holds it.
#[derive(Debug)]
struct Held<V> {
    entry: Stamped<V>,
    /// The life's start the log last heard of (sliding registries log a
    /// read at most once per `touch_every`).
    logged_ms: i64,
}

/// The entries of a registry and its rules, with time passed in, so the
/// rules are testable without a clock.
#[derive(Debug)]
pub(crate) struct TtlEntries<V> {
    entries: HashMap<String, Held<V>>,
    ttl_ms: i64,
    expiry: Expiry,
    max: usize,
    when_full: Overflow,
}

impl<V: Clone> TtlEntries<V> {
    /// An empty registry following `rules`.
    pub(crate) fn new(rules: &RegistryRules) -> Self {
        TtlEntries {
            entries: HashMap::new(),
            ttl_ms: i64::try_from(rules.ttl.as_millis()).unwrap_or(i64::MAX),
            expiry: rules.expiry,
            max: rules.max,
            when_full: rules.when_full,
        }
    }

    fn is_fresh(&self, since_ms: i64, now_ms: i64) -> bool {
        now_ms.saturating_sub(since_ms) < self.ttl_ms
    }

    /// Stores `value` under `key` (replacing what is there), its life
    /// starting at `since_ms`. When the registry is full, expired entries
    /// are swept first; still full, the entry is refused.
    pub(crate) fn insert(
        &mut self,
        key: String,
        value: V,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<(), ChatError> {
        if self.entries.len() >= self.max {
            self.sweep(now_ms);
        }
        if self.entries.len() >= self.max {
            return Err(ChatError::Overloaded {
                message: self.when_full.message,
                retry_after: self.when_full.retry_after,
            });
        }
        let entry = Stamped { value, since_ms };
        self.entries.insert(
            key,
            Held {
                entry,
                logged_ms: since_ms,
            },
        );
        Ok(())
    }

    /// Stores `value` under `key` unless a fresh entry holds the key: true
    /// when stored, false when the key was taken. Refused like
    /// [`TtlEntries::insert`] when full.
    pub(crate) fn insert_new(
        &mut self,
        key: String,
        value: V,
        now_ms: i64,
    ) -> Result<bool, ChatError> {
        if self
            .entries
            .get(&key)
            .is_some_and(|held| self.is_fresh(held.entry.since_ms, now_ms))
        {
            return Ok(false);
        }
        self.insert(key, value, now_ms, now_ms).map(|()| true)
    }

    /// The fresh entry under `key`; a sliding registry restarts its life
    /// now. An expired entry is forgotten.
    pub(crate) fn get(&mut self, key: &str, now_ms: i64) -> Option<Stamped<V>> {
        let fresh = self.entries.get(key)?;
        if !self.is_fresh(fresh.entry.since_ms, now_ms) {
            self.entries.remove(key);
            return None;
        }
        let sliding = self.expiry == Expiry::Sliding;
        let held = self.entries.get_mut(key)?;
        if sliding {
            held.entry.since_ms = now_ms;
        }
        Some(held.entry.clone())
    }

    /// The entry under `key` as held, without reading it.
    pub(crate) fn peek(&self, key: &str) -> Option<&Stamped<V>> {
        self.entries.get(key).map(|held| &held.entry)
    }

    /// Whether the entry's life start moved at least `every` past what the
    /// log last heard; if so, the log is taken to hear of it now.
    pub(crate) fn touch_due(&mut self, key: &str, every: Duration) -> bool {
        let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let Some(held) = self.entries.get_mut(key) else {
            return false;
        };
        if held.entry.since_ms.saturating_sub(held.logged_ms) < every_ms {
            return false;
        }
        held.logged_ms = held.entry.since_ms;
        true
    }

    /// The fresh entries, for a snapshot.
    pub(crate) fn live(&self, now_ms: i64) -> Vec<(String, Stamped<V>)> {
        self.entries
            .iter()
            .filter(|(_, held)| self.is_fresh(held.entry.since_ms, now_ms))
            .map(|(key, held)| (key.clone(), held.entry.clone()))
            .collect()
    }

    /// Takes back entries a replay found: the expired ones are dropped,
    /// and past the bound the rest is refused (counted in the answer).
    pub(crate) fn restore(
        &mut self,
        restored: Vec<(String, Stamped<V>)>,
        now_ms: i64,
    ) -> (usize, usize) {
        let (mut kept, mut refused) = (0, 0);
        for (key, Stamped { value, since_ms }) in restored {
            if !self.is_fresh(since_ms, now_ms) {
                continue;
            }
            match self.insert(key, value, since_ms, now_ms) {
                Ok(()) => kept += 1,
                Err(_) => refused += 1,
            }
        }
        (kept, refused)
    }

    /// Forgets the entry under `key`.
    pub(crate) fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets every expired entry.
    pub(crate) fn sweep(&mut self, now_ms: i64) {
        let ttl_ms = self.ttl_ms;
        self.entries
            .retain(|_, held| now_ms.saturating_sub(held.entry.since_ms) < ttl_ms);
    }

    /// Entries held, expired ones not yet swept included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Messages of a registry actor.
pub(crate) enum RegistryMsg<V> {
    /// Stores an entry whose life started at `since_ms`.
    Insert {
        key: String,
        value: V,
        since_ms: i64,
        reply: RpcReplyPort<Result<(), ChatError>>,
    },
    /// Stores an entry unless a fresh one holds the key, in one step:
    /// answers whether it was stored.
    InsertNew {
        key: String,
        value: V,
        reply: RpcReplyPort<Result<bool, ChatError>>,
    },
    /// The fresh entry under a key (restarting its life when sliding).
    Get(String, RpcReplyPort<Option<Stamped<V>>>),
    /// Forgets an entry; answers once the log holds that.
    Remove(String, RpcReplyPort<Result<(), ChatError>>),
    /// Forgets an entry the log refused to store (nothing is logged).
    Forget(String),
    /// Timer: write a checkpoint if the log grew enough since the last.
    Checkpoint,
    /// A checkpoint is durable (its first position and size) or failed.
    CheckpointDone(Option<(u64, u64)>),
    /// Entries held now, expired ones not yet swept included (tests).
    #[cfg(test)]
    Len(RpcReplyPort<usize>),
    /// Timer: forget expired entries.
    Sweep,
}

/// Behaviour of a registry actor holding values of type `V`.
pub(crate) struct TtlRegistry<V>(PhantomData<fn() -> V>);

impl<V> Default for TtlRegistry<V> {
    fn default() -> Self {
        TtlRegistry(PhantomData)
    }
}

/// What a registry actor starts with.
pub(crate) struct RegistryArgs<V> {
    /// The rules it runs by.
    pub rules: RegistryRules,
    /// How it writes to the log; `None` when the log is off.
    pub log: Option<Journaling<V>>,
    /// Entries a replay of the log found.
    pub restored: Vec<(String, Stamped<V>)>,
}

/// A registry actor's state: its entries and, with the log on, its log.
pub(crate) struct RegistryState<V> {
    entries: TtlEntries<V>,
    log: Option<Logged<V>>,
}

impl<V: Clone + Send + 'static> Actor for TtlRegistry<V> {
    type Msg = RegistryMsg<V>;
    type State = RegistryState<V>;
    type Arguments = RegistryArgs<V>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RegistryArgs<V>,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(args.rules.sweep_every, || RegistryMsg::Sweep);
        let mut entries = TtlEntries::new(&args.rules);
        if !args.restored.is_empty() {
            let (kept, refused) = entries.restore(args.restored, now_ms());
            if refused > 0 {
                tracing::warn!(
                    kept,
                    refused,
                    "more entries in the log than the registry holds"
                );
            }
        }
        let log = args.log.map(Logged::new);
        if let Some(log) = &log {
            myself.send_interval(log.checkpoint_every(), || RegistryMsg::Checkpoint);
        }
        Ok(RegistryState { entries, log })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = now_ms();
        let RegistryState { entries, log } = state;
        match message {
            RegistryMsg::Insert {
                key,
                value,
                since_ms,
                reply,
            } => {
                let stored = entries.insert(key.clone(), value, since_ms, now);
                match (stored, log.as_ref(), entries.peek(&key)) {
                    (Ok(()), Some(log), Some(entry)) => {
                        let record = log.journal().inserted(&key, entry);
                        log.reply_when_logged(&myself, key, record, reply, ());
                    }
                    (stored, _, _) => {
                        let _ = reply.send(stored);
                    }
                }
            }
            RegistryMsg::InsertNew { key, value, reply } => {
                let stored = entries.insert_new(key.clone(), value, now);
                match (stored, log.as_ref(), entries.peek(&key)) {
                    (Ok(true), Some(log), Some(entry)) => {
                        let record = log.journal().inserted(&key, entry);
                        log.reply_when_logged(&myself, key, record, reply, true);
                    }
                    (stored, _, _) => {
                        let _ = reply.send(stored);
                    }
                }
            }
            RegistryMsg::Get(key, reply) => {
                let found = entries.get(&key, now);
                if let (Some(entry), Some(log)) = (&found, log.as_ref())
                    && entries.touch_due(&key, log.touch_every())
                    && let Some(record) = log.journal().touched(&key, entry.since_ms)
                {
                    log.append_unawaited(&record);
                }
                let _ = reply.send(found);
            }
            RegistryMsg::Remove(key, reply) => {
                let held = entries.peek(&key).is_some();
                entries.remove(&key);
                let logged = log
                    .as_ref()
                    .filter(|_| held)
                    .and_then(|log| Some((log, log.journal().removed(&key)?)));
                match logged {
                    Some((log, record)) => log.reply_when_logged(&myself, key, record, reply, ()),
                    None => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            RegistryMsg::Forget(key) => entries.remove(&key),
            #[cfg(test)]
            RegistryMsg::Len(reply) => {
                let _ = reply.send(entries.len());
            }
            RegistryMsg::Sweep => entries.sweep(now),
            RegistryMsg::Checkpoint => {
                if let Some(log) = log.as_mut()
                    && log.checkpoint_due()
                {
                    let live = entries.live(now);
                    log.checkpoint(&myself, live.chunks(SNAPSHOT_CHUNK));
                }
            }
            RegistryMsg::CheckpointDone(outcome) => {
                if let Some(log) = log.as_mut() {
                    log.checkpoint_done(outcome);
                }
            }
        }
        Ok(())
    }
}

/// Starts a registry actor following `rules`, with the log off.
#[cfg(test)]
pub(crate) async fn spawn<V: Clone + Send + 'static>(
    rules: RegistryRules,
) -> Result<ActorRef<RegistryMsg<V>>, ChatError> {
    spawn_with(RegistryArgs {
        rules,
        log: None,
        restored: Vec::new(),
    })
    .await
}

/// Starts a registry actor.
pub(crate) async fn spawn_with<V: Clone + Send + 'static>(
    args: RegistryArgs<V>,
) -> Result<ActorRef<RegistryMsg<V>>, ChatError> {
    let (actor, _) = Actor::spawn(None, TtlRegistry::<V>::default(), args)
        .await
        .map_err(|e| ChatError::spawn_failed("a registry", e))?;
    Ok(actor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ask::ask;

    const FULL: Overflow = Overflow {
        message: "Too many things",
        retry_after: Duration::from_secs(7),
    };

    fn rules(expiry: Expiry, max: usize) -> RegistryRules {
        RegistryRules {
            ttl: Duration::from_millis(100),
            expiry,
            max,
            sweep_every: Duration::from_secs(60),
            when_full: FULL,
        }
    }

    #[test]
    fn an_entry_expires_after_its_ttl_and_is_then_forgotten() {
        let mut entries = TtlEntries::new(&rules(Expiry::Fixed, 10));
        entries.insert("a".into(), 1, 0, 0).unwrap();
        assert_eq!(
            entries.get("a", 99),
            Some(Stamped {
                value: 1,
                since_ms: 0
            })
        );
        assert_eq!(entries.get("a", 100), None);
        assert!(entries.is_empty(), "an expired read forgets the entry");
    }

    #[test]
    fn a_sliding_entry_lives_on_while_it_is_read_and_a_fixed_one_does_not() {
        let mut sliding = TtlEntries::new(&rules(Expiry::Sliding, 10));
        let mut fixed = TtlEntries::new(&rules(Expiry::Fixed, 10));
        for entries in [&mut sliding, &mut fixed] {
            entries.insert("a".into(), 1, 0, 0).unwrap();
        }
        for at in [60, 120, 180] {
            assert_eq!(sliding.get("a", at).map(|e| e.since_ms), Some(at));
        }
        assert_eq!(sliding.get("a", 279).map(|e| e.since_ms), Some(279));
        assert_eq!(fixed.get("a", 60).map(|e| e.since_ms), Some(0));
        assert_eq!(fixed.get("a", 120), None);
    }

    #[test]
    fn a_full_registry_refuses_new_entries_until_some_expire() {
        let mut entries = TtlEntries::new(&rules(Expiry::Fixed, 2));
        entries.insert("a".into(), 1, 0, 0).unwrap();
        entries.insert("b".into(), 2, 50, 50).unwrap();
        let refused = entries.insert("c".into(), 3, 60, 60).unwrap_err();
        assert!(matches!(
            refused,
            ChatError::Overloaded {
                message: "Too many things",
                retry_after,
            } if retry_after == Duration::from_secs(7)
        ));
        assert!(matches!(
            entries.insert_new("c".into(), 3, 60),
            Err(ChatError::Overloaded { .. })
        ));
        entries.insert("c".into(), 3, 100, 100).unwrap();
        assert_eq!(entries.len(), 2, "the expired entry made room");
        assert_eq!(entries.get("a", 100), None);
    }

    #[test]
    fn insert_new_stores_once_per_life_of_a_key() {
        let mut entries = TtlEntries::new(&rules(Expiry::Fixed, 10));
        assert!(entries.insert_new("n".into(), (), 0).unwrap());
        assert!(!entries.insert_new("n".into(), (), 99).unwrap());
        assert!(
            entries.insert_new("n".into(), (), 100).unwrap(),
            "an expired key is free again"
        );
        assert_eq!(entries.get("n", 150).map(|e| e.since_ms), Some(100));
    }

    #[test]
    fn a_sweep_forgets_expired_entries_only() {
        let mut entries = TtlEntries::new(&rules(Expiry::Sliding, 10));
        entries.insert("old".into(), 1, 0, 0).unwrap();
        entries.insert("new".into(), 2, 50, 50).unwrap();
        entries.sweep(120);
        assert_eq!(entries.len(), 1);
        assert!(entries.get("new", 120).is_some());
    }

    #[tokio::test]
    async fn the_actor_sweeps_expired_entries_on_its_timer() {
        let registry = spawn::<u32>(RegistryRules {
            ttl: Duration::from_millis(20),
            sweep_every: Duration::from_millis(30),
            ..rules(Expiry::Fixed, 10)
        })
        .await
        .unwrap();
        let timeout = Duration::from_secs(1);
        let stored = ask(&registry, timeout, |reply| RegistryMsg::InsertNew {
            key: "a".into(),
            value: 1,
            reply,
        })
        .await
        .unwrap();
        assert!(stored.unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while ask(&registry, timeout, RegistryMsg::Len).await.unwrap() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sweep never ran"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        registry.stop(None);
    }
}
