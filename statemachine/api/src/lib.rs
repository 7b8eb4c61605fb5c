//! The Step Functions API on Sluice's local engine: the AWS JSON 1.0 protocol
//! (`X-Amz-Target: AWSStepFunctions.<Operation>`) with AWS's request and response shapes and
//! error codes, so the aws CLI, boto3 and the AWS SDKs work against it unchanged.
//!
//! State machines live in the engine's SQLite file ([`registry`]); executions, their histories
//! and parked task tokens in the engine's own store, so everything outlives the server. An
//! execution runs in the background, as on AWS: `StartExecution` answers at once.

pub mod activities;
mod events;
mod protocol;
pub mod registry;
mod test_state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};
use sluice_statemachine::{
    Engine, EngineError, ExecutionStatus, StartExecution, StateMachine, execution_arn, state_machine_arn,
};

use activities::Activities;
pub use protocol::ApiError;
use protocol::{Request, answer, check_name, epoch_seconds, page};
use registry::{MachineRecord, Registry};

/// What became of a task a worker took off an activity's queue.
enum Taken {
    /// Its execution waits on it: the worker gets it.
    Started,
    /// Its execution ended without waiting on it (stopped, failed elsewhere).
    Ended,
    /// Its execution has not parked on it yet: it goes back on the queue.
    NotParkedYet,
}

/// The role AWS would run executions as: locally nothing assumes it.
const DEFAULT_ROLE: &str = "arn:aws:iam::123456789012:role/sluice-local";

pub struct StepFunctionsService {
    engine: Arc<Engine>,
    registry: Registry,
    activities: Arc<Activities>,
    /// Parsed definitions by state machine ARN and revision.
    parsed: Mutex<HashMap<String, (String, StateMachine)>>,
    /// A Step Functions Local mock config: `StartExecution` of `<machine ARN>#<test case>`
    /// answers that test case's Task states from it.
    mocks: Option<sluice_statemachine::MockConfig>,
}

impl StepFunctionsService {
    /// The service over `engine`, whose task registry binds activities to
    /// [`activities::ActivityHandler`] over the same `activities`.
    pub fn new(engine: Arc<Engine>, registry: Registry, activities: Arc<Activities>) -> Arc<StepFunctionsService> {
        Arc::new(StepFunctionsService {
            engine,
            registry,
            activities,
            parsed: Mutex::new(HashMap::new()),
            mocks: None,
        })
    }

    /// The service answering `<machine ARN>#<test case>` executions from `mocks`, as Step
    /// Functions Local does with its mock config file.
    pub fn with_mocks(
        engine: Arc<Engine>,
        registry: Registry,
        activities: Arc<Activities>,
        mocks: sluice_statemachine::MockConfig,
    ) -> Arc<StepFunctionsService> {
        Arc::new(StepFunctionsService {
            engine,
            registry,
            activities,
            parsed: Mutex::new(HashMap::new()),
            mocks: Some(mocks),
        })
    }

    /// Creates (or updates to `definition`) the state machine `name`: how a server offers the
    /// pipeline's own machine. Returns its ARN.
    pub fn register(&self, name: &str, definition: &str) -> Result<String, ApiError> {
        let arn = state_machine_arn(name);
        match self.registry.get(&arn).map_err(internal)? {
            Some(mut record) if record.definition != definition => {
                record.definition = definition.to_string();
                record.updated = Some(Utc::now());
                record.revision = uuid::Uuid::new_v4().to_string();
                self.registry.replace(&record).map_err(internal)?;
            }
            Some(_) => {}
            None => {
                let request = Request::parse(
                    json!({"name": name, "definition": definition, "roleArn": DEFAULT_ROLE})
                        .to_string()
                        .as_bytes(),
                )?;
                self.create_state_machine(&request)?;
            }
        }
        Ok(arn)
    }

