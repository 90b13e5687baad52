//! Request body processors: URLENCODED, MULTIPART (with the strict-validation flags CRS inspects),
//! JSON (flattened to `json.a.b` argument names) and XML (well-formedness and text). Each works on
//! a bounded, fully buffered body and reports problems as flags, never as panics.

use crate::transform::url_decode;

pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Upper bound on arguments taken from one source; beyond it the rest are dropped and flagged.
pub const MAX_ARGS: usize = 4096;

/// Upper bound on one JSON argument's name (`json.a.b...`), in bytes.
pub const MAX_JSON_NAME: usize = 64 * 1024;

/// Upper bound on the names of all of one body's JSON arguments together, in bytes: a thousand
/// times what a 4,096-argument API request needs.
pub const MAX_JSON_NAMES_TOTAL: usize = 4 << 20;

/// `a=1&b=2` with `+` and `%XX` decoding (ModSecurity decodes names and values; invalid escapes stay).
pub fn parse_urlencoded(s: &[u8], sep: u8) -> Pairs {
    let mut out = Vec::new();
    for part in s.split(|&c| c == sep) {
        if part.is_empty() {
            continue;
        }
        if out.len() >= MAX_ARGS {
            break;
        }
        let (k, v) = match part.iter().position(|&c| c == b'=') {
            Some(p) => (&part[..p], &part[p + 1..]),
            None => (part, &b""[..]),
        };
        out.push((url_decode(k, false), url_decode(v, false)));
    }
    out
}

/// `Cookie: a=1; b=2` (version 0 cookies, as ModSecurity parses them by default).
pub fn parse_cookies(s: &[u8]) -> Pairs {
    let mut out = Vec::new();
    for part in s.split(|&c| c == b';') {
        let part = trim(part);
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|&c| c == b'=') {
            Some(p) => (&part[..p], &part[p + 1..]),
            None => (part, &b""[..]),
        };
        out.push((trim(k).to_vec(), v.to_vec()));
    }
    out
}

pub fn trim(s: &[u8]) -> &[u8] {
    let st = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let en = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(st, |p| p + 1);
    &s[st..en.max(st)]
}

