//! Cosign signature verification with a public key: the signatures of image `sha256:X` live in the
//! same repository under the tag `sha256-X.sig`, one "simple signing" payload per layer, each
//! signed (ECDSA P-256, SHA-256, DER, base64 in the layer's `dev.cosignproject.cosign/signature`
//! annotation). The payload must name the image's manifest digest. Pure verification here; the
//! registry client fetches.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use palisade_core::glob::glob_match;
use palisade_core::{Category, Fixtures, Framework, FrameworkRef, RuleMeta, Severity};
use palisade_registry::{Client, Reference};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const PAYLOAD_TYPE: &str = "cosign container image signature";
const MAX_PAYLOAD: u64 = 64 * 1024;
const MAX_SIGNATURES: usize = 32;

pub static IMAGE_SIGNATURE: RuleMeta = RuleMeta {
    id: "admission.image-signature",
    title: "Image not signed with a trusted key",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "An image matching an `admission.images.verify` entry has no cosign signature that verifies \
                  with the configured public key and names the image's digest.",
    rationale: "Signatures prove an image came out of the organisation's pipeline; an unsigned or foreign image \
                is how a compromised registry or a typosquat gets into the cluster (NIST SP 800-190 4.1.5, \
                ATT&CK T1525).",
    remediation: "Sign the image in the build pipeline (`cosign sign --key`), or deploy the signed digest.",
    frameworks: &[
        FrameworkRef::new(Framework::Nist800190, "4.1.5"),
        FrameworkRef::new(Framework::NsaCisa, "Building secure container images"),
        FrameworkRef::new(Framework::MitreAttack, "T1525"),
    ],
    fixtures: Fixtures { pass: &[], fail: &[] },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifyEntry {
    /// Globs over `registry/repository` of the image (`registry.example.com/shop/*`).
    pub images: Vec<String>,
    /// PEM public key (SPKI), inline.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Or a file holding it.
    #[serde(default)]
    pub public_key_file: Option<String>,
}

/// Why a signature check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    NoSignatures,
    NoValidSignature(String),
    Registry(String),
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::NoSignatures => write!(f, "no cosign signatures found"),
            Unverified::NoValidSignature(why) => write!(f, "no signature verifies: {why}"),
            Unverified::Registry(e) => write!(f, "signatures could not be fetched: {e}"),
        }
    }
}

/// Parses a PEM public key (P-256).
pub fn parse_public_key(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| format!("not a P-256 public key in PEM: {e}"))
}

/// Verifies one payload and its base64 signature against the key and the expected image digest.
pub fn verify_payload(
    key: &VerifyingKey,
    payload: &[u8],
    signature_b64: &str,
    image_digest: &str,
) -> Result<(), String> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|e| format!("signature is not base64: {e}"))?;
    let signature = Signature::from_der(&der).map_err(|e| format!("signature is not DER ECDSA: {e}"))?;
    key.verify(payload, &signature)
        .map_err(|_| "signature does not verify with the key".to_string())?;
    let json: Value = serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let critical = json.get("critical");
    if critical.and_then(|c| c.get("type")).and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err("payload is not a cosign container image signature".into());
    }
    let signed_digest = critical
        .and_then(|c| c.pointer("/image/docker-manifest-digest"))
        .and_then(Value::as_str);
    if signed_digest != Some(image_digest) {
        return Err(format!(
            "payload signs {}, not {image_digest}",
            signed_digest.unwrap_or("nothing")
        ));
    }
    Ok(())
}

/// The signature tag of a digest: `sha256:abc` → `sha256-abc.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// A verdict and when it was reached.
type CachedVerdict = (Instant, Result<(), Unverified>);

/// Image signature verification against a registry, with a small result cache.
pub struct ImageVerifier {
    entries: Vec<(Vec<String>, VerifyingKey)>,
    client: Client,
    cache: Mutex<HashMap<(String, usize), CachedVerdict>>,
    ttl: Duration,
}

const CACHE_MAX: usize = 4096;

