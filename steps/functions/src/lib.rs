//! The pipeline's functions, in one table: for each, the DefinitionSubstitution the state
//! machine names it by, the binary `sam build` packages, the configuration sections its step
//! reads, and how its step is built from the configuration. Every Lambda `main` serves its
//! entry ([`serve_lambda`]); the local runner binds every entry the same way
//! ([`Function::bind`]), so what runs locally is what ships.

pub mod incoming;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_core::lease::HolderLiveness;
use sluice_core::ledger::{LedgerOutcome, Tracked};
use sluice_core::{Backends, Config, StepFailure, Table, TaskTokens};
use sluice_gmail::{GmailSettings, OAuthDeps};

/// What a step is built from, once per process (a Lambda container, the local runner).
#[derive(Clone)]
pub struct StepContext {
    pub config: Arc<Config>,
    pub backends: Backends,
    /// Answers parked tasks: Step Functions on AWS, the local engine locally.
    pub task_tokens: Arc<dyn TaskTokens>,
    /// Tells whether a lease's holder (an execution) still runs.
    pub liveness: Arc<dyn HolderLiveness>,
    /// Where relative paths of the configuration (`[gmail] mail_dir`) are resolved.
    pub base_dir: PathBuf,
}

/// A step could not be built (bad configuration, an unreadable secret).
#[derive(Debug, thiserror::Error)]
#[error("setting up {binary}: {message}")]
pub struct SetupError {
    pub binary: &'static str,
    pub message: String,
}

/// A built step: its input as JSON in, its output as JSON out, failures with their stable
/// Step Functions error names.
#[async_trait::async_trait]
pub trait BoundStep: Send + Sync {
    async fn invoke(&self, input: Value) -> Result<Value, StepFailure>;
}

type Built<'a> = BoxFuture<'a, Result<Arc<dyn BoundStep>, SetupError>>;

/// Named counts from a function's output.
pub type MetricsOf = fn(&Value) -> Vec<(&'static str, u64)>;

/// One pipeline function.
pub struct Function {
    /// The `${...}` the definition names it by.
    pub substitution: &'static str,
    /// The binary (the SAM template's `BuildProperties.Binary`).
    pub binary: &'static str,
    /// The settings its step reads (`SLUICE_<SECTION>__<KEY>` on Lambda).
    pub reads: &'static [Reads],
    /// The CloudWatch metrics an output publishes (as embedded-metric-format logs on Lambda).
    pub metrics: Option<MetricsOf>,
    build: for<'a> fn(&'a StepContext) -> Built<'a>,
}

impl Function {
    /// Builds the function's step over `context`.
    pub async fn bind(&self, context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
        (self.build)(context).await
    }
}

/// A setting a function's step reads, by its dotted path (`aws.bucket` is `SLUICE_AWS__BUCKET`
/// on Lambda, `[aws] bucket` in a document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// The template must give it: on AWS no default names the right resource or choice.
    Given(&'static str),
    /// A key, or a whole section, whose default is fine; the template (or `SluiceConfig`) may
    /// set it.
    Tuned(&'static str),
}

impl Reads {
    pub fn path(&self) -> &'static str {
        match self {
            Reads::Given(path) | Reads::Tuned(path) => path,
        }
    }

    /// Whether setting `path` (e.g. `["aws", "bucket"]`) is reading this one, or inside it.
    pub fn covers(&self, path: &[String]) -> bool {
        let mine: Vec<&str> = self.path().split('.').collect();
        path.len() >= mine.len() && mine.iter().zip(path).all(|(a, b)| *a == b)
    }
}

use Reads::{Given as G, Tuned as T};

/// What the Gmail OAuth steps read: the mailbox, its token secrets, Google's endpoints.
const OAUTH: &[Reads] = &[
    G("aws.control_table"),
    G("aws.secret_prefix"),
    G("aws.kms_key_id"),
    G("gmail.source"),
    G("gmail.account"),
    T("gmail.client_id"),
    T("gmail.client_secret_name"),
    T("gmail.token_key_secret_name"),
    T("gmail.token_uri"),
    T("gmail.mail_dir"),
];

