//! The HTTP side: requests with the registry's auth challenge handled, bounded bodies, verified
//! digests. Plain HTTP only for registries named insecure and for loopback (as docker does).

use crate::credentials::{Credential, DockerConfig};
use crate::{Reference, RegistryError, sha256_digest};
use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct MediaTypes;

impl MediaTypes {
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    pub const DOCKER_LIST: &'static str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &'static str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const ALL_MANIFESTS: &'static [&'static str] = &[
        Self::OCI_INDEX,
        Self::OCI_MANIFEST,
        Self::DOCKER_LIST,
        Self::DOCKER_MANIFEST,
    ];
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub docker_config: DockerConfig,
    /// Registries spoken to over plain HTTP (loopback always is).
    pub insecure_registries: Vec<String>,
    /// Extra trusted CA certificates (PEM) for private registries; replaces the public roots.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
    pub max_manifest_bytes: u64,
    pub max_blob_bytes: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            docker_config: DockerConfig::default(),
            insecure_registries: Vec::new(),
            ca_pem: None,
            timeout: Duration::from_secs(60),
            max_manifest_bytes: 4 * 1024 * 1024,
            max_blob_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// A manifest or index as fetched, with its digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        self.media_type == MediaTypes::OCI_INDEX
            || self.media_type == MediaTypes::DOCKER_LIST
            || self.json.get("manifests").is_some_and(Value::is_array)
    }
}

pub struct Client {
    agent: ureq::Agent,
    options: ClientOptions,
    /// Bearer tokens by (registry, scope).
    tokens: Mutex<HashMap<(String, String), String>>,
}

struct Challenge {
    scheme: String,
    params: HashMap<String, String>,
}

