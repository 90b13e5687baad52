//! Cluster sync for Gatekeeper policies: lists the configured kinds from the Kubernetes API
//! (in-cluster service account, or an explicit API address) and hands them to the policy set as
//! `data.inventory` and as the Namespaces `namespaceSelector` needs. Gatekeeper's own sync
//! watches; this relists on an interval, which is simpler and enough for inventory-style checks.
//! A failed list keeps the previous inventory.

use crate::AdmissionError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the API server is and how to authenticate.
pub struct KubeApi {
    base: String,
    /// Read again for every list: projected service-account tokens expire and the kubelet
    /// replaces the file before they do.
    token_file: Option<PathBuf>,
    agent: ureq::Agent,
}

/// The service account files every pod gets.
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// A list larger than this is refused (a cluster with more objects of one kind should narrow
/// what is synced).
const MAX_LIST_BYTES: u64 = 256 << 20;

fn err(message: String) -> AdmissionError {
    AdmissionError::Cluster(message)
}

/// A bearer token file: small, one line.
fn read_token(path: &Path) -> Result<String, AdmissionError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("token {}: {e}", path.display())))?;
    let token = text.trim();
    if token.is_empty() || token.len() > 64 * 1024 {
        return Err(err(format!("token {}: empty or not a token", path.display())));
    }
    Ok(token.to_string())
}

impl KubeApi {
    /// The API server from inside a pod: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service
    /// account's token and CA.
    pub fn in_cluster() -> Result<KubeApi, AdmissionError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| err("not in a cluster (KUBERNETES_SERVICE_HOST unset); pass --kube-api".into()))?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let dir = Path::new(SA_DIR);
        KubeApi::new(
            &format!("https://{host}:{port}"),
            Some(&dir.join("token")),
            Some(&dir.join("ca.crt")),
        )
    }

    /// An explicit API server (`https://...`, or `http://` on loopback for tests and
    /// `kubectl proxy`), with an optional bearer token file and CA bundle.
    pub fn new(
        base: &str,
        token_file: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> Result<KubeApi, AdmissionError> {
        let loopback_http = base.starts_with("http://127.0.0.1") || base.starts_with("http://localhost");
        if !base.starts_with("https://") && !loopback_http {
            return Err(err(format!(
                "{base}: the API server must be https:// (http only on loopback)"
            )));
        }
        // Read once now so that a missing or unreadable token fails at start.
        if let Some(p) = token_file {
            read_token(p)?;
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca).map_err(|e| err(format!("CA {}: {e}", ca.display())))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(err(format!("CA {}: no certificate", ca.display())));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(KubeApi {
            base: base.trim_end_matches('/').to_string(),
            token_file: token_file.map(Path::to_path_buf),
            agent: config.build().into(),
        })
    }

    /// Every object of `resource` (`v1/namespaces`, `networking.k8s.io/v1/ingresses`), with
    /// `apiVersion` and `kind` filled in (list items omit them).
    pub fn list(&self, resource: &SyncedResource) -> Result<Vec<Value>, AdmissionError> {
        let url = format!("{}{}", self.base, resource.path());
        let mut request = self.agent.get(&url);
        if let Some(file) = &self.token_file {
            request = request.header("Authorization", &format!("Bearer {}", read_token(file)?));
        }
        let mut response = request.call().map_err(|e| err(format!("{url}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_LIST_BYTES)
            .read_to_vec()
            .map_err(|e| err(format!("{url}: {e}")))?;
        if status != 200 {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(err(format!("{url}: HTTP {status}: {text}")));
        }
        let list: Value = serde_json::from_slice(&body).map_err(|e| err(format!("{url}: {e}")))?;
        let kind = list
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|k| k.strip_suffix("List"))
            .ok_or_else(|| err(format!("{url}: not a list")))?
            .to_string();
        let api_version = list.get("apiVersion").cloned().unwrap_or(Value::Null);
        let items = match list.get("items") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(err(format!("{url}: items is not an array"))),
        };
        Ok(items
            .into_iter()
            .map(|mut item| {
                if let Value::Object(map) = &mut item {
                    map.entry("apiVersion").or_insert_with(|| api_version.clone());
                    map.entry("kind").or_insert_with(|| Value::String(kind.clone()));
                }
                item
            })
            .collect())
    }
}

/// A resource to sync, written `[group/]version/resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl SyncedResource {
    pub fn parse(text: &str) -> Result<SyncedResource, AdmissionError> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        // DNS-label-like: alphanumerics, dots and dashes, starting and ending alphanumeric (so no
        // `..` or empty segments reach the URL path).
        let valid = |s: &str| {
            let b = s.as_bytes();
            b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
                && !s.contains("..")
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
        };
        let (group, version, resource) = match parts.as_slice() {
            [v, r] => ("", *v, *r),
            [g, v, r] => (*g, *v, *r),
            _ => {
                return Err(err(format!(
                    "sync {text:?}: expected [group/]version/resource, e.g. v1/namespaces"
                )));
            }
        };
        if !(valid(version) && valid(resource) && (group.is_empty() || valid(group))) {
            return Err(err(format!("sync {text:?}: expected [group/]version/resource")));
        }
        Ok(SyncedResource {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        })
    }

    fn path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}/{}", self.version, self.resource)
        } else {
            format!("/apis/{}/{}/{}", self.group, self.version, self.resource)
        }
    }
}

/// Lists every resource once; the objects, or the first error.
pub fn snapshot(api: &KubeApi, resources: &[SyncedResource]) -> Result<Vec<Value>, AdmissionError> {
    let mut all = Vec::new();
    for r in resources {
        all.extend(api.list(r)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_to_api_paths() {
        assert_eq!(
            SyncedResource::parse("v1/namespaces").unwrap().path(),
            "/api/v1/namespaces"
        );
        assert_eq!(
            SyncedResource::parse("networking.k8s.io/v1/ingresses")
                .unwrap()
                .path(),
            "/apis/networking.k8s.io/v1/ingresses"
        );
        for bad in ["namespaces", "a/b/c/d", "v1/", "v1/name spaces", "../v1/x"] {
            assert!(SyncedResource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(KubeApi::new("http://10.0.0.1:8080", None, None).is_err());
        assert!(KubeApi::new("http://127.0.0.1:8001", None, None).is_ok());
        assert!(KubeApi::new("https://10.0.0.1:6443", None, None).is_ok());
    }
}
