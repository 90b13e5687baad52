//! Opening images on disk: docker-archive tarballs (`docker save`), OCI image layout directories and
//! OCI archives (a tar of a layout). Archives are indexed once (name → offset) and blobs are read
//! straight out of them; nothing is extracted. Manifests, indexes and configs are size-bounded and
//! digest-checked.

use crate::config::ImageConfig;
use crate::layers::LayerSpec;
use crate::tarstream::{TarKind, TarReader};
use crate::{ImageError, Limits, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// os/arch[/variant], as in `--platform linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(ImageError::BadPlatform(s.to_string())),
        }
    }

    /// linux and the architecture this binary runs on, in OCI names.
    pub fn current() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "arm" => "arm",
            other => other,
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        self.os == os && self.arch == arch && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageFormat {
    DockerArchive,
    OciLayout,
    OciArchive,
}

/// Where blobs live: a directory, or a tar file indexed by entry name.
#[derive(Debug)]
enum Store {
    Dir(PathBuf),
    Tar {
        file: PathBuf,
        entries: HashMap<String, (u64, u64)>,
    },
}

fn clean_name(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Store {
    fn index_tar(path: &Path, limits: &Limits) -> Result<Store> {
        let f = File::open(path).map_err(|e| ImageError::io(path.display(), e))?;
        let mut tar = TarReader::new(BufReader::new(f));
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let mut count = 0u64;
        while let Some(h) = tar.next_header().map_err(|e| ImageError::io(path.display(), e))? {
            count += 1;
            if count > limits.max_entries {
                return Err(ImageError::LimitExceeded {
                    layer: path.display().to_string(),
                    what: "archive entry count",
                    limit: limits.max_entries,
                });
            }
            let name = clean_name(&String::from_utf8_lossy(&h.path));
            match h.kind {
                TarKind::File => {
                    entries.insert(name, (h.data_offset, h.size));
                }
                TarKind::Symlink | TarKind::Hardlink => {
                    let link = String::from_utf8_lossy(&h.link).into_owned();
                    let target = if h.kind == TarKind::Symlink && !link.starts_with('/') {
                        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                        clean_name(&format!("{dir}/{link}"))
                    } else {
                        clean_name(&link)
                    };
                    links.push((name, target));
                }
                _ => {}
            }
        }
        // `docker save` deduplicates identical layers with links; one level is all it writes.
        for (name, target) in links {
            if let Some(&loc) = entries.get(&target) {
                entries.insert(name, loc);
            }
        }
        Ok(Store::Tar {
            file: path.to_path_buf(),
            entries,
        })
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Store::Dir(d) => d.join(name).is_file(),
            Store::Tar { entries, .. } => entries.contains_key(name),
        }
    }

    fn open(&self, name: &str) -> Result<(Box<dyn Read>, u64)> {
        match self {
            Store::Dir(d) => {
                let p = d.join(name);
                let f = File::open(&p).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ImageError::MissingBlob(name.to_string()),
                    _ => ImageError::io(p.display(), e),
                })?;
                let size = f.metadata().map_err(|e| ImageError::io(p.display(), e))?.len();
                Ok((Box::new(f), size))
            }
            Store::Tar { file, entries } => {
                let &(offset, size) = entries
                    .get(name)
                    .ok_or_else(|| ImageError::MissingBlob(name.to_string()))?;
                let mut f = File::open(file).map_err(|e| ImageError::io(file.display(), e))?;
                f.seek(SeekFrom::Start(offset))
                    .map_err(|e| ImageError::io(file.display(), e))?;
                Ok((Box::new(f.take(size)), size))
            }
        }
    }

    fn read_json(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let (r, size) = self.open(name)?;
        if size > limit {
            return Err(ImageError::TooLarge {
                what: name.to_string(),
                size,
                limit,
            });
        }
        let mut v = Vec::with_capacity(size as usize);
        r.take(limit + 1)
            .read_to_end(&mut v)
            .map_err(|e| ImageError::io(name, e))?;
        if v.len() as u64 > limit {
            return Err(ImageError::TooLarge {
                what: name.to_string(),
                size: v.len() as u64,
                limit,
            });
        }
        Ok(v)
    }
}

fn blob_name(digest: &str) -> Result<String> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ImageError::UnsupportedDigest(digest.to_string()))?;
    Ok(format!("blobs/sha256/{hex}"))
}

