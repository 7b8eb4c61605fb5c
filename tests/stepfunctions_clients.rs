//! `sluice stepfunctions serve` driven by the real clients from PyPI, as a user drives AWS: the
//! aws CLI and boto3 (both in `.venv`, which `scripts/test.sh` makes) create, start, describe,
//! page the history, redrive and TestState against a server this test starts.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

#[path = "../steps/pii/tests/support/comprehend_server.rs"]
mod comprehend_server;
#[path = "../steps/gmail/tests/support/fake_google.rs"]
mod fake_google;
#[path = "support/fixture_dataset.rs"]
mod fixture_dataset;
#[path = "support/real_binaries.rs"]
mod real_binaries;

struct Serve {
    child: Child,
    url: String,
    /// The server's later output lines (what it tells the operator).
    lines: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv_tool(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("SLUICE_REQUIRE_AWS_TESTS").as_deref() == Ok("1") {
        panic!("{} is missing: scripts/test.sh installs it", path.display());
    }
    eprintln!("SKIPPED: {} is missing (run scripts/test.sh)", path.display());
    None
}

fn serve() -> Serve {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), "").unwrap();
    serve_in(dir)
}

/// `sluice stepfunctions serve` over `dir/sluice.toml`.
fn serve_in(dir: tempfile::TempDir) -> Serve {
    let config = dir.path().join("sluice.toml");
    serve_with(dir, &config, &[], &[])
}

/// `sluice --config CONFIG stepfunctions serve ARGS` with the `SLUICE_*` variables `env`; `dir`
/// lives as long as the server.
fn serve_with(dir: tempfile::TempDir, config: &Path, args: &[&str], env: &[(String, String)]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(config)
        .args(["stepfunctions", "serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("SLUICE_BACKEND")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // Notes (such as --lambda-binaries') may come before the address.
    while !line.contains("Step Functions API on") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the server ended before it listened"
        );
    }
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Serve {
        child,
        url,
        lines,
        _dir: dir,
    }
}

fn client_env(command: &mut Command) -> &mut Command {
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        // TestState and StartSyncExecution go to `sync-<host>` on AWS; a loopback address has none.
        .env("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
}

/// `aws stepfunctions ARGS --endpoint-url URL`, its JSON output (or its stderr on failure).
fn aws(aws: &Path, url: &str, args: &[&str]) -> Result<Value, String> {
    let output = client_env(&mut Command::new(aws))
        .args(["--endpoint-url", url, "--output", "json", "stepfunctions"])
        .args(args)
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    })
}

const ROLE: &str = "arn:aws:iam::123456789012:role/sluice-test";

