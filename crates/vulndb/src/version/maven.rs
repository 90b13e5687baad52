//! Maven versions ordered as Maven's `ComparableVersion`: items split at `.`, `-` and digit/letter
//! transitions (a `-` or transition opens a sub-list), null items (`0`, `""`, `ga`, `final`,
//! `release`) trimmed from the end of each list, and qualifiers ordered
//! `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp < others`
//! (others alphabetically); `a`, `b`, `m` abbreviate alpha, beta, milestone before a digit.

use super::{Number, order_by_cmp};
use std::cmp::Ordering;

#[derive(Debug, Clone)]
enum Item {
    Int(Number),
    Qualifier(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_RANK: usize = 5;

/// A qualifier's rank: known ones by position, unknown ones after all of them, alphabetically.
fn rank(q: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

fn qualifier(text: &str, followed_by_digit: bool) -> Item {
    let text = match text {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Qualifier(text.to_string())
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(n) => n.is_zero(),
            Item::Qualifier(q) => rank(q).0 == RELEASE_RANK,
            Item::List(items) => items.is_empty(),
        }
    }

    /// Compares with another item; `None` is the padding Maven compares missing items against.
    fn compare(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Item::Int(n), None) => {
                if n.is_zero() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (Item::Int(a), Some(Item::Int(b))) => a.cmp(b),
            (Item::Int(_), Some(_)) => Ordering::Greater,
            (Item::Qualifier(q), None) => rank(q).cmp(&(RELEASE_RANK, "")),
            (Item::Qualifier(a), Some(Item::Qualifier(b))) => rank(a).cmp(&rank(b)),
            (Item::Qualifier(_), Some(_)) => Ordering::Less,
            (Item::List(items), None) => items.first().map_or(Ordering::Equal, |first| first.compare(None)),
            (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
            (Item::List(_), Some(Item::Qualifier(_))) => Ordering::Greater,
            (Item::List(a), Some(Item::List(b))) => compare_lists(a, b),
        }
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let order = match (a.get(i), b.get(i)) {
            (Some(l), r) => l.compare(r),
            (None, Some(r)) => r.compare(None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// Removes trailing null items; a non-null list does not stop the trimming, a non-null scalar does.
fn normalize(items: &mut Vec<Item>) {
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        if items[i].is_null() {
            items.remove(i);
        } else if !matches!(items[i], Item::List(_)) {
            break;
        }
    }
}

/// Builds the nested lists. Each `-` or digit/letter transition opens a list nested in the
/// current one; lists are normalised innermost first, as Maven does when it unwinds its stack.
fn parse_list(s: &str) -> Vec<Item> {
    let bytes = s.as_bytes();
    // Every list on the path from the root to the current one; the last is where items go.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut start = 0;
    let mut digit = false;
    let item = |digit: bool, text: &str| {
        if digit {
            Item::Int(Number::new(text))
        } else {
            qualifier(text, false)
        }
    };
    let push = |stack: &mut Vec<Vec<Item>>, item: Item| {
        if let Some(top) = stack.last_mut() {
            top.push(item);
        }
    };
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'.' | b'-' => {
                let it = if i == start {
                    Item::Int(Number::default())
                } else {
                    item(digit, &s[start..i])
                };
                push(&mut stack, it);
                start = i + 1;
                if c == b'-' {
                    stack.push(Vec::new());
                }
            }
            b'0'..=b'9' => {
                if !digit && i > start {
                    push(&mut stack, qualifier(&s[start..i], true));
                    start = i;
                    stack.push(Vec::new());
                }
                digit = true;
            }
            _ => {
                if digit && i > start {
                    push(&mut stack, item(true, &s[start..i]));
                    start = i;
                    stack.push(Vec::new());
                }
                digit = false;
            }
        }
    }
    if s.len() > start {
        push(&mut stack, item(digit, &s[start..]));
    }
    // Unwind: normalise the innermost list and append it to its parent.
    while stack.len() > 1 {
        let mut inner = stack.pop().unwrap_or_default();
        normalize(&mut inner);
        push(&mut stack, Item::List(inner));
    }
    let mut root = stack.pop().unwrap_or_default();
    normalize(&mut root);
    root
}

#[derive(Debug, Clone)]
pub struct MavenVersion {
    items: Vec<Item>,
}

impl MavenVersion {
    pub(crate) fn parse(text: &str) -> Result<MavenVersion, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty version".into());
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("invalid character {c:?}"));
        }
        Ok(MavenVersion {
            items: parse_list(&text.to_lowercase()),
        })
    }
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_lists(&self.items, &other.items)
    }
}
order_by_cmp!(MavenVersion);

