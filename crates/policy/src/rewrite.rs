//! Source rewrites that make regorus 0.14 read Gatekeeper's Rego v0 the way OPA does. Each one
//! keeps every line where it was, so regorus' line numbers still point into the template; none
//! changes anything inside strings or comments.
//!
//! 1. Several bodies, `head { a } { b }`: OPA reads two rules with the same head; regorus rejects
//!    it. Rewritten to `head { a } head { b }`.
//! 2. A body line starting with `(` after a line ending in a name: OPA ends the expression at the
//!    newline; regorus reads a function call across it. A `;` ends the previous expression.
//! 3. `not f(x.y, g(z))`: OPA's compiler hoists ref and call arguments out of the negation
//!    (`t1 = x.y; t2 = g(z); not f(t1, t2)`), so an undefined argument makes the body fail
//!    instead of making the negation true (opa#1877, opa#4743). Gatekeeper templates rely on it.
//! 4. `sprintf("%v %v", [a])`: Go's fmt writes `%!v(MISSING)` for a verb without an argument;
//!    regorus fails. When the format is a literal and the arguments a literal array, the missing
//!    `%v`/`%s` arguments are supplied as that very text.

/// The names rewrite 3 gives the arguments it hoists (`__palisade_not_0 = x.y`): new names,
/// so `=` there always binds (`footprint` relies on it).
pub(crate) const HOISTED: &str = "__palisade_not_";

/// Applies every rewrite; returns the source unchanged when none applies.
pub(crate) fn for_regorus(src: &str) -> String {
    let mut text = src.to_string();
    if let Some(t) = split_multi_body_rules(&text) {
        text = t;
    }
    if let Some(t) = end_expressions_before_paren_lines(&text) {
        text = t;
    }
    if let Some(t) = hoist_negated_call_arguments(&text) {
        text = t;
    }
    if let Some(t) = pad_sprintf_arguments(&text) {
        text = t;
    }
    text
}

