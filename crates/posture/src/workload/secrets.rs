//! Credentials where they do not belong: literal values in env, args and ConfigMaps, plaintext
//! `stringData` in Secret manifests, and Secrets handed to processes as environment variables.
//! Findings about a credential carry a redacted evidence value, never the credential.

use super::credentials::{is_literal_secret_value, is_secret_name, known_credential};
use super::{GOOD_DEPLOYMENT, Pod, array, attack, cis, describe, nist, nsa, redact};
use crate::object::{Container, Object, escape_token};
use palisade_core::{Category, Finding, Fixtures, RuleMeta, Severity};
use serde_json::Value;

pub(crate) fn check(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    for c in &pod.containers {
        env(pod, c, out);
        args(pod, c, out);
    }
}

fn env(pod: &Pod<'_, '_>, c: &Container<'_>, out: &mut Vec<Finding>) {
    let who = describe(c);
    for (i, var) in array(c.value.get("env")).iter().enumerate() {
        let name = var.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(value) = var.get("value").and_then(Value::as_str) {
            let ptr = c.field(&format!("env/{i}/value"));
            if let Some(format) = known_credential(value) {
                let msg = format!("{who} sets env {name} to a literal {format}");
                out.push(redact(pod.finding(&ENV_KNOWN_CREDENTIAL, c, msg, &ptr)));
            } else if is_secret_name(name) && is_literal_secret_value(value) {
                let msg = format!("{who} sets secret-looking env {name} to a literal value");
                out.push(redact(pod.finding(&ENV_LITERAL, c, msg, &ptr)));
            }
        }
        if let Some(secret) = var.pointer("/valueFrom/secretKeyRef").filter(|v| v.is_object()) {
            let secret_name = secret.get("name").and_then(Value::as_str).unwrap_or("?");
            let ptr = c.field(&format!("env/{i}/valueFrom/secretKeyRef"));
            let msg =
                format!("{who} receives Secret {secret_name} as env {name}; mount it as a file instead");
            out.push(pod.finding(&SECRET_AS_ENV, c, msg, &ptr));
        }
    }
    for (i, source) in array(c.value.get("envFrom")).iter().enumerate() {
        if let Some(secret) = source.get("secretRef").filter(|v| v.is_object()) {
            let secret_name = secret.get("name").and_then(Value::as_str).unwrap_or("?");
            let ptr = c.field(&format!("envFrom/{i}/secretRef"));
            let msg =
                format!("{who} imports every key of Secret {secret_name} as env; mount it as a file instead");
            out.push(pod.finding(&SECRET_AS_ENV, c, msg, &ptr));
        }
    }
}

fn args(pod: &Pod<'_, '_>, c: &Container<'_>, out: &mut Vec<Finding>) {
    let who = describe(c);
    for field in ["command", "args"] {
        let items = array(c.value.get(field));
        for (i, item) in items.iter().enumerate() {
            let Some(text) = item.as_str() else { continue };
            let reason = known_credential(text).map(str::to_string).or_else(|| {
                let flag = text.strip_prefix('-')?.trim_start_matches('-');
                match flag.split_once('=') {
                    Some((name, value)) if is_secret_name(name) && is_literal_secret_value(value) => {
                        Some(format!("literal value for --{name}"))
                    }
                    _ => None,
                }
            });
            if let Some(reason) = reason {
                let ptr = c.field(&format!("{field}/{i}"));
                let msg = format!("{who} passes a credential on its {field} line ({reason})");
                out.push(redact(pod.finding(&ARGS_CREDENTIAL, c, msg, &ptr)));
            }
        }
    }
}

pub(crate) fn check_object(obj: &Object<'_>, out: &mut Vec<Finding>) {
    match obj.kind() {
        "ConfigMap" => config_map(obj, out),
        "Secret" => {
            if let Some(data) = obj
                .value
                .get("stringData")
                .and_then(Value::as_object)
                .filter(|d| !d.is_empty())
            {
                let msg = format!(
                    "Secret {} carries {} plaintext value(s) in stringData in the manifest",
                    obj.name(),
                    data.len()
                );
                out.push(obj.finding(&SECRET_STRING_DATA, msg, "/stringData"));
            }
        }
        _ => {}
    }
}

fn config_map(obj: &Object<'_>, out: &mut Vec<Finding>) {
    let Some(data) = obj.value.get("data").and_then(Value::as_object) else {
        return;
    };
    for (key, value) in data {
        let Some(value) = value.as_str() else { continue };
        let reason = if let Some(format) = known_credential(value) {
            Some(format!("a {format}"))
        } else if is_secret_name(key) && is_literal_secret_value(value) {
            Some("a literal value under a secret-looking key".to_string())
        } else {
            embedded_setting(value).map(|setting| format!("a literal value for setting {setting}"))
        };
        if let Some(reason) = reason {
            let ptr = format!("/data/{}", escape_token(key));
            let msg = format!("ConfigMap {} key {key:?} holds {reason}", obj.name());
            out.push(redact(obj.finding(&CONFIGMAP_CREDENTIAL, msg, &ptr)));
        }
    }
}