#[test]
fn the_aws_cli_drives_the_local_engine() {
    let Some(cli) = venv_tool("aws") else { return };
    let server = serve();
    let url = server.url.as_str();
    let listed = aws(&cli, url, &["list-state-machines"]).unwrap();
    let names: Vec<&str> = listed["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["sluice-pipeline", "sluice-uploads"],
        "the pipeline's machines are there"
    );

    let definition = r#"{"StartAt": "Greet", "States": {"Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hello {}', $.who)"}, "End": true}}}"#;
    let created = aws(
        &cli,
        url,
        &[
            "create-state-machine",
            "--name",
            "greeter",
            "--definition",
            definition,
            "--role-arn",
            ROLE,
        ],
    )
    .unwrap();
    let machine = created["stateMachineArn"].as_str().unwrap().to_string();
    let started = aws(
        &cli,
        url,
        &[
            "start-execution",
            "--state-machine-arn",
            &machine,
            "--name",
            "one",
            "--input",
            r#"{"who": "world"}"#,
        ],
    )
    .unwrap();
    let execution = started["executionArn"].as_str().unwrap().to_string();
    let described = (0..200)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            aws(&cli, url, &["describe-execution", "--execution-arn", &execution]).unwrap()
        })
        .find(|d| d["status"] != "RUNNING")
        .unwrap();
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    let output: Value = serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["greeting"], "hello world");

    let history = aws(
        &cli,
        url,
        &[
            "get-execution-history",
            "--execution-arn",
            &execution,
            "--reverse-order",
        ],
    )
    .unwrap();
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionSucceeded",
            "PassStateExited",
            "PassStateEntered",
            "ExecutionStarted"
        ]
    );

    let tested = aws(
        &cli,
        url,
        &[
            "test-state",
            "--definition",
            r#"{"Type": "Pass", "Parameters": {"x.$": "$.a"}, "Next": "After"}"#,
            "--role-arn",
            ROLE,
            "--input",
            r#"{"a": 5}"#,
            "--inspection-level",
            "DEBUG",
        ],
    )
    .unwrap();
    assert_eq!(tested["status"], "SUCCEEDED");
    assert_eq!(tested["nextState"], "After");
    assert_eq!(tested["inspectionData"]["afterParameters"], r#"{"x":5}"#);
    // A mocked error on its last retry, as the CLI sends --mock and --state-configuration.
    let retried = aws(
        &cli,
        url,
        &[
            "test-state",
            "--definition",
            r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f"},
                "Retry": [{"ErrorEquals": ["Busy"], "MaxAttempts": 2, "IntervalSeconds": 4}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Later"}], "End": true}"#,
            "--role-arn",
            ROLE,
            "--mock",
            r#"{"errorOutput": {"error": "Busy", "cause": "queue full"}}"#,
            "--state-configuration",
            "retrierRetryCount=1",
        ],
    )
    .unwrap();
    assert_eq!(retried["status"], "RETRIABLE", "{retried}");
    assert_eq!(
        retried["inspectionData"]["errorDetails"]["retryBackoffIntervalSeconds"],
        8
    );
    let spent = aws(
        &cli,
        url,
        &[
            "test-state",
            "--definition",
            r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f"},
                "Retry": [{"ErrorEquals": ["Busy"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Later"}], "End": true}"#,
            "--role-arn",
            ROLE,
            "--mock",
            r#"{"errorOutput": {"error": "Busy", "cause": "queue full"}}"#,
            "--state-configuration",
            "retrierRetryCount=2",
            "--context",
            r#"{"Execution": {"Name": "nightly"}}"#,
        ],
    )
    .unwrap();
    assert_eq!(spent["status"], "CAUGHT_ERROR", "{spent}");
    assert_eq!(spent["nextState"], "Later");

    let refused = aws(
        &cli,
        url,
        &["describe-execution", "--execution-arn", &format!("{execution}-nope")],
    )
    .unwrap_err();
    assert!(refused.contains("ExecutionDoesNotExist"), "{refused}");
    let taken = aws(
        &cli,
        url,
        &[
            "start-execution",
            "--state-machine-arn",
            &machine,
            "--name",
            "one",
            "--input",
            "{}",
        ],
    )
    .unwrap_err();
    assert!(taken.contains("ExecutionAlreadyExists"), "{taken}");
}

const BOTO3: &str = r#"
import json, sys, time
import boto3
from botocore.config import Config

sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing",
                   config=Config(inject_host_prefix=False))
role = "arn:aws:iam::123456789012:role/sluice-test"

def wait(arn):
    for _ in range(500):
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.01)
    raise SystemExit(f"{arn} did not end")

flaky = sfn.create_state_machine(name="flaky", roleArn=role, definition=json.dumps({
    "StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Fine"}],
                  "Default": "Broken"},
        "Fine": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "Flaky.Broken", "Cause": "not ok"}}}))["stateMachineArn"]
for n in range(5):
    sfn.start_execution(stateMachineArn=flaky, name=f"run-{n}", input=json.dumps({"ok": n % 2 == 0}))
arns = [f"{flaky.replace(':stateMachine:', ':execution:')}:run-{n}" for n in range(5)]
ended = [wait(arn) for arn in arns]
assert [e["status"] for e in ended] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "FAILED", "SUCCEEDED"], ended

# boto3's own paginators over the server's nextToken.
pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=flaky, PaginationConfig={"PageSize": 2})
listed = [e["name"] for page in pages for e in page["executions"]]
assert sorted(listed) == [f"run-{n}" for n in range(5)], listed
failed = sfn.list_executions(stateMachineArn=flaky, statusFilter="FAILED")["executions"]
assert sorted(e["name"] for e in failed) == ["run-1", "run-3"], failed
events = [e for page in sfn.get_paginator("get_execution_history").paginate(
    executionArn=arns[1], PaginationConfig={"PageSize": 2}) for e in page["events"]]
assert [e["type"] for e in events][-1] == "ExecutionFailed", events
assert events[-1]["executionFailedEventDetails"] == {"error": "Flaky.Broken", "cause": "not ok"}, events[-1]
assert [e["id"] for e in events] == list(range(1, len(events) + 1))

# A failed execution is redriven (it fails again: its input still says not ok).
sfn.redrive_execution(executionArn=arns[1])
again = wait(arns[1])
assert again["status"] == "FAILED" and again["redriveCount"] == 1, again
try:
    sfn.redrive_execution(executionArn=arns[0])
    raise SystemExit("a SUCCEEDED execution was redriven")
except sfn.exceptions.ExecutionNotRedrivable:
    pass

check = sfn.test_state(definition=json.dumps({"Type": "Fail", "Error": "E", "Cause": "c"}), roleArn=role)
assert check["status"] == "FAILED" and check["error"] == "E", check
valid = sfn.validate_state_machine_definition(definition='{"StartAt": "X", "States": {}}')
assert valid["result"] == "FAIL" and valid["diagnostics"], valid
try:
    sfn.describe_state_machine(stateMachineArn=flaky + "-gone")
    raise SystemExit("a missing state machine was described")
