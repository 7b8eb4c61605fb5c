//! The recorded AWS executions in `../shared/asl-conformance/` (beside the repository, as in CI):
//! every case must pass on the local engine, JSONPath and JSONata alike, the Distributed Map ones
//! with their S3 objects seeded into an object directory. (A JSONata Distributed Map is still
//! refused by validation, with a message that says so; its one case is left out.)

use std::path::PathBuf;

/// The cases of `file` (only the JSONPath ones when `jsonpath_only`), written to a file of
/// their own; `None` (or a panic in CI) when `shared/` is not beside the repository.
fn cases(file: &str, dir: &std::path::Path, jsonpath_only: bool) -> Option<PathBuf> {
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/asl-conformance")
        .join(file);
    let Ok(text) = std::fs::read_to_string(&cases) else {
        if std::env::var_os("CI").is_some() || std::env::var("SLUICE_REQUIRE_AWS_TESTS").as_deref() == Ok("1") {
            panic!(
                "{} is missing: CI must have shared/ beside the repository",
                cases.display()
            );
        }
        eprintln!("SKIPPED: {} is not there", cases.display());
        return None;
    };
    let jsonpath: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            !jsonpath_only
                || serde_json::from_str::<serde_json::Value>(line)
                    .map(|case| case.get("query_language").and_then(|q| q.as_str()) != Some("JSONata"))
                    .unwrap_or(true)
        })
        .collect();
    let subset = dir.join(file);
    std::fs::write(&subset, jsonpath.join("\n")).unwrap();
    Some(subset)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_recorded_case_passes_jsonpath_and_jsonata() {
    let dir = tempfile::tempdir().unwrap();
    let Some(subset) = cases("public.jsonl", dir.path(), false) else {
        return;
    };
    let mut out = Vec::new();
    let (passed, failed) = sluice::asl::conformance(&subset, None, None, &mut out).await;
    let report = String::from_utf8_lossy(&out);
    assert_eq!(failed, 0, "{report}");
    assert!(passed >= 452, "{passed} cases passed\n{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_recorded_distributed_map_case_passes_over_an_object_directory() {
    let dir = tempfile::tempdir().unwrap();
    let Some(subset) = cases("distributed-map.jsonl", dir.path(), true) else {
        return;
    };
    let s3 = dir.path().join("s3");
    let mut out = Vec::new();
    let (passed, failed) = sluice::asl::conformance(&subset, None, Some(&s3), &mut out).await;
    let report = String::from_utf8_lossy(&out);
    assert_eq!(failed, 0, "{report}");
    assert!(passed >= 22, "{passed} Distributed Map cases passed\n{report}");
    assert!(
        s3.join("test-bucket").is_dir(),
        "the cases' objects were seeded into the directory"
    );
}