fn verify(what: &str, digest: &str, bytes: &[u8]) -> Result<()> {
    let actual = format!("sha256:{:x}", Sha256::digest(bytes));
    if actual.eq_ignore_ascii_case(digest) {
        Ok(())
    } else {
        Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: digest.to_string(),
            actual,
        })
    }
}

fn json<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Json {
        what: what.to_string(),
        message: e.to_string(),
    })
}

#[derive(Deserialize, Debug, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<DescPlatform>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

#[derive(Deserialize, Debug, Clone)]
struct DescPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct IndexOrManifest {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// One layer as stored in the image.
#[derive(Debug, Clone)]
pub struct LayerSource {
    name: String,
    pub blob_digest: Option<String>,
    pub diff_id: Option<String>,
    pub media_type: Option<String>,
    pub size: u64,
}

/// An opened image: its config, and its layers ready to be streamed.
#[derive(Debug)]
pub struct ImageSource {
    pub path: String,
    pub format: ImageFormat,
    pub manifest_digest: Option<String>,
    pub config_digest: Option<String>,
    pub repo_tags: Vec<String>,
    pub config: ImageConfig,
    pub layers: Vec<LayerSource>,
    store: Store,
}

impl ImageSource {
    /// The raw (possibly compressed) bytes of layer `i`.
    pub fn open_layer(&self, i: usize) -> Result<Box<dyn Read>> {
        let l = self
            .layers
            .get(i)
            .ok_or_else(|| ImageError::Invalid(format!("no layer {i}")))?;
        Ok(self.store.open(&l.name)?.0)
    }

    /// What the layer walker checks for layer `i`.
    pub fn layer_spec(&self, i: usize) -> LayerSpec {
        let history = self.config.layer_history(self.layers.len());
        LayerSpec {
            blob_digest: self.layers.get(i).and_then(|l| l.blob_digest.clone()),
            diff_id: self.layers.get(i).and_then(|l| l.diff_id.clone()),
            history: history
                .get(i)
                .copied()
                .flatten()
                .and_then(|h| self.config.history.get(h).cloned()),
        }
    }

    /// A short label for layer `i` in errors and warnings.
    pub fn layer_label(&self, i: usize) -> String {
        let d = self
            .layers
            .get(i)
            .and_then(|l| l.diff_id.clone().or(l.blob_digest.clone()))
            .unwrap_or_default();
        let short = d.strip_prefix("sha256:").unwrap_or(&d);
        format!("{} ({})", i, &short[..short.len().min(12)])
    }
}

/// Opens a docker-archive or OCI archive file, or an OCI layout (or extracted docker-archive)
/// directory, choosing the manifest for `platform` (default: linux on this machine's architecture)
/// from multi-platform indexes.
pub fn open_image(path: &Path, platform: Option<&Platform>, limits: &Limits) -> Result<ImageSource> {
    let meta = std::fs::metadata(path).map_err(|e| ImageError::io(path.display(), e))?;
    let store = if meta.is_dir() {
        Store::Dir(path.to_path_buf())
    } else {
        let mut magic = [0u8; 4];
        let mut f = File::open(path).map_err(|e| ImageError::io(path.display(), e))?;
        let n = f
            .read(&mut magic)
            .map_err(|e| ImageError::io(path.display(), e))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] {
            return Err(ImageError::Invalid(format!(
                "{}: a gzip-compressed archive; decompress it first (gunzip) and scan the tar",
                path.display()
            )));
        }
        Store::index_tar(path, limits)?
    };
    let display = path.display().to_string();
    let explicit = platform.is_some();
    let wanted = platform.cloned().unwrap_or_else(Platform::current);
    if store.has("manifest.json") {
        open_docker(store, display, &wanted, explicit, limits)
    } else if store.has("index.json") {
        let format = if meta.is_dir() {
            ImageFormat::OciLayout
        } else {
            ImageFormat::OciArchive
        };
        open_oci(store, display, format, &wanted, explicit, limits)
    } else {
        Err(ImageError::UnknownFormat(display))
    }
}