    /// The HTTP routes: every operation is a POST to `/`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route("/", post(handle)).with_state(self.clone())
    }

    /// Serves on `addr` until the process ends.
    pub async fn serve(self: &Arc<Self>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    async fn call(&self, operation: &str, request: &Request) -> Result<Value, ApiError> {
        match operation {
            "CreateStateMachine" => self.create_state_machine(request),
            "DescribeStateMachine" => self.describe_state_machine(request),
            "UpdateStateMachine" => self.update_state_machine(request),
            "DeleteStateMachine" => self.delete_state_machine(request),
            "ListStateMachines" => self.list_state_machines(request),
            "ValidateStateMachineDefinition" => Ok(validate_definition(request.required("definition")?)),
            "StartExecution" => self.start_execution(request).await,
            "StartSyncExecution" => self.start_sync_execution(request).await,
            "DescribeExecution" => self.describe_execution(request),
            "ListExecutions" => self.list_executions(request),
            "GetExecutionHistory" => self.execution_history(request),
            "StopExecution" => self.stop_execution(request),
            "RedriveExecution" => self.redrive_execution(request).await,
            "DescribeMapRun" => self.describe_map_run(request),
            "ListMapRuns" => self.list_map_runs(request),
            "TestState" => test_state::test_state(request).await,
            "SendTaskSuccess" => self.send_task_success(request).await,
            "SendTaskFailure" => self.send_task_failure(request).await,
            "SendTaskHeartbeat" => self.send_task_heartbeat(request).await,
            "CreateActivity" => self.create_activity(request),
            "DescribeActivity" => self.describe_activity(request),
            "ListActivities" => self.list_activities(request),
            "DeleteActivity" => self.delete_activity(request),
            "GetActivityTask" => self.get_activity_task(request).await,
            "TagResource" => self.tag_resource(request),
            "UntagResource" => self.untag_resource(request),
            "ListTagsForResource" => self.list_tags(request),
            other => Err(ApiError::client(
                "UnknownOperationException",
                format!("this server does not offer {other}"),
            )),
        }
    }

    fn machine(&self, arn: &str) -> Result<MachineRecord, ApiError> {
        if !arn.starts_with("arn:") || !arn.contains(":stateMachine:") {
            return Err(ApiError::client("InvalidArn", format!("Invalid Arn: '{arn}'")));
        }
        self.registry.get(arn).map_err(internal)?.ok_or_else(|| {
            ApiError::client(
                "StateMachineDoesNotExist",
                format!("State Machine Does Not Exist: '{arn}'"),
            )
        })
    }

    fn parsed(&self, record: &MachineRecord) -> Result<StateMachine, ApiError> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((revision, machine)) = parsed.get(&record.arn)
            && *revision == record.revision
        {
            return Ok(machine.clone());
        }
        let machine = StateMachine::from_json(&record.definition)
            .map_err(|e| ApiError::client("InvalidDefinition", format!("Invalid State Machine Definition: '{e}'")))?;
        parsed.insert(record.arn.clone(), (record.revision.clone(), machine.clone()));
        Ok(machine)
    }

    fn create_state_machine(&self, request: &Request) -> Result<Value, ApiError> {
        let name = request.required("name")?;
        check_name("name", name)?;
        let definition = request.required("definition")?;
        check_definition(definition)?;
        let role_arn = request.required("roleArn")?;
        let kind = request.optional("type")?.unwrap_or("STANDARD");
        if !matches!(kind, "STANDARD" | "EXPRESS") {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
            )));
        }
        let now = Utc::now();
        let record = MachineRecord {
            arn: state_machine_arn(name),
            name: name.to_string(),
            definition: definition.to_string(),
            role_arn: role_arn.to_string(),
            kind: kind.to_string(),
            created: now,
            updated: None,
            revision: uuid::Uuid::new_v4().to_string(),
            logging: request
                .body
                .get("loggingConfiguration")
                .cloned()
                .unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
            tracing: request
                .body
                .get("tracingConfiguration")
                .cloned()
                .unwrap_or_else(|| json!({"enabled": false})),
            description: request.optional("description")?.unwrap_or_default().to_string(),
        };
        if !self.registry.create(&record).map_err(internal)? {
            // The same request again is answered as the first was (AWS's idempotency).
            let existing = self.machine(&record.arn)?;
            if existing.definition == record.definition
                && existing.role_arn == record.role_arn
                && existing.kind == record.kind
            {
                return Ok(json!({"stateMachineArn": existing.arn, "creationDate": epoch_seconds(&existing.created)}));
            }
            return Err(ApiError::client(
                "StateMachineAlreadyExists",
                format!("State Machine Already Exists: '{}'", record.arn),
            ));
        }
        self.registry
            .tag(&record.arn, &tags_of(&request.body)?)
            .map_err(internal)?;
        Ok(json!({"stateMachineArn": record.arn, "creationDate": epoch_seconds(&now)}))
    }

    fn describe_state_machine(&self, request: &Request) -> Result<Value, ApiError> {
        let record = self.machine(request.required("stateMachineArn")?)?;
        let mut out = json!({
            "stateMachineArn": record.arn,
            "name": record.name,
            "status": "ACTIVE",
            "definition": record.definition,
            "roleArn": record.role_arn,
            "type": record.kind,
            "creationDate": epoch_seconds(&record.created),
            "loggingConfiguration": record.logging,
            "tracingConfiguration": record.tracing,
            "revisionId": record.revision,
        });
        if !record.description.is_empty() {
            out["description"] = json!(record.description);
        }
        Ok(out)
    }

    fn update_state_machine(&self, request: &Request) -> Result<Value, ApiError> {
        let mut record = self.machine(request.required("stateMachineArn")?)?;
        let definition = request.optional("definition")?;
        let role_arn = request.optional("roleArn")?;
        let logging = request.body.get("loggingConfiguration");
        let tracing = request.body.get("tracingConfiguration");
        if definition.is_none() && role_arn.is_none() && logging.is_none() && tracing.is_none() {
            return Err(ApiError::client(
                "MissingRequiredParameter",
                "Either the definition, the role ARN, the LoggingConfiguration, or the TracingConfiguration must be specified",
            ));
        }
        if let Some(definition) = definition {
            check_definition(definition)?;
            record.definition = definition.to_string();
        }
        if let Some(role_arn) = role_arn {
            record.role_arn = role_arn.to_string();
        }
        if let Some(logging) = logging {
            record.logging = logging.clone();
        }
        if let Some(tracing) = tracing {
            record.tracing = tracing.clone();
        }
        let now = Utc::now();
        record.updated = Some(now);
        record.revision = uuid::Uuid::new_v4().to_string();
        self.registry.replace(&record).map_err(internal)?;
        Ok(json!({"updateDate": epoch_seconds(&now), "revisionId": record.revision}))
    }

    fn delete_state_machine(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("stateMachineArn")?;
        if !arn.contains(":stateMachine:") {
            return Err(ApiError::client("InvalidArn", format!("Invalid Arn: '{arn}'")));
        }
        // Deleting one that is gone is no error, as on AWS.
        self.registry.delete(arn).map_err(internal)?;
        self.parsed.lock().unwrap_or_else(|p| p.into_inner()).remove(arn);
        Ok(json!({}))
    }

    fn list_state_machines(&self, request: &Request) -> Result<Value, ApiError> {
        let all = self.registry.list().map_err(internal)?;
        let (machines, next) = page(&all, request.page_start()?, request.page_size(100, 1000)?);
        let listed: Vec<Value> = machines
            .iter()
            .map(|m| {
                json!({"stateMachineArn": m.arn, "name": m.name, "type": m.kind, "creationDate": epoch_seconds(&m.created)})
            })
            .collect();
        Ok(with_next(json!({"stateMachines": listed}), next))
    }

    /// The execution `StartExecution` asks for, or the error AWS gives.
    fn execution_request(&self, request: &Request) -> Result<(MachineRecord, StateMachine, String, Value), ApiError> {
        let (arn, _) = split_test_case(request.required("stateMachineArn")?);
        let record = self.machine(arn)?;
        let machine = self.parsed(&record)?;
        let name = match request.optional("name")? {
            Some(name) => {
                check_name("name", name)?;
                name.to_string()
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let input = match request.optional("input")? {
            None => json!({}),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                ApiError::client(
                    "InvalidExecutionInput",
                    format!("Invalid State Machine Execution Input: '{e}'"),
                )
            })?,
        };
        Ok((record, machine, name, input))
    }

    async fn start_execution(&self, request: &Request) -> Result<Value, ApiError> {
        let (record, machine, name, input) = self.execution_request(request)?;
        if record.kind == "EXPRESS" {
            // EXPRESS executions keep no history on AWS either; here they run as standard ones.
            tracing::debug!(machine = %record.name, "an EXPRESS machine started asynchronously");
        }
        let arn = execution_arn(&record.name, &name);
        if let Some(existing) = self.engine.store().load(&arn).map_err(|e| internal(e.to_string()))? {
            // The same name and input while it runs: the same execution (AWS's idempotency).
            if existing.status == ExecutionStatus::Running && existing.input == input {
                return Ok(json!({"executionArn": arn, "startDate": epoch_seconds(&existing.start_date)}));
            }
            return Err(ApiError::client(
                "ExecutionAlreadyExists",
                format!("Execution Already Exists: '{arn}'"),
            ));
        }
        let mut start = StartExecution::new(record.name.clone(), input);
        start.name = Some(name);
        start.mocks = self.test_case(request, &record)?;
        let engine = self.engine.clone();
        let started_at = Utc::now();
        let watched = arn.clone();
        let mut run = Box::pin(async move { engine.start_execution(&machine, start).await });
        // The first poll stores the execution (or refuses it); the rest runs in the background.
        match futures::poll!(&mut run) {
            std::task::Poll::Ready(Err(err)) => return Err(engine_error(err)),
            std::task::Poll::Ready(Ok(_)) => {}
            std::task::Poll::Pending => {
                tokio::spawn(async move {
                    if let Err(err) = run.await {
                        tracing::warn!(execution = %watched, error = %err, "execution ended in an engine error");
                    }
                });
            }
        }
        Ok(json!({"executionArn": arn, "startDate": epoch_seconds(&started_at)}))
    }

    async fn start_sync_execution(&self, request: &Request) -> Result<Value, ApiError> {
        let (record, machine, name, input) = self.execution_request(request)?;
        if record.kind != "EXPRESS" {
            return Err(ApiError::client(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine",
            ));
        }
        let mut start = StartExecution::new(record.name.clone(), input);
        start.name = Some(name);
        start.mocks = self.test_case(request, &record)?;
        let report = self
            .engine
            .start_execution(&machine, start)
            .await
            .map_err(engine_error)?;
        let mut out = self.describe(&report.execution_arn)?;
        if let Some(object) = out.as_object_mut() {
            object.remove("redriveCount");
            object.remove("redriveStatus");
            object.insert(
                "billingDetails".into(),
                json!({"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 100}),
            );
        }
        Ok(out)
    }

    /// The mocked test case a `<machine ARN>#<test case>` names, from the mock config.
    fn test_case(
        &self,
        request: &Request,
        machine: &MachineRecord,
    ) -> Result<Option<sluice_statemachine::MockedTestCase>, ApiError> {
        let (_, test_case) = split_test_case(request.required("stateMachineArn")?);
        let Some(test_case) = test_case else {
            return Ok(None);
        };
        let mocks = self.mocks.as_ref().ok_or_else(|| {
            ApiError::validation(format!(
                "test case '{test_case}' asked for, but the server has no mock config (sluice stepfunctions serve --mock-config FILE)"
            ))
        })?;
        mocks
            .test_case(Some(&machine.name), test_case)
            .map(Some)
            .map_err(|e| ApiError::validation(e.to_string()))
    }

    fn describe(&self, arn: &str) -> Result<Value, ApiError> {
        let record = self.engine.describe_execution(arn).map_err(engine_error)?;
        let mut out = json!({
            "executionArn": record.execution_arn,
            "stateMachineArn": record.state_machine_arn,
            "name": record.name,
            "status": record.status.as_str(),
            "startDate": epoch_seconds(&record.start_date),
            "input": record.input.to_string(),
            "inputDetails": {"included": true},
            "redriveCount": record.redrive_count,
        });
        if let Some(stop) = &record.stop_date {
            out["stopDate"] = json!(epoch_seconds(stop));
        }
        if let Some(output) = &record.output {
            out["output"] = json!(output.to_string());
            out["outputDetails"] = json!({"included": true});
        }
        if let Some(error) = &record.error {
            out["error"] = json!(error);
        }
        if let Some(cause) = &record.cause {
            out["cause"] = json!(cause);
        }
        out["redriveStatus"] = json!(match record.status {
            ExecutionStatus::Running | ExecutionStatus::Succeeded => "NOT_REDRIVABLE",
            _ => "REDRIVABLE",
        });
        Ok(out)
    }

    fn describe_execution(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("executionArn")?;
        check_execution_arn(arn)?;
        self.describe(arn)
    }

    fn list_executions(&self, request: &Request) -> Result<Value, ApiError> {
        let machine = self.machine(request.required("stateMachineArn")?)?;
        let status = request.optional("statusFilter")?;
        let mut all: Vec<_> = self
            .engine
            .list_executions()
            .map_err(engine_error)?
            .into_iter()
            .filter(|e| e.state_machine_name == machine.name)
            .filter(|e| status.is_none_or(|s| e.status.as_str() == s))
            .collect();
        // Newest first, as AWS lists them.
        all.sort_by(|a, b| b.start_date.cmp(&a.start_date).then_with(|| b.name.cmp(&a.name)));
        let (executions, next) = page(&all, request.page_start()?, request.page_size(100, 1000)?);
        let listed: Vec<Value> = executions
            .iter()
            .map(|e| {
                let mut item = json!({
                    "executionArn": e.execution_arn,
                    "stateMachineArn": machine.arn,
                    "name": e.name,
                    "status": e.status.as_str(),
                    "startDate": epoch_seconds(&e.start_date),
                });
                if let Some(stop) = &e.stop_date {
                    item["stopDate"] = json!(epoch_seconds(stop));
                }
                item
            })
            .collect();
        Ok(with_next(json!({"executions": listed}), next))
    }

    fn execution_history(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("executionArn")?;
        check_execution_arn(arn)?;
        let mut all = self.engine.execution_history(arn).map_err(engine_error)?;
        if all.is_empty() && self.engine.describe_execution(arn).is_err() {
            return Err(ApiError::client(
                "ExecutionDoesNotExist",
                format!("Execution Does Not Exist: '{arn}'"),
            ));
        }
        if request.flag("reverseOrder")?.unwrap_or(false) {
            all.reverse();
        }
        let include = request.flag("includeExecutionData")?.unwrap_or(true);
        let (events, next) = page(&all, request.page_start()?, request.page_size(100, 1000)?);
        let events: Vec<Value> = events.iter().map(|e| events::aws_event(e, include)).collect();
        Ok(with_next(json!({"events": events}), next))
    }

    fn stop_execution(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("executionArn")?;
        check_execution_arn(arn)?;
        let error = request.optional("error")?;
        let cause = request.optional("cause")?;
        self.engine.stop_execution(arn, error, cause).map_err(engine_error)?;
        let record = self.engine.describe_execution(arn).map_err(engine_error)?;
        let stopped = record.stop_date.unwrap_or_else(Utc::now);
        Ok(json!({"stopDate": epoch_seconds(&stopped)}))
    }

    async fn redrive_execution(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("executionArn")?.to_string();
        check_execution_arn(&arn)?;
        let engine = self.engine.clone();
        let watched = arn.clone();
        let mut run = Box::pin(async move { engine.redrive_execution(&watched).await });
        // The first poll checks the execution may be redriven and records the redrive.
        match futures::poll!(&mut run) {
            std::task::Poll::Ready(Err(err)) => return Err(engine_error(err)),
            std::task::Poll::Ready(Ok(_)) => {}
            std::task::Poll::Pending => {
                let execution = arn.clone();
                tokio::spawn(async move {
                    if let Err(err) = run.await {
                        tracing::warn!(%execution, error = %err, "redriven execution ended in an engine error");
                    }
                });
            }
        }
        let record = self.engine.describe_execution(&arn).map_err(engine_error)?;
        let date = record.redrive_date.unwrap_or_else(Utc::now);
        Ok(json!({"redriveDate": epoch_seconds(&date)}))
    }

    fn describe_map_run(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("mapRunArn")?;
        let run = self
            .engine
            .describe_map_run(arn)
            .map_err(engine_error)?
            .ok_or_else(|| ApiError::client("ResourceNotFound", format!("Resource not found: '{arn}'")))?;
        let counts = |c: &sluice_statemachine::store::MapRunCounts| {
            json!({
                "pending": c.pending, "running": c.running, "succeeded": c.succeeded, "failed": c.failed,
                "timedOut": c.timed_out, "aborted": c.aborted, "total": c.total, "resultsWritten": c.results_written,
                "failuresNotRedrivable": 0, "pendingRedrive": 0,
            })
        };
        let mut out = json!({
            "mapRunArn": run.map_run_arn,
            "executionArn": run.execution_arn,
            "status": run.status,
            "startDate": epoch_seconds(&run.start_date),
            "maxConcurrency": run.max_concurrency,
            "toleratedFailurePercentage": run.tolerated_failure_percentage,
            "toleratedFailureCount": run.tolerated_failure_count,
            "itemCounts": counts(&run.item_counts),
            "executionCounts": counts(&run.execution_counts),
            "redriveCount": run.redrive_count,
        });
        if let Some(stop) = &run.stop_date {
            out["stopDate"] = json!(epoch_seconds(stop));
        }
        Ok(out)
    }

    fn list_map_runs(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("executionArn")?;
        check_execution_arn(arn)?;
        let record = self.engine.describe_execution(arn).map_err(engine_error)?;
        let all = self.engine.list_map_runs(arn).map_err(engine_error)?;
        let (runs, next) = page(&all, request.page_start()?, request.page_size(100, 1000)?);
        let listed: Vec<Value> = runs
            .iter()
            .map(|run| {
                let mut item = json!({
                    "executionArn": run.execution_arn,
                    "mapRunArn": run.map_run_arn,
                    "stateMachineArn": record.state_machine_arn,
                    "startDate": epoch_seconds(&run.start_date),
                });
                if let Some(stop) = &run.stop_date {
                    item["stopDate"] = json!(epoch_seconds(stop));
                }
                item
            })
            .collect();
        Ok(with_next(json!({"mapRuns": listed}), next))
    }

    async fn send_task_success(&self, request: &Request) -> Result<Value, ApiError> {
        let token = request.required("taskToken")?.to_string();
        let output: Value = serde_json::from_str(request.required("output")?)
            .map_err(|e| ApiError::client("InvalidOutput", format!("Invalid Output: '{e}'")))?;
        self.engine.check_task_token(&token).map_err(engine_error)?;
        let engine = self.engine.clone();
        // The execution goes on without the caller, as on AWS.
        tokio::spawn(async move {
            if let Err(err) = engine.send_task_success(&token, output).await {
                tracing::warn!(error = %err, "resuming an answered execution failed");
            }
        });
        Ok(json!({}))
    }

    async fn send_task_failure(&self, request: &Request) -> Result<Value, ApiError> {
        let token = request.required("taskToken")?.to_string();
        let error = request.optional("error")?.unwrap_or_default().to_string();
        let cause = request.optional("cause")?.unwrap_or_default().to_string();
        self.engine.check_task_token(&token).map_err(engine_error)?;
        let engine = self.engine.clone();
        tokio::spawn(async move {
            if let Err(err) = engine.send_task_failure(&token, &error, &cause).await {
                tracing::warn!(error = %err, "resuming a failed task's execution failed");
            }
        });
        Ok(json!({}))
    }

    async fn send_task_heartbeat(&self, request: &Request) -> Result<Value, ApiError> {
        let token = request.required("taskToken")?;
        self.engine.send_task_heartbeat(token).await.map_err(engine_error)?;
        Ok(json!({}))
    }

    fn activity(&self, arn: &str) -> Result<activities::Activity, ApiError> {
        if !arn.starts_with("arn:") || !arn.contains(":activity:") {
            return Err(ApiError::client("InvalidArn", format!("Invalid Arn: '{arn}'")));
        }
        self.activities
            .get(arn)
            .map_err(internal)?
            .ok_or_else(|| ApiError::client("ActivityDoesNotExist", format!("Activity Does Not Exist: '{arn}'")))
    }

    fn create_activity(&self, request: &Request) -> Result<Value, ApiError> {
        let name = request.required("name")?;
        check_name("name", name)?;
        let arn = activity_arn(name);
        let activity = self.activities.create(&arn, name).map_err(internal)?;
        self.registry.tag(&arn, &tags_of(&request.body)?).map_err(internal)?;
        Ok(json!({"activityArn": activity.arn, "creationDate": epoch_seconds(&activity.created)}))
    }

    fn describe_activity(&self, request: &Request) -> Result<Value, ApiError> {
        let activity = self.activity(request.required("activityArn")?)?;
        Ok(
            json!({"activityArn": activity.arn, "name": activity.name, "creationDate": epoch_seconds(&activity.created)}),
        )
    }

    fn list_activities(&self, request: &Request) -> Result<Value, ApiError> {
        let all = self.activities.list().map_err(internal)?;
        let (listed, next) = page(&all, request.page_start()?, request.page_size(100, 1000)?);
        let listed: Vec<Value> = listed
            .iter()
            .map(|a| json!({"activityArn": a.arn, "name": a.name, "creationDate": epoch_seconds(&a.created)}))
            .collect();
        Ok(with_next(json!({"activities": listed}), next))
    }

    fn delete_activity(&self, request: &Request) -> Result<Value, ApiError> {
        let arn = request.required("activityArn")?;
        if !arn.contains(":activity:") {
            return Err(ApiError::client("InvalidArn", format!("Invalid Arn: '{arn}'")));
        }
        self.activities.delete(arn).map_err(internal)?;
        Ok(json!({}))
    }

    /// A worker's long poll: the oldest queued task of the activity, or (after up to 60 s) an
    /// answer with no token, as AWS gives.
    async fn get_activity_task(&self, request: &Request) -> Result<Value, ApiError> {
        let activity = self.activity(request.required("activityArn")?)?;
        let worker = request.optional("workerName")?;
        let deadline = tokio::time::Instant::now() + activities::LONG_POLL;
        loop {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(task) = self.activities.take(&activity.arn, wait).await.map_err(internal)? else {
                return Ok(json!({}));
            };
            match self.take_up(&task.token, worker)? {
                Taken::Started => {
                    return Ok(json!({"taskToken": task.token, "input": task.input.to_string()}));
                }
                // Its execution stopped or ended: nobody waits on the task any more.
                Taken::Ended => continue,
                // Back on the queue at once (a crash now loses nothing), and looked at again
                // shortly, until the poll's end.
                Taken::NotParkedYet => {
                    self.activities.put_back(&activity.arn, &task).map_err(internal)?;
                    if tokio::time::Instant::now() >= deadline {
                        return Ok(json!({}));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Records that `worker` took the task behind `token` if its execution has parked on it:
    /// the task is queued while the execution is still on its way there, and a worker must not
    /// get a token it cannot answer yet.
    fn take_up(&self, token: &str, worker: Option<&str>) -> Result<Taken, ApiError> {
        match self.engine.activity_task_started(token, worker) {
            Ok(()) => Ok(Taken::Started),
            Err(EngineError::InvalidToken) if self.engine.task_token_known(token).map_err(engine_error)? => {
                Ok(Taken::Ended)
            }
            Err(EngineError::InvalidToken) => Ok(Taken::NotParkedYet),
            Err(other) => Err(engine_error(other)),
        }
    }

    fn tagged_machine(&self, request: &Request) -> Result<MachineRecord, ApiError> {
        let arn = request.required("resourceArn")?;
        self.machine(arn).map_err(|err| match err.code {
            "StateMachineDoesNotExist" => ApiError::client("ResourceNotFound", format!("Resource not found: '{arn}'")),
            _ => err,
        })
    }

    fn tag_resource(&self, request: &Request) -> Result<Value, ApiError> {
        let machine = self.tagged_machine(request)?;
        self.registry
            .tag(&machine.arn, &tags_of(&request.body)?)
            .map_err(internal)?;
        Ok(json!({}))
    }

    fn untag_resource(&self, request: &Request) -> Result<Value, ApiError> {
        let machine = self.tagged_machine(request)?;
        let keys: Vec<String> = request.body["tagKeys"]
            .as_array()
            .ok_or_else(|| ApiError::validation("tagKeys is required"))?
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        self.registry.untag(&machine.arn, &keys).map_err(internal)?;
        Ok(json!({}))
    }

    fn list_tags(&self, request: &Request) -> Result<Value, ApiError> {
        let machine = self.tagged_machine(request)?;
        let tags: Vec<Value> = self
            .registry
            .tags(&machine.arn)
            .map_err(internal)?
            .into_iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        Ok(json!({ "tags": tags }))
    }
}

/// One AWS JSON 1.0 request: the operation `X-Amz-Target` names, on the request's body.
async fn handle(State(service): State<Arc<StepFunctionsService>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target.strip_prefix("AWSStepFunctions.") else {
        return ApiError::client("UnknownOperationException", format!("unknown target {target:?}")).into_response();
    };
    let result = match Request::parse(&body) {
        Ok(request) => service.call(operation, &request).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(body) => answer(StatusCode::OK, body),
        Err(err) => {
            tracing::debug!(operation, code = err.code, "Step Functions API error");
            err.into_response()
        }
    }
}

fn with_next(mut out: Value, next: Option<String>) -> Value {
    if let Some(token) = next {
        out["nextToken"] = json!(token);
    }
    out
}

pub(crate) fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(err.to_string())
}

pub(crate) fn engine_error(err: EngineError) -> ApiError {
    match err {
        EngineError::InvalidToken => {
            ApiError::client("InvalidToken", "Invalid Token: the task token names no waiting task")
        }
        EngineError::TaskTimedOut => ApiError::client("TaskTimedOut", "Task Timed Out"),
        EngineError::ExecutionDoesNotExist(arn) => {
            ApiError::client("ExecutionDoesNotExist", format!("Execution Does Not Exist: '{arn}'"))
        }
        EngineError::ExecutionAlreadyExists(name) => {
            ApiError::client("ExecutionAlreadyExists", format!("Execution Already Exists: '{name}'"))
        }
        EngineError::InputTooLarge(_) => ApiError::client("InvalidExecutionInput", err.to_string()),
        EngineError::NotRedrivable { .. } => ApiError::client("ExecutionNotRedrivable", err.to_string()),
        EngineError::Busy { .. } => ApiError::client("ExecutionLimitExceeded", err.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// `<machine ARN>#<test case>` taken apart (Step Functions Local's way to pick a mocked test
/// case).
fn split_test_case(arn: &str) -> (&str, Option<&str>) {
    match arn.split_once('#') {
        Some((machine, test_case)) if !test_case.is_empty() => (machine, Some(test_case)),
        _ => (arn, None),
    }
}

/// The ARN of activity `name` on this engine.
pub fn activity_arn(name: &str) -> String {
    state_machine_arn(name).replace(":stateMachine:", ":activity:")
}

fn check_execution_arn(arn: &str) -> Result<(), ApiError> {
    if arn.starts_with("arn:") && arn.contains(":execution:") {
        Ok(())
    } else {
        Err(ApiError::client("InvalidArn", format!("Invalid Arn: '{arn}'")))
    }
}

/// A definition AWS would refuse is `InvalidDefinition`, naming every problem.
fn check_definition(definition: &str) -> Result<(), ApiError> {
    let problems = sluice_statemachine::validate(definition);
    if problems.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = problems
        .iter()
        .map(|p| format!("{} at {}", p.message, p.pointer))
        .collect();
    Err(ApiError::client(
        "InvalidDefinition",
        format!("Invalid State Machine Definition: '{}'", listed.join("; ")),
    ))
}

fn validate_definition(definition: &str) -> Value {
    let diagnostics: Vec<Value> = sluice_statemachine::validate(definition)
        .iter()
        .map(|p| {
            json!({
                "severity": "ERROR",
                "code": "SCHEMA_VALIDATION_FAILED",
                "message": p.message,
                "location": p.pointer,
            })
        })
        .collect();
    json!({
        "result": if diagnostics.is_empty() { "OK" } else { "FAIL" },
        "diagnostics": diagnostics,
        "truncated": false,
    })
}

fn tags_of(body: &Value) -> Result<Vec<(String, String)>, ApiError> {
    let Some(tags) = body.get("tags") else {
        return Ok(Vec::new());
    };
    tags.as_array()
        .ok_or_else(|| ApiError::validation("tags must be a list of {key, value}"))?
        .iter()
        .map(|tag| match (tag["key"].as_str(), tag["value"].as_str()) {
            (Some(key), value) => Ok((key.to_string(), value.unwrap_or_default().to_string())),
            _ => Err(ApiError::validation("a tag has no key")),
        })
        .collect()
}

/// Binds `addr` (port 0 for any free one) and serves in the background; returns the address.
pub async fn spawn(service: &Arc<StepFunctionsService>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let service = service.clone();
    tokio::spawn(async move {
        if let Err(err) = service.serve(listener).await {
            tracing::warn!(error = %err, "the Step Functions API stopped");
        }
    });
    Ok(bound)
}
