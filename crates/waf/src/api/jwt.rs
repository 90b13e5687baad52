//! JWT (JWS compact) verification for routes that demand a bearer token: HS256 with a shared
//! secret, RS256 and ES256 with keys from a JWKS document. The header's `alg` must fit the key that
//! verifies it, so a token can never pick its own verification method (no `none`, no HS256 with a
//! public key as the secret); claims are read only after the signature holds.

use crate::{Result, WafError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};
use std::fmt;

/// Tokens longer than this are refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// JWKS documents larger than this are refused.
pub const MAX_JWKS_BYTES: usize = 1 << 20;
const MIN_RSA_MODULUS_BYTES: usize = 256;
const MAX_KEYS: usize = 256;

/// Why a token was not accepted. [`JwtRejection::code`] is stable, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtRejection {
    /// Not three base64url parts of JSON, too long, or a claim of the wrong type.
    Malformed(String),
    /// `alg: none` (an unsigned token).
    AlgNone,
    /// An algorithm this verifier has no key for, e.g. HS256 when only public keys are configured
    /// (the algorithm-confusion attack) or RS256 when only a secret is.
    AlgNotAllowed(String),
    /// No configured key has the token's `kid` (or there is no `kid` and several keys fit).
    UnknownKey,
    BadSignature,
    /// `exp` is in the past (beyond the leeway), or missing when it is required.
    Expired,
    MissingExpiry,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    WrongIssuer,
    WrongAudience,
}

impl JwtRejection {
    pub fn code(&self) -> &'static str {
        match self {
            JwtRejection::Malformed(_) => "jwt.malformed",
            JwtRejection::AlgNone => "jwt.alg-none",
            JwtRejection::AlgNotAllowed(_) => "jwt.alg-not-allowed",
            JwtRejection::UnknownKey => "jwt.unknown-key",
            JwtRejection::BadSignature => "jwt.bad-signature",
            JwtRejection::Expired => "jwt.expired",
            JwtRejection::MissingExpiry => "jwt.missing-exp",
            JwtRejection::NotYetValid => "jwt.not-yet-valid",
            JwtRejection::WrongIssuer => "jwt.wrong-issuer",
            JwtRejection::WrongAudience => "jwt.wrong-audience",
        }
    }
}

