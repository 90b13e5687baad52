//! Catalogers: pure functions from one file's path and bytes to the packages (or OS release) it
//! declares. They never read other files and never fail the scan: a malformed file becomes a warning
//! naming the path.

pub mod golang;
pub mod java;
pub mod js;
pub mod lockfiles;
pub mod os;
pub mod python;

use crate::Limits;
use crate::purl;
use serde::Serialize;

pub use os::OsInfo;

/// How a package was packaged; together with the OS release it gives the OSV ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Deb,
    Apk,
    Rpm,
    Pypi,
    Npm,
    Cargo,
    Go,
    Maven,
    Gem,
    Composer,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "cargo",
            Ecosystem::Go => "go",
            Ecosystem::Maven => "maven",
            Ecosystem::Gem => "gem",
            Ecosystem::Composer => "composer",
        }
    }

    /// The OSV ecosystem name for language packages (`PyPI`, `npm`, `crates.io`, ...); OS packages
    /// need the release, see [`Package::osv_ecosystem`].
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Deb => "Debian",
            Ecosystem::Apk => "Alpine",
            Ecosystem::Rpm => "Red Hat",
            Ecosystem::Pypi => "PyPI",
            Ecosystem::Npm => "npm",
            Ecosystem::Cargo => "crates.io",
            Ecosystem::Go => "Go",
            Ecosystem::Maven => "Maven",
            Ecosystem::Gem => "RubyGems",
            Ecosystem::Composer => "Packagist",
        }
    }
}

impl std::fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One package found in an image or directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    /// Maven group, npm scope is part of `name` (`@scope/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The source package (Debian `Source:`, rpm source rpm, apk origin) and its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// rpm epoch, kept apart from `version` as rpm tools do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// The file that declared it (`/var/lib/dpkg/status`, `/app/lib/x.war!/WEB-INF/lib/y.jar`).
    pub path: String,
    /// The layer that wrote that file, and the history entry (Dockerfile command) that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_created_by: Option<String>,
    /// The distro qualifier of OS packages (`debian-13`), filled from the OS release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
}

impl Package {
    pub(crate) fn new(ecosystem: Ecosystem, name: &str, version: &str, path: &str) -> Package {
        Package {
            name: name.to_string(),
            version: version.to_string(),
            ecosystem,
            purl: String::new(),
            namespace: None,
            arch: None,
            source_name: None,
            source_version: None,
            epoch: None,
            path: path.to_string(),
            layer: None,
            layer_digest: None,
            layer_created_by: None,
            distro: None,
        }
    }

    /// The OSV ecosystem, with the release for OS packages (`Debian:13`, `Alpine:v3.19`).
    pub fn osv_ecosystem(&self, os: Option<&OsInfo>) -> String {
        let base = self.ecosystem.osv_name();
        match (self.ecosystem, os) {
            (Ecosystem::Deb, Some(os)) if os.id == "ubuntu" => format!("Ubuntu:{}", os.version_id),
            (Ecosystem::Deb, Some(os)) if !os.major_version().is_empty() => {
                format!("Debian:{}", os.major_version())
            }
            (Ecosystem::Apk, Some(os)) if !os.version_id.is_empty() => {
                let mm: Vec<&str> = os.version_id.split('.').take(2).collect();
                format!("Alpine:v{}", mm.join("."))
            }
            _ => base.to_string(),
        }
    }

