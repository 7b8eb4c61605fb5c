//! The detect and mask steps end to end on the backends: staged CSV in, report and cleaned CSV
//! out, originals only in the vault. One body runs against the embedded backends and, when moto
//! is available, against the AWS ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use sluice_core::{Backends, ObjectKey, PutOptions, StepError};
use sluice_pii::steps::detect::{self, DetectInput};
use sluice_pii::steps::mask::{self, MaskInput};
use sluice_pii::{BuiltinDetector, Cell, DetectError, Detector, PiiDeps, PiiEntity, PiiPolicy, PolicySet, Vault};

const STAGED: &str = "staged/orders/2024/orders.csv";
const CSV: &str = "order_id,full_name,notes,amount\n\
1,Zoë Müller,\"mail zoe@example.com, card 4111 1111 1111 1111\",10.50\n\
2,Li Wang,東京 call +81-3-1234-5678 😀,7\n\
3,Ana Silva,\"again zoe@example.com\",3\n";

const POLICY: &str = r##"
skip_columns = ["order_id", "amount"]
[entities]
EMAIL = "tokenize"
CREDIT_DEBIT_NUMBER = { action = "mask", char = "#", keep_last = 4 }
PHONE = "redact"
[columns.full_name]
holds = ["NAME"]
action = "tokenize"
"##;

fn deps(backends: Backends) -> PiiDeps {
    let policy = PiiPolicy::from_toml(POLICY, "policy.toml").unwrap();
    PiiDeps {
        backends,
        detector: Arc::new(BuiltinDetector::new()),
        policies: PolicySet::new([("orders".to_string(), policy)].into()),
        batch_bytes: 64,
        datasets: Default::default(),
    }
}

