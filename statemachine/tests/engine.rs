//! The engine end to end: tasks, retries and catches, task tokens parked in SQLite and
//! resumed by another engine, heartbeats, timeouts, mocks, history and limits.

use serde_json::{Value, json};
use sluice_statemachine::{
    Clock, Engine, EngineError, EngineOptions, EventType, ExecutionOutcome, FnHandler, ManualClock, MockConfig,
    SqliteExecutionStore, StartExecution, StateMachine, TaskContext, TaskFailure, TaskHandler, TaskRegistry,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn machine(definition: Value) -> StateMachine {
    StateMachine::from_json(&definition.to_string()).unwrap()
}

fn clocked(registry: TaskRegistry) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    (Engine::new(registry).with_clock(clock.clone()), clock)
}

async fn start(engine: &Engine, m: &StateMachine, input: Value) -> sluice_statemachine::ExecutionReport {
    engine
        .start_execution(m, StartExecution::new("Test", input))
        .await
        .unwrap()
}

fn succeeded(outcome: &ExecutionOutcome) -> &Value {
    match outcome {
        ExecutionOutcome::Succeeded { output } => output,
        other => panic!("expected success, got {other:?}"),
    }
}

fn failed(outcome: &ExecutionOutcome) -> (Option<String>, Option<String>) {
    match outcome {
        ExecutionOutcome::Failed { error, cause } => (error.clone(), cause.clone()),
        other => panic!("expected failure, got {other:?}"),
    }
}

fn waiting(outcome: &ExecutionOutcome) -> Vec<String> {
    match outcome {
        ExecutionOutcome::Waiting { task_tokens } => task_tokens.clone(),
        other => panic!("expected to wait, got {other:?}"),
    }
}

/// A Lambda handler that fails `failures` times with `error`, then doubles `n`.
fn flaky(failures: usize, error: &'static str, calls: Arc<AtomicUsize>) -> Arc<dyn TaskHandler> {
    Arc::new(FnHandler(move |_ctx: TaskContext, input: Value| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(if call < failures {
            Err(TaskFailure::new(error, "try again"))
        } else {
            Ok(json!({"n": input["n"].as_i64().unwrap_or(0) * 2}))
        })
    }))
}

const FN_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:double";

#[tokio::test]
async fn plain_lambda_arn_returns_the_handler_result_and_retries_until_success() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut registry = TaskRegistry::new();
    registry.register_lambda("double", flaky(2, "Gmail.RateLimited", calls.clone()));
    let (engine, clock) = clocked(registry);
    let started = clock.now();
    let m = machine(json!({
        "StartAt": "Double",
        "States": {"Double": {"Type": "Task", "Resource": FN_ARN, "End": true,
            "Retry": [{"ErrorEquals": ["Gmail.RateLimited"], "IntervalSeconds": 3, "BackoffRate": 2, "MaxAttempts": 2}]}}
    }));
    let report = start(&engine, &m, json!({"n": 21})).await;
    assert_eq!(succeeded(&report.outcome), &json!({"n": 42}));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Back-off waited 3 s then 6 s on the virtual clock.
    assert_eq!((clock.now() - started).num_seconds(), 9);
}

#[tokio::test]
async fn exhausted_retries_fall_through_to_the_matching_catcher() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut registry = TaskRegistry::new();
    registry.register_lambda("double", flaky(10, "Ingest.InvalidCsv", calls.clone()));
    let (engine, _) = clocked(registry);
    let m = machine(json!({
        "StartAt": "Double",
        "States": {
            "Double": {"Type": "Task", "Resource": FN_ARN, "Next": "Done",
                "Retry": [{"ErrorEquals": ["Ingest.InvalidCsv"], "MaxAttempts": 1}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}],
                "Catch": [{"ErrorEquals": ["Other"], "Next": "Done"}, {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failure", "Next": "Quarantine"}]},
            "Quarantine": {"Type": "Pass", "End": true},
            "Done": {"Type": "Succeed"}
        }
    }));
    let report = start(&engine, &m, json!({"n": 1})).await;
    assert_eq!(
        succeeded(&report.outcome),
        &json!({"n": 1, "failure": {"Error": "Ingest.InvalidCsv", "Cause": "try again"}})
    );
    // Only the first matching retrier counts: 1 try + 1 retry.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn lambda_invoke_wraps_the_payload_like_aws() {
    let mut registry = TaskRegistry::new();
    registry.register_lambda("double", flaky(0, "x", Arc::new(AtomicUsize::new(0))));
    let (engine, _) = clocked(registry);
    let m = machine(json!({
        "StartAt": "Invoke",
        "States": {"Invoke": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "double", "Payload": {"n.$": "$.value"}},
            "ResultSelector": {"doubled.$": "$.Payload.n", "status.$": "$.StatusCode"}, "End": true}}
    }));
    let report = start(&engine, &m, json!({"value": 5})).await;
    assert_eq!(succeeded(&report.outcome), &json!({"doubled": 10, "status": 200}));
}

