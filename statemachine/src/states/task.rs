//! The Task state: resolves the resource to a handler (or a mocked response), enforces
//! TimeoutSeconds, and for `.waitForTaskToken` hands out a token and parks.

use super::{Finish, select_input};
use crate::env::EvalError;
use crate::errors::{StateFailure, names};
use crate::executor::run::{Run, Step, Thread, Visit, lock};
use crate::history::{EventDetails, EventType};
use crate::json::{PAYLOAD_LIMIT_BYTES, serialized_len};
use crate::mock::MockedAnswer;
use crate::model::TaskState;
use crate::store::{PendingTask, Recorded};
use crate::task::{Invocation, TaskContext, lambda_invoke_result, split_pattern};
use base64::Engine as _;
use serde_json::Value;

/// AWS's default task timeout when TimeoutSeconds is absent.
const DEFAULT_TIMEOUT_SECONDS: u64 = 99_999_999;

pub(super) async fn attempt<'a>(
    run: &Run,
    state: &'a TaskState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let effective = select_input(run, visit, thread, &state.input_path, input.clone())?;
    let call = format!("{}#a{}", thread.call_id(), visit.retry_count);
    let (_, pattern) = split_pattern(&state.resource);
    // An activity's worker answers the token, as a `.waitForTaskToken` integration's does.
    let waits_for_token = pattern == Some("waitForTaskToken") || crate::task::is_activity(&state.resource);
    let token = if waits_for_token {
        Some(match run.recorded(&format!("{call}!token")) {
            Some(Recorded::Token(t)) => t,
            _ => new_task_token(),
        })
    } else {
        None
    };
    let parameters = match (&state.jsonata, &state.parameters) {
        (Some(fields), _) => super::jsonata::arguments(run, visit, thread, fields, &effective, token.as_deref())?,
        (None, Some(p)) => run
            .with_env(visit, thread, &effective, token.as_deref(), |env| p.eval(env))
            .map_err(|e| visit.runtime(e))?,
        (None, None) => effective,
    };
    let after = if state.jsonata.is_some() {
        "afterArguments"
    } else {
        "afterParameters"
    };
    super::inspect(run, visit, after, &parameters);
    let (timeout, heartbeat) = match &state.jsonata {
        Some(fields) if fields.timeout_seconds.is_none() && fields.heartbeat_seconds.is_none() => {
            (DEFAULT_TIMEOUT_SECONDS, None)
        }
        Some(fields) => {
            let bound = super::jsonata::bound(run, visit, thread, &input, super::jsonata::Extra::default());
            let timeout =
                super::jsonata::whole_seconds(visit, fields.timeout_seconds.as_ref(), "TimeoutSeconds", &bound, true)?;
            let heartbeat = super::jsonata::whole_seconds(
                visit,
                fields.heartbeat_seconds.as_ref(),
                "HeartbeatSeconds",
                &bound,
                true,
            )?;
            (timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS), heartbeat)
        }
        None => jsonpath_timeouts(run, state, visit, thread, &input)?,
    };
    run_task(
        run, state, visit, thread, input, call, token, parameters, timeout, heartbeat,
    )
    .await
}

/// TimeoutSeconds and HeartbeatSeconds of a JSONPath Task, given or by their Path forms.
fn jsonpath_timeouts(
    run: &Run,
    state: &TaskState,
    visit: &Visit<'_>,
    thread: &Thread,
    input: &Value,
) -> Result<(u64, Option<u64>), StateFailure> {
    let timeout = seconds_field(
        run,
        visit,
        thread,
        input,
        state.timeout_seconds.map(|s| s.0),
        state.timeout_seconds_path.as_ref(),
        "TimeoutSecondsPath",
    )?
    .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let heartbeat = seconds_field(
        run,
        visit,
        thread,
        input,
        state.heartbeat_seconds.map(|s| s.0),
        state.heartbeat_seconds_path.as_ref(),
        "HeartbeatSecondsPath",
    )?;
    Ok((timeout, heartbeat))
}

