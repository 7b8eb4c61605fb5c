//! The pipeline's real Lambda binaries, run locally: each function's binary in processes of its
//! own, started on demand with Lambda's environment and the SAM template's, each talking to a
//! local Lambda Runtime API ([`runtime_api`]), kept warm between invocations and scaled one
//! process per concurrent invocation ([`pool`]). [`LambdaHost::handler`] gives the function's
//! [`TaskHandler`], which the local runner binds instead of the in-process step when
//! `PipelineOptions::lambda_binaries` is set; every process is killed with the host.
//!
//! Each process's environment, from the first source to the last (a later one wins):
//! 1. passed through from this process: `PATH`, `HOME`, `TMPDIR`, `LANG`, `TZ`, TLS roots
//!    (`SSL_CERT_FILE`, `SSL_CERT_DIR`, `AWS_CA_BUNDLE`) and AWS credentials (`AWS_ACCESS_KEY_ID`,
//!    `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_PROFILE`, `AWS_CONFIG_FILE`,
//!    `AWS_SHARED_CREDENTIALS_FILE`), as Lambda hands a function its role's credentials;
//! 2. the function's [`FunctionBinary::environment`]: from [`LambdaBinaries::from_template`],
//!    the `SLUICE_*` overrides the local configuration was loaded with, then the template's
//!    variables resolved for the local run (which carry the local configuration document as
//!    `SLUICE_CONFIG`, the template's own `SluiceConfig` mechanism);
//! 3. Lambda's reserved variables, which a function cannot override on Lambda either:
//!    `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`,
//!    `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`, `AWS_REGION`, `AWS_DEFAULT_REGION`, `_HANDLER`,
//!    `LAMBDA_TASK_ROOT` (the binary's directory) and `AWS_LAMBDA_RUNTIME_API`.
//!
//! The working directory is the local configuration's directory, so that relative paths in the
//! configuration mean what they mean to the in-process run.

mod exchange;
mod pool;
mod runtime_api;
mod sandbox;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::Config;
use sluice_statemachine::TaskHandler;

use super::template::{LocalStack, SamTemplate, SubstitutionTarget, TemplateError};

pub use pool::{EXITED, INIT_ERROR, INVALID_ENTRYPOINT, RESPONSE_TOO_LARGE, TIMED_OUT, UNKNOWN};

/// Variables a function process takes from this one.
const PASSED_THROUGH: [&str; 14] = [
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AWS_CA_BUNDLE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// Where the real binaries are and how each function runs.
#[derive(Debug, Clone)]
pub struct LambdaBinaries {
    /// `DIR/<binary>` (`cargo build`: `target/debug`) or `DIR/<binary>/bootstrap`
    /// (`cargo lambda build`: `target/lambda`).
    pub dir: PathBuf,
    /// The processes' working directory.
    pub working_dir: PathBuf,
    /// `AWS_REGION` of the processes.
    pub region: String,
    /// Per binary.
    pub functions: BTreeMap<String, FunctionBinary>,
    /// What the template sets differently from the local configuration (for the user to see).
    pub notes: Vec<String>,
}

/// One function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionBinary {
    pub environment: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// `_HANDLER` (the template's `Handler`; `bootstrap` for the `provided` runtimes).
    pub handler: String,
}

impl FunctionBinary {
    /// A function with no environment of its own, Lambda's default memory and `timeout`.
    pub fn new(timeout: Duration) -> Self {
        FunctionBinary {
            environment: BTreeMap::new(),
            timeout,
            memory_mb: 128,
            handler: "bootstrap".into(),
        }
    }
}

