//! YAML (and JSON) documents to JSON values with a source map, resolved the way the Kubernetes tools
//! read them (sigs.k8s.io/yaml, a YAML 1.1 reader: `yes`/`on` are booleans, `0644` is octal, `<<`
//! merges). Built on saphyr-parser's event stream so that positions, duplicate keys, alias expansion
//! and nesting depth are all under our control: hostile input ends in an error, never a hang or OOM.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Most nodes one document may produce, counting every copy an alias makes (a "billion laughs"
/// document stops here).
pub const MAX_NODES: usize = 1_000_000;
/// Deepest nesting of sequences and mappings one document may have.
pub const MAX_DEPTH: usize = 128;

/// Largest document the lenient fallback reader is tried on.
pub const LENIENT_MAX_BYTES: usize = 1 << 20;

/// A 1-based line and column in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// Where each node of a document sits in the source: JSON pointer → position of its key (for mapping
/// entries) or of the node itself (for sequence items and the root).
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    entries: HashMap<Box<str>, Position>,
}

impl SourceMap {
    /// The position of `pointer`, or of its nearest ancestor that has one.
    pub fn locate(&self, pointer: &str) -> Option<Position> {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.entries.get(p) {
                return Some(*pos);
            }
            if p.is_empty() {
                return None;
            }
            p = &p[..p.rfind('/').unwrap_or(0)];
        }
    }

    fn push(&mut self, pointer: &str, pos: Position) {
        self.entries.entry(pointer.into()).or_insert(pos);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A key that appears twice in one mapping. The later value wins, as in the Kubernetes YAML reader,
/// but the API server and other tools may read the other one: that difference is worth reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub pointer: String,
    pub first: Position,
    pub second: Position,
}

/// One parsed document.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    pub value: Value,
    pub source_map: SourceMap,
    pub duplicate_keys: Vec<DuplicateKey>,
    /// Read by the lenient fallback reader: positions are the document's only.
    pub lenient: bool,
}

/// A document that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub position: Position,
    pub message: String,
    /// A syntax error from the parser (as opposed to a limit or an unsupported structure): only
    /// these are worth a second, lenient reading.
    pub syntax: bool,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.position.line, self.position.column, self.message
        )
    }
}

/// One chunk of a multi-document stream: the text of a single document and the line it starts on.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    pub text: &'a str,
    /// 1-based line of the chunk's first line in the whole file.
    pub first_line: u32,
}

impl Chunk<'_> {
    /// 1-based line of the chunk's last line of text.
    pub fn last_line(&self) -> u32 {
        let newlines = self.text.trim_end_matches('\n').matches('\n').count() as u32;
        self.first_line + newlines
    }
}

/// Splits a stream at `---` document markers so that each document parses on its own: an error in
/// one does not stop the others. A `---` at column 0 can only be a document marker (YAML forbids it
/// inside scalars there), so this split is exact.
pub fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u32;
    let mut offset = 0usize;
    for (line, raw) in (1u32..).zip(text.split_inclusive('\n')) {
        if offset != start && is_document_start(raw) {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset;
            start_line = line;
        }
        offset += raw.len();
    }
    chunks.push(Chunk {
        text: &text[start..],
        first_line: start_line,
    });
    chunks.retain(|c| !is_blank_document(c.text));
    chunks
}

fn is_document_start(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("---") else {
        return false;
    };
    rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n'])
}

/// True when the chunk holds nothing but comments, blank lines, directives and markers.
fn is_blank_document(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..." || t.starts_with('%')
    })
}

/// Parses one document chunk. Returns `Ok(None)` for an empty document.
///
/// saphyr-parser is strict where libyaml (and so the Go YAML reader Kubernetes uses) is lenient: a
/// quoted scalar continued at the parent's indentation, a flow sequence closed at the key's column.
/// Such documents are read again with the libyaml port; they keep their content but their source
/// map only has the document's first line.
pub fn parse_chunk(chunk: &Chunk<'_>) -> Result<Option<YamlDocument>, YamlError> {
    match parse_chunk_strict(chunk) {
        Ok(doc) => Ok(doc),
        // Limits and structural errors are final; a second reader would only spend more time.
        Err(strict) if !strict.syntax || chunk.text.len() > LENIENT_MAX_BYTES => Err(strict),
        Err(strict) => match serde_yaml_ng::from_str::<Option<Value>>(chunk.text) {
            Ok(value) => Ok(value.map(|value| {
                let mut source_map = SourceMap::default();
                source_map.push(
                    "",
                    Position {
                        line: first_content_line(chunk),
                        column: 1,
                    },
                );
                YamlDocument {
                    value,
                    source_map,
                    duplicate_keys: Vec::new(),
                    lenient: true,
                }
            })),
            Err(_) => Err(strict),
        },
    }
}

