//! Every backend operation, one test body per port, run against the embedded implementation
//! and against the AWS implementation on moto.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sluice_core::item::{AttrValue, EXPIRES_AT};
use sluice_core::objects::{S3ObjectStore, move_object};
use sluice_core::secrets::key_or_create;
use sluice_core::tables::BatchGet;
use sluice_core::testing::{aws_endpoint, aws_test_backends, local_test_backends};
use sluice_core::{
    BackendError, Backends, DeleteCondition, ItemKey, ObjectKey, ObjectStore, PageRequest, PutCondition, PutOptions,
    SecretStore, SecretValue, Table,
};

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

async fn exercise_objects(store: &dyn ObjectStore) {
    let options = PutOptions {
        metadata: BTreeMap::from([("sha256".to_string(), "abc".to_string())]),
        content_type: Some("text/csv".into()),
    };
    assert!(store.head(&key("raw/a/data.csv")).await.unwrap().is_none());
    let info = store
        .put_bytes(&key("raw/a/data.csv"), Bytes::from_static(b"id,name\n1,x\n"), &options)
        .await
        .unwrap();
    assert_eq!(info.size, 12);
    let head = store.head(&key("raw/a/data.csv")).await.unwrap().unwrap();
    assert_eq!(head.size, 12);
    assert_eq!(head.metadata.get("sha256").map(String::as_str), Some("abc"));
    assert_eq!(
        store.get_bytes(&key("raw/a/data.csv"), 100).await.unwrap(),
        Bytes::from_static(b"id,name\n1,x\n")
    );
    assert!(
        store.get_bytes(&key("raw/a/data.csv"), 5).await.is_err(),
        "read limit is enforced"
    );

    let downloaded = store.download(&key("raw/a/data.csv")).await.unwrap();
    assert_eq!(std::fs::read(downloaded.path()).unwrap(), b"id,name\n1,x\n");

    let extra = BTreeMap::from([("reason".to_string(), "ragged".to_string())]);
    let moved = move_object(store, &key("raw/a/data.csv"), &key("quarantine/a/data.csv"), &extra)
        .await
        .unwrap();
    assert_eq!(moved.metadata.get("reason").map(String::as_str), Some("ragged"));
    assert!(store.head(&key("raw/a/data.csv")).await.unwrap().is_none());
    let quarantined = store.head(&key("quarantine/a/data.csv")).await.unwrap().unwrap();
    assert_eq!(quarantined.metadata.get("sha256").map(String::as_str), Some("abc"));
    assert_eq!(quarantined.metadata.get("reason").map(String::as_str), Some("ragged"));

    let temp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(temp.path(), b"from a file").unwrap();
    store
        .put_file(&key("staged/b/file.csv"), temp.path(), &PutOptions::default())
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list("staged/")
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.key.to_string())
        .collect();
    assert_eq!(listed, vec!["staged/b/file.csv"]);

    store.delete(&key("staged/b/file.csv")).await.unwrap();
    store.delete(&key("staged/b/file.csv")).await.unwrap();
    assert!(store.list("staged/").await.unwrap().is_empty());
    assert!(matches!(
        store.download(&key("staged/b/file.csv")).await,
        Err(BackendError::NotFound { .. })
    ));
}

fn item(pk: &str, sk: &str, value: &str) -> sluice_core::Item {
    let mut item = ItemKey::new(pk, sk).to_item();
    item.insert("value".into(), AttrValue::S(value.into()));
    item
}