/// The local run the functions' environment is resolved for.
pub struct LocalRun<'a> {
    pub config: &'a Config,
    /// The configuration document (the config file's text; empty without one).
    pub config_document: &'a str,
    /// The `SLUICE_*` variables the configuration was loaded with (overlaid on the document).
    pub config_overrides: &'a [(String, String)],
    /// The configuration's directory (relative paths are resolved against it).
    pub base_dir: &'a Path,
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaHostError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{binary}: the environment the template gives it is not a valid configuration: {message}")]
    FunctionConfig { binary: String, message: String },
    #[error(
        "{binary} would not use the local run's backends: its {setting} would be {function_value} where the local configuration has {local_value} (check the template's variables and the local [aws] section)"
    )]
    DifferentBackends {
        binary: String,
        setting: &'static str,
        function_value: String,
        local_value: String,
    },
    #[error("the template binds no function to the binary {binary}")]
    NotInTemplate { binary: String },
    #[error(
        "no binary {binary} in {dir} (neither {dir}/{binary} nor {dir}/{binary}/bootstrap): build it first (cargo build --bins, or cargo lambda build)"
    )]
    MissingBinary { binary: String, dir: String },
    #[error("{binary} is not among the configured Lambda binaries")]
    NotConfigured { binary: String },
}

impl LambdaBinaries {
    /// Every function the state machine's DefinitionSubstitutions name, with the binary, handler,
    /// timeout, memory and environment the template gives it, resolved for `local`
    /// (see [`super::template`]).
    pub fn from_template(dir: &Path, template: &SamTemplate, local: &LocalRun<'_>) -> Result<Self, LambdaHostError> {
        let stack = LocalStack {
            config: local.config,
            config_document: local.config_document,
            rust_log: std::env::var("RUST_LOG").ok(),
        };
        let overrides: Vec<(String, String)> = local
            .config_overrides
            .iter()
            .filter(|(name, _)| name.starts_with("SLUICE_") && name != "SLUICE_CONFIG" && name != "SLUICE_CONFIG_FILE")
            .cloned()
            .collect();
        let mut functions = BTreeMap::new();
        // note -> the functions it concerns
        let mut noted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let tasks = template
            .definition_substitutions()?
            .into_values()
            .filter_map(|target| match target {
                SubstitutionTarget::Function { binary, .. } => Some(binary),
                SubstitutionTarget::Other(_) => None,
            });
        // And the OAuth callback behind the HTTP API, which resumes a run (the API itself is
        // served in process by `sluice serve`).
        let served = [sluice_functions::OAUTH_CALLBACK_BINARY.to_string()]
            .into_iter()
            .filter(|binary| matches!(template.function(binary), Ok(Some(_))));
        for binary in tasks.chain(served) {
            let function = template
                .function(&binary)?
                .ok_or_else(|| LambdaHostError::NotInTemplate { binary: binary.clone() })?;
            let resolved = template.resolve(&function, &stack)?;
            let mut environment: BTreeMap<String, String> = overrides.iter().cloned().collect();
            environment.extend(resolved.environment.clone());
            for note in check_same_backends(&binary, &environment, local)? {
                noted.entry(note).or_default().push(binary.clone());
            }
            functions.insert(
                binary,
                FunctionBinary {
                    environment,
                    timeout: Duration::from_secs(resolved.timeout_seconds),
                    memory_mb: resolved.memory_mb,
                    handler: resolved.handler,
                },
            );
        }
        let notes = noted
            .into_iter()
            .map(|(note, binaries)| {
                if binaries.len() == functions.len() {
                    format!("{note}, for every function")
                } else {
                    format!("{note}, for {}", binaries.join(", "))
                }
            })
            .collect();
        Ok(LambdaBinaries {
            dir: dir.to_path_buf(),
            working_dir: local.base_dir.to_path_buf(),
            region: local_region(local.config),
            functions,
            notes,
        })
    }

    /// Gives every function `name=value` (what the local run adds to the template's variables).
    pub fn set_everywhere(&mut self, name: &str, value: &str) {
        for function in self.functions.values_mut() {
            function.environment.insert(name.to_string(), value.to_string());
        }
    }

