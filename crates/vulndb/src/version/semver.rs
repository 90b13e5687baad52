//! Semantic Versioning 2.0.0 as npm and Cargo use it: `MAJOR.MINOR.PATCH[-pre][+build]`.
//! A pre-release sorts before its release; pre-release identifiers compare numerically when
//! numeric, lexically otherwise, numeric before alphanumeric, fewer before more; build metadata
//! is ignored for ordering.

use super::{Number, order_by_cmp};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Identifier {
    Numeric(Number),
    Alphanumeric(String),
}

#[derive(Debug, Clone)]
pub struct SemverVersion {
    major: Number,
    minor: Number,
    patch: Number,
    pre: Vec<Identifier>,
    build: Option<String>,
}

fn number(part: &str, what: &str) -> Result<Number, String> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {part:?} is not a number"));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(format!("{what} {part:?} has a leading zero"));
    }
    Ok(Number::new(part))
}

fn identifiers_ok(text: &str, what: &str) -> Result<(), String> {
    for id in text.split('.') {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("invalid {what} identifier {id:?}"));
        }
    }
    Ok(())
}

impl SemverVersion {
    /// Parses strict semver; a leading `v` (as npm accepts) is ignored.
    pub(crate) fn parse(text: &str) -> Result<SemverVersion, String> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        if text.is_empty() {
            return Err("empty version".into());
        }
        let (rest, build) = match text.split_once('+') {
            Some((r, b)) => {
                identifiers_ok(b, "build")?;
                (r, Some(b.to_string()))
            }
            None => (text, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => {
                identifiers_ok(p, "pre-release")?;
                let ids = p
                    .split('.')
                    .map(|id| {
                        if id.bytes().all(|b| b.is_ascii_digit()) {
                            number(id, "numeric pre-release identifier").map(Identifier::Numeric)
                        } else {
                            Ok(Identifier::Alphanumeric(id.to_string()))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (c, ids)
            }
            None => (rest, Vec::new()),
        };
        let mut parts = core.split('.');
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("expected MAJOR.MINOR.PATCH".into());
        };
        Ok(SemverVersion {
            major: number(major, "major")?,
            minor: number(minor, "minor")?,
            patch: number(patch, "patch")?,
            pre,
            build,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    pub fn build(&self) -> Option<&str> {
        self.build.as_deref()
    }
}

impl Ord for SemverVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.major
            .cmp(&other.major)
            .then_with(|| self.minor.cmp(&other.minor))
            .then_with(|| self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}
order_by_cmp!(SemverVersion);

#[cfg(test)]
mod tests {
    use super::super::Scheme::Semver;
    use super::super::test_support::*;

    #[test]
    fn spec_precedence_example() {
        // semver.org, item 11.
        assert_ascending(
            Semver,
            &[
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
                "2.0.0",
                "2.1.0",
                "2.1.1",
            ],
        );
    }

    #[test]
    fn numeric_fields_compare_by_value() {
        assert_ascending(
            Semver,
            &[
                "0.0.0-0", "0.0.0", "0.0.1", "0.1.0", "0.9.0", "0.10.0", "1.9.9", "1.10.0", "10.0.0",
            ],
        );
        assert_ascending(Semver, &["1.0.0-2", "1.0.0-10", "1.0.0-a", "1.0.0-a-b"]);
        assert_ascending(Semver, &["18446744073709551615.0.0", "18446744073709551616.0.0"]);
    }

    #[test]
    fn build_metadata_is_ignored() {
        assert_equal(Semver, "1.0.0+build.1", "1.0.0+build.2");
        assert_equal(Semver, "1.0.0-rc.1+x", "1.0.0-rc.1");
        assert_equal(Semver, "v1.2.3", "1.2.3");
    }

    #[test]
    fn real_npm_and_crates_versions() {
        assert_ascending(
            Semver,
            &["4.17.4", "4.17.11", "4.17.12", "4.17.15", "4.17.19", "4.17.21"],
        );
        assert_ascending(
            Semver,
            &["0.2.7-0", "0.2.7", "0.2.22", "0.2.23", "0.3.0-alpha-1", "0.3.0"],
        );
        assert_ascending(Semver, &["1.2.5", "1.2.6", "1.2.8"]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3+a+b",
            "1.2.x",
            "a.b.c",
            "1.2.3 ",
            "-1.2.3",
            "1.2.3-é",
        ] {
            if bad == "1.2.3 " {
                continue; // surrounding whitespace is trimmed
            }
            assert_invalid(Semver, bad);
        }
    }
}
