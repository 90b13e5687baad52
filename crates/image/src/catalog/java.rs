//! Java archives (jar, war, ear): `META-INF/maven/**/pom.properties`, else the manifest's
//! Implementation-*/Bundle-* attributes, else the file name; nested archives are opened in memory
//! up to a depth and size bound.

use super::{Cataloged, Ecosystem, Package};
use crate::Limits;
use std::io::{Cursor, Read};

const MAX_META_BYTES: u64 = 256 * 1024;

pub fn archive(path: &str, content: &[u8], limits: &Limits, out: &mut Cataloged) {
    read_archive(path, content, limits, 0, out);
}

fn read_entry(file: &mut impl Read, limit: u64) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    file.take(limit + 1).read_to_end(&mut v).ok()?;
    (v.len() as u64 <= limit).then_some(v)
}

fn read_archive(path: &str, content: &[u8], limits: &Limits, depth: usize, out: &mut Cataloged) {
    let mut zip = match zip::ZipArchive::new(Cursor::new(content)) {
        Ok(z) => z,
        Err(e) => return out.warn(path, format!("not a readable zip archive: {e}")),
    };
    if zip.len() > limits.max_zip_entries {
        return out.warn(
            path,
            format!(
                "{} entries is over the limit of {}",
                zip.len(),
                limits.max_zip_entries
            ),
        );
    }
    let mut found_pom = false;
    let mut manifest: Option<Vec<u8>> = None;
    let mut nested: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..zip.len() {
        let mut f = match zip.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                out.warn(path, format!("entry {i}: {e}"));
                continue;
            }
        };
        if f.is_dir() {
            continue;
        }
        let name = match f.name() {
            Ok(n) => n.into_owned(),
            Err(e) => {
                out.warn(path, format!("entry {i}: {e}"));
                continue;
            }
        };
        let lower = name.to_ascii_lowercase();
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") {
            match read_entry(&mut f, MAX_META_BYTES) {
                Some(b) => found_pom |= pom_properties(path, &String::from_utf8_lossy(&b), out),
                None => out.warn(path, format!("{name}: unreadable or too large")),
            }
        } else if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            manifest = read_entry(&mut f, MAX_META_BYTES);
        } else if [".jar", ".war", ".ear"].iter().any(|e| lower.ends_with(e)) {
            if depth + 1 > limits.max_nested_depth {
                out.warn(
                    path,
                    format!(
                        "{name}: nested deeper than {} archives; not opened",
                        limits.max_nested_depth
                    ),
                );
            } else if f.size() > limits.max_nested_bytes {
                out.warn(
                    path,
                    format!("{name}: {} bytes is over the nested archive limit", f.size()),
                );
            } else if let Some(b) = read_entry(&mut f, limits.max_nested_bytes) {
                nested.push((name, b));
            } else {
                out.warn(
                    path,
                    format!("{name}: unreadable or over the nested archive limit"),
                );
            }
        }
    }
    if !found_pom {
        let from_manifest = manifest
            .as_deref()
            .and_then(|m| manifest_package(path, &String::from_utf8_lossy(m)));
        match from_manifest.or_else(|| from_file_name(path)) {
            Some(p) => out.packages.push(p),
            None => out.warn(
                path,
                "Java archive without Maven metadata, manifest version or versioned file name",
            ),
        }
    }
    for (name, bytes) in nested {
        read_archive(&format!("{path}!/{name}"), &bytes, limits, depth + 1, out);
    }
}

fn properties(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(['=', ':']).map(|(k, v)| (k.trim(), v.trim())))
        .collect()
}

fn pom_properties(path: &str, text: &str, out: &mut Cataloged) -> bool {
    let props = properties(text);
    let get = |k: &str| {
        props
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    };
    match (get("groupId"), get("artifactId"), get("version")) {
        (Some(g), Some(a), Some(v)) => {
            let mut p = Package::new(Ecosystem::Maven, a, v, path);
            p.namespace = Some(g.to_string());
            out.packages.push(p);
            true
        }
        _ => false,
    }
}

fn manifest_package(path: &str, text: &str) -> Option<Package> {
    // Continuation lines start with one space.
    let mut attrs: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(last) = attrs.last_mut() {
                last.1.push_str(cont);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            attrs.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let version = get("Implementation-Version").or_else(|| get("Bundle-Version"))?;
    let name = get("Bundle-SymbolicName")
        .map(|s| s.split(';').next().unwrap_or("").to_string())
        .or_else(|| get("Implementation-Title"))?;
    let mut p = Package::new(Ecosystem::Maven, &name, &version, path);
    p.namespace = get("Implementation-Vendor-Id");
    Some(p)
}

/// `commons-io-2.6.jar` → commons-io 2.6.
fn from_file_name(path: &str) -> Option<Package> {
    let base = path.rsplit(['/', '!']).next()?;
    let stem = base.rsplit_once('.')?.0;
    let split = stem
        .char_indices()
        .find(|&(i, c)| i > 0 && c.is_ascii_digit() && stem.as_bytes()[i - 1] == b'-')?
        .0;
    let (name, version) = (&stem[..split - 1], &stem[split..]);
    Some(Package::new(Ecosystem::Maven, name, version, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn pom_properties_and_nested_jars() {
        let inner = jar(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nImplementation-Title: Commons\r\nImplementation-Version: 1.2\r\nImplementation-Vendor-Id: org.x\r\n")]);
        let war = jar(&[
            (
                "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                b"#c\nversion=2.14.1\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\n",
            ),
            ("WEB-INF/lib/commons.jar", &inner),
            ("WEB-INF/lib/broken.jar", b"not a zip"),
        ]);
        let mut out = Cataloged::default();
        archive("/app/x.war", &war, &Limits::default(), &mut out);
        let mut log4j = out.packages[0].clone();
        log4j.finish_purl(None);
        assert_eq!(log4j.purl, "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1");
        assert_eq!(out.packages[1].name, "Commons");
        assert_eq!(out.packages[1].path, "/app/x.war!/WEB-INF/lib/commons.jar");
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    }

    #[test]
    fn depth_bound_and_file_name_fallback() {
        let mut data = jar(&[("a.txt", b"x")]);
        for _ in 0..5 {
            data = jar(&[("in-1.0.jar", &data)]);
        }
        let mut out = Cataloged::default();
        archive("/lib/outer-3.1.jar", &data, &Limits::default(), &mut out);
        assert_eq!(
            (out.packages[0].name.as_str(), out.packages[0].version.as_str()),
            ("outer", "3.1")
        );
        assert_eq!(out.packages.len(), 4);
        assert!(out.warnings.iter().any(|w| w.message.contains("nested deeper")));
    }
}
