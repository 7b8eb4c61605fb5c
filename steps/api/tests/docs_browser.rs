//! `GET /docs` in a real browser: Debian's Chromium, headless, driven by playwright-core
//! (`tests/browser/docs.cjs`). The page loads from this server alone, lists every route of
//! the OpenAPI document, and "Try it out" with an issued API key, and with a JWT, returns a record.
//! `scripts/test.sh` installs both; without them this test fails, naming what is missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sluice_api::ApiState;
use sluice_core::testing::local_test_backends;
use support::{TestIdp, issue_keys, seed_records};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_lists_every_route_and_try_it_out_returns_a_record() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (scripts/test.sh does: apt-get install chromium)"
    );
    let modules = repository_root().join(".tools/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "playwright-core is missing from {}: scripts/test.sh installs it (npm install --prefix .tools playwright-core)",
        modules.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let (_, backends) = local_test_backends(dir.path());
    seed_records(backends.records.as_ref(), "orders", 5).await;
    let (reader_key, _) = issue_keys(&backends, "orders").await;
    let idp = TestIdp::start().await;
    let state = ApiState::new(idp.api_settings(), &backends).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { sluice_api::serve_on(listener, state).await.unwrap() });

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/docs.cjs");
    let bearer = idp.rs256("records:read");
    let run = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(script)
                .args([base.as_str(), reader_key.as_str(), bearer.as_str(), "orders", "0003"])
                .env("NODE_PATH", modules)
                .env("CHROMIUM", chromium)
                .output()
        })
    };
    let output = run.await.unwrap().expect("node is not installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    assert_eq!(result["error"], Value::Null, "{result}");
    assert_eq!(
        result["requests_outside"],
        serde_json::json!([]),
        "every asset is served here"
    );

    let document = sluice_api::openapi::document();
    let mut documented: Vec<String> = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    let mut listed: Vec<String> = result["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route.as_str().unwrap().to_string())
        .collect();
    documented.sort();
    listed.sort();
    assert_eq!(listed, documented, "the page lists every documented route");
    assert!(listed.contains(&"GET /datasets/{dataset}/records/{id}/reidentified".to_string()));

    for credential in ["with_api_key", "with_bearer"] {
        let answer = &result[credential];
        assert_eq!(answer["status"], "200", "{credential}: {result}");
        let record: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            record,
            serde_json::json!({"id": "0003", "name": "row 3", "amount": 3}),
            "{credential}"
        );
    }
}