    /// Fills `purl` (and `distro` for OS packages) from the fields and the OS release.
    pub fn finish_purl(&mut self, os: Option<&OsInfo>) {
        let distro = os.map(|o| o.distro_qualifier()).unwrap_or_default();
        let os_id = os.map(|o| o.id.as_str()).filter(|i| !i.is_empty());
        self.purl = match self.ecosystem {
            Ecosystem::Deb => {
                self.distro = Some(distro.clone()).filter(|d| !d.is_empty());
                let upstream = match (&self.source_name, &self.source_version) {
                    (Some(n), Some(v)) if n != &self.name || v != &self.version => format!("{n}@{v}"),
                    (Some(n), _) if n != &self.name => n.clone(),
                    _ => String::new(),
                };
                purl::build(
                    "deb",
                    Some(os_id.unwrap_or("debian")),
                    &self.name,
                    &self.version,
                    &[
                        ("arch", self.arch.as_deref().unwrap_or("")),
                        ("distro", &distro),
                        ("upstream", &upstream),
                    ],
                )
            }
            Ecosystem::Apk => {
                self.distro = Some(distro.clone()).filter(|d| !d.is_empty());
                purl::build(
                    "apk",
                    Some(os_id.unwrap_or("alpine")),
                    &self.name.to_lowercase(),
                    &self.version,
                    &[("arch", self.arch.as_deref().unwrap_or("")), ("distro", &distro)],
                )
            }
            Ecosystem::Rpm => {
                self.distro = Some(distro.clone()).filter(|d| !d.is_empty());
                purl::build(
                    "rpm",
                    Some(os_id.unwrap_or("redhat")),
                    &self.name,
                    &self.version,
                    &[
                        ("arch", self.arch.as_deref().unwrap_or("")),
                        ("epoch", self.epoch.as_deref().unwrap_or("")),
                        ("distro", &distro),
                    ],
                )
            }
            Ecosystem::Pypi => purl::build(
                "pypi",
                None,
                &python::normalize_name(&self.name),
                &self.version,
                &[],
            ),
            Ecosystem::Npm => match self.name.split_once('/') {
                Some((scope, n)) if scope.starts_with('@') => {
                    purl::build("npm", Some(scope), n, &self.version, &[])
                }
                _ => purl::build("npm", None, &self.name, &self.version, &[]),
            },
            Ecosystem::Cargo => purl::build("cargo", None, &self.name, &self.version, &[]),
            Ecosystem::Go => match self.name.rsplit_once('/') {
                Some((ns, n)) => purl::build("golang", Some(ns), n, &self.version, &[]),
                None => purl::build("golang", None, &self.name, &self.version, &[]),
            },
            Ecosystem::Maven => {
                purl::build("maven", self.namespace.as_deref(), &self.name, &self.version, &[])
            }
            Ecosystem::Gem => purl::build("gem", None, &self.name, &self.version, &[]),
            Ecosystem::Composer => match self.name.split_once('/') {
                Some((vendor, n)) => purl::build("composer", Some(vendor), n, &self.version, &[]),
                None => purl::build("composer", None, &self.name, &self.version, &[]),
            },
        };
    }
}

/// A problem with one file that did not stop the scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

/// What one file yielded.
#[derive(Debug, Default)]
pub struct Cataloged {
    pub packages: Vec<Package>,
    pub os: Option<OsInfo>,
    pub warnings: Vec<Warning>,
}

impl Cataloged {
    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OsRelease,
    Dpkg,
    Apk,
    Rpm,
    PythonMetadata,
    Requirements,
    PoetryLock,
    PipfileLock,
    NpmLock,
    NpmPackageJson,
    YarnLock,
    PnpmLock,
    CargoLock,
    GoMod,
    GoSum,
    Executable,
    Java,
    GemfileLock,
    ComposerLock,
}

