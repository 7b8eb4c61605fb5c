//! Runs ASL conformance cases (the JSON-lines format of `asl-conformance/README.md`):
//! recorded AWS executions, judged by status, output (as JSON values) and error name.

use crate::clock::ManualClock;
use crate::executor::{Engine, ExecutionOutcome, StartExecution};
use crate::json::numbers_equal;
use crate::model::StateMachine;
use crate::task::TaskRegistry;
use serde::Deserialize;
use serde_json::Value;
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
}

/// Runs one case; `Err` says why it does not match AWS.
pub async fn run_case(case: &ConformanceCase) -> Result<(), String> {
    let text = serde_json::to_string(&case.definition).map_err(|e| e.to_string())?;
    let machine = StateMachine::from_json(&text).map_err(|e| format!("definition rejected: {e}"))?;
    let engine = Engine::new(TaskRegistry::new()).with_clock(Arc::new(ManualClock::default()));
    let report = engine
        .start_execution(&machine, StartExecution::new("Conformance", case.input.clone()))
        .await
        .map_err(|e| format!("could not start: {e}"))?;
    let status = case.expected.get("status").and_then(Value::as_str).unwrap_or("");
    match (status, &report.outcome) {
        ("SUCCEEDED", ExecutionOutcome::Succeeded { output }) => {
            let expected = case.expected.get("output").unwrap_or(&Value::Null);
            if numbers_equal(output, expected) {
                Ok(())
            } else {
                Err(format!(
                    "output {} != expected {}",
                    crate::json::to_compact(output),
                    crate::json::to_compact(expected)
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
pub async fn conformance(file: &Path, category: Option<&str>, out: &mut dyn Write) -> (usize, usize) {
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
        match run_case(&case).await {
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