    /// The binary's file: `DIR/<binary>`, else `DIR/<binary>/bootstrap`.
    pub fn binary_path(&self, binary: &str) -> Option<PathBuf> {
        let plain = self.dir.join(binary);
        if plain.is_file() {
            return Some(plain);
        }
        let bootstrap = plain.join("bootstrap");
        bootstrap.is_file().then_some(bootstrap)
    }
}

fn local_region(config: &Config) -> String {
    config
        .aws
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into())
}

/// The function's configuration, as its binary will read it (`Config::from_env`), must reach
/// the same S3 bucket, tables, secrets and endpoint as the local run. Returns the settings of
/// other sections the template changes, as notes.
fn check_same_backends(
    binary: &str,
    environment: &BTreeMap<String, String>,
    local: &LocalRun<'_>,
) -> Result<Vec<String>, LambdaHostError> {
    let document = environment.get("SLUICE_CONFIG").map(String::as_str).unwrap_or("");
    let function = Config::from_toml_with_env(
        document,
        &format!("{binary}'s environment"),
        local.base_dir,
        environment.iter().map(|(k, v)| (k.clone(), v.clone())),
    )
    .map_err(|e| LambdaHostError::FunctionConfig {
        binary: binary.to_string(),
        message: e.to_string(),
    })?;
    let (theirs, ours) = (&function.aws, &local.config.aws);
    let settings: [(&'static str, String, String); 8] = [
        (
            "backend",
            format!("{:?}", function.backend),
            format!("{:?}", local.config.backend),
        ),
        (
            "aws.bucket",
            format!("{:?}", theirs.bucket),
            format!("{:?}", ours.bucket),
        ),
        (
            "aws.records_table",
            format!("{:?}", theirs.records_table),
            format!("{:?}", ours.records_table),
        ),
        (
            "aws.control_table",
            format!("{:?}", theirs.control_table),
            format!("{:?}", ours.control_table),
        ),
        (
            "aws.secret_prefix",
            format!("{:?}", theirs.secret_prefix),
            format!("{:?}", ours.secret_prefix),
        ),
        (
            "aws.endpoint_url",
            format!("{:?}", theirs.endpoint_url),
            format!("{:?}", ours.endpoint_url),
        ),
        (
            "aws.region",
            format!("{:?}", theirs.region),
            format!("{:?}", ours.region),
        ),
        (
            "aws.kms_key_id",
            format!("{:?}", theirs.kms_key_id),
            format!("{:?}", ours.kms_key_id),
        ),
    ];
    for (setting, function_value, local_value) in settings {
        if function_value != local_value {
            return Err(LambdaHostError::DifferentBackends {
                binary: binary.to_string(),
                setting,
                function_value,
                local_value,
            });
        }
    }
    // The other sections the template's variables touch (`SLUICE_GMAIL__SOURCE` -> gmail).
    let mut sections: Vec<String> = environment
        .keys()
        .filter(|name| name.as_str() != "SLUICE_CONFIG")
        .filter_map(|name| {
            name.strip_prefix("SLUICE_")?
                .split_once("__")
                .map(|(s, _)| s.to_ascii_lowercase())
        })
        .filter(|section| section != "aws")
        .collect();
    sections.sort();
    sections.dedup();
    let mut notes = Vec::new();
    for section in sections {
        // A key the template sets to what the local run uses anyway (its default) is no news.
        if let (Some(theirs), Some(ours)) = (effective(&section, &function), effective(&section, local.config))
            && theirs == ours
        {
            continue;
        }
        let (Ok(theirs), Ok(ours)) = (
            function.section::<toml::Table>(&section),
            local.config.section::<toml::Table>(&section),
        ) else {
            continue;
        };
        for (key, value) in &theirs {
            if ours.get(key) == Some(value) || same_effect(local, &section, key, value) {
                continue;
            }
            let local_value = ours.get(key).map_or("unset".to_string(), ToString::to_string);
            notes.push(format!(
                "the template sets {section}.{key} = {value} (the local configuration: {local_value})"
            ));
        }
    }
    Ok(notes)
}

/// Whether setting `section.key = value` over the local configuration leaves the section's
/// settings as they are (the template spelling out the local default).
fn same_effect(local: &LocalRun<'_>, section: &str, key: &str, value: &toml::Value) -> bool {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(_) => return false,
        other => other.to_string(),
    };
    let variable = format!("SLUICE_{}__{}", section.to_ascii_uppercase(), key.to_ascii_uppercase());
    let mut overrides = local.config_overrides.to_vec();
    overrides.retain(|(name, _)| name != &variable);
    overrides.push((variable, text));
    Config::from_toml_with_env(local.config_document, "probe", local.base_dir, overrides)
        .ok()
        .is_some_and(|probe| {
            effective(section, &probe).is_some() && effective(section, &probe) == effective(section, local.config)
        })
}

