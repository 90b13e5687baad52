//! Layers applied in order to a virtual filesystem: decompression detected by magic bytes, blob and
//! diff-id digests verified while streaming, whiteouts and opaque directories applied, every entry
//! attributed to the layer that wrote it, and every regular file's bytes offered once to visitors.
//! Nothing is written to disk; paths and links never leave the virtual root.

use crate::config::HistoryEntry;
use crate::tarstream::{TarKind, TarReader};
use crate::{ImageError, Limits, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

/// One layer of the image, as reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerInfo {
    pub index: usize,
    /// The uncompressed digest (diff id) when known, else the blob digest.
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryEntry>,
    pub compression: &'static str,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub entries: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Other,
}

/// One path of the filesystem view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsEntry {
    /// Index of the layer that last wrote this path.
    pub layer: usize,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    /// Symlink target as stored, or hardlink target as an absolute path in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedHow {
    /// A `.wh.NAME` file in a later layer.
    Whiteout,
    /// A `.wh..wh..opq` marker in a later layer hid the directory's lower contents.
    OpaqueDir,
    /// A later layer wrote the same path.
    Overwritten,
}

/// A path that an earlier layer wrote and a later layer removed or replaced. Its bytes are still in
/// the image (secret scanners must look at them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedEntry {
    pub path: String,
    pub entry: FsEntry,
    pub removed_in: usize,
    pub how: RemovedHow,
}

/// A regular file as a visitor sees it.
#[derive(Debug, Clone, Copy)]
pub struct FileRef<'a> {
    /// Absolute path in the image (`/etc/os-release`).
    pub path: &'a str,
    pub size: u64,
    pub mode: u32,
    pub layer: usize,
}

/// Sees every regular file of every layer once, in layer order, including files a later layer
/// deletes (check [`Filesystem::status`] after the walk). Content is only read for files some
/// visitor wants, and only up to [`Limits::max_visit_bytes`].
pub trait FileVisitor {
    fn wants(&self, file: &FileRef<'_>) -> bool;
    fn visit(&mut self, file: &FileRef<'_>, content: &[u8]);
}

/// Where a file seen by a visitor ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// In the final view.
    Present,
    /// Removed or replaced by the given layer.
    Removed { by_layer: usize, how: RemovedHow },
    /// Not known (never seen, or a directory took its place).
    Unknown,
}

/// The final filesystem view after all layers, with what was removed on the way.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Filesystem {
    pub entries: BTreeMap<String, FsEntry>,
    pub removed: Vec<RemovedEntry>,
    pub layers: Vec<LayerInfo>,
    /// Non-fatal problems (skipped content, dangling hardlinks), each naming the layer and path.
    pub warnings: Vec<String>,
}

impl Filesystem {
    /// Where the copy of `path` written by `layer` ended up.
    pub fn status(&self, path: &str, layer: usize) -> FileStatus {
        if self.entries.get(path).is_some_and(|e| e.layer == layer) {
            return FileStatus::Present;
        }
        self.removed
            .iter()
            .find(|r| r.path == path && r.entry.layer == layer)
            .map(|r| FileStatus::Removed {
                by_layer: r.removed_in,
                how: r.how,
            })
            .unwrap_or(FileStatus::Unknown)
    }

    /// Resolves symlinks (and hardlinks) in `path` inside the virtual root: `..` stops at `/`,
    /// absolute targets restart at the image root, and at most `max_hops` links are followed.
    /// Returns the final path, which may not exist.
    pub fn resolve(&self, path: &str, max_hops: usize) -> Option<String> {
        let mut pending: Vec<String> = path
            .split('/')
            .rev()
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => resolved.push(comp),
            }
            let current = format!("/{}", resolved.join("/"));
            let Some(entry) = self.entries.get(&current) else {
                continue;
            };
            let (is_link, target) = match (entry.kind, &entry.link) {
                (EntryKind::Symlink, Some(t)) => (true, t.clone()),
                (EntryKind::Hardlink, Some(t)) => (true, t.clone()),
                _ => (false, String::new()),
            };
            if !is_link {
                continue;
            }
            hops += 1;
            if hops > max_hops {
                return None;
            }
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            pending.extend(
                target
                    .split('/')
                    .rev()
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            );
        }
        Some(format!("/{}", resolved.join("/")))
    }
}

/// What the walker needs to know about a layer before streaming it.
#[derive(Debug, Clone, Default)]
pub struct LayerSpec {
    /// Digest of the blob as stored (compressed), checked when set.
    pub blob_digest: Option<String>,
    /// Digest of the uncompressed tar (diff id), checked when set.
    pub diff_id: Option<String>,
    pub history: Option<HistoryEntry>,
}

