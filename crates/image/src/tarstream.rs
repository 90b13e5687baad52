//! A small streaming tar reader (ustar, GNU long names, PAX path/linkpath/size) with hard bounds on
//! the metadata it buffers. We do not use the `tar` crate for reading untrusted layers because it
//! reads GNU long names and PAX headers into memory without a bound.

use std::io::{self, Read};

const BLOCK: usize = 512;
/// Longest GNU long name / long link we buffer.
const MAX_LONG_NAME: u64 = 64 * 1024;
/// Largest PAX extended header we buffer.
const MAX_PAX: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Other,
}

#[derive(Debug, Clone)]
pub struct TarHeader {
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: TarKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Offset of the entry's data from the start of the stream (for indexing archives on disk).
    pub data_offset: u64,
}

pub struct TarReader<R> {
    inner: R,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// Data bytes of the current entry not yet read, and the padding after them.
    remaining: u64,
    padding: u64,
    done: bool,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn parse_octal(field: &[u8]) -> io::Result<u64> {
    // GNU base-256 for values that do not fit in octal.
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        let mut v: u64 = (first & 0x7f) as u64;
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(b as u64))
                .ok_or_else(|| invalid("tar number overflows"))?;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut started = false;
    for &b in field {
        match b {
            b'0'..=b'7' => {
                started = true;
                v = v
                    .checked_mul(8)
                    .and_then(|v| v.checked_add((b - b'0') as u64))
                    .ok_or_else(|| invalid("tar number overflows"))?;
            }
            b' ' if !started => {}
            0 | b' ' => break,
            _ => return Err(invalid(format!("invalid octal digit {b:#x} in tar header"))),
        }
    }
    Ok(v)
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            pos: 0,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_block(&mut self, buf: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(invalid("tar stream ends inside a header")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += BLOCK as u64;
        Ok(true)
    }

    fn discard(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.inner.read(&mut buf[..want])?;
            if got == 0 {
                return Err(invalid("tar stream ends inside an entry"));
            }
            n -= got as u64;
            self.pos += got as u64;
        }
        Ok(())
    }

    fn read_meta(&mut self, size: u64, limit: u64, what: &str) -> io::Result<Vec<u8>> {
        if size > limit {
            return Err(invalid(format!(
                "{what} of {size} bytes is over the limit of {limit}"
            )));
        }
        let mut v = vec![0u8; size as usize];
        self.inner.read_exact(&mut v)?;
        self.pos += size;
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.discard(pad)?;
        Ok(v)
    }