/// A `name=value` or `name: value` line in an embedded config file whose name says secret.
fn embedded_setting(text: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim().trim_start_matches("export ");
        if line.starts_with('#') {
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            continue;
        };
        let (name, value) = (line[..split].trim(), line[split + 1..].trim());
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        if !name.is_empty() && !name.contains(' ') && is_secret_name(name) && is_literal_secret_value(value) {
            return Some(name.chars().take(64).collect());
        }
    }
    None
}

const CREDENTIAL_FRAMEWORKS: &[palisade_core::FrameworkRef] = &[
    nsa("Secrets"),
    nist("4.1.4"),
    cis("5.4.1"),
    attack("T1552.001"),
    attack("T1552.007"),
];

pub const ENV_LITERAL: RuleMeta = RuleMeta {
    id: "secret.env-literal",
    title: "Secret-looking env variable has a literal value",
    severity: Severity::High,
    category: Category::Secret,
    description: "An env variable whose name says it holds a secret (PASSWORD, TOKEN, SECRET, API_KEY, ...) is set \
                  with a literal `value` in the manifest.",
    rationale: "The value is stored in Git, in the API server (readable by anyone who can get the workload) and in \
                every copy of the manifest; it is never rotated or audited like a Secret.",
    remediation: "Move the value into a Secret (or an external secret store) and mount it as a file; rotate the \
                  exposed value.",
    frameworks: CREDENTIAL_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            pod_with!(
                "      image: registry.example.com/app:1\n      env:\n        - name: DB_PASSWORD_FILE\n          value: /run/secrets/db/password\n"
            ),
        ],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      env:\n        - name: DB_PASSWORD\n          value: hunter2-but-longer\n"
        )],
    },
};

pub const ENV_KNOWN_CREDENTIAL: RuleMeta = RuleMeta {
    id: "secret.env-known-credential",
    title: "Env variable holds a recognisable credential",
    severity: Severity::Critical,
    category: Category::Secret,
    description: "An env variable's literal value matches a known credential format: AWS access key id, GitHub, \
                  GitLab, Slack, Stripe, Google API or npm tokens, a PEM private key, a JWT or a URL with a password.",
    rationale: "A live credential in a manifest is exposed to everyone who can read the repository or the workload, \
                and it is the first thing an intruder harvests from the API server.",
    remediation: "Revoke and rotate the credential now, then deliver its replacement through a Secret mounted as a \
                  file or an external secret store.",
    frameworks: CREDENTIAL_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            pod_with!(
                "      image: registry.example.com/app:1\n      env:\n        - name: DATABASE_URL\n          value: postgres://app@db:5432/app\n"
            ),
        ],
        fail: &[
            pod_with!(
                "      image: registry.example.com/app:1\n      env:\n        - name: DATABASE_URL\n          value: postgres://app:s3cr3t-pw@db:5432/app\n"
            ),
            pod_with!(
                "      image: registry.example.com/app:1\n      env:\n        - name: AWS_ACCESS_KEY_ID\n          value: AKIAIOSFODNN7EXAMPLE\n"
            ),
        ],
    },
};

pub const ARGS_CREDENTIAL: RuleMeta = RuleMeta {
    id: "secret.args-credential",
    title: "Credential passed on the command line",
    severity: Severity::High,
    category: Category::Secret,
    description: "A container's `command` or `args` contains a recognisable credential or a literal value for a \
                  secret-looking flag (`--password=...`, `--token=...`).",
    rationale: "Command lines are visible in the manifest, in `ps` output on the node and in many monitoring tools.",
    remediation: "Read the credential from a mounted Secret file (most tools accept `--password-file`).",
    frameworks: CREDENTIAL_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            pod_with!(
                "      image: registry.example.com/app:1\n      args: [\"--token-file=/run/secrets/token\"]\n"
            ),
        ],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      args: [\"--db-password=hunter2hunter2\"]\n"
        )],
    },
};

pub const SECRET_AS_ENV: RuleMeta = RuleMeta {
    id: "workload.secret-as-env",
    title: "Secret passed as environment variables",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container receives a Secret through `env[].valueFrom.secretKeyRef` or `envFrom[].secretRef` \
                  instead of a mounted volume.",
    rationale: "Environment variables leak: into child processes, crash dumps, debug endpoints and logs, and they are \
                not updated when the Secret rotates. Files can be restricted by mode and refresh in place.",
    remediation: "Mount the Secret as a volume (read-only, defaultMode 0400) and read it from the file.",
    frameworks: &[cis("5.4.1"), nsa("Secrets"), nist("4.1.4"), attack("T1552.001")],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            pod_with!(
                "      image: registry.example.com/app:1\n      env:\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db\n              key: password\n"
            ),
            pod_with!(
                "      image: registry.example.com/app:1\n      envFrom:\n        - secretRef:\n            name: db\n"
            ),
        ],
    },
};

