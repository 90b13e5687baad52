//! Transformation functions (`t:`), on bytes with ModSecurity v2 semantics: invalid encodings are
//! left as they are rather than rejected, because the rules look for exactly those evasions.

use crate::operator::ByteSet;
use sha1::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    Lowercase,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    UrlEncode,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    CmdLine,
    CompressWhitespace,
    RemoveWhitespace,
    RemoveNulls,
    ReplaceNulls,
    RemoveComments,
    RemoveCommentsChar,
    ReplaceComments,
    NormalizePath,
    NormalizePathWin,
    Base64Decode,
    Base64DecodeExt,
    Base64Encode,
    HexDecode,
    HexEncode,
    Sha1,
    Md5,
    Length,
    Trim,
    TrimLeft,
    TrimRight,
    Utf8ToUnicode,
    EscapeSeqDecode,
    SqlHexDecode,
}

impl Transform {
    /// `None` for `t:none` is handled by the caller; unknown names are `Err`.
    pub fn from_name(name: &str) -> Result<Option<Transform>, String> {
        use Transform::*;
        Ok(Some(match name.to_ascii_lowercase().as_str() {
            "none" => return Ok(None),
            "lowercase" => Lowercase,
            "uppercase" => Uppercase,
            "urldecode" => UrlDecode,
            "urldecodeuni" => UrlDecodeUni,
            "urlencode" => UrlEncode,
            "htmlentitydecode" => HtmlEntityDecode,
            "jsdecode" => JsDecode,
            "cssdecode" => CssDecode,
            "cmdline" => CmdLine,
            "compresswhitespace" => CompressWhitespace,
            "removewhitespace" => RemoveWhitespace,
            "removenulls" => RemoveNulls,
            "replacenulls" => ReplaceNulls,
            "removecomments" => RemoveComments,
            "removecommentschar" => RemoveCommentsChar,
            "replacecomments" => ReplaceComments,
            "normalizepath" | "normalisepath" => NormalizePath,
            "normalizepathwin" | "normalisepathwin" => NormalizePathWin,
            "base64decode" => Base64Decode,
            "base64decodeext" => Base64DecodeExt,
            "base64encode" => Base64Encode,
            "hexdecode" => HexDecode,
            "hexencode" => HexEncode,
            "sha1" => Sha1,
            "md5" => Md5,
            "length" => Length,
            "trim" => Trim,
            "trimleft" => TrimLeft,
            "trimright" => TrimRight,
            "utf8tounicode" => Utf8ToUnicode,
            "escapeseqdecode" => EscapeSeqDecode,
            "sqlhexdecode" => SqlHexDecode,
            other => return Err(format!("unknown transformation t:{other}")),
        }))
    }

    /// `None` when the transformation cannot change `input`, decided by a cheap scan, so that the
    /// common case (benign values without escapes) allocates nothing.
    #[cfg(test)]
    pub fn apply_if_changed(self, input: &[u8]) -> Option<Vec<u8>> {
        self.apply_if_changed_with(input, None)
    }

    /// `None` when `input` cannot change (see the fast checks above), else the result, with
    /// `SecUnicodeMapFile`'s map for `urlDecodeUni`.
    #[cfg(test)]
    pub fn apply_if_changed_with(self, input: &[u8], map: Option<&UnicodeMap>) -> Option<Vec<u8>> {
        self.apply_if_changed_classes(input, ByteClasses::of(input), map)
    }

    /// True when the transformation returns `input` as it is (`classes` must be
    /// `ByteClasses::of(input)`): decided from the kinds of bytes it holds, or a scan for the
    /// few patterns that matter, without building the output.
    pub fn leaves_unchanged(self, input: &[u8], classes: ByteClasses) -> bool {
        use Transform::*;
        if let Some(unchanged) = self.unchanged_by_classes(classes) {
            return unchanged;
        }
        match self {
            CompressWhitespace => memchr::memmem::find(input, b"  ").is_none(),
            ReplaceComments => memchr::memmem::find(input, b"/*").is_none(),
            Trim | TrimLeft | TrimRight => {
                let edge = |c: Option<&u8>| c.is_some_and(|&c| is_space(c) || c == 0);
                !edge(input.first()) && !edge(input.last())
            }
            NormalizePath | NormalizePathWin => path_is_normal(input),
            CmdLine => cmd_line_is_normal(input, false),
            _ => false,
        }
    }