/// The consent request also builds the consent URL, back to the callback.
const CONSENT: &[Reads] = &[
    G("aws.control_table"),
    G("aws.secret_prefix"),
    G("aws.kms_key_id"),
    G("gmail.source"),
    G("gmail.account"),
    G("gmail.redirect_uri"),
    T("gmail.client_id"),
    T("gmail.client_secret_name"),
    T("gmail.token_key_secret_name"),
    T("gmail.token_uri"),
    T("gmail.auth_uri"),
    T("gmail.mail_dir"),
];

/// Fetch lists the mailbox, stores originals and work lists, and keeps the ledger.
const FETCH: &[Reads] = &[
    G("aws.bucket"),
    G("aws.control_table"),
    G("aws.secret_prefix"),
    G("aws.kms_key_id"),
    G("gmail.source"),
    G("gmail.account"),
    G("gmail.query"),
    T("gmail"),
    T("ingest"),
];

/// The binary behind `GET /oauth/callback`: it resumes the run that waits for consent.
pub const OAUTH_CALLBACK_BINARY: &str = "sluice-oauth-callback";

/// The binary behind the bucket's `incoming/` events.
pub const INCOMING_BINARY: &str = "sluice-incoming";

/// The binaries that serve HTTP or events rather than a state machine Task; named here so that
/// the template check covers every binary that ships.
pub const STANDALONE_FUNCTIONS: [(&str, &[Reads]); 4] = [
    (
        INCOMING_BINARY,
        &[
            G("aws.bucket"),
            G("aws.control_table"),
            G("aws.kms_key_id"),
            G("aws.upload_state_machine_arn"),
            T("stage"),
        ],
    ),
    (
        // It finishes the code exchange the OAuth steps begin, over the same settings.
        OAUTH_CALLBACK_BINARY,
        OAUTH,
    ),
    (
        "sluice-api",
        &[
            G("aws.records_table"),
            G("aws.control_table"),
            G("aws.secret_prefix"),
            G("aws.kms_key_id"),
            G("api.state_machine_arn"),
            T("api"),
            T("datasets"),
        ],
    ),
    ("sluice-authorizer", &[G("aws.control_table"), T("api")]),
];

/// `sluice-run-begin`.
pub static RUN_BEGIN: Function = Function {
    substitution: "RunBeginFunctionArn",
    binary: "sluice-run-begin",
    reads: &[G("aws.control_table"), G("gmail.account"), T("gmail.run_lease_secs")],
    metrics: None,
    build: |c| Box::pin(run_begin(c)),
};

/// `sluice-auth-check`.
pub static AUTH_CHECK: Function = Function {
    substitution: "AuthCheckFunctionArn",
    binary: "sluice-auth-check",
    reads: OAUTH,
    metrics: None,
    build: |c| Box::pin(auth_check(c)),
};

/// `sluice-consent-request`.
pub static CONSENT_REQUEST: Function = Function {
    substitution: "ConsentRequestFunctionArn",
    binary: "sluice-consent-request",
    reads: CONSENT,
    metrics: None,
    build: |c| Box::pin(consent_request(c)),
};

/// `sluice-code-exchange`.
pub static CODE_EXCHANGE: Function = Function {
    substitution: "CodeExchangeFunctionArn",
    binary: "sluice-code-exchange",
    reads: OAUTH,
    metrics: None,
    build: |c| Box::pin(code_exchange(c)),
};

/// `sluice-gmail-fetch`.
pub static GMAIL_FETCH: Function = Function {
    substitution: "GmailFetchFunctionArn",
    binary: "sluice-gmail-fetch",
    reads: FETCH,
    metrics: None,
    build: |c| Box::pin(gmail_fetch(c)),
};

/// `sluice-stage`.
pub static STAGE: Function = Function {
    substitution: "StageFunctionArn",
    binary: "sluice-stage",
    reads: &[
        G("aws.bucket"),
        G("aws.control_table"),
        G("aws.kms_key_id"),
        T("stage"),
        T("datasets"),
    ],
    metrics: None,
    build: |c| Box::pin(stage(c)),
};

