//! SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/): the document DESCRIBES the image (or the
//! scanned directory), which CONTAINS the OS and every package. Licences are not read by the
//! catalogers, so they are NOASSERTION rather than a guess.

use super::{SbomOptions, Subject, document_uuid};
use crate::catalog::Package;
use crate::scan::ImageReport;
use serde_json::{Map, Value, json};

const SUBJECT_ID: &str = "SPDXRef-Subject";
const OS_ID: &str = "SPDXRef-OperatingSystem";

/// SPDX ids allow letters, digits, `.` and `-` only; anything else becomes `-`.
fn id_fragment(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// The SPDX 2.3 document.
pub fn spdx(report: &ImageReport, options: &SbomOptions) -> Value {
    let subject = Subject::of(report);
    let uuid = document_uuid(report, options, "spdx");
    let mut packages = vec![subject_package(report, &subject)];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": SUBJECT_ID,
    })];
    let contains = |id: &str| {
        json!({
            "spdxElementId": SUBJECT_ID,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        })
    };
    if let Some(os) = &report.os {
        let mut p = json!({
            "name": os.id,
            "SPDXID": OS_ID,
            "versionInfo": os.version_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "sourceInfo": format!("read from {}", os.path),
        });
        if !os.pretty_name.is_empty() {
            p["description"] = json!(os.pretty_name);
        }
        packages.push(p);
        relationships.push(contains(OS_ID));
    }
    for (i, p) in report.packages.iter().enumerate() {
        // The index keeps ids unique however names collide after sanitising.
        let id = format!("SPDXRef-Package-{}-{}", i + 1, id_fragment(&p.name));
        packages.push(package(p, &id));
        relationships.push(contains(&id));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.name,
        "documentNamespace": format!(
            "https://github.com/palisade-sec/palisade/spdx/{}-{uuid}",
            id_fragment(&subject.name)
        ),
        "creationInfo": {
            "created": options.created,
            "creators": [format!("Tool: palisade-{}", options.tool_version)],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

fn subject_package(report: &ImageReport, subject: &Subject) -> Value {
    let mut p = Map::new();
    p.insert("name".into(), json!(subject.name));
    p.insert("SPDXID".into(), json!(SUBJECT_ID));
    if let Some(v) = &subject.version {
        p.insert("versionInfo".into(), json!(v));
    }
    p.insert("downloadLocation".into(), json!("NOASSERTION"));
    p.insert("filesAnalyzed".into(), json!(false));
    if let Some(hex) = &subject.sha256 {
        p.insert(
            "checksums".into(),
            json!([{"algorithm": "SHA256", "checksumValue": hex}]),
        );
    }
    p.insert("licenseConcluded".into(), json!("NOASSERTION"));
    p.insert("licenseDeclared".into(), json!("NOASSERTION"));
    p.insert("copyrightText".into(), json!("NOASSERTION"));
    p.insert(
        "primaryPackagePurpose".into(),
        json!(if subject.is_image { "CONTAINER" } else { "SOURCE" }),
    );
    if let Some(purl) = &subject.purl {
        p.insert("externalRefs".into(), json!([purl_ref(purl)]));
    }
    let mut comment = format!("scanned from {}", report.target);
    if let Some(d) = &report.config_digest {
        comment.push_str(&format!("; config {d}"));
    }
    p.insert("comment".into(), json!(comment));
    Value::Object(p)
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

fn package(p: &Package, id: &str) -> Value {
    let mut out = Map::new();
    let name = match &p.namespace {
        Some(ns) => format!("{ns}:{}", p.name),
        None => p.name.clone(),
    };
    out.insert("name".into(), json!(name));
    out.insert("SPDXID".into(), json!(id));
    if !p.version.is_empty() {
        out.insert("versionInfo".into(), json!(p.version));
    }
    out.insert("downloadLocation".into(), json!("NOASSERTION"));
    out.insert("filesAnalyzed".into(), json!(false));
    out.insert("licenseConcluded".into(), json!("NOASSERTION"));
    out.insert("licenseDeclared".into(), json!("NOASSERTION"));
    out.insert("copyrightText".into(), json!("NOASSERTION"));
    out.insert("primaryPackagePurpose".into(), json!("LIBRARY"));
    if !p.purl.is_empty() {
        out.insert("externalRefs".into(), json!([purl_ref(&p.purl)]));
    }
    // Where palisade found it: SPDX 2.3 has no field for layers, so they go in sourceInfo.
    let mut source = format!("{} package declared in {}", p.ecosystem, p.path);
    if let Some(l) = p.layer {
        source.push_str(&format!("; layer {l}"));
    }
    if let Some(d) = &p.layer_digest {
        source.push_str(&format!(" ({d})"));
    }
    if let Some(cmd) = &p.layer_created_by {
        source.push_str(&format!(" created by: {cmd}"));
    }
    out.insert("sourceInfo".into(), json!(source));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::testdata;
    use std::collections::HashSet;

    fn options() -> SbomOptions {
        SbomOptions {
            tool_version: "0.1.0".into(),
            created: "2026-11-30T02:00:00Z".into(),
        }
    }

    #[test]
    fn golden() {
        let doc = spdx(&testdata::report(), &options());
        testdata::golden("spdx.json", &(serde_json::to_string_pretty(&doc).unwrap() + "\n"));
    }

    #[test]
    fn ids_are_valid_and_unique() {
        let doc = spdx(&testdata::report(), &options());
        let ids: Vec<&str> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 6, "subject, OS, 4 packages");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        for id in &ids {
            let rest = id.strip_prefix("SPDXRef-").unwrap();
            assert!(
                rest.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "{id}"
            );
        }
        assert_eq!(id_fragment("@scope/name+x"), "-scope-name-x");
        let rels = doc["relationships"].as_array().unwrap();
        assert_eq!(rels[0]["relationshipType"], "DESCRIBES");
        assert_eq!(rels.len(), 1 + 5);
        assert_eq!(doc["creationInfo"]["creators"][0], "Tool: palisade-0.1.0");
    }
}
