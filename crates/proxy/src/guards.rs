//! The per-route checks that answer before the upstream is asked: bot defence, JWT verification
//! and the API's positive model. Each takes the request's parts, notes the outcome in the
//! request's record, and returns the answer to send when it refuses.

use crate::audit::{Outcome, Record};
use crate::{Answer, plain};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use palisade_waf::api::{Claims, JwtRejection, JwtVerifier, Refusal};
use palisade_waf::bots::{BotAction, BotGuard, BotRequest, CHALLENGE_COOKIE, cookie_value};
use std::net::IpAddr;

/// JWT verification on a route.
pub struct JwtGuard {
    pub verifier: JwtVerifier,
    /// Every request needs a valid token, not only the operations whose API security says so.
    pub required: bool,
}

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Bot defence: `None` lets the request on.
pub(crate) fn bots(
    guard: &BotGuard,
    headers: &HeaderMap,
    version: &str,
    client_ip: IpAddr,
    now_ns: u64,
    record: &mut Record,
) -> Option<Answer> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| cookie_value(c, CHALLENGE_COOKIE));
    let user_agent = text(headers, header::USER_AGENT);
    let request = BotRequest {
        client_ip,
        version,
        host: &record.host,
        user_agent,
        accept: text(headers, header::ACCEPT),
        accept_language: text(headers, header::ACCEPT_LANGUAGE),
        accept_encoding: text(headers, header::ACCEPT_ENCODING),
        challenge_cookie: cookie,
    };
    let now_unix = record.unix_time.max(0) as u64;
    let assessment = guard.assess(&request, now_ns, now_unix);
    let reasons = format!(
        "bot score {}: {}",
        assessment.score,
        assessment.reasons.join("; ")
    );
    match assessment.action {
        BotAction::Allow => None,
        BotAction::Block => {
            record.outcome(Outcome::BotBlocked, reasons);
            Some(plain(StatusCode::FORBIDDEN, "request refused: automated client"))
        }
        BotAction::Challenge => {
            record.outcome(Outcome::BotChallenged, reasons);
            let token = guard.challenge_token(client_ip, user_agent.unwrap_or(""), now_unix);
            let mut r = Response::new(crate::body::full(guard.challenge_page(&token)));
            *r.status_mut() = StatusCode::FORBIDDEN;
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Some(r)
        }
    }
}

/// The bearer token's claims when one is presented and valid; a refusal when it is invalid, or
/// missing on a route that requires one.
// The error is the answer itself, built once per refused request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn jwt(
    guard: &JwtGuard,
    headers: &HeaderMap,
    record: &mut Record,
) -> Result<Option<Claims>, Answer> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| palisade_waf::api::jwt::bearer_token(v.as_bytes()));
    match token {
        Some(token) => match guard.verifier.verify(token, record.unix_time.max(0) as u64) {
            Ok(claims) => Ok(Some(claims)),
            Err(rejection) => Err(unauthorized(Some(&rejection), record)),
        },
        None if guard.required => Err(unauthorized(None, record)),
        None => Ok(None),
    }
}

/// 401 with the `WWW-Authenticate` challenge of RFC 6750.
pub(crate) fn unauthorized(rejection: Option<&JwtRejection>, record: &mut Record) -> Answer {
    let (challenge, reason) = match rejection {
        None => (
            "Bearer realm=\"palisade\"".to_string(),
            "no bearer token".to_string(),
        ),
        Some(r) => (
            format!(
                "Bearer realm=\"palisade\", error=\"invalid_token\", error_description=\"{}\"",
                r.code()
            ),
            format!("invalid bearer token: {r}"),
        ),
    };
    record.outcome(Outcome::Unauthorized, reason);
    let mut r = plain(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The API model's refusal as an RFC 9457 problem document listing the violations.
pub(crate) fn api_refusal(refusal: &Refusal<'_>, record: &mut Record) -> Answer {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    let title = match refusal.status {
        404 => "unknown path",
        405 => "method not allowed for this path",
        413 => "request body too large for this operation",
        415 => "content type not accepted by this operation",
        _ => "request does not match the API",
    };
    let summary: Vec<String> = refusal
        .violations
        .iter()
        .map(|v| format!("{}: {}", v.location, v.message))
        .collect();
    record.outcome(
        Outcome::ApiRefused,
        if summary.is_empty() {
            title.to_string()
        } else {
            format!("{title}: {}", summary.join("; "))
        },
    );
    let body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": refusal.status,
        "route": refusal.route_template,
        "violations": refusal.violations.iter().map(|v| serde_json::json!({
            "location": v.location,
            "message": v.message,
        })).collect::<Vec<_>>(),
    });
    let mut r = Response::new(crate::body::full(body.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if !refusal.allow.is_empty()
        && let Ok(v) = HeaderValue::from_str(&refusal.allow.join(", "))
    {
        h.insert(header::ALLOW, v);
    }
    r
}