/// `sluice-pii-detect`.
pub static PII_DETECT: Function = Function {
    substitution: "PiiDetectFunctionArn",
    binary: "sluice-pii-detect",
    reads: &[
        G("aws.bucket"),
        G("aws.kms_key_id"),
        // The key that signs the findings the mask step reuses.
        G("aws.secret_prefix"),
        G("pii.engine"),
        T("pii"),
        T("datasets"),
    ],
    metrics: None,
    build: |c| Box::pin(pii_detect(c)),
};

/// `sluice-pii-mask`.
pub static PII_MASK: Function = Function {
    substitution: "PiiMaskFunctionArn",
    binary: "sluice-pii-mask",
    reads: &[
        G("aws.bucket"),
        G("aws.control_table"),
        G("aws.kms_key_id"),
        G("aws.secret_prefix"),
        G("pii.engine"),
        T("pii"),
        T("datasets"),
    ],
    metrics: None,
    build: |c| Box::pin(pii_mask(c)),
};

/// `sluice-ingest`.
pub static INGEST: Function = Function {
    substitution: "IngestFunctionArn",
    binary: "sluice-ingest",
    reads: &[
        G("aws.bucket"),
        G("aws.records_table"),
        G("aws.control_table"),
        G("aws.kms_key_id"),
        T("ingest"),
        T("datasets"),
    ],
    metrics: None,
    build: |c| Box::pin(ingest(c)),
};

/// `sluice-token-issue`.
pub static TOKEN_ISSUE: Function = Function {
    substitution: "TokenIssueFunctionArn",
    binary: "sluice-token-issue",
    reads: &[
        G("aws.control_table"),
        G("aws.secret_prefix"),
        G("aws.kms_key_id"),
        T("tokens"),
    ],
    metrics: None,
    build: |c| Box::pin(token_issue(c)),
};

/// `sluice-run-finish`.
pub static RUN_FINISH: Function = Function {
    substitution: "RunFinishFunctionArn",
    binary: "sluice-run-finish",
    reads: &[G("aws.control_table")],
    metrics: Some(run_metrics),
    build: |c| Box::pin(run_finish(c)),
};

/// Every pipeline function, in the order a run meets them. A Lambda `main` names only its own
/// entry (never this table), so that its bootstrap links only its own step.
pub static FUNCTIONS: [&Function; 11] = [
    &RUN_BEGIN,
    &AUTH_CHECK,
    &CONSENT_REQUEST,
    &CODE_EXCHANGE,
    &GMAIL_FETCH,
    &STAGE,
    &PII_DETECT,
    &PII_MASK,
    &INGEST,
    &TOKEN_ISSUE,
    &RUN_FINISH,
];

/// The function whose binary is `binary`.
pub fn function(binary: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.binary == binary).copied()
}

/// The `sluice-incoming` Lambda's `main`: SQS batches of S3 events (see [`incoming`]).
pub async fn serve_incoming() -> Result<(), lambda_runtime::Error> {
    let (config, backends) = sluice_core::lambda::environment().await?;
    let sdk = sluice_core::aws::sdk_config(&config.aws).await;
    let state_machine_arn = config.aws.upload_state_machine_arn.clone().ok_or_else(|| SetupError {
        binary: INCOMING_BINARY,
        message: "SLUICE_AWS__UPLOAD_STATE_MACHINE_ARN is not set".into(),
    })?;
    let starter = incoming::StepFunctionsStarter::new(
        sluice_core::aws::step_functions_client(&sdk, &config.aws),
        state_machine_arn,
    );
    let deps = Arc::new(incoming::IncomingDeps {
        config: Arc::new(config),
        backends,
        starter: Arc::new(starter),
    });
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<Value>| {
            let deps = deps.clone();
            async move { Ok::<_, std::convert::Infallible>(incoming::handle_batch(&event.payload, &deps).await) }
        },
    ))
    .await
}