/// Schedules, invokes (or parks) and finishes the task once its input and limits are known.
#[allow(clippy::too_many_arguments)]
async fn run_task<'a>(
    run: &Run,
    state: &'a TaskState,
    visit: &Visit<'_>,
    thread: &mut Thread,
    input: Value,
    call: String,
    token: Option<String>,
    parameters: Value,
    timeout: u64,
    heartbeat: Option<u64>,
) -> Result<Step<'a>, StateFailure> {
    let activity = crate::task::is_activity(&state.resource);
    let scheduled = if activity {
        // AWS shows an activity's input, limits and no service-integration fields.
        EventDetails {
            resource: Some(state.resource.clone()),
            input: Some(parameters.clone()),
            timeout_in_seconds: (timeout != DEFAULT_TIMEOUT_SECONDS).then_some(timeout),
            heartbeat_in_seconds: heartbeat,
            ..Default::default()
        }
    } else {
        EventDetails {
            resource: Some(state.resource.clone()),
            resource_type: Some(resource_type(&state.resource)),
            parameters: Some(parameters.clone()),
            ..Default::default()
        }
    };
    let events = TaskEvents::of(activity);
    run.record(events.scheduled, scheduled)?;
    let outcome = invoke(
        run,
        state,
        visit,
        &call,
        token.as_deref(),
        parameters,
        timeout,
        heartbeat,
    )
    .await?;
    let result = match outcome {
        None => return Ok(Step::Parked),
        Some(Ok(result)) => result,
        Some(Err(failure)) => {
            let event = if failure.error.as_deref() == Some(names::TIMEOUT) {
                events.timed_out
            } else {
                events.failed
            };
            run.record(
                event,
                EventDetails {
                    error: failure.error.clone(),
                    cause: failure.cause.clone(),
                    resource: Some(state.resource.clone()),
                    ..Default::default()
                },
            )?;
            return Err(failure);
        }
    };
    if serialized_len(&result) > PAYLOAD_LIMIT_BYTES {
        return Err(StateFailure::new(
            names::DATA_LIMIT_EXCEEDED,
            format!(
                "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                visit.name
            ),
        ));
    }
    run.record(
        events.succeeded,
        EventDetails {
            output: Some(result.clone()),
            resource: Some(state.resource.clone()),
            ..Default::default()
        },
    )?;
    let raw = input;
    if let Some(fields) = &state.jsonata {
        return super::jsonata::finish_with_result(run, visit, thread, &state.flow, fields, &raw, result);
    }
    Finish {
        flow: &state.flow,
        result_selector: state.result_selector.as_ref(),
        result_path: &state.result_path,
        output_path: &state.output_path,
        assign: state.assign.as_ref(),
    }
    .apply(run, visit, thread, raw, result)
}

