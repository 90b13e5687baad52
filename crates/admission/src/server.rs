//! The HTTPS server around the decision logic: TLS by rustls, HTTP/1.1 and HTTP/2, bounded bodies
//! and concurrency, evaluation off the async reactor with a time budget, fail-open or fail-closed,
//! and a graceful shutdown that lets in-flight requests finish.

use crate::AdmissionError;
use crate::decide::Webhook;
use crate::metrics::Metrics;
use crate::review::{Decision, ReviewError, parse_review, response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// What the webhook answers when it cannot evaluate a request (time budget exceeded, internal
/// error): the same choice as the webhook configuration's failurePolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Fail closed: deny.
    Fail,
    /// Fail open: allow, with a warning and an audit annotation.
    Ignore,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Evaluations running at once; more requests wait for a slot.
    pub max_concurrent_evaluations: usize,
    /// Open connections at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time budget of one evaluation.
    pub evaluation_timeout: Duration,
    pub failure_policy: FailurePolicy,
    /// TLS handshake and request-header deadline (slow clients).
    pub handshake_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            max_body_bytes: 4 * 1024 * 1024,
            max_concurrent_evaluations: cores * 4,
            max_connections: 1024,
            evaluation_timeout: Duration::from_secs(2),
            failure_policy: FailurePolicy::Fail,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

struct State {
    webhook: Arc<Webhook>,
    metrics: Metrics,
    evaluations: Semaphore,
    config: ServerConfig,
    shutting_down: AtomicBool,
}

/// A bound, not yet running webhook server.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
}

impl Server {
    pub async fn bind(
        config: ServerConfig,
        tls: rustls::ServerConfig,
        webhook: Webhook,
    ) -> Result<Server, AdmissionError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| AdmissionError::Bind {
                addr: config.listen,
                source,
            })?;
        let state = Arc::new(State {
            webhook: Arc::new(webhook),
            metrics: Metrics::new(),
            evaluations: Semaphore::new(config.max_concurrent_evaluations.max(1)),
            config,
            shutting_down: AtomicBool::new(false),
        });
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting and waits (up to the grace period)
    /// for open connections to finish their requests.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AdmissionError> {
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(self.state.config.max_connections.max(1)));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        eprintln!("palisade admission: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Responses are small and written in more than one TLS record: without NODELAY, Nagle
            // holds the last record until the client's delayed ACK (tens of milliseconds).
            let _ = stream.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let state = self.state.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(state.config.handshake_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        eprintln!("palisade admission: TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => return,
                };
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10));
                builder.http2().timer(TokioTimer::new());
                let conn = builder.serve_connection(TokioIo::new(tls), service);
                let _ = watcher.watch(conn.into_owned()).await;
            });
        }
        self.state.shutting_down.store(true, Ordering::SeqCst);
        drop(self.listener);
        if tokio::time::timeout(self.state.config.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            eprintln!("palisade admission: shutdown grace period over; closing remaining connections");
        }
        Ok(())
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(body).unwrap_or_default(),
    )));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &serde_json::json!({"error": message}))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let response = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if state.shutting_down.load(Ordering::SeqCst) {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        (&Method::GET, "/metrics") => {
            let mut resp = text(StatusCode::OK, state.metrics.render());
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            resp
        }
        (&Method::POST, "/validate") => review(&state, req, Endpoint::Validate).await,
        (&Method::POST, "/mutate") => review(&state, req, Endpoint::Mutate).await,
        (_, "/validate" | "/mutate" | "/healthz" | "/readyz" | "/metrics") => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not found: the endpoints are /validate, /mutate, /healthz, /readyz, /metrics",
        ),
    };
    Ok(response)
}

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

async fn review(state: &Arc<State>, req: Request<Incoming>, endpoint: Endpoint) -> Response<Full<Bytes>> {
    let name = endpoint.as_str();
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        state.metrics.request(name, "bad_request");
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let max = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        state.metrics.request(name, "too_large");
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {max} bytes"),
        );
    }
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let too_large = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            state
                .metrics
                .request(name, if too_large { "too_large" } else { "bad_request" });
            return if too_large {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request body larger than {max} bytes"),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read the request body: {e}"),
                )
            };
        }
    };
    let request = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            state.metrics.request(name, "bad_request");
            let status = match e {
                ReviewError::NotJson(_)
                | ReviewError::Invalid(_)
                | ReviewError::WrongKind(_)
                | ReviewError::WrongVersion(_) => StatusCode::BAD_REQUEST,
            };
            return error(status, &e.to_string());
        }
    };
    let uid = request.uid.clone();

    let Ok(_permit) = state.evaluations.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    state.metrics.in_flight.inc();
    let webhook = state.webhook.clone();
    let started = Instant::now();
    let job = tokio::task::spawn_blocking(move || {
        let decision = match endpoint {
            Endpoint::Validate => webhook.validate(&request),
            Endpoint::Mutate => webhook.mutate(&request),
        };
        (decision, request)
    });
    let outcome = tokio::time::timeout(state.config.evaluation_timeout, job).await;
    state.metrics.in_flight.dec();
    let elapsed = started.elapsed().as_secs_f64();
    let decision = match outcome {
        Ok(Ok((decision, _))) => {
            for (policy, spent) in &decision.timings {
                state.metrics.evaluation(policy, spent.as_secs_f64());
            }
            state.metrics.evaluation("all", elapsed);
            state
                .metrics
                .gatekeeper_decisions(decision.gatekeeper_remembered, decision.gatekeeper_evaluated);
            decision
        }
        Ok(Err(join_error)) => failed(state, &uid, name, &format!("evaluation failed: {join_error}")),
        Err(_) => failed(
            state,
            &uid,
            name,
            &format!(
                "evaluation exceeded its time budget of {:?}",
                state.config.evaluation_timeout
            ),
        ),
    };
    let result = if decision.allowed {
        if decision.patch.is_some() {
            "mutated"
        } else {
            "allowed"
        }
    } else {
        "denied"
    };
    state.metrics.request(name, result);
    json_response(StatusCode::OK, &response(&uid, &decision))
}

/// The decision when evaluation could not finish, per the failure policy; always logged.
fn failed(state: &State, uid: &str, endpoint: &str, reason: &str) -> Decision {
    state.metrics.request(endpoint, "error");
    let mut decision = Decision::allow();
    decision
        .audit_annotations
        .insert("failure".into(), reason.to_string());
    match state.config.failure_policy {
        FailurePolicy::Fail => {
            eprintln!("palisade admission: request {uid}: {reason}; failing closed (deny)");
            decision.allowed = false;
            decision.code = Some(500);
            decision.message = Some(format!("palisade could not evaluate this request: {reason}"));
            decision
                .audit_annotations
                .insert("decision".into(), "deny".into());
        }
        FailurePolicy::Ignore => {
            eprintln!("palisade admission: request {uid}: {reason}; failing open (allow)");
            decision.warnings.push(format!(
                "palisade could not evaluate this request ({reason}); allowed by failure policy"
            ));
            decision
                .audit_annotations
                .insert("decision".into(), "allow".into());
        }
    }
    decision
}
