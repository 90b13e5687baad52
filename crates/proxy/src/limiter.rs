//! Per-route rate limits: where each limit's key comes from (client address, a header such as an
//! API key, a verified JWT claim, the route or API operation), the GCRA check from
//! [`palisade_waf::ratelimit`], and the `RateLimit` / `Retry-After` headers of the answer.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use palisade_waf::ratelimit::{Quota, RateDecision, RateStore, check};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    ClientIp,
    /// A request header (an API key, a tenant id); clients without it are counted by address.
    Header(HeaderName),
    /// A claim of the request's verified JWT (the route must verify JWTs); clients without one
    /// are counted by address.
    JwtClaim(String),
    /// One bucket per route, or per API operation (method and path template) when the route has
    /// an API model.
    Route,
}

impl RateKey {
    /// `ip`, `route`, `header:NAME` or `jwt:CLAIM`.
    pub fn parse(text: &str) -> Result<RateKey, String> {
        match text.split_once(':') {
            None if text == "ip" => Ok(RateKey::ClientIp),
            None if text == "route" => Ok(RateKey::Route),
            Some(("header", name)) => HeaderName::from_bytes(name.trim().as_bytes())
                .map(RateKey::Header)
                .map_err(|_| format!("{name:?} is not a header name")),
            Some(("jwt", claim)) if !claim.trim().is_empty() => {
                Ok(RateKey::JwtClaim(claim.trim().to_string()))
            }
            _ => Err(format!(
                "key {text:?}: expected ip, route, header:NAME or jwt:CLAIM"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimit {
    pub name: String,
    pub key: RateKey,
    pub quota: Quota,
}

/// What the request brings to derive keys from.
pub struct KeyContext<'a> {
    pub client_ip: IpAddr,
    pub headers: &'a HeaderMap,
    pub claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The route's name, or the API operation (`GET /users/{id}`) when known.
    pub operation: &'a str,
}

/// The limit that decides the answer: the first refusal, or else the one with the fewest
/// requests left.
#[derive(Debug, Clone)]
pub struct Tightest {
    pub name: String,
    pub quota: Quota,
    pub decision: RateDecision,
}

pub struct Limiter {
    store: Arc<dyn RateStore>,
    epoch: Instant,
}

impl Limiter {
    pub fn new(store: Arc<dyn RateStore>) -> Limiter {
        Limiter {
            store,
            epoch: Instant::now(),
        }
    }

    pub fn check(&self, route: &str, limits: &[RateLimit], ctx: &KeyContext<'_>) -> Option<Tightest> {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let mut tightest: Option<Tightest> = None;
        for limit in limits {
            let value = key_value(&limit.key, ctx);
            let key = format!("{route}\u{0}{}\u{0}{value}", limit.name);
            let decision = check(self.store.as_ref(), &key, &limit.quota, now);
            let replace = match &tightest {
                None => true,
                Some(t) => {
                    (!decision.allowed && t.decision.allowed)
                        || (decision.allowed == t.decision.allowed
                            && decision.remaining < t.decision.remaining)
                }
            };
            if replace {
                tightest = Some(Tightest {
                    name: limit.name.clone(),
                    quota: limit.quota,
                    decision,
                });
            }
            if !decision.allowed {
                break;
            }
        }
        tightest
    }
}

fn key_value(key: &RateKey, ctx: &KeyContext<'_>) -> String {
    let by_address = || format!("ip:{}", ctx.client_ip);
    match key {
        RateKey::ClientIp => by_address(),
        RateKey::Route => ctx.operation.to_string(),
        RateKey::Header(name) => match ctx.headers.get(name) {
            // Bounded: a megabyte-long header must not become a megabyte-long key.
            Some(v) => format!("h:{}", String::from_utf8_lossy(&v.as_bytes()[..v.len().min(256)])),
            None => by_address(),
        },
        RateKey::JwtClaim(claim) => match ctx.claims.and_then(|c| c.get(claim)) {
            Some(serde_json::Value::String(s)) => format!("c:{}", &s[..s.floor_char_boundary(256)]),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => format!("c:{v}"),
            _ => by_address(),
        },
    }
}

fn seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Adds the `RateLimit-*` headers (and `Retry-After` on a refusal) for `t` to `headers`.
pub fn add_headers(headers: &mut HeaderMap, t: &Tightest) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set("ratelimit-limit", t.quota.burst.to_string());
    set("ratelimit-remaining", t.decision.remaining.to_string());
    set("ratelimit-reset", seconds_up(t.decision.reset_after).to_string());
    set(
        "ratelimit-policy",
        format!(
            "{};w={};burst={};name=\"{}\"",
            t.quota.count,
            seconds_up(t.quota.period),
            t.quota.burst,
            t.name.replace(['"', '\\'], "")
        ),
    );
    if !t.decision.allowed {
        set(
            "retry-after",
            seconds_up(t.decision.retry_after).max(1).to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_waf::ratelimit::MemoryStore;

    #[test]
    fn keys_parse() {
        assert_eq!(RateKey::parse("ip"), Ok(RateKey::ClientIp));
        assert_eq!(RateKey::parse("route"), Ok(RateKey::Route));
        assert_eq!(
            RateKey::parse("header:X-Api-Key"),
            Ok(RateKey::Header(HeaderName::from_static("x-api-key")))
        );
        assert_eq!(RateKey::parse("jwt:sub"), Ok(RateKey::JwtClaim("sub".into())));
        assert!(RateKey::parse("cookie:x").is_err());
        assert!(RateKey::parse("header:bad name").is_err());
        assert!(RateKey::parse("jwt:").is_err());
    }

    #[test]
    fn tightest_limit_and_headers() {
        let limiter = Limiter::new(Arc::new(MemoryStore::new(1000)));
        let limits = vec![
            RateLimit {
                name: "per-ip".into(),
                key: RateKey::ClientIp,
                quota: Quota::parse("100/m", None).unwrap(),
            },
            RateLimit {
                name: "per-key".into(),
                key: RateKey::Header(HeaderName::from_static("x-api-key")),
                quota: Quota::parse("2/m", None).unwrap(),
            },
        ];
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k1"));
        let ctx = KeyContext {
            client_ip: "10.0.0.1".parse().unwrap(),
            headers: &headers,
            claims: None,
            operation: "shop",
        };
        let t = limiter.check("shop", &limits, &ctx).unwrap();
        assert_eq!(
            (t.name.as_str(), t.decision.allowed, t.decision.remaining),
            ("per-key", true, 1)
        );
        limiter.check("shop", &limits, &ctx).unwrap();
        let t = limiter.check("shop", &limits, &ctx).unwrap();
        assert!(!t.decision.allowed);
        let mut out = HeaderMap::new();
        add_headers(&mut out, &t);
        assert_eq!(out["retry-after"], "30");
        assert_eq!(out["ratelimit-limit"], "2");
        assert_eq!(out["ratelimit-remaining"], "0");
        assert_eq!(out["ratelimit-policy"], "2;w=60;burst=2;name=\"per-key\"");
        // Another API key has its own bucket.
        let mut other = HeaderMap::new();
        other.insert("x-api-key", HeaderValue::from_static("k2"));
        let ctx = KeyContext {
            client_ip: "10.0.0.1".parse().unwrap(),
            headers: &other,
            claims: None,
            operation: "shop",
        };
        assert!(limiter.check("shop", &limits, &ctx).unwrap().decision.allowed);
    }
}
