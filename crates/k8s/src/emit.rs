//! Writes JSON values as block-style YAML that the Kubernetes reader reads back to the same value:
//! strings that would resolve to something else (`yes`, `0644`, `~`) or hold special characters are
//! double-quoted.

use serde_json::Value;
use std::fmt::Write;

/// One YAML document for `value`, without the leading `---`.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (key, value) in map {
        let _ = write!(out, "{:indent$}{}:", "", string_text(key));
        write_value(out, value, indent);
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        let _ = write!(out, "{:indent$}-", "");
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key goes on the dash's line; the rest align with it.
                let mut first = true;
                for (key, value) in map {
                    if first {
                        let _ = write!(out, " {}:", string_text(key));
                        first = false;
                    } else {
                        let _ = write!(out, "{:width$}{}:", "", string_text(key), width = indent + 2);
                    }
                    write_value(out, value, indent + 2);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            scalar => {
                let _ = writeln!(out, " {}", scalar_text(scalar));
            }
        }
    }
}

/// Writes what follows `key:` for a value at mapping indentation `indent`.
fn write_value(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        scalar => {
            let _ = writeln!(out, " {}", scalar_text(scalar));
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string_text(s: &str) -> String {
    let plain_safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ' ' | ':' | '@' | '+' | '=')
        })
        && !s.starts_with([' ', '-', ':', '@'])
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !resolves_to_non_string(s);
    if plain_safe {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

/// Whether the Kubernetes reader would read `s`, written plain, as something other than this string.
fn resolves_to_non_string(s: &str) -> bool {
    let chunk = crate::yaml::Chunk {
        text: s,
        first_line: 1,
    };
    !matches!(crate::yaml::parse_chunk(&chunk), Ok(Some(doc)) if doc.value == Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_the_loader() {
        let value = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-web", "namespace": "shop", "labels": {"on": "yes", "n": "0644", "e": ""}},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}, {"port": "http"}], "from": []}],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]}],
                "weird": ["- x", "a: b", "#c", "multi\nline", null, true, 1.5, [[1, 2], []]]
            }
        });
        let text = to_yaml(&value);
        let back = crate::parse_documents(&text).unwrap();
        assert_eq!(back, vec![value], "{text}");
    }
}
