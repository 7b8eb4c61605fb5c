//! The data path over the fixture CSVs, one test body per behaviour, run on the embedded
//! backends and on moto.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use sluice_core::config::BadRowPolicy;
use sluice_core::tables::{BatchGet, Page};
use sluice_core::testing::local_test_backends;
use sluice_core::{
    AttrValue, BackendError, Backends, Config, DeleteCondition, Item, ItemKey, PageRequest, PutCondition, Table,
};
use sluice_ingest::{DATA_ATTRIBUTE, IngestInput, IngestOutput};
use sluice_stage::{AttachmentBody, AttachmentSource, StageOutput, StageStatus};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/csv")
        .join(path)
}

fn source(file: &Path) -> AttachmentSource {
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    AttachmentSource {
        message_id: "msg-1".into(),
        part_id: name.clone(),
        file_name: name,
        received_at: chrono::DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
            .unwrap()
            .into(),
        declared_charset: None,
    }
}

async fn stage(backends: &Backends, config: &Config, dataset: &str, file: &Path) -> StageOutput {
    let body = AttachmentBody::Bytes(std::fs::read(file).unwrap().into());
    sluice_stage::stage_attachment(backends.objects.as_ref(), config, dataset, &source(file), body)
        .await
        .unwrap()
}

async fn stage_and_ingest(
    backends: &Backends,
    config: &Config,
    dataset: &str,
    file: &Path,
) -> (StageOutput, Option<IngestOutput>) {
    let staged = stage(backends, config, dataset, file).await;
    let ingested = match &staged.staged_key {
        Some(key) => Some(
            sluice_ingest::run(
                IngestInput {
                    dataset: dataset.into(),
                    source_key: key.clone(),
                },
                backends,
                config,
            )
            .await
            .unwrap(),
        ),
        None => None,
    };
    (staged, ingested)
}

async fn dump(table: &dyn Table, dataset: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut request = PageRequest {
        limit: 100,
        ..PageRequest::default()
    };
    loop {
        let page = table.query(dataset, &request).await.unwrap();
        items.extend(page.items);
        match page.last_sk {
            Some(last) => request.start_after = Some(last),
            None => return items,
        }
    }
}

fn data(item: &Item) -> &BTreeMap<String, AttrValue> {
    match &item[DATA_ATTRIBUTE] {
        AttrValue::M(map) => map,
        other => panic!("data is {other:?}"),
    }
}

