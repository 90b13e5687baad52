//! Version schemes: parsing and ordering exactly as each ecosystem's reference tool defines them
//! (dpkg, rpm, apk-tools, PEP 440 / `packaging`, semver, Go modules, Maven `ComparableVersion`).
//! Pure functions over strings: no I/O, and unparseable input is an error, never a panic.

mod apk;
mod dpkg;
mod golang;
mod maven;
mod pep440;
mod rpm;
mod semver;

pub use apk::ApkVersion;
pub use dpkg::DpkgVersion;
pub use golang::GoVersion;
pub use maven::MavenVersion;
pub use pep440::Pep440Version;
pub use rpm::RpmVersion;
pub use semver::SemverVersion;

use crate::VulnDbError;
use std::cmp::Ordering;
use std::fmt;

/// Longest version string any scheme accepts; real versions are far shorter, and the bound keeps
/// parsing and comparison time (and Maven's nesting) small on hostile input.
pub const MAX_VERSION_LEN: usize = 256;

/// A version ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Dpkg,
    Rpm,
    Apk,
    Pep440,
    Semver,
    Go,
    Maven,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Rpm => "rpm",
            Scheme::Apk => "apk",
            Scheme::Pep440 => "PEP 440",
            Scheme::Semver => "semver",
            Scheme::Go => "Go",
            Scheme::Maven => "Maven",
        }
    }

    /// The scheme an OSV ecosystem's `ECOSYSTEM` ranges use; `None` when palisade has none for it.
    /// Distribution ecosystems may carry a release (`Debian:13`, `Alpine:v3.20`).
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or("");
        Some(match base.to_ascii_lowercase().as_str() {
            "debian" | "ubuntu" => Scheme::Dpkg,
            "alpine" | "wolfi" | "chainguard" => Scheme::Apk,
            "red hat" | "rocky linux" | "almalinux" | "opensuse" | "suse" | "mageia" | "openeuler" => {
                Scheme::Rpm
            }
            "pypi" => Scheme::Pep440,
            "npm" | "crates.io" => Scheme::Semver,
            "go" => Scheme::Go,
            "maven" => Scheme::Maven,
            _ => return None,
        })
    }

    pub fn parse(self, text: &str) -> Result<Version, VulnDbError> {
        if text.len() > MAX_VERSION_LEN {
            return Err(invalid(
                self,
                text,
                format!("longer than {MAX_VERSION_LEN} bytes"),
            ));
        }
        let parsed = match self {
            Scheme::Dpkg => DpkgVersion::parse(text).map(Version::Dpkg),
            Scheme::Rpm => RpmVersion::parse(text).map(Version::Rpm),
            Scheme::Apk => ApkVersion::parse(text).map(Version::Apk),
            Scheme::Pep440 => Pep440Version::parse(text).map(Version::Pep440),
            Scheme::Semver => SemverVersion::parse(text).map(Version::Semver),
            Scheme::Go => GoVersion::parse(text).map(Version::Go),
            Scheme::Maven => MavenVersion::parse(text).map(Version::Maven),
        };
        parsed.map_err(|reason| invalid(self, text, reason))
    }

    /// Orders two versions of this scheme.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VulnDbError> {
        Ok(self.parse(a)?.cmp(&self.parse(b)?))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn invalid(scheme: Scheme, text: &str, reason: String) -> VulnDbError {
    let mut shown: String = text.chars().take(80).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    VulnDbError::InvalidVersion {
        scheme: scheme.name(),
        version: shown,
        reason,
    }
}

/// A parsed version. Versions of different schemes order by scheme first, which never matters
/// because the matcher only compares versions of one scheme.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Dpkg(DpkgVersion),
    Rpm(RpmVersion),
    Apk(ApkVersion),
    Pep440(Pep440Version),
    Semver(SemverVersion),
    Go(GoVersion),
    Maven(MavenVersion),
}

/// Compares two runs of ASCII digits by numeric value, whatever their length.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// An arbitrarily long non-negative integer, kept as its digits without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Number(String);

