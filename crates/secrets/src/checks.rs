//! What a regex match must also satisfy to count: not a placeholder, enough entropy, a JWT header
//! that decodes to JSON with `alg`, a docker `auth` that decodes to `user:password`. These are the
//! false-positive filters; every one is exercised by a fixture or a unit test.

use base64::Engine;
use regex::bytes::Captures;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Check {
    /// Only the placeholder stop-list.
    None,
    /// Shannon entropy in bits per byte at least this.
    Entropy(f64),
    /// `header.payload.signature` whose header is base64url JSON naming an `alg`.
    Jwt,
    /// Base64 of `user:password` with a real password.
    DockerAuth,
    /// A value assigned to a secret-like name: no placeholder, letters and digits, entropy scaled
    /// to the length. `key_suffix`: group 1 holds the rest of the key name (`password_hash`).
    Assignment {
        min_len: usize,
        min_entropy: f64,
        key_suffix: bool,
    },
}

impl Check {
    /// `line` is the whole line the match starts on (context for the assignment checks).
    pub(crate) fn accepts(&self, secret: &[u8], caps: &Captures<'_>, line: &[u8]) -> bool {
        if is_placeholder(secret) {
            return false;
        }
        match *self {
            Check::None => true,
            Check::Entropy(min) => shannon_entropy(secret) >= min,
            Check::Jwt => jwt_header_ok(secret),
            Check::DockerAuth => docker_auth_ok(secret),
            Check::Assignment {
                min_len,
                min_entropy,
                key_suffix,
            } => {
                if key_suffix
                    && let Some(suffix) = caps.get(1)
                    && not_a_secret_key(suffix.as_bytes())
                {
                    return false;
                }
                // Group 4 is the unquoted value of the generic patterns: in source code that is
                // an identifier or a type (`credentials: IKEEXT_CREDENTIAL1`,
                // `PrivateKeyFlags: X509CertificateTemplatePrivateKeyFlag`), not a literal.
                if key_suffix && caps.get(4).is_some() && identifier_like(secret) {
                    return false;
                }
                // Documentation: a line that names an example domain shows example values
                // (`Location: http://example.com/cb#access_token=...`).
                let line = line.to_ascii_lowercase();
                if ["example.com", "example.org", "example.net", "example.invalid"]
                    .iter()
                    .any(|d| memchr::memmem::find(&line, d.as_bytes()).is_some())
                {
                    return false;
                }
                assigned_value_ok(secret, min_len, min_entropy)
            }
        }
    }
}

/// Shannon entropy of the bytes, in bits per byte (0 for empty input).
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Values that documentation, templates and tests use instead of a secret. Kept narrow: it applies
/// to every detector, and a real random token rarely contains one of these words.
const PLACEHOLDERS: &[&str] = &[
    "example",
    "xxxx",
    "****",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "your_",
    "your-",
    "yourtoken",
    "yourkey",
    "yourpass",
    "<",
    ">",
    "${",
    "{{",
    "$(",
    "%(",
    "redacted",
    "dummy",
    "insert_",
    "replace_",
    "replaceme",
    "not_a_real",
    "not-a-real",
    "notreal",
    // Example credentials of the OAuth RFCs (5849, 6749, 6750), quoted by every OAuth library's
    // documentation.
    "2yotnfzfejr1zcsicmwpaa",
    "tgzv3jokf0xg5qx2tlkwia",
    "splxlobezqqybys6wxsbia",
    "mf_9.b5f-4.1jqm",
    "h480djs93hd8",
    "ad180jjd733klru7",
    "hh5s93j4hdidpola",
    "nnch734d00sl2jdk",
    "kllo9940pd9333jh",
    "pfkkdhi9sl3r4s00",
    "j49sk3j29djd",
    "hdk48djdsa",
    "xyz4992k83j47x0b",
    "j49ddk933skd9dks",
    "dh893hdasih9",
];

/// Words that, inside an assigned value, mean it is not a real secret (only for the generic
/// assignment detectors, whose values are free-form).
const ASSIGNMENT_STOPWORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "sample",
    "fake",
    "test",
    "todo",
    "fixme",
    "null",
    "none",
    "undefined",
    "true",
    "false",
    "12345678",
    "abcdef",
    "qwerty",
    "foobar",
    "://",
    "s3cr3t",
    "passw0rd",
    "p4ssw0rd",
    "hunter2",
    "...",
];

/// Whether the value is a placeholder from a template or documentation.
pub fn is_placeholder(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDERS
        .iter()
        .any(|p| memchr::memmem::find(&lower, p.as_bytes()).is_some())
}

/// Key names that look secret but hold something else (`password_hash`, `token_url`,
/// `secret_file`, `password_min_length`).
fn not_a_secret_key(suffix: &[u8]) -> bool {
    const NOT_SECRET: &[&str] = &[
        "hash",
        "encrypt",
        "algorithm",
        "method",
        "scheme",
        "cipher",
        "file",
        "path",
        "dir",
        "len",
        "min",
        "max",
        "policy",
        "field",
        "prompt",
        "label",
        "regex",
        "pattern",
        "type",
        "name",
        "url",
        "uri",
        "endpoint",
        "expir",
        "ttl",
        "header",
        "param",
        "env",
        "_id",
        "-id",
        "count",
        "format",
        "mode",
        "reset",
        "strength",
        "hint",
        "salt",
        "digest",
        "enabled",
        "required",
        "validator",
    ];
    let lower = suffix.to_ascii_lowercase();
    NOT_SECRET
        .iter()
        .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some())
}

