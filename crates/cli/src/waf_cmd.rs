//! `palisade waf serve`: the WAF reverse proxy in front of one upstream, with SecLang rules (OWASP
//! CRS as shipped, plus your own) loaded from files and directories.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use palisade_proxy::config::{MAX_WORKERS, Scheduling};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum WafCommand {
    /// Reverse proxy: every request and response goes through the WAF on its way.
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A configuration file (YAML) with routes, TLS, logs and limits; flags given as well override
    /// its listen address and limits.
    #[arg(long, value_name = "FILE", conflicts_with = "upstream")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// The application, http://host:port (one route for every host and path).
    #[arg(long, required_unless_present = "config")]
    pub upstream: Option<String>,
    /// Rule files, or directories whose *.conf files are loaded in name order; in the order given
    /// (for CRS: crs-setup.conf, then the rules directory). Repeatable.
    #[arg(long = "rules", value_name = "PATH", required_unless_present = "config")]
    pub rules: Vec<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM; reloaded when the file changes).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A load balancer or proxy in front (address or CIDR) whose X-Forwarded-For names the client
    /// for rules, rate limits, bot checks and logs. Repeatable.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
    /// Address of the admin endpoints: /healthz, /readyz, /metrics (Prometheus).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// Write matched-rule lines (ModSecurity error-log format) to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub error_log: Option<PathBuf>,
    /// Write a JSON audit log (one object per line) of requests that matched a rule or were not
    /// simply forwarded.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Largest request body the proxy buffers (413 above it), whatever the rules' own limits
    /// [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a client may take to send a request head (slowloris defence) [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub header_timeout: Option<u64>,
    /// Seconds a keep-alive connection may sit idle between requests [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// Slowest request body accepted, in bytes per second after the grace period (408 below it);
    /// 0 turns the check off [default: 1024].
    #[arg(long, value_name = "BYTES")]
    pub min_body_rate: Option<u64>,
    /// Seconds of a request body before the minimum rate applies [default: 5].
    #[arg(long, value_name = "SECONDS")]
    pub body_grace: Option<u64>,
    /// Open client connections in total; more are closed at once [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open connections per client address [default: 256].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Requests handled at once; more get 503 with Retry-After (load shedding) [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// How connections are spread over threads: `per-core` gives each worker thread its own
    /// event loop and keeps a connection on the worker that accepted it (its buffers and the
    /// engine's working set stay in that core's cache); `work-stealing` lets idle workers take
    /// over any connection's work (evens out a few busy long-lived connections) [default: per-core].
    #[arg(long, value_parser = Scheduling::NAMES)]
    pub scheduling: Option<String>,
    /// Per-core workers keep polling their sockets without sleeping for this many microseconds
    /// after a client's last read (like HAProxy's busy-polling). On a virtual machine an idle
    /// vCPU is halted or given away and the next request finds the caches cold; this trades CPU
    /// for latency and throughput at low concurrency. 0 (the default) turns it off.
    #[arg(long, value_name = "MICROSECONDS", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub busy_poll: Option<u32>,
    /// Worker threads [default: one per CPU the process may use].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_WORKERS as i64))]
    pub workers: Option<u16>,
}

impl ServeArgs {
    /// `base` with the limits given as flags applied.
    fn limits(&self, base: palisade_proxy::Limits) -> palisade_proxy::Limits {
        let mut l = base;
        let secs = |s: u64| Duration::from_secs(s.max(1));
        if let Some(v) = self.max_body_bytes {
            l.max_request_body = v.max(1);
        }
        if let Some(v) = self.header_timeout {
            l.timeouts.header = secs(v);
        }
        if let Some(v) = self.idle_timeout {
            l.timeouts.idle = secs(v);
        }
        if let Some(v) = self.min_body_rate {
            l.min_body_rate = v;
        }
        if let Some(v) = self.body_grace {
            l.body_rate_grace = Duration::from_secs(v);
        }
        if let Some(v) = self.max_connections {
            l.max_connections = v.max(1);
        }
        if let Some(v) = self.max_connections_per_ip {
            l.max_connections_per_ip = v.max(1);
        }
        if let Some(v) = self.max_in_flight {
            l.max_in_flight = v.max(1);
        }
        l
    }
}

pub fn run(command: WafCommand) -> Result<u8> {
    match command {
        WafCommand::Serve(args) => serve(args),
    }
}

/// The rule files in load order: a file as given, a directory's `*.conf` sorted by name.
fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("--rules {}", p.display()))?;
        if meta.is_dir() {
            let mut confs: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "conf") && f.is_file())
                .collect();
            confs.sort();
            if confs.is_empty() {
                bail!("--rules {}: no .conf files", p.display());
            }
            out.extend(confs);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Loads each distinct rule list once (routes usually share the top-level one).
