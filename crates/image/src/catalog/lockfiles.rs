//! Cargo.lock, Gemfile.lock and composer.lock.

use super::{Cataloged, Ecosystem, Package};

#[derive(serde::Deserialize)]
struct CargoLock {
    #[serde(default)]
    package: Vec<CargoPackage>,
}

#[derive(serde::Deserialize)]
struct CargoPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
}

/// Packages from a registry or git; workspace members (no `source`) are the project itself.
pub fn cargo_lock(path: &str, text: &str, out: &mut Cataloged) {
    match toml::from_str::<CargoLock>(text) {
        Ok(lock) => {
            for p in lock.package.into_iter().filter(|p| p.source.is_some()) {
                out.packages
                    .push(Package::new(Ecosystem::Cargo, &p.name, &p.version, path));
            }
        }
        Err(e) => out.warn(path, format!("invalid Cargo.lock: {}", e.message())),
    }
}

/// The `specs:` of the `GEM` section: `    name (version[-platform])`.
pub fn gemfile_lock(path: &str, text: &str, out: &mut Cataloged) {
    let mut in_gem = false;
    let mut in_specs = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_gem = line.trim() == "GEM";
            in_specs = false;
            continue;
        }
        if in_gem && line.trim() == "specs:" {
            in_specs = true;
            continue;
        }
        if !in_specs || !line.starts_with("    ") || line.starts_with("     ") {
            continue;
        }
        let t = line.trim();
        let Some((name, rest)) = t.split_once(" (") else {
            continue;
        };
        let version = rest.trim_end_matches(')');
        out.packages
            .push(Package::new(Ecosystem::Gem, name, version, path));
    }
}

pub fn composer_lock(path: &str, content: &[u8], out: &mut Cataloged) {
    let value: serde_json::Value = match serde_json::from_slice(content) {
        Ok(v) => v,
        Err(e) => return out.warn(path, format!("invalid composer.lock: {e}")),
    };
    for section in ["packages", "packages-dev"] {
        for p in value
            .get(section)
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            if let (Some(n), Some(v)) = (
                p.get("name").and_then(|v| v.as_str()),
                p.get("version").and_then(|v| v.as_str()),
            ) {
                out.packages.push(Package::new(Ecosystem::Composer, n, v, path));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lock_skips_workspace_members() {
        let mut out = Cataloged::default();
        cargo_lock(
            "/a/Cargo.lock",
            "version = 4\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
            &mut out,
        );
        assert_eq!(out.packages.len(), 1);
        out.packages[0].finish_purl(None);
        assert_eq!(out.packages[0].purl, "pkg:cargo/smallvec@1.6.0");
        cargo_lock("/a/Cargo.lock", "[[package]\n", &mut out);
        assert_eq!(out.warnings.len(), 1);
    }

    #[test]
    fn gemfile_lock_specs() {
        let text = "GIT\n  remote: x\n  specs:\n    fromgit (1.0)\n\nGEM\n  remote: https://rubygems.org/\n  specs:\n    nokogiri (1.10.3-x86_64-linux)\n      mini_portile2 (~> 2.4.0)\n    rack (2.0.7)\n\nPLATFORMS\n  ruby\n";
        let mut out = Cataloged::default();
        gemfile_lock("/Gemfile.lock", text, &mut out);
        let got: Vec<(&str, &str)> = out
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(got, vec![("nokogiri", "1.10.3-x86_64-linux"), ("rack", "2.0.7")]);
    }

    #[test]
    fn composer_lock_packages() {
        let mut out = Cataloged::default();
        composer_lock(
            "/composer.lock",
            br#"{"packages":[{"name":"guzzlehttp/guzzle","version":"6.3.0"}],"packages-dev":[]}"#,
            &mut out,
        );
        out.packages[0].finish_purl(None);
        assert_eq!(out.packages[0].purl, "pkg:composer/guzzlehttp/guzzle@6.3.0");
        composer_lock("/composer.lock", b"{", &mut out);
        assert_eq!(out.warnings.len(), 1);
    }
}
