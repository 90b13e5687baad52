//! Throughput of the engine with OWASP CRS v4.28: load time, then requests per second on one core
//! for a few representative requests, at paranoia level 1 and 4.
//!
//! cargo run --release -p palisade-waf --example crs_bench [-- CRS_DIR [ITERATIONS [NAME]]]
//! CRS_DIR defaults to $PALISADE_SHARED/data/crs (PALISADE_SHARED defaults to ../shared).
//!
//! Environment:
//! - `PARANOIA=1` (or `1,4`): the paranoia levels to measure (default both).
//! - `THREADS=N`: N threads run the same requests on one shared rule set, as a proxy's workers
//!   do; each prints its own row (what they cost each other shows as CPU per request).
//! - `RULES=FILE:FILE...`: load these files (globs allowed) instead of the built-in CRS setup,
//!   e.g. the configuration `modsec-peer.sh` writes, to measure exactly what the proxy loads.
//! - `UNIQUE_AGENT=1`: a different User-Agent on every request, so that the memo of header
//!   values never hits (design note 26).
//! - `COLD=MB`: evict the caches before each transaction (write over MB of memory) and report the
//!   time inside transactions (both time columns): the engine as a busy proxy runs it.

use palisade_waf::{Ruleset, RulesetBuilder, fs::FsLoader};
use std::path::PathBuf;
use std::time::Instant;

struct Req {
    name: &'static str,
    method: &'static str,
    uri: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
}

const REQUESTS: &[Req] = &[
    Req {
        name: "benign GET",
        method: "GET",
        uri: "/products/42?sort=price&page=2",
        content_type: None,
        body: "",
    },
    Req {
        name: "benign form POST",
        method: "POST",
        uri: "/login",
        content_type: Some("application/x-www-form-urlencoded"),
        body: "user=alice&password=correct+horse+battery+staple&remember=1",
    },
    Req {
        name: "benign JSON POST",
        method: "POST",
        uri: "/api/orders",
        content_type: Some("application/json"),
        body: r#"{"items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"leave at the door","express":false}"#,
    },
    // The requests of the proxy benchmark (`scripts/bench/waf-setup.sh`), for the engine alone.
    Req {
        name: "proxy GET",
        method: "GET",
        uri: "/api/items?id=42&sort=name",
        content_type: None,
        body: "",
    },
    Req {
        name: "proxy JSON POST",
        method: "POST",
        uri: "/api/items",
        content_type: Some("application/json"),
        body: r#"{"name":"garden chair","quantity":3,"tags":["outdoor","wood"],"price":49.90}"#,
    },
    Req {
        name: "SQLi GET",
        method: "GET",
        uri: "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        content_type: None,
        body: "",
    },
    Req {
        name: "XSS form POST",
        method: "POST",
        uri: "/comment",
        content_type: Some("application/x-www-form-urlencoded"),
        body: "text=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
    },
];

fn load(crs: &std::path::Path, paranoia: u8) -> Ruleset {
    if let Ok(files) = std::env::var("RULES") {
        let mut b = RulesetBuilder::new();
        for f in files.split(':') {
            b.add("bench.conf", &format!("Include {f}\n"), &mut FsLoader)
                .expect("rules load");
        }
        return b.build().expect("rules build");
    }
    let text = format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n\
         SecRule REQUEST_HEADERS:Content-Type \"^application/json\" \"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecAction \"id:900000,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={paranoia}\"\n\
         Include {}\nInclude {}\n",
        crs.join("crs-setup.conf.example").display(),
        crs.join("rules/*.conf").display()
    );
    let mut b = RulesetBuilder::new();
    b.add("bench.conf", &text, &mut FsLoader).expect("CRS loads");
    b.build().expect("CRS builds")
}

