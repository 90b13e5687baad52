use super::*;
use std::io::Write;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-vulndb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const LODASH: &str = r#"{"id":"GHSA-TEST-1","aliases":["CVE-2099-1"],"summary":"proto pollution",
  "database_specific":{"severity":"HIGH"},
  "affected":[{"package":{"ecosystem":"npm","name":"lodash"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.12"}]}]}]}"#;
const JINJA: &str = r#"{"id":"PYSEC-TEST-1","details":"jinja bug",
  "affected":[{"package":{"ecosystem":"PyPI","name":"Jinja2"},
  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.11.3"}]}]}]}"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn import_directory_then_lookup_and_status() {
    let dir = scratch("dir");
    let src = dir.join("osv");
    write(&src.join("npm/GHSA-TEST-1.json"), LODASH);
    write(&src.join("PyPI/sub/PYSEC-TEST-1.json"), JINJA);
    write(&src.join("PyPI/broken.json"), "{\"id\": ");
    write(&src.join("README.md"), "not json");
    let db_path = dir.join("out/vulndb.redb");
    let report = import(&src, &db_path, ImportLimits::default()).unwrap();
    assert_eq!(report.advisories, 2);
    assert_eq!(report.per_ecosystem.get("npm"), Some(&1));
    assert_eq!(report.per_ecosystem.get("PyPI"), Some(&1));
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].file.ends_with("broken.json"),
        "{:?}",
        report.skipped
    );
    assert!(report.skipped[0].reason.contains("EOF"), "{:?}", report.skipped);
    assert_eq!(report.ignored, 1);
    assert_eq!(report.checksum.len(), 64);
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("vulndb.redb")]);

    let db = Database::open(&db_path).unwrap();
    let hit = db.lookup(&PackageRef::new("npm", "lodash", "4.17.11")).unwrap();
    assert_eq!(hit.matches.len(), 1);
    assert_eq!(hit.matches[0].id, "GHSA-TEST-1");
    assert_eq!(hit.matches[0].severity, Some(palisade_core::Severity::High));
    assert_eq!(hit.matches[0].fixed_versions, vec!["4.17.12"]);
    assert!(
        db.lookup(&PackageRef::new("npm", "lodash", "4.17.12"))
            .unwrap()
            .matches
            .is_empty()
    );
    let jinja = db.lookup(&PackageRef::new("PyPI", "jinja2", "2.10")).unwrap();
    assert_eq!(jinja.matches[0].summary.as_deref(), Some("jinja bug"));
    assert!(
        db.lookup(&PackageRef::new("PyPI", "nothing", "1.0"))
            .unwrap()
            .matches
            .is_empty()
    );
    assert!(db.advisory("PYSEC-TEST-1").unwrap().is_some());

    let status = db.status().unwrap();
    assert_eq!(status.schema_version, SCHEMA_VERSION);
    assert_eq!(status.advisories, 2);
    assert_eq!(status.checksum, report.checksum);
    assert!(status.imported_at > 1_700_000_000);
    assert!(db.verify().unwrap());
}

#[test]
fn checksum_depends_on_content_only() {
    let dir = scratch("checksum");
    write(&dir.join("a/1.json"), LODASH);
    write(&dir.join("a/2.json"), JINJA);
    write(&dir.join("b/z/2.json"), JINJA);
    write(&dir.join("b/y/1.json"), LODASH);
    let one = import(&dir.join("a"), &dir.join("a.redb"), ImportLimits::default()).unwrap();
    let two = import(&dir.join("b"), &dir.join("b.redb"), ImportLimits::default()).unwrap();
    assert_eq!(one.checksum, two.checksum);
    write(&dir.join("c/1.json"), LODASH);
    let three = import(&dir.join("c"), &dir.join("c.redb"), ImportLimits::default()).unwrap();
    assert_ne!(one.checksum, three.checksum);
}

#[test]
fn reimport_replaces_the_database_atomically() {
    let dir = scratch("replace");
    write(&dir.join("one/1.json"), LODASH);
    write(&dir.join("two/2.json"), JINJA);
    let db_path = dir.join("vulndb.redb");
    import(&dir.join("one"), &db_path, ImportLimits::default()).unwrap();
    // A failing import leaves the previous database untouched.
    write(&dir.join("empty/readme.txt"), "x");
    let err = import(&dir.join("empty"), &db_path, ImportLimits::default()).unwrap_err();
    assert!(err.to_string().contains("nothing to import"), "{err}");
    assert_eq!(Database::open(&db_path).unwrap().status().unwrap().advisories, 1);
    import(&dir.join("two"), &db_path, ImportLimits::default()).unwrap();
    let db = Database::open(&db_path).unwrap();
    assert!(db.advisory("GHSA-TEST-1").unwrap().is_none());
    assert!(db.advisory("PYSEC-TEST-1").unwrap().is_some());
}

fn zip_of(path: &Path, entries: &[(&str, &[u8])], method: zip::CompressionMethod) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn import_zip_with_bad_entries() {
    let dir = scratch("zip");
    let archive = dir.join("npm.zip");
    zip_of(
        &archive,
        &[
            ("GHSA-TEST-1.json", LODASH.as_bytes()),
            ("PYSEC-TEST-1.json", JINJA.as_bytes()),
            ("bad.json", b"not json"),
            ("notes.txt", b"hello"),
        ],
        zip::CompressionMethod::Deflated,
    );
    let report = import(&archive, &dir.join("db.redb"), ImportLimits::default()).unwrap();
    assert_eq!(report.advisories, 2);
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].file.ends_with("npm.zip!bad.json"),
        "{:?}",
        report.skipped
    );
    assert_eq!(report.ignored, 1);
}

