//! The real test images (built by ../shared/tools/build-test-images.sh into $PALISADE_TEST_IMAGES):
//! every planted package is found with its layer, whiteouts are applied, deleted files stay visible
//! to visitors, in docker-archive, OCI layout and OCI archive form.

use palisade_image::layers::FileStatus;
use palisade_image::{
    Ecosystem, FileRef, FileVisitor, ImageReport, Limits, Platform, RemovedHow, scan_image,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn images_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PALISADE_TEST_IMAGES").map(PathBuf::from);
    match dir {
        Some(d) if d.join("app-vuln/expected.json").is_file() => Some(d),
        _ => {
            eprintln!(
                "\n*** SKIPPED: set PALISADE_TEST_IMAGES to the output folder of ../shared/tools/build-test-images.sh ***\n"
            );
            None
        }
    }
}

#[derive(Default)]
struct Seen(Vec<(String, usize)>);

impl FileVisitor for Seen {
    fn wants(&self, f: &FileRef<'_>) -> bool {
        f.path.starts_with("/app/tmp/") || f.path.starts_with("/app/cache/")
    }
    fn visit(&mut self, f: &FileRef<'_>, _content: &[u8]) {
        self.0.push((f.path.to_string(), f.layer));
    }
}

/// The OCI layout packed into one tar, as `skopeo copy oci-archive:` writes it.
fn oci_archive(layout: &Path, tmp: &Path) -> PathBuf {
    let out = tmp.join("oci-archive.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&out).unwrap());
    b.append_dir_all(".", layout).unwrap();
    b.finish().unwrap();
    out
}

fn find<'a>(
    r: &'a ImageReport,
    eco: Ecosystem,
    name: &str,
    version: &str,
) -> Vec<&'a palisade_image::Package> {
    r.packages
        .iter()
        .filter(|p| p.ecosystem == eco && p.name == name && p.version == version)
        .collect()
}

fn layer_index(expected: &Value, name: &str) -> usize {
    expected["layers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|l| l["name"] == name)
        .unwrap()
}

fn check_common(r: &ImageReport, expected: &Value, what: &str) {
    let os = r.os.as_ref().unwrap_or_else(|| panic!("{what}: no OS"));
    assert_eq!(os.id, "debian", "{what}");
    assert_eq!(
        os.version_codename,
        expected["debian_release"].as_str().unwrap(),
        "{what}"
    );
    // Layers: every diff id verified and in order; history attached.
    let layers = expected["layers"].as_array().unwrap();
    assert_eq!(r.layers.len(), layers.len(), "{what}");
    for (got, want) in r.layers.iter().zip(layers) {
        assert_eq!(got.digest, want["diff_id"].as_str().unwrap(), "{what}");
        assert_eq!(
            got.uncompressed_size,
            want["uncompressed_size"].as_u64().unwrap(),
            "{what}"
        );
        assert!(
            got.history.as_ref().and_then(|h| h.created_by.as_ref()).is_some(),
            "{what}: layer without history"
        );
    }
    // dpkg: many packages, all from the rootfs layer, with Debian purls and source names.
    let debs: Vec<_> = r
        .packages
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Deb)
        .collect();
    assert!(debs.len() > 50, "{what}: only {} deb packages", debs.len());
    assert!(
        debs.iter()
            .all(|p| p.layer == Some(0) && p.path == "/var/lib/dpkg/status"),
        "{what}"
    );
    let libc = debs.iter().find(|p| p.name == "libc6").expect("libc6");
    assert_eq!(libc.source_name.as_deref(), Some("glibc"));
    assert!(
        libc.purl.starts_with("pkg:deb/debian/libc6@") && libc.purl.contains("distro=debian-"),
        "{}",
        libc.purl
    );
    // Whiteouts of layer 2.
    let fs = &r.filesystem;
    let l2 = layer_index(expected, "l2-changes");
    for w in expected["whiteouts"].as_array().unwrap() {
        let path = w["path"].as_str().unwrap();
        let by = layer_index(expected, w["layer"].as_str().unwrap());
        if w["kind"].as_str().unwrap().starts_with("opaque") {
            continue;
        }
        assert!(
            !fs.entries.contains_key(path),
            "{what}: {path} should be whited out"
        );
        assert!(
            fs.removed
                .iter()
                .any(|e| e.path == path && e.removed_in == by && e.how == RemovedHow::Whiteout),
            "{what}: {path}"
        );
    }
    assert!(
        !fs.entries.keys().any(|k| k.starts_with("/usr/share/doc/apt/")),
        "{what}"
    );
    assert_eq!(fs.entries["/etc/motd"].layer, l2, "{what}");
    assert_eq!(
        fs.status("/etc/motd", 0),
        FileStatus::Removed {
            by_layer: l2,
            how: RemovedHow::Overwritten
        }
    );
    for added in expected["added"].as_array().unwrap() {
        assert_eq!(fs.entries[added.as_str().unwrap()].layer, l2, "{what}");
    }
}

