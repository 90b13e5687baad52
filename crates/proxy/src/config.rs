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
    /// Load balancers or proxies in front (CIDR): their `X-Forwarded-For` names the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// JSON lines, one per relevant request (or every request with `audit: all`).
    pub audit_log: Option<PathBuf>,
    #[serde(default)]
    pub audit: AuditChoice,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Worker threads (default: one per CPU the process may use).
    pub workers: Option<usize>,
    /// How connections are spread over the workers (default: per-core).
    pub scheduling: Option<Scheduling>,
    /// Per-core workers keep polling without sleeping this long after a client's last read
    /// (`200us`; default off).
    pub busy_poll: Option<DurationText>,
    pub routes: Vec<RouteConfig>,
}

/// How the proxy spreads connections over its worker threads (design note 24).
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Scheduling {
    /// Each worker has its own event loop; a connection stays on the worker that accepted it,
    /// with its buffers and the engine's working set in that core's cache.
    #[default]
    PerCore,
    /// Idle workers take over any connection's work: evens out a few busy long-lived connections.
    WorkStealing,
}

impl Scheduling {
    pub const NAMES: [&'static str; 2] = ["per-core", "work-stealing"];

    pub fn parse(name: &str) -> Option<Scheduling> {
        match name {
            "per-core" => Some(Scheduling::PerCore),
            "work-stealing" => Some(Scheduling::WorkStealing),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        Scheduling::NAMES[self as usize]
    }
}

/// The most worker threads a proxy starts, whatever the machine or the configuration says.
pub const MAX_WORKERS: usize = 1024;

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
    /// Bot defence; `bots: {}` turns it on with the defaults.
    pub bots: Option<BotsConfig>,
    pub jwt: Option<JwtConfig>,
    /// The API's OpenAPI 3 document as a positive model.
    pub api: Option<ApiConfig>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BotsConfig {
    pub challenge_score: Option<u32>,
    pub block_score: Option<u32>,
    /// Networks (CIDR) whose clients skip the bot checks.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Requests per client and window above which the client scores as a flood.
    pub max_requests: Option<u32>,
    pub window: Option<DurationText>,
    pub cookie_ttl: Option<DurationText>,
    /// Signs the challenge cookie; give replicas the same file. Without it a random secret is
    /// made at start (cookies then do not survive a restart).
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// A JWKS document with the RS256 and ES256 keys.
    pub jwks: Option<PathBuf>,
    /// A file holding the HS256 secret.
    pub hs256_secret_file: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Option<DurationText>,
    /// Every request needs a valid token (otherwise only operations whose API security asks for
    /// a bearer token, and any token presented must be valid).
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub openapi: PathBuf,
    /// Refuse query parameters the operation does not declare.
    #[serde(default)]
    pub reject_unknown_query: bool,
    /// Answer CORS preflights for declared operations without a JWT.
    #[serde(default)]
    pub allow_cors_preflight: bool,
    pub max_body_bytes: Option<usize>,
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

fn read(route: &str, path: &Path) -> Result<Vec<u8>, ProxyError> {
    std::fs::read(path).map_err(|e| ProxyError::Route {
        route: route.into(),
        message: format!("cannot read {}: {e}", path.display()),
    })
}

impl RouteConfig {
    /// Builds the route: upstream, rules, rate limits, bots, JWT and API model, reading the files
    /// they name. Warnings about what a document declares but is not enforced go to `warn`.
    pub fn build(
        &self,
        rules: std::sync::Arc<palisade_waf::Ruleset>,
        warn: &mut dyn FnMut(String),
    ) -> Result<crate::Route, ProxyError> {
        let error = |message: String| ProxyError::Route {
            route: self.name.clone(),
            message,
        };
        let mut route = crate::Route::new(
            &self.name,
            self.host.as_deref(),
            &self.path_prefix,
            &self.upstream,
            rules,
        )?
        .with_rate_limits(self.rate_limits()?);
        if let Some(b) = &self.bots {
            let defaults = palisade_waf::bots::BotPolicy::default();
            let mut allow = Vec::new();
            for a in &b.allow {
                allow.push(
                    palisade_waf::bots::Cidr::parse(a).ok_or_else(|| {
                        error(format!("bots.allow: {a:?} is not an address or CIDR network"))
                    })?,
                );
            }
            let policy = palisade_waf::bots::BotPolicy {
                challenge_score: b.challenge_score.unwrap_or(defaults.challenge_score),
                block_score: b.block_score.unwrap_or(defaults.block_score),
                allow,
                max_requests: b.max_requests.unwrap_or(defaults.max_requests),
                window: b
                    .window
                    .map_or(defaults.window, |d| d.0.max(Duration::from_secs(1))),
                max_error_ratio: defaults.max_error_ratio,
                cookie_ttl: b.cookie_ttl.map_or(defaults.cookie_ttl, |d| d.0),
            };
            let secret = match &b.secret_file {
                Some(path) => {
                    let secret = read(&self.name, path)?;
                    if secret.trim_ascii().len() < 16 {
                        return Err(error(format!(
                            "bots.secret_file {}: use at least 16 bytes",
                            path.display()
                        )));
                    }
                    secret.trim_ascii().to_vec()
                }
                None => random_secret().map_err(|m| error(format!("bots: {m}")))?,
            };
            route = route.with_bots(palisade_waf::bots::BotGuard::new(policy, &secret));
        }
        if let Some(j) = &self.jwt {
            let mut builder = palisade_waf::api::JwtVerifier::builder();
            if let Some(path) = &j.jwks {
                builder = builder
                    .jwks(&read(&self.name, path)?, &path.display().to_string())
                    .map_err(|e| error(format!("jwt.jwks: {e}")))?;
            }
            if let Some(path) = &j.hs256_secret_file {
                builder = builder.hs256_secret(read(&self.name, path)?.trim_ascii());
            }
            if let Some(iss) = &j.issuer {
                builder = builder.issuer(iss);
            }
            if let Some(aud) = &j.audience {
                builder = builder.audience(aud);
            }
            if let Some(leeway) = j.leeway {
                builder = builder.leeway_seconds(leeway.0.as_secs());
            }
            let verifier = builder.build().map_err(|e| error(format!("jwt: {e}")))?;
            verifier
                .warnings()
                .iter()
                .for_each(|w| warn(format!("route {}: jwt: {w}", self.name)));
            route = route.with_jwt(crate::guards::JwtGuard {
                verifier,
                required: j.required,
            });
        }
        if let Some(a) = &self.api {
            let mut options = palisade_waf::api::ApiOptions {
                reject_unknown_query_params: a.reject_unknown_query,
                allow_cors_preflight: a.allow_cors_preflight,
                ..Default::default()
            };
            if let Some(max) = a.max_body_bytes {
                options.max_body_bytes = max;
            }
            let model = palisade_waf::api::ApiModel::from_document_with(
                &read(&self.name, &a.openapi)?,
                &a.openapi.display().to_string(),
                options,
            )
            .map_err(|e| error(format!("api: {e}")))?;
            model
                .warnings()
                .iter()
                .for_each(|w| warn(format!("route {}: api: {w}", self.name)));
            route = route.with_api(model)?;
        }
        let needs_claims = self.rate_limits.iter().any(|l| l.key.starts_with("jwt:"));
        if needs_claims && self.jwt.is_none() {
            return Err(error(
                "a rate limit keyed by a JWT claim needs jwt on the route".into(),
            ));
        }
        Ok(route)
    }

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

/// 32 random bytes from the operating system.
fn random_secret() -> Result<Vec<u8>, String> {
    use ring::rand::SecureRandom;
    let mut secret = vec![0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| "no randomness from the operating system".to_string())?;
    Ok(secret)
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "us" | "µs" => Some(Duration::from_micros(n)),
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
        if let Some(d) = &config.busy_poll
            && d.0 > Duration::from_secs(1)
        {
            return Err(error("busy_poll: at most 1s".into()));
        }
        if let Some(n) = config.workers
            && !(1..=MAX_WORKERS).contains(&n)
        {
            return Err(error(format!("workers: {n} is not between 1 and {MAX_WORKERS}")));
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
            if let Some(api) = &mut route.api {
                resolve(&mut api.openapi);
            }
            if let Some(jwt) = &mut route.jwt {
                jwt.jwks
                    .iter_mut()
                    .chain(jwt.hs256_secret_file.iter_mut())
                    .for_each(resolve);
            }
            if let Some(bots) = &mut route.bots {
                bots.secret_file.iter_mut().for_each(resolve);
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

    /// The trusted proxies, checked.
    pub fn trusted_proxies(&self, file: &Path) -> Result<Vec<palisade_waf::bots::Cidr>, ProxyError> {
        self.trusted_proxies
            .iter()
            .map(|t| {
                palisade_waf::bots::Cidr::parse(t).ok_or_else(|| ProxyError::Config {
                    file: file.display().to_string(),
                    message: format!("trusted_proxies: {t:?} is not an address or CIDR network"),
                })
            })
            .collect()
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
        let e = err("workers: 0\nroutes: [{name: a, upstream: 'http://x:1'}]\n");
        assert!(e.contains("workers: 0 is not between 1 and 1024"), "{e}");
        let e = err("scheduling: round-robin\nroutes: [{name: a, upstream: 'http://x:1'}]\n");
        assert!(e.contains("round-robin") && e.contains("per-core"), "{e}");
        let e = err("routes: []\n");
        assert!(e.contains("at least one route"), "{e}");
        let e = err("listen: [\n");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn the_example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/waf/waf.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = ServeConfig::parse(&text, &path).unwrap();
        assert_eq!(c.routes.len(), 2);
        for r in &c.routes {
            r.rate_limits().unwrap();
        }
        assert!(c.routes[0].api.as_ref().unwrap().openapi.ends_with("orders.yaml"));
        assert_eq!(c.limits(Limits::default()).max_in_flight, 1024);
        assert_eq!(c.scheduling, Some(Scheduling::PerCore));
        assert_eq!(c.workers, None);
    }

    #[test]
    fn scheduling_names_round_trip() {
        for name in Scheduling::NAMES {
            assert_eq!(Scheduling::parse(name).unwrap().name(), name);
        }
        assert_eq!(Scheduling::parse("PerCore"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("200us"), Some(Duration::from_micros(200)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("5 days"), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
    }
}
