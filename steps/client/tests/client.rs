//! The client against the real API on loopback, authorized by the fake Cognito-like token
//! endpoint: a consumer gets a token (once, shared), reads records, and is refused without
//! the scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sluice_api::{ApiSettings, ApiState, JwtSettings};
use sluice_client::testing::{FakeTokenEndpoint, RESOURCE_SERVER};
use sluice_client::{ClientError, SluiceClient};
use sluice_core::testing::local_test_backends;
use sluice_core::{AttrValue, Backends, ItemKey, SecretValue};
use sluice_tokens::client_credentials::{ClientCredentials, ClientCredentialsSettings};

async fn seed(backends: &Backends) {
    let items: Vec<_> = ["0001", "0002", "a/b?c"]
        .iter()
        .map(|id| {
            let mut item = ItemKey::new("orders", *id).to_item();
            let data = BTreeMap::from([("amount".to_string(), AttrValue::N("5".into()))]);
            item.insert("data".into(), AttrValue::M(data));
            item
        })
        .collect();
    assert!(backends.records.batch_put(&items).await.unwrap().is_empty());
}

async fn serve(backends: &Backends, idp: &FakeTokenEndpoint) -> String {
    let settings = ApiSettings {
        jwt: Some(JwtSettings {
            issuer: idp.issuer().to_string(),
            client_ids: vec!["reader-app".into(), "ops-app".into()],
            scope_prefix: format!("{RESOURCE_SERVER}/"),
            ..JwtSettings::default()
        }),
        ..ApiSettings::default()
    };
    let state = ApiState::new(settings, backends).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { sluice_api::serve_on(listener, state).await.unwrap() });
    base
}

async fn credentials(backends: &Backends, idp: &FakeTokenEndpoint, client_id: &str, secret: &str) -> ClientCredentials {
    let secret_name = format!("clients/{client_id}");
    backends
        .secrets
        .put(&secret_name, &SecretValue::new(secret))
        .await
        .unwrap();
    let settings = ClientCredentialsSettings {
        token_url: idp.token_url(),
        client_id: client_id.into(),
        client_secret_name: secret_name,
        ..ClientCredentialsSettings::default()
    };
    ClientCredentials::new(client_id, settings, backends.control.clone(), backends.secrets.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_records_with_one_shared_token_and_is_refused_without_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (_, backends) = local_test_backends(dir.path());
    seed(&backends).await;
    let idp = FakeTokenEndpoint::start(&[
        ("reader-app", "s3cret-r", &["records:read"]),
        ("ops-app", "s3cret-o", &["runs:start"]),
        ("audit-app", "s3cret-a", &["records:reidentify"]),
    ])
    .await;
    let base = serve(&backends, &idp).await;

    let reader =
        Arc::new(SluiceClient::new(&base, credentials(&backends, &idp, "reader-app", "s3cret-r").await).unwrap());
    let record = reader.get_record("orders", "0002").await.unwrap();
    assert_eq!(record, Some(json!({"id": "0002", "amount": 5})));
    // An id with a slash and a question mark is one path segment, encoded.
    let odd = reader.get_record("orders", "a/b?c").await.unwrap();
    assert_eq!(odd, Some(json!({"id": "a/b?c", "amount": 5})));
    assert_eq!(reader.get_record("orders", "9999").await.unwrap(), None);
    let batch = reader.batch_get("orders", &["0001", "nope"]).await.unwrap();
    assert_eq!((batch.records.len(), batch.missing), (1, vec!["nope".to_string()]));
    let page = reader.list_records("orders", Some(2), None).await.unwrap();
    assert_eq!(page.records.len(), 2);
    let rest = reader
        .list_records("orders", Some(2), page.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(rest.records.len(), 1);

    // Twenty concurrent reads, then another process's client: still the one token.
    let reads: Vec<_> = (0..20)
        .map(|_| {
            let reader = reader.clone();
            tokio::spawn(async move { reader.get_record("orders", "0001").await })
        })
        .collect();
    for read in reads {
        assert!(read.await.unwrap().unwrap().is_some());
    }
    let other_process = SluiceClient::new(&base, credentials(&backends, &idp, "reader-app", "s3cret-r").await).unwrap();
    assert!(other_process.get_record("orders", "0001").await.unwrap().is_some());
    assert_eq!(
        idp.tokens_issued(),
        1,
        "one token, cached (encrypted) in the control table"
    );

    let operator = SluiceClient::new(&base, credentials(&backends, &idp, "ops-app", "s3cret-o").await).unwrap();
    match operator.get_record("orders", "0001").await {
        Err(ClientError::Api {
            status: 403,
            code,
            message,
        }) => {
            assert_eq!(code, "insufficient_scope");
            assert!(message.contains("records:read"), "{message}");
        }
        other => panic!("expected a 403, got {other:?}"),
    }

    let wrong_secret = SluiceClient::new(&base, credentials(&backends, &idp, "audit-app", "guess").await).unwrap();
    let refused = wrong_secret.get_record("orders", "0001").await.unwrap_err();
    assert!(matches!(refused, ClientError::Token(_)), "{refused}");
    assert!(
        !refused.to_string().contains("guess"),
        "the secret is never echoed: {refused}"
    );
}

#[tokio::test]
async fn a_base_url_that_is_not_http_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_, backends) = local_test_backends(dir.path());
    let idp = FakeTokenEndpoint::start(&[]).await;
    for url in ["ftp://example.com", "not a url", "mailto:a@b"] {
        let Err(err) = SluiceClient::new(url, credentials(&backends, &idp, "x", "y").await) else {
            panic!("{url} was accepted");
        };
        assert!(err.to_string().contains(url), "{err}");
    }
}
