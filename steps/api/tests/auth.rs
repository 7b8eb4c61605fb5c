//! The authorizer against a table of bad credentials, over HTTP and as a Lambda authorizer.

mod support;

use std::sync::atomic::Ordering;

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_api::auth::lambda::{AuthorizerError, authorize};
use sluice_api::{ApiState, Authorizer, router};
use sluice_core::Backends;
use sluice_core::testing::local_test_backends;
use sluice_tokens::{ApiKey, ApiKeyStore, StoredApiKey};
use support::{EC_KID, RSA_KID, TestIdp, issue_keys, seed_records, unsigned};

struct Setup {
    _dir: tempfile::TempDir,
    backends: Backends,
    idp: TestIdp,
    reader_key: String,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (_, backends) = local_test_backends(dir.path());
    seed_records(backends.records.as_ref(), "orders", 5).await;
    let (reader_key, _) = issue_keys(&backends, "orders").await;
    let idp = TestIdp::start().await;
    Setup {
        _dir: dir,
        backends,
        idp,
        reader_key,
    }
}

async fn stored_key(backends: &Backends, revoked: bool, valid_for: Duration) -> String {
    let key = ApiKey::generate();
    let now = Utc::now();
    ApiKeyStore::new(backends.control.clone())
        .create(&StoredApiKey {
            hash: key.hash(),
            dataset: "orders".into(),
            consumer: "test".into(),
            scopes: vec!["records:read".into()],
            created_at: now - Duration::days(10),
            valid_until: now + valid_for,
            revoked,
        })
        .await
        .unwrap();
    key.expose().to_string()
}

