//! OS release and OS package databases: dpkg, apk and the sqlite rpmdb.

use super::{Cataloged, Ecosystem, Package, field, paragraphs};
use serde::Serialize;

/// `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    pub id: String,
    pub version_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version_codename: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pretty_name: String,
    /// Where it was read, and the layer that wrote it (filled by the scan).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

impl OsInfo {
    /// `debian-13`, or `debian-trixie` when the release has no number yet (testing/sid).
    pub fn distro_qualifier(&self) -> String {
        match (
            self.id.is_empty(),
            self.version_id.is_empty(),
            self.version_codename.is_empty(),
        ) {
            (true, _, _) => String::new(),
            (false, false, _) => format!("{}-{}", self.id, self.version_id),
            (false, true, false) => format!("{}-{}", self.id, self.version_codename),
            _ => self.id.clone(),
        }
    }

    pub fn major_version(&self) -> &str {
        self.version_id.split('.').next().unwrap_or("")
    }
}

pub fn parse_os_release(text: &str) -> OsInfo {
    let mut os = OsInfo::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v)
            .to_string();
        match k.trim() {
            "ID" => os.id = v.to_lowercase(),
            "VERSION_ID" => os.version_id = v,
            "VERSION_CODENAME" => os.version_codename = v,
            "PRETTY_NAME" => os.pretty_name = v,
            _ => {}
        }
    }
    os
}

/// `var/lib/dpkg/status` or one file of `status.d` (distroless): installed packages only.
pub fn dpkg(path: &str, text: &str, out: &mut Cataloged) {
    for p in paragraphs(text) {
        let (Some(name), Some(version)) = (field(&p, "Package"), field(&p, "Version")) else {
            if field(&p, "Package").is_some() {
                out.warn(
                    path,
                    format!("package {} has no Version", field(&p, "Package").unwrap_or("")),
                );
            }
            continue;
        };
        // "install ok installed"; status.d files carry no Status at all.
        if let Some(status) = field(&p, "Status")
            && status.split_whitespace().nth(2) != Some("installed")
        {
            continue;
        }
        let mut pkg = Package::new(Ecosystem::Deb, name, version, path);
        pkg.arch = field(&p, "Architecture").map(String::from);
        if let Some(src) = field(&p, "Source") {
            match src.split_once(' ') {
                Some((n, v)) => {
                    pkg.source_name = Some(n.to_string());
                    pkg.source_version =
                        Some(v.trim().trim_start_matches('(').trim_end_matches(')').to_string());
                }
                None => pkg.source_name = Some(src.to_string()),
            }
        } else {
            pkg.source_name = Some(name.to_string());
        }
        if pkg.source_version.is_none() {
            pkg.source_version = Some(version.to_string());
        }
        out.packages.push(pkg);
    }
}

/// `lib/apk/db/installed`: `P:` name, `V:` version, `A:` arch, `o:` origin.
pub fn apk(path: &str, text: &str, out: &mut Cataloged) {
    let flush = |fields: &mut Vec<(char, String)>, out: &mut Cataloged| {
        let get = |c: char| fields.iter().find(|(k, _)| *k == c).map(|(_, v)| v.as_str());
        if let (Some(n), Some(v)) = (get('P'), get('V')) {
            let mut pkg = Package::new(Ecosystem::Apk, n, v, path);
            pkg.arch = get('A').map(String::from);
            pkg.source_name = get('o').map(String::from);
            out.packages.push(pkg);
        } else if !fields.is_empty() {
            out.warn(path, "apk entry without P: or V:");
        }
        fields.clear();
    };
    let mut fields: Vec<(char, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut fields, out);
            continue;
        }
        let mut chars = line.chars();
        if let (Some(k), Some(':')) = (chars.next(), chars.next()) {
            fields.push((k, chars.as_str().to_string()));
        }
    }
    flush(&mut fields, out);
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

