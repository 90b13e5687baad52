//! Rate limiting with the generic cell rate algorithm (GCRA): one timestamp per key (the
//! theoretical arrival time), exact bursts, no background refill. Sans-I/O: the caller passes the
//! time and the key; where keys come from (client address, API key header, JWT claim, route) is
//! the proxy's business. State lives behind [`RateStore`], so a shared backend can replace the
//! in-memory one without touching the algorithm.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// `count` requests per `period`, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Quota {
    /// Parses `100/s`, `600/m`, `5000/h` or `10/30s`; `burst` defaults to the count.
    pub fn parse(rate: &str, burst: Option<u32>) -> Option<Quota> {
        let (count, period) = rate.trim().split_once('/')?;
        let count: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
        let period = period.trim();
        let digits = period.find(|c: char| !c.is_ascii_digit()).unwrap_or(period.len());
        let times: u64 = if digits == 0 {
            1
        } else {
            period[..digits].parse().ok()?
        };
        let unit = match &period[digits..] {
            "ms" => Duration::from_millis(1),
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            _ => return None,
        };
        let period = unit.checked_mul(u32::try_from(times).ok()?)?;
        if period.is_zero() {
            return None;
        }
        Some(Quota {
            count,
            period,
            burst: burst.unwrap_or(count).max(1),
        })
    }

    /// Time between two requests at the sustained rate, in nanoseconds.
    fn interval(&self) -> u64 {
        (self.period.as_nanos() / u128::from(self.count.max(1))).max(1) as u64
    }
}

/// The answer for one request, with what the `RateLimit` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests still allowed at once after this one.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset_after: Duration,
    /// When refused: until one more request would be allowed.
    pub retry_after: Duration,
}

/// Where the per-key state lives: one theoretical arrival time (ns) per key. `update` must be
/// atomic per key.
pub trait RateStore: Send + Sync {
    /// Calls `f` with the key's stored time (None if unknown) and stores what it returns.
    fn update(&self, key: &str, now_ns: u64, f: &mut dyn FnMut(Option<u64>) -> Option<u64>);
}

/// Applies `quota` to `key` at `now_ns` (nanoseconds on any monotonic clock).
pub fn check(store: &dyn RateStore, key: &str, quota: &Quota, now_ns: u64) -> RateDecision {
    let interval = quota.interval();
    let window = interval.saturating_mul(u64::from(quota.burst));
    let mut decision = RateDecision {
        allowed: false,
        remaining: 0,
        reset_after: Duration::ZERO,
        retry_after: Duration::ZERO,
    };
    store.update(key, now_ns, &mut |stored| {
        let tat = stored.unwrap_or(now_ns).max(now_ns);
        let new_tat = tat.saturating_add(interval);
        if new_tat - now_ns <= window {
            decision.allowed = true;
            decision.remaining = ((window - (new_tat - now_ns)) / interval) as u32;
            decision.reset_after = Duration::from_nanos(new_tat - now_ns);
            Some(new_tat)
        } else {
            decision.retry_after = Duration::from_nanos(new_tat - window - now_ns);
            decision.reset_after = Duration::from_nanos(tat - now_ns);
            stored
        }
    });
    decision
}

/// The in-process store: sharded maps with a bound on the number of keys. When a shard is full,
/// keys whose bucket is full again (their time has passed: they are as good as absent) go first,
/// then the half with the earliest times, so memory stays bounded whatever keys clients send.
pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<String, u64>>>,
    max_per_shard: usize,
}

impl MemoryStore {
    pub fn new(max_keys: usize) -> MemoryStore {
        let shards = 16;
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: (max_keys / shards).max(1),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, u64>> {
        // The shard only spreads lock contention: a cheap hash does.
        &self.shards[(crate::fnv1a(key.as_bytes()) % self.shards.len() as u64) as usize]
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RateStore for MemoryStore {
    fn update(&self, key: &str, now_ns: u64, f: &mut dyn FnMut(Option<u64>) -> Option<u64>) {
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let stored = map.get(key).copied();
        let Some(new) = f(stored) else { return };
        if stored.is_none() && map.len() >= self.max_per_shard {
            map.retain(|_, tat| *tat > now_ns);
            if map.len() >= self.max_per_shard {
                let mut times: Vec<u64> = map.values().copied().collect();
                let half = times.len() / 2;
                times.select_nth_unstable(half);
                let cut = times[half];
                map.retain(|_, tat| *tat > cut);
            }
        }
        match map.get_mut(key) {
            Some(tat) => *tat = new,
            None => {
                map.insert(key.to_string(), new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn quotas_parse() {
        let q = Quota::parse("100/s", None).unwrap();
        assert_eq!((q.count, q.period, q.burst), (100, Duration::from_secs(1), 100));
        let q = Quota::parse("10/30s", Some(3)).unwrap();
        assert_eq!((q.count, q.period, q.burst), (10, Duration::from_secs(30), 3));
        assert_eq!(
            Quota::parse("600/m", None).unwrap().period,
            Duration::from_secs(60)
        );
        for bad in [
            "",
            "0/s",
            "10",
            "10/fortnight",
            "x/s",
            "10/0s",
            "10/99999999999999h",
        ] {
            assert_eq!(Quota::parse(bad, None), None, "{bad}");
        }
    }

    #[test]
    fn burst_then_the_sustained_rate() {
        let store = MemoryStore::new(100);
        let q = Quota::parse("10/s", Some(5)).unwrap();
        let t0 = 1000 * SEC;
        // Five at once, the sixth refused.
        for i in 0..5 {
            let d = check(&store, "k", &q, t0);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 4 - i);
        }
        let d = check(&store, "k", &q, t0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(100));
        assert_eq!(d.reset_after, Duration::from_millis(500));
        // One interval later exactly one more.
        assert!(check(&store, "k", &q, t0 + SEC / 10).allowed);
        assert!(!check(&store, "k", &q, t0 + SEC / 10).allowed);
        // Sustained at the rate, every request passes.
        let mut t = t0 + SEC;
        for _ in 0..100 {
            assert!(check(&store, "k", &q, t).allowed);
            t += SEC / 10;
        }
        // Other keys are independent.
        assert!(check(&store, "other", &q, t0).allowed);
    }

    #[test]
    fn refused_requests_do_not_push_the_window() {
        let store = MemoryStore::new(100);
        let q = Quota::parse("1/s", Some(1)).unwrap();
        assert!(check(&store, "k", &q, 10 * SEC).allowed);
        for _ in 0..50 {
            assert!(!check(&store, "k", &q, 10 * SEC + SEC / 2).allowed);
        }
        assert!(check(&store, "k", &q, 11 * SEC).allowed);
    }

    #[test]
    fn the_store_stays_bounded() {
        let store = MemoryStore::new(160);
        let q = Quota::parse("1/h", None).unwrap();
        for i in 0..10_000 {
            check(&store, &format!("key-{i}"), &q, 5 * SEC + i);
        }
        assert!(store.len() <= 160, "{}", store.len());
        // The newest keys are still limited.
        assert!(!check(&store, "key-9999", &q, 5 * SEC + 10_000).allowed);
    }
}
