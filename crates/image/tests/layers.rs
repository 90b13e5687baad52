//! Layer walking over tar archives built here: whiteouts, opaque directories, links, hostile paths,
//! bombs and digest checks.

use palisade_image::layers::{FileStatus, LayerSpec, LayerWalker};
use palisade_image::{EntryKind, FileRef, FileVisitor, Filesystem, ImageError, Limits, RemovedHow};
use sha2::{Digest, Sha256};
use std::io::Write;

/// One raw tar entry; names are written byte for byte (the tar crate refuses `..`, which we need).
fn entry(out: &mut Vec<u8>, name: &str, typeflag: u8, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(if typeflag == b'5' { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(typeflag));
    if !link.is_empty() {
        h.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(mut t: Vec<u8>) -> Vec<u8> {
    t.extend([0u8; 1024]);
    t
}

fn file(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    entry(out, name, b'0', "", data);
}

#[derive(Default)]
struct Recorder {
    seen: Vec<(String, usize, Vec<u8>)>,
}

impl FileVisitor for Recorder {
    fn wants(&self, _f: &FileRef<'_>) -> bool {
        true
    }
    fn visit(&mut self, f: &FileRef<'_>, content: &[u8]) {
        self.seen.push((f.path.to_string(), f.layer, content.to_vec()));
    }
}

fn walk(layers: &[Vec<u8>], limits: Limits) -> Result<(Filesystem, Recorder), ImageError> {
    let mut rec = Recorder::default();
    let mut w = LayerWalker::new(limits, vec![&mut rec]);
    for (i, l) in layers.iter().enumerate() {
        w.apply_layer(&l[..], LayerSpec::default(), &i.to_string())?;
    }
    let fs = w.finish();
    Ok((fs, rec))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn whiteouts_opaque_dirs_and_overwrites() {
    let mut l0 = Vec::new();
    entry(&mut l0, "etc/", b'5', "", b"");
    file(&mut l0, "etc/issue.net", b"net");
    file(&mut l0, "etc/motd", b"old");
    entry(&mut l0, "usr/share/doc/apt/", b'5', "", b"");
    file(&mut l0, "usr/share/doc/apt/copyright", b"c");
    file(&mut l0, "app/cache/a.bin", b"a");
    file(&mut l0, "app/cache/sub/b.bin", b"b");
    file(&mut l0, "app/tmp/secret.txt", b"s3cret");
    let mut l1 = Vec::new();
    file(&mut l1, "etc/.wh.issue.net", b"");
    file(&mut l1, "etc/motd", b"new");
    file(&mut l1, "usr/share/doc/.wh.apt", b"");
    // The new file may come before the opaque marker in the same layer: it must survive.
    file(&mut l1, "app/cache/new.bin", b"n");
    file(&mut l1, "app/cache/.wh..wh..opq", b"");
    file(&mut l1, "app/tmp/.wh.secret.txt", b"");
    let (fs, rec) = walk(&[finish(l0), gzip(&finish(l1))], Limits::default()).unwrap();
    for gone in [
        "/etc/issue.net",
        "/usr/share/doc/apt",
        "/usr/share/doc/apt/copyright",
        "/app/cache/a.bin",
        "/app/cache/sub/b.bin",
        "/app/tmp/secret.txt",
    ] {
        assert!(!fs.entries.contains_key(gone), "{gone} should be gone");
    }
    assert_eq!(fs.entries["/etc/motd"].layer, 1);
    assert_eq!(fs.entries["/app/cache/new.bin"].layer, 1);
    assert_eq!(
        fs.status("/app/tmp/secret.txt", 0),
        FileStatus::Removed {
            by_layer: 1,
            how: RemovedHow::Whiteout
        }
    );
    assert_eq!(
        fs.status("/app/cache/a.bin", 0),
        FileStatus::Removed {
            by_layer: 1,
            how: RemovedHow::OpaqueDir
        }
    );
    assert_eq!(
        fs.status("/etc/motd", 0),
        FileStatus::Removed {
            by_layer: 1,
            how: RemovedHow::Overwritten
        }
    );
    assert_eq!(fs.status("/etc/motd", 1), FileStatus::Present);
    // The deleted secret's bytes were still shown to visitors, with the layer that added them.
    assert!(
        rec.seen
            .iter()
            .any(|(p, l, c)| p == "/app/tmp/secret.txt" && *l == 0 && c == b"s3cret")
    );
    assert!(!rec.seen.iter().any(|(p, _, _)| p.contains(".wh.")));
    assert_eq!(fs.layers[1].compression, "gzip");
}

#[test]
fn zstd_layers_with_several_frames() {
    let mut l = Vec::new();
    file(&mut l, "a.txt", &[b'a'; 3000]);
    file(&mut l, "b.txt", b"b");
    let tar = finish(l);
    let mut blob =
        ruzstd::encoding::compress_to_vec(&tar[..2048], ruzstd::encoding::CompressionLevel::Fastest);
    blob.extend(ruzstd::encoding::compress_to_vec(
        &tar[2048..],
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let diff_id = format!("sha256:{:x}", Sha256::digest(&tar));
    let blob_digest = format!("sha256:{:x}", Sha256::digest(&blob));
    let mut w = LayerWalker::new(Limits::default(), vec![]);
    w.apply_layer(
        &blob[..],
        LayerSpec {
            blob_digest: Some(blob_digest),
            diff_id: Some(diff_id),
            history: None,
        },
        "z",
    )
    .unwrap();
    let fs = w.finish();
    assert_eq!(fs.layers[0].compression, "zstd");
    assert!(fs.entries.contains_key("/b.txt"));
}

#[test]
fn digest_mismatch_is_an_error() {
    let mut l = Vec::new();
    file(&mut l, "a", b"x");
    let tar = finish(l);
    let mut w = LayerWalker::new(Limits::default(), vec![]);
    let spec = LayerSpec {
        diff_id: Some(format!("sha256:{}", "0".repeat(64))),
        ..Default::default()
    };
    let err = w.apply_layer(&tar[..], spec, "L").unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn traversal_and_absolute_paths_are_rejected() {
    for name in ["../etc/passwd", "a/../../b", "/etc/passwd"] {
        let mut l = Vec::new();
        file(&mut l, name, b"x");
        let err = walk(&[finish(l)], Limits::default()).err().expect(name);
        assert!(matches!(err, ImageError::UnsafePath { .. }), "{name}: {err}");
    }
    let mut l = Vec::new();
    entry(&mut l, "bad", b'1', "../../etc/shadow", b"");
    let err = walk(&[finish(l)], Limits::default()).err().unwrap();
    assert!(err.to_string().contains("hardlink target escapes"), "{err}");
}

#[test]
fn links_resolve_inside_the_virtual_root() {
    let mut l = Vec::new();
    file(&mut l, "etc/real", b"r");
    entry(&mut l, "etc/hard", b'1', "etc/real", b"");
    entry(&mut l, "up", b'2', "../../../../etc", b"");
    entry(&mut l, "abs", b'2', "/etc/real", b"");
    entry(&mut l, "loop1", b'2', "loop2", b"");
    entry(&mut l, "loop2", b'2', "loop1", b"");
    let (fs, _) = walk(&[finish(l)], Limits::default()).unwrap();
    assert_eq!(fs.entries["/etc/hard"].kind, EntryKind::Hardlink);
    assert_eq!(fs.entries["/etc/hard"].size, 1);
    assert_eq!(fs.resolve("/up/real", 40).as_deref(), Some("/etc/real"));
    assert_eq!(fs.resolve("/abs", 40).as_deref(), Some("/etc/real"));
    assert_eq!(fs.resolve("/etc/hard", 40).as_deref(), Some("/etc/real"));
    assert_eq!(fs.resolve("/loop1", 40), None);
}

#[test]
fn bombs_hit_limits() {
    // Many entries.
    let mut l = Vec::new();
    for i in 0..20 {
        file(&mut l, &format!("f{i}"), b"");
    }
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = walk(&[finish(l)], limits).err().unwrap();
    assert!(err.to_string().contains("tar entry count"), "{err}");

    // One big file in a highly compressible gzip stream: ratio, total and single-file limits.
    let mut l = Vec::new();
    file(&mut l, "zeros", &vec![0u8; 8 << 20]);
    let blob = gzip(&finish(l));
    let limits = Limits {
        ratio_grace_bytes: 1 << 20,
        max_ratio: 50,
        ..Limits::default()
    };
    let err = walk(std::slice::from_ref(&blob), limits).err().unwrap();
    assert!(err.to_string().contains("decompression ratio"), "{err}");
    let limits = Limits {
        max_total_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = walk(std::slice::from_ref(&blob), limits).err().unwrap();
    assert!(err.to_string().contains("total uncompressed size"), "{err}");
    let limits = Limits {
        max_file_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = walk(std::slice::from_ref(&blob), limits).err().unwrap();
    assert!(err.to_string().contains("single file size"), "{err}");
    // Over the per-file content limit: skipped with a warning, not read into memory.
    let limits = Limits {
        max_visit_bytes: 1 << 20,
        ..Limits::default()
    };
    let (fs, rec) = walk(&[blob], limits).unwrap();
    assert!(rec.seen.is_empty());
    assert!(fs.warnings.iter().any(|w| w.contains("not scanned")));
}

#[test]
fn truncated_and_garbage_layers_are_errors_not_panics() {
    let mut l = Vec::new();
    file(&mut l, "a", &[1u8; 2000]);
    let tar = finish(l);
    assert!(walk(&[tar[..1000].to_vec()], Limits::default()).is_err());
    assert!(walk(&[gzip(&tar)[..50].to_vec()], Limits::default()).is_err());
    assert!(walk(&[vec![0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]], Limits::default()).is_err());
    assert!(walk(&[b"hello world, not a tar".repeat(40)], Limits::default()).is_err());
}
