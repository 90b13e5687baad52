//! A sans-I/O SecLang (ModSecurity) engine that loads the OWASP Core Rule Set v4 unmodified.
//!
//! A [`Ruleset`] is compiled once from configuration text (files come through a [`Loader`]) and is
//! immutable and shareable across threads. Each HTTP exchange is a [`Transaction`]: the adapter
//! feeds it connection data, the request line, headers, body and then the response, and gets back
//! an [`Intervention`] and the matched rules. This crate never opens sockets or files, except in the
//! clearly separated [`fs`] adapter.
//!
//! ```
//! use palisade_waf::Ruleset;
//!
//! let rules = Ruleset::parse(
//!     r#"
//! SecRuleEngine On
//! SecRule ARGS "@rx (?i)<script" "id:1,phase:1,deny,status:403,msg:'XSS in %{MATCHED_VAR_NAME}'"
//! "#,
//! )?;
//! let mut tx = rules.transaction();
//! tx.set_request_line(b"GET", b"/search?q=%3Cscript%3E", b"HTTP/1.1");
//! tx.add_request_header(b"Host", b"shop.example");
//! assert_eq!(tx.process_request_headers().map(|i| i.status), Some(403));
//! assert_eq!(tx.matched_rules()[0].msg, "XSS in ARGS:q");
//! # Ok::<(), palisade_waf::WafError>(())
//! ```
//!
//! For OWASP CRS, load `crs-setup.conf` and `rules/*.conf` through [`fs::FsLoader`] (or any
//! [`Loader`]) with [`RulesetBuilder`].
//!
//! What is implemented is what CRS v4 uses, with ModSecurity 2 semantics (departures are listed in
//! `docs/design-notes.md`): the `Sec*` directives CRS and `modsecurity.conf-recommended` use
//! (logging and storage directives are accepted and left to the adapter), 94 variables, 24
//! operators (`@rbl`/`@geoLookup`/`@inspectFile` never match), 32 transformations, and the actions
//! including `chain`, `setvar`, `skipAfter`, `ctl:` and macros. Unknown directives, variables,
//! operators, transformations and actions are load errors with a file, line and stable code.

pub mod api;
mod body;
pub mod bots;
mod config;
mod error;
pub mod fs;
mod log;
mod memo;
mod operator;
mod parser;
pub mod ratelimit;
mod rule;
mod transaction;
mod transform;
mod variable;

pub use config::{Loader, NoFiles, RulesetBuilder};
pub use error::{Result, WafError};
pub use log::format_error_log;
pub use parser::{Directive, parse_directives};
pub use rule::{Disruptive, severity_name};
pub use transaction::{Intervention, MatchedRule, Transaction};

use rule::{NO_IMAGE, Rule};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use transform::Transform;

/// `SecRuleEngine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

impl EngineMode {
    pub fn parse(s: &str) -> Option<EngineMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" => Some(EngineMode::On),
            "off" => Some(EngineMode::Off),
            "detectiononly" => Some(EngineMode::DetectionOnly),
            _ => None,
        }
    }
}

/// Engine-wide settings from `Sec*` directives.
#[derive(Debug, Clone)]
pub struct Config {
    pub engine: EngineMode,
    pub request_body_access: bool,
    pub response_body_access: bool,
    pub request_body_limit: usize,
    pub request_body_no_files_limit: usize,
    /// `SecRequestBodyLimitAction ProcessPartial`: inspect the first `limit` bytes instead of rejecting.
    pub request_body_partial: bool,
    pub response_body_limit: usize,
    pub response_body_partial: bool,
    pub response_mime_types: Vec<String>,
    pub argument_separator: u8,
    pub arguments_limit: usize,
    /// `SecRequestBodyJsonDepthLimit`: containers nested deeper are a body error (the JSON reader
    /// does not recurse, so any limit is safe).
    pub json_depth_limit: usize,
    /// `SecUnicodeMapFile`: how `urlDecodeUni` maps `%uHHHH` (otherwise: the low byte, and
    /// full-width ASCII to ASCII).
    pub unicode_map: Option<std::sync::Arc<transform::UnicodeMap>>,
    pub component_signatures: Vec<String>,
    /// Per phase: what `block` means (from `SecDefaultAction`) and its status.
    pub default_disruptive: [(rule::Disruptive, Option<u16>); 6],
}