/// JSON flattened into arguments: object keys join with dots under a `json` root (`json.a.b`, as
/// libmodsecurity 3 names them), and array elements repeat their array's key, as ModSecurity 2
/// does (`{"a":[1,2]}` gives `json.a.a=1`, `json.a.a=2`), so rules anchored on a key's end still
/// see it (CRS 934210 looks for names ending in `__contained_by`).
///
/// Read in one pass without building a document, as ModSecurity's streaming parser (yajl) does,
/// and with the same results: every member in order, a repeated key as often as it appears (an
/// attacker's second `"q"` is inspected too), numbers as written (`49.90`, not `49.9`), `true`
/// and `false` as words and `null` as an empty value. Strict RFC 8259: anything else, invalid
/// UTF-8, a lone surrogate escape or content after the document is a parsing error. Nesting
/// deeper than `depth_limit` containers is an error too, found without recursion (the limit is
/// the administrator's, and a proxy worker's stack is small).
///
/// Names are built, not read: each nested array repeats its key, so a long key over deep arrays
/// would make names far larger than the body (a 1 KB key under 10,000 brackets is a 10 MB name,
/// copied for every value under it). A name over `MAX_JSON_NAME` bytes, or names over
/// `MAX_JSON_NAMES_TOTAL` bytes together, are an error rather than a memory bomb.
pub fn parse_json(body: &[u8], depth_limit: usize) -> Result<Pairs, String> {
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("JSON parsing error: invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let mut r = JsonReader {
        s: text.as_bytes(),
        at: 0,
    };
    let mut out = JsonArgs::default();
    let mut name = b"json".to_vec();
    let mut open: Vec<JsonFrame> = Vec::new();
    'value: loop {
        r.skip_space();
        match r.peek() {
            Some(c @ (b'{' | b'[')) => {
                if open.len() >= depth_limit {
                    return Err("JSON depth limit exceeded".into());
                }
                r.at += 1;
                let base = name.len();
                if c == b'{' {
                    open.push(JsonFrame::Object { base });
                    r.skip_space();
                    if !r.eat(b'}') {
                        r.member_name(&mut name)?;
                        continue 'value;
                    }
                    open.pop();
                } else {
                    // Elements are named after their array's own key: `json.a` -> `json.a.a`.
                    let key_at = name.iter().rposition(|&b| b == b'.').map_or(0, |p| p + 1);
                    name.push(b'.');
                    name.extend_from_within(key_at..base);
                    check_json_name(&name)?;
                    open.push(JsonFrame::Array {
                        base,
                        element: name.len(),
                    });
                    r.skip_space();
                    if !r.eat(b']') {
                        continue 'value;
                    }
                    open.pop();
                    name.truncate(base);
                }
            }
            Some(b'"') => {
                let v = r.string()?;
                out.push(&name, v)?;
            }
            Some(b't') => {
                r.word(b"true")?;
                out.push(&name, b"true".to_vec())?;
            }
            Some(b'f') => {
                r.word(b"false")?;
                out.push(&name, b"false".to_vec())?;
            }
            Some(b'n') => {
                r.word(b"null")?;
                out.push(&name, Vec::new())?;
            }
            Some(b'-' | b'0'..=b'9') => {
                let v = r.number()?.to_vec();
                out.push(&name, v)?;
            }
            _ => return Err(r.error("expected a value")),
        }
        // A value is complete: close what ends here, or go on to the next member or element.
        while let Some(&frame) = open.last() {
            r.skip_space();
            match frame {
                JsonFrame::Object { base } => {
                    name.truncate(base);
                    if r.eat(b',') {
                        r.skip_space();
                        r.member_name(&mut name)?;
                        continue 'value;
                    }
                    if !r.eat(b'}') {
                        return Err(r.error("expected ',' or '}'"));
                    }
                }
                JsonFrame::Array { base, element } => {
                    if r.eat(b',') {
                        name.truncate(element);
                        continue 'value;
                    }
                    if !r.eat(b']') {
                        return Err(r.error("expected ',' or ']'"));
                    }
                    name.truncate(base);
                }
            }
            open.pop();
        }
        break;
    }
    r.skip_space();
    if r.at < r.s.len() {
        return Err(r.error("trailing characters after the document"));
    }
    Ok(out.pairs)
}

/// An open container while a JSON body is read: where its name ends in the name being built,
/// and for an array where its elements' name ends.
#[derive(Clone, Copy)]
enum JsonFrame {
    Object { base: usize },
    Array { base: usize, element: usize },
}

fn check_json_name(name: &[u8]) -> Result<(), String> {
    if name.len() > MAX_JSON_NAME {
        return Err(format!(
            "JSON parsing error: an argument name is longer than {MAX_JSON_NAME} bytes"
        ));
    }
    Ok(())
}

/// The arguments of a JSON body as they are read, and the bytes their names take.
#[derive(Default)]
struct JsonArgs {
    pairs: Pairs,
    name_bytes: usize,
}

impl JsonArgs {
    fn push(&mut self, name: &[u8], value: Vec<u8>) -> Result<(), String> {
        if self.pairs.len() >= MAX_ARGS {
            return Ok(());
        }
        self.name_bytes += name.len();
        if self.name_bytes > MAX_JSON_NAMES_TOTAL {
            return Err(format!(
                "JSON parsing error: argument names longer than {MAX_JSON_NAMES_TOTAL} bytes in all"
            ));
        }
        self.pairs.push((name.to_vec(), value));
        Ok(())
    }
}

/// The cursor of `parse_json` over a body already known to be UTF-8.
struct JsonReader<'a> {
    s: &'a [u8],
    at: usize,
}

