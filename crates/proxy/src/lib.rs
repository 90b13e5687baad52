//! `palisade waf serve`: an HTTP reverse proxy that runs every exchange through a WAF
//! [`Transaction`](palisade_waf::Transaction): request headers (phase 1), the buffered request body
//! (phase 2), response headers (3), the response body (4) and logging (5). A disruptive verdict
//! answers the client with the rule's status instead of forwarding; every matched rule is written as
//! one ModSecurity-style error-log line. Bodies are buffered for inspection, bounded by
//! [`Limits`]. Before hyper, each connection's bytes go through the [`framing`] guard (request
//! smuggling shapes, head limits) and the connection adapter's timeouts; connections are capped in
//! total and per client address, and requests in flight are capped with load shedding (503).

pub mod audit;
pub mod body;
pub mod busy;
pub mod config;
pub mod conn;
pub mod framing;
pub mod guards;
pub mod limiter;
pub mod metrics;

use audit::{AuditScope, LogSink, Outcome, Record, RuleHit};
use body::{Prefixed, ProxyBody};
use conn::{ConnShared, ConnectionLimiter, GuardedIo, InFlight, SharedConn, Timeouts};
use framing::{FramingGuard, FramingLimits, HeadVerdict};
use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics::Metrics;
use palisade_waf::{Disruptive, Intervention, Ruleset};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid upstream URL {0:?}: expected http://host:port")]
    Upstream(String),
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("route {route}: {message}")]
    Route { route: String, message: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// Where a request goes: matched by host (exact, or `*.example.com` for any subdomain) and path
/// prefix (on segment boundaries), with its own upstream and rule set.
pub struct Route {
    pub name: String,
    host: Option<String>,
    path_prefix: String,
    upstream: String,
    rules: Arc<Ruleset>,
    /// Limits keyed by address or header, checked before the request is read further.
    early_limits: Vec<limiter::RateLimit>,
    /// Limits keyed by JWT claim or API operation, checked once those are known.
    late_limits: Vec<limiter::RateLimit>,
    bots: Option<palisade_waf::bots::BotGuard>,
    jwt: Option<guards::JwtGuard>,
    api: Option<palisade_waf::api::ApiModel>,
}

impl Route {
    pub fn new(
        name: &str,
        host: Option<&str>,
        path_prefix: &str,
        upstream: &str,
        rules: Arc<Ruleset>,
    ) -> Result<Route, ProxyError> {
        let uri: hyper::Uri = upstream
            .parse()
            .map_err(|_| ProxyError::Upstream(upstream.into()))?;
        let (Some("http"), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(ProxyError::Upstream(upstream.into()));
        };
        if !path_prefix.starts_with('/') {
            return Err(ProxyError::Route {
                route: name.into(),
                message: format!("path_prefix {path_prefix:?} must start with /"),
            });
        }
        Ok(Route {
            name: name.into(),
            host: host.map(|h| h.to_ascii_lowercase()),
            path_prefix: path_prefix.trim_end_matches('/').to_string(),
            upstream: format!("http://{authority}"),
            rules,
            early_limits: Vec::new(),
            late_limits: Vec::new(),
            bots: None,
            jwt: None,
            api: None,
        })
    }

    /// Rate limits checked, all of them, on every request of this route.
    pub fn with_rate_limits(mut self, limits: Vec<limiter::RateLimit>) -> Route {
        (self.late_limits, self.early_limits) = limits
            .into_iter()
            .partition(|l| matches!(l.key, limiter::RateKey::JwtClaim(_) | limiter::RateKey::Route));
        self
    }

    pub fn with_bots(mut self, bots: palisade_waf::bots::BotGuard) -> Route {
        self.bots = Some(bots);
        self
    }

    pub fn with_jwt(mut self, jwt: guards::JwtGuard) -> Route {
        self.jwt = Some(jwt);
        self
    }

    /// The API's positive model. Operations whose security asks for a bearer JWT need
    /// [`Route::with_jwt`] too.
    pub fn with_api(mut self, api: palisade_waf::api::ApiModel) -> Result<Route, ProxyError> {
        let bearer = api.operations().filter(|o| o.jwt_required()).count();
        if bearer > 0 && self.jwt.is_none() {
            return Err(ProxyError::Route {
                route: self.name.clone(),
                message: format!(
                    "{bearer} operations of {} require a bearer JWT: configure jwt on the route",
                    api.source_name()
                ),
            });
        }
        self.api = Some(api);
        Ok(self)
    }

    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(pattern) => match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    host.len() > suffix.len() + 1 && host.ends_with(suffix) && {
                        host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    }
                }
                None => host == pattern,
            },
        };
        // "/api" covers "/api", "/api/..." and "/api?...", not "/apix".
        host_ok
            && path.starts_with(&self.path_prefix)
            && matches!(
                path.as_bytes().get(self.path_prefix.len()),
                None | Some(b'/' | b'?')
            )
    }
}

