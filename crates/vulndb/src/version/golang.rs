//! Go module versions: semver with a `v` prefix (`v1` and `v1.2` are shorthands), pseudo-versions
//! (`v0.0.0-20191109021931-daa7c04131f5`, ordinary pre-releases to semver), `+incompatible` (build
//! metadata, ignored for ordering), and Go toolchain tags (`go1.21.3`, `go1.21rc2`) as the Go
//! vulnerability database maps them to semver. OSV ranges write these versions without the `v`.

use super::semver::SemverVersion;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion(SemverVersion);

impl GoVersion {
    pub(crate) fn parse(text: &str) -> Result<GoVersion, String> {
        let text = text.trim();
        if let Some(tag) = text.strip_prefix("go") {
            return toolchain_tag(tag).map(GoVersion);
        }
        let bare = text.strip_prefix('v').unwrap_or(text);
        // `v1` and `v1.2` are shorthands for `v1.0.0` and `v1.2.0`, without pre-release or build.
        if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let dots = bare.matches('.').count();
            if dots < 2 {
                let filled = format!("{bare}{}", ".0".repeat(2 - dots));
                return SemverVersion::parse(&filled).map(GoVersion);
            }
        }
        SemverVersion::parse(bare).map(GoVersion)
    }
}

/// `1.21.3` → 1.21.3, `1.21` → 1.21.0, `1.21rc2` → 1.21.0-rc.2, `1.9beta1` → 1.9.0-beta.1.
fn toolchain_tag(tag: &str) -> Result<SemverVersion, String> {
    let split = tag.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(tag.len());
    let (release, pre) = tag.split_at(split);
    if release.is_empty() || !release.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("invalid Go toolchain version go{tag}"));
    }
    let dots = release.matches('.').count();
    if dots > 2 {
        return Err(format!("invalid Go toolchain version go{tag}"));
    }
    let mut semver = format!("{release}{}", ".0".repeat(2 - dots));
    if !pre.is_empty() {
        let digits = pre.find(|c: char| c.is_ascii_digit()).unwrap_or(pre.len());
        let (name, number) = pre.split_at(digits);
        if !name.bytes().all(|b| b.is_ascii_lowercase()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid Go toolchain pre-release go{tag}"));
        }
        semver.push('-');
        semver.push_str(name);
        if !number.is_empty() {
            semver.push('.');
            semver.push_str(number);
        }
    }
    SemverVersion::parse(&semver)
}

#[cfg(test)]
mod tests {
    use super::super::Scheme::Go;
    use super::super::test_support::*;

    #[test]
    fn module_versions_with_and_without_v() {
        assert_equal(Go, "v0.3.7", "0.3.7");
        assert_equal(Go, "v1", "v1.0.0");
        assert_equal(Go, "v1.2", "v1.2.0");
        assert_ascending(
            Go,
            &["v0.3.6", "v0.3.7", "0.3.8", "v0.14.0", "v1.0.0-rc.1", "v1.0.0"],
        );
    }

    #[test]
    fn pseudo_versions() {
        assert_ascending(
            Go,
            &[
                "v0.0.0-20191109021931-daa7c04131f5",
                "v0.0.0-20200101000000-aaaaaaaaaaaa",
                "v0.1.0",
                // A pseudo-version after v1.2.2 and before v1.2.3.
                "v1.2.2",
                "v1.2.3-0.20191109021931-daa7c04131f5",
                // A pseudo-version derived from the pre-release v1.2.4-pre.
                "v1.2.4-pre",
                "v1.2.4-pre.0.20191109021931-daa7c04131f5",
                "v1.2.4",
            ],
        );
    }

    #[test]
    fn incompatible_is_build_metadata() {
        assert_equal(Go, "v2.0.0+incompatible", "v2.0.0");
        assert_ascending(
            Go,
            &[
                "v1.9.9",
                "v2.0.0+incompatible",
                "v2.0.1+incompatible",
                "v3.0.0+incompatible",
            ],
        );
        assert_ascending(
            Go,
            &[
                "v2.0.0-20180101000000-abcdefabcdef+incompatible",
                "v2.0.0+incompatible",
            ],
        );
    }

    #[test]
    fn toolchain_tags() {
        assert_equal(Go, "go1.21", "1.21.0");
        assert_equal(Go, "go1.21rc2", "1.21.0-rc.2");
        assert_ascending(
            Go,
            &[
                "go1.9beta1",
                "go1.9",
                "go1.20.14",
                "go1.21rc1",
                "go1.21rc2",
                "go1.21.0",
                "go1.21.13",
                "go1.22.0",
            ],
        );
        // OSV's stdlib ranges use the semver spelling.
        assert_ascending(Go, &["1.17.12", "go1.17.13", "1.18.0-0", "go1.18"]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "v",
            "vx",
            "v1.2.3.4",
            "v01.2.3",
            "go",
            "go1.x",
            "go1.21RC1",
            "go1.2.3.4",
            "v1.2.3-",
            "latest",
        ] {
            assert_invalid(Go, bad);
        }
    }
}
