//! Operators (`@rx`, `@pm`, ...): compiled once at load, evaluated on bytes. Arguments containing
//! `%{...}` macros are expanded per transaction (CRS uses this for `@within %{tx.allowed_methods}`).

use crate::rule::Macro;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

/// Compiled-program bounds for one regex: generous for CRS's largest patterns, small enough that a
/// hostile rule file cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 64 << 20;
const REGEX_DFA_LIMIT: usize = 16 << 20;

/// Fields in declaration order (`repr(C)`): see `Rule`'s layout.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Operator {
    pub negated: bool,
    pub kind: OpKind,
    /// The operator as written, for logs (one pointer: read only for a logged match).
    pub text: Arc<OperatorText>,
}

/// `Operator::text`.
#[derive(Debug)]
pub struct OperatorText {
    pub name: Box<str>,
    pub arg: Box<str>,
}

#[derive(Debug, Clone)]
pub enum OpKind {
    Rx(Arc<Rx>),
    RxMacro(Macro),
    Pm(Arc<Pm>),
    StrEq(Macro),
    Contains(Macro),
    ContainsWord(Macro),
    BeginsWith(Macro),
    EndsWith(Macro),
    Within(Macro),
    StrMatch(Macro),
    Num(NumCmp, Macro),
    /// `Num` with a literal operand, parsed at load: CRS's paranoia-level gates compare a TX
    /// variable with a constant about 170 times per request, and the operand's text (two heap
    /// blocks of its own per rule) was then read from a cold cache each time (design note 23).
    NumConst(NumCmp, i64),
    IpMatch(Arc<Vec<(IpAddr, u8)>>),
    ValidateByteRange(Arc<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    DetectSqli,
    DetectXss,
    Unconditional,
    NoMatch,
}

#[derive(Debug, Clone, Copy)]
pub enum NumCmp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

impl NumCmp {
    /// Whether `x` compares so with `a` (the value, then the operand).
    pub(crate) fn holds(self, x: i64, a: i64) -> bool {
        match self {
            NumCmp::Eq => x == a,
            NumCmp::Ge => x >= a,
            NumCmp::Gt => x > a,
            NumCmp::Le => x <= a,
            NumCmp::Lt => x < a,
        }
    }
}

/// `@pm` and `@pmFromFile`: a match is any of the phrases, ASCII case-insensitively.
#[derive(Debug)]
pub struct Pm {
    pub ac: AhoCorasick,
    /// The phrases lower-cased, for the rule set's phrase bound (`Rule::phrase_bound`); empty
    /// when one is shorter than `MIN_PHRASE_LEN`.
    pub phrases: Vec<Vec<u8>>,
}

/// A compiled `@rx` pattern with two bounds read from its syntax tree at load, which answer most
/// benign values without a search: the shortest input it can match (most values CRS inspects are
/// short: an argument, a cookie), and bytes of which every match holds at least one (most attack
/// patterns need a quote, a bracket or a keyword's letter that a value simply does not have).
#[derive(Debug)]
pub struct Rx {
    pub re: Regex,
    pub min_len: usize,
    /// Every match holds a byte of each of these sets (the few rarest the pattern implies).
    pub needs: Vec<ByteSet>,
    /// Every match holds one of these strings (lower-case, compared ASCII case-insensitively);
    /// empty when the pattern implies none long enough to be worth looking for. See
    /// `necessary_phrases`.
    pub phrases: Vec<Vec<u8>>,
    /// The pattern matches every value whole (`^.*$`, `.*`: any byte repeated, optionally
    /// anchored at both ends, DOTALL): the match is the value, found without searching. CRS 920450
    /// runs `^.*$` with `capture` on every request header name.
    pub whole: bool,
}

impl Rx {
    pub fn new(pat: &str) -> Result<Rx, String> {
        let re = compile_regex(pat)?;
        // The same syntax options as `compile_regex` (bytes, no Unicode, DOTALL); a pattern that
        // compiled parses, and if it somehow does not, no bound is used.
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .dot_matches_new_line(true)
            .build()
            .parse(&rewrite_hex_escapes(pat))
            .ok();
        Ok(Rx {
            re,
            // `None` from `minimum_len`: nothing can match.
            min_len: hir
                .as_ref()
                .map_or(0, |h| h.properties().minimum_len().unwrap_or(usize::MAX)),
            needs: hir.as_ref().map(necessary_bytes).unwrap_or_default(),
            phrases: hir.as_ref().and_then(necessary_phrases).unwrap_or_default(),
            whole: hir.as_ref().is_some_and(matches_whole_value),
        })
    }

    /// False when `v` cannot hold a match (too short, or none of the bytes every match has).
    pub fn may_match(&self, v: &[u8]) -> bool {
        if v.len() < self.min_len {
            return false;
        }
        if self.needs.is_empty() {
            return true;
        }
        // In chunks, so that a large value (a response body) holding the bytes early is not read
        // to its end twice: the search that follows reads it anyway.
        let mut present = ByteSet::default();
        for chunk in v.chunks(PRESENCE_CHUNK) {
            for &b in chunk {
                present.insert(b);
            }
            if self.needs.iter().all(|needs| needs.intersects(&present)) {
                return true;
            }
        }
        false
    }
}

/// How many bytes `Rx::may_match` reads between checks of what it has seen.
const PRESENCE_CHUNK: usize = 256;

/// A set of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    pub const EMPTY: ByteSet = ByteSet([0; 4]);

    pub fn of(v: &[u8]) -> ByteSet {
        let mut set = ByteSet::default();
        set.extend(v);
        set
    }
    /// The bytes `lo..=hi`; `const` so that the transformations' byte images are tables.
    pub const fn range(lo: u8, hi: u8) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        let mut b = lo as usize;
        while b <= hi as usize {
            set.0[b >> 6] |= 1 << (b & 63);
            b += 1;
        }
        set
    }
    /// `bytes` as a set, usable in constants.
    pub const fn of_const(bytes: &[u8]) -> ByteSet {
        let mut set = ByteSet::EMPTY;
        let mut i = 0;
        while i < bytes.len() {
            set = set.union(&ByteSet::range(bytes[i], bytes[i]));
            i += 1;
        }
        set
    }
    pub fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    pub fn extend(&mut self, v: &[u8]) {
        for &b in v {
            self.insert(b);
        }
    }
    pub const fn full() -> ByteSet {
        ByteSet([u64::MAX; 4])
    }
    pub const fn union(&self, other: &ByteSet) -> ByteSet {
        let (a, b) = (self.0, other.0);
        ByteSet([a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3]])
    }
    pub const fn minus(&self, other: &ByteSet) -> ByteSet {
        let (a, b) = (self.0, other.0);
        ByteSet([a[0] & !b[0], a[1] & !b[1], a[2] & !b[2], a[3] & !b[3]])
    }
    pub fn intersects(&self, other: &ByteSet) -> bool {
        // Without branches: asked about a thousand times a request (the rules' byte gates), where
        // a loop stopping at the first common word was some 60 instructions a call.
        let ([a0, a1, a2, a3], [b0, b1, b2, b3]) = (self.0, other.0);
        (a0 & b0) | (a1 & b1) | (a2 & b2) | (a3 & b3) != 0
    }
    pub fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
    #[cfg(test)]
    pub fn is_subset(&self, other: &ByteSet) -> bool {
        self.minus(other) == ByteSet::EMPTY
    }
    /// The set with its ASCII upper-case letters replaced by their lower-case twins (`lower`
    /// false: the other way round). Both ranges lie in the second word, 32 bits apart.
    pub fn ascii_case_folded(&self, lower: bool) -> ByteSet {
        const UPPER: u64 = ByteSet::range(b'A', b'Z').0[1];
        const LOWER: u64 = ByteSet::range(b'a', b'z').0[1];
        let mut set = *self;
        let w = set.0[1];
        set.0[1] = if lower {
            (w & !UPPER) | ((w & UPPER) << 32)
        } else {
            (w & !LOWER) | ((w & LOWER) >> 32)
        };
        set
    }
    /// How often a value can be expected to hold one of these bytes: letters, digits and the
    /// space are in nearly every value, other bytes in few.
    fn commonness(&self) -> u32 {
        (0..=255u8)
            .filter(|&b| self.contains(b))
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b' ' {
                    16
                } else {
                    1
                }
            })
            .sum()
    }
}

