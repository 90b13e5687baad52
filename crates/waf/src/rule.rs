//! The compiled form of SecRule/SecAction: targets, operator, transformations and actions, plus
//! the parsers for action lists and `%{...}` macros.

use crate::operator::Operator;
use crate::transform::Transform;
use crate::variable::{KeySel, Target, Var};
use std::sync::Arc;

/// Text with `%{collection.key}` references, expanded per transaction.
#[derive(Debug, Clone, Default)]
pub struct Macro {
    pub parts: Vec<MacroPart>,
}

#[derive(Debug, Clone)]
pub enum MacroPart {
    Lit(String),
    /// `key` is built once here, lower-cased for collections (whose keys are stored lower-case),
    /// so that expanding a macro per request allocates nothing to look the value up.
    Ref {
        var: Var,
        key: KeySel,
    },
}

impl Macro {
    /// Unknown references are kept as literal text (ModSecurity leaves them unexpanded).
    pub fn parse(s: &str) -> Macro {
        let mut parts = Vec::new();
        let mut rest = s;
        let mut lit = String::new();
        while let Some(p) = rest.find("%{") {
            lit.push_str(&rest[..p]);
            let after = &rest[p + 2..];
            let Some(end) = after.find('}') else {
                lit.push_str(&rest[p..]);
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (name, key) = match inner.find(['.', ':']) {
                Some(d) => (&inner[..d], Some(&inner[d + 1..])),
                None => (inner, None),
            };
            match Var::from_name(name) {
                Some(var) => {
                    let key = match key {
                        None => KeySel::All,
                        Some(k) if var.is_stored_collection() => KeySel::Name(k.to_ascii_lowercase().into()),
                        Some(k) => KeySel::Name(k.into()),
                    };
                    if !lit.is_empty() {
                        parts.push(MacroPart::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(MacroPart::Ref { var, key });
                }
                None => lit.push_str(&rest[p..p + 2 + end + 1]),
            }
            rest = &after[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(MacroPart::Lit(lit));
        }
        Macro { parts }
    }
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, MacroPart::Lit(_)))
    }
    /// The text of a macro without references (`None` otherwise), to use it without expanding.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [MacroPart::Lit(s)] => Some(s),
            _ => None,
        }
    }
    pub fn literal(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                MacroPart::Lit(s) => s.as_str(),
                MacroPart::Ref { .. } => "",
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    Block,
    Deny,
    Drop,
    Allow,
    /// `allow:phase` / `allow:request`: only the current phase, or the remaining request phases.
    AllowPhase,
    AllowRequest,
    Redirect,
}

#[derive(Debug, Clone)]
pub enum SetVarOp {
    Set(Macro),
    Add(Macro),
    Sub(Macro),
    Delete,
}

#[derive(Debug, Clone)]
pub struct SetVar {
    /// TX, IP, GLOBAL, SESSION, USER, RESOURCE.
    pub collection: Var,
    pub name: Macro,
    pub op: SetVarOp,
}

#[derive(Debug, Clone)]
pub enum Ctl {
    RuleRemoveById(Vec<(u64, u64)>),
    RuleRemoveByTag(String),
    RuleRemoveTargetById(Vec<(u64, u64)>, Vec<Target>),
    RuleRemoveTargetByTag(String, Vec<Target>),
    RuleEngine(crate::EngineMode),
    RequestBodyProcessor(String),
    RequestBodyAccess(bool),
    ForceRequestBodyVariable(bool),
    ResponseBodyAccess(bool),
    /// Accepted and ignored: auditing belongs to the adapter.
    Ignored,
}

/// A side effect run when the rule (or chain) matches, in the order written.
#[derive(Debug, Clone)]
pub enum Effect {
    SetVar(SetVar),
    Ctl(Ctl),
    SetEnv(String, Macro),
    ExpireVar,
}