/// The sqlite rpmdb (`rpmdb.sqlite`, RHEL 9 / Fedora 33+): one header blob per package.
pub fn rpm(path: &str, content: &[u8], out: &mut Cataloged) {
    match rpm_headers(content) {
        Ok(blobs) => {
            for blob in blobs {
                match parse_rpm_header(&blob) {
                    Some(h) if h.name == "gpg-pubkey" => {}
                    Some(h) => {
                        let mut pkg = Package::new(
                            Ecosystem::Rpm,
                            &h.name,
                            &format!("{}-{}", h.version, h.release),
                            path,
                        );
                        pkg.arch = h.arch;
                        pkg.epoch = h.epoch.filter(|&e| e != 0).map(|e| e.to_string());
                        pkg.source_name = h.source_rpm.as_deref().and_then(source_rpm_name);
                        out.packages.push(pkg);
                    }
                    None => out.warn(path, "malformed rpm header blob"),
                }
            }
        }
        Err(e) => out.warn(path, format!("cannot read rpmdb: {e}")),
    }
}

fn rpm_headers(content: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if !content.starts_with(b"SQLite format 3\0") || content.len() < 100 {
        return Err("not a sqlite database".into());
    }
    // WAL-mode databases cannot be deserialised into memory; the header bytes 18-19 say which mode.
    let mut data = content.to_vec();
    data[18] = 1;
    data[19] = 1;
    let mut conn = rusqlite::Connection::open_in_memory().map_err(|e| e.to_string())?;
    conn.deserialize_read_exact(rusqlite::MAIN_DB, &data[..], data.len(), true)
        .map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare("SELECT blob FROM Packages")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(|e| e.to_string())?;
    let mut blobs = Vec::new();
    for row in rows {
        blobs.push(row.map_err(|e| e.to_string())?);
    }
    Ok(blobs)
}

