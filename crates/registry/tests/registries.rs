//! The client against registries on loopback: a scripted one that demands bearer tokens (anonymous
//! and with docker-config credentials), and Debian's real `docker-registry` for push, pull and a
//! multi-arch index, both open and behind token auth with a token server of the test's own.

use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use palisade_registry::{
    Client, ClientOptions, Credential, DockerConfig, MediaTypes, Reference, sha256_digest,
};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Served content: path → (content type, bytes).
type Objects = HashMap<String, (String, Vec<u8>)>;

/// How a loopback server answers: gets its own address (for challenges that point back at it).
type Handler = dyn Fn(SocketAddr, &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> + Send + Sync;

/// Serves `handler` over HTTP/1 on a loopback port from its own thread until the test ends.
fn serve(handler: Arc<Handler>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send(addr).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let response = handler(addr, &req);
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv().unwrap()
}

/// A scripted registry: `private/app` needs a token granted to bob:s3cret, `public/app` takes an
/// anonymous token. Content is served from `objects` (path → (content type, bytes)).
fn start_mock(objects: Objects) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let addr = serve(Arc::new(move |addr, req| mock(&objects, &log2, addr, req)));
    (addr, log)
}

fn mock(
    objects: &Objects,
    log: &Mutex<Vec<String>>,
    addr: SocketAddr,
    req: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    log.lock()
        .unwrap()
        .push(format!("{} {path} {auth}", req.method()));
    let reply = |status: u16, ctype: &str, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if path == "/token" {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bob:s3cret")
        );
        let token = if query.contains("private") {
            if auth == basic {
                "BOB"
            } else {
                return reply(401, "text/plain", b"no".to_vec());
            }
        } else {
            "ANON"
        };
        return reply(
            200,
            "application/json",
            json!({"token": token}).to_string().into_bytes(),
        );
    }
    let repo_private = path.contains("/private/");
    let wanted = if repo_private { "Bearer BOB" } else { "Bearer ANON" };
    if auth != wanted {
        let scope = if repo_private {
            "repository:private/app:pull"
        } else {
            "repository:public/app:pull"
        };
        return Response::builder()
            .status(401)
            .header(
                "www-authenticate",
                format!("Bearer realm=\"http://{addr}/token\",service=\"mock\",scope=\"{scope}\""),
            )
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    match objects.get(&path) {
        Some((ctype, body)) => reply(200, ctype, body.clone()),
        None => reply(404, "application/json", b"{}".to_vec()),
    }
}

fn image_fixture(repo: &str) -> (Objects, String, String) {
    let config = br#"{"architecture":"arm64","os":"linux","config":{}}"#.to_vec();
    let config_digest = sha256_digest(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MediaTypes::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": []
    }))
    .unwrap();
    let manifest_digest = sha256_digest(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MediaTypes::OCI_INDEX,
        "manifests": [
            {"mediaType": MediaTypes::OCI_MANIFEST, "digest": format!("sha256:{}", "0".repeat(64)), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": MediaTypes::OCI_MANIFEST, "digest": manifest_digest, "size": manifest.len(), "platform": {"os": "linux", "architecture": "arm64"}}
        ]
    }))
    .unwrap();
    let mut objects = HashMap::new();
    objects.insert(
        format!("/v2/{repo}/manifests/1.0"),
        (MediaTypes::OCI_INDEX.to_string(), index),
    );
    objects.insert(
        format!("/v2/{repo}/manifests/{manifest_digest}"),
        (MediaTypes::OCI_MANIFEST.to_string(), manifest),
    );
    objects.insert(
        format!("/v2/{repo}/blobs/{config_digest}"),
        ("application/octet-stream".to_string(), config),
    );
    (objects, manifest_digest, config_digest)
}

