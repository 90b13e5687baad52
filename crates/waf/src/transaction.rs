//! One HTTP exchange through a `Ruleset`: the adapter feeds request and response data, phases 1-5
//! run in order, and the result is an optional intervention plus the matched rules. Evaluation is
//! bounded by a time budget and by limits on body sizes and argument counts.

use crate::body::{self, Pairs};
use crate::memo::{self, MemoEntry, NO_MEMO};
use crate::operator::{self, ByteSet};
use crate::rule::{Ctl, Disruptive, Effect, Macro, MacroPart, NO_IMAGE, Rule, SetVarOp, in_ranges, tag_bit};
use crate::transform::{self, ByteClasses};
use crate::variable::{KeySel, Target, Var};
use crate::{EngineMode, MARKER, PhraseAutomaton, PhraseSource, Ruleset, WafError};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{HashMap, hash_map};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What the adapter must do with the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    pub status: u16,
    pub disruption: Disruptive,
    /// For `redirect`.
    pub url: Option<String>,
    pub rule_id: u64,
    pub phase: u8,
}

/// A rule (chain) that matched, with its metadata and macros expanded at match time. The rule's
/// own texts (tags, version, file...) are borrowed from the rule set: a benign request records
/// dozens of `nolog` matches, and cloning shared `Arc`s for each of them made every worker thread
/// write reference counts the others read (cache lines bouncing between cores).
#[derive(Debug, Clone)]
pub struct MatchedRule<'r> {
    pub id: u64,
    pub phase: u8,
    pub msg: String,
    pub data: String,
    pub severity: Option<u8>,
    pub matched_var_name: String,
    pub matched_var: Vec<u8>,
    /// The part of the value the operator matched (regex match, phrase, fingerprint).
    pub matched_data: Vec<u8>,
    /// False for `nolog` rules: they matched (and ran their actions) but are not reported, and
    /// their `msg`, `data` and matched fields are left empty.
    pub log: bool,
    /// The status code when this match interrupted the transaction (engine On, deny/drop/redirect).
    pub interrupted: Option<u16>,
    /// The chain's first rule, which carries the metadata.
    starter: &'r Rule,
    /// The chain link whose operator matched last (the one the log line names).
    link: &'r Rule,
}

impl<'r> MatchedRule<'r> {
    pub fn tags(&self) -> &'r [String] {
        &self.starter.actions.tags
    }
    pub fn ver(&self) -> Option<&'r str> {
        self.starter.actions.ver.as_deref()
    }
    pub fn rev(&self) -> Option<&'r str> {
        self.starter.actions.rev.as_deref()
    }
    pub fn maturity(&self) -> Option<&'r str> {
        self.starter.actions.maturity.as_deref()
    }
    pub fn accuracy(&self) -> Option<&'r str> {
        self.starter.actions.accuracy.as_deref()
    }
    /// The operator's name (`rx`, `pm`...).
    pub fn operator(&self) -> &'r str {
        &self.link.operator.text.name
    }
    pub fn operator_arg(&self) -> &'r str {
        &self.link.operator.text.arg
    }
    pub fn file(&self) -> &'r str {
        &self.starter.file
    }
    pub fn line(&self) -> usize {
        self.starter.line
    }
}

#[derive(Debug, Default, Clone)]
struct Request {
    method: Vec<u8>,
    uri: Vec<u8>,
    protocol: Vec<u8>,
    headers: Pairs,
    args_get: Pairs,
    args_post: Pairs,
    cookies: Pairs,
    body: Vec<u8>,
    body_truncated: bool,
    files: Vec<(Vec<u8>, Vec<u8>, usize)>,
    part_headers: Pairs,
    xml: Option<body::XmlDoc>,
}

#[derive(Debug, Default, Clone)]
struct Response {
    status: u16,
    protocol: Vec<u8>,
    headers: Pairs,
    body: Vec<u8>,
}

/// Default evaluation budget per transaction; the adapter may change it.
const DEFAULT_BUDGET: Duration = Duration::from_secs(2);
const MAX_HEADERS: usize = 1024;
/// Largest value `setvar` stores in a collection.
const MAX_VAR_VALUE: usize = 1 << 20;
/// Largest number of keys in one collection (TX, IP, ...).
const MAX_VAR_KEYS: usize = 10_000;
/// The largest TX map a transaction sizes up front (`Ruleset::tx_size_hint`): a request that
/// makes thousands of variables does not make every later one allocate for as many.
const TX_SIZE_HINT_MAX: usize = 512;

pub struct Transaction<'r> {
    rs: &'r Ruleset,
    engine: EngineMode,
    request_body_access: bool,
    response_body_access: bool,
    force_body_variable: bool,
    body_processor: Option<String>,
    remote_addr: String,
    remote_port: u16,
    server_addr: String,
    server_port: u16,
    server_name: String,
    /// Generated on first use: an adapter usually sets its own (the proxy's request id), and
    /// then the clock read and formatting are not wasted on every transaction. This and the
    /// other lazy fields are `OnceCell`s, not `OnceLock`s: a transaction belongs to one request
    /// and may move between threads but is never shared, so the lock's synchronisation on
    /// every read bought nothing.
    unique_id: OnceCell<String>,
    req: Request,
    resp: Response,
    /// Variables derived from the request line (see `LINE_VARS`), computed on first use: dozens
    /// of rules read each of them.
    line_vars: [OnceCell<Vec<u8>>; LINE_VARS.len()],
    /// Every byte each request and response variable (by `value_bytes_slot`) holds in any of its
    /// values, computed on first use in a phase and forgotten at the start of the next one (see
    /// `target_may_match`).
    value_bytes: [OnceCell<ByteSet>; VALUE_BYTES_SLOTS],
    /// Byte images by `Rule::image_slots` (see `target_may_match`), each with the `image_epoch`
    /// it was computed in: valid exactly as long as `value_bytes`, and forgotten with it by
    /// moving to the next epoch rather than by clearing the table.
    images: Vec<(u32, ByteSet)>,
    image_epoch: u32,
    /// By `value_bytes_slot`: the epoch it was computed in (`phrase_epoch`), the range of
    /// `phrases_found` that lists the phrase ids the variable's values hold as they are, and the
    /// classes of the values' bytes together (`ByteClasses`), which show for most transformation
    /// chains that they change no value other than in case.
    var_phrases: [(u32, u32, u32, ByteClasses); VALUE_BYTES_SLOTS],
    /// By phrase slot (`Ruleset::phrase_slots`), as `var_phrases`: the phrases the values hold
    /// after the slot's transformations, of the values these change other than in case.
    phrase_hits: Vec<(u32, u32, u32)>,
    /// The epoch of what the request line and headers hold (see `phrase_epoch`): moved on
    /// only when they change, so that their phrases, found in phase 1, serve phase 2 as well.
    head_epoch: u32,
    /// The phrase ids `var_phrases` and `phrase_hits` list, in runs.
    phrases_found: Vec<u32>,
    /// Scratch for `phrase_hits_of`: one bit per phrase, all clear between calls.
    phrases_seen: Vec<u64>,
    /// (address, length, entry): the memo entries of the stored request header and cookie
    /// names and values (`memo_entry`).
    memo_values: Vec<(usize, usize, Arc<MemoEntry>)>,
    /// The same for the argument names (`remember_arg_names`).
    memo_args: Vec<(usize, usize, Arc<MemoEntry>)>,
    /// Per remembered variable (by `memo_all_slot`), the rule links known not to match any of
    /// its values (`memo_skips`), computed when first needed and forgotten when the values
    /// change (a header added, arguments parsed). Bits are only ever added to an entry, so what
    /// was known stays true.
    memo_all: [Option<Box<[u64]>>; MEMO_ALL_SLOTS],
    /// TX, IP, GLOBAL, SESSION, USER, RESOURCE, ENV (by `Var::store_index`): keys lower-cased
    /// (collections are case-insensitive). An array, not a map keyed by `Var`: looked up for
    /// nearly every rule.
    collections: [Collection<'r>; 7],
    /// Scalar variables set by body processing (REQBODY_ERROR, MULTIPART_*...).
    flags: HashMap<Var, Vec<u8>>,
    /// MATCHED_VAR_NAME / MATCHED_VAR left by an earlier rule; the current rule's matches are
    /// in `matched_vars` (see `last_match`), so a match is stored once, not copied per list.
    matched_var: (Cow<'r, str>, MatchValue),
    /// What the operator matched in the last matching value (for the log `data`).
    matched_data: MatchValue,
    /// MATCHED_VARS: the values the current rule (chain) matched, in order.
    matched_vars: Vec<(Cow<'r, str>, MatchValue)>,
    removed_ids: Vec<(u64, u64)>,
    /// `ctl:ruleRemoveByTag` tags with their `tag_bit`.
    removed_tags: Vec<(String, u64)>,
    removed_targets: Vec<(RemoveSel, Target)>,
    current_rule: Option<&'r Rule>,
    matched: Vec<MatchedRule<'r>>,
    intervention: Option<Intervention>,
    /// Phases up to and including this one are skipped after `allow` (4: plain `allow`, which
    /// skips everything but logging; 2: `allow:request`).
    allowed_through: u8,
    phase_done: u8,
    started: Instant,
    /// Rule evaluation time so far: the budget counts engine time, not time spent waiting for a
    /// slow client between phases.
    eval_spent: Duration,
    phase_started: Instant,
    budget: Duration,
    timed_out: bool,
}

/// Keys and values written by `setvar` from literal text (most of CRS's) are borrowed from the
/// rule set rather than copied for every request. A hash map: a benign CRS request looks up
/// about 200 named keys (paranoia-level gates, scores, `%{tx.*}` macros) and scans by key
/// pattern twice, so lookups are what must be cheap (in a sorted map each was a dozen string
/// comparisons); scans put what they select in key order (`scan_in_key_order`). Seeded per map:
/// keys such as `header_name_920450_<name>` come from the client.
type Collection<'r> = HashMap<Cow<'r, str>, Cow<'r, [u8]>, foldhash::fast::RandomState>;
/// The variables kept in `Transaction::line_vars`, in that order.
const LINE_VARS: [Var; 5] = [
    Var::RequestUri,
    Var::RequestFilename,
    Var::RequestBasename,
    Var::RequestLine,
    Var::QueryString,
];
/// How many variables `memo_all_slot` numbers: the request's headers and cookies first, then
/// from `MEMO_ALL_ARGS` on its argument names.
const MEMO_ALL_SLOTS: usize = 7;
const MEMO_ALL_ARGS: usize = 4;

/// The slot in `Transaction::memo_all` of a variable whose values the memo remembers
/// (`memo::remembers`).
fn memo_all_slot(var: Var) -> Option<usize> {
    let slot = match var {
        Var::RequestHeaders => 0,
        Var::RequestHeadersNames => 1,
        Var::RequestCookies => 2,
        Var::RequestCookiesNames => 3,
        Var::ArgsNames => 4,
        Var::ArgsGetNames => 5,
        Var::ArgsPostNames => 6,
        _ => return None,
    };
    debug_assert!(memo::remembers(var));
    Some(slot)
}

/// How many variables `value_bytes_slot` numbers.
pub(crate) const VALUE_BYTES_SLOTS: usize = 26;

/// The slot in `Transaction::value_bytes` of a variable whose values are the request's or the
/// response's own data, which no rule can change within a phase (rules write TX and the other
/// stored collections, MATCHED_VAR(S), never these). `None` for everything else, which is never
/// skipped.
pub(crate) fn value_bytes_slot(var: Var) -> Option<usize> {
    Some(match var {
        Var::Args => 0,
        Var::ArgsGet => 1,
        Var::ArgsPost => 2,
        Var::ArgsNames => 3,
        Var::ArgsGetNames => 4,
        Var::ArgsPostNames => 5,
        Var::RequestHeaders => 6,
        Var::RequestHeadersNames => 7,
        Var::RequestCookies => 8,
        Var::RequestCookiesNames => 9,
        Var::RequestUri => 10,
        Var::RequestUriRaw => 11,
        Var::RequestFilename => 12,
        Var::RequestBasename => 13,
        Var::RequestLine => 14,
        Var::RequestMethod => 15,
        Var::RequestProtocol => 16,
        Var::QueryString => 17,
        Var::RequestBody => 18,
        Var::ResponseBody => 19,
        Var::ResponseHeaders => 20,
        Var::ResponseHeadersNames => 21,
        Var::Files => 22,
        Var::FilesNames => 23,
        Var::MultipartPartHeaders => 24,
        // The request body's XML document: parsed before phase 2 runs, never changed by rules.
        Var::Xml => 25,
        _ => return None,
    })
}

/// Whether `bytes` holds a byte of each of `needs`: without, a pattern that needs them cannot
/// match (`Rule::skip_needs`).
fn holds_a_byte_of_each(bytes: &ByteSet, needs: &[ByteSet]) -> bool {
    needs.iter().all(|n| n.intersects(bytes))
}

/// How long `Transaction::phrases_found` may grow before `forget_value_bytes` empties it.
const MAX_PHRASES_FOUND: usize = 1 << 16;

/// `Var::store_index` of TX and ENV.
const TX: usize = 0;
const ENV: usize = 6;

/// A value that matched, copied out of the transaction so actions can then mutate it.
struct Hit<'r> {
    label: Cow<'r, str>,
    value: MatchValue,
    data: MatchValue,
    captures: Vec<Vec<u8>>,
}

/// A matched value (MATCHED_VAR, MATCHED_VARS, the operator's data), kept inline when short: a
/// benign CRS request records about a hundred matches of setup and paranoia-level rules, nearly
/// all on values of a few bytes (`1`, `5`, a header name), and each was an allocation.
type MatchValue = SmallVec<[u8; 24]>;

fn match_value(v: Cow<'_, [u8]>) -> MatchValue {
    match v {
        Cow::Borrowed(b) => MatchValue::from_slice(b),
        // Already on the heap: kept there (or moved inline when short) rather than copied.
        Cow::Owned(o) => MatchValue::from_vec(o),
    }
}

/// A stored collection's key and its value.
type KeyAndValue<'a> = (&'a str, &'a [u8]);

/// What `Transaction::lookup_check` decided.
enum LookupCheck<'r> {
    Fails,
    Holds(Hit<'r>),
    /// Not a rule it decides.
    General,
}

#[derive(Debug, Clone)]
enum RemoveSel {
    Ids(Vec<(u64, u64)>),
    /// A tag and its `tag_bit`.
    Tag(String, u64),
}

/// MATCHED_VAR_NAME of a value: `VAR:key` for a collection, `VAR` for a scalar. `fixed` is the
/// target's `Target::label`, when known at load, or a count's collection name.
fn var_label<'r>(var: Var, key: &[u8], fixed: Option<&'r str>) -> Cow<'r, str> {
    if !var.is_collection() {
        return Cow::Borrowed(var.name());
    }
    if let Some(label) = fixed {
        return Cow::Borrowed(label);
    }
    let key = String::from_utf8_lossy(key);
    let mut s = String::with_capacity(var.name().len() + 1 + key.len());
    s.push_str(var.name());
    s.push(':');
    s.push_str(&key);
    Cow::Owned(s)
}