async fn exercise_tables(table: &dyn Table) {
    let now = chrono::Utc::now().timestamp();
    let a = ItemKey::new("orders", "001");
    assert!(table.get(&a).await.unwrap().is_none());
    table
        .put(item("orders", "001", "first"), PutCondition::IfAbsent)
        .await
        .unwrap();
    let second = table.put(item("orders", "001", "second"), PutCondition::IfAbsent).await;
    assert!(
        matches!(second, Err(BackendError::ConditionFailed { .. })),
        "{second:?}"
    );
    table
        .put(item("orders", "001", "third"), PutCondition::Always)
        .await
        .unwrap();
    assert_eq!(
        table.get(&a).await.unwrap().unwrap()["value"],
        AttrValue::S("third".into())
    );

    // A lease: an expired item can be taken over, a live one cannot.
    let mut lease = item("lock", "x", "holder-1");
    lease.insert(EXPIRES_AT.into(), AttrValue::N((now - 10).to_string()));
    table.put(lease, PutCondition::Always).await.unwrap();
    assert!(
        table.get(&ItemKey::new("lock", "x")).await.unwrap().is_none(),
        "expired items are hidden"
    );
    let mut taken = item("lock", "x", "holder-2");
    taken.insert(EXPIRES_AT.into(), AttrValue::N((now + 600).to_string()));
    table
        .put(taken.clone(), PutCondition::IfAbsentOrExpired { now })
        .await
        .unwrap();
    assert!(table.put(taken, PutCondition::IfAbsentOrExpired { now }).await.is_err());

    // A claim: exactly one conditional delete gets the item.
    let claimed = table.delete(&a, DeleteCondition::IfExists { now }).await.unwrap();
    assert_eq!(claimed.unwrap()["value"], AttrValue::S("third".into()));
    let again = table.delete(&a, DeleteCondition::IfExists { now }).await;
    assert!(matches!(again, Err(BackendError::ConditionFailed { .. })), "{again:?}");

    let batch: Vec<_> = (0..25)
        .map(|i| item("bulk", &format!("{i:03}"), &i.to_string()))
        .collect();
    assert!(table.batch_put(&batch).await.unwrap().is_empty());
    let too_many: Vec<_> = (0..=table.max_batch_put())
        .map(|i| item("over", &format!("{i:05}"), "x"))
        .collect();
    assert!(table.batch_put(&too_many).await.is_err());

    let BatchGet { mut items, unprocessed } = table
        .batch_get(vec![
            ItemKey::new("bulk", "003"),
            ItemKey::new("bulk", "024"),
            ItemKey::new("bulk", "999"),
        ])
        .await
        .unwrap();
    assert!(unprocessed.is_empty());
    items.sort_by_key(|item| item["sk"].as_str().unwrap().to_string());
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["value"], AttrValue::S("3".into()));

    let mut seen = Vec::new();
    let mut request = PageRequest {
        limit: 10,
        ..PageRequest::default()
    };
    loop {
        let page = table.query("bulk", &request).await.unwrap();
        seen.extend(page.items.iter().map(|i| i["sk"].as_str().unwrap().to_string()));
        match page.last_sk {
            Some(last) => request.start_after = Some(last),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("{i:03}")).collect();
    assert_eq!(seen, expected, "pages cover the partition once, in order");

    let prefixed = table
        .query(
            "bulk",
            &PageRequest {
                sk_prefix: Some("01".into()),
                limit: 100,
                ..PageRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(prefixed.items.len(), 10);
    assert!(prefixed.last_sk.is_none());
}

/// The compare-and-set write a ledger needs: only from the expected value, and never onto a
/// missing item.
async fn exercise_conditional_fields(table: &dyn Table) {
    let cas = PutCondition::IfFieldIn {
        field: "value",
        values: &["draft", "review"],
    };
    let missing = table.put(item("doc", "1", "published"), cas).await;
    assert!(
        matches!(missing, Err(BackendError::ConditionFailed { .. })),
        "{missing:?}"
    );
    table
        .put(item("doc", "1", "review"), PutCondition::Always)
        .await
        .unwrap();
    table.put(item("doc", "1", "published"), cas).await.unwrap();
    let again = table.put(item("doc", "1", "draft"), cas).await;
    assert!(matches!(again, Err(BackendError::ConditionFailed { .. })), "{again:?}");
    assert_eq!(
        table.get(&ItemKey::new("doc", "1")).await.unwrap().unwrap()["value"],
        AttrValue::S("published".into())
    );
}

/// The attachment ledger over a table: entries recorded once, moved only forward, each move
/// made by exactly one of several concurrent callers.
async fn exercise_ledger(table: Arc<dyn Table>) {
    use sluice_core::ledger::{Ledger, LedgerEntry, LedgerState, Moved};
    let ledger = Ledger::new(table, "inbox@example.test");
    let entry = |source: &str| LedgerEntry {
        source: source.into(),
        raw_key: Some(format!("raw/orders/{source}/orders.csv")),
        dataset: "orders".into(),
        message_id: "m1".into(),
        part_id: "2".into(),
        state: LedgerState::Fetched,
        reason: None,
        error: None,
        attempts: 0,
        limit: None,
        run: None,
        updated_at: 1,
    };
    let (a, b) = (Ledger::mail_source("m1", "2"), Ledger::mail_source("m1", "3"));
    assert!(ledger.record(entry(&a)).await.unwrap());
    assert!(!ledger.record(entry(&a)).await.unwrap(), "recorded once");
    assert!(ledger.record(entry(&b)).await.unwrap());
    let (a, b) = (a.as_str(), b.as_str());
    // Skipping a state is refused; moving twice changes nothing the second time.
    assert_eq!(
        ledger.advance(a, LedgerState::Cleaned, None, None, 2).await.unwrap(),
        Moved::Refused {
            current: LedgerState::Fetched
        }
    );
    let racers = (0..4).map(|_| ledger.advance(a, LedgerState::Staged, None, None, 2));
    let results = futures::future::join_all(racers).await;
    let done = results.iter().filter(|r| matches!(r, Ok(Moved::Done))).count();
    assert_eq!(done, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(Moved::Done | Moved::AlreadyThere)))
    );
    ledger.advance(a, LedgerState::Cleaned, None, None, 3).await.unwrap();
    ledger.advance(a, LedgerState::Ingested, None, None, 4).await.unwrap();
    assert_eq!(
        ledger.advance(a, LedgerState::Staged, None, None, 5).await.unwrap(),
        Moved::Refused {
            current: LedgerState::Ingested
        },
        "an ingested file never goes back"
    );
    // A failure counts its attempts; the entry stays work until the attempts run out.
    ledger
        .advance(b, LedgerState::Failed, None, Some("Stage.Io".into()), 6)
        .await
        .unwrap();
    let unfinished = ledger.unfinished(2).await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!((unfinished[0].state, unfinished[0].attempts), (LedgerState::Failed, 1));
    assert_eq!(unfinished[0].error.as_deref(), Some("Stage.Io"));
    ledger
        .advance(b, LedgerState::Failed, None, Some("Stage.Io".into()), 7)
        .await
        .unwrap();
    assert!(
        ledger.unfinished(2).await.unwrap().is_empty(),
        "out of attempts: listed, not retried"
    );
    assert_eq!(
        ledger
            .advance("raw/none", LedgerState::Staged, None, None, 8)
            .await
            .unwrap(),
        Moved::Unknown
    );
}

