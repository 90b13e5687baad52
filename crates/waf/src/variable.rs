//! Rule targets (`ARGS|!ARGS:foo|&TX:bar|REQUEST_COOKIES:/re/`): parsing and the table of variables
//! this engine knows. Unknown variables are load errors rather than silent no-matches, so that a rule
//! set that needs something missing is noticed at load time.

use regex::bytes::Regex;
use std::sync::Arc;

macro_rules! vars {
    ($($v:ident = $s:literal, $coll:literal;)*) => {
        /// A SecLang variable. `collection` ones have keys (ARGS:foo), the rest are scalars.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, clippy::enum_variant_names)]
        pub enum Var { $($v,)* }
        impl Var {
            pub fn from_name(name: &str) -> Option<Var> {
                let up = name.to_ascii_uppercase();
                match up.as_str() { $($s => Some(Var::$v),)* _ => None }
            }
            pub fn name(self) -> &'static str { match self { $(Var::$v => $s,)* } }
            /// Whether the variable holds several named values (and so takes a `:key`).
            pub fn is_collection(self) -> bool { match self { $(Var::$v => $coll,)* } }
            /// TX, IP, GLOBAL, SESSION, USER, RESOURCE, ENV: collections of the transaction's
            /// store (set by `setvar`/`setenv`), with lower-case keys.
            pub fn store_index(self) -> Option<usize> {
                Some(match self {
                    Var::Tx => 0,
                    Var::Ip => 1,
                    Var::Global => 2,
                    Var::Session => 3,
                    Var::User => 4,
                    Var::Resource => 5,
                    Var::Env => 6,
                    _ => return None,
                })
            }
            pub fn is_stored_collection(self) -> bool { self.store_index().is_some() }
        }
    };
}

