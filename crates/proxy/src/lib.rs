//! `palisade waf serve`: an HTTP reverse proxy that runs every exchange through a WAF
//! [`Transaction`](palisade_waf::Transaction): request headers (phase 1), the buffered request body
//! (phase 2), response headers (3), the response body (4) and logging (5). A disruptive verdict
//! answers the client with the rule's status instead of forwarding; every matched rule is written as
//! one ModSecurity-style error-log line. This first cut buffers bodies (bounded by the rule set's
//! `SecRequestBodyLimit` / `SecResponseBodyLimit`); TLS, rate limits, bots and APIs come later.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use palisade_waf::{Disruptive, Intervention, Ruleset};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid upstream URL {0:?}: expected http://host:port")]
    Upstream(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// Where matched-rule lines go.
pub enum ErrorLog {
    Stderr,
    File(Mutex<std::fs::File>),
}

impl ErrorLog {
    fn write(&self, lines: &str) {
        match self {
            ErrorLog::Stderr => {
                let _ = std::io::stderr().lock().write_all(lines.as_bytes());
            }
            ErrorLog::File(f) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = f.write_all(lines.as_bytes());
                let _ = f.flush();
            }
        }
    }
}

/// What one proxy instance needs.
pub struct Proxy {
    rules: Arc<Ruleset>,
    upstream_scheme_authority: String,
    client: Client<HttpConnector, Full<Bytes>>,
    log: ErrorLog,
    /// Largest response body buffered for inspection.
    max_response_bytes: usize,
    /// Largest request body buffered, whatever the engine does with it: in DetectionOnly mode or
    /// with ProcessPartial the engine keeps only its own limit and lets the rest through, so the
    /// proxy needs its own bound or a client could make it buffer without end.
    pub max_request_bytes: usize,
    next_id: std::sync::atomic::AtomicU64,
}

