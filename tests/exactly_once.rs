//! Exactly once through crashes and overlapping runs: generated mailboxes through the whole
//! pipeline, then compared, record for record, with a clean run.
//!
//! - one run over 1,200 messages x 2 attachments leaves every row in and every ledger entry
//!   final, with a parent history of a bounded number of events per batch;
//! - `kill -9` of `sluice run` at seeded random moments, then reruns, equals a clean run;
//! - two `sluice run` started together: one works, the other reports the lease; nothing lost;
//! - an object store that fails with "no space" mid-run, then recovers, equals a clean run.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice::synthetic::{MailboxShape, write_mailbox};
use sluice_core::Backends;
use sluice_statemachine::ExecutionOutcome;

use support::{Snapshot, config_text, open_pipeline, snapshot};

fn sluice_run(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .arg("--config")
        .arg(config)
        .arg("run")
        .env_remove("SLUICE_BACKEND")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A workspace: a generated mailbox and a config whose data lives beside it.
fn workspace(dir: &Path, shape: MailboxShape, max_messages_per_run: usize) -> std::path::PathBuf {
    write_mailbox(&dir.join("mail"), shape).unwrap();
    let config = dir.join("sluice.toml");
    std::fs::write(&config, config_text(dir, max_messages_per_run)).unwrap();
    config
}

/// Runs `sluice run` until it succeeds with nothing left unfinished (at most `tries` runs).
fn run_until_complete(config: &Path, tries: usize) -> String {
    let mut outputs = String::new();
    for _ in 0..tries {
        let output = sluice_run(config).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        outputs.push_str(&text);
        if output.status.success() && !text.contains("are not finished") && !text.contains("more mail remains") {
            return outputs;
        }
    }
    panic!("no complete run after {tries} runs:\n{outputs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mailbox_of_1200_messages_is_processed_completely_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let shape = MailboxShape {
        messages: 1200,
        attachments: 2,
        rows: 5,
    };
    let config_path = workspace(dir.path(), shape, 500);
    let config = sluice_core::Config::load(&config_path).unwrap();
    let backends = Backends::local(&config).unwrap();
    let pipeline = open_pipeline(&config, backends.clone(), dir.path(), None).await;
    let started = Instant::now();
    let report = pipeline.start(json!({})).await.unwrap();
    let ExecutionOutcome::Succeeded { output } = &report.outcome else {
        panic!("the run did not succeed: {:?}", report.outcome)
    };
    eprintln!("1,200 messages x 2 files: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(output["mail"]["batches"], 3, "500 messages a batch: {output:#}");
    assert_eq!(output["more_mail"], false);
    let ledger = &output["ledger"];
    assert_eq!(ledger["not_final"], 0, "{ledger:#}");
    assert_eq!(ledger["failed_total"], 0, "{ledger:#}");
    for dataset in ["sales", "stock"] {
        assert_eq!(ledger["datasets"][dataset]["ingested"], 1200, "{ledger:#}");
    }
    let snap = snapshot(&backends, &config).await;
    assert_eq!(snap.records.len(), 1200 * 2 * 5, "every row is in");

    // The parent's history: a bounded number of events per batch, whatever the files; the
    // state between steps stays small.
    // Per batch: the fetch task (5 events), the map run (4), the count (2), the choice (2),
    // whatever the batch's files; the rest of the run is about 30 events. So a 100,000-message
    // mailbox (200 batches of 500) stays near 2,900 events, far under the 25,000 limit.
    let history = pipeline.engine.execution_history(&report.execution_arn).unwrap();
    let per_batch = (history.len() - 30) / 3;
    assert!(
        history.len() <= 30 + 3 * 14,
        "{} parent events for 3 batches of 800 files",
        history.len()
    );
    let largest = history
        .iter()
        .map(|e| serde_json::to_string(e).unwrap().len())
        .max()
        .unwrap();
    assert!(largest < 8 * 1024, "the largest parent event is {largest} bytes");
    eprintln!(
        "parent history: {} events (about {per_batch} a batch), largest {largest} bytes",
        history.len()
    );
}

/// A clean run's snapshot, for the fault tests to compare with.
async fn clean_snapshot(shape: MailboxShape, max_messages_per_run: usize) -> Snapshot {
    let dir = tempfile::tempdir().unwrap();
    let config = workspace(dir.path(), shape, max_messages_per_run);
    run_until_complete(&config, 1);
    let config = sluice_core::Config::load(&config).unwrap();
    snapshot(&Backends::local(&config).unwrap(), &config).await
}

/// A small xorshift generator: the trials are seeded, so a failure can be replayed.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_then_reruns_equal_a_clean_run() {
    let shape = MailboxShape {
        messages: 60,
        attachments: 2,
        rows: 5,
    };
    // Small batches: kills land in fetches, in map runs and between them.
    let clean = clean_snapshot(shape, 20).await;
    let timing_dir = tempfile::tempdir().unwrap();
    let timing_config = workspace(timing_dir.path(), shape, 20);
    let started = Instant::now();
    run_until_complete(&timing_config, 1);
    let clean_ms = started.elapsed().as_millis() as u64;

    let seed = std::env::var("SLUICE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut random = Seeded(seed);
    let trials = 6;
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let config = workspace(dir.path(), shape, 20);
        let mut kills = Vec::new();
        // One or two kills per trial, each at a random moment of a run.
        for _ in 0..=random.below(2) {
            let delay = Duration::from_millis(random.below(clean_ms));
            let mut child = sluice_run(&config).spawn().unwrap();
            std::thread::sleep(delay);
            let finished = child.try_wait().unwrap().is_some();
            let _ = child.kill();
            let _ = child.wait();
            kills.push((delay.as_millis(), finished));
        }
        let outputs = run_until_complete(&config, 4);
        let config = sluice_core::Config::load(&config).unwrap();
        let after = snapshot(&Backends::local(&config).unwrap(), &config).await;
        eprintln!("trial {trial} (seed {seed:#x}): kills at {kills:?} ms of a {clean_ms} ms run");
        clean.assert_same(&after, &format!("trial {trial}, kills {kills:?}\n{outputs}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_started_together_do_not_race() {
    let shape = MailboxShape {
        messages: 150,
        attachments: 2,
        rows: 5,
    };
    let clean = clean_snapshot(shape, 50).await;
    let dir = tempfile::tempdir().unwrap();
    let config = workspace(dir.path(), shape, 50);
    let first = sluice_run(&config).spawn().unwrap();
    let second = sluice_run(&config).spawn().unwrap();
    let (first, second) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    let texts = [first.clone(), second.clone()].map(|o| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(
        first.status.success() && second.status.success(),
        "both runs succeed:\n{}\n---\n{}",
        texts[0],
        texts[1]
    );
    let busy = texts.iter().filter(|t| t.contains("holds mailbox")).count();
    assert_eq!(
        busy, 1,
        "exactly one run reports the lease:\n{}\n---\n{}",
        texts[0], texts[1]
    );
    let config = sluice_core::Config::load(&config).unwrap();
    let after = snapshot(&Backends::local(&config).unwrap(), &config).await;
    clean.assert_same(&after, &texts.join("\n---\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_store_that_runs_out_of_space_then_recovers_equals_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = workspace(dir.path(), FULL_DISK_SHAPE, 500);
    let config = sluice_core::Config::load(&config_path).unwrap();
    let backends = Backends::local(&config).unwrap();
    fill_the_disk_then_recover(dir.path(), &config, backends).await;
}

/// The same on the AWS backends (S3 and DynamoDB on moto): S3 refuses writes mid-run.
#[tokio::test(flavor = "multi_thread")]
async fn on_aws_backends_a_store_that_fails_mid_run_then_recovers_equals_a_clean_run() {
    let Some(endpoint) = sluice_core::testing::aws_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config_path = workspace(dir.path(), FULL_DISK_SHAPE, 500);
    let name = sluice_core::testing::unique_name("sluice-faults");
    let text = std::fs::read_to_string(&config_path).unwrap();
    let env = [
        ("SLUICE_BACKEND", "aws".to_string()),
        ("SLUICE_AWS__ENDPOINT_URL", endpoint.clone()),
        ("SLUICE_AWS__REGION", "us-east-1".into()),
        ("SLUICE_AWS__BUCKET", name.clone()),
        ("SLUICE_AWS__RECORDS_TABLE", format!("{name}-records")),
        ("SLUICE_AWS__CONTROL_TABLE", format!("{name}-control")),
        ("SLUICE_AWS__SECRET_PREFIX", format!("{name}/")),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let config = sluice_core::Config::from_toml_with_env(&text, "sluice.toml", dir.path(), env).unwrap();
    Backends::provision_aws(&config).await.unwrap();
    let backends = Backends::aws(&config).await;
    fill_the_disk_then_recover(dir.path(), &config, backends).await;
}

const FULL_DISK_SHAPE: MailboxShape = MailboxShape {
    messages: 40,
    attachments: 2,
    rows: 5,
};

async fn fill_the_disk_then_recover(dir: &Path, config: &sluice_core::Config, mut backends: Backends) {
    let clean = clean_snapshot(FULL_DISK_SHAPE, 500).await;
    let config = config.clone();
    let full = Arc::new(AtomicBool::new(false));
    // The disk fills once 60 objects are written: mid-fetch or mid-map.
    backends.objects = Arc::new(support::FillingObjectStore::new(
        backends.objects.clone(),
        60,
        full.clone(),
    ));
    let pipeline = open_pipeline(&config, backends.clone(), dir, None).await;
    let report = pipeline.start(json!({})).await.unwrap();
    assert!(full.load(Ordering::SeqCst), "the store did fill");
    let first = match &report.outcome {
        ExecutionOutcome::Succeeded { output } => output.clone(),
        ExecutionOutcome::Failed { error, cause } => json!({"error": error, "cause": cause}),
        waiting => panic!("{waiting:?}"),
    };
    // Space is freed; the next runs finish what the first left.
    full.store(false, Ordering::SeqCst);
    let mut outputs = vec![first];
    for _ in 0..3 {
        let report = pipeline.start(json!({})).await.unwrap();
        let ExecutionOutcome::Succeeded { output } = &report.outcome else {
            panic!("a run after recovery failed: {:?}", report.outcome)
        };
        outputs.push(output.clone());
        if output["ledger"]["not_final"] == 0 && output["ledger"]["failed_total"] == 0 {
            break;
        }
    }
    let last: &Value = outputs.last().unwrap();
    assert_eq!(last["ledger"]["failed_total"], 0, "{outputs:#?}");
    let after = snapshot(&backends, &config).await;
    clean.assert_same(&after, &format!("{outputs:#?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_files_are_retried_by_later_runs_then_listed_until_retry_failed() {
    use sluice_statemachine::{FnHandler, TaskContext, TaskFailure, TaskHandler};
    let shape = MailboxShape {
        messages: 10,
        attachments: 2,
        rows: 5,
    };
    let dir = tempfile::tempdir().unwrap();
    let config_path = workspace(dir.path(), shape, 500);
    let config = sluice_core::Config::load(&config_path).unwrap();
    let backends = Backends::local(&config).unwrap();
    // Ingest fails on every `stock` file while `broken` holds (an error no Retry matches).
    let broken = Arc::new(AtomicBool::new(true));
    let flag = broken.clone();
    let decorate: sluice::runner::HandlerDecorator = Box::new(move |function, handler| {
        if function != "sluice-ingest" {
            return handler;
        }
        let flag = flag.clone();
        Arc::new(FnHandler(move |ctx: TaskContext, input: Value| {
            let (handler, flag) = (handler.clone(), flag.clone());
            async move {
                if flag.load(Ordering::SeqCst) && input["dataset"] == "stock" {
                    return Err(TaskFailure::new("Ingest.MissingObject", "the cleaned file vanished"));
                }
                handler.invoke(ctx, input).await
            }
        })) as Arc<dyn TaskHandler>
    });
    let pipeline = open_pipeline(&config, backends.clone(), dir.path(), Some(decorate)).await;
    let run = |input: Value| {
        let pipeline = &pipeline;
        async move {
            let report = pipeline.start(input).await.unwrap();
            match report.outcome {
                ExecutionOutcome::Succeeded { output } => output,
                other => panic!("{other:?}"),
            }
        }
    };
    // Three attempts (the default), one per run; then the files stay failed and listed.
    for attempt in 1..=3 {
        let output = run(json!({})).await;
        assert_eq!(output["ledger"]["failed_total"], 10, "{output:#}");
        assert_eq!(output["ledger"]["failed"][0]["attempts"], attempt);
        assert_eq!(output["ledger"]["failed"][0]["error"], "Ingest.MissingObject");
        assert_eq!(output["mail"]["work_retried"], if attempt == 1 { 0 } else { 10 });
    }
    let spent = run(json!({})).await;
    assert_eq!(spent["mail"]["work_items"], 0, "attempts spent: not taken up");
    assert_eq!(spent["ledger"]["failed_total"], 10, "still listed");
    assert_eq!(spent["ledger"]["datasets"]["sales"]["ingested"], 10);

    broken.store(false, Ordering::SeqCst);
    let retried = run(json!({"retry_failed": true})).await;
    assert_eq!(retried["mail"]["work_retried"], 10);
    assert_eq!(retried["ledger"]["failed_total"], 0, "{retried:#}");
    assert_eq!(retried["ledger"]["datasets"]["stock"]["ingested"], 10);
    let snap = snapshot(&backends, &config).await;
    assert_eq!(snap.records.len(), 10 * 2 * 5);

    // A run input the pipeline does not know is refused with the field's name.
    let report = pipeline.start(json!({"retry_everything": true})).await.unwrap();
    let ExecutionOutcome::Failed { error, cause } = report.outcome else {
        panic!("an unknown option was accepted")
    };
    assert_eq!(error.as_deref(), Some("Gmail.InvalidInput"));
    assert!(cause.unwrap_or_default().contains("retry_everything"));
}

/// An execution stops taking batches before its history could fill (1,500 batches of about 14
/// events, some 21,000 events: under the 25,000 limit) and `sluice run` goes on in a new one.
/// Here with the cap lowered to 2 batches, over a mailbox that needs 4.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_past_the_batch_cap_continues_in_a_new_execution() {
    let definition = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/asl/pipeline.asl.json")).unwrap();
    let cap = "\"NumericLessThan\": 1500";
    assert!(definition.contains(cap), "the cap is where this test expects it");
    let dir = tempfile::tempdir().unwrap();
    let lowered = dir.path().join("capped.asl.json");
    std::fs::write(&lowered, definition.replace(cap, "\"NumericLessThan\": 2")).unwrap();
    let shape = MailboxShape {
        messages: 10,
        attachments: 2,
        rows: 5,
    };
    let config = workspace(dir.path(), shape, 3);
    let output = sluice_run(&config).arg("--definition").arg(&lowered).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(text.matches("continuing in a new execution").count(), 1, "{text}");
    assert_eq!(text.matches("succeeded in").count(), 2, "{text}");
    let config = sluice_core::Config::load(&config).unwrap();
    let snap = snapshot(&Backends::local(&config).unwrap(), &config).await;
    assert_eq!(snap.records.len(), 10 * 2 * 5, "{text}");
}