#[test]
fn bearer_tokens_anonymous_and_with_credentials() {
    let (mut objects, _, _) = image_fixture("public/app");
    let (private, manifest_digest, config_digest) = image_fixture("private/app");
    objects.extend(private);
    let (addr, log) = start_mock(objects);

    let anonymous = Client::new(ClientOptions::default()).unwrap();
    let public = Reference::parse(&format!("{addr}/public/app:1.0")).unwrap();
    let index = anonymous.get_manifest(&public).unwrap();
    assert!(index.is_index());
    let manifest = anonymous.resolve_platform(&public, index, "linux/arm64").unwrap();
    assert_eq!(
        manifest.json["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert!(
        anonymous
            .resolve_platform(&public, anonymous.get_manifest(&public).unwrap(), "linux/s390x")
            .is_err()
    );

    let private = Reference::parse(&format!("{addr}/private/app:1.0")).unwrap();
    let err = anonymous.get_manifest(&private).unwrap_err().to_string();
    assert!(err.contains("authentication failed"), "{err}");

    let mut config = DockerConfig::default();
    config.insert(
        &addr.to_string(),
        Credential::Basic {
            username: "bob".into(),
            password: "s3cret".into(),
        },
    );
    let bob = Client::new(ClientOptions {
        docker_config: config,
        ..Default::default()
    })
    .unwrap();
    let index = bob.get_manifest(&private).unwrap();
    let manifest = bob.resolve_platform(&private, index, "linux/arm64").unwrap();
    assert_eq!(manifest.digest, manifest_digest);
    let blob = bob.get_blob(&private, &config_digest, 1024).unwrap();
    assert!(blob.starts_with(b"{\"architecture\""));
    assert!(
        bob.get_blob(&private, &config_digest, 10).is_err(),
        "limit enforced"
    );
    let requests = log.lock().unwrap().len();
    bob.get_blob(&private, &config_digest, 1024).unwrap();
    assert_eq!(
        log.lock().unwrap().len(),
        requests + 1,
        "the token is reused, no new challenge"
    );
}

#[test]
fn push_and_pull_with_a_real_registry() {
    let Some(registry) = palisade_registry::testing::LocalRegistry::start() else {
        return;
    };
    let client = Client::new(ClientOptions::default()).unwrap();
    let reference = Reference::parse(&format!("{}/team/app:1.0", registry.addr)).unwrap();
    let layer = b"not really a tar, but a blob".to_vec();
    let config = br#"{"architecture":"amd64","os":"linux","config":{"User":"1000"}}"#.to_vec();
    let layer_digest = client.put_blob(&reference, &layer).unwrap();
    let config_digest = client.put_blob(&reference, &config).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MediaTypes::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
    }))
    .unwrap();
    let manifest_digest = client
        .put_manifest(
            &reference.with_digest(&sha256_digest(&manifest)),
            &manifest,
            MediaTypes::OCI_MANIFEST,
        )
        .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MediaTypes::OCI_INDEX,
        "manifests": [{"mediaType": MediaTypes::OCI_MANIFEST, "digest": manifest_digest, "size": manifest.len(),
                       "platform": {"os": "linux", "architecture": "amd64"}}]
    }))
    .unwrap();
    client
        .put_manifest(&reference, &index, MediaTypes::OCI_INDEX)
        .unwrap();

    let fetched = client.get_manifest(&reference).unwrap();
    assert!(fetched.is_index());
    let image = client
        .resolve_platform(&reference, fetched, "linux/amd64")
        .unwrap();
    assert_eq!(image.digest, manifest_digest);
    let blob = client.get_blob(&reference, &layer_digest, 1 << 20).unwrap();
    assert_eq!(blob, layer);
    let wrong = Reference::parse(&format!("{}/team/app@sha256:{}", registry.addr, "1".repeat(64))).unwrap();
    assert!(client.get_manifest(&wrong).is_err());
}

const TOKEN_SERVICE: &str = "palisade-test-registry";
const TOKEN_ISSUER: &str = "palisade-test-token-server";

/// Issues the JWTs distribution verifies: ES256 over `header.claims`, the signing certificate in
/// the `x5c` header (so the registry finds the key in its `rootcertbundle`).
struct TokenIssuer {
    key: p256::ecdsa::SigningKey,
    /// The self-signed certificate of `key`, DER in standard base64 as `x5c` wants it.
    certificate: String,
    issued: std::sync::atomic::AtomicU64,
    /// `user scope` of every token request, `anonymous` for none.
    log: Mutex<Vec<String>>,
}

