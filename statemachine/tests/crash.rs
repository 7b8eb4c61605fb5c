//! A process killed with SIGKILL in the middle of a Distributed Map: the next engine finds
//! the execution abandoned (ABORTED, with a cause), and a redrive finishes it with the output a
//! clean run gives, rerunning only the children that had not finished.
//!
//! The killed process is this test binary itself, re-run with `SLUICE_CRASH_DIR` set: then
//! `crash_child_process` runs the map instead of returning.

use serde_json::{Value, json};
use sluice_statemachine::{
    DirectoryObjectStorage, Engine, EventType, ExecutionOutcome, ExecutionStatus, FnHandler, SqliteExecutionStore,
    StartExecution, StateMachine, TaskContext, TaskRegistry,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ITEMS: u64 = 120;
const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:Crash:crash";

fn machine() -> StateMachine {
    let definition = json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map",
        "MaxConcurrency": 4,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
                       "Parameters": {"Bucket": "data", "Key": "items.jsonl"}},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": {"Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work", "End": true}}
        },
        "End": true
    }}});
    StateMachine::from_json(&definition.to_string()).unwrap()
}

/// Doubles `n` after `delay`, counting calls.
fn engine(dir: &Path, delay: Duration, calls: Arc<AtomicUsize>) -> Engine {
    let mut registry = TaskRegistry::new();
    registry.register_lambda(
        "work",
        Arc::new(FnHandler(move |_ctx: TaskContext, input: Value| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                Ok(json!({"n": input["n"].as_u64().unwrap_or(0) * 2}))
            }
        })),
    );
    let store = SqliteExecutionStore::open(dir.join("sfn.db")).unwrap();
    Engine::new(registry)
        .with_store(Arc::new(store))
        .with_objects(Arc::new(DirectoryObjectStorage::new(dir.join("s3"))))
}

fn seed(dir: &Path) {
    let body: String = (0..ITEMS).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::create_dir_all(dir.join("s3/data")).unwrap();
    std::fs::write(dir.join("s3/data/items.jsonl"), body).unwrap();
}

fn expected_output() -> Value {
    Value::Array((0..ITEMS).map(|n| json!({"n": n * 2})).collect())
}

/// Runs the map slowly when started as the process to kill; otherwise does nothing.
#[tokio::test]
async fn crash_child_process() {
    let Ok(dir) = std::env::var("SLUICE_CRASH_DIR") else {
        return;
    };
    let engine = engine(
        Path::new(&dir),
        Duration::from_millis(40),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut request = StartExecution::new("Crash", json!({}));
    request.name = Some("crash".into());
    let _ = engine.start_execution(&machine(), request).await;
}

fn finished_children(db: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return 0;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM sfn_executions WHERE map_run_arn IS NOT NULL AND status = 'SUCCEEDED'",
        [],
        |row| row.get(0),
    )
    .unwrap_or(0)
}

#[tokio::test]
async fn a_map_killed_midway_is_aborted_then_redriven_to_the_clean_output() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_process", "--exact", "--nocapture", "--test-threads=1"])
        .env("SLUICE_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let db = dir.path().join("sfn.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    while finished_children(&db) < 20 {
        assert!(Instant::now() < deadline, "the child process made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child process ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before_kill = finished_children(&db) as usize;
    assert!(done_before_kill < ITEMS as usize, "the map finished before the kill");

    let calls = Arc::new(AtomicUsize::new(0));
    let engine = engine(dir.path(), Duration::from_millis(1), calls.clone());
    let record = engine.describe_execution(ARN).unwrap();
    assert_eq!(
        record.status,
        ExecutionStatus::Running,
        "killed mid-run, the record still says RUNNING"
    );
    assert_eq!(engine.abort_abandoned().unwrap(), vec![ARN.to_string()]);
    let record = engine.describe_execution(ARN).unwrap();
    assert_eq!(record.status, ExecutionStatus::Aborted);
    assert!(
        record.cause.as_deref().unwrap_or("").contains("is gone"),
        "{:?}",
        record.cause
    );
    let history = engine.execution_history(ARN).unwrap();
    assert_eq!(history.last().unwrap().event_type, EventType::ExecutionAborted);
    // What ran before the kill was checkpointed: the map run had started. It stopped with it.
    assert!(history.iter().any(|e| e.event_type == EventType::MapRunStarted));
    let map_run = engine.list_map_runs(ARN).unwrap().remove(0);
    assert_eq!(map_run.status, sluice_statemachine::store::MapRunStatus::Aborted);

    let report = engine.redrive_execution(ARN).await.unwrap();
    match &report.outcome {
        ExecutionOutcome::Succeeded { output } => assert_eq!(output, &expected_output()),
        other => panic!("the redrive did not succeed: {other:?}"),
    }
    let reran = calls.load(Ordering::SeqCst);
    assert_eq!(
        reran,
        ITEMS as usize - done_before_kill,
        "only unfinished children ran again"
    );
    let types: Vec<EventType> = engine
        .execution_history(ARN)
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    let aborted = types.iter().position(|t| *t == EventType::ExecutionAborted).unwrap();
    assert_eq!(types[aborted + 1], EventType::ExecutionRedriven);
    assert_eq!(types.last(), Some(&EventType::ExecutionSucceeded));
    assert_eq!(engine.describe_execution(ARN).unwrap().redrive_count, 1);
    let map_run = engine.list_map_runs(ARN).unwrap().remove(0);
    assert_eq!(map_run.status, sluice_statemachine::store::MapRunStatus::Succeeded);
    assert_eq!(map_run.redrive_count, 1);
    assert_eq!(map_run.item_counts.succeeded, ITEMS);
}

#[tokio::test]
async fn two_engines_never_run_one_execution_at_once() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let calls = Arc::new(AtomicUsize::new(0));
    let first = engine(dir.path(), Duration::from_millis(5), calls.clone());
    let second = engine(dir.path(), Duration::from_millis(5), calls.clone());
    let mut request = StartExecution::new("Crash", json!({}));
    request.name = Some("crash".into());
    let machine = machine();
    let running = first.start_execution(&machine, request);
    let racing = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The first engine holds the lease: the second may neither redrive nor abort it.
        assert!(second.abort_abandoned().unwrap().is_empty());
        second.redrive_execution(ARN).await
    };
    let (report, raced) = tokio::join!(running, racing);
    match report.unwrap().outcome {
        ExecutionOutcome::Succeeded { output } => assert_eq!(output, expected_output()),
        other => panic!("{other:?}"),
    }
    assert!(raced.is_err(), "a running execution is not redrivable: {raced:?}");
    assert_eq!(calls.load(Ordering::SeqCst), ITEMS as usize);
}

/// Several processes opening one fresh store file at once all get it: creating and migrating
/// the schema is one writer's at a time.
#[test]
fn many_openers_of_one_fresh_store_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sfn.db");
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || sluice_statemachine::SqliteExecutionStore::open(&path).map(drop))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().unwrap();
    }
}
