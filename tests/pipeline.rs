//! End to end: `asl/pipeline.asl.json` on the local engine over the fixture mailbox, on the
//! embedded backends and on moto; the consent path through the CLI against a fake Google;
//! a stage that fails twice and is retried.

#[path = "../steps/pii/tests/support/comprehend_server.rs"]
mod comprehend_server;
#[path = "../steps/gmail/tests/support/fake_google.rs"]
mod fake_google;
#[path = "support/fixture_dataset.rs"]
mod fixture_dataset;

use fixture_dataset::{assert_consumer_key_works, assert_fixture_dataset, moved_by_this_run, text};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sluice::runner::{HandlerDecorator, Pipeline, PipelineOptions};
use sluice_core::secrets::SecretValue;
use sluice_core::{Backends, Config, ItemKey};
use sluice_statemachine::{EventType, ExecutionOutcome, FnHandler, TaskContext, TaskFailure, TaskHandler};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's own `sluice.toml` (fixture mail), with its data under `data_dir`.
fn fixture_config(data_dir: &Path, extra_env: &[(&str, &str)]) -> Config {
    let text = std::fs::read_to_string(repo_root().join("sluice.toml")).unwrap();
    let mut env = vec![("SLUICE_DATA_DIR".to_string(), data_dir.display().to_string())];
    env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_toml_with_env(&text, "sluice.toml", &repo_root(), env).unwrap()
}

async fn open(config: &Config, backends: Backends, decorate: Option<HandlerDecorator>) -> Pipeline {
    let options = PipelineOptions {
        definition: None,
        base_dir: repo_root(),
        decorate,
        show_progress: false,
        lambda_binaries: None,
        activities: None,
    };
    Pipeline::open(config, backends, options).await.unwrap()
}

async fn run_twice_over_fixtures(config: Config, backends: Backends) {
    let pipeline = open(&config, backends.clone(), None).await;
    let report = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Succeeded { output } = &report.outcome else {
        panic!("the run did not succeed: {:?}", report.outcome)
    };
    assert_fixture_dataset(&backends, output).await;
    assert_consumer_key_works(&config, &backends).await;

    // Outside `runs/` (each execution's work lists and map results).
    let data_objects = || async {
        let all = backends.objects.list("").await.unwrap();
        all.into_iter().filter(|o| !o.key.as_str().starts_with("runs/")).count()
    };
    let objects_before = data_objects().await;
    let customer_before = backends.records.get(&ItemKey::new("customers", "C-001")).await.unwrap();
    let again = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Succeeded { output } = &again.outcome else {
        panic!("the second run did not succeed: {:?}", again.outcome)
    };
    assert_eq!(output["mail"]["attachments_fetched"], 0);
    assert_eq!(output["mail"]["work_items"], 0, "nothing left to do");
    assert_eq!(moved_by_this_run(output, "ingested"), 0);
    assert!(
        output["tokens"]["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "unchanged")
    );
    assert_eq!(data_objects().await, objects_before, "no new object");
    assert_eq!(
        backends.records.get(&ItemKey::new("customers", "C-001")).await.unwrap(),
        customer_before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_run_over_fixture_mail_builds_the_expected_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), &[]);
    let backends = Backends::local(&config).unwrap();
    run_twice_over_fixtures(config, backends).await;
}

