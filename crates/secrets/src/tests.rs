use super::*;
use std::collections::BTreeSet;

fn scan(text: &str) -> ScanResult {
    scanner().unwrap().scan(text.as_bytes(), &ScanOptions::default())
}

fn ids(text: &str) -> Vec<&'static str> {
    scan(text).matches.iter().map(|m| m.rule.id).collect()
}

#[test]
fn catalogue_is_large_documented_and_unique() {
    let rules: Vec<_> = rules().collect();
    assert!(rules.len() >= 40, "{} detectors", rules.len());
    let unique: BTreeSet<_> = rules.iter().map(|r| r.id).collect();
    assert_eq!(unique.len(), rules.len(), "duplicate rule ids");
    for r in &rules {
        assert!(r.id.starts_with("secret."), "{}", r.id);
        assert!(!r.title.is_empty() && !r.description.is_empty() && !r.remediation.is_empty());
        assert!(!r.frameworks.is_empty(), "{}", r.id);
        assert!(
            !r.fixtures.pass.is_empty() && !r.fixtures.fail.is_empty(),
            "{}",
            r.id
        );
    }
}

#[test]
fn every_detector_fires_on_its_fail_fixtures_and_not_on_its_pass_fixtures() {
    for d in DETECTORS {
        for fail in d.meta.fixtures.fail {
            let found = ids(fail);
            assert!(
                found.contains(&d.meta.id),
                "{} does not fire on its fail fixture (found {found:?}):\n{fail}",
                d.meta.id
            );
        }
        for pass in d.meta.fixtures.pass {
            let found = ids(pass);
            assert!(
                !found.contains(&d.meta.id),
                "{} fires on its pass fixture:\n{pass}",
                d.meta.id
            );
        }
    }
}

#[test]
fn no_raw_secret_in_matches_and_redaction_shows_at_most_a_quarter() {
    for d in DETECTORS {
        for fail in d.meta.fixtures.fail {
            for m in scan(fail).matches {
                let shown = m.redacted.trim_end_matches('*');
                assert!(shown.chars().count() <= 4);
                assert!(
                    shown.chars().count() * 4 <= m.length,
                    "{}: {}",
                    d.meta.id,
                    m.redacted
                );
                let json = serde_json::to_string(&m).unwrap();
                // The longest run of the secret that can appear is the redacted prefix.
                assert!(json.len() < 300, "{json}");
                assert!(m.fingerprint.starts_with("sha256:") && m.fingerprint.len() == 71);
            }
        }
    }
    assert_eq!(redact(b"ghp_0123456789abcdef"), "ghp_****");
    assert_eq!(redact(b"short"), "s****");
    assert_eq!(redact(b"abc"), "****");
    assert_eq!(redact("ééééééééé".as_bytes()), "éé****");
}

#[test]
fn fingerprint_is_stable_and_salted() {
    assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
    assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
    // Plain SHA-256 of "abc" must not be what we publish.
    assert!(!fingerprint(b"abc").contains("ba7816bf8f01cfea414140de5dae2223"));
}

#[test]
fn entropy() {
    assert_eq!(shannon_entropy(b""), 0.0);
    assert_eq!(shannon_entropy(b"aaaa"), 0.0);
    assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    assert!(shannon_entropy(b"uqlhu1rSyL7DYpY7vTuMJyx6dLXVp5B7") > 4.0);
}

#[test]
fn placeholders_are_not_secrets() {
    for value in [
        "changeme",
        "${DB_PASSWORD}",
        "<password>",
        "xxxxxxxxxxxx",
        "example-token-123",
        "{{ .Values.password }}",
        "your_api_key",
    ] {
        assert!(is_placeholder(value.as_bytes()), "{value}");
        assert!(ids(&format!("password = {value}")).is_empty(), "{value}");
        assert!(ids(&format!("api_key: \"{value}\"")).is_empty(), "{value}");
    }
    assert!(!is_placeholder(b"Pr0d-pRLk5yRoQgqP7i"));
}

