//! What rules found in a request header or cookie value or an argument name, remembered across
//! transactions by the value's bytes (design note 26).
//!
//! A client sends the same `User-Agent`, `Accept`, `Accept-Language`, `Host` and session cookie
//! with every request, and browsers of one version send the same values as each other. Which
//! rules cannot match such a value is a function of its bytes alone for a rule whose operator
//! reads nothing but the value (no macro in its argument) and is not negated: its
//! transformations and operator are pure. Such a rule link gets a bit (`Rule::memo_bit`), and a
//! value's entry records the links found not to match it, so that later transactions skip the
//! transformations and the operator for it.
//!
//! Only "no match" is remembered: a match runs the rule's actions, which read and write the
//! transaction, so it is evaluated every time. Request header and cookie values and names and
//! argument names are the values remembered: they repeat across requests, where argument
//! values and bodies mostly do not. Bounded: values longer than `MAX_VALUE_LEN` are not remembered, and the map is
//! emptied when it holds `MAX_ENTRIES` values (transactions keep the entries they hold).

use crate::transform::ByteClasses;
use crate::variable::Var;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Longer values are not remembered: few repeat, and each would hold its copy.
pub(crate) const MAX_VALUE_LEN: usize = 512;
/// The map is emptied when it reaches this many values (at most about 2.5 MB with the bits).
pub(crate) const MAX_ENTRIES: usize = 4096;

/// At most this many phrase searches are remembered per value (CRS reads a header through
/// about a dozen transformation chains).
const MAX_PHRASE_KEYS: usize = 64;

/// Whether values of `var` are remembered: request headers and cookies, values and names, and
/// argument names (an API's requests use the same few names; their values vary).
pub(crate) fn remembers(var: Var) -> bool {
    matches!(
        var,
        Var::RequestHeaders
            | Var::RequestHeadersNames
            | Var::RequestCookies
            | Var::RequestCookiesNames
            | Var::ArgsNames
            | Var::ArgsGetNames
            | Var::ArgsPostNames
    )
}

/// `Rule::memo_bit` of a link whose verdicts are not remembered.
pub(crate) const NO_MEMO: u32 = u32::MAX;

pub(crate) struct ValueMemo {
    /// 64-bit words of verdict bits per entry; 0 when no rule link has a bit.
    words: usize,
    map: Mutex<HashMap<Box<[u8]>, Arc<MemoEntry>, foldhash::fast::RandomState>>,
}

impl std::fmt::Debug for ValueMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueMemo")
            .field("bits", &(self.words * 64))
            .finish()
    }
}

/// What is known about one value.
pub(crate) struct MemoEntry {
    /// Bit `Rule::memo_bit` set: that link does not match the value.
    no_match: Box<[AtomicU64]>,
    /// The phrases (pattern indices of the request automaton) found in the value, by
    /// `PhraseKey`, with the classes of the value's bytes. A handful of keys per value.
    phrases: Mutex<Vec<PhraseSearch>>,
}

/// One remembered phrase search: where (`PhraseKey`), the classes of the value's bytes, and the
/// pattern indices found.
type PhraseSearch = (PhraseKey, ByteClasses, Box<[u32]>);

/// Where phrases were looked for in a value: as it is (`AS_IT_IS`), or through phrase slot
/// `n`'s transformations.
pub(crate) type PhraseKey = u32;
pub(crate) const AS_IT_IS: PhraseKey = u32::MAX;

impl MemoEntry {
    /// If the value was searched under `key` before: hands `found` each phrase found and
    /// returns the classes of the value's bytes.
    pub(crate) fn phrases(&self, key: PhraseKey, found: impl FnMut(u32)) -> Option<ByteClasses> {
        let list = self.phrases.lock().unwrap_or_else(|e| e.into_inner());
        let (_, classes, ids) = list.iter().find(|(k, _, _)| *k == key)?;
        ids.iter().copied().for_each(found);
        Some(*classes)
    }

