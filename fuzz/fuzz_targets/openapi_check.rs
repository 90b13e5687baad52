//! Fuzzes the API-protection engine: requests (method, path, query, headers, content type, body)
//! against the pet-store model, OpenAPI documents themselves, and JWTs against an HS256 + JWKS
//! verifier. Properties: no panic, bounded time and memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::api::{ApiModel, ApiRequest, JwtVerifier};
use std::sync::OnceLock;

const PETS: &[u8] = include_bytes!("../../crates/waf/tests/fixtures/api/petstore-3.1.yaml");
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"];
const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "image/png",
    "multipart/form-data",
];
const JWKS: &str = r#"{"keys": [{"kty": "EC", "kid": "ec", "crv": "P-256",
  "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fn text(b: Option<&[u8]>) -> &str {
    std::str::from_utf8(b.unwrap_or_default()).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    static MODEL: OnceLock<ApiModel> = OnceLock::new();
    static JWT: OnceLock<JwtVerifier> = OnceLock::new();
    let model =
        MODEL.get_or_init(|| ApiModel::from_document(PETS, "petstore-3.1.yaml").expect("fixture loads"));
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            let _ = ApiModel::from_document(rest, "fuzz.yaml").map(|m| {
                let _ = m.check(&ApiRequest::new("GET", "/"));
            });
        }
        1 => {
            let jwt = JWT.get_or_init(|| {
                JwtVerifier::builder()
                    .hs256_secret(b"fuzz secret")
                    .jwks(JWKS.as_bytes(), "jwks.json")
                    .expect("jwks loads")
                    .audience("api")
                    .build()
                    .expect("verifier builds")
            });
            if let Ok(token) = std::str::from_utf8(rest) {
                let _ = jwt.verify(token, 1_800_000_000);
            }
        }
        _ => {
            // Layout: method/content-type byte, then path \0 query \0 header value \0 body.
            let Some((&pick, rest)) = rest.split_first() else {
                return;
            };
            let mut parts = rest.splitn(4, |&c| c == 0);
            let path = text(parts.next());
            let query = text(parts.next());
            let header = parts.next().unwrap_or_default();
            let body = parts.next().unwrap_or_default();
            let req = ApiRequest {
                method: METHODS[pick as usize % METHODS.len()],
                path,
                query,
                headers: vec![
                    ("Cookie", header),
                    ("X-Request-Id", header),
                    ("Access-Control-Request-Method", header),
                ],
                content_type: Some(CONTENT_TYPES[(pick as usize / 8) % CONTENT_TYPES.len()]),
                body,
            };
            let _ = model.check(&req);
        }
    }
});
