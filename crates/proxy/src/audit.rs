//! What happened to one request, kept while it is handled: the route, the outcome, the rules that
//! matched. It feeds the metrics and the JSON audit log (one object per line, for log shippers).

use std::io::Write;
use std::sync::Mutex;

/// Where log lines go.
pub enum LogSink {
    Stderr,
    File(Mutex<std::fs::File>),
}

impl LogSink {
    /// Appends to `path`, creating it.
    pub fn file(path: &std::path::Path) -> std::io::Result<LogSink> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogSink::File(Mutex::new(f)))
    }

    /// Writes `lines` at once (one write, so concurrent requests do not interleave).
    pub fn write(&self, lines: &str) {
        match self {
            LogSink::Stderr => {
                let _ = std::io::stderr().lock().write_all(lines.as_bytes());
            }
            LogSink::File(f) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = f.write_all(lines.as_bytes());
                let _ = f.flush();
            }
        }
    }
}

/// Which requests the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditScope {
    /// Requests that matched a rule or were not simply forwarded (ModSecurity's RelevantOnly).
    #[default]
    Relevant,
    All,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Forwarded,
    /// A WAF rule interrupted it.
    Blocked,
    /// The HTTP layer refused it (framing, limits, bad body).
    Refused,
    /// Too many requests in flight (503).
    Shed,
    NoRoute,
    RateLimited,
    /// The route's API model refused it.
    ApiRefused,
    /// The route demands a valid JWT and there was none.
    Unauthorized,
    BotChallenged,
    BotBlocked,
    UpstreamError,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Blocked => "blocked",
            Outcome::Refused => "refused",
            Outcome::Shed => "shed",
            Outcome::NoRoute => "no_route",
            Outcome::RateLimited => "rate_limited",
            Outcome::ApiRefused => "api_refused",
            Outcome::Unauthorized => "unauthorized",
            Outcome::BotChallenged => "bot_challenged",
            Outcome::BotBlocked => "bot_blocked",
            Outcome::UpstreamError => "upstream_error",
        }
    }
}

pub struct RuleHit {
    pub id: u64,
    pub msg: String,
    pub data: String,
    pub severity: Option<u8>,
    pub tags: Vec<String>,
}

/// One request's record.
pub struct Record {
    pub unique_id: String,
    pub unix_time: i64,
    pub client_ip: String,
    pub client_port: u16,
    pub method: String,
    pub uri: String,
    pub host: String,
    pub user_agent: String,
    pub route: Option<String>,
    pub outcome: Outcome,
    /// Why it was refused, limited or blocked, in words.
    pub reason: Option<String>,
    pub status: u16,
    pub rules: Vec<RuleHit>,
    /// The rate limit whose headers the answer carries.
    pub rate: Option<crate::limiter::Tightest>,
}

impl Record {
    pub fn outcome(&mut self, outcome: Outcome, reason: impl Into<String>) {
        self.outcome = outcome;
        self.reason = Some(reason.into());
    }

    pub fn is_relevant(&self) -> bool {
        self.outcome != Outcome::Forwarded || !self.rules.is_empty()
    }

    /// The audit-log line: one JSON object, then a newline.
    pub fn to_json_line(&self, duration_seconds: f64) -> String {
        let rules: Vec<serde_json::Value> = self
            .rules
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "msg": r.msg,
                    "data": r.data,
                    "severity": r.severity.map(palisade_waf::severity_name),
                    "tags": r.tags,
                })
            })
            .collect();
        let value = serde_json::json!({
            "time": palisade_core::date::rfc3339_utc(self.unix_time),
            "unique_id": self.unique_id,
            "client": {"ip": self.client_ip, "port": self.client_port},
            "request": {
                "method": self.method,
                "uri": self.uri,
                "host": self.host,
                "user_agent": self.user_agent,
            },
            "route": self.route,
            "outcome": self.outcome.label(),
            "reason": self.reason,
            "status": self.status,
            "duration_ms": (duration_seconds * 1e6).round() / 1e3,
            "rules": rules,
        });
        let mut line = value.to_string();
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_shape() {
        let mut r = Record {
            unique_id: "a-1".into(),
            unix_time: 1_790_000_000,
            client_ip: "203.0.113.9".into(),
            client_port: 5555,
            method: "GET".into(),
            uri: "/x?id=1".into(),
            host: "shop.example".into(),
            user_agent: "curl/8".into(),
            route: Some("shop".into()),
            outcome: Outcome::Forwarded,
            reason: None,
            status: 403,
            rules: vec![RuleHit {
                id: 942100,
                msg: "SQL Injection Attack Detected via libinjection".into(),
                data: "Matched Data: s&1c found".into(),
                severity: Some(2),
                tags: vec!["attack-sqli".into()],
            }],
            rate: None,
        };
        assert!(r.is_relevant());
        r.outcome(Outcome::Blocked, "Inbound Anomaly Score Exceeded");
        let line = r.to_json_line(0.0012345);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["outcome"], "blocked");
        assert_eq!(v["rules"][0]["id"], 942100);
        assert_eq!(v["rules"][0]["severity"], "CRITICAL");
        assert_eq!(v["client"]["ip"], "203.0.113.9");
        assert_eq!(v["duration_ms"], 1.235);
        assert_eq!(v["time"], "2026-09-21T14:13:20Z");
    }
}
