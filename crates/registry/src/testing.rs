//! A real OCI registry on loopback for tests: Debian's `docker-registry` (distribution 2.8) with its
//! storage in a temporary directory, stopped when dropped. Tests that need it skip loudly when the
//! package is missing (`scripts/test.sh` installs it). Either open to all, or behind token auth
//! with a token server the test runs itself.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalRegistry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl LocalRegistry {
    /// Starts a registry on a free port; `None` (with a message) when docker-registry is not installed.
    pub fn start() -> Option<LocalRegistry> {
        Self::start_with_auth("")
    }

    /// Starts a registry that accepts only bearer tokens (JWTs) from `issuer` for `service`, signed
    /// by the key of the certificate in `root_cert_pem` (a file); clients without a token are sent
    /// to `realm`. The token carries the certificate in its `x5c` header, which distribution 2.8
    /// and 3 both check against this bundle.
    pub fn start_with_token_auth(
        realm: &str,
        issuer: &str,
        service: &str,
        root_cert_pem: &std::path::Path,
    ) -> Option<LocalRegistry> {
        // JSON strings are valid YAML scalars, so any realm or path is quoted safely.
        let quote = |s: &str| serde_json::Value::from(s).to_string();
        Self::start_with_auth(&format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            quote(realm),
            quote(service),
            quote(issuer),
            quote(&root_cert_pem.display().to_string())
        ))
    }

    /// `auth` is the config's `auth:` section, empty for none.
    fn start_with_auth(auth: &str) -> Option<LocalRegistry> {
        let binary = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            eprintln!("!!! SKIPPED: docker-registry is not installed (scripts/test.sh installs it) !!!");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("palisade-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let config = dir.join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("data").display()
        );
        std::fs::write(&config, yaml).ok()?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            if started.elapsed() > Duration::from_secs(15) {
                eprintln!("!!! docker-registry did not start on {addr} !!!");
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(LocalRegistry { child, dir, addr })
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Pushes an OCI image layout directory (its first manifest) to a registry under `reference`.
pub fn push_layout(
    layout: &std::path::Path,
    client: &crate::Client,
    reference: &crate::Reference,
) -> Result<String, String> {
    let blob = |digest: &str| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .map_err(|e| e.to_string())
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let manifest_digest = index
        .pointer("/manifests/0/digest")
        .and_then(|d| d.as_str())
        .ok_or("no manifest in index.json")?;
    let manifest_bytes = blob(manifest_digest)?;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).map_err(|e| e.to_string())?;
    let config = manifest
        .pointer("/config/digest")
        .and_then(|d| d.as_str())
        .ok_or("manifest without config")?;
    client
        .put_blob(reference, &blob(config)?)
        .map_err(|e| e.to_string())?;
    for layer in manifest
        .get("layers")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        let digest = layer
            .get("digest")
            .and_then(|d| d.as_str())
            .ok_or("layer without digest")?;
        client
            .put_blob(reference, &blob(digest)?)
            .map_err(|e| e.to_string())?;
    }
    client
        .put_manifest(reference, &manifest_bytes, crate::MediaTypes::OCI_MANIFEST)
        .map_err(|e| e.to_string())
}
