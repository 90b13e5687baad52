//! Engine semantics on small rule sets: chains, markers, setvar arithmetic, macros, exclusions,
//! ctl actions, disruptive actions and limits.

use palisade_waf::{Disruptive, Ruleset, Transaction};

fn rs(text: &str) -> Ruleset {
    Ruleset::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a GET (or a POST when `body` is given) through all phases; returns the logged ids.
fn run<'r>(
    rs: &'r Ruleset,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (Transaction<'r>, Vec<u64>) {
    let mut tx = rs.transaction();
    tx.set_connection("10.0.0.1", 5555, "10.0.0.2", 80);
    tx.set_request_line(
        if body.is_some() { b"POST" } else { b"GET" },
        uri.as_bytes(),
        b"HTTP/1.1",
    );
    for (k, v) in headers {
        tx.add_request_header(k.as_bytes(), v.as_bytes());
    }
    tx.process_request_headers();
    if let Some(b) = body {
        tx.append_request_body(b.as_bytes()).unwrap();
    }
    tx.process_request_body();
    tx.set_response_status(200, b"HTTP/1.1");
    tx.add_response_header(b"Content-Type", b"text/html");
    tx.process_response_headers();
    tx.append_response_body(b"<html>hello</html>").unwrap();
    tx.process_response_body();
    tx.process_logging();
    let ids = tx
        .matched_rules()
        .iter()
        .filter(|m| m.log)
        .map(|m| m.id)
        .collect();
    (tx, ids)
}

const ON: &str = "SecRuleEngine On\nSecRequestBodyAccess On\nSecResponseBodyAccess On\n";

fn on(rules: &str) -> String {
    format!("{ON}{rules}")
}

#[test]
fn ruleset_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Ruleset>();
    // A transaction moves between threads in an async proxy (held across awaits).
    fn send<T: Send>() {}
    send::<Transaction<'static>>();
}