/// Where the proxy writes what it saw.
pub struct Logs {
    /// ModSecurity-style lines, one per matched rule, and the HTTP layer's refusals.
    pub error: LogSink,
    pub audit: Option<(LogSink, AuditScope)>,
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

/// What one proxy instance needs.
pub struct Proxy {
    /// Most specific first: routes with a host before those without, longer prefixes first.
    routes: Vec<Route>,
    logs: Logs,
    limits: Limits,
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Open client connections, in total and per address, across every `serve` call: with one
    /// runtime per core each worker serves its own socket on the same port, and the caps are the
    /// process's.
    connections: Arc<ConnectionLimiter>,
    pub metrics: Metrics,
    limiter: limiter::Limiter,
    /// Keep polling without blocking for this long after the last client read (`busy::busy_poll`);
    /// only for single-threaded worker runtimes.
    pub busy_poll: Option<Duration>,
    /// Load balancers and proxies in front whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<palisade_waf::bots::Cidr>,
    /// The origin of the monotonic nanosecond clock the bot fingerprints use.
    epoch: std::time::Instant,
    next_id: AtomicU64,
    /// The first part of every unique id, read once: `std::process::id` is a system call, which
    /// was the one system call per request besides the sockets' own.
    pid: u32,
    ready: std::sync::atomic::AtomicBool,
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

pub(crate) type Answer = Response<ProxyBody>;

impl Proxy {
    pub fn new(mut routes: Vec<Route>, logs: Logs, limits: Limits) -> Result<Proxy, ProxyError> {
        if routes.is_empty() {
            return Err(ProxyError::Route {
                route: String::new(),
                message: "no routes".into(),
            });
        }
        let mut names = std::collections::HashSet::new();
        for r in &routes {
            if !names.insert(r.name.clone()) {
                return Err(ProxyError::Route {
                    route: r.name.clone(),
                    message: "two routes with this name".into(),
                });
            }
        }
        routes.sort_by_key(|r| (r.host.is_none(), std::cmp::Reverse(r.path_prefix.len())));
        Ok(Proxy {
            routes,
            logs,
            limits,
            in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight)),
            connections: ConnectionLimiter::new(limits.max_connections, limits.max_connections_per_ip),
            metrics: Metrics::new(),
            // A million keys: about 100 MB at worst, and the store evicts beyond it.
            limiter: limiter::Limiter::new(Arc::new(palisade_waf::ratelimit::MemoryStore::new(1 << 20))),
            epoch: std::time::Instant::now(),
            trusted_proxies: Vec::new(),
            busy_poll: None,
            next_id: AtomicU64::new(1),
            pid: std::process::id(),
            ready: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Accepts connections on `listener` (TLS when `tls` is given) until `shutdown` resolves, then
    /// stops accepting and lets open connections finish their requests for up to 10 seconds.
    /// `worker` numbers a per-core worker for its connections gauge.
    ///
    /// Several calls may run at once, one per worker runtime, each with its own socket of one
    /// `SO_REUSEPORT` group: each keeps its own pool of upstream connections, so a request and
    /// the upstream connection it uses run on the same runtime.
    pub async fn serve(
        self: Arc<Self>,
        worker: Option<usize>,
        listener: tokio::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ProxyError> {
        let local = listener.local_addr().map_err(|e| ProxyError::Io {
            what: "listener".into(),
            source: e,
        })?;
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let upstream = Arc::new(upstream_client());
        let worker_connections = worker.map(|w| self.metrics.worker_connections(w));
        let spinner = self.busy_poll.map(|window| tokio::spawn(busy::busy_poll(window)));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let Some((stream, peer)) = accept_until(&listener, &mut shutdown).await else {
                break;
            };
            let permit = match self.connections.admit(peer.ip()) {
                Ok(p) => p,
                Err(refusal) => {
                    self.metrics.connection_refused(match refusal {
                        conn::ConnectionRefusal::Total => "total",
                        conn::ConnectionRefusal::PerAddress => "per_address",
                    });
                    drop(stream);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            let watcher = graceful.watcher();
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            let worker_connections = worker_connections.clone();
            tokio::spawn(async move {
                proxy.metrics.connections_open.inc();
                if let Some(g) = &worker_connections {
                    g.inc();
                }
                match acceptor {
                    None => {
                        proxy
                            .clone()
                            .serve_connection(stream, peer, local, false, watcher, upstream)
                            .await
                    }
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(proxy.limits.timeouts.header, acceptor.accept(stream));
                        if let Ok(Ok(tls)) = handshake.await {
                            proxy
                                .clone()
                                .serve_connection(tls, peer, local, true, watcher, upstream)
                                .await;
                        } else {
                            proxy.metrics.connection_refused("tls_handshake");
                        }
                    }
                }
                proxy.metrics.connections_open.dec();
                if let Some(g) = &worker_connections {
                    g.dec();
                }
                drop(permit);
            });
        }
        // Closed now, not after the drain: new connections are refused at once instead of waiting
        // in the backlog of a socket nobody accepts from (with several workers, the kernel stops
        // choosing this worker's socket once it is closed).
        drop(listener);
        if let Some(spinner) = spinner {
            spinner.abort();
        }
        self.ready.store(false, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
        Ok(())
    }

    /// Serves one client connection (plain TCP or the decrypted side of TLS) until it closes.
    async fn serve_connection<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        local: SocketAddr,
        https: bool,
        watcher: hyper_util::server::graceful::Watcher,
        upstream: Arc<Upstream>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let logger = self.clone();
        let shared: SharedConn = Arc::new(Mutex::new(ConnShared {
            guard: FramingGuard::new(self.limits.framing),
            in_flight: 0,
            on_malformed: Some(Box::new(move |head| logger.log_malformed(head, peer, local))),
        }));
        let io = GuardedIo::new(stream, shared.clone(), self.limits.timeouts);
        let proxy = self.clone();
        let service = hyper::service::service_fn(move |req| {
            let proxy = proxy.clone();
            let shared = shared.clone();
            let upstream = upstream.clone();
            async move {
                let client = ClientSide {
                    peer,
                    local,
                    https,
                    ip: peer.ip(),
                };
                Ok::<_, std::convert::Infallible>(proxy.handle(req, client, shared, &upstream).await)
            }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_buf_size(self.limits.framing.max_header_bytes.max(8192) + 8192)
            .max_headers(self.limits.framing.max_headers + 1);
        builder
            .http2()
            .max_header_list_size(self.limits.framing.max_header_bytes as u32)
            .max_concurrent_streams(100);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let _ = watcher.watch(connection.into_owned()).await;
    }

    /// The admin endpoints: `/healthz` (the process answers), `/readyz` (it accepts traffic; not
    /// while shutting down) and `/metrics` (Prometheus text).
    pub async fn serve_admin(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let Some((stream, _)) = accept_until(&listener, &mut shutdown).await else {
                return;
            };
            let proxy = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, std::convert::Infallible>(proxy.admin(req.uri().path())) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    fn admin(&self, path: &str) -> Answer {
        match path {
            "/healthz" => plain(StatusCode::OK, "ok"),
            "/readyz" if self.ready.load(Ordering::Relaxed) => plain(StatusCode::OK, "ready"),
            "/readyz" => plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
            "/metrics" => {
                let mut r = Response::new(body::full(self.metrics.render()));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                r
            }
            _ => plain(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the rightmost
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (entries to its left could be
    /// anything the client wrote).
    fn client_ip(&self, peer: std::net::IpAddr, headers: &hyper::HeaderMap) -> std::net::IpAddr {
        let trusted = |ip: std::net::IpAddr| self.trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let mut hops: Vec<std::net::IpAddr> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else { return peer };
            for entry in text.split(',') {
                match entry.trim().parse() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return peer,
                }
            }
        }
        hops.into_iter().rev().find(|ip| !trusted(*ip)).unwrap_or(peer)
    }

    /// One request, start to end: the exchange itself, then its metrics and audit record.
    async fn handle(
        &self,
        req: Request<Incoming>,
        client: ClientSide,
        shared: SharedConn,
        upstream: &Upstream,
    ) -> Answer {
        let started = std::time::Instant::now();
        let _in_flight = InFlight::new(&shared);
        let client = ClientSide {
            ip: self.client_ip(client.peer.ip(), req.headers()),
            ..client
        };
        let header = |name: hyper::header::HeaderName| {
            req.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let mut record = self.new_record(
            SocketAddr::new(client.ip, client.peer.port()),
            req.method().to_string(),
            req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string(),
            request_host(&req),
            header(hyper::header::USER_AGENT),
        );
        let mut response = self.exchange(req, &client, &shared, upstream, &mut record).await;
        if let Some(t) = &record.rate {
            limiter::add_headers(response.headers_mut(), t);
        }
        record.status = response.status().as_u16();
        if let Some(bots) = record
            .route
            .as_ref()
            .and_then(|name| self.routes.iter().find(|r| &r.name == name))
            .and_then(|r| r.bots.as_ref())
        {
            bots.observe_response(client.ip, record.status, self.now_ns());
        }
        self.account(&record, started.elapsed().as_secs_f64());
        response
    }

    fn new_record(
        &self,
        peer: SocketAddr,
        method: String,
        uri: String,
        host: String,
        user_agent: String,
    ) -> Record {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Record {
            unique_id: format!("{:x}-{id:x}", self.pid),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            client_ip: peer.ip().to_string(),
            client_port: peer.port(),
            method,
            uri,
            host,
            user_agent,
            route: None,
            outcome: Outcome::Forwarded,
            reason: None,
            status: 0,
            rules: Vec::new(),
            rate: None,
        }
    }

    /// A finished request's metrics and audit-log line.
    fn account(&self, record: &Record, seconds: f64) {
        self.metrics.request(
            record.route.as_deref().unwrap_or(""),
            record.outcome.label(),
            seconds,
        );
        if let Some((sink, scope)) = &self.logs.audit
            && (*scope == AuditScope::All || record.is_relevant())
        {
            sink.write(&record.to_json_line(seconds));
        }
    }

    /// A head the HTTP parser refuses (an unknown HTTP version, a request line without one, bad
    /// header syntax) never reaches the handler; the rules still see what can be read of it
    /// (request line and header lines, leniently split) so that protocol attacks are logged.
    /// Returns true for a request line without a version (HTTP/0.9 style): no answer is sent.
    fn log_malformed(&self, head: &[u8], peer: SocketAddr, local: SocketAddr) -> bool {
        let started = std::time::Instant::now();
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .skip_while(|l| l.is_empty());
        let first = lines.next().unwrap_or_default();
        let mut words = first.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let (method, target, version) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or(b"/"),
            words.next().unwrap_or_default(),
        );
        let headers: Vec<(&[u8], &[u8])> = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                // Only the header lines that are well formed: a refused head's broken lines (a
                // bare CR in a value, a space in a name) are what the refusal is about.
                let colon = memchr::memchr(b':', l)?;
                let (name, value) = (&l[..colon], l[colon + 1..].trim_ascii());
                let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
                let clean = |b: &u8| *b == b'\t' || (*b >= 0x20 && *b != 0x7f);
                (!name.is_empty() && name.iter().all(token) && value.iter().all(clean))
                    .then_some((name, value))
            })
            .take(self.limits.framing.max_headers)
            .collect();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let find = |name: &[u8]| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| text(v))
                .unwrap_or_default()
        };
        let host = find(b"host").to_ascii_lowercase();
        let mut record = self.new_record(
            peer,
            text(method),
            text(target),
            host.clone(),
            find(b"user-agent"),
        );
        let path = record.uri.split('?').next().unwrap_or("/").to_string();
        let host_only = host_without_port(&host);
        if let Some(route) = self
            .routes
            .iter()
            .find(|r| r.matches(&host_only, &path))
            .or_else(|| self.routes.last())
        {
            record.route = Some(route.name.clone());
            let mut tx = route.rules.transaction();
            tx.set_unique_id(&record.unique_id);
            tx.set_connection(
                &peer.ip().to_string(),
                peer.port(),
                &local.ip().to_string(),
                local.port(),
            );
            tx.set_request_line(method, target, version);
            for (name, value) in &headers {
                tx.add_request_header(name, value);
            }
            tx.process_request_headers();
            record.outcome(Outcome::Refused, "malformed request head");
            self.finish(
                &mut tx,
                plain(StatusCode::BAD_REQUEST, "bad request"),
                &mut record,
            );
        }
        record.outcome(Outcome::Refused, "malformed request head");
        record.status = 400;
        self.account(&record, started.elapsed().as_secs_f64());
        version.is_empty()
    }

    async fn exchange(
        &self,
        req: Request<Incoming>,
        client: &ClientSide,
        shared: &SharedConn,
        upstream_client: &Upstream,
        record: &mut Record,
    ) -> Answer {
        // The framing guard's word on this request's head (HTTP/1 only: HTTP/2 frames its own).
        let mut raw_head = None;
        if req.version() != hyper::Version::HTTP_2 {
            let verdict = conn::lock(shared).guard.take_verdict();
            match verdict {
                Some(HeadVerdict::Accepted { target, headers }) => raw_head = Some((target, headers)),
                Some(HeadVerdict::Refused(r)) => return self.refuse_protocol(record, r.status, r.reason),
                None => {
                    return self.refuse_protocol(record, 400, "request head not seen by the framing guard");
                }
            }
        }
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            record.outcome(Outcome::Shed, "too many requests in flight");
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "server busy, retry later");
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("1"),
            );
            return r;
        };
        let host_only = host_without_port(&record.host);
        let Some(route) = self
            .routes
            .iter()
            .find(|r| r.matches(&host_only, req.uri().path()))
        else {
            record.outcome(Outcome::NoRoute, "no route for this host and path");
            return plain(StatusCode::NOT_FOUND, "no route");
        };
        record.route = Some(route.name.clone());
        let ip = client.ip;
        if let Some(bots) = &route.bots
            && let Some(answer) = guards::bots(
                bots,
                req.headers(),
                version_text(req.version()),
                ip,
                self.now_ns(),
                record,
            )
        {
            return answer;
        }
        let mut claims = None;
        if let Some(jwt) = &route.jwt {
            match guards::jwt(jwt, req.headers(), record) {
                Ok(c) => claims = c,
                Err(answer) => return answer,
            }
        }
        if let Some(answer) = self.rate_limit(
            route,
            &route.early_limits,
            ip,
            req.headers(),
            None,
            &route.name,
            record,
        ) {
            return answer;
        }

        let mut tx = route.rules.transaction();
        tx.set_unique_id(&record.unique_id);
        tx.set_connection(
            &client.ip.to_string(),
            client.peer.port(),
            &client.local.ip().to_string(),
            client.local.port(),
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
            raw_head
                .as_ref()
                .map_or(path.as_bytes(), |(target, _)| &target[..]),
            version.as_bytes(),
        );
        // The WAF sees header names as sent, in order, repeats apart (ModSecurity names variables
        // after them: REQUEST_HEADERS:Referer); hyper's map has lower-cased them.
        match &raw_head {
            Some((_, headers)) => {
                for (name, value) in headers {
                    tx.add_request_header(name, value);
                }
            }
            None => {
                for (name, value) in &parts.headers {
                    tx.add_request_header(name.as_str().as_bytes(), value.as_bytes());
                }
            }
        }
        if parts.version == hyper::Version::HTTP_2
            && let Some(host) = parts.uri.authority()
            && !parts.headers.contains_key(hyper::header::HOST)
        {
            tx.add_request_header(b"Host", host.as_str().as_bytes());
        }
        if let Some(i) = tx.process_request_headers().cloned() {
            return self.deny(&mut tx, &i, record);
        }
        // The request body, buffered as far as it is inspected (by the engine, or whole for the
        // API model); the rest streams to the upstream. The engine enforces its own limits, the
        // proxy its size bound and the minimum rate.
        let mut inspect = if tx.inspects_request_body() {
            tx.request_body_inspection_limit()
        } else {
            0
        };
        if let Some(api) = &route.api {
            inspect = inspect.max(api.options().max_body_bytes.saturating_add(1));
        }
        let (buffered, rest) = match self
            .read_request_body(body, inspect, &mut tx, shared, record)
            .await
        {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        if let Some(i) = tx.process_request_body().cloned() {
            return self.deny(&mut tx, &i, record);
        }
        let mut operation = route.name.clone();
        if let Some(api) = &route.api {
            let request = palisade_waf::api::ApiRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes()))
                    .collect(),
                content_type: parts
                    .headers
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                body: &buffered,
            };
            match api.check(&request) {
                palisade_waf::api::ApiVerdict::Refused(refusal) => {
                    let answer = guards::api_refusal(&refusal, record);
                    return self.finish(&mut tx, answer, record);
                }
                palisade_waf::api::ApiVerdict::Allowed(allowed) => {
                    if allowed.operation.jwt_required() && !allowed.cors_preflight && claims.is_none() {
                        let answer = guards::unauthorized(None, record);
                        return self.finish(&mut tx, answer, record);
                    }
                    operation = format!(
                        "{} {}",
                        allowed.operation.method(),
                        allowed.operation.route_template()
                    );
                }
            }
        }
        let claims_map = claims.as_ref().map(|c| c.as_map());
        if let Some(answer) = self.rate_limit(
            route,
            &route.late_limits,
            ip,
            &parts.headers,
            claims_map,
            &operation,
            record,
        ) {
            return self.finish(&mut tx, answer, record);
        }

