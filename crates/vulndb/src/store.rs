//! The local vulnerability database: one redb file, separate from the binary, holding the
//! advisories by id, an index from (ecosystem, normalised package name) to advisory ids, and
//! metadata (schema version, import time, content checksum, counts). A new database is built in a
//! temporary file beside the target and renamed into place, so readers never see half an import.

use crate::import::{ImportLimits, Reader, SkippedFile, io_error};
use crate::matcher::{self, Lookup, PackageRef, index_key, split_ecosystem};
use crate::osv::Advisory;
use crate::{Result, VulnDbError};
use redb::{MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bumped whenever the tables or the stored advisory form change; older files must be re-imported.
pub const SCHEMA_VERSION: u32 = 1;

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const ADVISORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("advisories");
const INDEX: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("index");

/// `$XDG_DATA_HOME/palisade/vulndb.redb`, else `~/.local/share/palisade/vulndb.redb`.
pub fn default_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("palisade").join("vulndb.redb"))
}

fn store_error(path: &Path, e: impl Into<redb::Error>) -> VulnDbError {
    let e: redb::Error = e.into();
    VulnDbError::Store {
        path: path.to_path_buf(),
        message: format!("not a readable palisade vulnerability database ({e})"),
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub source: PathBuf,
    pub database: PathBuf,
    /// Distinct advisories stored.
    pub advisories: u64,
    /// Advisories per ecosystem (an advisory affecting two ecosystems counts in both).
    pub per_ecosystem: BTreeMap<String, u64>,
    pub withdrawn: u64,
    /// Records whose id was already imported from another file; the later file wins.
    pub duplicates: u64,
    pub files_read: u64,
    /// Files that are neither JSON nor zip (READMEs, licences).
    pub ignored: u64,
    pub skipped: Vec<SkippedFile>,
    pub checksum: String,
    pub size_bytes: u64,
}

/// What `db status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub path: PathBuf,
    pub schema_version: u32,
    /// Seconds since the Unix epoch.
    pub imported_at: u64,
    pub source: String,
    pub advisories: u64,
    pub per_ecosystem: BTreeMap<String, u64>,
    pub checksum: String,
    pub size_bytes: u64,
}

/// The display name of an ecosystem for counts: its base as the record spells it (`Debian`).
fn ecosystem_label(ecosystem: &str) -> String {
    ecosystem.split(':').next().unwrap_or("").trim().to_string()
}

/// Imports every OSV record under `source` into a new database at `target`, replacing any
/// database there atomically. Invalid records are skipped and listed in the report.
pub fn import(source: &Path, target: &Path, limits: ImportLimits) -> Result<ImportReport> {
    import_labelled(source, target, limits, &source.display().to_string())
}

/// [`import`], recording `label` as the database's source (`db update` records the download URL,
/// not the temporary directory the archives were saved in).
pub fn import_labelled(
    source: &Path,
    target: &Path,
    limits: ImportLimits,
    label: &str,
) -> Result<ImportReport> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vulndb.redb".into());
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = build(source, &temp, target, limits, label);
    match result {
        Ok(report) => {
            std::fs::rename(&temp, target).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                io_error(target, e)
            })?;
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