#[test]
fn zip_bombs_and_oversized_files_are_refused() {
    let dir = scratch("bomb");
    // 8 MiB of zeros deflates to a few KiB: a ratio far above the cap.
    let zeros = vec![b' '; 8 << 20];
    let archive = dir.join("bomb.zip");
    zip_of(
        &archive,
        &[("GHSA-TEST-1.json", LODASH.as_bytes()), ("big.json", &zeros)],
        zip::CompressionMethod::Deflated,
    );
    let report = import(&archive, &dir.join("db.redb"), ImportLimits::default()).unwrap();
    assert_eq!(report.advisories, 1);
    assert!(
        report.skipped[0].reason.contains("compression ratio"),
        "{:?}",
        report.skipped
    );

    let small = ImportLimits {
        max_file_bytes: 1 << 20,
        ..ImportLimits::default()
    };
    let report = import(&archive, &dir.join("db2.redb"), small).unwrap();
    assert!(
        report.skipped[0].reason.contains("more than 1048576"),
        "{:?}",
        report.skipped
    );

    write(&dir.join("plain/big.json"), &" ".repeat(2 << 20));
    write(&dir.join("plain/ok.json"), LODASH);
    let report = import(&dir.join("plain"), &dir.join("db3.redb"), small).unwrap();
    assert!(
        report.skipped[0].reason.contains("larger than"),
        "{:?}",
        report.skipped
    );

    let tiny_total = ImportLimits {
        max_total_bytes: 100,
        ..ImportLimits::default()
    };
    let err = import(&dir.join("plain"), &dir.join("db4.redb"), tiny_total).unwrap_err();
    assert!(err.to_string().contains("bytes of records"), "{err}");
    assert!(!dir.join("db4.redb").exists());
}

#[test]
fn corrupt_and_foreign_files_are_clear_errors() {
    let dir = scratch("corrupt");
    let garbage = dir.join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 10_000]).unwrap();
    let err = Database::open(&garbage).unwrap_err().to_string();
    assert!(
        err.contains("garbage.redb") && err.contains("not a readable palisade vulnerability database"),
        "{err}"
    );

    let missing = Database::open(&dir.join("missing.redb")).unwrap_err().to_string();
    assert!(missing.contains("palisade db import"), "{missing}");

    // A redb file of some other program.
    let foreign = dir.join("foreign.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<&str, &str>::new("other"))
            .unwrap()
            .insert("a", "b")
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Database::open(&foreign).unwrap_err().to_string();
    assert!(err.contains("not a palisade vulnerability database"), "{err}");

    // An older schema.
    let old = dir.join("old.redb");
    {
        let db = redb::Database::create(&old).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", "0")
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Database::open(&old).unwrap_err().to_string();
    assert!(
        err.contains("schema version 0") && err.contains("import the data again"),
        "{err}"
    );
}