/// A Lambda `main`: the configuration and backends from the environment, the function's step
/// built once, then one invocation per event.
pub async fn serve_lambda(function: &'static Function) -> Result<(), lambda_runtime::Error> {
    let (config, backends) = sluice_core::lambda::environment().await?;
    let sdk = sluice_core::aws::sdk_config(&config.aws).await;
    let step_functions = sluice_core::aws::step_functions_client(&sdk, &config.aws);
    let context = StepContext {
        config: Arc::new(config),
        backends,
        task_tokens: Arc::new(sluice_core::task_tokens::StepFunctionsTaskTokens::new(
            step_functions.clone(),
        )),
        liveness: Arc::new(sluice_core::lease::StepFunctionsLiveness::new(step_functions)),
        base_dir: std::env::current_dir().unwrap_or_default(),
    };
    let step = function.bind(&context).await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<Value>| {
            let step = step.clone();
            async move {
                let output = step.invoke(event.payload).await?;
                if let Some(metrics) = function.metrics {
                    // CloudWatch reads this line from the function's log stream.
                    println!("{}", embedded_metrics(&metrics(&output), chrono_millis()));
                }
                Ok::<_, StepFailure>(output)
            }
        },
    ))
    .await
}

/// The namespace of Sluice's own CloudWatch metrics.
pub const METRICS_NAMESPACE: &str = "Sluice";

fn chrono_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// One log line in CloudWatch's embedded metric format: counts, no dimensions.
pub fn embedded_metrics(metrics: &[(&str, u64)], timestamp_ms: u128) -> Value {
    let mut document = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [[]],
                "Metrics": metrics.iter().map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
    });
    for (name, value) in metrics {
        document[*name] = Value::from(*value);
    }
    document
}

/// What a run's summary publishes: the files this run moved, by final state, and the files
/// that stay failed or unfinished, so a run where files fail never looks like a good one.
pub fn run_metrics(output: &Value) -> Vec<(&'static str, u64)> {
    let ledger = &output["ledger"];
    let moved = |state: &str| -> u64 {
        ledger["this_run"]
            .as_object()
            .map(|datasets| datasets.values().filter_map(|counts| counts[state].as_u64()).sum())
            .unwrap_or(0)
    };
    vec![
        ("FilesIngested", moved("ingested")),
        ("FilesQuarantined", moved("quarantined")),
        ("FilesFailed", moved("failed")),
        ("FilesSkipped", moved("skipped")),
        ("FilesFailedTotal", ledger["failed_total"].as_u64().unwrap_or(0)),
        ("FilesNotFinished", ledger["not_final"].as_u64().unwrap_or(0)),
    ]
}

type Invocation = Pin<Box<dyn Future<Output = Result<Value, StepFailure>> + Send>>;

struct FnStep<F>(F);

#[async_trait::async_trait]
impl<F> BoundStep for FnStep<F>
where
    F: Fn(Value) -> Invocation + Send + Sync,
{
    async fn invoke(&self, input: Value) -> Result<Value, StepFailure> {
        (self.0)(input).await
    }
}

fn read_input<I: DeserializeOwned>(binary: &str, input: Value) -> Result<I, StepFailure> {
    serde_json::from_value(input).map_err(|e| StepFailure {
        error: "Sluice.InvalidInput".into(),
        cause: format!("{binary} got an input it cannot read: {e}"),
    })
}

fn write_output<O: Serialize>(binary: &str, output: O) -> Result<Value, StepFailure> {
    serde_json::to_value(output).map_err(|e| StepFailure {
        error: "Sluice.InvalidOutput".into(),
        cause: format!("{binary} produced an output that is not JSON: {e}"),
    })
}