fn open_docker(
    store: Store,
    display: String,
    wanted: &Platform,
    explicit: bool,
    limits: &Limits,
) -> Result<ImageSource> {
    let bytes = store.read_json("manifest.json", limits.max_json_bytes)?;
    let entries: Vec<DockerManifestEntry> = json(&bytes, &format!("{display}: manifest.json"))?;
    if entries.is_empty() {
        return Err(ImageError::Invalid(format!(
            "{display}: manifest.json lists no image"
        )));
    }
    let mut candidates = Vec::new();
    for e in &entries {
        let name = clean_name(&e.config);
        let cfg_bytes = store.read_json(&name, limits.max_json_bytes)?;
        let config = ImageConfig::parse(&cfg_bytes, &format!("{display}: {name}"))?;
        let digest = format!("sha256:{:x}", Sha256::digest(&cfg_bytes));
        // Config files are named after their digest; a mismatch means tampering or corruption.
        let stem = name.rsplit('/').next().unwrap_or(&name).trim_end_matches(".json");
        if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
            verify(
                &format!("{display}: config {name}"),
                &format!("sha256:{stem}"),
                &cfg_bytes,
            )?;
        }
        candidates.push((e, config, digest));
    }
    let pick = if candidates.len() == 1 {
        0
    } else {
        candidates
            .iter()
            .position(|(_, c, _)| wanted.matches(&c.os, &c.architecture, c.variant.as_deref()))
            .or(if explicit { None } else { Some(0) })
            .ok_or_else(|| ImageError::NoPlatform {
                wanted: wanted.to_string(),
                available: candidates
                    .iter()
                    .map(|(_, c, _)| format!("{}/{}", c.os, c.architecture))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
    };
    let (entry, config, digest) = candidates.swap_remove(pick);
    if explicit && !wanted.matches(&config.os, &config.architecture, config.variant.as_deref()) {
        return Err(ImageError::NoPlatform {
            wanted: wanted.to_string(),
            available: format!("{}/{}", config.os, config.architecture),
        });
    }
    if entry.layers.len() > limits.max_layers {
        return Err(ImageError::TooLarge {
            what: format!("{display}: layer count"),
            size: entry.layers.len() as u64,
            limit: limits.max_layers as u64,
        });
    }
    if !config.diff_ids.is_empty() && config.diff_ids.len() != entry.layers.len() {
        return Err(ImageError::Invalid(format!(
            "{display}: manifest lists {} layers but the config has {} diff ids",
            entry.layers.len(),
            config.diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (i, l) in entry.layers.iter().enumerate() {
        let name = clean_name(l);
        let size = match store.open(&name) {
            Ok((_, s)) => s,
            Err(e) => return Err(e),
        };
        // Newer `docker save` writes OCI-style blobs/sha256/<hex>: the name is the blob digest.
        let blob_digest = name
            .strip_prefix("blobs/sha256/")
            .filter(|h| h.len() == 64)
            .map(|h| format!("sha256:{h}"));
        layers.push(LayerSource {
            name,
            blob_digest,
            diff_id: config.diff_ids.get(i).cloned(),
            media_type: None,
            size,
        });
    }
    Ok(ImageSource {
        path: display,
        format: ImageFormat::DockerArchive,
        manifest_digest: None,
        config_digest: Some(digest),
        repo_tags: entry.repo_tags.clone().unwrap_or_default(),
        config,
        layers,
        store,
    })
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn open_oci(
    store: Store,
    display: String,
    format: ImageFormat,
    wanted: &Platform,
    explicit: bool,
    limits: &Limits,
) -> Result<ImageSource> {
    let bytes = store.read_json("index.json", limits.max_json_bytes)?;
    let index: IndexOrManifest = json(&bytes, &format!("{display}: index.json"))?;
    // Flatten nested indexes into (manifest descriptor, platform) candidates.
    let mut candidates: Vec<Descriptor> = Vec::new();
    let mut queue: Vec<(Descriptor, usize)> = index
        .manifests
        .unwrap_or_default()
        .into_iter()
        .rev()
        .map(|d| (d, 0))
        .collect();
    let mut manifests: HashMap<String, (Vec<u8>, IndexOrManifest)> = HashMap::new();
    while let Some((d, depth)) = queue.pop() {
        if depth > 4 {
            return Err(ImageError::Invalid(format!(
                "{display}: indexes nested more than 4 deep"
            )));
        }
        if d.annotations
            .as_ref()
            .and_then(|a| a.get("vnd.docker.reference.type"))
            .is_some_and(|t| t == "attestation-manifest")
            || d.platform.as_ref().is_some_and(|p| p.os == "unknown")
        {
            continue;
        }
        let name = blob_name(&d.digest)?;
        if let Some(size) = d.size
            && size > limits.max_json_bytes
        {
            return Err(ImageError::TooLarge {
                what: format!("{display}: {}", d.digest),
                size,
                limit: limits.max_json_bytes,
            });
        }
        let b = store.read_json(&name, limits.max_json_bytes)?;
        verify(&format!("{display}: manifest {}", d.digest), &d.digest, &b)?;
        let m: IndexOrManifest = json(&b, &format!("{display}: {}", d.digest))?;
        let is_index =
            d.media_type.as_deref().is_some_and(|t| INDEX_TYPES.contains(&t)) || m.manifests.is_some();
        if is_index {
            for child in m.manifests.unwrap_or_default().into_iter().rev() {
                let child = Descriptor {
                    platform: child.platform.clone().or(d.platform.clone()),
                    ..child
                };
                queue.push((child, depth + 1));
            }
        } else {
            manifests.insert(d.digest.clone(), (b, m));
            candidates.push(d);
        }
    }
    if candidates.is_empty() {
        return Err(ImageError::Invalid(format!(
            "{display}: index.json names no image manifest"
        )));
    }
    let describe = |d: &Descriptor| {
        d.platform.as_ref().map_or("unspecified".to_string(), |p| {
            format!(
                "{}/{}{}",
                p.os,
                p.architecture,
                p.variant.as_ref().map(|v| format!("/{v}")).unwrap_or_default()
            )
        })
    };
    let matching: Vec<&Descriptor> = candidates
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| wanted.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
        .collect();
    let chosen = match (matching.first(), candidates.len()) {
        (Some(d), _) => (*d).clone(),
        (None, 1) if candidates[0].platform.is_none() || !explicit => candidates[0].clone(),
        _ => {
            // Without platforms on the descriptors, fall back to the first one unless one was asked for.
            if !explicit && candidates.iter().all(|d| d.platform.is_none()) {
                candidates[0].clone()
            } else {
                return Err(ImageError::NoPlatform {
                    wanted: wanted.to_string(),
                    available: candidates.iter().map(describe).collect::<Vec<_>>().join(", "),
                });
            }
        }
    };
    let (_, manifest) = manifests
        .remove(&chosen.digest)
        .ok_or_else(|| ImageError::Invalid(format!("{display}: manifest {} vanished", chosen.digest)))?;
    let cfg_desc = manifest
        .config
        .ok_or_else(|| ImageError::Invalid(format!("{display}: manifest {} has no config", chosen.digest)))?;
    let cfg_bytes = store.read_json(&blob_name(&cfg_desc.digest)?, limits.max_json_bytes)?;
    verify(
        &format!("{display}: config {}", cfg_desc.digest),
        &cfg_desc.digest,
        &cfg_bytes,
    )?;
    let config = ImageConfig::parse(&cfg_bytes, &format!("{display}: config {}", cfg_desc.digest))?;
    if explicit
        && !config.os.is_empty()
        && !wanted.matches(&config.os, &config.architecture, config.variant.as_deref())
    {
        return Err(ImageError::NoPlatform {
            wanted: wanted.to_string(),
            available: format!("{}/{}", config.os, config.architecture),
        });
    }
    let mlayers = manifest.layers.unwrap_or_default();
    if mlayers.len() > limits.max_layers {
        return Err(ImageError::TooLarge {
            what: format!("{display}: layer count"),
            size: mlayers.len() as u64,
            limit: limits.max_layers as u64,
        });
    }
    if !config.diff_ids.is_empty() && config.diff_ids.len() != mlayers.len() {
        return Err(ImageError::Invalid(format!(
            "{display}: manifest lists {} layers but the config has {} diff ids",
            mlayers.len(),
            config.diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (i, l) in mlayers.into_iter().enumerate() {
        let name = blob_name(&l.digest)?;
        if !store.has(&name) {
            return Err(ImageError::MissingBlob(l.digest));
        }
        layers.push(LayerSource {
            name,
            blob_digest: Some(l.digest),
            diff_id: config.diff_ids.get(i).cloned(),
            media_type: l.media_type,
            size: l.size.unwrap_or(0),
        });
    }
    Ok(ImageSource {
        path: display,
        format,
        manifest_digest: Some(chosen.digest.clone()),
        config_digest: Some(cfg_desc.digest),
        repo_tags: chosen
            .annotations
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name").cloned())
            .into_iter()
            .collect(),
        config,
        layers,
        store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parsing() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().variant.as_deref(),
            Some("v8")
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//").is_err());
    }

    #[test]
    fn blob_names_reject_odd_digests() {
        assert!(blob_name("sha256:../../etc/passwd").is_err());
        assert!(blob_name("md5:abc").is_err());
        assert!(blob_name(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }
}
