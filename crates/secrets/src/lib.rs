//! Secret detection over bytes: a catalogue of detectors for real credential formats (cloud keys,
//! VCS and chat tokens, payment keys, private keys, JWTs, kubeconfig and registry credentials,
//! secret assignments with entropy checks), each a documented rule with fixtures.
//! It is sans-I/O (bytes in, matches out) and a match never carries the secret itself: only a
//! redacted prefix and a salted SHA-256 fingerprint leave this crate.

mod catalogue;
mod checks;

pub use catalogue::{DETECTORS, Detector};
pub use checks::{is_placeholder, shannon_entropy};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use palisade_core::RuleMeta;
use regex::bytes::{Regex, RegexBuilder};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The only errors: a built-in pattern that does not compile (a bug, caught by the tests).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("detector {rule}: pattern does not compile: {message}")]
    Pattern { rule: &'static str, message: String },
    #[error("keyword prefilter does not build: {0}")]
    Prefilter(String),
}

/// Bounds for one scan. Content past `max_bytes` is not looked at (the result says so).
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub max_bytes: usize,
    /// Most matches reported per input; the rest are counted in [`ScanResult::dropped`].
    pub max_matches: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_bytes: 4 << 20,
            max_matches: 50,
        }
    }
}

/// One secret found. It holds no raw secret: `redacted` shows at most 4 characters and never more
/// than a quarter of the value, and `fingerprint` identifies the value for dedup and ignore lists.
#[derive(Debug, Clone, Serialize)]
pub struct SecretMatch {
    #[serde(rename = "rule_id", serialize_with = "rule_id")]
    pub rule: &'static RuleMeta,
    /// 1-based line and byte column where the match starts.
    pub line: u32,
    pub column: u32,
    pub redacted: String,
    /// `sha256:` over a fixed salt and the value (the salt keeps it out of public hash tables).
    pub fingerprint: String,
    /// Length of the secret in bytes.
    pub length: usize,
    #[serde(skip)]
    anchor: usize,
    #[serde(skip)]
    start: usize,
    #[serde(skip)]
    end: usize,
    #[serde(skip)]
    priority: u8,
}

fn rule_id<S: Serializer>(rule: &&'static RuleMeta, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id)
}

/// What a scan of one input found, and what it could not look at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanResult {
    pub matches: Vec<SecretMatch>,
    /// Input was longer than [`ScanOptions::max_bytes`]; only the start was scanned.
    pub truncated: bool,
    /// Input looked binary (NUL in the first KiB); only private-key detectors ran.
    pub binary: bool,
    /// Matches over [`ScanOptions::max_matches`], not reported.
    pub dropped: usize,
}

/// Every detector compiled once, with one keyword automaton in front of them.
pub struct Scanner {
    prefilter: AhoCorasick,
    /// Prefilter pattern index → detector index.
    keyword_owner: Vec<usize>,
    regexes: Vec<Regex>,
    binary_marker: memchr::memmem::Finder<'static>,
}

/// Regex matches looked at per detector and input before giving up, so one pathological file
/// cannot make a detector loop for long; a multiple of the reporting bound.
const MAX_CANDIDATES_PER_DETECTOR: usize = 1_000;

impl Scanner {
    pub fn new() -> Result<Scanner, SecretsError> {
        let mut keywords = Vec::new();
        let mut keyword_owner = Vec::new();
        let mut regexes = Vec::with_capacity(DETECTORS.len());
        for (i, d) in DETECTORS.iter().enumerate() {
            for k in d.keywords {
                keywords.push(*k);
                keyword_owner.push(i);
            }
            let re = RegexBuilder::new(d.pattern)
                .unicode(false)
                .size_limit(32 << 20)
                .build()
                .map_err(|e| SecretsError::Pattern {
                    rule: d.meta.id,
                    message: e.to_string(),
                })?;
            regexes.push(re);
        }
        // Standard semantics so overlapping keywords of different detectors are all reported.
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .map_err(|e| SecretsError::Prefilter(e.to_string()))?;
        Ok(Scanner {
            prefilter,
            keyword_owner,
            regexes,
            binary_marker: memchr::memmem::Finder::new(b"PRIVATE KEY"),
        })
    }