    /// Whether the transformation leaves every input holding only the kinds of bytes in
    /// `classes` unchanged, when those kinds decide it; `None` when the bytes themselves do
    /// (`leaves_unchanged` reads them then). Used alone, for the classes of several values
    /// together, `Some(true)` holds for each of them.
    pub fn unchanged_by_classes(self, classes: ByteClasses) -> Option<bool> {
        use Transform::*;
        let none = |bits: u16| classes.0 & bits == 0;
        Some(match self {
            Lowercase => none(UPPER),
            Uppercase => none(LOWER),
            UrlDecode | UrlDecodeUni => none(PERCENT_PLUS),
            HtmlEntityDecode => none(AMPERSAND),
            JsDecode | CssDecode | EscapeSeqDecode => none(BACKSLASH),
            RemoveNulls | ReplaceNulls => none(NUL),
            RemoveWhitespace => none(SPACE | OTHER_SPACE),
            CompressWhitespace if !none(OTHER_SPACE) => false,
            CompressWhitespace if none(SPACE) => true,
            RemoveComments => none(SLASH | DASH | HASH | LESS_THAN),
            ReplaceComments if none(SLASH) => true,
            RemoveCommentsChar => none(SLASH | STAR | DASH | HASH | LESS_THAN),
            Utf8ToUnicode => none(NON_ASCII),
            Trim | TrimLeft | TrimRight if none(SPACE | OTHER_SPACE | NUL) => true,
            NormalizePath if none(SLASH | DOT) => true,
            NormalizePathWin if !none(BACKSLASH) => false,
            NormalizePathWin if none(SLASH | DOT) => true,
            CompressWhitespace | ReplaceComments | Trim | TrimLeft | TrimRight | NormalizePath
            | NormalizePathWin | CmdLine => return None,
            _ => false,
        })
    }

    /// As `apply_if_changed_with`, with the bytes of `input` already classified (`classes` must
    /// be `ByteClasses::of(input)`): a chain of transformations scans a value once, not once per
    /// transformation.
    pub fn apply_if_changed_classes(
        self,
        input: &[u8],
        classes: ByteClasses,
        map: Option<&UnicodeMap>,
    ) -> Option<Vec<u8>> {
        if self.leaves_unchanged(input, classes) {
            None
        } else if let (Transform::UrlDecodeUni, Some(map)) = (self, map) {
            Some(url_decode_mapped(input, true, Some(map)))
        } else {
            Some(self.apply(input))
        }
    }

