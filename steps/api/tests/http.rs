//! The API over HTTP on loopback, against the embedded backends and against moto.

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_api::{ApiState, RunStartError, RunStarted, RunStarter};
use sluice_core::Backends;
use sluice_core::testing::{aws_endpoint, aws_test_backends, local_test_backends};
use sluice_core::vault::{VaultCipher, vault_key_name};
use sluice_core::{AttrValue, ItemKey};
use support::{TestIdp, delivered_key, issue_keys, seed_records};

/// Records the inputs it was asked to start runs with.
#[derive(Default)]
struct RecordingStarter {
    inputs: Mutex<Vec<Value>>,
}

#[async_trait]
impl RunStarter for RecordingStarter {
    async fn start_run(&self, input: Value) -> Result<RunStarted, RunStartError> {
        let mut inputs = self.inputs.lock().unwrap();
        inputs.push(input);
        Ok(RunStarted {
            run_id: format!("run-{}", inputs.len()),
            started_at: chrono::Utc::now(),
        })
    }
}

struct Running {
    backends: Backends,
    base: String,
    http: reqwest::Client,
    reader_key: String,
    operator_key: String,
    idp: TestIdp,
    starter: Arc<RecordingStarter>,
}

impl Running {
    async fn start(backends: Backends) -> Running {
        seed_records(backends.records.as_ref(), "orders", 250).await;
        seed_records(backends.records.as_ref(), "people", 3).await;
        let (reader_key, operator_key) = issue_keys(&backends, "orders").await;
        let _ = issue_keys(&backends, "people").await;
        let idp = TestIdp::start().await;
        let starter = Arc::new(RecordingStarter::default());
        let callback = Router::new().route("/oauth/callback", get(|| async { "callback reached" }));
        let state = ApiState::new(idp.api_settings(), &backends)
            .await
            .unwrap()
            .with_run_starter(starter.clone())
            .with_routes(callback);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { sluice_api::serve_on(listener, state).await.unwrap() });
        Running {
            backends,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            reader_key,
            operator_key,
            idp,
            starter,
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn single_records_are_served_with_a_key_from_header_query_or_cookie(backends: Backends) {
    let api = Running::start(backends).await;
    let expected = json!({"id": "0042", "name": "row 42", "amount": 42});
    let by_header = api
        .get("/datasets/orders/records/0042")
        .header("x-api-key", &api.reader_key);
    let by_query = api.get(&format!("/datasets/orders/records/0042?api_key={}", api.reader_key));
    let by_cookie = api
        .get("/datasets/orders/records/0042")
        .header("cookie", format!("lang=en; api_key={}", api.reader_key));
    let by_jwt = api
        .get("/datasets/orders/records/0042")
        .bearer_auth(api.idp.rs256("records:read"));
    for request in [by_header, by_query, by_cookie, by_jwt] {
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!((status, body), (StatusCode::OK, expected.clone()));
    }
}

async fn other_datasets_look_exactly_like_missing_ones(backends: Backends) {
    let api = Running::start(backends).await;
    let fetch = |path: &'static str| api.get(path).header("x-api-key", &api.reader_key).send();
    let missing_record = json_of(fetch("/datasets/orders/records/9999").await.unwrap()).await;
    let other_dataset = json_of(fetch("/datasets/people/records/0001").await.unwrap()).await;
    let no_dataset = json_of(fetch("/datasets/nope/records/0001").await.unwrap()).await;
    assert_eq!(missing_record.0, StatusCode::NOT_FOUND);
    assert_eq!(missing_record.1["error"]["code"], "not_found");
    assert_eq!(other_dataset, missing_record);
    assert_eq!(no_dataset, missing_record);
    // A JWT limited to one dataset is treated the same way.
    let orders_only = api.idp.rs256("records:read:orders");
    let response = api
        .get("/datasets/people/records/0001")
        .bearer_auth(&orders_only)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await, missing_record);
}

async fn batch_get_answers_in_request_order_and_names_the_missing(backends: Backends) {
    let api = Running::start(backends).await;
    let mut ids: Vec<String> = (0..98).map(|n| format!("{:04}", 249 - n)).collect();
    ids.push("0249".into()); // a duplicate
    ids.push("nope".into());
    let response = api
        .post("/datasets/orders/records:batchGet")
        .header("x-api-key", &api.reader_key)
        .json(&json!({ "ids": ids }))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 98);
    assert_eq!(records[0]["id"], "0249");
    assert_eq!(records[97]["id"], "0152");
    assert_eq!(body["missing"], json!(["nope"]));