fn classify(path: &str, mode: u32) -> Option<Kind> {
    let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = dir.rsplit('/').next().unwrap_or("");
    let kind = match base {
        "os-release" if dir == "/etc" || dir == "/usr/lib" => Kind::OsRelease,
        "status" if dir == "/var/lib/dpkg" => Kind::Dpkg,
        _ if dir == "/var/lib/dpkg/status.d" && !base.ends_with(".md5sums") => Kind::Dpkg,
        "installed" if dir == "/lib/apk/db" => Kind::Apk,
        "rpmdb.sqlite" if dir == "/var/lib/rpm" || dir == "/usr/lib/sysimage/rpm" => Kind::Rpm,
        "METADATA" if parent.ends_with(".dist-info") => Kind::PythonMetadata,
        "PKG-INFO" if parent.ends_with(".egg-info") => Kind::PythonMetadata,
        _ if base.ends_with(".egg-info") && !base.starts_with('.') => Kind::PythonMetadata,
        _ if base.starts_with("requirements") && base.ends_with(".txt") => Kind::Requirements,
        "poetry.lock" => Kind::PoetryLock,
        "Pipfile.lock" => Kind::PipfileLock,
        "package-lock.json" | "npm-shrinkwrap.json" => Kind::NpmLock,
        "package.json" if js::is_installed_package_json(path) => Kind::NpmPackageJson,
        "yarn.lock" => Kind::YarnLock,
        "pnpm-lock.yaml" => Kind::PnpmLock,
        "Cargo.lock" => Kind::CargoLock,
        "go.mod" => Kind::GoMod,
        "go.sum" => Kind::GoSum,
        "Gemfile.lock" => Kind::GemfileLock,
        "composer.lock" => Kind::ComposerLock,
        _ if [".jar", ".war", ".ear", ".jpi", ".hpi"]
            .iter()
            .any(|e| base.ends_with(e)) =>
        {
            Kind::Java
        }
        _ if mode & 0o111 != 0 => Kind::Executable,
        _ => return None,
    };
    Some(kind)
}

/// Whether any cataloger wants to read this regular file.
pub fn wants(path: &str, size: u64, mode: u32) -> bool {
    match classify(path, mode) {
        // Go binaries are at least a megabyte; smaller executables are scripts and C tools.
        Some(Kind::Executable) => size >= 512 * 1024,
        Some(_) => true,
        None => false,
    }
}

/// Runs the cataloger for `path` over `content`.
pub fn catalog_file(path: &str, mode: u32, content: &[u8], limits: &Limits) -> Cataloged {
    let mut out = Cataloged::default();
    let Some(kind) = classify(path, mode) else {
        return out;
    };
    let text = || String::from_utf8_lossy(content);
    match kind {
        Kind::OsRelease => out.os = Some(os::parse_os_release(&text())),
        Kind::Dpkg => os::dpkg(path, &text(), &mut out),
        Kind::Apk => os::apk(path, &text(), &mut out),
        Kind::Rpm => os::rpm(path, content, &mut out),
        Kind::PythonMetadata => python::metadata(path, &text(), &mut out),
        Kind::Requirements => python::requirements(path, &text(), &mut out),
        Kind::PoetryLock => python::poetry_lock(path, &text(), &mut out),
        Kind::PipfileLock => python::pipfile_lock(path, content, &mut out),
        Kind::NpmLock => js::package_lock(path, content, &mut out),
        Kind::NpmPackageJson => js::package_json(path, content, &mut out),
        Kind::YarnLock => js::yarn_lock(path, &text(), &mut out),
        Kind::PnpmLock => js::pnpm_lock(path, &text(), &mut out),
        Kind::CargoLock => lockfiles::cargo_lock(path, &text(), &mut out),
        Kind::GoMod => golang::go_mod(path, &text(), &mut out),
        Kind::GoSum => golang::go_sum(path, &text(), &mut out),
        Kind::Executable => golang::binary(path, content, &mut out),
        Kind::Java => java::archive(path, content, limits, &mut out),
        Kind::GemfileLock => lockfiles::gemfile_lock(path, &text(), &mut out),
        Kind::ComposerLock => lockfiles::composer_lock(path, content, &mut out),
    }
    out
}

/// Parses `Key: value` paragraphs (dpkg status, RFC 822 metadata); continuation lines are joined.
pub(crate) fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = cur.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) fn field<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(wants("/var/lib/dpkg/status", 10, 0o644));
        assert!(wants("/var/lib/dpkg/status.d/base", 10, 0o644));
        assert!(!wants("/var/lib/dpkg/status.d/base.md5sums", 10, 0o644));
        assert!(wants("/app/web/node_modules/lodash/package.json", 10, 0o644));
        assert!(!wants("/app/web/node_modules/lodash/fp/package.json", 10, 0o644));
        assert!(!wants("/usr/bin/small", 1000, 0o755));
        assert!(wants("/usr/bin/big", 2 << 20, 0o755));
        assert!(!wants("/etc/passwd", 10, 0o644));
    }
}
