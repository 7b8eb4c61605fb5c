//! The engine: starts executions, parks them on task tokens, resumes them when a token is
//! answered (in this process or another one sharing the store), and fires task timeouts.

mod lease;
mod redrive;
mod task_tokens;
pub(crate) use redrive::prepare_redrive;
pub(crate) mod run;

use crate::clock::{Clock, SystemClock};
use crate::errors::names;
use crate::history::{DEFAULT_HISTORY_LIMIT, EventDetails, EventType, History, HistoryEvent};
use crate::json::{PAYLOAD_LIMIT_BYTES, serialized_len};
use crate::mock::MockedTestCase;
use crate::model::StateMachine;
use crate::objects::{NoObjectStorage, ObjectStorage};
pub use crate::store::PendingTask;
use crate::store::{
    ExecutionRecord, ExecutionStatus, ExecutionStore, ExecutionSummary, FailurePoint, MapRunRecord,
    MemoryExecutionStore, StoreError,
};
use crate::task::TaskRegistry;
use crate::validate::ParseError;
use chrono::{DateTime, Utc};
use run::{Run, ScopeEnd, Thread, lock};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Region and account used in the ARNs the local engine makes up.
pub(crate) const LOCAL_ARN_PREFIX: &str = "arn:aws:states:us-east-1:123456789012";

/// The ARN the local engine gives the state machine `name` (its executions are
/// `<prefix>:execution:<name>:<execution name>`).
pub fn state_machine_arn(name: &str) -> String {
    format!("{LOCAL_ARN_PREFIX}:stateMachine:{name}")
}

/// The ARN the local engine gives execution `execution` of state machine `machine`.
pub fn execution_arn(machine: &str, execution: &str) -> String {
    format!("{LOCAL_ARN_PREFIX}:execution:{machine}:{execution}")
}

/// How a run ended (so far).
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionOutcome {
    Succeeded {
        output: Value,
    },
    /// A Fail state without `Error` fails with no error name, as on AWS.
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
    /// Parked: these task tokens wait for `send_task_success` / `send_task_failure`.
    Waiting {
        task_tokens: Vec<String>,
    },
}

/// The answer to a start or a resume.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionReport {
    pub execution_arn: String,
    pub outcome: ExecutionOutcome,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the task token is not valid: it is unknown, already answered, or its execution has ended")]
    InvalidToken,
    #[error("the task timed out before the token was answered")]
    TaskTimedOut,
    #[error("an execution named '{0}' already exists")]
    ExecutionAlreadyExists(String),
    #[error("no execution '{0}'")]
    ExecutionDoesNotExist(String),
    #[error("the execution input is {0} bytes; the limit is {PAYLOAD_LIMIT_BYTES} bytes")]
    InputTooLarge(usize),
    #[error("the stored definition no longer parses: {0}")]
    InvalidDefinition(#[from] ParseError),
    #[error("the execution '{arn}' is {status}; only FAILED, TIMED_OUT and ABORTED executions can be redriven")]
    NotRedrivable { arn: String, status: ExecutionStatus },
    #[error("the execution '{arn}' is being run by another process ({owner}) until {until}")]
    Busy {
        arn: String,
        owner: String,
        until: DateTime<Utc>,
    },
    #[error("this process lost its lease on the execution '{0}' (another process took it over)")]
    LeaseLost(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(name) => EngineError::ExecutionAlreadyExists(name),
            other => EngineError::Store(other),
        }
    }
}