async fn good_fixtures_load_typed(backends: Backends, config: Config) {
    let expectations = [
        ("with_bom.csv", 3),
        ("quoted_newlines.csv", 3),
        ("utf8_names.csv", 4),
        ("leading_zeros.csv", 3),
    ];
    for (file, rows) in expectations {
        let dataset = file.trim_end_matches(".csv").replace('_', "-");
        let (staged, ingested) =
            stage_and_ingest(&backends, &config, &dataset, &fixture(&format!("good/{file}"))).await;
        assert_eq!(staged.status, StageStatus::Staged, "{file}");
        let ingested = ingested.unwrap();
        assert_eq!(
            (ingested.rows_read, ingested.rows_written, ingested.rows_rejected),
            (rows, rows, 0),
            "{file}"
        );
        assert_eq!(
            dump(backends.records.as_ref(), &dataset).await.len() as u64,
            rows,
            "{file}"
        );
    }

    let bom = backends
        .records
        .get(&ItemKey::new("with-bom", "1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        data(&bom).contains_key("id"),
        "the BOM is not part of the first column's name"
    );
    assert_eq!(data(&bom)["amount"], AttrValue::N("12.50".into()));

    let quoted = backends
        .records
        .get(&ItemKey::new("quoted-newlines", "100"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        data(&quoted)["note"],
        AttrValue::S("Line one\nline two, with a comma".into())
    );
    let quote = backends
        .records
        .get(&ItemKey::new("quoted-newlines", "101"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&quote)["subject"], AttrValue::S("Quote \"inside\"".into()));

    let names = backends
        .records
        .get(&ItemKey::new("utf8-names", "u2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&names)["name"], AttrValue::S("李小龙".into()));

    let zeros = backends
        .records
        .get(&ItemKey::new("leading-zeros", "007"))
        .await
        .unwrap()
        .unwrap();
    let zeros = data(&zeros);
    assert_eq!(zeros["zip"], AttrValue::S("01234".into()));
    assert_eq!(zeros["account"], AttrValue::S("000123".into()));
    assert_eq!(
        zeros["big_number"],
        AttrValue::S("123456789012345678901234567890123456789".into())
    );
    assert_eq!(zeros["active"], AttrValue::Bool(true));
    assert_eq!(zeros["score"], AttrValue::N("98.6".into()));
    assert_eq!(zeros["empty"], AttrValue::Null(true));
    let eight = backends
        .records
        .get(&ItemKey::new("leading-zeros", "008"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        data(&eight)["big_number"],
        AttrValue::N("12345678901234567890123456789012345678".into()),
        "38 digits still fit"
    );
}

async fn bad_fixtures_name_file_and_line(backends: Backends, config: Config) {
    // Refused by the stage: quarantined with a reason naming the file (and line).
    for (file, code, needle) in [
        ("empty.csv", "empty", "empty.csv is empty"),
        ("header_only.csv", "header_only", "header_only.csv line 1"),
        ("invalid_utf8.csv", "invalid_encoding", "invalid_utf8.csv line 3"),
        ("wrong_delimiter.csv", "wrong_delimiter", "wrong_delimiter.csv line 1"),
    ] {
        let staged = stage(&backends, &config, "bad", &fixture(&format!("bad/{file}"))).await;
        assert_eq!(staged.status, StageStatus::Quarantined, "{file}");
        assert_eq!(staged.reason.as_deref(), Some(code), "{file}");
        let key = sluice_core::ObjectKey::new(staged.quarantine_key.clone().unwrap()).unwrap();
        let reason = sluice_core::quarantine::read_reason(backends.objects.as_ref(), &key)
            .await
            .unwrap()
            .unwrap();
        assert!(reason.message.contains(needle), "{file}: {}", reason.message);
        assert!(
            backends.objects.head(&key).await.unwrap().is_some(),
            "the file itself is kept in quarantine"
        );
        let raw = sluice_core::ObjectKey::new(staged.raw_key.clone()).unwrap();
        assert!(
            backends.objects.head(&raw).await.unwrap().is_none(),
            "moved, not copied"
        );
        // Staging the same attachment again changes nothing and says the same.
        let again = stage(&backends, &config, "bad", &fixture(&format!("bad/{file}"))).await;
        assert_eq!(again.status, StageStatus::Quarantined);
        assert_eq!(again.reason.as_deref(), Some(code));
    }

    // Loaded with rejects: the good rows go in, the bad ones go beside the file.
    let (_, ragged) = stage_and_ingest(&backends, &config, "ragged", &fixture("bad/ragged.csv")).await;
    let ragged = ragged.unwrap();
    assert_eq!((ragged.rows_read, ragged.rows_written, ragged.rows_rejected), (4, 2, 2));
    let reasons: Vec<String> = ragged.reasons.iter().map(ToString::to_string).collect();
    assert_eq!(
        reasons,
        vec![
            "line 3: expected 3 fields, found 2",
            "line 4: expected 3 fields, found 4"
        ]
    );
    let rejects_key = sluice_core::ObjectKey::new(ragged.rejects_key.clone().unwrap()).unwrap();
    let rejects = backends.objects.get_bytes(&rejects_key, 1 << 20).await.unwrap();
    let rejects = String::from_utf8(rejects.to_vec()).unwrap();
    assert_eq!(
        rejects,
        "line,column,reason,id,name,city\n3,,\"expected 3 fields, found 2\",2,Grace\n4,,\"expected 3 fields, found 4\",3,Alan,Wilmslow,extra\n"
    );

    let (_, huge) = stage_and_ingest(&backends, &config, "huge", &fixture("bad/huge_field.csv")).await;
    let huge = huge.unwrap();
    assert_eq!((huge.rows_read, huge.rows_written, huge.rows_rejected), (3, 2, 1));
    assert!(
        huge.reasons[0].to_string().starts_with("line 3: the item is"),
        "{:?}",
        huge.reasons
    );
    assert!(
        backends
            .records
            .get(&ItemKey::new("huge", "3"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn quarantine_mode_loads_nothing_from_a_bad_file(backends: Backends, mut config: Config) {
    config.ingest.on_bad_rows = BadRowPolicy::Quarantine;
    let (_, ragged) = stage_and_ingest(&backends, &config, "strict", &fixture("bad/ragged.csv")).await;
    let ragged = ragged.unwrap();
    assert!(ragged.quarantined);
    assert_eq!((ragged.rows_read, ragged.rows_written, ragged.rows_rejected), (4, 0, 2));
    assert!(dump(backends.records.as_ref(), "strict").await.is_empty());
    let key = sluice_core::ObjectKey::new(ragged.quarantine_key.clone().unwrap()).unwrap();
    let reason = sluice_core::quarantine::read_reason(backends.objects.as_ref(), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason.code, "bad_rows");
    assert_eq!(reason.problems.iter().map(|p| p.line).collect::<Vec<_>>(), vec![3, 4]);
    assert!(
        reason.message.starts_with("ragged.csv: 2 of 4 rows cannot load"),
        "{}",
        reason.message
    );

    // A configured key column the file lacks quarantines it in either mode.
    config.ingest.on_bad_rows = BadRowPolicy::RejectRows;
    config.datasets.insert(
        "keyed".into(),
        sluice_core::config::DatasetSettings {
            key_columns: vec!["order_id".into()],
            ..Default::default()
        },
    );
    let (_, keyed) = stage_and_ingest(&backends, &config, "keyed", &fixture("good/with_bom.csv")).await;
    let keyed = keyed.unwrap();
    assert!(keyed.quarantined);
    assert_eq!(
        keyed.reasons[0].to_string(),
        "line 1: the header has no key column \"order_id\" (datasets.<name>.key_columns)"
    );
}

async fn rerun_writes_the_same_items(backends: Backends, config: Config) {
    let file = fixture("good/utf8_names.csv");
    let (first_stage, _) = stage_and_ingest(&backends, &config, "rerun", &file).await;
    let first = dump(backends.records.as_ref(), "rerun").await;
    let (second_stage, second_ingest) = stage_and_ingest(&backends, &config, "rerun", &file).await;
    assert_eq!(
        first_stage.staged_key, second_stage.staged_key,
        "one staged object per attachment"
    );
    assert_eq!(second_ingest.unwrap().rows_written, 4);
    assert_eq!(dump(backends.records.as_ref(), "rerun").await, first);
    let raw: Vec<_> = backends.objects.list("raw/rerun/").await.unwrap();
    let staged: Vec<_> = backends.objects.list("staged/rerun/").await.unwrap();
    assert_eq!((raw.len(), staged.len()), (1, 1));
    let meta = &raw[0].metadata;
    assert_eq!(meta["source-message-id"], "msg-1");
    assert_eq!(meta["source-part-id"], "utf8_names.csv");
    assert_eq!(meta["received-at"], "2026-11-01T10:00:00+00:00");
    assert_eq!(meta["sha256"].len(), 64);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let (config, backends) = sluice_core::testing::local_test_backends(dir.path());
                    super::$name(backends, config).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(endpoint) = sluice_core::testing::aws_endpoint() else { return };
                    let (config, backends) = sluice_core::testing::aws_test_backends(&endpoint).await;
                    super::$name(backends, config).await;
                }
            )*
        }
    };
}

on_both_backends!(
    good_fixtures_load_typed,
    bad_fixtures_name_file_and_line,
    quarantine_mode_loads_nothing_from_a_bad_file,
    rerun_writes_the_same_items,
);

/// A table that leaves part of every batch unprocessed the first few times, like a throttled
/// DynamoDB table.
struct ThrottledTable {
    inner: Arc<dyn Table>,
    refusals_left: AtomicUsize,
    calls: AtomicUsize,
}

#[async_trait]
impl Table for ThrottledTable {
    fn name(&self) -> &str {
        "throttled"
    }
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, BackendError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: PutCondition<'_>) -> Result<(), BackendError> {
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &ItemKey, condition: DeleteCondition) -> Result<Option<Item>, BackendError> {
        self.inner.delete(key, condition).await
    }
    async fn batch_put(&self, items: &[Item]) -> Result<Vec<Item>, BackendError> {
        let mut items = items.to_vec();
        self.calls.fetch_add(1, Ordering::SeqCst);
        let refuse = self
            .refusals_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            // Write the first half, leave the rest (all of a single item) unprocessed.
            let unprocessed = items.split_off(items.len() / 2);
            self.inner.batch_put(&items).await?;
            return Ok(unprocessed);
        }
        self.inner.batch_put(&items).await
    }
    async fn batch_get(&self, keys: Vec<ItemKey>) -> Result<BatchGet, BackendError> {
        self.inner.batch_get(keys).await
    }
    async fn query(&self, pk: &str, request: &PageRequest) -> Result<Page, BackendError> {
        self.inner.query(pk, request).await
    }
}

#[tokio::test]
async fn unprocessed_items_are_retried_until_written() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut backends) = local_test_backends(dir.path());
    let throttled = Arc::new(ThrottledTable {
        inner: backends.records.clone(),
        refusals_left: AtomicUsize::new(5),
        calls: AtomicUsize::new(0),
    });
    backends.records = throttled.clone();
    let mut csv = String::from("id,value\n");
    for i in 0..60 {
        csv.push_str(&format!("{i},{}\n", i * 2));
    }
    let path = dir.path().join("sixty.csv");
    std::fs::write(&path, csv).unwrap();
    let (_, ingested) = stage_and_ingest(&backends, &config, "throttled", &path).await;
    let ingested = ingested.unwrap();
    assert_eq!(ingested.rows_written, 60);
    assert_eq!(dump(throttled.inner.as_ref(), "throttled").await.len(), 60);
    assert!(throttled.calls.load(Ordering::SeqCst) > 3, "3 batches plus the retries");
}

#[tokio::test]
async fn a_table_that_never_recovers_fails_with_a_retryable_name() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, mut backends) = local_test_backends(dir.path());
    config.ingest.max_retries = 2;
    backends.records = Arc::new(ThrottledTable {
        inner: backends.records.clone(),
        refusals_left: AtomicUsize::new(usize::MAX),
        calls: AtomicUsize::new(0),
    });
    let path = fixture("good/utf8_names.csv");
    let staged = stage(&backends, &config, "never", &path).await;
    let err = sluice_ingest::run(
        IngestInput {
            dataset: "never".into(),
            source_key: staged.staged_key.unwrap(),
        },
        &backends,
        &config,
    )
    .await
    .unwrap_err();
    let failure = sluice_core::StepFailure::from(err);
    assert_eq!(failure.error, "Backend.Throttled");
    assert!(
        failure.cause.contains("unprocessed after 2 retries"),
        "{}",
        failure.cause
    );
}