impl Default for Config {
    fn default() -> Self {
        // ModSecurity's compiled-in defaults.
        Config {
            engine: EngineMode::Off,
            request_body_access: false,
            response_body_access: false,
            request_body_limit: 128 * 1024 * 1024,
            request_body_no_files_limit: 1024 * 1024,
            request_body_partial: false,
            response_body_limit: 512 * 1024,
            response_body_partial: true,
            response_mime_types: vec!["text/plain".into(), "text/html".into()],
            argument_separator: b'&',
            arguments_limit: 1000,
            json_depth_limit: 10_000,
            unicode_map: None,
            component_signatures: Vec::new(),
            default_disruptive: [(rule::Disruptive::Pass, None); 6],
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Rule(usize),
    Marker(String),
}

/// A compiled, immutable rule set. Cheap to share (`Arc<Ruleset>`); `Send + Sync`.
#[derive(Debug)]
pub struct Ruleset {
    pub(crate) config: Config,
    pub(crate) rules: Vec<Rule>,
    /// Per phase (index 1..=5): rule indices and markers in file order. Markers are in every phase,
    /// as in ModSecurity, so `skipAfter` finds them whatever the phase.
    pub(crate) phases: [Vec<Entry>; 6],
    /// Per phase, parallel to `phases`, what evaluation walks: the rule's index, or `MARKER`.
    /// Four bytes a step where an `Entry` takes 32: CRS's two phases of requests are about 700
    /// steps, read from a cold cache for every request (design note 23).
    pub(crate) steps: [Vec<u32>; 6],
    /// Per phase, parallel to `phases`: for a rule with `skipAfter`, the index evaluation resumes
    /// at when it matches (just past the marker or rule it names, or the end of the phase). CRS
    /// skips most of its rules below the paranoia level this way; a jump costs nothing per
    /// skipped rule.
    pub(crate) skip_resume: [Vec<usize>; 6],
    /// How many entries `Rule::image_slots` numbers.
    pub(crate) image_count: usize,
    /// Per rule (parallel to `rules`): what deciding that the rule cannot match needs, packed
    /// apart from the rule. A benign request skips hundreds of CRS rules whose targets lack the
    /// bytes their pattern needs; read from here, each costs a few bytes of one dense array
    /// instead of the scattered cache lines of a `Rule`, its targets and its pattern, which
    /// under load are cold for every request (design note 23).
    pub(crate) gates: Vec<SkipGate>,
    /// The image slots the gates name, each gate's in one run.
    pub(crate) gate_slots: Vec<u16>,
    /// The byte sets the gates need, each gate's in one run.
    pub(crate) gate_needs: Vec<operator::ByteSet>,
    /// Per rule (parallel to `rules`): the phrase slots and phrase ids of its phrase gate.
    /// Most CRS rules that a benign value's bytes do not rule out (a keyword pattern on a value
    /// with letters) need a word the value does not hold: one search of a variable's values
    /// for the words of all the rules that read it through the same transformations rules out
    /// all those rules together (design note 25).
    pub(crate) phrase_gates: Vec<PhraseGate>,
    /// Where each phrase slot looks for phrases.
    pub(crate) phrase_slots: Vec<PhraseSource>,
    /// By `phrase_group`: the automaton of the phrases the gates reading those variables need.
    pub(crate) phrase_automata: Vec<Option<PhraseAutomaton>>,
    /// The phrase slots the phrase gates name, each gate's in one run.
    pub(crate) phrase_gate_slots: Vec<u16>,
    /// The phrase ids each phrase gate needs one of, each gate's in one sorted run.
    pub(crate) phrase_gate_ids: Vec<u32>,
    /// The most TX variables a transaction of this rule set has held so far (counted up to
    /// `TX_SIZE_HINT_MAX`): later transactions size their TX map for as many at once, where
    /// growing it to CRS's ~120 rehashed every key five times a request.
    pub(crate) tx_size_hint: std::sync::atomic::AtomicUsize,
    /// The rule links that do not match a request header or cookie value, by the value, for
    /// later transactions (design note 26).
    pub(crate) memo: memo::ValueMemo,
}

/// Where a phrase slot looks for phrases: every value of `var` (by `value_bytes_slot`, so data
/// no rule changes within a phase), through `transforms`, every stage of them with `multi_match`.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
pub(crate) struct PhraseSource {
    pub var: variable::Var,
    pub transforms: Vec<Transform>,
    pub multi_match: bool,
}

/// The phrases of the gates that read a variable, found all at once in a value (overlapping,
/// ASCII case-insensitively); pattern i of `automaton` is phrase `ids[i]`. One automaton per
/// variable: a value is searched once for the phrases of every rule that reads it, whatever
/// their transformations (those that change the value add a search of what they make). CRS's
/// phrases all together make an automaton of about 1.8 MB, whose states a search reads from all
/// over memory; a variable's are fewer.
#[derive(Debug)]
pub(crate) struct PhraseAutomaton {
    pub automaton: aho_corasick::AhoCorasick,
    pub ids: Vec<u32>,
}

/// A step of `Ruleset::steps` that is a marker.
pub(crate) const MARKER: u32 = u32::MAX;

/// See `Ruleset::gates`: a rule whose every target has a byte image (`Rule::image_slots`) and
/// whose pattern has a byte bound (`Rule::skip_needs`) cannot match while no image holds a byte
/// of each needed set, the test `Transaction::target_may_match` makes target by target.
/// `slots_len == 0` means the rule has no gate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SkipGate {
    slots_start: u32,
    needs_start: u32,
    slots_len: u8,
    needs_len: u8,
}

impl SkipGate {
    fn of(rule: &Rule, slots: &mut Vec<u16>, needs: &mut Vec<operator::ByteSet>) -> SkipGate {
        let Some(rule_needs) = rule.skip_needs() else {
            return SkipGate::default();
        };
        // Exclusions only remove values; every other target must be one an image bounds.
        let mut own: Vec<u16> = Vec::new();
        for (t, &slot) in rule.targets.iter().zip(rule.image_slots.iter()) {
            if t.exclude {
                continue;
            }
            if slot == NO_IMAGE {
                return SkipGate::default();
            }
            own.push(slot);
        }
        if own.is_empty()
            || rule.image_slots.len() != rule.targets.len()
            || own.len() > usize::from(u8::MAX)
            || rule_needs.len() > usize::from(u8::MAX)
        {
            return SkipGate::default();
        }
        let (Ok(slots_start), Ok(needs_start)) = (u32::try_from(slots.len()), u32::try_from(needs.len()))
        else {
            return SkipGate::default();
        };
        let gate = SkipGate {
            slots_start,
            needs_start,
            slots_len: own.len() as u8,
            needs_len: rule_needs.len() as u8,
        };
        slots.extend(own);
        needs.extend_from_slice(rule_needs);
        gate
    }

