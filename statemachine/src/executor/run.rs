//! One run of an execution: walks scopes state by state, records history, and keeps what a
//! later resume needs to replay it (task results, tokens, wake-up times).

use super::ExecutionInfo;
use crate::clock::Clock;
use crate::env::{ContextSource, Env, EvalError, RandomSource};
use crate::errors::StateFailure;
use crate::history::{EventDetails, EventType, History};
use crate::json::{PAYLOAD_LIMIT_BYTES, serialized_len};
use crate::mock::MockedTestCase;
use crate::model::{Scope, StateMachine};
use crate::store::{PendingTask, Recorded, ReplayLog};
use crate::task::TaskRegistry;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Everything one run of an execution shares across its branches.
pub(crate) struct Run {
    /// The engine running it: its store, object storage and handlers (a Distributed Map
    /// runs its children through it).
    pub engine: super::Engine,
    /// This run redrives the execution: map runs rerun their failed children.
    pub redriving: bool,
    /// This run holds a lease and keeps checkpoints (top-level runs; children are kept by
    /// their map run).
    pub checkpoints: bool,
    pub machine: StateMachine,
    pub info: Arc<ExecutionInfo>,
    pub registry: Arc<TaskRegistry>,
    pub clock: Arc<dyn Clock>,
    pub mocks: Option<Arc<MockedTestCase>>,
    pub history: Mutex<History>,
    pub replay: Mutex<ReplayLog>,
    pub parked: Mutex<Vec<PendingTask>>,
    pub mock_invocations: Mutex<HashMap<String, u64>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A sequential line of execution: the top level, one Parallel branch or one Map iteration.
pub(crate) struct Thread {
    /// Identifies the thread deterministically, so a replay finds its recorded results.
    pub path: String,
    path_hash: u64,
    /// How many states this thread has entered.
    pub seq: u64,
    /// The event that entered the current state.
    pub entered_event: u64,
    pub vars: Arc<Map<String, Value>>,
}

impl Thread {
    pub fn new(path: String, vars: Arc<Map<String, Value>>) -> Self {
        let path_hash = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Self {
            path,
            path_hash,
            seq: 0,
            entered_event: 0,
            vars,
        }
    }

    /// The replay key of the current state visit.
    pub fn call_id(&self) -> String {
        format!("{}/{}", self.path, self.seq)
    }
}

/// How a scope ended.
pub(crate) enum ScopeEnd {
    Succeeded(Value),
    /// A task is waiting for its token (here or in a nested branch).
    Parked,
}

/// What a state did.
pub(crate) enum Step<'a> {
    Next(&'a str, Value),
    End(Value),
    Parked,
}

/// One entry into a state, as the state's code sees it.
pub(crate) struct Visit<'a> {
    pub name: &'a str,
    pub entered_event: u64,
    pub entered_time: DateTime<Utc>,
    pub retry_count: u64,
    pub random: RandomSource,
}

impl Visit<'_> {
    /// Turns an evaluation error into the `States.Runtime` failure AWS reports.
    pub fn runtime(&self, error: EvalError) -> StateFailure {
        StateFailure::runtime(self.cause(&error.0))
    }

    /// A JSONata field that could not be evaluated (`States.QueryEvaluationError`).
    pub fn query_error(&self, message: impl std::fmt::Display) -> StateFailure {
        StateFailure::new(crate::errors::names::QUERY_EVALUATION_ERROR, self.cause(message))
    }

    fn cause(&self, message: impl std::fmt::Display) -> String {
        format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {message}",
            self.name, self.entered_event
        )
    }
}

