//! End-to-end: the real `palisade` binary runs `db import` and `db status`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-e2e-db-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn palisade(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shared_osv() -> Option<PathBuf> {
    let shared = std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let osv = shared.join("data/osv");
    if osv.is_dir() {
        Some(osv)
    } else {
        eprintln!(
            "\n*** SKIPPED: {} not found (set PALISADE_SHARED) ***\n",
            osv.display()
        );
        None
    }
}

#[test]
fn import_then_status_with_the_shared_subset() {
    let Some(osv) = shared_osv() else { return };
    let dir = scratch("subset");
    let db = dir.join("vulndb.redb");
    let db_arg = db.to_str().unwrap();
    let out = palisade(&["db", "import", osv.to_str().unwrap(), "--db", db_arg], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("imported 246 advisories"), "{stdout}");
    assert!(stdout.contains("Go") && stdout.contains("203"), "{stdout}");

    let out = palisade(&["db", "status", "--db", db_arg, "--verify"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in [
        "schema      1",
        "advisories  246",
        "verified    yes",
        "checksum    sha256:",
        "crates.io",
    ] {
        assert!(stdout.contains(needle), "{needle} missing in\n{stdout}");
    }

    let out = palisade(&["db", "status", "--db", db_arg, "--format", "json"], &[]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["advisories"], 246);
    assert_eq!(status["per_ecosystem"]["PyPI"], 28);
    assert_eq!(status["checksum"].as_str().unwrap().len(), 64);
    assert!(status["age_seconds"].as_u64().unwrap() < 600);
}

#[test]
fn default_location_bad_files_and_errors() {
    let dir = scratch("default");
    let src = dir.join("osv");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("GHSA-x.json"),
        r#"{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#,
    )
    .unwrap();
    std::fs::write(src.join("broken.json"), "{").unwrap();
    let data = dir.join("data");
    let out = palisade(
        &["db", "import", src.to_str().unwrap()],
        &[("XDG_DATA_HOME", &data)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("skipped") && stderr.contains("broken.json"),
        "{stderr}"
    );
    assert!(data.join("palisade/vulndb.redb").is_file());
    let out = palisade(&["db", "status", "--format", "json"], &[("XDG_DATA_HOME", &data)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Missing database, nothing importable, and a corrupt file: exit 2 with a clear message.
    let missing = dir.join("none.redb");
    let out = palisade(&["db", "status", "--db", missing.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("palisade db import"),
        "{}",
        text(&out.stderr)
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = palisade(
        &[
            "db",
            "import",
            empty.to_str().unwrap(),
            "--db",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nothing to import"),
        "{}",
        text(&out.stderr)
    );
    let corrupt = dir.join("corrupt.redb");
    std::fs::write(&corrupt, b"definitely not redb").unwrap();
    let out = palisade(&["db", "status", "--db", corrupt.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a readable palisade vulnerability database"),
        "{}",
        text(&out.stderr)
    );
}

/// A zip of every OSV file in `dir`, as OSV publishes one per ecosystem.
fn zip_dir(dir: &Path) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, &std::fs::read(&path).unwrap()).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

/// A one-thread HTTP/1.1 server on loopback serving `routes` (path → body); other paths get 404.
/// A body starting with `TRUNCATE` is announced longer than it is and cut short.
fn serve(routes: Vec<(String, Vec<u8>)>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
            if path == "/quit" {
                break;
            }
            match routes.iter().find(|(p, _)| *p == path) {
                Some((_, body)) if body.starts_with(b"TRUNCATE") => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len() * 10
                    );
                    let _ = stream.write_all(body);
                }
                Some((_, body)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(body);
                }
                None => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    (base, handle)
}

fn status_json(db: &Path) -> Value {
    let out = palisade(&["db", "status", "-f", "json", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn update_downloads_archives_and_replaces_the_database_only_when_all_succeed() {
    let Some(osv) = shared_osv() else { return };
    let dir = scratch("update");
    let db = dir.join("vulndb.redb");
    let (base, server) = serve(vec![
        ("/PyPI/all.zip".into(), zip_dir(&osv.join("PyPI"))),
        ("/crates.io/all.zip".into(), zip_dir(&osv.join("crates.io"))),
        ("/Broken%20Mirror/all.zip".into(), b"TRUNCATE this body".to_vec()),
    ]);
    let db_arg = db.to_str().unwrap();
    let update = |ecosystems: &[&str]| {
        let mut args = vec![
            "db",
            "update",
            "--base-url",
            base.as_str(),
            "--db",
            db_arg,
            "--no-progress",
        ];
        for e in ecosystems {
            args.extend(["--ecosystem", e]);
        }
        palisade(&args, &[])
    };

    let out = update(&["PyPI", "crates.io"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("downloaded 2 archives"),
        "{}",
        text(&out.stdout)
    );
    let status = status_json(&db);
    assert_eq!(status["source"], base.as_str());
    let pypi = status["per_ecosystem"]["PyPI"].clone();
    assert!(pypi.as_u64().unwrap() > 0);
    assert!(status["per_ecosystem"]["crates.io"].as_u64().unwrap() > 0);
    let checksum = status["checksum"].clone();

    // A missing ecosystem (404) or a cut-short download fails and leaves the database as it was.
    for bad in [&["PyPI", "NoSuchEcosystem"][..], &["Broken Mirror"][..]] {
        let out = update(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains("the database was not changed"), "{err}");
        assert_eq!(status_json(&db)["checksum"], checksum);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "vulndb.redb")
        .collect();
    assert!(
        leftovers.is_empty(),
        "download directories left behind: {leftovers:?}"
    );

    // A file:// mirror works the same way.
    let mirror = dir.join("mirror/PyPI");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("all.zip"), zip_dir(&osv.join("PyPI"))).unwrap();
    let file_base = format!("file://{}", dir.join("mirror").display());
    let out = palisade(
        &[
            "db",
            "update",
            "--base-url",
            &file_base,
            "--ecosystem",
            "PyPI",
            "--db",
            db_arg,
            "-f",
            "json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["per_ecosystem"]["PyPI"], pypi);
    assert_eq!(status_json(&db)["per_ecosystem"].as_object().unwrap().len(), 1);

    let _ = std::net::TcpStream::connect(base.trim_start_matches("http://"))
        .and_then(|mut s| std::io::Write::write_all(&mut s, b"GET /quit HTTP/1.1\r\n\r\n"));
    server.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