    /// The gate's image slots and needed byte sets; `None` for a rule without a gate.
    pub(crate) fn parts<'a>(&self, rs: &'a Ruleset) -> Option<(&'a [u16], &'a [operator::ByteSet])> {
        if self.slots_len == 0 {
            return None;
        }
        let s = self.slots_start as usize;
        let n = self.needs_start as usize;
        Some((
            rs.gate_slots.get(s..s + usize::from(self.slots_len))?,
            rs.gate_needs.get(n..n + usize::from(self.needs_len))?,
        ))
    }
}

/// See `Ruleset::phrase_gates`: a rule all of whose targets read variables a phrase slot
/// covers, and whose operator has a phrase bound, cannot match while none of those slots found
/// one of its phrases. `slots_len == 0`: no phrase gate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PhraseGate {
    slots_start: u32,
    ids_start: u32,
    ids_len: u32,
    slots_len: u16,
}

impl PhraseGate {
    /// The gate's phrase slots and (sorted) phrase ids; `None` for a rule without one.
    pub(crate) fn parts<'a>(&self, rs: &'a Ruleset) -> Option<(&'a [u16], &'a [u32])> {
        if self.slots_len == 0 {
            return None;
        }
        let s = self.slots_start as usize;
        let i = self.ids_start as usize;
        Some((
            rs.phrase_gate_slots.get(s..s + usize::from(self.slots_len))?,
            rs.phrase_gate_ids.get(i..i + self.ids_len as usize)?,
        ))
    }
}

