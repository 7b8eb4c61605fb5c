//! The detect and mask steps end to end on the backends: staged CSV in, report and cleaned CSV
//! out, originals only in the vault. One body runs against the embedded backends and, when moto
//! is available, against the AWS ones.

use std::sync::Arc;

use bytes::Bytes;
use sluice_core::{Backends, ObjectKey, PutOptions, StepError};
use sluice_pii::steps::detect::{self, DetectInput};
use sluice_pii::steps::mask::{self, MaskInput};
use sluice_pii::{BuiltinDetector, PiiDeps, PiiPolicy, PolicySet, Vault};

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

#[tokio::test]
async fn steps_on_local_backends() {
    let dir = tempfile::tempdir().unwrap();
    let (_config, backends) = sluice_core::testing::local_test_backends(dir.path());
    detect_then_mask_writes_counts_and_a_clean_csv(backends.clone()).await;
    malformed_csv_fails_with_its_line_and_a_stable_name(backends).await;
}

#[tokio::test]
async fn steps_on_aws_backends() {
    let Some(endpoint) = sluice_core::testing::aws_endpoint() else {
        return;
    };
    let (_config, backends) = sluice_core::testing::aws_test_backends(&endpoint).await;
    detect_then_mask_writes_counts_and_a_clean_csv(backends.clone()).await;
    malformed_csv_fails_with_its_line_and_a_stable_name(backends).await;
}