/// Leases over a table: one holder; re-entrant for its holder; a live holder keeps it, a gone
/// one loses it at once, an unknown one at its expiry; renew and release only by the holder.
async fn exercise_leases(table: Arc<dyn Table>) {
    use sluice_core::lease::{Acquired, HolderLiveness, Lease, UnknownLiveness};
    struct Gone(&'static str);
    #[async_trait::async_trait]
    impl HolderLiveness for Gone {
        async fn is_running(&self, holder: &str) -> Option<bool> {
            Some(holder != self.0)
        }
    }
    let now = chrono::Utc::now().timestamp();
    let lease = Lease::new(table, &format!("mailbox#{}", rand::random::<u32>()));
    let held = |until| Acquired::Held {
        until,
        taken_over: None,
    };
    assert_eq!(
        lease.acquire("run-a", 60, now, &UnknownLiveness).await.unwrap(),
        held(now + 60)
    );
    assert_eq!(
        lease.acquire("run-b", 60, now, &UnknownLiveness).await.unwrap(),
        Acquired::Busy {
            holder: "run-a".into(),
            until: now + 60
        }
    );
    assert_eq!(
        lease.acquire("run-a", 90, now, &UnknownLiveness).await.unwrap(),
        held(now + 90),
        "re-entrant"
    );
    // A holder that still runs keeps it; one that ended loses it, to exactly one taker.
    assert!(matches!(
        lease.acquire("run-b", 60, now, &Gone("nobody")).await.unwrap(),
        Acquired::Busy { .. }
    ));
    let takers = ["run-b", "run-c", "run-d"].map(|owner| {
        let lease = lease.clone();
        async move { lease.acquire(owner, 60, now, &Gone("run-a")).await.unwrap() }
    });
    let outcomes = futures::future::join_all(takers).await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, Acquired::Held { taken_over: Some(gone), .. } if gone == "run-a"))
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let (holder, _) = lease.holder().await.unwrap().unwrap();
    assert!(!lease.renew("run-a", 60, now).await.unwrap(), "the old holder lost it");
    assert!(!lease.release("run-a", now).await.unwrap());
    assert!(lease.renew(&holder, 60, now).await.unwrap());
    assert!(lease.release(&holder, now).await.unwrap());
    assert!(lease.holder().await.unwrap().is_none(), "released");
    assert_eq!(
        lease.acquire("run-e", 60, now, &UnknownLiveness).await.unwrap(),
        held(now + 60)
    );
}

