//! `sluice-incoming` over SQS batches of S3 events: each object version registered and handed
//! on once however often it is delivered; a message it cannot handle is a batch item failure
//! (SQS delivers it again, then dead-letters it) while the rest of the batch goes on.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use sluice_core::testing::local_test_backends;
use sluice_core::{ObjectKey, PutOptions};
use sluice_functions::incoming::{IncomingDeps, UploadStarter, handle_batch};

/// Records what it is asked to start; refuses while `refusing` is set.
#[derive(Default)]
struct RecordingStarter {
    started: Mutex<Vec<(String, Value)>>,
    refusing: Mutex<bool>,
}

#[async_trait]
impl UploadStarter for RecordingStarter {
    async fn start(&self, name: &str, input: &Value) -> Result<(), String> {
        if *self.refusing.lock().unwrap() {
            return Err("Step Functions is unavailable".into());
        }
        self.started.lock().unwrap().push((name.to_string(), input.clone()));
        Ok(())
    }
}

fn s3_notification(message_id: &str, encoded_key: &str) -> Value {
    let body = json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "sluice"}, "object": {"key": encoded_key, "size": 12}},
    }]});
    json!({"messageId": message_id, "body": body.to_string()})
}

fn eventbridge(message_id: &str, key: &str) -> Value {
    let body = json!({
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "sluice"}, "object": {"key": key, "size": 12}},
    });
    json!({"messageId": message_id, "body": body.to_string()})
}

async fn setup(dir: &std::path::Path) -> (IncomingDeps, Arc<RecordingStarter>) {
    let (config, backends) = local_test_backends(dir);
    for key in ["incoming/orders/jan 2026.csv", "incoming/stock/feb.csv"] {
        backends
            .objects
            .put_bytes(
                &ObjectKey::new(key).unwrap(),
                bytes::Bytes::from_static(b"id,qty\n1,2\n"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
    }
    let starter = Arc::new(RecordingStarter::default());
    let deps = IncomingDeps {
        config: Arc::new(config),
        backends,
        starter: starter.clone(),
    };
    (deps, starter)
}

#[tokio::test]
async fn each_upload_is_handed_on_once_however_often_it_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (deps, starter) = setup(dir.path()).await;
    let batch = json!({"Records": [
        s3_notification("m1", "incoming/orders/jan+2026.csv"),
        // The same event delivered twice in one batch, and once more through EventBridge.
        s3_notification("m2", "incoming/orders/jan+2026.csv"),
        eventbridge("m3", "incoming/stock/feb.csv"),
        // S3's check of a new notification target.
        json!({"messageId": "m4", "body": json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}).to_string()}),
    ]});
    let answer = handle_batch(&batch, &deps).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let started = starter.started.lock().unwrap().clone();
    // The duplicate starts the same execution name again: Step Functions takes it as the same
    // execution (an execution of that name exists), so nothing runs twice.
    let names: std::collections::BTreeSet<_> = started.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(names.len(), 2, "{started:?}");
    for (name, input) in &started {
        assert!(name.starts_with("upload-") && name.len() <= 80, "{name}");
        let file = &input["files"][0];
        assert!(file["raw_key"].as_str().unwrap().starts_with("raw/"), "{input}");
        assert_eq!(file["ledger"]["mailbox"], "uploads");
        assert_eq!(file["ledger"]["run"], name.as_str());
    }
    // Delivered again after it was done: the ledger says so, nothing starts.
    let ledger = sluice_core::ledger::Ledger::new(deps.backends.control.clone(), "uploads");
    for entry in ledger.unfinished(u32::MAX).await.unwrap() {
        ledger
            .advance(
                &entry.source,
                sluice_core::ledger::LedgerState::Quarantined,
                None,
                None,
                1,
            )
            .await
            .unwrap();
    }
    starter.started.lock().unwrap().clear();
    handle_batch(&batch, &deps).await;
    assert!(starter.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_message_that_cannot_be_handled_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (deps, starter) = setup(dir.path()).await;
    let batch = json!({"Records": [
        json!({"messageId": "bad-json", "body": "{not json"}),
        json!({"messageId": "no-records", "body": "{\"hello\": 1}"}),
        json!({"messageId": "no-key", "body": json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}).to_string()}),
        s3_notification("good", "incoming/stock/feb.csv"),
    ]});
    let answer = handle_batch(&batch, &deps).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [
            {"itemIdentifier": "bad-json"},
            {"itemIdentifier": "no-records"},
            {"itemIdentifier": "no-key"},
        ]})
    );
    assert_eq!(starter.started.lock().unwrap().len(), 1);

    // Step Functions unavailable: the message fails, to be delivered again; registered already,
    // the next delivery starts it.
    *starter.refusing.lock().unwrap() = true;
    let orders = json!({"Records": [s3_notification("later", "incoming/orders/jan+2026.csv")]});
    assert_eq!(
        handle_batch(&orders, &deps).await,
        json!({"batchItemFailures": [{"itemIdentifier": "later"}]})
    );
    *starter.refusing.lock().unwrap() = false;
    assert_eq!(handle_batch(&orders, &deps).await, json!({"batchItemFailures": []}));
    assert_eq!(starter.started.lock().unwrap().len(), 2);
}