    /// All detectors' rules, in catalogue order.
    pub fn rules(&self) -> impl Iterator<Item = &'static RuleMeta> {
        rules()
    }

    /// Scans one input (a file's bytes, an environment entry, a label, a build command).
    pub fn scan(&self, content: &[u8], opts: &ScanOptions) -> ScanResult {
        let truncated = content.len() > opts.max_bytes;
        let data = &content[..content.len().min(opts.max_bytes)];
        let binary = memchr::memchr(0, &data[..data.len().min(1024)]).is_some();
        let mut wanted = vec![false; DETECTORS.len()];
        if binary {
            // Binaries carry PEM header strings in their rodata (openssl, Go's crypto); only a
            // full key block counts, and only key detectors run, so the rest of the catalogue
            // does not fire on random bytes.
            if self.binary_marker.find(data).is_some() {
                for (i, d) in DETECTORS.iter().enumerate() {
                    wanted[i] = d.binary;
                }
            }
        } else {
            for m in self.prefilter.find_overlapping_iter(data) {
                wanted[self.keyword_owner[m.pattern().as_usize()]] = true;
            }
        }
        let mut hits: Vec<SecretMatch> = Vec::new();
        for (i, d) in DETECTORS.iter().enumerate() {
            if !wanted[i] {
                continue;
            }
            if !d.requires_any.is_empty()
                && !d
                    .requires_any
                    .iter()
                    .any(|r| memchr::memmem::find(data, r.as_bytes()).is_some())
            {
                continue;
            }
            for caps in self.regexes[i]
                .captures_iter(data)
                .take(MAX_CANDIDATES_PER_DETECTOR)
            {
                let Some(whole) = caps.get(0) else { continue };
                // The secret is the last group that took part (patterns capture context such as a
                // key name first), or the whole match when the pattern has no groups.
                let group = (1..caps.len()).rev().find_map(|g| caps.get(g)).unwrap_or(whole);
                let (start, end) = trim_secret(data, group.start(), group.end());
                if start >= end {
                    continue;
                }
                let secret = &data[start..end];
                // The line around the match, at most 1 KiB each way (context for checks; an
                // unbounded search would make long lines quadratic).
                let lo = whole.start().saturating_sub(1024);
                let hi = (whole.start() + 1024).min(data.len());
                let line_start = memchr::memrchr(b'\n', &data[lo..whole.start()]).map_or(lo, |i| lo + i + 1);
                let line_end =
                    memchr::memchr(b'\n', &data[whole.start()..hi]).map_or(hi, |i| whole.start() + i);
                if !d.check.accepts(secret, &caps, &data[line_start..line_end]) {
                    continue;
                }
                let anchor = first_non_space(data, whole.start(), whole.end()).min(start);
                hits.push(SecretMatch {
                    rule: &d.meta,
                    line: 0,
                    column: 0,
                    anchor,
                    redacted: redact(secret),
                    fingerprint: fingerprint(secret),
                    length: secret.len(),
                    start,
                    end,
                    priority: d.priority,
                });
            }
        }
        let (matches, dropped) = resolve(hits, data, opts.max_matches);
        ScanResult {
            matches,
            truncated,
            binary,
            dropped,
        }
    }

    /// Whether `name=value` (an ENV entry, a build argument) assigns a secret: a secret-like name
    /// (`*_PASSWORD`, `*_SECRET*`, `*_TOKEN`, `*_KEY`, ...) with a literal, non-placeholder value,
    /// or a value any detector recognises. Returns the redacted value and fingerprint.
    pub fn assignment(&self, name: &str, value: &str) -> Option<Assignment> {
        let value_trimmed = value.trim();
        if value_trimmed.is_empty() {
            return None;
        }
        let text = format!("{name}={value}");
        let by_value = self
            .scan(text.as_bytes(), &ScanOptions::default())
            .matches
            .into_iter()
            .find(|m| m.start > name.len())
            .map(|m| m.rule);
        let by_name = checks::secret_name(name) && checks::literal_value(name, value_trimmed);
        if by_value.is_none() && !by_name {
            return None;
        }
        Some(Assignment {
            detector: by_value,
            redacted: redact(value_trimmed.as_bytes()),
            fingerprint: fingerprint(value_trimmed.as_bytes()),
        })
    }
}