    /// The next entry's header, after skipping whatever is left of the current entry's data.
    pub fn next_header(&mut self) -> io::Result<Option<TarHeader>> {
        if self.done {
            return Ok(None);
        }
        let rest = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.discard(rest)?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax_path: Option<Vec<u8>> = None;
        let mut pax_link: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        let mut block = [0u8; BLOCK];
        loop {
            if !self.read_block(&mut block)? || block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            let stored = parse_octal(&block[148..156])?;
            let computed: u64 = block
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    if (148..156).contains(&i) {
                        b' ' as u64
                    } else {
                        b as u64
                    }
                })
                .sum();
            if stored != computed {
                return Err(invalid(
                    "tar header checksum mismatch (not a tar stream, or corrupt)",
                ));
            }
            let typeflag = block[156];
            let mut size = parse_octal(&block[124..136])?;
            match typeflag {
                b'L' => {
                    let mut v = self.read_meta(size, MAX_LONG_NAME, "GNU long name")?;
                    v.truncate(cstr(&v).len());
                    long_name = Some(v);
                    continue;
                }
                b'K' => {
                    let mut v = self.read_meta(size, MAX_LONG_NAME, "GNU long link")?;
                    v.truncate(cstr(&v).len());
                    long_link = Some(v);
                    continue;
                }
                b'x' => {
                    let v = self.read_meta(size, MAX_PAX, "PAX header")?;
                    for (k, val) in parse_pax(&v)? {
                        match k {
                            b"path" => pax_path = Some(val.to_vec()),
                            b"linkpath" => pax_link = Some(val.to_vec()),
                            b"size" => {
                                let s = std::str::from_utf8(val)
                                    .ok()
                                    .and_then(|s| s.parse::<u64>().ok())
                                    .ok_or_else(|| invalid("invalid PAX size"))?;
                                pax_size = Some(s);
                            }
                            _ => {}
                        }
                    }
                    continue;
                }
                b'g' => {
                    self.read_meta(size, MAX_PAX, "PAX global header")?;
                    continue;
                }
                _ => {}
            }
            if let Some(s) = pax_size {
                size = s;
            }
            let is_ustar = &block[257..262] == b"ustar";
            let path = match (pax_path, long_name) {
                (Some(p), _) => p,
                (None, Some(p)) => p,
                (None, None) => {
                    let name = cstr(&block[0..100]);
                    let prefix = if is_ustar && &block[257..263] == b"ustar\0" {
                        cstr(&block[345..500])
                    } else {
                        &[][..]
                    };
                    if prefix.is_empty() {
                        name.to_vec()
                    } else {
                        let mut p = prefix.to_vec();
                        p.push(b'/');
                        p.extend_from_slice(name);
                        p
                    }
                }
            };
            let link = pax_link
                .or(long_link)
                .unwrap_or_else(|| cstr(&block[157..257]).to_vec());
            let kind = match typeflag {
                b'0' | 0 | b'7' => {
                    if path.ends_with(b"/") && typeflag == 0 {
                        TarKind::Dir
                    } else {
                        TarKind::File
                    }
                }
                b'5' => TarKind::Dir,
                b'2' => TarKind::Symlink,
                b'1' => TarKind::Hardlink,
                _ => TarKind::Other,
            };
            // Hardlinks, symlinks, dirs and devices carry no data even if a size is set (old tars).
            let data = match kind {
                TarKind::File | TarKind::Other => size,
                _ => 0,
            };
            let data = if typeflag == b'3' || typeflag == b'4' || typeflag == b'6' {
                0
            } else {
                data
            };
            self.remaining = data;
            self.padding = (BLOCK as u64 - data % BLOCK as u64) % BLOCK as u64;
            return Ok(Some(TarHeader {
                path,
                link,
                kind,
                size: data,
                mode: parse_octal(&block[100..108])? as u32,
                uid: parse_octal(&block[108..116]).unwrap_or(0),
                gid: parse_octal(&block[116..124]).unwrap_or(0),
                data_offset: self.pos,
            }));
        }
    }

    /// Drains the rest of the stream after the end-of-archive marker (so digests cover it all).
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(&mut self.inner, &mut io::sink()).map(|_| ())
    }
}

/// Reads the current entry's data.
impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid("tar stream ends inside an entry"));
        }
        self.remaining -= n as u64;
        self.pos += n as u64;
        Ok(n)
    }
}

fn parse_pax(mut data: &[u8]) -> io::Result<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    while !data.is_empty() && data[0] != 0 {
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("invalid PAX record"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l: &usize| l > sp + 1 && l <= data.len())
            .ok_or_else(|| invalid("invalid PAX record length"))?;
        let record = &data[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            out.push((&record[..eq], &record[eq + 1..]));
        }
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_long_names_pax_and_links() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/file.txt", "d".repeat(150));
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "lnk", "../target").unwrap();
        let data = b.into_inner().unwrap();
        let mut r = TarReader::new(&data[..]);
        let h1 = r.next_header().unwrap().unwrap();
        assert_eq!(h1.path, long.as_bytes());
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let h2 = r.next_header().unwrap().unwrap();
        assert_eq!(
            (h2.kind, h2.link.as_slice()),
            (TarKind::Symlink, &b"../target"[..])
        );
        assert!(r.next_header().unwrap().is_none());
    }

    #[test]
    fn rejects_garbage_and_huge_metadata() {
        let garbage = vec![7u8; 1024];
        assert!(TarReader::new(&garbage[..]).next_header().is_err());
        // A GNU long-name header claiming 1 GiB.
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(1 << 30);
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend(vec![0u8; 4096]);
        let err = TarReader::new(&data[..]).next_header().unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
    }
}
