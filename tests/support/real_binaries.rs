#![allow(dead_code)] // each test binary uses some of these
//! The pipeline through the real Lambda binaries against an AWS emulator, the fake Google and
//! the fake Comprehend: the configuration such a run is loaded with, the binaries it needs, and
//! a run over the fixture mailbox from the first consent to the end.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sluice::runner::lambda_host::{LambdaBinaries, LocalRun};
use sluice::runner::template::SamTemplate;
use sluice::runner::{FUNCTIONS, Pipeline, PipelineOptions};
use sluice_core::secrets::SecretValue;
use sluice_core::{Backends, Config};
use sluice_statemachine::ExecutionOutcome;

use super::comprehend_server::ComprehendServer;
use super::fake_google::{self, FakeGoogle};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The step binaries `cargo build --workspace --bins` leaves beside `sluice` (`target/debug`).
pub fn built_binaries() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_sluice"))
        .parent()
        .expect("the sluice binary sits in a directory")
        .to_path_buf();
    let missing: Vec<&str> = FUNCTIONS
        .iter()
        .map(|f| f.binary)
        .filter(|binary| !dir.join(binary).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "the Lambda binaries {missing:?} are not built in {}: run `cargo build --workspace --bins` first",
        dir.display()
    );
    dir
}

/// A run's configuration: the repository's sluice.toml with the `SLUICE_*` overrides that point
/// it at `endpoint`, the fakes and fresh resources of its own.
pub struct RunSetup {
    pub document: String,
    pub overrides: Vec<(String, String)>,
    pub config: Config,
}

