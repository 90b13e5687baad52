//! Loading Kubernetes objects from manifests: files, directories and standard input; multi-document
//! YAML and JSON; `List` kinds expanded into their items; every object with its file, line and a
//! source map so findings can point at the offending line. Later also the live-cluster collector.

pub mod input;
pub mod yaml;

pub use input::{InputError, InputFile, Limits, discover, read_input};
pub use yaml::{DuplicateKey, Position, SourceMap, YamlError};

use serde_json::Value;
use std::sync::Arc;

/// Errors from loading manifests.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("{file}: {source}")]
    Input {
        file: String,
        #[source]
        source: InputError,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: u32,
        column: u32,
        message: String,
    },
}

/// One Kubernetes object found in the input.
#[derive(Debug, Clone)]
pub struct K8sObject {
    pub value: Value,
    pub file: Arc<str>,
    /// 0-based index of the YAML document in its file.
    pub document: usize,
    /// 1-based line where the object starts.
    pub line: u32,
    /// JSON pointer of the object inside its document (`/items/3` for an item of a List, else empty).
    pub pointer_prefix: String,
    /// Keys written twice inside this object (pointers relative to the object).
    pub duplicate_keys: Vec<DuplicateKey>,
    source_map: Arc<SourceMap>,
}

impl K8sObject {
    /// Line and column of a JSON pointer into this object (or of its nearest ancestor).
    pub fn locate(&self, pointer: &str) -> Option<Position> {
        if self.pointer_prefix.is_empty() {
            self.source_map.locate(pointer)
        } else {
            self.source_map
                .locate(&format!("{}{}", self.pointer_prefix, pointer))
        }
    }

    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }
}

/// Something in the input that is not an object to scan, reported so nothing is silently lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A document that is not a Kubernetes object (no `apiVersion`/`kind`), skipped.
    NotKubernetes {
        file: String,
        document: usize,
        line: u32,
    },
    /// A document that does not parse; the other documents of the file are still read.
    ParseError {
        file: String,
        document: usize,
        line: u32,
        column: u32,
        message: String,
    },
    /// The same key twice in a mapping outside any object (the header of a `List`).
    DuplicateKey {
        file: String,
        line: u32,
        pointer: String,
        first_line: u32,
    },
}

/// What one document produced.
#[derive(Debug)]
pub enum Loaded {
    Object(K8sObject),
    Note(Note),
}

/// Parses every document of `text` (the content of `file`) and calls `sink` with each object or
/// note, in order, one document at a time: only one document's tree is alive at once.
pub fn load_str(text: &str, file: &str, mut sink: impl FnMut(Loaded)) {
    let file: Arc<str> = Arc::from(file);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, chunk) in yaml::split_documents(text).iter().enumerate() {
        match yaml::parse_chunk(chunk) {
            Err(e) => sink(Loaded::Note(Note::ParseError {
                file: file.to_string(),
                document: index,
                // An error found at end of input belongs to the document's last line, not the next
                // document's `---`.
                line: e.position.line.min(chunk.last_line()),
                column: e.position.column,
                message: e.message,
            })),
            Ok(None) => {}
            Ok(Some(doc)) => emit_document(doc, &file, index, chunk.first_line, &mut sink),
        }
    }
}

fn emit_document(
    doc: yaml::YamlDocument,
    file: &Arc<str>,
    index: usize,
    first_line: u32,
    sink: &mut impl FnMut(Loaded),
) {
    let line_of = |map: &SourceMap, ptr: &str| map.locate(ptr).map(|p| p.line).unwrap_or(first_line);
    let source_map = Arc::new(doc.source_map);
    if !is_kubernetes_object(&doc.value) {
        if !doc.value.is_null() {
            sink(Loaded::Note(Note::NotKubernetes {
                file: file.to_string(),
                document: index,
                line: line_of(&source_map, ""),
            }));
        }
        return;
    }
    let mut duplicates = doc.duplicate_keys;
    let mut value = doc.value;
    if is_list(&value) {
        let items = match value.get_mut("items") {
            Some(Value::Array(items)) => std::mem::take(items),
            _ => Vec::new(),
        };
        for (i, item) in items.into_iter().enumerate() {
            let prefix = format!("/items/{i}");
            let (mine, rest): (Vec<_>, Vec<_>) = duplicates.into_iter().partition(|d| {
                d.pointer
                    .strip_prefix(&prefix)
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            });
            duplicates = rest;
            let duplicate_keys = mine
                .into_iter()
                .map(|mut d| {
                    d.pointer = d.pointer[prefix.len()..].to_string();
                    d
                })
                .collect();
            if is_kubernetes_object(&item) {
                let line = line_of(&source_map, &prefix);
                sink(Loaded::Object(K8sObject {
                    value: item,
                    file: file.clone(),
                    document: index,
                    line,
                    pointer_prefix: prefix,
                    duplicate_keys,
                    source_map: source_map.clone(),
                }));
            } else {
                sink(Loaded::Note(Note::NotKubernetes {
                    file: file.to_string(),
                    document: index,
                    line: line_of(&source_map, &prefix),
                }));
            }
        }
        for dup in duplicates {
            sink(Loaded::Note(Note::DuplicateKey {
                file: file.to_string(),
                line: dup.second.line,
                pointer: dup.pointer,
                first_line: dup.first.line,
            }));
        }
        return;
    }
    let line = line_of(&source_map, "");
    sink(Loaded::Object(K8sObject {
        value,
        file: file.clone(),
        document: index,
        line,
        pointer_prefix: String::new(),
        duplicate_keys: duplicates,
        source_map,
    }));
}

