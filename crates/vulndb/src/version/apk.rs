//! Alpine package versions, `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`, ordered as
//! apk-tools does: token by token; pre-release suffixes (`_alpha`, `_beta`, `_pre`, `_rc`) sort
//! before the bare version and post-release ones (`_cvs`, `_svn`, `_git`, `_hg`, `_p`) after it; a
//! digit run with a leading zero compares as a string; when one version runs out first, the other
//! is newer unless its next token is a pre-release suffix.

use super::{Number, order_by_cmp};
use std::cmp::Ordering;

/// Token kinds in apk-tools' order; when one version has more tokens, the lower kind wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
}

/// Suffix ranks: below `NONE` are pre-releases, above are post-releases.
const SUFFIXES: [(&str, u8); 9] = [
    ("alpha", 1),
    ("beta", 2),
    ("pre", 3),
    ("rc", 4),
    ("cvs", 6),
    ("svn", 7),
    ("git", 8),
    ("hg", 9),
    ("p", 10),
];
const SUFFIX_NONE: u8 = 5;

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    number: Number,
    suffix: u8,
}

#[derive(Debug, Clone)]
pub struct ApkVersion {
    tokens: Vec<Token>,
}

impl ApkVersion {
    pub(crate) fn parse(text: &str) -> Result<ApkVersion, String> {
        let s = text.trim().as_bytes();
        if s.is_empty() {
            return Err("empty version".into());
        }
        let mut tokens = Vec::new();
        let mut pos = 0;
        let take_while = |pos: &mut usize, pred: fn(u8) -> bool| -> String {
            let start = *pos;
            while *pos < s.len() && pred(s[*pos]) {
                *pos += 1;
            }
            String::from_utf8_lossy(&s[start..*pos]).into_owned()
        };
        let digits = |pos: &mut usize| -> Result<(String, Number), String> {
            let d = take_while(pos, |c| c.is_ascii_digit());
            if d.is_empty() {
                return Err(format!("expected digits at byte {}", *pos));
            }
            let n = Number::new(&d);
            Ok((d, n))
        };
        let (t, n) = digits(&mut pos)?;
        tokens.push(Token {
            kind: Kind::InitialDigit,
            text: t,
            number: n,
            suffix: 0,
        });
        let mut last = Kind::InitialDigit;
        while pos < s.len() {
            let at = pos;
            let bad = |what: &str| format!("{what} not allowed at byte {at}");
            let c = s[pos];
            let token = match c {
                b'a'..=b'z' => {
                    if last > Kind::Digit {
                        return Err(bad("a letter"));
                    }
                    pos += 1;
                    Token {
                        kind: Kind::Letter,
                        text: (c as char).to_string(),
                        number: Number::default(),
                        suffix: 0,
                    }
                }
                b'.' | b'0'..=b'9' => {
                    if c == b'.' {
                        if last > Kind::Digit {
                            return Err(bad("'.'"));
                        }
                        pos += 1;
                    }
                    let kind = match last {
                        Kind::InitialDigit | Kind::Digit => Kind::Digit,
                        Kind::Suffix => Kind::SuffixNumber,
                        _ => return Err(bad("a number")),
                    };
                    let (t, n) = digits(&mut pos)?;
                    Token {
                        kind,
                        text: t,
                        number: n,
                        suffix: 0,
                    }
                }
                b'_' => {
                    if last > Kind::SuffixNumber {
                        return Err(bad("a suffix"));
                    }
                    pos += 1;
                    let name = take_while(&mut pos, |c| c.is_ascii_lowercase());
                    let Some(&(_, rank)) = SUFFIXES.iter().find(|(n, _)| *n == name) else {
                        return Err(format!("unknown suffix _{name}"));
                    };
                    Token {
                        kind: Kind::Suffix,
                        text: name,
                        number: Number::default(),
                        suffix: rank,
                    }
                }
                b'~' => {
                    if last >= Kind::CommitHash {
                        return Err(bad("a commit hash"));
                    }
                    pos += 1;
                    let hash = take_while(&mut pos, |c| c.is_ascii_hexdigit());
                    if hash.is_empty() {
                        return Err("empty commit hash after '~'".into());
                    }
                    Token {
                        kind: Kind::CommitHash,
                        text: hash,
                        number: Number::default(),
                        suffix: 0,
                    }
                }
                b'-' => {
                    if last >= Kind::Revision || s.get(pos + 1) != Some(&b'r') {
                        return Err(bad("'-' (only -rN)"));
                    }
                    pos += 2;
                    let (t, n) = digits(&mut pos)?;
                    Token {
                        kind: Kind::Revision,
                        text: t,
                        number: n,
                        suffix: 0,
                    }
                }
                _ => return Err(format!("invalid character {:?}", c as char)),
            };
            last = token.kind;
            tokens.push(token);
        }
        Ok(ApkVersion { tokens })
    }
}

