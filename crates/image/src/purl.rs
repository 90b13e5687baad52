//! Package URLs (https://github.com/package-url/purl-spec): `pkg:type/namespace/name@version?qualifiers`.

/// Percent-encodes everything but unreserved characters (and `:`, which the spec lets stand).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds a purl; `namespace` may hold several `/`-separated segments, each encoded on its own.
/// Qualifiers with empty values are left out; the rest are sorted by key as the spec requires.
pub fn build(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut s = format!("pkg:{kind}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for seg in ns.split('/').filter(|s| !s.is_empty()) {
            s.push_str(&encode(seg));
            s.push('/');
        }
    }
    s.push_str(&encode(name));
    if !version.is_empty() {
        s.push('@');
        s.push_str(&encode(version));
    }
    let mut q: Vec<&(&str, &str)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort_by_key(|(k, _)| *k);
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&encode(v));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "curl",
                "7.50.3-1",
                &[("distro", "jessie"), ("arch", "i386")]
            ),
            "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"
        );
        assert_eq!(
            build("npm", Some("@angular"), "animation", "12.3.1", &[]),
            "pkg:npm/%40angular/animation@12.3.1"
        );
        assert_eq!(
            build("golang", Some("golang.org/x"), "text", "v0.3.5", &[]),
            "pkg:golang/golang.org/x/text@v0.3.5"
        );
        assert_eq!(
            build("deb", Some("debian"), "g++", "1:2.3+b1", &[]),
            "pkg:deb/debian/g%2B%2B@1:2.3%2Bb1"
        );
    }
}
