//! Python package versions as PEP 440 defines them (and `packaging` implements): epoch `N!`,
//! release, pre-release (`a`/`b`/`rc` and their spellings), post-release (`.postN`, `-N`),
//! development release (`.devN`) and local version (`+local`), with the spec's normalisation
//! (case, separators, implicit numbers, trailing zeros of the release).

use super::Number;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PreRelease {
    /// A dev release of a final release (`1.0.dev1`) sorts before its pre-releases.
    DevOfFinal,
    Labelled(u8, Number),
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Dev {
    Numbered(Number),
    Absent,
}

/// Local segments: strings sort before numbers; numbers compare by value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalSegment {
    Text(String),
    Number(Number),
}

/// Field order is the comparison order, so `Ord` is derived.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pep440Version {
    epoch: Number,
    /// Without trailing zeros: `1.0` and `1` are the same version.
    release: Vec<Number>,
    pre: PreRelease,
    post: Option<Number>,
    dev: Dev,
    local: Option<Vec<LocalSegment>>,
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.s.get(self.pos + offset).copied()
    }
    fn digits(&mut self) -> Option<Number> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        (self.pos > start).then(|| Number::new(std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("")))
    }
    fn separator(&mut self) -> bool {
        if matches!(self.peek(), Some(b'-' | b'_' | b'.')) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    /// Consumes the first of `words` found here.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = &self.s[self.pos..];
        let i = words.iter().position(|w| rest.starts_with(w.as_bytes()))?;
        self.pos += words[i].len();
        Some(i)
    }
    /// `[-_.]?N?` after a label; a separator not followed by digits is left unconsumed.
    fn optional_number(&mut self) -> Option<Number> {
        if matches!(self.peek(), Some(b'-' | b'_' | b'.'))
            && self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
        {
            self.pos += 1;
        }
        self.digits()
    }
}

impl Pep440Version {
    pub(crate) fn parse(text: &str) -> Result<Pep440Version, String> {
        let lower = text.trim().to_ascii_lowercase();
        if lower.is_empty() {
            return Err("empty version".into());
        }
        let mut c = Cursor {
            s: lower.as_bytes(),
            pos: 0,
        };
        if c.peek() == Some(b'v') {
            c.pos += 1;
        }
        let first = c.digits().ok_or("expected a release number")?;
        let (epoch, mut release) = if c.peek() == Some(b'!') {
            c.pos += 1;
            (
                first,
                vec![c.digits().ok_or("expected a release number after the epoch")?],
            )
        } else {
            (Number::default(), vec![first])
        };
        while c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
            c.pos += 1;
            release.extend(c.digits());
        }
        while release.last().is_some_and(Number::is_zero) {
            release.pop();
        }

        let mut pre = None;
        let start = c.pos;
        c.separator();
        // Longer spellings first, so that `preview` is not read as `pre` + `view`.
        const PRE: [&str; 8] = ["alpha", "a", "beta", "b", "preview", "pre", "rc", "c"];
        match c.word(&PRE) {
            Some(i) => {
                let rank = match PRE[i] {
                    "alpha" | "a" => 0,
                    "beta" | "b" => 1,
                    _ => 2,
                };
                pre = Some((rank, c.optional_number().unwrap_or_default()));
            }
            None => c.pos = start,
        }