    pub fn apply(self, input: &[u8]) -> Vec<u8> {
        use Transform::*;
        match self {
            Lowercase => input.to_ascii_lowercase(),
            Uppercase => input.to_ascii_uppercase(),
            UrlDecode => url_decode(input, false),
            UrlDecodeUni => url_decode(input, true),
            UrlEncode => url_encode(input),
            HtmlEntityDecode => html_entity_decode(input),
            JsDecode => js_decode(input),
            CssDecode => css_decode(input),
            CmdLine => cmd_line(input),
            CompressWhitespace => compress_whitespace(input),
            RemoveWhitespace => input
                .iter()
                .copied()
                .filter(|&c| !is_space(c) && c != 0xa0)
                .collect(),
            RemoveNulls => input.iter().copied().filter(|&c| c != 0).collect(),
            ReplaceNulls => input.iter().map(|&c| if c == 0 { b' ' } else { c }).collect(),
            RemoveComments => comments(input, false),
            ReplaceComments => comments(input, true),
            RemoveCommentsChar => remove_comment_chars(input),
            NormalizePath => normalize_path(input, false),
            NormalizePathWin => normalize_path(input, true),
            Base64Decode => base64_decode(input, false),
            Base64DecodeExt => base64_decode(input, true),
            Base64Encode => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .encode(input)
                    .into_bytes()
            }
            HexDecode => hex_decode(input),
            HexEncode => input
                .iter()
                .flat_map(|b| format!("{b:02x}").into_bytes())
                .collect(),
            Sha1 => sha1::Sha1::digest(input).to_vec(),
            Md5 => md5::Md5::digest(input).to_vec(),
            Length => input.len().to_string().into_bytes(),
            Trim => trim_right(trim_left(input)).to_vec(),
            TrimLeft => trim_left(input).to_vec(),
            TrimRight => trim_right(input).to_vec(),
            Utf8ToUnicode => utf8_to_unicode(input),
            EscapeSeqDecode => escape_seq_decode(input),
            SqlHexDecode => sql_hex_decode(input),
        }
    }
    /// A superset of the bytes `apply(input)` can hold, given `bytes`, the bytes `input` may
    /// hold: a rule skips a variable whose values, transformed, cannot hold what its pattern
    /// needs (see `Transaction::target_may_match`), so an image must never miss a byte the
    /// transformation can produce; "every byte" is always a correct answer. Decoders produce any
    /// byte once their escape character is present; otherwise they copy their input.
    pub fn byte_image(self, bytes: ByteSet) -> ByteSet {
        use Transform::*;
        // Whitespace as `is_space` sees it, and with 0xA0 (which some transformations also treat
        // as a space).
        const SPACES: ByteSet = ByteSet::of_const(b" \t\n\r\x0b\x0c");
        const SPACES_NBSP: ByteSet = SPACES.union(&ByteSet::of_const(b"\xa0"));
        const SPACE: ByteSet = ByteSet::of_const(b" ");
        const DIGITS: ByteSet = ByteSet::range(b'0', b'9');
        const HEX_LOWER: ByteSet = DIGITS.union(&ByteSet::range(b'a', b'f'));
        const BASE64: ByteSet = ByteSet::range(b'A', b'Z')
            .union(&ByteSet::range(b'a', b'z'))
            .union(&DIGITS)
            .union(&ByteSet::of_const(b"+/="));
        const URL_ENCODED: ByteSet = ByteSet::range(b'A', b'Z')
            .union(&ByteSet::range(b'a', b'z'))
            .union(&DIGITS)
            .union(&ByteSet::of_const(b"-_.*+%"));
        const CMD_DELETED: ByteSet = ByteSet::of_const(b"\"'\\^");
        const CMD_SEPARATORS: ByteSet = SPACES.union(&ByteSet::of_const(b",;"));
        const UTF8_ESCAPE: ByteSet = HEX_LOWER.union(&ByteSet::of_const(b"%u"));
        let has = |b: u8| bytes.contains(b);
        // Adds ' ' when any of `from` may be present (they become spaces).
        let space_if = |from: &ByteSet| {
            if bytes.intersects(from) {
                SPACE
            } else {
                ByteSet::EMPTY
            }
        };
        let any_if = |present: bool| if present { ByteSet::full() } else { bytes };
        match self {
            Lowercase => bytes.ascii_case_folded(true),
            Uppercase => bytes.ascii_case_folded(false),
            // `%XX` (and `%uXXXX`, mapped or not) can be any byte; without `%`, only `+` changes.
            UrlDecode | UrlDecodeUni => {
                let plus = ByteSet::of_const(b"+");
                if has(b'%') {
                    ByteSet::full()
                } else {
                    bytes.minus(&plus).union(&space_if(&plus))
                }
            }
            UrlEncode => URL_ENCODED,
            HtmlEntityDecode => any_if(has(b'&')),
            // A trailing backslash is dropped by cssDecode, which only removes a byte.
            JsDecode | CssDecode | EscapeSeqDecode => any_if(has(b'\\')),
            SqlHexDecode => any_if(has(b'0') && (has(b'x') || has(b'X'))),
            Base64Decode | Base64DecodeExt | HexDecode | Sha1 | Md5 => ByteSet::full(),
            Base64Encode => BASE64,
            HexEncode => HEX_LOWER,
            Length => DIGITS,
            Utf8ToUnicode => {
                // Only a lead byte (0xC0 and up) starts a sequence that becomes `%uXXXX`.
                let lead = ByteSet::range(0xc0, 0xff);
                if bytes.intersects(&lead) {
                    bytes.union(&UTF8_ESCAPE)
                } else {
                    bytes
                }
            }
            CmdLine => bytes
                .minus(&CMD_DELETED)
                .minus(&CMD_SEPARATORS)
                .ascii_case_folded(true)
                .union(&space_if(&CMD_SEPARATORS)),
            CompressWhitespace => bytes.minus(&SPACES_NBSP).union(&space_if(&SPACES_NBSP)),
            RemoveWhitespace => bytes.minus(&SPACES_NBSP),
            RemoveNulls => bytes.minus(&ByteSet::of_const(b"\0")),
            ReplaceNulls => {
                let nul = ByteSet::of_const(b"\0");
                bytes.minus(&nul).union(&space_if(&nul))
            }
            // A C comment becomes one space; everything else kept is copied.
            ReplaceComments => bytes.union(&space_if(&ByteSet::of_const(b"/"))),
            // Only remove bytes; the segments are joined with `/`, which a path with several
            // segments already holds.
            RemoveComments | RemoveCommentsChar | Trim | TrimLeft | TrimRight | NormalizePath => bytes,
            NormalizePathWin => {
                let backslash = ByteSet::of_const(b"\\");
                let slash = if has(b'\\') {
                    ByteSet::of_const(b"/")
                } else {
                    ByteSet::EMPTY
                };
                bytes.minus(&backslash).union(&slash)
            }
        }
    }
}

/// True when `chain` returns `input` changed at most in the case of ASCII letters (`classes`
/// must be `ByteClasses::of(input)`), without running it. Sound because a case change alters no
/// byte class the other transformations' checks read (only `lowercase` and `uppercase` read the
/// letters' case, and they are passed over here), and `cmdLine` on an input it would otherwise
/// leave as it is only lower-cases it.
pub fn chain_changes_only_case(chain: &[Transform], input: &[u8], classes: ByteClasses) -> bool {
    chain.iter().all(|&t| match t {
        Transform::Lowercase | Transform::Uppercase => true,
        Transform::CmdLine => cmd_line_is_normal(input, true),
        t => t.leaves_unchanged(input, classes),
    })
}

