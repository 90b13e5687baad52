//! The image configuration (OCI image config / docker config JSON) and the mapping of history
//! entries to layers. Pure: bytes in, model out.

use crate::{ImageError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One history entry: the Dockerfile command (or build step) that made a layer or changed config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(rename = "Test", default)]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(rename = "Timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(rename = "Retries", default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// What a container built from the image starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub env: Vec<String>,
    /// Empty when the config sets none: the container runs as root.
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    pub history: Vec<HistoryEntry>,
    /// Uncompressed layer digests, bottom first.
    pub diff_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    config: Option<RawContainerConfig>,
    #[serde(default)]
    history: Vec<HistoryEntry>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
}

#[derive(Deserialize, Default)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawContainerConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "User", default)]
    user: Option<String>,
    #[serde(rename = "ExposedPorts", default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Healthcheck", default)]
    healthcheck: Option<Healthcheck>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
}

impl ImageConfig {
    /// Parses an image config document; `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| ImageError::Json {
            what: what.to_string(),
            message: e.to_string(),
        })?;
        let c = raw.config.unwrap_or_default();
        Ok(ImageConfig {
            os: raw.os.unwrap_or_default(),
            architecture: raw.architecture.unwrap_or_default(),
            variant: raw.variant,
            created: raw.created,
            env: c.env.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            labels: c.labels.unwrap_or_default(),
            healthcheck: c.healthcheck,
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            history: raw.history,
            diff_ids: raw.rootfs.unwrap_or_default().diff_ids,
        })
    }

    /// For each of `layer_count` layers, the index into `history` of the entry that made it.
    /// Entries marked `empty_layer` made no layer. When the history does not cover every layer
    /// (squashed or hand-made images) the uncovered layers get `None`.
    pub fn layer_history(&self, layer_count: usize) -> Vec<Option<usize>> {
        let mut out: Vec<Option<usize>> = self
            .history
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.empty_layer)
            .map(|(i, _)| Some(i))
            .take(layer_count)
            .collect();
        out.resize(layer_count, None);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_and_maps_history_skipping_empty_layers() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"User":"1000",
            "ExposedPorts":{"22/tcp":{},"80/tcp":{}},"Labels":{"k":"v"},
            "Healthcheck":{"Test":["CMD","true"],"Interval":30000000000}},
            "rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:b"]},
            "history":[{"created_by":"ADD rootfs"},{"created_by":"ENV A=1","empty_layer":true},
                       {"created_by":"RUN apt-get install x"}]}"#;
        let c = ImageConfig::parse(json, "config").unwrap();
        assert_eq!(c.user, "1000");
        assert_eq!(c.exposed_ports, vec!["22/tcp", "80/tcp"]);
        assert_eq!(c.healthcheck.as_ref().unwrap().test, vec!["CMD", "true"]);
        assert_eq!(c.layer_history(2), vec![Some(0), Some(2)]);
        assert_eq!(c.layer_history(3), vec![Some(0), Some(2), None]);
    }

    #[test]
    fn null_fields_are_empty() {
        let c = ImageConfig::parse(br#"{"config":{"Env":null,"Labels":null}}"#, "c").unwrap();
        assert!(c.env.is_empty() && c.labels.is_empty() && c.user.is_empty());
        assert!(
            ImageConfig::parse(b"[", "cfg.json")
                .unwrap_err()
                .to_string()
                .contains("cfg.json")
        );
    }
}