/// How many automata `Ruleset::phrase_automata` holds: one for the request's variables, one for
/// the response's.
pub(crate) const PHRASE_GROUPS: usize = 2;

/// The automaton of `Ruleset::phrase_automata` that serves `var`. One for all the request's
/// variables, not one each: their phrases are nearly the same (CRS's phrase lists read ARGS,
/// their names, cookies and XML alike), and five copies of a 600 KB automaton would take five
/// times the cache. A phrase of another variable's rules found in a value opens no gate that
/// does not need it.
pub(crate) fn phrase_group(var: variable::Var) -> usize {
    use variable::Var;
    match var {
        Var::ResponseBody | Var::ResponseHeaders | Var::ResponseHeadersNames => 1,
        _ => 0,
    }
}

/// Builds the phrase gates of `rules` and what they read.
struct PhraseGates {
    slots: HashMap<PhraseSource, u16>,
    ids: HashMap<Vec<u8>, u32>,
    phrases: Vec<Vec<u8>>,
    gate_slots: Vec<u16>,
    gate_ids: Vec<u32>,
}

impl PhraseGates {
    fn gate(&mut self, rule: &Rule) -> PhraseGate {
        let Some(bound) = rule.phrase_bound() else {
            return PhraseGate::default();
        };
        let mut own: Vec<u16> = Vec::new();
        for t in &rule.targets {
            if t.exclude {
                continue;
            }
            if t.count || transaction::value_bytes_slot(t.var).is_none() {
                return PhraseGate::default();
            }
            let key = PhraseSource {
                var: t.var,
                transforms: rule.actions.transforms.clone(),
                multi_match: rule.actions.multi_match,
            };
            let next = self.slots.len();
            let Ok(next) = u16::try_from(next) else {
                return PhraseGate::default();
            };
            let slot = *self.slots.entry(key).or_insert(next);
            if !own.contains(&slot) {
                own.push(slot);
            }
        }
        if own.is_empty() {
            return PhraseGate::default();
        }
        let mut ids: Vec<u32> = Vec::with_capacity(bound.len());
        for p in bound {
            let id = match self.ids.get(p) {
                Some(&id) => id,
                None => {
                    let Ok(id) = u32::try_from(self.phrases.len()) else {
                        return PhraseGate::default();
                    };
                    self.ids.insert(p.clone(), id);
                    self.phrases.push(p.clone());
                    id
                }
            };
            ids.push(id);
        }
        ids.sort_unstable();
        ids.dedup();
        let (Ok(slots_start), Ok(ids_start), Ok(ids_len), Ok(slots_len)) = (
            u32::try_from(self.gate_slots.len()),
            u32::try_from(self.gate_ids.len()),
            u32::try_from(ids.len()),
            u16::try_from(own.len()),
        ) else {
            return PhraseGate::default();
        };
        let gate = PhraseGate {
            slots_start,
            ids_start,
            ids_len,
            slots_len,
        };
        self.gate_slots.extend(own);
        self.gate_ids.extend(ids);
        gate
    }

