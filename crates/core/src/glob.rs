//! Shell-style globs (`*`, `?`) for exception and policy selectors. Matching is iterative with one
//! backtrack point, so it runs in O(pattern × text) and cannot blow up on hostile patterns.

/// True when `text` matches `pattern`, where `*` matches any run of characters and `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("kube-*", "kube-system"));
        assert!(!glob_match("kube-*", "default"));
        assert!(glob_match("pss.*", "pss.privileged"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob_match("*a*b*c*d", "xxaxxbxxcxx"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        let long = "a".repeat(5000);
        assert!(!glob_match(
            &"*a".repeat(50).chars().chain("b".chars()).collect::<String>(),
            &long
        ));
    }
}
