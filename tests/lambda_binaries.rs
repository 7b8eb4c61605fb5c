//! The pipeline through the real Lambda binaries: each function's binary (built by
//! `cargo build --workspace --bins`) runs in processes of its own behind a local Lambda Runtime
//! API, with the environment `infra/template.yaml` gives it, against moto, the fake Google and
//! the fake Comprehend, and must leave what the in-process run leaves. And hostile "binaries"
//! (shell scripts) that exit during init, fail their init, answer something that is not JSON,
//! fail with a named error or outlive their timeout: each fails its Task with an error naming
//! the function, and the definition's Retry/Catch apply.

#[path = "../steps/pii/tests/support/comprehend_server.rs"]
mod comprehend_server;
#[path = "../steps/gmail/tests/support/fake_google.rs"]
mod fake_google;
#[path = "support/fixture_dataset.rs"]
mod fixture_dataset;
#[path = "support/real_binaries.rs"]
mod real_binaries;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use real_binaries::{RunSetup, repo_root};
use serde_json::json;
use sluice::runner::lambda_host::{FunctionBinary, LambdaBinaries};
use sluice::runner::template::SamTemplate;
use sluice::runner::{FUNCTIONS, Pipeline, PipelineOptions};
use sluice_core::{Backends, Config};
use sluice_statemachine::{EventType, ExecutionOutcome};

// ---------------------------------------------------------------------------------------------
// Hostile binaries
// ---------------------------------------------------------------------------------------------

/// Each script notes `start <function> <pid>` when its process starts and `invoke <function>`
/// per invocation, in `$HOSTILE_MARKER`.
const PRELUDE: &str = r#"#!/bin/sh
echo "start $AWS_LAMBDA_FUNCTION_NAME $$" >> "$HOSTILE_MARKER"
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
next() {
  id=$(curl -sS -D - -o "$1" "$api/invocation/next" | tr -d '\r' | grep -i '^lambda-runtime-aws-request-id:' | cut -d' ' -f2)
  [ -n "$id" ] || exit 1
  echo "invoke $AWS_LAMBDA_FUNCTION_NAME" >> "$HOSTILE_MARKER"
}
"#;

const EXITS_DURING_INIT: &str = r#"
echo "reading the configuration: aws.bucket is required" >&2
exit 3
"#;

const FAILS_ITS_INIT: &str = r#"
curl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.InitError' \
  -d '{"errorType":"Config.Invalid","errorMessage":"no [aws] section"}' "$api/init/error" >/dev/null
exit 1
"#;

const ANSWERS_NOT_JSON: &str = r#"
while :; do
  next /dev/null
  curl -sS -X POST -d 'this is not JSON' "$api/invocation/$id/response" >/dev/null
done
"#;

const FAILS_WITH_A_NAMED_ERROR: &str = r#"
while :; do
  next /dev/null
  curl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: unhandled' \
    -d '{"errorType":"Stage.Io","errorMessage":"writing staged/x.csv: no space left"}' "$api/invocation/$id/error" >/dev/null
done
"#;

const SLEEPS_PAST_ITS_TIMEOUT: &str = r#"
next /dev/null
sleep 30
"#;

/// Answers each event with the event itself, a second later.
const ECHOES_SLOWLY: &str = r#"
body=$(mktemp)
while :; do
  next "$body"
  sleep 1
  curl -sS -X POST --data-binary @"$body" "$api/invocation/$id/response" >/dev/null
done
"#;

const HOSTILE_DEFINITION: &str = r#"{
  "StartAt": "ExitsDuringInit",
  "States": {
    "ExitsDuringInit": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${StageFunctionArn}", "Payload": {}},
      "Retry": [{"ErrorEquals": ["Runtime.ExitError"], "IntervalSeconds": 1, "MaxAttempts": 1}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught.exit", "Next": "FailsItsInit"}],
      "Next": "Unexpected"
    },
    "FailsItsInit": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${PiiDetectFunctionArn}", "Payload": {}},
      "Catch": [{"ErrorEquals": ["Config.Invalid"], "ResultPath": "$.caught.init", "Next": "AnswersNotJson"}],
      "Next": "Unexpected"
    },
    "AnswersNotJson": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${IngestFunctionArn}", "Payload": {"source_key": "clean/x.csv"}},
      "Catch": [{"ErrorEquals": ["Lambda.Unknown"], "ResultPath": "$.caught.malformed", "Next": "FailsWithNamedError"}],
      "Next": "Unexpected"
    },
    "FailsWithNamedError": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${PiiMaskFunctionArn}", "Payload": {}},
      "Retry": [{"ErrorEquals": ["Stage.Io"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
      "Catch": [{"ErrorEquals": ["Stage.Io"], "ResultPath": "$.caught.named", "Next": "SleepsPastTimeout"}],
      "Next": "Unexpected"
    },
    "SleepsPastTimeout": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${TokenIssueFunctionArn}", "Payload": {}},
      "Catch": [{"ErrorEquals": ["Sandbox.Timedout"], "ResultPath": "$.caught.timeout", "Next": "Scales"}],
      "Next": "Unexpected"
    },
    "Scales": {
      "Type": "Parallel",
      "Branches": [
        {"StartAt": "EchoA", "States": {"EchoA": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "${RunFinishFunctionArn}", "Payload": {"branch": "a"}}, "End": true}}},
        {"StartAt": "EchoB", "States": {"EchoB": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "${RunFinishFunctionArn}", "Payload": {"branch": "b"}}, "End": true}}}
      ],
      "ResultPath": "$.echoed",
      "End": true
    },
    "Unexpected": {"Type": "Fail", "Error": "Test.Unexpected", "Cause": "a hostile function succeeded"}
  }
}"#;