#[tokio::test]
async fn a_task_without_a_handler_fails_the_execution_with_a_runtime_error() {
    let (engine, _) = clocked(TaskRegistry::new());
    let m = machine(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": true,
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]}, "Caught": {"Type": "Succeed"}}}),
    );
    let (error, cause) = failed(&start(&engine, &m, json!({})).await.outcome);
    assert_eq!(error.as_deref(), Some("States.Runtime"));
    assert!(cause.unwrap().contains("no task handler"));
}

fn callback_machine() -> StateMachine {
    machine(json!({
        "StartAt": "AskConsent",
        "States": {
            "AskConsent": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "request-consent", "Payload": {"token.$": "$$.Task.Token", "user.$": "$.user"}},
                "HeartbeatSeconds": 60, "ResultPath": "$.consent", "Next": "Done",
                "Catch": [{"ErrorEquals": ["Auth.ConsentDenied"], "Next": "Denied"}]},
            "Denied": {"Type": "Fail", "Error": "Auth.ConsentRequired", "Cause": "the user said no"},
            "Done": {"Type": "Succeed"}
        }
    }))
}

/// Remembers the tokens it is handed, as the consent-request stage would email them.
fn token_catcher(seen: Arc<Mutex<Vec<String>>>) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register_lambda(
        "request-consent",
        Arc::new(FnHandler(move |ctx: TaskContext, payload: Value| {
            let seen = seen.clone();
            async move {
                assert_eq!(ctx.task_token.as_deref(), payload["token"].as_str());
                seen.lock()
                    .unwrap()
                    .push(payload["token"].as_str().unwrap().to_string());
                Ok(json!({"ignored": true}))
            }
        })),
    );
    registry
}

#[tokio::test]
async fn a_parked_execution_is_resumed_by_another_engine_through_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sluice.db");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let clock = Arc::new(ManualClock::default());
    let first = Engine::new(token_catcher(seen.clone()))
        .with_store(Arc::new(SqliteExecutionStore::open(&db).unwrap()))
        .with_clock(clock.clone());
    let report = start(&first, &callback_machine(), json!({"user": "u-1"})).await;
    let tokens = waiting(&report.outcome);
    assert_eq!(tokens, *seen.lock().unwrap());
    drop(first);

    // A second "process": fresh engine, same file, handler never called again.
    let second = Engine::new(token_catcher(seen.clone()))
        .with_store(Arc::new(SqliteExecutionStore::open(&db).unwrap()))
        .with_clock(clock.clone());
    assert!(matches!(
        second.send_task_success("bogus", json!({})).await,
        Err(EngineError::InvalidToken)
    ));
    second.send_task_heartbeat(&tokens[0]).await.unwrap();
    let resumed = second
        .send_task_success(&tokens[0], json!({"code": "granted"}))
        .await
        .unwrap();
    assert_eq!(
        succeeded(&resumed.outcome),
        &json!({"user": "u-1", "consent": {"code": "granted"}})
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    // The token is spent.
    assert!(matches!(
        second.send_task_success(&tokens[0], json!({})).await,
        Err(EngineError::InvalidToken)
    ));

    let history = second.execution_history(&resumed.execution_arn).unwrap();
    let types: Vec<EventType> = history.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        vec![
            EventType::ExecutionStarted,
            EventType::TaskStateEntered,
            EventType::TaskScheduled,
            EventType::TaskStarted,
            EventType::TaskSubmitted,
            EventType::TaskSucceeded,
            EventType::TaskStateExited,
            EventType::SucceedStateEntered,
            EventType::SucceedStateExited,
            EventType::ExecutionSucceeded,
        ]
    );
    let listed = second.list_executions().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status.as_str(), "SUCCEEDED");
}

