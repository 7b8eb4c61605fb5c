//! The state types, each in its own module, and what they share: input and output
//! processing in AWS's order (InputPath, Parameters, ResultSelector, ResultPath, OutputPath),
//! `Assign`, and Retry/Catch around the states that can fail.

pub(crate) mod choice;
mod distributed;
pub(crate) mod jsonata;
mod map;
mod parallel;
mod simple;
pub(crate) mod task;

use crate::env::RandomSource;
use crate::errors::StateFailure;
use crate::executor::run::{Run, Step, Thread, Visit};
use crate::model::retry::{Catcher, Recovery, Retrier, recover};
use crate::model::{Flow, PathField, State, Transition};
use crate::payload::Template;
use serde_json::{Map, Value};
use std::sync::Arc;

pub(crate) async fn run_state<'a>(
    run: &'a Run,
    state: &'a State,
    visit: &Visit<'a>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    match state {
        State::Pass(s) if let Some(fields) = &s.jsonata => jsonata::pass(run, &s.flow, fields, visit, input, thread),
        State::Choice(s) if let Some(fields) = &s.jsonata => jsonata::choice(run, s, fields, visit, input, thread),
        State::Wait(s) if let Some(fields) = &s.jsonata => {
            jsonata::wait(run, &s.flow, fields, visit, input, thread).await
        }
        State::Succeed(s) if let Some(fields) = &s.jsonata => jsonata::succeed(run, fields, visit, input, thread),
        State::Fail(s) if let Some(fields) = &s.jsonata => Err(jsonata::fail(run, s, fields, visit, input, thread)),
        State::Pass(s) => simple::pass(run, s, visit, input, thread),
        State::Choice(s) => choice::run(run, s, visit, input, thread),
        State::Wait(s) => simple::wait(run, s, visit, input, thread).await,
        State::Succeed(s) => simple::succeed(run, s, visit, input, thread),
        State::Fail(s) => Err(simple::fail(run, s, visit, input, thread)),
        State::Task(s) => with_recovery(run, Retryable::Task(s), visit, input, thread).await,
        State::Parallel(s) => with_recovery(run, Retryable::Parallel(s), visit, input, thread).await,
        State::Map(s) => with_recovery(run, Retryable::Map(s), visit, input, thread).await,
    }
}