fn write_script(dir: &Path, binary: &str, body: &str) {
    let path = dir.join(binary);
    std::fs::write(&path, format!("{PRELUDE}{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn process_is_gone(pid: u32) -> bool {
    // Killed processes are reaped by the host shortly after.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_binaries_fail_their_tasks_with_errors_naming_the_function_and_retry_catch_apply() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    let scripts: BTreeMap<&str, &str> = [
        ("sluice-stage", EXITS_DURING_INIT),
        ("sluice-pii-detect", FAILS_ITS_INIT),
        ("sluice-ingest", ANSWERS_NOT_JSON),
        ("sluice-pii-mask", FAILS_WITH_A_NAMED_ERROR),
        ("sluice-token-issue", SLEEPS_PAST_ITS_TIMEOUT),
        ("sluice-run-finish", ECHOES_SLOWLY),
    ]
    .into_iter()
    .collect();
    let mut functions = BTreeMap::new();
    for function in &FUNCTIONS {
        let body = scripts.get(function.binary).copied().unwrap_or("exit 1\n");
        write_script(&bin, function.binary, body);
        let timeout = if function.binary == "sluice-token-issue" { 1 } else { 10 };
        let mut settings = FunctionBinary::new(Duration::from_secs(timeout));
        settings
            .environment
            .insert("HOSTILE_MARKER".into(), marker.display().to_string());
        functions.insert(function.binary.to_string(), settings);
    }
    let binaries = LambdaBinaries {
        dir: bin.clone(),
        working_dir: dir.path().to_path_buf(),
        region: "us-east-1".into(),
        functions,
        notes: Vec::new(),
    };

    let text = format!(
        "backend = \"local\"\ndata_dir = \"{}\"\n[gmail]\nsource = \"local\"\nmail_dir = \"{}\"\n",
        dir.path().join("data").display(),
        dir.path().join("mail").display()
    );
    let config = Config::from_toml(&text, "hostile", dir.path()).unwrap();
    let backends = Backends::local(&config).unwrap();
    let pipeline = Pipeline::open(
        &config,
        backends,
        PipelineOptions {
            definition: Some(HOSTILE_DEFINITION.to_string()),
            base_dir: dir.path().to_path_buf(),
            decorate: None,
            show_progress: false,
            lambda_binaries: Some(binaries),
            activities: None,
        },
    )
    .await
    .unwrap();

    let started = Instant::now();
    let report = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Succeeded { output } = &report.outcome else {
        panic!("every failure is caught: {:?}", report.outcome)
    };
    let caught = &output["caught"];
    let error = |name: &str| caught[name]["Error"].as_str().unwrap_or_default().to_string();
    let cause = |name: &str| caught[name]["Cause"].as_str().unwrap_or_default().to_string();

    assert_eq!(error("exit"), "Runtime.ExitError", "{caught:#}");
    assert!(
        cause("exit").contains("sluice-stage exited during init") && cause("exit").contains("aws.bucket is required"),
        "the cause names the function and carries its last words: {}",
        cause("exit")
    );
    assert_eq!(
        error("init"),
        "Config.Invalid",
        "init/error's errorType is the Task's error"
    );
    assert!(
        cause("init").contains("sluice-pii-detect failed during init: no [aws] section"),
        "{}",
        cause("init")
    );
    assert_eq!(error("malformed"), "Lambda.Unknown");
    assert!(
        cause("malformed").contains("sluice-ingest answered a response that is not JSON"),
        "{}",
        cause("malformed")
    );
    assert_eq!(error("named"), "Stage.Io", "a function's errorType is kept");
    assert_eq!(cause("named"), "writing staged/x.csv: no space left");
    assert_eq!(error("timeout"), "Sandbox.Timedout");
    assert!(
        cause("timeout").contains("sluice-token-issue timed out after 1.00 seconds"),
        "{}",
        cause("timeout")
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the 30-second sleeper was cut at its 1-second timeout"
    );

    // The lambda:invoke integration's shape around the function's own answer.
    for (i, branch) in ["a", "b"].iter().enumerate() {
        let result = &output["echoed"][i];
        assert_eq!(result["Payload"], json!({"branch": branch}), "{result:#}");
        assert_eq!(result["StatusCode"], 200);
    }

    let notes = std::fs::read_to_string(&marker).unwrap();
    let starts = |binary: &str| -> Vec<u32> {
        notes
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("start {binary} ")))
            .filter_map(|pid| pid.trim().parse().ok())
            .collect()
    };
    let invocations = |binary: &str| notes.lines().filter(|l| *l == format!("invoke {binary}")).count();
    assert_eq!(
        starts("sluice-stage").len(),
        2,
        "Retry ran the crashing function again, in a new process: {notes}"
    );
    assert_eq!(
        (starts("sluice-pii-mask").len(), invocations("sluice-pii-mask")),
        (1, 3),
        "a process that answered stays warm: three attempts (Retry MaxAttempts 2), one process: {notes}"
    );
    assert_eq!(
        starts("sluice-run-finish").len(),
        2,
        "two concurrent invocations run in two processes: {notes}"
    );
    let sleeper = starts("sluice-token-issue");
    assert!(process_is_gone(sleeper[0]), "the timed-out process was killed");

    // The history says which function failed, event by event.
    let history = pipeline.engine.execution_history(&report.execution_arn).unwrap();
    let failures: Vec<String> = history
        .iter()
        .filter(|e| e.event_type == EventType::TaskFailed)
        .filter_map(|e| e.details.cause.clone())
        .collect();
    for binary in [
        "sluice-stage",
        "sluice-pii-detect",
        "sluice-ingest",
        "sluice-token-issue",
    ] {
        assert!(
            failures.iter().any(|cause| cause.contains(binary)),
            "no TaskFailed event names {binary}: {failures:#?}"
        );
    }
    assert_eq!(
        history
            .iter()
            .filter(|e| e.event_type == EventType::TaskFailed && e.details.error.as_deref() == Some("Stage.Io"))
            .count(),
        3
    );

    // Dropping the pipeline stops the warm processes.
    let warm: Vec<u32> = starts("sluice-pii-mask")
        .into_iter()
        .chain(starts("sluice-ingest"))
        .chain(starts("sluice-run-finish"))
        .collect();
    assert!(warm.iter().all(|pid| Path::new(&format!("/proc/{pid}")).exists()));
    drop(pipeline);
    for pid in warm {
        assert!(process_is_gone(pid), "process {pid} outlived the pipeline");
    }
}

