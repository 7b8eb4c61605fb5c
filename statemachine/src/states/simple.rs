//! Pass, Wait, Succeed and Fail.

use super::{Finish, keep_raw, select, select_input};
use crate::env::EvalError;
use crate::errors::StateFailure;
use crate::executor::run::{Run, Step, Thread, Visit};
use crate::model::{FailState, PassState, SucceedState, Transition, WaitState};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

pub(super) fn pass<'a>(
    run: &Run,
    state: &'a PassState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let raw = keep_raw(&state.result_path, &input);
    let effective = select_input(run, visit, thread, &state.input_path, input)?;
    let result = match (&state.result, &state.parameters) {
        (Some(result), _) => result.clone(),
        (None, Some(parameters)) => {
            let parameters = run
                .with_env(visit, thread, &effective, None, |env| parameters.eval(env))
                .map_err(|e| visit.runtime(e))?;
            super::inspect(run, visit, "afterParameters", &parameters);
            parameters
        }
        (None, None) => effective,
    };
    Finish {
        flow: &state.flow,
        result_selector: None,
        result_path: &state.result_path,
        output_path: &state.output_path,
        assign: state.assign.as_ref(),
    }
    .apply(run, visit, thread, raw, result)
}

pub(super) fn succeed<'a>(
    run: &Run,
    state: &'a SucceedState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let effective = select_input(run, visit, thread, &state.input_path, input)?;
    Ok(Step::End(select(run, visit, thread, &state.output_path, effective)?))
}

pub(super) fn fail(run: &Run, state: &FailState, visit: &Visit<'_>, input: Value, thread: &Thread) -> StateFailure {
    let dynamic = |expr: &crate::payload::Expr, field: &str| -> Result<String, StateFailure> {
        let value = run
            .with_env(visit, thread, &input, None, |env| expr.eval(env))
            .map_err(|e| visit.runtime(e))?;
        match value {
            Value::String(s) => Ok(s),
            other => Err(visit.runtime(EvalError(format!(
                "The {field} field must resolve to a string, got {}",
                crate::json::to_compact(&other)
            )))),
        }
    };
    let error = match (&state.error, &state.error_path) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(expr)) => match dynamic(expr, "ErrorPath") {
            Ok(e) => Some(e),
            Err(failure) => return failure,
        },
        (None, None) => None,
    };
    let cause = match (&state.cause, &state.cause_path) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(expr)) => match dynamic(expr, "CausePath") {
            Ok(c) => Some(c),
            Err(failure) => return failure,
        },
        (None, None) => None,
    };
    StateFailure { error, cause }
}

pub(super) async fn wait<'a>(
    run: &Run,
    state: &'a WaitState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let effective = select_input(run, visit, thread, &state.input_path, input)?;
    let now = run.clock.now();
    let wake_at: DateTime<Utc> = if let Some(seconds) = state.seconds {
        now + Duration::seconds(seconds.0.min(i64::MAX as u64 / 1000) as i64)
    } else if let Some(ts) = &state.timestamp {
        crate::model::parse_timestamp(ts)
            .ok_or_else(|| visit.runtime(EvalError(format!("'{ts}' is not a valid timestamp"))))?
    } else if let Some(path) = &state.seconds_path {
        let value = run
            .with_env(visit, thread, &effective, None, |env| {
                env.require(path).map(|v| v.into_owned())
            })
            .map_err(|e| visit.runtime(e))?;
        let seconds = wait_seconds(&value).map_err(|reason| {
            visit.runtime(EvalError(format!(
                "The SecondsPath parameter {reason}: {} == {}",
                path.text(),
                crate::json::to_compact(&value)
            )))
        })?;
        now + Duration::seconds(seconds)
    } else if let Some(path) = &state.timestamp_path {
        let value = run
            .with_env(visit, thread, &effective, None, |env| {
                env.require(path).map(|v| v.into_owned())
            })
            .map_err(|e| visit.runtime(e))?;
        value
            .as_str()
            .and_then(crate::model::parse_timestamp)
            .ok_or_else(|| {
                visit.runtime(EvalError(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {}",
                    path.text(),
                    crate::json::to_compact(&value)
                )))
            })?
    } else {
        now
    };
    run.sleep_recorded(format!("{}#wait", thread.call_id()), wake_at).await;
    let vars = super::assign(run, visit, thread, state.assign.as_ref(), &effective)?;
    let output = select(run, visit, thread, &state.output_path, effective)?;
    super::apply_vars(thread, vars);
    Ok(match state.flow.transition() {
        Transition::Next(next) => Step::Next(next, output),
        Transition::End => Step::End(output),
    })
}

/// Seconds from a SecondsPath value: a non-negative whole number.
fn wait_seconds(value: &Value) -> Result<i64, &'static str> {
    let Some(n) = value.as_number() else {
        return Err("cannot be parsed as a long value");
    };
    if let Some(i) = n.as_i64() {
        return if i < 0 {
            Err("references a negative value")
        } else {
            Ok(i.min(i64::MAX / 1000))
        };
    }
    if n.as_u64().is_some() {
        return Ok(i64::MAX / 1000);
    }
    Err("cannot be parsed as a long value")
}
