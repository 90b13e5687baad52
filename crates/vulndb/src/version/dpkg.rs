//! Debian package versions, `[epoch:]upstream[-revision]`, ordered as dpkg's `verrevcmp` does:
//! alternating non-digit and digit runs; in non-digit runs `~` sorts before everything (even the
//! end of the string), then letters, then other characters; digit runs compare numerically.

use super::{cmp_digits, order_by_cmp};
use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub struct DpkgVersion {
    epoch: u32,
    upstream: String,
    /// Empty when absent, which orders as revision `0` does.
    revision: String,
}

impl DpkgVersion {
    pub(crate) fn parse(text: &str) -> Result<DpkgVersion, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty version".into());
        }
        if text.chars().any(char::is_whitespace) {
            return Err("embedded whitespace".into());
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err("empty epoch".into());
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("epoch is not a number".into());
                }
                let epoch = e.parse::<u32>().map_err(|_| "epoch too big".to_string())?;
                if rest.is_empty() {
                    return Err("nothing after the epoch colon".into());
                }
                (epoch, rest)
            }
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err("empty revision".into());
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err("empty upstream version".into());
        }
        // dpkg only warns about an upstream version not starting with a digit (such versions
        // exist in the archive), so it is accepted; invalid characters are rejected.
        let upstream_ok = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if let Some(c) = upstream.chars().find(|&c| !upstream_ok(c)) {
            return Err(format!("invalid character {c:?} in upstream version"));
        }
        let revision_ok = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
        if let Some(c) = revision.chars().find(|&c| !revision_ok(c)) {
            return Err(format!("invalid character {c:?} in revision"));
        }
        Ok(DpkgVersion {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

/// The weight of one character in a non-digit run; `None` stands for the end of the run.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` over one part (upstream or revision).
pub(crate) fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let wa = weight(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let wb = weight(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        let start_a = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let start_b = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        // Both slices are ASCII digits, so from_utf8 cannot fail.
        let da = std::str::from_utf8(&a[start_a..i]).unwrap_or("");
        let db = std::str::from_utf8(&b[start_b..j]).unwrap_or("");
        let order = cmp_digits(da, db);
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}
order_by_cmp!(DpkgVersion);

#[cfg(test)]
mod tests {
    use super::super::Scheme::Dpkg;
    use super::super::test_support::*;

    #[test]
    fn tilde_sorts_before_everything_even_the_end() {
        assert_ascending(
            Dpkg,
            &[
                "1.0~~", "1.0~~a", "1.0~", "1.0~rc1", "1.0", "1.0a", "1.0+b1", "1.0.1",
            ],
        );
        assert_ascending(Dpkg, &["2.30~rc1-1", "2.30-1", "2.30-1+deb12u1", "2.30-2"]);
    }

    #[test]
    fn letters_sort_before_non_letters() {
        // In a non-digit run letters weigh less than any other character ('+', '.', '-').
        assert_ascending(Dpkg, &["1.0a", "1.0z", "1.0+", "1.0."]);
        assert_ascending(Dpkg, &["1a", "1A"].iter().rev().copied().collect::<Vec<_>>());
        assert_ascending(Dpkg, &["1.0", "1.0a", "1.0+", "1.0."]);
        assert_ascending(Dpkg, &["1.0~", "1.0", "1.0a", "1.0+"]);
    }

    #[test]
    fn numeric_runs_compare_by_value() {
        assert_ascending(Dpkg, &["1.2", "1.10", "1.100", "2", "10"]);
        assert_equal(Dpkg, "1.002", "1.2");
        assert_equal(Dpkg, "1.0", "1.00");
        assert_ascending(Dpkg, &["1.99999999999999999999998", "1.99999999999999999999999"]);
    }

    #[test]
    fn epoch_dominates() {
        assert_ascending(Dpkg, &["9.9-9", "1:0.1-1", "1:1.0", "2:0"]);
        assert_equal(Dpkg, "0:1.0-1", "1.0-1");
    }

    #[test]
    fn revision_compares_after_upstream() {
        assert_ascending(Dpkg, &["1.0-1", "1.0-1.1", "1.0-2", "1.0-10", "1.0.1-1"]);
        // A missing revision orders as "0".
        assert_equal(Dpkg, "1.0", "1.0-0");
        assert_ascending(Dpkg, &["1.0", "1.0-1"]);
        // Only the last hyphen starts the revision.
        assert_ascending(Dpkg, &["1.0-beta-1", "1.0-beta-2"]);
    }

    #[test]
    fn real_debian_versions() {
        assert_ascending(
            Dpkg,
            &[
                "3.0.11-1~deb12u1",
                "3.0.11-1~deb12u2",
                "3.0.13-1~deb12u1",
                "3.0.15-1~deb12u1",
                "3.5.1-1",
            ],
        );
        assert_ascending(Dpkg, &["2.36-9+deb12u4", "2.36-9+deb12u10", "2.37-1"]);
        assert_ascending(Dpkg, &["1:2.39.2-1.1", "1:2.39.5-1", "1:2.40.1-1"]);
        assert_ascending(Dpkg, &["0.0~git20191109.daa7c04-1", "0.1-1"]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            " ",
            "1.0 1",
            ":1.0",
            "a:1.0",
            "1:",
            "1.0-",
            "1.0_1",
            "-1",
            "99999999999:1",
        ] {
            assert_invalid(Dpkg, bad);
        }
    }
}
