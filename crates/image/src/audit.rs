//! Configuration checks on an image: who it runs as, what its config and history give away, and
//! dangerous files in its final filesystem. Pure: the report in, findings out.

use crate::layers::{EntryKind, Filesystem};
use crate::scan::ImageReport;
use palisade_core::{
    Category, Evidence, Finding, Fixtures, Framework, FrameworkRef, ResourceRef, RuleMeta, Severity,
};
use serde_json::Value;

const NIST_IMAGE: FrameworkRef = FrameworkRef::new(Framework::Nist800190, "4.1.2");
const NIST_SECRETS: FrameworkRef = FrameworkRef::new(Framework::Nist800190, "4.1.4");
const NSA_IMAGES: FrameworkRef = FrameworkRef::new(Framework::NsaCisa, "Building secure container images");

pub static RUNS_AS_ROOT: RuleMeta = RuleMeta {
    id: "image.runs-as-root",
    title: "Image runs as root",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "The image config sets no USER, or sets root (0 / root), so its processes run as root unless the pod overrides it.",
    rationale: "Root in the container is one kernel bug or one mount away from root on the node; a non-root default makes every deployment of the image safer.",
    remediation: "Add a non-root user in the Dockerfile (`USER 10001`) and own only the files it must write.",
    frameworks: &[
        NIST_IMAGE,
        NSA_IMAGES,
        FrameworkRef::new(Framework::CisKubernetes, "5.2.7"),
    ],
    fixtures: Fixtures {
        pass: &[
            r#"{"os": "linux", "config": {"User": "10001"}}"#,
            r#"{"os": "linux", "config": {"User": "app:app"}}"#,
        ],
        fail: &[
            r#"{"os": "linux", "config": {}}"#,
            r#"{"os": "linux", "config": {"User": "0:0"}}"#,
            r#"{"os": "linux", "config": {"User": "root"}}"#,
        ],
    },
};

pub static SECRET_IN_ENV: RuleMeta = RuleMeta {
    id: "image.secret-in-env",
    title: "Secret-looking value in the image's environment",
    severity: Severity::High,
    category: Category::Secret,
    description: "An ENV variable of the image config has a secret-looking name (PASSWORD, TOKEN, SECRET, API_KEY, *_KEY, ...) and a literal, non-placeholder value, or a value one of the secret.* detectors recognises.",
    rationale: "Image config is readable by anyone who can pull the image, and ENV values end up in every container, log dump and `docker inspect`.",
    remediation: "Remove the value from the Dockerfile; inject it at run time from a secret store or a Kubernetes Secret volume.",
    frameworks: &[
        NIST_SECRETS,
        FrameworkRef::new(Framework::MitreAttack, "T1552.001"),
    ],
    // One ENV entry each (NAME=value).
    fixtures: Fixtures {
        pass: &[
            "PATH=/usr/local/bin:/usr/bin",
            "DB_PASSWORD_FILE=/run/secrets/db_password",
            "DB_PASSWORD=changeme",
            "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
        ],
        fail: &["DB_PASSWORD=Wq8-tP2vLx9rZ", "API_TOKEN=4f7Kp0zQw2Ls9Vn3"],
    },
};