impl RunSetup {
    pub fn new(endpoint: &str, google: &FakeGoogle, comprehend: &ComprehendServer, data_dir: &Path) -> RunSetup {
        let bucket = sluice_core::testing::unique_name("sluice-lambda");
        let document = std::fs::read_to_string(repo_root().join("sluice.toml")).unwrap();
        let overrides: Vec<(String, String)> = [
            ("SLUICE_DATA_DIR", data_dir.display().to_string()),
            ("SLUICE_BACKEND", "aws".into()),
            ("SLUICE_AWS__ENDPOINT_URL", endpoint.to_string()),
            ("SLUICE_AWS__REGION", "us-east-1".into()),
            ("SLUICE_AWS__BUCKET", bucket.clone()),
            ("SLUICE_AWS__RECORDS_TABLE", format!("{bucket}-records")),
            ("SLUICE_AWS__CONTROL_TABLE", format!("{bucket}-control")),
            ("SLUICE_AWS__SECRET_PREFIX", format!("{bucket}/")),
            ("SLUICE_GMAIL__SOURCE", "gmail".into()),
            ("SLUICE_GMAIL__ACCOUNT", "reports@example.com".into()),
            ("SLUICE_GMAIL__CLIENT_ID", fake_google::CLIENT_ID.into()),
            (
                "SLUICE_GMAIL__REDIRECT_URI",
                "http://127.0.0.1:8080/oauth/callback".into(),
            ),
            ("SLUICE_GMAIL__TOKEN_URI", google.token_uri.clone()),
            ("SLUICE_GMAIL__API_BASE_URL", google.base_url.clone()),
            ("SLUICE_PII__ENGINE", "comprehend".into()),
            ("SLUICE_PII__COMPREHEND__ENDPOINT_URL", comprehend.url.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let config = Config::from_toml_with_env(&document, "sluice.toml", &repo_root(), overrides.clone()).unwrap();
        RunSetup {
            document,
            overrides,
            config,
        }
    }

    /// The bucket, the tables and the Gmail client secret the run starts from.
    pub async fn provision(&self) -> Backends {
        Backends::provision_aws(&self.config).await.unwrap();
        let backends = Backends::aws(&self.config).await;
        backends
            .secrets
            .put("gmail/client-secret", &SecretValue::new(fake_google::CLIENT_SECRET))
            .await
            .unwrap();
        backends
    }

    pub fn local_run(&self) -> LocalRun<'_> {
        LocalRun {
            config: &self.config,
            config_document: &self.document,
            config_overrides: &self.overrides,
            base_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
        }
    }

    /// Every function of `infra/template.yaml` as its real binary, with the template's environment.
    pub fn binaries(&self, template: &SamTemplate) -> LambdaBinaries {
        let binaries = LambdaBinaries::from_template(&built_binaries(), template, &self.local_run()).unwrap();
        assert!(
            binaries.notes.is_empty(),
            "the template sets nothing the local configuration does not: {:#?}",
            binaries.notes
        );
        binaries
    }

    pub async fn pipeline(&self, backends: &Backends, binaries: LambdaBinaries) -> Pipeline {
        Pipeline::open(
            &self.config,
            backends.clone(),
            PipelineOptions {
                definition: None,
                base_dir: repo_root(),
                decorate: None,
                show_progress: false,
                lambda_binaries: Some(binaries),
                activities: None,
            },
        )
        .await
        .unwrap()
    }
}

/// Starts a run with no Gmail token yet: it parks on the consent task, and the consent-request
/// function answers the consent URL. The report and the URL.
async fn park_for_consent(pipeline: &Pipeline) -> (sluice_statemachine::ExecutionReport, String) {
    let parked = pipeline.start(json!({})).await.unwrap();
    assert!(
        matches!(parked.outcome, ExecutionOutcome::Waiting { .. }),
        "with no Gmail token the run waits for consent: {:?}",
        parked.outcome
    );
    let consent_url = pipeline
        .consent_url
        .lock()
        .unwrap()
        .clone()
        .expect("the consent-request function answered its consent URL");
    (parked, consent_url)
}

/// A first run over the fixture mailbox: it parks for consent (the consent-request binary
/// answers the consent URL), the user consents, the code is exchanged as `sluice resume --code`
/// does, and the run goes on to its end. Its output.
pub async fn run_with_first_consent(pipeline: &Pipeline, google: &FakeGoogle) -> Value {
    let (parked, consent_url) = park_for_consent(pipeline).await;
    let ExecutionOutcome::Waiting { task_tokens } = &parked.outcome else {
        unreachable!("park_for_consent checked it waits")
    };
    let code = google.grant_consent(&consent_url);
    let status = sluice::runner::exchange_code(pipeline, &code).await.unwrap();
    assert_eq!(status, "authorized");
    let report = pipeline
        .engine
        .send_task_success(&task_tokens[0], json!({"status": status}))
        .await
        .unwrap();
    match report.outcome {
        ExecutionOutcome::Succeeded { output } => output,
        other => panic!("the resumed run did not succeed: {other:?}"),
    }
}

/// A first run over the fixture mailbox, consented as on AWS: the run parks, the user consents,
/// Google redirects to `GET /oauth/callback?code&state`, which the OAuth callback's binary
/// answers (as behind the HTTP API): it exchanges the code and sends the task success to the
/// local engine's Step Functions endpoint, which resumes the run in the background. Its output.
pub async fn run_with_consent_through_the_callback(pipeline: &Pipeline, google: &FakeGoogle) -> Value {
    let (parked, consent_url) = park_for_consent(pipeline).await;
    let state = url::Url::parse(&consent_url)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .expect("the consent URL carries its state");
    let code = google.grant_consent(&consent_url);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", &state)
        .finish();
    // Through the route `sluice serve --lambda-binaries` answers the redirect with.
    let host = pipeline
        .lambda_host
        .clone()
        .expect("the run goes through the real binaries");
    let route =
        sluice::runner::lambda_host::http_route(host, sluice_functions::OAUTH_CALLBACK_BINARY, "/oauth/callback");
    let get = |uri: String| {
        let route = route.clone();
        async move {
            let request = axum::http::Request::get(uri)
                .header("host", "127.0.0.1:8080")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = tower::ServiceExt::oneshot(route, request).await.unwrap();
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    // A forged state, and no code at all, are refused by the binary; the run keeps waiting.
    for hostile in [
        "/oauth/callback?code=stolen&state=forged",
        "/oauth/callback?state=forged",
    ] {
        let (status, body) = get(hostile.to_string()).await;
        assert!(status.is_client_error(), "{hostile} answered {status}: {body}");
        let record = pipeline.engine.describe_execution(&parked.execution_arn).unwrap();
        assert_eq!(
            record.status,
            sluice_statemachine::ExecutionStatus::Running,
            "{hostile}"
        );
    }
    let (status, body) = get(format!("/oauth/callback?{query}")).await;
    assert_eq!(status, 200, "the callback answered {body}");
    assert!(!body.contains(&code), "the callback page never shows the code");
    // The run resumes in the background, as on AWS: wait for it to end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let record = pipeline.engine.describe_execution(&parked.execution_arn).unwrap();
        match record.status {
            sluice_statemachine::ExecutionStatus::Running => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the resumed run did not end in 120 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            sluice_statemachine::ExecutionStatus::Succeeded => return record.output.unwrap(),
            other => panic!("the resumed run ended {other}: {:?} {:?}", record.error, record.cause),
        }
    }
}
