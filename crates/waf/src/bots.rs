//! Bot defence, sans-I/O: known scanner and bad-bot signatures, header anomaly scoring, per-client
//! request-rate and error-rate fingerprints, and a cookie challenge signed with HMAC-SHA256 that a
//! client passes by running the page's script. Clients in allowlisted networks skip it all. The
//! proxy feeds it each request and each response status with the time; it never touches sockets.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// An IPv4 or IPv6 network, `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr {
            network: addr,
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 { 0 } else { bits >> (width - prefix) }
        }
        // An IPv4-mapped IPv6 client matches IPv4 networks.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u128::from(u32::from(n)), self.prefix, 32)
                    == masked(u128::from(u32::from(a)), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Tunables; the defaults suit a website (an API used by scripts wants bots off, or higher scores).
#[derive(Debug, Clone)]
pub struct BotPolicy {
    /// From this score on, a client without a valid challenge cookie gets the challenge.
    pub challenge_score: u32,
    /// From this score on, the request is refused (a passed challenge does not help).
    pub block_score: u32,
    pub allow: Vec<Cidr>,
    /// Requests per client within `window` above which the client scores as a flood.
    pub max_requests: u32,
    pub window: Duration,
    /// Share of 4xx answers (after at least 20 requests in the window) that marks a scanner.
    pub max_error_ratio: f64,
    /// How long a passed challenge holds.
    pub cookie_ttl: Duration,
}

impl Default for BotPolicy {
    fn default() -> Self {
        BotPolicy {
            challenge_score: 5,
            block_score: 10,
            allow: Vec::new(),
            max_requests: 300,
            window: Duration::from_secs(10),
            max_error_ratio: 0.5,
            cookie_ttl: Duration::from_secs(3600),
        }
    }
}

/// What the assessment needs of a request.
pub struct BotRequest<'a> {
    pub client_ip: IpAddr,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`.
    pub version: &'a str,
    pub host: &'a str,
    pub user_agent: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub accept_language: Option<&'a str>,
    pub accept_encoding: Option<&'a str>,
    /// The value of the challenge cookie, if the client sent one.
    pub challenge_cookie: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotAction {
    Allow,
    Challenge,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotAssessment {
    pub action: BotAction,
    pub score: u32,
    /// Why, one entry per signal that scored.
    pub reasons: Vec<String>,
}

/// The name of the challenge cookie.
pub const CHALLENGE_COOKIE: &str = "__palisade_bot";

/// (lower-case user-agent fragment, tool) for scanners and bad bots: refused outright.
const SIGNATURES: &[(&str, &str)] = &[
    ("sqlmap", "sqlmap"),
    ("nikto", "Nikto"),
    ("nmap scripting engine", "Nmap NSE"),
    ("nmap nse", "Nmap NSE"),
    ("masscan", "masscan"),
    ("zgrab", "ZGrab"),
    ("nuclei", "Nuclei"),
    ("wpscan", "WPScan"),
    ("dirbuster", "DirBuster"),
    ("gobuster", "gobuster"),
    ("feroxbuster", "feroxbuster"),
    ("fuzz faster u fool", "ffuf"),
    ("acunetix", "Acunetix"),
    ("netsparker", "Netsparker"),
    ("nessus", "Nessus"),
    ("openvas", "OpenVAS"),
    ("w3af", "w3af"),
    ("arachni", "Arachni"),
    ("skipfish", "skipfish"),
    ("havij", "Havij"),
    ("zmeu", "ZmEu"),
    ("morfeus", "Morfeus"),
    ("jaascois", "JAASCois"),
    ("paros", "Paros"),
    ("webinspect", "WebInspect"),
    ("appscan", "AppScan"),
    ("burpcollaborator", "Burp Collaborator"),
    ("commix", "commix"),
    ("xsstrike", "XSStrike"),
    ("joomscan", "JoomScan"),
    ("whatweb", "WhatWeb"),
    ("wfuzz", "Wfuzz"),
    ("hydra", "THC Hydra"),
    ("medusa", "Medusa"),
    ("brutus", "Brutus"),
    ("l9explore", "l9explore"),
    ("l9tcpid", "l9tcpid"),
    ("censysinspect", "CensysInspect"),
    ("mj12bot", "MJ12bot"),
    ("dotbot", "DotBot"),
    ("petalbot", "PetalBot"),
    ("blexbot", "BLEXBot"),
    ("seekport", "Seekport"),
    ("megaindex", "MegaIndex"),
];

/// Fragments of automation libraries and headless browsers: scored, not refused.
const AUTOMATION: &[(&str, &str, u32)] = &[
    ("headlesschrome", "headless browser", 4),
    ("phantomjs", "headless browser", 4),
    ("selenium", "browser automation", 4),
    ("puppeteer", "browser automation", 4),
    ("playwright", "browser automation", 4),
    ("python-requests", "automation library", 3),
    ("python-urllib", "automation library", 3),
    ("aiohttp", "automation library", 3),
    ("go-http-client", "automation library", 3),
    ("java/", "automation library", 3),
    ("okhttp", "automation library", 3),
    ("libwww-perl", "automation library", 3),
    ("curl/", "command-line client", 3),
    ("wget/", "command-line client", 3),
    ("scrapy", "scraping framework", 4),
    ("httpclient", "automation library", 2),
];

#[derive(Debug, Clone, Copy, Default)]
struct ClientWindow {
    /// Start of the current window (ns on the caller's clock).
    start: u64,
    requests: u32,
    errors: u32,
    previous_requests: u32,
}

pub struct BotGuard {
    policy: BotPolicy,
    key: ring::hmac::Key,
    /// None only if the constant lists failed to build (a bug the tests catch): nothing matches.
    signatures: Option<AhoCorasick>,
    automation: Option<AhoCorasick>,
    clients: Mutex<HashMap<IpAddr, ClientWindow>>,
    max_clients: usize,
}

impl BotGuard {
    /// `secret` signs challenge cookies: share it between replicas so a cookie one issued is
    /// honoured by the others.
    pub fn new(policy: BotPolicy, secret: &[u8]) -> BotGuard {
        let build = |patterns: Vec<&str>| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(patterns)
        };
        let signatures = build(SIGNATURES.iter().map(|s| s.0).collect()).ok();
        let automation = build(AUTOMATION.iter().map(|s| s.0).collect()).ok();
        BotGuard {
            policy,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            signatures,
            automation,
            clients: Mutex::new(HashMap::new()),
            max_clients: 100_000,
        }
    }

    pub fn policy(&self) -> &BotPolicy {
        &self.policy
    }

    /// Scores one request at `now_ns` (monotonic, for the rate fingerprint) and `now_unix` (for
    /// the cookie's expiry), and counts it for its client.
    pub fn assess(&self, req: &BotRequest<'_>, now_ns: u64, now_unix: u64) -> BotAssessment {
        if self.policy.allow.iter().any(|c| c.contains(req.client_ip)) {
            return BotAssessment {
                action: BotAction::Allow,
                score: 0,
                reasons: vec!["allowlisted network".into()],
            };
        }
        let mut score = 0u32;
        let mut reasons = Vec::new();
        let mut add = |points: u32, reason: String| {
            score += points;
            reasons.push(reason);
        };
        let ua = req.user_agent.unwrap_or("");
        if let Some(m) = self.signatures.as_ref().and_then(|a| a.find(ua)) {
            add(
                self.policy.block_score,
                format!("scanner signature: {}", SIGNATURES[m.pattern().as_usize()].1),
            );
        }
        if let Some(m) = self.automation.as_ref().and_then(|a| a.find(ua)) {
            let (_, what, points) = AUTOMATION[m.pattern().as_usize()];
            add(points, what.to_string());
        }
        match req.user_agent {
            None => add(4, "no User-Agent".into()),
            Some(ua) if ua.trim().len() < 10 => add(2, "very short User-Agent".into()),
            Some(ua) if ua.len() > 512 => add(2, "very long User-Agent".into()),
            _ => {}
        }
        if req.accept.is_none() {
            add(2, "no Accept".into());
        }
        if ua.starts_with("Mozilla/") {
            // Browsers always send these; a script that borrows a browser's name often does not.
            if req.accept_language.is_none() {
                add(2, "browser User-Agent without Accept-Language".into());
            }
            if req.accept_encoding.is_none() {
                add(2, "browser User-Agent without Accept-Encoding".into());
            }
        }
        if req.version == "HTTP/1.0" {
            add(1, "HTTP/1.0".into());
        }
        let host = req.host.rsplit_once(':').map_or(req.host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                req.host
            }
        });
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            add(1, "Host is an IP address".into());
        }
        let window = self.count_request(req.client_ip, now_ns);
        if window.rate > f64::from(self.policy.max_requests) {
            add(
                4,
                format!(
                    "{:.0} requests in {} s",
                    window.rate,
                    self.policy.window.as_secs()
                ),
            );
        }
        if window.requests >= 20
            && f64::from(window.errors) / f64::from(window.requests) > self.policy.max_error_ratio
        {
            add(
                4,
                format!(
                    "{} of {} recent answers were errors",
                    window.errors, window.requests
                ),
            );
        }
        let action = if score >= self.policy.block_score {
            BotAction::Block
        } else if score >= self.policy.challenge_score {
            let passed = req
                .challenge_cookie
                .is_some_and(|c| self.verify_token(c, req.client_ip, ua, now_unix));
            if passed {
                reasons.push("challenge passed".into());
                BotAction::Allow
            } else {
                BotAction::Challenge
            }
        } else {
            BotAction::Allow
        };
        BotAssessment {
            action,
            score,
            reasons,
        }
    }

    /// Counts an answer's status for its client (4xx feed the error-rate fingerprint).
    pub fn observe_response(&self, client_ip: IpAddr, status: u16, now_ns: u64) {
        if !(400..500).contains(&status) {
            return;
        }
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = clients.get_mut(&client_ip)
            && now_ns.saturating_sub(w.start) < self.window_ns()
        {
            w.errors += 1;
        }
    }

    fn window_ns(&self) -> u64 {
        (self.policy.window.as_nanos() as u64).max(1)
    }

    /// Counts a request and returns the client's estimated rate over the last window (the
    /// previous window weighted by how much of it still overlaps) and the current window's counts.
    fn count_request(&self, ip: IpAddr, now_ns: u64) -> WindowView {
        let window = self.window_ns();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if !clients.contains_key(&ip) && clients.len() >= self.max_clients {
            clients.retain(|_, w| now_ns.saturating_sub(w.start) < 2 * window);
            if clients.len() >= self.max_clients {
                clients.clear();
            }
        }
        let w = clients.entry(ip).or_insert(ClientWindow {
            start: now_ns,
            ..Default::default()
        });
        let elapsed = now_ns.saturating_sub(w.start);
        if elapsed >= 2 * window {
            *w = ClientWindow {
                start: now_ns,
                ..Default::default()
            };
        } else if elapsed >= window {
            *w = ClientWindow {
                start: w.start + window,
                previous_requests: w.requests,
                ..Default::default()
            };
        }
        w.requests += 1;
        let into = now_ns.saturating_sub(w.start) as f64 / window as f64;
        WindowView {
            rate: f64::from(w.previous_requests) * (1.0 - into.min(1.0)) + f64::from(w.requests),
            requests: w.requests,
            errors: w.errors,
        }
    }

    /// A challenge cookie value for this client, valid for the policy's TTL.
    pub fn challenge_token(&self, client_ip: IpAddr, user_agent: &str, now_unix: u64) -> String {
        let expiry = now_unix + self.policy.cookie_ttl.as_secs();
        let tag = ring::hmac::sign(&self.key, signed_text(expiry, client_ip, user_agent).as_bytes());
        format!("v1.{expiry}.{}", hex(tag.as_ref()))
    }

    /// Whether `token` was issued by this guard (or one with the same secret) to this client and
    /// has not expired.
    pub fn verify_token(&self, token: &str, client_ip: IpAddr, user_agent: &str, now_unix: u64) -> bool {
        let mut parts = token.splitn(3, '.');
        let (Some("v1"), Some(expiry), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let Ok(expiry) = expiry.parse::<u64>() else {
            return false;
        };
        let Some(tag) = unhex(tag) else { return false };
        expiry > now_unix
            && ring::hmac::verify(
                &self.key,
                signed_text(expiry, client_ip, user_agent).as_bytes(),
                &tag,
            )
            .is_ok()
    }

    /// The challenge page: a script sets the signed cookie and reloads; clients that run no
    /// scripts stay here.
    pub fn challenge_page(&self, token: &str) -> String {
        let max_age = self.policy.cookie_ttl.as_secs();
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Checking your browser</title></head>\n<body><p>Checking your browser before you continue.</p>\n<noscript><p>This site needs JavaScript to let you in.</p></noscript>\n<script>document.cookie = \"{CHALLENGE_COOKIE}={token}; path=/; max-age={max_age}; SameSite=Lax\"; location.reload();</script>\n</body></html>\n"
        )
    }
}

struct WindowView {
    rate: f64,
    requests: u32,
    errors: u32,
}

fn signed_text(expiry: u64, ip: IpAddr, user_agent: &str) -> String {
    format!("v1|{expiry}|{ip}|{user_agent}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn browser<'a>(ip: &str) -> BotRequest<'a> {
        BotRequest {
            client_ip: ip.parse().unwrap(),
            version: "HTTP/1.1",
            host: "shop.example",
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            accept: Some("text/html,application/xhtml+xml"),
            accept_language: Some("en-GB,en;q=0.5"),
            accept_encoding: Some("gzip, deflate, br"),
            challenge_cookie: None,
        }
    }

    #[test]
    fn signature_lists_build() {
        let guard = BotGuard::new(BotPolicy::default(), b"secret");
        assert!(guard.signatures.is_some() && guard.automation.is_some());
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()), "IPv4-mapped");
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("192.0.2.7")
                .unwrap()
                .contains("192.0.2.7".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "::/129", "nonsense", "10.0.0.0/x", ""] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_browser_passes_and_scanners_are_blocked() {
        let guard = BotGuard::new(BotPolicy::default(), b"secret");
        let a = guard.assess(&browser("198.51.100.1"), SEC, 1000);
        assert_eq!((a.action, a.score), (BotAction::Allow, 0), "{:?}", a.reasons);

        let mut sqlmap = browser("198.51.100.2");
        sqlmap.user_agent = Some("sqlmap/1.7.2#stable (https://sqlmap.org)");
        let a = guard.assess(&sqlmap, SEC, 1000);
        assert_eq!(a.action, BotAction::Block);
        assert!(
            a.reasons.iter().any(|r| r == "scanner signature: sqlmap"),
            "{:?}",
            a.reasons
        );

        let mut nikto = browser("198.51.100.2");
        nikto.user_agent = Some("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)");
        assert_eq!(guard.assess(&nikto, SEC, 1000).action, BotAction::Block);
    }

    #[test]
    fn header_anomalies_add_up_to_a_challenge() {
        let guard = BotGuard::new(BotPolicy::default(), b"secret");
        let mut bare = browser("198.51.100.3");
        bare.user_agent = Some("python-requests/2.31.0");
        bare.accept = None;
        let a = guard.assess(&bare, SEC, 1000);
        assert_eq!(a.action, BotAction::Challenge, "{:?}", a.reasons);
        assert_eq!(a.score, 5);

        let mut fake = browser("198.51.100.4");
        fake.accept_language = None;
        fake.accept_encoding = None;
        fake.version = "HTTP/1.0";
        let a = guard.assess(&fake, SEC, 1000);
        assert_eq!((a.action, a.score), (BotAction::Challenge, 5), "{:?}", a.reasons);

        let mut nothing = browser("198.51.100.5");
        nothing.user_agent = None;
        nothing.accept = None;
        nothing.host = "198.51.100.200:80";
        let a = guard.assess(&nothing, SEC, 1000);
        assert_eq!(a.score, 7, "{:?}", a.reasons);
    }

    #[test]
    fn the_challenge_cookie_lets_a_client_through_until_it_expires() {
        let guard = BotGuard::new(BotPolicy::default(), b"secret");
        let mut client = browser("198.51.100.6");
        client.user_agent = Some("curl/8.5.0");
        client.accept = None;
        assert_eq!(guard.assess(&client, SEC, 1000).action, BotAction::Challenge);
        let token = guard.challenge_token(client.client_ip, "curl/8.5.0", 1000);
        assert!(guard.challenge_page(&token).contains(&token));
        client.challenge_cookie = Some(&token);
        assert_eq!(guard.assess(&client, SEC, 2000).action, BotAction::Allow);
        // Expired, another address, another user agent, another secret, tampering: no.
        assert!(!guard.verify_token(&token, client.client_ip, "curl/8.5.0", 1000 + 3600));
        assert!(!guard.verify_token(&token, "198.51.100.7".parse().unwrap(), "curl/8.5.0", 2000));
        assert!(!guard.verify_token(&token, client.client_ip, "curl/8.6.0", 2000));
        let other = BotGuard::new(BotPolicy::default(), b"another secret");
        assert!(!other.verify_token(&token, client.client_ip, "curl/8.5.0", 2000));
        let forged = token.replacen("v1.4600", "v1.9999999999", 1);
        assert!(!guard.verify_token(&forged, client.client_ip, "curl/8.5.0", 2000));
        for junk in ["", "v1", "v1.x.y", "v2.4600.00", "v1.4600.zz", "v1.4600.0"] {
            assert!(
                !guard.verify_token(junk, client.client_ip, "curl/8.5.0", 2000),
                "{junk}"
            );
        }
        // A scanner signature is blocked even with a valid cookie.
        let mut scanner = browser("198.51.100.6");
        scanner.user_agent = Some("sqlmap/1.7");
        let token = guard.challenge_token(scanner.client_ip, "sqlmap/1.7", 1000);
        scanner.challenge_cookie = Some(&token);
        assert_eq!(guard.assess(&scanner, SEC, 2000).action, BotAction::Block);
    }

    #[test]
    fn floods_and_error_storms_score() {
        let policy = BotPolicy {
            max_requests: 50,
            ..BotPolicy::default()
        };
        let guard = BotGuard::new(policy, b"secret");
        let client = browser("198.51.100.8");
        let mut last = None;
        for i in 0..60u64 {
            last = Some(guard.assess(&client, 100 * SEC + i * (SEC / 100), 1000));
        }
        let a = last.unwrap();
        assert!(
            a.reasons.iter().any(|r| r.contains("requests in 10 s")),
            "{:?}",
            a.reasons
        );
        // A quiet client is unaffected; after two windows the flood is forgotten.
        assert_eq!(guard.assess(&browser("198.51.100.9"), 100 * SEC, 1000).score, 0);
        assert_eq!(guard.assess(&client, 130 * SEC, 1000).score, 0);

        let scanner = browser("198.51.100.10");
        for i in 0..25u64 {
            guard.assess(&scanner, 200 * SEC + i, 1000);
            guard.observe_response(scanner.client_ip, 404, 200 * SEC + i);
        }
        let a = guard.assess(&scanner, 200 * SEC + 100, 1000);
        assert!(
            a.reasons.iter().any(|r| r.contains("were errors")),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn allowlisted_networks_skip_everything() {
        let policy = BotPolicy {
            allow: vec![Cidr::parse("198.51.100.0/24").unwrap()],
            ..BotPolicy::default()
        };
        let guard = BotGuard::new(policy, b"secret");
        let mut scanner = browser("198.51.100.11");
        scanner.user_agent = Some("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)");
        assert_eq!(guard.assess(&scanner, SEC, 1000).action, BotAction::Allow);
        scanner.client_ip = "203.0.113.1".parse().unwrap();
        assert_eq!(guard.assess(&scanner, SEC, 1000).action, BotAction::Block);
    }

    #[test]
    fn cookies_parse() {
        assert_eq!(
            cookie_value("a=1; __palisade_bot=v1.2.ab; b=2", CHALLENGE_COOKIE),
            Some("v1.2.ab")
        );
        assert_eq!(cookie_value("a=1", CHALLENGE_COOKIE), None);
        assert_eq!(cookie_value("", CHALLENGE_COOKIE), None);
    }
}