#[test]
fn line_and_column_of_each_match() {
    let text = concat!(
        "[aws]\nregion = eu-west-1\naws_access_key_id = AKIA",
        "UJZDEGXDNCF32EPF\n\n  token = gh",
        "p_S2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUb\n"
    );
    let r = scan(text);
    let found: Vec<_> = r.matches.iter().map(|m| (m.rule.id, m.line, m.column)).collect();
    assert_eq!(
        found,
        vec![("secret.aws-access-key-id", 3, 21), ("secret.github-pat", 5, 11),],
        "the generic `token =` detector yields to the GitHub one"
    );
}

#[test]
fn private_key_in_yaml_block_reports_the_begin_line() {
    let text = concat!(
        "server:\n  private_key: |\n    -----BEGIN RSA PRIVATE",
        " KEY-----\n    MIIEpAIBAAKCAQEA1YVejIFkuGm91Br1LNDjtgjvG5wTcEtfSP7V+1sgGBSt1CUe\n",
        "    R2eNMPOJQdM0AtI8/stM1Y84wufqk7SVtMjEpAP/wuOZXptK38F2LamlfKZo2gUN\n",
        "    -----END RSA PRIVATE KEY-----\n"
    );
    let r = scan(text);
    assert_eq!(r.matches.len(), 1, "{:?}", r.matches);
    assert_eq!(r.matches[0].rule.id, "secret.private-key");
    assert_eq!(r.matches[0].line, 3);
    assert_eq!(r.matches[0].redacted, "MIIE****");
}

#[test]
fn binary_input_only_runs_key_detectors() {
    let mut bin = vec![0u8, 1, 2, 3];
    bin.extend_from_slice(concat!("token = gh", "p_S2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUb ").as_bytes());
    let r = scanner().unwrap().scan(&bin, &ScanOptions::default());
    assert!(r.binary && r.matches.is_empty());
    bin.extend_from_slice(
        DETECTORS
            .iter()
            .find(|d| d.meta.id == "secret.private-key")
            .unwrap()
            .meta
            .fixtures
            .fail[0]
            .as_bytes(),
    );
    let r = scanner().unwrap().scan(&bin, &ScanOptions::default());
    assert_eq!(r.matches.len(), 1);
    assert_eq!(r.matches[0].rule.id, "secret.private-key");
}

#[test]
fn bounds_on_bytes_and_matches() {
    let line = concat!("k = gh", "p_S2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUb\n");
    let text = line.repeat(200);
    let opts = ScanOptions {
        max_bytes: line.len() * 100,
        max_matches: 10,
    };
    let r = scanner().unwrap().scan(text.as_bytes(), &opts);
    assert!(r.truncated);
    assert_eq!(r.matches.len(), 10);
    assert_eq!(r.dropped, 90);
    assert_eq!(r.matches[9].line, 10);
}

#[test]
fn no_panic_on_garbage_long_lines_and_cut_inputs() {
    let s = scanner().unwrap();
    let opts = ScanOptions::default();
    // A small xorshift generator: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"AKIAghp_xoxb-eyJ.=:\"' \n\t-----BEGIN PRIVATE KEY-----password=token=sk_live_0123456789abcdefABCDEF/+\\";
    for round in 0..400 {
        let len = (next() % 4096) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if round % 2 == 0 {
                    alphabet[(r as usize) % alphabet.len()]
                } else {
                    r as u8
                }
            })
            .collect();
        let _ = s.scan(&bytes, &opts);
    }
    // Every fixture cut at every byte position.
    for d in DETECTORS {
        for fail in d.meta.fixtures.fail {
            let b = fail.as_bytes();
            for cut in 0..b.len() {
                let _ = s.scan(&b[..cut], &opts);
                let _ = s.scan(&b[cut..], &opts);
            }
        }
    }
    // One enormous line without newlines, and a long run of a keyword.
    let long = "a".repeat(3 << 20);
    assert!(s.scan(long.as_bytes(), &opts).matches.is_empty());
    let keywords = "password=".repeat(200_000);
    let _ = s.scan(keywords.as_bytes(), &opts);
    let _ = s.scan(&[], &opts);
}