    pub(crate) fn remember_phrases(&self, key: PhraseKey, classes: ByteClasses, found: &[u32]) {
        let mut list = self.phrases.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() < MAX_PHRASE_KEYS && !list.iter().any(|(k, _, _)| *k == key) {
            list.push((key, classes, found.into()));
        }
    }

    pub(crate) fn known_no_match(&self, bit: u32) -> bool {
        let bit = bit as usize;
        self.no_match
            .get(bit / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
    }

    /// Clears in `acc` the bits of the links not known not to match this value (`acc` holds,
    /// word by word, the links known not to match every value seen so far).
    pub(crate) fn and_no_match_into(&self, acc: &mut [u64]) {
        for (a, w) in acc.iter_mut().zip(self.no_match.iter()) {
            *a &= w.load(Ordering::Relaxed);
        }
    }

    pub(crate) fn words(&self) -> usize {
        self.no_match.len()
    }

    pub(crate) fn set_no_match(&self, bit: u32) {
        let bit = bit as usize;
        if let Some(w) = self.no_match.get(bit / 64) {
            w.fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }
}

impl ValueMemo {
    pub(crate) fn new(bits: usize) -> ValueMemo {
        ValueMemo {
            words: bits.div_ceil(64),
            map: Mutex::default(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.words > 0
    }

    /// The entries of `values`, created for values seen for the first time; `None` for a
    /// value too long to remember. One lock for all of them.
    pub(crate) fn entries<'v>(&self, values: impl Iterator<Item = &'v [u8]>) -> Vec<Option<Arc<MemoEntry>>> {
        // A panic cannot happen while the lock is held; the map is consistent either way.
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        values
            .map(|v| {
                if v.len() > MAX_VALUE_LEN {
                    return None;
                }
                if let Some(e) = map.get(v) {
                    return Some(Arc::clone(e));
                }
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
                let e = Arc::new(MemoEntry {
                    no_match: (0..self.words).map(|_| AtomicU64::new(0)).collect(),
                    phrases: Mutex::default(),
                });
                map.insert(v.into(), Arc::clone(&e));
                Some(e)
            })
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_keeps_its_entry_and_the_map_stays_bounded() {
        let memo = ValueMemo::new(130);
        let a = memo.entries([&b"Mozilla/5.0"[..]].into_iter()).remove(0).unwrap();
        assert!(!a.known_no_match(129));
        a.set_no_match(129);
        let again = memo.entries([&b"Mozilla/5.0"[..]].into_iter()).remove(0).unwrap();
        assert!(again.known_no_match(129) && !again.known_no_match(128));
        let mut ids = Vec::new();
        assert!(a.phrases(AS_IT_IS, |i| ids.push(i)).is_none());
        a.remember_phrases(AS_IT_IS, ByteClasses::of(b"Mozilla/5.0"), &[3, 7]);
        a.remember_phrases(AS_IT_IS, ByteClasses::NONE, &[]);
        let c = again.phrases(AS_IT_IS, |i| ids.push(i));
        assert_eq!(
            (c, ids.as_slice()),
            (Some(ByteClasses::of(b"Mozilla/5.0")), &[3, 7][..])
        );
        assert!(again.phrases(2, |_| ()).is_none());
        // A bit past the last word is ignored rather than a panic.
        a.set_no_match(4000);
        assert!(!a.known_no_match(4000));
        let long = vec![b'a'; MAX_VALUE_LEN + 1];
        assert!(memo.entries([long.as_slice()].into_iter())[0].is_none());
        let values: Vec<Vec<u8>> = (0..MAX_ENTRIES + 10)
            .map(|i| i.to_string().into_bytes())
            .collect();
        let _ = memo.entries(values.iter().map(|v| v.as_slice()));
        assert!(memo.len() <= MAX_ENTRIES);
        // The entry a transaction holds stays usable after the map was emptied.
        assert!(a.known_no_match(129));
    }
}