    let too_many: Vec<String> = (0..101).map(|n| format!("{n:04}")).collect();
    let bad_bodies = [
        json!({ "ids": too_many }).to_string(),
        json!({ "ids": [] }).to_string(),
        json!({ "ids": [""] }).to_string(),
        json!({ "id": ["0001"] }).to_string(),
        "{\"ids\": [".to_string(),
        "not json".to_string(),
    ];
    for bad in bad_bodies {
        let response = api
            .post("/datasets/orders/records:batchGet")
            .header("x-api-key", &api.reader_key)
            .header("content-type", "application/json")
            .body(bad.clone())
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "invalid_request", "{bad}");
    }
}

async fn pages_cover_the_dataset_once_and_cursors_cannot_be_forged(backends: Backends) {
    let api = Running::start(backends).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/datasets/orders/records?limit=100".to_string();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = json_of(
            api.get(&path)
                .header("x-api-key", &api.reader_key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        seen.extend(
            body["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..250).map(|n| format!("{n:04}")).collect();
    assert_eq!(seen, expected);

    let (_, first) = json_of(
        api.get("/datasets/orders/records?limit=2")
            .header("x-api-key", &api.reader_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] ^= 1;
    let tampered = String::from_utf8(tampered).unwrap();
    let all_datasets = api.idp.rs256("records:read");
    for (path, code) in [
        (format!("/datasets/orders/records?cursor={tampered}"), "invalid_cursor"),
        (format!("/datasets/people/records?cursor={cursor}"), "invalid_cursor"),
        ("/datasets/orders/records?limit=0".to_string(), "invalid_request"),
        ("/datasets/orders/records?limit=abc".to_string(), "invalid_request"),
        ("/datasets/orders/records?limit=1001".to_string(), "invalid_request"),
    ] {
        let (status, body) = json_of(api.get(&path).bearer_auth(&all_datasets).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
}

async fn runs_start_only_with_the_runs_scope(backends: Backends) {
    let api = Running::start(backends).await;
    let response = api
        .post("/runs")
        .header("x-api-key", &api.reader_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let response = api
        .post("/runs")
        .header("x-api-key", &api.operator_key)
        .json(&json!({"mailbox": "inbox"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["run_id"], "run-1");
    let by_jwt = api
        .post("/runs")
        .bearer_auth(api.idp.rs256("runs:start"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_jwt.status(), StatusCode::ACCEPTED);
    assert_eq!(
        *api.starter.inputs.lock().unwrap(),
        vec![json!({"mailbox": "inbox"}), json!({})]
    );
    let not_object = api
        .post("/runs")
        .header("x-api-key", &api.operator_key)
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(not_object).await.1["error"]["code"], "invalid_request");
    let unknown_option = api
        .post("/runs")
        .header("x-api-key", &api.operator_key)
        .json(&json!({"retry_failed": true, "retry_everything": true}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(unknown_option).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("retry_everything"), "{body}");
    let retry = api
        .post("/runs")
        .header("x-api-key", &api.operator_key)
        .json(&json!({"retry_failed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    // A page on another site can make the browser send cookies, not headers: no run from a
    // cookie credential (CSRF).
    let started = api.starter.inputs.lock().unwrap().len();
    let by_cookie = api
        .post("/runs")
        .header("cookie", format!("api_key={}", api.operator_key))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.starter.inputs.lock().unwrap().len(), started, "no run started");
}

async fn openapi_is_public_and_every_documented_route_is_served(backends: Backends) {
    let api = Running::start(backends).await;
    let (status, document) = json_of(api.get("/openapi.json").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 6);
    for (path, operations) in paths {
        if path == "/openapi.json" {
            continue;
        }
        let concrete = path.replace("{dataset}", "orders").replace("{id}", "0001");
        for method in operations.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => api.get(&concrete),
                "post" => api.post(&concrete),
                other => panic!("unexpected method {other}"),
            };
            // Unauthenticated: a served route answers 401 (the fallback would say 404).
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"sluice\"");
        }
    }
    let callback = api.get("/oauth/callback").send().await.unwrap();
    assert_eq!(callback.text().await.unwrap(), "callback reached");
    let unknown = api.get("/nothing/here").send().await.unwrap();
    assert_eq!(json_of(unknown).await.1["error"]["code"], "not_found");
}

/// Seals `value` under `token` in `dataset`'s vault, as the mask step does.
async fn vault_put(backends: &Backends, dataset: &str, token: &str, value: &str) {
    let key = sluice_core::secrets::key_or_create(backends.secrets.as_ref(), &vault_key_name(dataset))
        .await
        .unwrap();
    let cipher = VaultCipher::new(dataset, &key);
    let item = cipher.item(token, "EMAIL".into(), cipher.seal(token, value));
    assert!(backends.control.batch_put(&[item]).await.unwrap().is_empty());
}

async fn reidentification_needs_its_scope_and_stays_in_its_dataset(backends: Backends) {
    let api = Running::start(backends).await;
    let backends = &api.backends;
    let ana = "EMAIL_0123456789abcdef0123456789abcdef";
    let phone = "PHONE_NUMBER_ffffffffffffffff0000000000000000";
    let people_token = "EMAIL_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    vault_put(backends, "orders", ana, "ana@example.test").await;
    vault_put(backends, "orders", phone, "+1 555 0100").await;
    vault_put(backends, "people", people_token, "bo@example.test").await;
    let mut item = ItemKey::new("orders", "T-1").to_item();
    let data = std::collections::BTreeMap::from([
        ("email".to_string(), AttrValue::S(ana.into())),
        ("note".to_string(), AttrValue::S(format!("call {phone} or mail {ana}."))),
        ("copied".to_string(), AttrValue::S(people_token.into())),
        ("amount".to_string(), AttrValue::N("7".into())),
    ]);
    item.insert("data".into(), AttrValue::M(data));
    assert!(backends.records.batch_put(&[item]).await.unwrap().is_empty());
    let auditor = delivered_key(backends, "orders", "auditor").await;
    let people_auditor = delivered_key(backends, "people", "auditor").await;

    let path = "/datasets/orders/records/T-1/reidentified";
    let (status, body) = json_of(api.get(path).header("x-api-key", &auditor).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": "T-1", "email": "ana@example.test", "note": "call +1 555 0100 or mail ana@example.test.",
               "copied": people_token, "amount": 7}),
        "another dataset's token is not restored"
    );
    // The plain read still shows tokens; reading scopes alone cannot re-identify.
    let plain = json_of(
        api.get("/datasets/orders/records/T-1")
            .header("x-api-key", &api.reader_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(plain.1["email"], ana);
    for key in [&api.reader_key, &api.operator_key] {
        let (status, body) = json_of(api.get(path).header("x-api-key", key).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "insufficient_scope");
    }
    let by_reader_jwt = api
        .get(path)
        .bearer_auth(api.idp.rs256("records:read"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_reader_jwt.status(), StatusCode::FORBIDDEN);
    // Another dataset's auditor sees nothing here, exactly like a missing record.
    let (status, body) = json_of(api.get(path).header("x-api-key", &people_auditor).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let by_jwt = api
        .get(path)
        .bearer_auth(api.idp.rs256("records:reidentify:orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(by_jwt).await.1["email"], "ana@example.test");
    let missing = api
        .get("/datasets/orders/records/nope/reidentified")
        .header("x-api-key", &auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// Answers the handlers did not make (a method the route does not take, a body over the
/// limit, a path that is not UTF-8, an unknown route) are the same JSON envelope.
async fn every_error_answers_the_json_envelope(backends: Backends) {
    let api = Running::start(backends).await;
    let cases = [
        (api.get("/runs").send().await.unwrap(), 405, "method_not_allowed"),
        (
            api.post("/datasets/orders/records:batchGet")
                .header("x-api-key", &api.reader_key)
                .header("content-type", "application/json")
                .body(vec![b' '; 600 * 1024])
                .send()
                .await
                .unwrap(),
            413,
            "payload_too_large",
        ),
        (
            api.get("/datasets/%FF%FE/records/1")
                .header("x-api-key", &api.reader_key)
                .send()
                .await
                .unwrap(),
            400,
            "invalid_request",
        ),
        (api.get("/nowhere").send().await.unwrap(), 404, "not_found"),
        (
            api.get(&format!("/datasets/orders/records/{}", "a".repeat(10_000)))
                .header("x-api-key", &api.reader_key)
                .send()
                .await
                .unwrap(),
            414,
            "uri_too_long",
        ),
        (
            api.get("/datasets/orders/records/1")
                .header("x-api-key", &api.reader_key)
                .header("x-padding", "p".repeat(100_000))
                .send()
                .await
                .unwrap(),
            431,
            "headers_too_large",
        ),
        (
            (0..150)
                .fold(api.get("/datasets/orders/records/1"), |request, n| {
                    request.header(format!("x-field-{n}"), "v")
                })
                .header("x-api-key", &api.reader_key)
                .send()
                .await
                .unwrap(),
            431,
            "headers_too_large",
        ),
    ];
    for (response, status, code) in cases {
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        let allow = response.headers().get("allow").cloned();
        let (got, body) = json_of(response).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert!(content_type.starts_with("application/json"), "{content_type}");
        assert_eq!(body["error"]["code"], code, "{body}");
        if status == 405 {
            assert!(allow.is_some(), "a 405 keeps its Allow header");
        }
    }
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
    single_records_are_served_with_a_key_from_header_query_or_cookie,
    other_datasets_look_exactly_like_missing_ones,
    batch_get_answers_in_request_order_and_names_the_missing,
    pages_cover_the_dataset_once_and_cursors_cannot_be_forged,
    runs_start_only_with_the_runs_scope,
    openapi_is_public_and_every_documented_route_is_served,
    every_error_answers_the_json_envelope,
    reidentification_needs_its_scope_and_stays_in_its_dataset,
);
