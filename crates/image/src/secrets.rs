//! Secret scanning of an image or a directory: every regular file of every layer (files a later
//! layer deleted or replaced included, since their bytes still ship in the image) and the image
//! config (Env, Labels, history), through the palisade-secrets engine. Each finding names the
//! layer digest and build step that introduced it. It never keeps a secret value: only the
//! engine's redacted prefix and fingerprint.

use crate::config::ImageConfig;
use crate::layers::{FileRef, FileStatus, FileVisitor, RemovedHow};
use crate::scan::ImageReport;
use crate::{ImageError, Result};
use palisade_core::{Evidence, Finding, ResourceRef, RuleMeta, Severity};
use palisade_secrets::{ScanOptions, Scanner, SecretMatch};
use serde::{Serialize, Serializer};
use std::cell::Cell;

/// Files larger than this are not read for secrets (counted in the report); 16 MiB covers config
/// files, scripts and bundles while keeping multi-hundred-MiB blobs out of memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 16 << 20;

/// Where a secret was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    File,
    Env,
    Label,
    History,
}

/// Whether the file holding the secret is in the final filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    /// In the final view (or in the image config).
    Present,
    /// Deleted or replaced by a later layer: invisible in a container, still in the image.
    Removed,
    /// The walk could not place it (a directory replaced the path).
    Unknown,
}

/// One secret, attributed. No raw value.
#[derive(Debug, Clone, Serialize)]
pub struct SecretFinding {
    #[serde(rename = "rule_id", serialize_with = "rule_id")]
    pub rule: &'static RuleMeta,
    pub severity: Severity,
    pub title: &'static str,
    pub source: SecretSource,
    /// The file path, or the config field (`Env DB_PASSWORD`, `Label org.example.token`,
    /// `history[3]`).
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The layer that introduced the secret (for files), or that the build step made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
    /// The history entry (Dockerfile command) that introduced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    pub state: SecretState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_by_layer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_by_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_by_created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_how: Option<RemovedHow>,
    pub redacted: String,
    pub fingerprint: String,
    /// JSON pointer into the image for the shared finding format.
    #[serde(skip)]
    pointer: String,
}

fn rule_id<S: Serializer>(rule: &&'static RuleMeta, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(rule.id)
}

/// The secret scan of one image or directory, with what it could not look at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretsReport {
    pub findings: Vec<SecretFinding>,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    /// Files over the size bound, not read.
    pub files_skipped_too_large: u64,
    /// Files only partly scanned (over the per-file scan bound).
    pub files_truncated: u64,
    /// Matches over the per-file bound, not reported.
    pub matches_dropped: u64,
}