vars! {
    Args = "ARGS", true;
    ArgsGet = "ARGS_GET", true;
    ArgsPost = "ARGS_POST", true;
    ArgsNames = "ARGS_NAMES", true;
    ArgsGetNames = "ARGS_GET_NAMES", true;
    ArgsPostNames = "ARGS_POST_NAMES", true;
    ArgsCombinedSize = "ARGS_COMBINED_SIZE", false;
    RequestHeaders = "REQUEST_HEADERS", true;
    RequestHeadersNames = "REQUEST_HEADERS_NAMES", true;
    RequestCookies = "REQUEST_COOKIES", true;
    RequestCookiesNames = "REQUEST_COOKIES_NAMES", true;
    RequestUri = "REQUEST_URI", false;
    RequestUriRaw = "REQUEST_URI_RAW", false;
    RequestFilename = "REQUEST_FILENAME", false;
    RequestBasename = "REQUEST_BASENAME", false;
    RequestLine = "REQUEST_LINE", false;
    RequestMethod = "REQUEST_METHOD", false;
    RequestProtocol = "REQUEST_PROTOCOL", false;
    QueryString = "QUERY_STRING", false;
    RequestBody = "REQUEST_BODY", false;
    RequestBodyLength = "REQUEST_BODY_LENGTH", false;
    Files = "FILES", true;
    FilesNames = "FILES_NAMES", true;
    FilesSizes = "FILES_SIZES", true;
    FilesCombinedSize = "FILES_COMBINED_SIZE", false;
    FilesTmpContent = "FILES_TMP_CONTENT", true;
    MultipartPartHeaders = "MULTIPART_PART_HEADERS", true;
    MultipartFilename = "MULTIPART_FILENAME", false;
    MultipartName = "MULTIPART_NAME", false;
    MultipartStrictError = "MULTIPART_STRICT_ERROR", false;
    MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY", false;
    MultipartBoundaryQuoted = "MULTIPART_BOUNDARY_QUOTED", false;
    MultipartBoundaryWhitespace = "MULTIPART_BOUNDARY_WHITESPACE", false;
    MultipartDataBefore = "MULTIPART_DATA_BEFORE", false;
    MultipartDataAfter = "MULTIPART_DATA_AFTER", false;
    MultipartHeaderFolding = "MULTIPART_HEADER_FOLDING", false;
    MultipartLfLine = "MULTIPART_LF_LINE", false;
    MultipartCrlfLfLines = "MULTIPART_CRLF_LF_LINES", false;
    MultipartMissingSemicolon = "MULTIPART_MISSING_SEMICOLON", false;
    MultipartInvalidQuoting = "MULTIPART_INVALID_QUOTING", false;
    MultipartInvalidPart = "MULTIPART_INVALID_PART", false;
    MultipartInvalidHeaderFolding = "MULTIPART_INVALID_HEADER_FOLDING", false;
    MultipartFileLimitExceeded = "MULTIPART_FILE_LIMIT_EXCEEDED", false;
    ReqbodyError = "REQBODY_ERROR", false;
    ReqbodyErrorMsg = "REQBODY_ERROR_MSG", false;
    ReqbodyProcessor = "REQBODY_PROCESSOR", false;
    ReqbodyProcessorError = "REQBODY_PROCESSOR_ERROR", false;
    InboundDataError = "INBOUND_DATA_ERROR", false;
    OutboundDataError = "OUTBOUND_DATA_ERROR", false;
    Xml = "XML", true;
    Tx = "TX", true;
    Ip = "IP", true;
    Global = "GLOBAL", true;
    Session = "SESSION", true;
    User = "USER", true;
    Resource = "RESOURCE", true;
    Env = "ENV", true;
    Rule = "RULE", true;
    MatchedVar = "MATCHED_VAR", false;
    MatchedVarName = "MATCHED_VAR_NAME", false;
    MatchedVars = "MATCHED_VARS", true;
    MatchedVarsNames = "MATCHED_VARS_NAMES", true;
    ResponseBody = "RESPONSE_BODY", false;
    ResponseHeaders = "RESPONSE_HEADERS", true;
    ResponseHeadersNames = "RESPONSE_HEADERS_NAMES", true;
    ResponseStatus = "RESPONSE_STATUS", false;
    ResponseProtocol = "RESPONSE_PROTOCOL", false;
    ResponseContentType = "RESPONSE_CONTENT_TYPE", false;
    ResponseContentLength = "RESPONSE_CONTENT_LENGTH", false;
    Status = "STATUS", false;
    RemoteAddr = "REMOTE_ADDR", false;
    RemotePort = "REMOTE_PORT", false;
    RemoteHost = "REMOTE_HOST", false;
    ServerName = "SERVER_NAME", false;
    ServerAddr = "SERVER_ADDR", false;
    ServerPort = "SERVER_PORT", false;
    UniqueId = "UNIQUE_ID", false;
    Duration = "DURATION", false;
    Time = "TIME", false;
    TimeEpoch = "TIME_EPOCH", false;
    TimeYear = "TIME_YEAR", false;
    TimeMon = "TIME_MON", false;
    TimeDay = "TIME_DAY", false;
    TimeHour = "TIME_HOUR", false;
    TimeMin = "TIME_MIN", false;
    TimeSec = "TIME_SEC", false;
    TimeWday = "TIME_WDAY", false;
    WebserverErrorLog = "WEBSERVER_ERROR_LOG", true;
    FullRequest = "FULL_REQUEST", false;
    FullRequestLength = "FULL_REQUEST_LENGTH", false;
    AuthType = "AUTH_TYPE", false;
    HighestSeverity = "HIGHEST_SEVERITY", false;
    UrlencodedError = "URLENCODED_ERROR", false;
    Geo = "GEO", true;
}

/// How a target selects keys of a collection.
#[derive(Debug, Clone)]
pub enum KeySel {
    All,
    /// Compared case-insensitively, as ModSecurity does. Shared by every target of the rule set
    /// that names the same key (`Ruleset::new` interns them): CRS's ~170 paranoia-level gates per
    /// request all read `TX:detection_paranoia_level`, from one warm allocation.
    Name(Arc<str>),
    Regex(Regex),
    /// A regex key that is a plain word, `^word` or `word.*` (CRS's `TX:/^header_name_920450_/`,
    /// `/paramcounter_.*/`, `/__utm/`): compared as the regex would match it (case-insensitively,
    /// anywhere or at the start) rather than by running the regex, which costs several times more
    /// for the dozens of TX keys such a target is tried on. `text` is lower-case.
    Literal {
        text: Vec<u8>,
        anchored: bool,
    },
}

