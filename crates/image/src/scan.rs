//! The image and directory scans: open, walk every layer once with the catalogers (and any extra
//! visitors), keep what survives in the final view, attribute it to its layer and history entry.

use crate::catalog::{self, OsInfo, Package};
use crate::config::ImageConfig;
use crate::layers::{EntryKind, FileRef, FileStatus, FileVisitor, Filesystem, LayerWalker};
use crate::source::{ImageFormat, ImageSource, Platform, open_image};
use crate::tarstream::TarReader;
use crate::{ImageError, Limits, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub use crate::catalog::Warning;

/// A layer as reported: digest, sizes and the command that made it.
pub type LayerSummary = crate::layers::LayerInfo;

/// What a scan found. `filesystem` is the final view (left out of JSON; it can be large).
#[derive(Debug, Serialize)]
pub struct ImageReport {
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<ImageFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repo_tags: Vec<String>,
    pub os: Option<OsInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ImageConfig>,
    pub layers: Vec<LayerSummary>,
    pub packages: Vec<Package>,
    pub warnings: Vec<Warning>,
    #[serde(skip)]
    pub filesystem: Filesystem,
}

impl ImageReport {
    /// What findings about this image (or scanned directory) are reported against: the target,
    /// the image's first tag or its digest, and `file` inside it.
    pub fn resource(&self, file: Option<String>) -> palisade_core::ResourceRef {
        palisade_core::ResourceRef {
            kind: "Image".into(),
            name: self.target.clone(),
            image: self
                .repo_tags
                .first()
                .cloned()
                .or_else(|| self.manifest_digest.clone()),
            file,
            ..Default::default()
        }
    }
}

/// Collects cataloger output per (path, layer); what survives is decided after the walk.
#[derive(Default)]
struct CatalogVisitor {
    limits: Limits,
    found: Vec<(String, usize, catalog::Cataloged)>,
}

impl FileVisitor for CatalogVisitor {
    fn wants(&self, file: &FileRef<'_>) -> bool {
        catalog::wants(file.path, file.size, file.mode)
    }

    fn visit(&mut self, file: &FileRef<'_>, content: &[u8]) {
        let out = catalog::catalog_file(file.path, file.mode, content, &self.limits);
        if !out.packages.is_empty() || out.os.is_some() || !out.warnings.is_empty() {
            self.found.push((file.path.to_string(), file.layer, out));
        }
    }
}

/// Opens and scans an image; `extra` visitors (secret, malware scanners) see every file too.
pub fn scan_image(
    path: &Path,
    platform: Option<&Platform>,
    limits: &Limits,
    extra: &mut [&mut dyn FileVisitor],
) -> Result<ImageReport> {
    let source = open_image(path, platform, limits)?;
    scan_source(&source, limits, extra)
}

pub fn scan_source(
    source: &ImageSource,
    limits: &Limits,
    extra: &mut [&mut dyn FileVisitor],
) -> Result<ImageReport> {
    let mut cat = CatalogVisitor {
        limits: limits.clone(),
        found: Vec::new(),
    };
    let mut visitors: Vec<&mut dyn FileVisitor> = vec![&mut cat];
    for v in extra.iter_mut() {
        visitors.push(&mut **v);
    }
    let mut walker = LayerWalker::new(limits.clone(), visitors);
    for i in 0..source.layers.len() {
        let raw = source.open_layer(i)?;
        walker.apply_layer(raw, source.layer_spec(i), &source.layer_label(i))?;
    }
    let fs = walker.finish();
    let (os, packages, mut warnings) = assemble(cat.found, Some(&fs));
    warnings.extend(fs.warnings.iter().map(|w| Warning {
        path: String::new(),
        message: w.clone(),
    }));
    Ok(ImageReport {
        target: source.path.clone(),
        format: Some(source.format),
        manifest_digest: source.manifest_digest.clone(),
        config_digest: source.config_digest.clone(),
        repo_tags: source.repo_tags.clone(),
        os,
        config: Some(source.config.clone()),
        layers: fs.layers.clone(),
        packages,
        warnings,
        filesystem: fs,
    })
}

/// Keeps findings from files in the final view, attributes them, picks the OS and fills purls.
fn assemble(
    found: Vec<(String, usize, catalog::Cataloged)>,
    fs: Option<&Filesystem>,
) -> (Option<OsInfo>, Vec<Package>, Vec<Warning>) {
    let mut os_candidates: Vec<OsInfo> = Vec::new();
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    for (path, layer, out) in found {
        if let Some(fs) = fs
            && fs.status(&path, layer) != FileStatus::Present
        {
            continue;
        }
        let info = fs.and_then(|f| f.layers.get(layer));
        if let Some(mut os) = out.os {
            os.path = path.clone();
            os.layer = fs.map(|_| layer);
            os_candidates.push(os);
        }
        for mut p in out.packages {
            if let Some(info) = info {
                p.layer = Some(layer);
                p.layer_digest = Some(info.digest.clone());
                p.layer_created_by = info.history.as_ref().and_then(|h| h.created_by.clone());
            }
            packages.push(p);
        }
        warnings.extend(out.warnings);
    }
    // /etc/os-release wins over /usr/lib/os-release (it is the admin's override).
    os_candidates.sort_by_key(|o| if o.path == "/etc/os-release" { 0 } else { 1 });
    let os = os_candidates.into_iter().find(|o| !o.id.is_empty());
    let mut seen = BTreeSet::new();
    packages
        .retain(|p: &Package| seen.insert((p.ecosystem, p.name.clone(), p.version.clone(), p.path.clone())));
    for p in &mut packages {
        p.finish_purl(os.as_ref());
    }
    packages.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.version, &a.path).cmp(&(b.ecosystem, &b.name, &b.version, &b.path))
    });
    (os, packages, warnings)
}

