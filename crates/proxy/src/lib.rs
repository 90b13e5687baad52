//! `palisade waf serve`: an HTTP reverse proxy that runs every exchange through a WAF
//! [`Transaction`](palisade_waf::Transaction): request headers (phase 1), the buffered request body
//! (phase 2), response headers (3), the response body (4) and logging (5). A disruptive verdict
//! answers the client with the rule's status instead of forwarding; every matched rule is written as
//! one ModSecurity-style error-log line. Bodies are buffered for inspection, bounded by
//! [`Limits`]. Before hyper, each connection's bytes go through the [`framing`] guard (request
//! smuggling shapes, head limits) and the connection adapter's timeouts; connections are capped in
//! total and per client address, and requests in flight are capped with load shedding (503).

pub mod conn;
pub mod framing;

use conn::{ConnShared, ConnectionLimiter, GuardedIo, InFlight, SharedConn, Timeouts};
use framing::{FramingGuard, FramingLimits, HeadVerdict};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use palisade_waf::{Disruptive, Intervention, Ruleset};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

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

/// The bounds the proxy keeps whatever the rules say.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body buffered, whatever the engine does with it: in DetectionOnly mode or
    /// with ProcessPartial the engine keeps only its own limit and lets the rest through, so the
    /// proxy needs its own bound or a client could make it buffer without end (413 above it).
    pub max_request_body: usize,
    /// Largest response body buffered for inspection (502 above it).
    pub max_response_body: usize,
    pub framing: FramingLimits,
    pub timeouts: Timeouts,
    /// A request body must arrive at least this fast (bytes per second) once `body_rate_grace`
    /// has passed, or the request gets 408 (slow POST).
    pub min_body_rate: u64,
    pub body_rate_grace: Duration,
    /// The upstream's whole answer, headers and body (504 after it).
    pub upstream_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Requests handled at once; more are shed with 503.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body: 64 << 20,
            max_response_body: 16 << 20,
            framing: FramingLimits::default(),
            timeouts: Timeouts {
                header: Duration::from_secs(10),
                idle: Duration::from_secs(60),
            },
            min_body_rate: 1024,
            body_rate_grace: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_in_flight: 1024,
        }
    }
}

/// Counters of what the proxy did, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub blocked: AtomicU64,
    pub refused_protocol: AtomicU64,
    pub shed: AtomicU64,
    pub connections_refused: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub upstream_errors: AtomicU64,
}

