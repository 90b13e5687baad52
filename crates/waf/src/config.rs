//! Builds a `Ruleset` from SecLang directives: defaults, chains, markers, removals and target
//! updates, applied in the order ModSecurity applies them. Files come from a caller-supplied
//! `Loader`, so this module never touches the file system.

use crate::error::{Result, WafError};
use crate::operator::Operator;
use crate::parser::{Directive, parse_directives};
use crate::rule::{Actions, Disruptive, Rule, in_ranges, parse_actions, parse_id_ranges};
use crate::variable::parse_targets;
use crate::{Config, EngineMode, Entry, Ruleset};

/// Supplies configuration and data files. `from` is the name of the file that refers to them,
/// so relative paths can be resolved the way ModSecurity does (relative to that file).
pub trait Loader {
    /// Files matching `pattern` (which may contain `*`), as (name, text) pairs in load order.
    fn include(&mut self, pattern: &str, from: &str) -> std::result::Result<Vec<(String, String)>, String>;
    /// A `.data` file for `@pmFromFile` / `@ipMatchFromFile`.
    fn data(&mut self, name: &str, from: &str) -> std::result::Result<String, String>;
}

/// A loader for text given in memory only; `Include` and data files are errors.
pub struct NoFiles;

impl Loader for NoFiles {
    fn include(&mut self, pattern: &str, _: &str) -> std::result::Result<Vec<(String, String)>, String> {
        Err(format!("no loader for {pattern}"))
    }
    fn data(&mut self, name: &str, _: &str) -> std::result::Result<String, String> {
        Err(format!("no loader for {name}"))
    }
}

/// Bound on include nesting (a file including itself must fail, not recurse forever).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Accumulates directives from one or more files into a `Ruleset`.
pub struct RulesetBuilder {
    config: Config,
    rules: Vec<Rule>,
    /// Markers and rules in file order; rule entries index `rules`.
    order: Vec<Entry>,
    defaults: [Option<Actions>; 6],
    /// The chain being assembled: the starter first, then each chained rule.
    chain: Vec<Rule>,
}

impl Default for RulesetBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn err(d: &Directive, code: &'static str, message: impl Into<String>) -> WafError {
    WafError::Rule {
        file: d.file.clone(),
        line: d.line,
        directive: d.name.clone(),
        code,
        message: message.into(),
    }
}

fn on_off(d: &Directive) -> Result<bool> {
    match d.args.first().map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        _ => Err(err(d, "waf.syntax", "expected On or Off")),
    }
}

fn one_num(d: &Directive) -> Result<usize> {
    d.args
        .first()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(d, "waf.syntax", "expected a number"))
}

impl RulesetBuilder {
    pub fn new() -> Self {
        RulesetBuilder {
            config: Config::default(),
            rules: Vec::new(),
            order: Vec::new(),
            defaults: Default::default(),
            chain: Vec::new(),
        }
    }

    /// Adds the directives in `text` (named `name` in errors and for relative includes).
    pub fn add(&mut self, name: &str, text: &str, loader: &mut dyn Loader) -> Result<&mut Self> {
        self.add_depth(name, text, loader, 0)?;
        Ok(self)
    }