/// A step from its function: JSON in, the step, JSON out; step errors keep their names.
fn plain<I, O, E, F, Fut>(binary: &'static str, run: F) -> Arc<dyn BoundStep>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    StepFailure: From<E>,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
{
    let run = Arc::new(run);
    Arc::new(FnStep(move |input: Value| -> Invocation {
        let run = run.clone();
        Box::pin(async move {
            let input: I = read_input(binary, input)?;
            let output = run(input).await.map_err(StepFailure::from)?;
            write_output(binary, output)
        })
    }))
}

/// A step whose work belongs to a ledger entry: the input may carry `"ledger": {...}`, and the
/// step's outcome moves that entry ([`sluice_core::ledger::track`]).
fn tracked<I, O, E, F, Fut>(binary: &'static str, control: Arc<dyn Table>, run: F) -> Arc<dyn BoundStep>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + LedgerOutcome + Send + Sync + 'static,
    StepFailure: From<E>,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
{
    let run = Arc::new(run);
    Arc::new(FnStep(move |input: Value| -> Invocation {
        let (run, control) = (run.clone(), control.clone());
        Box::pin(async move {
            let Tracked { input, ledger } = read_input::<Tracked<I>>(binary, input)?;
            let output = run(input).await.map_err(StepFailure::from)?;
            sluice_core::ledger::track(&control, ledger.as_ref(), &output)
                .await
                .map_err(<StepFailure as From<sluice_core::BackendError>>::from)?;
            write_output(binary, output)
        })
    }))
}

fn setup(binary: &'static str) -> impl Fn(String) -> SetupError {
    move |message| SetupError { binary, message }
}

fn gmail_settings(binary: &'static str, context: &StepContext) -> Result<GmailSettings, SetupError> {
    let mut settings = GmailSettings::from_config(&context.config).map_err(|e| setup(binary)(e.to_string()))?;
    if std::path::Path::new(&settings.mail_dir).is_relative() {
        settings.mail_dir = context.base_dir.join(&settings.mail_dir).display().to_string();
    }
    Ok(settings)
}

/// The Gmail OAuth pieces over `context` (what the local CLI's code exchange and callback use).
pub async fn oauth_deps(context: &StepContext) -> Result<Arc<OAuthDeps>, SetupError> {
    oauth("sluice-oauth", context).await
}

async fn oauth(binary: &'static str, context: &StepContext) -> Result<Arc<OAuthDeps>, SetupError> {
    let settings = gmail_settings(binary, context)?;
    let http = sluice_gmail::http::https_client().map_err(|e| setup(binary)(e.to_string()))?;
    let deps = OAuthDeps::new(settings, &context.backends, context.task_tokens.clone(), http)
        .await
        .map_err(|e| setup(binary)(e.to_string()))?;
    Ok(Arc::new(deps))
}

fn run_deps(binary: &'static str, context: &StepContext) -> Result<Arc<sluice_gmail::steps::run::RunDeps>, SetupError> {
    Ok(Arc::new(sluice_gmail::steps::run::RunDeps {
        settings: gmail_settings(binary, context)?,
        control: context.backends.control.clone(),
        liveness: context.liveness.clone(),
    }))
}

async fn run_begin(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-run-begin";
    let deps = run_deps(BINARY, context)?;
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_gmail::steps::run::begin(input, &deps).await }
    }))
}

async fn run_finish(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-run-finish";
    let deps = run_deps(BINARY, context)?;
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_gmail::steps::run::finish(input, &deps).await }
    }))
}

async fn auth_check(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-auth-check";
    let deps = oauth(BINARY, context).await?;
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_gmail::auth_check::run(input, &deps).await }
    }))
}

async fn consent_request(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-consent-request";
    let deps = oauth(BINARY, context).await?;
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_gmail::consent_request::run(input, &deps).await }
    }))
}

async fn code_exchange(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-code-exchange";
    let deps = oauth(BINARY, context).await?;
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_gmail::code_exchange::run(input, &deps).await }
    }))
}

async fn gmail_fetch(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-gmail-fetch";
    let oauth = oauth(BINARY, context).await?;
    let http = sluice_gmail::http::https_client().map_err(|e| setup(BINARY)(e.to_string()))?;
    let objects = context.backends.objects.clone();
    let sink = Arc::new(sluice_gmail::RawObjectSink::from_config(
        objects.clone(),
        &context.config,
    ));
    let deps = Arc::new(
        sluice_gmail::fetch::FetchDeps::new(&oauth.authorizer, context.backends.control.clone(), sink, &http)
            .with_work_lists(objects),
    );
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_gmail::fetch::run(input, &deps).await }
    }))
}

async fn stage(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-stage";
    let (objects, config) = (context.backends.objects.clone(), context.config.clone());
    Ok(tracked(BINARY, context.backends.control.clone(), move |input| {
        let (objects, config) = (objects.clone(), config.clone());
        async move { sluice_stage::run(input, objects.as_ref(), &config).await }
    }))
}

