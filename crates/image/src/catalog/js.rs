//! JavaScript: package-lock.json (v1–v3), installed `node_modules/*/package.json`, yarn.lock (v1 and
//! berry) and pnpm-lock.yaml.

use super::{Cataloged, Ecosystem, Package};
use serde_json::Value;

/// `…/node_modules/NAME/package.json` or `…/node_modules/@scope/NAME/package.json`, not the
/// package.json files deeper inside a package.
pub fn is_installed_package_json(path: &str) -> bool {
    let Some((_, rest)) = path.rsplit_once("/node_modules/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [_, "package.json"] => true,
        [scope, _, "package.json"] => scope.starts_with('@'),
        _ => false,
    }
}

pub fn package_json(path: &str, content: &[u8], out: &mut Cataloged) {
    let v: Value = match serde_json::from_slice(content) {
        Ok(v) => v,
        Err(e) => return out.warn(path, format!("invalid package.json: {e}")),
    };
    match (
        v.get("name").and_then(Value::as_str),
        v.get("version").and_then(Value::as_str),
    ) {
        (Some(n), Some(ver)) if !n.is_empty() && !ver.is_empty() => {
            out.packages.push(Package::new(Ecosystem::Npm, n, ver, path))
        }
        _ => out.warn(path, "package.json without name or version"),
    }
}

pub fn package_lock(path: &str, content: &[u8], out: &mut Cataloged) {
    let v: Value = match serde_json::from_slice(content) {
        Ok(v) => v,
        Err(e) => return out.warn(path, format!("invalid package lock: {e}")),
    };
    if let Some(pkgs) = v.get("packages").and_then(Value::as_object) {
        // v2/v3: keys are install paths.
        for (key, p) in pkgs {
            let Some((_, name)) = key.rsplit_once("node_modules/") else {
                continue;
            };
            if p.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or(name);
            if let Some(ver) = p.get("version").and_then(Value::as_str) {
                out.packages.push(Package::new(Ecosystem::Npm, name, ver, path));
            }
        }
    } else if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
        // v1: nested dependency trees.
        let mut stack: Vec<(&String, &Value, usize)> = deps.iter().map(|(k, v)| (k, v, 0)).collect();
        while let Some((name, d, depth)) = stack.pop() {
            if let Some(ver) = d.get("version").and_then(Value::as_str)
                && !ver.starts_with("file:")
                && !ver.starts_with("link:")
            {
                out.packages.push(Package::new(Ecosystem::Npm, name, ver, path));
            }
            if depth < 64
                && let Some(nested) = d.get("dependencies").and_then(Value::as_object)
            {
                stack.extend(nested.iter().map(|(k, v)| (k, v, depth + 1)));
            }
        }
    }
}

/// `name@range` → `name`, keeping the `@` of a scope.
fn spec_name(spec: &str) -> &str {
    let spec = spec.trim().trim_matches('"');
    match spec[1.min(spec.len())..].find('@') {
        Some(i) => &spec[..i + 1],
        None => spec,
    }
}

/// yarn.lock v1 (`version "1.2.3"`) and berry (`version: 1.2.3`), line by line.
pub fn yarn_lock(path: &str, text: &str, out: &mut Cataloged) {
    let mut current: Option<(String, bool)> = None;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            let header = line.trim_end().trim_end_matches(':');
            let first = header.split(", ").next().unwrap_or("");
            let name = spec_name(first);
            let workspace =
                header.contains("@workspace:") || header.contains("@link:") || header.contains("@file:");
            current = (!name.is_empty() && name != "__metadata").then(|| (name.to_string(), workspace));
            continue;
        }
        let t = line.trim();
        let version = t.strip_prefix("version ").or_else(|| t.strip_prefix("version: "));
        if let Some(v) = version
            && let Some((name, workspace)) = current.take()
            && !workspace
        {
            out.packages.push(Package::new(
                Ecosystem::Npm,
                &name,
                v.trim().trim_matches('"'),
                path,
            ));
        }
    }
}