/// As `chain_changes_only_case`, from the classes of the bytes alone (of one value, or of
/// several together: then it holds for each of them). False when the bytes would have to be
/// read to tell.
pub fn chain_changes_only_case_by_classes(chain: &[Transform], classes: ByteClasses) -> bool {
    chain.iter().all(|&t| match t {
        Transform::Lowercase | Transform::Uppercase => true,
        t => t.unchanged_by_classes(classes) == Some(true),
    })
}

/// Which kinds of bytes a value holds, as far as the transformations' no-op checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteClasses(u16);

const UPPER: u16 = 1;
const LOWER: u16 = 1 << 1;
const PERCENT_PLUS: u16 = 1 << 2;
const AMPERSAND: u16 = 1 << 3;
const BACKSLASH: u16 = 1 << 4;
const NUL: u16 = 1 << 5;
/// `' '`.
const SPACE: u16 = 1 << 6;
/// Whitespace other than `' '` (see `is_space`), and 0xA0.
const OTHER_SPACE: u16 = 1 << 7;
const SLASH: u16 = 1 << 8;
const STAR: u16 = 1 << 9;
const DASH: u16 = 1 << 10;
const HASH: u16 = 1 << 11;
const LESS_THAN: u16 = 1 << 12;
const NON_ASCII: u16 = 1 << 13;
const DOT: u16 = 1 << 14;

const fn byte_class(c: u8) -> u16 {
    let mut bits = match c {
        b'A'..=b'Z' => UPPER,
        b'a'..=b'z' => LOWER,
        b'%' | b'+' => PERCENT_PLUS,
        b'&' => AMPERSAND,
        b'\\' => BACKSLASH,
        0 => NUL,
        b' ' => SPACE,
        b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0 => OTHER_SPACE,
        b'/' => SLASH,
        b'*' => STAR,
        b'-' => DASH,
        b'#' => HASH,
        b'<' => LESS_THAN,
        b'.' => DOT,
        _ => 0,
    };
    if c >= 0x80 {
        bits |= NON_ASCII;
    }
    bits
}

static BYTE_CLASSES: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = byte_class(i as u8);
        i += 1;
    }
    table
};

impl ByteClasses {
    pub const NONE: ByteClasses = ByteClasses(0);

    pub fn union(self, other: ByteClasses) -> ByteClasses {
        ByteClasses(self.0 | other.0)
    }

    pub fn of(input: &[u8]) -> ByteClasses {
        ByteClasses(input.iter().fold(0, |acc, &c| acc | BYTE_CLASSES[c as usize]))
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: u8, b: u8) -> Option<u8> {
    Some(hexval(a)? << 4 | hexval(b)?)
}

/// A code point above 0xFF reduced to one byte as ModSecurity does without a unicode map:
/// full-width ASCII (U+FF01..U+FF5E) maps to its ASCII twin, anything else keeps its low byte.
fn unicode_to_byte(code: u32) -> u8 {
    if (0xff01..=0xff5e).contains(&code) {
        (code - 0xfee0) as u8
    } else {
        (code & 0xff) as u8
    }
}

/// `SecUnicodeMapFile`: code point -> byte, for `%uHHHH` in `urlDecodeUni`.
pub type UnicodeMap = std::collections::HashMap<u32, u8>;

/// Reads the section of a ModSecurity `unicode.mapping` file for `code_page`: a line starting with
/// the code page number, then a line of `hhhh:hh` pairs.
pub fn parse_unicode_map(text: &str, code_page: &str) -> Result<UnicodeMap, String> {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.split_whitespace().next() == Some(code_page) {
            let pairs = lines.next().unwrap_or("");
            let mut map = UnicodeMap::new();
            for p in pairs.split_whitespace() {
                let (cp, b) = p.split_once(':').ok_or_else(|| format!("bad mapping {p:?}"))?;
                let cp = u32::from_str_radix(cp, 16).map_err(|_| format!("bad mapping {p:?}"))?;
                let b = u8::from_str_radix(b, 16).map_err(|_| format!("bad mapping {p:?}"))?;
                map.insert(cp, b);
            }
            return Ok(map);
        }
    }
    Err(format!("code page {code_page} not found"))
}

pub fn url_decode(input: &[u8], uni: bool) -> Vec<u8> {
    url_decode_mapped(input, uni, None)
}