async fn pii(binary: &'static str, context: &StepContext) -> Result<Arc<sluice_pii::PiiDeps>, SetupError> {
    let deps = sluice_pii::PiiDeps::from_config(&context.config, context.backends.clone())
        .await
        .map_err(|e| setup(binary)(e.to_string()))?;
    Ok(Arc::new(deps))
}

async fn pii_detect(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-pii-detect";
    let deps = pii(BINARY, context).await?;
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_pii::steps::detect::run(input, &deps).await }
    }))
}

async fn pii_mask(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-pii-mask";
    let deps = pii(BINARY, context).await?;
    Ok(tracked(BINARY, context.backends.control.clone(), move |input| {
        let deps = deps.clone();
        async move { sluice_pii::steps::mask::run(input, &deps).await }
    }))
}

async fn ingest(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-ingest";
    let (backends, config) = (context.backends.clone(), context.config.clone());
    Ok(tracked(BINARY, context.backends.control.clone(), move |input| {
        let (backends, config) = (backends.clone(), config.clone());
        async move { sluice_ingest::run(input, &backends, &config).await }
    }))
}

async fn token_issue(context: &StepContext) -> Result<Arc<dyn BoundStep>, SetupError> {
    const BINARY: &str = "sluice-token-issue";
    let settings =
        sluice_tokens::TokenSettings::from_config(&context.config).map_err(|e| setup(BINARY)(e.to_string()))?;
    let deps = Arc::new(sluice_tokens::issue::TokenIssueDeps::new(&context.backends, settings));
    Ok(plain(BINARY, move |input| {
        let deps = deps.clone();
        async move { sluice_tokens::run(input, &deps).await }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every function has its binary here, and that binary serves exactly its own entry.
    #[test]
    fn every_function_has_a_binary_that_serves_it() {
        let manifest = include_str!("../Cargo.toml");
        for function in &FUNCTIONS {
            let short = function.binary.trim_start_matches("sluice-");
            assert!(
                manifest.contains(&format!(
                    "name = \"{}\"\npath = \"src/bin/{short}.rs\"",
                    function.binary
                )),
                "{} is not a [[bin]] of sluice-functions",
                function.binary
            );
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/bin/{short}.rs"));
            let main = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                main.contains(&format!(
                    "serve_lambda(&sluice_functions::{})",
                    short.replace('-', "_").to_uppercase()
                )),
                "{} does not serve {}",
                path.display(),
                function.binary
            );
            assert!(super::function(function.binary).is_some());
        }
        let bins = manifest.matches("[[bin]]").count();
        assert!(super::function("sluice-run-finish").and_then(|f| f.metrics).is_some());
        // The pipeline's functions, and the incoming function (S3's events, not a Task).
        assert!(manifest.contains(&format!("name = \"{INCOMING_BINARY}\"\npath = \"src/bin/incoming.rs\"")));
        assert_eq!(bins, FUNCTIONS.len() + 1, "a binary that is not in FUNCTIONS");
        let mut substitutions: Vec<_> = FUNCTIONS.iter().map(|f| f.substitution).collect();
        substitutions.sort_unstable();
        substitutions.dedup();
        assert_eq!(
            substitutions.len(),
            FUNCTIONS.len(),
            "a DefinitionSubstitution named twice"
        );
    }

    #[test]
    fn a_run_summary_becomes_embedded_metrics() {
        let output = serde_json::json!({"ledger": {
            "this_run": {"orders": {"ingested": 3, "failed": 2}, "prices": {"quarantined": 1, "failed": 1}},
            "failed_total": 5,
            "not_final": 0,
        }});
        let metrics = run_metrics(&output);
        let line = embedded_metrics(&metrics, 1_700_000_000_000);
        assert_eq!(line["FilesFailed"], 3);
        assert_eq!(line["FilesIngested"], 3);
        assert_eq!(line["FilesQuarantined"], 1);
        assert_eq!(line["FilesFailedTotal"], 5);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Sluice");
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), metrics.len());
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
    }
}