/// A Kubernetes object has string `apiVersion` and `kind`.
pub fn is_kubernetes_object(value: &Value) -> bool {
    value
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
        && value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
}

/// `kind: List` (kubectl's output) and typed lists such as `PodList` carry their objects in `items`.
fn is_list(value: &Value) -> bool {
    value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array)
}

/// Every Kubernetes object in `text`, List items expanded; the first parse error is an error.
/// A convenience for tests and small inputs; scans stream with [`load_str`].
pub fn parse_documents(text: &str) -> Result<Vec<Value>, K8sError> {
    let mut out = Vec::new();
    let mut error = None;
    load_str(text, "<input>", |loaded| match loaded {
        Loaded::Object(o) => out.push(o.value),
        Loaded::Note(Note::ParseError {
            file,
            line,
            column,
            message,
            ..
        }) if error.is_none() => {
            error = Some(K8sError::Parse {
                file,
                line,
                column,
                message,
            });
        }
        Loaded::Note(_) => {}
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Parses a configuration-style YAML or JSON file that holds exactly one document.
pub fn parse_single(text: &str, file: &str) -> Result<Value, K8sError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut value = None;
    for chunk in yaml::split_documents(text) {
        match yaml::parse_chunk(&chunk) {
            Err(e) => {
                return Err(K8sError::Parse {
                    file: file.to_string(),
                    line: e.position.line,
                    column: e.position.column,
                    message: e.message,
                });
            }
            Ok(None) => {}
            Ok(Some(doc)) if value.is_none() => {
                if let Some(dup) = doc.duplicate_keys.first() {
                    return Err(K8sError::Parse {
                        file: file.to_string(),
                        line: dup.second.line,
                        column: dup.second.column,
                        message: format!("duplicate key {} (first at line {})", dup.pointer, dup.first.line),
                    });
                }
                value = Some(doc.value);
            }
            Ok(Some(_)) => {
                return Err(K8sError::Parse {
                    file: file.to_string(),
                    line: chunk.first_line,
                    column: 1,
                    message: "expected one YAML document, found more".into(),
                });
            }
        }
    }
    Ok(value.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_expanded_with_lines() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n- just: data\n";
        let mut objects = Vec::new();
        let mut notes = Vec::new();
        load_str(text, "list.yaml", |l| match l {
            Loaded::Object(o) => objects.push(o),
            Loaded::Note(n) => notes.push(n),
        });
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].kind(), "Service");
        assert_eq!(objects[1].line, 7);
        assert_eq!(objects[1].locate("/metadata/name").unwrap().line, 9);
        assert_eq!(
            notes,
            vec![Note::NotKubernetes {
                file: "list.yaml".into(),
                document: 0,
                line: 10
            }]
        );
    }

    #[test]
    fn non_kubernetes_and_broken_documents_are_notes() {
        let text = "name: my-chart\nversion: 1.0\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [oops\n---\napiVersion: v1\nkind: ConfigMap\n";
        let mut kinds = Vec::new();
        let mut notes = Vec::new();
        load_str(text, "f.yaml", |l| match l {
            Loaded::Object(o) => kinds.push(o.kind().to_string()),
            Loaded::Note(n) => notes.push(n),
        });
        assert_eq!(kinds, vec!["ConfigMap"]);
        assert!(matches!(notes[0], Note::NotKubernetes { line: 1, .. }));
        assert!(
            matches!(notes[1], Note::ParseError { document: 1, line, .. } if (4..=8).contains(&line)),
            "{notes:?}"
        );
        assert!(parse_documents(text).is_err());
    }
}