        if parts.method == hyper::Method::CONNECT {
            // A reverse proxy opens no tunnels (400, as nginx answers); the rules have seen the
            // request by now.
            return self.refuse(
                &mut tx,
                record,
                StatusCode::BAD_REQUEST,
                "CONNECT is not supported by a reverse proxy",
            );
        }
        let mut upstream = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", route.upstream));
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                upstream = upstream.header(name, value);
            }
        }
        // This hop's entry is the peer it came from, whoever the client is.
        let ip = client.peer.ip();
        let forwarded_for = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip.to_string(),
        };
        let proto = if client.https { "https" } else { "http" };
        let node = match ip {
            std::net::IpAddr::V6(v6) => format!("\"[{v6}]\""),
            std::net::IpAddr::V4(v4) => v4.to_string(),
        };
        let mut forwarded = format!("for={node};proto={proto}");
        if !record.host.is_empty() && framing::valid_host(record.host.as_bytes()) {
            forwarded.push_str(&format!(";host=\"{}\"", record.host));
        }
        if let Some(prior) = parts.headers.get("forwarded").and_then(|v| v.to_str().ok()) {
            forwarded = format!("{prior}, {forwarded}");
        }
        upstream = upstream
            .header("x-forwarded-for", forwarded_for)
            .header("x-forwarded-proto", proto)
            .header("forwarded", forwarded);
        let body = Prefixed::boxed_body(buffered, rest, self.limits.max_request_body, Some(shared.clone()));
        let Ok(upstream) = upstream.body(body) else {
            return self.refuse(&mut tx, record, StatusCode::BAD_REQUEST, "bad request");
        };
        let response =
            match tokio::time::timeout(self.limits.upstream_timeout, upstream_client.request(upstream)).await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    // The streamed rest of the request body may be what failed.
                    match stream_error(&e) {
                        Some(body::StreamError::TooLarge(_)) => {
                            return self.refuse(
                                &mut tx,
                                record,
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "request body too large",
                            );
                        }
                        Some(body::StreamError::Framing(reason)) => {
                            return self.refuse(&mut tx, record, StatusCode::BAD_REQUEST, reason);
                        }
                        None => {}
                    }
                    record.outcome(Outcome::UpstreamError, "upstream unavailable");
                    return self.finish(
                        &mut tx,
                        plain(StatusCode::BAD_GATEWAY, "upstream unavailable"),
                        record,
                    );
                }
                Err(_) => {
                    record.outcome(Outcome::UpstreamError, "upstream timed out");
                    return self.finish(
                        &mut tx,
                        plain(StatusCode::GATEWAY_TIMEOUT, "upstream timed out"),
                        record,
                    );
                }
            };
        let (rparts, rbody) = response.into_parts();
        tx.set_response_status(rparts.status.as_u16(), version_text(rparts.version).as_bytes());
        for (name, value) in &rparts.headers {
            tx.add_response_header(name.as_str().as_bytes(), value.as_bytes());
        }
        if let Some(i) = tx.process_response_headers().cloned() {
            return self.deny(&mut tx, &i, record);
        }
        // The response body, buffered for phase 4 only when the engine inspects it (access on,
        // a listed MIME type) and up to its limit; the rest streams to the client.
        let mut out: Vec<u8> = Vec::new();
        let mut rest = Some(rbody);
        if tx.inspects_response_body() {
            let (limit, partial) = tx.response_body_inspection_limit();
            let cap = limit.min(self.limits.max_response_body);
            while out.len() <= cap {
                let Some(body) = rest.as_mut() else { break };
                match body.frame().await {
                    None => rest = None,
                    Some(Err(_)) => {
                        record.outcome(Outcome::UpstreamError, "upstream body failed");
                        return self.finish(
                            &mut tx,
                            plain(StatusCode::BAD_GATEWAY, "upstream body failed"),
                            record,
                        );
                    }
                    Some(Ok(frame)) => {
                        if let Some(chunk) = frame.data_ref() {
                            // Past the engine's limit it keeps nothing more (ProcessPartial).
                            let _ = tx.append_response_body(chunk);
                            out.extend_from_slice(chunk);
                        }
                    }
                }
            }
            if rest.is_some() && !partial {
                record.outcome(Outcome::UpstreamError, "response body over SecResponseBodyLimit");
                return self.finish(
                    &mut tx,
                    plain(StatusCode::BAD_GATEWAY, "upstream body too large"),
                    record,
                );
            }
        }
        if let Some(i) = tx.process_response_body().cloned() {
            return self.deny(&mut tx, &i, record);
        }
        let mut builder = Response::builder().status(rparts.status);
        for (name, value) in &rparts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                builder = builder.header(name, value);
            }
        }
        let response = builder
            .body(Prefixed::boxed_body(out, rest, usize::MAX, None))
            .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "bad upstream response"));
        self.finish(&mut tx, response, record)
    }

    /// Checks `limits`; the answer is the 429 when one refuses. The tightest limit's headers go on
    /// whatever answer the request gets.
    #[allow(clippy::too_many_arguments)]
    fn rate_limit(
        &self,
        route: &Route,
        limits: &[limiter::RateLimit],
        ip: std::net::IpAddr,
        headers: &hyper::HeaderMap,
        claims: Option<&serde_json::Map<String, serde_json::Value>>,
        operation: &str,
        record: &mut Record,
    ) -> Option<Answer> {
        if limits.is_empty() {
            return None;
        }
        let ctx = limiter::KeyContext {
            client_ip: ip,
            headers,
            claims,
            operation,
        };
        let tightest = self.limiter.check(&route.name, limits, &ctx)?;
        let refused = !tightest.decision.allowed;
        let keep = match &record.rate {
            None => true,
            Some(prior) => refused || tightest.decision.remaining < prior.decision.remaining,
        };
        if refused {
            record.outcome(Outcome::RateLimited, format!("rate limit {}", tightest.name));
        }
        if keep {
            record.rate = Some(tightest);
        }
        refused.then(|| plain(StatusCode::TOO_MANY_REQUESTS, "too many requests"))
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Reads the request body into memory and the transaction, within the size bound and the
    /// minimum rate; a WAF interruption or a refusal comes back as the answer to send.
    async fn read_request_body(
        &self,
        mut body: Incoming,
        inspect: usize,
        tx: &mut palisade_waf::Transaction<'_>,
        shared: &SharedConn,
        record: &mut Record,
    ) -> Result<(Vec<u8>, Option<Incoming>), Answer> {
        let mut buffered: Vec<u8> = Vec::new();
        let started = tokio::time::Instant::now();
        loop {
            if body.is_end_stream() {
                // A GET, or a body whose declared length has all arrived: no timer to set up.
                break;
            }
            if buffered.len() >= inspect {
                // Inspected as far as anyone looks: the rest streams.
                return Ok((buffered, Some(body)));
            }
            let allowance = if self.limits.min_body_rate == 0 {
                Duration::from_secs(86_400)
            } else {
                self.limits.body_rate_grace
                    + Duration::from_secs_f64(buffered.len() as f64 / self.limits.min_body_rate as f64)
            };
            let frame = match tokio::time::timeout_at(started + allowance, body.frame()).await {
                Err(_) => {
                    return Err(self.refuse(
                        tx,
                        record,
                        StatusCode::REQUEST_TIMEOUT,
                        "request body too slow",
                    ));
                }
                Ok(None) => break,
                Ok(Some(frame)) => frame,
            };
            let Ok(frame) = frame else {
                return Err(self.refuse(tx, record, StatusCode::BAD_REQUEST, "bad request body"));
            };
            if let Some(chunk) = frame.data_ref() {
                if buffered.len() + chunk.len() > self.limits.max_request_body
                    || tx.append_request_body(chunk).is_err()
                {
                    return Err(self.refuse(
                        tx,
                        record,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request body too large",
                    ));
                }
                buffered.extend_from_slice(chunk);
                if let Some(i) = tx.intervention().cloned() {
                    return Err(self.deny(tx, &i, record));
                }
            }
        }
        let body_refusal = conn::lock(shared).guard.body_refusal();
        if let Some(r) = body_refusal {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(self.refuse(tx, record, status, r.reason));
        }
        Ok((buffered, None))
    }

    /// The answer to a request the framing guard refused: the connection closes after it, since
    /// where the next request starts is exactly what is in doubt.
    fn refuse_protocol(&self, record: &mut Record, status: u16, reason: &str) -> Answer {
        record.outcome(Outcome::Refused, reason);
        self.logs.error.write(&format!(
            "[client {}] palisade: request refused ({status}): {reason} [unique_id \"{}\"]\n",
            record.client_ip, record.unique_id
        ));
        closing(plain(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            reason,
        ))
    }

    /// A refusal by the HTTP layer once the transaction runs (body limits, rate, framing): logged
    /// with the transaction, and the connection closed.
    fn refuse(
        &self,
        tx: &mut palisade_waf::Transaction<'_>,
        record: &mut Record,
        status: StatusCode,
        reason: &str,
    ) -> Answer {
        record.outcome(Outcome::Refused, reason);
        self.finish(tx, closing(plain(status, reason)), record)
    }

    /// The answer to a disruptive verdict.
    fn deny(&self, tx: &mut palisade_waf::Transaction<'_>, i: &Intervention, record: &mut Record) -> Answer {
        record.outcome = Outcome::Blocked;
        let response = match i.disruption {
            Disruptive::Redirect => Response::builder()
                .status(StatusCode::FOUND)
                .header("location", i.url.clone().unwrap_or_default())
                .body(body::full(Bytes::new()))
                .unwrap_or_else(|_| plain(StatusCode::FORBIDDEN, "forbidden")),
            Disruptive::Drop => closing(plain(StatusCode::FORBIDDEN, "forbidden")),
            _ => plain(
                StatusCode::from_u16(i.status).unwrap_or(StatusCode::FORBIDDEN),
                "request blocked by the web application firewall",
            ),
        };
        self.finish(tx, response, record)
    }

    /// Runs the logging phase and writes one error-log line per matched rule (not for `nolog`
    /// rules: they ran their actions, such as setting CRS's variables, but are not reported).
    fn finish(
        &self,
        tx: &mut palisade_waf::Transaction<'_>,
        response: Answer,
        record: &mut Record,
    ) -> Answer {
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
                if record.outcome == Outcome::Blocked && record.reason.is_none() && m.interrupted.is_some() {
                    record.reason = Some(m.msg.clone());
                }
                record.rules.push(RuleHit {
                    id: m.id,
                    msg: m.msg.clone(),
                    data: m.data.clone(),
                    severity: m.severity,
                    tags: m.tags().to_vec(),
                });
                self.metrics.rules_matched.inc();
            }
            self.logs.error.write(&lines);
        }
        response
    }
}

