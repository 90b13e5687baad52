//! Recognises credentials without a regex engine: secret-looking variable names and the fixed formats
//! of well-known tokens. Every matcher is a linear scan; none ever returns the matched text, so callers
//! cannot leak it by accident.

/// Whether a variable or key name says it holds a secret (`DB_PASSWORD`, `apiKey`, `client.secret`),
/// excluding names that point at one instead (`PASSWORD_FILE`, `SECRET_NAME`, `AWS_ACCESS_KEY_ID`).
pub(crate) fn is_secret_name(name: &str) -> bool {
    let tokens = tokens(name);
    let Some(last) = tokens.last() else { return false };
    const REFERENCES: &[&str] = &[
        "FILE",
        "PATH",
        "DIR",
        "NAME",
        "ID",
        "ENDPOINT",
        "URL",
        "URI",
        "TTL",
        "EXPIRY",
        "EXPIRATION",
        "TIMEOUT",
        "LENGTH",
        "TYPE",
        "MODE",
        "ENABLED",
        "ENABLE",
        "REF",
        "HEADER",
        "POLICY",
        "ROTATION",
        "LIFETIME",
        "SECONDS",
        "MINUTES",
        "HOURS",
        "VERSION",
        "REGION",
        "USER",
        "USERNAME",
        "PREFIX",
        "FORMAT",
        "SIZE",
    ];
    if REFERENCES.contains(&last.as_str()) {
        return false;
    }
    const SECRET: &[&str] = &[
        "PASSWORD",
        "PASSWD",
        "PWD",
        "PASS",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "PRIVATEKEY",
        "ACCESSKEY",
        "SECRETKEY",
        "AUTHKEY",
    ];
    const KEY_QUALIFIERS: &[&str] = &[
        "API",
        "PRIVATE",
        "ACCESS",
        "SECRET",
        "AUTH",
        "SIGNING",
        "ENCRYPTION",
        "MASTER",
    ];
    tokens.iter().enumerate().any(|(i, t)| {
        SECRET.contains(&t.as_str())
            || (t == "KEY" && i > 0 && KEY_QUALIFIERS.contains(&tokens[i - 1].as_str()))
    })
}

/// Splits on `_ - .` and lower→upper case changes, upper-cased: `dbPassword.v2` → `DB PASSWORD V2`.
fn tokens(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if !ch.is_ascii_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        current.push(ch.to_ascii_uppercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether a literal value is a real value rather than a placeholder or a reference: empty strings,
/// `$(VAR)` / `${VAR}` expansions, `<...>` templates and booleans are not secrets.
pub(crate) fn is_literal_secret_value(value: &str) -> bool {
    let v = value.trim();
    !(v.is_empty()
        || v.starts_with("$(")
        || v.starts_with("${")
        || v.starts_with("{{")
        || (v.starts_with('<') && v.ends_with('>'))
        || ["true", "false", "yes", "no", "null", "none"].contains(&v.to_ascii_lowercase().as_str()))
}

/// The name of the credential format `text` contains, if any.
pub(crate) fn known_credential(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    let upper_alnum = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let alnum_us = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let alnum_dash = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    let alnum_us_dash = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';

    for prefix in ["AKIA", "ASIA", "ABIA", "ACCA"] {
        if token_after(b, prefix, upper_alnum, 16, Some(16), true) {
            return Some("AWS access key id");
        }
    }
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        if token_after(b, prefix, alnum, 36, None, true) {
            return Some("GitHub token");
        }
    }
    if token_after(b, "github_pat_", alnum_us, 22, None, true) {
        return Some("GitHub fine-grained token");
    }
    if token_after(b, "glpat-", alnum_us_dash, 20, None, true) {
        return Some("GitLab personal access token");
    }
    for prefix in ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"] {
        if token_after(b, prefix, alnum_dash, 10, None, true) {
            return Some("Slack token");
        }
    }
    if text.contains("hooks.slack.com/services/T") {
        return Some("Slack webhook URL");
    }
    for prefix in ["sk_live_", "rk_live_"] {
        if token_after(b, prefix, alnum, 20, None, true) {
            return Some("Stripe live key");
        }
    }
    if token_after(b, "AIza", alnum_us_dash, 35, Some(35), true) {
        return Some("Google API key");
    }
    if token_after(b, "npm_", alnum, 36, None, true) {
        return Some("npm token");
    }
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
        return Some("PEM private key");
    }
    if has_jwt(b) {
        return Some("JSON Web Token");
    }
    if has_url_password(text) {
        return Some("password in URL");
    }
    None
}