#[test]
fn planted_test_image_values() {
    // The shapes of the secrets the test images plant (values rebuilt here, not copied).
    let ini = concat!(
        "[aws]\nregion = eu-west-1\naws_access_key_id = AKIA",
        "UJZDEGXDNCF32EPF\naws_secret_access_key = 2hpChYgCfrL1spNx",
        "nyVmihA+2O76UMFxFkM+R5Kj\n\n[database]\nhost = db.internal\nuser = app\npassword = Pr0d-",
        "xLk5yRoQgqP7i\n\n[github]\ntoken = gh",
        "p_S2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUb\n"
    );
    assert_eq!(
        ids(ini),
        vec![
            "secret.aws-access-key-id",
            "secret.aws-secret-access-key",
            "secret.generic-password",
            "secret.github-pat"
        ]
    );
    assert_eq!(
        ids("api_secret = uqlhu1rSyL7DYpY7vTuMJyx6dLXVp5B7\n"),
        vec!["secret.generic-secret"]
    );
}

#[test]
fn environment_assignments() {
    let s = scanner().unwrap();
    let yes = |n: &str, v: &str| s.assignment(n, v).is_some();
    assert!(yes("DB_PASSWORD", "Pr0d-xLk5yRoQgqP7i"));
    assert!(yes("DB_PASSWORD", "hunter22"));
    assert!(yes(
        "AWS_SECRET_ACCESS_KEY",
        concat!("2hpChYgCfrL1spNx", "nyVmihA+2O76UMFxFkM+R5Kj")
    ));
    assert!(yes("STRIPE", concat!("sk_", "live_dnbMjAdTdlzC5T4uUhf7kvml")));
    assert!(!yes("DB_PASSWORD", ""));
    assert!(!yes("DB_PASSWORD", "changeme"));
    assert!(!yes("DB_PASSWORD_FILE", "/run/secrets/db"));
    assert!(!yes("PATH", "/usr/local/bin:/usr/bin"));
    assert!(!yes("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D"));
    assert!(!yes("SORT_KEY", "name"));
    assert!(!yes("TOKEN_ENABLED", "true"));
    let a = s.assignment("DB_PASSWORD", "Pr0d-xLk5yRoQgqP7i").unwrap();
    assert_eq!(a.redacted, "Pr0d****");
    assert!(a.detector.is_some_and(|d| d.id == "secret.generic-password"));
}

#[test]
fn redact_text_replaces_only_the_secrets() {
    let s = scanner().unwrap();
    let token = concat!("gh", "p_S2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUb");
    let cmd = format!("RUN git clone https://x-access:{token}@github.com/org/repo && echo é");
    let out = s.redact_text(&cmd);
    assert!(!out.contains(token), "{out}");
    assert!(
        out.starts_with("RUN git clone https://x-access:ghp_****@github.com/org/repo"),
        "{out}"
    );
    assert!(out.ends_with("echo é"));
    assert_eq!(s.redact_text("RUN apt-get update"), "RUN apt-get update");
}

#[test]
fn documentation_examples_are_not_secrets() {
    for text in [
        "        Location: http://example.com/cb#access_token=2YotnFZFEjr1zCsicMWpAA&state=xyz",
        "            \"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\",",
        "#password_encryption = scram-sha-256\t# scram-sha-256 or md5",
        "[distutils]\n            password: sekrit\n            password = self.password\n",
    ] {
        assert!(ids(text).is_empty(), "{text}: {:?}", ids(text));
    }
}

#[test]
fn no_pattern_has_a_large_counted_repetition() {
    // `regex` unrolls counted repetitions: one `{40,65536}` made the scanner 24 MB and 65 ms to
    // build. Upper bounds stay small; longer values use `{n,}`.
    let counted = regex::Regex::new(r"\{(\d+),(\d+)\}").unwrap();
    for d in DETECTORS {
        for c in counted.captures_iter(d.pattern) {
            let max: usize = c[2].parse().unwrap();
            assert!(max <= 300, "{}: {}", d.meta.id, &c[0]);
        }
    }
}
