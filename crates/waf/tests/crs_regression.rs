//! In-process CRS regression run: every go-ftw (v2) test under
//! `../shared/data/crs/tests/regression/tests` is turned into a request exactly as go-ftw would
//! send it (see `../shared/tools/crs-ftw.py`), parsed back as a server would, and driven through a
//! `Transaction` with CRS in its test profile (900005: detection-only, paranoia level 4). Responses
//! come from an emulation of the albedo backend (`/reflect`). No sockets.
//!
//! `CRS_FILTER=<substring of rule-test id>` restricts the run, `CRS_VERBOSE=1` prints each failure,
//! `CRS_IDS_OUT=FILE` writes the logged ids per test, `CRS_LOG_OUT=FILE` the status and error log
//! lines per stage (to check that an engine change keeps every verdict and log field),
//! `CRS_EXTRA_CONF` adds directives.
//! The test asserts a floor on the pass count so regressions are caught.

use palisade_waf::{Ruleset, RulesetBuilder, Transaction, format_error_log, fs::FsLoader};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Tests passing when this floor was last raised, minus a small margin for platform noise.
const PASS_FLOOR: usize = 4970;

fn crs_dir() -> Option<PathBuf> {
    let shared = match std::env::var_os("PALISADE_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let crs = shared.join("data/crs");
    if crs.join("tests/regression/tests").is_dir() {
        Some(crs)
    } else {
        eprintln!(
            "\n\n*** SKIPPED: CRS tests not found at {} (set PALISADE_SHARED) ***\n\n",
            crs.display()
        );
        None
    }
}

/// The CRS test environment (`tests/fixtures/crs-test-profile.conf`), then CRS.
fn test_profile(crs: &Path) -> String {
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crs-test-profile.conf");
    format!(
        "{}\n{}\nInclude {}\nInclude {}\n",
        std::fs::read_to_string(&profile).expect("the CRS test profile fixture"),
        // Extra directives for comparisons with a given peer setup, e.g. Debian's
        // `SecUnicodeMapFile /etc/modsecurity/unicode.mapping 20127`.
        std::env::var("CRS_EXTRA_CONF").unwrap_or_default(),
        crs.join("crs-setup.conf.example").display(),
        crs.join("rules/*.conf").display()
    )
}

fn s(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(x)) => x.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => serde_yaml_ng::to_string(other).unwrap_or_default(),
    }
}

fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(k)
}

/// go-ftw renders `data` as a Go template; only `{{ "x" | repeat N }}` occurs in CRS.
fn render(data: &str) -> Option<String> {
    if !data.contains("{{") {
        return Some(data.to_string());
    }
    let re = regex::Regex::new(r#"\{\{\s*"((?:[^"\\]|\\.)*)"\s*\|\s*repeat\s+(\d+)\s*\}\}"#).unwrap();
    let out = re
        .replace_all(data, |c: &regex::Captures| c[1].repeat(c[2].parse().unwrap_or(0)))
        .into_owned();
    (!out.contains("{{")).then_some(out)
}

fn go_query_unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

fn go_query_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
            out.push(c as char);
        } else if c == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// go-ftw re-encodes form data that is not already valid URL encoding.
fn encode_form(data: &str) -> String {
    match go_query_unescape(data) {
        Some(u) if u == data.as_bytes() => data
            .split('&')
            .map(|tok| match tok.split_once('=') {
                Some((k, v)) => format!("{}={}", go_query_escape(k), go_query_escape(v)),
                None => go_query_escape(tok),
            })
            .collect::<Vec<_>>()
            .join("&"),
        _ => data.to_string(),
    }
}