/// The line of the first line that is neither blank, a comment, a directive nor `---`.
fn first_content_line(chunk: &Chunk<'_>) -> u32 {
    for (n, line) in (chunk.first_line..).zip(chunk.text.lines()) {
        let t = line.trim();
        if !(t.is_empty() || t.starts_with('#') || t.starts_with('%') || t == "---") {
            return n;
        }
    }
    chunk.first_line
}

fn parse_chunk_strict(chunk: &Chunk<'_>) -> Result<Option<YamlDocument>, YamlError> {
    let mut builder = Builder::new(chunk.first_line.saturating_sub(1));
    let mut parser = Parser::new_from_str(chunk.text);
    let mut documents = 0;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| YamlError {
            position: Position {
                line: (e.marker().line() as u32).saturating_add(builder.line_offset),
                column: e.marker().col() as u32 + 1,
            },
            message: e.info().to_string(),
            syntax: !e.info().contains("recursion limit"),
        })?;
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    // Only possible when a document ends with `...` and another follows without `---`.
                    return Err(builder.error(span, "more than one document in one chunk"));
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            other => builder.event(other, span)?,
        }
    }
    Ok(builder.finish())
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        pointer: String,
        start_nodes: usize,
    },
    Map {
        map: Map<String, Value>,
        anchor: usize,
        pointer: String,
        start_nodes: usize,
        /// The key waiting for its value, with its position and whether it is a `<<` merge key.
        key: Option<(String, Position, bool)>,
        key_positions: HashMap<String, Position>,
        merges: Vec<Value>,
    },
}

struct Builder {
    line_offset: u32,
    stack: Vec<Frame>,
    root: Option<Value>,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    source_map: SourceMap,
    duplicate_keys: Vec<DuplicateKey>,
}

impl Builder {
    fn new(line_offset: u32) -> Builder {
        Builder {
            line_offset,
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            nodes: 0,
            source_map: SourceMap::default(),
            duplicate_keys: Vec::new(),
        }
    }

    fn position(&self, span: Span) -> Position {
        Position {
            line: (span.start.line() as u32).saturating_add(self.line_offset),
            column: span.start.col() as u32 + 1,
        }
    }

