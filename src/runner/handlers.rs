//! Each pipeline Lambda bound to its stage's library function, in process.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_core::{Backends, Config, StepFailure};
use sluice_gmail::{GmailSettings, SourceKind};
use sluice_statemachine::{FnHandler, TaskContext, TaskFailure, TaskHandler};

use super::{Progress, RunnerError, engine_handle::EngineHandle};

/// DefinitionSubstitution name -> the function (binary) that implements it.
pub const FUNCTIONS: [(&str, &str); 11] = [
    ("RunBeginFunctionArn", "sluice-run-begin"),
    ("AuthCheckFunctionArn", "sluice-auth-check"),
    ("ConsentRequestFunctionArn", "sluice-consent-request"),
    ("CodeExchangeFunctionArn", "sluice-code-exchange"),
    ("GmailFetchFunctionArn", "sluice-gmail-fetch"),
    ("StageFunctionArn", "sluice-stage"),
    ("PiiDetectFunctionArn", "sluice-pii-detect"),
    ("PiiMaskFunctionArn", "sluice-pii-mask"),
    ("IngestFunctionArn", "sluice-ingest"),
    ("TokenIssueFunctionArn", "sluice-token-issue"),
    ("RunFinishFunctionArn", "sluice-run-finish"),
];

pub type Bindings = Vec<(&'static str, Arc<dyn TaskHandler>)>;

pub struct BindContext<'a> {
    pub config: &'a Config,
    pub backends: Backends,
    pub base_dir: &'a Path,
    pub task_tokens: Arc<EngineHandle>,
    pub progress: Progress,
    pub consent_url: Arc<Mutex<Option<String>>>,
}

fn setup(stage: &'static str) -> impl Fn(String) -> RunnerError {
    move |message| RunnerError::Setup { stage, message }
}

/// A handler from a step function: JSON in, the step, JSON out; step errors keep their names.
fn step<I, O, F, Fut>(run: F) -> Arc<dyn TaskHandler>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, StepFailure>> + Send + 'static,
{
    let run = Arc::new(run);
    Arc::new(FnHandler(move |ctx: TaskContext, input: Value| {
        let run = run.clone();
        async move {
            let input: I = serde_json::from_value(input).map_err(|e| {
                TaskFailure::new(
                    "Sluice.InvalidInput",
                    format!("{} got an input it cannot read: {e}", ctx.state_name),
                )
            })?;
            let output = run(input).await.map_err(|f| TaskFailure::new(f.error, f.cause))?;
            serde_json::to_value(output).map_err(|e| TaskFailure::new("Sluice.InvalidOutput", e.to_string()))
        }
    }))
}

/// A handler from a step whose outcome moves the ledger entry named in its input (as
/// [`sluice_core::lambda::serve_tracked_step`] does on Lambda).
fn tracked_step<I, O, F, Fut>(control: Arc<dyn sluice_core::Table>, run: F) -> Arc<dyn TaskHandler>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + sluice_core::ledger::LedgerOutcome + Send + Sync + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, StepFailure>> + Send + 'static,
{
    let run = Arc::new(run);
    step(move |tracked: sluice_core::ledger::Tracked<I>| {
        let (run, control) = (run.clone(), control.clone());
        async move {
            let output = run(tracked.input).await?;
            sluice_core::ledger::track(&control, tracked.ledger.as_ref(), &output).await?;
            Ok(output)
        }
    })
}