/// CPU time of this thread (Linux schedstat, ns): on a shared machine, wall time over-counts.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let crs = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let shared = std::env::var_os("PALISADE_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared"));
        shared.join("data/crs")
    });
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    // Optional: only requests whose name contains this text (for profiling one case).
    let only = args.next();
    let levels: Vec<u8> = match std::env::var("PARANOIA") {
        Ok(p) => p.split(',').filter_map(|l| l.parse().ok()).collect(),
        Err(_) => vec![1, 4],
    };
    for paranoia in levels {
        let t = Instant::now();
        let rs = load(&crs, paranoia);
        println!(
            "paranoia level {paranoia}: CRS loaded in {:.0} ms ({} rules)",
            t.elapsed().as_secs_f64() * 1e3,
            rs.rule_count()
        );
        println!(
            "  {:20} {:>12} {:>12} {:>12} {:>8}",
            "request", "CPU µs/req", "req/s/core", "wall µs/req", "matched"
        );
        for r in REQUESTS
            .iter()
            .filter(|r| only.as_deref().is_none_or(|o| r.name.contains(o)))
        {
            let threads: usize = std::env::var("THREADS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let results: Vec<(f64, f64, usize)> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| scope.spawn(|| measure(&rs, r, iterations)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("bench thread"))
                    .collect()
            });
            for (cpu, wall, matched) in results {
                println!(
                    "  {:20} {:>12.1} {:>12.0} {:>12.1} {:>8}",
                    r.name,
                    cpu * 1e6,
                    1.0 / cpu,
                    wall * 1e6,
                    matched
                );
            }
        }
    }
}

// Never inlined: `scripts/bench/waf-cache-misses.sh` finds `COLD`'s own misses under this name.
#[inline(never)]
fn measure(rs: &Ruleset, r: &Req, iterations: usize) -> (f64, f64, usize) {
    let mut matched = 0;
    let t = Instant::now();
    let c0 = cpu_ns();
    // COLD=MB: write over that much memory before each transaction, as a proxy's networking and
    // the other processes on its cores do between requests, so the rule set is read from cold
    // caches; the row then reports the time inside transactions only.
    let cold_mb: usize = std::env::var("COLD")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut scratch = vec![0u8; cold_mb << 20];
    let unique_agent = std::env::var_os("UNIQUE_AGENT").is_some();
    let mut in_tx = std::time::Duration::ZERO;
    for i in 0..iterations {
        for b in scratch.iter_mut().step_by(64) {
            *b = b.wrapping_add(i as u8);
        }
        let t1 = Instant::now();
        let mut tx = rs.transaction();
        tx.set_connection("192.0.2.10", 50000, "192.0.2.1", 443);
        tx.set_request_line(r.method.as_bytes(), r.uri.as_bytes(), b"HTTP/1.1");
        tx.add_request_header(b"Host", b"shop.example");
        let agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        // UNIQUE_AGENT: a User-Agent never seen before on every request (a new build number),
        // what the engine's memo of header values (design note 26) costs when it never hits.
        let agent = if unique_agent {
            format!("{agent} Build/{i}")
        } else {
            agent.to_string()
        };
        tx.add_request_header(b"User-Agent", agent.as_bytes());
        tx.add_request_header(
            b"Accept",
            b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        );
        tx.add_request_header(b"Accept-Language", b"en-US,en;q=0.5");
        tx.add_request_header(b"Cookie", b"session=7f3a9c1e5b; theme=dark");
        if let Some(ct) = r.content_type {
            tx.add_request_header(b"Content-Type", ct.as_bytes());
            tx.add_request_header(b"Content-Length", r.body.len().to_string().as_bytes());
        }
        tx.process_request_headers();
        let _ = tx.append_request_body(r.body.as_bytes());
        tx.process_request_body();
        tx.set_response_status(200, b"HTTP/1.1");
        tx.add_response_header(b"Content-Type", b"text/html; charset=utf-8");
        tx.process_response_headers();
        let _ = tx.append_response_body(b"<html><body><h1>ok</h1></body></html>");
        tx.process_response_body();
        tx.process_logging();
        matched = tx.matched_rules().iter().filter(|m| m.log).count();
        drop(tx);
        in_tx += t1.elapsed();
    }
    if cold_mb > 0 {
        let per_tx = in_tx.as_secs_f64() / iterations as f64;
        return (per_tx, per_tx, matched);
    }
    let wall = t.elapsed().as_secs_f64() / iterations as f64;
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9 / iterations as f64,
        _ => wall,
    };
    (cpu, wall, matched)
}