    fn error(&self, span: Span, message: impl Into<String>) -> YamlError {
        YamlError {
            position: self.position(span),
            message: message.into(),
            syntax: false,
        }
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(self.error(
                span,
                format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
            ));
        }
        Ok(())
    }

    /// The pointer the next value will have, and records its position. Returns `None` when the next
    /// scalar is a mapping key rather than a value.
    fn next_value_pointer(&mut self, pos: Position) -> Option<String> {
        match self.stack.last() {
            None => {
                self.source_map.push("", pos);
                Some(String::new())
            }
            Some(Frame::Seq { items, pointer, .. }) => {
                let p = format!("{pointer}/{}", items.len());
                self.source_map.push(&p, pos);
                Some(p)
            }
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map {
                key: Some((k, key_pos, _)),
                pointer,
                ..
            }) => {
                let p = format!("{pointer}/{}", escape(k));
                let key_pos = *key_pos;
                self.source_map.push(&p, key_pos);
                Some(p)
            }
        }
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let pos = self.position(span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, span)?;
                let tag = tag.map(|t| t.suffix.clone());
                let value = resolve_scalar(&text, style, tag.as_deref());
                if self.next_value_pointer(pos).is_none() {
                    // A mapping key.
                    let is_merge = style == ScalarStyle::Plain && text == "<<";
                    // Keys keep their text: Kubernetes keys are strings, and `y:` or `on:` as a
                    // label key means the letters, not a boolean.
                    let key = match (style, value) {
                        (ScalarStyle::Plain, _) => text.to_string(),
                        (_, Value::String(s)) => s,
                        (_, other) => other.to_string(),
                    };
                    if let Some(Frame::Map { key: slot, .. }) = self.stack.last_mut() {
                        *slot = Some((key, pos, is_merge));
                    }
                    if anchor > 0 {
                        self.anchors.insert(anchor, (Value::String(text.into_owned()), 1));
                    }
                    return Ok(());
                }
                if anchor > 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                self.attach(value, span)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.count(1, span)?;
                if self.stack.len() >= MAX_DEPTH {
                    return Err(self.error(span, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                let Some(pointer) = self.next_value_pointer(pos) else {
                    return Err(self.error(
                        span,
                        "a mapping or sequence used as a mapping key is not supported",
                    ));
                };
                let start_nodes = self.nodes;
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        items: Vec::new(),
                        anchor,
                        pointer,
                        start_nodes,
                    }
                } else {
                    Frame::Map {
                        map: Map::new(),
                        anchor,
                        pointer,
                        start_nodes,
                        key: None,
                        key_positions: HashMap::new(),
                        merges: Vec::new(),
                    }
                };
                self.stack.push(frame);
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(self.error(span, "unbalanced end of collection"));
                };
                let (value, anchor, start_nodes) = match frame {
                    Frame::Seq {
                        items,
                        anchor,
                        start_nodes,
                        ..
                    } => (Value::Array(items), anchor, start_nodes),
                    Frame::Map {
                        mut map,
                        anchor,
                        start_nodes,
                        merges,
                        ..
                    } => {
                        for merge in merges {
                            merge_into(&mut map, merge);
                        }
                        (Value::Object(map), anchor, start_nodes)
                    }
                };
                if anchor > 0 {
                    let size = self.nodes - start_nodes + 1;
                    self.anchors.insert(anchor, (value.clone(), size));
                }
                self.attach(value, span)
            }
            Event::Alias(id) => {
                let Some((value, size)) = self.anchors.get(&id).cloned() else {
                    return Err(self.error(span, "alias to an unknown anchor"));
                };
                self.count(size, span)?;
                if self.next_value_pointer(pos).is_none() {
                    let key = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if let Some(Frame::Map { key: slot, .. }) = self.stack.last_mut() {
                        *slot = Some((key, pos, false));
                    }
                    return Ok(());
                }
                self.attach(value, span)
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::Nothing => Ok(()),
        }
    }

    /// Puts a finished value into its parent (or makes it the root).
    fn attach(&mut self, value: Value, span: Span) -> Result<(), YamlError> {
        let pos = self.position(span);
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(value);
                Ok(())
            }
            Some(Frame::Map {
                map,
                key,
                key_positions,
                merges,
                pointer,
                ..
            }) => {
                let Some((k, key_pos, is_merge)) = key.take() else {
                    return Err(YamlError {
                        position: pos,
                        message: "value without a key".into(),
                        syntax: false,
                    });
                };
                if is_merge {
                    match value {
                        Value::Object(_) => merges.push(value),
                        Value::Array(list) if list.iter().all(Value::is_object) => merges.extend(list),
                        _ => {
                            return Err(YamlError {
                                position: key_pos,
                                message: "`<<` merge key needs a mapping or a list of mappings".into(),
                                syntax: false,
                            });
                        }
                    }
                    return Ok(());
                }
                if let Some(first) = key_positions.get(&k) {
                    self.duplicate_keys.push(DuplicateKey {
                        pointer: format!("{pointer}/{}", escape(&k)),
                        first: *first,
                        second: key_pos,
                    });
                } else {
                    key_positions.insert(k.clone(), key_pos);
                }
                map.insert(k, value);
                Ok(())
            }
        }
    }

    fn finish(self) -> Option<YamlDocument> {
        let value = self.root?;
        Some(YamlDocument {
            value,
            source_map: self.source_map,
            duplicate_keys: self.duplicate_keys,
            lenient: false,
        })
    }
}

/// `<<` semantics: keys already present (written explicitly) win over merged ones.
fn merge_into(map: &mut Map<String, Value>, merge: Value) {
    if let Value::Object(source) = merge {
        for (k, v) in source {
            map.entry(k).or_insert(v);
        }
    }
}

fn escape(token: &str) -> String {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1")
    } else {
        token.to_string()
    }
}

/// Resolves a scalar as the Kubernetes YAML reader does (YAML 1.1 core types for plain scalars).
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text.to_string()),
        Some("null") => return Value::Null,
        Some("bool") => {
            return resolve_bool(text)
                .map(Value::Bool)
                .unwrap_or_else(|| Value::String(text.into()));
        }
        Some("int") | Some("float") => {
            return resolve_number(text).unwrap_or_else(|| Value::String(text.to_string()));
        }
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    if let Some(b) = resolve_bool(text) {
        return Value::Bool(b);
    }
    resolve_number(text).unwrap_or_else(|| Value::String(text.to_string()))
}