/// The context object (`$$`) of a state visit, built only when a path reads it.
pub(crate) struct ContextObject<'a> {
    pub run: &'a Run,
    pub visit: &'a Visit<'a>,
    pub task_token: Option<&'a str>,
    pub map_item: Option<(usize, &'a Value)>,
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// TestState's `context` laid over the Context object: each section (`Execution`, `State`,
/// `Map`, ...) key by key, each value whole (so `Execution.Input` is the one given, not a blend).
fn merge_into(target: &mut Value, overrides: &Value) {
    let (Value::Object(target), Value::Object(overrides)) = (target, overrides) else {
        return;
    };
    for (section, fields) in overrides {
        match (target.get_mut(section), fields) {
            (Some(Value::Object(existing)), Value::Object(fields)) => {
                for (key, value) in fields {
                    existing.insert(key.clone(), value.clone());
                }
            }
            _ => {
                target.insert(section.clone(), fields.clone());
            }
        }
    }
}

impl ContextSource for ContextObject<'_> {
    fn context_value(&self) -> Value {
        let info = &self.run.info;
        let mut ctx = json!({
            "Execution": {
                "Id": info.execution_arn,
                "Input": info.input,
                "Name": info.name,
                "RoleArn": info.role_arn,
                "StartTime": timestamp(info.start_time),
                "RedriveCount": info.redrive_count
            },
            "State": {
                "EnteredTime": timestamp(self.visit.entered_time),
                "Name": self.visit.name,
                "RetryCount": self.visit.retry_count
            },
            "StateMachine": {"Id": info.state_machine_arn, "Name": info.state_machine_name}
        });
        if let Some(token) = self.task_token {
            ctx["Task"] = json!({ "Token": token });
        }
        if let Some((index, value)) = self.map_item {
            ctx["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        if let Some(overrides) = self.run.mocks.as_ref().and_then(|m| m.context.as_ref()) {
            merge_into(&mut ctx, overrides);
        }
        ctx
    }
}

impl Run {
    /// Stores the replay log and the history events since the last checkpoint, so that a
    /// crash from here on loses nothing before this point.
    pub fn checkpoint(&self) {
        if !self.checkpoints {
            return;
        }
        let replay = lock(&self.replay).clone();
        let events = {
            let mut history = lock(&self.history);
            let from = history.checkpointed.min(history.events.len());
            history.checkpointed = history.events.len();
            history.events[from..].to_vec()
        };
        if let Err(e) = self
            .engine
            .store()
            .checkpoint(&self.info.execution_arn, &replay, &events)
        {
            tracing::warn!(execution = %self.info.execution_arn, error = %e, "could not checkpoint the execution");
        }
    }

    pub fn record(&self, event_type: EventType, details: EventDetails) -> Result<u64, StateFailure> {
        let now = self.clock.now();
        lock(&self.history).push(event_type, details, now).map_err(|limit| {
            StateFailure::runtime(format!(
                "The execution reached the maximum number of history events ({limit})."
            ))
        })
    }

    pub fn recorded(&self, key: &str) -> Option<Recorded> {
        lock(&self.replay).get(key).cloned()
    }

    pub fn remember(&self, key: String, value: Recorded) {
        lock(&self.replay).insert(key, value);
    }

    /// Sleeps until the wake-up time recorded under `key`, recording `wake_at` on first run.
    pub async fn sleep_recorded(&self, key: String, wake_at: DateTime<Utc>) {
        let wake_at = match self.recorded(&key) {
            Some(Recorded::WakeAt(at)) => at,
            _ => {
                self.remember(key, Recorded::WakeAt(wake_at));
                wake_at
            }
        };
        self.clock.sleep_until(wake_at).await;
    }

    /// Builds the evaluation environment of a visit and runs `f` in it.
    pub fn with_env<R>(
        &self,
        visit: &Visit<'_>,
        thread: &Thread,
        input: &Value,
        task_token: Option<&str>,
        f: impl FnOnce(&Env<'_>) -> R,
    ) -> R {
        let ctx = ContextObject {
            run: self,
            visit,
            task_token,
            map_item: None,
        };
        let env = Env {
            input,
            vars: &thread.vars,
            context: &ctx,
            random: &visit.random,
        };
        f(&env)
    }

    /// Runs a scope from its StartAt until it ends, fails or parks.
    pub fn run_scope<'a>(
        &'a self,
        scope: &'a Scope,
        input: Value,
        thread: &'a mut Thread,
    ) -> BoxFuture<'a, Result<ScopeEnd, StateFailure>> {
        Box::pin(async move {
            let mut name: &str = &scope.start_at;
            let mut input = input;
            loop {
                let state = scope
                    .states
                    .get(name)
                    .ok_or_else(|| StateFailure::runtime(format!("the state '{name}' does not exist")))?;
                thread.seq += 1;
                let type_name = state.type_name();
                let entered_event = self.record(
                    EventType::entered(type_name),
                    EventDetails {
                        name: Some(name.to_string()),
                        input: Some(input.clone()),
                        ..Default::default()
                    },
                )?;
                thread.entered_event = entered_event;
                let visit = Visit {
                    name,
                    entered_event,
                    entered_time: self.clock.now(),
                    retry_count: 0,
                    random: RandomSource::new(
                        self.info.seed
                            ^ thread.path_hash.rotate_left(17)
                            ^ thread.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    ),
                };
                let step = crate::states::run_state(self, state, &visit, input, thread).await?;
                let (next, output) = match step {
                    Step::Parked => return Ok(ScopeEnd::Parked),
                    Step::Next(next, output) => (Some(next), output),
                    Step::End(output) => (None, output),
                };
                if serialized_len(&output) > PAYLOAD_LIMIT_BYTES {
                    return Err(StateFailure::new(
                        crate::errors::names::DATA_LIMIT_EXCEEDED,
                        format!(
                            "The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."
                        ),
                    ));
                }
                if let Some(exited) = EventType::exited(type_name) {
                    self.record(
                        exited,
                        EventDetails {
                            name: Some(name.to_string()),
                            output: Some(output.clone()),
                            ..Default::default()
                        },
                    )?;
                }
                match next {
                    Some(next) => {
                        name = next;
                        input = output;
                    }
                    None => return Ok(ScopeEnd::Succeeded(output)),
                }
            }
        })
    }
}