/// Runs the task; `Ok(None)` means it parked waiting for its token.
#[allow(clippy::too_many_arguments)]
async fn invoke(
    run: &Run,
    state: &TaskState,
    visit: &Visit<'_>,
    call: &str,
    token: Option<&str>,
    parameters: Value,
    timeout: u64,
    heartbeat: Option<u64>,
) -> Result<Option<Result<Value, StateFailure>>, StateFailure> {
    let activity = crate::task::is_activity(&state.resource);
    let mocked = super::mocked_answer(run, visit);
    if let Some(Recorded::Failed(failure)) = run.recorded(&schedule_failed_key(call)) {
        return Err(schedule_failed(run, failure)?);
    }
    // A result recorded by an earlier run of this execution is replayed, not re-invoked.
    match run.recorded(call) {
        Some(Recorded::Succeeded(v)) => return Ok(Some(Ok(v))),
        Some(Recorded::Failed(f)) => return Ok(Some(Err(f))),
        _ => {}
    }
    if let Some(answer) = mocked {
        let result = match answer {
            MockedAnswer::Return(v) => Ok(v),
            MockedAnswer::Throw(f) => Err(f),
        };
        remember_result(run, call, &result);
        return Ok(Some(result));
    }
    let token_key = format!("{call}!token");
    let handler_already_ran = token.is_some() && matches!(run.recorded(&token_key), Some(Recorded::Token(_)));
    if !handler_already_ran {
        let resolved = run
            .registry
            .resolve(&state.resource, parameters)
            .map_err(|reason| visit.runtime(EvalError(reason)))?;
        if !activity {
            task_started(run, state)?;
        }
        let ctx = TaskContext {
            resource: state.resource.clone(),
            state_name: visit.name.to_string(),
            execution_arn: run.info.execution_arn.clone(),
            function_name: resolved.function_name.clone(),
            task_token: token.map(str::to_string),
        };
        let started = run.clock.now();
        let handler = resolved.handler.clone();
        let work = handler.invoke(ctx, resolved.input);
        let outcome = if run.clock.is_virtual() {
            let out = work.await;
            let elapsed = (run.clock.now() - started).num_milliseconds();
            if elapsed > (timeout as i64).saturating_mul(1000) {
                None
            } else {
                Some(out)
            }
        } else {
            tokio::time::timeout(std::time::Duration::from_secs(timeout), work)
                .await
                .ok()
        };
        let result: Result<Value, StateFailure> = match outcome {
            None => Err(StateFailure::new(
                names::TIMEOUT,
                format!("The task '{}' timed out after {timeout} seconds.", visit.name),
            )),
            Some(Err(failure)) if activity => {
                // The activity could not be queued: AWS records ActivityScheduleFailed, and a
                // replay of this execution shows the same (even if the activity exists by then).
                let failure = StateFailure::new(failure.error, failure.cause);
                run.remember(schedule_failed_key(call), Recorded::Failed(failure.clone()));
                return Err(schedule_failed(run, failure)?);
            }
            Some(Err(failure)) => Err(StateFailure::new(failure.error, failure.cause)),
            Some(Ok(value)) => Ok(match resolved.invocation {
                Invocation::LambdaInvoke => lambda_invoke_result(value, &uuid::Uuid::new_v4().to_string()),
                Invocation::Direct => value,
            }),
        };
        match (token, result) {
            (Some(token), Ok(_)) => run.remember(token_key, Recorded::Token(token.to_string())),
            (_, result) => {
                remember_result(run, call, &result);
                return Ok(Some(result));
            }
        }
    }
    if handler_already_ran && !activity {
        // The replayed run shows the same events as the first one.
        task_started(run, state)?;
    }
    let Some(token) = token else {
        return Err(visit.runtime(EvalError(
            "internal: a task without a token reached the callback wait".into(),
        )));
    };
    if activity {
        // Recorded by `Engine::activity_task_started` when a worker took the task.
        if let Some(Recorded::Succeeded(worker)) = run.recorded(&activity_started_key(call)) {
            run.record(
                EventType::ActivityStarted,
                EventDetails {
                    worker_name: worker.as_str().map(str::to_string),
                    ..Default::default()
                },
            )?;
        }
    } else {
        run.record(
            EventType::TaskSubmitted,
            EventDetails {
                resource: Some(state.resource.clone()),
                ..Default::default()
            },
        )?;
    }
    match run.recorded(&format!("{call}!answer")) {
        Some(Recorded::Succeeded(v)) => Ok(Some(Ok(v))),
        Some(Recorded::Failed(f)) => Ok(Some(Err(f))),
        _ => {
            let now = run.clock.now();
            lock(&run.parked).push(PendingTask {
                token: token.to_string(),
                answer_key: format!("{call}!answer"),
                state_name: visit.name.to_string(),
                resource: state.resource.clone(),
                scheduled_at: now,
                last_heartbeat: now,
                heartbeat_seconds: heartbeat,
                timeout_seconds: Some(timeout),
                answer: None,
            });
            Ok(None)
        }
    }
}