pub static SSH_EXPOSED: RuleMeta = RuleMeta {
    id: "image.ssh-port-exposed",
    title: "Image exposes port 22",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "The image config exposes 22/tcp, the SSH port.",
    rationale: "Containers are replaced, not logged into; an SSH daemon in a container is an extra remote entry point with its own credentials to steal (ATT&CK T1133).",
    remediation: "Remove sshd and EXPOSE 22; use `kubectl exec` or debug containers for interactive access.",
    frameworks: &[NIST_IMAGE, FrameworkRef::new(Framework::MitreAttack, "T1133")],
    fixtures: Fixtures {
        pass: &[r#"{"os": "linux", "config": {"ExposedPorts": {"8080/tcp": {}}}}"#],
        fail: &[r#"{"os": "linux", "config": {"ExposedPorts": {"22/tcp": {}, "80/tcp": {}}}}"#],
    },
};

pub static NO_HEALTHCHECK: RuleMeta = RuleMeta {
    id: "image.no-healthcheck",
    title: "Image has no HEALTHCHECK",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "The image config defines no HEALTHCHECK.",
    rationale: "Outside Kubernetes (which uses probes), a health check is how the runtime notices a hung process.",
    remediation: "Add a HEALTHCHECK to the Dockerfile, or make sure every workload sets liveness and readiness probes.",
    frameworks: &[NSA_IMAGES],
    fixtures: Fixtures {
        pass: &[r#"{"os": "linux", "config": {"Healthcheck": {"Test": ["CMD", "/healthz"]}}}"#],
        fail: &[r#"{"os": "linux", "config": {}}"#],
    },
};

pub static PIPE_TO_SHELL: RuleMeta = RuleMeta {
    id: "image.curl-pipe-shell",
    title: "Build step pipes a download into a shell",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A history entry (Dockerfile RUN) downloads with curl or wget and pipes it straight into sh or bash.",
    rationale: "Whatever the server returns at build time runs with the build's privileges and is baked into the image, unverified and unreproducible.",
    remediation: "Download to a file, verify a pinned checksum or signature, then run it; or install from a package manager.",
    frameworks: &[NIST_IMAGE, FrameworkRef::new(Framework::MitreAttack, "T1195.002")],
    fixtures: Fixtures {
        pass: &[
            r#"{"os": "linux", "history": [{"created_by": "/bin/sh -c curl -fsSLo /tmp/i.sh https://get.example.com && sha256sum -c i.sum"}]}"#,
        ],
        fail: &[
            r#"{"os": "linux", "history": [{"created_by": "/bin/sh -c curl -fsSL https://get.example.com | sh"}]}"#,
            r#"{"os": "linux", "history": [{"created_by": "RUN wget -qO- https://x.example/install | bash -s"}]}"#,
        ],
    },
};

pub static REMOTE_ADD: RuleMeta = RuleMeta {
    id: "image.remote-add",
    title: "ADD from a remote URL",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A history entry is an `ADD http(s)://...`, fetching content at build time without verification.",
    rationale: "Remote ADD has no integrity check by default: the image contains whatever the URL served that day.",
    remediation: "Use `ADD --checksum=sha256:...` or download with a verified checksum in a RUN step.",
    frameworks: &[NIST_IMAGE],
    fixtures: Fixtures {
        pass: &[r#"{"os": "linux", "history": [{"created_by": "ADD file:0123abcd in /app"}]}"#],
        fail: &[
            r#"{"os": "linux", "history": [{"created_by": "ADD https://example.com/tool.tar.gz /opt/"}]}"#,
        ],
    },
};

pub static SETUID: RuleMeta = RuleMeta {
    id: "image.setuid-binary",
    title: "Setuid or setgid file in the image",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A regular file in the final filesystem has the setuid or setgid bit.",
    rationale: "Setuid binaries are the classic way from an unprivileged user to root; most containers need none (drop them, or run with allowPrivilegeEscalation: false).",
    remediation: "Remove the bit (`chmod u-s,g-s`) or the binary in the Dockerfile.",
    frameworks: &[NIST_IMAGE, FrameworkRef::new(Framework::MitreAttack, "T1548.001")],
    fixtures: Fixtures {
        pass: &["/usr/bin/tool 0755", "/usr/bin/tool 0644"],
        fail: &["/usr/bin/passwd 4755", "/usr/bin/wall 2755"],
    },
};

pub static WORLD_WRITABLE_PATH: RuleMeta = RuleMeta {
    id: "image.world-writable-path",
    title: "World-writable file or directory on the PATH",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A file or directory in a PATH directory (/usr/local/bin, /usr/bin, /bin, /usr/sbin, /sbin) is writable by everyone.",
    rationale: "Any process in the container can replace a command another (possibly more privileged) process will run.",
    remediation: "Fix the mode in the Dockerfile (`chmod o-w`).",
    frameworks: &[NIST_IMAGE],
    fixtures: Fixtures {
        pass: &[
            "/usr/local/bin/tool 0755",
            "/tmp/cache 0777",
            "/usr/local/bin/spool 1777",
        ],
        fail: &["/usr/local/bin/tool 0777", "/usr/bin/helper 0666"],
    },
};

pub static RULES: &[&RuleMeta] = &[
    &RUNS_AS_ROOT,
    &SECRET_IN_ENV,
    &SSH_EXPOSED,
    &NO_HEALTHCHECK,
    &PIPE_TO_SHELL,
    &REMOTE_ADD,
    &SETUID,
    &WORLD_WRITABLE_PATH,
];

const PATH_DIRS: &[&str] = &[
    "/usr/local/bin/",
    "/usr/local/sbin/",
    "/usr/bin/",
    "/usr/sbin/",
    "/bin/",
    "/sbin/",
];
const MAX_FILE_FINDINGS: usize = 200;

fn resource(report: &ImageReport) -> ResourceRef {
    report.resource(None)
}

fn finding(
    report: &ImageReport,
    rule: &RuleMeta,
    message: String,
    pointer: &str,
    value: Option<Value>,
) -> Finding {
    Finding::from_rule(
        rule,
        resource(report),
        message,
        Some(Evidence {
            pointer: pointer.to_string(),
            value,
            line: None,
            column: None,
        }),
    )
}

/// Whether a history command pipes a download into a shell.
fn pipes_to_shell(command: &str) -> bool {
    let c = command.to_ascii_lowercase();
    (c.contains("curl ") || c.contains("wget "))
        && c.split('|').skip(1).any(|after| {
            let first = after.split_whitespace().next().unwrap_or("");
            let first = first.rsplit('/').next().unwrap_or(first);
            matches!(first, "sh" | "bash" | "zsh" | "dash" | "ash" | "sudo")
        })
}

fn remote_add(command: &str) -> bool {
    let c = command.trim_start();
    let rest = c
        .strip_prefix("ADD ")
        .or_else(|| c.strip_prefix("/bin/sh -c #(nop) ADD "))
        .or_else(|| c.find("#(nop) ADD ").map(|i| &c[i + "#(nop) ADD ".len()..]));
    rest.is_some_and(|r| {
        r.split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .any(|w| w.starts_with("http://") || w.starts_with("https://"))
            && !r.contains("--checksum")
    })
}

/// Every configuration finding of the image.
pub fn audit(report: &ImageReport) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(config) = &report.config {
        let user = config.user.trim();
        let uid = user.split(':').next().unwrap_or("");
        if config.os != "windows" && (uid.is_empty() || uid == "0" || uid == "root") {
            out.push(finding(
                report,
                &RUNS_AS_ROOT,
                if uid.is_empty() {
                    "no USER is set: the image runs as root".into()
                } else {
                    format!("USER is {user:?}")
                },
                "/config/User",
                Some(Value::String(user.to_string())),
            ));
        }
        // The secrets engine decides (secret-like name with a literal value, or a value a
        // detector recognises), so this rule and the secret scan cannot disagree.
        if let Ok(scanner) = palisade_secrets::scanner() {
            for (i, entry) in config.env.iter().enumerate() {
                let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
                let Some(found) = scanner.assignment(name, value) else {
                    continue;
                };
                let how = match found.detector {
                    Some(rule) => format!(" ({})", rule.title),
                    None => String::new(),
                };
                out.push(finding(
                    report,
                    &SECRET_IN_ENV,
                    format!(
                        "ENV {name} holds a literal secret{how}: {} ({} characters)",
                        found.redacted,
                        value.chars().count()
                    ),
                    &format!("/config/Env/{i}"),
                    Some(Value::String(format!("{name}={}", found.redacted))),
                ));
            }
        }
        if config.exposed_ports.iter().any(|p| p == "22/tcp" || p == "22") {
            out.push(finding(
                report,
                &SSH_EXPOSED,
                "port 22/tcp is exposed".into(),
                "/config/ExposedPorts",
                None,
            ));
        }
        if config.healthcheck.is_none() {
            out.push(finding(
                report,
                &NO_HEALTHCHECK,
                "no HEALTHCHECK in the image config".into(),
                "/config",
                None,
            ));
        }
        for (i, h) in config.history.iter().enumerate() {
            let Some(command) = h.created_by.as_deref() else {
                continue;
            };
            // Build commands can carry credentials (`curl -u user:pass`); print them redacted.
            let redacted = match palisade_secrets::scanner() {
                Ok(s) => crate::secrets::redact_command(s, command),
                Err(_) => String::from("<command not shown>"),
            };
            let shown: String = redacted.chars().take(200).collect();
            if pipes_to_shell(command) {
                out.push(finding(
                    report,
                    &PIPE_TO_SHELL,
                    format!("build step pipes a download into a shell: {shown}"),
                    &format!("/history/{i}/created_by"),
                    None,
                ));
            }
            if remote_add(command) {
                out.push(finding(
                    report,
                    &REMOTE_ADD,
                    format!("build step adds a remote URL: {shown}"),
                    &format!("/history/{i}/created_by"),
                    None,
                ));
            }
        }
    }
    audit_files(report, &report.filesystem, &mut out);
    out
}

fn audit_files(report: &ImageReport, fs: &Filesystem, out: &mut Vec<Finding>) {
    let mut setuid = 0;
    let mut writable = 0;
    for (path, entry) in &fs.entries {
        let on_path = PATH_DIRS
            .iter()
            .any(|d| path.starts_with(d) || format!("{path}/") == *d);
        if entry.kind == EntryKind::File && entry.mode & 0o6000 != 0 && setuid < MAX_FILE_FINDINGS {
            setuid += 1;
            let bits = match (entry.mode & 0o4000 != 0, entry.mode & 0o2000 != 0) {
                (true, true) => "setuid and setgid",
                (true, false) => "setuid",
                _ => "setgid",
            };
            let mut f = finding(
                report,
                &SETUID,
                format!(
                    "{path} is {bits} (mode {:o}, layer {})",
                    entry.mode & 0o7777,
                    entry.layer
                ),
                "/filesystem",
                None,
            );
            f.resource.file = Some(path.clone());
            f.refresh_fingerprint();
            out.push(f);
        }
        if on_path
            && matches!(entry.kind, EntryKind::File | EntryKind::Dir)
            && entry.mode & 0o002 != 0
            && entry.mode & 0o1000 == 0
            && writable < MAX_FILE_FINDINGS
        {
            writable += 1;
            let mut f = finding(
                report,
                &WORLD_WRITABLE_PATH,
                format!(
                    "{path} is world-writable (mode {:o}, layer {})",
                    entry.mode & 0o7777,
                    entry.layer
                ),
                "/filesystem",
                None,
            );
            f.resource.file = Some(path.clone());
            f.refresh_fingerprint();
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_in_env_fixtures() {
        let scanner = palisade_secrets::scanner().unwrap();
        let judge = |entry: &str| {
            let (name, value) = entry.split_once('=').unwrap();
            scanner.assignment(name, value).is_some()
        };
        for entry in SECRET_IN_ENV.fixtures.fail {
            assert!(judge(entry), "{entry}");
        }
        for entry in SECRET_IN_ENV.fixtures.pass {
            assert!(!judge(entry), "{entry}");
        }
    }

    /// An image from a fixture: image config JSON (`{...}`), or `PATH MODE` for one regular file
    /// of the final filesystem with an octal mode.
    fn fixture_report(fixture: &str) -> ImageReport {
        let mut report = ImageReport {
            target: "fixture".into(),
            format: None,
            manifest_digest: None,
            config_digest: None,
            repo_tags: Vec::new(),
            os: None,
            config: None,
            layers: Vec::new(),
            packages: Vec::new(),
            warnings: Vec::new(),
            filesystem: Filesystem::default(),
        };
        if fixture.starts_with('{') {
            report.config = Some(crate::ImageConfig::parse(fixture.as_bytes(), "fixture").unwrap());
        } else {
            let (path, mode) = fixture.split_once(' ').unwrap();
            report.filesystem.entries.insert(
                path.to_string(),
                crate::FsEntry {
                    layer: 0,
                    kind: EntryKind::File,
                    mode: u32::from_str_radix(mode, 8).unwrap(),
                    size: 1,
                    link: None,
                    uid: 0,
                    gid: 0,
                },
            );
        }
        report
    }

    #[test]
    fn every_rule_fires_on_its_fail_fixtures_and_not_on_its_pass_fixtures() {
        for rule in RULES.iter().filter(|r| r.id != SECRET_IN_ENV.id) {
            assert!(!rule.fixtures.fail.is_empty(), "{} has no fail fixture", rule.id);
            assert!(!rule.fixtures.pass.is_empty(), "{} has no pass fixture", rule.id);
            for fixture in rule.fixtures.fail {
                let found = audit(&fixture_report(fixture));
                assert!(
                    found.iter().any(|f| f.rule_id == rule.id),
                    "{}: {fixture}",
                    rule.id
                );
            }
            for fixture in rule.fixtures.pass {
                let found = audit(&fixture_report(fixture));
                assert!(
                    !found.iter().any(|f| f.rule_id == rule.id),
                    "{} fired on {fixture}",
                    rule.id
                );
            }
        }
    }

    #[test]
    fn history_patterns() {
        assert!(pipes_to_shell(
            "/bin/sh -c curl -fsSL https://get.example.com | sh"
        ));
        assert!(pipes_to_shell(
            "RUN wget -qO- https://x/install.sh | /bin/bash -s --"
        ));
        assert!(!pipes_to_shell(
            "RUN curl -o /tmp/x https://x && sha256sum -c x.sha256 | tee log"
        ));
        assert!(!pipes_to_shell("RUN apt-get install -y curl | sh-completion"));
        assert!(remote_add("ADD https://example.com/app.tar.gz /opt/"));
        assert!(remote_add("/bin/sh -c #(nop) ADD https://example.com/a /a"));
        assert!(!remote_add("ADD --checksum=sha256:abc https://example.com/a /a"));
        assert!(!remote_add("ADD file:abc in /"));
    }
}