/// Facts about an execution that every state can read through `$$`.
#[derive(Debug, Clone)]
pub(crate) struct ExecutionInfo {
    pub execution_arn: String,
    pub name: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    pub input: Value,
    pub start_time: DateTime<Utc>,
    pub seed: u64,
    pub redrive_count: u32,
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `Some(25_000)` (AWS's limit) by default; `None` lifts it (benchmarks).
    pub history_limit: Option<usize>,
    /// How long a process's claim on a running execution lasts unless renewed.
    pub lease: std::time::Duration,
    /// How often a running execution renews its lease and checkpoints its progress.
    pub heartbeat: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            history_limit: Some(DEFAULT_HISTORY_LIMIT),
            lease: std::time::Duration::from_secs(30),
            heartbeat: std::time::Duration::from_secs(1),
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct StartExecution {
    pub state_machine_name: String,
    /// Defaults to a UUID.
    pub name: Option<String>,
    pub input: Value,
    /// Answers Task states from a mock-config test case instead of handlers.
    pub mocks: Option<MockedTestCase>,
}

impl StartExecution {
    pub fn new(state_machine_name: impl Into<String>, input: Value) -> Self {
        Self {
            state_machine_name: state_machine_name.into(),
            name: None,
            input,
            mocks: None,
        }
    }
}

/// The local Step Functions.
#[derive(Clone)]
pub struct Engine {
    registry: Arc<TaskRegistry>,
    store: Arc<dyn ExecutionStore>,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
    objects: Arc<dyn ObjectStorage>,
    /// Who this engine is, in the leases it takes (host, process and a per-engine nonce).
    owner: Arc<str>,
    /// Records each state's intermediate values (TestState's inspection data); none by default.
    pub(crate) inspector: Option<Arc<crate::inspect::Inspector>>,
}

impl Engine {
    /// An engine with the given handlers, an in-memory store, the system clock and no object
    /// storage (a Distributed Map that reads S3 fails until one is bound).
    pub fn new(registry: TaskRegistry) -> Self {
        Self {
            registry: Arc::new(registry),
            store: Arc::new(MemoryExecutionStore::new()),
            clock: Arc::new(SystemClock),
            options: EngineOptions::default(),
            objects: Arc::new(NoObjectStorage),
            owner: Arc::from(lease::owner_id()),
            inspector: None,
        }
    }

    /// Binds the S3 stand-in that `ItemReader` and `ResultWriter` use.
    pub fn with_objects(mut self, objects: Arc<dyn ObjectStorage>) -> Self {
        self.objects = objects;
        self
    }

    pub fn objects(&self) -> &Arc<dyn ObjectStorage> {
        &self.objects
    }

    pub fn with_store(mut self, store: Arc<dyn ExecutionStore>) -> Self {
        self.store = store;
        self
    }

    /// Records what each state does with its input (see [`crate::inspect`]).
    pub fn with_inspector(mut self, inspector: Arc<crate::inspect::Inspector>) -> Self {
        self.inspector = Some(inspector);
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    pub fn store(&self) -> &Arc<dyn ExecutionStore> {
        &self.store
    }

    /// Starts an execution and runs it until it succeeds, fails or parks on task tokens.
    pub async fn start_execution(
        &self,
        machine: &StateMachine,
        request: StartExecution,
    ) -> Result<ExecutionReport, EngineError> {
        let size = serialized_len(&request.input);
        if size > PAYLOAD_LIMIT_BYTES {
            return Err(EngineError::InputTooLarge(size));
        }
        let name = request.name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let sm = &request.state_machine_name;
        let mut record = ExecutionRecord {
            execution_arn: format!("{LOCAL_ARN_PREFIX}:execution:{sm}:{name}"),
            name,
            state_machine_name: sm.clone(),
            state_machine_arn: format!("{LOCAL_ARN_PREFIX}:stateMachine:{sm}"),
            definition: machine.definition().to_string(),
            input: request.input,
            status: ExecutionStatus::Running,
            start_date: self.clock.now(),
            stop_date: None,
            output: None,
            error: None,
            cause: None,
            pending_tasks: Vec::new(),
            replay: HashMap::new(),
            mocks: request.mocks,
            seed: rand::random(),
            history_limit: self.options.history_limit,
            parent: None,
            execution_type: Default::default(),
            redrive_count: 0,
            redrive_date: None,
            history_splices: Vec::new(),
            failure_point: None,
            version: 0,
            history: Arc::new(Vec::new()),
        };
        self.store.create(&record)?;
        self.claim(&record.execution_arn)?;
        let execution_arn = record.execution_arn.clone();
        let result = self.run_claimed(machine, &mut record, false).await;
        self.finish_claimed(&execution_arn, record, result).await
    }

    /// Saves what a claimed run did and gives the claim up. A run that parked looks once more
    /// for a wake-up request that came while it held the claim.
    async fn finish_claimed(
        &self,
        execution_arn: &str,
        mut record: ExecutionRecord,
        result: Result<ExecutionOutcome, EngineError>,
    ) -> Result<ExecutionReport, EngineError> {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                let _ = self.store.release_lease(execution_arn, &self.owner);
                return Err(e);
            }
        };
        record.version += 1;
        let running = record.status == ExecutionStatus::Running;
        let parent = record.parent.clone().filter(|_| !running);
        let saved = self.store.save(record);
        self.store.release_lease(execution_arn, &self.owner)?;
        saved?;
        if running && self.store.take_wakeup(execution_arn)? {
            return Box::pin(self.continue_execution(execution_arn)).await;
        }
        if let Some(parent) = parent {
            // A child that ends after a resume lets its parent's map run go on.
            Box::pin(self.continue_execution(&parent.execution_arn)).await?;
        }
        Ok(ExecutionReport {
            execution_arn: execution_arn.to_string(),
            outcome,
        })
    }

    /// Runs a claimed execution's stored definition, giving the claim up on any error.
    async fn run_stored(
        &self,
        execution_arn: &str,
        mut record: ExecutionRecord,
        redriving: bool,
    ) -> Result<ExecutionReport, EngineError> {
        let result = match StateMachine::from_json(&record.definition) {
            Ok(machine) => self.run_claimed(&machine, &mut record, redriving).await,
            Err(e) => Err(e.into()),
        };
        self.finish_claimed(execution_arn, record, result).await
    }

    /// Runs a claimed execution, renewing the claim and checkpointing progress meanwhile.
    async fn run_claimed(
        &self,
        machine: &StateMachine,
        record: &mut ExecutionRecord,
        redriving: bool,
    ) -> Result<ExecutionOutcome, EngineError> {
        let arn = record.execution_arn.clone();
        let outcome = self.run_record_with(machine, record, redriving, true).await;
        if lease::lost(&outcome) {
            return Err(EngineError::LeaseLost(arn));
        }
        Ok(outcome)
    }

    /// Runs (or re-runs, replaying what is recorded) an execution and updates its record;
    /// a Distributed Map runs its children through this.
    pub(crate) async fn run_record(
        &self,
        machine: &StateMachine,
        record: &mut ExecutionRecord,
        redriving: bool,
    ) -> ExecutionOutcome {
        self.run_record_with(machine, record, redriving, false).await
    }

    async fn run_record_with(
        &self,
        machine: &StateMachine,
        record: &mut ExecutionRecord,
        redriving: bool,
        heartbeat: bool,
    ) -> ExecutionOutcome {
        let run = self.run_for(machine, record, redriving, heartbeat);
        let started = run.record(
            EventType::ExecutionStarted,
            EventDetails {
                input: Some(record.input.clone()),
                ..Default::default()
            },
        );
        let mut thread = Thread::new(String::new(), Arc::new(Map::new()));
        let result = match started {
            Ok(_) => {
                let work = run.run_scope(&run.machine.root, record.input.clone(), &mut thread);
                if heartbeat {
                    self.with_heartbeat(&run, &record.execution_arn, work).await
                } else {
                    work.await
                }
            }
            Err(f) => Err(f),
        };
        if let Err(failure) = &result
            && lease::is_lost_failure(failure)
        {
            return ExecutionOutcome::Failed {
                error: failure.error.clone(),
                cause: failure.cause.clone(),
            };
        }
        let outcome = self.settle(machine, record, &run, &thread, result);
        record.replay = std::mem::take(&mut *lock(&run.replay));
        record.history = Arc::new(std::mem::take(&mut lock(&run.history).events));
        outcome
    }

    /// A run of `record` (its replay log taken into the run, its history replayed).
    fn run_for(&self, machine: &StateMachine, record: &mut ExecutionRecord, redriving: bool, heartbeat: bool) -> Run {
        let info = Arc::new(ExecutionInfo {
            execution_arn: record.execution_arn.clone(),
            name: record.name.clone(),
            state_machine_arn: record.state_machine_arn.clone(),
            state_machine_name: record.state_machine_name.clone(),
            role_arn: format!("arn:aws:iam::123456789012:role/{}", record.state_machine_name),
            input: record.input.clone(),
            start_time: record.start_date,
            seed: record.seed,
            redrive_count: record.redrive_count,
        });
        Run {
            engine: self.clone(),
            redriving,
            checkpoints: heartbeat,
            machine: machine.clone(),
            info,
            registry: self.registry.clone(),
            clock: self.clock.clone(),
            mocks: record.mocks.clone().map(Arc::new),
            history: Mutex::new(History::new(
                record.history_limit,
                &record.history,
                &record.history_splices,
            )),
            replay: Mutex::new(std::mem::take(&mut record.replay)),
            parked: Mutex::new(Vec::new()),
            mock_invocations: Mutex::new(HashMap::new()),
        }
    }

    /// How the run ended, written into `record` (status, output or error, the tokens it waits
    /// on, where it failed) and as the history's last event.
    fn settle(
        &self,
        machine: &StateMachine,
        record: &mut ExecutionRecord,
        run: &Run,
        thread: &Thread,
        result: Result<ScopeEnd, crate::errors::StateFailure>,
    ) -> ExecutionOutcome {
        let now = self.clock.now();
        let timed_out = machine
            .timeout_seconds()
            .is_some_and(|t| now > record.start_date + chrono::Duration::seconds(t as i64));
        let outcome = match result {
            _ if timed_out => {
                record.status = ExecutionStatus::TimedOut;
                record.error = Some(names::TIMEOUT.to_string());
                record.cause = Some("The execution ran longer than its TimeoutSeconds.".into());
                lock(&run.history).push_final(
                    EventType::ExecutionTimedOut,
                    EventDetails {
                        error: record.error.clone(),
                        cause: record.cause.clone(),
                        ..Default::default()
                    },
                    now,
                );
                ExecutionOutcome::Failed {
                    error: record.error.clone(),
                    cause: record.cause.clone(),
                }
            }
            Ok(ScopeEnd::Succeeded(output)) => {
                lock(&run.history).push_final(
                    EventType::ExecutionSucceeded,
                    EventDetails {
                        output: Some(output.clone()),
                        ..Default::default()
                    },
                    now,
                );
                record.status = ExecutionStatus::Succeeded;
                record.output = Some(output.clone());
                ExecutionOutcome::Succeeded { output }
            }
            Ok(ScopeEnd::Parked) => {
                let parked = std::mem::take(&mut *lock(&run.parked));
                // A token that was parked before keeps its heartbeat bookkeeping.
                let previous: HashMap<&str, &PendingTask> =
                    record.pending_tasks.iter().map(|p| (p.token.as_str(), p)).collect();
                let merged: Vec<PendingTask> = parked
                    .into_iter()
                    .map(|p| match previous.get(p.token.as_str()) {
                        Some(old) => PendingTask {
                            answer: None,
                            ..(*old).clone()
                        },
                        None => p,
                    })
                    .collect();
                record.pending_tasks = merged;
                ExecutionOutcome::Waiting {
                    task_tokens: record.pending_tasks.iter().map(|p| p.token.clone()).collect(),
                }
            }
            Err(failure) => {
                lock(&run.history).push_final(
                    EventType::ExecutionFailed,
                    EventDetails {
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                        ..Default::default()
                    },
                    now,
                );
                record.status = ExecutionStatus::Failed;
                record.error = failure.error.clone();
                record.cause = failure.cause.clone();
                record.failure_point = Some(FailurePoint {
                    call: thread.call_id(),
                    entered_event: thread.entered_event,
                });
                ExecutionOutcome::Failed {
                    error: failure.error,
                    cause: failure.cause,
                }
            }
        };
        if record.status != ExecutionStatus::Running {
            record.stop_date = Some(now);
            record.pending_tasks.clear();
        }
        outcome
    }

    /// Replays an execution with its answered tokens until it ends or parks again.
    pub async fn resume(&self, execution_arn: &str) -> Result<ExecutionReport, EngineError> {
        self.rerun(execution_arn, false).await
    }

    /// Re-runs a parked execution whose map run has a child that just ended. When another
    /// run holds it, that run is asked to look again before it lets go; if it let go meanwhile,
    /// this one takes over.
    async fn continue_execution(&self, execution_arn: &str) -> Result<ExecutionReport, EngineError> {
        match self.rerun(execution_arn, true).await {
            Err(EngineError::Busy { .. }) => {
                self.store.request_wakeup(execution_arn)?;
                match self.rerun(execution_arn, true).await {
                    Err(EngineError::Busy { .. }) => Ok(ExecutionReport {
                        execution_arn: execution_arn.to_string(),
                        outcome: outcome_of(&self.describe_execution(execution_arn)?),
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn rerun(&self, execution_arn: &str, child_ended: bool) -> Result<ExecutionReport, EngineError> {
        loop {
            let mut record = self
                .store
                .load(execution_arn)?
                .ok_or_else(|| EngineError::ExecutionDoesNotExist(execution_arn.to_string()))?;
            let answered = record.pending_tasks.iter().any(|p| p.answer.is_some());
            if record.status != ExecutionStatus::Running || !(answered || child_ended) {
                return Ok(ExecutionReport {
                    execution_arn: record.execution_arn.clone(),
                    outcome: outcome_of(&record),
                });
            }
            self.claim(execution_arn)?;
            // What was saved between the load and the claim counts too.
            if let Some(latest) = self.store.load(execution_arn)?
                && latest.version != record.version
            {
                self.store.release_lease(execution_arn, &self.owner)?;
                continue;
            }
            for task in &record.pending_tasks {
                if let Some(answer) = &task.answer {
                    record.replay.insert(task.answer_key.clone(), answer.clone());
                }
            }
            match self.run_stored(execution_arn, record, false).await {
                Err(EngineError::Store(StoreError::Conflict(_))) => continue,
                other => return other,
            }
        }
    }

    pub fn describe_execution(&self, execution_arn: &str) -> Result<ExecutionRecord, EngineError> {
        self.store
            .load(execution_arn)?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(execution_arn.to_string()))
    }

    pub fn list_executions(&self) -> Result<Vec<ExecutionSummary>, EngineError> {
        Ok(self.store.list()?)
    }

    /// The map runs an execution started (`ListMapRuns`).
    pub fn list_map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>, EngineError> {
        Ok(self.store.map_runs(execution_arn)?)
    }

    /// `DescribeMapRun`.
    pub fn describe_map_run(&self, map_run_arn: &str) -> Result<Option<MapRunRecord>, EngineError> {
        Ok(self.store.map_run(map_run_arn)?)
    }

    /// A map run's child executions, in item order (`ListExecutions --map-run-arn`).
    pub fn list_children(&self, map_run_arn: &str) -> Result<Vec<ExecutionSummary>, EngineError> {
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            let page = self.store.children(map_run_arn, from, 1000)?;
            let Some(last) = page.last().and_then(|c| c.parent.as_ref()) else {
                break;
            };
            from = last.index + 1;
            out.extend(page.iter().map(ExecutionSummary::from));
        }
        Ok(out)
    }

    pub fn execution_history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, EngineError> {
        Ok(self.store.history(execution_arn)?)
    }
}

/// The outcome a stored record shows.
pub fn outcome_of(record: &ExecutionRecord) -> ExecutionOutcome {
    match record.status {
        ExecutionStatus::Succeeded => ExecutionOutcome::Succeeded {
            output: record.output.clone().unwrap_or(Value::Null),
        },
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => ExecutionOutcome::Failed {
            error: record.error.clone(),
            cause: record.cause.clone(),
        },
        ExecutionStatus::Running => ExecutionOutcome::Waiting {
            task_tokens: record
                .pending_tasks
                .iter()
                .filter(|p| p.answer.is_none())
                .map(|p| p.token.clone())
                .collect(),
        },
    }
}
