//! The client against registries on loopback: a scripted one that demands bearer tokens (anonymous
//! and with docker-config credentials), and Debian's real `docker-registry` for push, pull and a
//! multi-arch index.

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

/// A scripted registry: `private/app` needs a token granted to bob:s3cret, `public/app` takes an
/// anonymous token. Content is served from `objects` (path → (content type, bytes)).
fn start_mock(objects: Objects) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let log2 = log.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tx.send(addr).unwrap();
            let objects = Arc::new(objects);
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let objects = objects.clone();
                let log = log2.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let objects = objects.clone();
                        let log = log.clone();
                        async move { Ok::<_, std::convert::Infallible>(mock(&objects, &log, addr, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (rx.recv().unwrap(), log)
}

fn mock(
    objects: &Objects,
    log: &Mutex<Vec<String>>,
    addr: SocketAddr,
    req: Request<hyper::body::Incoming>,
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