/// Fields in declaration order (`repr(C)`): the flags and transformations every evaluated rule
/// reads first, next to its operator (see `Rule`'s layout), and text for logs last.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct Actions {
    /// `Some(list)` when any `t:` was given; `t:none` clears what came before (and the defaults).
    pub transforms: Vec<Transform>,
    pub capture: bool,
    pub multi_match: bool,
    pub log: Option<bool>,
    pub chain: bool,
    pub transforms_none: bool,
    pub auditlog: Option<bool>,
    pub disruptive: Option<Disruptive>,
    pub severity: Option<u8>,
    pub phase: Option<u8>,
    pub status: Option<u16>,
    pub skip: u32,
    pub skip_after: Option<String>,
    pub effects: Vec<Effect>,
    /// `tag_bit` of every tag: a rule without a tag's bit does not carry it, so the
    /// `ctl:ruleRemove*ByTag` checks made for every rule compare text only for a few.
    pub tag_bits: u64,
    pub id: Option<u64>,
    pub msg: Option<Macro>,
    pub logdata: Option<Macro>,
    /// Shared with every match of the rule (a match record copies no text).
    pub tags: Arc<Vec<String>>,
    pub ver: Option<Arc<str>>,
    pub rev: Option<Arc<str>>,
    pub maturity: Option<Arc<str>>,
    pub accuracy: Option<Arc<str>>,
    pub redirect: Option<Macro>,
}

/// A tag's bit in `Actions::tag_bits` (FNV-1a of its text, modulo 64).
pub fn tag_bit(tag: &str) -> u64 {
    1 << (crate::fnv1a(tag.as_bytes()) % 64)
}

impl Actions {
    pub fn add_tag(&mut self, tag: String) {
        self.tag_bits |= tag_bit(&tag);
        Arc::make_mut(&mut self.tags).push(tag);
    }

    /// Whether the rule carries `tag`, whose `tag_bit` is `bit`.
    pub fn has_tag(&self, tag: &str, bit: u64) -> bool {
        self.tag_bits & bit != 0 && self.tags.iter().any(|t| t == tag)
    }
}

pub fn severity_from(s: &str) -> Option<u8> {
    const NAMES: [&str; 8] = [
        "EMERGENCY",
        "ALERT",
        "CRITICAL",
        "ERROR",
        "WARNING",
        "NOTICE",
        "INFO",
        "DEBUG",
    ];
    if let Ok(n) = s.parse::<u8>() {
        return (n < 8).then_some(n);
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|p| p as u8)
}

pub fn severity_name(n: u8) -> &'static str {
    [
        "EMERGENCY",
        "ALERT",
        "CRITICAL",
        "ERROR",
        "WARNING",
        "NOTICE",
        "INFO",
        "DEBUG",
    ]
    .get(n as usize)
    .copied()
    .unwrap_or("UNKNOWN")
}

/// Splits an action list on commas outside single quotes, returning (name, value) pairs with the
/// quotes removed and `\'` unescaped.
pub fn split_actions(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let st = i;
        while i < b.len() && b[i] != b':' && b[i] != b',' {
            i += 1;
        }
        let name = s[st..i].trim().to_string();
        if i < b.len() && b[i] == b':' {
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let mut val = String::new();
            if i < b.len() && b[i] == b'\'' {
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                        val.push('\'');
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        closed = true;
                        i += 1;
                        break;
                    }
                    let ch_len = utf8_len(b[i]);
                    val.push_str(&s[i..(i + ch_len).min(b.len())]);
                    i += ch_len;
                }
                if !closed {
                    return Err(format!("unterminated quote in action {name}"));
                }
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                val.push_str(s[vs..i].trim_end());
            }
            out.push((name, Some(val)));
        } else {
            out.push((name, None));
        }
    }
    Ok(out)
}

