//! The client-credentials library against a local token endpoint, on SQLite and moto.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use sluice_core::testing::{aws_endpoint, aws_test_backends, local_test_backends};
use sluice_core::{Backends, ItemKey, SecretValue, StepError};
use sluice_tokens::client_credentials::{ClientCredentials, ClientCredentialsSettings};

/// A token endpoint that fails the first `failures` requests with 503, answers slowly, and
/// counts what it saw.
#[derive(Clone)]
struct TokenServer {
    requests: Arc<AtomicU32>,
    failures: u32,
    status_after_failures: StatusCode,
}

async fn token_endpoint(State(server): State<TokenServer>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let seen = server.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if seen < server.failures {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy".to_string());
    }
    if server.status_after_failures != StatusCode::OK {
        return (
            server.status_after_failures,
            r#"{"error":"invalid_client"}"#.to_string(),
        );
    }
    // client-id:s3cr%3Et (the secret `s3cr>t` form-encoded), in Basic.
    let expected = "Basic Y2xpZW50LWlkOnMzY3IlM0V0";
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected)
        || !body.contains("grant_type=client_credentials")
        || !body.contains("scope=reports%3Aread")
    {
        return (StatusCode::BAD_REQUEST, r#"{"error":"invalid_request"}"#.to_string());
    }
    (
        StatusCode::OK,
        format!(r#"{{"access_token":"tok-{seen}","token_type":"Bearer","expires_in":3600}}"#),
    )
}

async fn start(failures: u32, status_after_failures: StatusCode) -> (String, Arc<AtomicU32>) {
    let requests = Arc::new(AtomicU32::new(0));
    let server = TokenServer {
        requests: requests.clone(),
        failures,
        status_after_failures,
    };
    let app = Router::new()
        .route("/oauth/token", post(token_endpoint))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/oauth/token"), requests)
}

fn settings(token_url: &str, retries: u32) -> ClientCredentialsSettings {
    ClientCredentialsSettings {
        token_url: token_url.to_string(),
        client_id: "client-id".into(),
        client_secret_name: "clients/reports/secret".into(),
        scope: Some("reports:read".into()),
        retries,
        retry_interval_ms: 10,
        ..Default::default()
    }
}

async fn client(backends: &Backends, url: &str, retries: u32) -> ClientCredentials {
    backends
        .secrets
        .put("clients/reports/secret", &SecretValue::new("s3cr>t"))
        .await
        .unwrap();
    ClientCredentials::new(
        "reports",
        settings(url, retries),
        backends.control.clone(),
        backends.secrets.clone(),
    )
    .unwrap()
}

async fn concurrent_callers_share_one_fetch_and_the_cache_is_encrypted(backends: Backends) {
    let (url, requests) = start(0, StatusCode::OK).await;
    let client = Arc::new(client(&backends, &url, 0).await);
    let calls = (0..16).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.token().await.unwrap() })
    });
    let tokens = futures_join(calls).await;
    assert_eq!(requests.load(Ordering::SeqCst), 1, "one fetch for sixteen callers");
    assert!(tokens.iter().all(|t| t.secret.expose() == "tok-0"));

    let stored = backends
        .control
        .get(&ItemKey::new("cctoken#reports", "token"))
        .await
        .unwrap()
        .expect("the token is cached in the control table");
    let text = serde_json::to_string(&stored).unwrap();
    assert!(!text.contains("tok-0"), "the cached token is encrypted");

    // Another process (a second Lambda) reads the shared cache instead of fetching.
    let other = ClientCredentials::new(
        "reports",
        settings(&url, 0),
        backends.control.clone(),
        backends.secrets.clone(),
    )
    .unwrap();
    assert_eq!(other.token().await.unwrap().secret.expose(), "tok-0");
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // After invalidation the next call fetches a new one.
    other.invalidate().await.unwrap();
    assert_eq!(other.token().await.unwrap().secret.expose(), "tok-1");
}

async fn two_processes_fetch_once_between_them(backends: Backends) {
    let (url, requests) = start(0, StatusCode::OK).await;
    let first = client(&backends, &url, 0).await;
    let second = client(&backends, &url, 0).await;
    let (a, b) = tokio::join!(first.token(), second.token());
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

async fn failures_are_retried_the_configured_number_of_times(backends: Backends) {
    let (url, requests) = start(2, StatusCode::OK).await;
    let client = client(&backends, &url, 2).await;
    assert_eq!(client.token().await.unwrap().secret.expose(), "tok-2");
    assert_eq!(requests.load(Ordering::SeqCst), 3);

    let (url, requests) = start(10, StatusCode::OK).await;
    let client = ClientCredentials::new(
        "flaky",
        settings(&url, 1),
        backends.control.clone(),
        backends.secrets.clone(),
    )
    .unwrap();
    let err = client.token().await.unwrap_err();
    assert_eq!(err.error_name(), "Auth.TokenEndpointUnavailable");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

async fn a_refused_client_is_not_retried_and_the_secret_is_not_echoed(backends: Backends) {
    let (url, requests) = start(0, StatusCode::UNAUTHORIZED).await;
    let client = client(&backends, &url, 3).await;
    let err = client.token().await.unwrap_err();
    assert_eq!(err.error_name(), "Auth.TokenRejected");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    let message = err.to_string();
    assert!(
        message.contains("invalid_client") && message.contains("401"),
        "{message}"
    );
    assert!(!message.contains("s3cr"));
}

async fn futures_join<T: Send + 'static>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let (_, backends) = super::local_test_backends(dir.path());
                    super::$name(backends).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(endpoint) = super::aws_endpoint() else { return };
                    let (_, backends) = super::aws_test_backends(&endpoint).await;
                    super::$name(backends).await;
                }
            )*
        }
    };
}

on_both_backends!(
    concurrent_callers_share_one_fetch_and_the_cache_is_encrypted,
    two_processes_fetch_once_between_them,
    failures_are_retried_the_configured_number_of_times,
    a_refused_client_is_not_retried_and_the_secret_is_not_echoed,
);

#[test]
fn plain_http_token_urls_are_refused_off_loopback() {
    let mut bad = settings("http://idp.example.com/token", 0);
    assert!(bad.check().unwrap_err().contains("token_url"));
    bad.token_url = "https://idp.example.com/token".into();
    bad.client_id = " ".into();
    assert!(bad.check().unwrap_err().contains("client_id"));
}