#[cfg(test)]
mod tests {
    use super::super::Scheme::Maven;
    use super::super::test_support::*;

    /// Maven's own ComparableVersionTest orderings (qualifiers and numbers).
    #[test]
    fn qualifier_order() {
        assert_ascending(
            Maven,
            &[
                "1-alpha2snapshot",
                "1-alpha2",
                "1-alpha-123",
                "1-beta-2",
                "1-beta123",
                "1-m2",
                "1-m11",
                "1-rc",
                "1-cr2",
                "1-rc123",
                "1-SNAPSHOT",
                "1",
                "1-sp",
                "1-sp2",
                "1-sp123",
                "1-abc",
                "1-def",
                "1-pom-1",
                "1-1-snapshot",
                "1-1",
                "1-2",
                "1-123",
            ],
        );
    }

    #[test]
    fn number_order() {
        assert_ascending(
            Maven,
            &[
                "2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c",
                "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11",
                "11", "11.a", "11b", "11c", "11m",
            ],
        );
    }

    #[test]
    fn equal_spellings() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1", "1-0"),
            ("1", "1.0-0"),
            ("1.0", "1.0-0"),
            ("1a", "1-a"),
            ("1a", "1.0-a"),
            ("1a", "1.0.0-a"),
            ("1.0a", "1-a"),
            ("1x", "1-x"),
            ("1x", "1.0-x"),
            ("1ga", "1"),
            ("1release", "1"),
            ("1final", "1"),
            ("1.0.0.RELEASE", "1"),
            ("1-GA", "1"),
            ("1cr", "1rc"),
            ("1a1", "1-alpha-1"),
            ("1b2", "1-beta-2"),
            ("1m3", "1-milestone-3"),
            ("1X", "1x"),
            ("1A", "1a"),
            ("1Ga", "1"),
            ("1Cr", "1Rc"),
            ("1.0.0-0.0.0", "1"),
            ("1.", "1"),
            ("1-", "1"),
        ] {
            assert_equal(Maven, a, b);
        }
    }

    #[test]
    fn real_maven_versions() {
        assert_ascending(
            Maven,
            &[
                "2.0-beta9",
                "2.0-rc1",
                "2.0",
                "2.3",
                "2.3.1",
                "2.12.1",
                "2.12.2",
                "2.13.0",
                "2.14.1",
                "2.15.0",
                "2.16.0",
                "2.17.1",
            ],
        );
        assert_ascending(
            Maven,
            &["5.3.0-SNAPSHOT", "5.3.0.M1", "5.3.0.RC1", "5.3.0", "5.3.0.SP1"],
        );
        assert_ascending(
            Maven,
            &[
                "1.0-alpha-1",
                "1.0-beta-1",
                "1.0-rc-1",
                "1.0-SNAPSHOT",
                "1.0",
                "1.0-sp-1",
                "1.0.1",
            ],
        );
        assert_ascending(Maven, &["99999999999999999999", "100000000000000000000"]);
    }

    #[test]
    fn rejects_only_empty_or_blank() {
        for bad in ["", "   ", "1 0", "1.0\t1"] {
            assert_invalid(Maven, bad);
        }
        assert!(Maven.parse("anything-goes_here!").is_ok());
    }
}