fn scan(path: &Path, seen: &mut Seen) -> ImageReport {
    let platform = Platform::parse("linux/amd64").unwrap();
    scan_image(path, Some(&platform), &Limits::default(), &mut [seen])
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn debian_base_both_formats() {
    let Some(dir) = images_dir() else { return };
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("debian-base/expected.json")).unwrap()).unwrap();
    for input in ["docker-archive.tar", "oci"] {
        let r = scan(&dir.join("debian-base").join(input), &mut Seen::default());
        check_common(&r, &expected, input);
        assert_eq!(r.config.as_ref().unwrap().user, "65534:65534");
        assert_eq!(r.config_digest.as_deref(), expected["config_digest"].as_str());
    }
}

#[test]
fn app_vuln_all_formats() {
    let Some(dir) = images_dir() else { return };
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("app-vuln/expected.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let archive = oci_archive(&dir.join("app-vuln/oci"), tmp.path());
    let l3 = layer_index(&expected, "l3-app");
    let l4 = layer_index(&expected, "l4-cleanup");
    for input in [
        dir.join("app-vuln/docker-archive.tar"),
        dir.join("app-vuln/oci"),
        archive,
    ] {
        let what = input.display().to_string();
        let mut seen = Seen::default();
        let r = scan(&input, &mut seen);
        check_common(&r, &expected, &what);
        let from_app = |p: &&palisade_image::Package| {
            p.layer == Some(l3)
                && p.layer_digest.as_deref() == expected["layers"][l3]["diff_id"].as_str()
                && p.layer_created_by
                    .as_deref()
                    .is_some_and(|c| c.starts_with("layer 3"))
        };
        let site = expected["python_site_packages"].as_str().unwrap();
        for p in expected["pypi"].as_array().unwrap() {
            let (n, v) = (p["name"].as_str().unwrap(), p["version"].as_str().unwrap());
            let hits = find(&r, Ecosystem::Pypi, n, v);
            assert!(
                hits.iter()
                    .any(|h| h.path.starts_with(site) && h.path.ends_with("/METADATA") && from_app(h)),
                "{what}: pypi {n} {v} installed: {hits:?}"
            );
            assert!(
                hits.iter()
                    .any(|h| h.path == "/app/requirements.txt" && from_app(h)),
                "{what}: pypi {n} {v} in requirements.txt"
            );
        }
        for p in expected["npm"].as_array().unwrap() {
            let (n, v) = (p["name"].as_str().unwrap(), p["version"].as_str().unwrap());
            let hits = find(&r, Ecosystem::Npm, n, v);
            let installed = format!("{}/package.json", p["path"].as_str().unwrap());
            assert!(
                hits.iter().any(|h| h.path == installed && from_app(h)),
                "{what}: npm {n} {v}: {hits:?}"
            );
            assert!(
                hits.iter().any(|h| h.path == "/app/web/package-lock.json"),
                "{what}: npm {n} {v} in the lock"
            );
        }
        for p in expected["cargo_lock"]["vulnerable"].as_array().unwrap() {
            let (n, v) = (p["name"].as_str().unwrap(), p["version"].as_str().unwrap());
            let hits = find(&r, Ecosystem::Cargo, n, v);
            assert!(
                hits.iter().any(|h| h.path == expected["cargo_lock"]["path"]
                    && from_app(h)
                    && h.purl == format!("pkg:cargo/{n}@{v}")),
                "{what}: cargo {n} {v}"
            );
        }
        for p in expected["go"]["go_sum_modules"].as_array().unwrap() {
            let (n, v) = (p["name"].as_str().unwrap(), p["version"].as_str().unwrap());
            let hits = find(&r, Ecosystem::Go, n, v);
            assert!(
                hits.iter()
                    .any(|h| h.path == expected["go"]["go_mod"] && from_app(h)),
                "{what}: go.mod {n} {v}"
            );
            assert!(
                hits.iter().any(|h| h.path.ends_with("/go.sum") && from_app(h)),
                "{what}: go.sum {n} {v}"
            );
        }
        if let Some(bin) = expected["go"]["binary"].as_str() {
            let go = expected["go"]["binary_go_version"].as_str().unwrap();
            let std = find(
                &r,
                Ecosystem::Go,
                "stdlib",
                &format!("v{}", go.trim_start_matches("go")),
            );
            assert!(
                std.iter().any(|h| h.path == bin && from_app(h)),
                "{what}: Go stdlib {go} in {bin}"
            );
            assert!(
                r.packages
                    .iter()
                    .any(|p| p.path == bin && p.name == "example.com/hello"),
                "{what}: Go main module"
            );
        }
        for p in expected["maven"].as_array().unwrap() {
            let (a, v) = (p["artifactId"].as_str().unwrap(), p["version"].as_str().unwrap());
            let hits = find(&r, Ecosystem::Maven, a, v);
            assert!(
                hits.iter().any(|h| h.path == p["path"]
                    && h.namespace.as_deref() == p["groupId"].as_str()
                    && from_app(h)),
                "{what}: maven {a} {v}: {hits:?}"
            );
        }
        // Whiteouts of layer 4: the deleted secret file is gone but was shown to visitors.
        let fs = &r.filesystem;
        let deleted = "/app/tmp/old-credentials.txt";
        assert!(!fs.entries.contains_key(deleted));
        assert!(
            seen.0.contains(&(deleted.to_string(), l3)),
            "{what}: visitor never saw {deleted}"
        );
        assert_eq!(
            fs.status(deleted, l3),
            FileStatus::Removed {
                by_layer: l4,
                how: RemovedHow::Whiteout
            }
        );
        for hidden in ["/app/cache/a.bin", "/app/cache/b.bin"] {
            assert!(!fs.entries.contains_key(hidden), "{what}: {hidden}");
            assert_eq!(
                fs.status(hidden, l3),
                FileStatus::Removed {
                    by_layer: l4,
                    how: RemovedHow::OpaqueDir
                }
            );
        }
        assert_eq!(fs.entries["/app/cache/new.bin"].layer, l4);
        // Config.
        let c = r.config.as_ref().unwrap();
        assert!(c.user.is_empty());
        assert!(c.exposed_ports.contains(&"22/tcp".to_string()));
        assert!(c.env.iter().any(|e| e.starts_with("DB_PASSWORD=")));
        assert_eq!(r.config_digest.as_deref(), expected["config_digest"].as_str());
        assert!(r.warnings.is_empty(), "{what}: {:?}", r.warnings);
    }
}

#[test]
fn wrong_platform_is_a_clear_error() {
    let Some(dir) = images_dir() else { return };
    let arm = Platform::parse("linux/arm64").unwrap();
    let err = scan_image(
        &dir.join("debian-base/oci"),
        Some(&arm),
        &Limits::default(),
        &mut [],
    )
    .unwrap_err();
    assert!(err.to_string().contains("linux/arm64"), "{err}");
}

#[test]
fn selected_final_files_can_be_read_back() {
    let Some(dir) = images_dir() else { return };
    let src = palisade_image::open_image(&dir.join("app-vuln/oci"), None, &Limits::default()).unwrap();
    let r = palisade_image::scan::scan_source(&src, &Limits::default(), &mut []).unwrap();
    let files = palisade_image::scan::read_final_files(
        &src,
        &r.filesystem,
        &["/etc/motd", "/app/cache/new.bin", "/app/tmp/old-credentials.txt"],
        &Limits::default(),
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&files["/etc/motd"]).contains("layer 2"));
    assert_eq!(files["/app/cache/new.bin"], b"after opaque\n");
    assert!(!files.contains_key("/app/tmp/old-credentials.txt"));
}