except sfn.exceptions.StateMachineDoesNotExist:
    pass
print("ok")
"#;

#[test]
fn boto3_drives_the_local_engine() {
    let Some(python) = venv_tool("python") else { return };
    let server = serve();
    let output = client_env(&mut Command::new(python))
        .args(["-c", BOTO3, &server.url])
        .output()
        .unwrap();
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "ok",
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The pipeline on the API, exactly as on AWS: `aws stepfunctions start-execution` on
/// `sluice-pipeline` parks on Gmail consent; the server shows the operator the consent URL and
/// the task token; `aws stepfunctions send-task-success --task-output '{"code": ...}'` resumes
/// it, and it runs to the end over the fake Gmail.
#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_parks_on_consent_and_the_aws_cli_resumes_it() {
    let Some(cli) = venv_tool("aws") else { return };
    let google = fake_google::FakeGoogle::start().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    google.add_dir(&root.join("fixtures/mail"));
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(root.join("sluice.toml")).unwrap().replace(
        "[gmail]\nsource = \"local\"           # \"gmail\": the Gmail API (OAuth consent on a task token)\nmail_dir = \"fixtures/mail\"",
        &format!(
            "[gmail]\nsource = \"gmail\"\naccount = \"reports@example.com\"\nclient_id = \"{}\"\nredirect_uri = \"http://127.0.0.1:8080/oauth/callback\"\ntoken_uri = \"{}\"\napi_base_url = \"{}\"",
            fake_google::CLIENT_ID,
            google.token_uri,
            google.base_url
        ),
    );
    assert!(
        config.contains("source = \"gmail\""),
        "the [gmail] section was rewritten"
    );
    std::fs::write(dir.path().join("sluice.toml"), &config).unwrap();
    let loaded = sluice_core::Config::load(&dir.path().join("sluice.toml")).unwrap();
    let secrets = sluice_core::secrets::LocalSecretStore::open(&loaded.data_dir.join("secrets.json")).unwrap();
    use sluice_core::SecretStore;
    secrets
        .put(
            "gmail/client-secret",
            &sluice_core::SecretValue::new(fake_google::CLIENT_SECRET),
        )
        .await
        .unwrap();

    let server = serve_in(dir);
    let summary = consent_and_run_to_the_end(&cli, &server, &google, true).await;
    assert!(summary.to_string().contains("customers"), "{summary}");
}

/// Starts `sluice-pipeline` with `aws stepfunctions start-execution`, reads the consent URL and
/// task token the server announces, consents at the fake Google and answers the task with
/// `aws stepfunctions send-task-success --task-output '{"code": ...}'`; the execution's output
/// once it succeeded.
async fn consent_and_run_to_the_end(
    cli: &Path,
    server: &Serve,
    google: &fake_google::FakeGoogle,
    check_executions: bool,
) -> Value {
    let url = server.url.clone();
    let pipeline = "arn:aws:states:us-east-1:123456789012:stateMachine:sluice-pipeline";
    let started = aws(
        cli,
        &url,
        &["start-execution", "--state-machine-arn", pipeline, "--input", "{}"],
    )
    .unwrap();
    let execution = started["executionArn"].as_str().unwrap().to_string();
    let told = server
        .lines
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the server tells the operator the execution waits for consent");
    assert!(told.contains("waits for Gmail consent"), "{told}");
    let consent_url = told
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("code_challenge="))
        .unwrap_or_else(|| panic!("no consent URL in {told:?}"))
        .to_string();
    let then = server.lines.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    let token = then
        .split_whitespace()
        .skip_while(|word| *word != "--task-token")
        .nth(1)
        .unwrap_or_else(|| panic!("no task token in {then:?}"))
        .to_string();
    let waiting = aws(cli, &url, &["describe-execution", "--execution-arn", &execution]).unwrap();
    assert_eq!(waiting["status"], "RUNNING");
    if check_executions {
        // `sluice executions` shows the operator the same token.
        let listed = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(server._dir.path().join("sluice.toml"))
            .arg("executions")
            .env_remove("SLUICE_BACKEND")
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains(&format!("waits on task token {token}")), "{listed}");
    }

    let code = google.grant_consent(&consent_url);
    let output = serde_json::json!({ "code": code }).to_string();
    aws(
        cli,
        &url,
        &["send-task-success", "--task-token", &token, "--task-output", &output],
    )
    .unwrap();
    let mut done = Value::Null;
    for _ in 0..1200 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        done = aws(cli, &url, &["describe-execution", "--execution-arn", &execution]).unwrap();
        if done["status"] != "RUNNING" {
            break;
        }
    }
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    serde_json::from_str(done["output"].as_str().unwrap()).unwrap()
}