/// The same mission with `backend = "aws"` on moto, Gmail through the fake Google API (with the
/// consent round trip) and PII through the DetectPiiEntities test server.
#[tokio::test(flavor = "multi_thread")]
async fn aws_backend_run_with_gmail_and_comprehend_fakes_reaches_the_same_result() {
    let Some(endpoint) = sluice_core::testing::aws_endpoint() else {
        return;
    };
    let google = fake_google::FakeGoogle::start().await;
    google.add_dir(&repo_root().join("fixtures/mail"));
    let comprehend = comprehend_server::ComprehendServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bucket = sluice_core::testing::unique_name("sluice-e2e");
    let records = format!("{bucket}-records");
    let control = format!("{bucket}-control");
    let prefix = format!("{bucket}/");
    let config = fixture_config(
        dir.path(),
        &[
            ("SLUICE_BACKEND", "aws"),
            ("SLUICE_AWS__ENDPOINT_URL", &endpoint),
            ("SLUICE_AWS__REGION", "us-east-1"),
            ("SLUICE_AWS__BUCKET", &bucket),
            ("SLUICE_AWS__RECORDS_TABLE", &records),
            ("SLUICE_AWS__CONTROL_TABLE", &control),
            ("SLUICE_AWS__SECRET_PREFIX", &prefix),
            ("SLUICE_GMAIL__SOURCE", "gmail"),
            ("SLUICE_GMAIL__ACCOUNT", "reports@example.com"),
            ("SLUICE_GMAIL__CLIENT_ID", fake_google::CLIENT_ID),
            ("SLUICE_GMAIL__REDIRECT_URI", "http://127.0.0.1:8080/oauth/callback"),
            ("SLUICE_GMAIL__TOKEN_URI", &google.token_uri),
            ("SLUICE_GMAIL__API_BASE_URL", &google.base_url),
            ("SLUICE_PII__ENGINE", "comprehend"),
            ("SLUICE_PII__COMPREHEND__ENDPOINT_URL", &comprehend.url),
        ],
    );
    Backends::provision_aws(&config).await.unwrap();
    let backends = Backends::aws(&config).await;
    backends
        .secrets
        .put("gmail/client-secret", &SecretValue::new(fake_google::CLIENT_SECRET))
        .await
        .unwrap();
    let pipeline = open(&config, backends.clone(), None).await;

    let parked = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Waiting { task_tokens } = &parked.outcome else {
        panic!("with no Gmail token the run waits for consent: {:?}", parked.outcome)
    };
    let consent_url = pipeline.consent_url.lock().unwrap().clone().unwrap();
    let code = google.grant_consent(&consent_url);
    let status = sluice::runner::exchange_code(&pipeline, &code).await.unwrap();
    assert_eq!(status, "authorized");
    let report = pipeline
        .engine
        .send_task_success(&task_tokens[0], json!({"status": status}))
        .await
        .unwrap();
    let ExecutionOutcome::Succeeded { output } = &report.outcome else {
        panic!("the resumed run did not succeed: {:?}", report.outcome)
    };
    assert_fixture_dataset(&backends, output).await;
    assert_consumer_key_works(&config, &backends).await;
    assert!(!comprehend.received().is_empty(), "PII went through DetectPiiEntities");
    assert!(google.quota_units() > 0, "mail came through the Gmail API");

    let again = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Succeeded { output } = &again.outcome else {
        panic!("the second run did not succeed: {:?}", again.outcome)
    };
    assert_eq!(output["mail"]["attachments_fetched"], 0, "a rerun fetches nothing");
    assert_eq!(output["mail"]["work_items"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_failing_twice_with_a_retryable_error_is_retried_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), &[]);
    let backends = Backends::local(&config).unwrap();
    let failures_left = Arc::new(AtomicUsize::new(2));
    let counter = failures_left.clone();
    let decorate: HandlerDecorator = Box::new(move |function, handler| {
        if function != "sluice-ingest" {
            return handler;
        }
        let counter = counter.clone();
        Arc::new(FnHandler(move |ctx: TaskContext, input: Value| {
            let (handler, counter) = (handler.clone(), counter.clone());
            async move {
                if counter
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err(TaskFailure::new(
                        "Backend.Throttled",
                        "DynamoDB BatchWriteItem was throttled",
                    ));
                }
                handler.invoke(ctx, input).await
            }
        })) as Arc<dyn TaskHandler>
    });
    let pipeline = open(&config, backends.clone(), Some(decorate)).await;
    let report = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Succeeded { output } = &report.outcome else {
        panic!("the run did not succeed: {:?}", report.outcome)
    };
    assert_eq!(failures_left.load(Ordering::SeqCst), 0, "both failures happened");
    assert_eq!(
        moved_by_this_run(output, "ingested"),
        7,
        "every file was ingested after the retries"
    );
    // The files run in the map run's children, each with its own history.
    let mut throttled = 0;
    for map_run in pipeline.engine.list_map_runs(&report.execution_arn).unwrap() {
        for child in pipeline.engine.list_children(&map_run.map_run_arn).unwrap() {
            throttled += pipeline
                .engine
                .execution_history(&child.execution_arn)
                .unwrap()
                .iter()
                .filter(|e| e.event_type == EventType::TaskFailed)
                .filter(|e| serde_json::to_string(e).unwrap().contains("Backend.Throttled"))
                .count();
        }
    }
    assert_eq!(throttled, 2, "two failed attempts recorded");
}

