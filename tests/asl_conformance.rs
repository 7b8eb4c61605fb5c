//! The recorded AWS executions in `../shared/asl-conformance/` (beside the repository, as in CI):
//! every JSONPath case must pass on the local engine. (JSONata cases are not supported yet.)

use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread")]
async fn every_recorded_jsonpath_case_passes() {
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/asl-conformance/public.jsonl");
    let Ok(text) = std::fs::read_to_string(&cases) else {
        if std::env::var_os("CI").is_some() || std::env::var("SLUICE_REQUIRE_AWS_TESTS").as_deref() == Ok("1") {
            panic!(
                "{} is missing: CI must have shared/ beside the repository",
                cases.display()
            );
        }
        eprintln!("SKIPPED: {} is not there", cases.display());
        return;
    };
    let jsonpath: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .map(|case| case.get("query_language").and_then(|q| q.as_str()) != Some("JSONata"))
                .unwrap_or(true)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let subset = dir.path().join("jsonpath.jsonl");
    std::fs::write(&subset, jsonpath.join("\n")).unwrap();
    let mut out = Vec::new();
    let (passed, failed) = sluice_statemachine::cli::conformance(&subset, None, None, &mut out).await;
    let report = String::from_utf8_lossy(&out);
    assert_eq!(failed, 0, "{report}");
    assert!(passed >= 404, "{passed} JSONPath cases passed\n{report}");
}