/// How many byte sets a pattern's bound keeps: the rarest few do nearly all the work.
const MAX_NEEDED_SETS: usize = 3;

/// Sets of bytes such that every match of `hir` holds at least one byte of each set; empty when
/// nothing is implied (a match may be empty, or any byte can do). Sound by construction: a
/// concatenation needs what each of its parts needs (the rarest sets are kept), an alternation
/// needs the union of what its branches need, a repetition what its body needs only when the
/// body must occur, a literal each of its bytes.
fn necessary_bytes(hir: &regex_syntax::hir::Hir) -> Vec<ByteSet> {
    use regex_syntax::hir::{Class, HirKind};
    let rarest = |mut sets: Vec<ByteSet>| {
        sets.sort_by_key(ByteSet::commonness);
        sets.dedup();
        sets.truncate(MAX_NEEDED_SETS);
        sets
    };
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Vec::new(),
        HirKind::Literal(lit) => rarest(lit.0.iter().map(|&b| ByteSet::of(&[b])).collect()),
        HirKind::Class(Class::Bytes(class)) => {
            let mut set = ByteSet::default();
            for r in class.ranges() {
                for b in r.start()..=r.end() {
                    set.insert(b);
                }
            }
            vec![set]
        }
        HirKind::Class(Class::Unicode(class)) => {
            // Not produced without Unicode mode; only ASCII ranges are bytes as they stand.
            let mut set = ByteSet::default();
            for r in class.ranges() {
                let (start, end) = (u32::from(r.start()), u32::from(r.end()));
                if end > 0x7f {
                    return Vec::new();
                }
                for b in start..=end {
                    set.insert(b as u8);
                }
            }
            vec![set]
        }
        HirKind::Repetition(rep) if rep.min >= 1 => necessary_bytes(&rep.sub),
        HirKind::Repetition(_) => Vec::new(),
        HirKind::Capture(cap) => necessary_bytes(&cap.sub),
        HirKind::Concat(parts) => rarest(parts.iter().flat_map(necessary_bytes).collect()),
        HirKind::Alternation(branches) => {
            // Each branch contributes its rarest set; a branch that implies nothing means the
            // alternation does not either.
            let mut all = ByteSet::default();
            for branch in branches {
                all = all.union(necessary_bytes(branch).first().unwrap_or(&ByteSet::full()));
            }
            if all == ByteSet::full() {
                Vec::new()
            } else {
                vec![all]
            }
        }
    }
}

/// The most strings a phrase set keeps (`necessary_phrases`): more would mean a pattern with
/// many short alternatives, which a bound on phrases filters poorly.
const MAX_PHRASES: usize = 64;
/// The shortest phrase worth a bound: shorter ones are in too many benign values.
pub const MIN_PHRASE_LEN: usize = 3;
/// A class of at most this many bytes (after ASCII case folding) counts as a choice of literal
/// bytes; larger ones (`\s`, `[^a-z]`, `.`) as "any byte".
const MAX_CLASS_CHOICES: usize = 4;

/// Strings such that every match of `hir` holds one of them, compared ASCII
/// case-insensitively (they are lower-case): the rule set looks for all of its rules' phrases in
/// a value at once (`Ruleset::phrase_gates`) and skips the rules none of whose phrases a value
/// holds.
/// `None` when the pattern implies no set of at most `MAX_PHRASES` strings of at least
/// `MIN_PHRASE_LEN` bytes. Sound by construction (`PhraseSet`): a concatenation's match holds a
/// match of each part, and of each run of consecutive parts whose matches are finitely many
/// strings; an alternation's match is one of its branches'.
fn necessary_phrases(hir: &regex_syntax::hir::Hir) -> Option<Vec<Vec<u8>>> {
    let set = phrases_of(hir).contained?;
    (set.iter().all(|p| p.len() >= MIN_PHRASE_LEN)).then_some(set)
}

/// A set of lower-case strings, sorted and without duplicates.
type PhraseSet = Vec<Vec<u8>>;

/// What `phrases_of` finds for a part of a pattern.
struct Phrases {
    /// The strings every match of the part is exactly one of (lower-cased: a match equals one
    /// of them ASCII case-insensitively), when they are few. Zero-width assertions match the
    /// empty string.
    exact: Option<PhraseSet>,
    /// Strings every match of the part holds one of: the exact set when there is one, else the
    /// candidate whose shortest string is longest.
    contained: Option<PhraseSet>,
}

impl Phrases {
    fn exact(set: Option<PhraseSet>) -> Phrases {
        Phrases {
            contained: set.clone(),
            exact: set,
        }
    }
}

fn normalized(mut set: PhraseSet) -> Option<PhraseSet> {
    set.sort_unstable();
    set.dedup();
    (set.len() <= MAX_PHRASES).then_some(set)
}

/// The union of some sets, when it stays small; `None` when one of them is `None`.
fn union_of<'a>(sets: impl Iterator<Item = &'a Option<PhraseSet>>) -> Option<PhraseSet> {
    let mut all = Vec::new();
    for set in sets {
        all.extend(set.as_ref()?.iter().cloned());
        if all.len() > 4 * MAX_PHRASES {
            return None;
        }
    }
    normalized(all)
}