fn build(
    source: &Path,
    temp: &Path,
    target: &Path,
    limits: ImportLimits,
    label: &str,
) -> Result<ImportReport> {
    let _ = std::fs::remove_file(temp);
    let db = redb::Database::create(temp).map_err(|e| store_error(temp, e))?;
    let txn = db.begin_write().map_err(|e| store_error(temp, e))?;
    let mut skipped = Vec::new();
    // id → ecosystems it affects, kept to count per ecosystem once duplicates are resolved.
    let mut ecosystems_by_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut withdrawn_ids = BTreeSet::new();
    let mut duplicates = 0u64;
    let mut files_read = 0u64;
    let mut invalid: Vec<SkippedFile> = Vec::new();
    let (ignored, entries) = {
        let mut advisories = txn.open_table(ADVISORIES).map_err(|e| store_error(temp, e))?;
        let mut index = txn.open_multimap_table(INDEX).map_err(|e| store_error(temp, e))?;
        let mut reader = Reader {
            limits,
            skipped: &mut skipped,
            ignored: 0,
            entries: 0,
            total_bytes: 0,
            root: source.to_path_buf(),
        };
        let mut sink = |name: &str, bytes: &[u8]| -> Result<()> {
            files_read += 1;
            let advisory = match Advisory::from_json(bytes, name) {
                Ok(a) => a,
                Err(e) => {
                    let reason = e.to_string();
                    let reason = reason
                        .strip_prefix(&format!("{name}: "))
                        .unwrap_or(&reason)
                        .to_string();
                    invalid.push(SkippedFile {
                        file: name.to_string(),
                        reason,
                    });
                    return Ok(());
                }
            };
            let stored = serde_json::to_vec(&advisory).map_err(|e| VulnDbError::InvalidOsv {
                file: name.to_string(),
                reason: e.to_string(),
            })?;
            advisories
                .insert(advisory.id.as_str(), stored.as_slice())
                .map_err(|e| store_error(temp, e))?;
            let mut ecosystems = BTreeSet::new();
            for affected in &advisory.affected {
                let Some(package) = &affected.package else {
                    continue;
                };
                let key = index_key(&package.ecosystem, &package.name);
                index
                    .insert(key.as_str(), advisory.id.as_str())
                    .map_err(|e| store_error(temp, e))?;
                ecosystems.insert(ecosystem_label(&package.ecosystem));
            }
            if advisory.withdrawn.is_some() {
                withdrawn_ids.insert(advisory.id.clone());
            } else {
                withdrawn_ids.remove(&advisory.id);
            }
            if ecosystems_by_id.insert(advisory.id.clone(), ecosystems).is_some() {
                duplicates += 1;
            }
            Ok(())
        };
        reader.read(source, &mut sink)?;
        (reader.ignored, reader.entries)
    };
    skipped.extend(invalid);
    if ecosystems_by_id.is_empty() {
        return Err(VulnDbError::NothingImported {
            path: source.to_path_buf(),
            message: format!(
                "no valid OSV record among {entries} files ({} skipped, {ignored} not JSON)",
                skipped.len()
            ),
        });
    }
    let checksum = {
        let advisories = txn.open_table(ADVISORIES).map_err(|e| store_error(temp, e))?;
        content_checksum(&advisories, temp)?
    };
    let mut per_ecosystem = BTreeMap::new();
    for ecosystems in ecosystems_by_id.values() {
        for e in ecosystems {
            *per_ecosystem.entry(e.clone()).or_insert(0u64) += 1;
        }
    }
    let imported_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let advisories = ecosystems_by_id.len() as u64;
    {
        let mut meta = txn.open_table(META).map_err(|e| store_error(temp, e))?;
        let counts = serde_json::to_string(&per_ecosystem).unwrap_or_else(|_| "{}".into());
        for (k, v) in [
            ("schema_version", SCHEMA_VERSION.to_string()),
            ("imported_at", imported_at.to_string()),
            ("source", label.to_string()),
            ("checksum", checksum.clone()),
            ("advisories", advisories.to_string()),
            ("per_ecosystem", counts),
        ] {
            meta.insert(k, v.as_str()).map_err(|e| store_error(temp, e))?;
        }
    }
    txn.commit().map_err(|e| store_error(temp, e))?;
    drop(db);
    let size_bytes = std::fs::metadata(temp).map(|m| m.len()).unwrap_or(0);
    Ok(ImportReport {
        source: source.to_path_buf(),
        database: target.to_path_buf(),
        advisories,
        per_ecosystem,
        withdrawn: withdrawn_ids.len() as u64,
        duplicates,
        files_read,
        ignored,
        skipped,
        checksum,
        size_bytes,
    })
}