fn utf8_len(b: u8) -> usize {
    match b {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Parses `1-99 200 300` (ModSecurity id lists and ranges).
pub fn parse_id_ranges(s: &str) -> Result<Vec<(u64, u64)>, String> {
    let mut out = Vec::new();
    for part in s.split([' ', ',']).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u64 = a.trim().parse().map_err(|_| format!("bad rule id {part:?}"))?;
        let b: u64 = b.trim().parse().map_err(|_| format!("bad rule id {part:?}"))?;
        out.push((a, b));
    }
    if out.is_empty() {
        return Err("no rule ids".into());
    }
    Ok(out)
}

pub fn in_ranges(ranges: &[(u64, u64)], id: u64) -> bool {
    ranges.iter().any(|&(a, b)| a <= id && id <= b)
}

fn parse_setvar(v: &str) -> Result<SetVar, String> {
    let (delete, v) = match v.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (lhs, rhs) = match v.split_once('=') {
        Some((l, r)) => (l, Some(r)),
        None => (v, None),
    };
    let (coll, name) = lhs
        .split_once('.')
        .ok_or_else(|| format!("setvar without collection: {v:?}"))?;
    let collection =
        Var::from_name(coll.trim()).ok_or_else(|| format!("setvar: unknown collection {coll:?}"))?;
    let op = if delete {
        SetVarOp::Delete
    } else {
        match rhs {
            None => SetVarOp::Set(Macro::parse("1")),
            Some(r) => {
                if let Some(x) = r.strip_prefix('+') {
                    SetVarOp::Add(Macro::parse(x))
                } else if let Some(x) = r.strip_prefix('-') {
                    SetVarOp::Sub(Macro::parse(x))
                } else {
                    SetVarOp::Set(Macro::parse(r))
                }
            }
        }
    };
    // Collection keys are case-insensitive and stored lower-case: lower-case the literal parts of
    // the name once here (references are lower-cased after expansion).
    let mut name = Macro::parse(name.trim());
    for p in &mut name.parts {
        if let MacroPart::Lit(s) = p {
            s.make_ascii_lowercase();
        }
    }
    Ok(SetVar { collection, name, op })
}

fn parse_ctl(v: &str) -> Result<Ctl, String> {
    let (name, val) = v
        .split_once('=')
        .ok_or_else(|| format!("ctl without '=': {v:?}"))?;
    let on = |s: &str| s.eq_ignore_ascii_case("on");
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RuleRemoveById(parse_id_ranges(val)?),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(val.to_string()),
        "ruleremovetargetbyid" => {
            let (ids, t) = val
                .split_once(';')
                .ok_or("ruleRemoveTargetById needs ID;TARGET")?;
            Ctl::RuleRemoveTargetById(parse_id_ranges(ids)?, crate::variable::parse_targets(t)?)
        }
        "ruleremovetargetbytag" => {
            let (tag, t) = val
                .split_once(';')
                .ok_or("ruleRemoveTargetByTag needs TAG;TARGET")?;
            Ctl::RuleRemoveTargetByTag(tag.to_string(), crate::variable::parse_targets(t)?)
        }
        "ruleengine" => Ctl::RuleEngine(
            crate::EngineMode::parse(val).ok_or("ruleEngine must be On, Off or DetectionOnly")?,
        ),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(val.to_ascii_uppercase()),
        "requestbodyaccess" => Ctl::RequestBodyAccess(on(val)),
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on(val)),
        "responsebodyaccess" => Ctl::ResponseBodyAccess(on(val)),
        "auditengine" | "auditlogparts" | "debugloglevel" | "hashengine" | "hashenforcement"
        | "requestbodylimit" | "responsebodylimit" => Ctl::Ignored,
        other => return Err(format!("unsupported ctl:{other}")),
    })
}