        let mut post = None;
        let start = c.pos;
        if c.peek() == Some(b'-') && c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
            c.pos += 1;
            post = c.digits();
        } else {
            c.separator();
            if c.word(&["post", "rev", "r"]).is_some() {
                post = Some(c.optional_number().unwrap_or_default());
            } else {
                c.pos = start;
            }
        }

        let mut dev = Dev::Absent;
        let start = c.pos;
        c.separator();
        if c.word(&["dev"]).is_some() {
            dev = Dev::Numbered(c.optional_number().unwrap_or_default());
        } else {
            c.pos = start;
        }

        let mut local = None;
        if c.peek() == Some(b'+') {
            c.pos += 1;
            let rest = std::str::from_utf8(&c.s[c.pos..]).unwrap_or("");
            let mut segments = Vec::new();
            for segment in rest.split(['-', '_', '.']) {
                if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("invalid local version segment {segment:?}"));
                }
                segments.push(if segment.bytes().all(|b| b.is_ascii_digit()) {
                    LocalSegment::Number(Number::new(segment))
                } else {
                    LocalSegment::Text(segment.to_string())
                });
            }
            c.pos = c.s.len();
            local = Some(segments);
        }
        if c.pos != c.s.len() {
            return Err(format!(
                "unexpected text {:?}",
                String::from_utf8_lossy(&c.s[c.pos..])
            ));
        }
        let pre = match pre {
            Some((rank, n)) => PreRelease::Labelled(rank, n),
            None if post.is_none() && dev != Dev::Absent => PreRelease::DevOfFinal,
            None => PreRelease::Absent,
        };
        Ok(Pep440Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scheme::Pep440;
    use super::super::test_support::*;

    /// The ordering example from PEP 440's "Summary of permitted suffixes and relative ordering",
    /// extended with the cases `packaging`'s test suite checks.
    #[test]
    fn pep440_ordering_example() {
        assert_ascending(
            Pep440,
            &[
                "1.dev0",
                "1.0.dev456",
                "1.0a1",
                "1.0a2.dev456",
                "1.0a12.dev456",
                "1.0a12",
                "1.0b1.dev456",
                "1.0b2",
                "1.0b2.post345.dev456",
                "1.0b2.post345",
                "1.0rc1.dev456",
                "1.0rc1",
                "1.0",
                "1.0+abc.5",
                "1.0+abc.7",
                "1.0+5",
                "1.0.post456.dev34",
                "1.0.post456",
                "1.0.15",
                "1.1.dev1",
            ],
        );
    }

    #[test]
    fn epochs() {
        assert_ascending(Pep440, &["2024.10", "1!0.1", "1!1.0", "2!0.0.1"]);
        assert_equal(Pep440, "0!1.0", "1.0");
    }

    #[test]
    fn normalisation() {
        for (a, b) in [
            ("1.0", "1"),
            ("1.0.0", "1"),
            ("v1.0", "1.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0-alpha.1", "1.0a1"),
            ("1.0.beta_2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0pre1", "1.0rc1"),
            ("1.0preview1", "1.0rc1"),
            ("1.0rc", "1.0rc0"),
            ("1.0-1", "1.0.post1"),
            ("1.0post", "1.0.post0"),
            ("1.0-r2", "1.0.post2"),
            ("1.0.rev3", "1.0.post3"),
            ("1.0-dev", "1.0.dev0"),
            ("1.0DEV2", "1.0.dev2"),
            ("1.0+ubuntu-1", "1.0+ubuntu.1"),
            ("  1.0  ", "1.0"),
            ("1.0a1-1", "1.0a1.post1"),
        ] {
            assert_equal(Pep440, a, b);
        }
    }

    #[test]
    fn local_versions() {
        assert_ascending(
            Pep440,
            &[
                "1.0",
                "1.0+a",
                "1.0+a.b",
                "1.0+a.1",
                "1.0+b",
                "1.0+0",
                "1.0+1",
                "1.0+10",
                "1.0.post1",
            ],
        );
        assert_equal(Pep440, "1.0+007", "1.0+7");
    }

    #[test]
    fn real_pypi_versions() {
        assert_ascending(
            Pep440,
            &[
                "2.11.2", "2.11.3", "3.0.0a1", "3.0.0rc1", "3.0.0", "3.1.4", "3.1.5",
            ],
        );
        assert_ascending(
            Pep440,
            &[
                "1.26.4", "1.26.5", "1.26.17", "1.26.18", "2.0.0a1", "2.0.0", "2.2.2",
            ],
        );
        assert_ascending(Pep440, &["2017.4.17", "2022.12.7", "2023.7.22", "2024.7.4"]);
        assert_ascending(Pep440, &["5.3.1", "5.4b1", "5.4b2", "5.4", "5.4.1", "6.0"]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "abc",
            "1.0x",
            "1.0+",
            "1.0+a..b",
            "1.0+a_",
            "1!",
            "!1",
            "1.0 1",
            "1.0a1a2",
            "1.0.dev1.post1",
            "1.0-",
        ] {
            assert_invalid(Pep440, bad);
        }
    }
}
