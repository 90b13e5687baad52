//! The OSV schema (https://ossf.github.io/osv-schema/) as far as palisade reads it. Unknown fields
//! are ignored; the parts matching needs (ids, packages, ranges, events, versions) are typed and
//! a record without them is rejected with the reason. `details` is read but not stored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing)]
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub severity: Vec<SeverityEntry>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub affected: Vec<Affected>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub references: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub severity: Vec<SeverityEntry>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ranges: Vec<Range>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeType {
    Semver,
    Ecosystem,
    Git,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: RangeType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Advisory {
    /// Parses one OSV record. `source` names the file in error messages.
    pub fn from_json(bytes: &[u8], source: &str) -> crate::Result<Advisory> {
        let invalid = |reason: String| crate::VulnDbError::InvalidOsv {
            file: source.to_string(),
            reason,
        };
        let mut advisory: Advisory = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if advisory.id.trim().is_empty() {
            return Err(invalid("empty id".into()));
        }
        if advisory.summary.as_deref().is_none_or(|s| s.trim().is_empty()) {
            advisory.summary = advisory.details.as_deref().and_then(summary_from_details);
        }
        Ok(advisory)
    }

    /// The severity a database attached without a vector (GitHub's `LOW` … `CRITICAL`).
    pub fn database_severity(&self) -> Option<&str> {
        self.database_specific.as_ref()?.get("severity")?.as_str()
    }
}

/// The first line of `details`, shortened, for records without a summary (PyPA's often lack one).
fn summary_from_details(details: &str) -> Option<String> {
    let line = details.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut summary: String = line.chars().take(160).collect();
    if summary.len() < line.len() {
        summary.push('…');
    }
    Some(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minimal_record_and_fills_the_summary() {
        let json = br#"{"id":"PYSEC-1","details":"\n  First line.\nMore.","affected":[{"package":{"ecosystem":"PyPI","name":"x"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0"},{"last_affected":"0.5"},{"limit":"2"}]}],
            "versions":null}],"aliases":null}"#;
        let a = Advisory::from_json(json, "t.json").unwrap();
        assert_eq!(a.summary.as_deref(), Some("First line."));
        assert_eq!(a.affected[0].ranges[0].events.len(), 4);
        assert_eq!(
            a.affected[0].ranges[0].events[2],
            Event::LastAffected("0.5".into())
        );
        assert!(a.aliases.is_empty());
        // `details` is not part of the stored form.
        assert!(!serde_json::to_string(&a).unwrap().contains("More."));
    }

    #[test]
    fn rejects_records_matching_cannot_use() {
        for (json, needle) in [
            (&br#"{"affected":[]}"#[..], "missing field `id`"),
            (br#"{"id":" "}"#, "empty id"),
            (
                br#"{"id":"X","affected":[{"ranges":[{"type":"SEMVER","events":[{"bogus":"1"}]}]}]}"#,
                "unknown variant",
            ),
            (
                br#"{"id":"X","affected":[{"ranges":[{"type":"CALVER","events":[]}]}]}"#,
                "unknown variant",
            ),
            (b"{\"id\": \"X\"", "EOF"),
            (b"[1,2]", "expected"),
        ] {
            let err = Advisory::from_json(json, "bad.json").unwrap_err().to_string();
            assert!(err.starts_with("bad.json: not a valid OSV record: "), "{err}");
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut json = String::from(r#"{"id":"X","database_specific":"#);
        json.push_str(&"[".repeat(100_000));
        json.push_str(&"]".repeat(100_000));
        json.push('}');
        let err = Advisory::from_json(json.as_bytes(), "deep.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
