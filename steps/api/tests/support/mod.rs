//! Test support: an identity provider with real RS256/ES256 keys served as a JWKS on loopback,
//! JWT minting, seeded records and issued API keys. Shared by the tests and the bench example.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sluice_api::{ApiSettings, JwtSettings};
use sluice_core::{AttrValue, Backends, Config, ItemKey, Table};
use sluice_tokens::issue::{TokenIssueDeps, run_at, secret_name};
use sluice_tokens::{TokenIssueInput, TokenSettings};

pub const AUDIENCE: &str = "https://api.sluice.test";
pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

pub struct TestIdp {
    pub issuer: String,
    pub rsa: EncodingKey,
    pub ec: EncodingKey,
    pub rsa_public: Vec<u8>,
    pub jwks_requests: Arc<AtomicU32>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

impl TestIdp {
    /// Generates fresh keys and serves their JWKS at `<issuer>/.well-known/jwks.json`.
    pub async fn start() -> TestIdp {
        let rsa_pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa_pair).unwrap();
        let rsa = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).unwrap();
        let rsa_public = aws_lc_rs::signature::KeyPair::public_key(&rsa_pair).as_ref().to_vec();
        let ec_pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let ec = EncodingKey::from_ec_der(ec_pair.to_pkcs8v1().unwrap().as_ref());

        let mut rsa_jwk = Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap();
        rsa_jwk.common.key_id = Some(RSA_KID.into());
        let mut ec_jwk = Jwk::from_encoding_key(&ec, Algorithm::ES256).unwrap();
        ec_jwk.common.key_id = Some(EC_KID.into());
        let jwks = serde_json::to_value(JwkSet {
            keys: vec![rsa_jwk, ec_jwk],
        })
        .unwrap();

        let jwks_requests = Arc::new(AtomicU32::new(0));
        let counter = jwks_requests.clone();
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestIdp {
            issuer: format!("http://{addr}"),
            rsa,
            ec,
            rsa_public,
            jwks_requests,
        }
    }

    pub fn jwt_settings(&self) -> JwtSettings {
        JwtSettings {
            issuer: self.issuer.clone(),
            audiences: vec![AUDIENCE.into()],
            client_ids: vec!["cognito-app-client".into()],
            leeway_secs: 30,
            ..JwtSettings::default()
        }
    }

    pub fn api_settings(&self) -> ApiSettings {
        ApiSettings {
            jwt: Some(self.jwt_settings()),
            ..ApiSettings::default()
        }
    }

    /// Claims a good token carries; tests change them.
    pub fn claims(&self, scope: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer, "sub": "machine-client@clients", "aud": AUDIENCE,
            "iat": now, "nbf": now - 5, "exp": now + 600, "scope": scope,
        })
    }

    pub fn sign(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        let key = match alg {
            Algorithm::RS256 => &self.rsa,
            Algorithm::ES256 => &self.ec,
            _ => panic!("sign only mints RS256 and ES256"),
        };
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    pub fn rs256(&self, scope: &str) -> String {
        self.sign(Algorithm::RS256, Some(RSA_KID), &self.claims(scope))
    }
}

/// A token with an arbitrary header and no real signature (for `alg: none`).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `count` records `0000`.. in `dataset`, each `{"name": "row N", "amount": N}`.
pub async fn seed_records(records: &dyn Table, dataset: &str, count: usize) {
    let items: Vec<_> = (0..count)
        .map(|n| {
            let mut item = ItemKey::new(dataset, format!("{n:04}")).to_item();
            let mut data = BTreeMap::new();
            data.insert("name".to_string(), AttrValue::S(format!("row {n}")));
            data.insert("amount".to_string(), AttrValue::N(n.to_string()));
            item.insert("data".into(), AttrValue::M(data));
            item
        })
        .collect();
    for chunk in items.chunks(25) {
        let mut pending = chunk.to_vec();
        while !pending.is_empty() {
            pending = records.batch_put(&pending).await.unwrap();
        }
    }
}

/// Issues keys through the token step for consumers `reader` (records:read), `operator`
/// (records:read + runs:start) and `auditor` (records:reidentify) of `dataset`, returning the
/// reader's and operator's delivered plain keys (the auditor's: [`delivered_key`]).
pub async fn issue_keys(backends: &Backends, dataset: &str) -> (String, String) {
    let text = format!(
        r#"
        [tokens.consumers.{dataset}.reader]
        scopes = ["records:read"]
        [tokens.consumers.{dataset}.operator]
        scopes = ["records:read", "runs:start"]
        [tokens.consumers.{dataset}.auditor]
        scopes = ["records:reidentify"]
        "#
    );
    let config = Config::from_toml(&text, "test", Path::new(".")).unwrap();
    let deps = TokenIssueDeps::new(backends, TokenSettings::from_config(&config).unwrap());
    let input = TokenIssueInput {
        dataset: Some(dataset.into()),
        rotate: false,
    };
    run_at(input, &deps, chrono::Utc::now()).await.unwrap();
    (
        delivered_key(backends, dataset, "reader").await,
        delivered_key(backends, dataset, "operator").await,
    )
}

/// The plain API key the token step delivered to `consumer` of `dataset`.
pub async fn delivered_key(backends: &Backends, dataset: &str, consumer: &str) -> String {
    let secret = backends
        .secrets
        .get(&secret_name(dataset, consumer))
        .await
        .unwrap()
        .unwrap();
    let json: Value = serde_json::from_str(secret.expose()).unwrap();
    json["api_key"].as_str().unwrap().to_string()
}