enum Credential {
    Bearer(String),
    Key(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused_with_the_right_status() {
    let s = setup().await;
    let idp = &s.idp;
    let now = Utc::now().timestamp();
    let with = |changes: Value| {
        let mut claims = idp.claims("records:read");
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let rs = |claims: Value| Credential::Bearer(idp.sign(Algorithm::RS256, Some(RSA_KID), &claims));

    let good = idp.rs256("records:read");
    let (head, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        with(json!({"scope": "records:read runs:start"})).to_string(),
    );
    let tampered = format!("{head}.{forged_payload}.{signature}");

    // Signed for real, with a `crit` extension this server does not implement (RFC 7515 4.1.11).
    let crit = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": RSA_KID, "crit": ["exp-sluice"], "exp-sluice": 1});
        let message = format!("{}.{}", b64(&header), b64(&with(json!({}))));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &idp.rsa, Algorithm::RS256).unwrap();
        format!("{message}.{signature}")
    };
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(RSA_KID.into());
    let hs256_with_public_key =
        jsonwebtoken::encode(&hs_header, &with(json!({})), &EncodingKey::from_secret(&idp.rsa_public)).unwrap();

    let valid_key = s.reader_key.clone();
    let mut bad_checksum = valid_key.clone().into_bytes();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'A' { b'B' } else { b'A' };

    let cases: Vec<(&str, Credential, StatusCode)> = vec![
        ("good RS256 token", rs(with(json!({}))), StatusCode::OK),
        (
            "good ES256 token",
            Credential::Bearer(idp.sign(Algorithm::ES256, Some(EC_KID), &with(json!({})))),
            StatusCode::OK,
        ),
        (
            "expired within the leeway",
            rs(with(json!({"exp": now - 10}))),
            StatusCode::OK,
        ),
        (
            "Cognito access token by client_id",
            rs(with(
                json!({"aud": null, "token_use": "access", "client_id": "cognito-app-client"}),
            )),
            StatusCode::OK,
        ),
        ("good API key", Credential::Key(valid_key.clone()), StatusCode::OK),
        ("expired", rs(with(json!({"exp": now - 120}))), StatusCode::UNAUTHORIZED),
        (
            "lives longer than the accepted day",
            rs(with(json!({"exp": now + 3 * 86_400}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no iat and an exp two days out",
            rs(with(json!({"iat": null, "exp": now + 2 * 86_400}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a crit header extension",
            Credential::Bearer(crit.clone()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not yet valid",
            rs(with(json!({"nbf": now + 120}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong issuer",
            rs(with(json!({"iss": "https://evil.example"}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "missing issuer",
            rs(with(json!({"iss": null}))),
            StatusCode::UNAUTHORIZED,
        ),
        ("missing exp", rs(with(json!({"exp": null}))), StatusCode::UNAUTHORIZED),
        (
            "wrong audience",
            rs(with(json!({"aud": "https://other.api"}))),
            StatusCode::UNAUTHORIZED,
        ),
        ("no audience", rs(with(json!({"aud": null}))), StatusCode::UNAUTHORIZED),
        (
            "Cognito id token",
            rs(with(json!({"token_use": "id", "client_id": "cognito-app-client"}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "Cognito token of another app client",
            rs(with(json!({"aud": null, "token_use": "access", "client_id": "other"}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "alg none",
            Credential::Bearer(unsigned(&json!({"alg": "none", "kid": RSA_KID}), &with(json!({})))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "HS256 signed with the public key",
            Credential::Bearer(hs256_with_public_key),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown kid",
            Credential::Bearer(idp.sign(Algorithm::RS256, Some("rotated-away"), &with(json!({})))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no kid",
            Credential::Bearer(idp.sign(Algorithm::RS256, None, &with(json!({})))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "ES256 header on the RSA key",
            Credential::Bearer(idp.sign(Algorithm::ES256, Some(RSA_KID), &with(json!({})))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "tampered payload",
            Credential::Bearer(tampered),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "garbage token",
            Credential::Bearer("a.b.c".into()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "missing scope",
            rs(with(json!({"scope": "profile"}))),
            StatusCode::FORBIDDEN,
        ),
        (
            "revoked API key",
            Credential::Key(stored_key(&s.backends, true, Duration::days(1)).await),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired API key",
            Credential::Key(stored_key(&s.backends, false, Duration::seconds(-1)).await),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "API key with a bad checksum",
            Credential::Key(String::from_utf8(bad_checksum).unwrap()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "well-formed but unknown API key",
            Credential::Key(ApiKey::generate().expose().to_string()),
            StatusCode::UNAUTHORIZED,
        ),
    ];

    let state = ApiState::new(idp.api_settings(), &s.backends).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let http = reqwest::Client::new();
    for (name, credential, expected) in cases {
        let request = http.get(format!("{base}/datasets/orders/records/0001"));
        let request = match &credential {
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::Key(key) => request.header("x-api-key", key),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let challenge = response.headers().get("www-authenticate").cloned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, expected, "{name}: {body}");
        match expected {
            StatusCode::UNAUTHORIZED => {
                assert_eq!(body["error"]["code"], "unauthorized", "{name}");
                assert_eq!(
                    challenge.unwrap(),
                    "Bearer realm=\"sluice\", error=\"invalid_token\"",
                    "{name}"
                );
                // The same answer whatever failed: nothing for an attacker to tell apart.
                assert!(
                    !body.to_string().contains("kid") && !body.to_string().contains("exp"),
                    "{name}"
                );
            }
            StatusCode::FORBIDDEN => assert_eq!(body["error"]["code"], "insufficient_scope", "{name}"),
            _ => assert_eq!(body["id"], "0001", "{name}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_ten_seconds() {
    let s = setup().await;
    let authorizer = Authorizer::from_settings(&s.idp.api_settings(), &s.backends).unwrap();
    let credentials = |token: String| sluice_api::auth::Credentials::Bearer(token);
    authorizer
        .authenticate(&credentials(s.idp.rs256("records:read")))
        .await
        .unwrap();
    assert_eq!(s.idp.jwks_requests.load(Ordering::SeqCst), 1);
    for n in 0..20 {
        let token = s.idp.sign(
            Algorithm::RS256,
            Some(&format!("made-up-{n}")),
            &s.idp.claims("records:read"),
        );
        assert!(authorizer.authenticate(&credentials(token)).await.is_err());
    }
    assert_eq!(
        s.idp.jwks_requests.load(Ordering::SeqCst),
        1,
        "unknown kids within 10 s of the last fetch cost no request"
    );
    // Known keys keep verifying from the cache meanwhile.
    authorizer
        .authenticate(&credentials(s.idp.sign(
            Algorithm::ES256,
            Some(EC_KID),
            &s.idp.claims("x"),
        )))
        .await
        .unwrap();
    assert_eq!(s.idp.jwks_requests.load(Ordering::SeqCst), 1);

    // Past the interval, an unknown kid (a key the IdP may just have rotated in) refetches once.
    tokio::time::sleep(std::time::Duration::from_millis(10_200)).await;
    for n in 0..5 {
        let token = s.idp.sign(
            Algorithm::RS256,
            Some(&format!("rotated-{n}")),
            &s.idp.claims("records:read"),
        );
        assert!(authorizer.authenticate(&credentials(token)).await.is_err());
    }
    assert_eq!(s.idp.jwks_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_authorizer_allows_denies_and_refuses() {
    let s = setup().await;
    let authorizer = Authorizer::from_settings(&s.idp.api_settings(), &s.backends).unwrap();
    let arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef/prod/GET/datasets/orders/records/0001";
    let rest_event = |headers: Value, method: &str, path: &str| json!({"type": "REQUEST", "methodArn": arn, "httpMethod": method, "path": path, "headers": headers});

    let allowed = authorize(
        &rest_event(
            json!({"x-api-key": s.reader_key}),
            "GET",
            "/datasets/orders/records/0001",
        ),
        &authorizer,
    )
    .await
    .unwrap();
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Resource"], arn);
    assert_eq!(allowed["context"]["dataset"], "orders");
    assert!(allowed["principalId"].as_str().unwrap().starts_with("k_"));
    assert!(!allowed.to_string().contains(&s.reader_key));

    let denied = authorize(
        &rest_event(json!({"x-api-key": s.reader_key}), "POST", "/runs"),
        &authorizer,
    )
    .await
    .unwrap();
    assert_eq!(denied["policyDocument"]["Statement"][0]["Effect"], "Deny");

    let refused = authorize(
        &rest_event(
            json!({"Authorization": "Bearer a.b.c"}),
            "GET",
            "/datasets/orders/records/0001",
        ),
        &authorizer,
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, AuthorizerError::Unauthorized));
    let diagnostic: lambda_runtime::Diagnostic = refused.into();
    assert_eq!(diagnostic.error_message, "Unauthorized");

    let http_api = json!({
        "version": "2.0", "type": "REQUEST", "rawPath": "/datasets/orders/records", "rawQueryString": "limit=5",
        "requestContext": {"http": {"method": "GET"}},
        "headers": {"authorization": format!("Bearer {}", s.idp.rs256("records:read"))},
    });
    let simple = authorize(&http_api, &authorizer).await.unwrap();
    assert_eq!(simple["isAuthorized"], true);
    assert_eq!(simple["context"]["method"], "jwt");
    let anonymous = json!({"version": "2.0", "rawPath": "/runs", "requestContext": {"http": {"method": "POST"}}});
    assert_eq!(authorize(&anonymous, &authorizer).await.unwrap()["isAuthorized"], false);
    assert!(matches!(
        authorize(&json!({"headers": {}}), &authorizer).await.unwrap_err(),
        AuthorizerError::BadEvent(_)
    ));
}
