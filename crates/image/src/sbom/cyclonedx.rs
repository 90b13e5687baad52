//! CycloneDX 1.6 JSON (https://cyclonedx.org/docs/1.6/json/): the image as the metadata component,
//! one component per package with palisade's layer attribution as `palisade:` properties, the OS as
//! an `operating-system` component, and, when vulnerabilities were matched, a `vulnerabilities`
//! section with one entry per advisory pointing at the affected components by bom-ref.

use super::{SbomOptions, Subject, document_uuid, package_refs};
use crate::catalog::{OsInfo, Package};
use crate::scan::ImageReport;
use crate::vulns::{Vulnerabilities, VulnerabilityRow};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

const IMAGE_REF: &str = "palisade:subject";
const OS_REF: &str = "palisade:os";

/// The CycloneDX 1.6 document. `vulns` is `None` for an inventory-only SBOM (`--sbom-only`).
pub fn cyclonedx(report: &ImageReport, vulns: Option<&Vulnerabilities>, options: &SbomOptions) -> Value {
    let subject = Subject::of(report);
    let refs = package_refs(&report.packages);
    let mut components: Vec<Value> = Vec::new();
    if let Some(os) = &report.os {
        components.push(os_component(os));
    }
    for (p, r) in report.packages.iter().zip(&refs) {
        components.push(package_component(p, r));
    }
    let mut depends_on: Vec<Value> = Vec::new();
    if report.os.is_some() {
        depends_on.push(json!(OS_REF));
    }
    depends_on.extend(refs.iter().map(|r| json!(r)));

    let mut doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", document_uuid(report, options, "cyclonedx")),
        "version": 1,
        "metadata": {
            "timestamp": options.created,
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "palisade",
                    "version": options.tool_version,
                    "externalReferences": [{"type": "vcs", "url": "https://github.com/palisade-sec/palisade"}],
                }]
            },
            "component": subject_component(report, &subject),
        },
        "components": components,
        "dependencies": [{"ref": IMAGE_REF, "dependsOn": depends_on}],
    });
    // A missing database must not read as "no vulnerabilities": the status says what was done.
    if let Some(v) = vulns {
        doc["metadata"]["properties"] = json!([property("palisade:vulnerabilities:status", &v.status)]);
    }
    if let Some(v) = vulns.filter(|v| v.status == "evaluated") {
        let by_key: HashMap<(&str, &str), &str> = report
            .packages
            .iter()
            .zip(&refs)
            .map(|(p, r)| ((p.purl.as_str(), p.path.as_str()), r.as_str()))
            .collect();
        doc["vulnerabilities"] = Value::Array(vulnerabilities(&v.matches, &by_key));
    }
    doc
}