impl TokenIssuer {
    fn new() -> (TokenIssuer, String) {
        use p256::pkcs8::DecodePrivateKey;
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let certificate = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(&key_pair.serialize_der()).unwrap();
        let issuer = TokenIssuer {
            key,
            certificate: base64::engine::general_purpose::STANDARD.encode(certificate.der()),
            issued: Default::default(),
            log: Mutex::new(Vec::new()),
        };
        (issuer, certificate.pem())
    }

    fn jwt(&self, subject: &str, access: serde_json::Value) -> String {
        use p256::ecdsa::signature::Signer;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.certificate]});
        let id = self.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // `aud` as a plain string: distribution 2.8 decodes it into a string, 3 takes both forms.
        let claims = json!({
            "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 5, "iat": now, "jti": format!("token-{id}"),
            "access": access,
        });
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        // JWS wants the raw 64-byte r||s, not the DER form.
        let signature: p256::ecdsa::Signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", b64(&signature.to_bytes()))
    }

    /// The token endpoint: bob:s3cret may pull and push anywhere, anyone may pull `public/*`.
    /// Like common token servers it grants what it can rather than refusing, so a request beyond
    /// the grant gets a token the registry then turns away.
    fn answer(&self, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let reply = |status: u16, body: serde_json::Value| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap()
        };
        let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok());
        let bob = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bob:s3cret")
        );
        let user = match auth {
            None => None,
            Some(a) if a == bob => Some("bob"),
            Some(_) => return reply(401, json!({"details": "wrong user name or password"})),
        };
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect();
        if !query.iter().any(|(k, v)| k == "service" && v == TOKEN_SERVICE) {
            return reply(400, json!({"details": "unknown service"}));
        }
        let mut access = Vec::new();
        for (_, scope) in query.iter().filter(|(k, _)| k == "scope") {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {scope}", user.unwrap_or("anonymous")));
            let mut parts = scope.splitn(3, ':');
            let (Some("repository"), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|action| match user {
                    Some(_) => matches!(*action, "pull" | "push"),
                    None => *action == "pull" && name.starts_with("public/"),
                })
                .collect();
            access.push(json!({"type": "repository", "name": name, "actions": granted}));
        }
        let token = self.jwt(user.unwrap_or(""), json!(access));
        // OAuth2-style servers answer `access_token`, docker's `token`: exercise both.
        if user.is_some() {
            reply(200, json!({"token": token, "expires_in": 300}))
        } else {
            reply(200, json!({"access_token": token, "expires_in": 300}))
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Pushes a two-platform image (index → amd64 and arm64 manifests, one layer each) under
/// `reference`; returns the index digest and the arm64 manifest with its layer.
fn push_two_platform_image(client: &Client, reference: &Reference) -> (String, String, Vec<u8>) {
    let mut entries = Vec::new();
    let mut arm64 = None;
    for arch in ["amd64", "arm64"] {
        let layer = format!("layer for {arch} of {}", reference.repository).into_bytes();
        let config = serde_json::to_vec(&json!({"architecture": arch, "os": "linux", "config": {}})).unwrap();
        let layer_digest = client.put_blob(reference, &layer).unwrap();
        let config_digest = client.put_blob(reference, &config).unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MediaTypes::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
        }))
        .unwrap();
        let digest = client
            .put_manifest(
                &reference.with_digest(&sha256_digest(&manifest)),
                &manifest,
                MediaTypes::OCI_MANIFEST,
            )
            .unwrap();
        entries.push(
            json!({"mediaType": MediaTypes::OCI_MANIFEST, "digest": digest, "size": manifest.len(),
                            "platform": {"os": "linux", "architecture": arch}}),
        );
        arm64 = Some((digest, layer));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MediaTypes::OCI_INDEX, "manifests": entries
    }))
    .unwrap();
    let index_digest = client
        .put_manifest(reference, &index, MediaTypes::OCI_INDEX)
        .unwrap();
    let (manifest_digest, layer) = arm64.unwrap();
    (index_digest, manifest_digest, layer)
}