struct RuleCache(Vec<(Vec<PathBuf>, Arc<palisade_waf::Ruleset>)>);

impl RuleCache {
    fn get(&mut self, paths: &[PathBuf]) -> Result<Arc<palisade_waf::Ruleset>> {
        if let Some((_, r)) = self.0.iter().find(|(p, _)| p == paths) {
            return Ok(r.clone());
        }
        let started = std::time::Instant::now();
        let rules = if paths.is_empty() {
            // A route with no rules: the engine still runs (it is what logs), but inspects nothing.
            Arc::new(palisade_waf::Ruleset::parse("SecRuleEngine Off\n")?)
        } else {
            let files = rule_files(paths)?;
            let rules = Arc::new(palisade_waf::fs::load_files(&files)?);
            eprintln!(
                "palisade waf: {} rules from {} files in {:.2} s",
                rules.rule_count(),
                files.len(),
                started.elapsed().as_secs_f64()
            );
            rules
        };
        self.0.push((paths.to_vec(), rules.clone()));
        Ok(rules)
    }
}

fn log_sink(path: Option<&PathBuf>, what: &str) -> Result<Option<palisade_proxy::audit::LogSink>> {
    path.map(|p| {
        palisade_proxy::audit::LogSink::file(p)
            .with_context(|| format!("cannot open the {what} {}", p.display()))
    })
    .transpose()
}

fn serve(args: ServeArgs) -> Result<u8> {
    use palisade_proxy::config::{AuditChoice, ServeConfig};
    let mut workers = args.workers.map(usize::from);
    let mut scheduling = args.scheduling.as_deref().and_then(Scheduling::parse);
    let mut busy_poll = args.busy_poll.map(|us| Duration::from_micros(us.into()));
    let config = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(ServeConfig::parse(&text, path)?)
        }
        None => None,
    };
    let mut cache = RuleCache(Vec::new());
    let mut routes = Vec::new();
    let limits;
    let listen;
    let (mut tls_files, mut admin) = (None, args.admin.clone());
    let (mut error_log, mut audit_log, mut audit_all) =
        (args.error_log.clone(), args.audit_log.clone(), false);
    if let Some(config) = &config {
        for r in &config.routes {
            let rules = cache.get(r.rules.as_deref().unwrap_or(&config.rules))?;
            routes.push(r.build(rules, &mut |w| eprintln!("palisade waf: warning: {w}"))?);
        }
        limits = args.limits(config.limits(palisade_proxy::Limits::default()));
        listen = args.listen.clone().or(config.listen.clone());
        tls_files = config.tls.as_ref().map(|t| (t.cert.clone(), t.key.clone()));
        admin = admin.or(config.admin.clone());
        error_log = error_log.or(config.error_log.clone());
        audit_log = audit_log.or(config.audit_log.clone());
        audit_all = config.audit == AuditChoice::All;
        workers = workers.or(config.workers);
        scheduling = scheduling.or(config.scheduling);
        busy_poll = busy_poll.or(config.busy_poll.map(|d| d.0));
    } else {
        let rules = cache.get(&args.rules)?;
        let upstream = args.upstream.as_deref().unwrap_or_default();
        routes.push(palisade_proxy::Route::new("default", None, "/", upstream, rules)?);
        limits = args.limits(palisade_proxy::Limits::default());
        listen = args.listen.clone();
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        tls_files = Some((cert.clone(), key.clone()));
    }
    let listen = listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let tls = match tls_files {
        Some((cert, key)) => {
            let resolver = Arc::new(palisade_tls::ReloadingResolver::new(cert, key)?);
            Some(Arc::new(palisade_tls::server_config(resolver)?))
        }
        None => None,
    };
    let logs = palisade_proxy::Logs {
        error: log_sink(error_log.as_ref(), "error log")?.unwrap_or(palisade_proxy::audit::LogSink::Stderr),
        audit: log_sink(audit_log.as_ref(), "audit log")?.map(|sink| {
            let scope = if audit_all {
                palisade_proxy::audit::AuditScope::All
            } else {
                palisade_proxy::audit::AuditScope::Relevant
            };
            (sink, scope)
        }),
    };
    let route_names: Vec<String> = routes.iter().map(|r| r.name.clone()).collect();
    let mut trusted = match (&config, &args.config) {
        (Some(config), Some(file)) => config.trusted_proxies(file)?,
        _ => Vec::new(),
    };
    for t in &args.trusted_proxies {
        trusted.push(
            palisade_waf::bots::Cidr::parse(t)
                .with_context(|| format!("--trusted-proxy {t:?}: expected an address or CIDR network"))?,
        );
    }
    let mut proxy = palisade_proxy::Proxy::new(routes, logs, limits)?;
    proxy.trusted_proxies = trusted;
    let scheduling = scheduling.unwrap_or_default();
    if let Some(window) = busy_poll.filter(|w| !w.is_zero()) {
        if scheduling == Scheduling::WorkStealing {
            bail!(
                "busy polling needs per-core scheduling: a work-stealing runtime's threads share the connections"
            );
        }
        proxy.busy_poll = Some(window);
    }
    let proxy = Arc::new(proxy);
    let workers = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, MAX_WORKERS);
    let shards = if scheduling == Scheduling::PerCore {
        workers
    } else {
        1
    };
    let mut listeners = bind(&listen, shards).with_context(|| format!("cannot listen on {listen}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let banner = format!(
        "palisade waf: listening on {scheme}://{} for {} ({workers} {} workers)",
        listeners[0].local_addr()?,
        route_names.join(", "),
        scheduling.name()
    );
    let admin = match &admin {
        Some(admin) => {
            let l = bind(admin, 1)
                .with_context(|| format!("cannot listen on {admin} (admin)"))?
                .remove(0);
            eprintln!("palisade waf: admin on http://{}", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    match scheduling {
        Scheduling::WorkStealing => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                if let Some(admin) = admin {
                    let admin = tokio::net::TcpListener::from_std(admin)?;
                    tokio::spawn(proxy.clone().serve_admin(admin, std::future::pending()));
                }
                let listener = tokio::net::TcpListener::from_std(listeners.remove(0))?;
                eprintln!("{banner}");
                proxy
                    .serve(None, listener, tls, crate::admission_cmd::shutdown_signal())
                    .await?;
                Ok::<_, anyhow::Error>(())
            })?;
        }
        Scheduling::PerCore => serve_per_core(proxy, listeners, tls, admin, &banner)?,
    }
    eprintln!("palisade waf: stopped");
    Ok(0)
}