pub const CONFIGMAP_CREDENTIAL: RuleMeta = RuleMeta {
    id: "secret.configmap-credential",
    title: "ConfigMap holds a credential",
    severity: Severity::High,
    category: Category::Secret,
    description: "A ConfigMap value is a recognisable credential, a literal under a secret-looking key, or an \
                  embedded config file with a literal `password=`/`token:` setting.",
    rationale: "ConfigMaps are not treated as confidential: they are readable by broad roles, not encrypted at rest \
                and printed freely by tooling.",
    remediation: "Move the value into a Secret (or an external secret store) and rotate it.",
    frameworks: CREDENTIAL_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: shop\ndata:\n  LOG_LEVEL: info\n  application.properties: |\n    spring.datasource.password=${DB_PASSWORD}\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: shop\ndata:\n  application.properties: |\n    server.port=8080\n    spring.datasource.password=hunter2hunter2\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: shop\ndata:\n  API_TOKEN: c2VjcmV0LXZhbHVl\n",
        ],
    },
};

pub const SECRET_STRING_DATA: RuleMeta = RuleMeta {
    id: "secret.string-data",
    title: "Secret manifest carries plaintext stringData",
    severity: Severity::Medium,
    category: Category::Secret,
    description: "A Secret object in the scanned manifests sets `stringData`, so its values are written in plain text.",
    rationale: "Secret manifests with values end up in Git and CI logs. Secret values should come from a secret \
                manager or be encrypted in the repository (Sealed Secrets, SOPS).",
    remediation: "Generate the Secret from an external store (External Secrets Operator, CSI secrets store) or commit \
                  it encrypted; rotate values that were committed.",
    frameworks: &[nsa("Secrets"), nist("4.1.4"), cis("5.4.2"), attack("T1552.001")],
    fixtures: Fixtures {
        pass: &["apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\ntype: Opaque\n"],
        fail: &[
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\ntype: Opaque\nstringData:\n  password: hunter2hunter2\n",
        ],
    },
};

#[cfg(test)]
mod tests {
    use super::super::REDACTED;
    use super::super::testutil::*;
    use serde_json::{Value, json};

    #[test]
    fn env_literals_are_redacted() {
        let gh = format!("{}{}", "ghp_", "Ab1".repeat(12));
        let f = scan(&pod(json!({"containers": [{"name": "api", "env": [
            {"name": "GITHUB_TOKEN", "value": gh},
            {"name": "DB_PASSWORD", "value": "correct-horse"},
            {"name": "DB_PASSWORD_FILE", "value": "/run/secrets/pw"},
            {"name": "API_KEY", "value": "$(FROM_ELSEWHERE)"},
            {"name": 7, "value": ["x"]},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
        ], "envFrom": [{"secretRef": {"name": "all"}}, {"configMapRef": {"name": "c"}}]}]})));
        let known = with_rule(&f, "secret.env-known-credential");
        assert_eq!(known.len(), 1);
        assert!(known[0].message.contains("GITHUB_TOKEN") && known[0].message.contains("container \"api\""));
        assert_eq!(with_rule(&f, "secret.env-literal").len(), 1);
        assert_eq!(with_rule(&f, "workload.secret-as-env").len(), 2);
        for finding in f.iter().filter(|f| f.rule_id.starts_with("secret.")) {
            let ev = finding.evidence.as_ref().unwrap();
            assert_eq!(ev.value, Some(Value::String(REDACTED.into())));
            assert!(!finding.message.contains("correct-horse") && !finding.message.contains(&gh));
        }
        let text = serde_json::to_string(&f).unwrap();
        assert!(!text.contains("correct-horse") && !text.contains(&gh));
    }

    #[test]
    fn args_and_config_maps() {
        let f = scan(&pod(
            json!({"containers": [{"name": "a", "command": ["app", "--password=pw12345", "--password-file=/x"],
            "args": ["-----BEGIN OPENSSH PRIVATE KEY-----", 3]}]}),
        ));
        let hits = with_rule(&f, "secret.args-credential");
        assert_eq!(hits.len(), 2);
        assert_eq!(
            hits[0].evidence.as_ref().unwrap().pointer,
            "/spec/containers/0/command/1"
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {
            "a/b": "password: \"s3cret\"", "ok.yaml": "secretName: tls\ntoken_ttl: 30", "n": 5}});
        let f = scan(&cm);
        let hits = with_rule(&f, "secret.configmap-credential");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].evidence.as_ref().unwrap().pointer, "/data/a~1b");
        assert!(!serde_json::to_string(&f).unwrap().contains("s3cret"));
        let secret = json!({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}});
        assert!(has(&scan(&secret), "secret.string-data"));
        assert!(!has(
            &scan(&json!({"kind": "Secret", "stringData": "v"})),
            "secret.string-data"
        ));
    }
}