#[tokio::test]
async fn duplicate_keys_in_one_batch_collapse_and_the_last_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (config, backends) = local_test_backends(dir.path());
    let path = dir.path().join("dupes.csv");
    std::fs::write(&path, "id,v\n1,first\n2,x\n1,second\n").unwrap();
    let (_, ingested) = stage_and_ingest(&backends, &config, "dupes", &path).await;
    let ingested = ingested.unwrap();
    assert_eq!(
        (ingested.rows_read, ingested.rows_written, ingested.rows_collapsed),
        (3, 2, 1)
    );
    let one = backends
        .records
        .get(&ItemKey::new("dupes", "1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&one)["v"], AttrValue::S("second".into()));
}

#[tokio::test]
async fn malformed_step_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (config, backends) = local_test_backends(dir.path());
    for (dataset, key, name, needle) in [
        ("../x", "staged/x/y/z.csv", "Ingest.InvalidInput", "dataset name"),
        ("ok", "staged/../z.csv", "Backend.InvalidKey", "'..'"),
        (
            "ok",
            "staged/ok/nothing/here.csv",
            "Ingest.MissingObject",
            "staged/ok/nothing/here.csv",
        ),
    ] {
        let err = sluice_ingest::run(
            IngestInput {
                dataset: dataset.into(),
                source_key: key.into(),
            },
            &backends,
            &config,
        )
        .await
        .unwrap_err();
        let failure = sluice_core::StepFailure::from(err);
        assert_eq!(failure.error, name, "{key}");
        assert!(failure.cause.contains(needle), "{}", failure.cause);
    }
    for (key, name) in [
        ("staged/x/y/z.csv", "Stage.InvalidInput"),
        ("raw/x", "Stage.InvalidInput"),
        ("raw/ok/id/missing.csv", "Stage.MissingObject"),
    ] {
        let err = sluice_stage::run(
            sluice_stage::StageInput {
                raw_key: key.into(),
                failed: None,
            },
            backends.objects.as_ref(),
            &config,
        )
        .await
        .unwrap_err();
        assert_eq!(sluice_core::StepFailure::from(err).error, name, "{key}");
    }
}