/// A collection key from expanded bytes, lower-cased in place: one allocation (the expansion's),
/// where copying to a `String` and then to its lower case made three (CRS 920450 names a TX
/// variable after each request header).
fn lower_key(b: Vec<u8>) -> String {
    let mut s = String::from_utf8(b).unwrap_or_else(|e| lossy(e.as_bytes()));
    s.make_ascii_lowercase();
    s
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn unique_id() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:06x}", t, N.fetch_add(1, Ordering::Relaxed) & 0xffffff)
}

impl<'r> Transaction<'r> {
    pub fn new(rs: &'r Ruleset) -> Transaction<'r> {
        let c = &rs.config;
        Transaction {
            rs,
            engine: c.engine,
            request_body_access: c.request_body_access,
            response_body_access: c.response_body_access,
            force_body_variable: false,
            body_processor: None,
            remote_addr: String::new(),
            remote_port: 0,
            server_addr: String::new(),
            server_port: 0,
            server_name: String::new(),
            unique_id: OnceCell::new(),
            req: Request::default(),
            resp: Response::default(),
            line_vars: Default::default(),
            value_bytes: Default::default(),
            images: vec![(0, ByteSet::EMPTY); rs.image_count],
            image_epoch: 1,
            var_phrases: [(0, 0, 0, ByteClasses::NONE); VALUE_BYTES_SLOTS],
            phrase_hits: Vec::new(),
            head_epoch: 1,
            phrases_found: Vec::new(),
            phrases_seen: Vec::new(),
            memo_values: Vec::new(),
            memo_args: Vec::new(),
            memo_all: Default::default(),
            collections: {
                let mut c: [Collection<'r>; 7] = Default::default();
                c[TX].reserve(rs.tx_size_hint.load(Ordering::Relaxed));
                c
            },
            flags: HashMap::new(),
            matched_var: Default::default(),
            matched_data: MatchValue::new(),
            matched_vars: Vec::new(),
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            current_rule: None,
            // CRS's setup and paranoia-level rules match on every request: about 90 times at
            // paranoia level 1 (v4.28), which grew the list four times, copying it each time.
            matched: Vec::with_capacity(128),
            intervention: None,
            allowed_through: 0,
            phase_done: 0,
            started: Instant::now(),
            eval_spent: Duration::ZERO,
            phase_started: Instant::now(),
            budget: DEFAULT_BUDGET,
            timed_out: false,
        }
    }

    /// Bounds the rule evaluation time of this transaction; when exceeded, evaluation stops and
    /// [`Transaction::timed_out`] is true.
    pub fn set_time_budget(&mut self, d: Duration) {
        self.budget = d;
    }
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }
    pub fn set_unique_id(&mut self, id: &str) {
        self.unique_id = OnceCell::from(id.to_string());
    }
    pub fn unique_id(&self) -> &str {
        self.unique_id.get_or_init(unique_id)
    }
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.collections[ENV].insert(
            Cow::Owned(key.to_ascii_lowercase()),
            Cow::Owned(value.as_bytes().to_vec()),
        );
    }

