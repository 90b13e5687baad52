//! Helpers shared by the end-to-end tests of the servers.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` (raw bytes) over TLS to `addr`, verifying the server against `ca_pem` as
/// `localhost`, and returns everything the server sent until it closed the connection.
pub async fn https_exchange(addr: &str, ca_pem: &[u8], request: &[u8]) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tls_connector(ca_pem, &[]).connect(name, tcp).await.unwrap();
    // The server may answer and close before taking all of an oversized request; what it
    // answered is what counts.
    let _ = tls.write_all(request).await;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).to_string()
}

/// A TLS client trusting `ca_pem`, offering `alpn` protocols.
pub fn tls_connector(ca_pem: &[u8], alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem) {
        let cert: rustls_pki_types::CertificateDer<'static> = cert.unwrap();
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}