/// Applies layers one after another.
pub struct LayerWalker<'v> {
    fs: Filesystem,
    limits: Limits,
    visitors: Vec<&'v mut dyn FileVisitor>,
    entries: u64,
    total_bytes: Rc<Cell<u64>>,
    buf: Vec<u8>,
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Counts decompressed bytes and stops at the total or ratio limit.
struct Bounded<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    compressed: Rc<Cell<u64>>,
    image_total: Rc<Cell<u64>>,
    max_total: u64,
    max_ratio: u64,
    grace: u64,
}

const TOTAL_EXCEEDED: &str = "total uncompressed size";
const RATIO_EXCEEDED: &str = "decompression ratio";

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        let total = self.image_total.get() + n as u64;
        self.image_total.set(total);
        if total > self.max_total {
            return Err(io::Error::other(TOTAL_EXCEEDED));
        }
        if self.count > self.grace && self.count / self.compressed.get().max(1) > self.max_ratio {
            return Err(io::Error::other(RATIO_EXCEEDED));
        }
        Ok(n)
    }
}

enum Decompressor<R: BufRead> {
    Plain(R),
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(ZstdState<R>),
}

type ZstdFrame<R> = ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>;

enum ZstdState<R: Read> {
    Frame(Box<ZstdFrame<R>>),
    Done(R),
    /// Only seen if creating the next frame's decoder failed (and an error was returned).
    Failed,
}

impl<R: BufRead> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressor::Plain(r) => r.read(buf),
            Decompressor::Gzip(r) => r.read(buf),
            Decompressor::Zstd(state) => loop {
                let dec = match state {
                    ZstdState::Frame(d) => d,
                    ZstdState::Done(_) => return Ok(0),
                    ZstdState::Failed => return Err(io::Error::other("zstd stream failed earlier")),
                };
                let n = dec.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                // End of a frame: continue with the next one if more input follows (zstd:chunked
                // and parallel compressors write many frames).
                let ZstdState::Frame(dec) = std::mem::replace(state, ZstdState::Failed) else {
                    return Ok(0);
                };
                let mut inner = dec.into_inner();
                if inner.fill_buf()?.is_empty() {
                    *state = ZstdState::Done(inner);
                    return Ok(0);
                }
                let next = ruzstd::decoding::StreamingDecoder::new(inner)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                *state = ZstdState::Frame(Box::new(next));
            },
        }
    }
}

fn sha256_hex(h: Sha256) -> String {
    let d = h.finalize();
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Normalises a tar entry name to an absolute image path (`/a/b`), or says why it is unsafe.
/// `Ok(None)` is the root itself.
pub fn normalize_entry_path(raw: &[u8], max_len: usize) -> std::result::Result<Option<String>, &'static str> {
    if raw.len() > max_len {
        return Err("path is longer than the limit");
    }
    let text = String::from_utf8_lossy(raw);
    if text.starts_with('/') {
        return Err("absolute path");
    }
    if text.contains('\0') {
        return Err("NUL in path");
    }
    let mut parts = Vec::new();
    for comp in text.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err("parent-directory component escapes the layer root"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!("/{}", parts.join("/"))))
}

fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

impl<'v> LayerWalker<'v> {
    pub fn new(limits: Limits, visitors: Vec<&'v mut dyn FileVisitor>) -> Self {
        LayerWalker {
            fs: Filesystem::default(),
            limits,
            visitors,
            entries: 0,
            total_bytes: Rc::new(Cell::new(0)),
            buf: Vec::new(),
        }
    }

