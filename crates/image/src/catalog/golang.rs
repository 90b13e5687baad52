//! Go: go.mod requirements, go.sum modules, and the build info the Go linker embeds in binaries
//! (Go 1.18+ inline format: the `\xff Go buildinf:` header, then the Go version and the module info
//! as length-prefixed strings).

use super::{Cataloged, Ecosystem, Package};

const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
const FLAG_VERSION_INLINE: u8 = 0x2;

pub fn go_mod(path: &str, text: &str, out: &mut Cataloged) {
    let mut in_require = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if in_require {
            if line == ")" {
                in_require = false;
            } else {
                push_require(path, line, out);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("require") {
            let rest = rest.trim();
            if rest == "(" {
                in_require = true;
            } else {
                push_require(path, rest, out);
            }
        }
    }
}

fn push_require(path: &str, spec: &str, out: &mut Cataloged) {
    let mut parts = spec.split_whitespace();
    if let (Some(m), Some(v)) = (parts.next(), parts.next()) {
        out.packages
            .push(Package::new(Ecosystem::Go, m.trim_matches('"'), v, path));
    }
}

/// go.sum: modules whose content (not only go.mod) was hashed, i.e. that the build used.
pub fn go_sum(path: &str, text: &str, out: &mut Cataloged) {
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(m), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        if v.ends_with("/go.mod") || !seen.insert((m, v)) {
            continue;
        }
        out.packages.push(Package::new(Ecosystem::Go, m, v, path));
    }
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn read_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, n) = uvarint(b)?;
    let len = usize::try_from(len).ok()?;
    let s = b.get(n..n.checked_add(len)?)?;
    Some((s, &b[n + len..]))
}

/// The Go version and module info of a Go binary, if it is one.
pub fn build_info(content: &[u8]) -> Option<(String, String)> {
    for at in memchr::memmem::find_iter(content, BUILDINFO_MAGIC) {
        if at % 16 != 0 {
            continue;
        }
        let Some(header) = content.get(at..at + 32) else {
            continue;
        };
        if header[15] & FLAG_VERSION_INLINE == 0 {
            continue;
        }
        let Some((version, rest)) = read_string(&content[at + 32..]) else {
            continue;
        };
        let Some((modinfo, _)) = read_string(rest) else {
            continue;
        };
        let version = String::from_utf8_lossy(version).into_owned();
        if !version.starts_with("go") {
            continue;
        }
        let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
            &modinfo[16..modinfo.len() - 16]
        } else {
            &[][..]
        };
        return Some((version, String::from_utf8_lossy(modinfo).into_owned()));
    }
    None
}

/// Packages of a Go binary: the standard library at the toolchain version, the main module and
/// every dependency (with `=>` replacements applied).
pub fn binary(path: &str, content: &[u8], out: &mut Cataloged) {
    let Some((go_version, modinfo)) = build_info(content) else {
        if content.starts_with(b"\x7fELF") && memchr::memmem::find(content, BUILDINFO_MAGIC).is_some() {
            out.warn(
                path,
                "Go binary built before Go 1.18 (pointer-format build info is not read)",
            );
        }
        return;
    };
    let toolchain = go_version.split_whitespace().next().unwrap_or("");
    let std_version = toolchain.strip_prefix("go").unwrap_or(toolchain);
    out.packages.push(Package::new(
        Ecosystem::Go,
        "stdlib",
        &format!("v{std_version}"),
        path,
    ));
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", m, v, ..] => out.packages.push(Package::new(Ecosystem::Go, m, v, path)),
            ["dep", m, v, ..] => out.packages.push(Package::new(Ecosystem::Go, m, v, path)),
            ["=>", m, v, ..] => {
                if let Some(last) = out.packages.last_mut() {
                    last.name = m.to_string();
                    last.version = v.to_string();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varstr(s: &[u8]) -> Vec<u8> {
        let mut v = vec![];
        let mut n = s.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(b);
                break;
            }
            v.push(b | 0x80);
        }
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn reads_inline_build_info() {
        let sentinel = [0x30u8; 16];
        let mut modinfo = sentinel.to_vec();
        modinfo.extend_from_slice(
            b"path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.5\th1:x=\ndep\tgithub.com/a/b\tv1.0.0\th1:y=\n=>\tgithub.com/fork/b\tv1.0.1\th1:z=\nbuild\t-compiler=gc\n",
        );
        modinfo.extend_from_slice(&[0x31u8; 16]);
        let mut bin = b"\x7fELF".to_vec();
        bin.resize(4096, 0);
        // A decoy magic at an unaligned offset.
        bin[100..114].copy_from_slice(BUILDINFO_MAGIC);
        let mut header = BUILDINFO_MAGIC.to_vec();
        header.push(8);
        header.push(FLAG_VERSION_INLINE);
        header.resize(32, 0);
        bin.extend(header);
        bin.extend(varstr(b"go1.24.4"));
        bin.extend(varstr(&modinfo));
        let mut out = Cataloged::default();
        binary("/bin/app", &bin, &mut out);
        let got: Vec<(&str, &str)> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("stdlib", "v1.24.4"),
                ("example.com/app", "(devel)"),
                ("golang.org/x/text", "v0.3.5"),
                ("github.com/fork/b", "v1.0.1")
            ]
        );
        let mut truncated = Cataloged::default();
        binary("/bin/t", &bin[..4096 + 40], &mut truncated);
        assert!(truncated.packages.is_empty());
    }

    #[test]
    fn go_mod_and_sum() {
        let mut out = Cataloged::default();
        go_mod(
            "/g/go.mod",
            "module x\n\ngo 1.19\n\nrequire golang.org/x/text v0.3.5\nrequire (\n\tgithub.com/a/b v1.2.3 // indirect\n)\n",
            &mut out,
        );
        go_sum(
            "/g/go.sum",
            "golang.org/x/text v0.3.5 h1:a=\ngolang.org/x/text v0.3.5/go.mod h1:b=\ngolang.org/x/tools v0.1.0/go.mod h1:c=\n",
            &mut out,
        );
        let got: Vec<(&str, &str)> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("golang.org/x/text", "v0.3.5"),
                ("github.com/a/b", "v1.2.3"),
                ("golang.org/x/text", "v0.3.5")
            ]
        );
        out.packages[0].finish_purl(None);
        assert_eq!(out.packages[0].purl, "pkg:golang/golang.org/x/text@v0.3.5");
    }
}