    /// The phrase slots' sources, by slot, and the automaton of each variable's phrases (by
    /// `value_bytes_slot`). A variable whose automaton cannot be built has none, and the gates
    /// reading it stay open (`Transaction::phrase_gate_closed`).
    fn finish(&mut self, gates: &[PhraseGate]) -> (Vec<PhraseSource>, Vec<Option<PhraseAutomaton>>) {
        let mut sources: Vec<(u16, PhraseSource)> = self.slots.drain().map(|(k, i)| (i, k)).collect();
        sources.sort_unstable_by_key(|(i, _)| *i);
        let sources: Vec<PhraseSource> = sources.into_iter().map(|(_, k)| k).collect();
        let mut ids: Vec<Vec<u32>> = vec![Vec::new(); PHRASE_GROUPS];
        for g in gates.iter().filter(|g| g.slots_len > 0) {
            let s = g.slots_start as usize;
            let i = g.ids_start as usize;
            for &slot in &self.gate_slots[s..s + usize::from(g.slots_len)] {
                let group = phrase_group(sources[usize::from(slot)].var);
                if let Some(var_ids) = ids.get_mut(group) {
                    var_ids.extend_from_slice(&self.gate_ids[i..i + g.ids_len as usize]);
                }
            }
        }
        let automata = ids
            .into_iter()
            .map(|mut ids| {
                if ids.is_empty() {
                    return None;
                }
                ids.sort_unstable();
                ids.dedup();
                let automaton = aho_corasick::AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    // Overlapping, so that a phrase inside a longer one is reported too.
                    .match_kind(aho_corasick::MatchKind::Standard)
                    .build(ids.iter().map(|&id| &self.phrases[id as usize]))
                    .ok()?;
                Some(PhraseAutomaton { automaton, ids })
            })
            .collect();
        (sources, automata)
    }
}

impl Ruleset {
    pub(crate) fn new(config: Config, mut rules: Vec<Rule>, order: Vec<Entry>) -> Ruleset {
        // CRS reads the same few variables through a few dozen transformation chains (ARGS
        // through urlDecodeUni, through the XSS chain...): each (variable, chain) byte image is
        // then computed once per phase, not once per rule (see `Transaction::target_may_match`).
        let mut images: HashMap<(usize, Vec<Transform>), u16> = HashMap::new();
        let mut names: HashSet<Arc<str>> = HashSet::new();
        let mut intern = |s: &mut Arc<str>| match names.get(s) {
            Some(shared) => *s = Arc::clone(shared),
            None => {
                names.insert(Arc::clone(s));
            }
        };
        let mut memo_bits = 0u32;
        for rule in &mut rules {
            let mut link = Some(rule);
            while let Some(r) = link {
                if r.verdict_is_pure() && memo_bits < memo::NO_MEMO {
                    r.memo_bit = memo_bits;
                    memo_bits += 1;
                }
                for t in &mut r.targets {
                    if let variable::KeySel::Name(n) = &mut t.key {
                        intern(n);
                    }
                    if let Some(l) = &mut t.label {
                        intern(l);
                    }
                }
                r.image_slots = image_slots(r, &mut images);
                link = r.chained.as_deref_mut();
            }
        }
        let mut phases: [Vec<Entry>; 6] = Default::default();
        for e in order {
            match &e {
                Entry::Rule(i) => phases[rules[*i].phase as usize].push(e.clone()),
                Entry::Marker(_) => {
                    for p in phases.iter_mut().skip(1) {
                        p.push(e.clone());
                    }
                }
            }
        }
        let skip_resume = std::array::from_fn(|p| {
            let entries = &phases[p];
            entries
                .iter()
                .enumerate()
                .map(|(n, e)| {
                    let Entry::Rule(i) = e else { return 0 };
                    let Some(target) = &rules[*i].actions.skip_after else {
                        return 0;
                    };
                    // skipAfter may name a marker or a rule id.
                    let id: Option<u64> = target.parse().ok();
                    entries[n + 1..]
                        .iter()
                        .position(|x| match x {
                            Entry::Marker(m) => m == target,
                            Entry::Rule(j) => id == Some(rules[*j].id),
                        })
                        .map_or(entries.len(), |k| n + 1 + k + 1)
                })
                .collect()
        });
        let (mut gate_slots, mut gate_needs) = (Vec::new(), Vec::new());
        let gates = rules
            .iter()
            .map(|r| SkipGate::of(r, &mut gate_slots, &mut gate_needs))
            .collect();
        let mut pg = PhraseGates {
            slots: HashMap::new(),
            ids: HashMap::new(),
            phrases: Vec::new(),
            gate_slots: Vec::new(),
            gate_ids: Vec::new(),
        };
        let phrase_gates: Vec<PhraseGate> = rules.iter().map(|r| pg.gate(r)).collect();
        let (phrase_slots, phrase_automata) = pg.finish(&phrase_gates);
        let steps = std::array::from_fn(|p| {
            phases[p]
                .iter()
                .map(|e| match e {
                    // Four billion rules would not fit in memory (a rule takes 448 bytes).
                    Entry::Rule(i) => u32::try_from(*i).unwrap_or(MARKER),
                    Entry::Marker(_) => MARKER,
                })
                .collect()
        });
        Ruleset {
            tx_size_hint: std::sync::atomic::AtomicUsize::new(0),
            config,
            rules,
            phases,
            steps,
            skip_resume,
            // Indices stop below `NO_IMAGE`, which must never name an entry.
            image_count: images.len().min(usize::from(NO_IMAGE)),
            gates,
            gate_slots,
            gate_needs,
            phrase_gates,
            phrase_slots,
            phrase_automata,
            phrase_gate_slots: pg.gate_slots,
            phrase_gate_ids: pg.gate_ids,
            memo: memo::ValueMemo::new(memo_bits as usize),
        }
    }