#[test]
fn chain_setvar_and_macros() {
    let r = rs(&on(r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=5,setvar:tx.name=abc"
SecRule ARGS:q "@rx ^(a+)b" "id:2,phase:1,pass,capture,setvar:tx.score=+3,setvar:'tx.cap=%{TX.1}',chain,msg:'seen %{MATCHED_VAR_NAME}',logdata:'%{tx.score}'"
    SecRule REQUEST_METHOD "@streq GET" "setvar:tx.score=-1,setvar:!tx.name"
SecRule TX:score "@eq 7" "id:3,phase:1,pass,log"
SecRule &TX:name "@eq 0" "id:4,phase:1,pass,log"
SecRule TX:cap "@streq aaa" "id:5,phase:1,pass,log"
"#));
    let (tx, ids) = run(&r, "/x?q=aaab", &[], None);
    assert_eq!(ids, vec![2, 3, 4, 5]);
    let m = &tx.matched_rules()[1];
    // msg and logdata are expanded when the whole chain has matched.
    assert_eq!(m.msg, "seen REQUEST_METHOD");
    assert_eq!(m.data, "7");
    assert_eq!(tx.collection_value("tx", "score").as_deref(), Some("7"));
    // A chain that fails in its second link still ran the first link's actions (ModSecurity 2),
    // so 5 sees the capture.
    let (tx, ids) = run(&r, "/x?q=aaab", &[], Some(""));
    assert_eq!(ids, vec![5]);
    assert_eq!(tx.collection_value("tx", "score").as_deref(), Some("8"));
}

/// `setvar` arithmetic reads both sides as ModSecurity's `atoi` does: a sign, then digits up to
/// the first other byte; no digits is 0.
#[test]
fn setvar_arithmetic_reads_numbers_as_atoi() {
    let r = rs(&on(r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=12abc,setvar:tx.b=x9,setvar:tx.c=-4,setvar:tx.d=+5"
SecAction "id:2,phase:1,pass,nolog,setvar:tx.a=+3,setvar:tx.b=+1,setvar:tx.c=+2x,setvar:tx.d=-%{tx.a}"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.e=+7,setvar:tx.e=+1,setvar:tx.f=-99999999999999999999"
"#));
    let (tx, _) = run(&r, "/", &[], None);
    let v = |k: &str| tx.collection_value("tx", k);
    assert_eq!(v("a").as_deref(), Some("15"));
    assert_eq!(v("b").as_deref(), Some("1"));
    assert_eq!(v("c").as_deref(), Some("-2"));
    assert_eq!(v("d").as_deref(), Some("-10"));
    // A variable added to twice (its buffer reused) and one created by a subtraction.
    assert_eq!(v("e").as_deref(), Some("8"));
    // An operand beyond i64 reads as 0, as `to_num` does for every comparison.
    assert_eq!(v("f").as_deref(), Some("0"));
}

#[test]
fn skip_after_markers_and_skip() {
    let r = rs(&on(r#"
SecRule ARGS:a "@streq 1" "id:10,phase:1,pass,nolog,skipAfter:END"
SecAction "id:11,phase:1,pass,log"
SecMarker END
SecAction "id:12,phase:1,pass,log,skip:1"
SecAction "id:13,phase:1,pass,log"
SecAction "id:14,phase:1,pass,log"
"#));
    assert_eq!(run(&r, "/?a=1", &[], None).1, vec![12, 14]);
    assert_eq!(run(&r, "/?a=2", &[], None).1, vec![11, 12, 14]);
}

#[test]
fn exclusions_counts_and_update_target() {
    let r = rs(&on(r#"
SecRule ARGS|!ARGS:safe "@contains evil" "id:20,phase:2,pass,log"
SecRule &ARGS "@ge 3" "id:21,phase:2,pass,log"
SecRule REQUEST_COOKIES|!REQUEST_COOKIES:/^skip_/ "@contains evil" "id:22,phase:1,pass,log"
SecRuleUpdateTargetById 22 "!REQUEST_COOKIES:other"
"#));
    assert_eq!(run(&r, "/?safe=evil", &[], None).1, Vec::<u64>::new());
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(run(&r, "/?x=evil&b=1", &form, Some("c=2")).1, vec![20, 21]);
    assert_eq!(
        run(&r, "/", &[("Cookie", "skip_me=evil; other=evil")], None).1,
        Vec::<u64>::new()
    );
    assert_eq!(run(&r, "/", &[("Cookie", "third=evil")], None).1, vec![22]);
}

#[test]
fn transformations_and_multimatch() {
    let r = rs(&on(r#"
SecRule ARGS "@rx <script>" "id:30,phase:1,pass,log,t:none,t:urlDecodeUni,t:lowercase"
SecRule ARGS "@rx ^%41$" "id:31,phase:1,pass,log,t:urlDecode,multiMatch"
SecRule ARGS "@rx ^%41$" "id:32,phase:1,pass,log,t:urlDecode"
"#));
    // The query string is decoded once by the parser; %253C is "%3C" in ARGS.
    assert_eq!(run(&r, "/?x=%253CSCRIPT%253E", &[], None).1, vec![30]);
    assert_eq!(run(&r, "/?x=%2541", &[], None).1, vec![31]);
}

#[test]
fn deny_status_and_detection_only() {
    let text = r#"
SecDefaultAction "phase:1,log,deny,status:406"
SecRule ARGS:a "@streq x" "id:40,phase:1,block"
SecRule ARGS:a "@streq y" "id:41,phase:1,deny,status:418"
SecAction "id:42,phase:2,pass,log"
"#;
    let r = rs(&format!("SecRuleEngine On\n{text}"));
    let (tx, ids) = run(&r, "/?a=x", &[], None);
    let i = tx.intervention().unwrap();
    assert_eq!((i.status, i.disruption, i.rule_id), (406, Disruptive::Deny, 40));
    // Phases after the intervention do not run.
    assert_eq!(ids, vec![40]);
    let (tx, _) = run(&r, "/?a=y", &[], None);
    assert_eq!(tx.intervention().unwrap().status, 418);
    let r = rs(&format!("SecRuleEngine DetectionOnly\n{text}"));
    let (tx, ids) = run(&r, "/?a=y", &[], None);
    assert!(tx.intervention().is_none());
    assert_eq!(ids, vec![41, 42]);
}

#[test]
fn ctl_actions() {
    let r = rs(&on(r#"
SecRule REQUEST_URI "@beginsWith /admin" "id:50,phase:1,pass,nolog,ctl:ruleRemoveById=52,ctl:ruleRemoveTargetById=53;ARGS:pw"
SecRule REQUEST_URI "@beginsWith /tagged" "id:51,phase:1,pass,nolog,ctl:ruleRemoveByTag=noisy"
SecAction "id:52,phase:1,pass,log"
SecRule ARGS "@contains '" "id:53,phase:1,pass,log,tag:noisy"
SecRule REQUEST_URI "@beginsWith /off" "id:54,phase:1,pass,nolog,ctl:ruleEngine=Off"
SecAction "id:55,phase:1,pass,log"
"#));
    assert_eq!(run(&r, "/?pw='", &[], None).1, vec![52, 53, 55]);
    assert_eq!(run(&r, "/admin?pw='", &[], None).1, vec![55]);
    assert_eq!(run(&r, "/admin?pw='&u='", &[], None).1, vec![53, 55]);
    assert_eq!(run(&r, "/tagged?pw='", &[], None).1, vec![52, 55]);
    // Rules before the ctl ran; nothing after it does.
    assert_eq!(run(&r, "/off", &[], None).1, vec![52]);

    // A target removed from the rules carrying a tag (as CRS's 941010 does), and only from them.
    let r = rs(&on(r#"
SecRule REQUEST_URI "@beginsWith /quiet" "id:70,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=perf-skip;ARGS:q"
SecRule ARGS "@contains <" "id:71,phase:1,pass,log,tag:'OWASP_CRS',tag:'perf-skip'"
SecRule ARGS "@contains <" "id:72,phase:1,pass,log,tag:'OWASP_CRS',tag:'perf-skiq'"
"#));
    assert_eq!(run(&r, "/loud?q=<", &[], None).1, vec![71, 72]);
    assert_eq!(run(&r, "/quiet?q=<", &[], None).1, vec![72]);
    assert_eq!(run(&r, "/quiet?q=<&r=<", &[], None).1, vec![71, 72]);
}

#[test]
fn allow_variants() {
    let r = rs(&on(r#"
SecRule REMOTE_ADDR "@ipMatch 10.0.0.0/8" "id:60,phase:1,allow,nolog"
SecAction "id:61,phase:1,pass,log"
SecAction "id:62,phase:2,deny,log"
SecAction "id:63,phase:3,pass,log"
"#));
    // Plain `allow` skips every phase but logging.
    let (tx, ids) = run(&r, "/", &[], None);
    assert!(tx.intervention().is_none());
    assert_eq!(ids, Vec::<u64>::new());
    // `allow:request` skips the request phases only; `allow:phase` only the rest of its phase.
    let r = rs(&on(r#"
SecRule REQUEST_URI "@streq /req" "id:60,phase:1,allow:request,nolog"
SecRule REQUEST_URI "@streq /phase" "id:64,phase:1,allow:phase,nolog"
SecAction "id:61,phase:1,pass,log"
SecAction "id:62,phase:2,pass,log"
SecAction "id:63,phase:3,pass,log"
"#));
    assert_eq!(run(&r, "/req", &[], None).1, vec![63]);
    assert_eq!(run(&r, "/phase", &[], None).1, vec![62, 63]);
}

/// A rule skips a variable whose values cannot hold the bytes its `@rx` needs: the byte sets
/// behind that must follow the data into later phases (body arguments, the response body), a
/// `ctl:` that shows the body, and decoding transformations that produce the needed byte.
#[test]
fn skipped_targets_keep_every_match() {
    let r = rs(&on(r#"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:79,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule ARGS "@rx <script" "id:80,phase:1,pass,log"
SecRule ARGS "@rx <script" "id:81,phase:2,pass,log"
SecRule ARGS:x "@rx <script" "id:82,phase:2,pass,log,t:none,t:urlDecodeUni,t:htmlEntityDecode"
SecRule REQUEST_BODY "@rx <script" "id:83,phase:2,pass,log"
SecAction "id:84,phase:2,pass,nolog,ctl:forceRequestBodyVariable=On"
SecRule REQUEST_BODY "@rx <script" "id:85,phase:2,pass,log"
SecRule RESPONSE_BODY "@rx hello" "id:86,phase:3,pass,log"
SecRule RESPONSE_BODY "@rx hello" "id:87,phase:4,pass,log"
"#));
    // Phase 1 sees ARGS without '<'; phase 2 sees the body's; REQUEST_BODY is hidden behind the
    // JSON processor until the ctl; the response body is empty until phase 4.
    let json = [("Content-Type", "application/json")];
    assert_eq!(
        run(&r, "/?q=hi", &json, Some(r#"{"a":"<script>"}"#)).1,
        vec![81, 85, 87]
    );
    // Only entity decoding produces the '<' ("x=&lt;script" once the form is parsed).
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(run(&r, "/?q=hi", &form, Some("x=%26lt%3Bscript")).1, vec![82, 87]);
}

#[test]
fn body_processors() {
    let r = rs(&on(r#"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:70,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^text/xml" "id:71,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule ARGS:json.a.b "@streq deep" "id:72,phase:2,pass,log"
SecRule ARGS_POST:f "@streq 1" "id:73,phase:2,pass,log"
SecRule FILES "@endsWith .php" "id:74,phase:2,pass,log"
SecRule REQBODY_ERROR "!@eq 0" "id:75,phase:2,pass,log"
SecRule XML:/* "@contains inner" "id:76,phase:2,pass,log"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:77,phase:2,pass,log"
SecRule REQBODY_PROCESSOR "@streq MULTIPART" "id:78,phase:1,pass,log"
"#));
    let json = [("Content-Type", "application/json")];
    assert_eq!(run(&r, "/", &json, Some(r#"{"a":{"b":"deep"}}"#)).1, vec![72]);
    assert_eq!(run(&r, "/", &json, Some("{broken")).1, vec![75]);
    assert_eq!(
        run(
            &r,
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some("f=1")
        )
        .1,
        vec![73]
    );
    assert_eq!(
        run(
            &r,
            "/",
            &[("Content-Type", "text/xml")],
            Some("<a><b>inner</b></a>")
        )
        .1,
        vec![76]
    );
    assert_eq!(
        run(&r, "/", &[("Content-Type", "text/xml")], Some("<a><b>inner</a>")).1,
        vec![75]
    );
    let mp = [("Content-Type", "multipart/form-data; boundary=XX")];
    let body = "--XX\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"up\"; filename=\"x.php\"\r\n\r\n<?php\r\n--XX--\r\n";
    assert_eq!(run(&r, "/", &mp, Some(body)).1, vec![78, 73, 74]);
    let (_, ids) = run(&r, "/", &mp, Some("--XX\r\nbroken"));
    assert!(ids.contains(&77) && ids.contains(&75), "{ids:?}");
}

#[test]
fn request_body_limit_reject_and_partial() {
    let r = rs(&format!(
        "{ON}SecRequestBodyLimit 8\nSecRequestBodyLimitAction Reject\n"
    ));
    let mut tx = r.transaction();
    tx.set_request_line(b"POST", b"/", b"HTTP/1.1");
    assert!(tx.append_request_body(b"0123456789").is_err());
    assert_eq!(tx.intervention().map(|i| i.status), Some(413));
    // In detection-only mode Reject behaves as ProcessPartial.
    let r = rs(
        "SecRuleEngine DetectionOnly\nSecRequestBodyAccess On\nSecRequestBodyLimit 8\nSecRequestBodyLimitAction Reject\n",
    );
    let mut tx = r.transaction();
    assert!(tx.append_request_body(b"0123456789").is_ok());
    assert!(tx.intervention().is_none());
    // Without files the NoFiles limit applies; multipart bodies get the full limit.
    let r = rs(&format!(
        "{ON}SecRequestBodyLimit 100\nSecRequestBodyNoFilesLimit 8\n"
    ));
    let mut tx = r.transaction();
    tx.add_request_header(b"Content-Type", b"application/x-www-form-urlencoded");
    assert!(tx.append_request_body(b"a=12345678").is_err());
    let mut tx = r.transaction();
    tx.add_request_header(b"Content-Type", b"multipart/form-data; boundary=x");
    assert!(tx.append_request_body(b"--x\r\n0123456789").is_ok());
    // SecArgumentsLimit turns an argument flood into a body error.
    let r = rs(&format!(
        "{ON}SecArgumentsLimit 3\nSecRule REQBODY_ERROR \"@eq 1\" \"id:81,phase:2,pass,log\"\n"
    ));
    assert_eq!(run(&r, "/?a=1&b=2&c=3&d=4", &[], None).1, vec![81]);
    assert_eq!(run(&r, "/?a=1&b=2&c=3", &[], None).1, Vec::<u64>::new());
    let r = rs(&format!(
        "{ON}SecRequestBodyLimit 8\nSecRequestBodyLimitAction ProcessPartial\nSecRule REQUEST_BODY \"@streq 01234567\" \"id:80,phase:2,pass,log\"\n"
    ));
    let mut tx = r.transaction();
    tx.set_request_line(b"POST", b"/", b"HTTP/1.1");
    tx.append_request_body(b"0123").unwrap();
    tx.append_request_body(b"456789").unwrap();
    tx.process_request_body();
    assert_eq!(
        tx.matched_rules().iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![80]
    );
}

#[test]
fn time_budget_stops_evaluation() {
    let mut text = String::from(ON);
    for i in 0..200 {
        text.push_str(&format!("SecAction \"id:{},phase:1,pass,log\"\n", 1000 + i));
    }
    let r = rs(&text);
    let mut tx = r.transaction();
    tx.set_time_budget(std::time::Duration::ZERO);
    tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
    tx.process_request_headers();
    assert!(tx.timed_out());
    assert!(tx.matched_rules().len() < 200);
}

#[test]
fn time_budget_counts_evaluation_not_waiting() {
    let r = rs(&on(
        "SecAction \"id:1,phase:1,pass,log\"\nSecAction \"id:2,phase:2,pass,log\"\n",
    ));
    let mut tx = r.transaction();
    tx.set_time_budget(std::time::Duration::from_millis(50));
    tx.set_request_line(b"POST", b"/", b"HTTP/1.1");
    tx.process_request_headers();
    // A slow client: the body arrives later than the whole budget.
    std::thread::sleep(std::time::Duration::from_millis(80));
    tx.append_request_body(b"x").unwrap();
    tx.process_request_body();
    assert!(!tx.timed_out());
    assert_eq!(tx.matched_rules().len(), 2);
}

#[test]
fn load_errors_are_precise() {
    let cases = [
        (
            "SecRule ARGS \"@rx (\" \"id:1\"",
            "<inline>:1: SecRule:",
            "waf.operator",
        ),
        (
            "\nSecRule NOPE \"@rx a\" \"id:1\"",
            "<inline>:2: SecRule:",
            "waf.variable",
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:1,bogus:2\"",
            "<inline>:1: SecRule:",
            "waf.action",
        ),
        (
            "SecRule ARGS \"@rx a\" \"phase:1\"",
            "<inline>:1: SecRule:",
            "waf.action",
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:1,chain\"",
            "<inline>:1: SecRule:",
            "waf.chain",
        ),
        ("SecFoo On", "<inline>:1: SecFoo:", "waf.directive"),
        ("Include x.conf", "<inline>:1: cannot load x.conf", "waf.include"),
    ];
    for (text, prefix, code) in cases {
        let e = Ruleset::parse(text)
            .err()
            .unwrap_or_else(|| panic!("{text} loaded"))
            .to_string();
        assert!(e.starts_with(prefix) && e.contains(code), "{text}: {e}");
    }
}

#[test]
fn xml_targets_skip_only_without_their_bytes() {
    // Rules whose pattern needs bytes no value holds are skipped unread (the byte images and
    // rule gates); XML's values are the document's text or, for an attribute XPath, its
    // attribute values, whose bytes the text need not hold.
    let r = rs(&on(r#"
SecRule REQUEST_HEADERS:Content-Type "^text/xml" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule ARGS|XML:/* "@rx in[n]er" "id:2,phase:2,pass,log,t:none,t:lowercase"
SecRule ARGS|XML://@* "@rx ev[i]l" "id:3,phase:2,pass,log,t:none,t:lowercase"
SecRule XML:/* "@rx ev[i]l" "id:4,phase:2,pass,log"
SecRule ARGS|XML:/* "@rx ou[t]" "id:5,phase:2,pass,log,t:none,t:lowercase"
"#));
    let xml = [("Content-Type", "text/xml")];
    let body = r#"<a x="EVIL"><b>INNER</b></a>"#;
    assert_eq!(run(&r, "/", &xml, Some(body)).1, vec![2, 3]);
    assert_eq!(run(&r, "/?q=out", &xml, Some(body)).1, vec![2, 3, 5]);
    // Without a document XML holds nothing, and the ARGS targets still count.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(run(&r, "/", &form, Some("q=inner")).1, vec![2]);
    assert_eq!(run(&r, "/", &form, Some("q=plain")).1, Vec::<u64>::new());
}

#[test]
fn phrase_gates_skip_only_values_without_the_words() {
    // Rules whose every match needs one of a few words (a keyword `@rx`, `@pm`) are skipped
    // when no value of their variables holds one after the rule's transformations: the words
    // must be looked for in the transformed values (decoded, every multiMatch stage), in every
    // value whatever key the rule selects, in XML attributes, and in either case.
    let r = rs(&on(r#"
SecRule REQUEST_HEADERS:Content-Type "^text/xml" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule ARGS "@rx (?:runtime|processbuilder)" "id:2,phase:2,pass,log,t:none,t:urlDecodeUni,t:lowercase"
SecRule ARGS "@rx (?i)union[\s\x0b]+select" "id:3,phase:2,pass,log"
SecRule ARGS:q "@pm evalfn sleepy" "id:4,phase:2,pass,log"
SecRule ARGS "@rx ^javascript:" "id:5,phase:2,pass,log,t:none,t:base64Decode,multiMatch"
SecRule ARGS|!ARGS:skip "@rx secret" "id:6,phase:2,pass,log"
SecRule XML://@* "@rx (?i)xx(?:payload)" "id:7,phase:2,pass,log"
SecRule ARGS "!@rx runtime" "id:8,phase:2,pass,log"
"#));
    let get = |uri: &str| run(&r, uri, &[], None).1;
    assert_eq!(get("/?q=garden+chair"), vec![8]);
    // 8 reads the value as it comes (`%74` is not `t` to it).
    assert_eq!(get("/?q=Run%74ime"), vec![2, 8]);
    assert_eq!(get("/?a=1&q=x%20UNION%20%20Select%201"), vec![3, 8]);
    assert_eq!(get("/?q=a%20SLEEPY%20cat"), vec![4, 8]);
    // Another key's value holds the phrase: the gate opens, and the key selection decides.
    assert_eq!(get("/?other=sleepy&q=plain"), vec![8]);
    // `amF2YXNjcmlwdDphbGVydCgxKQ==` is base64 for `javascript:alert(1)`; the phrase is in the
    // decoded stage only.
    assert_eq!(get("/?q=amF2YXNjcmlwdDphbGVydCgxKQ=="), vec![5, 8]);
    assert_eq!(get("/?q=javascript:x"), vec![5, 8]);
    assert_eq!(get("/?skip=secret"), vec![8]);
    assert_eq!(get("/?skip=secret&b=secret"), vec![6, 8]);
    let xml = [("Content-Type", "text/xml")];
    let body = r#"<a x="XXPAYLOAD"><b>text</b></a>"#;
    assert_eq!(run(&r, "/", &xml, Some(body)).1, vec![7]);
    assert_eq!(
        run(&r, "/", &xml, Some("<a x=\"no\">xxpayload</a>")).1,
        Vec::<u64>::new()
    );
}

#[test]
fn phrases_found_in_phase_one_follow_headers_added_later() {
    // The request headers' phrases are found once for phases 1 and 2, unless the adapter adds
    // a header in between.
    let r = rs(&on(r#"
SecRule REQUEST_HEADERS "@rx (?i)evilbot" "id:1,phase:1,pass,log,t:none"
SecRule REQUEST_HEADERS "@rx (?i)evilbot" "id:2,phase:2,pass,log,t:none"
"#));
    let mut tx = r.transaction();
    tx.set_request_line(b"GET", b"/", b"HTTP/1.1");
    tx.add_request_header(b"User-Agent", b"curl/8");
    tx.process_request_headers();
    tx.add_request_header(b"X-Agent", b"EvilBot/1.0");
    tx.process_request_body();
    let ids: Vec<u64> = tx.matched_rules().iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![2]);
}

#[test]
fn header_verdicts_remembered_across_transactions_stay_exact() {
    // Header and cookie values remember which rules did not match them and the phrases found
    // in them, for later transactions on the same rule set (design note 26). Each request is
    // sent twice, so that the second reads what the first remembered, and the answers must not
    // change: a match is never remembered, a rule whose argument is a macro reads this
    // transaction's TX, a negated rule is evaluated, and each chain of transformations and each
    // header name keeps its own verdict.
    let r = rs(&on(r#"
SecRule ARGS:want "@rx ^(.*)$" "id:1,phase:1,pass,nolog,capture,setvar:tx.want=%{tx.1}"
SecRule REQUEST_HEADERS:User-Agent "@rx (?i)evilbot" "id:2,phase:1,pass,log"
SecRule REQUEST_HEADERS:User-Agent "@pm scanner" "id:3,phase:1,pass,log,t:none,t:urlDecodeUni"
SecRule REQUEST_HEADERS:User-Agent "@streq %{tx.want}" "id:4,phase:1,pass,log"
SecRule REQUEST_HEADERS:User-Agent "!@rx mozilla" "id:5,phase:1,pass,log,t:lowercase"
SecRule REQUEST_HEADERS_NAMES "@rx ^x-evil" "id:6,phase:1,pass,log,t:lowercase"
SecRule REQUEST_COOKIES "@rx (?i)select.+from" "id:7,phase:2,pass,log"
SecRule REQUEST_HEADERS|REQUEST_COOKIES "@detectXSS" "id:8,phase:2,pass,log,t:none,t:htmlEntityDecode"
SecRule ARGS_NAMES "@rx (?i)^evil" "id:9,phase:2,pass,log"
SecRule ARGS_NAMES|ARGS "@pm select" "id:10,phase:2,pass,log,t:none,t:urlDecodeUni"
"#));
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<u64>);
    let cases: &[Case] = &[
        ("/", &[("User-Agent", "Mozilla/5.0")], vec![]),
        ("/", &[("User-Agent", "EvilBot/2 Mozilla")], vec![2]),
        ("/", &[("User-Agent", "my%20SCANNER mozilla")], vec![3]),
        ("/", &[("User-Agent", "curl/8")], vec![5]),
        // The same value against a macro that reads TX: matched or not by this transaction's.
        ("/?want=Mozilla/5.0", &[("User-Agent", "Mozilla/5.0")], vec![4]),
        ("/?want=other", &[("User-Agent", "Mozilla/5.0")], vec![]),
        (
            "/",
            &[("X-Evil-Header", "Mozilla/5.0"), ("User-Agent", "Mozilla")],
            vec![6],
        ),
        ("/", &[("Cookie", "q=1 select * from t; theme=dark")], vec![7]),
        ("/", &[("Cookie", "theme=dark")], vec![]),
        (
            "/",
            &[("User-Agent", "mozilla &lt;script&gt;alert(1)&lt;/script&gt;")],
            vec![8],
        ),
        // Argument names are remembered too, from the query string and the body alike.
        ("/?evil_x=1&sort=name", &[], vec![9]),
        ("/?sort=name&q=selectx", &[], vec![10]),
        ("/?sort=name&%73elect=1", &[], vec![10]),
        ("/?sort=name", &[], vec![]),
        // A variable whose every value is known not to match a rule is skipped whole; one
        // value more, not seen before, is read (cookies, header names, argument names).
        ("/", &[("Cookie", "theme=dark; q=1 select * from t")], vec![7]),
        ("/", &[("Cookie", "theme=dark; session=abc")], vec![]),
        (
            "/",
            &[("User-Agent", "Mozilla/5.0"), ("X-Evil-Two", "a")],
            vec![6],
        ),
        ("/?sort=name&evil_y=1", &[], vec![9]),
    ];
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    for round in 0..3 {
        for (uri, headers, want) in cases {
            assert_eq!(
                &run(&r, uri, headers, None).1,
                want,
                "round {round}: {uri} {headers:?}"
            );
        }
        assert_eq!(run(&r, "/?sort=name", &form, Some("Evil=1&sort=x")).1, vec![9]);
        assert_eq!(run(&r, "/?evil=1", &form, Some("sort=x")).1, vec![9]);
        assert_eq!(run(&r, "/?sort=1", &form, Some("sort=x")).1, Vec::<u64>::new());
    }
}

#[test]
fn numeric_checks_of_a_collection_key_match_as_the_general_path_does() {
    // A rule comparing one TX key with a number is decided by a direct lookup (CRS's ~150
    // paranoia-level and score checks a request): negation, a missing key, `&TX:` counts, the
    // logged variable and value, and target removals by `ctl` must all come out as before.
    let r = rs(&on(r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=3,setvar:tx.score=007"
SecRule REQUEST_FILENAME "@rx ." "id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=other;REQUEST_FILENAME"
SecRule ARGS:drop "@rx ." "id:3,phase:1,pass,nolog,ctl:ruleRemoveTargetById=14;TX:level"
SecRule TX:LEVEL "@lt 5" "id:10,phase:1,pass,log,msg:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule TX:level "@lt 2" "id:11,phase:1,pass,log"
SecRule TX:level "!@lt 2" "id:12,phase:1,pass,log,msg:'%{MATCHED_VAR}'"
SecRule TX:missing "!@eq 1" "id:13,phase:1,pass,log"
SecRule TX:level "@ge 3" "id:14,phase:1,pass,log"
SecRule &TX:missing "@eq 0" "id:15,phase:1,pass,log,msg:'%{MATCHED_VAR_NAME}'"
SecRule TX:score "@eq 7" "id:16,phase:1,pass,log,msg:'%{MATCHED_VAR}'"
SecRule TX:level "@gt 2" "id:17,phase:1,pass,log,t:none,t:length"
SecRule &TX:level "@eq 1" "id:18,phase:1,pass,log,msg:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule &TX:level "!@eq 1" "id:19,phase:1,pass,log"
SecRule &TX:level "!@eq 0" "id:20,phase:1,pass,nolog,setvar:tx.counted=%{MATCHED_VAR}"
SecRule TX:counted "@eq 1" "id:21,phase:1,pass,log"
"#));
    let (tx, ids) = run(&r, "/", &[], None);
    assert_eq!(ids, vec![10, 12, 14, 15, 16, 18, 21]);
    let msgs: Vec<&str> = tx
        .matched_rules()
        .iter()
        .filter(|m| m.log)
        .map(|m| m.msg.as_str())
        .collect();
    assert_eq!(msgs, vec!["TX:level=3", "3", "", "TX", "007", "TX=1", ""]);
    // The removal of `TX:level` from rule 14 applies; 10 and 12 still read it.
    assert_eq!(run(&r, "/?drop=1", &[], None).1, vec![10, 12, 15, 16, 18, 21]);
}

#[test]
fn hostile_inputs_do_not_panic() {
    // A deterministic byte soup through every request-facing parser.
    let r = rs(&format!(
        "{ON}SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_HEADERS|FILES|XML:/*|REQUEST_FILENAME|REQUEST_BASENAME \"@rx x\" \"id:1,phase:2,pass,log,t:none,t:urlDecodeUni,t:htmlEntityDecode,t:jsDecode,t:cssDecode,t:cmdLine,t:normalizePathWin,t:base64Decode,t:hexDecode,t:utf8toUnicode,t:escapeSeqDecode,t:removeComments,t:replaceComments,t:sqlHexDecode,t:trim\"\n"
    ));
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let alphabet = b"%&=;:\\/\"'<>!-#*?[]{}()0123456789abcdefxuX \r\n\t\x00\xff\xc3\xa9";
    for round in 0..300 {
        let mut bytes = Vec::new();
        for _ in 0..(round % 97 + 1) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        for ct in [
            "application/json",
            "text/xml",
            "multipart/form-data; boundary=a",
            "application/x-www-form-urlencoded",
        ] {
            let mut tx = Transaction::new(&r);
            let mut uri = b"/".to_vec();
            uri.extend_from_slice(&bytes);
            tx.set_request_line(b"POST", &uri, b"HTTP/1.1");
            tx.add_request_header(b"Content-Type", ct.as_bytes());
            tx.add_request_header(b"Cookie", &bytes);
            tx.process_request_headers();
            let mut body = b"--a\r\nContent-Disposition: form-data; name=\"".to_vec();
            body.extend_from_slice(&bytes);
            let _ = tx.append_request_body(&body);
            tx.process_request_body();
            tx.process_logging();
        }
    }
}

#[test]
fn setvar_growth_is_bounded() {
    let mut text = String::from(ON);
    text.push_str("SecAction \"id:1,phase:1,pass,nolog,setvar:tx.a=0123456789abcdef\"\n");
    for i in 0..40 {
        text.push_str(&format!(
            "SecAction \"id:{},phase:1,pass,nolog,setvar:tx.a=%{{tx.a}}%{{tx.a}}\"\n",
            10 + i
        ));
    }
    let r = rs(&text);
    let (tx, _) = run(&r, "/", &[], None);
    assert_eq!(tx.collection_value("tx", "a").map(|v| v.len()), Some(1 << 20));
}

#[test]
fn configuration_time_rule_changes() {
    let r = rs(&on(r#"
SecRule ARGS "@contains bad" "id:90,phase:1,pass,log,tag:'attack-x',msg:'first'"
SecRule ARGS "@contains bad" "id:91,phase:1,pass,log,tag:'attack-y',msg:'noisy message'"
SecRule ARGS "@contains bad" "id:92,phase:1,pass,log,tag:'attack-z',msg:'third'"
SecRule ARGS "@contains bad" "id:93,phase:1,pass,log,tag:'attack-x',msg:'fourth'"
SecRule ARGS "@contains bad" "id:94,phase:1,pass,log,msg:'fifth'"
SecRuleRemoveByTag attack-y
SecRuleRemoveByMsg ^third$
SecRuleUpdateTargetByTag attack-x "!ARGS:ok"
SecRuleUpdateActionById 94 "deny,status:409,msg:'changed'"
SecRuleRemoveById 1-89 95-99
"#));
    let (tx, ids) = run(&r, "/?ok=bad", &[], None);
    // 90 and 93 no longer look at ARGS:ok; 91 and 92 are gone; 94 now denies with its new msg.
    assert_eq!(ids, vec![94]);
    let i = tx.intervention().unwrap();
    assert_eq!((i.status, i.rule_id), (409, 94));
    assert_eq!(tx.matched_rules()[0].msg, "changed");
    assert_eq!(r.rule_count(), 3);
    let (_, ids) = run(&r, "/?other=bad", &[], None);
    assert_eq!(ids, vec![90, 93, 94]);
}

/// What the adapter hands over is what the rules see: the request target byte for byte (`"`, `<`
/// and `>` included, which `http::Uri` refuses in a query, so an adapter must pass the raw target)
/// and header names in the case the client sent (ModSecurity names `REQUEST_HEADERS:Referer` after
/// the header as sent; a lower-cased name shows in the log as such, though lookups ignore case).
#[test]
fn raw_target_and_header_name_case_reach_the_rules() {
    let r = rs(&on(r#"
SecRule ARGS:code "@rx ^>/tmp" "id:1,phase:1,pass,log"
SecRule ARGS:x "@rx \"<>\"" "id:2,phase:1,pass,log"
SecRule REQUEST_HEADERS:Referer "@contains $u" "id:3,phase:1,pass,log"
"#));
    let (tx, ids) = run(&r, "/get?code=>/tmp/curl&x=\"<>\"", &[("Referer", "cat$u")], None);
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(tx.matched_rules()[2].matched_var_name, "REQUEST_HEADERS:Referer");
    let (tx, ids) = run(&r, "/", &[("referer", "cat$u")], None);
    assert_eq!(ids, vec![3]);
    assert_eq!(tx.matched_rules()[0].matched_var_name, "REQUEST_HEADERS:referer");
}

/// MATCHED_VAR_NAME of a named key of a stored collection (fixed at load, see `Target::label`)
/// is `TX:key` with the key as stored (lower case), for logged and `nolog` matches alike; a regex
/// key still names what it matched; a count (`&TX:key`) is named `TX`.
#[test]
fn stored_collection_names_in_matched_var_name() {
    let r = rs(&on(r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.Paranoia=2,setvar:tx.other_x=1"
SecRule TX:PARANOIA "@lt 3" "id:2,phase:1,pass,nolog"
SecRule MATCHED_VAR_NAME "@streq TX:paranoia" "id:3,phase:1,pass,log,msg:'%{MATCHED_VAR_NAME}'"
SecRule &TX:paranoia "@eq 1" "id:4,phase:1,pass,log,msg:'%{MATCHED_VAR_NAME}'"
SecRule TX:/^other_/ "@eq 1" "id:5,phase:1,pass,log,msg:'%{MATCHED_VAR_NAME}'"
SecRule TX:paranoia "@eq 2" "id:6,phase:1,pass,log"
"#));
    let (tx, ids) = run(&r, "/", &[], None);
    assert_eq!(ids, vec![3, 4, 5, 6]);
    let logged: Vec<_> = tx.matched_rules().iter().filter(|m| m.log).collect();
    // Rule 3 matched the name rule 2's `nolog` match left.
    assert_eq!(logged[0].matched_var, b"TX:paranoia");
    // A count is named after the collection alone, as ModSecurity 2 names it (`&TX:paranoia`).
    assert_eq!(logged[1].msg, "TX");
    assert_eq!(logged[1].matched_var_name, "TX");
    assert_eq!(logged[2].msg, "TX:other_x");
    assert_eq!(logged[3].matched_var_name, "TX:paranoia");
    assert_eq!(logged[3].matched_data, b"2");
    // A `nolog` match keeps no data (nothing reads it) but still sets MATCHED_VAR_NAME (id 3).
    assert!(
        tx.matched_rules()
            .iter()
            .filter(|m| !m.log)
            .all(|m| m.matched_data.is_empty())
    );
}

/// A target that selects stored keys by pattern sees them in key order, whatever order they were
/// set in: per-match actions run in that order and it is the order of MATCHED_VARS and the logs
/// (the collection itself is a hash map).
#[test]
fn pattern_keys_of_a_stored_collection_come_in_key_order() {
    let r = rs(&on(r#"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.k_f=1,setvar:tx.k_b=1,setvar:tx.k_e=1,setvar:tx.k_a=1,setvar:tx.k_d=1,setvar:tx.k_c=1"
SecRule TX:/^k_/ "@eq 1" "id:2,phase:1,pass,nolog,setvar:'tx.order=%{tx.order}%{MATCHED_VAR_NAME} '"
"#));
    let (tx, _) = run(&r, "/", &[], None);
    assert_eq!(
        tx.collection_value("tx", "order").as_deref(),
        Some("TX:k_a TX:k_b TX:k_c TX:k_d TX:k_e TX:k_f ")
    );
}

/// Without an id from the adapter each transaction makes its own (on first use), the same one
/// for UNIQUE_ID and the accessor; an adapter's id replaces it.
#[test]
fn unique_ids_are_made_when_not_given() {
    let r = rs(&on(
        r#"SecRule UNIQUE_ID "@rx ." "id:1,phase:1,pass,log,msg:'%{UNIQUE_ID}'""#,
    ));
    let (a, _) = run(&r, "/", &[], None);
    let (b, _) = run(&r, "/", &[], None);
    assert!(!a.unique_id().is_empty());
    assert_ne!(a.unique_id(), b.unique_id());
    assert_eq!(a.matched_rules()[0].msg, a.unique_id());
    let mut c = r.transaction();
    c.set_unique_id("req-7");
    assert_eq!(c.unique_id(), "req-7");
}
