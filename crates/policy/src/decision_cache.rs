//! Remembered decisions: what a constraint decided about the part of a review its template reads
//! (`footprint`), for the next review that agrees on that part (design note 28). The Pods of one
//! ReplicaSet differ in their names, which few templates read; a rollout of a hundred replicas
//! is then one evaluation per constraint instead of a hundred.
//!
//! Verdicts are kept, and evaluation errors (a conflict between rule values is as much a
//! function of the review as a violation is), never a spent time budget or the memory limit:
//! those depend on the load, and say nothing about the next review. Bounded: keys over `footprint::MAX_KEY_BYTES` are not kept, and the whole map
//! empties when it holds `capacity` entries or `MAX_BYTES` of keys and results.

use crate::Violation;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the entries may hold together, keys and results, before the map empties.
const MAX_BYTES: usize = 64 << 20;

/// Numbers a compiled template or constraint for the cache's keys: a new template, inventory or
/// constraint gets a new number, so nothing remembered of the old one can answer for it.
pub(crate) fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    template: u64,
    constraint: u64,
    review: Box<[u8]>,
}

struct Entries {
    // Keys are a review's bytes: foldhash reads them several times faster than SipHash, and
    // its seed is random per process.
    map: HashMap<Key, Remembered, foldhash::fast::RandomState>,
    bytes: usize,
}

/// What a constraint decided.
#[derive(Clone)]
pub(crate) enum Remembered {
    Violations(Arc<[Violation]>),
    /// The message of a `PolicyError::Evaluation`.
    EvaluationError(Arc<str>),
}

impl Remembered {
    /// What holding it costs, roughly, in bytes.
    fn size(&self) -> usize {
        match self {
            Self::Violations(v) => v
                .iter()
                .map(|v| std::mem::size_of::<Violation>() + v.msg.len() + v.details.to_string().len())
                .sum(),
            Self::EvaluationError(m) => m.len(),
        }
    }
}

/// Verdicts by (template generation, constraint generation, footprint key).
pub(crate) struct DecisionCache {
    capacity: usize,
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DecisionCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(Entries {
                map: HashMap::default(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The remembered verdict, if any.
    pub(crate) fn get(&self, template: u64, constraint: u64, review: Vec<u8>) -> Result<Remembered, Vec<u8>> {
        let key = Key {
            template,
            constraint,
            review: review.into_boxed_slice(),
        };
        let found = self.lock().map.get(&key).cloned();
        match found {
            Some(v) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(v)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Err(key.review.into_vec())
            }
        }
    }

    /// Remembers a verdict.
    pub(crate) fn put(&self, template: u64, constraint: u64, review: Vec<u8>, verdict: Remembered) {
        let size = review.len() + verdict.size();
        // An entry that could never fit is not kept, and empties nothing.
        if self.capacity == 0 || size > MAX_BYTES {
            return;
        }
        let mut entries = self.lock();
        if entries.map.len() >= self.capacity || entries.bytes + size > MAX_BYTES {
            entries.map.clear();
            entries.bytes = 0;
        }
        let key = Key {
            template,
            constraint,
            review: review.into_boxed_slice(),
        };
        if entries.map.insert(key, verdict).is_none() {
            entries.bytes += size;
        }
    }

    /// (hits, misses) since the cache was made.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
