//! RPM versions, `[epoch:]version[-release]`, ordered as librpm's `rpmvercmp`: alphanumeric
//! segments separated by anything else; numeric segments compare numerically and beat alphabetic
//! ones; `~` sorts before everything (pre-releases), `^` after the base but before any further
//! segment (post-release snapshots).

use super::{cmp_digits, order_by_cmp};
use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub struct RpmVersion {
    epoch: u32,
    version: String,
    release: Option<String>,
}

impl RpmVersion {
    pub(crate) fn parse(text: &str) -> Result<RpmVersion, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty version".into());
        }
        if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("invalid character {c:?}"));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("epoch is not a number".into());
                }
                (e.parse::<u32>().map_err(|_| "epoch too big".to_string())?, rest)
            }
            None => (0, text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        if version.is_empty() {
            return Err("empty version part".into());
        }
        if release == Some("") {
            return Err("empty release".into());
        }
        Ok(RpmVersion {
            epoch,
            version: version.to_string(),
            release: release.map(str::to_string),
        })
    }
}

/// librpm's `rpmvercmp` over one part (version or release).
pub(crate) fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && separator(a[i]) {
            i += 1;
        }
        while j < b.len() && separator(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // `^` is newer than the end of the string but older than any other segment.
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {}
                (_, Some(b'^')) => return Ordering::Greater,
                _ => return Ordering::Less,
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else { break };
        let numeric = ca.is_ascii_digit();
        let in_segment = |c: u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let (start_a, start_b) = (i, j);
        while i < a.len() && in_segment(a[i]) {
            i += 1;
        }
        while j < b.len() && in_segment(b[j]) {
            j += 1;
        }
        // Segments of different kinds: the numeric one is newer.
        if j == start_b {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let sa = std::str::from_utf8(&a[start_a..i]).unwrap_or("");
        let sb = std::str::from_utf8(&b[start_b..j]).unwrap_or("");
        let order = if numeric { cmp_digits(sa, sb) } else { sa.cmp(sb) };
        if order != Ordering::Equal {
            return order;
        }
    }
    // Whichever still has segments left is newer.
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| match (&self.release, &other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                (Some(_), None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Less,
                (None, None) => Ordering::Equal,
            })
    }
}
order_by_cmp!(RpmVersion);

#[cfg(test)]
mod tests {
    use super::super::Scheme::Rpm;
    use super::super::test_support::*;
    use super::rpmvercmp;
    use std::cmp::Ordering::*;

    /// Cases from rpm's own test suite for rpmvercmp (tests/rpmvercmp.at), as (a, b, expected).
    #[test]
    fn rpmvercmp_reference_cases() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0", "1.0", Greater),
            ("2.0.1", "2.0.1", Equal),
            ("2.0", "2.0.1", Less),
            ("2.0.1a", "2.0.1a", Equal),
            ("2.0.1a", "2.0.1", Greater),
            ("5.5p1", "5.5p1", Equal),
            ("5.5p1", "5.5p2", Less),
            ("5.5p10", "5.5p1", Greater),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10", Equal),
            ("xyz10", "xyz10.1", Less),
            ("xyz.4", "8", Less),
            ("xyz.4", "2", Less),
            ("5.5p2", "5.6p1", Less),
            ("5.6p1", "6.5p1", Less),
            ("6.0.rc1", "6.0", Greater),
            ("10b2", "10a1", Greater),
            ("1.0aa", "1.0a", Greater),
            ("10.0001", "10.1", Equal),
            ("10.0001", "10.0039", Less),
            ("4.999.9", "5.0", Less),
            ("20101121", "20101122", Less),
            ("2_0", "2_0", Equal),
            ("2.0", "2_0", Equal),
            ("a", "a", Equal),
            ("a+", "a+", Equal),
            ("a+", "a_", Equal),
            ("+a", "_a", Equal),
            ("+", "_", Equal),
            ("1.0~rc1", "1.0~rc1", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~rc1~git123", "1.0~rc1", Less),
            ("1.0^", "1.0^", Equal),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0^git1", "1.01", Less),
            ("1.0^20160101", "1.0.1", Less),
            ("1.0^20160101^git1", "1.0^20160101", Greater),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("1.0^git1~pre", "1.0^git1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(rpmvercmp(a, b), want, "rpmvercmp({a}, {b})");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "rpmvercmp({b}, {a})");
        }
    }

    #[test]
    fn epoch_version_release() {
        assert_ascending(
            Rpm,
            &["1.0-1.el8", "1.0-2.el8", "1.1-1.el8", "1:0.9-1.el8", "2:0.1-1"],
        );
        assert_equal(Rpm, "0:1.2.3-4.el9", "1.2.3-4.el9");
        assert_ascending(Rpm, &["1.0", "1.0-1"]);
        assert_ascending(
            Rpm,
            &["3.0.7-24.el9", "3.0.7-25.el9", "3.0.7-27.el9_4", "3.2.2-6.el9_5"],
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "a:1", ":1", "1.0-", "1 0", "1.0\n2", "99999999999:1"] {
            assert_invalid(Rpm, bad);
        }
    }
}