/// `Phrases` of `hir`, in one pass over the tree (a CRS pattern has thousands of nodes).
fn phrases_of(hir: &regex_syntax::hir::Hir) -> Phrases {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Phrases::exact(Some(vec![Vec::new()])),
        HirKind::Literal(lit) => Phrases::exact(Some(vec![lit.0.to_ascii_lowercase()])),
        HirKind::Class(Class::Bytes(class)) => {
            let mut bytes = ByteSet::EMPTY;
            let mut n = 0usize;
            for r in class.ranges() {
                n += usize::from(r.end() - r.start()) + 1;
                if n > 2 * MAX_CLASS_CHOICES {
                    return Phrases::exact(None);
                }
                for b in r.start()..=r.end() {
                    bytes.insert(b.to_ascii_lowercase());
                }
            }
            let choices: PhraseSet = (0..=255u8)
                .filter(|&b| bytes.contains(b))
                .map(|b| vec![b])
                .collect();
            Phrases::exact((choices.len() <= MAX_CLASS_CHOICES).then_some(choices))
        }
        // Not produced without Unicode mode.
        HirKind::Class(Class::Unicode(_)) => Phrases::exact(None),
        HirKind::Capture(cap) => phrases_of(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = phrases_of(&rep.sub);
            let exact = match (rep.min, rep.max) {
                (1, Some(1)) => sub.exact,
                (0, Some(1)) => sub.exact.and_then(|mut set| {
                    set.push(Vec::new());
                    normalized(set)
                }),
                _ => None,
            };
            // The body occurs at least once in every match.
            let contained = exact.clone().or(if rep.min >= 1 { sub.contained } else { None });
            Phrases { exact, contained }
        }
        HirKind::Alternation(branches) => {
            let all: Vec<Phrases> = branches.iter().map(phrases_of).collect();
            let exact = union_of(all.iter().map(|p| &p.exact));
            let contained = exact
                .clone()
                .or_else(|| union_of(all.iter().map(|p| &p.contained)));
            Phrases { exact, contained }
        }
        HirKind::Concat(parts) => {
            let all: Vec<Phrases> = parts.iter().map(phrases_of).collect();
            let mut exact: Option<PhraseSet> = Some(vec![Vec::new()]);
            for p in &all {
                exact = match (&exact, &p.exact) {
                    (Some(a), Some(b)) => cross(a, b),
                    _ => None,
                };
            }
            if exact.is_some() {
                return Phrases::exact(exact);
            }
            let mut best: Option<PhraseSet> = None;
            let mut consider = |set: PhraseSet| {
                let key = |s: &PhraseSet| (selectivity(s), std::cmp::Reverse(s.len()));
                if best.as_ref().is_none_or(|b| key(&set) > key(b)) {
                    best = Some(set);
                }
            };
            // A run of consecutive parts with exact sets: every match holds one string of their
            // product. The run restarts where the product would grow too large.
            let mut run: Option<PhraseSet> = None;
            for p in all {
                match p.exact {
                    Some(e) => {
                        run = Some(match run.take() {
                            None => e,
                            Some(r) => match cross(&r, &e) {
                                Some(c) => c,
                                None => {
                                    consider(r);
                                    e
                                }
                            },
                        });
                    }
                    None => {
                        if let Some(r) = run.take() {
                            consider(r);
                        }
                        if let Some(c) = p.contained {
                            consider(c);
                        }
                    }
                }
            }
            if let Some(r) = run {
                consider(r);
            }
            Phrases {
                exact: None,
                contained: best,
            }
        }
    }
}

/// Every string of `a` followed by every string of `b`, when there are few.
fn cross(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<PhraseSet> {
    if a.len().saturating_mul(b.len()) > MAX_PHRASES {
        return None;
    }
    normalized(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| [x.as_slice(), y].concat()))
            .collect(),
    )
}

/// The shortest string of a set: how selective it is (an empty string is in every value).
fn selectivity(set: &[Vec<u8>]) -> usize {
    set.iter().map(Vec::len).min().unwrap_or(0)
}

/// Compiles a pattern with ModSecurity's PCRE flags (DOTALL, `$` only at the end) on bytes with
/// ASCII classes. `\x{HH}` escapes are rewritten to `\xHH`, because without Unicode mode the
/// `regex` crate refuses the braced form above 0x7F inside classes while `\xHH` means the byte.
pub fn compile_regex(pat: &str) -> Result<Regex, String> {
    let build = |p: &str| {
        RegexBuilder::new(p)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_LIMIT)
            .build()
    };
    // `\x{HH}` must mean the byte everywhere, as in PCRE without UTF mode.
    let rewritten = rewrite_hex_escapes(pat);
    // No fallback to Unicode mode: every CRS v4.28 pattern compiles this way, and a second
    // interpretation of the same pattern would be a source of surprises.
    build(&rewritten).map_err(|e| e.to_string())
}

fn rewrite_hex_escapes(pat: &str) -> String {
    let mut out = String::with_capacity(pat.len());
    let b = pat.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x'
                && b.get(i + 2) == Some(&b'{')
                && let Some(end) = pat[i + 3..].find('}')
            {
                let hex = &pat[i + 3..i + 3 + end];
                if let Ok(v) = u32::from_str_radix(hex, 16)
                    && v <= 0xff
                {
                    out.push_str(&format!("\\x{v:02X}"));
                    i += 3 + end + 1;
                    continue;
                }
            }
            out.push_str(&pat[i..i + 2]);
            i += 2;
            continue;
        }
        let ch = pat[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

fn build_pm(phrases: Vec<String>) -> Result<OpKind, String> {
    if phrases.is_empty() {
        return Ok(OpKind::NoMatch);
    }
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(&phrases)
        .map_err(|e| e.to_string())?;
    // An empty phrase is in every value: such a list gives no bound.
    let bound = phrases.iter().all(|p| p.len() >= MIN_PHRASE_LEN);
    Ok(OpKind::Pm(Arc::new(Pm {
        ac,
        phrases: if bound {
            phrases
                .iter()
                .map(|p| p.as_bytes().to_ascii_lowercase())
                .collect()
        } else {
            Vec::new()
        },
    })))
}

/// Lines of a `.data` file: blank lines and `#` comments are skipped.
pub fn data_file_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn parse_ip_list(items: &[String]) -> Result<Vec<(IpAddr, u8)>, String> {
    let mut out = Vec::new();
    for it in items {
        for s in it.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match s.split_once('/') {
                Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| format!("bad CIDR {s:?}"))?)),
                None => (s, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| format!("bad IP address {s:?}"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            if bits > max {
                return Err(format!("bad prefix length in {s:?}"));
            }
            out.push((ip, bits));
        }
    }
    Ok(out)
}

fn ip_in(net: &(IpAddr, u8), ip: &IpAddr) -> bool {
    match (net.0, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if net.1 == 0 { 0 } else { u32::MAX << (32 - net.1) };
            u32::from(n) & mask == u32::from(*a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if net.1 == 0 { 0 } else { u128::MAX << (128 - net.1) };
            u128::from(n) & mask == u128::from(*a) & mask
        }
        _ => false,
    }
}