/// Pooled keep-alive connections to the upstreams.
type Upstream = Client<HttpConnector, ProxyBody>;

fn upstream_client() -> Upstream {
    let mut connector = HttpConnector::new();
    // Small requests and responses go in one segment each way; without NODELAY, Nagle holds a
    // request's last segment until the upstream's delayed ACK (tens of milliseconds).
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// The next connection, or None once `shutdown` resolves. Accept errors (out of descriptors and
/// the like) back off briefly instead of spinning.
async fn accept_until(
    listener: &tokio::net::TcpListener,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.as_mut() => return None,
            accepted = listener.accept() => match accepted {
                Ok(a) => return Some(a),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}

/// Our own body error somewhere in the chain of an upstream request's error.
fn stream_error<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e body::StreamError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(s) = e.downcast_ref::<body::StreamError>() {
            return Some(s);
        }
        current = e.source();
    }
    None
}

/// The client side of one connection.
#[derive(Clone, Copy)]
struct ClientSide {
    peer: SocketAddr,
    local: SocketAddr,
    https: bool,
    /// The client as far as can be trusted: the peer, or behind trusted proxies the last address
    /// they added to `X-Forwarded-For`. Rules, rate limits, bots and logs use it.
    ip: std::net::IpAddr,
}

/// The Host the client asked for: the Host header, or the authority of an HTTP/2 or absolute-form
/// request.
fn request_host<B>(req: &Request<B>) -> String {
    req.headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn host_without_port(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h).to_string()
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
fn closing(mut response: Answer) -> Answer {
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Answer {
    let mut r = Response::new(body::full(format!("{text}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