#[tokio::test]
async fn send_task_failure_is_caught_like_any_task_error() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (engine, _) = clocked(token_catcher(seen));
    let tokens = waiting(&start(&engine, &callback_machine(), json!({"user": "u"})).await.outcome);
    let report = engine
        .send_task_failure(&tokens[0], "Auth.ConsentDenied", "no")
        .await
        .unwrap();
    assert_eq!(
        failed(&report.outcome),
        (Some("Auth.ConsentRequired".into()), Some("the user said no".into()))
    );
}

#[tokio::test]
async fn a_missed_heartbeat_fails_the_task_with_states_timeout() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (engine, clock) = clocked(token_catcher(seen));
    let tokens = waiting(&start(&engine, &callback_machine(), json!({"user": "u"})).await.outcome);
    clock.advance(chrono::Duration::seconds(30));
    engine.send_task_heartbeat(&tokens[0]).await.unwrap();
    clock.advance(chrono::Duration::seconds(50));
    assert!(engine.check_timeouts().await.unwrap().is_empty());
    clock.advance(chrono::Duration::seconds(20));
    let reports = engine.check_timeouts().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(failed(&reports[0].outcome).0.as_deref(), Some("States.Timeout"));
    assert!(matches!(
        engine.send_task_success(&tokens[0], json!({})).await,
        Err(EngineError::InvalidToken)
    ));
}

#[tokio::test]
async fn parallel_branches_park_together_and_resume_one_at_a_time() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (engine, _) = clocked(token_catcher(seen.clone()));
    let ask = |name: &str| {
        json!({"StartAt": name, "States": {name: {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "request-consent", "Payload": {"token.$": "$$.Task.Token"}}, "End": true}}})
    };
    let m = machine(
        json!({"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": true, "Branches": [ask("Left"), ask("Right")]}}}),
    );
    let tokens = waiting(&start(&engine, &m, json!({})).await.outcome);
    assert_eq!(tokens.len(), 2);
    let after_one = engine.send_task_success(&tokens[1], json!("right")).await.unwrap();
    assert_eq!(waiting(&after_one.outcome), vec![tokens[0].clone()]);
    let done = engine.send_task_success(&tokens[0], json!("left")).await.unwrap();
    assert_eq!(succeeded(&done.outcome), &json!(["left", "right"]));
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "handlers run once per token, not once per resume"
    );
}

#[tokio::test]
async fn mock_config_drives_tasks_including_retries() {
    let config = MockConfig::from_json(
        r#"{
        "StateMachines": {"Test": {"TestCases": {"FlakyFetch": {"Fetch": "RateLimitedOnce"}}}},
        "MockedResponses": {"RateLimitedOnce": {
            "0": {"Throw": {"Error": "Gmail.RateLimited", "Cause": "429"}},
            "1": {"Return": {"StatusCode": 200, "Payload": {"messages": 3}}}
        }}
    }"#,
    )
    .unwrap();
    let (engine, _) = clocked(TaskRegistry::new());
    let m = machine(
        json!({"StartAt": "Fetch", "States": {"Fetch": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "fetch"}, "OutputPath": "$.Payload", "End": true,
        "Retry": [{"ErrorEquals": ["Gmail.RateLimited"], "MaxAttempts": 1}]}}}),
    );
    let mut request = StartExecution::new("Test", json!({}));
    request.mocks = Some(config.test_case(Some("Test"), "FlakyFetch").unwrap());
    let report = engine.start_execution(&m, request).await.unwrap();
    assert_eq!(succeeded(&report.outcome), &json!({"messages": 3}));
}

#[tokio::test]
async fn oversized_state_output_fails_with_data_limit_exceeded() {
    let (engine, _) = clocked(TaskRegistry::new());
    let big = "x".repeat(300_000);
    let m = machine(json!({"StartAt": "Grow", "States": {"Grow": {"Type": "Pass", "Result": big, "End": true}}}));
    let (error, _) = failed(&start(&engine, &m, json!({})).await.outcome);
    assert_eq!(error.as_deref(), Some("States.DataLimitExceeded"));
    let too_big_input = json!({"blob": "y".repeat(300_000)});
    assert!(matches!(
        engine
            .start_execution(&m, StartExecution::new("Test", too_big_input))
            .await,
        Err(EngineError::InputTooLarge(_))
    ));
}

fn endless_loop() -> StateMachine {
    machine(json!({
        "StartAt": "Check",
        "States": {
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "BooleanEquals": true, "Next": "Done"}], "Default": "Again"},
            "Again": {"Type": "Pass", "Next": "Check"},
            "Done": {"Type": "Succeed"}
        }
    }))
}