/// Parses `Bearer realm="...",service="...",scope="a,b"` (commas inside quotes kept).
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key, value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, RegistryError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .max_redirects(5)
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_pem {
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(RegistryError::Invalid("no certificate in the CA file".into()));
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            config = config.tls_config(tls);
        }
        Ok(Client {
            agent: config.build().into(),
            options,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Streams a plain HTTP(S) GET of `url` into `dest` (OSV archives for `db update`), at most
    /// `limit` bytes, calling `progress(done, total)` as bytes arrive. Unlike registry calls it
    /// has no overall time limit (archives are hundreds of MB), only the agent's connect and
    /// per-read timeouts. Returns the byte count.
    pub fn download(
        &self,
        url: &str,
        dest: &mut dyn std::io::Write,
        limit: u64,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<u64, RegistryError> {
        let err = |message: String| RegistryError::Http {
            url: url.to_string(),
            message,
        };
        let response = self
            .agent
            .get(url)
            .config()
            .timeout_global(None)
            .timeout_recv_body(Some(self.options.timeout))
            .build()
            .call()
            .map_err(|e| err(e.to_string()))?;
        Self::check_status(&response, url, &[200])?;
        let total = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if total.is_some_and(|n| n > limit) {
            return Err(RegistryError::TooLarge {
                what: url.to_string(),
                limit,
            });
        }
        let mut body = response.into_body();
        let mut reader = body.with_config().limit(limit.saturating_add(1)).reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = 0u64;
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf).map_err(|e| err(e.to_string()))?;
            if n == 0 {
                break;
            }
            done += n as u64;
            if done > limit {
                return Err(RegistryError::TooLarge {
                    what: url.to_string(),
                    limit,
                });
            }
            dest.write_all(&buf[..n])
                .map_err(|e| err(format!("cannot write: {e}")))?;
            progress(done, total);
        }
        if total.is_some_and(|t| t != done) {
            return Err(err(format!(
                "body ended after {done} of {} bytes",
                total.unwrap_or(0)
            )));
        }
        Ok(done)
    }

    fn base(&self, registry: &str) -> String {
        let insecure =
            is_loopback(registry) || self.options.insecure_registries.iter().any(|r| r == registry);
        format!("{}://{registry}/v2", if insecure { "http" } else { "https" })
    }

    fn credential(&self, reference: &Reference) -> Option<&Credential> {
        self.options.docker_config.get(reference.auth_key())
    }

    /// Fetches a bearer token for `scope` from the challenge's realm.
    fn token(
        &self,
        reference: &Reference,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let realm = challenge.params.get("realm").ok_or_else(|| RegistryError::Auth {
            url: reference.registry.clone(),
            message: "Bearer challenge without realm".into(),
        })?;
        if !(realm.starts_with("https://") || (realm.starts_with("http://") && is_loopback_url(realm))) {
            return Err(RegistryError::Auth {
                url: realm.clone(),
                message: "token realm must be https (or loopback http)".into(),
            });
        }
        let url = token_url(realm, scope, challenge.params.get("service").map(String::as_str));
        let mut request = self.agent.get(&url);
        match self.credential(reference) {
            Some(Credential::Basic { username, password }) => {
                request = request.header("Authorization", basic_header(username, password));
            }
            Some(Credential::IdentityToken(_)) | None => {}
        }
        let response = request.call().map_err(|e| RegistryError::Http {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map_err(|e| RegistryError::Http {
                url: url.clone(),
                message: e.to_string(),
            })?;
        if status != 200 {
            return Err(RegistryError::Auth {
                url,
                message: format!("token endpoint answered HTTP {status}"),
            });
        }
        let json: Value = serde_json::from_slice(&body).map_err(|e| RegistryError::Auth {
            url: url.clone(),
            message: format!("token response: {e}"),
        })?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(RegistryError::Auth {
                url,
                message: "token response without token".into(),
            })
    }

    /// Sends a request, answering one auth challenge. `scope` is `repository:NAME:pull[,push]`.
    fn send(
        &self,
        method: &str,
        url: &str,
        reference: &Reference,
        scope: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
        let key = (reference.registry.clone(), scope.to_string());
        let mut auth: Option<String> = self
            .tokens
            .lock()
            .ok()
            .and_then(|t| t.get(&key).map(|t| format!("Bearer {t}")));
        for attempt in 0..2 {
            let response = self.raw(method, url, headers, auth.as_deref(), body)?;
            let header = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if response.status().as_u16() != 401 || attempt == 1 {
                if response.status().as_u16() == 401 {
                    return Err(RegistryError::Auth {
                        url: url.to_string(),
                        message: refusal(scope, reference, self.credential(reference), header),
                    });
                }
                return Ok(response);
            }
            let challenge = parse_challenge(header).ok_or_else(|| RegistryError::Auth {
                url: url.to_string(),
                message: "HTTP 401 without a WWW-Authenticate challenge".into(),
            })?;
            auth = Some(match challenge.scheme.as_str() {
                "bearer" => {
                    let token = self.token(reference, &challenge, scope)?;
                    if let Ok(mut tokens) = self.tokens.lock() {
                        tokens.insert(key.clone(), token.clone());
                    }
                    format!("Bearer {token}")
                }
                "basic" => match self.credential(reference) {
                    Some(Credential::Basic { username, password }) => basic_header(username, password),
                    _ => {
                        return Err(RegistryError::Auth {
                            url: url.to_string(),
                            message: format!(
                                "registry wants basic auth and {} has no credentials for it",
                                "docker config"
                            ),
                        });
                    }
                },
                other => {
                    return Err(RegistryError::Auth {
                        url: url.to_string(),
                        message: format!("unsupported auth scheme {other:?}"),
                    });
                }
            });
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
        let err = |e: ureq::Error| RegistryError::Http {
            url: url.to_string(),
            message: e.to_string(),
        };
        macro_rules! with_headers {
            ($req:expr) => {{
                let mut req = $req;
                for (k, v) in headers {
                    req = req.header(*k, v.as_str());
                }
                if let Some(a) = auth {
                    req = req.header("Authorization", a);
                }
                req
            }};
        }
        match method {
            "GET" => with_headers!(self.agent.get(url)).call().map_err(err),
            "HEAD" => with_headers!(self.agent.head(url)).call().map_err(err),
            "POST" => with_headers!(self.agent.post(url))
                .send(body.unwrap_or_default())
                .map_err(err),
            "PUT" => with_headers!(self.agent.put(url))
                .send(body.unwrap_or_default())
                .map_err(err),
            other => Err(RegistryError::Invalid(format!("unsupported method {other}"))),
        }
    }

    fn read_limited(
        response: ureq::http::Response<ureq::Body>,
        url: &str,
        what: &str,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > limit)
        {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        let body = response
            .into_body()
            .with_config()
            .limit(limit + 1)
            .read_to_vec()
            .map_err(|e| RegistryError::Http {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        if body.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        Ok(body)
    }

    fn check_status(
        response: &ureq::http::Response<ureq::Body>,
        url: &str,
        ok: &[u16],
    ) -> Result<(), RegistryError> {
        let status = response.status().as_u16();
        if ok.contains(&status) {
            Ok(())
        } else {
            Err(RegistryError::Status {
                url: url.to_string(),
                status,
                detail: String::new(),
            })
        }
    }

    /// Fetches the manifest (or index) the reference names; a pinned digest is verified.
    pub fn get_manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        let url = format!(
            "{}/{}/manifests/{}",
            self.base(&reference.registry),
            reference.repository,
            reference.manifest_reference()
        );
        let scope = format!("repository:{}:pull", reference.repository);
        let accept = MediaTypes::ALL_MANIFESTS.join(", ");
        let response = self.send("GET", &url, reference, &scope, &[("Accept", accept)], None)?;
        Self::check_status(&response, &url, &[200])?;
        let header_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = Self::read_limited(response, &url, "manifest", self.options.max_manifest_bytes)?;
        let digest = sha256_digest(&bytes);
        if let Some(expected) = &reference.digest
            && *expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {reference}"),
                expected: expected.clone(),
                actual: digest,
            });
        }
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Invalid(format!("manifest {reference}: {e}")))?;
        let media_type = json
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(header_type.map(|t| t.split(';').next().unwrap_or("").trim().to_string()))
            .unwrap_or_default();
        Ok(Manifest {
            media_type,
            digest,
            bytes,
            json,
        })
    }

    /// For an index, the manifest for `platform` (`os/arch[/variant]`); a manifest is returned as is.
    pub fn resolve_platform(
        &self,
        reference: &Reference,
        manifest: Manifest,
        platform: &str,
    ) -> Result<Manifest, RegistryError> {
        if !manifest.is_index() {
            return Ok(manifest);
        }
        let mut parts = platform.split('/');
        let (os, arch, variant) = (
            parts.next().unwrap_or("linux"),
            parts.next().unwrap_or("amd64"),
            parts.next(),
        );
        let entries = manifest
            .json
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let chosen = entries.iter().find(|m| {
            let p = m.get("platform");
            let s = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_str);
            s("os") == Some(os)
                && s("architecture") == Some(arch)
                && variant.is_none_or(|v| s("variant") == Some(v))
        });
        let Some(digest) = chosen.and_then(|m| m.get("digest")).and_then(Value::as_str) else {
            let available: Vec<String> = entries
                .iter()
                .filter_map(|m| m.get("platform"))
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.get("os").and_then(Value::as_str).unwrap_or("?"),
                        p.get("architecture").and_then(Value::as_str).unwrap_or("?")
                    )
                })
                .collect();
            return Err(RegistryError::Invalid(format!(
                "{reference} has no {platform} image (has: {})",
                available.join(", ")
            )));
        };
        self.get_manifest(&reference.with_digest(digest))
    }

    /// Fetches a blob, verifying its digest.
    pub fn get_blob(
        &self,
        reference: &Reference,
        digest: &str,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = format!(
            "{}/{}/blobs/{digest}",
            self.base(&reference.registry),
            reference.repository
        );
        let scope = format!("repository:{}:pull", reference.repository);
        let response = self.send("GET", &url, reference, &scope, &[], None)?;
        Self::check_status(&response, &url, &[200])?;
        let bytes = Self::read_limited(
            response,
            &url,
            &format!("blob {digest}"),
            limit.min(self.options.max_blob_bytes),
        )?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("blob of {reference}"),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob into `out`, verifying its digest and size limit as it goes (layers can be
    /// larger than memory should hold).
    pub fn download_blob(
        &self,
        reference: &Reference,
        digest: &str,
        limit: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, RegistryError> {
        use sha2::Digest;
        use std::io::Read;
        let url = format!(
            "{}/{}/blobs/{digest}",
            self.base(&reference.registry),
            reference.repository
        );
        let scope = format!("repository:{}:pull", reference.repository);
        let response = self.send("GET", &url, reference, &scope, &[], None)?;
        Self::check_status(&response, &url, &[200])?;
        let limit = limit.min(self.options.max_blob_bytes);
        let io_err = |e: std::io::Error| RegistryError::Http {
            url: url.clone(),
            message: e.to_string(),
        };
        let mut body = response.into_body();
        let mut reader = body.with_config().limit(limit.saturating_add(1)).reader();
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limit {
                return Err(RegistryError::TooLarge {
                    what: format!("blob {digest}"),
                    limit,
                });
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err)?;
        }
        let actual: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if format!("sha256:{actual}") != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("blob of {reference}"),
                expected: digest.to_string(),
                actual: format!("sha256:{actual}"),
            });
        }
        Ok(total)
    }

    /// Pulls the image `reference` names (for `platform` when it is an index) into an OCI image
    /// layout directory `dir` (which must exist and be empty): `oci-layout`, `index.json` and the
    /// manifest, config and layer blobs. Returns the digest the reference names (an index's, when it
    /// names one) and the platform manifest's digest.
    pub fn pull_to_layout(
        &self,
        reference: &Reference,
        platform: &str,
        dir: &std::path::Path,
    ) -> Result<(String, String), RegistryError> {
        self.pull_to_layout_with_progress(reference, platform, dir, &mut |_, _| {})
    }

    /// [`Client::pull_to_layout`], calling `progress(done, total)` with the bytes of config and
    /// layer blobs downloaded so far and the sum of their sizes from the manifest.
    pub fn pull_to_layout_with_progress(
        &self,
        reference: &Reference,
        platform: &str,
        dir: &std::path::Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(String, String), RegistryError> {
        let io = |e: std::io::Error| RegistryError::Invalid(format!("{}: {e}", dir.display()));
        let top = self.get_manifest(reference)?;
        let top_digest = top.digest.clone();
        let manifest = self.resolve_platform(reference, top, platform)?;
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io)?;
        let blob_path = |digest: &str| -> Result<std::path::PathBuf, RegistryError> {
            let hex = digest
                .strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            hex.map(|h| blobs.join(h))
                .ok_or_else(|| RegistryError::Invalid(format!("unsupported digest {digest:?}")))
        };
        std::fs::write(blob_path(&manifest.digest)?, &manifest.bytes).map_err(io)?;
        let mut wanted = Vec::new();
        let mut total = 0u64;
        if let Some(config) = manifest.json.pointer("/config/digest").and_then(Value::as_str) {
            wanted.push((config.to_string(), self.options.max_manifest_bytes));
            total += manifest
                .json
                .pointer("/config/size")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
        for layer in manifest
            .json
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(d) = layer.get("digest").and_then(Value::as_str) {
                wanted.push((d.to_string(), self.options.max_blob_bytes));
                total = total.saturating_add(layer.get("size").and_then(Value::as_u64).unwrap_or(0));
            }
        }
        let mut done = 0u64;
        for (digest, limit) in wanted {
            let path = blob_path(&digest)?;
            if path.exists() {
                continue; // the same blob twice in one image
            }
            let partial = path.with_extension("partial");
            let file = std::fs::File::create(&partial).map_err(io)?;
            let mut counting = CountingWriter {
                inner: file,
                done: &mut done,
                total,
                progress: &mut *progress,
            };
            self.download_blob(reference, &digest, limit, &mut counting)?;
            std::fs::rename(&partial, &path).map_err(io)?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
        let media_type = if manifest.media_type.is_empty() {
            MediaTypes::OCI_MANIFEST.to_string()
        } else {
            manifest.media_type.clone()
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MediaTypes::OCI_INDEX,
            "manifests": [{"mediaType": media_type, "digest": manifest.digest, "size": manifest.bytes.len(),
                           "annotations": {"org.opencontainers.image.ref.name": reference.to_string()}}]
        });
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap_or_default(),
        )
        .map_err(io)?;
        Ok((top_digest, manifest.digest))
    }

    /// Uploads a blob (monolithic POST + PUT); returns its digest.
    pub fn put_blob(&self, reference: &Reference, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = sha256_digest(bytes);
        let base = self.base(&reference.registry);
        let scope = format!("repository:{}:pull,push", reference.repository);
        let url = format!("{base}/{}/blobs/uploads/", reference.repository);
        let response = self.send("POST", &url, reference, &scope, &[], Some(&[]))?;
        Self::check_status(&response, &url, &[202])?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Invalid("upload without Location".into()))?
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", base.trim_end_matches("/v2"))
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={}", urlencode(&digest));
        let headers = [("Content-Type", "application/octet-stream".to_string())];
        let response = self.send("PUT", &put_url, reference, &scope, &headers, Some(bytes))?;
        Self::check_status(&response, &put_url, &[201])?;
        Ok(digest)
    }

    /// Uploads a manifest under the reference's tag (or digest); returns its digest.
    pub fn put_manifest(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let url = format!(
            "{}/{}/manifests/{}",
            self.base(&reference.registry),
            reference.repository,
            reference.manifest_reference()
        );
        let scope = format!("repository:{}:pull,push", reference.repository);
        let headers = [("Content-Type", media_type.to_string())];
        let response = self.send("PUT", &url, reference, &scope, &headers, Some(bytes))?;
        Self::check_status(&response, &url, &[201])?;
        Ok(sha256_digest(bytes))
    }
}