/// The raw request go-ftw sends for a stage input, or None for features not supported here.
fn build_request(inp: &Value) -> Option<Vec<u8>> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(e) = get(inp, "encoded_request")
        .map(|v| s(Some(v)))
        .filter(|e| !e.is_empty())
    {
        return b64.decode(e.split_whitespace().collect::<String>()).ok();
    }
    let method = get(inp, "method").map_or("GET".into(), |v| s(Some(v)));
    let uri = get(inp, "uri").map_or("/".into(), |v| s(Some(v)));
    let version = get(inp, "version").map_or("HTTP/1.1".into(), |v| s(Some(v)));
    let mut headers: Vec<(String, String)> = match get(inp, "ordered_headers").and_then(Value::as_sequence) {
        Some(seq) => seq
            .iter()
            .map(|h| (s(get(h, "name")), s(get(h, "value"))))
            .collect(),
        None => {
            let mut h: Vec<(String, String)> = get(inp, "headers")
                .and_then(Value::as_mapping)
                .map(|m| m.iter().map(|(k, v)| (s(Some(k)), s(Some(v)))).collect())
                .unwrap_or_default();
            h.sort_by(|a, b| a.0.cmp(&b.0));
            h
        }
    };
    let autocomplete = match get(inp, "autocomplete_headers").and_then(Value::as_bool) {
        Some(a) => a,
        None => !get(inp, "stop_magic").and_then(Value::as_bool).unwrap_or(false),
    };
    let encoded = get(inp, "encoded_data")
        .map(|v| s(Some(v)))
        .filter(|e| !e.is_empty());
    let mut body: Vec<u8> = Vec::new();
    let data = match (get(inp, "data"), &encoded) {
        (Some(d), _) if !d.is_null() => Some(render(&s(Some(d)))?),
        (_, Some(e)) => Some(
            String::from_utf8_lossy(&b64.decode(e.split_whitespace().collect::<String>()).ok()?).into_owned(),
        ),
        _ => None,
    };
    let has = |h: &[(String, String)], n: &str| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if let Some(mut data) = data.filter(|d| !d.is_empty()) {
        if autocomplete {
            if !has(&headers, "Content-Type") {
                headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
            }
            if headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("content-type")
                    && v.eq_ignore_ascii_case("application/x-www-form-urlencoded")
            }) {
                data = encode_form(&data);
            }
        }
        body = match &encoded {
            Some(e) if get(inp, "data").is_none_or(Value::is_null) => {
                b64.decode(e.split_whitespace().collect::<String>()).ok()?
            }
            _ => data.into_bytes(),
        };
    }
    if headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type") && v.to_ascii_lowercase().contains("multipart/form-data;")
    }) {
        let mut b = Vec::new();
        for &c in &body {
            if c == b'\n' {
                b.push(b'\r');
            }
            b.push(c);
        }
        body = b;
    }
    if autocomplete {
        if !has(&headers, "Connection") {
            headers.push(("Connection".into(), "close".into()));
        }
        if !has(&headers, "Content-Length")
            && (!body.is_empty()
                || ["POST", "PUT", "PATCH", "DELETE"]
                    .iter()
                    .any(|m| method.starts_with(m) || method.ends_with(m)))
        {
            headers.push(("Content-Length".into(), body.len().to_string()));
        }
    }
    let mut raw = format!("{method} {uri} {version}\r\n").into_bytes();
    for (k, v) in headers {
        raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(&body);
    Some(raw)
}

struct ParsedRequest {
    method: Vec<u8>,
    uri: Vec<u8>,
    version: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

/// What a lenient HTTP/1.x server hands to the WAF: request line, headers and the body framed by
/// Content-Length or chunked encoding.
fn parse_request(raw: &[u8]) -> Option<ParsedRequest> {
    let head_end = memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|p| (p, p + 2)))?;
    let head = &raw[..head_end.0];
    let mut lines = head
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next()?;
    let parts: Vec<&[u8]> = line.split(|&c| c == b' ').filter(|p| !p.is_empty()).collect();
    let (method, uri, version) = match parts.as_slice() {
        [m, u, v] => (m.to_vec(), u.to_vec(), v.to_vec()),
        [m, u] => (m.to_vec(), u.to_vec(), b"HTTP/0.9".to_vec()),
        [m, rest @ ..] if rest.len() > 2 => (
            m.to_vec(),
            rest[..rest.len() - 1].join(&b' '),
            rest[rest.len() - 1].to_vec(),
        ),
        _ => return None,
    };
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for l in lines {
        if (l.starts_with(b" ") || l.starts_with(b"\t")) && !headers.is_empty() {
            if let Some(h) = headers.last_mut() {
                h.1.push(b' ');
                h.1.extend_from_slice(palisade_trim(l));
            }
            continue;
        }
        let c = l.iter().position(|&x| x == b':')?;
        headers.push((l[..c].to_vec(), palisade_trim(&l[c + 1..]).to_vec()));
    }
    let rest = &raw[head_end.1..];
    let hv = |n: &[u8]| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let body = if hv(b"transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked"))
    {
        let mut out = Vec::new();
        let mut r = rest;
        loop {
            let nl = memchr::memchr(b'\n', r)?;
            let size_line = std::str::from_utf8(&r[..nl]).ok()?.trim();
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            r = &r[nl + 1..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(r.get(..size)?);
            r = r.get(size..)?;
            r = r
                .strip_prefix(b"\r\n")
                .or_else(|| r.strip_prefix(b"\n"))
                .unwrap_or(r);
        }
        out
    } else {
        match hv(b"content-length").and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<usize>().ok()) {
            Some(n) => rest[..n.min(rest.len())].to_vec(),
            None => Vec::new(),
        }
    };
    // Apache drops Content-Length when the body is chunked, and merges repeated headers into one
    // (comma-separated), which is what ModSecurity behind it sees.
    let chunked =
        hv(b"transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked"));
    let mut merged: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (k, v) in headers {
        if chunked && k.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        match merged.iter_mut().find(|(mk, _)| mk.eq_ignore_ascii_case(&k)) {
            Some(m) => {
                m.1.extend_from_slice(b", ");
                m.1.extend_from_slice(&v);
            }
            None => merged.push((k, v)),
        }
    }
    let headers = merged;
    Some(ParsedRequest {
        method,
        uri,
        version,
        headers,
        body,
    })
}

