//! A fake OAuth2 token endpoint that behaves as Cognito's does for the client-credentials
//! grant: `POST /oauth2/token` checks the client (HTTP Basic or form), grants the scopes the
//! client may have (all of them, or those asked for; `invalid_scope` otherwise), and answers
//! an RS256 access token (`token_use = access`, `client_id`, scopes prefixed by the resource
//! server); `GET /.well-known/jwks.json` serves its key. On loopback, for tests only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_lc_rs::encoding::AsDer;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The resource server's identifier, as Cognito prefixes its scopes (`sluice/records:read`).
pub const RESOURCE_SERVER: &str = "sluice";
const KID: &str = "fake-1";

#[derive(Clone)]
struct Client {
    secret: String,
    scopes: Vec<String>,
}

struct Shared {
    issuer: String,
    key: EncodingKey,
    jwks: Value,
    clients: BTreeMap<String, Client>,
    tokens_issued: AtomicU32,
}

pub struct FakeTokenEndpoint {
    shared: Arc<Shared>,
}

impl FakeTokenEndpoint {
    /// Serves on a free loopback port; `clients` are `(client_id, client_secret, scopes)`,
    /// scopes without the resource-server prefix.
    pub async fn start(clients: &[(&str, &str, &[&str])]) -> FakeTokenEndpoint {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(KID.into());
        let jwks = serde_json::to_value(JwkSet { keys: vec![jwk] }).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let clients = clients
            .iter()
            .map(|(id, secret, scopes)| {
                let client = Client {
                    secret: secret.to_string(),
                    scopes: scopes.iter().map(|s| format!("{RESOURCE_SERVER}/{s}")).collect(),
                };
                (id.to_string(), client)
            })
            .collect();
        let shared = Arc::new(Shared {
            issuer,
            key,
            jwks,
            clients,
            tokens_issued: AtomicU32::new(0),
        });
        let app = Router::new()
            .route("/oauth2/token", post(token))
            .route(
                "/.well-known/jwks.json",
                get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.jwks.clone()) }),
            )
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeTokenEndpoint { shared }
    }

    /// The `iss` of its tokens; the JWKS is at `<issuer>/.well-known/jwks.json`.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.shared.issuer)
    }

    /// Tokens issued so far (a cached token is not issued again).
    pub fn tokens_issued(&self) -> u32 {
        self.shared.tokens_issued.load(Ordering::SeqCst)
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// An `application/x-www-form-urlencoded` body as name -> value.
fn form(body: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

/// One form-encoded value (RFC 6749 2.3.1 encodes the Basic credentials so).
fn decode(text: &str) -> String {
    form(&format!("v={text}")).remove("v").unwrap_or_default()
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let form = form(&body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(id, secret)| (decode(id), decode(secret))));
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
        },
    };
    let Some(client) = shared.clients.get(&id).filter(|c| c.secret == secret) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let scopes: Vec<String> = match form.get("scope") {
        None => client.scopes.clone(),
        Some(asked) => {
            let asked: Vec<String> = asked.split_whitespace().map(str::to_string).collect();
            if asked.iter().any(|s| !client.scopes.contains(s)) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
            }
            asked
        }
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": shared.issuer, "sub": id, "client_id": id, "token_use": "access",
        "scope": scopes.join(" "), "iat": now, "exp": now + 3600, "jti": rand::random::<u64>().to_string(),
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let access_token = jsonwebtoken::encode(&header, &claims, &shared.key).unwrap();
    shared.tokens_issued.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600})).into_response()
}
