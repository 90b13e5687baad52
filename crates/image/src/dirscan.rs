//! Walking a directory for `scan fs`: symlinks are never followed (a link is not a file of this
//! tree), special files are skipped, and the same entry, size and path limits as for images apply.

use crate::layers::{FileRef, FileVisitor};
use crate::{ImageError, Limits, Result};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Offers every regular file to the visitors, as the layer walker does for images (all files are
/// layer 0); `path` is absolute from `root` (`/etc/os-release`). Content is read once, only for
/// files some visitor wants.
pub fn walk(
    root: &Path,
    limits: &Limits,
    warnings: &mut Vec<crate::catalog::Warning>,
    visitors: &mut [&mut dyn FileVisitor],
) -> Result<()> {
    let meta = fs::symlink_metadata(root).map_err(|e| ImageError::io(root.display(), e))?;
    if !meta.is_dir() {
        return Err(ImageError::Invalid(format!(
            "{}: not a directory",
            root.display()
        )));
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let mut count = 0u64;
    let mut buf = Vec::new();
    while let Some((dir, rel)) = stack.pop() {
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                warnings.push(crate::catalog::Warning {
                    path: rel_or_root(&rel),
                    message: format!("cannot read directory: {e}"),
                });
                continue;
            }
        };
        let mut children: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        children.sort_by_key(|e| e.file_name());
        for entry in children {
            count += 1;
            if count > limits.max_entries {
                return Err(ImageError::LimitExceeded {
                    layer: root.display().to_string(),
                    what: "file count",
                    limit: limits.max_entries,
                });
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = format!("{rel}/{name}");
            if child_rel.len() > limits.max_path_len {
                continue;
            }
            // symlink_metadata: the link itself, never its target.
            let Ok(m) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if m.is_dir() {
                stack.push((entry.path(), child_rel));
            } else if m.is_file() {
                let mode = m.permissions().mode();
                let file = FileRef {
                    path: &child_rel,
                    size: m.len(),
                    mode,
                    layer: 0,
                };
                let wanted: Vec<usize> = (0..visitors.len())
                    .filter(|&i| visitors[i].wants(&file))
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                if m.len() > limits.max_visit_bytes {
                    warnings.push(crate::catalog::Warning {
                        path: child_rel.clone(),
                        message: format!("{} bytes is over the per-file limit; not scanned", m.len()),
                    });
                    continue;
                }
                buf.clear();
                let read = fs::File::open(entry.path())
                    .and_then(|f| f.take(limits.max_visit_bytes).read_to_end(&mut buf));
                match read {
                    Ok(_) => {
                        for i in wanted {
                            visitors[i].visit(&file, &buf);
                        }
                    }
                    Err(e) => warnings.push(crate::catalog::Warning {
                        path: child_rel.clone(),
                        message: format!("cannot read: {e}"),
                    }),
                }
            }
        }
    }
    Ok(())
}

fn rel_or_root(rel: &str) -> String {
    if rel.is_empty() {
        "/".into()
    } else {
        rel.to_string()
    }
}