impl ImageVerifier {
    pub fn new(entries: &[VerifyEntry], client: Client) -> Result<ImageVerifier, String> {
        let mut keyed = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let pem = match (&e.public_key, &e.public_key_file) {
                (Some(pem), _) => pem.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|err| format!("admission.images.verify[{i}]: {path}: {err}"))?,
                (None, None) => {
                    return Err(format!(
                        "admission.images.verify[{i}]: publicKey or publicKeyFile is required"
                    ));
                }
            };
            let key = parse_public_key(&pem).map_err(|err| format!("admission.images.verify[{i}]: {err}"))?;
            if e.images.is_empty() {
                return Err(format!("admission.images.verify[{i}]: `images` is empty"));
            }
            keyed.push((e.images.clone(), key));
        }
        Ok(ImageVerifier {
            entries: keyed,
            client,
            cache: Mutex::new(HashMap::new()),
            ttl: Duration::from_secs(300),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks one image reference; `Ok(None)` when no entry applies to it.
    pub fn check(&self, image: &str) -> Result<Option<()>, Unverified> {
        let Ok(reference) = Reference::parse(image) else {
            return Err(Unverified::Registry(format!("invalid image reference {image:?}")));
        };
        let name = format!("{}/{}", reference.registry, reference.repository);
        let Some(index) = self
            .entries
            .iter()
            .position(|(globs, _)| globs.iter().any(|g| glob_match(g, &name)))
        else {
            return Ok(None);
        };
        let key = (reference.to_string(), index);
        if let Ok(cache) = self.cache.lock()
            && let Some((at, result)) = cache.get(&key)
            && at.elapsed() < self.ttl
        {
            return result.clone().map(Some);
        }
        let result = self.verify(&reference, &self.entries[index].1);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), result.clone()));
        }
        result.map(Some)
    }

    fn verify(&self, reference: &Reference, key: &VerifyingKey) -> Result<(), Unverified> {
        let registry = |e: palisade_registry::RegistryError| Unverified::Registry(e.to_string());
        // What is signed is the digest of what the tag (or digest) names, index or manifest.
        let digest = match &reference.digest {
            Some(d) => d.clone(),
            None => self.client.get_manifest(reference).map_err(registry)?.digest,
        };
        let sig_ref = Reference {
            tag: Some(signature_tag(&digest)),
            digest: None,
            ..reference.clone()
        };
        let manifest = match self.client.get_manifest(&sig_ref) {
            Ok(m) => m,
            Err(palisade_registry::RegistryError::Status { status: 404, .. }) => {
                return Err(Unverified::NoSignatures);
            }
            Err(e) => return Err(registry(e)),
        };
        let layers = manifest
            .json
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut last_error = String::from("no simple-signing layers");
        for layer in layers
            .iter()
            .filter(|l| l.get("mediaType").and_then(Value::as_str) == Some(SIMPLE_SIGNING))
            .take(MAX_SIGNATURES)
        {
            let (Some(blob), Some(signature)) = (
                layer.get("digest").and_then(Value::as_str),
                layer
                    .pointer(&format!(
                        "/annotations/{}",
                        SIGNATURE_ANNOTATION.replace('/', "~1")
                    ))
                    .and_then(Value::as_str),
            ) else {
                continue;
            };
            let payload = match self.client.get_blob(&sig_ref, blob, MAX_PAYLOAD) {
                Ok(p) => p,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            match verify_payload(key, &payload, signature, &digest) {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
        }
        Err(Unverified::NoValidSignature(last_error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    pub(crate) fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    fn payload(digest: &str) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"critical": {"identity": {"docker-reference": "reg/app"},
            "image": {"docker-manifest-digest": digest}, "type": PAYLOAD_TYPE}, "optional": null}),
        )
        .unwrap()
    }

    #[test]
    fn verifies_payloads() {
        use base64::Engine;
        let signer = key(7);
        let pem = signer
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        let verifier = parse_public_key(&pem).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let body = payload(&digest);
        let sig: Signature = signer.sign(&body);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
        assert_eq!(verify_payload(&verifier, &body, &b64, &digest), Ok(()));
        let other = format!("sha256:{}", "b".repeat(64));
        assert!(
            verify_payload(&verifier, &body, &b64, &other)
                .unwrap_err()
                .contains("not sha256:bbb")
        );
        let stranger = parse_public_key(
            &key(9)
                .verifying_key()
                .to_public_key_pem(Default::default())
                .unwrap(),
        )
        .unwrap();
        assert!(verify_payload(&stranger, &body, &b64, &digest).is_err());
        assert!(verify_payload(&verifier, &body, "!!", &digest).is_err());
        assert!(parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
        assert_eq!(signature_tag(&digest), format!("sha256-{}.sig", "a".repeat(64)));
    }
}
