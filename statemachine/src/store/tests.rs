//! One test body, run against both stores.

use super::*;
use crate::history::{EventDetails, EventType};
use serde_json::json;

fn record(name: &str) -> ExecutionRecord {
    ExecutionRecord {
        execution_arn: format!("arn:test:{name}"),
        name: name.to_string(),
        state_machine_name: "Pipeline".into(),
        state_machine_arn: "arn:test:sm".into(),
        definition: "{}".into(),
        input: json!({"k": 1}),
        status: ExecutionStatus::Running,
        start_date: chrono::Utc::now(),
        stop_date: None,
        output: None,
        error: None,
        cause: None,
        pending_tasks: vec![PendingTask {
            token: format!("token-{name}"),
            answer_key: "/1#a0!answer".into(),
            state_name: "Wait".into(),
            resource: "r".into(),
            scheduled_at: chrono::Utc::now(),
            last_heartbeat: chrono::Utc::now(),
            heartbeat_seconds: Some(60),
            timeout_seconds: None,
            answer: None,
        }],
        replay: Default::default(),
        mocks: None,
        seed: 7,
        history_limit: Some(25_000),
        parent: None,
        execution_type: Default::default(),
        redrive_count: 0,
        redrive_date: None,
        history_splices: Vec::new(),
        failure_point: None,
        version: 0,
        history: std::sync::Arc::new(vec![HistoryEvent {
            id: 1,
            previous_event_id: 0,
            timestamp: chrono::Utc::now(),
            event_type: EventType::ExecutionStarted,
            details: Box::new(EventDetails {
                input: Some(json!({"k": 1})),
                ..Default::default()
            }),
        }]),
    }
}

fn exercise(store: &dyn ExecutionStore) {
    let mut r = record("one");
    store.create(&r).unwrap();
    assert!(matches!(store.create(&r), Err(StoreError::AlreadyExists(_))));
    assert_eq!(
        store.execution_for_token("token-one").unwrap().as_deref(),
        Some("arn:test:one")
    );
    assert_eq!(store.execution_for_token("nope").unwrap(), None);

    r.version = 1;
    r.status = ExecutionStatus::Succeeded;
    r.output = Some(json!([1]));
    store.save(r.clone()).unwrap();
    // A save based on the old version loses.
    assert!(matches!(store.save(r.clone()), Err(StoreError::Conflict(_))));

    let loaded = store.load("arn:test:one").unwrap().unwrap();
    assert_eq!(loaded.status, ExecutionStatus::Succeeded);
    assert_eq!(loaded.output, Some(json!([1])));
    assert_eq!(loaded.pending_tasks, r.pending_tasks);
    assert_eq!(loaded.history.len(), 1);
    assert_eq!(
        store.history("arn:test:one").unwrap()[0].event_type,
        EventType::ExecutionStarted
    );
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.load("arn:test:missing").unwrap().is_none());
}

#[test]
fn memory_store_keeps_versions_tokens_and_history() {
    exercise(&MemoryExecutionStore::new());
}

#[test]
fn sqlite_store_keeps_versions_tokens_and_history() {
    exercise(&SqliteExecutionStore::open_in_memory().unwrap());
}

#[test]
fn sqlite_store_shares_a_file_with_other_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE records (k TEXT PRIMARY KEY); INSERT INTO records VALUES ('x');")
            .unwrap();
    }
    let store = SqliteExecutionStore::open(&path).unwrap();
    store.create(&record("two")).unwrap();
    drop(store);
    let reopened = SqliteExecutionStore::open(&path).unwrap();
    assert!(reopened.load("arn:test:two").unwrap().is_some());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn sqlite_store_reports_a_corrupt_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let store = SqliteExecutionStore::open(&path).unwrap();
    store.create(&record("three")).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE sfn_executions SET record_json = '{not json'", [])
        .unwrap();
    assert!(matches!(store.load("arn:test:three"), Err(StoreError::Corrupt(_))));
}