/// Parses an action list into `Actions`. Unknown actions are errors.
pub fn parse_actions(s: &str) -> Result<Actions, String> {
    let mut a = Actions::default();
    for (name, val) in split_actions(s)? {
        let lname = name.to_ascii_lowercase();
        let need = |v: &Option<String>| v.clone().ok_or_else(|| format!("action {name} needs a value"));
        match lname.as_str() {
            "id" => {
                a.id = Some(
                    need(&val)?
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad id {val:?}"))?,
                )
            }
            "phase" => {
                let v = need(&val)?;
                a.phase = Some(match v.trim().to_ascii_lowercase().as_str() {
                    "request" => 2,
                    "response" => 4,
                    "logging" => 5,
                    n => n
                        .parse()
                        .ok()
                        .filter(|p| (1..=5).contains(p))
                        .ok_or_else(|| format!("bad phase {v:?}"))?,
                })
            }
            "msg" => a.msg = Some(Macro::parse(&need(&val)?)),
            "logdata" => a.logdata = Some(Macro::parse(&need(&val)?)),
            "severity" => a.severity = Some(severity_from(need(&val)?.trim()).ok_or("bad severity")?),
            "tag" => a.add_tag(need(&val)?),
            "ver" => a.ver = Some(need(&val)?.into()),
            "rev" => a.rev = Some(need(&val)?.into()),
            "maturity" => a.maturity = Some(need(&val)?.into()),
            "accuracy" => a.accuracy = Some(need(&val)?.into()),
            "capture" => a.capture = true,
            "multimatch" => a.multi_match = true,
            "chain" => a.chain = true,
            "log" => a.log = Some(true),
            "nolog" => {
                a.log = Some(false);
                a.auditlog.get_or_insert(false);
            }
            "auditlog" => a.auditlog = Some(true),
            "noauditlog" => a.auditlog = Some(false),
            "pass" => a.disruptive = Some(Disruptive::Pass),
            "block" => a.disruptive = Some(Disruptive::Block),
            "deny" => a.disruptive = Some(Disruptive::Deny),
            "drop" => a.disruptive = Some(Disruptive::Drop),
            "allow" => {
                a.disruptive = Some(match val.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("phase") => Disruptive::AllowPhase,
                    Some("request") => Disruptive::AllowRequest,
                    _ => Disruptive::Allow,
                })
            }
            "redirect" => {
                a.disruptive = Some(Disruptive::Redirect);
                a.redirect = Some(Macro::parse(&need(&val)?));
            }
            "status" => a.status = Some(need(&val)?.trim().parse().map_err(|_| "bad status")?),
            "t" => match crate::transform::Transform::from_name(need(&val)?.trim())? {
                None => {
                    a.transforms.clear();
                    a.transforms_none = true;
                }
                Some(t) => a.transforms.push(t),
            },
            "setvar" => a.effects.push(Effect::SetVar(parse_setvar(&need(&val)?)?)),
            "ctl" => a.effects.push(Effect::Ctl(parse_ctl(&need(&val)?)?)),
            "setenv" => {
                let v = need(&val)?;
                let (k, x) = v.split_once('=').unwrap_or((v.as_str(), "1"));
                a.effects.push(Effect::SetEnv(k.to_string(), Macro::parse(x)));
            }
            "expirevar" => a.effects.push(Effect::ExpireVar),
            "skipafter" => a.skip_after = Some(need(&val)?),
            "skip" => a.skip = need(&val)?.trim().parse().map_err(|_| "bad skip")?,
            // Accepted without effect in a sans-I/O engine: persistent collections are in memory,
            // auditing and sanitising belong to the adapter that writes logs.
            "initcol"
            | "setuid"
            | "setsid"
            | "setrsc"
            | "sanitisearg"
            | "sanitisematched"
            | "sanitisematchedbytes"
            | "sanitiserequestheader"
            | "sanitiseresponseheader"
            | "append"
            | "prepend"
            | "exec"
            | "deprecatevar"
            | "proxy"
            | "pause"
            | "xmlns" => {}
            _ => return Err(format!("unknown action {name:?}")),
        }
    }
    Ok(a)
}

/// A SecRule or SecAction, possibly the head of a chain.
///
/// Fields in declaration order (`repr(C)`, and in `Operator` and `Actions`) and aligned to a cache
/// line: under load the rule set is cold for each request, and a rule that is evaluated reads its
/// targets, image slots, operator, flags and transformations first, which this keeps in its
/// first two cache lines. Cachegrind: design note 23.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Rule {
    pub targets: Vec<Target>,
    /// Per target (parallel to `targets`, empty when none applies): the entry of
    /// `Transaction::images` holding the byte image of the target's variable through this rule's
    /// transformations, shared by every rule that reads the same variable through the same
    /// transformations; `NO_IMAGE` for a target that is never skipped. Set by `Ruleset::new`.
    pub image_slots: Box<[u16]>,
    /// This link's bit in `MemoEntry` (`memo::NO_MEMO` if none): links whose verdict on a
    /// header or cookie value is a function of the value's bytes. Set by `Ruleset::new`.
    pub memo_bit: u32,
    pub operator: Operator,
    pub actions: Actions,
    pub id: u64,
    pub phase: u8,
    pub chained: Option<Box<Rule>>,
    pub file: Arc<str>,
    pub line: usize,
}

/// See `Rule::image_slots`.
pub const NO_IMAGE: u16 = u16::MAX;