fn url_decode_mapped(input: &[u8], uni: bool, map: Option<&UnicodeMap>) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'%' {
            if uni && i + 5 < input.len() && (input[i + 1] | 0x20) == b'u' {
                let h = &input[i + 2..i + 6];
                if h.iter().all(|c| c.is_ascii_hexdigit()) {
                    let code = h
                        .iter()
                        .fold(0u32, |a, &c| a * 16 + hexval(c).unwrap_or(0) as u32);
                    out.push(
                        map.and_then(|m| m.get(&code).copied())
                            .unwrap_or_else(|| unicode_to_byte(code)),
                    );
                    i += 6;
                    continue;
                }
            }
            if i + 2 < input.len()
                && let Some(v) = hex2(input[i + 1], input[i + 2])
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(c);
        } else if c == b'+' {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

fn url_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in input {
        if c.is_ascii_alphanumeric() || b"-_.*".contains(&c) {
            out.push(c);
        } else if c == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(format!("%{c:02x}").as_bytes());
        }
    }
    out
}

fn html_entity_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'&' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let rest = &input[i + 1..];
        // Numeric: &#DDD; or &#xHH; with the semicolon optional.
        if rest.first() == Some(&b'#') {
            let hex = matches!(rest.get(1), Some(b'x') | Some(b'X'));
            let st = if hex { 2 } else { 1 };
            let mut j = st;
            let mut code: u32 = 0;
            while j < rest.len() {
                let d = if hex {
                    hexval(rest[j]).map(u32::from)
                } else {
                    rest[j].is_ascii_digit().then(|| u32::from(rest[j] - b'0'))
                };
                match d {
                    Some(d) => code = code.saturating_mul(if hex { 16 } else { 10 }).saturating_add(d),
                    None => break,
                }
                j += 1;
            }
            if j > st {
                out.push(unicode_to_byte(code));
                if rest.get(j) == Some(&b';') {
                    j += 1;
                }
                i += 1 + j;
                continue;
            }
        } else {
            let mut j = 0;
            while j < rest.len() && j < 8 && rest[j].is_ascii_alphanumeric() {
                j += 1;
            }
            // The five names ModSecurity 2 knows; others stay as written.
            let name = rest[..j].to_ascii_lowercase();
            let v = match name.as_slice() {
                b"quot" => Some(b'"'),
                b"amp" => Some(b'&'),
                b"lt" => Some(b'<'),
                b"gt" => Some(b'>'),
                b"nbsp" => Some(0xa0),
                _ => None,
            };
            if let Some(v) = v {
                out.push(v);
                if rest.get(j) == Some(&b';') {
                    j += 1;
                }
                i += 1 + j;
                continue;
            }
        }
        out.push(b'&');
        i += 1;
    }
    out
}

/// A `\xHH` or `\NNN` (up to three octal digits) escape at `input[i]` (the backslash), shared by
/// jsDecode and escapeSeqDecode: pushes the byte and returns the index after the escape, or `None`
/// when there is no such escape there.
fn hex_or_octal_escape(input: &[u8], i: usize, out: &mut Vec<u8>) -> Option<usize> {
    let n = *input.get(i + 1)?;
    if (n == b'x' || n == b'X') && i + 3 < input.len() {
        let byte = hex2(input[i + 2], input[i + 3])?;
        out.push(byte);
        return Some(i + 4);
    }
    if (b'0'..=b'7').contains(&n) {
        let mut j = i + 1;
        let mut v: u32 = 0;
        while j < input.len() && j < i + 4 && (b'0'..=b'7').contains(&input[j]) {
            v = v * 8 + u32::from(input[j] - b'0');
            j += 1;
        }
        out.push((v & 0xff) as u8);
        return Some(j);
    }
    None
}

fn js_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let n = input[i + 1];
        if (n == b'u' || n == b'U')
            && i + 5 < input.len()
            && input[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
        {
            let code = input[i + 2..i + 6]
                .iter()
                .fold(0u32, |a, &c| a * 16 + hexval(c).unwrap_or(0) as u32);
            out.push(unicode_to_byte(code));
            i += 6;
        } else if let Some(next) = hex_or_octal_escape(input, i, &mut out) {
            i = next;
        } else {
            out.push(match n {
                b'a' => 7,
                b'b' => 8,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 0x0b,
                other => other,
            });
            i += 2;
        }
    }
    out
}

fn css_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        if i + 1 >= input.len() {
            // A trailing backslash is dropped.
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < input.len() && j < i + 7 && input[j].is_ascii_hexdigit() {
            j += 1;
        }
        let digits = j - i - 1;
        if digits > 0 {
            let code = input[i + 1..j]
                .iter()
                .fold(0u32, |a, &c| a.wrapping_mul(16) + hexval(c).unwrap_or(0) as u32);
            out.push(unicode_to_byte(code));
            // One whitespace character after a hex escape belongs to the escape.
            if j < input.len() && is_space(input[j]) {
                j += 1;
            }
            i = j;
        } else if input[i + 1] == b'\n' {
            i += 2;
        } else {
            out.push(input[i + 1]);
            i += 2;
        }
    }
    out
}