/// Request headers that describe one hop and are not forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Proxy {
    pub fn new(rules: Arc<Ruleset>, upstream: &str, log: ErrorLog) -> Result<Proxy, ProxyError> {
        let uri: hyper::Uri = upstream
            .parse()
            .map_err(|_| ProxyError::Upstream(upstream.into()))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(ProxyError::Upstream(upstream.into()));
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build_http();
        Ok(Proxy {
            rules,
            upstream_scheme_authority: format!(
                "http://{}",
                uri.authority().map(|a| a.as_str()).unwrap_or("")
            ),
            client,
            log,
            max_response_bytes: 16 << 20,
            max_request_bytes: 64 << 20,
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Accepts connections on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ProxyError> {
        let local = listener.local_addr().map_err(|e| ProxyError::Io {
            what: "listener".into(),
            source: e,
        })?;
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => continue,
                },
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, peer, local).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let rules = self.rules.clone();
        let mut tx = rules.transaction();
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tx.set_unique_id(&format!("{:x}-{id:x}", std::process::id()));
        tx.set_connection(
            &peer.ip().to_string(),
            peer.port(),
            &local.ip().to_string(),
            local.port(),
        );
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let version = version_text(parts.version);
        tx.set_request_line(
            parts.method.as_str().as_bytes(),
            path.as_bytes(),
            version.as_bytes(),
        );
        for (name, value) in &parts.headers {
            tx.add_request_header(name.as_str().as_bytes(), value.as_bytes());
        }
        if parts.version == hyper::Version::HTTP_2
            && let Some(host) = parts.uri.authority()
            && !parts.headers.contains_key(hyper::header::HOST)
        {
            tx.add_request_header(b"Host", host.as_str().as_bytes());
        }
        let verdict =
            |tx: &mut palisade_waf::Transaction<'_>, i: Option<Intervention>| i.map(|i| self.deny(tx, &i));
        let early = tx.process_request_headers().cloned();
        if let Some(resp) = verdict(&mut tx, early) {
            return resp;
        }
        // The request body, buffered for inspection; the engine enforces its own limits.
        let mut body = body;
        let mut buffered: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return self.finish(&mut tx, plain(StatusCode::BAD_REQUEST, "bad request body"));
            };
            if let Some(chunk) = frame.data_ref() {
                if buffered.len() + chunk.len() > self.max_request_bytes {
                    return self.finish(
                        &mut tx,
                        plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
                    );
                }
                if tx.append_request_body(chunk).is_err() {
                    return self.finish(
                        &mut tx,
                        plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
                    );
                }
                buffered.extend_from_slice(chunk);
                if let Some(i) = tx.intervention().cloned() {
                    return self.deny(&mut tx, &i);
                }
            }
        }
        let after_body = tx.process_request_body().cloned();
        if let Some(resp) = verdict(&mut tx, after_body) {
            return resp;
        }

        let mut upstream = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", self.upstream_scheme_authority));
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                upstream = upstream.header(name, value);
            }
        }
        let forwarded_for = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        upstream = upstream.header("x-forwarded-for", forwarded_for);
        let Ok(upstream) = upstream.body(Full::new(Bytes::from(buffered))) else {
            return self.finish(&mut tx, plain(StatusCode::BAD_REQUEST, "bad request"));
        };
        let response = match self.client.request(upstream).await {
            Ok(r) => r,
            Err(_) => return self.finish(&mut tx, plain(StatusCode::BAD_GATEWAY, "upstream unavailable")),
        };
        let (rparts, rbody) = response.into_parts();
        tx.set_response_status(rparts.status.as_u16(), version_text(rparts.version).as_bytes());
        for (name, value) in &rparts.headers {
            tx.add_response_header(name.as_str().as_bytes(), value.as_bytes());
        }
        let resp_headers = tx.process_response_headers().cloned();
        if let Some(resp) = verdict(&mut tx, resp_headers) {
            return resp;
        }
        let mut rbody = rbody;
        let mut out: Vec<u8> = Vec::new();
        while let Some(frame) = rbody.frame().await {
            let Ok(frame) = frame else {
                return self.finish(&mut tx, plain(StatusCode::BAD_GATEWAY, "upstream body failed"));
            };
            if let Some(chunk) = frame.data_ref() {
                if out.len() + chunk.len() > self.max_response_bytes {
                    return self.finish(&mut tx, plain(StatusCode::BAD_GATEWAY, "upstream body too large"));
                }
                // Past the engine's response limit the rest goes through uninspected.
                let _ = tx.append_response_body(chunk);
                out.extend_from_slice(chunk);
            }
        }
        let resp_body = tx.process_response_body().cloned();
        if let Some(resp) = verdict(&mut tx, resp_body) {
            return resp;
        }
        let mut builder = Response::builder().status(rparts.status);
        for (name, value) in &rparts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) && name != hyper::header::CONTENT_LENGTH {
                builder = builder.header(name, value);
            }
        }
        let response = builder
            .body(Full::new(Bytes::from(out)))
            .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "bad upstream response"));
        self.finish(&mut tx, response)
    }

    /// The answer to a disruptive verdict.
    fn deny(&self, tx: &mut palisade_waf::Transaction<'_>, i: &Intervention) -> Response<Full<Bytes>> {
        let response = match i.disruption {
            Disruptive::Redirect => Response::builder()
                .status(StatusCode::FOUND)
                .header("location", i.url.clone().unwrap_or_default())
                .body(Full::new(Bytes::new()))
                .unwrap_or_else(|_| plain(StatusCode::FORBIDDEN, "forbidden")),
            Disruptive::Drop => {
                let mut r = plain(StatusCode::FORBIDDEN, "forbidden");
                r.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
                r
            }
            _ => plain(
                StatusCode::from_u16(i.status).unwrap_or(StatusCode::FORBIDDEN),
                "request blocked by the web application firewall",
            ),
        };
        self.finish(tx, response)
    }

    /// Runs the logging phase and writes one error-log line per matched rule (not for `nolog`
    /// rules: they ran their actions, such as setting CRS's variables, but are not reported).
    fn finish(
        &self,
        tx: &mut palisade_waf::Transaction<'_>,
        response: Response<Full<Bytes>>,
    ) -> Response<Full<Bytes>> {
        tx.process_logging();
        let matched: Vec<&palisade_waf::MatchedRule> = tx.matched_rules().iter().filter(|m| m.log).collect();
        if !matched.is_empty() {
            let uri = tx.request_uri();
            let mut lines = String::new();
            for m in matched {
                lines.push_str(&palisade_waf::format_error_log(
                    m,
                    tx.client_addr(),
                    tx.server_name(),
                    &uri,
                    tx.unique_id(),
                ));
                lines.push('\n');
            }
            self.log.write(&lines);
        }
        response
    }
}

fn version_text(v: hyper::Version) -> &'static str {
    match v {
        hyper::Version::HTTP_09 => "HTTP/0.9",
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
