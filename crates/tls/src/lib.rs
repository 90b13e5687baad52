//! Serving certificates: from PEM files, reloaded when they change on disk (cert-manager and
//! Secret volume updates rotate them under a running server), or generated at start as a private
//! CA plus a serving certificate whose CA bundle the webhook configuration needs. Shared by every
//! TLS server of palisade (the admission webhook, the WAF proxy).

/// The one error of this crate: what went wrong, with the file or field concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS: {0}")]
    Config(String),
    #[error("certificate generation: {0}")]
    CertGen(#[from] rcgen::Error),
}
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// A CA and a serving certificate made at start (`--self-signed`).
pub struct SelfSigned {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl SelfSigned {
    /// Generates a CA and a serving certificate for `dns_names` (and any IP addresses among them).
    pub fn generate(dns_names: &[String]) -> Result<SelfSigned, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "palisade admission CA");
        ca_params.distinguished_name = dn;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(dns_names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            dns_names.first().cloned().unwrap_or_else(|| "palisade".into()),
        );
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&server_key, &issuer)?;
        Ok(SelfSigned {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: server_key.serialize_pem(),
        })
    }

    /// The CA bundle as the webhook configuration's `caBundle` wants it: base64 of the PEM.
    pub fn ca_bundle(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }
}

/// Parses a PEM certificate chain and private key into a rustls certified key.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Config(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Config("no certificate in the certificate file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsError::Config(format!("private key PEM: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(certs, key, &provider)
        .map_err(|e| TlsError::Config(format!("key does not fit: {e}")))
}

/// Serves the certificate from two files and picks up new contents within a second of a change.
#[derive(Debug)]
pub struct ReloadingResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    state: RwLock<ReloadState>,
}

#[derive(Debug)]
struct ReloadState {
    key: Arc<CertifiedKey>,
    stamp: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(1);

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| TlsError::Config(format!("{}: {e}", p.display())));
    certified_key(&read(cert_path)?, &read(key_path)?)
}

impl ReloadingResolver {
    pub fn new(cert_path: PathBuf, key_path: PathBuf) -> Result<ReloadingResolver, TlsError> {
        let key = Arc::new(load(&cert_path, &key_path)?);
        let stamp = (modified(&cert_path), modified(&key_path));
        Ok(ReloadingResolver {
            cert_path,
            key_path,
            state: RwLock::new(ReloadState {
                key,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        {
            let state = self.state.read().ok()?;
            if state.checked.elapsed() < RELOAD_CHECK_EVERY {
                return Some(state.key.clone());
            }
        }
        let mut state = self.state.write().ok()?;
        state.checked = Instant::now();
        let stamp = (modified(&self.cert_path), modified(&self.key_path));
        if stamp != state.stamp {
            // A half-written pair fails to load: keep serving the old one and try again later.
            match load(&self.cert_path, &self.key_path) {
                Ok(key) => {
                    state.key = Arc::new(key);
                    state.stamp = stamp;
                    eprintln!(
                        "palisade admission: reloaded certificate from {}",
                        self.cert_path.display()
                    );
                }
                Err(e) => {
                    eprintln!("palisade admission: certificate reload failed, keeping the old one: {e}")
                }
            }
        }
        Some(state.key.clone())
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// A fixed certificate (the self-signed one).
#[derive(Debug)]
pub struct FixedResolver(pub Arc<CertifiedKey>);

impl ResolvesServerCert for FixedResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A rustls server configuration (HTTP/1.1 and HTTP/2 by ALPN) around a certificate resolver.
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_loads() {
        let s = SelfSigned::generate(&["palisade.palisade.svc".into(), "127.0.0.1".into()]).unwrap();
        assert!(s.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        certified_key(s.cert_pem.as_bytes(), s.key_pem.as_bytes()).unwrap();
        assert!(certified_key(s.cert_pem.as_bytes(), b"garbage").is_err());
        assert!(certified_key(b"", s.key_pem.as_bytes()).is_err());
    }

    #[test]
    fn reloads_changed_files_and_keeps_old_on_error() {
        let dir = std::env::temp_dir().join(format!("palisade-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        let first = SelfSigned::generate(&["a.example".into()]).unwrap();
        std::fs::write(&cert, &first.cert_pem).unwrap();
        std::fs::write(&key, &first.key_pem).unwrap();
        let resolver = ReloadingResolver::new(cert.clone(), key.clone()).unwrap();
        let before = resolver.current().unwrap().cert[0].clone();

        let second = SelfSigned::generate(&["b.example".into()]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&cert, &second.cert_pem).unwrap();
        std::fs::write(&key, &second.key_pem).unwrap();
        resolver.state.write().unwrap().checked = Instant::now() - RELOAD_CHECK_EVERY * 2;
        let after = resolver.current().unwrap().cert[0].clone();
        assert_ne!(before, after, "new certificate served");

        std::fs::write(&key, "broken").unwrap();
        resolver.state.write().unwrap().checked = Instant::now() - RELOAD_CHECK_EVERY * 2;
        assert_eq!(resolver.current().unwrap().cert[0], after, "old certificate kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