impl fmt::Display for JwtRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtRejection::Malformed(m) => write!(f, "malformed token: {m}"),
            JwtRejection::AlgNone => f.write_str("unsigned token (alg none)"),
            JwtRejection::AlgNotAllowed(a) => {
                write!(f, "algorithm {a} is not allowed for the configured keys")
            }
            JwtRejection::UnknownKey => f.write_str("no configured key matches the token"),
            JwtRejection::BadSignature => f.write_str("signature does not verify"),
            JwtRejection::Expired => f.write_str("token has expired"),
            JwtRejection::MissingExpiry => f.write_str("token has no exp claim"),
            JwtRejection::NotYetValid => f.write_str("token is not valid yet (nbf)"),
            JwtRejection::WrongIssuer => f.write_str("unexpected issuer"),
            JwtRejection::WrongAudience => f.write_str("unexpected audience"),
        }
    }
}

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A claim as text for keys (rate limits, logs): strings as they are, numbers and booleans
    /// written out; objects, arrays and null give `None`.
    pub fn key(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn subject(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(authorization).ok()?.trim();
    let (scheme, token) = s.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Hs256,
    Rs256,
    Es256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

#[derive(Debug, Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed P-256 point: `0x04 || x || y`.
    P256(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

impl Jwk {
    fn alg(&self) -> Alg {
        match self.key {
            PublicKey::Rsa { .. } => Alg::Rs256,
            PublicKey::P256(_) => Alg::Es256,
        }
    }
}

/// Verifies tokens against configured keys. Immutable and `Send + Sync` once built.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    secret: Option<Vec<u8>>,
    keys: Vec<Jwk>,
    leeway: u64,
    issuer: Option<String>,
    audience: Option<String>,
    require_exp: bool,
    warnings: Vec<String>,
}

/// Configuration of a [`JwtVerifier`].
#[derive(Debug, Clone)]
pub struct JwtVerifierBuilder {
    inner: JwtVerifier,
}

impl Default for JwtVerifierBuilder {
    fn default() -> Self {
        JwtVerifierBuilder {
            inner: JwtVerifier {
                secret: None,
                keys: Vec::new(),
                leeway: 60,
                issuer: None,
                audience: None,
                require_exp: true,
                warnings: Vec::new(),
            },
        }
    }
}

fn jwks_error(source_name: &str, pointer: impl Into<String>, message: impl Into<String>) -> WafError {
    WafError::Jwks {
        source_name: source_name.to_string(),
        pointer: pointer.into(),
        message: message.into(),
    }
}

impl JwtVerifierBuilder {
    /// Accept HS256 tokens signed with this shared secret.
    pub fn hs256_secret(mut self, secret: &[u8]) -> Self {
        self.inner.secret = Some(secret.to_vec());
        self
    }

    /// Accept RS256 and ES256 tokens signed by the keys of a JWKS document (`{"keys": [...]}`).
    /// Keys for encryption (`use: enc`), other key types, curves and algorithms are skipped and
    /// listed in [`JwtVerifier::warnings`]; a document without one usable key is an error.
    pub fn jwks(mut self, document: &[u8], source_name: &str) -> Result<Self> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(jwks_error(
                source_name,
                "",
                format!("larger than {MAX_JWKS_BYTES} bytes"),
            ));
        }
        let doc: Value = serde_json::from_slice(document)
            .map_err(|e| jwks_error(source_name, "", format!("invalid JSON: {e}")))?;
        let Some(Value::Array(keys)) = doc.get("keys") else {
            return Err(jwks_error(source_name, "/keys", "expected an array of keys"));
        };
        if keys.len() > MAX_KEYS {
            return Err(jwks_error(
                source_name,
                "/keys",
                format!("more than {MAX_KEYS} keys"),
            ));
        }
        let mut usable = 0;
        for (i, k) in keys.iter().enumerate() {
            let pointer = format!("/keys/{i}");
            match parse_jwk(k) {
                Ok(jwk) => {
                    usable += 1;
                    self.inner.keys.push(jwk);
                }
                Err(Skip(message)) => self
                    .inner
                    .warnings
                    .push(format!("{source_name}{pointer}: {message}")),
            }
        }
        if usable == 0 {
            return Err(jwks_error(
                source_name,
                "/keys",
                "no usable RS256 or ES256 signing key",
            ));
        }
        Ok(self)
    }

    /// Clock skew allowed for `exp` and `nbf` (default 60 s).
    pub fn leeway_seconds(mut self, leeway: u64) -> Self {
        self.inner.leeway = leeway;
        self
    }

    /// Require `iss` to be exactly this.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.inner.issuer = Some(issuer.to_string());
        self
    }

    /// Require `aud` to be, or to contain, this.
    pub fn audience(mut self, audience: &str) -> Self {
        self.inner.audience = Some(audience.to_string());
        self
    }

    /// Whether a token without `exp` is refused (default: yes).
    pub fn require_exp(mut self, require: bool) -> Self {
        self.inner.require_exp = require;
        self
    }

    pub fn build(self) -> Result<JwtVerifier> {
        if self.inner.secret.is_none() && self.inner.keys.is_empty() {
            return Err(jwks_error(
                "<jwt>",
                "",
                "no HS256 secret and no JWKS keys configured",
            ));
        }
        if self.inner.secret.as_ref().is_some_and(Vec::is_empty) {
            return Err(jwks_error("<jwt>", "", "the HS256 secret is empty"));
        }
        Ok(self.inner)
    }
}

/// A key that is valid JWKS but not one this verifier can use, with the reason.
struct Skip(String);

fn b64_field(k: &Value, name: &str) -> std::result::Result<Vec<u8>, Skip> {
    let s = k
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Skip(format!("missing `{name}`")))?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| Skip(format!("`{name}` is not base64url")))
}

