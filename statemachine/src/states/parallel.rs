//! The Parallel state: every branch gets the same input; the output is the array of branch
//! outputs in branch order. The first branch to fail fails the state (the others stop).

use super::{Finish, keep_raw, select_input};
use crate::errors::StateFailure;
use crate::executor::run::{Run, ScopeEnd, Step, Thread, Visit};
use crate::history::{EventDetails, EventType};
use crate::model::ParallelState;
use serde_json::Value;

pub(super) async fn attempt<'a>(
    run: &Run,
    state: &'a ParallelState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let raw = keep_raw(&state.result_path, &input);
    let effective = select_input(run, visit, thread, &state.input_path, input)?;
    let branch_input = match (&state.jsonata, &state.parameters) {
        (Some(fields), _) => super::jsonata::arguments(run, visit, thread, fields, &effective, None)?,
        (None, Some(p)) => run
            .with_env(visit, thread, &effective, None, |env| p.eval(env))
            .map_err(|e| visit.runtime(e))?,
        (None, None) => effective.clone(),
    };
    let after = if state.jsonata.is_some() {
        "afterArguments"
    } else {
        "afterParameters"
    };
    if state.jsonata.as_ref().is_some_and(|f| f.arguments.is_some()) || state.parameters.is_some() {
        super::inspect(run, visit, after, &branch_input);
    }
    run.record(EventType::ParallelStateStarted, EventDetails::default())?;
    if let Some(mocked) = super::mocked_whole(run, visit) {
        return match mocked {
            Ok(result) => {
                run.record(EventType::ParallelStateSucceeded, EventDetails::default())?;
                finish(run, state, visit, thread, raw, &effective, result)
            }
            Err(failure) => Err(failed(run, failure)?),
        };
    }
    let prefix = format!("{}#a{}", thread.call_id(), visit.retry_count);
    let branches = state.branches.iter().enumerate().map(|(i, branch)| {
        let mut branch_thread = Thread::new(format!("{prefix}/b{i}"), thread.vars.clone());
        let branch_input = branch_input.clone();
        async move { run.run_scope(branch, branch_input, &mut branch_thread).await }
    });
    let ends = match futures::future::try_join_all(branches).await {
        Ok(ends) => ends,
        Err(failure) => return Err(failed(run, failure)?),
    };
    let mut outputs = Vec::with_capacity(ends.len());
    for end in ends {
        match end {
            ScopeEnd::Succeeded(output) => outputs.push(output),
            ScopeEnd::Parked => return Ok(Step::Parked),
        }
    }
    run.record(EventType::ParallelStateSucceeded, EventDetails::default())?;
    finish(run, state, visit, thread, raw, &effective, Value::Array(outputs))
}

/// Records `ParallelStateFailed` for `failure`, which the state then fails with.
fn failed(run: &Run, failure: StateFailure) -> Result<StateFailure, StateFailure> {
    run.record(
        EventType::ParallelStateFailed,
        EventDetails {
            error: failure.error.clone(),
            cause: failure.cause.clone(),
            ..Default::default()
        },
    )?;
    Ok(failure)
}

/// `Output` and `Assign` (JSONata) or `ResultSelector`, `ResultPath`, `OutputPath` and
/// `Assign` (JSONPath) over the branches' outputs.
fn finish<'a>(
    run: &Run,
    state: &'a ParallelState,
    visit: &Visit<'_>,
    thread: &mut Thread,
    raw: Value,
    effective: &Value,
    result: Value,
) -> Result<Step<'a>, StateFailure> {
    Finish {
        flow: &state.flow,
        result_selector: state.result_selector.as_ref(),
        result_path: &state.result_path,
        output_path: &state.output_path,
        assign: state.assign.as_ref(),
    }
    .apply_in(run, visit, thread, state.jsonata.as_ref(), raw, effective, result)
}