/// One single-threaded runtime per worker, each accepting from its own listening socket of one
/// `SO_REUSEPORT` group: the kernel spreads new connections over the workers by a hash of their
/// addresses, and a connection stays on the worker that accepted it. (Sockets shared by every
/// worker let the first worker to wake take a whole burst of connections, and under wrk's 32 that
/// left the other core idle in two runs of eight.) The main thread waits for the shutdown signal,
/// serves the admin endpoints and tells every worker to stop.
fn serve_per_core(
    proxy: Arc<palisade_proxy::Proxy>,
    listeners: Vec<std::net::TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
    admin: Option<std::net::TcpListener>,
    banner: &str,
) -> Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (proxy, tls, mut stopped) = (proxy.clone(), tls.clone(), stopped.clone());
        let thread = std::thread::Builder::new()
            .name(format!("palisade-waf-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let shutdown = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    proxy.serve(Some(index), listener, tls, shutdown).await?;
                    Ok::<_, anyhow::Error>(())
                })
            })
            .context("cannot start a worker thread")?;
        threads.push(thread);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if let Some(admin) = admin {
            let admin = tokio::net::TcpListener::from_std(admin)?;
            tokio::spawn(proxy.clone().serve_admin(admin, std::future::pending()));
        }
        eprintln!("{banner}");
        crate::admission_cmd::shutdown_signal().await;
        Ok::<_, anyhow::Error>(())
    })?;
    let _ = stop.send(true);
    let mut result = Ok(());
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(anyhow::anyhow!("a worker thread panicked")),
        }
    }
    result
}

/// `count` listening sockets on `address` as tokio makes them (address resolution, SO_REUSEADDR, a
/// backlog of 1,024 where the standard library's is 128), handed back as non-blocking std sockets
/// that any runtime can adopt. More than one form an `SO_REUSEPORT` group; the address is first
/// bound alone, so that a port another process holds (even with `SO_REUSEPORT`, as a second
/// palisade would) is still an error rather than shared.
fn bind(address: &str, count: usize) -> Result<Vec<std::net::TcpListener>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let _guard = runtime.enter();
    if count <= 1 {
        let listener = runtime.block_on(tokio::net::TcpListener::bind(address))?;
        return Ok(vec![listener.into_std()?]);
    }
    let mut addr = runtime
        .block_on(tokio::net::lookup_host(address))?
        .next()
        .with_context(|| format!("{address} resolves to no address"))?;
    if addr.port() != 0 {
        drop(std::net::TcpListener::bind(addr)?);
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        // Port 0: the others join the port the kernel chose for the first.
        addr = listener.local_addr()?;
        out.push(listener.into_std()?);
    }
    Ok(out)
}