#[tokio::test]
async fn attachments_over_the_size_limit_are_quarantined_unread() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, backends) = local_test_backends(dir.path());
    config.stage.max_attachment_bytes = 50;
    let staged = stage(&backends, &config, "big", &fixture("good/with_bom.csv")).await;
    assert_eq!(staged.status, StageStatus::Quarantined);
    assert_eq!(staged.reason.as_deref(), Some("too_large"));
    let key = sluice_core::ObjectKey::new(staged.quarantine_key.unwrap()).unwrap();
    let reason = sluice_core::quarantine::read_reason(backends.objects.as_ref(), &key)
        .await
        .unwrap()
        .unwrap();
    assert!(
        reason
            .message
            .contains("with_bom.csv is 105 bytes, over the 50-byte limit"),
        "{}",
        reason.message
    );
    // Recorded, not copied: the original stays under raw/, quarantine/ holds only the reason.
    assert!(
        backends.objects.head(&key).await.unwrap().is_none(),
        "no copy in quarantine/"
    );
    let raw = sluice_core::ObjectKey::new(staged.raw_key.clone()).unwrap();
    assert!(backends.objects.head(&raw).await.unwrap().is_some());
}

#[test]
fn a_lambda_error_type_is_the_stage_error_name() {
    let err = sluice_ingest::IngestError::Missing {
        key: "staged/x/y/z.csv".into(),
    };
    let diagnostic: lambda_runtime::Diagnostic = sluice_core::StepFailure::from(err).into();
    assert_eq!(diagnostic.error_type, "Ingest.MissingObject");
    assert!(diagnostic.error_message.contains("staged/x/y/z.csv"));
}

