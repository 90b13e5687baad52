//! `--format cyclonedx|spdx` for `scan image` and `scan fs`: the clock and the tool version are
//! read here, the documents are built by the image crate's pure writers.

use palisade_image::ImageReport;
use palisade_image::sbom::{SbomOptions, rfc3339_utc};
use palisade_image::vulns::Vulnerabilities;

/// The creation time: `SOURCE_DATE_EPOCH` when set (reproducible builds, golden tests), else now.
fn created() -> String {
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    let secs = from_env.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    rfc3339_utc(secs)
}

/// The SBOM in `format` (`cyclonedx` or `spdx`) as pretty JSON text.
pub fn render(report: &ImageReport, vulns: Option<&Vulnerabilities>, format: &str) -> anyhow::Result<String> {
    let options = SbomOptions {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created: created(),
    };
    let doc = if format == "spdx" {
        palisade_image::sbom::spdx::spdx(report, &options)
    } else {
        palisade_image::sbom::cyclonedx::cyclonedx(report, vulns, &options)
    };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}