impl JsonReader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.at += usize::from(hit);
        hit
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        if self.at >= self.s.len() {
            format!("JSON parsing error: {what}, found the end of the body")
        } else {
            format!("JSON parsing error: {what} at byte {}", self.at)
        }
    }

    fn word(&mut self, w: &[u8]) -> Result<(), String> {
        if self.s[self.at..].starts_with(w) {
            self.at += w.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    /// `"key"` and the `:` after it; the key, decoded, is appended to `name` after a dot.
    fn member_name(&mut self, name: &mut Vec<u8>) -> Result<(), String> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a member name"));
        }
        let key = self.string()?;
        name.push(b'.');
        name.extend_from_slice(&key);
        check_json_name(name)?;
        self.skip_space();
        if !self.eat(b':') {
            return Err(self.error("expected ':'"));
        }
        Ok(())
    }

    /// A string at the cursor (on its opening quote), its escapes decoded.
    fn string(&mut self) -> Result<Vec<u8>, String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let run = self.s[self.at..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .map_or(self.s.len(), |p| self.at + p);
            out.extend_from_slice(&self.s[self.at..run]);
            self.at = run;
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// The escape after a backslash, decoded onto `out`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.at += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&first) {
                    if !self.s[self.at..].starts_with(b"\\u") {
                        return Err(self.error("lone leading surrogate in a \\u escape"));
                    }
                    self.at += 2;
                    let second = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&second) {
                        return Err(self.error("invalid trailing surrogate in a \\u escape"));
                    }
                    0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                } else {
                    first
                };
                let Some(ch) = char::from_u32(code) else {
                    return Err(self.error("lone trailing surrogate in a \\u escape"));
                };
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(self.error("invalid escape")),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("unterminated \\u escape"))?;
        let mut v = 0;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            v = v * 16 + n;
        }
        self.at += 4;
        Ok(v)
    }

    /// A number as written: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<&[u8], String> {
        let start = self.at;
        self.eat(b'-');
        let digits = |r: &mut Self| {
            let from = r.at;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.at += 1;
            }
            r.at - from
        };
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.eat(b'.') && digits(self) == 0 {
            return Err(self.error("invalid number"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        Ok(&self.s[start..self.at])
    }
}

/// Result of the XML processor: text content (for `XML:/*`) and attribute values (`XML://@*`).
#[derive(Debug, Default, Clone)]
pub struct XmlDoc {
    pub text: Vec<u8>,
    pub attrs: Vec<Vec<u8>>,
}

/// A small well-formedness check: balanced tags, quoted attributes, no stray `<`. Enough to raise
/// REQBODY_ERROR on broken documents and to expose text; it does not resolve entities or DTDs
/// (which also keeps XXE out by construction).
pub fn parse_xml(body: &[u8]) -> Result<XmlDoc, String> {
    let mut doc = XmlDoc::default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    let mut seen_root = false;
    while i < body.len() {
        if body[i] != b'<' {
            let st = i;
            while i < body.len() && body[i] != b'<' {
                i += 1;
            }
            let t = &body[st..i];
            if stack.is_empty() && !trim(t).is_empty() {
                return Err("XML parsing error: text outside the root element".into());
            }
            doc.text.extend_from_slice(&xml_unescape(t));
            continue;
        }
        let rest = &body[i..];
        let find = |pat: &[u8]| memchr::memmem::find(rest, pat);
        if rest.starts_with(b"<?") {
            i += find(b"?>").ok_or("XML parsing error: unterminated processing instruction")? + 2;
        } else if rest.starts_with(b"<!--") {
            i += find(b"-->").ok_or("XML parsing error: unterminated comment")? + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            let e = find(b"]]>").ok_or("XML parsing error: unterminated CDATA")?;
            doc.text.extend_from_slice(&rest[9..e]);
            i += e + 3;
        } else if rest.starts_with(b"<!") {
            i += find(b">").ok_or("XML parsing error: unterminated declaration")? + 1;
        } else {
            // A tag: find its end outside quotes.
            let mut j = 1;
            let mut q = 0u8;
            while j < rest.len() {
                let c = rest[j];
                if q != 0 {
                    if c == q {
                        q = 0;
                    }
                } else if c == b'"' || c == b'\'' {
                    q = c;
                } else if c == b'>' {
                    break;
                } else if c == b'<' {
                    return Err("XML parsing error: '<' inside a tag".into());
                }
                j += 1;
            }
            if j >= rest.len() {
                return Err("XML parsing error: unterminated tag".into());
            }
            let inner = &rest[1..j];
            i += j + 1;
            if let Some(name) = inner.strip_prefix(b"/") {
                let name = trim(name);
                match stack.pop() {
                    Some(open) if open == name => {}
                    _ => return Err("XML parsing error: mismatched end tag".into()),
                }
                continue;
            }
            let self_closing = inner.ends_with(b"/");
            let inner = if self_closing {
                &inner[..inner.len() - 1]
            } else {
                inner
            };
            let name_end = inner
                .iter()
                .position(|c| c.is_ascii_whitespace())
                .unwrap_or(inner.len());
            let name = &inner[..name_end];
            if name.is_empty() || !(name[0].is_ascii_alphabetic() || name[0] == b'_' || name[0] >= 0x80) {
                return Err("XML parsing error: bad element name".into());
            }
            if stack.is_empty() && seen_root {
                return Err("XML parsing error: extra content after the root element".into());
            }
            seen_root = true;
            // Attribute values.
            let mut k = name_end;
            while k < inner.len() {
                if inner[k] == b'"' || inner[k] == b'\'' {
                    let q = inner[k];
                    let st = k + 1;
                    let e = inner[st..]
                        .iter()
                        .position(|&c| c == q)
                        .map_or(inner.len(), |p| st + p);
                    doc.attrs.push(xml_unescape(&inner[st..e]));
                    k = e + 1;
                } else {
                    k += 1;
                }
            }
            if !self_closing {
                stack.push(name.to_vec());
            }
        }
    }
    if !stack.is_empty() || !seen_root {
        return Err("XML parsing error: document is not complete".into());
    }
    Ok(doc)
}

/// The five predefined entities and character references, as an XML parser reports text.
fn xml_unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'&'
            && let Some(semi) = s[i..].iter().take(16).position(|&c| c == b';')
        {
            let ent = &s[i + 1..i + semi];
            let ch: Option<u32> = match ent {
                b"lt" => Some(u32::from(b'<')),
                b"gt" => Some(u32::from(b'>')),
                b"amp" => Some(u32::from(b'&')),
                b"quot" => Some(u32::from(b'"')),
                b"apos" => Some(u32::from(b'\'')),
                _ => ent.strip_prefix(b"#").and_then(|n| {
                    let n = std::str::from_utf8(n).ok()?;
                    match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => n.parse().ok(),
                    }
                }),
            };
            if let Some(c) = ch.and_then(char::from_u32) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += semi + 1;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// What the multipart parser found: arguments, files and the flags behind MULTIPART_*.
#[derive(Debug, Default)]
pub struct Multipart {
    pub args: Pairs,
    /// (field name, file name, size)
    pub files: Vec<(Vec<u8>, Vec<u8>, usize)>,
    /// (field name, "Header: value") for MULTIPART_PART_HEADERS
    pub part_headers: Pairs,
    pub error: Option<String>,
    pub boundary_quoted: bool,
    pub boundary_whitespace: bool,
    pub data_before: bool,
    pub data_after: bool,
    pub header_folding: bool,
    pub lf_line: bool,
    pub crlf_line: bool,
    pub missing_semicolon: bool,
    pub invalid_quoting: bool,
    pub invalid_part: bool,
    pub invalid_header_folding: bool,
    pub unmatched_boundary: bool,
    pub file_limit_exceeded: bool,
}

impl Multipart {
    pub fn strict_error(&self) -> bool {
        self.error.is_some()
            || self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || (self.lf_line && self.crlf_line)
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.file_limit_exceeded
    }
}

/// Extracts the boundary from a multipart Content-Type, noting quoting and whitespace oddities.
pub fn multipart_boundary(ct: &[u8], mp: &mut Multipart) -> Option<Vec<u8>> {
    let lower = ct.to_ascii_lowercase();
    let p = memchr::memmem::find(&lower, b"boundary")?;
    let mut rest = &ct[p + 8..];
    if rest.first().is_some_and(|c| c.is_ascii_whitespace()) {
        mp.boundary_whitespace = true;
        rest = trim(rest);
    }
    let rest = rest.strip_prefix(b"=")?;
    if rest.first().is_some_and(|c| c.is_ascii_whitespace()) {
        mp.boundary_whitespace = true;
    }
    let rest = trim(rest);
    let b = if let Some(r) = rest.strip_prefix(b"\"") {
        mp.boundary_quoted = true;
        let e = r.iter().position(|&c| c == b'"')?;
        r[..e].to_vec()
    } else {
        let e = rest
            .iter()
            .position(|&c| c == b';' || c == b',' || c == b' ')
            .unwrap_or(rest.len());
        rest[..e].to_vec()
    };
    if b.is_empty() || b.len() > 70 {
        return None;
    }
    Some(b)
}

fn header_param(h: &[u8], name: &[u8], mp: &mut Multipart) -> Option<Vec<u8>> {
    // Finds `name="value"` (or unquoted) in a Content-Disposition value.
    let lower = h.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = memchr::memmem::find(&lower[from..], name) {
        let at = from + p;
        from = at + 1;
        if at > 0 && !matches!(lower[at - 1], b';' | b' ' | b'\t') {
            continue;
        }
        let rest = trim(&h[at + name.len()..]);
        let Some(rest) = rest.strip_prefix(b"=") else {
            continue;
        };
        let rest = trim(rest);
        if let Some(r) = rest.strip_prefix(b"\"") {
            let mut v = Vec::new();
            let mut k = 0;
            while k < r.len() {
                // Only \" and \\ are escapes (as in ModSecurity); other backslashes are kept,
                // because rules look for them in file names.
                if r[k] == b'\\' && k + 1 < r.len() && matches!(r[k + 1], b'"' | b'\\') {
                    v.push(r[k + 1]);
                    k += 2;
                    continue;
                }
                if r[k] == b'"' {
                    return Some(v);
                }
                v.push(r[k]);
                k += 1;
            }
            mp.invalid_quoting = true;
            return Some(v);
        }
        if rest.starts_with(b"'") {
            mp.invalid_quoting = true;
        }
        let e = rest.iter().position(|&c| c == b';').unwrap_or(rest.len());
        return Some(trim(&rest[..e]).to_vec());
    }
    None
}

/// Finds the next delimiter line: `--boundary` at the start of the body or right after a newline.
/// Lines that start with the delimiter but go on with other characters are not delimiters; they set
/// MULTIPART_UNMATCHED_BOUNDARY (a second boundary hidden in the body is an evasion attempt).
fn next_delimiter(body: &[u8], from: usize, delim: &[u8], mp: &mut Multipart) -> Option<usize> {
    let mut at = from;
    loop {
        let p = if at == 0 && body.starts_with(delim) {
            0
        } else {
            at + memchr::memmem::find(body.get(at..)?, &[b"\n", delim].concat())? + 1
        };
        let rest = &body[p + delim.len()..];
        let line_end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
        let tail = trim(&rest[..line_end]);
        if tail.is_empty() || tail == b"--" {
            return Some(p);
        }
        mp.unmatched_boundary = true;
        at = p + 1;
    }
}

/// The Content-Type checks alone (boundary present, quoted, with whitespace).
pub fn check_multipart_content_type(content_type: &[u8]) -> Multipart {
    let mut mp = Multipart::default();
    if multipart_boundary(content_type, &mut mp).is_none() {
        mp.error = Some("Multipart: Invalid boundary in C-T".into());
    }
    mp
}

/// ModSecurity 2's multipart parser, in its essentials: a hard error (REQBODY_ERROR) stops parsing
/// and drops what was parsed, strict-validation findings only set the MULTIPART_* flags.
pub fn parse_multipart(body: &[u8], content_type: &[u8]) -> Multipart {
    let mut mp = Multipart::default();
    let Some(boundary) = multipart_boundary(content_type, &mut mp) else {
        mp.error = Some("Multipart: Invalid boundary in C-T".into());
        return mp;
    };
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(&boundary);
    let Some(first) = next_delimiter(body, 0, &delim, &mut mp) else {
        mp.error = Some("Multipart: Final boundary missing".into());
        return mp;
    };
    if !trim(&body[..first]).is_empty() {
        mp.data_before = true;
    }
    let mut pos = first;
    let mut finished = false;
    while mp.error.is_none() {
        let after = pos + delim.len();
        if body[after..].starts_with(b"--") {
            finished = true;
            if !trim(&body[after + 2..]).is_empty() {
                mp.data_after = true;
            }
            break;
        }
        let rest = &body[after..];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            break;
        };
        let part_start = after + nl + 1;
        let Some(next) = next_delimiter(body, part_start.saturating_sub(1), &delim, &mut mp) else {
            break;
        };
        // The part ends before the CRLF (or LF) preceding the next delimiter.
        let mut part_end = next.max(part_start);
        if part_end > part_start && body[part_end - 1] == b'\n' {
            part_end -= 1;
            if part_end > part_start && body[part_end - 1] == b'\r' {
                part_end -= 1;
            }
        }
        parse_part(&body[part_start..part_end], &mut mp);
        pos = next;
    }
    if !finished && mp.error.is_none() {
        mp.error = Some("Multipart: Final boundary missing".into());
    }
    if mp.error.is_some() {
        mp.args.clear();
        mp.files.clear();
        mp.part_headers.clear();
    }
    mp
}