async fn detect_then_mask_writes_counts_and_a_clean_csv(backends: Backends) {
    let deps = deps(backends.clone());
    let staged = ObjectKey::new(STAGED).unwrap();
    backends
        .objects
        .put_bytes(&staged, Bytes::from_static(CSV.as_bytes()), &PutOptions::default())
        .await
        .unwrap();

    let detected = detect::run(
        DetectInput {
            dataset: "orders".into(),
            staged_key: STAGED.into(),
        },
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(detected.rows, 3);
    assert_eq!(detected.report_key, "staged/orders/2024/orders.csv.pii-report.json");
    let report = backends
        .objects
        .get_bytes(&ObjectKey::new(&detected.report_key).unwrap(), 1 << 20)
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["by_column"]["notes"]["EMAIL"], 2);
    assert_eq!(report["by_column"]["full_name"]["NAME"], 3);
    assert_eq!(report["by_type"]["PHONE"], 1);
    let report_text = report.to_string();
    assert!(
        !report_text.contains("zoe@") && !report_text.contains("Zoë"),
        "{report_text}"
    );

    let masked = mask::run(
        MaskInput {
            dataset: "orders".into(),
            staged_key: STAGED.into(),
            clean_key: None,
        },
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(masked.clean_key, "clean/orders/2024/orders.csv");
    assert_eq!(masked.rows, 3);
    assert_eq!(masked.by_action["tokenize"], 5);
    assert_eq!(masked.vaulted, 4, "one vault entry per distinct value");
    let clean = backends
        .objects
        .get_bytes(&ObjectKey::new(&masked.clean_key).unwrap(), 1 << 20)
        .await
        .unwrap();
    let clean = String::from_utf8(clean.to_vec()).unwrap();
    for original in ["zoe@example.com", "Zoë", "4111 1111 1111", "1234-5678", "Li Wang"] {
        assert!(!clean.contains(original), "{original} leaked into {clean}");
    }
    let mut reader = csv::Reader::from_reader(clean.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["order_id", "full_name", "notes", "amount"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(&rows[0][0], "1");
    assert_eq!(&rows[0][3], "10.50");
    assert!(rows[0][2].ends_with("card ###############1111"), "{}", &rows[0][2]);
    assert_eq!(&rows[1][2], "東京 call [PHONE] 😀");
    let token = rows[0][2].split_whitespace().nth(1).unwrap().trim_end_matches(',');
    assert!(rows[2][2].contains(token), "same value, same token: {}", &rows[2][2]);

    let vault = Vault::open_existing(backends.control.clone(), backends.secrets.as_ref(), "orders")
        .await
        .unwrap();
    assert_eq!(
        vault.reidentify(token).await.unwrap().as_deref(),
        Some("zoe@example.com")
    );
    assert_eq!(
        vault.reidentify(&rows[0][1]).await.unwrap().as_deref(),
        Some("Zoë Müller")
    );
    assert_eq!(
        vault
            .reidentify("EMAIL_00000000000000000000000000000000")
            .await
            .unwrap(),
        None
    );
    let other = Vault::with_key(backends.control.clone(), "orders", &[0; 32]);
    assert!(other.reidentify(token).await.is_err(), "a wrong key cannot decrypt");
}

async fn malformed_csv_fails_with_its_line_and_a_stable_name(backends: Backends) {
    let deps = deps(backends.clone());
    // A ragged row passes (whether it loads is ingest.on_bad_rows' call), its extra cells
    // scanned and cleaned like any other.
    let key = ObjectKey::new("staged/orders/ragged_row.csv").unwrap();
    let body = "order_id,notes\n1,ok\n2,too,many,ann.lee@example.com\n";
    backends
        .objects
        .put_bytes(&key, Bytes::from_static(body.as_bytes()), &PutOptions::default())
        .await
        .unwrap();
    let masked = mask::run(
        MaskInput {
            dataset: "orders".into(),
            staged_key: key.to_string(),
            clean_key: None,
        },
        &deps,
    )
    .await
    .unwrap();
    let clean = backends
        .objects
        .get_bytes(&ObjectKey::new(masked.clean_key).unwrap(), 1 << 20)
        .await
        .unwrap();
    let clean = String::from_utf8(clean.to_vec()).unwrap();
    assert!(!clean.contains("ann.lee"), "an extra cell is cleaned too: {clean}");
    assert_eq!(
        clean.lines().nth(2).unwrap().split(',').count(),
        4,
        "the row keeps its shape: {clean}"
    );
    // Bytes that are not UTF-8 cannot be read at all: a stable name and the line.
    let broken = ObjectKey::new("staged/orders/broken.csv").unwrap();
    backends
        .objects
        .put_bytes(
            &broken,
            Bytes::from_static(b"order_id,notes\n1,ok\n2,\xff\xfe\n"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let err = mask::run(
        MaskInput {
            dataset: "orders".into(),
            staged_key: broken.to_string(),
            clean_key: None,
        },
        &deps,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Pii.InvalidCsv");
    assert!(
        err.to_string().contains("line 3") && err.to_string().contains("broken.csv"),
        "{err}"
    );
    let missing = detect::run(
        DetectInput {
            dataset: "../x".into(),
            staged_key: key.to_string(),
        },
        &deps,
    )
    .await
    .unwrap_err();
    assert_eq!(missing.error_name(), "Pii.InvalidInput");
}

/// The built-in detector, counting the cells it is asked about.
struct CountingDetector {
    inner: BuiltinDetector,
    cells: AtomicUsize,
}

#[async_trait::async_trait]
impl Detector for CountingDetector {
    fn engine(&self) -> &'static str {
        "builtin"
    }

    async fn detect(&self, cells: &[Cell<'_>]) -> Result<Vec<Vec<PiiEntity>>, DetectError> {
        self.cells.fetch_add(cells.len(), Ordering::SeqCst);
        self.inner.detect(cells).await
    }
}

async fn mask_run(deps: &PiiDeps, clean_key: &str) -> String {
    let masked = mask::run(
        MaskInput {
            dataset: "orders".into(),
            staged_key: STAGED.into(),
            clean_key: Some(clean_key.into()),
        },
        deps,
    )
    .await
    .unwrap();
    let clean = deps
        .backends
        .objects
        .get_bytes(&ObjectKey::new(&masked.clean_key).unwrap(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(clean.to_vec()).unwrap()
}

async fn mask_reuses_the_findings_of_detect_only_for_the_same_file(backends: Backends) {
    let counting = Arc::new(CountingDetector {
        inner: BuiltinDetector::new(),
        cells: AtomicUsize::new(0),
    });
    let deps = PiiDeps {
        detector: counting.clone(),
        ..deps(backends.clone())
    };
    let staged = ObjectKey::new(STAGED).unwrap();
    let put = |body: &'static str| {
        let objects = backends.objects.clone();
        let staged = staged.clone();
        async move {
            objects
                .put_bytes(&staged, Bytes::from_static(body.as_bytes()), &PutOptions::default())
                .await
                .unwrap();
        }
    };
    put(CSV).await;
    let input = DetectInput {
        dataset: "orders".into(),
        staged_key: STAGED.into(),
    };
    detect::run(input.clone(), &deps).await.unwrap();
    let scanned = counting.cells.load(Ordering::SeqCst);
    assert_eq!(scanned, 6, "two scanned columns, three rows");
    let findings_key = sluice_pii::steps::findings_key(&staged).unwrap();
    let findings = backends.objects.get_bytes(&findings_key, 1 << 20).await.unwrap();
    let findings_text = String::from_utf8_lossy(&findings);
    assert!(
        !findings_text.contains("zoe@") && !findings_text.contains("Zo"),
        "positions only"
    );

    // The file is scanned once: mask takes its entities from the findings.
    let reused = mask_run(&deps, "clean/orders/reused.csv").await;
    assert_eq!(counting.cells.load(Ordering::SeqCst), scanned);

    // Without findings, the same output from a second scan.
    backends.objects.delete(&findings_key).await.unwrap();
    let detected_again = mask_run(&deps, "clean/orders/detected.csv").await;
    assert_eq!(counting.cells.load(Ordering::SeqCst), 2 * scanned);
    assert_eq!(reused, detected_again);

    // Findings of other bytes are not used for this file: it is scanned, nothing leaks.
    detect::run(input.clone(), &deps).await.unwrap();
    put("order_id,full_name,notes,amount\n1,Ann Lee,\"write to ann.lee@example.com\",1\n").await;
    let before = counting.cells.load(Ordering::SeqCst);
    let changed = mask_run(&deps, "clean/orders/changed.csv").await;
    assert_eq!(counting.cells.load(Ordering::SeqCst), before + 2);
    assert!(
        !changed.contains("ann.lee@") && !changed.contains("Ann Lee"),
        "{changed}"
    );

    // Damaged findings are refused, the file scanned.
    put(CSV).await;
    detect::run(input, &deps).await.unwrap();
    let mut damaged = backends
        .objects
        .get_bytes(&findings_key, 1 << 20)
        .await
        .unwrap()
        .to_vec();
    damaged.truncate(damaged.len() - 20);
    backends
        .objects
        .put_bytes(&findings_key, Bytes::from(damaged), &PutOptions::default())
        .await
        .unwrap();
    let before = counting.cells.load(Ordering::SeqCst);
    let rescanned = mask_run(&deps, "clean/orders/rescanned.csv").await;
    assert!(counting.cells.load(Ordering::SeqCst) > before);
    assert_eq!(rescanned, reused);
}

#[tokio::test]
async fn steps_on_local_backends() {
    let dir = tempfile::tempdir().unwrap();
    let (_config, backends) = sluice_core::testing::local_test_backends(dir.path());
    detect_then_mask_writes_counts_and_a_clean_csv(backends.clone()).await;
    mask_reuses_the_findings_of_detect_only_for_the_same_file(backends.clone()).await;
    malformed_csv_fails_with_its_line_and_a_stable_name(backends).await;
}

#[tokio::test]
async fn steps_on_aws_backends() {
    let Some(endpoint) = sluice_core::testing::aws_endpoint() else {
        return;
    };
    let (_config, backends) = sluice_core::testing::aws_test_backends(&endpoint).await;
    detect_then_mask_writes_counts_and_a_clean_csv(backends.clone()).await;
    mask_reuses_the_findings_of_detect_only_for_the_same_file(backends.clone()).await;
    malformed_csv_fails_with_its_line_and_a_stable_name(backends).await;
}