impl Rule {
    /// Whether this link's verdict on a value of `var` can be remembered by the value
    /// (`crate::memo`): it reads a header or cookie value or name, and whether it matches one
    /// depends on the value's bytes alone: a non-negated operator without a macro.
    pub(crate) fn verdict_is_pure(&self) -> bool {
        use crate::operator::OpKind as K;
        let pure_operator = match &self.operator.kind {
            K::Rx(_)
            | K::Pm(_)
            | K::NumConst(..)
            | K::IpMatch(_)
            | K::ValidateByteRange(_)
            | K::ValidateUrlEncoding
            | K::ValidateUtf8Encoding
            | K::DetectSqli
            | K::DetectXss => true,
            K::StrEq(m)
            | K::Contains(m)
            | K::ContainsWord(m)
            | K::BeginsWith(m)
            | K::EndsWith(m)
            | K::Within(m)
            | K::StrMatch(m)
            | K::Num(_, m) => m.as_literal().is_some(),
            K::RxMacro(_) | K::Unconditional | K::NoMatch => false,
        };
        !self.operator.negated
            && pure_operator
            && self
                .targets
                .iter()
                .any(|t| !t.exclude && !t.count && crate::memo::remembers(t.var))
    }

    /// The byte sets every match of the rule's operator holds a byte of, when a target without
    /// them can be skipped: a non-negated `@rx` with a byte bound. `None` for every other
    /// operator (a negated one matches exactly where the pattern does not).
    pub(crate) fn skip_needs(&self) -> Option<&[crate::operator::ByteSet]> {
        match &self.operator.kind {
            crate::operator::OpKind::Rx(rx) if !self.operator.negated && !rx.needs.is_empty() => {
                Some(rx.needs.as_slice())
            }
            _ => None,
        }
    }

    /// Strings (lower-case) one of which every match of the rule's operator holds, compared
    /// ASCII case-insensitively, when a value without any can be skipped: a non-negated `@rx`
    /// with a phrase bound (`Rx::phrases`), `@pm` or `@pmFromFile`. `None` otherwise.
    pub(crate) fn phrase_bound(&self) -> Option<&[Vec<u8>]> {
        use crate::operator::OpKind;
        let phrases = match &self.operator.kind {
            OpKind::Rx(rx) => &rx.phrases,
            OpKind::Pm(pm) => &pm.phrases,
            _ => return None,
        };
        (!self.operator.negated && !phrases.is_empty()).then_some(phrases.as_slice())
    }

    pub fn has_tag(&self, re: &regex::Regex) -> bool {
        self.actions.tags.iter().any(|t| re.is_match(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_evaluation_reads_first_is_in_two_cache_lines() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<Rule>(), 64);
        let ends = [
            offset_of!(Rule, targets) + size_of::<Vec<Target>>(),
            offset_of!(Rule, image_slots) + size_of::<Box<[u16]>>(),
            offset_of!(Rule, operator) + offset_of!(Operator, kind) + size_of::<crate::operator::OpKind>(),
            offset_of!(Rule, actions) + offset_of!(Actions, transforms) + size_of::<Vec<Transform>>(),
            offset_of!(Rule, actions) + offset_of!(Actions, capture) + 1,
            offset_of!(Rule, actions) + offset_of!(Actions, multi_match) + 1,
            offset_of!(Rule, actions) + offset_of!(Actions, log) + 1,
        ];
        assert!(ends.iter().all(|&e| e <= 128), "{ends:?}");
    }

    #[test]
    fn actions_with_quotes_and_setvars() {
        let a = parse_actions(
            "id:942100,phase:2,block,capture,t:none,t:utf8toUnicode,msg:'SQL Injection \\'x\\' Attack',logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}',tag:'a,b',setvar:'tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}',setvar:!tx.x,severity:'CRITICAL'",
        )
        .unwrap();
        assert_eq!(a.id, Some(942100));
        assert_eq!(a.phase, Some(2));
        assert_eq!(*a.tags, vec!["a,b"]);
        assert_eq!(a.msg.as_ref().unwrap().literal(), "SQL Injection 'x' Attack");
        assert_eq!(a.severity, Some(2));
        assert_eq!(a.effects.len(), 2);
        assert!(a.transforms_none && a.transforms.len() == 1);
        assert!(parse_actions("id:1,bogus").is_err());
    }

    #[test]
    fn macros() {
        let m = Macro::parse("x %{tx.a} %{MATCHED_VAR} %{unknown} %{");
        assert_eq!(m.parts.len(), 5);
        assert_eq!(parse_id_ranges("1-5 9").unwrap(), vec![(1, 5), (9, 9)]);
    }
}
