//! `palisade.yaml` and exceptions files: read, validated, turned into the engines' settings.
//! Errors name the file and what was expected.

use anyhow::{Context, Result, bail};
use palisade_core::ExceptionSet;
use palisade_posture::labels::Policy;
use palisade_posture::{PssLevel, PssVersion};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    #[serde(default)]
    pss: Option<PssSection>,
    #[serde(default)]
    policy: Option<Value>,
    #[serde(default)]
    exceptions: Option<Vec<Value>>,
    #[serde(default)]
    admission: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PssSection {
    level: Option<String>,
    version: Option<String>,
}

/// What a configuration file contributes to a scan.
#[derive(Debug, Default)]
pub struct Config {
    pub pss_level: Option<PssLevel>,
    pub pss_version: Option<PssVersion>,
    pub policy: Policy,
    pub exceptions: ExceptionSet,
    /// The `admission:` section, read by `palisade admission`.
    pub admission: Option<Value>,
}

const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

pub(crate) fn read_yaml(path: &Path) -> Result<Value> {
    let display = path.display().to_string();
    let input = palisade_k8s::InputFile::Path(path.to_path_buf());
    let limits = palisade_k8s::Limits {
        max_file_bytes: MAX_CONFIG_BYTES,
        ..Default::default()
    };
    let text = palisade_k8s::read_input(&input, &limits).with_context(|| format!("cannot read {display}"))?;
    Ok(palisade_k8s::parse_single(&text, &display)?)
}

pub fn load_config(path: &Path) -> Result<Config> {
    let display = path.display().to_string();
    let value = read_yaml(path)?;
    if value.is_null() {
        return Ok(Config::default());
    }
    let file: ConfigFile = serde_json::from_value(value)
        .with_context(|| format!("{display}: not a valid palisade configuration"))?;
    let mut config = Config::default();
    if let Some(pss) = file.pss {
        if let Some(level) = pss.level {
            config.pss_level = Some(level.parse().with_context(|| format!("{display}: pss.level"))?);
        }
        if let Some(version) = pss.version {
            config.pss_version = Some(
                version
                    .parse()
                    .with_context(|| format!("{display}: pss.version"))?,
            );
        }
    }
    if let Some(policy) = file.policy {
        config.policy = Policy::from_value(policy).with_context(|| format!("{display}: policy"))?;
    }
    config.admission = file.admission;
    if let Some(exceptions) = file.exceptions {
        config.exceptions = ExceptionSet::from_value(json!({ "exceptions": exceptions }), &display)?;
    }
    Ok(config)
}

/// Reads an exceptions (ignore) file; errors name the file and the line of the entry at fault.
pub fn load_exceptions(path: &Path) -> Result<ExceptionSet> {
    use palisade_k8s::yaml::{parse_chunk, split_documents};
    let display = path.display().to_string();
    let input = palisade_k8s::InputFile::Path(path.to_path_buf());
    let limits = palisade_k8s::Limits {
        max_file_bytes: MAX_CONFIG_BYTES,
        ..Default::default()
    };
    let text = palisade_k8s::read_input(&input, &limits).with_context(|| format!("cannot read {display}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut docs = Vec::new();
    for chunk in split_documents(text) {
        match parse_chunk(&chunk) {
            Ok(Some(doc)) => docs.push(doc),
            Ok(None) => {}
            Err(e) => bail!(
                "{display}:{}:{}: {}",
                e.position.line,
                e.position.column,
                e.message
            ),
        }
    }
    if docs.len() > 1 {
        bail!("{display}: expected one YAML document, found {}", docs.len());
    }
    let Some(doc) = docs.pop().filter(|d| d.value.is_object()) else {
        bail!("{display}: expected a mapping with an `exceptions` (or `ignore`) list");
    };
    if let Some(dup) = doc.duplicate_keys.first() {
        bail!(
            "{display}:{}: duplicate key {} (first at line {})",
            dup.second.line,
            dup.pointer,
            dup.first.line
        );
    }
    let key = if doc.value.get("ignore").is_some() {
        "ignore"
    } else {
        "exceptions"
    };
    let map = &doc.source_map;
    let line_of = |i: usize| map.locate(&format!("/{key}/{i}")).map(|p| p.line);
    Ok(ExceptionSet::from_value_located(doc.value, &display, &line_of)?)
}