/// pnpm-lock.yaml `packages` keys: `/name/1.2.3` (v5), `/name@1.2.3` (v6), `name@1.2.3` (v9), with
/// optional peer suffixes `(…)` or `_…`.
pub fn pnpm_lock(path: &str, text: &str, out: &mut Cataloged) {
    let doc = match palisade_k8s::parse_single(text, path) {
        Ok(v) => v,
        Err(e) => return out.warn(path, format!("invalid pnpm-lock.yaml: {e}")),
    };
    let Some(pkgs) = doc.get("packages").and_then(Value::as_object) else {
        return;
    };
    for (key, p) in pkgs {
        let k = key.strip_prefix('/').unwrap_or(key);
        let k = k.split('(').next().unwrap_or(k);
        let parsed = match k[1.min(k.len())..].find('@') {
            Some(i) => Some((&k[..i + 1], &k[i + 2..])),
            None => k.rsplit_once('/'),
        };
        let Some((name, version)) = parsed else {
            out.warn(path, format!("unrecognised package key {key:?}"));
            continue;
        };
        let version = version.split('_').next().unwrap_or(version);
        let name = p.get("name").and_then(Value::as_str).unwrap_or(name);
        let version = p.get("version").and_then(Value::as_str).unwrap_or(version);
        if !name.is_empty() && !version.is_empty() {
            out.packages
                .push(Package::new(Ecosystem::Npm, name, version, path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(out: &Cataloged) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = out
            .packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn package_lock_versions() {
        let mut out = Cataloged::default();
        package_lock(
            "/w/package-lock.json",
            br#"{"lockfileVersion":3,"packages":{"":{"name":"w"},"node_modules/lodash":{"version":"4.17.15"},
               "node_modules/@types/node":{"version":"20.1.0"},"node_modules/a/node_modules/b":{"version":"1.0.0"},
               "node_modules/local":{"resolved":"../local","link":true}}}"#,
            &mut out,
        );
        assert_eq!(
            names(&out),
            vec![
                ("@types/node".into(), "20.1.0".into()),
                ("b".into(), "1.0.0".into()),
                ("lodash".into(), "4.17.15".into())
            ]
        );
        let scoped = out.packages.iter_mut().find(|p| p.name == "@types/node").unwrap();
        scoped.finish_purl(None);
        assert_eq!(scoped.purl, "pkg:npm/%40types/node@20.1.0");
        let mut v1 = Cataloged::default();
        package_lock("/p", br#"{"lockfileVersion":1,"dependencies":{"minimist":{"version":"1.2.0","dependencies":{"x":{"version":"2.0.0"}}}}}"#, &mut v1);
        assert_eq!(
            names(&v1),
            vec![("minimist".into(), "1.2.0".into()), ("x".into(), "2.0.0".into())]
        );
    }

    #[test]
    fn yarn_v1_and_berry() {
        let v1 = "# yarn lockfile v1\n\n\"@babel/code-frame@^7.0.0\", \"@babel/code-frame@^7.10.4\":\n  version \"7.12.13\"\n  resolved \"https://x\"\n\nlodash@^4.17.15:\n  version \"4.17.21\"\n";
        let mut out = Cataloged::default();
        yarn_lock("/yarn.lock", v1, &mut out);
        assert_eq!(
            names(&out),
            vec![
                ("@babel/code-frame".into(), "7.12.13".into()),
                ("lodash".into(), "4.17.21".into())
            ]
        );
        let berry = "__metadata:\n  version: 6\n\n\"lodash@npm:^4.17.15\":\n  version: 4.17.21\n  resolution: \"lodash@npm:4.17.21\"\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n";
        let mut out = Cataloged::default();
        yarn_lock("/yarn.lock", berry, &mut out);
        assert_eq!(names(&out), vec![("lodash".into(), "4.17.21".into())]);
    }

    #[test]
    fn pnpm_lock_key_formats() {
        let text = "lockfileVersion: '9.0'\npackages:\n  /lodash/4.17.15:\n    resolution: {integrity: x}\n  /@scope/pkg@1.0.0(react@18.0.0):\n    resolution: {integrity: y}\n  minimist@1.2.0:\n    resolution: {integrity: z}\n";
        let mut out = Cataloged::default();
        pnpm_lock("/pnpm-lock.yaml", text, &mut out);
        assert_eq!(
            names(&out),
            vec![
                ("@scope/pkg".into(), "1.0.0".into()),
                ("lodash".into(), "4.17.15".into()),
                ("minimist".into(), "1.2.0".into())
            ]
        );
        pnpm_lock("/pnpm-lock.yaml", "packages: [\n", &mut out);
        assert_eq!(out.warnings.len(), 1);
    }

    #[test]
    fn installed_package_json_paths() {
        assert!(is_installed_package_json("/a/node_modules/@s/p/package.json"));
        assert!(!is_installed_package_json("/a/node_modules/x/lib/package.json"));
    }
}