/// The same through the real Lambda binaries (`--lambda-binaries`) on moto: every function runs
/// as its own process, and the run leaves what the in-process run leaves.
#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_through_the_real_binaries_answers_the_aws_cli() {
    let Some(cli) = venv_tool("aws") else { return };
    let Some(endpoint) = sluice_core::testing::aws_endpoint() else {
        return;
    };
    let google = fake_google::FakeGoogle::start().await;
    let root = real_binaries::repo_root();
    google.add_dir(&root.join("fixtures/mail"));
    let comprehend = comprehend_server::ComprehendServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let setup = real_binaries::RunSetup::new(&endpoint, &google, &comprehend, dir.path());
    let backends = setup.provision().await;
    let binaries = real_binaries::built_binaries();
    let server = serve_with(
        dir,
        &root.join("sluice.toml"),
        &["--lambda-binaries", binaries.to_str().unwrap()],
        &setup.overrides,
    );
    let output = consent_and_run_to_the_end(&cli, &server, &google, false).await;
    fixture_dataset::assert_fixture_dataset(&backends, &output).await;
    fixture_dataset::assert_consumer_key_works(&setup.config, &backends).await;
    assert!(!comprehend.received().is_empty(), "PII went through DetectPiiEntities");
}

/// Polls `describe-execution` until the execution has ended; its description.
fn until_ended(cli: &Path, url: &str, execution: &str) -> Value {
    for _ in 0..300 {
        let described = aws(cli, url, &["describe-execution", "--execution-arn", execution]).unwrap();
        if described["status"] != "RUNNING" {
            return described;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{execution} did not end");
}

/// A Distributed Map created through the API reads its items from, and writes its results to,
/// the configured object store (locally `.sluice/objects/`, bucket `sluice`); a bucket that is
/// not the configured one fails the execution with a cause that names it.
#[test]
fn a_distributed_map_reads_and_writes_the_configured_object_store() {
    let Some(cli) = venv_tool("aws") else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), "").unwrap();
    let objects = dir.path().join(".sluice/objects");
    std::fs::create_dir_all(objects.join("input")).unwrap();
    std::fs::write(
        objects.join("input/orders.json"),
        r#"[{"id": 1}, {"id": 2}, {"id": 3}]"#,
    )
    .unwrap();
    let server = serve_in(dir);
    let url = server.url.as_str();
    let machine = |name: &str, bucket: &str| {
        let definition = serde_json::json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": bucket, "Key": "input/orders.json"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                              "StartAt": "Double", "States": {"Double": {"Type": "Pass",
                                  "Parameters": {"id.$": "$.id", "twice.$": "States.MathAdd($.id, $.id)"}, "End": true}}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": bucket, "Prefix": "results"}},
            "End": true}}});
        let created = aws(
            &cli,
            url,
            &[
                "create-state-machine",
                "--name",
                name,
                "--role-arn",
                ROLE,
                "--definition",
                &definition.to_string(),
            ],
        )
        .unwrap();
        created["stateMachineArn"].as_str().unwrap().to_string()
    };
    let orders = machine("orders", "sluice");
    let started = aws(&cli, url, &["start-execution", "--state-machine-arn", &orders]).unwrap();
    let execution = started["executionArn"].as_str().unwrap().to_string();
    let done = until_ended(&cli, url, &execution);
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let output: Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
    let details = &output["ResultWriterDetails"];
    assert_eq!(details["Bucket"], "sluice", "{output}");
    let manifest_key = details["Key"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(server._dir.path().join(".sluice/objects").join(manifest_key)).unwrap())
            .unwrap();
    let succeeded_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"].as_str().unwrap();
    let results: Value =
        serde_json::from_slice(&std::fs::read(server._dir.path().join(".sluice/objects").join(succeeded_key)).unwrap())
            .unwrap();
    let mut twice: Vec<i64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r["Output"].as_str().unwrap()).unwrap()["twice"]
                .as_i64()
                .unwrap()
        })
        .collect();
    twice.sort();
    assert_eq!(twice, [2, 4, 6]);
    let map_runs = aws(&cli, url, &["list-map-runs", "--execution-arn", &execution]).unwrap();
    let map_run = map_runs["mapRuns"][0]["mapRunArn"].as_str().unwrap();
    let described = aws(&cli, url, &["describe-map-run", "--map-run-arn", map_run]).unwrap();
    assert_eq!(described["itemCounts"]["succeeded"], 3, "{described}");

    let elsewhere = machine("elsewhere", "not-the-configured-bucket");
    let started = aws(&cli, url, &["start-execution", "--state-machine-arn", &elsewhere]).unwrap();
    let failed = until_ended(&cli, url, started["executionArn"].as_str().unwrap());
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("not-the-configured-bucket"),
        "{failed}"
    );
}
