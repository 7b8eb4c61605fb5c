//! Registering files put under `incoming/`: once per object version whatever delivers it how
//! often, skipped with a reason when Sluice cannot take it, and staged under the file limit.

use bytes::Bytes;
use sluice_core::ledger::{Ledger, LedgerState};
use sluice_core::testing::local_test_backends;
use sluice_core::{ObjectKey, PutOptions};
use sluice_stage::upload::{Registration, UPLOADS_LEDGER, register_upload};
use sluice_stage::{StageInput, StageStatus};

async fn put(backends: &sluice_core::Backends, key: &str, body: &str) {
    backends
        .objects
        .put_bytes(
            &ObjectKey::new(key).unwrap(),
            Bytes::from(body.to_string()),
            &PutOptions::default(),
        )
        .await
        .unwrap();
}

/// On the embedded backends, and on S3 and DynamoDB (moto), where the version is the ETag and
/// the copy under raw/ is S3's own.
#[tokio::test]
async fn an_upload_is_registered_once_and_a_new_version_again() {
    let dir = tempfile::tempdir().unwrap();
    let (config, backends) = local_test_backends(dir.path());
    registered_once(config, backends).await;
    if let Some(endpoint) = sluice_core::testing::aws_endpoint() {
        let (config, backends) = sluice_core::testing::aws_test_backends(&endpoint).await;
        registered_once(config, backends).await;
    }
}

async fn registered_once(config: sluice_core::Config, backends: sluice_core::Backends) {
    let key = "incoming/orders/jan.csv";
    put(&backends, key, "id,qty\n1,2\n").await;
    let register = || register_upload(backends.objects.as_ref(), &backends.control, &config, key, None, false);

    let Registration::Ready(first) = register().await.unwrap() else {
        panic!("a new upload is ready")
    };
    assert!(first.raw_key.starts_with("raw/orders/"), "{first:?}");
    assert!(first.raw_key.ends_with("/jan.csv"), "{first:?}");
    assert!(
        backends
            .objects
            .head(&ObjectKey::new(&first.raw_key).unwrap())
            .await
            .unwrap()
            .is_some()
    );
    // Delivered again before it finished (a crash, a duplicate event): the same work, not a
    // second entry.
    let Registration::Ready(again) = register().await.unwrap() else {
        panic!("an unfinished upload is ready again")
    };
    assert_eq!(again, first);
    let ledger = Ledger::new(backends.control.clone(), UPLOADS_LEDGER);
    assert_eq!(ledger.unfinished(u32::MAX).await.unwrap().len(), 1);

    // Once final, a duplicate event does nothing.
    for to in [LedgerState::Staged, LedgerState::Cleaned, LedgerState::Ingested] {
        ledger.advance(&first.ledger.source, to, None, None, 1).await.unwrap();
    }
    assert!(
        matches!(
            register().await.unwrap(),
            Registration::AlreadyDone {
                state: LedgerState::Ingested,
                ..
            }
        ),
        "a finished upload is not taken again"
    );

    // New bytes at the same key are a new version: registered on their own.
    put(&backends, key, "id,qty\n1,3\n").await;
    let Registration::Ready(second) = register().await.unwrap() else {
        panic!("a new version is ready")
    };
    assert_ne!(second.ledger.source, first.ledger.source);
    assert_ne!(second.raw_key, first.raw_key);
}

#[tokio::test]
async fn what_cannot_be_taken_is_recorded_as_skipped_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, backends) = local_test_backends(dir.path());
    config.stage.max_file_bytes = 10;
    for (key, reason) in [
        ("incoming/orders/big.csv", "over stage.max_file_bytes (10 bytes)"),
        ("incoming/loose.csv", "put the file in its dataset's folder"),
        (
            "incoming/No Such Name/x.csv",
            "dataset name \"No Such Name\" is invalid",
        ),
    ] {
        put(&backends, key, "id,qty\n1,2\n3,4\n").await;
        let registration = register_upload(backends.objects.as_ref(), &backends.control, &config, key, None, false)
            .await
            .unwrap();
        let Registration::Skipped { source, reason: said } = registration else {
            panic!("{key}: {registration:?}")
        };
        assert!(said.contains(reason), "{key}: {said}");
        let entry = Ledger::new(backends.control.clone(), UPLOADS_LEDGER)
            .get(&source)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.state, LedgerState::Skipped, "{key}");
        assert_eq!(entry.raw_key, None, "{key}: nothing copied");
        if key.ends_with("big.csv") {
            assert_eq!(entry.limit, Some(10));
        }
    }
    // An object gone before its event was handled, and a folder marker: nothing to record.
    for key in ["incoming/orders/gone.csv", "incoming/orders/"] {
        let registration = register_upload(backends.objects.as_ref(), &backends.control, &config, key, None, false)
            .await
            .unwrap();
        assert_eq!(registration, Registration::Gone, "{key}");
    }
}

/// An upload is not a mail attachment: the stage step gives it `stage.max_file_bytes`.
#[tokio::test]
async fn a_registered_upload_is_staged_under_the_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, backends) = local_test_backends(dir.path());
    config.stage.max_attachment_bytes = 8;
    let key = "incoming/orders/jan.csv";
    put(&backends, key, "id,qty\n1,2\n3,4\n5,6\n").await;
    let Registration::Ready(work) =
        register_upload(backends.objects.as_ref(), &backends.control, &config, key, None, false)
            .await
            .unwrap()
    else {
        panic!("ready")
    };
    let staged = sluice_stage::run(
        StageInput {
            raw_key: work.raw_key,
            failed: None,
        },
        backends.objects.as_ref(),
        &config,
    )
    .await
    .unwrap();
    assert_eq!(staged.status, StageStatus::Staged, "{staged:?}");
    assert_eq!(staged.dataset, "orders");
}
