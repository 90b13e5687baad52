//! The file-system adapter: a [`Loader`] that reads `Include`d files and `.data` files relative to
//! the including file, with `*` globs in the file name (as `Include rules/*.conf`). Kept apart so
//! the engine itself stays free of I/O.

use crate::config::Loader;
use std::path::{Path, PathBuf};

/// Largest configuration or data file read; CRS's largest is well under 1 MiB.
const MAX_FILE: u64 = 16 << 20;

#[derive(Debug, Default)]
pub struct FsLoader;

fn resolve(name: &str, from: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    Path::new(from)
        .parent()
        .map(|d| d.join(p))
        .unwrap_or_else(|| p.to_path_buf())
}

fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FILE {
        return Err(format!("{} is larger than {MAX_FILE} bytes", path.display()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn glob_match(pat: &str, name: &str) -> bool {
    match pat.split_once('*') {
        None => pat == name,
        Some((pre, rest)) => {
            if !name.starts_with(pre) {
                return false;
            }
            let tail = &name[pre.len()..];
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob_match(rest, &tail[i..]))
        }
    }
}

impl Loader for FsLoader {
    fn include(&mut self, pattern: &str, from: &str) -> Result<Vec<(String, String)>, String> {
        let path = resolve(pattern, from);
        let fname = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if !fname.contains('*') {
            return Ok(vec![(path.display().to_string(), read(&path)?)]);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| glob_match(fname, n))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let p = dir.join(&n);
                Ok((p.display().to_string(), read(&p)?))
            })
            .collect()
    }

    fn data(&mut self, name: &str, from: &str) -> Result<String, String> {
        read(&resolve(name, from))
    }
}

/// Loads files in order into one rule set (e.g. `crs-setup.conf`, then `rules/*.conf`).
pub fn load_files(paths: &[PathBuf]) -> crate::Result<crate::Ruleset> {
    let mut b = crate::RulesetBuilder::new();
    let mut loader = FsLoader;
    for p in paths {
        let text = read(p).map_err(|m| crate::WafError::Load {
            file: p.display().to_string(),
            line: 0,
            path: p.display().to_string(),
            message: m,
        })?;
        b.add(&p.display().to_string(), &text, &mut loader)?;
    }
    b.build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs() {
        assert!(super::glob_match("*.conf", "REQUEST-901.conf"));
        assert!(!super::glob_match("*.conf", "x.data"));
        assert!(super::glob_match("a*b*c", "aXbYc"));
    }
}