/// Why the registry still answered 401 with the token or credentials it asked for. A token server
/// commonly grants an anonymous or under-privileged user a token without the access asked for, so
/// the registry, not the token server, is the one that says no; say who asked and what for.
fn refusal(scope: &str, reference: &Reference, credential: Option<&Credential>, challenge: &str) -> String {
    let who = match credential {
        Some(Credential::Basic { username, .. }) => format!("user {username:?}"),
        Some(Credential::IdentityToken(_)) | None => format!(
            "anonymous (no username and password for {} in the docker config)",
            reference.auth_key()
        ),
    };
    let reason = parse_challenge(challenge)
        .and_then(|c| c.params.get("error").cloned())
        .map(|e| format!(", registry says {e:?}"))
        .unwrap_or_default();
    format!("HTTP 401: {who} is not granted {scope}{reason}")
}

/// The token request: `scope` and `service` added to the realm, which may carry a query of its own
/// (distribution lets the realm be any URL).
fn token_url(realm: &str, scope: &str, service: Option<&str>) -> String {
    let separator = match realm.find('?') {
        None => "?",
        Some(at) if at + 1 == realm.len() || realm.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut url = format!("{realm}{separator}scope={}", urlencode(scope));
    if let Some(service) = service {
        url.push_str(&format!("&service={}", urlencode(service)));
    }
    url
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    is_loopback(rest.split('/').next().unwrap_or(""))
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Reports the bytes written through it, for download progress.
struct CountingWriter<'a, W> {
    inner: W,
    done: &'a mut u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<W: std::io::Write> std::io::Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.done += n as u64;
        (self.progress)(*self.done, self.total);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#).unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["scope"], "repository:library/nginx:pull,push");
        let c = parse_challenge("Basic realm=Registry").unwrap();
        assert_eq!(
            (c.scheme.as_str(), c.params["realm"].as_str()),
            ("basic", "Registry")
        );
        assert!(parse_challenge("").unwrap().params.is_empty());
    }

    #[test]
    fn refusals_say_who_asked_for_what() {
        let reference = Reference::parse("registry.example/private/app:1.0").unwrap();
        let challenge = r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:private/app:pull",error="insufficient_scope""#;
        assert_eq!(
            refusal("repository:private/app:pull", &reference, None, challenge),
            "HTTP 401: anonymous (no username and password for registry.example in the docker config) \
             is not granted repository:private/app:pull, registry says \"insufficient_scope\""
        );
        let bob = Credential::Basic {
            username: "bob".into(),
            password: "s3cret".into(),
        };
        assert_eq!(
            refusal("repository:private/app:pull,push", &reference, Some(&bob), ""),
            "HTTP 401: user \"bob\" is not granted repository:private/app:pull,push"
        );
    }

    #[test]
    fn token_urls_keep_the_realms_query() {
        let scope = "repository:a/b:pull";
        assert_eq!(
            token_url("https://auth.example/token", scope, Some("reg")),
            "https://auth.example/token?scope=repository%3Aa%2Fb%3Apull&service=reg"
        );
        assert_eq!(
            token_url("https://auth.example/token?tenant=t1", scope, None),
            "https://auth.example/token?tenant=t1&scope=repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(
            token_url("https://auth.example/token?", scope, None),
            "https://auth.example/token?scope=repository%3Aa%2Fb%3Apull"
        );
    }

    #[test]
    fn loopback_is_plain_http() {
        let client = Client::new(ClientOptions::default()).unwrap();
        assert!(client.base("127.0.0.1:5000").starts_with("http://"));
        assert!(client.base("ghcr.io").starts_with("https://"));
        assert_eq!(urlencode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }
}