/// A section's settings as the steps read them (defaults filled in), for the sections whose
/// settings type is known here.
fn effective(section: &str, config: &Config) -> Option<String> {
    match section {
        "gmail" => sluice_gmail::GmailSettings::from_config(config)
            .ok()
            .map(|s| format!("{s:?}")),
        "pii" => sluice_pii::settings::PiiSettings::from_config(config)
            .ok()
            .map(|s| format!("{s:?}")),
        "stage" => Some(format!("{:?}", config.stage)),
        "ingest" => Some(format!("{:?}", config.ingest)),
        "datasets" => Some(format!("{:?}", config.datasets)),
        _ => None,
    }
}

/// The processes the host started, by sandbox, to kill them all at once.
#[derive(Default)]
struct ProcessTable {
    next_id: AtomicU64,
    pids: Mutex<HashMap<u64, u32>>,
}

impl ProcessTable {
    fn pids(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u32>> {
        self.pids.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn insert(&self, id: u64, pid: u32) {
        self.pids().insert(id, pid);
    }

    fn remove(&self, id: u64) {
        self.pids().remove(&id);
    }

    /// Kills sandbox `id`'s process group (the process leads its own group).
    fn kill(&self, id: u64) {
        if let Some(pid) = self.pids().remove(&id) {
            kill_group(pid);
        }
    }

    fn kill_all(&self) {
        for (_, pid) in self.pids().drain() {
            kill_group(pid);
        }
    }
}

fn kill_group(pid: u32) {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    if rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_err() {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// An HTTP request for a function behind the HTTP API.
pub struct HttpRequest {
    pub method: String,
    /// Path and query, as requested (`/oauth/callback?code=...&state=...`).
    pub uri: String,
    pub headers: Vec<(String, String)>,
}

/// What the function answered.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A route that hands `GET path` to `binary` behind the HTTP API, as API Gateway would (what
/// `sluice serve --lambda-binaries` answers `/oauth/callback` with).
pub fn http_route(host: Arc<LambdaHost>, binary: &'static str, path: &str) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    let handler = move |uri: Uri, headers: HeaderMap| {
        let host = host.clone();
        async move {
            let request = HttpRequest {
                method: "GET".into(),
                uri: uri
                    .path_and_query()
                    .map(|pq| pq.as_str().to_string())
                    .unwrap_or_default(),
                headers: headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
                    .collect(),
            };
            match host.invoke_http(binary, request).await {
                Ok(response) => {
                    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
                    let mut answer = (status, response.body).into_response();
                    for (name, value) in response.headers {
                        if let (Ok(name), Ok(value)) = (
                            axum::http::HeaderName::try_from(name.as_str()),
                            axum::http::HeaderValue::try_from(value.as_str()),
                        ) {
                            answer.headers_mut().insert(name, value);
                        }
                    }
                    answer
                }
                // What API Gateway answers when its integration fails.
                Err(message) => {
                    tracing::warn!(function = binary, %message, "the HTTP function failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
                }
            }
        }
    };
    axum::Router::new().route(path, axum::routing::get(handler))
}

/// The functions' process pools; dropping the host kills every process it started.
pub struct LambdaHost {
    pools: BTreeMap<String, Arc<pool::FunctionPool>>,
    processes: Arc<ProcessTable>,
}

impl LambdaHost {
    /// Checks that every function's binary exists; starts nothing yet (processes start on the
    /// first invocation).
    pub fn new(binaries: &LambdaBinaries) -> Result<LambdaHost, LambdaHostError> {
        let processes = Arc::new(ProcessTable::default());
        let mut pools = BTreeMap::new();
        for (binary, function) in &binaries.functions {
            let path = binaries
                .binary_path(binary)
                .ok_or_else(|| LambdaHostError::MissingBinary {
                    binary: binary.clone(),
                    dir: binaries.dir.display().to_string(),
                })?;
            let task_root = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut environment: BTreeMap<String, String> = PASSED_THROUGH
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_string(), value)))
                .collect();
            environment.extend(function.environment.clone());
            for (name, value) in [
                ("AWS_LAMBDA_FUNCTION_NAME", binary.clone()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function.memory_mb.to_string()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
                ("AWS_REGION", binaries.region.clone()),
                ("AWS_DEFAULT_REGION", binaries.region.clone()),
                ("_HANDLER", function.handler.clone()),
                ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
            ] {
                environment.insert(name.to_string(), value);
            }
            let spec = sandbox::FunctionSpec {
                binary: binary.clone(),
                path,
                working_dir: binaries.working_dir.clone(),
                environment: environment.into_iter().collect(),
                timeout: function.timeout,
                function_arn: super::local_function_arn(binary),
            };
            pools.insert(
                binary.clone(),
                Arc::new(pool::FunctionPool::new(spec, processes.clone())),
            );
        }
        Ok(LambdaHost { pools, processes })
    }

    /// The handler that invokes `binary` through its process pool.
    pub fn handler(&self, binary: &str) -> Result<Arc<dyn TaskHandler>, LambdaHostError> {
        let pool = self.pools.get(binary).ok_or_else(|| LambdaHostError::NotConfigured {
            binary: binary.to_string(),
        })?;
        Ok(pool.clone())
    }

    /// Kills every process (idle or busy); later invocations start new ones.
    pub fn shutdown(&self) {
        for pool in self.pools.values() {
            pool.clear();
        }
        self.processes.kill_all();
    }

    /// Sends an HTTP request to `binary` as API Gateway's HTTP API does (payload format 2.0),
    /// and its answer back.
    pub async fn invoke_http(&self, binary: &str, request: HttpRequest) -> Result<HttpResponse, String> {
        let handler = self.handler(binary).map_err(|e| e.to_string())?;
        let (path, query) = request.uri.split_once('?').unwrap_or((request.uri.as_str(), ""));
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": format!("{} {path}", request.method),
            "rawPath": path,
            "rawQueryString": query,
            "headers": request.headers.iter().cloned().collect::<BTreeMap<_, _>>(),
            "requestContext": {
                "accountId": super::template::LOCAL_ACCOUNT_ID,
                "apiId": "local",
                "domainName": "127.0.0.1",
                "domainPrefix": "local",
                "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "sluice"},
                "requestId": uuid::Uuid::new_v4().to_string(),
                "routeKey": format!("{} {path}", request.method),
                "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": 0,
            },
            "isBase64Encoded": false,
        });
        let context = sluice_statemachine::TaskContext {
            resource: super::local_function_arn(binary),
            state_name: format!("{} {path}", request.method),
            execution_arn: String::new(),
            function_name: Some(binary.to_string()),
            task_token: None,
        };
        let output = handler
            .invoke(context, event)
            .await
            .map_err(|failure| format!("{binary} failed: {failure}"))?;
        let status = output["statusCode"].as_u64().unwrap_or(200) as u16;
        let body = output["body"].as_str().unwrap_or_default().to_string();
        let headers = output["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(HttpResponse { status, headers, body })
    }

    /// How many processes are running now.
    pub fn running_processes(&self) -> usize {
        self.processes.pids().len()
    }
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}
