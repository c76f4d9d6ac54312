//! The per-user message budget (`[rate_limit]
//! messages_per_user_per_minute`): a user (one `userId` in one
//! conversation, as its session names it) may send that many messages a
//! minute, in a burst or spread out (GCRA, as governor counts the address
//! budgets). The map of users is bounded: a user whose budget is full
//! again is forgotten, and past [`MAX_TRACKED_USERS`] users who sent
//! within the last minute a new sender waits until one is forgotten.

use chats3_actors::domain::ConversationId;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Users whose spent budget is remembered at once.
pub const MAX_TRACKED_USERS: usize = 100_000;

/// Who a budget belongs to: a user id within its conversation.
type UserKey = (ConversationId, String);

/// The message budget of every user.
pub struct UserBudget {
    /// Time one message costs.
    cost: Duration,
    /// How far ahead of now a user's spending may run: the burst.
    burst: Duration,
    /// Per user, when their budget is full again.
    full_at: Mutex<HashMap<UserKey, Instant>>,
    cap: usize,
}

impl UserBudget {
    /// A budget of `per_minute` messages for each user, remembering at
    /// most `cap` users.
    pub fn new(per_minute: NonZeroU32, cap: usize) -> Self {
        let cost = Duration::from_secs(60) / per_minute.get();
        UserBudget {
            cost,
            burst: cost * (per_minute.get() - 1),
            full_at: Mutex::new(HashMap::new()),
            cap: cap.max(1),
        }
    }

    /// Spends one message of the user's budget at `now`, or answers how
    /// long until they may send again.
    pub fn spend(
        &self,
        conversation: &ConversationId,
        user_id: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let Ok(mut users) = self.full_at.lock() else {
            return Ok(());
        };
        let key = (conversation.clone(), user_id.to_owned());
        let full_at = users.get(&key).copied().filter(|t| *t > now);
        if let Some(full_at) = full_at
            && full_at > now + self.burst
        {
            return Err(full_at - self.burst - now);
        }
        if full_at.is_none() && !users.contains_key(&key) && users.len() >= self.cap {
            users.retain(|_, t| *t > now);
            if users.len() >= self.cap {
                let soonest = users.values().min().copied().unwrap_or(now);
                return Err(soonest.saturating_duration_since(now));
            }
        }
        users.insert(key, full_at.unwrap_or(now) + self.cost);
        Ok(())
    }

    /// Forgets users whose budget is full again.
    pub fn sweep(&self, now: Instant) {
        if let Ok(mut users) = self.full_at.lock() {
            users.retain(|_, t| *t > now);
            users.shrink_to_fit();
        }
    }

    /// Users remembered now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.full_at.lock().map_or(0, |u| u.len())
    }
}

#[cfg(test)]
mod tests {
    use super::UserBudget;
    use chats3_actors::domain::ConversationId;
    use std::num::NonZeroU32;
    use std::time::{Duration, Instant};

    fn budget(per_minute: u32, cap: usize) -> UserBudget {
        UserBudget::new(NonZeroU32::new(per_minute).unwrap(), cap)
    }

    fn room(name: &str) -> ConversationId {
        ConversationId::parse(name).unwrap()
    }

    #[test]
    fn a_user_may_send_the_budget_at_once_then_one_per_share_of_the_minute() {
        let budget = budget(3, 10);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.spend(&room("r"), "ann", start), Ok(()));
        }
        assert_eq!(
            budget.spend(&room("r"), "ann", start),
            Err(Duration::from_secs(20))
        );
        let later = start + Duration::from_secs(20);
        assert_eq!(budget.spend(&room("r"), "ann", later), Ok(()));
        assert!(budget.spend(&room("r"), "ann", later).is_err());
    }

    #[test]
    fn other_users_and_the_same_user_elsewhere_have_their_own_budgets() {
        let budget = budget(1, 10);
        let now = Instant::now();
        assert_eq!(budget.spend(&room("r"), "ann", now), Ok(()));
        assert!(budget.spend(&room("r"), "ann", now).is_err());
        assert_eq!(budget.spend(&room("r"), "bob", now), Ok(()));
        assert_eq!(budget.spend(&room("other"), "ann", now), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_full_budgets_are_forgotten() {
        let budget = budget(2, 2);
        let now = Instant::now();
        assert_eq!(budget.spend(&room("r"), "a", now), Ok(()));
        assert_eq!(budget.spend(&room("r"), "b", now), Ok(()));
        let wait = budget.spend(&room("r"), "c", now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        assert_eq!(budget.tracked(), 2);
        assert_eq!(
            budget.spend(&room("r"), "a", now),
            Ok(()),
            "a known user still spends"
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(budget.spend(&room("r"), "c", later), Ok(()));
        assert_eq!(budget.tracked(), 1, "the full budgets went");
        budget.sweep(later + Duration::from_secs(61));
        assert_eq!(budget.tracked(), 0);
    }
}