fn palisade_trim(s: &[u8]) -> &[u8] {
    let st = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let en = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(st, |p| p + 1);
    &s[st..en]
}

/// The albedo backend: `/reflect` answers with the status, headers and body given in its JSON
/// request body; everything else is a plain 200.
fn backend_response(req: &ParsedRequest) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use base64::Engine;
    let path = req.uri.split(|&c| c == b'?').next().unwrap_or(b"");
    if path == b"/reflect"
        && let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(&req.body)
    {
        let status = m.get("status").and_then(|v| v.as_u64()).unwrap_or(200) as u16;
        let mut headers: Vec<(String, String)> = m
            .get("headers")
            .and_then(|h| h.as_object())
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut body = m
            .get("body")
            .and_then(|b| b.as_str())
            .unwrap_or("")
            .as_bytes()
            .to_vec();
        if let Some(e) = m.get("encodedBody").and_then(|b| b.as_str()) {
            body = base64::engine::general_purpose::STANDARD
                .decode(e)
                .unwrap_or_default();
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), "text/plain".into()));
        }
        return (status, headers, body);
    }
    if let Some(code) = path
        .strip_prefix(b"/status/")
        .and_then(|c| std::str::from_utf8(c).ok()?.parse::<u16>().ok())
    {
        return (
            code,
            vec![("Content-Type".into(), "text/plain".into())],
            Vec::new(),
        );
    }
    (
        200,
        vec![("Content-Type".into(), "text/html".into())],
        b"<html><body>ok</body></html>".to_vec(),
    )
}

struct StageResult {
    ok: bool,
    why: Vec<String>,
    /// Logged rule ids, for `CRS_IDS_OUT` (differential comparison with another WAF).
    ids: Vec<u64>,
    /// Status and error log lines (unique id blanked), for `CRS_LOG_OUT`.
    log: Vec<String>,
}

