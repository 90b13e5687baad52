//! The configuration file of `palisade waf serve --config FILE` (YAML): listeners, TLS, logs,
//! limits and several routes, each with its own upstream and rules. Unknown keys are errors, so a
//! typo cannot silently turn a defence off. Relative paths are relative to the file.
//!
//! ```yaml
//! listen: 0.0.0.0:8443
//! tls: {cert: tls.crt, key: tls.key}
//! admin: 127.0.0.1:9901
//! rules: [crs-setup.conf, crs/rules]
//! error_log: waf-error.log
//! audit_log: waf-audit.jsonl
//! limits: {header_timeout: 10s, max_connections_per_ip: 128, max_body_bytes: 10485760}
//! routes:
//!   - {name: api, host: api.example.com, path_prefix: /v1, upstream: "http://api:8080"}
//!   - {name: web, upstream: "http://web:80"}
//! ```

use crate::{Limits, ProxyError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: Option<String>,
    pub tls: Option<TlsFiles>,
    /// Address of the admin endpoints (/healthz, /readyz, /metrics).
    pub admin: Option<String>,
    /// The rule set of every route that names none: files, or directories of `*.conf`.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    pub error_log: Option<PathBuf>,
    /// JSON lines, one per relevant request (or every request with `audit: all`).
    pub audit_log: Option<PathBuf>,
    #[serde(default)]
    pub audit: AuditChoice,
    #[serde(default)]
    pub limits: LimitsConfig,
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuditChoice {
    #[default]
    Relevant,
    All,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub host: Option<String>,
    #[serde(default = "root")]
    pub path_prefix: String,
    pub upstream: String,
    /// This route's own rule set instead of the top-level one; `[]` inspects nothing.
    pub rules: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimitConfig>,
}

/// `{name: per-client, key: ip, rate: 100/s, burst: 200}`; keys: `ip`, `route`, `header:NAME`,
/// `jwt:CLAIM`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub name: String,
    pub key: String,
    pub rate: String,
    pub burst: Option<u32>,
}

impl RouteConfig {
    /// The route's rate limits, checked.
    pub fn rate_limits(&self) -> Result<Vec<crate::limiter::RateLimit>, ProxyError> {
        let error = |message: String| ProxyError::Route {
            route: self.name.clone(),
            message,
        };
        let mut out = Vec::new();
        for l in &self.rate_limits {
            let key = crate::limiter::RateKey::parse(&l.key)
                .map_err(|m| error(format!("rate limit {}: {m}", l.name)))?;
            let quota = palisade_waf::ratelimit::Quota::parse(&l.rate, l.burst).ok_or_else(|| {
                error(format!(
                    "rate limit {}: rate {:?} (expected COUNT/PERIOD such as 100/s, 600/m, 10/30s)",
                    l.name, l.rate
                ))
            })?;
            if out.iter().any(|o: &crate::limiter::RateLimit| o.name == l.name) {
                return Err(error(format!("two rate limits named {}", l.name)));
            }
            out.push(crate::limiter::RateLimit {
                name: l.name.clone(),
                key,
                quota,
            });
        }
        Ok(out)
    }
}

fn root() -> String {
    "/".into()
}

/// Every limit is optional; what is left out keeps its default ([`Limits::default`]).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: Option<usize>,
    pub max_response_body_bytes: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    pub header_timeout: Option<DurationText>,
    pub idle_timeout: Option<DurationText>,
    pub upstream_timeout: Option<DurationText>,
    pub min_body_rate: Option<u64>,
    pub body_grace: Option<DurationText>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_in_flight: Option<usize>,
}

/// A duration written `500ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(DurationText(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t).map(DurationText).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a duration (expected e.g. 500ms, 10s, 5m, 1h)"
                ))
            }),
        }
    }
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