impl Operator {
    /// `load` reads data files named by `@pmFromFile`/`@ipMatchFromFile` (relative to the rule file).
    pub fn parse(
        spec: &str,
        load: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Operator, String> {
        let mut s = spec.trim_start();
        let mut negated = false;
        if let Some(r) = s.strip_prefix('!') {
            negated = true;
            s = r.trim_start();
        }
        let (name, arg) = match s.strip_prefix('@') {
            Some(r) => match r.find([' ', '\t']) {
                Some(p) => (r[..p].to_string(), r[p + 1..].trim_start().to_string()),
                None => (r.to_string(), String::new()),
            },
            // Without '@' the operator is a regular expression.
            None => ("rx".to_string(), s.to_string()),
        };
        let mac = || Macro::parse(&arg);
        let kind = match name.to_ascii_lowercase().as_str() {
            "rx" => {
                let m = mac();
                if m.is_literal() {
                    OpKind::Rx(Arc::new(
                        Rx::new(&arg).map_err(|e| format!("invalid regex: {e}"))?,
                    ))
                } else {
                    OpKind::RxMacro(m)
                }
            }
            "pm" => build_pm(arg.split_whitespace().map(str::to_string).collect())?,
            "pmfromfile" | "pmf" => {
                let mut phrases = Vec::new();
                for f in arg.split_whitespace() {
                    phrases.extend(data_file_lines(&load(f)?));
                }
                build_pm(phrases)?
            }
            "streq" => OpKind::StrEq(mac()),
            "contains" => OpKind::Contains(mac()),
            "containsword" => OpKind::ContainsWord(mac()),
            "beginswith" => OpKind::BeginsWith(mac()),
            "endswith" => OpKind::EndsWith(mac()),
            "within" => OpKind::Within(mac()),
            "strmatch" => OpKind::StrMatch(mac()),
            "eq" | "ge" | "gt" | "le" | "lt" => {
                let cmp = match name.to_ascii_lowercase().as_str() {
                    "eq" => NumCmp::Eq,
                    "ge" => NumCmp::Ge,
                    "gt" => NumCmp::Gt,
                    "le" => NumCmp::Le,
                    _ => NumCmp::Lt,
                };
                let m = mac();
                match m.as_literal() {
                    Some(text) => OpKind::NumConst(cmp, to_num(text.as_bytes())),
                    None => OpKind::Num(cmp, m),
                }
            }
            "ipmatch" => OpKind::IpMatch(Arc::new(parse_ip_list(std::slice::from_ref(&arg))?)),
            "ipmatchfromfile" | "ipmatchf" => {
                let mut items = Vec::new();
                for f in arg.split_whitespace() {
                    items.extend(data_file_lines(&load(f)?));
                }
                OpKind::IpMatch(Arc::new(parse_ip_list(&items)?))
            }
            "validatebyterange" => {
                let mut allowed = [false; 256];
                for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (a, b) = part.split_once('-').unwrap_or((part, part));
                    let a: u8 = a.trim().parse().map_err(|_| format!("bad byte range {part:?}"))?;
                    let b: u8 = b.trim().parse().map_err(|_| format!("bad byte range {part:?}"))?;
                    for x in a..=b {
                        allowed[x as usize] = true;
                    }
                }
                OpKind::ValidateByteRange(Arc::new(allowed))
            }
            "validateurlencoding" => OpKind::ValidateUrlEncoding,
            "validateutf8encoding" => OpKind::ValidateUtf8Encoding,
            "detectsqli" => OpKind::DetectSqli,
            "detectxss" => OpKind::DetectXss,
            "unconditionalmatch" => OpKind::Unconditional,
            // Network lookups have no place in a sans-I/O engine: they never match.
            "nomatch" | "rbl" | "geolookup" | "inspectfile" => OpKind::NoMatch,
            other => return Err(format!("unsupported operator @{other}")),
        };
        Ok(Operator {
            negated,
            kind,
            text: Arc::new(OperatorText {
                name: name.into(),
                arg: arg.into(),
            }),
        })
    }
}

/// The outcome of one operator evaluation: the matched data (for logs) and regex captures.
pub struct OpMatch {
    pub data: MatchData,
    pub captures: Vec<Vec<u8>>,
}

/// What an operator matched, for the log's `data`. Most operators match a part of the value,
/// kept as a range of it: the bytes are copied only for a rule that logs (most matches of a
/// benign request are `nolog` bookkeeping: CRS's paranoia-level gates and setup rules).
pub enum MatchData {
    /// `value[range]`.
    Value(std::ops::Range<usize>),
    Owned(Vec<u8>),
}

impl MatchData {
    /// The matched bytes of `value`, the value the operator was given.
    pub fn bytes<'a>(&'a self, value: &'a [u8]) -> &'a [u8] {
        match self {
            MatchData::Value(r) => value.get(r.clone()).unwrap_or_default(),
            MatchData::Owned(v) => v,
        }
    }
}

pub(crate) fn to_num(s: &[u8]) -> i64 {
    // Nearly every value compared is a TX score or level of a few digits: read at once (18
    // digits cannot overflow).
    if !s.is_empty() && s.len() <= 18 && s.iter().all(u8::is_ascii_digit) {
        return s.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0'));
    }
    // atoi semantics: optional sign and leading digits, anything else is 0. Input that is not
    // UTF-8 is 0; around the number, whitespace is what `str::trim` removes (ASCII 9-13 and 32
    // on ASCII input, which is all CRS compares).
    if !s.is_ascii() {
        return to_num_unicode(s);
    }
    let space = |c: &u8| matches!(c, 9..=13 | b' ');
    let start = s.iter().position(|c| !space(c)).unwrap_or(s.len());
    let s = &s[start..];
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    // `str::parse` rejects a sign alone and any overflow: both are 0.
    if end == 0 {
        return 0;
    }
    let mut n: i64 = 0;
    for &d in &digits[..end] {
        let d = i64::from(d - b'0');
        let next = n.checked_mul(10).and_then(|n| {
            if negative {
                n.checked_sub(d)
            } else {
                n.checked_add(d)
            }
        });
        match next {
            Some(v) => n = v,
            None => return 0,
        }
    }
    n
}

