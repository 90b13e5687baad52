//! `palisade waf serve`: the WAF reverse proxy in front of one upstream, with SecLang rules (OWASP
//! CRS as shipped, plus your own) loaded from files and directories.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
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
    /// Address to listen on (plain HTTP/1.1 and HTTP/2 cleartext).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The application: http://host:port.
    #[arg(long)]
    pub upstream: String,
    /// Rule files, or directories whose *.conf files are loaded in name order; in the order given
    /// (for CRS: crs-setup.conf, then the rules directory). Repeatable.
    #[arg(long = "rules", value_name = "PATH", required = true)]
    pub rules: Vec<PathBuf>,
    /// Largest request body the proxy buffers (413 above it), whatever the rules' own limits.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// Seconds a client may take to send a request head (slowloris defence).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a keep-alive connection may sit idle between requests.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub idle_timeout: u64,
    /// Slowest request body accepted, in bytes per second after the grace period (408 below it);
    /// 0 turns the check off.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub min_body_rate: u64,
    /// Seconds of a request body before the minimum rate applies.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub body_grace: u64,
    /// Open client connections in total; more are closed at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open connections per client address.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Requests handled at once; more get 503 with Retry-After (load shedding).
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Write matched-rule lines (ModSecurity error-log format) to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub error_log: Option<PathBuf>,
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

fn serve(args: ServeArgs) -> Result<u8> {
    let files = rule_files(&args.rules)?;
    let started = std::time::Instant::now();
    let rules = Arc::new(palisade_waf::fs::load_files(&files)?);
    eprintln!(
        "palisade waf: {} rules from {} files in {:.2} s",
        rules.rule_count(),
        files.len(),
        started.elapsed().as_secs_f64()
    );
    let log = match &args.error_log {
        Some(path) => palisade_proxy::ErrorLog::File(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the error log {}", path.display()))?,
        )),
        None => palisade_proxy::ErrorLog::Stderr,
    };
    let limits = palisade_proxy::Limits {
        max_request_body: args.max_body_bytes,
        timeouts: palisade_proxy::conn::Timeouts {
            header: Duration::from_secs(args.header_timeout.max(1)),
            idle: Duration::from_secs(args.idle_timeout.max(1)),
        },
        min_body_rate: args.min_body_rate,
        body_rate_grace: Duration::from_secs(args.body_grace),
        max_connections: args.max_connections.max(1),
        max_connections_per_ip: args.max_connections_per_ip.max(1),
        max_in_flight: args.max_in_flight.max(1),
        ..Default::default()
    };
    let proxy = Arc::new(palisade_proxy::Proxy::new(rules, &args.upstream, log, limits)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "palisade waf: listening on http://{} for {}",
            listener.local_addr()?,
            args.upstream
        );
        proxy
            .serve(listener, crate::admission_cmd::shutdown_signal())
            .await?;
        eprintln!("palisade waf: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