fn token_cmp(a: &Token, b: &Token) -> Ordering {
    match a.kind {
        Kind::Digit if a.text.starts_with('0') || b.text.starts_with('0') => a.text.cmp(&b.text),
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNumber | Kind::Revision => a.number.cmp(&b.number),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        Kind::Letter | Kind::CommitHash | Kind::End => a.text.cmp(&b.text),
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let end = Token {
            kind: Kind::End,
            text: String::new(),
            number: Number::default(),
            suffix: 0,
        };
        let mut i = 0;
        loop {
            let a = self.tokens.get(i).unwrap_or(&end);
            let b = other.tokens.get(i).unwrap_or(&end);
            if a.kind != b.kind {
                if a.kind == Kind::Suffix && a.suffix < SUFFIX_NONE {
                    return Ordering::Less;
                }
                if b.kind == Kind::Suffix && b.suffix < SUFFIX_NONE {
                    return Ordering::Greater;
                }
                // The version whose next token is of a lower kind is the newer one.
                return b.kind.cmp(&a.kind);
            }
            if a.kind == Kind::End {
                return Ordering::Equal;
            }
            let order = token_cmp(a, b);
            if order != Ordering::Equal {
                return order;
            }
            i += 1;
        }
    }
}
order_by_cmp!(ApkVersion);

#[cfg(test)]
mod tests {
    use super::super::Scheme::Apk;
    use super::super::test_support::*;

    #[test]
    fn numeric_components() {
        assert_ascending(Apk, &["1", "1.0", "1.0.1", "1.1", "1.2", "1.10", "2.0", "10"]);
        assert_equal(Apk, "1.2.3", "1.2.3");
    }

    #[test]
    fn letters_after_digits() {
        assert_ascending(Apk, &["1.0", "1.0a", "1.0b", "1.0z", "1.0.1"]);
        assert_ascending(Apk, &["1.1.1t", "1.1.1u", "1.1.1w"]);
    }

    #[test]
    fn pre_and_post_release_suffixes() {
        assert_ascending(
            Apk,
            &[
                "1.0_alpha",
                "1.0_alpha1",
                "1.0_alpha2",
                "1.0_beta",
                "1.0_pre1",
                "1.0_rc1",
                "1.0_rc2",
                "1.0",
            ],
        );
        assert_ascending(
            Apk,
            &[
                "1.0",
                "1.0_cvs",
                "1.0_svn",
                "1.0_git20240101",
                "1.0_hg",
                "1.0_p1",
                "1.0_p2",
                "1.0.1",
            ],
        );
        assert_ascending(Apk, &["1.0_rc1", "1.0_rc1_p1", "1.0_rc2"]);
        assert_ascending(Apk, &["1.0_alpha_beta", "1.0_alpha"]);
    }

    #[test]
    fn revisions() {
        assert_ascending(Apk, &["1.0", "1.0-r0", "1.0-r1", "1.0-r2", "1.0-r10", "1.0.1-r0"]);
        assert_ascending(Apk, &["3.3.2-r0", "3.3.2-r1", "3.3.3-r0"]);
        assert_ascending(
            Apk,
            &["1.2.4_git20230717-r0", "1.2.4_git20230717-r1", "1.2.4_p1-r0"],
        );
    }

    #[test]
    fn leading_zero_compares_as_string() {
        // apk-tools (like Gentoo) compares a digit run with a leading zero as a string.
        assert_ascending(Apk, &["1.01", "1.1"]);
        assert_ascending(Apk, &["1.001", "1.01", "1.1"]);
        assert_ascending(Apk, &["2024.01", "2024.1", "2024.2"]);
    }

    #[test]
    fn commit_hash() {
        // A hash is a later token than a suffix, so the version with the suffix is newer.
        assert_ascending(Apk, &["1.0", "1.0~abc", "1.0~abd", "1.0_p1"]);
        assert_ascending(Apk, &["1.0~abc-r0", "1.0~abc-r1"]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "a1",
            "1.0-1",
            "1.0_foo",
            "1.0A",
            "1.0-r",
            "1..0",
            "1.0_",
            "1.0~",
            "1.0-r1-r2",
            "1.0 1",
        ] {
            assert_invalid(Apk, bad);
        }
        // The suffix is mandatory after '_', but an empty name is simply unknown.
        assert_invalid(Apk, "1.0_1");
    }
}