/// A state with Retry and Catch.
#[derive(Clone, Copy)]
enum Retryable<'a> {
    Task(&'a crate::model::TaskState),
    Parallel(&'a crate::model::ParallelState),
    Map(&'a crate::model::MapState),
}

impl<'a> Retryable<'a> {
    fn rules(self) -> (&'a [Retrier], &'a [Catcher]) {
        match self {
            Retryable::Task(s) => (&s.retry, &s.catch),
            Retryable::Parallel(s) => (&s.retry, &s.catch),
            Retryable::Map(s) => (&s.retry, &s.catch),
        }
    }
}

async fn with_recovery<'a>(
    run: &'a Run,
    state: Retryable<'a>,
    visit: &Visit<'a>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let (retry, catch) = state.rules();
    let mut attempts = vec![0u64; retry.len()];
    let mut retry_count = 0u64;
    loop {
        let attempt_visit = Visit {
            name: visit.name,
            entered_event: visit.entered_event,
            entered_time: visit.entered_time,
            retry_count,
            random: RandomSource::new(visit.random.next_u64()),
        };
        let result = match state {
            Retryable::Task(s) => task::attempt(run, s, &attempt_visit, input.clone(), thread).await,
            Retryable::Parallel(s) => parallel::attempt(run, s, &attempt_visit, input.clone(), thread).await,
            Retryable::Map(s) => map::attempt(run, s, &attempt_visit, input.clone(), thread).await,
        };
        let failure = match result {
            Ok(step) => return Ok(step),
            Err(failure) => failure,
        };
        // TestState decides from the error its rules saw, whether or not an event shows it.
        if inspecting(run) {
            inspect(run, visit, FAILURE_INSPECTED, &failure.to_output());
        }
        match recover(retry, catch, &failure, &attempts) {
            Recovery::Retry {
                retrier,
                delay_seconds,
                jitter,
            } => {
                attempts[retrier] += 1;
                let delay = if jitter {
                    delay_seconds * (visit.random.next_u64() as f64 / u64::MAX as f64)
                } else {
                    delay_seconds
                };
                let wake = run.clock.now() + chrono::Duration::milliseconds((delay * 1000.0) as i64);
                run.sleep_recorded(format!("{}#r{retry_count}", thread.call_id()), wake)
                    .await;
                retry_count += 1;
            }
            Recovery::Catch(catcher) => {
                let error_output = failure.to_output();
                if let Some(fields) = &catcher.jsonata {
                    let output = jsonata::caught(run, visit, thread, fields, &input, error_output)?;
                    return Ok(Step::Next(&catcher.next, output));
                }
                let vars = assign(run, visit, thread, catcher.assign.as_ref(), &error_output)?;
                let output = result_path(visit, &catcher.result_path, input, error_output)?;
                apply_vars(thread, vars);
                return Ok(Step::Next(&catcher.next, output));
            }
            Recovery::Fail => return Err(failure),
        }
    }
}

/// InputPath (or OutputPath): absent keeps the value, null gives `{}`.
pub(crate) fn select(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    field: &PathField,
    value: Value,
) -> Result<Value, StateFailure> {
    match field {
        PathField::Default => Ok(value),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(path) => run
            .with_env(visit, thread, &value, None, |env| {
                env.require(path).map(|v| v.into_owned())
            })
            .map_err(|e| visit.runtime(e)),
    }
}

/// InputPath applied to a state's input, recorded for an inspecting engine.
pub(crate) fn select_input(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    field: &PathField,
    input: Value,
) -> Result<Value, StateFailure> {
    let effective = select(run, visit, thread, field, input)?;
    inspect(run, visit, "afterInputPath", &effective);
    Ok(effective)
}

/// Where a state's error, as its Retry and Catch saw it, is inspected.
pub(crate) const FAILURE_INSPECTED: &str = "@failure";

/// The mocked answer to this invocation of the state, if its test case mocks it.
pub(crate) fn mocked_answer(run: &Run, visit: &Visit<'_>) -> Option<crate::mock::MockedAnswer> {
    let mocks = run.mocks.as_ref()?;
    let mut counts = crate::executor::run::lock(&run.mock_invocations);
    let n = counts.entry(visit.name.to_string()).or_insert(0);
    let answer = mocks.answer(visit.name, *n).cloned();
    *n += 1;
    answer
}

/// A Map or Parallel state's whole result, when TestState mocks it: the result, or the error
/// the state fails with.
pub(crate) fn mocked_whole(run: &Run, visit: &Visit<'_>) -> Option<Result<Value, StateFailure>> {
    if !run.mocks.as_ref().is_some_and(|m| m.whole_states) {
        return None;
    }
    mocked_answer(run, visit).map(|answer| match answer {
        crate::mock::MockedAnswer::Return(value) => {
            inspect(run, visit, "result", &value);
            Ok(value)
        }
        crate::mock::MockedAnswer::Throw(failure) => Err(failure),
    })
}

/// Whether a TestState inspector records this run's intermediate values (so they are only
/// built when someone reads them).
pub(crate) fn inspecting(run: &Run) -> bool {
    run.engine.inspector.is_some()
}

/// Records `value` as the state's `field` when the engine inspects (TestState).
pub(crate) fn inspect(run: &Run, visit: &Visit<'_>, field: &str, value: &Value) {
    if let Some(inspector) = &run.engine.inspector {
        inspector.record(visit.name, field, value);
    }
}

/// ResultPath: where the result goes inside the state's raw input.
pub(crate) fn result_path(
    visit: &Visit<'_>,
    field: &PathField,
    raw_input: Value,
    result: Value,
) -> Result<Value, StateFailure> {
    match field {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw_input),
        PathField::Path(path) => path
            .write_into(raw_input, result)
            .map_err(|e| visit.runtime(crate::env::EvalError(e))),
    }
}