fn parse_jwk(k: &Value) -> std::result::Result<Jwk, Skip> {
    if !k.is_object() {
        return Err(Skip("a key must be an object".into()));
    }
    let str_field = |name: &str| k.get(name).and_then(Value::as_str);
    if str_field("use").is_some_and(|u| u != "sig") {
        return Err(Skip("not a signature key (use is not sig)".into()));
    }
    let kid = str_field("kid").map(str::to_string);
    let alg = str_field("alg");
    let key = match str_field("kty") {
        Some("RSA") => {
            if alg.is_some_and(|a| a != "RS256") {
                return Err(Skip(format!(
                    "RSA key for {}, only RS256 is supported",
                    alg.unwrap_or_default()
                )));
            }
            let n = b64_field(k, "n")?;
            let e = b64_field(k, "e")?;
            let n_len = n.iter().skip_while(|b| **b == 0).count();
            if n_len < MIN_RSA_MODULUS_BYTES {
                return Err(Skip("RSA modulus shorter than 2048 bits".into()));
            }
            PublicKey::Rsa { n, e }
        }
        Some("EC") => {
            if str_field("crv") != Some("P-256") {
                return Err(Skip("EC key not on P-256".into()));
            }
            if alg.is_some_and(|a| a != "ES256") {
                return Err(Skip(format!(
                    "EC key for {}, only ES256 is supported",
                    alg.unwrap_or_default()
                )));
            }
            let x = b64_field(k, "x")?;
            let y = b64_field(k, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(Skip("P-256 coordinates must be 32 bytes".into()));
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::P256(point)
        }
        other => {
            return Err(Skip(format!(
                "key type {:?} is not supported",
                other.unwrap_or("<none>")
            )));
        }
    };
    Ok(Jwk { kid, key })
}

fn malformed(m: &str) -> JwtRejection {
    JwtRejection::Malformed(m.to_string())
}

fn decode_json_object(part: &str, what: &str) -> std::result::Result<Map<String, Value>, JwtRejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtRejection::Malformed(format!("{what} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(JwtRejection::Malformed(format!("{what} is not a JSON object"))),
    }
}

impl JwtVerifier {
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
    }

    /// JWKS keys that were skipped, and why.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Verifies a compact JWS token at time `now_unix` (seconds since the epoch).
    pub fn verify(&self, token: &str, now_unix: u64) -> std::result::Result<Claims, JwtRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtRejection::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "expected three dot-separated parts (JWE is not supported)",
            ));
        };
        let header = decode_json_object(h64, "header")?;
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some(a) if a.eq_ignore_ascii_case("none") => return Err(JwtRejection::AlgNone),
            Some("HS256") => Alg::Hs256,
            Some("RS256") => Alg::Rs256,
            Some("ES256") => Alg::Es256,
            Some(other) => return Err(JwtRejection::AlgNotAllowed(other.chars().take(32).collect())),
            None => return Err(malformed("header has no alg")),
        };
        if header.contains_key("crit") {
            return Err(malformed("critical header extensions are not supported"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| malformed("signature is not base64url"))?;
        let signing_input = token
            .get(..h64.len() + 1 + p64.len())
            .unwrap_or_default()
            .as_bytes();
        match alg {
            Alg::Hs256 => {
                // The secret only ever verifies HS256, and public keys never do.
                let Some(secret) = &self.secret else {
                    return Err(JwtRejection::AlgNotAllowed(alg.name().to_string()));
                };
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
                ring::hmac::verify(&key, signing_input, &signature)
                    .map_err(|_| JwtRejection::BadSignature)?;
            }
            Alg::Rs256 | Alg::Es256 => {
                let candidates: Vec<&Jwk> = self.keys.iter().filter(|k| k.alg() == alg).collect();
                if candidates.is_empty() {
                    return Err(JwtRejection::AlgNotAllowed(alg.name().to_string()));
                }
                let key = match header.get("kid") {
                    Some(Value::String(kid)) => candidates.iter().find(|k| k.kid.as_deref() == Some(kid)),
                    Some(_) => return Err(malformed("kid is not a string")),
                    None if candidates.len() == 1 => candidates.first(),
                    None => None,
                };
                let Some(key) = key else {
                    return Err(JwtRejection::UnknownKey);
                };
                let verified = match &key.key {
                    PublicKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }.verify(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        signing_input,
                        &signature,
                    ),
                    PublicKey::P256(point) => {
                        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                            .verify(signing_input, &signature)
                    }
                };
                verified.map_err(|_| JwtRejection::BadSignature)?;
            }
        }
        let claims = decode_json_object(p64, "payload")?;
        self.check_claims(&claims, now_unix)?;
        Ok(Claims(claims))
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> std::result::Result<(), JwtRejection> {
        let time = |name: &str| -> std::result::Result<Option<f64>, JwtRejection> {
            match claims.get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(_) => Err(JwtRejection::Malformed(format!("{name} is not a number"))),
            }
        };
        let now = now as f64;
        let leeway = self.leeway as f64;
        match time("exp")? {
            Some(exp) if now > exp + leeway => return Err(JwtRejection::Expired),
            None if self.require_exp => return Err(JwtRejection::MissingExpiry),
            _ => {}
        }
        if let Some(nbf) = time("nbf")?
            && now + leeway < nbf
        {
            return Err(JwtRejection::NotYetValid);
        }
        if let Some(iss) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(iss)
        {
            return Err(JwtRejection::WrongIssuer);
        }
        if let Some(aud) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == aud,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
                _ => false,
            };
            if !ok {
                return Err(JwtRejection::WrongAudience);
            }
        }
        Ok(())
    }
}
