//! Credentials from docker's `config.json` (`auths.<registry>.auth` = base64 `user:password`, or
//! `username`/`password`, or an `identitytoken`). Credential helpers (`credsStore`) are external
//! programs and are not run.

use crate::RegistryError;
use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    auths: HashMap<String, Credential>,
}

const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; a missing file is an empty config.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
    }

    pub fn load(path: &Path) -> Result<DockerConfig, RegistryError> {
        let err = |message: String| RegistryError::Config {
            path: path.display().to_string(),
            message,
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DockerConfig::default()),
            Err(e) => return Err(err(e.to_string())),
        };
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(err(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let value: Value = serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
        DockerConfig::from_value(&value).map_err(err)
    }

    pub fn from_value(value: &Value) -> Result<DockerConfig, String> {
        let mut auths = HashMap::new();
        let Some(map) = value.get("auths").and_then(Value::as_object) else {
            return Ok(DockerConfig::default());
        };
        for (registry, entry) in map {
            let s = |k: &str| entry.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
            let credential = if let Some(token) = s("identitytoken") {
                Credential::IdentityToken(token.to_string())
            } else if let (Some(u), Some(p)) = (s("username"), s("password")) {
                Credential::Basic {
                    username: u.to_string(),
                    password: p.to_string(),
                }
            } else if let Some(auth) = s("auth") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| format!("auths.{registry}.auth: not base64: {e}"))?;
                let text =
                    String::from_utf8(decoded).map_err(|_| format!("auths.{registry}.auth: not UTF-8"))?;
                let (u, p) = text
                    .split_once(':')
                    .ok_or_else(|| format!("auths.{registry}.auth: expected user:password"))?;
                Credential::Basic {
                    username: u.to_string(),
                    password: p.to_string(),
                }
            } else {
                continue;
            };
            auths.insert(normalize(registry), credential);
        }
        Ok(DockerConfig { auths })
    }

    pub fn insert(&mut self, registry: &str, credential: Credential) {
        self.auths.insert(normalize(registry), credential);
    }

    /// The credential for a registry key (`https://index.docker.io/v1/` for Docker Hub, else host[:port]).
    pub fn get(&self, key: &str) -> Option<&Credential> {
        self.auths.get(&normalize(key))
    }
}

/// `https://ghcr.io/` and `ghcr.io` name the same registry; Docker Hub keeps its historical key.
fn normalize(key: &str) -> String {
    if key.contains("index.docker.io") || key == "docker.io" {
        return "https://index.docker.io/v1/".to_string();
    }
    key.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_three_forms() {
        let cfg = DockerConfig::from_value(&json!({"auths": {
            "https://ghcr.io/": {"auth": base64::engine::general_purpose::STANDARD.encode("bob:s3cret")},
            "reg.example.com:5000": {"username": "ci", "password": "pw"},
            "https://index.docker.io/v1/": {"identitytoken": "tok"},
            "empty.example.com": {}
        }}))
        .unwrap();
        assert_eq!(
            cfg.get("ghcr.io"),
            Some(&Credential::Basic {
                username: "bob".into(),
                password: "s3cret".into()
            })
        );
        assert!(matches!(
            cfg.get("reg.example.com:5000"),
            Some(Credential::Basic { .. })
        ));
        assert_eq!(
            cfg.get("https://index.docker.io/v1/"),
            Some(&Credential::IdentityToken("tok".into()))
        );
        assert!(cfg.get("empty.example.com").is_none());
        assert!(!format!("{:?}", cfg.get("ghcr.io").unwrap()).contains("s3cret"));
        assert!(DockerConfig::from_value(&json!({"auths": {"x": {"auth": "!!!"}}})).is_err());
    }
}
