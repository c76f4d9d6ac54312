//! At most one log line per second per kind of expected failure (503
//! back-pressure, storage outages), each line counting the ones it stood
//! in for, so an overload does not also flood the log.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Lines of one kind allowed per this long.
const WINDOW: Duration = Duration::from_secs(1);

/// Kinds tracked at once; past it every new kind shares one entry.
const MAX_KINDS: usize = 64;

#[derive(Default)]
struct Throttle {
    kinds: Mutex<HashMap<String, Window>>,
}

struct Window {
    last_line: Instant,
    suppressed: u64,
}

/// Process-wide, like the log it protects.
static THROTTLE: LazyLock<Throttle> = LazyLock::new(Throttle::default);

/// Whether a line of `kind` may be written now: `Some(n)` with the number
/// of lines of that kind suppressed since the last one, `None` to skip it.
pub fn admit(kind: &str) -> Option<u64> {
    THROTTLE.admit(kind, Instant::now())
}

impl Throttle {
    fn admit(&self, kind: &str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        let key = if kinds.len() >= MAX_KINDS && !kinds.contains_key(kind) {
            "other"
        } else {
            kind
        };
        match kinds.get_mut(key) {
            Some(window) if now.duration_since(window.last_line) < WINDOW => {
                window.suppressed += 1;
                None
            }
            Some(window) => {
                window.last_line = now;
                Some(std::mem::take(&mut window.suppressed))
            }
            None => {
                kinds.insert(
                    key.to_owned(),
                    Window {
                        last_line: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_second_per_kind_counting_the_rest() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(throttle.admit("a", t0), Some(0));
        assert_eq!(throttle.admit("b", t0), Some(0));
        for _ in 0..5 {
            assert_eq!(throttle.admit("a", t0 + Duration::from_millis(10)), None);
        }
        assert_eq!(throttle.admit("a", t0 + Duration::from_secs(1)), Some(5));
        assert_eq!(throttle.admit("a", t0 + Duration::from_secs(3)), Some(0));
    }
}
