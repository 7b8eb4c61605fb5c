//! The ASL commands the `sluice` binary wires up (`validate`, `exec`, `conformance`).

use sluice::asl::{EXIT_USAGE, ExecSetup, conformance, exec, validate_files};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const PIPELINE: &str = r#"{"StartAt": "Fetch", "States": {
  "Fetch": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "fetch", "Payload.$": "$"},
            "OutputPath": "$.Payload", "Next": "Done", "Catch": [{"ErrorEquals": ["Gmail.AuthExpired"], "Next": "Reauth"}]},
  "Reauth": {"Type": "Fail", "Error": "Auth.ConsentRequired", "Cause": "the OAuth token expired"},
  "Done": {"Type": "Succeed"}}}"#;

const MOCKS: &str = r#"{
  "StateMachines": {"pipeline": {"TestCases": {
    "HappyPath": {"Fetch": "Fetched"},
    "Expired": {"Fetch": "AuthExpired"}}}},
  "MockedResponses": {
    "Fetched": {"0": {"Return": {"StatusCode": 200, "Payload": {"staged": 2}}}},
    "AuthExpired": {"0": {"Throw": {"Error": "Gmail.AuthExpired", "Cause": "401"}}}}
}"#;

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

#[test]
fn validate_reports_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.asl.json", PIPELINE);
    let bad = write(
        dir.path(),
        "bad.asl.json",
        r#"{"StartAt": "X", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#,
    );
    let mut out = Vec::new();
    assert_eq!(validate_files(&[good.as_path()], &mut out), 0);
    assert!(text(out).ends_with("good.asl.json: ok\n"));
    let mut out = Vec::new();
    assert_eq!(
        validate_files(&[good.as_path(), bad.as_path(), Path::new("/no/such/file")], &mut out),
        1
    );
    let shown = text(out);
    assert!(shown.contains("bad.asl.json: /StartAt: StartAt names 'X'"), "{shown}");
    assert!(
        shown.contains("bad.asl.json: state 'A' (/States/A/Next): 'B' is not a state"),
        "{shown}"
    );
    assert!(shown.contains("/no/such/file: cannot read"), "{shown}");
}

#[tokio::test]
async fn exec_runs_mocked_test_cases() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write(dir.path(), "pipeline.asl.json", PIPELINE);
    let mocks = write(dir.path(), "mocks.json", MOCKS);

    let mut out = Vec::new();
    let code = exec(
        &definition,
        "{}",
        ExecSetup {
            mock_config: Some(&mocks),
            test_case: Some("HappyPath"),
            ..ExecSetup::default()
        },
        &mut out,
    )
    .await;
    assert_eq!((code, text(out)), (0, "{\"staged\":2}\n".to_string()));

    let mut out = Vec::new();
    let code = exec(
        &definition,
        "{}",
        ExecSetup {
            mock_config: Some(&mocks),
            test_case: Some("Expired"),
            ..ExecSetup::default()
        },
        &mut out,
    )
    .await;
    assert_eq!(code, 1);
    let failure: serde_json::Value = serde_json::from_str(&text(out)).unwrap();
    assert_eq!(
        failure,
        serde_json::json!({"Error": "Auth.ConsentRequired", "Cause": "the OAuth token expired"})
    );
}

#[tokio::test]
async fn exec_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write(dir.path(), "pipeline.asl.json", PIPELINE);
    let mut out = Vec::new();
    assert_eq!(
        exec(&definition, "{nope", ExecSetup::default(), &mut out).await,
        EXIT_USAGE
    );
    assert!(text(out).contains("--input is not valid JSON"));
    let mut out = Vec::new();
    assert_eq!(
        exec(
            &definition,
            "{}",
            ExecSetup {
                test_case: Some("HappyPath"),
                ..ExecSetup::default()
            },
            &mut out
        )
        .await,
        EXIT_USAGE
    );
    let mocks = write(dir.path(), "mocks.json", MOCKS);
    let mut out = Vec::new();
    assert_eq!(
        exec(
            &definition,
            "{}",
            ExecSetup {
                mock_config: Some(&mocks),
                test_case: Some("Missing"),
                ..ExecSetup::default()
            },
            &mut out
        )
        .await,
        EXIT_USAGE
    );
    assert!(text(out).contains("no test case named 'Missing'"));
}

#[tokio::test]
async fn conformance_prints_failures_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        r#"{"id": "pass", "category": "base", "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": true}}}, "input": {}, "expected": {"status": "SUCCEEDED", "output": 1.0}}"#,
        r#"{"id": "fail", "category": "base", "definition": {"StartAt": "A", "States": {"A": {"Type": "Fail", "Error": "E"}}}, "input": {}, "expected": {"status": "FAILED", "error": "E", "cause": null}}"#,
        r#"{"id": "wrong", "category": "other", "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}, "input": {"a": 1}, "expected": {"status": "SUCCEEDED", "output": {"a": 2}}}"#,
        "not json",
    ];
    let file = write(dir.path(), "cases.jsonl", &cases.join("\n"));
    let mut out = Vec::new();
    assert_eq!(conformance(&file, None, None, &mut out).await, (2, 2));
    let shown = text(out);
    assert!(
        shown.contains("FAIL [other] wrong: output {\"a\":1} != expected {\"a\":2}"),
        "{shown}"
    );
    assert!(shown.contains("FAIL line 4"), "{shown}");
    assert!(shown.ends_with("2 passed, 2 failed\n"));
    let mut out = Vec::new();
    assert_eq!(conformance(&file, Some("base"), None, &mut out).await, (2, 1));
}

/// `--virtual-clock`: a day-long Wait costs no real time (the run would otherwise hang past the
/// guard), and the clock reads as if the day had passed.
#[tokio::test]
async fn the_virtual_clock_skips_a_day_long_wait_but_keeps_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write(
        dir.path(),
        "slow.asl.json",
        r#"{"StartAt": "Before", "States": {
            "Before": {"Type": "Pass", "Parameters": {"at.$": "$$.State.EnteredTime"}, "Next": "Day"},
            "Day": {"Type": "Wait", "Seconds": 86400, "Next": "After"},
            "After": {"Type": "Pass", "Parameters": {"before.$": "$.at", "after.$": "$$.State.EnteredTime"}, "End": true}
        }}"#,
    );
    let mut out = Vec::new();
    let setup = ExecSetup {
        virtual_clock: true,
        ..ExecSetup::default()
    };
    let run = exec(&definition, "{}", setup, &mut out);
    let code = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("a virtual day took real time");
    assert_eq!(code, 0, "{}", text(out.clone()));
    let output: serde_json::Value = serde_json::from_str(&text(out)).unwrap();
    let at = |field: &str| chrono::DateTime::parse_from_rfc3339(output[field].as_str().unwrap()).unwrap();
    assert_eq!((at("after") - at("before")).num_seconds(), 86_400, "{output}");
    // The clock started at the real time, not at some fixed epoch.
    assert!(
        (chrono::Utc::now() - at("before").with_timezone(&chrono::Utc))
            .num_seconds()
            .abs()
            < 3600
    );
}
