//! ModSecurity-style error-log lines (`[id "942100"] [msg "..."] ...`): the shape CRS tooling,
//! go-ftw and log pipelines parse, so it is kept stable and covered by a golden test.

use crate::rule::severity_name;
use crate::transaction::MatchedRule;

/// Escapes a value for a `[name "value"]` field: quotes and backslashes are escaped and bytes
/// outside printable ASCII become `\xHH`, so one match is always one line.
fn esc(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
}

fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(" [");
    out.push_str(name);
    out.push_str(" \"");
    esc(value, out);
    out.push_str("\"]");
}

/// One line for a matched rule, e.g.
/// `ModSecurity: Warning. Matched "Operator `rx' ..." [file "..."] [line "..."] [id "942100"] ...`.
pub fn format_error_log(m: &MatchedRule, client: &str, hostname: &str, uri: &str, unique_id: &str) -> String {
    let mut out = String::new();
    if !client.is_empty() {
        out.push_str("[client ");
        esc(client, &mut out);
        out.push_str("] ");
    }
    out.push_str("ModSecurity: ");
    match m.interrupted {
        Some(code) => out.push_str(&format!("Access denied with code {code} (phase {}).", m.phase)),
        None => out.push_str("Warning."),
    }
    out.push_str(" Matched \"Operator `");
    esc(m.operator(), &mut out);
    out.push_str("' with parameter `");
    esc(&m.operator_arg().chars().take(200).collect::<String>(), &mut out);
    out.push_str("' against variable `");
    esc(&m.matched_var_name, &mut out);
    out.push_str("' (Value: `");
    esc(
        &String::from_utf8_lossy(&m.matched_var)
            .chars()
            .take(200)
            .collect::<String>(),
        &mut out,
    );
    out.push_str("' )\"");
    field(&mut out, "file", m.file());
    field(&mut out, "line", &m.line().to_string());
    field(&mut out, "id", &m.id.to_string());
    if let Some(r) = m.rev() {
        field(&mut out, "rev", r);
    }
    if !m.msg.is_empty() {
        field(&mut out, "msg", &m.msg);
    }
    if !m.data.is_empty() {
        field(&mut out, "data", &m.data);
    }
    if let Some(s) = m.severity {
        field(&mut out, "severity", severity_name(s));
    }
    if let Some(v) = m.ver() {
        field(&mut out, "ver", v);
    }
    if let Some(v) = m.maturity() {
        field(&mut out, "maturity", v);
    }
    if let Some(v) = m.accuracy() {
        field(&mut out, "accuracy", v);
    }
    for t in m.tags() {
        field(&mut out, "tag", t);
    }
    field(&mut out, "hostname", hostname);
    field(&mut out, "uri", uri);
    field(&mut out, "unique_id", unique_id);
    out
}