    fn collection(&self, var: Var) -> Option<&Collection<'r>> {
        var.store_index().map(|i| &self.collections[i])
    }

    /// `None` for variables that are not stored collections (`setvar:ARGS.x` has nowhere to go).
    fn collection_mut(&mut self, var: Var) -> Option<&mut Collection<'r>> {
        var.store_index().map(|i| &mut self.collections[i])
    }

    pub fn set_connection(
        &mut self,
        client_addr: &str,
        client_port: u16,
        server_addr: &str,
        server_port: u16,
    ) {
        self.remote_addr = client_addr.to_string();
        self.remote_port = client_port;
        self.server_addr = server_addr.to_string();
        self.server_port = server_port;
    }

    pub fn set_request_line(&mut self, method: &[u8], uri: &[u8], protocol: &[u8]) {
        self.req.method = method.to_vec();
        self.req.uri = uri.to_vec();
        self.req.protocol = protocol.to_vec();
        self.line_vars = Default::default();
        self.head_epoch += 1;
        if let Some(q) = memchr::memchr(b'?', uri) {
            self.req.args_get = body::parse_urlencoded(&uri[q + 1..], self.rs.config.argument_separator);
            self.remember_arg_names();
        }
    }

    pub fn add_request_header(&mut self, name: &[u8], value: &[u8]) {
        if self.req.headers.len() >= MAX_HEADERS {
            return;
        }
        self.head_epoch += 1;
        let cookies_before = self.req.cookies.len();
        if name.eq_ignore_ascii_case(b"cookie") {
            let room = body::MAX_ARGS.saturating_sub(self.req.cookies.len());
            self.req
                .cookies
                .extend(body::parse_cookies(value).into_iter().take(room));
        }
        if name.eq_ignore_ascii_case(b"host") && self.server_name.is_empty() {
            let v = lossy(value);
            self.server_name = v
                .rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(v.clone(), |(h, _)| h.to_string());
        }
        if self.req.headers.is_empty() {
            // A browser sends 8-15 headers: one allocation, not four growths.
            self.req.headers.reserve(16);
        }
        self.req.headers.push((name.to_vec(), value.to_vec()));
        self.memo_all[..MEMO_ALL_ARGS].fill(None);
        if self.rs.memo.enabled() {
            self.remember_values(cookies_before);
        }
    }

    /// Takes the memo entries (design note 26) of the header just added, its name, and the
    /// cookies it brought from `cookies_from` on.
    fn remember_values(&mut self, cookies_from: usize) {
        let Some((name, value)) = self.req.headers.last() else {
            return;
        };
        let cookies = self.req.cookies.get(cookies_from..).unwrap_or_default();
        let values: SmallVec<[&[u8]; 8]> = [name.as_slice(), value.as_slice()]
            .into_iter()
            .chain(cookies.iter().flat_map(|(k, v)| [k.as_slice(), v.as_slice()]))
            .collect();
        let entries = self.rs.memo.entries(values.iter().copied());
        if self.memo_values.is_empty() {
            // A name and a value per header, and the cookies: one allocation for a browser's.
            self.memo_values.reserve(32);
        }
        for (v, e) in values.iter().zip(entries) {
            if let Some(e) = e {
                self.memo_values.push((v.as_ptr() as usize, v.len(), e));
            }
        }
    }

    /// Takes the memo entries of the argument names (query string and body), replacing those
    /// of the names before: called whenever `args_get` or `args_post` is replaced, so that no
    /// entry names storage that was freed.
    fn remember_arg_names(&mut self) {
        self.memo_args.clear();
        self.memo_all[MEMO_ALL_ARGS..].fill(None);
        if !self.rs.memo.enabled() {
            return;
        }
        let names: Vec<&[u8]> = (self.req.args_get.iter().chain(&self.req.args_post))
            .map(|(k, _)| k.as_slice())
            .collect();
        let entries = self.rs.memo.entries(names.iter().copied());
        self.memo_args.reserve(names.len());
        for (v, e) in names.iter().zip(entries) {
            if let Some(e) = e {
                self.memo_args.push((v.as_ptr() as usize, v.len(), e));
            }
        }
    }

    /// The memo entry of `value` if it is one of the stored header, cookie or argument names
    /// or header or cookie values (the same bytes at the same address: header and cookie
    /// storage only grows during a transaction, and argument names' entries are replaced with
    /// their storage, so an entry's bytes never change under it).
    fn memo_entry(&self, value: &[u8]) -> Option<&MemoEntry> {
        let at = value.as_ptr() as usize;
        self.memo_values
            .iter()
            .chain(&self.memo_args)
            .find(|(p, len, _)| *p == at && *len == value.len())
            .map(|(_, _, e)| &**e)
    }

    fn request_header(&self, name: &[u8]) -> Option<&[u8]> {
        self.req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Phase 1.
    pub fn process_request_headers(&mut self) -> Option<&Intervention> {
        self.run_through(1);
        self.intervention.as_ref()
    }

    /// Appends a chunk of the request body. Beyond `SecRequestBodyLimit` the body is truncated
    /// (ProcessPartial) or the call fails with `WafError::Limit` (Reject).
    pub fn append_request_body(&mut self, chunk: &[u8]) -> crate::Result<()> {
        if self.phase_done >= 2 {
            return Err(WafError::State("request body after phase 2"));
        }
        let (limit, what) = self.request_body_limit();
        let c = &self.rs.config;
        let room = limit.saturating_sub(self.req.body.len());
        if chunk.len() > room {
            self.req.body.extend_from_slice(&chunk[..room]);
            self.req.body_truncated = true;
            self.flags.insert(Var::InboundDataError, b"1".to_vec());
            // As ModSecurity, Reject acts as ProcessPartial unless the engine blocks.
            if !c.request_body_partial && self.engine == EngineMode::On {
                if self.intervention.is_none() {
                    self.intervention = Some(Intervention {
                        status: 413,
                        disruption: Disruptive::Deny,
                        url: None,
                        rule_id: 0,
                        phase: 2,
                    });
                }
                return Err(WafError::Limit { what, limit });
            }
            return Ok(());
        }
        self.req.body.extend_from_slice(chunk);
        Ok(())
    }

    /// Whether the engine looks at the request body at all (read after phase 1, where `ctl:` may
    /// change it). When it does not, an adapter can stream the body to the upstream unbuffered.
    pub fn inspects_request_body(&self) -> bool {
        self.engine != EngineMode::Off && self.request_body_access
    }

    /// The request body bytes the engine keeps for this request (`SecRequestBodyLimit`, or the
    /// smaller no-files limit unless the body is multipart); an adapter need not buffer more.
    pub fn request_body_inspection_limit(&self) -> usize {
        self.request_body_limit().0
    }

    /// Bodies without files (anything but multipart) have the smaller NoFiles limit.
    fn request_body_limit(&self) -> (usize, &'static str) {
        let c = &self.rs.config;
        let multipart = self
            .request_header(b"content-type")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with(b"multipart/form-data"));
        if multipart {
            (c.request_body_limit, "request body")
        } else {
            (
                c.request_body_limit.min(c.request_body_no_files_limit),
                "request body (no files)",
            )
        }
    }

    /// After the response headers: whether the engine inspects the response body (access on and
    /// the MIME type listed). When it does not, an adapter can stream the response unbuffered.
    pub fn inspects_response_body(&self) -> bool {
        self.engine != EngineMode::Off && self.response_body_kept()
    }

    /// `SecResponseBodyLimit`, and whether the rest passes uninspected past it (ProcessPartial).
    pub fn response_body_inspection_limit(&self) -> (usize, bool) {
        (
            self.rs.config.response_body_limit,
            self.rs.config.response_body_partial,
        )
    }

    /// Phase 2 (runs phase 1 first if needed): processes the buffered body and evaluates rules.
    pub fn process_request_body(&mut self) -> Option<&Intervention> {
        self.run_through(2);
        self.intervention.as_ref()
    }

    pub fn set_response_status(&mut self, status: u16, protocol: &[u8]) {
        self.resp.status = status;
        self.resp.protocol = protocol.to_vec();
    }

    pub fn add_response_header(&mut self, name: &[u8], value: &[u8]) {
        if self.resp.headers.len() < MAX_HEADERS {
            self.resp.headers.push((name.to_vec(), value.to_vec()));
        }
    }

    /// Phase 3.
    pub fn process_response_headers(&mut self) -> Option<&Intervention> {
        self.run_through(3);
        self.intervention.as_ref()
    }

    /// Appends response body; only kept when response body access is on and the MIME type is one
    /// of `SecResponseBodyMimeType`, up to `SecResponseBodyLimit`.
    pub fn append_response_body(&mut self, chunk: &[u8]) -> crate::Result<()> {
        let limit = self.rs.config.response_body_limit;
        let room = limit.saturating_sub(self.resp.body.len());
        if chunk.len() > room {
            self.resp.body.extend_from_slice(&chunk[..room]);
            self.flags.insert(Var::OutboundDataError, b"1".to_vec());
            if !self.rs.config.response_body_partial {
                return Err(WafError::Limit {
                    what: "response body",
                    limit,
                });
            }
            return Ok(());
        }
        self.resp.body.extend_from_slice(chunk);
        Ok(())
    }

    /// Phase 4.
    pub fn process_response_body(&mut self) -> Option<&Intervention> {
        self.run_through(4);
        self.intervention.as_ref()
    }

    /// Phase 5 (always runs, even after an intervention).
    pub fn process_logging(&mut self) {
        self.run_through(5);
    }

    pub fn intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref()
    }

    /// All rules that matched, including `nolog` ones (see `MatchedRule::log`).
    pub fn matched_rules(&self) -> &[MatchedRule<'r>] {
        &self.matched
    }

    /// Collection values (e.g. `tx`, `anomaly_score`) for tests and adapters.
    pub fn collection_value(&self, collection: &str, key: &str) -> Option<String> {
        let var = Var::from_name(collection)?;
        self.collection(var)?
            .get(key.to_ascii_lowercase().as_str())
            .map(|v| lossy(v))
    }

    pub fn request_uri(&self) -> String {
        lossy(&self.req.uri)
    }
    pub fn server_name(&self) -> &str {
        &self.server_name
    }
    pub fn client_addr(&self) -> &str {
        &self.remote_addr
    }

    fn run_through(&mut self, phase: u8) {
        while self.phase_done < phase {
            let p = self.phase_done + 1;
            if p == 1 {
                self.detect_body_processor();
            }
            if p == 2 {
                self.process_body();
            }
            if p == 4 && !self.response_body_kept() {
                self.resp.body.clear();
            }
            let skip = (self.intervention.is_some() && p < 5) || p <= self.allowed_through;
            if !skip {
                // The adapter may have added data since the last phase, and this one's body
                // processing (phase 2) or response body check (phase 4) has just changed it.
                self.forget_value_bytes();
                self.phase_started = Instant::now();
                self.run_phase(p);
                self.eval_spent += self.phase_started.elapsed();
            }
            self.phase_done = p;
        }
        // Written only while the high-water mark rises: a few times per rule set, so that the
        // workers sharing it do not keep passing its cache line between them.
        let held = self.collections[TX].len().min(TX_SIZE_HINT_MAX);
        if held > self.rs.tx_size_hint.load(Ordering::Relaxed) {
            self.rs.tx_size_hint.fetch_max(held, Ordering::Relaxed);
        }
    }

    /// Forgets `value_bytes` and the byte images derived from them.
    fn forget_value_bytes(&mut self) {
        self.value_bytes = Default::default();
        self.image_epoch += 1;
        // Phrases found in the request line and headers stay valid (`phrase_epoch`); the list
        // is emptied only if a rule set that forgets often has let it grow.
        if self.phrases_found.len() > MAX_PHRASES_FOUND {
            self.phrases_found.clear();
            self.head_epoch += 1;
        }
    }

    /// The epoch phrases found in `var`'s values are valid in: the request line's and headers'
    /// variables change only when the adapter adds to them, the others (the body's, the
    /// response's, and ARGS, which holds the body's arguments) may change from one phase to
    /// the next.
    fn phrase_epoch(&self, var: Var) -> u32 {
        match var {
            Var::ArgsGet
            | Var::ArgsGetNames
            | Var::RequestHeaders
            | Var::RequestHeadersNames
            | Var::RequestCookies
            | Var::RequestCookiesNames
            | Var::RequestUri
            | Var::RequestUriRaw
            | Var::RequestFilename
            | Var::RequestBasename
            | Var::RequestLine
            | Var::RequestMethod
            | Var::RequestProtocol
            | Var::QueryString => self.head_epoch,
            _ => self.image_epoch,
        }
    }

    fn response_body_kept(&self) -> bool {
        if !self.response_body_access {
            return false;
        }
        let ct = self
            .resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(b"content-type"))
            .map(|(_, v)| v.to_ascii_lowercase());
        let mime = ct
            .as_deref()
            .map(|c| body::trim(c.split(|&x| x == b';').next().unwrap_or(b"")).to_vec())
            .unwrap_or_default();
        self.rs
            .config
            .response_mime_types
            .iter()
            .any(|m| m.as_bytes() == mime.as_slice())
    }

    /// ModSecurity picks the processor from Content-Type before phase 1 (so REQBODY_PROCESSOR is
    /// visible there); `ctl:requestBodyProcessor` may override it in phase 1.
    fn detect_body_processor(&mut self) {
        let lct = self
            .request_header(b"content-type")
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default();
        if lct.starts_with(b"application/x-www-form-urlencoded") {
            self.body_processor = Some("URLENCODED".into());
        } else if lct.starts_with(b"multipart/form-data") {
            self.body_processor = Some("MULTIPART".into());
        }
    }

    fn process_body(&mut self) {
        if !self.request_body_access {
            self.req.body.clear();
            return;
        }
        let ct = self
            .request_header(b"content-type")
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let mut error: Option<String> = None;
        match self.body_processor.as_deref() {
            Some("URLENCODED") => {
                self.req.args_post =
                    body::parse_urlencoded(&self.req.body, self.rs.config.argument_separator);
            }
            Some("JSON") if !self.req.body.is_empty() => {
                match body::parse_json(&self.req.body, self.rs.config.json_depth_limit) {
                    Ok(a) => self.req.args_post = a,
                    Err(e) => error = Some(e),
                }
            }
            Some("XML") if !self.req.body.is_empty() => match body::parse_xml(&self.req.body) {
                Ok(d) => self.req.xml = Some(d),
                Err(e) => error = Some(e),
            },
            Some("MULTIPART") => {
                // On an empty body ModSecurity only checks the boundary in Content-Type.
                let mp = if self.req.body.is_empty() {
                    body::check_multipart_content_type(&ct)
                } else {
                    body::parse_multipart(&self.req.body, &ct)
                };
                let f = |b: bool| if b { b"1".to_vec() } else { b"0".to_vec() };
                let set = [
                    (Var::MultipartStrictError, mp.strict_error()),
                    (Var::MultipartUnmatchedBoundary, mp.unmatched_boundary),
                    (Var::MultipartBoundaryQuoted, mp.boundary_quoted),
                    (Var::MultipartBoundaryWhitespace, mp.boundary_whitespace),
                    (Var::MultipartDataBefore, mp.data_before),
                    (Var::MultipartDataAfter, mp.data_after),
                    (Var::MultipartHeaderFolding, mp.header_folding),
                    (Var::MultipartLfLine, mp.lf_line),
                    (Var::MultipartCrlfLfLines, mp.lf_line && mp.crlf_line),
                    (Var::MultipartMissingSemicolon, mp.missing_semicolon),
                    (Var::MultipartInvalidQuoting, mp.invalid_quoting),
                    (Var::MultipartInvalidPart, mp.invalid_part),
                    (Var::MultipartInvalidHeaderFolding, mp.invalid_header_folding),
                    (Var::MultipartFileLimitExceeded, mp.file_limit_exceeded),
                ];
                for (v, b) in set {
                    self.flags.insert(v, f(b));
                }
                if let Some(e) = &mp.error {
                    error = Some(e.clone());
                }
                self.req.args_post = mp.args;
                self.req.files = mp.files;
                self.req.part_headers = mp.part_headers;
            }
            _ => {}
        }
        // SecArgumentsLimit: more arguments than allowed is a body error (ModSecurity 2.9.5+),
        // so that a flood of parameters cannot hide an attack past the limit.
        let limit = self.rs.config.arguments_limit;
        if self.req.args_get.len() + self.req.args_post.len() > limit && error.is_none() {
            error = Some(format!("more than {limit} arguments"));
        }
        self.flags.insert(
            Var::ReqbodyError,
            if error.is_some() {
                b"1".to_vec()
            } else {
                b"0".to_vec()
            },
        );
        if let Some(e) = error {
            self.flags.insert(Var::ReqbodyErrorMsg, e.clone().into_bytes());
            self.flags.insert(Var::ReqbodyProcessorError, b"1".to_vec());
        }
        self.remember_arg_names();
    }

    fn out_of_time(&mut self) -> bool {
        if self.eval_spent + self.phase_started.elapsed() > self.budget {
            self.timed_out = true;
        }
        self.timed_out
    }

    /// MATCHED_VAR_NAME and MATCHED_VAR: the current rule's last match, else an earlier rule's.
    fn last_match(&self) -> &(Cow<'r, str>, MatchValue) {
        self.matched_vars.last().unwrap_or(&self.matched_var)
    }

    fn rule_removed(&self, rule: &Rule) -> bool {
        if self.removed_ids.is_empty() && self.removed_tags.is_empty() {
            return false;
        }
        in_ranges(&self.removed_ids, rule.id)
            || self
                .removed_tags
                .iter()
                .any(|(tag, bit)| rule.actions.has_tag(tag, *bit))
    }

    fn run_phase(&mut self, phase: u8) {
        if self.engine == EngineMode::Off {
            return;
        }
        let rs = self.rs;
        let steps = &rs.steps[phase as usize];
        let skip_resume = &rs.skip_resume[phase as usize];
        let mut skip_n = 0u32;
        let mut evaluated = 0u32;
        let mut next = 0;
        while let Some(&step) = steps.get(next) {
            let n = next;
            next += 1;
            if step == MARKER {
                continue;
            }
            let idx = step as usize;
            if skip_n > 0 {
                skip_n -= 1;
                continue;
            }
            // MATCHED_VAR outlives the rule that set it; MATCHED_VARS does not.
            if let Some(last) = self.matched_vars.pop() {
                self.matched_var = last;
            }
            self.matched_vars.clear();
            // Decided without reading the rule: a rule that cannot match has no effect.
            if self.gate_closed(idx) || self.phrase_gate_closed(idx) {
                continue;
            }
            let rule = &rs.rules[idx];
            if self.rule_removed(rule) {
                continue;
            }
            // The clock is read before the phase's first rule and then every 16 rules evaluated:
            // a rule is far below the budget, and rules passed over by their gates (most of
            // them) cost next to nothing. A `clock_gettime` per 8 steps was 1% of the proxy.
            if evaluated.is_multiple_of(16) && self.out_of_time() {
                return;
            }
            evaluated += 1;
            if !self.eval_chain(rule, rule) {
                continue;
            }
            // `ctl:ruleEngine=Off` stops evaluation at once, not only from the next phase.
            if self.engine == EngineMode::Off {
                return;
            }
            if rule.actions.skip_after.is_some() {
                next = skip_resume[n];
            }
            skip_n = rule.actions.skip;
            let mut d = rule.actions.disruptive.unwrap_or(Disruptive::Pass);
            let mut status = rule.actions.status;
            if d == Disruptive::Block {
                let (dd, ds) = rs.config.default_disruptive[phase as usize];
                d = if dd == Disruptive::Block {
                    Disruptive::Deny
                } else {
                    dd
                };
                status = status.or(ds);
            }
            match d {
                Disruptive::Pass | Disruptive::Block => {}
                Disruptive::Allow | Disruptive::AllowRequest | Disruptive::AllowPhase => {
                    if self.engine == EngineMode::On {
                        // `allow:phase` ends only this phase.
                        self.allowed_through = match d {
                            Disruptive::Allow => 4,
                            Disruptive::AllowRequest => 2,
                            _ => self.allowed_through,
                        };
                        return;
                    }
                }
                Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect => {
                    if self.engine == EngineMode::On && phase < 5 {
                        let url = rule.actions.redirect.as_ref().map(|m| lossy(&self.expand(m)));
                        let status = status.unwrap_or(if d == Disruptive::Redirect { 302 } else { 403 });
                        if let Some(m) = self.matched.last_mut() {
                            m.interrupted = Some(status);
                        }
                        self.intervention = Some(Intervention {
                            status,
                            disruption: d,
                            url,
                            rule_id: rule.id,
                            phase,
                        });
                        return;
                    }
                }
            }
        }
    }

    /// The general path of `eval_rule`: each value of each target through the rule's
    /// transformations and operator, the hits appended to `hits`.
    fn inspect_values(
        &mut self,
        starter: &Rule,
        rule: &'r Rule,
        keep_data: bool,
        hits: &mut SmallVec<[Hit<'r>; 2]>,
    ) {
        let negated = rule.operator.negated;
        let capture = rule.actions.capture && !negated;
        // Computed first: it memoizes byte images, and values are then inspected while the
        // transaction is only borrowed.
        let skip = if rule.targets.is_empty() {
            0
        } else {
            self.unreachable_targets(rule) | self.memo_skips(rule)
        };
        {
            let this = &*self;
            let exp = |m: &'r Macro| this.expand(m);
            // Each value is inspected as its target yields it: nothing is gathered first (a
            // JSON request's rules see a dozen or more values each).
            let mut inspect = |var: Var, key: &[u8], value: &[u8], fixed_label: Option<&'r str>| {
                // A header or cookie value or an argument name this link did not match before
                // (design note 26).
                let memo = if rule.memo_bit != NO_MEMO && memo::remembers(var) {
                    this.memo_entry(value)
                } else {
                    None
                };
                if memo.is_some_and(|e| e.known_no_match(rule.memo_bit)) {
                    return;
                }
                let hits_before = hits.len();
                // Without multiMatch only the final value is inspected (no list to allocate).
                let mut stages: Vec<Cow<'_, [u8]>> = Vec::new();
                let mut cur: Cow<'_, [u8]> = Cow::Borrowed(value);
                if rule.actions.multi_match {
                    stages.push(cur.clone());
                }
                // The value's bytes are classified once for the whole chain, again only after a
                // transformation changed it.
                let mut classes = None;
                for t in &rule.actions.transforms {
                    let c = *classes.get_or_insert_with(|| ByteClasses::of(&cur));
                    if let Some(next) =
                        t.apply_if_changed_classes(&cur, c, this.rs.config.unicode_map.as_deref())
                    {
                        if rule.actions.multi_match && next.as_slice() != cur.as_ref() {
                            stages.push(Cow::Owned(next.clone()));
                        }
                        cur = Cow::Owned(next);
                        classes = None;
                    }
                }
                let single = if rule.actions.multi_match { None } else { Some(cur) };
                for v in single.into_iter().chain(stages) {
                    let res = operator::eval(&rule.operator.kind, &v, capture, &exp);
                    let hit = match (res, negated) {
                        (Some(m), false) if keep_data => {
                            Some((MatchValue::from_slice(m.data.bytes(&v)), m.captures))
                        }
                        (Some(m), false) => Some((MatchValue::new(), m.captures)),
                        (None, true) if keep_data => Some((MatchValue::from_slice(&v), Vec::new())),
                        (None, true) => Some((MatchValue::new(), Vec::new())),
                        _ => None,
                    };
                    if let Some((data, captures)) = hit {
                        let label = if rule.targets.is_empty() {
                            Cow::Borrowed("")
                        } else {
                            var_label(var, key, fixed_label)
                        };
                        hits.push(Hit {
                            label,
                            value: match_value(v),
                            data,
                            captures,
                        });
                        // One match per value is enough (multiMatch stages of the same value too).
                        break;
                    }
                }
                if let Some(e) = memo
                    && hits.len() == hits_before
                {
                    e.set_no_match(rule.memo_bit);
                }
            };
            if rule.targets.is_empty() {
                inspect(Var::Tx, b"", b"", None);
            } else if skip == 0
                && let Some((t, found)) = this.named_key_target(rule)
            {
                // One named key of a stored collection, CRS's paranoia-level and score checks
                // (about 180 a request): looked up directly, as `for_each_target_value` would,
                // without its general machinery.
                if t.count {
                    let n: &[u8] = if found.is_some() { b"1" } else { b"0" };
                    inspect(t.var, b"", n, Some(t.var.name()));
                } else if let Some((k, v)) = found {
                    inspect(t.var, k.as_bytes(), v, t.label.as_deref());
                }
            } else {
                this.for_each_target_value(starter, rule, skip, &mut inspect);
            }
        }
    }

    /// Whether a `ctl:ruleRemoveTarget*` of this transaction names a target of `var` (for some
    /// rules): CRS's 941010 removes REQUEST_FILENAME from its XSS rules on nearly every
    /// request, which must not send every TX lookup down the general path.
    fn removes_targets_of(&self, var: Var) -> bool {
        self.removed_targets.iter().any(|(_, t)| t.var == var)
    }

    /// When `rule`'s only target is one named key of a stored collection (no exclusion, not
    /// removed by a `ctl`): that target and the key and value it names, if present. Names are
    /// lower-cased when parsed, so this finds what `for_each_target_value` would. Both direct
    /// paths (`lookup_check` and the one in `inspect_values`) start here.
    fn named_key_target(&self, rule: &'r Rule) -> Option<(&'r Target, Option<KeyAndValue<'_>>)> {
        let [t] = rule.targets.as_slice() else {
            return None;
        };
        let KeySel::Name(name) = &t.key else {
            return None;
        };
        if t.exclude || self.removes_targets_of(t.var) {
            return None;
        }
        let c = self.collection(t.var)?;
        let found = c.get_key_value(&**name).map(|(k, v)| {
            let v: &[u8] = v;
            (k.as_ref(), v)
        });
        Some((t, found))
    }

    /// `rule` decided without the general path (`inspect_values`) when it compares one named
    /// key of a stored collection, or its count (`&TX:x`), with a number: CRS's paranoia-level
    /// and score checks and its setup's defaults, about 180 a request, each of which cost some
    /// 600 instructions there and costs a few dozen here. Decided as the general path would: no
    /// transformation, the one value compared, no match without a value (a count always has
    /// one), and the same hit.
    fn lookup_check(&self, rule: &'r Rule, keep_data: bool) -> LookupCheck<'r> {
        let operator::Operator {
            kind: operator::OpKind::NumConst(cmp, operand),
            negated,
            ..
        } = &rule.operator
        else {
            return LookupCheck::General;
        };
        if !rule.actions.transforms.is_empty() || rule.actions.multi_match {
            return LookupCheck::General;
        }
        let Some((t, found)) = self.named_key_target(rule) else {
            return LookupCheck::General;
        };
        let (k, v, label): (&[u8], &[u8], _) = if t.count {
            // `&TX:x`: how many values the one key selects (CRS's setup rules, "set unless
            // configured", about 30 a request), named after the collection alone.
            let n: &[u8] = if found.is_some() { b"1" } else { b"0" };
            (b"", n, Some(t.var.name()))
        } else {
            let Some((k, v)) = found else {
                return LookupCheck::Fails;
            };
            (k.as_bytes(), v, t.label.as_deref())
        };
        if cmp.holds(operator::to_num(v), *operand) == *negated {
            return LookupCheck::Fails;
        }
        // A match or a negated miss holds the whole value as its data (`MatchData::Value`).
        LookupCheck::Holds(Hit {
            label: var_label(t.var, k, label),
            value: MatchValue::from_slice(v),
            data: if keep_data {
                MatchValue::from_slice(v)
            } else {
                MatchValue::new()
            },
            captures: Vec::new(),
        })
    }

    /// Evaluates `rule` and, if it matches, the rest of its chain. Records the match on the
    /// starter when the whole chain matched.
    fn eval_chain(&mut self, starter: &'r Rule, rule: &'r Rule) -> bool {
        self.current_rule = Some(starter);
        if !self.eval_rule(starter, rule) {
            return false;
        }
        if let Some(next) = &rule.chained {
            return self.eval_chain(starter, next);
        }
        // The whole chain matched: log on behalf of the starter.
        let a = &starter.actions;
        let log = a.log.unwrap_or(true);
        // A `nolog` match is recorded but never reported: nothing is expanded or copied for it
        // (CRS's setup and paranoia-level rules are most of the matches of a benign request).
        let (msg, data, matched_var_name, matched_var, matched_data) = if log {
            let expand = |m: &Option<Macro>| m.as_ref().map(|m| lossy(&self.expand(m))).unwrap_or_default();
            let (name, value) = self.last_match();
            (
                expand(&a.msg),
                expand(&a.logdata),
                name.to_string(),
                value.to_vec(),
                // Read only here; the next match overwrites it.
                std::mem::take(&mut self.matched_data).into_vec(),
            )
        } else {
            Default::default()
        };
        self.matched.push(MatchedRule {
            id: starter.id,
            phase: starter.phase,
            msg,
            data,
            severity: a.severity,
            matched_var_name,
            matched_var,
            matched_data,
            log,
            interrupted: None,
            starter,
            link: rule,
        });
        true
    }

    /// One link of a chain: targets, transformations, operator, and per-match actions (as
    /// ModSecurity 2 runs non-disruptive actions for each matching value). Values are borrowed
    /// from the transaction while the operator runs; only matches are copied.
    fn eval_rule(&mut self, starter: &Rule, rule: &'r Rule) -> bool {
        let negated = rule.operator.negated;
        let capture = rule.actions.capture && !negated;
        // What the operator matched is read only for a logged match (`MatchedRule::matched_data`),
        // and whether the chain logs is its starter's.
        let keep_data = starter.actions.log.unwrap_or(true);
        let mut hits: SmallVec<[Hit<'r>; 2]> = SmallVec::new();
        match self.lookup_check(rule, keep_data) {
            LookupCheck::Fails => return false,
            LookupCheck::Holds(hit) => hits.push(hit),
            LookupCheck::General => self.inspect_values(starter, rule, keep_data, &mut hits),
        }
        if hits.is_empty() {
            return false;
        }
        for h in hits {
            if capture {
                let tx = &mut self.collections[TX];
                for (i, c) in h.captures.into_iter().enumerate() {
                    let key = CAPTURE_KEYS.get(i).copied().unwrap_or_default();
                    set_value(tx, Cow::Borrowed(key), Cow::Owned(c));
                }
            }
            self.matched_data = h.data;
            self.matched_vars.push((h.label, h.value));
            self.run_effects(rule);
        }
        true
    }

    fn run_effects(&mut self, rule: &'r Rule) {
        for e in &rule.actions.effects {
            match e {
                Effect::SetVar(sv) => {
                    // Literal names (nearly all) were lower-cased at load: no copy to look them up.
                    let key: Cow<'r, str> = match sv.name.as_literal() {
                        Some(k) => Cow::Borrowed(k),
                        None => Cow::Owned(lower_key(self.expand(&sv.name).into_owned())),
                    };
                    match &sv.op {
                        SetVarOp::Delete => {
                            if let Some(coll) = self.collection_mut(sv.collection) {
                                coll.remove(key.as_ref());
                            }
                        }
                        SetVarOp::Set(m) => {
                            let v: Cow<'r, [u8]> = match m.as_literal() {
                                Some(l) if l.len() <= MAX_VAR_VALUE => Cow::Borrowed(l.as_bytes()),
                                _ => {
                                    let mut v = self.expand(m).into_owned();
                                    // A rule like `setvar:tx.a=%{tx.a}%{tx.a}` must not grow
                                    // without bound.
                                    v.truncate(MAX_VAR_VALUE);
                                    Cow::Owned(v)
                                }
                            };
                            if let Some(coll) = self.collection_mut(sv.collection)
                                && (coll.len() < MAX_VAR_KEYS || coll.contains_key(key.as_ref()))
                            {
                                set_value(coll, key, v);
                            }
                        }
                        SetVarOp::Add(m) | SetVarOp::Sub(m) => {
                            // Both sides read as ModSecurity's `atoi` reads them.
                            let delta = operator::to_num(&self.expand(m));
                            let add = matches!(sv.op, SetVarOp::Add(_));
                            let Some(coll) = self.collection_mut(sv.collection) else {
                                continue;
                            };
                            // One search for reading and writing the score (the entry keeps the
                            // key already there, as `set_value` does).
                            let slot = coll.entry(key).or_insert(Cow::Borrowed(&b""[..]));
                            let old = operator::to_num(slot);
                            let new = if add {
                                old.saturating_add(delta)
                            } else {
                                old.saturating_sub(delta)
                            };
                            // A score written by arithmetic before keeps its buffer.
                            let mut text = itoa::Buffer::new();
                            let digits = text.format(new).as_bytes();
                            match slot {
                                Cow::Owned(buf) => {
                                    buf.clear();
                                    buf.extend_from_slice(digits);
                                }
                                Cow::Borrowed(_) => *slot = Cow::Owned(digits.to_vec()),
                            }
                        }
                    }
                }
                Effect::SetEnv(k, m) => {
                    let v = self.expand(m).into_owned();
                    self.collections[ENV].insert(Cow::Owned(k.to_ascii_lowercase()), Cow::Owned(v));
                }
                Effect::ExpireVar => {}
                Effect::Ctl(c) => self.apply_ctl(c),
            }
        }
    }

    fn apply_ctl(&mut self, c: &Ctl) {
        if matches!(
            c,
            Ctl::RequestBodyProcessor(_)
                | Ctl::RequestBodyAccess(_)
                | Ctl::ForceRequestBodyVariable(_)
                | Ctl::ResponseBodyAccess(_)
        ) {
            // Which body REQUEST_BODY shows depends on these.
            self.forget_value_bytes();
        }
        match c {
            Ctl::RuleRemoveById(r) => self.removed_ids.extend(r.iter().copied()),
            Ctl::RuleRemoveByTag(t) => self.removed_tags.push((t.clone(), tag_bit(t))),
            Ctl::RuleRemoveTargetById(ids, ts) => {
                for t in ts {
                    self.removed_targets
                        .push((RemoveSel::Ids(ids.clone()), t.clone()));
                }
            }
            Ctl::RuleRemoveTargetByTag(tag, ts) => {
                for t in ts {
                    self.removed_targets
                        .push((RemoveSel::Tag(tag.clone(), tag_bit(tag)), t.clone()));
                }
            }
            Ctl::RuleEngine(m) => self.engine = *m,
            Ctl::RequestBodyProcessor(p) => self.body_processor = Some(p.clone()),
            Ctl::RequestBodyAccess(b) => self.request_body_access = *b,
            Ctl::ForceRequestBodyVariable(b) => self.force_body_variable = *b,
            Ctl::ResponseBodyAccess(b) => self.response_body_access = *b,
            Ctl::Ignored => {}
        }
    }

    /// Passes each value of the rule's targets, minus its `!` exclusions and
    /// `ctl:ruleRemoveTarget*`, to `inspect` as (variable, key, value, the target's fixed
    /// `Target::label`), in target order; `&VAR` yields the count.
    /// `skip` (from `unreachable_targets`) lists the targets that cannot match by their bytes.
    fn for_each_target_value(
        &self,
        starter: &Rule,
        rule: &'r Rule,
        skip: u64,
        inspect: &mut impl FnMut(Var, &[u8], &[u8], Option<&'r str>),
    ) {
        // Exclusions are few (CRS writes one or two per rule): kept on the stack.
        let mut excl: SmallVec<[&Target; 4]> = SmallVec::new();
        if rule.targets.iter().any(|t| t.exclude) {
            excl.extend(rule.targets.iter().filter(|t| t.exclude));
        }
        for (sel, t) in &self.removed_targets {
            let applies = match sel {
                RemoveSel::Ids(r) => in_ranges(r, starter.id),
                RemoveSel::Tag(tag, bit) => starter.actions.has_tag(tag, *bit),
            };
            if applies {
                excl.push(t);
            }
        }
        let excluded = |var: Var, k: &[u8]| {
            excl.iter()
                .any(|x| x.var == var && (matches!(x.key, KeySel::All) || x.key.matches(k)))
        };
        // Values go straight into one list (no per-target list to copy from); many rules find
        // none at all (no files, no cookies...), and then nothing is allocated.
        for (i, t) in rule.targets.iter().enumerate() {
            if t.exclude || (i < 64 && skip & (1 << i) != 0) {
                continue;
            }
            if t.count {
                let mut n = 0usize;
                self.resolve(t.var, &t.key, |k, _| {
                    if !excluded(t.var, &k) {
                        n += 1;
                    }
                });
                // ModSecurity 2 names a count after the collection alone (`&TX:x` and `&ARGS`
                // match as `TX` and `ARGS`: its counted variable keeps the target's name).
                inspect(
                    t.var,
                    b"",
                    itoa::Buffer::new().format(n).as_bytes(),
                    Some(t.var.name()),
                );
            } else {
                let label = t.label.as_deref();
                self.resolve(t.var, &t.key, |k, v| {
                    if excl.is_empty() || !excluded(t.var, &k) {
                        inspect(t.var, &k, &v, label);
                    }
                });
            }
        }
    }

    /// The targets of `rule` (bit i for `targets[i]`, the first 64) whose every value this link
    /// is known not to match (design note 26): a browser's cookies and header names, an API's
    /// argument names. Skipping the target is what finding each value's entry and its bit
    /// would decide, without walking the values: CRS's attack rules read the cookies, their
    /// names and the argument names on every request.
    fn memo_skips(&mut self, rule: &Rule) -> u64 {
        if rule.memo_bit == NO_MEMO {
            return 0;
        }
        let (word, bit) = (rule.memo_bit as usize / 64, 1u64 << (rule.memo_bit % 64));
        let mut skip = 0;
        for (i, t) in rule.targets.iter().enumerate().take(64) {
            let Some(slot) = memo_all_slot(t.var) else {
                continue;
            };
            // A key selector (`REQUEST_HEADERS:User-Agent`) reads some values only, and the
            // others rarely carry the link's bit.
            if t.exclude || t.count || !matches!(t.key, KeySel::All) {
                continue;
            }
            if self.memo_all[slot].is_none() {
                self.memo_all[slot] = Some(self.known_no_match_for_all(t.var));
            }
            if self.memo_all[slot]
                .as_ref()
                .and_then(|w| w.get(word))
                .is_some_and(|w| w & bit != 0)
            {
                skip |= 1 << i;
            }
        }
        skip
    }

    /// The links known not to match any value of `var` (a remembered variable): the words of
    /// its values' entries ANDed. Empty (nothing known) when a value has no entry (too long to
    /// remember) or there is no value.
    fn known_no_match_for_all(&self, var: Var) -> Box<[u64]> {
        let mut acc: Option<Vec<u64>> = None;
        let mut unknown = false;
        self.each_value_of(var, |v| {
            if unknown {
                return;
            }
            match self.memo_entry(v) {
                Some(e) => e.and_no_match_into(acc.get_or_insert_with(|| vec![u64::MAX; e.words()])),
                None => unknown = true,
            }
        });
        match acc {
            Some(words) if !unknown => words.into_boxed_slice(),
            _ => Box::default(),
        }
    }

    /// The targets of `rule` (bit i for `targets[i]`, the first 64) that cannot match: a
    /// non-negated `@rx` with a byte bound cannot match a target none of whose values,
    /// transformed, holds the bytes it needs, and such a target is neither resolved nor
    /// transformed. Computed before `for_each_target_value`, which only borrows the transaction,
    /// because the byte images are memoized here.
    fn unreachable_targets(&mut self, rule: &Rule) -> u64 {
        let Some(needs) = rule.skip_needs() else {
            return 0;
        };
        let mut skip = 0;
        for (i, t) in rule.targets.iter().enumerate().take(64) {
            let image = rule.image_slots.get(i).copied().unwrap_or(NO_IMAGE);
            if !t.exclude && !t.count && !self.target_may_match(t.var, image, rule, needs) {
                skip |= 1 << i;
            }
        }
        skip
    }

    /// True when the gate of rule `idx` (`Ruleset::gates`) shows that it cannot match: the byte
    /// images of all its targets are known in this phase and none holds a byte of each set its
    /// pattern needs, the test `target_may_match` makes. False when unsure, and the rule is then
    /// evaluated (the first rule to read a variable through some transformations computes the
    /// image for the others).
    fn gate_closed(&self, idx: usize) -> bool {
        let Some((slots, needs)) = self.rs.gates.get(idx).and_then(|g| g.parts(self.rs)) else {
            return false;
        };
        slots
            .iter()
            .all(|&slot| match self.images.get(usize::from(slot)) {
                Some(&(epoch, bytes)) if epoch == self.image_epoch => !holds_a_byte_of_each(&bytes, needs),
                _ => false,
            })
    }

    /// True when the phrase gate of rule `idx` (`Ruleset::phrase_gates`) shows that it cannot
    /// match: no value of any of its targets' variables, through its transformations, holds one
    /// of the phrases every match of its operator holds. Sound for the same reasons as
    /// `target_may_match`: all values of a variable (whatever key) include the selected ones.
    fn phrase_gate_closed(&mut self, idx: usize) -> bool {
        let rs = self.rs;
        let Some((slots, ids)) = rs.phrase_gates.get(idx).and_then(|g| g.parts(rs)) else {
            return false;
        };
        for &slot in slots {
            // A slot without an automaton knows nothing: the rule is evaluated.
            let Some(ranges) = self.phrase_hits_of(slot) else {
                return false;
            };
            for (start, len) in ranges {
                let found = &self.phrases_found[start..start + len];
                if found.iter().any(|id| ids.binary_search(id).is_ok()) {
                    return false;
                }
            }
        }
        true
    }

    /// The ranges of `phrases_found` that together list the phrases (by id) the values of phrase
    /// slot `slot` can hold after its transformations: those the values hold as they are (a
    /// value the transformations change only in case holds the same, as phrases are compared
    /// ASCII case-insensitively) and those of the values the transformations change otherwise.
    /// A superset when a transformation removes a phrase, which only opens the gate. Computed
    /// on first use in a phase; `None` for a slot without an automaton.
    fn phrase_hits_of(&mut self, slot: u16) -> Option<[(usize, usize); 2]> {
        let rs = self.rs;
        let src = rs.phrase_slots.get(usize::from(slot))?;
        let var = value_bytes_slot(src.var)?;
        let automaton = rs.phrase_automata.get(crate::phrase_group(src.var))?.as_ref()?;
        let epoch = self.phrase_epoch(src.var);
        let (e, start, len, classes) = self.var_phrases[var];
        let (as_they_are, classes) = if e == epoch {
            ((start, len), classes)
        } else {
            let (r, classes) = self.find_phrases(src, automaton, None);
            self.var_phrases[var] = (epoch, r.0, r.1, classes);
            (r, classes)
        };
        if self.phrase_hits.is_empty() {
            self.phrase_hits = vec![(0, 0, 0); rs.phrase_slots.len()];
        }
        let (e, start, len) = *self.phrase_hits.get(usize::from(slot))?;
        let transformed = if e == epoch {
            (start, len)
        } else {
            // Most chains change no value of most variables (no `%` to decode, no space to
            // remove...): the bytes' classes show it without a pass over the values.
            let r = if transform::chain_changes_only_case_by_classes(&src.transforms, classes) {
                (0, 0)
            } else {
                self.find_phrases(src, automaton, Some(slot)).0
            };
            self.phrase_hits[usize::from(slot)] = (epoch, r.0, r.1);
            r
        };
        let range = |(start, len): (u32, u32)| (start as usize, len as usize);
        Some([range(as_they_are), range(transformed)])
    }

    /// Appends to `phrases_found` the ids of the phrases `automaton` finds in the values of
    /// `src.var`: as they are, or (`transformed`: the phrase slot `src` is) through `src`'s
    /// transformations (every stage with multiMatch), for the values these change other than in
    /// case. Returns the range and the classes of the bytes of all the values
    /// (`ByteClasses::NONE` when `transformed`). The search of a header or cookie value or an
    /// argument name is remembered in its memo entry and read from there by later transactions
    /// (design note 26).
    fn find_phrases(
        &mut self,
        src: &PhraseSource,
        automaton: &PhraseAutomaton,
        transformed: Option<u16>,
    ) -> ((u32, u32), ByteClasses) {
        let ac = &automaton.automaton;
        if self.phrases_seen.len() < ac.patterns_len().div_ceil(64) {
            self.phrases_seen = vec![0; ac.patterns_len().div_ceil(64)];
        }
        let mut seen = std::mem::take(&mut self.phrases_seen);
        let mut found = std::mem::take(&mut self.phrases_found);
        if found.capacity() == 0 {
            // A benign request's values hold some dozens of phrases over all variables.
            found.reserve(64);
        }
        let start = found.len();
        let mut all_classes = ByteClasses::NONE;
        let mut touched: SmallVec<[usize; 8]> = SmallVec::new();
        {
            let this = &*self;
            let umap = this.rs.config.unicode_map.as_deref();
            // Header and cookie values and argument names remember what was found in them
            // (design note 26).
            let remember = memo::remembers(src.var);
            let key = transformed.map_or(memo::AS_IT_IS, u32::from);
            let mut note = |i: u32| {
                let i = i as usize;
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                if let Some(w) = seen.get_mut(word)
                    && *w & bit == 0
                    && let Some(&id) = automaton.ids.get(i)
                {
                    if *w == 0 {
                        touched.push(word);
                    }
                    *w |= bit;
                    found.push(id);
                }
            };
            let value = |v: &[u8]| {
                let entry = if remember { this.memo_entry(v) } else { None };
                if let Some(classes) = entry.and_then(|e| e.phrases(key, &mut note)) {
                    all_classes = all_classes.union(classes);
                    return;
                }
                let mut hits: SmallVec<[u32; 16]> = SmallVec::new();
                let mut scan = |bytes: &[u8]| {
                    hits.extend(ac.find_overlapping_iter(bytes).map(|m| m.pattern().as_u32()));
                };
                let of_value = ByteClasses::of(v);
                if transformed.is_none() {
                    scan(v);
                } else if !transform::chain_changes_only_case(&src.transforms, v, of_value) {
                    let mut classes = Some(of_value);
                    let mut cur: Cow<'_, [u8]> = Cow::Borrowed(v);
                    for t in &src.transforms {
                        let c = *classes.get_or_insert_with(|| ByteClasses::of(&cur));
                        if let Some(next) = t.apply_if_changed_classes(&cur, c, umap) {
                            cur = Cow::Owned(next);
                            classes = None;
                            if src.multi_match {
                                scan(&cur);
                            }
                        }
                    }
                    // With multiMatch the value as it is was searched with the other values,
                    // and every changed stage just now.
                    if !src.multi_match {
                        scan(&cur);
                    }
                }
                hits.sort_unstable();
                hits.dedup();
                all_classes = all_classes.union(of_value);
                hits.iter().for_each(|&i| note(i));
                if let Some(e) = entry {
                    e.remember_phrases(key, of_value, &hits);
                }
            };
            this.each_value_of(src.var, value);
        }
        // The words with a bit set, cleared whole (most searches find a few phrases of
        // thousands).
        for word in touched {
            if let Some(w) = seen.get_mut(word) {
                *w = 0;
            }
        }
        let range = (start as u32, (found.len() - start) as u32);
        self.phrases_seen = seen;
        self.phrases_found = found;
        // Only the values as they are have their classes reported.
        (
            range,
            if transformed.is_none() {
                all_classes
            } else {
                ByteClasses::NONE
            },
        )
    }

    /// False when no value of `var`, through `rule`'s transformations, can hold a byte of each
    /// of `needs` (the sets every match of its pattern holds a byte of), so that the rule cannot
    /// match it. Sound because the bytes of all values (whatever key) bound those of any selected
    /// value, each transformation's `byte_image` bounds what it can produce, and exclusions only
    /// remove values. Without multiMatch only the last stage is inspected; with it, every stage.
    /// The last stage's image is kept in `images[image]` for the other rules that read `var`
    /// through the same transformations.
    fn target_may_match(&mut self, var: Var, image: u16, rule: &Rule, needs: &[ByteSet]) -> bool {
        let holds_needs = |b: &ByteSet| holds_a_byte_of_each(b, needs);
        if let Some(&(epoch, bytes)) = self.images.get(usize::from(image))
            && epoch == self.image_epoch
        {
            return holds_needs(&bytes);
        }
        let Some(slot) = value_bytes_slot(var) else {
            return true;
        };
        let mut bytes = *self.value_bytes[slot].get_or_init(|| {
            let mut all = ByteSet::EMPTY;
            self.each_value_of(var, |v| all.extend(v));
            all
        });
        let multi = rule.actions.multi_match;
        if multi && holds_needs(&bytes) {
            return true;
        }
        for t in &rule.actions.transforms {
            bytes = t.byte_image(bytes);
            if multi && holds_needs(&bytes) {
                return true;
            }
        }
        if let Some(entry) = self.images.get_mut(usize::from(image)) {
            *entry = (self.image_epoch, bytes);
        }
        holds_needs(&bytes)
    }

    /// Passes every value of `var`, whatever key, to `f`: what any target of `var` selects is
    /// among them. `XML:` yields the text with any XPath but one naming attributes, which yields
    /// the attribute values: both are passed.
    fn each_value_of(&self, var: Var, mut f: impl FnMut(&[u8])) {
        if var == Var::Xml {
            if let Some(doc) = &self.req.xml {
                f(&doc.text);
                doc.attrs.iter().for_each(|a| f(a));
            }
        } else {
            self.resolve(var, &KeySel::All, |_, v| f(&v));
        }
    }

    /// Scalars that can be borrowed (large buffers) come first; the rest are computed.
    fn scalar(&self, var: Var) -> Option<Cow<'_, [u8]>> {
        match var {
            Var::RequestBody => {
                let bp = self.body_processor.as_deref();
                // Only the raw and URLENCODED bodies are visible (or any body when forced), as in
                // ModSecurity 2: rules then see JSON and XML through ARGS and XML:, not twice.
                if self.force_body_variable || matches!(bp, None | Some("URLENCODED")) {
                    Some(Cow::Borrowed(&self.req.body))
                } else {
                    None
                }
            }
            Var::ResponseBody => Some(Cow::Borrowed(&self.resp.body)),
            Var::RequestUriRaw => Some(Cow::Borrowed(&self.req.uri)),
            Var::RequestMethod => Some(Cow::Borrowed(&self.req.method)),
            Var::RequestProtocol => Some(Cow::Borrowed(&self.req.protocol)),
            Var::MatchedVar => Some(Cow::Borrowed(&self.last_match().1)),
            Var::MatchedVarName => Some(Cow::Borrowed(self.last_match().0.as_bytes())),
            Var::RemoteAddr | Var::RemoteHost => Some(Cow::Borrowed(self.remote_addr.as_bytes())),
            Var::ServerName => Some(Cow::Borrowed(self.server_name.as_bytes())),
            Var::ServerAddr => Some(Cow::Borrowed(self.server_addr.as_bytes())),
            Var::UniqueId => Some(Cow::Borrowed(self.unique_id().as_bytes())),
            Var::ResponseProtocol => Some(Cow::Borrowed(&self.resp.protocol)),
            _ => match LINE_VARS.iter().position(|&v| v == var) {
                Some(i) => Some(Cow::Borrowed(
                    self.line_vars[i].get_or_init(|| self.computed_scalar(var).unwrap_or_default()),
                )),
                None => self.computed_scalar(var).map(Cow::Owned),
            },
        }
    }

    fn computed_scalar(&self, var: Var) -> Option<Vec<u8>> {
        let r = &self.req;
        let uri = &r.uri;
        // The path of an absolute URI (`http://host/p`) starts at its first '/' after the authority.
        let path_start = if uri.first() == Some(&b'/') {
            0
        } else if let Some(p) = memchr::memmem::find(uri, b"://") {
            uri[p + 3..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(uri.len(), |x| p + 3 + x)
        } else {
            0
        };
        let q = memchr::memchr(b'?', uri);
        let path = &uri[path_start.min(q.unwrap_or(uri.len()))..q.unwrap_or(uri.len())];
        Some(match var {
            Var::RequestUri => uri[path_start.min(uri.len())..].to_vec(),
            Var::RequestUriRaw => uri.clone(),
            // The path is percent-decoded, as the web server hands it to ModSecurity...
            Var::RequestFilename => percent_decode(path),
            // ...but the basename is not (measured against ModSecurity 2.9.7: CRS 920200 and
            // 920201 both match `/index%2Epdf`, only the latter decodes).
            Var::RequestBasename => {
                let p = path
                    .iter()
                    .rposition(|&c| c == b'/' || c == b'\\')
                    .map_or(0, |x| x + 1);
                path[p..].to_vec()
            }
            Var::RequestLine => [&r.method[..], b" ", uri, b" ", &r.protocol[..]].concat(),
            Var::RequestMethod => r.method.clone(),
            Var::RequestProtocol => r.protocol.clone(),
            Var::QueryString => q.map(|q| uri[q + 1..].to_vec()).unwrap_or_default(),
            Var::RequestBody => {
                let bp = self.body_processor.as_deref();
                // Hidden behind the multipart and XML parsers (unless forced), as in ModSecurity;
                // kept for JSON as Coraza does, because CRS inspects raw JSON keys there (934210).
                if self.force_body_variable || !matches!(bp, Some("MULTIPART") | Some("XML")) {
                    r.body.clone()
                } else {
                    return None;
                }
            }
            Var::RequestBodyLength => r.body.len().to_string().into_bytes(),
            Var::ArgsCombinedSize => {
                let n: usize = r
                    .args_get
                    .iter()
                    .chain(&r.args_post)
                    .map(|(k, v)| k.len() + v.len())
                    .sum();
                n.to_string().into_bytes()
            }
            Var::FilesCombinedSize => r
                .files
                .iter()
                .map(|f| f.2)
                .sum::<usize>()
                .to_string()
                .into_bytes(),
            Var::ReqbodyProcessor => self.body_processor.clone().unwrap_or_default().into_bytes(),
            Var::ResponseBody => self.resp.body.clone(),
            Var::ResponseStatus | Var::Status => {
                if self.resp.status == 0 {
                    return None;
                }
                self.resp.status.to_string().into_bytes()
            }
            Var::ResponseProtocol => self.resp.protocol.clone(),
            Var::ResponseContentType => self
                .resp
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(b"content-type"))
                .map(|(_, v)| v.clone())?,
            Var::ResponseContentLength => self
                .resp
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(b"content-length"))
                .map(|(_, v)| v.clone())?,
            Var::RemoteAddr | Var::RemoteHost => self.remote_addr.clone().into_bytes(),
            Var::RemotePort => self.remote_port.to_string().into_bytes(),
            Var::ServerName => self.server_name.clone().into_bytes(),
            Var::ServerAddr => self.server_addr.clone().into_bytes(),
            Var::ServerPort => self.server_port.to_string().into_bytes(),
            Var::UniqueId => self.unique_id().as_bytes().to_vec(),
            Var::Duration => self.started.elapsed().as_micros().to_string().into_bytes(),
            Var::Time
            | Var::TimeEpoch
            | Var::TimeYear
            | Var::TimeMon
            | Var::TimeDay
            | Var::TimeHour
            | Var::TimeMin
            | Var::TimeSec
            | Var::TimeWday => time_var(var),
            Var::FullRequest => {
                let mut f = [&r.method[..], b" ", uri, b" ", &r.protocol[..], b"\n"].concat();
                for (k, v) in &r.headers {
                    f.extend_from_slice(&[&k[..], b": ", v, b"\n"].concat());
                }
                f.push(b'\n');
                f.extend_from_slice(&r.body);
                f
            }
            Var::FullRequestLength => {
                let n = r.method.len()
                    + uri.len()
                    + r.protocol.len()
                    + 3
                    + r.headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 3)
                        .sum::<usize>()
                    + 1
                    + r.body.len();
                n.to_string().into_bytes()
            }
            Var::HighestSeverity => self
                .matched
                .iter()
                .filter_map(|m| m.severity)
                .min()
                .unwrap_or(255)
                .to_string()
                .into_bytes(),
            Var::AuthType => return None,
            Var::MultipartFilename => r.files.last().map(|f| f.1.clone())?,
            Var::MultipartName => r.files.last().map(|f| f.0.clone())?,
            other => return self.flags.get(&other).cloned(),
        })
    }

    /// Hands `emit` the (key, value) pairs of `var` selected by `key`, in order.
    fn resolve<'a>(&'a self, var: Var, key: &KeySel, mut emit: impl FnMut(Cow<'a, [u8]>, Cow<'a, [u8]>)) {
        let r = &self.req;
        let mut pairs = |src: &[&'a Pairs], names: bool| {
            for p in src {
                // One name (`REQUEST_HEADERS:Content-Length`, most selectors) is compared here,
                // by length first: nearly every key differs in length, and the general match
                // cost some sixty instructions a key.
                if let KeySel::Name(n) = key {
                    for (k, v) in p.iter() {
                        if k.len() == n.len() && k.eq_ignore_ascii_case(n.as_bytes()) {
                            emit(Cow::Borrowed(k), Cow::Borrowed(if names { k } else { v }));
                        }
                    }
                    continue;
                }
                for (k, v) in p.iter() {
                    if key.matches(k) {
                        emit(Cow::Borrowed(k), Cow::Borrowed(if names { k } else { v }));
                    }
                }
            }
        };
        match var {
            Var::Args => pairs(&[&r.args_get, &r.args_post], false),
            Var::ArgsGet => pairs(&[&r.args_get], false),
            Var::ArgsPost => pairs(&[&r.args_post], false),
            Var::ArgsNames => pairs(&[&r.args_get, &r.args_post], true),
            Var::ArgsGetNames => pairs(&[&r.args_get], true),
            Var::ArgsPostNames => pairs(&[&r.args_post], true),
            Var::RequestHeaders => pairs(&[&r.headers], false),
            Var::RequestHeadersNames => pairs(&[&r.headers], true),
            Var::RequestCookies => pairs(&[&r.cookies], false),
            Var::RequestCookiesNames => pairs(&[&r.cookies], true),
            Var::ResponseHeaders => pairs(&[&self.resp.headers], false),
            Var::ResponseHeadersNames => pairs(&[&self.resp.headers], true),
            Var::MultipartPartHeaders => pairs(&[&r.part_headers], false),
            Var::Files | Var::FilesNames | Var::FilesSizes | Var::FilesTmpContent => {
                for (name, fname, size) in &r.files {
                    if key.matches(name) {
                        let v: Cow<'a, [u8]> = match var {
                            Var::Files => Cow::Borrowed(fname),
                            Var::FilesNames => Cow::Borrowed(name),
                            Var::FilesSizes => Cow::Owned(size.to_string().into_bytes()),
                            _ => Cow::Borrowed(&b""[..]),
                        };
                        emit(Cow::Borrowed(name), v);
                    }
                }
            }
            Var::Xml => {
                let Some(doc) = &r.xml else { return };
                let path = match key {
                    KeySel::Name(n) => &**n,
                    _ => "/*",
                };
                if path.contains('@') {
                    for a in &doc.attrs {
                        emit(Cow::Owned(path.as_bytes().to_vec()), Cow::Borrowed(a));
                    }
                } else {
                    emit(Cow::Owned(path.as_bytes().to_vec()), Cow::Borrowed(&doc.text));
                }
            }
            Var::Tx | Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource | Var::Env => {
                if let Some(c) = self.collection(var) {
                    match key {
                        KeySel::Name(n) => {
                            // Every name of a stored collection is lower-cased when parsed
                            // (targets and macros), as the keys are when stored: CRS looks up
                            // about 200 a request, and checking the case again cost a fifth of
                            // each lookup.
                            debug_assert!(!n.bytes().any(|b| b.is_ascii_uppercase()), "{n}");
                            if let Some((stored, v)) = c.get_key_value(&**n) {
                                emit(Cow::Borrowed(stored.as_bytes()), Cow::Borrowed(v.as_ref()));
                            }
                        }
                        _ => scan_in_key_order(c, key, emit),
                    }
                }
            }
            Var::Rule => {
                if let Some(rule) = self.current_rule {
                    let msg = rule.actions.msg.as_ref().map(Macro::literal).unwrap_or_default();
                    let sev = rule.actions.severity.map(|s| s.to_string()).unwrap_or_default();
                    let phase = rule.phase.to_string();
                    for (k, v) in [
                        ("id", rule.id.to_string()),
                        ("msg", msg),
                        ("severity", sev),
                        ("phase", phase),
                    ] {
                        if key.matches(k.as_bytes()) {
                            emit(Cow::Borrowed(k.as_bytes()), Cow::Owned(v.into_bytes()));
                        }
                    }
                }
            }
            Var::MatchedVars | Var::MatchedVarsNames => {
                for (n, v) in &self.matched_vars {
                    if key.matches(n.as_bytes()) {
                        let v: &[u8] = if var == Var::MatchedVars { v } else { n.as_bytes() };
                        emit(Cow::Borrowed(n.as_bytes()), Cow::Borrowed(v));
                    }
                }
            }
            Var::WebserverErrorLog | Var::Geo => {}
            _ => {
                if let Some(v) = self.scalar(var) {
                    emit(Cow::Borrowed(&b""[..]), v);
                }
            }
        }
    }

    /// Expands `%{...}` references; unknown or empty references expand to nothing. A macro that
    /// is one literal or one reference (most are) is borrowed, not copied.
    pub(crate) fn expand<'a>(&'a self, m: &'a Macro) -> Cow<'a, [u8]> {
        let first = |var: Var, key: &KeySel| {
            let mut first: Option<Cow<'a, [u8]>> = None;
            self.resolve(var, key, |_, v| {
                if first.is_none() {
                    first = Some(v);
                }
            });
            first
        };
        match m.parts.as_slice() {
            [] => Cow::Borrowed(&b""[..]),
            [MacroPart::Lit(s)] => Cow::Borrowed(s.as_bytes()),
            [MacroPart::Ref { var, key }] => first(*var, key).unwrap_or(Cow::Borrowed(&b""[..])),
            parts => {
                // Most are a rule id or a variable name and a few words (`setvar` keys, messages):
                // one allocation instead of three or four growths.
                let mut out = Vec::with_capacity(64);
                for p in parts {
                    match p {
                        MacroPart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                        MacroPart::Ref { var, key } => {
                            if let Some(v) = first(*var, key) {
                                out.extend_from_slice(&v);
                            }
                        }
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

/// The entries of `c` whose keys `key` selects, in key order (ModSecurity's logs and MATCHED_VARS
/// list them so; the map itself has no order): only the selected entries are sorted.
fn scan_in_key_order<'a>(
    c: &'a Collection<'_>,
    key: &KeySel,
    mut emit: impl FnMut(Cow<'a, [u8]>, Cow<'a, [u8]>),
) {
    let mut selected: SmallVec<[(&'a str, &'a [u8]); 8]> = c
        .iter()
        .filter(|(k, _)| key.matches_lower_case(k.as_bytes()))
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    // Keys are unique: an unstable sort gives the one order.
    selected.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (k, v) in selected {
        emit(Cow::Borrowed(k.as_bytes()), Cow::Borrowed(v));
    }
}

/// Stores `value` under `key`, keeping the key already there. One search of the map (the entry),
/// not a look-up and then an insertion: CRS's setup creates a hundred TX variables per request.
fn set_value<'r>(coll: &mut Collection<'r>, key: Cow<'r, str>, value: Cow<'r, [u8]>) {
    match coll.entry(key) {
        hash_map::Entry::Occupied(mut e) => *e.get_mut() = value,
        hash_map::Entry::Vacant(e) => {
            e.insert(value);
        }
    }
}

/// TX keys of regex captures (`capture` keeps at most ten groups).
const CAPTURE_KEYS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 2 < s.len()
            && let (Some(a), Some(b)) = ((s[i + 1] as char).to_digit(16), (s[i + 2] as char).to_digit(16))
        {
            out.push((a * 16 + b) as u8);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// TIME_* from the system clock (UTC), computed without a date library.
fn time_var(var: Var) -> Vec<u8> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let date = palisade_core::Date::from_unix_seconds(secs);
    let (y, m, d) = (date.year, date.month, date.day);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let v = match var {
        Var::TimeEpoch => secs.to_string(),
        Var::TimeYear => y.to_string(),
        Var::TimeMon => format!("{m:02}"),
        Var::TimeDay => format!("{d:02}"),
        Var::TimeHour => format!("{h:02}"),
        Var::TimeMin => format!("{mi:02}"),
        Var::TimeSec => format!("{s:02}"),
        Var::TimeWday => ((days + 4).rem_euclid(7)).to_string(),
        _ => format!("{h:02}:{mi:02}:{s:02}"),
    };
    v.into_bytes()
}