    /// Compiles configuration text that has no `Include` or data files.
    pub fn parse(text: &str) -> Result<Ruleset> {
        let mut b = RulesetBuilder::new();
        b.add("<inline>", text, &mut NoFiles)?;
        b.build()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Rules that take part in evaluation (after `SecRuleRemove*`), chain starters only.
    pub fn rule_count(&self) -> usize {
        self.phases
            .iter()
            .flatten()
            .filter(|e| matches!(e, Entry::Rule(_)))
            .count()
    }

    /// Chained rules (excluding starters) among the active rules.
    pub fn chained_rule_count(&self) -> usize {
        self.active_rules()
            .map(|r| {
                let mut n = 0;
                let mut c = r.chained.as_deref();
                while let Some(x) = c {
                    n += 1;
                    c = x.chained.as_deref();
                }
                n
            })
            .sum()
    }

    pub fn marker_count(&self) -> usize {
        self.phases[1]
            .iter()
            .filter(|e| matches!(e, Entry::Marker(_)))
            .count()
    }

    /// Ids of the active rules, in evaluation order within each phase.
    pub fn rule_ids(&self) -> Vec<u64> {
        self.active_rules().map(|r| r.id).collect()
    }

    fn active_rules(&self) -> impl Iterator<Item = &Rule> {
        self.phases.iter().flatten().filter_map(|e| match e {
            Entry::Rule(i) => Some(&self.rules[*i]),
            Entry::Marker(_) => None,
        })
    }

    pub fn transaction(&self) -> Transaction<'_> {
        Transaction::new(self)
    }
}

/// `Rule::image_slots` of `r`, numbering new (variable, transformations) pairs in `images`. Only
/// targets `Transaction::target_may_match` can skip have one; with multiMatch every stage is
/// checked, so those rules walk their transformations each time.
fn image_slots(r: &Rule, images: &mut HashMap<(usize, Vec<Transform>), u16>) -> Box<[u16]> {
    if r.skip_needs().is_none() || r.actions.multi_match {
        return Box::default();
    }
    r.targets
        .iter()
        .map(|t| match transaction::value_bytes_slot(t.var) {
            Some(slot) if !t.exclude && !t.count => {
                let next = u16::try_from(images.len()).unwrap_or(NO_IMAGE);
                *images.entry((slot, r.actions.transforms.clone())).or_insert(next)
            }
            _ => NO_IMAGE,
        })
        .collect()
}

/// FNV-1a, 64 bits: a cheap hash where only spreading matters (rate-limit shards, tag bits), not
/// resistance to chosen inputs.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