impl SecretsReport {
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// A [`FileVisitor`] that runs the secret engine over every file worth reading and keeps the
/// matches per (path, layer) until the walk tells where each file ended up.
pub struct SecretVisitor {
    scanner: &'static Scanner,
    opts: ScanOptions,
    max_file_bytes: u64,
    found: Vec<(String, usize, Vec<SecretMatch>)>,
    files_scanned: u64,
    bytes_scanned: u64,
    skipped_too_large: Cell<u64>,
    truncated: u64,
    dropped: u64,
}

impl SecretVisitor {
    pub fn new() -> Result<SecretVisitor> {
        let scanner =
            palisade_secrets::scanner().map_err(|e| ImageError::Invalid(format!("secret scanner: {e}")))?;
        Ok(SecretVisitor {
            scanner,
            opts: ScanOptions::default(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            found: Vec::new(),
            files_scanned: 0,
            bytes_scanned: 0,
            skipped_too_large: Cell::new(0),
            truncated: 0,
            dropped: 0,
        })
    }

    /// Attributes every file match (present, or removed by which layer) and adds the config's
    /// secrets. `report` is the scan the visitor took part in (an image or a directory).
    pub fn finish(self, report: &ImageReport) -> SecretsReport {
        let mut findings = Vec::new();
        let fs = &report.filesystem;
        let is_image = !report.layers.is_empty();
        for (path, layer, matches) in self.found {
            let (state, removed) = if !is_image {
                (SecretState::Present, None)
            } else {
                match fs.status(&path, layer) {
                    FileStatus::Present => (SecretState::Present, None),
                    FileStatus::Removed { by_layer, how } => (SecretState::Removed, Some((by_layer, how))),
                    FileStatus::Unknown => (SecretState::Unknown, None),
                }
            };
            let info = report.layers.get(layer).filter(|_| is_image);
            let remover = removed.and_then(|(l, _)| report.layers.get(l));
            for m in matches {
                let pointer = format!(
                    "/layers/{layer}/files/{}/secrets/{}",
                    escape_pointer(&path),
                    m.fingerprint.get(7..19).unwrap_or("")
                );
                findings.push(SecretFinding {
                    rule: m.rule,
                    severity: m.rule.severity,
                    title: m.rule.title,
                    source: SecretSource::File,
                    location: path.clone(),
                    line: Some(m.line),
                    column: Some(m.column),
                    layer: info.map(|_| layer),
                    layer_digest: info.map(|l| l.digest.clone()),
                    created_by: info
                        .and_then(|l| l.history.as_ref())
                        .and_then(|h| h.created_by.as_deref())
                        .map(|c| redact_command(self.scanner, c)),
                    state,
                    removed_by_layer: removed.map(|(l, _)| l),
                    removed_by_digest: remover.map(|l| l.digest.clone()),
                    removed_by_created_by: remover
                        .and_then(|l| l.history.as_ref())
                        .and_then(|h| h.created_by.as_deref())
                        .map(|c| redact_command(self.scanner, c)),
                    removed_how: removed.map(|(_, how)| how),
                    redacted: m.redacted,
                    fingerprint: m.fingerprint,
                    pointer,
                });
            }
        }
        if let Some(config) = &report.config {
            findings.extend(scan_config(self.scanner, config, report));
        }
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.location.cmp(&b.location))
                .then(a.line.cmp(&b.line))
                .then(a.layer.cmp(&b.layer))
        });
        SecretsReport {
            findings,
            files_scanned: self.files_scanned,
            bytes_scanned: self.bytes_scanned,
            files_skipped_too_large: self.skipped_too_large.get(),
            files_truncated: self.truncated,
            matches_dropped: self.dropped,
        }
    }
}

/// Rewrites every string of the report that can hold a secret (Env values, labels, build
/// commands in the history, layers and packages) to its redacted form, so no output prints one.
/// Run it after the checks that need the raw config (the secret scan, `audit`).
pub fn redact_report(report: &mut ImageReport) {
    let Ok(scanner) = palisade_secrets::scanner() else {
        return;
    };
    if let Some(config) = report.config.as_mut() {
        for entry in &mut config.env {
            *entry = redact_env_entry(scanner, entry);
        }
        for value in config.labels.values_mut() {
            *value = scanner.redact_text(value);
        }
        for h in &mut config.history {
            if let Some(c) = h.created_by.as_mut() {
                *c = redact_command(scanner, c);
            }
        }
    }
    for layer in report
        .layers
        .iter_mut()
        .chain(report.filesystem.layers.iter_mut())
    {
        if let Some(c) = layer.history.as_mut().and_then(|h| h.created_by.as_mut()) {
            *c = redact_command(scanner, c);
        }
    }
    for p in &mut report.packages {
        if let Some(c) = p.layer_created_by.as_mut() {
            *c = redact_command(scanner, c);
        }
    }
}