/// Runs the catalogers over a directory tree (a project checkout or an unpacked root filesystem).
pub fn scan_directory(dir: &Path, limits: &Limits) -> Result<ImageReport> {
    scan_directory_with(dir, limits, &mut [])
}

/// [`scan_directory`] with `extra` visitors (secret, malware scanners) seeing every file too.
pub fn scan_directory_with(
    dir: &Path,
    limits: &Limits,
    extra: &mut [&mut dyn FileVisitor],
) -> Result<ImageReport> {
    let mut cat = CatalogVisitor {
        limits: limits.clone(),
        found: Vec::new(),
    };
    let mut warnings = Vec::new();
    {
        let mut visitors: Vec<&mut dyn FileVisitor> = vec![&mut cat];
        for v in extra.iter_mut() {
            visitors.push(&mut **v);
        }
        crate::dirscan::walk(dir, limits, &mut warnings, &mut visitors)?;
    }
    let (os, packages, cat_warnings) = assemble(cat.found, None);
    warnings.extend(cat_warnings);
    Ok(ImageReport {
        target: dir.display().to_string(),
        format: None,
        manifest_digest: None,
        config_digest: None,
        repo_tags: Vec::new(),
        os,
        config: None,
        layers: Vec::new(),
        packages,
        warnings,
        filesystem: Filesystem::default(),
    })
}

/// The bytes of selected final-view files (symlinks resolved inside the image), read by streaming
/// only the layers that hold them. Files over `max_visit_bytes` and non-files are left out.
pub fn read_final_files(
    source: &ImageSource,
    fs: &Filesystem,
    paths: &[&str],
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>> {
    // resolved path → requested paths
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut layers = BTreeSet::new();
    for p in paths {
        let Some(resolved) = fs.resolve(p, limits.max_link_hops) else {
            continue;
        };
        let Some(e) = fs.entries.get(&resolved) else {
            continue;
        };
        if e.kind == EntryKind::File && e.size <= limits.max_visit_bytes {
            layers.insert(e.layer);
            wanted.entry(resolved).or_default().push(p.to_string());
        }
    }
    let mut out = BTreeMap::new();
    for layer in layers {
        let mut reader = BufReader::new(source.open_layer(layer)?);
        let magic = reader
            .fill_buf()
            .map_err(|e| ImageError::io(source.layer_label(layer), e))?
            .to_vec();
        let stream: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(reader))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                ruzstd::decoding::StreamingDecoder::new(reader).map_err(|e| ImageError::Layer {
                    layer: source.layer_label(layer),
                    message: e.to_string(),
                })?,
            )
        } else {
            Box::new(reader)
        };
        let mut tar = TarReader::new(stream.take(limits.max_total_bytes));
        while let Some(h) = tar
            .next_header()
            .map_err(|e| ImageError::io(source.layer_label(layer), e))?
        {
            let Ok(Some(path)) = crate::layers::normalize_entry_path(&h.path, limits.max_path_len) else {
                continue;
            };
            let Some(requesters) = wanted.get(&path) else {
                continue;
            };
            if fs.entries.get(&path).is_none_or(|e| e.layer != layer) {
                continue;
            }
            let mut buf = Vec::new();
            (&mut tar)
                .take(limits.max_visit_bytes)
                .read_to_end(&mut buf)
                .map_err(|e| ImageError::io(&path, e))?;
            for r in requesters {
                out.insert(r.clone(), buf.clone());
            }
        }
    }
    Ok(out)
}