/// The handlers of every function in [`FUNCTIONS`].
pub async fn bind(ctx: BindContext<'_>) -> Result<(Bindings, Arc<sluice_gmail::OAuthDeps>), RunnerError> {
    let config = Arc::new(ctx.config.clone());
    let backends = ctx.backends.clone();
    let progress = ctx.progress.clone();

    let mut gmail_settings = GmailSettings::from_config(&config).map_err(|e| setup("gmail")(e.to_string()))?;
    if Path::new(&gmail_settings.mail_dir).is_relative() {
        gmail_settings.mail_dir = ctx.base_dir.join(&gmail_settings.mail_dir).display().to_string();
    }
    let local_mail = gmail_settings.source == SourceKind::Local;
    let run_deps = Arc::new(sluice_gmail::steps::run::RunDeps {
        settings: gmail_settings.clone(),
        control: backends.control.clone(),
        liveness: ctx.task_tokens.clone(),
    });
    let http = sluice_gmail::http::https_client().map_err(|e| setup("gmail")(e.to_string()))?;
    let oauth = Arc::new(
        sluice_gmail::OAuthDeps::new(gmail_settings, &backends, ctx.task_tokens.clone(), http.clone())
            .await
            .map_err(|e| setup("gmail")(e.to_string()))?,
    );
    let sink = Arc::new(sluice_gmail::RawObjectSink::from_config(
        backends.objects.clone(),
        &config,
    ));
    let fetch_deps = Arc::new(
        sluice_gmail::fetch::FetchDeps::new(&oauth.authorizer, backends.control.clone(), sink, &http)
            .with_work_lists(backends.objects.clone()),
    );
    let pii = Arc::new(
        sluice_pii::PiiDeps::from_config(&config, backends.clone())
            .await
            .map_err(|e| setup("pii")(e.to_string()))?,
    );
    let tokens = Arc::new(sluice_tokens::issue::TokenIssueDeps::new(
        &backends,
        sluice_tokens::TokenSettings::from_config(&config).map_err(|e| setup("tokens")(e.to_string()))?,
    ));

    let mut handlers: Bindings = Vec::new();

    let deps = run_deps.clone();
    handlers.push((
        "sluice-run-begin",
        step(move |input: sluice_gmail::steps::run::BeginInput| {
            let deps = deps.clone();
            async move {
                sluice_gmail::steps::run::begin(input, &deps)
                    .await
                    .map_err(StepFailure::from)
            }
        }),
    ));

    let deps = run_deps.clone();
    handlers.push((
        "sluice-run-finish",
        step(move |input: sluice_gmail::steps::run::FinishInput| {
            let deps = deps.clone();
            async move {
                sluice_gmail::steps::run::finish(input, &deps)
                    .await
                    .map_err(StepFailure::from)
            }
        }),
    ));

    let (deps, p) = (oauth.clone(), progress.clone());
    handlers.push((
        "sluice-auth-check",
        step(move |input: sluice_gmail::auth_check::AuthCheckInput| {
            let (deps, p) = (deps.clone(), p.clone());
            async move {
                p.step("checking Gmail authorization");
                if local_mail {
                    // An .eml directory needs no Google account.
                    return Ok(serde_json::json!({"status": "authorized", "reason": "local mail source"}));
                }
                let output = sluice_gmail::auth_check::run(input, &deps)
                    .await
                    .map_err(StepFailure::from)?;
                serde_json::to_value(output).map_err(|e| StepFailure {
                    error: "Sluice.InvalidOutput".into(),
                    cause: e.to_string(),
                })
            }
        }),
    ));

    let (deps, p, slot) = (oauth.clone(), progress.clone(), ctx.consent_url.clone());
    handlers.push((
        "sluice-consent-request",
        step(move |input: sluice_gmail::consent_request::ConsentRequestInput| {
            let (deps, p, slot) = (deps.clone(), p.clone(), slot.clone());
            async move {
                p.step("waiting for Gmail consent");
                let output = sluice_gmail::consent_request::run(input, &deps)
                    .await
                    .map_err(StepFailure::from)?;
                if let Ok(mut url) = slot.lock() {
                    *url = Some(output.consent_url.clone());
                }
                Ok(output)
            }
        }),
    ));

    let deps = oauth.clone();
    handlers.push((
        "sluice-code-exchange",
        step(move |input: sluice_gmail::code_exchange::CodeExchangeInput| {
            let deps = deps.clone();
            async move {
                sluice_gmail::code_exchange::run(input, &deps)
                    .await
                    .map_err(StepFailure::from)
            }
        }),
    ));

    let (deps, p) = (fetch_deps.clone(), progress.clone());
    handlers.push((
        "sluice-gmail-fetch",
        step(move |input: sluice_gmail::fetch::FetchInput| {
            let (deps, p) = (deps.clone(), p.clone());
            async move {
                p.step("fetching mail");
                sluice_gmail::fetch::run(input, &deps).await.map_err(StepFailure::from)
            }
        }),
    ));

    let (objects, cfg, p) = (backends.objects.clone(), config.clone(), progress.clone());
    handlers.push((
        "sluice-stage",
        tracked_step(backends.control.clone(), move |input: sluice_stage::StageInput| {
            let (objects, cfg, p) = (objects.clone(), cfg.clone(), p.clone());
            async move {
                p.step(format!("staging {}", input.raw_key));
                sluice_stage::run(input, objects.as_ref(), &cfg)
                    .await
                    .map_err(StepFailure::from)
            }
        }),
    ));

    let (deps, p) = (pii.clone(), progress.clone());
    handlers.push((
        "sluice-pii-detect",
        step(move |input: sluice_pii::steps::detect::DetectInput| {
            let (deps, p) = (deps.clone(), p.clone());
            async move {
                p.step(format!("detecting PII in {}", input.staged_key));
                sluice_pii::steps::detect::run(input, &deps)
                    .await
                    .map_err(StepFailure::from)
            }
        }),
    ));

    let (deps, p) = (pii.clone(), progress.clone());
    handlers.push((
        "sluice-pii-mask",
        tracked_step(
            backends.control.clone(),
            move |input: sluice_pii::steps::mask::MaskInput| {
                let (deps, p) = (deps.clone(), p.clone());
                async move {
                    p.step(format!("masking {}", input.staged_key));
                    sluice_pii::steps::mask::run(input, &deps)
                        .await
                        .map_err(StepFailure::from)
                }
            },
        ),
    ));

    let (backends_for_ingest, cfg, p) = (backends.clone(), config.clone(), progress.clone());
    handlers.push((
        "sluice-ingest",
        tracked_step(backends.control.clone(), move |input: sluice_ingest::IngestInput| {
            let (backends, cfg, p) = (backends_for_ingest.clone(), cfg.clone(), p.clone());
            async move {
                p.step(format!("ingesting {}", input.source_key));
                let output = sluice_ingest::run(input, &backends, &cfg)
                    .await
                    .map_err(StepFailure::from)?;
                p.file_ingested(output.rows_written);
                Ok(output)
            }
        }),
    ));

    let (deps, p) = (tokens.clone(), progress.clone());
    handlers.push((
        "sluice-token-issue",
        step(move |input: sluice_tokens::TokenIssueInput| {
            let (deps, p) = (deps.clone(), p.clone());
            async move {
                p.step("issuing consumer keys");
                sluice_tokens::run(input, &deps).await.map_err(StepFailure::from)
            }
        }),
    ));
    Ok((handlers, oauth))
}