fn remember_result(run: &Run, call: &str, result: &Result<Value, StateFailure>) {
    let recorded = match result {
        Ok(v) => Recorded::Succeeded(v.clone()),
        Err(f) => Recorded::Failed(f.clone()),
    };
    run.remember(call.to_string(), recorded);
    // A top-level task's result is kept at once: a crash must not make it run again. (Nested
    // ones wait for the next heartbeat: checkpointing each would cost a quadratic amount.)
    if call.matches('/').count() == 1 {
        run.checkpoint();
    }
}

#[allow(clippy::too_many_arguments)]
fn seconds_field(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    input: &Value,
    fixed: Option<u64>,
    path: Option<&crate::path::JsonPath>,
    field: &str,
) -> Result<Option<u64>, StateFailure> {
    if let Some(fixed) = fixed {
        return Ok(Some(fixed));
    }
    let Some(path) = path else { return Ok(None) };
    let value = run
        .with_env(visit, thread, input, None, |env| {
            env.require(path).map(|v| v.into_owned())
        })
        .map_err(|e| visit.runtime(e))?;
    match crate::model::whole_seconds_of(&value).filter(|s| *s > 0) {
        Some(s) => Ok(Some(s)),
        None => Err(visit.runtime(EvalError(format!(
            "The {field} field refers to value {} which is not a positive integer: {}",
            crate::json::to_compact(&value),
            path.text()
        )))),
    }
}

/// The events a task records: an activity's (`ActivityScheduled`, `ActivityStarted` once a
/// worker took it, `ActivitySucceeded` / `-Failed` / `-TimedOut`) or a service integration's.
struct TaskEvents {
    scheduled: EventType,
    succeeded: EventType,
    failed: EventType,
    timed_out: EventType,
}

impl TaskEvents {
    fn of(activity: bool) -> TaskEvents {
        if activity {
            TaskEvents {
                scheduled: EventType::ActivityScheduled,
                succeeded: EventType::ActivitySucceeded,
                failed: EventType::ActivityFailed,
                timed_out: EventType::ActivityTimedOut,
            }
        } else {
            TaskEvents {
                scheduled: EventType::TaskScheduled,
                succeeded: EventType::TaskSucceeded,
                failed: EventType::TaskFailed,
                timed_out: EventType::TaskTimedOut,
            }
        }
    }
}

/// `TaskStarted` (a service integration's; an activity records `ActivityStarted` instead).
fn task_started(run: &Run, state: &TaskState) -> Result<u64, StateFailure> {
    run.record(
        EventType::TaskStarted,
        EventDetails {
            resource: Some(state.resource.clone()),
            ..Default::default()
        },
    )
}

/// Where the replay log keeps an activity task of `call` that could not be queued.
fn schedule_failed_key(call: &str) -> String {
    format!("{call}!schedule-failed")
}

/// Records `ActivityScheduleFailed` for `failure`, which the state then fails with.
fn schedule_failed(run: &Run, failure: StateFailure) -> Result<StateFailure, StateFailure> {
    run.record(
        EventType::ActivityScheduleFailed,
        EventDetails {
            error: failure.error.clone(),
            cause: failure.cause.clone(),
            ..Default::default()
        },
    )?;
    Ok(failure)
}

/// Where the replay log keeps the worker that took the activity task of `call`.
pub(crate) fn activity_started_key(call: &str) -> String {
    format!("{call}!activity-started")
}

/// The call an answer key (`<call>!answer`) belongs to.
pub(crate) fn call_of_answer_key(answer_key: &str) -> &str {
    answer_key.strip_suffix("!answer").unwrap_or(answer_key)
}

fn resource_type(resource: &str) -> String {
    // arn:aws:states:::lambda:invoke -> "lambda"; arn:aws:lambda:...:function:x -> "lambda"
    let parts: Vec<&str> = resource.split(':').collect();
    match parts.as_slice() {
        [_, _, "states", _, _, service, ..] => service.to_string(),
        [_, _, service, ..] => service.to_string(),
        _ => "unknown".to_string(),
    }
}

/// An unguessable task token.
fn new_task_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