/// The source with string contents replaced by `a` and comments by spaces (same length, same
/// newlines), so the passes can look at structure alone. `None` if a string never ends.
fn mask(src: &str) -> Option<Vec<u8>> {
    let bytes = src.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            out[i] = b'a';
                            i += 1;
                            bytes.get(i)?;
                            out[i] = b'a';
                        }
                        b'\n' => return None,
                        _ => out[i] = b'a',
                    }
                    i += 1;
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while *bytes.get(i)? != b'`' {
                    if bytes[i] != b'\n' {
                        out[i] = b'a';
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Some(out)
}

fn apply(src: &str, mut edits: Vec<(usize, usize, String)>) -> Option<String> {
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(src.len() + 64);
    let mut last = 0;
    for (start, end, text) in edits {
        out.push_str(&src[last..start]);
        out.push_str(&text);
        last = end;
    }
    out.push_str(&src[last..]);
    Some(out)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Operators after which a `{` at the top level opens a value, not a rule body.
fn is_operator(c: u8) -> bool {
    matches!(
        c,
        b'=' | b'|' | b'&' | b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'!' | b',' | b':'
    )
}

fn split_multi_body_rules(src: &str) -> Option<String> {
    let m = mask(src)?;
    let mut depth: usize = 0;
    let mut stmt_start = 0;
    let mut new_stmt = true;
    let mut head: Option<(usize, usize)> = None;
    let mut body_seen = false;
    let mut open_is_body = false;
    let mut after_body = false;
    let mut prev_sig = 0u8;
    let mut edits = Vec::new();
    for (i, &c) in m.iter().enumerate() {
        if c == b'\n' {
            if depth == 0 {
                new_stmt = true;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if depth == 0 {
            let is_body_brace = c == b'{' && !is_operator(prev_sig);
            let continuation = is_body_brace && after_body;
            if continuation {
                let (start, end) = head?; // a continuation we cannot repeat: leave it to regorus
                edits.push((i, i, format!("{} ", &src[start..end])));
            } else if new_stmt {
                stmt_start = i;
                head = None;
                body_seen = false;
            }
            new_stmt = false;
            after_body = false;
            if c == b'{' {
                open_is_body = is_body_brace;
                if is_body_brace && !continuation {
                    let text = src[stmt_start..i].trim_end();
                    head =
                        (!body_seen && !text.is_empty() && !text.starts_with('}') && !text.contains("else"))
                            .then_some((stmt_start, stmt_start + text.len()));
                    body_seen = true;
                }
            }
        }
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 && c == b'}' {
                    after_body = open_is_body;
                }
            }
            _ => {}
        }
        prev_sig = c;
    }
    if depth != 0 {
        return None;
    }
    apply(src, edits)
}

const KEYWORDS: [&str; 9] = [
    "not", "in", "some", "else", "with", "as", "default", "import", "package",
];

/// The word ending at `end` (exclusive) in the mask.
fn word_before(m: &[u8], end: usize) -> &[u8] {
    let mut start = end;
    while start > 0 && is_ident(m[start - 1]) {
        start -= 1;
    }
    &m[start..end]
}

fn end_expressions_before_paren_lines(src: &str) -> Option<String> {
    let m = mask(src)?;
    let mut stack: Vec<u8> = Vec::new();
    let mut last_sig: Option<usize> = None;
    let mut newline_since = false;
    let mut edits = Vec::new();
    for (i, &c) in m.iter().enumerate() {
        if c == b'\n' {
            newline_since = true;
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'('
            && newline_since
            && stack.last() == Some(&b'{')
            && let Some(p) = last_sig
        {
            let prev = m[p];
            let word = word_before(&m, p + 1);
            let ends_name =
                prev == b']' || (is_ident(prev) && !KEYWORDS.iter().any(|k| k.as_bytes() == word));
            if ends_name {
                edits.push((p + 1, p + 1, ";".to_string()));
            }
        }
        match c {
            b'(' | b'[' | b'{' => stack.push(c),
            b')' | b']' | b'}' => {
                stack.pop()?;
            }
            _ => {}
        }
        last_sig = Some(i);
        newline_since = false;
    }
    apply(src, edits)
}

fn hoist_negated_call_arguments(src: &str) -> Option<String> {
    let m = mask(src)?;
    let mut stack: Vec<u8> = Vec::new();
    let mut edits = Vec::new();
    let mut counter = 0usize;
    let mut line_start = 0;
    while line_start < m.len() {
        let line_end = m[line_start..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(m.len(), |p| line_start + p);
        let in_body = stack.last() == Some(&b'{');
        if in_body && let Some((start, end, text)) = hoist_line(src, &m, line_start, line_end, &mut counter) {
            edits.push((start, end, text));
        }
        for &c in &m[line_start..line_end] {
            match c {
                b'(' | b'[' | b'{' => stack.push(c),
                b')' | b']' | b'}' => {
                    stack.pop()?;
                }
                _ => {}
            }
        }
        line_start = line_end + 1;
    }
    apply(src, edits)
}

/// One line `not name(args)` (nothing else on it but a comment): the replacement text for the
/// expression, with ref and call arguments bound to fresh variables first.
fn hoist_line(
    src: &str,
    m: &[u8],
    start: usize,
    end: usize,
    counter: &mut usize,
) -> Option<(usize, usize, String)> {
    let line = &m[start..end];
    let indent = line.iter().position(|c| !c.is_ascii_whitespace())?;
    let expr_start = start + indent;
    let rest = &m[expr_start..end];
    if !rest.starts_with(b"not ") {
        return None;
    }
    let mut i = expr_start + 4;
    while i < end && m[i] == b' ' {
        i += 1;
    }
    // Function name: identifiers joined by dots.
    let name_start = i;
    while i < end && (is_ident(m[i]) || m[i] == b'.') {
        i += 1;
    }
    if i == name_start
        || i >= end
        || m[i] != b'('
        || !(m[name_start].is_ascii_alphabetic() || m[name_start] == b'_')
    {
        return None;
    }
    let open = i;
    let mut depth = 0usize;
    let mut close = None;
    let mut commas = Vec::new();
    for (j, &c) in m.iter().enumerate().take(end).skip(open) {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(j),
            b';' | b'|' => return None,
            _ => {}
        }
    }
    let close = close?;
    if m[close + 1..end].iter().any(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    let mut bounds = vec![open + 1];
    bounds.extend(commas.iter().map(|c| c + 1));
    let mut ends = commas.clone();
    ends.push(close);
    let mut prefix = String::new();
    let mut args = Vec::new();
    for (a, b) in bounds.into_iter().zip(ends) {
        let text = src[a..b].trim();
        let masked = std::str::from_utf8(&m[a..b]).ok()?.trim();
        let first = masked.bytes().next().unwrap_or(b' ');
        // A bare name is a local variable (hoisting it changes nothing and would only reorder
        // regorus' schedule); refs and calls are what OPA moves out.
        let is_ref_or_call = masked.bytes().any(|c| matches!(c, b'.' | b'[' | b'('));
        let hoist = (first.is_ascii_alphabetic() || first == b'_')
            && is_ref_or_call
            && !masked
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|w| w == "with");
        if hoist {
            let var = format!("{HOISTED}{counter}");
            *counter += 1;
            prefix.push_str(&format!("{var} = {text}; "));
            args.push(var);
        } else {
            args.push(text.to_string());
        }
    }
    if prefix.is_empty() {
        return None;
    }
    let name = &src[name_start..open];
    Some((
        expr_start,
        close + 1,
        format!("{prefix}not {name}({})", args.join(", ")),
    ))
}

/// Verbs of a Go format string, in order (`%%` excluded); `None` for explicit argument indexes
/// or `*` widths, which this rewrite does not model.
fn format_verbs(format: &str) -> Option<Vec<char>> {
    let mut verbs = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        loop {
            match chars.next() {
                None => return Some(verbs),
                Some('%') => break,
                Some('+' | '-' | '#' | ' ' | '.' | '0'..='9') => {}
                Some('[' | '*') => return None,
                Some(verb) => {
                    verbs.push(verb);
                    break;
                }
            }
        }
    }
    Some(verbs)
}

fn pad_sprintf_arguments(src: &str) -> Option<String> {
    let m = mask(src)?;
    let mut edits = Vec::new();
    let mut from = 0;
    while let Some(pos) = find(&m, b"sprintf(", from) {
        from = pos + 8;
        if pos > 0 && (is_ident(m[pos - 1]) || m[pos - 1] == b'.') {
            continue;
        }
        let mut i = skip_ws(&m, pos + 8);
        if m.get(i) != Some(&b'"') {
            continue;
        }
        let fmt_start = i;
        i += 1;
        while i < m.len() && m[i] != b'"' {
            i += 1;
        }
        let Some(format) = serde_json::from_str::<String>(src.get(fmt_start..=i)?).ok() else {
            continue;
        };
        i = skip_ws(&m, i + 1);
        if m.get(i) != Some(&b',') {
            continue;
        }
        i = skip_ws(&m, i + 1);
        if m.get(i) != Some(&b'[') {
            continue;
        }
        // Count the array's top-level elements.
        let mut depth = 0usize;
        let mut elements = 0usize;
        let mut pending = false;
        let mut close = None;
        for (j, &c) in m.iter().enumerate().skip(i) {
            match c {
                b'(' | b'[' | b'{' => {
                    if depth == 1 {
                        pending = true;
                    }
                    depth += 1;
                }
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                b',' if depth == 1 => {
                    elements += usize::from(pending);
                    pending = false;
                }
                c if depth == 1 && !c.is_ascii_whitespace() => pending = true,
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        elements += usize::from(pending);
        let Some(verbs) = format_verbs(&format) else {
            continue;
        };
        if verbs.len() <= elements || verbs[elements..].iter().any(|v| !matches!(v, 'v' | 's')) {
            continue;
        }
        let mut text = String::new();
        for (n, verb) in verbs[elements..].iter().enumerate() {
            if n > 0 || elements > 0 {
                text.push_str(", ");
            }
            text.push_str(&format!("\"%!{verb}(MISSING)\""));
        }
        // Insert after the last element (before any trailing comma and the `]`).
        let mut at = close;
        while at > i + 1 && m[at - 1].is_ascii_whitespace() {
            at -= 1;
        }
        if m[at - 1] == b',' {
            text = text.trim_start_matches(", ").to_string();
        }
        edits.push((at, at, text));
    }
    apply(src, edits)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn skip_ws(m: &[u8], mut i: usize) -> usize {
    while i < m.len() && m[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_set_rule_bodies_on_one_line() {
        let src = "package p\nviolation[{\"msg\": m}] {\n  m := \"a\"\n} {\n  m := \"b\"\n}\n";
        let out = split_multi_body_rules(src).unwrap();
        assert_eq!(
            out,
            "package p\nviolation[{\"msg\": m}] {\n  m := \"a\"\n} violation[{\"msg\": m}] {\n  m := \"b\"\n}\n"
        );
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn splits_function_bodies_across_lines_and_object_values() {
        let src = "f(x) = y {\n y := 1\n}\n# c\n{\n y := 2\n}\n";
        let out = split_multi_body_rules(src).unwrap();
        assert!(out.contains("# c\nf(x) = y {\n y := 2"), "{out}");
        let src = "g(c) = {\"a\": v} {\n v := 1\n} {\n v := 2\n}\n";
        let out = split_multi_body_rules(src).unwrap();
        assert_eq!(
            out,
            "g(c) = {\"a\": v} {\n v := 1\n} g(c) = {\"a\": v} {\n v := 2\n}\n"
        );
    }

    #[test]
    fn leaves_ordinary_rules_strings_and_else_alone() {
        for src in [
            "package p\na { true }\nb { true }\n",
            "package p\nx = {1, 2}\ny { \"} {\" == \"} {\" }\n",
            "package p\nf(x) = 1 { x } else = 2 { true }\n",
            "package p\n# } {\na { true }\n",
            "package p\ns := `} {`\n",
            "package p\nf(c) = {\"a\": 1} {\n true\n}\n",
        ] {
            assert_eq!(split_multi_body_rules(src), None, "{src}");
        }
    }

    #[test]
    fn gives_up_on_unbalanced_input() {
        assert_eq!(split_multi_body_rules("a { } } {"), None);
        assert_eq!(split_multi_body_rules("a { \"x"), None);
        assert_eq!(for_regorus("a { \"x"), "a { \"x");
    }

    #[test]
    fn ends_expression_before_a_parenthesised_line() {
        let src = "r(h) {\n  input.p.x\n  (h.a - h.b) >= 1\n}\n";
        assert_eq!(
            end_expressions_before_paren_lines(src).unwrap(),
            "r(h) {\n  input.p.x;\n  (h.a - h.b) >= 1\n}\n"
        );
        // A call split over lines and an operator at the line end are left alone.
        assert_eq!(
            end_expressions_before_paren_lines("r {\n x := f(a,\n (b))\n y := 1 +\n (2)\n}\n"),
            None
        );
    }

    #[test]
    fn hoists_ref_and_call_arguments_out_of_negation() {
        let src = "v {\n  not accept(rule, 1, params.ranges) # c\n  not g(h(x.y), \"s\")\n  not p.q\n}\n";
        let out = hoist_negated_call_arguments(src).unwrap();
        assert_eq!(
            out,
            "v {\n  __palisade_not_0 = params.ranges; not accept(rule, 1, __palisade_not_0) # c\n  __palisade_not_1 = h(x.y); not g(__palisade_not_1, \"s\")\n  not p.q\n}\n"
        );
        assert_eq!(out.lines().count(), src.lines().count());
        assert_eq!(hoist_negated_call_arguments("v {\n not f(1, \"a.b\")\n}\n"), None);
    }

    #[test]
    fn supplies_missing_sprintf_arguments_like_go() {
        let src = "m := sprintf(\"a %v b %v c %s 100%%\", [x, f(y, z)])\n";
        assert_eq!(
            pad_sprintf_arguments(src).unwrap(),
            "m := sprintf(\"a %v b %v c %s 100%%\", [x, f(y, z), \"%!s(MISSING)\"])\n"
        );
        assert_eq!(pad_sprintf_arguments("m := sprintf(\"%v\", [x])\n"), None);
        assert_eq!(pad_sprintf_arguments("m := sprintf(\"%v %d\", [x])\n"), None);
        assert_eq!(
            pad_sprintf_arguments("m := sprintf(\"%v\", [])\n").unwrap(),
            "m := sprintf(\"%v\", [\"%!v(MISSING)\"])\n"
        );
    }
}