/// Whether `prefix` occurs at a word start followed by `min..=max` bytes of `class` and a word end.
fn token_after(
    b: &[u8],
    prefix: &str,
    class: impl Fn(u8) -> bool,
    min: usize,
    max: Option<usize>,
    bounded: bool,
) -> bool {
    let p = prefix.as_bytes();
    let mut i = 0;
    while i + p.len() <= b.len() {
        if &b[i..i + p.len()] == p && (!bounded || i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let start = i + p.len();
            let mut end = start;
            while end < b.len() && class(b[end]) {
                end += 1;
            }
            let n = end - start;
            if n >= min && max.is_none_or(|m| n <= m) {
                return true;
            }
            // The run just scanned cannot contain another match start of the same class.
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    false
}

/// `eyJ<header>.eyJ<payload>.<signature>`.
fn has_jwt(b: &[u8]) -> bool {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let run = |from: usize| {
        let mut end = from;
        while end < b.len() && b64(b[end]) {
            end += 1;
        }
        end
    };
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i..].starts_with(b"eyJ") {
            let h = run(i);
            if h - i >= 10 && b.get(h) == Some(&b'.') && b[h + 1..].starts_with(b"eyJ") {
                let p = run(h + 1);
                if p - h > 10 && b.get(p) == Some(&b'.') && run(p + 1) - (p + 1) >= 10 {
                    return true;
                }
            }
            i = h.max(i + 1);
        } else {
            i += 1;
        }
    }
    false
}

/// `scheme://user:password@host` with a literal password.
fn has_url_password(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let authority_end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        if let Some((userinfo, _host)) = authority.rsplit_once('@')
            && let Some((_user, password)) = userinfo.split_once(':')
            && is_literal_secret_value(password)
            && !password.starts_with('$')
        {
            return true;
        }
        rest = after;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for yes in [
            "PASSWORD",
            "DB_PASSWORD",
            "dbPassword",
            "API_KEY",
            "apiKey",
            "APIKey",
            "GITHUB_TOKEN",
            "client.secret",
            "AWS_SECRET_ACCESS_KEY",
            "PRIVATE_KEY",
            "REDIS_PASS",
            "x-auth-token",
        ] {
            assert!(is_secret_name(yes), "{yes}");
        }
        for no in [
            "PASSWORD_FILE",
            "SECRET_NAME",
            "AWS_ACCESS_KEY_ID",
            "TOKEN_TTL",
            "KEY",
            "MONKEY",
            "PATH",
            "PASSTHROUGH",
            "TOKEN_URL",
            "",
            "___",
            "SSH_KNOWN_HOSTS",
        ] {
            assert!(!is_secret_name(no), "{no}");
        }
    }

    #[test]
    fn formats() {
        // Test values are assembled so that this file itself does not look like it holds secrets.
        let aws = format!("{}{}", "AKIA", "IOSFODNN7EXAMPLE");
        assert_eq!(known_credential(&aws), Some("AWS access key id"));
        assert_eq!(known_credential(&format!("x{aws}")), None);
        assert_eq!(known_credential(&format!("{aws}Z")), None);
        let gh = format!("{}{}", "ghp_", "a".repeat(36));
        assert_eq!(known_credential(&gh), Some("GitHub token"));
        assert_eq!(known_credential(&format!("{}{}", "ghp_", "a".repeat(20))), None);
        assert_eq!(
            known_credential(&format!("{}{}", "xoxb-", "1234567890-abc")),
            Some("Slack token")
        );
        assert_eq!(
            known_credential("-----BEGIN RSA PRIVATE KEY-----\nMIIE..."),
            Some("PEM private key")
        );
        assert_eq!(known_credential("-----BEGIN CERTIFICATE-----"), None);
        assert_eq!(
            known_credential("postgres://app:s3cr3t@db:5432/app"),
            Some("password in URL")
        );
        assert_eq!(known_credential("postgres://app:$(DB_PASSWORD)@db/app"), None);
        assert_eq!(known_credential("https://example.com/a@b"), None);
        let jwt = format!(
            "{}.{}.{}",
            "eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiIxMjM0NTY3ODkwIn0", "dBjftJeZ4CVPmB92K27uhbUJU1p1r"
        );
        assert_eq!(known_credential(&jwt), Some("JSON Web Token"));
        assert_eq!(
            known_credential(&format!("{}{}", "AIza", "b".repeat(35))),
            Some("Google API key")
        );
        assert_eq!(known_credential("plain text, nothing here"), None);
        // Linear on adversarial input.
        let long = "AKIA".repeat(100_000);
        assert_eq!(known_credential(&long), None);
        let long = "eyJ.".repeat(100_000) + &"://a:".repeat(10_000);
        let _ = known_credential(&long);
    }
}
