//! CVSS v3.0/v3.1 base scores computed from the vector, with the specification's formulas and
//! its `Roundup` (the v3.1 integer form, which v3.0's definition means but states less exactly).

use crate::{Result, VulnDbError};
use palisade_core::Severity;

/// The base metrics of a CVSS v3 vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CvssV3 {
    pub minor_version: u8,
    attack_vector: f64,
    attack_complexity: f64,
    privileges: char,
    user_interaction: f64,
    scope_changed: bool,
    confidentiality: f64,
    integrity: f64,
    availability: f64,
}

const BASE: [&str; 8] = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
const OTHER: [&str; 14] = [
    "E", "RL", "RC", "CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA",
];

impl CvssV3 {
    pub fn parse(vector: &str) -> Result<CvssV3> {
        let err = |reason: String| VulnDbError::InvalidCvss {
            vector: vector.chars().take(200).collect(),
            reason,
        };
        let mut parts = vector.trim().split('/');
        let minor_version = match parts.next() {
            Some("CVSS:3.0") => 0,
            Some("CVSS:3.1") => 1,
            other => {
                return Err(err(format!(
                    "expected prefix CVSS:3.0 or CVSS:3.1, found {other:?}"
                )));
            }
        };
        let mut base: [Option<char>; 8] = [None; 8];
        let mut seen_other: Vec<&str> = Vec::new();
        for part in parts {
            let (metric, value) = part
                .split_once(':')
                .ok_or_else(|| err(format!("malformed metric {part:?}")))?;
            let mut chars = value.chars();
            let (Some(v), None) = (chars.next(), chars.next()) else {
                return Err(err(format!("malformed value for {metric}")));
            };
            if let Some(i) = BASE.iter().position(|m| *m == metric) {
                if base[i].replace(v).is_some() {
                    return Err(err(format!("{metric} appears twice")));
                }
            } else if OTHER.contains(&metric) {
                if seen_other.contains(&metric) {
                    return Err(err(format!("{metric} appears twice")));
                }
                seen_other.push(metric);
            } else {
                return Err(err(format!("unknown metric {metric}")));
            }
        }
        let get = |i: usize| base[i].ok_or_else(|| err(format!("missing base metric {}", BASE[i])));
        let bad = |i: usize, v: char| err(format!("invalid value {v} for {}", BASE[i]));
        let attack_vector = match get(0)? {
            'N' => 0.85,
            'A' => 0.62,
            'L' => 0.55,
            'P' => 0.2,
            v => return Err(bad(0, v)),
        };
        let attack_complexity = match get(1)? {
            'L' => 0.77,
            'H' => 0.44,
            v => return Err(bad(1, v)),
        };
        let privileges = match get(2)? {
            v @ ('N' | 'L' | 'H') => v,
            v => return Err(bad(2, v)),
        };
        let user_interaction = match get(3)? {
            'N' => 0.85,
            'R' => 0.62,
            v => return Err(bad(3, v)),
        };
        let scope_changed = match get(4)? {
            'U' => false,
            'C' => true,
            v => return Err(bad(4, v)),
        };
        let cia = |i: usize| -> Result<f64> {
            match get(i)? {
                'H' => Ok(0.56),
                'L' => Ok(0.22),
                'N' => Ok(0.0),
                v => Err(bad(i, v)),
            }
        };
        Ok(CvssV3 {
            minor_version,
            attack_vector,
            attack_complexity,
            privileges,
            user_interaction,
            scope_changed,
            confidentiality: cia(5)?,
            integrity: cia(6)?,
            availability: cia(7)?,
        })
    }

    pub fn base_score(&self) -> f64 {
        let privileges = match (self.privileges, self.scope_changed) {
            ('N', _) => 0.85,
            ('L', false) => 0.62,
            ('L', true) => 0.68,
            (_, false) => 0.27,
            (_, true) => 0.5,
        };
        let iss = 1.0 - (1.0 - self.confidentiality) * (1.0 - self.integrity) * (1.0 - self.availability);
        let impact = if self.scope_changed {
            7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
        } else {
            6.42 * iss
        };
        let exploitability =
            8.22 * self.attack_vector * self.attack_complexity * privileges * self.user_interaction;
        if impact <= 0.0 {
            return 0.0;
        }
        if self.scope_changed {
            roundup((1.08 * (impact + exploitability)).min(10.0))
        } else {
            roundup((impact + exploitability).min(10.0))
        }
    }
}

/// The smallest one-decimal number not below `x`, computed on integers to avoid float artefacts.
fn roundup(x: f64) -> f64 {
    let scaled = (x * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 {
        scaled as f64 / 100_000.0
    } else {
        ((scaled / 10_000) + 1) as f64 / 10.0
    }
}

/// The CVSS v3 qualitative rating: 0 none (reported as info), low, medium, high, critical.
pub fn severity_from_score(score: f64) -> Severity {
    match score {
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        s if s > 0.0 => Severity::Low,
        _ => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published NVD base scores for these vectors.
    #[test]
    fn scores_match_published_values() {
        for (vector, score) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0), // CVE-2021-44228 Log4Shell
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 6.2), // CVE-2020-26235 (time)
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:L/A:N", 4.3),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H", 5.5),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 6.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 9.6),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", 5.4),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L", 3.7),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            // Temporal and environmental metrics do not change the base score.
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:R/CR:H",
                9.8,
            ),
        ] {
            let cvss = CvssV3::parse(vector).unwrap();
            assert_eq!(cvss.base_score(), score, "{vector}");
        }
    }

    #[test]
    fn roundup_follows_the_spec() {
        assert_eq!(roundup(4.0), 4.0);
        assert_eq!(roundup(4.02), 4.1);
        assert_eq!(roundup(4.000_001), 4.0); // within the float error the spec's integer form absorbs
        assert_eq!(roundup(6.111), 6.2);
    }

    #[test]
    fn severity_buckets() {
        assert_eq!(severity_from_score(0.0), Severity::Info);
        assert_eq!(severity_from_score(0.1), Severity::Low);
        assert_eq!(severity_from_score(3.9), Severity::Low);
        assert_eq!(severity_from_score(4.0), Severity::Medium);
        assert_eq!(severity_from_score(6.9), Severity::Medium);
        assert_eq!(severity_from_score(7.0), Severity::High);
        assert_eq!(severity_from_score(8.9), Severity::High);
        assert_eq!(severity_from_score(9.0), Severity::Critical);
        assert_eq!(severity_from_score(10.0), Severity::Critical);
    }

    #[test]
    fn rejects_malformed_vectors() {
        for bad in [
            "",
            "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",
            "CVSS:3.1/AV:NN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",
        ] {
            assert!(CvssV3::parse(bad).is_err(), "{bad:?}");
        }
    }
}