/// A build command with every detected secret redacted, and the values of `NAME=value` words
/// whose name says they are secrets (`ENV APP_TOKEN=abcd`, `--build-arg DB_PASSWORD=...`).
pub fn redact_command(scanner: &Scanner, command: &str) -> String {
    let mut out = scanner.redact_text(command);
    let words: Vec<String> = out
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        .filter(|w| w.contains('='))
        .map(String::from)
        .collect();
    for word in words {
        let (name, quoted) = word.split_once('=').unwrap_or((&word, ""));
        let quote = if quoted.starts_with('"') || quoted.starts_with('\'') {
            &quoted[..1]
        } else {
            ""
        };
        let value = quoted.trim_matches(|c| c == '"' || c == '\'');
        if value.ends_with("****") {
            continue;
        }
        if let Some(found) = scanner.assignment(name, value) {
            out = out.replacen(
                &format!("{name}={quote}{value}"),
                &format!("{name}={quote}{}", found.redacted),
                1,
            );
        }
    }
    out
}

/// `NAME=value` with the value redacted when the name or the value says it is a secret.
fn redact_env_entry(scanner: &Scanner, entry: &str) -> String {
    let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
    match scanner.assignment(name, value) {
        Some(found) => format!("{name}={}", found.redacted),
        None => scanner.redact_text(entry),
    }
}

impl FileVisitor for SecretVisitor {
    fn wants(&self, file: &FileRef<'_>) -> bool {
        if file.size == 0 || skip_path(file.path) {
            return false;
        }
        if file.size > self.max_file_bytes {
            self.skipped_too_large.set(self.skipped_too_large.get() + 1);
            return false;
        }
        true
    }

    fn visit(&mut self, file: &FileRef<'_>, content: &[u8]) {
        let result = self.scanner.scan(content, &self.opts);
        self.files_scanned += 1;
        self.bytes_scanned += content.len().min(self.opts.max_bytes) as u64;
        self.truncated += u64::from(result.truncated);
        self.dropped += result.dropped as u64;
        if !result.matches.is_empty() {
            self.found
                .push((file.path.to_string(), file.layer, result.matches));
        }
    }
}

/// Trees that hold documentation, locale data and other content no one puts credentials in, but
/// that is full of example tokens and long random-looking strings.
const SKIP_DIRS: &[&str] = &[
    "/proc/",
    "/sys/",
    "/dev/",
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/share/i18n/",
    "/usr/share/zoneinfo/",
    "/usr/share/common-licenses/",
    "/usr/share/mime/",
    "/usr/share/icons/",
    "/usr/share/fonts/",
    "/usr/lib/locale/",
    "/usr/share/X11/locale/",
];

/// Formats that are compressed, media or compiled code: the detectors cannot see into them and
/// reading them costs time. Private keys are not stored in these.
const SKIP_EXTENSIONS: &[&str] = &[
    ".png", ".jpg", ".jpeg", ".gif", ".ico", ".webp", ".bmp", ".tif", ".tiff", ".svgz", ".woff", ".woff2",
    ".ttf", ".otf", ".eot", ".gz", ".tgz", ".xz", ".bz2", ".zst", ".lz4", ".zip", ".jar", ".war", ".ear",
    ".whl", ".egg", ".7z", ".rar", ".deb", ".rpm", ".apk", ".pyc", ".pyo", ".mo", ".class", ".o", ".a",
    ".so", ".dll", ".dylib", ".wasm", ".mp3", ".mp4", ".ogg", ".wav", ".avi", ".mov", ".pdf", ".db",
    ".sqlite",
];

/// Directories inside third-party package trees that hold the packages' own tests and examples
/// (fake keys and tokens are common there); the application's own tree is always scanned.
const VENDORED_ROOTS: &[&str] = &[
    "/node_modules/",
    "/site-packages/",
    "/dist-packages/",
    "/pkg/mod/",
    "/vendor/",
    "/gems/",
    "/.cargo/registry/",
];
const VENDORED_TEST_DIRS: &[&str] = &[
    "/test/",
    "/tests/",
    "/__tests__/",
    "/testdata/",
    "/test_data/",
    "/fixtures/",
    "/spec/",
    "/example/",
    "/examples/",
    "/docs/",
    "/doc/",
    "/man/",
];