/// Evaluates `Assign` with `$` bound to `value`; the variables change only once the state's
/// output has been computed (see [`apply_vars`]).
pub(crate) fn assign(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    template: Option<&Template>,
    value: &Value,
) -> Result<Option<Map<String, Value>>, StateFailure> {
    let Some(template) = template else {
        return Ok(None);
    };
    let assigned = run
        .with_env(visit, thread, value, None, |env| template.eval(env))
        .map_err(|e| visit.runtime(e))?;
    match assigned {
        Value::Object(map) => within_assign_limit(visit, map).map(Some),
        _ => Ok(None),
    }
}

/// The most bytes one state's `Assign` may give its variables, as on AWS.
pub(crate) const ASSIGN_LIMIT_BYTES: usize = 256 * 1024;

/// `vars`, or `States.DataLimitExceeded` when together they are over [`ASSIGN_LIMIT_BYTES`].
pub(crate) fn within_assign_limit(
    visit: &Visit<'_>,
    vars: Map<String, Value>,
) -> Result<Map<String, Value>, StateFailure> {
    let bytes: usize = vars
        .iter()
        .map(|(name, value)| name.len() + crate::json::serialized_len(value))
        .sum();
    if bytes > ASSIGN_LIMIT_BYTES {
        return Err(StateFailure::new(
            crate::errors::names::DATA_LIMIT_EXCEEDED,
            format!(
                "The variables assigned by the state '{}' are {bytes} bytes, over the limit of {ASSIGN_LIMIT_BYTES} bytes for one Assign.",
                visit.name
            ),
        ));
    }
    Ok(vars)
}

pub(crate) fn apply_vars(thread: &mut Thread, vars: Option<Map<String, Value>>) {
    if let Some(vars) = vars {
        Arc::make_mut(&mut thread.vars).extend(vars);
    }
}

/// What Pass, Task, Parallel and Map do with a result: ResultSelector, Assign, ResultPath,
/// OutputPath, then the transition.
pub(crate) struct Finish<'a> {
    pub flow: &'a Flow,
    pub result_selector: Option<&'a Template>,
    pub result_path: &'a PathField,
    pub output_path: &'a PathField,
    pub assign: Option<&'a Template>,
}

impl<'a> Finish<'a> {
    /// The result through the state's output fields: `Output` and `Assign` for a JSONata state
    /// (`jsonata`, with `$states.input` bound to `input`), else these JSONPath fields.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_in(
        self,
        run: &Run,
        visit: &Visit<'_>,
        thread: &mut Thread,
        jsonata: Option<&crate::model::jsonata::JsonataFields>,
        raw_input: Value,
        input: &Value,
        result: Value,
    ) -> Result<Step<'a>, StateFailure> {
        match jsonata {
            Some(fields) => jsonata::finish_with_result(run, visit, thread, self.flow, fields, input, result),
            None => self.apply(run, visit, thread, raw_input, result),
        }
    }

    pub fn apply(
        self,
        run: &Run,
        visit: &Visit<'_>,
        thread: &mut Thread,
        raw_input: Value,
        result: Value,
    ) -> Result<Step<'a>, StateFailure> {
        let result = match self.result_selector {
            Some(selector) => run
                .with_env(visit, thread, &result, None, |env| selector.eval(env))
                .map_err(|e| visit.runtime(e))?,
            None => result,
        };
        inspect(run, visit, "afterResultSelector", &result);
        let vars = assign(run, visit, thread, self.assign, &result)?;
        let output = result_path(visit, self.result_path, raw_input, result)?;
        inspect(run, visit, "afterResultPath", &output);
        let output = select(run, visit, thread, self.output_path, output)?;
        apply_vars(thread, vars);
        if self.assign.is_some() {
            inspect(run, visit, "variables", &Value::Object((*thread.vars).clone()));
        }
        Ok(match self.flow.transition() {
            Transition::Next(next) => Step::Next(next, output),
            Transition::End => Step::End(output),
        })
    }
}

/// The raw input is kept only when ResultPath will need it.
pub(crate) fn keep_raw(result_path: &PathField, input: &Value) -> Value {
    match result_path {
        PathField::Default => Value::Null,
        _ => input.clone(),
    }
}