async fn exercise_secrets(store: &dyn SecretStore) {
    assert!(store.get("api/consumer").await.unwrap().is_none());
    assert!(
        store
            .create_if_absent("api/consumer", &SecretValue::new("one"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_if_absent("api/consumer", &SecretValue::new("two"))
            .await
            .unwrap()
    );
    assert_eq!(store.get("api/consumer").await.unwrap().unwrap().expose(), "one");
    store.put("api/consumer", &SecretValue::new("three")).await.unwrap();
    assert_eq!(store.get("api/consumer").await.unwrap().unwrap().expose(), "three");
    let first = key_or_create(store, "keys/hmac").await.unwrap();
    let second = key_or_create(store, "keys/hmac").await.unwrap();
    assert_eq!(first, second, "a created key is reused");
}

async fn exercise(backends: &Backends) {
    exercise_objects(backends.objects.as_ref()).await;
    exercise_tables(backends.records.as_ref()).await;
    exercise_conditional_fields(backends.records.as_ref()).await;
    exercise_ledger(backends.control.clone()).await;
    exercise_leases(backends.control.clone()).await;
    exercise_secrets(backends.secrets.as_ref()).await;
}

#[tokio::test]
async fn local_backends_support_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let (_, backends) = local_test_backends(dir.path());
    exercise(&backends).await;
}

#[tokio::test]
async fn aws_backends_support_every_operation() {
    let Some(endpoint) = aws_endpoint() else { return };
    let (_, backends) = aws_test_backends(&endpoint).await;
    exercise(&backends).await;
}

#[tokio::test]
async fn local_secrets_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (config, backends) = local_test_backends(dir.path());
    backends.secrets.put("x", &SecretValue::new("y")).await.unwrap();
    let mode = std::fs::metadata(config.data_dir.join("secrets.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn tables_share_one_sqlite_file_without_colliding() {
    let dir = tempfile::tempdir().unwrap();
    let (_, backends) = local_test_backends(dir.path());
    backends
        .records
        .put(item("p", "s", "record"), PutCondition::Always)
        .await
        .unwrap();
    backends
        .control
        .put(item("p", "s", "control"), PutCondition::Always)
        .await
        .unwrap();
    let key = ItemKey::new("p", "s");
    assert_eq!(
        backends.records.get(&key).await.unwrap().unwrap()["value"],
        AttrValue::S("record".into())
    );
    assert_eq!(
        backends.control.get(&key).await.unwrap().unwrap()["value"],
        AttrValue::S("control".into())
    );
}

#[tokio::test]
async fn large_s3_uploads_go_in_checksummed_parts() {
    let Some(endpoint) = aws_endpoint() else { return };
    let (config, _) = aws_test_backends(&endpoint).await;
    let mut settings = config.aws.clone();
    settings.multipart_threshold_bytes = 5 * 1024 * 1024;
    settings.multipart_part_bytes = 5 * 1024 * 1024;
    let sdk = sluice_core::aws::sdk_config(&settings).await;
    let store: Arc<dyn ObjectStore> =
        Arc::new(S3ObjectStore::new(&sdk, &settings, settings.bucket.as_deref().unwrap()));
    let temp = tempfile::NamedTempFile::new().unwrap();
    let body: Vec<u8> = (0..11 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(temp.path(), &body).unwrap();
    let info = store
        .put_file(&key("raw/big/file.bin"), temp.path(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(info.size, body.len() as u64);
    let downloaded = store.download(&key("raw/big/file.bin")).await.unwrap();
    assert_eq!(std::fs::read(downloaded.path()).unwrap(), body);
}

/// Two databases opened on one file (two `sluice run` at once): conditional writes that read
/// before they write wait for each other instead of failing with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_sqlite_file_wait_for_each_other() {
    use sluice_core::tables::SqliteDatabase;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let db = SqliteDatabase::open(&path).unwrap();
        let table = db.table("control");
        tasks.push(tokio::spawn(async move {
            for i in 0..300 {
                // Read-then-write (a conditional put) in each transaction.
                let item = item("race", &format!("{writer}-{i}"), "x");
                table.put(item, PutCondition::IfAbsent).await?;
            }
            Ok::<_, BackendError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let db = SqliteDatabase::open(&path).unwrap();
    let mut request = PageRequest {
        limit: 1000,
        ..PageRequest::default()
    };
    let mut n = 0;
    loop {
        let page = db.table("control").query("race", &request).await.unwrap();
        n += page.items.len();
        match page.last_sk {
            Some(last) => request.start_after = Some(last),
            None => break,
        }
    }
    assert_eq!(n, 1200);
}
