//! Finding and reading manifest files: paths given by the user, directories walked recursively,
//! `-` for standard input. Reads are bounded; symlinked directories are not followed, so a link loop
//! cannot make the walk endless.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Bounds on what one scan reads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file (or standard input) accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most files one scan takes from directory walks.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 * 1024 * 1024,
            max_files: 1_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("not UTF-8 text (byte {offset})")]
    NotUtf8 { offset: usize },
    #[error("no such file or directory")]
    NotFound,
    #[error("more than {limit} files")]
    TooManyFiles { limit: usize },
}

/// One input to read: a file path or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputFile {
    Path(PathBuf),
    Stdin,
}

impl InputFile {
    /// The name findings use for this input (`-` for standard input).
    pub fn display_name(&self) -> String {
        match self {
            InputFile::Path(p) => p.display().to_string(),
            InputFile::Stdin => "-".to_string(),
        }
    }
}

/// Manifest file extensions picked up from directories. Files named explicitly are read whatever
/// their extension.
fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("yaml" | "yml" | "json")
    )
}

/// Expands the user's paths into the files to read, in a stable (sorted) order. Errors name the path.
pub fn discover(paths: &[String], limits: &Limits) -> Result<Vec<InputFile>, (String, InputError)> {
    let mut out = Vec::new();
    for arg in paths {
        if arg == "-" {
            out.push(InputFile::Stdin);
            continue;
        }
        let path = PathBuf::from(arg);
        let meta = std::fs::metadata(&path).map_err(|e| {
            let err = if e.kind() == std::io::ErrorKind::NotFound {
                InputError::NotFound
            } else {
                e.into()
            };
            (arg.clone(), err)
        })?;
        if meta.is_dir() {
            walk(&path, &mut out, limits).map_err(|e| (arg.clone(), e))?;
        } else {
            out.push(InputFile::Path(path));
        }
        if out.len() > limits.max_files {
            return Err((
                arg.clone(),
                InputError::TooManyFiles {
                    limit: limits.max_files,
                },
            ));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<InputFile>, limits: &Limits) -> Result<(), InputError> {
    let first = out.len();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue; // .git, .github, editor state
            }
            let file_type = entry.file_type()?;
            let path = entry.path();
            if file_type.is_dir() {
                subdirs.push(path);
            } else if (file_type.is_file() || file_type.is_symlink()) && is_manifest_name(&path) {
                if file_type.is_symlink() && !path.is_file() {
                    continue;
                }
                out.push(InputFile::Path(path));
                if out.len() > limits.max_files {
                    return Err(InputError::TooManyFiles {
                        limit: limits.max_files,
                    });
                }
            }
        }
        stack.extend(subdirs);
    }
    out[first..].sort_by(|a, b| match (a, b) {
        (InputFile::Path(a), InputFile::Path(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    });
    Ok(())
}

/// Reads one input whole, bounded by `limits.max_file_bytes`, as UTF-8 text.
pub fn read_input(input: &InputFile, limits: &Limits) -> Result<String, InputError> {
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = match input {
        InputFile::Stdin => Box::new(std::io::stdin().lock()),
        InputFile::Path(p) => {
            let file = std::fs::File::open(p).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    InputError::NotFound
                } else {
                    e.into()
                }
            })?;
            Box::new(file)
        }
    };
    reader.take(limits.max_file_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(InputError::TooLarge {
            limit: limits.max_file_bytes,
        });
    }
    String::from_utf8(bytes).map_err(|e| InputError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_skips_hidden_and_limits_size() {
        let dir = std::env::temp_dir().join(format!("palisade-k8s-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b/.git")).unwrap();
        std::fs::create_dir_all(dir.join("a")).unwrap();
        for f in ["a/x.yaml", "b/y.yml", "b/.git/z.yaml", "b/readme.md", "c.json"] {
            std::fs::write(dir.join(f), "k: v\n").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(&dir, dir.join("b/loop")).unwrap();
        let limits = Limits::default();
        let found: Vec<String> = discover(&[dir.display().to_string()], &limits)
            .unwrap()
            .iter()
            .map(|f| {
                f.display_name()
                    .strip_prefix(&dir.display().to_string())
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(found, vec!["/a/x.yaml", "/b/y.yml", "/c.json"]);

        let small = Limits {
            max_file_bytes: 3,
            ..limits
        };
        let err = read_input(&InputFile::Path(dir.join("c.json")), &small).unwrap_err();
        assert!(matches!(err, InputError::TooLarge { limit: 3 }));
        std::fs::write(dir.join("bad.yaml"), [b'a', 0xff, b'b']).unwrap();
        let err = read_input(&InputFile::Path(dir.join("bad.yaml")), &limits).unwrap_err();
        assert!(matches!(err, InputError::NotUtf8 { offset: 1 }));
        assert!(matches!(
            discover(&["/nonexistent/x".into()], &limits),
            Err((_, InputError::NotFound))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