fn cmd_line(input: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(input.len());
    let mut space = false;
    for &c in input {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' | b';' => space = true,
            b'/' | b'(' => {
                // Spaces before a slash or an opening parenthesis are deleted.
                space = false;
                out.push(c);
            }
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(c.to_ascii_lowercase());
            }
        }
    }
    if space {
        out.push(b' ');
    }
    out
}

fn compress_whitespace(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut in_space = false;
    for &c in input {
        if is_space(c) || c == 0xa0 {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// `removeComments` / `replaceComments`: C (`/* */`), HTML (`<!-- -->`), SQL (`--`) and shell (`#`)
/// comments. `replaceComments` only handles C comments, replacing each by one space.
fn comments(input: &[u8], replace: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(b"/*") {
            match memchr::memmem::find(&input[i + 2..], b"*/") {
                Some(p) => i = i + 2 + p + 2,
                None => i = input.len(),
            }
            out.push(b' ');
            if !replace {
                out.pop();
            }
            continue;
        }
        if !replace {
            if input[i..].starts_with(b"<!--") {
                match memchr::memmem::find(&input[i + 4..], b"-->") {
                    Some(p) => i = i + 4 + p + 3,
                    None => i = input.len(),
                }
                continue;
            }
            if input[i..].starts_with(b"--") || input[i] == b'#' {
                // To the end of the line.
                while i < input.len() && input[i] != b'\n' && input[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn remove_comment_chars(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let r = &input[i..];
        if r.starts_with(b"/*") || r.starts_with(b"*/") || r.starts_with(b"--") {
            i += 2;
        } else if r.starts_with(b"<!--") {
            i += 4;
        } else if r.starts_with(b"-->") {
            i += 3;
        } else if r[0] == b'#' {
            i += 1;
        } else {
            out.push(r[0]);
            i += 1;
        }
    }
    out
}

/// True when `normalize_path` would return the input unchanged: no empty, `.` or `..` segment
/// (most request paths), so no copy is made.
fn path_is_normal(input: &[u8]) -> bool {
    // Empty segments other than a leading or trailing `/` come only from `//`.
    memchr::memmem::find(input, b"//").is_none()
        && input.split(|&c| c == b'/').all(|seg| seg != b"." && seg != b"..")
}

/// True when `cmd_line` would return the input unchanged (with `any_case`, unchanged but for
/// lower-casing it): lower case, none of the characters it deletes, no separator other than
/// single spaces between words.
fn cmd_line_is_normal(input: &[u8], any_case: bool) -> bool {
    input.iter().enumerate().all(|(i, &c)| match c {
        b'"' | b'\'' | b'\\' | b'^' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' | b';' => false,
        b' ' => i > 0 && input.get(i + 1).is_some_and(|n| !matches!(n, b' ' | b'/' | b'(')),
        c => any_case || !c.is_ascii_uppercase(),
    })
}

fn normalize_path(input: &[u8], win: bool) -> Vec<u8> {
    let src: Vec<u8> = if win {
        input.iter().map(|&c| if c == b'\\' { b'/' } else { c }).collect()
    } else {
        input.to_vec()
    };
    let absolute = src.first() == Some(&b'/');
    let trailing = src.last() == Some(&b'/') || src.ends_with(b"/.") || src.ends_with(b"/..");
    let mut segs: Vec<&[u8]> = Vec::new();
    let mut dotdots_kept = 0usize;
    for seg in src.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segs.len() > dotdots_kept {
                    segs.pop();
                } else if !absolute {
                    segs.push(seg);
                    dotdots_kept += 1;
                }
            }
            s => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(src.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&segs.join(&b'/'));
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out
}

fn base64_val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Lenient decoding: `base64Decode` stops at the first invalid character (as ModSecurity does),
/// `base64DecodeExt` skips invalid characters.
fn base64_decode(input: &[u8], skip_invalid: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in input {
        if c == b'=' {
            break;
        }
        match base64_val(c) {
            Some(v) => {
                acc = (acc << 6) | u32::from(v);
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    out.push((acc >> bits) as u8);
                    acc &= (1 << bits) - 1;
                }
            }
            None if skip_invalid => {}
            None => break,
        }
    }
    out
}

fn hex_decode(input: &[u8]) -> Vec<u8> {
    input
        .chunks(2)
        .filter_map(|p| if p.len() == 2 { hex2(p[0], p[1]) } else { None })
        .collect()
}

fn sql_hex_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'0' && matches!(input.get(i + 1), Some(b'x') | Some(b'X')) {
            let mut j = i + 2;
            while j + 1 < input.len() && hex2(input[j], input[j + 1]).is_some() {
                out.push(hex2(input[j], input[j + 1]).unwrap_or(0));
                j += 2;
            }
            if j > i + 2 {
                i = j;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn trim_left(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| is_space(c) || c == 0).count();
    &s[n..]
}

fn trim_right(s: &[u8]) -> &[u8] {
    let n = s.iter().rev().take_while(|&&c| is_space(c) || c == 0).count();
    &s[..s.len() - n]
}

fn utf8_to_unicode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        let len = match c {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        if len > 1
            && i + len <= input.len()
            && let Ok(s) = std::str::from_utf8(&input[i..i + len])
            && let Some(ch) = s.chars().next()
        {
            out.extend_from_slice(format!("%u{:04x}", ch as u32).as_bytes());
            i += len;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn escape_seq_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let n = input[i + 1];
        let simple = match n {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'?' | b'\'' | b'"' => Some(n),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            i += 2;
        } else if let Some(next) = hex_or_octal_escape(input, i, &mut out) {
            i = next;
        } else {
            out.push(b'\\');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Transform::*;

    fn t(tr: super::Transform, s: &str) -> String {
        String::from_utf8_lossy(&tr.apply(s.as_bytes())).into_owned()
    }

    #[test]
    fn fast_path_agrees_with_the_transformation() {
        let samples: &[&[u8]] = &[
            b"",
            b"plain text",
            b"Mixed Case",
            b"a%20b",
            b"a+b",
            b"&lt;",
            b"\\x41",
            b"a\0b",
            b" pad ",
            b"a  b",
            b"a\tb",
            b"/*c*/",
            b"--x",
            b"caf\xc3\xa9",
        ];
        let all = [
            Lowercase,
            Uppercase,
            UrlDecode,
            UrlDecodeUni,
            HtmlEntityDecode,
            JsDecode,
            CssDecode,
            EscapeSeqDecode,
            RemoveNulls,
            ReplaceNulls,
            RemoveWhitespace,
            CompressWhitespace,
            RemoveComments,
            ReplaceComments,
            RemoveCommentsChar,
            Utf8ToUnicode,
            Trim,
            TrimLeft,
            TrimRight,
            CmdLine,
            NormalizePath,
            NormalizePathWin,
            Length,
        ];
        // Every string of up to five characters over an alphabet that exercises the path and
        // command-line fast paths (separators, dots, case, quotes, parentheses), and of up to three
        // over one with a byte of every class the no-op checks tell apart.
        let strings = crate::operator::strings_up_to;
        let mut generated = strings(b"/.a A(\\;\"", 5);
        generated.extend(strings(b"aZ %+&\\\0\t\x0b/*-#<.\xa0\xc3", 3));
        let samples = samples.iter().copied().chain(generated.iter().map(Vec::as_slice));
        for t in all {
            for s in samples.clone() {
                let full = t.apply(s);
                match t.apply_if_changed(s) {
                    Some(v) => assert_eq!(v, full, "{t:?} on {s:?}"),
                    None => assert_eq!(full, s.to_vec(), "{t:?} claimed {s:?} unchanged"),
                }
            }
        }
    }

    /// Every transformation, in declaration order; `listed_at` does not compile when one is
    /// added without being listed.
    const ALL: [super::Transform; 32] = [
        Lowercase,
        Uppercase,
        UrlDecode,
        UrlDecodeUni,
        UrlEncode,
        HtmlEntityDecode,
        JsDecode,
        CssDecode,
        CmdLine,
        CompressWhitespace,
        RemoveWhitespace,
        RemoveNulls,
        ReplaceNulls,
        RemoveComments,
        RemoveCommentsChar,
        ReplaceComments,
        NormalizePath,
        NormalizePathWin,
        Base64Decode,
        Base64DecodeExt,
        Base64Encode,
        HexDecode,
        HexEncode,
        Sha1,
        Md5,
        Length,
        Trim,
        TrimLeft,
        TrimRight,
        Utf8ToUnicode,
        EscapeSeqDecode,
        SqlHexDecode,
    ];

    fn listed_at(t: super::Transform) -> usize {
        match t {
            Lowercase => 0,
            Uppercase => 1,
            UrlDecode => 2,
            UrlDecodeUni => 3,
            UrlEncode => 4,
            HtmlEntityDecode => 5,
            JsDecode => 6,
            CssDecode => 7,
            CmdLine => 8,
            CompressWhitespace => 9,
            RemoveWhitespace => 10,
            RemoveNulls => 11,
            ReplaceNulls => 12,
            RemoveComments => 13,
            RemoveCommentsChar => 14,
            ReplaceComments => 15,
            NormalizePath => 16,
            NormalizePathWin => 17,
            Base64Decode => 18,
            Base64DecodeExt => 19,
            Base64Encode => 20,
            HexDecode => 21,
            HexEncode => 22,
            Sha1 => 23,
            Md5 => 24,
            Length => 25,
            Trim => 26,
            TrimLeft => 27,
            TrimRight => 28,
            Utf8ToUnicode => 29,
            EscapeSeqDecode => 30,
            SqlHexDecode => 31,
        }
    }

    /// The byte image must hold every byte a transformation can produce: a rule skips a variable
    /// on its strength, so a missing byte would be a missed attack. Checked on every string of
    /// up to three bytes over an alphabet with each transformation's escape and separator bytes,
    /// and on pseudo-random values, with the image taken of the value's bytes alone and of a
    /// superset of them (the engine takes it of all the values of a variable).
    #[test]
    fn byte_image_holds_every_output_byte() {
        use crate::operator::ByteSet;
        for (i, t) in ALL.iter().enumerate() {
            assert_eq!(listed_at(*t), i);
        }
        let map: super::UnicodeMap = [(0x2019, b'\''), (0x0041, 0xfe)].into_iter().collect();
        let check = |v: &[u8], extra: ByteSet| {
            let bytes = ByteSet::of(v).union(&extra);
            for t in ALL {
                let image = t.byte_image(bytes);
                let outputs = [Some(t.apply(v)), t.apply_if_changed_with(v, Some(&map))];
                for out in outputs.into_iter().flatten() {
                    assert!(
                        ByteSet::of(&out).is_subset(&image),
                        "{t:?} on {v:?} gave {out:?}, outside its byte image"
                    );
                }
            }
        };
        let alphabet = b"aZx0f9%u+&#;\\ \t\0/*-.<!\xa0\xc3\xa9'\"^,(=";
        let mut strings = crate::operator::strings_up_to(alphabet, 3);
        // Complete escapes longer than three bytes.
        for s in [
            &b"%u2019%uff01%41"[..],
            b"&#x41;&#66&quot;&nbsp;",
            b"\\u0041\\x41\\101\\n",
            b"\\61 b",
            b"0x41424344",
            b"YWJj/+==",
            b"caf\xc3\xa9 \xf0\x9f\x98\x80",
            b"/a/./b/../../c//d/",
            b"a\\..\\..\\b",
        ] {
            strings.push(s.to_vec());
        }
        for s in &strings {
            check(s, ByteSet::EMPTY);
        }
        // xorshift64: deterministic, no dependency. Values mix the alphabet (so that escapes
        // are complete often enough to decode) with arbitrary bytes.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 3 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let mut extra = ByteSet::EMPTY;
            if next() % 2 == 0 {
                extra.insert((next() >> 8) as u8);
            }
            check(&v, extra);
        }
    }

    #[test]
    fn unicode_map_file() {
        let text = "# comment\n1252 (ANSI - Latin I)\n2019:27\n20127 (US-ASCII)\n00a0:20 2019:27 ff01:21\n";
        let map = super::parse_unicode_map(text, "20127").unwrap();
        assert_eq!(map.len(), 3);
        let out = UrlDecodeUni
            .apply_if_changed_with(b"%u2019%u2018%uff01", Some(&map))
            .unwrap();
        assert_eq!(out, b"'\x18!");
        assert!(super::parse_unicode_map(text, "437").is_err());
    }

    #[test]
    fn decoders() {
        assert_eq!(t(UrlDecodeUni, "a%20b+%u0041%uff0e%zz%"), "a b A.%zz%");
        assert_eq!(t(HtmlEntityDecode, "&lt;&#x41;&#66&quot;&bogus;"), "<AB\"&bogus;");
        assert_eq!(t(JsDecode, "\\x41\\u0042\\n\\101"), "AB\nA");
        assert_eq!(t(CssDecode, "\\61 b\\\nc\\z"), "abcz");
        assert_eq!(t(CmdLine, "C:\\WINDOWS /c \"dir\",x;y"), "c:windows/c dir x y");
        assert_eq!(t(NormalizePath, "/a/./b/../../c//d/"), "/c/d/");
        assert_eq!(t(NormalizePathWin, "a\\..\\..\\b"), "../b");
        assert_eq!(t(Base64Decode, "YWJj"), "abc");
        assert_eq!(t(ReplaceComments, "a/*x*/b/*c"), "a b ");
        assert_eq!(t(RemoveComments, "a/*x*/b-- c"), "ab");
        assert_eq!(t(CompressWhitespace, "a \t\n b"), "a b");
        assert_eq!(t(Utf8ToUnicode, "aé"), "a%u00e9");
        assert_eq!(t(Length, "abc"), "3");
        assert_eq!(t(EscapeSeqDecode, "\\x41\\n\\q"), "A\n\\q");
    }
}