#[tokio::test]
async fn the_history_limit_stops_runaway_loops() {
    let (engine, _) = clocked(TaskRegistry::new());
    let report = start(&engine, &endless_loop(), json!({"stop": false})).await;
    let (error, cause) = failed(&report.outcome);
    assert_eq!(error.as_deref(), Some("States.Runtime"));
    assert!(cause.unwrap().contains("25000"));
    let history = engine.execution_history(&report.execution_arn).unwrap();
    assert_eq!(history.len(), 25_001);
    assert_eq!(history.last().unwrap().event_type, EventType::ExecutionFailed);
}

#[tokio::test]
async fn the_history_limit_can_be_lifted() {
    let options = EngineOptions {
        history_limit: Some(100),
        ..Default::default()
    };
    let engine = Engine::new(TaskRegistry::new())
        .with_clock(Arc::new(ManualClock::default()))
        .with_options(options);
    let report = start(&engine, &endless_loop(), json!({"stop": false})).await;
    assert!(failed(&report.outcome).1.unwrap().contains("(100)"));
}

#[tokio::test]
async fn waits_and_timestamps_use_the_injected_clock() {
    let (engine, clock) = clocked(TaskRegistry::new());
    let before = clock.now();
    let m = machine(json!({"StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 86400, "Next": "Until"},
        "Until": {"Type": "Wait", "TimestampPath": "$.at", "Next": "Stamp"},
        "Stamp": {"Type": "Pass", "Parameters": {"entered.$": "$$.State.EnteredTime", "name.$": "$$.Execution.Name"}, "End": true}
    }}));
    let mut request = StartExecution::new("Test", json!({"at": "2030-01-01T00:00:00Z"}));
    request.name = Some("nap-run".into());
    let report = engine.start_execution(&m, request).await.unwrap();
    assert_eq!(
        succeeded(&report.outcome),
        &json!({"entered": "2030-01-01T00:00:00.000Z", "name": "nap-run"})
    );
    assert!(clock.now() > before + chrono::Duration::days(1));
    assert!(matches!(
        engine
            .start_execution(&m, {
                let mut again = StartExecution::new("Test", json!({}));
                again.name = Some("nap-run".into());
                again
            })
            .await,
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
}

#[tokio::test]
async fn a_slow_task_times_out_on_the_virtual_clock() {
    let clock = Arc::new(ManualClock::default());
    let task_clock = clock.clone();
    let mut registry = TaskRegistry::new();
    registry.register(
        "arn:aws:states:::glue:startJobRun.sync",
        Arc::new(FnHandler(move |_ctx: TaskContext, _input: Value| {
            task_clock.advance(chrono::Duration::seconds(120));
            futures::future::ready(Ok(json!({})))
        })),
    );
    let engine = Engine::new(registry).with_clock(clock);
    let m = machine(
        json!({"StartAt": "Job", "States": {"Job": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync", "TimeoutSeconds": 60, "End": true}}}),
    );
    let report = start(&engine, &m, json!({})).await;
    assert_eq!(failed(&report.outcome).0.as_deref(), Some("States.Timeout"));
    let types: Vec<EventType> = engine
        .execution_history(&report.execution_arn)
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    assert!(types.contains(&EventType::TaskTimedOut));
}

#[tokio::test]
async fn a_distributed_map_tolerates_failures_up_to_its_threshold() {
    let (engine, _) = clocked(TaskRegistry::new());
    let def = |tolerated: u64| {
        machine(
            json!({"StartAt": "Each", "States": {"Each": {"Type": "Map", "ToleratedFailureCount": tolerated, "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, "StartAt": "Check", "States": {
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericLessThan": 0, "Next": "Bad"}], "Default": "Ok"},
            "Bad": {"Type": "Fail", "Error": "Item.Negative", "Cause": "below zero"},
            "Ok": {"Type": "Pass", "End": true}}}}}}),
        )
    };
    let report = start(&engine, &def(1), json!([1, -2, 3])).await;
    let output = succeeded(&report.outcome);
    assert_eq!((&output[0], &output[2]), (&json!(1), &json!(3)));
    // A failed child's entry is its execution result, as AWS gives it.
    assert_eq!(output[1]["Status"], "FAILED");
    assert_eq!(output[1]["Error"], "Item.Negative");
    assert_eq!(output[1]["Cause"], "below zero");
    assert_eq!(output[1]["Input"], "-2");
    let report = start(&engine, &def(0), json!([1, -2, -3])).await;
    assert_eq!(
        failed(&report.outcome).0.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );
}
