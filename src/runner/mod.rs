//! The local pipeline runner: `asl/pipeline.asl.json` on Sluice's own ASL engine, each Lambda
//! ARN bound to its stage's in-process handler, executions parked durably in the SQLite file.

mod engine_handle;
mod handlers;
pub mod lambda_host;
mod objects;
mod progress;
pub mod step_functions_api;
pub mod template;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sluice_core::{Backends, Config};
use sluice_statemachine::{
    Engine, EngineError, ExecutionReport, ExecutionStore, SqliteExecutionStore, StartExecution, StateMachine,
    TaskHandler, TaskRegistry,
};

pub use engine_handle::EngineHandle;
pub use handlers::FUNCTIONS;
pub use objects::PipelineObjects;
pub use progress::Progress;

/// The pipeline definition, built into the binary so `sluice run` works from anywhere.
pub const PIPELINE_DEFINITION: &str = include_str!("../../asl/pipeline.asl.json");
/// The state machine name local executions are recorded under.
pub const STATE_MACHINE_NAME: &str = "sluice-pipeline";
/// The uploads definition: files put under `incoming/`, through the pipeline's per-file states.
pub const UPLOAD_DEFINITION: &str = include_str!("../../asl/upload.asl.json");
/// The state machine name upload executions are recorded under.
pub const UPLOAD_STATE_MACHINE_NAME: &str = "sluice-uploads";

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("the pipeline definition is invalid: {0}")]
    Definition(String),
    #[error("cannot open the execution store {path}: {message}")]
    Store { path: PathBuf, message: String },
    #[error("setting up the {stage} stage: {message}")]
    Setup { stage: &'static str, message: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A hook that may replace a stage's handler (tests inject faults with it).
pub type HandlerDecorator = Box<dyn Fn(&str, Arc<dyn TaskHandler>) -> Arc<dyn TaskHandler> + Send + Sync>;

/// Everything a run needs: the engine with its bound handlers and the parsed definition.
pub struct Pipeline {
    pub engine: Arc<Engine>,
    pub machine: StateMachine,
    /// `asl/upload.asl.json`, bound to the same functions.
    pub uploads: StateMachine,
    pub progress: Progress,
    /// The consent URL of the last consent request, to show the user (never the task token).
    pub consent_url: Arc<Mutex<Option<String>>>,
    /// Each execution's own consent URL (see [`handlers::ConsentUrls`]).
    pub consent_urls: Arc<Mutex<std::collections::HashMap<String, String>>>,
    /// The Gmail OAuth pieces, for the manual code exchange and the callback route.
    pub oauth: Arc<sluice_gmail::OAuthDeps>,
    /// The Lambda processes of a run through the real binaries; they are killed with it.
    pub lambda_host: Option<Arc<lambda_host::LambdaHost>>,
    /// Where those binaries' Step Functions calls reach the local engine.
    pub step_functions_api: Option<step_functions_api::StepFunctionsApi>,
}

/// How to open a [`Pipeline`].
pub struct PipelineOptions {
    /// The definition text (default: the built-in `asl/pipeline.asl.json`).
    pub definition: Option<String>,
    /// Where relative paths of the config (such as `[gmail] mail_dir`) are resolved.
    pub base_dir: PathBuf,
    pub decorate: Option<HandlerDecorator>,
    pub show_progress: bool,
    /// Invoke each function's real Lambda binary through a local Lambda Runtime API instead of
    /// its in-process handler.
    pub lambda_binaries: Option<lambda_host::LambdaBinaries>,
    /// Serves Task states whose resource is an activity ARN (the Step Functions API's queue for
    /// `GetActivityTask`); without it such a task fails, naming its resource.
    pub activities: Option<Arc<dyn TaskHandler>>,
}

impl Pipeline {
    pub async fn open(config: &Config, backends: Backends, options: PipelineOptions) -> Result<Pipeline, RunnerError> {
        let definition = substitute_local(
            options.definition.as_deref().unwrap_or(PIPELINE_DEFINITION),
            &pipeline_bucket(config),
        );
        let machine = StateMachine::from_json(&definition).map_err(|e| RunnerError::Definition(e.to_string()))?;
        let uploads = StateMachine::from_json(&substitute_local(UPLOAD_DEFINITION, &pipeline_bucket(config)))
            .map_err(|e| RunnerError::Definition(format!("asl/upload.asl.json: {e}")))?;
        // The executions live under data_dir whatever the backends (on AWS backends too).
        let store_path = config.data_dir.join("sluice.db");
        sluice_core::private::private_dir(&config.data_dir)
            .and_then(|()| sluice_core::private::private_database(&store_path))
            .map_err(|e| RunnerError::Store {
                path: store_path.clone(),
                message: e.to_string(),
            })?;
        let store = SqliteExecutionStore::open(&store_path).map_err(|e| RunnerError::Store {
            path: store_path.clone(),
            message: e.to_string(),
        })?;
        let store: Arc<dyn ExecutionStore> = Arc::new(store);
        let progress = Progress::new(options.show_progress);
        let consent = handlers::ConsentUrls::default();
        let consent_url = consent.latest.clone();
        let task_tokens = Arc::new(EngineHandle::default());
        let objects = PipelineObjects::new(pipeline_bucket(config), backends.objects.clone());
        let mut registry = TaskRegistry::new();
        if let Some(activities) = &options.activities {
            registry.register_activities(activities.clone());
        }
        let (bindings, oauth) = handlers::bind(handlers::BindContext {
            config,
            backends,
            base_dir: &options.base_dir,
            task_tokens: task_tokens.clone(),
        })
        .await?;
        let mut step_functions_api = None;
        let lambda_host = match &options.lambda_binaries {
            Some(binaries) => {
                let api = step_functions_api::StepFunctionsApi::bind()
                    .await
                    .map_err(|e| RunnerError::Setup {
                        stage: "lambda binaries",
                        message: format!("cannot open the local Step Functions endpoint: {e}"),
                    })?;
                let mut binaries = binaries.clone();
                binaries.set_everywhere("SLUICE_AWS__STEP_FUNCTIONS_ENDPOINT_URL", &api.url);
                step_functions_api = Some(api);
                Some(Arc::new(lambda_host::LambdaHost::new(&binaries).map_err(|e| {
                    RunnerError::Setup {
                        stage: "lambda binaries",
                        message: e.to_string(),
                    }
                })?))
            }
            None => None,
        };
        for (function, handler) in bindings {
            let handler = match &lambda_host {
                Some(host) => host.handler(function).map_err(|e| RunnerError::Setup {
                    stage: function,
                    message: e.to_string(),
                })?,
                None => handler,
            };
            let handler = handlers::observed(function, handler, progress.clone(), consent.clone());
            let handler = match &options.decorate {
                Some(decorate) => decorate(function, handler),
                None => handler,
            };
            registry.register_lambda(function, handler);
        }
        let engine = Arc::new(Engine::new(registry).with_store(store).with_objects(Arc::new(objects)));
        task_tokens.attach(&engine);
        if let Some(api) = step_functions_api.as_mut() {
            api.serve(&engine);
        }
        Ok(Pipeline {
            engine,
            machine,
            uploads,
            progress,
            consent_url,
            consent_urls: consent.by_execution.clone(),
            oauth,
            lambda_host,
            step_functions_api,
        })
    }

    /// Starts an execution and runs it until it ends or parks on the consent task.
    pub async fn start(&self, input: Value) -> Result<ExecutionReport, RunnerError> {
        let request = StartExecution::new(STATE_MACHINE_NAME, input);
        Ok(self.engine.start_execution(&self.machine, request).await?)
    }

    /// Runs registered uploads through the uploads state machine, to the end. `name` is the
    /// execution's (the run stamped on their ledger entries).
    pub async fn process_uploads(
        &self,
        name: &str,
        files: &[sluice_stage::upload::UploadWork],
    ) -> Result<ExecutionReport, RunnerError> {
        let mut request = StartExecution::new(UPLOAD_STATE_MACHINE_NAME, serde_json::json!({ "files": files }));
        request.name = Some(name.to_string());
        Ok(self.engine.start_execution(&self.uploads, request).await?)
    }

    /// The full ARN of an execution given its ARN, its name, or a unique prefix of its name.
    pub fn find_execution(&self, id: &str) -> Result<String, RunnerError> {
        let all = self.engine.list_executions()?;
        let matches: Vec<_> = all
            .iter()
            .filter(|e| e.execution_arn == id || e.name == id || e.name.starts_with(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.execution_arn.clone()),
            [] => Err(EngineError::ExecutionDoesNotExist(id.to_string()).into()),
            many => match many.iter().find(|e| e.execution_arn == id || e.name == id) {
                Some(exact) => Ok(exact.execution_arn.clone()),
                None => Err(RunnerError::Definition(format!(
                    "{id:?} matches {} executions; give more of the name",
                    many.len()
                ))),
            },
        }
    }

    /// The task tokens of `execution` still waiting for an answer.
    pub fn waiting_tokens(&self, execution_arn: &str) -> Result<Vec<String>, RunnerError> {
        let record = self.engine.describe_execution(execution_arn)?;
        Ok(match sluice_statemachine::executor::outcome_of(&record) {
            sluice_statemachine::ExecutionOutcome::Waiting { task_tokens } => task_tokens,
            _ => Vec::new(),
        })
    }
}

/// The bucket name a Distributed Map's ItemReader and ResultWriter use for the pipeline's
/// objects: `aws.bucket`, or `sluice` on the embedded backends.
pub fn pipeline_bucket(config: &Config) -> String {
    config.aws.bucket.clone().unwrap_or_else(|| "sluice".into())
}

/// The local ARN of a pipeline function.
pub fn local_function_arn(function: &str) -> String {
    format!("arn:aws:lambda:local:000000000000:function:{function}")
}

/// Replaces each `${...FunctionArn}` DefinitionSubstitution with the local function's ARN, and
/// `${Bucket}` with the pipeline's bucket.
pub fn substitute_local(definition: &str, bucket: &str) -> String {
    let mut text = definition.replace("${Bucket}", bucket);
    for function in &FUNCTIONS {
        text = text.replace(
            &format!("${{{}}}", function.substitution),
            &local_function_arn(function.binary),
        );
    }
    text
}

/// The directory a config file's relative paths are resolved against.
pub fn base_dir_of(config_path: Option<&Path>) -> PathBuf {
    config_path
        .and_then(Path::parent)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The manual resume's code exchange, run by the CLI before it answers the task, so the code
/// never enters the execution's input, output or history. Returns the auth status.
pub async fn exchange_code(pipeline: &Pipeline, code: &str) -> Result<String, sluice_core::StepFailure> {
    let input = sluice_gmail::code_exchange::CodeExchangeInput {
        code: Some(sluice_gmail::oauth::Sensitive::new(code.trim())),
        state: None,
        account: None,
    };
    let output = sluice_gmail::code_exchange::run(input, &pipeline.oauth).await?;
    Ok(match output.status {
        sluice_gmail::auth_check::AuthStatus::Authorized => "authorized".to_string(),
        sluice_gmail::auth_check::AuthStatus::ConsentRequired => "consent_required".to_string(),
    })
}

/// `POST /runs` on the local API: starts an execution in the background and answers at once
/// with its id, as StartExecution does.
pub struct LocalRunStarter {
    pipeline: Arc<Pipeline>,
}

impl LocalRunStarter {
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        LocalRunStarter { pipeline }
    }
}

#[async_trait::async_trait]
impl sluice_api::RunStarter for LocalRunStarter {
    async fn start_run(&self, input: Value) -> Result<sluice_api::RunStarted, sluice_api::RunStartError> {
        if !input.is_object() {
            return Err(sluice_api::RunStartError::InvalidInput(
                "the run input must be a JSON object".into(),
            ));
        }
        let name = uuid_like();
        let mut request = StartExecution::new(STATE_MACHINE_NAME, input);
        request.name = Some(name.clone());
        let pipeline = self.pipeline.clone();
        tokio::spawn(async move {
            match pipeline.engine.start_execution(&pipeline.machine, request).await {
                Ok(report) => {
                    tracing::info!(execution = %report.execution_arn, outcome = ?outcome_name(&report), "run ended or parked")
                }
                Err(err) => tracing::error!(error = %err, "run could not start"),
            }
        });
        Ok(sluice_api::RunStarted {
            run_id: name,
            started_at: chrono::Utc::now(),
        })
    }
}

fn outcome_name(report: &ExecutionReport) -> &'static str {
    match report.outcome {
        sluice_statemachine::ExecutionOutcome::Succeeded { .. } => "succeeded",
        sluice_statemachine::ExecutionOutcome::Failed { .. } => "failed",
        sluice_statemachine::ExecutionOutcome::Waiting { .. } => "waiting",
    }
}

/// A random execution name (128 bits, hex in UUID layout).
fn uuid_like() -> String {
    let hex = hex_encode(&rand_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn rand_bytes() -> [u8; 16] {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