fn run_stage(rs: &Ruleset, stage: &Value) -> Option<StageResult> {
    let inp = get(stage, "input")?;
    let out = get(stage, "output").cloned().unwrap_or(Value::Null);
    let raw = build_request(inp)?;
    let logx = get(&out, "log").cloned().unwrap_or(Value::Null);
    let ids_of = |k: &str| -> Vec<u64> {
        let mut v: Vec<u64> = get(&logx, k)
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if let Some(x) = get(&logx, &k[..k.len() - 1]).and_then(Value::as_u64) {
            v.push(x);
        }
        v
    };
    let expect = ids_of("expect_ids");
    let no_expect = ids_of("no_expect_ids");
    let mut match_re = get(&logx, "match_regex").map(|v| s(Some(v)));
    let mut no_match_re = get(&logx, "no_match_regex").map(|v| s(Some(v)));
    if match_re.is_none() && expect.is_empty() {
        match_re = get(&out, "log_contains").map(|v| s(Some(v)));
    }
    if no_match_re.is_none() && no_expect.is_empty() {
        no_match_re = get(&out, "no_log_contains").map(|v| s(Some(v)));
    }
    let mut why = Vec::new();
    let (status, lines, ids) = match parse_request(&raw) {
        None => (400u16, Vec::new(), Vec::new()),
        Some(req) => {
            let mut tx = Transaction::new(rs);
            tx.set_connection("127.0.0.1", 40000, "127.0.0.1", 80);
            tx.set_request_line(&req.method, &req.uri, &req.version);
            for (k, v) in &req.headers {
                tx.add_request_header(k, v);
            }
            let mut status = 0;
            if let Some(i) = tx.process_request_headers() {
                status = i.status;
            }
            let _ = tx.append_request_body(&req.body);
            if let Some(i) = tx.process_request_body() {
                status = i.status;
            }
            if status == 0 {
                let (st, headers, body) = backend_response(&req);
                tx.set_response_status(st, b"HTTP/1.1");
                for (k, v) in &headers {
                    tx.add_response_header(k.as_bytes(), v.as_bytes());
                }
                let _ = tx.process_response_headers();
                let _ = tx.append_response_body(&body);
                status = tx.process_response_body().map_or(st, |i| i.status);
            }
            tx.process_logging();
            let uri = tx.request_uri();
            let lines: Vec<String> = tx
                .matched_rules()
                .iter()
                .filter(|m| m.log)
                .map(|m| format_error_log(m, tx.client_addr(), tx.server_name(), &uri, tx.unique_id()))
                .collect();
            let ids: Vec<u64> = tx
                .matched_rules()
                .iter()
                .filter(|m| m.log)
                .map(|m| m.id)
                .collect();
            (status, lines, ids)
        }
    };
    let log: Vec<String> = std::iter::once(format!("status {status}"))
        .chain(lines.iter().map(|l| {
            // The unique id differs per run; everything else must not.
            l.find(" [unique_id ").map_or(l.clone(), |p| l[..p].to_string())
        }))
        .collect();
    if let Some(st) = get(&out, "status") {
        let allowed: Vec<u64> = match st.as_sequence() {
            Some(seq) => seq.iter().filter_map(Value::as_u64).collect(),
            None => st.as_u64().into_iter().collect(),
        };
        if !allowed.is_empty() && !allowed.contains(&u64::from(status)) {
            why.push(format!("status {status} not in {allowed:?}"));
        }
    }
    let missing: Vec<u64> = expect.iter().copied().filter(|x| !ids.contains(x)).collect();
    if !missing.is_empty() {
        why.push(format!("missing ids {missing:?}"));
    }
    let unexpected: Vec<u64> = no_expect.iter().copied().filter(|x| ids.contains(x)).collect();
    if !unexpected.is_empty() {
        why.push(format!("unexpected ids {unexpected:?}"));
    }
    if let Some(re) = match_re.filter(|r| !r.is_empty()) {
        let re = regex::Regex::new(&re).ok()?;
        if !lines.iter().any(|l| re.is_match(l)) {
            why.push(format!("log does not match /{re}/"));
        }
    }
    if let Some(re) = no_match_re.filter(|r| !r.is_empty()) {
        let re = regex::Regex::new(&re).ok()?;
        if let Some(l) = lines.iter().find(|l| re.is_match(l)) {
            why.push(format!("log matches /{re}/: {}", &l[..l.len().min(300)]));
        }
    }
    if get(&out, "isolated").and_then(Value::as_bool) == Some(true) && ids.len() != 1 {
        why.push(format!("isolated: {} rules", ids.len()));
    }
    if get(&out, "expect_error").and_then(Value::as_bool) == Some(true) {
        why.push("expects a connection error (not applicable in-process)".into());
    }
    if why.is_empty() {
        Some(StageResult {
            ok: true,
            why,
            ids,
            log,
        })
    } else {
        why.push(format!("logged ids {ids:?}"));
        Some(StageResult {
            ok: false,
            why,
            ids,
            log,
        })
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

/// (rule file, test name, failure reasons or None when skipped, logged ids per stage, log lines)
type TestOutcome = (String, String, Option<Vec<String>>, Vec<Vec<u64>>, Vec<String>);

#[derive(Default, Clone, Copy)]
struct Tally {
    pass: usize,
    fail: usize,
    skipped: usize,
}

#[test]
fn crs_regression_in_process() {
    let Some(crs) = crs_dir() else { return };
    let t0 = std::time::Instant::now();
    let mut b = RulesetBuilder::new();
    b.add("crs-regression.conf", &test_profile(&crs), &mut FsLoader)
        .unwrap();
    let rs = b.build().unwrap();
    let load = t0.elapsed();
    let filter = std::env::var("CRS_FILTER").ok();
    let verbose = std::env::var_os("CRS_VERBOSE").is_some();
    let mut files = Vec::new();
    yaml_files(&crs.join("tests/regression/tests"), &mut files);
    // Each YAML file becomes (rule file, test name, stages); tests run on both cores.
    let mut cases: Vec<(String, String, Vec<Value>)> = Vec::new();
    for f in &files {
        let group = f
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doc: Value = match serde_yaml_ng::from_str(&std::fs::read_to_string(f).unwrap()) {
            Ok(d) => d,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        let rule_id = s(get(&doc, "rule_id"));
        for t in get(&doc, "tests")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let name = format!("{rule_id}-{}", s(get(t, "test_id")));
            if filter.as_ref().is_some_and(|flt| !name.contains(flt.as_str())) {
                continue;
            }
            let stages = get(t, "stages")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            cases.push((group.clone(), name, stages));
        }
    }
    let results: Vec<TestOutcome> = std::thread::scope(|scope| {
        let chunks: Vec<&[(String, String, Vec<Value>)]> =
            cases.chunks(cases.len().div_ceil(2).max(1)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let rs = &rs;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(group, name, stages)| {
                            let mut why: Option<Vec<String>> = Some(Vec::new());
                            let mut ids: Vec<Vec<u64>> = Vec::new();
                            let mut log: Vec<String> = Vec::new();
                            for st in stages {
                                match run_stage(rs, st) {
                                    None => {
                                        why = None;
                                        break;
                                    }
                                    Some(r) => {
                                        ids.push(r.ids);
                                        log.extend(r.log);
                                        if !r.ok {
                                            why.get_or_insert_with(Vec::new).extend(r.why);
                                        }
                                    }
                                }
                            }
                            (group.clone(), name.clone(), why, ids, log)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut per_file: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut server_level = 0usize;
    if let Some(out) = std::env::var_os("CRS_IDS_OUT") {
        // One line per test: `<rule>-<test> <ids of stage 1>;<ids of stage 2>...`, sorted.
        let mut text = String::new();
        for (_, name, _, ids, _) in &results {
            let stages: Vec<String> = ids
                .iter()
                .map(|st| {
                    let mut st = st.clone();
                    st.sort();
                    st.dedup();
                    st.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
                })
                .collect();
            text.push_str(&format!("{name} {}\n", stages.join(";")));
        }
        std::fs::write(&out, text).unwrap();
    }
    if let Some(out) = std::env::var_os("CRS_LOG_OUT") {
        let mut text = String::new();
        for (_, name, _, _, log) in &results {
            for l in log {
                text.push_str(&format!("{name} {l}\n"));
            }
        }
        std::fs::write(&out, text).unwrap();
    }
    for (group, name, why, _, _) in &results {
        let t = per_file.entry(group.clone()).or_default();
        match why {
            None => {
                if verbose {
                    eprintln!("SKIP {name}: uses a go-ftw feature this harness does not build");
                }
                t.skipped += 1;
                total.skipped += 1;
            }
            Some(w) if w.is_empty() => {
                t.pass += 1;
                total.pass += 1;
            }
            Some(w) => {
                t.fail += 1;
                total.fail += 1;
                // Failures whose only reasons are the web server's own answer (a 400 for a request
                // it refuses, a dropped connection) belong to the HTTP layer, not to the engine.
                if w.iter().all(|r| {
                    r.starts_with("status ")
                        || r.starts_with("expects a connection")
                        || r.starts_with("logged ids")
                }) {
                    server_level += 1;
                }
                if verbose {
                    eprintln!("FAIL {name}: {}", w.join("; "));
                }
            }
        }
    }
    eprintln!(
        "\nCRS in-process regression (load {load:?}, total {:?})",
        t0.elapsed()
    );
    let mut rows: Vec<_> = per_file.iter().collect();
    rows.sort_by_key(|(_, t)| std::cmp::Reverse(t.fail));
    for (f, t) in rows {
        eprintln!(
            "  {f:48} {:4}/{:4} pass  {:3} fail  {:2} skipped",
            t.pass,
            t.pass + t.fail,
            t.fail,
            t.skipped
        );
    }
    eprintln!(
        "  TOTAL {}/{} pass, {} fail, {} skipped\n",
        total.pass,
        total.pass + total.fail,
        total.fail,
        total.skipped
    );
    eprintln!(
        "  of the failures, {server_level} only expect the web server's own reply (400 or a dropped connection)\n"
    );
    if filter.is_none() {
        assert!(
            total.pass >= PASS_FLOOR,
            "regression: {} tests pass, the floor is {PASS_FLOOR}",
            total.pass
        );
    }
}
