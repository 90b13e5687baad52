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
const MAX_RSA_MODULUS_BYTES: usize = 1024;
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
#[derive(Clone)]
pub struct JwtVerifier {
    secret: Option<Vec<u8>>,
    keys: Vec<Jwk>,
    leeway: u64,
    issuer: Option<String>,
    audience: Option<String>,
    require_exp: bool,
    warnings: Vec<String>,
}

// By hand, so that the secret never reaches a log.
impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("hs256_secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| (k.alg().name(), k.kid.as_deref()))
                    .collect::<Vec<_>>(),
            )
            .field("leeway", &self.leeway)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("require_exp", &self.require_exp)
            .finish()
    }
}

/// Configuration of a [`JwtVerifier`] (its `Debug` shows no secret either).
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
            if n_len > MAX_RSA_MODULUS_BYTES {
                return Err(Skip("RSA modulus longer than 8192 bits".into()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    };
    use serde_json::json;

    const RSA_PKCS8: &[u8] = include_bytes!("../../tests/fixtures/api/rsa-test-key.pk8.der");
    const NOW: u64 = 1_800_000_000;
    const SECRET: &[u8] = b"a shared secret of reasonable length";

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    fn token(header: &Value, claims: &Value, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    fn hs256(secret: &'static [u8]) -> impl Fn(&[u8]) -> Vec<u8> {
        move |m| {
            ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), m)
                .as_ref()
                .to_vec()
        }
    }

    fn claims() -> Value {
        json!({"sub": "user-7", "iss": "https://idp.example", "aud": ["api", "other"], "exp": NOW + 300, "nbf": NOW - 10, "tenant": 42})
    }

    struct Keys {
        rsa: RsaKeyPair,
        ec: EcdsaKeyPair,
        jwks: String,
    }

    fn keys() -> Keys {
        let rng = SystemRandom::new();
        let rsa = RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = ec.public_key().as_ref();
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": b64(&components.n), "e": b64(&components.e)},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AA"}
        ]});
        Keys {
            rsa,
            ec,
            jwks: jwks.to_string(),
        }
    }

    fn rs256(k: &RsaKeyPair, m: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; k.public().modulus_len()];
        k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), m, &mut sig)
            .unwrap();
        sig
    }

    fn es256(k: &EcdsaKeyPair, m: &[u8]) -> Vec<u8> {
        k.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()
    }

    fn jwks_verifier(k: &Keys) -> JwtVerifier {
        JwtVerifier::builder()
            .jwks(k.jwks.as_bytes(), "jwks.json")
            .unwrap()
            .issuer("https://idp.example")
            .audience("api")
            .build()
            .unwrap()
    }

    #[test]
    fn hs256_round_trip_and_claims() {
        let v = JwtVerifier::builder().hs256_secret(SECRET).build().unwrap();
        let t = token(&json!({"alg": "HS256", "typ": "JWT"}), &claims(), &hs256(SECRET));
        let c = v.verify(&t, NOW).unwrap();
        assert_eq!(c.subject(), Some("user-7"));
        assert_eq!(c.key("tenant").as_deref(), Some("42"));
        assert_eq!(c.key("aud"), None);
        assert_eq!(c.get("iss"), Some(&json!("https://idp.example")));
        let other = token(&json!({"alg": "HS256"}), &claims(), &hs256(b"another secret"));
        assert_eq!(v.verify(&other, NOW), Err(JwtRejection::BadSignature));
        // HS256 is never checked against the JWKS keys, RS256/ES256 never against the secret.
        let k = keys();
        let rs = token(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims(), &|m| {
            rs256(&k.rsa, m)
        });
        assert_eq!(
            v.verify(&rs, NOW),
            Err(JwtRejection::AlgNotAllowed("RS256".into()))
        );
    }

    #[test]
    fn rs256_and_es256_with_jwks() {
        let k = keys();
        let v = jwks_verifier(&k);
        assert_eq!(v.warnings().len(), 2, "{:?}", v.warnings());
        let rs = token(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims(), &|m| {
            rs256(&k.rsa, m)
        });
        assert_eq!(v.verify(&rs, NOW).unwrap().subject(), Some("user-7"));
        let es = token(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(), &|m| {
            es256(&k.ec, m)
        });
        assert!(v.verify(&es, NOW).is_ok());
        // Without a kid, the only key of the right type is used.
        let es = token(&json!({"alg": "ES256"}), &claims(), &|m| es256(&k.ec, m));
        assert!(v.verify(&es, NOW).is_ok());
        let wrong_kid = token(&json!({"alg": "RS256", "kid": "rsa-2"}), &claims(), &|m| {
            rs256(&k.rsa, m)
        });
        assert_eq!(v.verify(&wrong_kid, NOW), Err(JwtRejection::UnknownKey));
        // The kid of a key of the other type.
        let crossed = token(&json!({"alg": "ES256", "kid": "rsa-1"}), &claims(), &|m| {
            es256(&k.ec, m)
        });
        assert_eq!(v.verify(&crossed, NOW), Err(JwtRejection::UnknownKey));
    }

    #[test]
    fn tampering_is_detected() {
        let k = keys();
        let v = jwks_verifier(&k);
        let t = token(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims(), &|m| {
            rs256(&k.rsa, m)
        });
        let parts: Vec<&str> = t.split('.').collect();
        let mut forged = claims();
        forged["sub"] = json!("admin");
        let swapped = format!("{}.{}.{}", parts[0], b64(forged.to_string().as_bytes()), parts[2]);
        assert_eq!(v.verify(&swapped, NOW), Err(JwtRejection::BadSignature));
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[10] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
        assert_eq!(v.verify(&flipped, NOW), Err(JwtRejection::BadSignature));
        let es = token(&json!({"alg": "ES256"}), &claims(), &|m| es256(&k.ec, m));
        let (input, sig) = es.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let truncated = format!("{input}.{}", b64(&sig[..63]));
        assert_eq!(v.verify(&truncated, NOW), Err(JwtRejection::BadSignature));
    }

    #[test]
    fn alg_none_and_alg_confusion() {
        let k = keys();
        let v = jwks_verifier(&k);
        for alg in ["none", "None", "NONE"] {
            let t = format!(
                "{}.{}.",
                b64(json!({"alg": alg}).to_string().as_bytes()),
                b64(claims().to_string().as_bytes())
            );
            assert_eq!(v.verify(&t, NOW), Err(JwtRejection::AlgNone));
        }
        // The classic confusion: HS256 "signed" with the RSA public key as the HMAC secret.
        let public: &'static [u8] = Vec::leak(k.rsa.public().as_ref().to_vec());
        let confused = token(
            &json!({"alg": "HS256", "kid": "rsa-1"}),
            &claims(),
            &hs256(public),
        );
        assert_eq!(
            v.verify(&confused, NOW),
            Err(JwtRejection::AlgNotAllowed("HS256".into()))
        );
        // With a secret configured as well, the public key still is not the secret.
        let both = JwtVerifier::builder()
            .hs256_secret(SECRET)
            .jwks(k.jwks.as_bytes(), "jwks.json")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(both.verify(&confused, NOW), Err(JwtRejection::BadSignature));
        let rs = token(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims(), &|m| {
            rs256(&k.rsa, m)
        });
        assert!(both.verify(&rs, NOW).is_ok());
        let other = token(&json!({"alg": "PS256", "kid": "rsa-1"}), &claims(), &|m| {
            rs256(&k.rsa, m)
        });
        assert_eq!(
            v.verify(&other, NOW),
            Err(JwtRejection::AlgNotAllowed("PS256".into()))
        );
    }

    #[test]
    fn time_issuer_and_audience() {
        let v = JwtVerifier::builder()
            .hs256_secret(SECRET)
            .issuer("https://idp.example")
            .audience("api")
            .leeway_seconds(30)
            .build()
            .unwrap();
        let with = |patch: Value| {
            let mut c = claims();
            for (key, value) in patch.as_object().unwrap() {
                if value.is_null() {
                    c.as_object_mut().unwrap().remove(key);
                } else {
                    c[key] = value.clone();
                }
            }
            v.verify(&token(&json!({"alg": "HS256"}), &c, &hs256(SECRET)), NOW)
        };
        assert!(with(json!({})).is_ok());
        assert_eq!(with(json!({"exp": NOW - 31})), Err(JwtRejection::Expired));
        assert!(with(json!({"exp": NOW - 29})).is_ok(), "within the leeway");
        assert_eq!(with(json!({"exp": null})), Err(JwtRejection::MissingExpiry));
        assert!(matches!(
            with(json!({"exp": "soon"})),
            Err(JwtRejection::Malformed(_))
        ));
        assert_eq!(with(json!({"nbf": NOW + 31})), Err(JwtRejection::NotYetValid));
        assert!(with(json!({"nbf": NOW + 29})).is_ok());
        assert_eq!(
            with(json!({"iss": "https://evil.example"})),
            Err(JwtRejection::WrongIssuer)
        );
        assert_eq!(with(json!({"iss": null})), Err(JwtRejection::WrongIssuer));
        assert_eq!(with(json!({"aud": "other"})), Err(JwtRejection::WrongAudience));
        assert!(with(json!({"aud": "api"})).is_ok());
        assert_eq!(with(json!({"aud": [1, "x"]})), Err(JwtRejection::WrongAudience));
        let lax = JwtVerifier::builder()
            .hs256_secret(SECRET)
            .require_exp(false)
            .build()
            .unwrap();
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert!(
            lax.verify(&token(&json!({"alg": "HS256"}), &c, &hs256(SECRET)), NOW)
                .is_ok()
        );
    }

    #[test]
    fn malformed_tokens() {
        let v = JwtVerifier::builder().hs256_secret(SECRET).build().unwrap();
        let good = token(&json!({"alg": "HS256"}), &claims(), &hs256(SECRET));
        let long = format!("{good}{}", "A".repeat(MAX_TOKEN_BYTES));
        let header = b64(br#"{"alg":"HS256"}"#);
        let bad = [
            "",
            "abc",
            "a.b",
            "a.b.c.d.e",
            "!!!.e30.AAAA",
            &format!("{}.e30.AAAA", b64(b"not json")),
            &format!("{}.e30.AAAA", b64(b"[1]")),
            &format!("{}.e30.AAAA", b64(br#"{"typ":"JWT"}"#)),
            &format!("{}.e30.AAAA", b64(br#"{"alg":"HS256","crit":["x"]}"#)),
            &format!("{header}.e30.%%%"),
            &long,
        ];
        for t in bad {
            assert!(
                matches!(v.verify(t, NOW), Err(JwtRejection::Malformed(_))),
                "{t:.40}: {:?}",
                v.verify(t, NOW)
            );
        }
        // A valid signature over a payload that is not an object.
        let input = format!("{header}.{}", b64(b"42"));
        let sig = hs256(SECRET)(input.as_bytes());
        assert!(matches!(
            v.verify(&format!("{input}.{}", b64(&sig)), NOW),
            Err(JwtRejection::Malformed(_))
        ));
        assert_eq!(JwtRejection::Expired.code(), "jwt.expired");
    }

    #[test]
    fn jwks_and_builder_errors() {
        let err = |doc: &str| {
            JwtVerifier::builder()
                .jwks(doc.as_bytes(), "k.json")
                .err()
                .map(|e| e.to_string())
        };
        assert!(err("nope").unwrap().contains("invalid JSON"));
        assert!(err("{}").unwrap().contains("/keys"));
        assert!(
            err(r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#)
                .unwrap()
                .contains("no usable")
        );
        assert!(err(r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}"#).is_some());
        assert!(JwtVerifier::builder().build().is_err());
        assert!(JwtVerifier::builder().hs256_secret(b"").build().is_err());
        let v = JwtVerifier::builder()
            .hs256_secret(b"hunter2-but-longer")
            .build()
            .unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
        assert!(!format!("{:?}", JwtVerifier::builder().hs256_secret(b"hunter2")).contains("hunter2"));
        assert_eq!(bearer_token(b"Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token(b"bearer  x "), Some("x"));
        assert_eq!(bearer_token(b"Basic dXNlcg=="), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"\xff"), None);
    }
}
