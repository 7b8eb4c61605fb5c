//! What a run over the fixture mailbox (`fixtures/mail`) must leave behind, whatever the
//! backends and whether the functions run in process or as the real Lambda binaries: the
//! records, the ragged file's rejects, and consumer keys that open their dataset.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_core::secrets::SecretValue;
use sluice_core::{AttrValue, Backends, Config, ItemKey};
use tower::ServiceExt;

fn data(item: &sluice_core::Item) -> &std::collections::BTreeMap<String, AttrValue> {
    match &item["data"] {
        AttrValue::M(map) => map,
        other => panic!("data is {other:?}"),
    }
}

pub fn text(item: &sluice_core::Item, column: &str) -> String {
    match &data(item)[column] {
        AttrValue::S(s) => s.clone(),
        AttrValue::N(n) => n.clone(),
        other => panic!("{column} is {other:?}"),
    }
}

/// How many files this run moved to `state`, over every dataset (from the ledger summary).
pub fn moved_by_this_run(output: &Value, state: &str) -> u64 {
    output["ledger"]["this_run"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|counts| counts[state].as_u64())
        .sum()
}

/// What a run over the fixture mailbox must leave behind, whatever the backends.
pub async fn assert_fixture_dataset(backends: &Backends, output: &Value) {
    let ledger = &output["ledger"];
    // Under `ingest.on_bad_rows = "reject_rows"` the ragged CSV loads its good rows and its bad
    // ones go to the rejects file, named in the summary.
    assert_eq!(moved_by_this_run(output, "ingested"), 7, "{ledger:#?}");
    assert_eq!(moved_by_this_run(output, "quarantined"), 0, "{ledger:#?}");
    assert_eq!(ledger["not_final"], 0, "{ledger:#?}");
    assert_eq!(ledger["failed_total"], 0, "{ledger:#?}");
    let set_aside = ledger["set_aside"].as_array().unwrap();
    assert_eq!(set_aside.len(), 1, "{ledger:#?}");
    assert!(set_aside[0]["raw_key"].as_str().unwrap().contains("ragged_rows.csv"));
    assert!(
        set_aside[0]["reason"].as_str().unwrap().contains("rows rejected"),
        "{ledger:#?}"
    );

    let customer = backends
        .records
        .get(&ItemKey::new("customers", "C-001"))
        .await
        .unwrap()
        .unwrap();
    assert!(text(&customer, "email").starts_with("EMAIL_"), "emails are tokenized");
    assert!(text(&customer, "name").starts_with("NAME_"), "names are tokenized");
    assert_eq!(
        text(&customer, "phone"),
        "*******0101",
        "phones keep their last 4 digits"
    );
    assert_eq!(text(&customer, "country"), "US");
    let serialized = serde_json::to_string(&customer).unwrap();
    assert!(!serialized.contains("alice.martin"), "no plaintext PII in the table");

    let order = backends
        .records
        .get(&ItemKey::new("orders", "1001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&order)["amount"], AttrValue::N("129.90".into()));
    assert_eq!(
        text(&order, "ordered_at"),
        "2025-02-27",
        "dates are kept by the orders policy"
    );

    let price = backends
        .records
        .get(&ItemKey::new("prices", "1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        text(&price, "product"),
        "Crème brûlée",
        "windows-1252 converted to UTF-8"
    );

    let rejects = backends.objects.list("clean/ragged_rows/").await.unwrap();
    let rejects_key = rejects
        .iter()
        .find(|o| o.key.as_str().ends_with(".rejects.csv"))
        .expect("the bad rows sit in a rejects file beside the file");
    let rejected = backends.objects.get_bytes(&rejects_key.key, 1 << 20).await.unwrap();
    let rejected = String::from_utf8_lossy(&rejected).to_string();
    assert!(rejected.contains("line"), "each rejected row says why: {rejected}");
    let good = backends
        .records
        .get(&ItemKey::new("ragged_rows", "1"))
        .await
        .unwrap()
        .expect("a good row of the ragged file loaded");
    assert_eq!(text(&good, "name"), "first");

    let consumers = output["tokens"]["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 3);
    let serialized_output = output.to_string();
    assert!(
        !serialized_output.contains("slk_"),
        "no API key in the execution output"
    );
}

/// The issued consumer key opens the dataset through the REST API, and only that dataset's.
pub async fn assert_consumer_key_works(config: &Config, backends: &Backends) {
    let delivered = backends
        .secrets
        .get(&sluice_tokens::issue::secret_name("customers", "analytics"))
        .await
        .unwrap()
        .expect("the key was delivered into the consumer's secret");
    let delivered: Value = serde_json::from_str(delivered.expose()).unwrap();
    let key = SecretValue::new(delivered["api_key"].as_str().unwrap());
    let state = sluice_api::ApiState::from_config(config, backends).await.unwrap();
    let router = sluice_api::router(state);
    let get = |path: &str, key: &str| {
        Request::builder()
            .uri(path)
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap()
    };
    let answer = router
        .clone()
        .oneshot(get("/datasets/customers/records/C-001", key.expose()))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&answer.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(body.to_string().contains("*******0101"), "{body}");
    let other = router
        .clone()
        .oneshot(get("/datasets/orders/records/1001", key.expose()))
        .await
        .unwrap();
    assert!(
        matches!(other.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "a customers key does not read orders: {}",
        other.status()
    );
    let bad = router
        .oneshot(get("/datasets/customers/records/C-001", "slk_wrong"))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}