    fn add_depth(&mut self, name: &str, text: &str, loader: &mut dyn Loader, depth: usize) -> Result<()> {
        for d in parse_directives(name, text)? {
            if d.name.eq_ignore_ascii_case("Include") {
                let pat = d
                    .args
                    .first()
                    .ok_or_else(|| err(&d, "waf.syntax", "Include needs a path"))?;
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(err(&d, "waf.include", "includes nested too deeply"));
                }
                let files = loader.include(pat, &d.file).map_err(|m| WafError::Load {
                    file: d.file.clone(),
                    line: d.line,
                    path: pat.clone(),
                    message: m,
                })?;
                for (fname, ftext) in files {
                    self.add_depth(&fname, &ftext, loader, depth + 1)?;
                }
                continue;
            }
            self.directive(&d, loader)?;
        }
        Ok(())
    }

    fn directive(&mut self, d: &Directive, loader: &mut dyn Loader) -> Result<()> {
        let lname = d.name.to_ascii_lowercase();
        if !self.chain.is_empty() && lname != "secrule" && lname != "secaction" {
            return Err(err(d, "waf.chain", "a chained rule must be followed by SecRule"));
        }
        let arg0 = || d.args.first().map(String::as_str).unwrap_or("");
        match lname.as_str() {
            "secrule" => {
                if d.args.len() < 2 || d.args.len() > 3 {
                    return Err(err(
                        d,
                        "waf.syntax",
                        "expected VARIABLES \"OPERATOR\" [\"ACTIONS\"]",
                    ));
                }
                let targets = parse_targets(&d.args[0]).map_err(|m| err(d, "waf.variable", m))?;
                let from = d.file.clone();
                let operator = Operator::parse(&d.args[1], &mut |f| loader.data(f, &from))
                    .map_err(|m| err(d, "waf.operator", m))?;
                let actions = parse_actions(d.args.get(2).map(String::as_str).unwrap_or(""))
                    .map_err(|m| err(d, "waf.action", m))?;
                self.add_rule(d, targets, operator, actions)?;
            }
            "secaction" => {
                let actions = parse_actions(arg0()).map_err(|m| err(d, "waf.action", m))?;
                let op = Operator::parse("@unconditionalMatch", &mut |_| Err(String::new()))
                    .map_err(|m| err(d, "waf.operator", m))?;
                self.add_rule(d, Vec::new(), op, actions)?;
            }
            "secmarker" => self.order.push(Entry::Marker(arg0().to_string())),
            "secdefaultaction" => {
                let a = parse_actions(arg0()).map_err(|m| err(d, "waf.action", m))?;
                let phase = a
                    .phase
                    .ok_or_else(|| err(d, "waf.action", "SecDefaultAction needs a phase"))?;
                if a.disruptive.is_none() {
                    return Err(err(d, "waf.action", "SecDefaultAction needs a disruptive action"));
                }
                self.config.default_disruptive[phase as usize] =
                    (a.disruptive.unwrap_or(Disruptive::Pass), a.status);
                self.defaults[phase as usize] = Some(a);
            }
            "secruleengine" => {
                self.config.engine = EngineMode::parse(arg0())
                    .ok_or_else(|| err(d, "waf.syntax", "expected On, Off or DetectionOnly"))?
            }
            "secrequestbodyaccess" => self.config.request_body_access = on_off(d)?,
            "secresponsebodyaccess" => self.config.response_body_access = on_off(d)?,
            "secrequestbodylimit" => self.config.request_body_limit = one_num(d)?,
            "secrequestbodynofileslimit" => self.config.request_body_no_files_limit = one_num(d)?,
            "secresponsebodylimit" => self.config.response_body_limit = one_num(d)?,
            "secrequestbodylimitaction" | "secresponsebodylimitaction" => {
                let partial = match arg0().to_ascii_lowercase().as_str() {
                    "reject" => false,
                    "processpartial" => true,
                    _ => return Err(err(d, "waf.syntax", "expected Reject or ProcessPartial")),
                };
                if lname == "secrequestbodylimitaction" {
                    self.config.request_body_partial = partial;
                } else {
                    self.config.response_body_partial = partial;
                }
            }
            "secresponsebodymimetype" => self.config.response_mime_types.extend(
                d.args
                    .iter()
                    .flat_map(|a| a.split_whitespace())
                    .map(str::to_ascii_lowercase),
            ),
            "secresponsebodymimetypesclear" => self.config.response_mime_types.clear(),
            "secunicodemapfile" => {
                let (Some(file), Some(cp)) = (d.args.first(), d.args.get(1)) else {
                    return Err(err(d, "waf.syntax", "expected FILE CODEPAGE"));
                };
                let text = loader.data(file, &d.file).map_err(|m| WafError::Load {
                    file: d.file.clone(),
                    line: d.line,
                    path: file.clone(),
                    message: m,
                })?;
                let map =
                    crate::transform::parse_unicode_map(&text, cp).map_err(|m| err(d, "waf.syntax", m))?;
                self.config.unicode_map = Some(std::sync::Arc::new(map));
            }
            "secargumentseparator" => {
                let a = arg0();
                if a.len() != 1 {
                    return Err(err(d, "waf.syntax", "the separator must be one character"));
                }
                self.config.argument_separator = a.as_bytes()[0];
            }
            "seccomponentsignature" => self.config.component_signatures.push(arg0().to_string()),
            "secruleremovebyid" => {
                let ranges = parse_id_ranges(&d.args.join(" ")).map_err(|m| err(d, "waf.syntax", m))?;
                self.remove_rules(|r| in_ranges(&ranges, r.id));
            }
            "secruleremovebytag" => {
                let re = regex::Regex::new(arg0()).map_err(|e| err(d, "waf.regex", e.to_string()))?;
                self.remove_rules(|r| r.has_tag(&re));
            }
            "secruleremovebymsg" => {
                let re = regex::Regex::new(arg0()).map_err(|e| err(d, "waf.regex", e.to_string()))?;
                self.remove_rules(|r| r.actions.msg.as_ref().is_some_and(|m| re.is_match(&m.literal())));
            }
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" | "secruleupdatetargetbymsg" => {
                if d.args.len() < 2 {
                    return Err(err(d, "waf.syntax", "expected a selector and targets"));
                }
                let targets = parse_targets(&d.args[1]).map_err(|m| err(d, "waf.variable", m))?;
                let select: Box<dyn Fn(&Rule) -> bool> = if lname.ends_with("byid") {
                    let ranges = parse_id_ranges(&d.args[0]).map_err(|m| err(d, "waf.syntax", m))?;
                    Box::new(move |r: &Rule| in_ranges(&ranges, r.id))
                } else {
                    let re = regex::Regex::new(&d.args[0]).map_err(|e| err(d, "waf.regex", e.to_string()))?;
                    if lname.ends_with("bytag") {
                        Box::new(move |r: &Rule| r.has_tag(&re))
                    } else {
                        Box::new(move |r: &Rule| {
                            r.actions.msg.as_ref().is_some_and(|m| re.is_match(&m.literal()))
                        })
                    }
                };
                for r in self.rules.iter_mut().filter(|r| select(r)) {
                    r.targets.extend(targets.iter().cloned());
                }
            }
            "secruleupdateactionbyid" => {
                if d.args.len() < 2 {
                    return Err(err(d, "waf.syntax", "expected an id and actions"));
                }
                let ranges = parse_id_ranges(&d.args[0]).map_err(|m| err(d, "waf.syntax", m))?;
                let upd = parse_actions(&d.args[1]).map_err(|m| err(d, "waf.action", m))?;
                for r in self.rules.iter_mut().filter(|r| in_ranges(&ranges, r.id)) {
                    merge_update(&mut r.actions, &upd);
                }
            }
            // Accepted: they configure logging, storage or the host server, which belong to the
            // adapter around this engine.
            "seccollectiontimeout"
            | "secauditengine"
            | "secauditlog"
            | "secauditlog2"
            | "secauditlogparts"
            | "secauditlogrelevantstatus"
            | "secauditlogtype"
            | "secauditlogformat"
            | "secauditlogstoragedir"
            | "secauditlogdirmode"
            | "secauditlogfilemode"
            | "secdebuglog"
            | "secdebugloglevel"
            | "sectmpdir"
            | "secdatadir"
            | "secuploaddir"
            | "secuploadkeepfiles"
            | "secuploadfilemode"
            | "secuploadfilelimit"
            | "secpcrematchlimit"
            | "secpcrematchlimitrecursion"
            | "seccookieformat"
            | "secstatusengine"
            | "secserversignature"
            | "secwebappid"
            | "sectmpsaveuploadedfiles"
            | "secrequestbodyinmemorylimit"
            | "secrequestbodyjsondepthlimit"
            | "secargumentslimit"
            | "seccookiev0separator"
            | "secxmlexternalentity"
            | "secsensorid"
            | "sechashengine"
            | "secgeolookupdb"
            | "secconnengine" => {
                if lname == "secargumentslimit" {
                    self.config.arguments_limit = one_num(d)?;
                }
                if lname == "secrequestbodyjsondepthlimit" {
                    self.config.json_depth_limit = one_num(d)?;
                }
            }
            _ => return Err(err(d, "waf.directive", format!("unknown directive {}", d.name))),
        }
        Ok(())
    }

    fn remove_rules(&mut self, pred: impl Fn(&Rule) -> bool) {
        // Removed rules stay in `rules` (indices in `order` stay valid) but leave the order.
        let rules = &self.rules;
        self.order.retain(|e| match e {
            Entry::Rule(i) => !pred(&rules[*i]),
            Entry::Marker(_) => true,
        });
    }

    fn add_rule(
        &mut self,
        d: &Directive,
        targets: Vec<crate::variable::Target>,
        operator: Operator,
        mut actions: Actions,
    ) -> Result<()> {
        let is_child = !self.chain.is_empty();
        let phase = if is_child {
            self.chain[0].phase
        } else {
            actions.phase.unwrap_or(2)
        };
        if !is_child && actions.id.is_none() {
            return Err(err(d, "waf.action", "a rule needs an id"));
        }
        if is_child && (actions.id.is_some() || actions.phase.is_some()) {
            return Err(err(
                d,
                "waf.action",
                "a chained rule cannot have an id or a phase",
            ));
        }
        if let Some(def) = &self.defaults[phase as usize] {
            if !actions.transforms_none && !def.transforms.is_empty() {
                let mut t = def.transforms.clone();
                t.extend(actions.transforms.iter().copied());
                actions.transforms = t;
            }
            if !is_child {
                if actions.disruptive.is_none() {
                    actions.disruptive = def.disruptive;
                }
                if actions.log.is_none() {
                    actions.log = def.log;
                }
                if actions.auditlog.is_none() {
                    actions.auditlog = def.auditlog;
                }
                if actions.status.is_none() {
                    actions.status = def.status;
                }
            }
        }
        if !is_child {
            actions.disruptive.get_or_insert(Disruptive::Pass);
            actions.log.get_or_insert(true);
        }
        let chain = actions.chain;
        let rule = Rule {
            id: actions.id.unwrap_or(0),
            phase,
            targets,
            operator,
            actions,
            chained: None,
            file: d.file.as_str().into(),
            line: d.line,
            image_slots: Box::default(),
            memo_bit: crate::memo::NO_MEMO,
        };
        self.chain.push(rule);
        if !chain {
            // Fold the chain into nested rules, innermost last.
            let mut tail: Option<Box<Rule>> = None;
            while let Some(mut r) = self.chain.pop() {
                r.chained = tail.take();
                tail = Some(Box::new(r));
            }
            if let Some(r) = tail {
                self.rules.push(*r);
                self.order.push(Entry::Rule(self.rules.len() - 1));
            }
        }
        Ok(())
    }

    /// Finishes the rule set. A chain left open at the end is an error.
    pub fn build(self) -> Result<Ruleset> {
        if let Some(r) = self.chain.first() {
            return Err(WafError::Rule {
                file: r.file.to_string(),
                line: r.line,
                directive: "SecRule".into(),
                code: "waf.chain",
                message: "chain action without a following rule".into(),
            });
        }
        Ok(Ruleset::new(self.config, self.rules, self.order))
    }
}

fn merge_update(a: &mut Actions, u: &Actions) {
    if u.msg.is_some() {
        a.msg = u.msg.clone();
    }
    if u.logdata.is_some() {
        a.logdata = u.logdata.clone();
    }
    if u.severity.is_some() {
        a.severity = u.severity;
    }
    if u.disruptive.is_some() {
        a.disruptive = u.disruptive;
    }
    if u.status.is_some() {
        a.status = u.status;
    }
    if u.log.is_some() {
        a.log = u.log;
    }
    if u.auditlog.is_some() {
        a.auditlog = u.auditlog;
    }
    if u.transforms_none || !u.transforms.is_empty() {
        if u.transforms_none {
            a.transforms.clear();
        }
        a.transforms.extend(u.transforms.iter().copied());
    }
    for tag in u.tags.iter() {
        a.add_tag(tag.clone());
    }
    a.effects.extend(u.effects.iter().cloned());
}
