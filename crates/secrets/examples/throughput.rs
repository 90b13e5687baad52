//! Scans every regular file under a directory in memory and prints the engine's throughput:
//! `cargo run --release -p palisade-secrets --example throughput -- DIR`.
//! Reading is done first, so the figure is the engine alone.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if m.is_dir() {
            collect(&e.path(), out);
        } else if m.is_file() && m.len() <= 16 << 20 {
            out.push(e.path());
        }
    }
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let mut paths = Vec::new();
    collect(Path::new(&dir), &mut paths);
    let files: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let t = std::time::Instant::now();
    let scanner = palisade_secrets::Scanner::new().expect("built-in patterns compile");
    let build = t.elapsed();
    let opts = palisade_secrets::ScanOptions::default();
    let t = std::time::Instant::now();
    let mut matches = 0;
    for f in &files {
        matches += scanner.scan(f, &opts).matches.len();
    }
    let scan = t.elapsed();
    println!(
        "{} files, {:.1} MB, {matches} matches; scanner built in {build:.1?}; scanned in {scan:.2?} = {:.0} MB/s",
        files.len(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / scan.as_secs_f64()
    );
}