impl Number {
    /// `digits` must be non-empty ASCII digits.
    pub(crate) fn new(digits: &str) -> Number {
        Number(digits.trim_start_matches('0').to_string())
    }
    pub(crate) fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Implements `PartialEq`, `Eq` and `PartialOrd` from an `Ord` impl, for versions whose equality is
/// "orders the same" rather than "same text" (`1.0` and `1.0.0` in Maven).
macro_rules! order_by_cmp {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == std::cmp::Ordering::Equal
            }
        }
        impl Eq for $t {}
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    };
}
pub(crate) use order_by_cmp;

#[cfg(test)]
pub(crate) mod test_support {
    use super::Scheme;
    use std::cmp::Ordering;

    /// Asserts that each version is strictly less than the next one, and every pair in between.
    pub fn assert_ascending(scheme: Scheme, versions: &[&str]) {
        for (i, a) in versions.iter().enumerate() {
            for b in &versions[i + 1..] {
                assert_eq!(
                    scheme.compare(a, b).unwrap(),
                    Ordering::Less,
                    "{scheme}: {a} < {b}"
                );
                assert_eq!(
                    scheme.compare(b, a).unwrap(),
                    Ordering::Greater,
                    "{scheme}: {b} > {a}"
                );
            }
            assert_eq!(
                scheme.compare(a, a).unwrap(),
                Ordering::Equal,
                "{scheme}: {a} == {a}"
            );
        }
    }

    pub fn assert_equal(scheme: Scheme, a: &str, b: &str) {
        assert_eq!(
            scheme.compare(a, b).unwrap(),
            Ordering::Equal,
            "{scheme}: {a} == {b}"
        );
        assert_eq!(
            scheme.compare(b, a).unwrap(),
            Ordering::Equal,
            "{scheme}: {b} == {a}"
        );
    }

    pub fn assert_invalid(scheme: Scheme, text: &str) {
        assert!(
            scheme.parse(text).is_err(),
            "{scheme}: {text:?} should be rejected"
        );
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    const ALL: [Scheme; 7] = [
        Scheme::Dpkg,
        Scheme::Rpm,
        Scheme::Apk,
        Scheme::Pep440,
        Scheme::Semver,
        Scheme::Go,
        Scheme::Maven,
    ];

    /// Hostile inputs: errors or orderings, never panics, and bounded length.
    #[test]
    fn hostile_inputs_never_panic() {
        let long_digits = "9".repeat(200);
        let nested = "1-".repeat(120) + "1";
        let inputs = [
            "",
            " ",
            "é",
            "1é",
            "1.é-ü",
            "ß1",
            "1.0+ü",
            "~",
            "^",
            "-",
            ".",
            "_",
            "+",
            "!",
            ":",
            "1:",
            "v",
            "go",
            "1..2",
            "1--2",
            long_digits.as_str(),
            nested.as_str(),
            "1.0\u{0}",
            "0:0-0",
            "1.0-r1~x",
        ];
        for scheme in ALL {
            for a in &inputs {
                for b in &inputs {
                    let _ = scheme.compare(a, b);
                }
            }
            let too_long = "1".repeat(MAX_VERSION_LEN + 1);
            assert!(scheme.parse(&too_long).is_err(), "{scheme}");
        }
    }

    #[test]
    fn ecosystems_map_to_schemes() {
        assert_eq!(Scheme::for_ecosystem("Debian:13"), Some(Scheme::Dpkg));
        assert_eq!(Scheme::for_ecosystem("Alpine:v3.20"), Some(Scheme::Apk));
        assert_eq!(Scheme::for_ecosystem("Rocky Linux:9"), Some(Scheme::Rpm));
        assert_eq!(Scheme::for_ecosystem("PyPI"), Some(Scheme::Pep440));
        assert_eq!(Scheme::for_ecosystem("npm"), Some(Scheme::Semver));
        assert_eq!(Scheme::for_ecosystem("crates.io"), Some(Scheme::Semver));
        assert_eq!(Scheme::for_ecosystem("Go"), Some(Scheme::Go));
        assert_eq!(Scheme::for_ecosystem("Maven"), Some(Scheme::Maven));
        assert_eq!(Scheme::for_ecosystem("Hackage"), None);
    }
}