impl Scanner {
    /// `text` with every secret a detector finds replaced by its redacted form, for printing
    /// strings that may hold one (build commands, labels). Bytes that are not UTF-8 come out as
    /// U+FFFD.
    pub fn redact_text(&self, text: &str) -> String {
        // No cap on matches here: a dropped match would be printed in clear.
        let opts = ScanOptions {
            max_matches: usize::MAX,
            ..ScanOptions::default()
        };
        let found = self.scan(text.as_bytes(), &opts);
        if found.matches.is_empty() && !found.truncated {
            return text.to_string();
        }
        let mut bytes = text.as_bytes().to_vec();
        if found.truncated {
            // Not scanned past the bound, so not printed either.
            bytes.truncate(ScanOptions::default().max_bytes);
            bytes.extend_from_slice(b"...");
        }
        let mut spans: Vec<(usize, usize, &str)> = found
            .matches
            .iter()
            .map(|m| (m.start, m.end, m.redacted.as_str()))
            .collect();
        spans.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (start, end, redacted) in spans {
            bytes.splice(start..end, redacted.bytes());
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A `name=value` pair judged to hold a secret. No raw value.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The value detector that recognised the value, if one did (else the name alone decided).
    pub detector: Option<&'static RuleMeta>,
    pub redacted: String,
    pub fingerprint: String,
}

/// The scanner every caller shares: the regexes are compiled once per process.
pub fn scanner() -> Result<&'static Scanner, SecretsError> {
    static SCANNER: OnceLock<Result<Scanner, SecretsError>> = OnceLock::new();
    SCANNER.get_or_init(Scanner::new).as_ref().map_err(Clone::clone)
}

/// Every detector's rule, in catalogue order.
pub fn rules() -> impl Iterator<Item = &'static RuleMeta> {
    DETECTORS.iter().map(|d| &d.meta)
}

/// Shows at most 4 characters and never more than a quarter of the value, then `****`.
pub fn redact(secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let count = text.chars().count();
    let shown: String = text.chars().take((count / 4).min(4)).collect();
    format!("{shown}****")
}

/// A salted SHA-256 of the value: stable across scans and images, useless for looking the value up.
pub fn fingerprint(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"palisade-secret-v1\0");
    h.update(secret);
    let digest = h.finalize();
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Strips whitespace, quotes and escaped newlines (`\n` in JSON) around a captured value.
fn trim_secret(data: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    loop {
        if start < end && matches!(data[start], b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'') {
            start += 1;
        } else if end - start >= 2 && &data[start..start + 2] == b"\\n" {
            start += 2;
        } else {
            break;
        }
    }
    loop {
        if end > start && matches!(data[end - 1], b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'') {
            end -= 1;
        } else if end - start >= 2 && &data[end - 2..end] == b"\\n" {
            end -= 2;
        } else {
            break;
        }
    }
    (start, end)
}

fn first_non_space(data: &[u8], start: usize, end: usize) -> usize {
    (start..end)
        .find(|&i| !data[i].is_ascii_whitespace())
        .unwrap_or(start)
}

/// Keeps the most specific detector where matches overlap (a GitHub token inside a generic
/// `token = ...` assignment is reported once, as a GitHub token), orders by position, caps the
/// count and fills in line and column.
fn resolve(mut hits: Vec<SecretMatch>, data: &[u8], max: usize) -> (Vec<SecretMatch>, usize) {
    hits.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.start.cmp(&b.start))
            .then(b.end.cmp(&a.end))
    });
    let mut kept: Vec<SecretMatch> = Vec::with_capacity(hits.len().min(max));
    for h in hits {
        if kept.iter().any(|k| h.start < k.end && k.start < h.end) {
            continue;
        }
        kept.push(h);
    }
    kept.sort_by_key(|h| (h.anchor, h.start));
    let dropped = kept.len().saturating_sub(max);
    kept.truncate(max);
    // One forward pass from match to match turns offsets into 1-based lines and columns.
    let mut line = 1u32;
    let mut line_start = 0usize;
    let mut pos = 0usize;
    for h in &mut kept {
        let segment = &data[pos..h.anchor];
        line = line.saturating_add(memchr::memchr_iter(b'\n', segment).count() as u32);
        if let Some(nl) = memchr::memrchr(b'\n', segment) {
            line_start = pos + nl + 1;
        }
        pos = h.anchor;
        h.line = line;
        h.column = u32::try_from(h.anchor - line_start + 1).unwrap_or(u32::MAX);
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests;