fn parse_part(part: &[u8], mp: &mut Multipart) {
    let mut i = 0;
    let mut headers: Vec<Vec<u8>> = Vec::new();
    loop {
        let Some(nl) = memchr::memchr(b'\n', &part[i..]) else {
            // The part ended inside its headers.
            let last = trim(&part[i..]);
            if !last.is_empty() && !last.contains(&b':') {
                mp.error = Some("Multipart: Invalid part header (colon missing)".into());
            } else {
                mp.invalid_part = true;
            }
            return;
        };
        let mut line = &part[i..i + nl];
        if line.ends_with(b"\r") {
            line = &line[..line.len() - 1];
            mp.crlf_line = true;
        } else {
            mp.lf_line = true;
        }
        i += nl + 1;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            mp.header_folding = true;
            match headers.last_mut() {
                Some(h) => h.extend_from_slice(line),
                None => mp.invalid_header_folding = true,
            }
            continue;
        }
        if !line.contains(&b':') {
            mp.error = Some("Multipart: Invalid part header (colon missing)".into());
            return;
        }
        headers.push(line.to_vec());
    }
    let data = &part[i.min(part.len())..];
    let mut name = None;
    let mut filename = None;
    let mut has_cd = false;
    for h in &headers {
        let Some(c) = h.iter().position(|&x| x == b':') else {
            continue;
        };
        if h[..c].eq_ignore_ascii_case(b"content-disposition") {
            has_cd = true;
            let v = trim(&h[c + 1..]);
            if !v.to_ascii_lowercase().starts_with(b"form-data") {
                mp.invalid_part = true;
            }
            let after = trim(&v[9.min(v.len())..]);
            if !after.is_empty() && !after.starts_with(b";") {
                mp.missing_semicolon = true;
            }
            name = header_param(v, b"name", mp);
            filename = header_param(v, b"filename", mp).or_else(|| header_param(v, b"filename*", mp));
        }
    }
    if !has_cd {
        mp.error = Some("Multipart: Part missing Content-Disposition header".into());
        return;
    }
    if name.is_none() {
        mp.error = Some("Multipart: Content-Disposition header missing name field".into());
        return;
    }
    let name = name.unwrap_or_default();
    for h in headers {
        if mp.part_headers.len() < MAX_ARGS {
            mp.part_headers.push((name.clone(), h));
        }
    }
    match filename {
        Some(f) => {
            if mp.files.len() >= 100 {
                mp.file_limit_exceeded = true;
                return;
            }
            mp.files.push((name, f, data.len()));
        }
        None => {
            if mp.args.len() < MAX_ARGS {
                mp.args.push((name, data.to_vec()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_and_cookies() {
        let a = parse_urlencoded(b"a=1+2&b=%41&c&&d=%zz", b'&');
        assert_eq!(a.len(), 4);
        assert_eq!(a[0], (b"a".to_vec(), b"1 2".to_vec()));
        assert_eq!(a[1].1, b"A");
        assert_eq!(a[3].1, b"%zz");
        let c = parse_cookies(b"x=1; y=a=b;z");
        assert_eq!(c[1], (b"y".to_vec(), b"a=b".to_vec()));
        assert_eq!(c[2].0, b"z");
    }

    #[test]
    fn json_flattening() {
        let a = parse_json(br#"{"a":{"b":[1,"x"]},"c":null}"#, 10).unwrap();
        assert_eq!(a[0], (b"json.a.b.b".to_vec(), b"1".to_vec()));
        assert_eq!(a[1].1, b"x");
        assert!(parse_json(b"{", 10).is_err());
        assert_eq!(
            parse_json(br#"{"a":[[1]]}"#, 2).unwrap_err(),
            "JSON depth limit exceeded"
        );
        assert!(parse_json(br#"{"a":[[1]]}"#, 3).is_ok());
    }

    fn json_args(body: &str) -> Vec<(String, String)> {
        parse_json(body.as_bytes(), 10_000)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn json_values_as_modsecurity_reads_them() {
        // Numbers as written, words for booleans, null empty, a repeated key twice, in order.
        assert_eq!(
            json_args(r#" {"p":49.90,"e":-1.5E+3,"t":true,"f":false,"n":null,"q":"a","q":"b"} "#),
            pairs(&[
                ("json.p", "49.90"),
                ("json.e", "-1.5E+3"),
                ("json.t", "true"),
                ("json.f", "false"),
                ("json.n", ""),
                ("json.q", "a"),
                ("json.q", "b"),
            ])
        );
        // Arrays repeat their key, nested or top-level; empty containers give nothing.
        assert_eq!(
            json_args(r#"{"a":[[1,{"b":[]}],{"c":{}}, "x"],"d":{"e":[2]}}"#),
            pairs(&[("json.a.a.a", "1"), ("json.a.a", "x"), ("json.d.e.e", "2")])
        );
        assert_eq!(
            json_args(r#"[1,[2]]"#),
            pairs(&[("json.json", "1"), ("json.json.json", "2")])
        );
        assert_eq!(json_args(r#""top""#), pairs(&[("json", "top")]));
        // Keys with dots keep them; the array's key is what follows the last dot.
        assert_eq!(json_args(r#"{"a.b":[3]}"#), pairs(&[("json.a.b.b", "3")]));
    }

    #[test]
    fn json_escapes_are_decoded() {
        assert_eq!(
            json_args(r#"{"k\u0041":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u0000"}"#),
            pairs(&[("json.kA", "\"\\/\u{8}\u{c}\n\r\té😀\0")])
        );
        assert_eq!(json_args("{\"é\":\"ü\"}"), pairs(&[("json.é", "ü")]));
    }

    #[test]
    fn json_errors_are_reported_not_guessed() {
        for bad in [
            "",
            " ",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{1:2}",
            "{\"a\" 1}",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "1e+",
            "NaN",
            "tru",
            "nul",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"a\tb\"",
            "{} {}",
            "[1]]",
            "{\"a\":1}x",
            "\u{feff}{}",
        ] {
            let r = parse_json(bad.as_bytes(), 10_000);
            assert!(r.is_err(), "{bad:?} parsed as {r:?}");
            assert!(r.unwrap_err().starts_with("JSON parsing error: "), "{bad:?}");
        }
        assert_eq!(
            parse_json(b"{\"a\":\"\xff\"}", 10).unwrap_err(),
            "JSON parsing error: invalid UTF-8 at byte 6"
        );
        assert_eq!(
            parse_json(b"[1,", 10).unwrap_err(),
            "JSON parsing error: expected a value, found the end of the body"
        );
    }

    #[test]
    fn json_nesting_is_bounded_without_recursion() {
        // Far deeper than any thread's stack would allow a recursive reader. With the depth
        // limit out of the way, the bound on a name's length stops it (each level adds `.json`).
        let deep = "[".repeat(1_000_000) + &"]".repeat(1_000_000);
        assert!(
            parse_json(deep.as_bytes(), 2_000_000)
                .unwrap_err()
                .contains("argument name is longer than")
        );
        let ten_thousand = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse_json(ten_thousand.as_bytes(), 10_000).unwrap().is_empty());
        assert_eq!(
            parse_json(deep.as_bytes(), 10_000).unwrap_err(),
            "JSON depth limit exceeded"
        );
        assert!(parse_json(b"[]", 0).is_err());
        assert!(parse_json(b"1", 0).is_ok());
    }

    #[test]
    fn json_names_cannot_outgrow_the_body_without_bound() {
        // A long key over deep arrays: each bracket would add the key again to the name.
        let key = "k".repeat(1000);
        let deep = format!("{{\"{key}\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            parse_json(deep.as_bytes(), 10_000).unwrap_err(),
            format!("JSON parsing error: an argument name is longer than {MAX_JSON_NAME} bytes")
        );
        // Many values under one long (but allowed) name.
        let long = format!("{{\"{}\":[{}1]}}", "k".repeat(30_000), "1,".repeat(200));
        assert_eq!(
            parse_json(long.as_bytes(), 10).unwrap_err(),
            format!("JSON parsing error: argument names longer than {MAX_JSON_NAMES_TOTAL} bytes in all")
        );
        // Below both bounds all is read.
        let fine = format!("{{\"{}\":[{}1]}}", "k".repeat(1_000), "1,".repeat(200));
        assert_eq!(parse_json(fine.as_bytes(), 10).unwrap().len(), 201);
    }

    #[test]
    fn json_arguments_are_capped() {
        let many = format!("[{}1]", "1,".repeat(MAX_ARGS + 10));
        assert_eq!(parse_json(many.as_bytes(), 10).unwrap().len(), MAX_ARGS);
        // The rest is still read: an error after the cap is an error.
        let broken = format!("[{}1,]", "1,".repeat(MAX_ARGS + 10));
        assert!(parse_json(broken.as_bytes(), 10).is_err());
    }

    #[test]
    fn xml_checks() {
        let d = parse_xml(b"<?xml version=\"1.0\"?><a x='1'>hi<b/><![CDATA[<c>]]></a>").unwrap();
        assert_eq!(d.text, b"hi<c>");
        assert_eq!(d.attrs, vec![b"1".to_vec()]);
        assert!(parse_xml(b"<a><b></a>").is_err());
        assert!(parse_xml(b"<a>").is_err());
    }

    #[test]
    fn multipart_parts_and_flags() {
        let body = b"--xx\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--xx\r\nContent-Disposition: form-data; name=\"f\"; filename=\"t.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--xx--\r\n";
        let mp = parse_multipart(body, b"multipart/form-data; boundary=xx");
        assert_eq!(mp.args, vec![(b"a".to_vec(), b"value".to_vec())]);
        assert_eq!(mp.files, vec![(b"f".to_vec(), b"t.php".to_vec(), 5)]);
        assert!(!mp.strict_error(), "{mp:?}");
        let mp = parse_multipart(
            b"junk\r\n--xx\r\nContent-Disposition: form-data name=\"a\"\r\n\r\nv\r\n--xx--",
            b"multipart/form-data; boundary=\"xx\"",
        );
        assert!(mp.data_before && mp.boundary_quoted && mp.missing_semicolon);
    }
}

#[cfg(test)]
mod multipart_errors {
    use super::*;

    #[test]
    fn hard_errors_drop_the_parts_and_strict_findings_do_not() {
        let ct = b"multipart/form-data; boundary=b";
        // A header line without a colon is a parse error, as is a missing final boundary.
        let mp = parse_multipart(b"--b\r\nnot a header\r\n\r\nx\r\n--b--\r\n", ct);
        assert!(mp.error.is_some() && mp.args.is_empty());
        let mp = parse_multipart(
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n",
            ct,
        );
        assert_eq!(mp.error.as_deref(), Some("Multipart: Final boundary missing"));
        assert!(!mp.unmatched_boundary);
        // A delimiter only counts at the start of a line; `--bX` lines are unmatched boundaries.
        let mp = parse_multipart(
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx --b y\r\n--bX\r\n--b--\r\n",
            ct,
        );
        assert!(mp.error.is_none(), "{mp:?}");
        assert_eq!(mp.args, vec![(b"a".to_vec(), b"x --b y\r\n--bX".to_vec())]);
        assert!(mp.unmatched_boundary);
    }
}