fn resolve_bool(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn resolve_number(text: &str) -> Option<Value> {
    let first = text.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let (negative, digits) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    let integer = if let Some(hex) = digits.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(bin) = digits.strip_prefix("0b") {
        u64::from_str_radix(bin, 2).ok()
    } else if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        u64::from_str_radix(&digits[1..], 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()
    } else {
        None
    };
    if let Some(n) = integer {
        if negative {
            return i64::try_from(n).ok().map(|n| Value::Number((-n).into()));
        }
        return Some(Value::Number(n.into()));
    }
    if is_yaml_float(digits) {
        let f: f64 = cleaned.parse().ok()?;
        return Number::from_f64(f).map(Value::Number);
    }
    None
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the float shape the Kubernetes reader accepts.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.first() == Some(&b'.') {
        i = 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_all(text: &str) -> Vec<Result<Option<YamlDocument>, YamlError>> {
        split_documents(text).iter().map(parse_chunk).collect()
    }

    fn one(text: &str) -> YamlDocument {
        let mut docs = parse_all(text);
        assert_eq!(docs.len(), 1, "{text}");
        docs.remove(0).unwrap().unwrap()
    }

    #[test]
    fn kubernetes_scalars() {
        let d = one(
            "a: yes\nb: off\nc: 0644\nd: 0x1F\ne: 1.5\nf: '0644'\ng: ~\nh: 1e3\ni: -7\nj: 1_000\nk: v1.2\nl: .5\nm: 12345678901234567890\nn: !!str 10\no: 2024-01-01\n",
        );
        assert_eq!(
            d.value,
            json!({"a": true, "b": false, "c": 420, "d": 31, "e": 1.5, "f": "0644", "g": null, "h": 1000.0,
                   "i": -7, "j": 1000, "k": "v1.2", "l": 0.5, "m": 12345678901234567890u64, "n": "10", "o": "2024-01-01"})
        );
    }

    #[test]
    fn positions_and_pointers() {
        let text = "---\napiVersion: v1\nkind: Pod\n---\n# comment\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    securityContext:\n      privileged: true\n";
        let docs = parse_all(text);
        assert_eq!(docs.len(), 2);
        let d = docs[1].clone().unwrap().unwrap();
        let at = |p: &str| d.source_map.locate(p).unwrap();
        assert_eq!(
            at("/spec/containers/0/securityContext/privileged"),
            Position { line: 12, column: 7 }
        );
        assert_eq!(at("/spec/containers/0").line, 10);
        assert_eq!(at("/spec/containers/0/missing/deeper").line, 10);
        assert_eq!(at("/kind").line, 7);
    }

    #[test]
    fn errors_are_isolated_per_document() {
        let text = "a: 1\n---\nb: [1, 2\n---\nc: 3\n";
        let docs = parse_all(text);
        assert_eq!(docs.len(), 3);
        assert!(docs[0].is_ok() && docs[2].is_ok());
        let err = docs[1].clone().unwrap_err();
        assert!(err.position.line >= 3, "{err}");
    }

    #[test]
    fn duplicate_keys_are_reported_last_wins() {
        let d = one("spec:\n  hostNetwork: false\n  hostNetwork: true\n");
        assert_eq!(d.value, json!({"spec": {"hostNetwork": true}}));
        assert_eq!(d.duplicate_keys.len(), 1);
        assert_eq!(d.duplicate_keys[0].pointer, "/spec/hostNetwork");
        assert_eq!(
            (d.duplicate_keys[0].first.line, d.duplicate_keys[0].second.line),
            (2, 3)
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let d = one("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nlist: [*b]\n");
        assert_eq!(d.value["derived"], json!({"y": 3, "x": 1}));
        assert_eq!(d.value["list"], json!([{"x": 1, "y": 2}]));
    }

    #[test]
    fn alias_bomb_and_depth_are_bounded() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
        }
        let err = parse_all(&bomb).remove(0).unwrap_err();
        assert!(err.message.contains("nodes"), "{err}");

        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse_all(&deep).remove(0).unwrap_err();
        assert!(
            err.message.contains("recursion") || err.message.contains("nesting"),
            "{err}"
        );
        let block: String = (0..200).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        let err = parse_all(&block).remove(0).unwrap_err();
        assert!(err.message.contains("nesting"), "{err}");
    }

    #[test]
    fn empty_and_comment_only_documents() {
        assert!(parse_all("").iter().all(|d| matches!(d, Ok(None))));
        assert!(
            parse_all("# only a comment\n")
                .iter()
                .all(|d| matches!(d, Ok(None)))
        );
        let docs = parse_all("---\n---\na: 1\n...\n");
        let values: Vec<_> = docs.into_iter().filter_map(|d| d.unwrap()).collect();
        assert_eq!(values.len(), 1);
    }

    #[test]
    fn documents_libyaml_accepts_are_read_leniently() {
        let text = "# c\nkind: Pod\nspec:\n  args: [\n      \"-a\", \"b\",\n  ]\n  msg: 'first\n  second'\n";
        let d = one(text);
        assert!(d.lenient);
        assert_eq!(d.value["spec"]["args"], json!(["-a", "b"]));
        assert_eq!(d.source_map.locate("/spec/args").unwrap().line, 2);
    }

    #[test]
    fn json_input() {
        let d = one("{\"kind\": \"Pod\", \"spec\": {\"containers\": [{\"name\": \"a\"}]}}");
        assert_eq!(d.value["spec"]["containers"][0]["name"], "a");
    }

    #[test]
    fn non_string_keys_become_strings() {
        let d = one("1: a\ntrue: b\n");
        assert_eq!(d.value, json!({"1": "a", "true": "b"}));
    }
}