/// SHA-256 over every stored advisory in id order: id, NUL, stored JSON, NUL.
fn content_checksum(table: &impl ReadableTable<&'static str, &'static [u8]>, path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for row in table.iter().map_err(|e| store_error(path, e))? {
        let (id, bytes) = row.map_err(|e| store_error(path, e))?;
        hasher.update(id.value().as_bytes());
        hasher.update([0]);
        hasher.update(bytes.value());
        hasher.update([0]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// An open database, for lookups and status.
pub struct Database {
    path: PathBuf,
    db: redb::ReadOnlyDatabase,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.path).finish()
    }
}

impl Database {
    /// Opens a database read-only, checking it is one of ours and of this schema version.
    pub fn open(path: &Path) -> Result<Database> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(VulnDbError::Io {
                    path: path.into(),
                    message: "not a file".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VulnDbError::Io {
                    path: path.into(),
                    message: "no vulnerability database here: run `palisade db import PATH` first".into(),
                });
            }
            Err(e) => return Err(io_error(path, e)),
        }
        let db = redb::ReadOnlyDatabase::open(path).map_err(|e| store_error(path, e))?;
        let database = Database {
            path: path.to_path_buf(),
            db,
        };
        let found = database
            .meta("schema_version")?
            .ok_or_else(|| VulnDbError::Store {
                path: path.into(),
                message: "no schema version recorded".into(),
            })?;
        let found: u32 = found.parse().map_err(|_| VulnDbError::Store {
            path: path.into(),
            message: format!("schema version {found:?} is not a number"),
        })?;
        if found != SCHEMA_VERSION {
            return Err(VulnDbError::SchemaMismatch {
                path: path.into(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(database)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        let txn = self.db.begin_read().map_err(|e| store_error(&self.path, e))?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(VulnDbError::Store {
                    path: self.path.clone(),
                    message: "a redb file, but not a palisade vulnerability database (no metadata table)"
                        .into(),
                });
            }
            Err(e) => return Err(store_error(&self.path, e)),
        };
        let value = table.get(key).map_err(|e| store_error(&self.path, e))?;
        Ok(value.map(|v| v.value().to_string()))
    }

    /// The advisories that affect `pkg`, and those naming it that could not be evaluated.
    /// Reads only the advisories indexed under the package's (ecosystem, name).
    pub fn lookup(&self, pkg: &PackageRef) -> Result<Lookup> {
        let txn = self.db.begin_read().map_err(|e| store_error(&self.path, e))?;
        let index = txn
            .open_multimap_table(INDEX)
            .map_err(|e| store_error(&self.path, e))?;
        let advisories = txn
            .open_table(ADVISORIES)
            .map_err(|e| store_error(&self.path, e))?;
        let (base, _) = split_ecosystem(&pkg.ecosystem);
        let key = index_key(&base, pkg.lookup_name());
        let mut found = Vec::new();
        for id in index.get(key.as_str()).map_err(|e| store_error(&self.path, e))? {
            let id = id.map_err(|e| store_error(&self.path, e))?;
            let Some(bytes) = advisories
                .get(id.value())
                .map_err(|e| store_error(&self.path, e))?
            else {
                continue;
            };
            let advisory: Advisory =
                serde_json::from_slice(bytes.value()).map_err(|e| VulnDbError::Store {
                    path: self.path.clone(),
                    message: format!("stored advisory {} is unreadable: {e}", id.value()),
                })?;
            found.push(advisory);
        }
        Ok(matcher::lookup_in(&found, pkg))
    }

    /// One advisory by id, as stored.
    pub fn advisory(&self, id: &str) -> Result<Option<Advisory>> {
        let txn = self.db.begin_read().map_err(|e| store_error(&self.path, e))?;
        let advisories = txn
            .open_table(ADVISORIES)
            .map_err(|e| store_error(&self.path, e))?;
        let Some(bytes) = advisories.get(id).map_err(|e| store_error(&self.path, e))? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| VulnDbError::Store {
                path: self.path.clone(),
                message: format!("stored advisory {id}: {e}"),
            })
    }

    pub fn status(&self) -> Result<Status> {
        let get = |k: &str| -> Result<String> { Ok(self.meta(k)?.unwrap_or_default()) };
        Ok(Status {
            path: self.path.clone(),
            schema_version: SCHEMA_VERSION,
            imported_at: get("imported_at")?.parse().unwrap_or(0),
            source: get("source")?,
            advisories: get("advisories")?.parse().unwrap_or(0),
            per_ecosystem: serde_json::from_str(&get("per_ecosystem")?).unwrap_or_default(),
            checksum: get("checksum")?,
            size_bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        })
    }

    /// Recomputes the content checksum and compares it with the recorded one.
    pub fn verify(&self) -> Result<bool> {
        let txn = self.db.begin_read().map_err(|e| store_error(&self.path, e))?;
        let advisories = txn
            .open_table(ADVISORIES)
            .map_err(|e| store_error(&self.path, e))?;
        let actual = content_checksum(&advisories, &self.path)?;
        Ok(Some(actual) == self.meta("checksum")?)
    }
}

#[cfg(test)]
mod tests;