/// What one proxy instance needs.
pub struct Proxy {
    rules: Arc<Ruleset>,
    upstream_scheme_authority: String,
    client: Client<HttpConnector, Full<Bytes>>,
    log: ErrorLog,
    limits: Limits,
    in_flight: Arc<tokio::sync::Semaphore>,
    pub stats: Stats,
    next_id: AtomicU64,
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
    pub fn new(
        rules: Arc<Ruleset>,
        upstream: &str,
        log: ErrorLog,
        limits: Limits,
    ) -> Result<Proxy, ProxyError> {
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
            limits,
            in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight)),
            stats: Stats::default(),
            next_id: AtomicU64::new(1),
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
        let limiter = ConnectionLimiter::new(self.limits.max_connections, self.limits.max_connections_per_ip);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    // Out of descriptors and the like: back off instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = limiter.admit(peer.ip()) else {
                self.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            tokio::spawn(async move {
                proxy.serve_connection(stream, peer, local).await;
                drop(permit);
            });
        }
    }

    /// Serves one client connection (plain TCP or the decrypted side of TLS) until it closes.
    pub async fn serve_connection<S>(self: Arc<Self>, stream: S, peer: SocketAddr, local: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared: SharedConn = Arc::new(Mutex::new(ConnShared {
            guard: FramingGuard::new(self.limits.framing),
            in_flight: 0,
        }));
        let io = GuardedIo::new(stream, shared.clone(), self.limits.timeouts);
        let proxy = self.clone();
        let service = hyper::service::service_fn(move |req| {
            let proxy = proxy.clone();
            let shared = shared.clone();
            async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, peer, local, shared).await) }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_buf_size(self.limits.framing.max_header_bytes.max(8192) + 8192)
            .max_headers(self.limits.framing.max_headers + 1);
        let _ = builder.serve_connection(TokioIo::new(io), service).await;
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        local: SocketAddr,
        shared: SharedConn,
    ) -> Response<Full<Bytes>> {
        let _in_flight = InFlight::new(&shared);
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        // The framing guard's word on this request's head (HTTP/1 only: HTTP/2 frames its own).
        let mut raw_target = None;
        if req.version() != hyper::Version::HTTP_2 {
            match conn::lock(&shared).guard.take_verdict() {
                Some(HeadVerdict::Accepted { target }) => raw_target = Some(target),
                Some(HeadVerdict::Refused(r)) => return self.refuse_protocol(peer, r.status, r.reason),
                None => return self.refuse_protocol(peer, 400, "request head not seen by the framing guard"),
            }
        }
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            self.stats.shed.fetch_add(1, Ordering::Relaxed);
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "server busy, retry later");
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("1"),
            );
            return r;
        };
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
            raw_target.as_deref().unwrap_or(path.as_bytes()),
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
        // The request body, buffered for inspection; the engine enforces its own limits, the proxy
        // its size bound and the minimum rate.
        let mut body = body;
        let mut buffered: Vec<u8> = Vec::new();
        let started = tokio::time::Instant::now();
        loop {
            let allowance = if self.limits.min_body_rate == 0 {
                Duration::from_secs(86_400)
            } else {
                self.limits.body_rate_grace
                    + Duration::from_secs_f64(buffered.len() as f64 / self.limits.min_body_rate as f64)
            };
            let frame = match tokio::time::timeout_at(started + allowance, body.frame()).await {
                Err(_) => {
                    self.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
                    let r = closing(plain(StatusCode::REQUEST_TIMEOUT, "request body too slow"));
                    return self.finish(&mut tx, r);
                }
                Ok(None) => break,
                Ok(Some(frame)) => frame,
            };
            let Ok(frame) = frame else {
                return self.finish(
                    &mut tx,
                    closing(plain(StatusCode::BAD_REQUEST, "bad request body")),
                );
            };
            if let Some(chunk) = frame.data_ref() {
                if buffered.len() + chunk.len() > self.limits.max_request_body {
                    return self.finish(
                        &mut tx,
                        closing(plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")),
                    );
                }
                if tx.append_request_body(chunk).is_err() {
                    return self.finish(
                        &mut tx,
                        closing(plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")),
                    );
                }
                buffered.extend_from_slice(chunk);
                if let Some(i) = tx.intervention().cloned() {
                    return self.deny(&mut tx, &i);
                }
            }
        }
        if let Some(r) = conn::lock(&shared).guard.body_refusal() {
            self.stats.refused_protocol.fetch_add(1, Ordering::Relaxed);
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
            return self.finish(&mut tx, closing(plain(status, r.reason)));
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
        let response =
            match tokio::time::timeout(self.limits.upstream_timeout, self.client.request(upstream)).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => {
                    self.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    return self.finish(&mut tx, plain(StatusCode::BAD_GATEWAY, "upstream unavailable"));
                }
                Err(_) => {
                    self.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    return self.finish(&mut tx, plain(StatusCode::GATEWAY_TIMEOUT, "upstream timed out"));
                }
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
                if out.len() + chunk.len() > self.limits.max_response_body {
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

    /// The answer to a request the framing guard refused: the connection closes after it, since
    /// where the next request starts is exactly what is in doubt.
    fn refuse_protocol(&self, peer: SocketAddr, status: u16, reason: &str) -> Response<Full<Bytes>> {
        self.stats.refused_protocol.fetch_add(1, Ordering::Relaxed);
        self.log.write(&format!(
            "[client {}] palisade: request refused ({status}): {reason}\n",
            peer.ip()
        ));
        closing(plain(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            reason,
        ))
    }

    /// The answer to a disruptive verdict.
    fn deny(&self, tx: &mut palisade_waf::Transaction<'_>, i: &Intervention) -> Response<Full<Bytes>> {
        self.stats.blocked.fetch_add(1, Ordering::Relaxed);
        let response = match i.disruption {
            Disruptive::Redirect => Response::builder()
                .status(StatusCode::FOUND)
                .header("location", i.url.clone().unwrap_or_default())
                .body(Full::new(Bytes::new()))
                .unwrap_or_else(|_| plain(StatusCode::FORBIDDEN, "forbidden")),
            Disruptive::Drop => closing(plain(StatusCode::FORBIDDEN, "forbidden")),
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

/// `response`, with the connection closed after it.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
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
