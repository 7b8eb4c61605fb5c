//! What the integration tests share: the fake Google, a recording task-token port, and a
//! harness wiring the steps to the fake over local or AWS (moto) backends.

#![allow(dead_code)]

pub mod fake_google;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sluice_core::secrets::SecretValue;
use sluice_core::{BackendError, Backends, TaskTokens};
use sluice_gmail::fetch::FetchDeps;
use sluice_gmail::http::{HttpClient, https_client};
use sluice_gmail::oauth::{Sensitive, StoredToken};
use sluice_gmail::{AttachmentSink, GmailSettings, OAuthDeps, RawObjectSink, SourceKind};

use fake_google::{CLIENT_ID, CLIENT_SECRET, FakeGoogle, READONLY};

pub const ACCOUNT: &str = "reports@example.com";

/// `fixtures/mail/` at the top of the repository.
pub fn mail_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mail")
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskCall {
    Success {
        token: String,
        output: serde_json::Value,
    },
    Failure {
        token: String,
        error: String,
        cause: String,
    },
}

/// Records what the steps tell waiting tasks; tokens listed in `gone` fail like a timed-out task.
#[derive(Default)]
pub struct RecordingTaskTokens {
    pub calls: Mutex<Vec<TaskCall>>,
    pub gone: Mutex<Vec<String>>,
}

impl RecordingTaskTokens {
    pub fn calls(&self) -> Vec<TaskCall> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl TaskTokens for RecordingTaskTokens {
    async fn send_success(&self, token: &str, output: &serde_json::Value) -> Result<(), BackendError> {
        if self.gone.lock().unwrap().iter().any(|t| t == token) {
            return Err(BackendError::Aws {
                service: "StepFunctions",
                operation: "SendTaskSuccess",
                message: "TaskTimedOut".into(),
            });
        }
        self.calls.lock().unwrap().push(TaskCall::Success {
            token: token.into(),
            output: output.clone(),
        });
        Ok(())
    }

    async fn send_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), BackendError> {
        self.calls.lock().unwrap().push(TaskCall::Failure {
            token: token.into(),
            error: error.into(),
            cause: cause.into(),
        });
        Ok(())
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub fake: FakeGoogle,
    pub backends: Backends,
    pub tasks: Arc<RecordingTaskTokens>,
    pub oauth: OAuthDeps,
    pub http: HttpClient,
}

pub fn settings_for(fake: &FakeGoogle) -> GmailSettings {
    GmailSettings {
        source: SourceKind::Gmail,
        account: ACCOUNT.into(),
        client_id: CLIENT_ID.into(),
        redirect_uri: "https://sluice.example/oauth/callback".into(),
        token_uri: fake.token_uri.clone(),
        api_base_url: fake.base_url.clone(),
        max_attempts: 3,
        ..GmailSettings::default()
    }
}

impl Harness {
    /// Embedded backends in a temporary directory.
    pub async fn local() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (_, backends) = sluice_core::testing::local_test_backends(dir.path());
        Self::over(dir, backends, |_| {}).await
    }

    pub async fn local_with(tune: impl FnOnce(&mut GmailSettings)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (_, backends) = sluice_core::testing::local_test_backends(dir.path());
        Self::over(dir, backends, tune).await
    }

    /// S3, DynamoDB and Secrets Manager on moto, when it runs.
    pub async fn aws() -> Option<Harness> {
        let endpoint = sluice_core::testing::aws_endpoint()?;
        sluice_core::telemetry::install_crypto_provider();
        let (_, backends) = sluice_core::testing::aws_test_backends(&endpoint).await;
        Some(Self::over(tempfile::tempdir().unwrap(), backends, |_| {}).await)
    }

    pub async fn over(dir: tempfile::TempDir, backends: Backends, tune: impl FnOnce(&mut GmailSettings)) -> Harness {
        sluice_core::telemetry::install_crypto_provider();
        let fake = FakeGoogle::start().await;
        let mut settings = settings_for(&fake);
        tune(&mut settings);
        settings.validate().unwrap();
        backends
            .secrets
            .put(&settings.client_secret_name, &SecretValue::new(CLIENT_SECRET))
            .await
            .unwrap();
        let tasks = Arc::new(RecordingTaskTokens::default());
        let http = https_client().unwrap();
        let oauth = OAuthDeps::new(settings, &backends, tasks.clone(), http.clone())
            .await
            .unwrap();
        Harness {
            dir,
            fake,
            backends,
            tasks,
            oauth,
            http,
        }
    }

    /// Caches a token for the account, as a past consent would have.
    pub async fn seed_token(&self, access: &str, refresh: Option<&str>, expires_at: i64) {
        self.seed_token_with_scopes(access, refresh, expires_at, &[READONLY])
            .await;
    }

    /// [`Harness::seed_token`], granted `scopes`.
    pub async fn seed_token_with_scopes(&self, access: &str, refresh: Option<&str>, expires_at: i64, scopes: &[&str]) {
        let token = StoredToken {
            access_token: Sensitive::new(access),
            refresh_token: refresh.map(Sensitive::new),
            expires_at,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        self.oauth
            .authorizer
            .token_cache()
            .store(ACCOUNT, &token)
            .await
            .unwrap();
    }

    /// A valid token granted `scopes`.
    pub async fn authorize_with_scopes(&self, scopes: &[&str]) {
        let access = self.fake.valid_access_token();
        let refresh = self.fake.known_refresh_token();
        self.seed_token_with_scopes(&access, Some(&refresh), chrono::Utc::now().timestamp() + 3600, scopes)
            .await;
    }

    /// A valid token, so fetch can run.
    pub async fn authorize(&self) {
        let access = self.fake.valid_access_token();
        let refresh = self.fake.known_refresh_token();
        self.seed_token(&access, Some(&refresh), chrono::Utc::now().timestamp() + 3600)
            .await;
    }

    pub fn fetch_deps(&self, sink: Arc<dyn AttachmentSink>) -> FetchDeps {
        FetchDeps::new(&self.oauth.authorizer, self.backends.control.clone(), sink, &self.http)
    }

    pub fn raw_sink(&self) -> Arc<dyn AttachmentSink> {
        Arc::new(RawObjectSink::new(self.backends.objects.clone(), "inbox"))
    }
}