#[tokio::test]
async fn keys_repeated_across_batches_are_counted_as_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (config, backends) = local_test_backends(dir.path());
    let path = dir.path().join("repeats.csv");
    let mut csv = String::from("id,v\n");
    for i in 0..30 {
        csv.push_str(&format!("{i},first\n"));
    }
    csv.push_str("3,again\n4,again\n");
    std::fs::write(&path, csv).unwrap();
    let (_, ingested) = stage_and_ingest(&backends, &config, "repeats", &path).await;
    let ingested = ingested.unwrap();
    assert_eq!(
        (ingested.rows_read, ingested.rows_overwritten, ingested.rows_collapsed),
        (32, 2, 0)
    );
    let three = backends
        .records
        .get(&ItemKey::new("repeats", "3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data(&three)["v"], AttrValue::S("again".into()), "the later row wins");
    assert_eq!(dump(backends.records.as_ref(), "repeats").await.len(), 30);
}

/// Rows in random key order (the embedded backend sorts what it writes): every row loads, a
/// key written twice keeps its later row, and the counts are those of a file in order.
#[tokio::test]
async fn rows_in_random_key_order_load_like_rows_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (config, backends) = local_test_backends(dir.path());
    let path = dir.path().join("shuffled.csv");
    let mut csv = String::from("id,v\n");
    let mut expected = BTreeMap::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for row in 0..3000u64 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // About one key in ten comes twice or more, far apart in the file.
        let id = format!("{:016x}", (state >> 20) % 2700);
        csv.push_str(&format!("{id},row {row}\n"));
        expected.insert(id, format!("row {row}"));
    }
    std::fs::write(&path, csv).unwrap();
    let (_, ingested) = stage_and_ingest(&backends, &config, "shuffled", &path).await;
    let ingested = ingested.unwrap();
    assert_eq!(ingested.rows_read, 3000);
    assert_eq!(ingested.rows_rejected, 0);
    assert_eq!(ingested.rows_written + ingested.rows_collapsed, 3000);
    let stored: BTreeMap<String, String> = dump(backends.records.as_ref(), "shuffled")
        .await
        .iter()
        .map(|item| {
            let sk = item["sk"].as_str().unwrap().to_string();
            (sk, data(item)["v"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(stored, expected, "every key once, holding its last row");
}