fn client_as(registry: &str, credential: Option<(&str, &str)>) -> Client {
    let mut docker_config = DockerConfig::default();
    if let Some((username, password)) = credential {
        docker_config.insert(
            registry,
            Credential::Basic {
                username: username.into(),
                password: password.into(),
            },
        );
    }
    Client::new(ClientOptions {
        docker_config,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn token_auth_with_a_real_registry() {
    let (issuer, certificate_pem) = TokenIssuer::new();
    let issuer = Arc::new(issuer);
    let token_server = {
        let issuer = issuer.clone();
        serve(Arc::new(move |_, req| issuer.answer(req)))
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("token-signer.pem");
    std::fs::write(&bundle, certificate_pem).unwrap();
    let Some(registry) = palisade_registry::testing::LocalRegistry::start_with_token_auth(
        &format!("http://{token_server}/token"),
        TOKEN_ISSUER,
        TOKEN_SERVICE,
        &bundle,
    ) else {
        return;
    };
    let private = Reference::parse(&format!("{}/private/app:1.0", registry.addr)).unwrap();
    let public = Reference::parse(&format!("{}/public/app:1.0", registry.addr)).unwrap();

    let bob = client_as(&registry.addr, Some(("bob", "s3cret")));
    let (private_index, private_arm64, private_layer) = push_two_platform_image(&bob, &private);
    let (public_index, public_arm64, _) = push_two_platform_image(&bob, &public);

    let pulled = tempfile::tempdir().unwrap();
    let digests = bob
        .pull_to_layout(&private, "linux/arm64", pulled.path())
        .unwrap();
    assert_eq!(digests, (private_index, private_arm64.clone()));
    let blobs = pulled.path().join("blobs/sha256");
    let on_disk =
        std::fs::read(blobs.join(sha256_digest(&private_layer).trim_start_matches("sha256:"))).unwrap();
    assert_eq!(on_disk, private_layer);
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_digest(&std::fs::read(&path).unwrap()),
            format!("sha256:{name}"),
            "every pulled blob is stored under its digest"
        );
    }

    let anonymous = client_as(&registry.addr, None);
    let pulled = tempfile::tempdir().unwrap();
    assert_eq!(
        anonymous
            .pull_to_layout(&public, "linux/arm64", pulled.path())
            .unwrap(),
        (public_index, public_arm64)
    );
    let err = anonymous
        .pull_to_layout(&private, "linux/arm64", tempfile::tempdir().unwrap().path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("authentication failed: HTTP 401: anonymous")
            && err.contains("is not granted repository:private/app:pull")
            && err.contains("insufficient_scope"),
        "{err}"
    );
    let err = anonymous
        .put_blob(&public, b"anonymous push")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("anonymous") && err.contains("is not granted repository:public/app:pull,push"),
        "{err}"
    );

    let mallory = client_as(&registry.addr, Some(("bob", "guess")));
    let err = mallory.get_manifest(&private).unwrap_err().to_string();
    assert!(
        err.contains("authentication failed") && err.contains("HTTP 401"),
        "{err}"
    );

    // The registry checks the signer: the same grant from a key outside its bundle is refused.
    let (stranger, _) = TokenIssuer::new();
    let forged = stranger.jwt(
        "bob",
        json!([{"type": "repository", "name": "private/app", "actions": ["pull"]}]),
    );
    let url = format!("http://{}/v2/private/app/manifests/1.0", registry.addr);
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    );
    let status = |token: &str| {
        agent
            .get(&url)
            .header("Accept", MediaTypes::OCI_INDEX)
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status(&forged), 401);
    let genuine = issuer.jwt(
        "bob",
        json!([{"type": "repository", "name": "private/app", "actions": ["pull"]}]),
    );
    assert_eq!(status(&genuine), 200);

    let log = issuer.log.lock().unwrap().clone();
    for expected in [
        "bob repository:private/app:pull,push",
        "bob repository:private/app:pull",
        "anonymous repository:public/app:pull",
        "anonymous repository:private/app:pull",
    ] {
        assert!(log.iter().any(|l| l == expected), "{expected} in {log:?}");
    }
    assert!(
        log.iter()
            .filter(|l| *l == "bob repository:private/app:pull")
            .count()
            == 1,
        "one pull token serves the manifests and every blob: {log:?}"
    );
}