    /// Streams one layer blob (gzip, zstd or plain tar, detected by magic bytes) into the view.
    /// `label` names the layer in errors.
    pub fn apply_layer(&mut self, raw: impl Read, spec: LayerSpec, label: &str) -> Result<()> {
        let index = self.fs.layers.len();
        if index >= self.limits.max_layers {
            return Err(ImageError::LimitExceeded {
                layer: label.to_string(),
                what: "layer count",
                limit: self.limits.max_layers as u64,
            });
        }
        let compressed = Rc::new(Cell::new(0u64));
        let hashing = Hashing {
            inner: raw,
            hasher: Sha256::new(),
            count: compressed.clone(),
        };
        let mut buffered = BufReader::with_capacity(256 * 1024, hashing);
        let magic = buffered
            .fill_buf()
            .map_err(|e| layer_io(label, e, &self.limits))?;
        let (compression, dec) = if magic.starts_with(&[0x1f, 0x8b]) {
            (
                "gzip",
                Decompressor::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(buffered))),
            )
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            let d = ruzstd::decoding::StreamingDecoder::new(buffered).map_err(|e| ImageError::Layer {
                layer: label.to_string(),
                message: format!("invalid zstd stream: {e}"),
            })?;
            ("zstd", Decompressor::Zstd(ZstdState::Frame(Box::new(d))))
        } else if magic.starts_with(b"BZh") || magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
            return Err(ImageError::Layer {
                layer: label.to_string(),
                message: "bzip2/xz layers are not supported (expected gzip, zstd or tar)".into(),
            });
        } else {
            ("none", Decompressor::Plain(buffered))
        };
        let bounded = Bounded {
            inner: dec,
            hasher: Sha256::new(),
            count: 0,
            compressed: compressed.clone(),
            image_total: self.total_bytes.clone(),
            max_total: self.limits.max_total_bytes,
            max_ratio: self.limits.max_ratio,
            grace: self.limits.ratio_grace_bytes,
        };
        let mut tar = TarReader::new(bounded);
        let mut layer_entries = 0u64;
        let limits = self.limits.clone();
        while let Some(h) = tar.next_header().map_err(|e| layer_io(label, e, &limits))? {
            self.entries += 1;
            layer_entries += 1;
            if self.entries > limits.max_entries {
                return Err(ImageError::LimitExceeded {
                    layer: label.to_string(),
                    what: "tar entry count",
                    limit: limits.max_entries,
                });
            }
            if h.size > limits.max_file_bytes {
                return Err(ImageError::LimitExceeded {
                    layer: label.to_string(),
                    what: "single file size",
                    limit: limits.max_file_bytes,
                });
            }
            let unsafe_path = |path: &[u8], reason| ImageError::UnsafePath {
                layer: label.to_string(),
                path: String::from_utf8_lossy(path).into_owned(),
                reason,
            };
            let Some(path) =
                normalize_entry_path(&h.path, limits.max_path_len).map_err(|r| unsafe_path(&h.path, r))?
            else {
                continue;
            };
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", &path));
            if let Some(hidden) = base.strip_prefix(".wh.") {
                if hidden == ".wh..opq" {
                    let dir = if dir.is_empty() { "/" } else { dir };
                    self.remove_under(dir, index, RemovedHow::OpaqueDir, false);
                } else if !hidden.starts_with(".wh.") && !hidden.is_empty() {
                    let target = format!("{dir}/{hidden}");
                    self.remove_under(&target, index, RemovedHow::Whiteout, true);
                }
                continue;
            }
            let kind = match h.kind {
                TarKind::File => EntryKind::File,
                TarKind::Dir => EntryKind::Dir,
                TarKind::Symlink => EntryKind::Symlink,
                TarKind::Hardlink => EntryKind::Hardlink,
                TarKind::Other => EntryKind::Other,
            };
            let link = match kind {
                EntryKind::Symlink => {
                    if h.link.len() > limits.max_path_len {
                        return Err(unsafe_path(&h.path, "symlink target is longer than the limit"));
                    }
                    Some(String::from_utf8_lossy(&h.link).into_owned())
                }
                EntryKind::Hardlink => {
                    let target = normalize_entry_path(&h.link, limits.max_path_len)
                        .map_err(|_| unsafe_path(&h.path, "hardlink target escapes the image root"))?
                        .ok_or_else(|| unsafe_path(&h.path, "hardlink to the root directory"))?;
                    if !self
                        .fs
                        .entries
                        .get(&target)
                        .is_some_and(|e| e.kind == EntryKind::File)
                    {
                        self.fs.warnings.push(format!(
                            "layer {label}: hardlink {path} points at {target}, which is not a regular file"
                        ));
                    }
                    Some(target)
                }
                _ => None,
            };
            let size = match kind {
                EntryKind::Hardlink => self
                    .fs
                    .entries
                    .get(link.as_deref().unwrap_or(""))
                    .map_or(0, |e| e.size),
                _ => h.size,
            };
            let entry = FsEntry {
                layer: index,
                kind,
                mode: h.mode & 0o7777,
                size,
                link,
                uid: h.uid,
                gid: h.gid,
            };
            self.insert(path.clone(), entry, index);
            if kind == EntryKind::File {
                let file = FileRef {
                    path: &path,
                    size: h.size,
                    mode: h.mode,
                    layer: index,
                };
                let wanted: Vec<usize> = (0..self.visitors.len())
                    .filter(|&i| self.visitors[i].wants(&file))
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                if h.size > limits.max_visit_bytes {
                    self.fs.warnings.push(format!(
                        "layer {label}: {path}: {} bytes is over the per-file content limit of {}; not scanned",
                        h.size, limits.max_visit_bytes
                    ));
                    continue;
                }
                self.buf.clear();
                (&mut tar)
                    .take(h.size)
                    .read_to_end(&mut self.buf)
                    .map_err(|e| layer_io(label, e, &limits))?;
                for i in wanted {
                    self.visitors[i].visit(&file, &self.buf);
                }
            }
        }
        tar.drain().map_err(|e| layer_io(label, e, &limits))?;
        let bounded = tar.into_inner();
        let uncompressed = bounded.count;
        let diff = sha256_hex(bounded.hasher);
        let dec = bounded.inner;
        // Whatever follows the compressed stream still belongs to the blob and its digest.
        let mut rest = match dec {
            Decompressor::Plain(b) => b,
            Decompressor::Gzip(g) => g.into_inner(),
            Decompressor::Zstd(ZstdState::Frame(d)) => d.into_inner(),
            Decompressor::Zstd(ZstdState::Done(b)) => b,
            Decompressor::Zstd(ZstdState::Failed) => {
                return Err(ImageError::Layer {
                    layer: label.into(),
                    message: "invalid zstd stream".into(),
                });
            }
        };
        io::copy(&mut rest, &mut io::sink()).map_err(|e| layer_io(label, e, &limits))?;
        let hashing = rest.into_inner();
        let blob = sha256_hex(hashing.hasher);
        check_digest(label, "blob", spec.blob_digest.as_deref(), &blob)?;
        check_digest(label, "diff id", spec.diff_id.as_deref(), &diff)?;
        self.fs.layers.push(LayerInfo {
            index,
            digest: spec.diff_id.clone().unwrap_or_else(|| diff.clone()),
            blob_digest: spec
                .blob_digest
                .clone()
                .or(if compression == "none" { None } else { Some(blob) }),
            history: spec.history,
            compression,
            compressed_size: compressed.get(),
            uncompressed_size: uncompressed,
            entries: layer_entries,
        });
        Ok(())
    }

    /// Removes `target` (when `include_self`) and everything under it that lower layers wrote.
    fn remove_under(&mut self, target: &str, index: usize, how: RemovedHow, include_self: bool) {
        let mut doomed: Vec<String> = Vec::new();
        if include_self && self.fs.entries.get(target).is_some_and(|e| e.layer < index) {
            doomed.push(target.to_string());
        }
        let prefix = if target == "/" {
            String::from("/")
        } else {
            format!("{target}/")
        };
        for (p, e) in self.fs.entries.range(prefix.clone()..) {
            if !p.starts_with(&prefix) {
                break;
            }
            if e.layer < index {
                doomed.push(p.clone());
            }
        }
        for p in doomed {
            if let Some(entry) = self.fs.entries.remove(&p) {
                self.fs.removed.push(RemovedEntry {
                    path: p,
                    entry,
                    removed_in: index,
                    how,
                });
            }
        }
    }

    fn insert(&mut self, path: String, entry: FsEntry, index: usize) {
        if let Some(old) = self.fs.entries.get(&path) {
            let replaces_dir = old.kind == EntryKind::Dir && entry.kind != EntryKind::Dir;
            if old.kind != EntryKind::Dir && old.layer < index {
                self.fs.removed.push(RemovedEntry {
                    path: path.clone(),
                    entry: old.clone(),
                    removed_in: index,
                    how: RemovedHow::Overwritten,
                });
            }
            if replaces_dir {
                let under: Vec<String> = self
                    .fs
                    .entries
                    .range(format!("{path}/")..)
                    .take_while(|(p, _)| is_under(p, &path))
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in under {
                    if let Some(e) = self.fs.entries.remove(&p) {
                        self.fs.removed.push(RemovedEntry {
                            path: p,
                            entry: e,
                            removed_in: index,
                            how: RemovedHow::Overwritten,
                        });
                    }
                }
            }
        }
        self.fs.entries.insert(path, entry);
    }

    pub fn finish(self) -> Filesystem {
        self.fs
    }
}

fn check_digest(label: &str, what: &str, expected: Option<&str>, actual: &str) -> Result<()> {
    match expected {
        Some(exp) if !exp.eq_ignore_ascii_case(actual) => Err(ImageError::DigestMismatch {
            what: format!("layer {label} {what}"),
            expected: exp.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

fn layer_io(label: &str, e: io::Error, limits: &Limits) -> ImageError {
    let msg = e.to_string();
    if msg == TOTAL_EXCEEDED {
        return ImageError::LimitExceeded {
            layer: label.into(),
            what: TOTAL_EXCEEDED,
            limit: limits.max_total_bytes,
        };
    }
    if msg == RATIO_EXCEEDED {
        return ImageError::LimitExceeded {
            layer: label.into(),
            what: RATIO_EXCEEDED,
            limit: limits.max_ratio,
        };
    }
    ImageError::Layer {
        layer: label.to_string(),
        message: msg,
    }
}
