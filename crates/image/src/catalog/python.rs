//! Python: installed distributions (`*.dist-info/METADATA`, `*.egg-info`), pinned requirements,
//! poetry.lock and Pipfile.lock.

use super::{Cataloged, Ecosystem, Package, field, paragraphs};

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// `METADATA` / `PKG-INFO`: RFC 822 headers up to the first blank line.
pub fn metadata(path: &str, text: &str, out: &mut Cataloged) {
    let head = text.split("\n\n").next().unwrap_or("");
    let paras = paragraphs(head);
    let Some(p) = paras.first() else {
        out.warn(path, "empty package metadata");
        return;
    };
    match (field(p, "Name"), field(p, "Version")) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => {
            out.packages.push(Package::new(Ecosystem::Pypi, n, v, path))
        }
        _ => out.warn(path, "package metadata without Name or Version"),
    }
}

/// `requirements*.txt`: only exact pins (`name==1.2.3`) name a version.
pub fn requirements(path: &str, text: &str, out: &mut Cataloged) {
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let spec = line.split(';').next().unwrap_or("").trim();
        let spec = spec.split(" --hash").next().unwrap_or("").trim();
        let Some((name, version)) = spec.split_once("==") else {
            continue;
        };
        let name = name.split('[').next().unwrap_or("").trim();
        let version = version.trim().trim_start_matches('=');
        let version = version.split([',', ' ']).next().unwrap_or("");
        if name.is_empty() || version.is_empty() || version.contains('*') {
            continue;
        }
        out.packages
            .push(Package::new(Ecosystem::Pypi, name, version, path));
    }
}

#[derive(serde::Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<PoetryPackage>,
}

#[derive(serde::Deserialize)]
struct PoetryPackage {
    name: String,
    version: String,
}

pub fn poetry_lock(path: &str, text: &str, out: &mut Cataloged) {
    match toml::from_str::<PoetryLock>(text) {
        Ok(lock) => {
            for p in lock.package {
                out.packages
                    .push(Package::new(Ecosystem::Pypi, &p.name, &p.version, path));
            }
        }
        Err(e) => out.warn(path, format!("invalid poetry.lock: {}", e.message())),
    }
}

pub fn pipfile_lock(path: &str, content: &[u8], out: &mut Cataloged) {
    let value: serde_json::Value = match serde_json::from_slice(content) {
        Ok(v) => v,
        Err(e) => return out.warn(path, format!("invalid Pipfile.lock: {e}")),
    };
    for section in ["default", "develop"] {
        let Some(deps) = value.get(section).and_then(|d| d.as_object()) else {
            continue;
        };
        for (name, spec) in deps {
            if let Some(v) = spec
                .get("version")
                .and_then(|v| v.as_str())
                .and_then(|v| v.strip_prefix("=="))
            {
                out.packages.push(Package::new(Ecosystem::Pypi, name, v, path));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_info_metadata() {
        let mut out = Cataloged::default();
        metadata(
            "/x/PyYAML-5.3.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: PyYAML\nVersion: 5.3\nSummary: YAML\n\nbody Name: nope\n",
            &mut out,
        );
        let p = &mut out.packages[0];
        p.finish_purl(None);
        assert_eq!(p.purl, "pkg:pypi/pyyaml@5.3");
        let mut bad = Cataloged::default();
        metadata("/x/METADATA", "garbage\n", &mut bad);
        assert!(bad.packages.is_empty() && bad.warnings.len() == 1);
    }

    #[test]
    fn pinned_requirements_only() {
        let mut out = Cataloged::default();
        requirements(
            "/app/requirements.txt",
            "# c\nrequests==2.19.1\nurllib3 == 1.24.1 ; python_version > '3'\nflask>=1.0\n-r other.txt\nJinja2[i18n]==2.10 --hash=sha256:abc\nzope.interface==5.*\n",
            &mut out,
        );
        let got: Vec<(&str, &str)> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("requests", "2.19.1"), ("urllib3", "1.24.1"), ("Jinja2", "2.10")]
        );
    }

    #[test]
    fn poetry_and_pipfile_locks() {
        let mut out = Cataloged::default();
        poetry_lock(
            "/p/poetry.lock",
            "[[package]]\nname = \"Django\"\nversion = \"3.2.0\"\n\n[metadata]\nlock-version = \"2.0\"\n",
            &mut out,
        );
        pipfile_lock(
            "/p/Pipfile.lock",
            br#"{"default":{"flask":{"version":"==1.0.2"}},"develop":{"pytest":{"version":"==7.0.0"}}}"#,
            &mut out,
        );
        poetry_lock("/p/poetry.lock", "[[package]\n", &mut out);
        assert_eq!(out.packages.len(), 3);
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(normalize_name("Zope.Interface__x"), "zope-interface-x");
    }
}