impl ServeConfig {
    /// Parses the file's text; `file` names it in errors (serde's line and column are kept).
    pub fn parse(text: &str, file: &Path) -> Result<ServeConfig, ProxyError> {
        let error = |message: String| ProxyError::Config {
            file: file.display().to_string(),
            message,
        };
        if text.len() > 4 << 20 {
            return Err(error("larger than 4 MiB".into()));
        }
        let mut config: ServeConfig = serde_yaml_ng::from_str(text).map_err(|e| error(e.to_string()))?;
        if config.routes.is_empty() {
            return Err(error("routes: at least one route is needed".into()));
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        config.rules.iter_mut().for_each(resolve);
        for route in &mut config.routes {
            if let Some(rules) = &mut route.rules {
                rules.iter_mut().for_each(resolve);
            }
        }
        if let Some(tls) = &mut config.tls {
            resolve(&mut tls.cert);
            resolve(&mut tls.key);
        }
        for p in [&mut config.error_log, &mut config.audit_log]
            .into_iter()
            .flatten()
        {
            resolve(p);
        }
        Ok(config)
    }

    /// `base` with this file's limits applied.
    pub fn limits(&self, base: Limits) -> Limits {
        let l = &self.limits;
        let mut out = base;
        let set = |target: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *target = v.max(1);
            }
        };
        set(&mut out.max_request_body, l.max_body_bytes);
        set(&mut out.max_response_body, l.max_response_body_bytes);
        set(&mut out.framing.max_header_bytes, l.max_header_bytes);
        set(&mut out.framing.max_headers, l.max_headers);
        set(&mut out.max_connections, l.max_connections);
        set(&mut out.max_connections_per_ip, l.max_connections_per_ip);
        set(&mut out.max_in_flight, l.max_in_flight);
        if let Some(d) = l.header_timeout {
            out.timeouts.header = d.0.max(Duration::from_millis(100));
        }
        if let Some(d) = l.idle_timeout {
            out.timeouts.idle = d.0.max(Duration::from_millis(100));
        }
        if let Some(d) = l.upstream_timeout {
            out.upstream_timeout = d.0.max(Duration::from_millis(100));
        }
        if let Some(d) = l.body_grace {
            out.body_rate_grace = d.0;
        }
        if let Some(r) = l.min_body_rate {
            out.min_body_rate = r;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_parses_and_resolves_paths() {
        let text = r#"
listen: 0.0.0.0:8443
tls: {cert: certs/tls.crt, key: /etc/tls.key}
admin: 127.0.0.1:9901
rules: [crs-setup.conf, rules]
audit_log: audit.jsonl
audit: all
limits: {header_timeout: 3s, idle_timeout: 2m, max_connections_per_ip: 10, body_grace: 500ms, min_body_rate: 0}
routes:
  - {name: api, host: api.example.com, path_prefix: /v1, upstream: "http://127.0.0.1:9000", rules: []}
  - {name: web, upstream: "http://127.0.0.1:9001"}
"#;
        let c = ServeConfig::parse(text, Path::new("/srv/waf/waf.yaml")).unwrap();
        assert_eq!(
            c.rules,
            vec![
                PathBuf::from("/srv/waf/crs-setup.conf"),
                PathBuf::from("/srv/waf/rules")
            ]
        );
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.cert, PathBuf::from("/srv/waf/certs/tls.crt"));
        assert_eq!(tls.key, PathBuf::from("/etc/tls.key"));
        assert_eq!(c.audit, AuditChoice::All);
        assert_eq!(c.routes[1].path_prefix, "/");
        assert_eq!(c.routes[0].rules.as_deref(), Some(&[][..]));
        let limits = c.limits(Limits::default());
        assert_eq!(limits.timeouts.header, Duration::from_secs(3));
        assert_eq!(limits.timeouts.idle, Duration::from_secs(120));
        assert_eq!(limits.max_connections_per_ip, 10);
        assert_eq!(limits.body_rate_grace, Duration::from_millis(500));
        assert_eq!(limits.min_body_rate, 0);
        assert_eq!(limits.max_in_flight, Limits::default().max_in_flight);
    }

    #[test]
    fn mistakes_are_named() {
        let file = Path::new("waf.yaml");
        let err = |text: &str| ServeConfig::parse(text, file).unwrap_err().to_string();
        let e = err("routes:\n  - {name: a, upstream: 'http://x:1', path_prefx: /}\n");
        assert!(e.contains("waf.yaml") && e.contains("path_prefx"), "{e}");
        let e = err("limits: {header_timeout: 10 parsecs}\nroutes: [{name: a, upstream: 'http://x:1'}]\n");
        assert!(e.contains("not a duration"), "{e}");
        let e = err("routes: []\n");
        assert!(e.contains("at least one route"), "{e}");
        let e = err("listen: [\n");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("5 days"), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
    }
}