fn to_num_unicode(s: &[u8]) -> i64 {
    let s = std::str::from_utf8(s).unwrap_or("").trim();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().unwrap_or(0)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Evaluates `kind` (without negation) on `v`; `expand` expands macro arguments (borrowing them
/// from the rule or the transaction when it can).
pub fn eval<'m, 'v>(
    kind: &'m OpKind,
    v: &[u8],
    capture: bool,
    expand: &dyn Fn(&'m Macro) -> Cow<'v, [u8]>,
) -> Option<OpMatch> {
    let simple = |data: MatchData| {
        Some(OpMatch {
            data,
            captures: Vec::new(),
        })
    };
    let whole = || MatchData::Value(0..v.len());
    match kind {
        OpKind::Rx(rx) => {
            if rx.whole {
                // The regex's own leftmost-first match: greedy `.*` from the start to the end.
                return Some(OpMatch {
                    data: whole(),
                    captures: if capture { vec![v.to_vec()] } else { Vec::new() },
                });
            }
            if !rx.may_match(v) {
                return None;
            }
            rx_eval(&rx.re, v, capture)
        }
        OpKind::RxMacro(m) => {
            let pat = String::from_utf8_lossy(&expand(m)).into_owned();
            let re = compile_regex(&pat).ok()?;
            rx_eval(&re, v, capture)
        }
        OpKind::Pm(pm) => pm.ac.find(v).map(|m| OpMatch {
            data: MatchData::Value(m.start()..m.end()),
            captures: if capture {
                vec![v[m.start()..m.end()].to_vec()]
            } else {
                Vec::new()
            },
        }),
        OpKind::StrEq(m) => {
            let a = expand(m);
            (a == v).then(|| OpMatch {
                data: whole(),
                captures: Vec::new(),
            })
        }
        OpKind::Contains(m) => {
            let a = expand(m);
            memchr::memmem::find(v, &a).and_then(|p| simple(MatchData::Value(p..p + a.len())))
        }
        OpKind::ContainsWord(m) => {
            let a = expand(m);
            if a.is_empty() {
                return simple(MatchData::Owned(Vec::new()));
            }
            let mut start = 0;
            while let Some(p) = memchr::memmem::find(&v[start..], &a) {
                let s = start + p;
                let e = s + a.len();
                if (s == 0 || !is_word(v[s - 1])) && (e == v.len() || !is_word(v[e])) {
                    return simple(MatchData::Value(s..e));
                }
                start = s + 1;
            }
            None
        }
        OpKind::BeginsWith(m) => {
            let a = expand(m);
            v.starts_with(&a).then(|| OpMatch {
                data: MatchData::Value(0..a.len()),
                captures: Vec::new(),
            })
        }
        OpKind::EndsWith(m) => {
            let a = expand(m);
            v.ends_with(&a).then(|| OpMatch {
                data: MatchData::Value(v.len() - a.len()..v.len()),
                captures: Vec::new(),
            })
        }
        OpKind::Within(m) => {
            let a = expand(m);
            if v.is_empty() {
                return None;
            }
            memchr::memmem::find(&a, v).and_then(|_| simple(whole()))
        }
        OpKind::StrMatch(m) => {
            let a = expand(m);
            memchr::memmem::find(v, &a).and_then(|p| simple(MatchData::Value(p..p + a.len())))
        }
        OpKind::Num(cmp, m) => cmp.holds(to_num(v), to_num(&expand(m))).then(|| OpMatch {
            data: whole(),
            captures: Vec::new(),
        }),
        OpKind::NumConst(cmp, a) => cmp.holds(to_num(v), *a).then(|| OpMatch {
            data: whole(),
            captures: Vec::new(),
        }),
        OpKind::IpMatch(nets) => {
            let ip: IpAddr = std::str::from_utf8(v).ok()?.trim().parse().ok()?;
            nets.iter().any(|n| ip_in(n, &ip)).then(|| OpMatch {
                data: whole(),
                captures: Vec::new(),
            })
        }
        OpKind::ValidateByteRange(allowed) => v.iter().position(|&c| !allowed[c as usize]).map(|i| OpMatch {
            data: MatchData::Value(i..i + 1),
            captures: Vec::new(),
        }),
        OpKind::ValidateUrlEncoding => {
            let mut i = 0;
            while i < v.len() {
                if v[i] == b'%' {
                    if i + 2 >= v.len() || !v[i + 1].is_ascii_hexdigit() || !v[i + 2].is_ascii_hexdigit() {
                        return simple(MatchData::Value(i..(i + 3).min(v.len())));
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
            None
        }
        OpKind::ValidateUtf8Encoding => std::str::from_utf8(v).is_err().then(|| OpMatch {
            data: whole(),
            captures: Vec::new(),
        }),
        OpKind::DetectSqli => {
            // `detect_sqli` tokenizes the value once more after deciding, for the fingerprint it
            // returns: a benign value (nearly all) paid for two passes. The fingerprint is
            // taken here the same way, only for a value that is SQLi.
            if one_sqli_token(v) {
                return None;
            }
            let mut state = libinjectionrs::SqliState::new(v, libinjectionrs::SqliFlags::FLAG_NONE);
            if state.detect() {
                let fp = state.get_fingerprint().to_string().into_bytes();
                Some(OpMatch {
                    captures: if capture { vec![fp.clone()] } else { Vec::new() },
                    data: MatchData::Owned(fp),
                })
            } else {
                None
            }
        }
        OpKind::DetectXss if xss_inert(v) => None,
        OpKind::DetectXss => libinjectionrs::detect_xss(v).is_injection().then(|| OpMatch {
            data: whole(),
            captures: Vec::new(),
        }),
        OpKind::Unconditional => simple(MatchData::Value(0..0)),
        OpKind::NoMatch => None,
    }
}

/// Whether libinjection reads `v` as one token that is never SQLi alone, so that its tokenizer
/// (which looks each word up in a table of 9,600 entries, allocating an upper-case copy each time)
/// is not run for the names and plain values most requests are made of:
/// - a number: digits, with or without one decimal part (`42`, `49.90`);
/// - a word, `[A-Za-z_][A-Za-z0-9_]*`: whatever its keyword type, no keyword alone is SQLi
///   (`one_token_values_are_never_sqli` runs every one);
/// - a dotted word (`json.items.array_0.sku`, the JSON body's argument names) that the tokenizer
///   keeps whole, because no part before a dot is a keyword, and that is a bareword, because it
///   is not one itself (or is too long to be looked up, 32 bytes).
fn one_sqli_token(v: &[u8]) -> bool {
    match v.first() {
        Some(b'0'..=b'9') => {
            let int = v.iter().take_while(|b| b.is_ascii_digit()).count();
            match &v[int..] {
                [] => true,
                [b'.', frac @ ..] => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
                _ => false,
            }
        }
        Some(&c) if c.is_ascii_alphabetic() || c == b'_' => {
            if !v
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            {
                return false;
            }
            if !v.contains(&b'.') {
                return true;
            }
            let prefixes_plain = v
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'.')
                .all(|(i, _)| !is_sqli_keyword(&v[..i]));
            prefixes_plain && (v.len() >= SQLI_LOOKUP_LIMIT || !is_sqli_keyword(v))
        }
        _ => false,
    }
}

/// libinjection looks up words shorter than this (`LIBINJECTION_SQLI_TOKEN_SIZE`); longer ones are
/// barewords.
const SQLI_LOOKUP_LIMIT: usize = 32;

/// Whether `word` (any case) is an entry of libinjection's keyword table, as its tokenizer looks
/// words up. A hash set of the entries, built on first use, answers without the copy and the binary
/// search.
fn is_sqli_keyword(word: &[u8]) -> bool {
    static KEYWORDS: std::sync::LazyLock<std::collections::HashSet<&'static [u8]>> =
        std::sync::LazyLock::new(|| {
            libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
                .iter()
                .map(|k| k.word.as_bytes())
                .collect()
        });
    let mut upper = [0u8; SQLI_LOOKUP_LIMIT];
    let Some(buf) = upper.get_mut(..word.len()) else {
        // Longer than any word the tokenizer looks up.
        return false;
    };
    buf.copy_from_slice(word);
    buf.make_ascii_uppercase();
    KEYWORDS.contains(&*buf)
}

/// Whether libinjection's XSS check cannot report `v`, in any of the five contexts it parses it
/// in. It reports a tag, a doctype or a comment, each opened by `<`, and an attribute value that
/// follows a dangerous attribute name, which a value does only across `=`; in the three quoted
/// contexts a value without its quote is a single attribute value with no name before it. White
/// space, `/` and `>` only move its parser between text, attribute names and tag ends. So a value
/// of printable ASCII and spaces without `<`, `=` or a quote of any kind is never reported (a
/// User-Agent, most header values): `xss_inert_values_are_never_xss` checks every string of up
/// to three bytes over such bytes and dangerous names joined by them.
fn xss_inert(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| matches!(b, 0x20..=0x7e) && !matches!(b, b'<' | b'=' | b'\'' | b'"' | b'`'))
}

/// Whether `hir` is a greedy repetition of any byte, from zero times without bound, alone or
/// between a start-of-text and an end-of-text anchor: it then matches every value from its first
/// byte to its last (`Rx::whole`). Groups make captures, so a pattern with one is not this.
fn matches_whole_value(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind, Look};
    let any_bytes = |h: &regex_syntax::hir::Hir| match h.kind() {
        HirKind::Repetition(r) if r.min == 0 && r.max.is_none() && r.greedy => match r.sub.kind() {
            HirKind::Class(Class::Bytes(c)) => {
                c.ranges().len() == 1 && c.ranges()[0].start() == 0 && c.ranges()[0].end() == 255
            }
            _ => false,
        },
        _ => false,
    };
    match hir.kind() {
        HirKind::Concat(parts) => match parts.as_slice() {
            [start, rep, end] => {
                matches!(start.kind(), HirKind::Look(Look::Start))
                    && matches!(end.kind(), HirKind::Look(Look::End))
                    && any_bytes(rep)
            }
            _ => false,
        },
        _ => any_bytes(hir),
    }
}

fn rx_eval(re: &Regex, v: &[u8], capture: bool) -> Option<OpMatch> {
    if capture {
        // Most values do not match: find first, and pay for capture groups only on a match.
        let m = re.find(v)?;
        if re.captures_len() == 1 {
            // No group but the whole match (`^.*$` of 920450 on every header name): the
            // match found is TX.0, the same leftmost-first match a capture search reports.
            return Some(OpMatch {
                data: MatchData::Value(m.range()),
                captures: vec![m.as_bytes().to_vec()],
            });
        }
        let caps = re.captures_at(v, 0)?;
        debug_assert_eq!(caps.get(0).map(|c| c.start()), Some(m.start()));
        let captures: Vec<Vec<u8>> = (0..caps.len().min(10))
            .map(|i| caps.get(i).map(|m| m.as_bytes().to_vec()).unwrap_or_default())
            .collect();
        Some(OpMatch {
            data: MatchData::Value(m.range()),
            captures,
        })
    } else {
        let m = re.find(v)?;
        Some(OpMatch {
            data: MatchData::Value(m.range()),
            captures: Vec::new(),
        })
    }
}

/// Every string of at most `len` bytes over `alphabet`, the empty one first: the exhaustive
/// inputs the byte-bound tests (here and in `transform`) check their fast paths on.
#[cfg(test)]
pub(crate) fn strings_up_to(alphabet: &[u8], len: usize) -> Vec<Vec<u8>> {
    let mut strings: Vec<Vec<u8>> = vec![Vec::new()];
    let mut frontier = strings.clone();
    for _ in 0..len {
        frontier = frontier
            .iter()
            .flat_map(|p| alphabet.iter().map(move |&c| [p.as_slice(), &[c]].concat()))
            .collect();
        strings.extend(frontier.iter().cloned());
    }
    strings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(s: &str) -> Operator {
        Operator::parse(s, &mut |_| Ok("# c\nfoo\n\nbar baz\n".into())).unwrap()
    }
    fn m(o: &Operator, v: &str) -> bool {
        eval(&o.kind, v.as_bytes(), false, &|m| {
            Cow::Owned(m.literal().into_bytes())
        })
        .is_some()
    }

    #[test]
    fn whole_value_patterns_match_as_the_regex_does() {
        for pat in ["^.*$", ".*", "(?s)^.*$"] {
            let rx = Rx::new(pat).unwrap();
            assert!(rx.whole, "{pat}");
            let o = op(&format!("@rx {pat}"));
            for v in [&b""[..], b"host", b"a\nb\n", b"\xff\x00"] {
                let m = eval(&o.kind, v, true, &|m| Cow::Owned(m.literal().into_bytes())).unwrap();
                let re = rx.re.find(v).unwrap();
                assert_eq!(m.data.bytes(v), re.as_bytes(), "{pat} {v:?}");
                assert_eq!(m.captures, vec![v.to_vec()], "{pat} {v:?}");
            }
        }
        for pat in ["^.*a$", "^(.*)$", "^.+$", "^.*", "a.*", "^.*?$", "^[^\\n]*$"] {
            assert!(!Rx::new(pat).unwrap().whole, "{pat}");
        }
    }

    #[test]
    fn numeric_constants_compare_as_their_text_did() {
        // A literal operand is parsed at load (`NumConst`); it must compare exactly as the text,
        // expanded and parsed at each evaluation (`Num`), did.
        let operands = [
            "1",
            " 2",
            "-3",
            "+4",
            "x",
            "",
            "5x",
            "99999999999999999999",
            "\u{e9}",
        ];
        let values = ["0", "1", "2", "-3", "4", "5", " 5 ", "abc", "", "-0", "1e3"];
        for (name, cmp) in [
            ("eq", NumCmp::Eq),
            ("ge", NumCmp::Ge),
            ("gt", NumCmp::Gt),
            ("le", NumCmp::Le),
            ("lt", NumCmp::Lt),
        ] {
            for a in operands {
                let parsed = op(&format!("@{name} {a}"));
                assert!(matches!(parsed.kind, OpKind::NumConst(..)), "@{name} {a}");
                let by_text = Operator {
                    kind: OpKind::Num(cmp, Macro::parse(a.trim_start())),
                    ..parsed.clone()
                };
                for v in values {
                    assert_eq!(m(&parsed, v), m(&by_text, v), "@{name} {a:?} on {v:?}");
                }
            }
        }
        assert!(matches!(op("@lt %{tx.x}").kind, OpKind::Num(NumCmp::Lt, _)));
    }

    #[test]
    fn xss_inert_values_are_never_xss() {
        // Every string of up to three bytes over the screen's kinds of bytes (letters that start
        // dangerous names, digits, punctuation it lets through, and what separates attributes
        // and ends tags), then dangerous names alone and joined by those separators.
        let alphabet = b"oOnNsx1_-&;:(!?\\#% />";
        let mut values = crate::operator::strings_up_to(alphabet, 3);
        let names = [
            "onerror",
            "ONLOAD",
            "onclick",
            "style",
            "xmlns",
            "xmlns:xlink",
            "xlink:href",
            "href",
            "src",
            "formaction",
            "action",
            "data",
            "script",
            "iframe",
            "svg",
            "javascript:alert(1)",
            "vbscript:x",
            "data:text/html",
            "on",
            "-->",
            "!--",
            "&lt;script&gt;",
            "!DOCTYPE",
            "[if",
            "?import",
        ];
        let separators = [" ", "/", ">", " / ", "> ", "//", "  "];
        for a in names {
            values.push(a.as_bytes().to_vec());
            for sep in separators {
                values.push(format!("x{sep}{a}").into_bytes());
                values.push(format!("{a}{sep}x").into_bytes());
                for b in names {
                    values.push(format!("{a}{sep}{b}").into_bytes());
                    values.push(format!("x{sep}{a}{sep}{b}{sep}").into_bytes());
                }
            }
        }
        // And pseudo-random values over every byte the screen lets through (xorshift64).
        let inert: Vec<u8> = (0x20..=0x7e).filter(|&b| xss_inert(&[b])).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        for _ in 0..20_000 {
            let len = next() % 40 + 1;
            values.push((0..len).map(|_| inert[next() % inert.len()]).collect());
        }
        let mut checked = 0;
        for v in &values {
            if xss_inert(v) {
                checked += 1;
                assert!(
                    !libinjectionrs::detect_xss(v).is_injection(),
                    "{:?}",
                    String::from_utf8_lossy(v)
                );
            }
        }
        assert!(checked > 35_000, "{checked}");
        for v in [
            "<script>",
            "x onerror=alert(1)",
            "'",
            "\"",
            "`",
            "a=b",
            "\u{e9}",
            "a\tb",
            "a\nb",
        ] {
            assert!(!xss_inert(v.as_bytes()), "{v:?}");
        }
        // What the screen keeps out is what makes these reported.
        for v in ["x onerror=alert(1)", "<script>", "x style=a", "<!DOCTYPE html>"] {
            assert!(libinjectionrs::detect_xss(v.as_bytes()).is_injection(), "{v}");
        }
    }

    #[test]
    fn captures_are_the_capture_search_s_with_or_without_groups() {
        let values = ["", "Host", "x-a b\n", "aab", "zz ab ab", "\u{e9}t\u{e9}"];
        for pat in ["^.*$", "a+b", "(?i)AB", "(a)(b)?", "(?:a)(b)", "x|(z+)"] {
            let o = op(&format!("@rx {pat}"));
            let re = compile_regex(pat).unwrap();
            for v in values {
                let got = eval(&o.kind, v.as_bytes(), true, &|m| {
                    Cow::Owned(m.literal().into_bytes())
                });
                let want = re.captures(v.as_bytes()).map(|c| {
                    (0..c.len().min(10))
                        .map(|i| c.get(i).map(|m| m.as_bytes().to_vec()).unwrap_or_default())
                        .collect::<Vec<_>>()
                });
                assert_eq!(got.map(|m| m.captures), want, "{pat} on {v:?}");
            }
        }
    }

    #[test]
    fn the_byte_bound_never_hides_a_match() {
        let patterns = [
            "(?i)union\\s+select",
            "^abc$",
            "a|b|",
            "(?:x|y)+z?",
            "[^a-z]",
            "\\bfoo\\b",
            "(?i:<script)",
            "a*",
            "(?:'|\"|`)\\s*(?:or|and)",
            "\\x{e9}|\\xff",
            "[\\x00-\\x08]",
            "(a)(b)?c{2,}",
            "[^\\x00-\\xff]",
        ];
        let alphabet = b"aAbcBC'\" <>xyzZ\x00\xe9\xff\n";
        let mut strings = crate::operator::strings_up_to(alphabet, 3);
        strings.extend([
            b"1 UNION  select 2".to_vec(),
            b"x<SCRIPT>".to_vec(),
            b"' or 1".to_vec(),
        ]);
        // Past the first chunk `may_match` reads.
        let late = [vec![b'a'; 900], b"<SCRIPT".to_vec()].concat();
        assert!(Rx::new("(?i:<script)").unwrap().may_match(&late));
        strings.push(late);
        for p in patterns {
            let rx = Rx::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            let mut skipped = 0;
            for s in &strings {
                if !rx.may_match(s) {
                    skipped += 1;
                    assert!(!rx.re.is_match(s), "{p:?} matches {s:?} but was skipped");
                }
            }
            // The bound must also do something where it can.
            if ["^abc$", "(?i:<script)", "[^a-z]"].contains(&p) {
                assert!(skipped > 0, "{p:?} never skipped");
            }
        }
        let union = Rx::new("(?i)union\\s+select").unwrap();
        assert!(!union.may_match(b"plain-words"), "{:?}", union.needs);
    }

    #[test]
    fn the_phrase_bound_never_hides_a_match() {
        // Every construct `exact` and `contained` read: literals, case-insensitive classes,
        // small classes, optional parts, repetitions, anchors, word boundaries, alternations
        // (exact and not), runs broken by a class too large to expand.
        let patterns = [
            "(?i)ab[cx]",
            "a(?:bc|cb)a?",
            "(?:abc)+",
            "\\babc\\b",
            "x?abc|bca",
            "a[bB]c",
            "(?i)a\\s*bcx",
            "^(?:ab|ba)c$",
            "a.bca",
            "(?i:xab|ab?c)c",
            "(?:abc|b+)cab",
            "[a-c]{2}ab",
            "c(?:a|b)(?:a|b)(?:a|b)(?:a|b)",
            "(ab)?cab",
        ];
        let alphabet = b"abcAB x";
        let strings = crate::operator::strings_up_to(alphabet, 5);
        let holds = |s: &[u8], phrases: &[Vec<u8>]| {
            let lower = s.to_ascii_lowercase();
            phrases
                .iter()
                .any(|p| lower.windows(p.len()).any(|w| w == p.as_slice()))
        };
        for p in patterns {
            let rx = Rx::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            for s in &strings {
                if !rx.phrases.is_empty() && rx.re.is_match(s) {
                    assert!(
                        holds(s, &rx.phrases),
                        "{p:?} matches {s:?}, none of {:?}",
                        rx.phrases
                    );
                }
            }
        }
        let phrases = |p: &str| {
            Rx::new(p)
                .unwrap()
                .phrases
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect::<Vec<_>>()
        };
        // What the bound keeps, where it can.
        assert_eq!(phrases("(?i)ab[cx]"), ["abc", "abx"]);
        assert_eq!(
            phrases("(?:runtime|processbuilder)"),
            ["processbuilder", "runtime"]
        );
        // The longer of two words a match must hold both of.
        assert_eq!(phrases("(?i)union[\\s\\x0b]+select"), ["select"]);
        assert_eq!(
            phrases("(?:\\beval|new[\\s\\x0b]+Function[\\s\\x0b]*)\\("),
            ["eval", "function"]
        );
        // Too short, or nothing implied: no bound.
        assert!(
            phrases("(?i)a\\s*bc").is_empty(),
            "each part has at most two bytes"
        );
        assert!(phrases("a|bcd").is_empty());
        assert!(phrases("(?:abc)*").is_empty());
        assert!(phrases(".+").is_empty());
    }

    /// The log's `data` is what each operator matched; kept as a range of the value until a
    /// logged match needs the bytes, it must name the same bytes the operator found.
    #[test]
    fn one_token_values_are_never_sqli() {
        // A value the screen passes is one token to libinjection's tokenizer: a word (whose
        // type is its keyword entry's, or bareword) or a number. So every keyword, alone, in
        // either case, plus barewords (short, and longer than the 32 bytes libinjection looks
        // up) and numbers, cover every outcome.
        let mut checked = 0;
        for k in libinjectionrs::sqli::sqli_data::SQL_KEYWORDS {
            for w in [k.word.to_string(), k.word.to_ascii_lowercase()] {
                if one_sqli_token(w.as_bytes()) {
                    checked += 1;
                    assert!(!libinjectionrs::detect_sqli(w.as_bytes()).is_injection(), "{w}");
                }
            }
        }
        assert!(checked > 1000, "{checked} keywords checked");
        // Dotted words: a keyword after a bareword part stays in one bareword token unless the
        // whole is a keyword; a keyword before a dot splits the word, and the screen leaves such
        // values to libinjection.
        for k in libinjectionrs::sqli::sqli_data::SQL_KEYWORDS {
            let w = k.word.to_ascii_lowercase();
            if w.is_empty() || !w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let after = format!("json.{w}");
            if one_sqli_token(after.as_bytes()) {
                assert!(
                    !libinjectionrs::detect_sqli(after.as_bytes()).is_injection(),
                    "{after}"
                );
            }
            let before = format!("{w}.x");
            if !w.as_bytes()[0].is_ascii_digit() {
                assert!(!one_sqli_token(before.as_bytes()), "{before}");
            }
        }
        // Prefixes are looked up whatever their length: no entry is too long for the screen's.
        assert!(
            libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
                .iter()
                .all(|k| k.word.len() < SQLI_LOOKUP_LIMIT)
        );
        // The screen agrees with libinjection's own lookup on what a keyword is.
        for w in [
            "union",
            "SELECT",
            "json",
            "price",
            "sleep",
            "information_schema",
            "x",
        ] {
            let bareword =
                libinjectionrs::sqli::sqli_data::lookup_word(w) == libinjectionrs::sqli::TokenType::Bareword;
            assert_eq!(is_sqli_keyword(w.as_bytes()), !bareword, "{w}");
        }
        let long = "w".repeat(40);
        let long_dotted = format!("json.{}.x", "w".repeat(40));
        for w in [
            "price",
            "x",
            "_",
            "a_b9",
            "Xyz",
            "b01",
            "q1",
            "N_",
            long.as_str(),
            "0",
            "1",
            "42",
            "0123",
            "99999999999999999999999",
            "49.90",
            "0.5",
            "json.items.array_0.sku",
            "a.b",
            "x..y",
            "json.",
            long_dotted.as_str(),
        ] {
            assert!(one_sqli_token(w.as_bytes()), "{w}");
            assert!(!libinjectionrs::detect_sqli(w.as_bytes()).is_injection(), "{w}");
        }
        // What the screen leaves to libinjection: more than one token, or other shapes.
        for w in [
            "",
            "1 union select 1",
            "0x1f",
            "1e5",
            "7f3a",
            "1.",
            "1.2.3",
            ".5",
            "union.x",
            "a`b",
            "a-b",
            "x'",
            "é",
            "a b",
            "$x",
        ] {
            assert!(!one_sqli_token(w.as_bytes()), "{w}");
        }
        assert!(libinjectionrs::detect_sqli(b"1 union select 1").is_injection());
    }

    #[test]
    fn matched_data_is_what_each_operator_matched() {
        let data = |o: &str, v: &str| -> Option<String> {
            let m = eval(&op(o).kind, v.as_bytes(), false, &|m| {
                Cow::Owned(m.literal().into_bytes())
            })?;
            Some(String::from_utf8(m.data.bytes(v.as_bytes()).to_vec()).unwrap())
        };
        let cases = [
            ("@rx b+c", "aabbbcd", "bbbc"),
            ("@pm foo bar", "xxbarxx", "bar"),
            ("@streq abc", "abc", "abc"),
            ("@contains lo w", "hello world", "lo w"),
            ("@containsWord cat", "a cat sat", "cat"),
            ("@beginsWith he", "hello", "he"),
            ("@endsWith llo", "hello", "llo"),
            ("@within abcdef", "cd", "cd"),
            ("@strmatch ell", "hello", "ell"),
            ("@lt 5", " 3", " 3"),
            ("@ipMatch 10.0.0.0/8", "10.1.2.3", "10.1.2.3"),
            ("@validateByteRange 97-122", "abc!d", "!"),
            ("@validateUrlEncoding", "a%zz", "%zz"),
            ("@validateUrlEncoding", "a%4", "%4"),
            ("@unconditionalMatch", "x", ""),
        ];
        for (o, v, want) in cases {
            assert_eq!(data(o, v).as_deref(), Some(want), "{o} on {v:?}");
        }
        assert_eq!(data("@validateUtf8Encoding", "\u{e9}"), None);
        let bad = eval(&op("@validateUtf8Encoding").kind, b"a\xff", false, &|_| {
            Cow::Borrowed(&b""[..])
        })
        .unwrap();
        assert_eq!(bad.data.bytes(b"a\xff"), b"a\xff");
        let caps = eval(&op("@rx (b+)(c)").kind, b"abbcd", true, &|_| {
            Cow::Borrowed(&b""[..])
        })
        .unwrap();
        assert_eq!(caps.data.bytes(b"abbcd"), b"bbc");
        assert_eq!(
            caps.captures,
            vec![b"bbc".to_vec(), b"bb".to_vec(), b"c".to_vec()]
        );
        // A range past the value (a caller passing the wrong value) yields nothing, not a panic.
        assert!(MatchData::Value(2..9).bytes(b"abc").is_empty());
    }

    #[test]
    fn numbers_parse_like_the_reference() {
        for s in [
            "",
            "0",
            "42",
            " 42 ",
            "\t-7x",
            "+5",
            "-",
            "+",
            "--1",
            "12abc",
            "abc",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "\x0b3",
            "3\x0c",
            " \u{a0}5",
            "\u{a0}5",
            "00017",
            "1 2",
            "999999999999999999",
            "1234567890123456789",
        ] {
            assert_eq!(to_num(s.as_bytes()), to_num_unicode(s.as_bytes()), "{s:?}");
        }
        assert_eq!(to_num(b"\xff1"), 0);
    }

    #[test]
    fn operators() {
        assert!(m(&op("@rx (?i)^sel.ct$"), "SEL\nCT"));
        assert!(m(&op("a+b"), "xaab"));
        assert!(m(&op("@pm foo bar"), "xxBARxx"));
        assert!(m(&op("@pmFromFile x.data"), "some bar baz"));
        assert!(!m(&op("@pmFromFile x.data"), "ba"));
        assert!(m(&op("@within GET POST"), "POST"));
        assert!(m(&op("@ge 5"), "7"));
        assert!(!m(&op("@lt 5"), "7"));
        assert!(m(&op("@ipMatch 10.0.0.0/8,::1"), "10.1.2.3"));
        assert!(m(&op("@validateByteRange 32-126"), "a\u{1}"));
        assert!(m(&op("@validateUrlEncoding"), "a%zz"));
        assert!(m(&op("@containsWord cat"), "a cat!"));
        assert!(!m(&op("@containsWord cat"), "cats"));
        assert!(m(&op("@detectSQLi"), "1' or '1'='1"));
        assert!(m(&op("@detectXSS"), "<script>alert(1)</script>"));
        assert!(op("!@rx x").negated);
        assert!(compile_regex("[\\x{80}-\\x{ff}]").is_ok());
    }
}