impl KeySel {
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            KeySel::All => true,
            KeySel::Name(n) => n.as_bytes().eq_ignore_ascii_case(key),
            KeySel::Regex(r) => r.is_match(key),
            KeySel::Literal { text, anchored: true } => key
                .get(..text.len())
                .is_some_and(|k| k.eq_ignore_ascii_case(text)),
            KeySel::Literal {
                text,
                anchored: false,
            } => match text.split_first() {
                None => true,
                // The first byte screens the positions: comparing the whole word at each one
                // costs several times more.
                Some((&first, rest)) => key
                    .windows(text.len())
                    .any(|k| k[0].to_ascii_lowercase() == first && k[1..].eq_ignore_ascii_case(rest)),
            },
        }
    }

    /// `matches` for a key known to be lower-case (the keys of the stored collections, TX and the
    /// others, are lower-cased when stored): the same answer without case folding, as `Literal`
    /// texts are lower-cased when parsed. Scanning TX by key pattern
    /// (`TX:/^header_name_920450_/`) tries every one of its hundred-odd keys.
    pub fn matches_lower_case(&self, key: &[u8]) -> bool {
        debug_assert!(!key.iter().any(u8::is_ascii_uppercase));
        match self {
            // Most keys differ in their first byte.
            KeySel::Literal { text, anchored: true } => match text.first() {
                Some(first) => key.first() == Some(first) && key.starts_with(text),
                None => true,
            },
            _ => self.matches(key),
        }
    }
}

/// `KeySel::Literal`'s text and anchoring when the regex `pattern` (matched case-insensitively)
/// is one: letters, digits, `_` and `-` only (no metacharacter), after an optional `^` and
/// before an optional `.*` (which can match nothing, so it never decides a match).
fn literal_key(pattern: &str) -> Option<(Vec<u8>, bool)> {
    let (anchored, rest) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let word = rest.strip_suffix(".*").unwrap_or(rest);
    word.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        .then(|| (word.to_ascii_lowercase().into_bytes(), anchored))
}

/// One element of a rule's target list.
#[derive(Debug, Clone)]
pub struct Target {
    pub var: Var,
    pub key: KeySel,
    /// `&VAR`: the number of selected values instead of the values.
    pub count: bool,
    /// `!VAR:key`: removes matching values from the other targets of the same variable.
    pub exclude: bool,
    /// The MATCHED_VAR_NAME of what this target selects, when it is known at load: a stored
    /// collection's named key (`TX:detection_paranoia_level`, stored lower-case). CRS's
    /// paranoia-level gates match such a target dozens of times per request, and the name then
    /// costs nothing. Interned like `KeySel::Name`.
    pub label: Option<Arc<str>>,
}

