//! Software bills of materials for a scanned image or directory: CycloneDX 1.6 JSON and SPDX 2.3 JSON.
//! Pure functions of the report (and the vulnerability matches): no clock, no randomness, no I/O, so
//! the same inputs always give the same document and golden files can pin the shape users rely on.
//! The caller supplies the creation time.

pub mod cyclonedx;
pub mod spdx;

use crate::catalog::Package;
use crate::scan::ImageReport;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// What an SBOM needs besides the report.
#[derive(Debug, Clone)]
pub struct SbomOptions {
    /// palisade's version, named as the tool that made the document.
    pub tool_version: String,
    /// Creation time, RFC 3339 in UTC (`2026-11-30T02:00:00Z`); see [`rfc3339_utc`].
    pub created: String,
}

pub use palisade_core::date::rfc3339_utc;

/// A name-based UUID (RFC 9562 version 8: SHA-256 of the name, version and variant bits set), so a
/// document's serial number and namespace are stable for the same image, content and time.
pub(crate) fn name_uuid(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p.as_bytes());
        hasher.update([0x1f]);
    }
    let digest = hasher.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The document's identity: image digest (or target), creation time and every package, so two
/// different inventories never share a serial number.
pub(crate) fn document_uuid(report: &ImageReport, options: &SbomOptions, kind: &str) -> String {
    let mut parts: Vec<&str> = vec![
        kind,
        &options.created,
        report
            .manifest_digest
            .as_deref()
            .or(report.config_digest.as_deref())
            .unwrap_or(&report.target),
    ];
    for p in &report.packages {
        parts.push(&p.purl);
        parts.push(&p.path);
    }
    name_uuid(&parts)
}

/// What the document describes: the image (name, tag, digests) or the scanned directory.
pub(crate) struct Subject {
    pub name: String,
    pub version: Option<String>,
    pub is_image: bool,
    /// Hex of the manifest digest, when the image has one.
    pub sha256: Option<String>,
    pub purl: Option<String>,
}

impl Subject {
    pub fn of(report: &ImageReport) -> Subject {
        let is_image = report.format.is_some();
        // `registry:5000/team/app:1.0` → repository `registry:5000/team/app`, tag `1.0`. An OCI layout's
        // `org.opencontainers.image.ref.name` is often a bare tag (`latest`): no repository then.
        let (repository, tag) = match report.repo_tags.first() {
            Some(t) if !t.contains(['/', ':']) => (None, Some(t.clone())),
            Some(t) => match t.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (Some(repo.to_string()), Some(tag.to_string())),
                _ => (Some(t.clone()), None),
            },
            None => (None, None),
        };
        // Without a repository the last path segment of the target names the image.
        let fallback_name = report
            .target
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("image")
            .to_string();
        let sha256 = report
            .manifest_digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
            .map(str::to_string);
        // pkg:oci/<last path segment>@<manifest digest>?repository_url=...&tag=... (purl-spec `oci`).
        let purl = match (&sha256, is_image) {
            (Some(hex), true) => {
                let base = repository.as_deref().map(|r| r.rsplit('/').next().unwrap_or(r));
                let name = base.unwrap_or(&fallback_name).to_lowercase();
                let digest = format!("sha256:{hex}");
                Some(crate::purl::build(
                    "oci",
                    None,
                    &name,
                    &digest,
                    &[
                        ("repository_url", repository.as_deref().unwrap_or("")),
                        ("tag", tag.as_deref().unwrap_or("")),
                    ],
                ))
            }
            _ => None,
        };
        let version = tag
            .or_else(|| report.manifest_digest.clone())
            .or_else(|| report.config_digest.clone());
        Subject {
            name: match (repository, is_image) {
                (Some(r), _) => r,
                (None, true) => fallback_name,
                (None, false) => report.target.clone(),
            },
            version: if is_image { version } else { None },
            is_image,
            sha256,
            purl,
        }
    }
}