fn skip_path(path: &str) -> bool {
    if SKIP_DIRS.iter().any(|d| path.starts_with(d)) {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if SKIP_EXTENSIONS.iter().any(|e| name.ends_with(e)) || name.contains(".so.") {
        return true;
    }
    if let Some(i) = VENDORED_ROOTS.iter().filter_map(|r| path.find(r)).min() {
        let inner = &path[i..];
        if VENDORED_TEST_DIRS.iter().any(|d| inner.contains(d))
            || name.ends_with(".md")
            || name.ends_with(".markdown")
            || name.ends_with(".d.ts")
            // Python package metadata is the package's README (PyJWT's shows a sample token).
            || name == "metadata"
            || name == "pkg-info"
        {
            return true;
        }
    }
    false
}

/// JSON pointer escaping (RFC 6901) of one reference token.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The config's secrets: Env entries, Labels and history commands. Env and label secrets are
/// attributed to the history entry that set them when the history names them (an `ENV NAME=`
/// step), else to the config alone.
fn scan_config(scanner: &Scanner, config: &ImageConfig, report: &ImageReport) -> Vec<SecretFinding> {
    let opts = ScanOptions::default();
    let history_layers = history_layers(config);
    let mut out: Vec<SecretFinding> = Vec::new();
    let attribute = |needle: &str| -> (Option<usize>, Option<usize>) {
        let hit = config.history.iter().enumerate().rev().find(|(_, h)| {
            h.created_by.as_deref().is_some_and(|c| {
                (c.contains("ENV") || c.contains("LABEL") || c.contains("ARG")) && c.contains(needle)
            })
        });
        match hit {
            Some((i, _)) => (Some(i), history_layers.get(i).copied().flatten()),
            None => (None, None),
        }
    };
    let mut push = |rule: &'static RuleMeta,
                    redacted: String,
                    fingerprint: String,
                    source: SecretSource,
                    location: String,
                    pointer: String,
                    history: Option<usize>,
                    layer: Option<usize>| {
        let info = layer.and_then(|l| report.layers.get(l));
        out.push(SecretFinding {
            rule,
            severity: rule.severity,
            title: rule.title,
            source,
            location,
            line: None,
            column: None,
            layer,
            layer_digest: info.map(|l| l.digest.clone()),
            created_by: history
                .and_then(|i| config.history.get(i))
                .and_then(|h| h.created_by.as_deref())
                .map(|c| redact_command(scanner, c)),
            state: SecretState::Present,
            removed_by_layer: None,
            removed_by_digest: None,
            removed_by_created_by: None,
            removed_how: None,
            redacted,
            fingerprint,
            pointer,
        });
    };
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    for (i, entry) in config.env.iter().enumerate() {
        let name = entry.split_once('=').map_or(entry.as_str(), |(n, _)| n);
        let (history, layer) = attribute(&format!("{name}="));
        let matches = scanner.scan(entry.as_bytes(), &opts).matches;
        if matches.is_empty() {
            // No detector knows the value, but the name says it is a secret (`APP_TOKEN=...`):
            // reported under the configuration rule that judges exactly that.
            let value = entry.split_once('=').map_or("", |(_, v)| v);
            if let Some(found) = scanner.assignment(name, value) {
                push(
                    &crate::audit::SECRET_IN_ENV,
                    found.redacted,
                    found.fingerprint,
                    SecretSource::Env,
                    format!("Env {name}"),
                    format!("/config/Env/{i}"),
                    history,
                    layer,
                );
            }
        }
        for m in matches {
            seen.push((m.rule.id, m.fingerprint.clone()));
            push(
                m.rule,
                m.redacted,
                m.fingerprint,
                SecretSource::Env,
                format!("Env {name}"),
                format!("/config/Env/{i}"),
                history,
                layer,
            );
        }
    }
    for (key, value) in &config.labels {
        let text = format!("{key}={value}");
        let (history, layer) = attribute(key);
        for m in scanner.scan(text.as_bytes(), &opts).matches {
            seen.push((m.rule.id, m.fingerprint.clone()));
            push(
                m.rule,
                m.redacted,
                m.fingerprint,
                SecretSource::Label,
                format!("Label {key}"),
                format!("/config/Labels/{}", escape_pointer(key)),
                history,
                layer,
            );
        }
    }
    for (i, h) in config.history.iter().enumerate() {
        let Some(command) = h.created_by.as_deref() else {
            continue;
        };
        for m in scanner.scan(command.as_bytes(), &opts).matches {
            // An `ENV` step repeats the config's Env value: reported once, under Env.
            if seen.iter().any(|(r, f)| *r == m.rule.id && *f == m.fingerprint) {
                continue;
            }
            push(
                m.rule,
                m.redacted,
                m.fingerprint,
                SecretSource::History,
                format!("history[{i}]"),
                format!("/history/{i}/created_by"),
                Some(i),
                history_layers.get(i).copied().flatten(),
            );
        }
    }
    out
}

/// For each history entry, the layer it made (entries with `empty_layer` make none).
fn history_layers(config: &ImageConfig) -> Vec<Option<usize>> {
    let mut next = 0usize;
    config
        .history
        .iter()
        .map(|h| {
            if h.empty_layer {
                None
            } else {
                next += 1;
                Some(next - 1)
            }
        })
        .collect()
}

fn short(digest: &str) -> &str {
    let d = digest.strip_prefix("sha256:").unwrap_or(digest);
    &d[..d.len().min(12)]
}

/// The secrets as shared findings (SARIF, JUnit, the dashboard), each with the layer digest and
/// build step in its message and evidence, and the redacted value only.
pub fn to_findings(report: &ImageReport, secrets: &SecretsReport) -> Vec<Finding> {
    secrets
        .findings
        .iter()
        .map(|s| {
            let mut message = format!("{} in {}", s.title, s.location);
            if let Some(line) = s.line {
                message.push_str(&format!(":{line}"));
            }
            message.push_str(&format!(" ({})", s.redacted));
            if let Some(layer) = s.layer {
                message.push_str(&format!(
                    "; added in layer {layer} {}",
                    s.layer_digest.as_deref().map(short).unwrap_or("")
                ));
            }
            if let Some(cmd) = &s.created_by {
                let cmd: String = cmd.chars().take(120).collect();
                message.push_str(&format!(" by `{cmd}`"));
            }
            if let Some(by) = s.removed_by_layer {
                message.push_str(&format!(
                    "; removed by layer {by} {} but still in the image",
                    s.removed_by_digest.as_deref().map(short).unwrap_or("")
                ));
            }
            let resource = ResourceRef {
                line: s.line,
                ..report.resource((s.source == SecretSource::File).then(|| s.location.clone()))
            };
            let value = serde_json::json!({
                "redacted": s.redacted,
                "fingerprint": s.fingerprint,
                "source": s.source,
                "layer": s.layer,
                "layer_digest": s.layer_digest,
                "created_by": s.created_by,
                "state": s.state,
                "removed_by_layer": s.removed_by_layer,
                "removed_by_digest": s.removed_by_digest,
            });
            let evidence = Evidence {
                pointer: s.pointer.clone(),
                value: Some(value),
                line: s.line,
                column: s.column,
            };
            Finding::from_rule(s.rule, resource, message, Some(evidence))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_filters_keep_application_files() {
        for skipped in [
            "/usr/share/doc/apt/copyright",
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            "/app/web/node_modules/minimist/test/parse.js",
            "/usr/local/lib/python3.11/site-packages/requests/tests/test_auth.py",
            "/app/web/node_modules/lodash/README.md",
            "/usr/lib/node_modules/npm/man/man5/npmrc.5",
            "/usr/local/lib/python3.11/site-packages/PyJWT-2.6.0.dist-info/METADATA",
            "/usr/share/zoneinfo/Asia/Tokyo",
            "/app/lib/log4j-core-2.14.1.jar",
        ] {
            assert!(skip_path(skipped), "{skipped}");
        }
        for kept in [
            "/app/config/settings.ini",
            "/app/config/tls.yaml",
            "/app/tmp/old-credentials.txt",
            "/root/.docker/config.json",
            "/root/.kube/config",
            "/app/tests/settings.py",
            "/app/web/node_modules/lodash/lodash.js",
            "/etc/ssl/private/server.key",
        ] {
            assert!(!skip_path(kept), "{kept}");
        }
    }

    #[test]
    fn config_secrets_are_attributed_to_their_build_step() {
        let token = concat!("gh", "p_S2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUb");
        let url_password = concat!("5c42LMSd", "pRhcYu");
        let mut config = ImageConfig {
            env: vec![
                "PATH=/usr/bin".into(),
                format!("GITHUB_TOKEN={token}"),
                "APP_TOKEN=abcd".into(),
                "DB_PASSWORD_FILE=/run/secrets/db".into(),
            ],
            ..Default::default()
        };
        config
            .labels
            .insert("org.example.deploy-token".into(), token.into());
        for (created_by, empty) in [
            ("debootstrap", false),
            (format!("ENV GITHUB_TOKEN={token} APP_TOKEN=abcd").as_str(), true),
            (
                format!("RUN curl -o /x https://ci:{url_password}@artifacts.internal/x").as_str(),
                false,
            ),
        ] {
            config.history.push(crate::HistoryEntry {
                created_by: Some(created_by.to_string()),
                empty_layer: empty,
                ..Default::default()
            });
        }
        let report = ImageReport {
            target: "t".into(),
            format: None,
            manifest_digest: None,
            config_digest: None,
            repo_tags: Vec::new(),
            os: None,
            config: Some(config.clone()),
            layers: Vec::new(),
            packages: Vec::new(),
            warnings: Vec::new(),
            filesystem: Default::default(),
        };
        let scanner = palisade_secrets::scanner().unwrap();
        let found = scan_config(scanner, &config, &report);
        let rows: Vec<(&str, &str, Option<usize>)> = found
            .iter()
            .map(|f| (f.rule.id, f.location.as_str(), f.layer))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("secret.github-pat", "Env GITHUB_TOKEN", None),
                ("image.secret-in-env", "Env APP_TOKEN", None),
                ("secret.github-pat", "Label org.example.deploy-token", None),
                ("secret.url-credentials", "history[2]", Some(1)),
            ],
            "the ENV step repeats the Env token and is not reported twice"
        );
        // Env secrets name the ENV step that set them.
        assert!(
            found[0]
                .created_by
                .as_deref()
                .unwrap()
                .starts_with("ENV GITHUB_TOKEN=ghp_****")
        );
        for f in &found {
            let json = serde_json::to_string(f).unwrap();
            assert!(!json.contains(token) && !json.contains(url_password), "{json}");
        }
    }

    #[test]
    fn build_commands_are_redacted() {
        let s = palisade_secrets::scanner().unwrap();
        let out = redact_command(
            s,
            "/bin/sh -c #(nop) ENV DB_PASSWORD=hunter22x API_TOKEN=\"abcd1234\" PATH=/usr/bin",
        );
        assert_eq!(
            out,
            "/bin/sh -c #(nop) ENV DB_PASSWORD=hu**** API_TOKEN=\"ab****\" PATH=/usr/bin"
        );
        assert_eq!(redact_command(s, "RUN make install"), "RUN make install");
    }

    #[test]
    fn history_maps_to_layers_skipping_empty_entries() {
        let mut config = ImageConfig::default();
        for empty in [false, true, false, true, false] {
            config.history.push(crate::HistoryEntry {
                empty_layer: empty,
                ..Default::default()
            });
        }
        assert_eq!(
            history_layers(&config),
            vec![Some(0), None, Some(1), None, Some(2)]
        );
    }
}