/// Parses `ARGS|!ARGS:foo|&TX:x|REQUEST_COOKIES:/^re/|XML:/*`.
pub fn parse_targets(s: &str) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Element boundaries: '|' outside a /regex/ or 'quoted' key.
        let mut exclude = false;
        let mut count = false;
        while i < b.len() && (b[i] == b'!' || b[i] == b'&' || b[i] == b' ') {
            if b[i] == b'!' {
                exclude = true;
            } else if b[i] == b'&' {
                count = true;
            }
            i += 1;
        }
        let name_start = i;
        while i < b.len() && b[i] != b':' && b[i] != b'|' {
            i += 1;
        }
        let name = s[name_start..i].trim();
        let var = Var::from_name(name).ok_or_else(|| format!("unknown variable {name:?}"))?;
        let mut key = KeySel::All;
        if i < b.len() && b[i] == b':' {
            i += 1;
            let key_text;
            if var == Var::Xml {
                // XPath expressions: everything up to the next '|'.
                let st = i;
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                key_text = s[st..i].to_string();
                key = KeySel::Name(key_text.into());
            } else if i < b.len() && b[i] == b'/' {
                // A regex key ends at the '/' that is followed by '|' or the end.
                let st = i + 1;
                let mut j = st;
                let mut end = None;
                while j < b.len() {
                    if b[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if b[j] == b'/' && (j + 1 == b.len() || b[j + 1] == b'|') {
                        end = Some(j);
                        break;
                    }
                    j += 1;
                }
                let end = end.ok_or_else(|| format!("unterminated regex key in {s:?}"))?;
                key = match literal_key(&s[st..end]) {
                    Some((text, anchored)) => KeySel::Literal { text, anchored },
                    None => KeySel::Regex(
                        regex::bytes::RegexBuilder::new(&format!("(?i){}", &s[st..end]))
                            .unicode(false)
                            .size_limit(1 << 20)
                            .build()
                            .map_err(|e| format!("bad regex key: {e}"))?,
                    ),
                };
                i = end + 1;
            } else if i < b.len() && b[i] == b'\'' {
                let st = i + 1;
                let end = s[st..].find('\'').ok_or("unterminated quoted key")? + st;
                key = KeySel::Name(s[st..end].into());
                i = end + 1;
            } else {
                let st = i;
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                key = KeySel::Name(s[st..i].trim().into());
            }
        }
        // Collection keys are case-insensitive and stored lower-case: lower-case the name once
        // here rather than at every lookup.
        if var.is_stored_collection()
            && let KeySel::Name(n) = &key
        {
            key = KeySel::Name(n.to_ascii_lowercase().into());
        }
        if i < b.len() {
            if b[i] != b'|' {
                return Err(format!("unexpected character after variable {name}"));
            }
            i += 1;
        }
        let label = match &key {
            KeySel::Name(n) if var.is_stored_collection() && !count => {
                Some(format!("{}:{n}", var.name()).into())
            }
            _ => None,
        };
        out.push(Target {
            var,
            key,
            count,
            exclude,
            label,
        });
    }
    if out.is_empty() {
        return Err("no variables".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crs_style_targets() {
        let t = parse_targets("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|&ARGS:a|XML:/*|TX:foo").unwrap();
        assert_eq!(t.len(), 5);
        assert!(t[1].exclude && matches!(t[1].key, KeySel::Literal { anchored: false, .. }));
        assert!(t[2].count);
        assert!(matches!(&t[3].key, KeySel::Name(n) if &**n == "/*"));
        assert!(parse_targets("NOPE").is_err());
        let t = parse_targets("TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/|ARGS:/^a.b/").unwrap();
        assert!(t.iter().all(|t| matches!(t.key, KeySel::Regex(_))));
    }

    #[test]
    fn literal_keys_match_as_their_regex() {
        let keys: [&[u8]; 10] = [
            b"",
            b"header_name_920450_x",
            b"HEADER_NAME_920450_",
            b"x_header_name_920450_",
            b"header_name_92045",
            b"paramcounter_a",
            b"a.paramCounter_",
            b"__utmz",
            b"utm",
            b"\xff__UTM\n",
        ];
        for pattern in [
            "^header_name_920450_",
            "paramcounter_.*",
            "__utm",
            "^__utm.*",
            "^",
            ".*",
            "",
            "^.*",
            "a-b",
        ] {
            let lit = parse_targets(&format!("TX:/{pattern}/")).unwrap().remove(0).key;
            assert!(matches!(lit, KeySel::Literal { .. }), "{pattern}");
            let re = regex::bytes::RegexBuilder::new(&format!("(?i){pattern}"))
                .unicode(false)
                .build()
                .unwrap();
            for k in keys {
                assert_eq!(lit.matches(k), re.is_match(k), "{pattern} on {k:?}");
                // Stored collections' keys are lower-case: the comparison without folding agrees.
                let lower = k.to_ascii_lowercase();
                assert_eq!(
                    lit.matches_lower_case(&lower),
                    re.is_match(&lower),
                    "{pattern} on {lower:?}"
                );
            }
        }
    }
}
