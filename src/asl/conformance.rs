//! Runs ASL conformance cases (the JSON-lines format of `asl-conformance/README.md`):
//! recorded AWS executions, judged by status, output (as JSON values) and error name.

use serde::Deserialize;
use serde_json::Value;
use sluice_statemachine::ManualClock;
use sluice_statemachine::{DirectoryObjectStorage, MemoryObjectStorage, ObjectStorage, StateMachine, TaskRegistry};
use sluice_statemachine::{Engine, ExecutionOutcome, StartExecution};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

/// One recorded execution.
#[derive(Debug, Clone, Deserialize)]
pub struct ConformanceCase {
    pub id: String,
    pub category: String,
    pub definition: Value,
    #[serde(default)]
    pub input: Value,
    pub expected: Value,
    /// Objects to put in the S3 stand-in first: bucket -> key -> body.
    #[serde(default)]
    pub s3: BTreeMap<String, BTreeMap<String, String>>,
    /// How to compare where exact equality cannot hold (see the README of the cases).
    #[serde(default)]
    pub compare: Option<Value>,
}

/// Runs one case; `Err` says why it does not match AWS. The case's `s3` objects are seeded
/// into `s3_dir` when given (as `DIR/<bucket>/<key>`), else into memory.
pub async fn run_case(case: &ConformanceCase, s3_dir: Option<&Path>) -> Result<(), String> {
    let text = serde_json::to_string(&case.definition).map_err(|e| e.to_string())?;
    let machine = StateMachine::from_json(&text).map_err(|e| format!("definition rejected: {e}"))?;
    let objects: Arc<dyn ObjectStorage> = match s3_dir {
        Some(dir) => {
            let store = DirectoryObjectStorage::new(dir);
            for (bucket, objects) in &case.s3 {
                for (key, body) in objects {
                    store
                        .put_object(bucket, key, body.clone().into_bytes())
                        .await
                        .map_err(|e| format!("cannot seed s3://{bucket}/{key}: {e}"))?;
                }
            }
            Arc::new(store)
        }
        None => {
            let store = MemoryObjectStorage::new();
            for (bucket, objects) in &case.s3 {
                store.create_bucket(bucket);
                for (key, body) in objects {
                    store.insert(bucket, key, body.clone());
                }
            }
            Arc::new(store)
        }
    };
    let engine = Engine::new(TaskRegistry::new())
        .with_clock(Arc::new(ManualClock::default()))
        .with_objects(objects);
    let report = engine
        .start_execution(&machine, StartExecution::new("Conformance", case.input.clone()))
        .await
        .map_err(|e| format!("could not start: {e}"))?;
    let status = case.expected.get("status").and_then(Value::as_str).unwrap_or("");
    match (status, &report.outcome) {
        ("SUCCEEDED", ExecutionOutcome::Succeeded { output }) => {
            let expected = case.expected.get("output").unwrap_or(&Value::Null);
            if super::compare::matches(output, expected, case.compare.as_ref())? {
                Ok(())
            } else {
                Err(format!(
                    "output {} != expected {}",
                    sluice_statemachine::json::to_compact(output),
                    sluice_statemachine::json::to_compact(expected)
                ))
            }
        }
        ("FAILED", ExecutionOutcome::Failed { error, .. }) => {
            let expected = case.expected.get("error").and_then(Value::as_str);
            if error.as_deref() == expected {
                Ok(())
            } else {
                Err(format!("error {error:?} != expected {expected:?}"))
            }
        }
        (_, outcome) => Err(format!("expected {status}, got {outcome:?}")),
    }
}

/// `sluice conformance FILE.jsonl [--category C]`: one line per failing case, then
/// `N passed, M failed`. Returns the counts.
pub async fn conformance(
    file: &Path,
    category: Option<&str>,
    s3_dir: Option<&Path>,
    out: &mut dyn Write,
) -> (usize, usize) {
    let reader = match std::fs::File::open(file) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => {
            let _ = writeln!(out, "cannot read {}: {e}", file.display());
            let _ = writeln!(out, "0 passed, 0 failed");
            return (0, 0);
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for (number, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(l) if l.trim().is_empty() => continue,
            Ok(l) => l,
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "FAIL line {}: cannot read: {e}", number + 1);
                continue;
            }
        };
        let case: ConformanceCase = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "FAIL line {}: not a conformance case: {e}", number + 1);
                continue;
            }
        };
        if category.is_some_and(|c| c != case.category) {
            continue;
        }
        match run_case(&case, s3_dir).await {
            Ok(()) => passed += 1,
            Err(reason) => {
                failed += 1;
                let _ = writeln!(out, "FAIL [{}] {}: {reason}", case.category, case.id);
            }
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    (passed, failed)
}