fn sluice(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.arg("--config").arg(config);
    for (name, _) in std::env::vars() {
        if name.starts_with("SLUICE_") {
            command.env_remove(name);
        }
    }
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_path_parks_then_resume_code_completes() {
    let google = fake_google::FakeGoogle::start().await;
    google.add_dir(&repo_root().join("fixtures/mail"));
    let dir = tempfile::tempdir().unwrap();
    let root_config = std::fs::read_to_string(repo_root().join("sluice.toml")).unwrap();
    let config_text = root_config.replace(
        "[gmail]\nsource = \"local\"           # \"gmail\": the Gmail API (OAuth consent on a task token)\nmail_dir = \"fixtures/mail\"",
        &format!(
            "[gmail]\nsource = \"gmail\"\naccount = \"reports@example.com\"\nclient_id = \"{}\"\nredirect_uri = \"http://127.0.0.1:8080/oauth/callback\"\ntoken_uri = \"{}\"\napi_base_url = \"{}\"",
            fake_google::CLIENT_ID,
            google.token_uri,
            google.base_url
        ),
    );
    assert!(
        config_text.contains("source = \"gmail\""),
        "the [gmail] section was rewritten"
    );
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config_text).unwrap();
    let config = Config::load(&config_path).unwrap();
    let secrets = sluice_core::secrets::LocalSecretStore::open(&config.data_dir.join("secrets.json")).unwrap();
    use sluice_core::SecretStore;
    secrets
        .put("gmail/client-secret", &SecretValue::new(fake_google::CLIENT_SECRET))
        .await
        .unwrap();

    let first = sluice(&config_path).arg("run").output().unwrap();
    let stdout = String::from_utf8(first.stdout).unwrap();
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("is waiting for Gmail consent"), "{stdout}");
    let execution = stdout
        .split_whitespace()
        .nth(1)
        .expect("the execution id follows `execution`")
        .to_string();
    let consent_url = stdout
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("http"))
        .expect("the consent URL is printed")
        .to_string();
    assert!(
        !consent_url.contains("Token") && consent_url.contains("code_challenge="),
        "{consent_url}"
    );

    // While the first run waits for consent, it holds the mailbox: a second run says so.
    let second = sluice(&config_path).arg("run").output().unwrap();
    let second_out = String::from_utf8(second.stdout).unwrap();
    assert!(second.status.success(), "{second_out}");
    assert!(
        second_out.contains("holds mailbox") && second_out.contains(&execution),
        "{second_out}"
    );

    let code = google.grant_consent(&consent_url);
    let resumed = sluice(&config_path)
        .args(["resume", &execution, "--code", &code])
        .output()
        .unwrap();
    let stdout = String::from_utf8(resumed.stdout).unwrap();
    assert!(
        resumed.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert_eq!(stdout.matches("[1 ingested]").count(), 7, "{stdout}");

    let history = sluice(&config_path)
        .args(["history", &execution, "--json"])
        .output()
        .unwrap();
    let history = String::from_utf8(history.stdout).unwrap();
    assert!(
        history.contains("TaskSubmitted") || history.contains("TaskScheduled"),
        "{history}"
    );
    assert!(!history.contains(&code), "the OAuth code never enters the history");

    let backends = Backends::local(&config).unwrap();
    let customer = backends
        .records
        .get(&ItemKey::new("customers", "C-001"))
        .await
        .unwrap()
        .unwrap();
    assert!(text(&customer, "email").starts_with("EMAIL_"));
}
