//! Image references as users write them (`nginx`, `ghcr.io/org/app:1.2`, `reg:5000/a/b@sha256:...`)
//! resolved to the registry host the API lives on and the repository path.

use crate::RegistryError;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Host (and port) of the registry API: `registry-1.docker.io` for Docker Hub.
    pub registry: String,
    /// `library/nginx`, `org/app`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

const DOCKER_HUB: &str = "registry-1.docker.io";

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, RegistryError> {
        let bad = |why: &str| RegistryError::BadReference {
            reference: text.to_string(),
            reason: why.to_string(),
        };
        let text = text.trim();
        if text.is_empty() || text.len() > 1024 {
            return Err(bad("empty or longer than 1024 characters"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((n, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("digest must be sha256:<64 hex>"))?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                {
                    return Err(bad("digest must be sha256:<64 lowercase hex>"));
                }
                (n, Some(d.to_string()))
            }
            None => (text, None),
        };
        let (registry, rest) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest)
            }
            _ => ("docker.io".to_string(), name),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if path.is_empty()
            || !path.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                    })
            })
        {
            return Err(bad("repository must be lowercase path components"));
        }
        if let Some(t) = &tag
            && (t.is_empty()
                || t.len() > 128
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        {
            return Err(bad("invalid tag"));
        }
        let (registry, repository) = if matches!(registry.as_str(), "docker.io" | "index.docker.io") {
            let repo = if path.contains('/') {
                path.to_string()
            } else {
                format!("library/{path}")
            };
            (DOCKER_HUB.to_string(), repo)
        } else {
            (registry, path.to_string())
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the manifests endpoint for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The key under which docker's config.json stores credentials for this registry.
    pub fn auth_key(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "https://index.docker.io/v1/"
        } else {
            &self.registry
        }
    }

    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            (DOCKER_HUB, "library/nginx", Some("latest"))
        );
        let r = Reference::parse("localhost:5000/team/app:1.2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "team/app", Some("1.2"))
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("ghcr.io/org/app@{d}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(d.as_str())));
        assert_eq!(
            Reference::parse("bitnami/redis:7").unwrap().repository,
            "bitnami/redis"
        );
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "app@sha256:xyz",
            "app:bad tag",
            "app@md5:abc",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
