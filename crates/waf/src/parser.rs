//! SecLang lexing: turns configuration text into directives (name + arguments) with their line,
//! following Apache/ModSecurity rules for comments, `\` line continuations and quoting. It performs
//! no I/O: `Include` is resolved by the caller-supplied loader in `config.rs`.

use crate::error::{Result, WafError};

/// One directive as written, after continuation joining and quote removal.
#[derive(Debug, Clone)]
pub struct Directive {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub args: Vec<String>,
}

/// Bounds on configuration text so that a hostile file cannot make the loader allocate without limit.
const MAX_DIRECTIVE_LEN: usize = 1 << 20;

/// Splits `text` into directives. `file` is used for error messages only.
pub fn parse_directives(file: &str, text: &str) -> Result<Vec<Directive>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((idx, raw)) = lines.next() {
        let start_line = idx + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Apache joins a line ending in a backslash with the next one, dropping the backslash
        // and the newline but keeping the next line's indentation.
        let mut logical = String::new();
        let mut cur = raw.trim_end().to_string();
        loop {
            if let Some(stripped) = cur.strip_suffix('\\') {
                logical.push_str(stripped);
                match lines.next() {
                    Some((_, next)) => cur = next.trim_end().to_string(),
                    None => break,
                }
                if logical.len() > MAX_DIRECTIVE_LEN {
                    return Err(syntax(file, start_line, "?", "directive longer than 1 MiB"));
                }
            } else {
                logical.push_str(&cur);
                break;
            }
        }
        let words = split_words(&logical).map_err(|m| syntax(file, start_line, first_word(&logical), m))?;
        let mut it = words.into_iter();
        let Some(name) = it.next() else { continue };
        out.push(Directive {
            file: file.to_string(),
            line: start_line,
            name,
            args: it.collect(),
        });
    }
    Ok(out)
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("?")
}

fn syntax(file: &str, line: usize, directive: &str, message: &str) -> WafError {
    WafError::Rule {
        file: file.to_string(),
        line,
        directive: directive.to_string(),
        code: "waf.syntax",
        message: message.to_string(),
    }
}

/// Apache's `ap_getword_conf`: words separated by whitespace; a word may be enclosed in double or
/// single quotes, inside which only `\<quote>` is an escape (other backslashes stay, because they
/// belong to regular expressions).
pub fn split_words(s: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' || c == '\'' {
            let quote = c;
            chars.next();
            let mut closed = false;
            while let Some((_, ch)) = chars.next() {
                if ch == '\\' {
                    if let Some(&(_, n)) = chars.peek()
                        && n == quote
                    {
                        word.push(quote);
                        chars.next();
                        continue;
                    }
                    word.push('\\');
                } else if ch == quote {
                    closed = true;
                    break;
                } else {
                    word.push(ch);
                }
            }
            if !closed {
                return Err("unterminated quoted argument");
            }
        } else {
            while let Some(&(_, ch)) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                word.push(ch);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_quotes_and_comments() {
        let text =
            "# comment\nSecRule ARGS \"@rx a\\\"b\\d\" \\\n    \"id:1,\\\n    phase:2\"\n\nSecMarker 'END'\n";
        let d = parse_directives("t.conf", text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b\\d", "id:1,    phase:2"]);
        assert_eq!(d[0].line, 2);
        assert_eq!(d[1].args, vec!["END"]);
        assert_eq!(d[1].line, 6);
    }

    #[test]
    fn unterminated_quote_is_an_error_with_position() {
        let e = parse_directives("x.conf", "\nSecRule ARGS \"@rx a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.conf:2: SecRule: unterminated quoted argument [waf.syntax]"
        );
    }
}