/// A free-form value assigned to a secret-like name: long enough, no whitespace, not code (a
/// variable, a call, a template), letters and digits both present, and entropy close to what a
/// random value of that length has.
fn assigned_value_ok(value: &[u8], min_len: usize, min_entropy: f64) -> bool {
    if value.len() < min_len || value.len() > 300 {
        return false;
    }
    if value
        .iter()
        .any(|b| b.is_ascii_whitespace() || !b.is_ascii_graphic())
    {
        return false;
    }
    // References, templates and operators (`::` and `:=` leave a `:` or `=` in front).
    if matches!(
        value[0],
        b'$' | b'%' | b'{' | b'(' | b'[' | b'@' | b'&' | b'*' | b'!' | b'#' | b':' | b'=' | b'<' | b'|'
    ) {
        return false;
    }
    // Code, not a literal: calls, indexing, blocks (`self.rules[stack[-1]]`, `get_token()`), and
    // dotted identifier paths (`options.auth.token2`).
    if value.iter().any(|b| b"()[]{}".contains(b)) || dotted_identifier(value) {
        return false;
    }
    // Paths in code (`crate::__u32`, `a->b`) and escape sequences of string literals.
    let lower = value.to_ascii_lowercase();
    if ["::", "->", "\\x", "\\r", "\\n", "\\t", "\\u"]
        .iter()
        .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some())
    {
        return false;
    }
    if ASSIGNMENT_STOPWORDS
        .iter()
        .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some())
    {
        return false;
    }
    let has_digit = value.iter().any(u8::is_ascii_digit);
    let has_alpha = value.iter().any(u8::is_ascii_alphabetic);
    if !has_digit || !has_alpha {
        return false;
    }
    // A random value of n bytes has at most log2(n) bits per byte; short values cannot reach a
    // fixed threshold, so it scales down for them.
    let ceiling = (value.len() as f64).log2() * 0.85;
    shannon_entropy(value) >= min_entropy.min(ceiling)
}

/// An identifier with an underscore (`WIN32_ERROR`, `_bindgen_ty_7`) or made of words
/// (`X509CertificateTemplatePrivateKeyFlag`): most of its letters sit in runs of three or more of
/// the same case, which random tokens rarely have.
fn identifier_like(value: &[u8]) -> bool {
    let ident = value
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && value.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !ident {
        return false;
    }
    if value.contains(&b'_') {
        return true;
    }
    let mut in_runs = 0usize;
    let mut run = 0usize;
    let mut last_class = 0u8;
    for &b in value.iter().chain(std::iter::once(&b' ')) {
        let class = if b.is_ascii_lowercase() {
            1
        } else if b.is_ascii_uppercase() {
            2
        } else {
            0
        };
        if class != 0 && class == last_class {
            run += 1;
        } else {
            if run >= 3 {
                in_runs += run;
            }
            run = usize::from(class != 0);
        }
        last_class = class;
    }
    in_runs * 10 >= value.len() * 6
}

/// `a.b`, `self.token_2`, `os.environ.x1`: identifiers joined by dots.
fn dotted_identifier(value: &[u8]) -> bool {
    let mut parts = 0;
    for part in value.split(|&b| b == b'.') {
        let ident = part
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && part.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if !ident {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

/// Whether a name (an ENV variable, a config key) says its value is a secret.
pub(crate) fn secret_name(name: &str) -> bool {
    const CONTAINS: &[&str] = &[
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "AUTH_KEY",
    ];
    // Names that match the above but, by convention, hold public or non-secret data.
    const EXCEPT: &[&str] = &[
        "PUBLIC_KEY",
        "GPG_KEY",
        "PGP_KEY",
        "KEYRING",
        "TOKEN_URL",
        "TOKEN_TYPE",
    ];
    let upper = name.to_ascii_uppercase();
    if EXCEPT.iter().any(|e| upper.contains(e)) {
        return false;
    }
    if [
        "_FILE",
        "_PATH",
        "_DIR",
        "_URL",
        "_URI",
        "_ENDPOINT",
        "_TTL",
        "_NAME",
        "_ID",
    ]
    .iter()
    .any(|s| upper.ends_with(s))
        && !upper.ends_with("ACCESS_KEY_ID")
    {
        return false;
    }
    CONTAINS.iter().any(|c| upper.contains(c)) || upper.ends_with("_KEY")
}

/// Whether an assigned value is a literal secret rather than a flag, a path or a reference.
pub(crate) fn literal_value(name: &str, value: &str) -> bool {
    let v = value.as_bytes();
    if v.len() < 4 || is_placeholder(v) {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "none" | "null" | "disabled" | "enabled"
    ) {
        return false;
    }
    if value.starts_with('/') || value.starts_with("./") || value.starts_with('$') {
        return false;
    }
    // `*_KEY` is broad (`SORT_KEY`, `CACHE_KEY`): only a random-looking value counts there.
    if name.to_ascii_uppercase().ends_with("_KEY") && !secret_name_strict(name) {
        return v.len() >= 16 && shannon_entropy(v) >= 3.5;
    }
    true
}

fn secret_name_strict(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "SECRET",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "AUTH_KEY",
    ]
    .iter()
    .any(|c| upper.contains(c))
}

fn decode_base64url(text: &[u8]) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = text.iter().copied().filter(|&b| b != b'=').collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
}

fn jwt_header_ok(token: &[u8]) -> bool {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if signature.len() < 16 || payload.is_empty() {
        return false;
    }
    let Some(json) = decode_base64url(header) else {
        return false;
    };
    let json = String::from_utf8_lossy(&json);
    let compact: String = json.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with('{') && compact.contains("\"alg\":\"") && !compact.contains("\"alg\":\"none\"")
}

fn docker_auth_ok(auth: &[u8]) -> bool {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    !user.is_empty() && password.len() >= 4 && !is_placeholder(password)
}
