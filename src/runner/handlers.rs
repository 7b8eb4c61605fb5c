//! The pipeline functions bound into the local engine from [`sluice_functions::FUNCTIONS`]: the
//! very steps the Lambdas serve, built the same way; the runner adds only its progress line and
//! keeps the consent URL to show the user.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sluice_core::{Backends, Config};
use sluice_functions::{BoundStep, StepContext};
use sluice_statemachine::{FnHandler, TaskContext, TaskFailure, TaskHandler};

use super::{Progress, RunnerError, engine_handle::EngineHandle};

pub use sluice_functions::FUNCTIONS;

pub type Bindings = Vec<(&'static str, Arc<dyn TaskHandler>)>;

pub struct BindContext<'a> {
    pub config: &'a Config,
    pub backends: Backends,
    pub base_dir: &'a Path,
    pub task_tokens: Arc<EngineHandle>,
}

/// What the progress line says while `binary` works on `input`.
fn progress_line(binary: &str, input: &Value) -> String {
    let key = |field: &str| input[field].as_str().unwrap_or("a file").to_string();
    match binary {
        "sluice-run-begin" => "starting the run".into(),
        "sluice-auth-check" => "checking Gmail authorization".into(),
        "sluice-consent-request" => "waiting for Gmail consent".into(),
        "sluice-code-exchange" => "exchanging the OAuth code".into(),
        "sluice-gmail-fetch" => "fetching mail".into(),
        "sluice-stage" => format!("staging {}", key("raw_key")),
        "sluice-pii-detect" => format!("detecting PII in {}", key("staged_key")),
        "sluice-pii-mask" => format!("masking {}", key("staged_key")),
        "sluice-ingest" => format!("ingesting {}", key("source_key")),
        "sluice-token-issue" => "issuing consumer keys".into(),
        "sluice-run-finish" => "summarizing the run".into(),
        other => other.to_string(),
    }
}

/// A built step as an engine task handler.
fn in_process(step: Arc<dyn BoundStep>) -> Arc<dyn TaskHandler> {
    Arc::new(FnHandler(move |_: TaskContext, input: Value| {
        let step = step.clone();
        async move { step.invoke(input).await.map_err(|f| TaskFailure::new(f.error, f.cause)) }
    }))
}

/// `inner` (in process or a real Lambda binary) with what the runner shows around it: the
/// progress line, the ingested rows, and the consent URL to print (it carries the OAuth state
/// and PKCE challenge, never the task token or a code).
pub fn observed(
    binary: &'static str,
    inner: Arc<dyn TaskHandler>,
    progress: Progress,
    consent: ConsentUrls,
) -> Arc<dyn TaskHandler> {
    Arc::new(FnHandler(move |ctx: TaskContext, input: Value| {
        let (inner, progress, consent) = (inner.clone(), progress.clone(), consent.clone());
        async move {
            progress.step(progress_line(binary, &input));
            let execution = ctx.execution_arn.clone();
            let output = inner.invoke(ctx, input).await?;
            match binary {
                "sluice-consent-request" => {
                    if let Some(url) = output["consent_url"].as_str() {
                        if let Ok(mut latest) = consent.latest.lock() {
                            *latest = Some(url.to_string());
                        }
                        if let Ok(mut by_execution) = consent.by_execution.lock() {
                            by_execution.insert(execution, url.to_string());
                        }
                    }
                }
                "sluice-ingest" => progress.file_ingested(output["rows_written"].as_u64().unwrap_or(0)),
                _ => {}
            }
            Ok(output)
        }
    }))
}

/// The consent URLs the consent-request step answered: the latest, and each execution's own
/// (an execution's URL carries its own OAuth state, so two waiting executions need theirs).
#[derive(Clone, Default)]
pub struct ConsentUrls {
    pub latest: Arc<Mutex<Option<String>>>,
    pub by_execution: Arc<Mutex<std::collections::HashMap<String, String>>>,
}

/// The in-process handlers of every function in [`FUNCTIONS`] (unobserved: see [`observed`]),
/// and the OAuth pieces the CLI itself uses
/// (the manual code exchange, the callback route).
pub async fn bind(ctx: BindContext<'_>) -> Result<(Bindings, Arc<sluice_gmail::OAuthDeps>), RunnerError> {
    let context = StepContext {
        config: Arc::new(ctx.config.clone()),
        backends: ctx.backends.clone(),
        task_tokens: ctx.task_tokens.clone(),
        liveness: ctx.task_tokens.clone(),
        base_dir: ctx.base_dir.to_path_buf(),
    };
    let mut handlers: Bindings = Vec::new();
    for function in &FUNCTIONS {
        let step = function.bind(&context).await.map_err(|e| RunnerError::Setup {
            stage: function.binary,
            message: e.message,
        })?;
        handlers.push((function.binary, in_process(step)));
    }
    let oauth = sluice_functions::oauth_deps(&context)
        .await
        .map_err(|e| RunnerError::Setup {
            stage: "gmail",
            message: e.message,
        })?;
    Ok((handlers, oauth))
}