fn property(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn subject_component(report: &ImageReport, subject: &Subject) -> Value {
    let mut c = Map::new();
    c.insert(
        "type".into(),
        json!(if subject.is_image {
            "container"
        } else {
            "application"
        }),
    );
    c.insert("bom-ref".into(), json!(IMAGE_REF));
    c.insert("name".into(), json!(subject.name));
    if let Some(v) = &subject.version {
        c.insert("version".into(), json!(v));
    }
    if let Some(hex) = &subject.sha256 {
        c.insert("hashes".into(), json!([{"alg": "SHA-256", "content": hex}]));
    }
    if let Some(purl) = &subject.purl {
        c.insert("purl".into(), json!(purl));
    }
    let mut props = Vec::new();
    if let Some(d) = &report.manifest_digest {
        props.push(property("palisade:image:manifest_digest", d));
    }
    if let Some(d) = &report.config_digest {
        props.push(property("palisade:image:config_digest", d));
    }
    for t in &report.repo_tags {
        props.push(property("palisade:image:tag", t));
    }
    if let Some(c) = &report.config
        && !c.os.is_empty()
    {
        props.push(property(
            "palisade:image:platform",
            format!("{}/{}", c.os, c.architecture),
        ));
    }
    props.push(property("palisade:target", &report.target));
    c.insert("properties".into(), Value::Array(props));
    Value::Object(c)
}

fn os_component(os: &OsInfo) -> Value {
    let mut c = json!({
        "type": "operating-system",
        "bom-ref": OS_REF,
        "name": os.id,
        "version": os.version_id,
    });
    if !os.pretty_name.is_empty() {
        c["description"] = json!(os.pretty_name);
    }
    let mut props = vec![property("palisade:path", &os.path)];
    if !os.version_codename.is_empty() {
        props.push(property("palisade:os:codename", &os.version_codename));
    }
    if let Some(l) = os.layer {
        props.push(property("palisade:layer:index", l.to_string()));
    }
    c["properties"] = Value::Array(props);
    c
}

fn package_component(p: &Package, bom_ref: &str) -> Value {
    let mut c = Map::new();
    c.insert("type".into(), json!("library"));
    c.insert("bom-ref".into(), json!(bom_ref));
    if let Some(ns) = &p.namespace {
        c.insert("group".into(), json!(ns));
    }
    c.insert("name".into(), json!(p.name));
    if !p.version.is_empty() {
        c.insert("version".into(), json!(p.version));
    }
    if !p.purl.is_empty() {
        c.insert("purl".into(), json!(p.purl));
    }
    let mut props = vec![
        property("palisade:package:ecosystem", p.ecosystem.as_str()),
        property("palisade:path", &p.path),
    ];
    if let Some(l) = p.layer {
        props.push(property("palisade:layer:index", l.to_string()));
    }
    if let Some(d) = &p.layer_digest {
        props.push(property("palisade:layer:digest", d));
    }
    if let Some(cmd) = &p.layer_created_by {
        props.push(property("palisade:layer:created_by", cmd));
    }
    if let Some(s) = &p.source_name {
        props.push(property("palisade:package:source_name", s));
    }
    if let Some(s) = &p.source_version {
        props.push(property("palisade:package:source_version", s));
    }
    c.insert("properties".into(), Value::Array(props));
    Value::Object(c)
}

/// CycloneDX rating severities are the lower-case names palisade uses.
fn rating(row: &VulnerabilityRow) -> Option<Value> {
    let a = &row.advisory;
    let mut r = Map::new();
    r.insert("source".into(), json!({"name": "OSV"}));
    match &a.cvss {
        Some(cvss) => {
            if let Some(score) = cvss.score {
                r.insert("score".into(), json!(score));
            }
            let method = if cvss.vector.starts_with("CVSS:3.1/") {
                "CVSSv31"
            } else if cvss.vector.starts_with("CVSS:3") {
                "CVSSv3"
            } else if cvss.vector.starts_with("CVSS:4") {
                "CVSSv4"
            } else {
                "other"
            };
            r.insert("method".into(), json!(method));
            r.insert("vector".into(), json!(cvss.vector));
        }
        None if a.severity.is_none() => return None,
        None => {}
    }
    r.insert(
        "severity".into(),
        json!(a.severity.map(|s| s.as_str()).unwrap_or("unknown")),
    );
    Some(Value::Object(r))
}

/// The OSV source of an id, by its prefix (the database that assigned it).
fn source_of(id: &str) -> Value {
    if id.starts_with("CVE-") {
        json!({"name": "NVD", "url": format!("https://nvd.nist.gov/vuln/detail/{id}")})
    } else if id.starts_with("GHSA-") {
        json!({"name": "GitHub", "url": format!("https://github.com/advisories/{id}")})
    } else {
        json!({"name": "OSV", "url": format!("https://osv.dev/vulnerability/{id}")})
    }
}

/// One entry per advisory (matches are per package), affects listing every matched component with
/// its affected version and the versions that fix it.
fn vulnerabilities(rows: &[VulnerabilityRow], refs: &HashMap<(&str, &str), &str>) -> Vec<Value> {
    let mut by_id: BTreeMap<&str, Vec<&VulnerabilityRow>> = BTreeMap::new();
    for row in rows {
        by_id.entry(row.advisory.id.as_str()).or_default().push(row);
    }
    by_id
        .into_iter()
        .map(|(id, rows)| {
            let a = &rows[0].advisory;
            let mut v = Map::new();
            v.insert("bom-ref".into(), json!(format!("vuln:{id}")));
            v.insert("id".into(), json!(id));
            // Matched from the OSV database, whatever the id's origin.
            v.insert(
                "source".into(),
                json!({"name": "OSV", "url": format!("https://osv.dev/vulnerability/{id}")}),
            );
            let references: Vec<Value> = a
                .aliases
                .iter()
                .filter(|alias| alias.as_str() != id)
                .map(|alias| json!({"id": alias, "source": source_of(alias)}))
                .collect();
            if !references.is_empty() {
                v.insert("references".into(), Value::Array(references));
            }
            if let Some(r) = rating(rows[0]) {
                v.insert("ratings".into(), json!([r]));
            }
            if let Some(s) = &a.summary {
                v.insert("description".into(), json!(s));
            }
            let fixes: Vec<String> = rows
                .iter()
                .filter(|r| !r.advisory.fixed_versions.is_empty())
                .map(|r| {
                    format!(
                        "{} {}: upgrade to {}",
                        r.package,
                        r.version,
                        r.advisory.fixed_versions.join(" or ")
                    )
                })
                .collect();
            if !fixes.is_empty() {
                v.insert("recommendation".into(), json!(fixes.join("; ")));
            }
            let advisories: Vec<Value> = a.references.iter().map(|u| json!({"url": u})).collect();
            if !advisories.is_empty() {
                v.insert("advisories".into(), Value::Array(advisories));
            }
            if let Some(p) = a.published.as_deref().and_then(date_time) {
                v.insert("published".into(), json!(p));
            }
            if let Some(m) = a.modified.as_deref().and_then(date_time) {
                v.insert("updated".into(), json!(m));
            }
            let affects: Vec<Value> = rows
                .iter()
                .filter_map(|r| {
                    let bom_ref = refs.get(&(r.purl.as_str(), r.path.as_str()))?;
                    let mut versions = vec![json!({"version": r.version, "status": "affected"})];
                    versions.extend(
                        r.advisory
                            .fixed_versions
                            .iter()
                            .map(|f| json!({"version": f, "status": "unaffected"})),
                    );
                    Some(json!({"ref": bom_ref, "versions": versions}))
                })
                .collect();
            v.insert("affects".into(), Value::Array(affects));
            Value::Object(v)
        })
        .collect()
}

/// An advisory timestamp as an RFC 3339 `date-time`, which the schema requires. OSV data carries
/// other spellings too (`2023-08-03 19:36:12+00:00`, bare dates); what cannot be read is left out.
fn date_time(text: &str) -> Option<String> {
    let text = text.trim();
    let date = text.get(..10)?;
    palisade_core::Date::parse(date).ok()?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let time = rest.strip_prefix(['T', 't', ' '])?;
    let hms = time.get(..8)?;
    let b = hms.as_bytes();
    let digits = |i: usize| b[i].is_ascii_digit() && b[i + 1].is_ascii_digit();
    if !(digits(0) && b[2] == b':' && digits(3) && b[5] == b':' && digits(6)) {
        return None;
    }
    let mut zone = &time[8..];
    let mut fraction = "";
    if let Some(f) = zone.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        fraction = &zone[..n + 1];
        zone = &f[n..];
    }
    let zone = match zone {
        "" | "Z" | "z" => "Z".to_string(),
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.as_bytes()[3] == b':'
            && z[1..3].bytes().chain(z[4..].bytes()).all(|c| c.is_ascii_digit()) =>
        {
            z.to_string()
        }
        _ => return None,
    };
    Some(format!("{date}T{hms}{fraction}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::testdata;

    fn options() -> SbomOptions {
        SbomOptions {
            tool_version: "0.1.0".into(),
            created: "2026-11-30T02:00:00Z".into(),
        }
    }

    #[test]
    fn golden_with_vulnerabilities() {
        let report = testdata::report();
        let vulns = testdata::vulnerabilities(&report);
        let doc = cyclonedx(&report, Some(&vulns), &options());
        testdata::golden(
            "cyclonedx.json",
            &(serde_json::to_string_pretty(&doc).unwrap() + "\n"),
        );
    }

    #[test]
    fn advisory_timestamps_become_rfc3339() {
        assert_eq!(date_time("2021-12-10T00:00:00Z").unwrap(), "2021-12-10T00:00:00Z");
        assert_eq!(
            date_time("2023-08-03 19:36:12+00:00").unwrap(),
            "2023-08-03T19:36:12+00:00"
        );
        assert_eq!(
            date_time("2024-03-15T11:22:33.123456Z").unwrap(),
            "2024-03-15T11:22:33.123456Z"
        );
        assert_eq!(date_time("2023-08-03").unwrap(), "2023-08-03T00:00:00Z");
        for bad in [
            "",
            "yesterday",
            "2023-13-01",
            "2023-08-03T1:2:3Z",
            "2023-08-03T19:36:12+0000",
            "2023-08-03T19:36:12.Z",
        ] {
            assert_eq!(date_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn shape() {
        let report = testdata::report();
        let vulns = testdata::vulnerabilities(&report);
        let doc = cyclonedx(&report, Some(&vulns), &options());
        assert_eq!(doc["specVersion"], "1.6");
        assert_eq!(doc["metadata"]["component"]["type"], "container");
        let components = doc["components"].as_array().unwrap();
        assert_eq!(components.len(), 5, "OS + 4 packages");
        assert_eq!(components[0]["type"], "operating-system");
        let v = &doc["vulnerabilities"][0];
        assert_eq!(v["id"], "GHSA-jfh8-c2jp-5v3q");
        assert_eq!(v["ratings"][0]["severity"], "critical");
        assert_eq!(v["ratings"][0]["method"], "CVSSv31");
        assert_eq!(v["affects"][0]["ref"], report.packages[1].purl.as_str());
        assert_eq!(v["references"][0]["id"], "CVE-2021-44228");
        // Same inputs, same document; another time, another serial number.
        assert_eq!(doc, cyclonedx(&report, Some(&vulns), &options()));
        let later = SbomOptions {
            created: "2026-11-30T03:00:00Z".into(),
            ..options()
        };
        assert_ne!(
            doc["serialNumber"],
            cyclonedx(&report, Some(&vulns), &later)["serialNumber"]
        );
        // Inventory only: no vulnerabilities section at all.
        assert!(
            cyclonedx(&report, None, &options())
                .get("vulnerabilities")
                .is_none()
        );
    }
}