#[derive(Debug, Default)]
struct RpmHeader {
    name: String,
    version: String,
    release: String,
    epoch: Option<u32>,
    arch: Option<String>,
    source_rpm: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// An rpm header as stored in the database: index count, data length, 16-byte index entries
/// (tag, type, offset, count), then the data store.
fn parse_rpm_header(b: &[u8]) -> Option<RpmHeader> {
    let il = be32(b, 0)? as usize;
    let dl = be32(b, 4)? as usize;
    let data_start = 8usize.checked_add(il.checked_mul(16)?)?;
    let data = b.get(data_start..data_start.checked_add(dl)?)?;
    let mut h = RpmHeader::default();
    for i in 0..il {
        let e = 8 + i * 16;
        let (tag, typ, off) = (be32(b, e)?, be32(b, e + 4)?, be32(b, e + 8)? as usize);
        let string = || -> Option<String> {
            let s = data.get(off..)?;
            let end = s.iter().position(|&c| c == 0)?;
            Some(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        match (tag, typ) {
            (TAG_NAME, 6) => h.name = string()?,
            (TAG_VERSION, 6) => h.version = string()?,
            (TAG_RELEASE, 6) => h.release = string()?,
            (TAG_ARCH, 6) => h.arch = string(),
            (TAG_SOURCERPM, 6) => h.source_rpm = string(),
            (TAG_EPOCH, 4) => h.epoch = be32(data, off),
            _ => {}
        }
    }
    (!h.name.is_empty() && !h.version.is_empty()).then_some(h)
}

/// `openssl-3.0.7-16.el9.src.rpm` → `openssl`.
fn source_rpm_name(s: &str) -> Option<String> {
    let stem = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = stem.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    Some(name.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let os = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n",
        );
        assert_eq!((os.id.as_str(), os.version_id.as_str()), ("debian", "13"));
        assert_eq!(os.distro_qualifier(), "debian-13");
        let sid = parse_os_release("ID=debian\nVERSION_CODENAME=forky\n");
        assert_eq!(sid.distro_qualifier(), "debian-forky");
    }

    #[test]
    fn dpkg_status_keeps_installed_and_reads_source() {
        let text = "Package: libssl3t64\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl (3.5.1-1)\nVersion: 3.5.1-1+b1\nDescription: x\n more text\n\n\
                    Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
                    Package: bash\nStatus: install ok installed\nVersion: 5.2.37-2\nArchitecture: amd64\n";
        let mut out = Cataloged::default();
        dpkg("/var/lib/dpkg/status", text, &mut out);
        assert_eq!(out.packages.len(), 2);
        let ssl = &mut out.packages[0];
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.source_version.as_deref(), Some("3.5.1-1"));
        let os = parse_os_release("ID=debian\nVERSION_ID=13\n");
        ssl.finish_purl(Some(&os));
        assert_eq!(
            ssl.purl,
            "pkg:deb/debian/libssl3t64@3.5.1-1%2Bb1?arch=amd64&distro=debian-13&upstream=openssl%403.5.1-1"
        );
        assert_eq!(ssl.osv_ecosystem(Some(&os)), "Debian:13");
        assert_eq!(out.packages[1].source_name.as_deref(), Some("bash"));
    }

    #[test]
    fn distroless_status_d_has_no_status_field() {
        let mut out = Cataloged::default();
        dpkg(
            "/var/lib/dpkg/status.d/base",
            "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n",
            &mut out,
        );
        assert_eq!(out.packages[0].name, "base-files");
    }

    #[test]
    fn apk_installed() {
        let mut out = Cataloged::default();
        apk(
            "/lib/apk/db/installed",
            "C:Q1abc\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:busybox\nV:1.36.1-r15\n",
            &mut out,
        );
        assert_eq!(out.packages.len(), 2);
        let mut m = out.packages[0].clone();
        m.finish_purl(Some(&parse_os_release("ID=alpine\nVERSION_ID=3.19.1\n")));
        assert_eq!(
            m.purl,
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
        );
        assert_eq!(
            m.osv_ecosystem(Some(&parse_os_release("ID=alpine\nVERSION_ID=3.19.1\n"))),
            "Alpine:v3.19"
        );
    }

    /// Builds an rpm header blob with string tags (and an int32 epoch).
    pub(crate) fn rpm_blob(fields: &[(u32, &str)], epoch: Option<u32>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        let mut count = 0u32;
        for (tag, val) in fields {
            index.extend(tag.to_be_bytes());
            index.extend(6u32.to_be_bytes());
            index.extend((data.len() as u32).to_be_bytes());
            index.extend(1u32.to_be_bytes());
            data.extend(val.as_bytes());
            data.push(0);
            count += 1;
        }
        if let Some(e) = epoch {
            while data.len() % 4 != 0 {
                data.push(0);
            }
            index.extend(TAG_EPOCH.to_be_bytes());
            index.extend(4u32.to_be_bytes());
            index.extend((data.len() as u32).to_be_bytes());
            index.extend(1u32.to_be_bytes());
            data.extend(e.to_be_bytes());
            count += 1;
        }
        let mut b = count.to_be_bytes().to_vec();
        b.extend((data.len() as u32).to_be_bytes());
        b.extend(index);
        b.extend(data);
        b
    }

    #[test]
    fn rpm_sqlite_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rpmdb.sqlite");
        {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);").unwrap();
            let openssl = rpm_blob(
                &[
                    (TAG_NAME, "openssl-libs"),
                    (TAG_VERSION, "3.0.7"),
                    (TAG_RELEASE, "16.el9"),
                    (TAG_ARCH, "x86_64"),
                    (TAG_SOURCERPM, "openssl-3.0.7-16.el9.src.rpm"),
                ],
                Some(1),
            );
            let key = rpm_blob(
                &[(TAG_NAME, "gpg-pubkey"), (TAG_VERSION, "1"), (TAG_RELEASE, "1")],
                None,
            );
            for b in [openssl, key, vec![0, 0, 0, 9]] {
                conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
                    .unwrap();
            }
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        }
        let bytes = std::fs::read(&db).unwrap();
        let mut out = Cataloged::default();
        rpm("/var/lib/rpm/rpmdb.sqlite", &bytes, &mut out);
        assert_eq!(out.packages.len(), 1, "{:?}", out.warnings);
        let p = &mut out.packages[0];
        assert_eq!(
            (p.version.as_str(), p.epoch.as_deref(), p.source_name.as_deref()),
            ("3.0.7-16.el9", Some("1"), Some("openssl"))
        );
        p.finish_purl(Some(&parse_os_release("ID=rocky\nVERSION_ID=9.3\n")));
        assert_eq!(
            p.purl,
            "pkg:rpm/rocky/openssl-libs@3.0.7-16.el9?arch=x86_64&distro=rocky-9.3&epoch=1"
        );
        assert_eq!(out.warnings.len(), 1);
        let mut bad = Cataloged::default();
        rpm("/var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0garbage", &mut bad);
        assert!(bad.packages.is_empty() && !bad.warnings.is_empty());
    }
}
