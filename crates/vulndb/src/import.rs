//! Reading OSV records from a directory tree, a `.zip` as OSV publishes per ecosystem, or one
//! file, with bounds: a size cap per record, a cap on the total bytes read, a cap on entries and a
//! compression-ratio cap for zip entries. One bad file is skipped with its reason, never fatal;
//! exceeding a whole-import bound is fatal. This module does file I/O only, no parsing.

use crate::{Result, VulnDbError};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Largest single OSV record (the biggest real ones, Linux kernel advisories, are a few MiB).
    pub max_file_bytes: u64,
    /// All records read in one import, uncompressed.
    pub max_total_bytes: u64,
    /// Files and zip entries looked at in one import.
    pub max_entries: u64,
    /// Uncompressed/compressed ratio above which a zip entry is refused (JSON compresses ~10×).
    pub max_ratio: u64,
    /// Directory depth followed.
    pub max_depth: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_file_bytes: 32 << 20,
            max_total_bytes: 16 << 30,
            max_entries: 5_000_000,
            max_ratio: 200,
            max_depth: 32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    pub file: String,
    pub reason: String,
}

/// Reads records and hands each to `sink(name, bytes)`; skipped files go to `skipped`.
pub(crate) struct Reader<'a> {
    pub limits: ImportLimits,
    pub skipped: &'a mut Vec<SkippedFile>,
    /// Files that are neither `.json` nor `.zip` (READMEs, licences), not counted as errors.
    pub ignored: u64,
    pub entries: u64,
    pub total_bytes: u64,
    pub root: PathBuf,
}

fn extension_is(path: &str, ext: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, e)| e.eq_ignore_ascii_case(ext))
}

impl Reader<'_> {
    fn skip(&mut self, file: String, reason: impl Into<String>) {
        self.skipped.push(SkippedFile {
            file,
            reason: reason.into(),
        });
    }

    fn count_entry(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(VulnDbError::Limit {
                path: self.root.clone(),
                message: format!("more than {} files or zip entries", self.limits.max_entries),
            });
        }
        Ok(())
    }

    fn count_bytes(&mut self, n: u64) -> Result<()> {
        self.total_bytes += n;
        if self.total_bytes > self.limits.max_total_bytes {
            return Err(VulnDbError::Limit {
                path: self.root.clone(),
                message: format!(
                    "more than {} bytes of records in one import",
                    self.limits.max_total_bytes
                ),
            });
        }
        Ok(())
    }

    pub fn read(&mut self, path: &Path, sink: &mut dyn FnMut(&str, &[u8]) -> Result<()>) -> Result<()> {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
        if meta.is_dir() {
            self.read_dir(path, sink)
        } else if extension_is(&path.to_string_lossy(), "zip") {
            self.read_zip(path, sink)
        } else {
            self.read_file(path, sink)
        }
    }

    fn read_dir(&mut self, root: &Path, sink: &mut dyn FnMut(&str, &[u8]) -> Result<()>) -> Result<()> {
        let mut stack = vec![(root.to_path_buf(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let mut children: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    self.skip(dir.display().to_string(), format!("cannot read directory: {e}"));
                    continue;
                }
            };
            // Sorted so that a later duplicate id wins the same way on every machine.
            children.sort();
            let mut subdirs = Vec::new();
            for child in children {
                let name = child.display().to_string();
                let Ok(meta) = std::fs::symlink_metadata(&child) else {
                    self.skip(name, "cannot stat");
                    continue;
                };
                if meta.file_type().is_symlink() {
                    self.skip(name, "symbolic link not followed");
                } else if meta.is_dir() {
                    if depth + 1 > self.limits.max_depth {
                        self.skip(name, format!("deeper than {} directories", self.limits.max_depth));
                    } else {
                        subdirs.push((child, depth + 1));
                    }
                } else if extension_is(&name, "json") {
                    self.read_file(&child, sink)?;
                } else if extension_is(&name, "zip") {
                    self.read_zip(&child, sink)?;
                } else {
                    self.ignored += 1;
                }
            }
            // Reversed so the stack visits subdirectories in sorted order.
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }

    fn read_file(&mut self, path: &Path, sink: &mut dyn FnMut(&str, &[u8]) -> Result<()>) -> Result<()> {
        self.count_entry()?;
        let name = path.display().to_string();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.skip(name, format!("cannot open: {e}"));
                return Ok(());
            }
        };
        let mut bytes = Vec::new();
        let limit = self.limits.max_file_bytes;
        if let Err(e) = file.take(limit + 1).read_to_end(&mut bytes) {
            self.skip(name, format!("cannot read: {e}"));
            return Ok(());
        }
        if bytes.len() as u64 > limit {
            self.skip(name, format!("larger than {limit} bytes"));
            return Ok(());
        }
        self.count_bytes(bytes.len() as u64)?;
        sink(&name, &bytes)
    }

    fn read_zip(&mut self, path: &Path, sink: &mut dyn FnMut(&str, &[u8]) -> Result<()>) -> Result<()> {
        let label = path.display().to_string();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.skip(label, format!("cannot open: {e}"));
                return Ok(());
            }
        };
        let mut archive = match zip::ZipArchive::new(std::io::BufReader::new(file)) {
            Ok(a) => a,
            Err(e) => {
                self.skip(label, format!("not a readable zip archive: {e}"));
                return Ok(());
            }
        };
        if archive.len() as u64 > self.limits.max_entries {
            return Err(VulnDbError::Limit {
                path: path.to_path_buf(),
                message: format!(
                    "{} entries, more than the {} allowed",
                    archive.len(),
                    self.limits.max_entries
                ),
            });
        }
        let limit = self.limits.max_file_bytes;
        for i in 0..archive.len() {
            self.count_entry()?;
            let mut entry = match archive.by_index(i) {
                Ok(e) => e,
                Err(e) => {
                    self.skip(format!("{label}#{i}"), format!("unreadable zip entry: {e}"));
                    continue;
                }
            };
            let entry_name = entry
                .name()
                .map(|n| n.into_owned())
                .unwrap_or_else(|_| format!("#{i}"));
            let name = format!("{label}!{entry_name}");
            if entry.is_dir() {
                continue;
            }
            if !extension_is(&entry_name, "json") {
                self.ignored += 1;
                continue;
            }
            if entry.size() > limit {
                self.skip(
                    name,
                    format!("declares {} bytes, more than {limit}", entry.size()),
                );
                continue;
            }
            let compressed = entry.compressed_size().max(1);
            let mut bytes = Vec::new();
            // The declared size is not trusted: the read itself is bounded.
            if let Err(e) = (&mut entry).take(limit + 1).read_to_end(&mut bytes) {
                self.skip(name, format!("cannot decompress: {e}"));
                continue;
            }
            let size = bytes.len() as u64;
            if size > limit {
                self.skip(name, format!("decompresses to more than {limit} bytes"));
                continue;
            }
            // Small entries are exempt: a tiny record can compress far better than a large one.
            if size > 64 << 10 && size / compressed > self.limits.max_ratio {
                self.skip(
                    name,
                    format!(
                        "compression ratio {} above the cap of {}",
                        size / compressed,
                        self.limits.max_ratio
                    ),
                );
                continue;
            }
            self.count_bytes(size)?;
            sink(&name, &bytes)?;
        }
        Ok(())
    }
}

pub(crate) fn io_error(path: &Path, e: std::io::Error) -> VulnDbError {
    VulnDbError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