/// Stable, unique references for the packages, in report order: the purl, made unique with the
/// declaring file when the same purl appears in several places.
pub(crate) fn package_refs(packages: &[Package]) -> Vec<String> {
    let mut seen = HashSet::new();
    packages
        .iter()
        .map(|p| {
            let base = if p.purl.is_empty() {
                format!("{}:{}@{}", p.ecosystem, p.name, p.version)
            } else {
                p.purl.clone()
            };
            let mut candidate = base.clone();
            if !seen.contains(&candidate) {
                seen.insert(candidate.clone());
                return candidate;
            }
            candidate = format!("{base}#{}", p.path);
            let mut n = 2;
            while seen.contains(&candidate) {
                candidate = format!("{base}#{}#{n}", p.path);
                n += 1;
            }
            seen.insert(candidate.clone());
            candidate
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testdata {
    use crate::catalog::{Ecosystem, OsInfo, Package};
    use crate::layers::LayerInfo;
    use crate::scan::ImageReport;
    use crate::vulns::{Vulnerabilities, VulnerabilityRow};

    fn package(ecosystem: Ecosystem, name: &str, version: &str, path: &str, layer: usize) -> Package {
        let mut p = Package::new(ecosystem, name, version, path);
        p.layer = Some(layer);
        p.layer_digest = Some(format!("sha256:{}", format!("{layer}").repeat(64)));
        p.layer_created_by = Some(format!("layer {layer} command"));
        p
    }

    /// A two-layer Debian image with an OS package, a jar and the same npm package twice.
    pub fn report() -> ImageReport {
        let os = OsInfo {
            id: "debian".into(),
            version_id: "13".into(),
            version_codename: "trixie".into(),
            pretty_name: "Debian GNU/Linux 13 (trixie)".into(),
            path: "/etc/os-release".into(),
            layer: Some(0),
        };
        let mut packages = vec![
            package(Ecosystem::Deb, "libc6", "2.41-12", "/var/lib/dpkg/status", 0),
            package(
                Ecosystem::Maven,
                "log4j-core",
                "2.14.1",
                "/app/lib/log4j-core-2.14.1.jar",
                1,
            ),
            package(
                Ecosystem::Npm,
                "lodash",
                "4.17.15",
                "/app/web/node_modules/lodash/package.json",
                1,
            ),
            package(
                Ecosystem::Npm,
                "lodash",
                "4.17.15",
                "/app/other/node_modules/lodash/package.json",
                1,
            ),
        ];
        packages[0].arch = Some("amd64".into());
        packages[1].namespace = Some("org.apache.logging.log4j".into());
        for p in &mut packages {
            p.finish_purl(Some(&os));
        }
        let layers = (0..2)
            .map(|i| LayerInfo {
                index: i,
                digest: format!("sha256:{}", format!("{i}").repeat(64)),
                blob_digest: None,
                history: None,
                compression: "gzip",
                compressed_size: 100,
                uncompressed_size: 1000,
                entries: 10,
            })
            .collect();
        ImageReport {
            target: "app.tar".into(),
            format: Some(crate::source::ImageFormat::OciLayout),
            manifest_digest: Some(format!("sha256:{}", "ab".repeat(32))),
            config_digest: Some(format!("sha256:{}", "cd".repeat(32))),
            repo_tags: vec!["registry.example:5000/team/app:1.0".into()],
            os: Some(os),
            config: None,
            layers,
            packages,
            warnings: Vec::new(),
            filesystem: Default::default(),
        }
    }

    pub fn vulnerabilities(report: &ImageReport) -> Vulnerabilities {
        let log4j = &report.packages[1];
        let advisory = palisade_vulndb::VulnMatch {
            id: "GHSA-jfh8-c2jp-5v3q".into(),
            aliases: vec!["CVE-2021-44228".into()],
            summary: Some("Remote code injection in Log4j".into()),
            severity: Some(palisade_core::Severity::Critical),
            cvss: Some(palisade_vulndb::matcher::CvssScore {
                kind: "CVSS_V3".into(),
                vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H".into(),
                score: Some(10.0),
            }),
            fixed_versions: vec!["2.15.0".into()],
            ecosystem: "Maven".into(),
            package: "org.apache.logging.log4j:log4j-core".into(),
            published: Some("2021-12-10T00:00:00Z".into()),
            modified: Some("2024-03-15T11:22:33.123456Z".into()),
            references: vec!["https://logging.apache.org/log4j/2.x/security.html".into()],
        };
        Vulnerabilities {
            status: "evaluated".into(),
            matches: vec![VulnerabilityRow {
                package: "org.apache.logging.log4j:log4j-core".into(),
                version: log4j.version.clone(),
                ecosystem: "Maven".into(),
                purl: log4j.purl.clone(),
                path: log4j.path.clone(),
                layer: log4j.layer,
                layer_digest: log4j.layer_digest.clone(),
                layer_created_by: log4j.layer_created_by.clone(),
                advisory,
            }],
            unevaluated: Vec::new(),
        }
    }

    /// Compares with a checked-in golden file under `tests/golden`; `PALISADE_BLESS=1` rewrites it.
    pub fn golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("PALISADE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "missing golden file {}; run with PALISADE_BLESS=1",
                path.display()
            )
        });
        assert_eq!(
            actual,
            expected,
            "output differs from {}; review and rerun with PALISADE_BLESS=1",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_uuids() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_795_910_400 + 3661), "2026-11-29T01:01:01Z");
        let a = name_uuid(&["x"]);
        assert_eq!(a, name_uuid(&["x"]));
        assert_ne!(a, name_uuid(&["y"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8", "version 8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "RFC variant");
    }

    #[test]
    fn package_refs_are_unique() {
        let report = testdata::report();
        let refs = package_refs(&report.packages);
        assert_eq!(refs.len(), 4);
        let unique: HashSet<&String> = refs.iter().collect();
        assert_eq!(unique.len(), 4);
        assert_eq!(refs[2], "pkg:npm/lodash@4.17.15");
        assert_eq!(
            refs[3],
            "pkg:npm/lodash@4.17.15#/app/other/node_modules/lodash/package.json"
        );
    }

    #[test]
    fn subject_of_an_oci_layout_with_a_bare_tag() {
        let mut report = testdata::report();
        report.target = "/images/app-vuln/oci".into();
        report.repo_tags = vec!["latest".into()];
        let s = Subject::of(&report);
        assert_eq!(s.name, "oci");
        assert_eq!(s.version.as_deref(), Some("latest"));
        assert_eq!(
            s.purl.as_deref(),
            Some(
                "pkg:oci/oci@sha256:abababababababababababababababababababababababababababababababab?tag=latest"
            )
        );
    }

    #[test]
    fn subject_of_an_image() {
        let s = Subject::of(&testdata::report());
        assert_eq!(s.name, "registry.example:5000/team/app");
        assert_eq!(s.version.as_deref(), Some("1.0"));
        assert_eq!(
            s.purl.as_deref(),
            Some(
                "pkg:oci/app@sha256:abababababababababababababababababababababababababababababababab?repository_url=registry.example:5000%2Fteam%2Fapp&tag=1.0"
            )
        );
    }
}