// ---------------------------------------------------------------------------------------------
// The real binaries, end to end
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_real_binaries_on_moto_reach_the_in_process_result() {
    // The functions' own logs (forwarded at debug level), shown when the test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("sluice::runner::lambda_host=debug")
        .with_test_writer()
        .try_init();
    let Some(endpoint) = sluice_core::testing::aws_endpoint() else {
        return;
    };
    let google = fake_google::FakeGoogle::start().await;
    google.add_dir(&repo_root().join("fixtures/mail"));
    let comprehend = comprehend_server::ComprehendServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let setup = RunSetup::new(&endpoint, &google, &comprehend, dir.path());
    let backends = setup.provision().await;
    let template = SamTemplate::load(&repo_root().join("infra/template.yaml")).unwrap();
    let pipeline = setup.pipeline(&backends, setup.binaries(&template)).await;

    let output = real_binaries::run_with_consent_through_the_callback(&pipeline, &google).await;
    fixture_dataset::assert_fixture_dataset(&backends, &output).await;
    fixture_dataset::assert_consumer_key_works(&setup.config, &backends).await;
    assert!(!comprehend.received().is_empty(), "PII went through DetectPiiEntities");
    assert!(google.quota_units() > 0, "mail came through the Gmail API");
    let host = pipeline.lambda_host.as_ref().unwrap();
    assert!(
        host.running_processes() > 0,
        "the functions ran as processes, kept warm"
    );

    let again = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Succeeded { output } = &again.outcome else {
        panic!("the second run did not succeed: {:?}", again.outcome)
    };
    assert_eq!(output["mail"]["attachments_fetched"], 0, "a rerun fetches nothing");
    assert_eq!(output["mail"]["work_items"], 0);
    assert_eq!(fixture_dataset::moved_by_this_run(output, "ingested"), 0);
}
