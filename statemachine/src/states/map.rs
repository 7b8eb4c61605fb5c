//! The inline Map state: items from ItemsPath, each shaped by ItemSelector, run through the
//! processor with MaxConcurrency; the output keeps input order. Tolerated failures apply when
//! configured. A Distributed Map hands over to [`super::distributed`].

use super::{Finish, keep_raw, select_input};
use crate::env::{Env, EvalError};
use crate::errors::{StateFailure, names};
use crate::executor::run::{ContextObject, Run, ScopeEnd, Step, Thread, Visit};
use crate::history::{EventDetails, EventType};
use crate::json::to_compact;
use crate::model::MapState;
use crate::path::JsonPath;
use futures::StreamExt;
use serde_json::{Map, Value};

/// How many failed iterations the state tolerates; `None` when no tolerance is configured.
pub(super) struct Tolerance {
    pub count: Option<u64>,
    pub percentage: Option<f64>,
}

impl Tolerance {
    fn configured(&self) -> bool {
        self.count.is_some() || self.percentage.is_some()
    }

    pub fn exceeded(&self, failed: u64, total: usize) -> bool {
        let by_count = self.count.is_some_and(|c| failed > c);
        let by_share = self
            .percentage
            .is_some_and(|p| total > 0 && (failed as f64) * 100.0 / (total as f64) > p);
        match (self.count, self.percentage) {
            (None, None) => failed > 0,
            _ => by_count || by_share,
        }
    }
}

/// A number read through a `...Path` field; strings holding numbers count, as on AWS.
fn path_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => to_compact(other),
    }
}

fn read_path(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    input: &Value,
    path: &JsonPath,
) -> Result<Value, StateFailure> {
    run.with_env(visit, thread, input, None, |env| {
        env.require(path).map(|v| v.into_owned())
    })
    .map_err(|e| visit.runtime(e))
}

pub(super) fn integer_from_path(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    input: &Value,
    path: &JsonPath,
    field: &str,
) -> Result<i64, StateFailure> {
    let value = read_path(run, visit, thread, input, path)?;
    path_number(&value)
        .filter(|n| n.fract() == 0.0)
        .map(|n| n as i64)
        .ok_or_else(|| {
            visit.runtime(EvalError(format!(
                "The {field} field refers to value \"{}\" which is not a valid integer: {}",
                shown(&value),
                path.text()
            )))
        })
}

/// A whole-number field given directly (`Field`) or by its Path form (`FieldPath`).
pub(super) fn integer_field(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    input: &Value,
    value: Option<u64>,
    path: Option<&JsonPath>,
    path_field: &str,
) -> Result<Option<i64>, StateFailure> {
    match (value, path) {
        (Some(n), _) => Ok(Some(n as i64)),
        (None, Some(path)) => integer_from_path(run, visit, thread, input, path, path_field).map(Some),
        (None, None) => Ok(None),
    }
}

pub(super) fn limits(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    thread: &Thread,
    input: &Value,
) -> Result<(usize, Tolerance), StateFailure> {
    let max_concurrency = integer_field(
        run,
        visit,
        thread,
        input,
        state.max_concurrency,
        state.max_concurrency_path.as_ref(),
        "MaxConcurrencyPath",
    )?
    .unwrap_or(0);
    if max_concurrency < 0 {
        return Err(visit.runtime(EvalError("MaxConcurrency cannot be negative.".into())));
    }
    let count = integer_field(
        run,
        visit,
        thread,
        input,
        state.tolerated_failure_count,
        state.tolerated_failure_count_path.as_ref(),
        "ToleratedFailureCountPath",
    )?;
    if count.is_some_and(|c| c < 0) {
        return Err(visit.runtime(EvalError("ToleratedFailureCount cannot be negative.".into())));
    }
    let percentage = match (
        &state.tolerated_failure_percentage,
        &state.tolerated_failure_percentage_path,
    ) {
        (Some(p), _) => Some(*p),
        (None, Some(path)) => {
            let value = read_path(run, visit, thread, input, path)?;
            Some(path_number(&value).ok_or_else(|| {
                visit.runtime(EvalError(format!(
                    "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: {}",
                    shown(&value),
                    path.text()
                )))
            })?)
        }
        (None, None) => None,
    };
    if percentage.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
        return Err(visit.runtime(EvalError(
            "ToleratedFailurePercentage must be between 0 and 100.".into(),
        )));
    }
    Ok((
        max_concurrency as usize,
        Tolerance {
            count: count.map(|c| c as u64),
            percentage,
        },
    ))
}

pub(super) async fn attempt<'a>(
    run: &Run,
    state: &'a MapState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    if state.is_distributed() {
        return super::distributed::attempt(run, state, visit, input, thread).await;
    }
    let processor = state
        .processor()
        .ok_or_else(|| visit.runtime(EvalError("the Map state has no ItemProcessor".into())))?;
    let raw = keep_raw(&state.result_path, &input);
    let effective = select_input(run, visit, thread, &state.input_path, input)?;
    let (iteration_inputs, max_concurrency, tolerance) = match &state.jsonata {
        Some(fields) => jsonata_iterations(run, visit, thread, fields, &effective)?,
        None => jsonpath_iterations(run, state, visit, thread, &effective)?,
    };
    let total = iteration_inputs.len();
    run.record(
        EventType::MapStateStarted,
        EventDetails {
            length: Some(total as u64),
            ..Default::default()
        },
    )?;
    inspect_iterations(run, state, visit, &iteration_inputs, max_concurrency, &tolerance);
    let outputs = match super::mocked_whole(run, visit) {
        Some(mocked) => mocked_result(run, &tolerance, total, mocked)?,
        None => match run_iterations(
            run,
            processor,
            visit,
            thread,
            iteration_inputs,
            max_concurrency,
            &tolerance,
        )
        .await?
        {
            Some(outputs) => Value::Array(outputs),
            None => return Ok(Step::Parked),
        },
    };
    run.record(EventType::MapStateSucceeded, EventDetails::default())?;
    finished(run, state, visit, thread, raw, &effective, outputs)
}

/// The state's `Output` and `Assign` (JSONata) or `ResultSelector`, `ResultPath`,
/// `OutputPath` and `Assign` (JSONPath) over the map run's result.
pub(super) fn finished<'a>(
    run: &Run,
    state: &'a MapState,
    visit: &Visit<'_>,
    thread: &mut Thread,
    raw: Value,
    input: &Value,
    result: Value,
) -> Result<Step<'a>, StateFailure> {
    Finish {
        flow: &state.flow,
        result_selector: state.result_selector.as_ref(),
        result_path: &state.result_path,
        output_path: &state.output_path,
        assign: state.assign.as_ref(),
    }
    .apply_in(run, visit, thread, state.jsonata.as_ref(), raw, input, result)
}

/// Runs each iteration, at most `max_concurrency` at once (0: all); their outputs in item
/// order, or `None` when one parked on a task token.
async fn run_iterations(
    run: &Run,
    processor: &crate::model::Scope,
    visit: &Visit<'_>,
    thread: &Thread,
    iteration_inputs: Vec<Value>,
    max_concurrency: usize,
    tolerance: &Tolerance,
) -> Result<Option<Vec<Value>>, StateFailure> {
    let total = iteration_inputs.len();
    let prefix = format!("{}#a{}", thread.call_id(), visit.retry_count);
    let vars = thread.vars.clone();
    let name = visit.name;
    let iterations = iteration_inputs.into_iter().enumerate().map(|(index, item_input)| {
        let mut iteration_thread = Thread::new(format!("{prefix}/i{index}"), vars.clone());
        async move {
            let details = EventDetails {
                name: Some(name.to_string()),
                index: Some(index as u64),
                ..Default::default()
            };
            run.record(EventType::MapIterationStarted, details.clone())?;
            let end = run.run_scope(processor, item_input, &mut iteration_thread).await;
            match &end {
                Ok(ScopeEnd::Succeeded(_)) => {
                    run.record(EventType::MapIterationSucceeded, details)?;
                }
                Err(_) => {
                    run.record(EventType::MapIterationFailed, details)?;
                }
                Ok(ScopeEnd::Parked) => {}
            }
            end
        }
    });
    let width = if max_concurrency == 0 {
        total.max(1)
    } else {
        max_concurrency
    };
    let mut stream = futures::stream::iter(iterations).buffered(width);
    let mut outputs = Vec::with_capacity(total);
    let mut failed = 0u64;
    let mut parked = false;
    while let Some(end) = stream.next().await {
        match end {
            Ok(ScopeEnd::Succeeded(output)) => outputs.push(output),
            Ok(ScopeEnd::Parked) => {
                parked = true;
                outputs.push(Value::Null);
            }
            Err(failure) => {
                failed += 1;
                let fatal = failure.is_terminal() || !tolerance.configured();
                if fatal || tolerance.exceeded(failed, total) {
                    drop(stream);
                    let failure = if fatal {
                        failure
                    } else {
                        StateFailure::new(
                            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerated failure threshold was exceeded",
                        )
                    };
                    run.record(
                        EventType::MapStateFailed,
                        EventDetails {
                            error: failure.error.clone(),
                            cause: failure.cause.clone(),
                            ..Default::default()
                        },
                    )?;
                    return Err(failure);
                }
                outputs.push(failure.to_output());
            }
        }
    }
    Ok((!parked).then_some(outputs))
}

/// TestState's `DEBUG` view of a Map: each iteration's input after `ItemSelector`, and the
/// limits as evaluated.
fn inspect_iterations(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    iteration_inputs: &[Value],
    max_concurrency: usize,
    tolerance: &Tolerance,
) {
    if !super::inspecting(run) {
        return;
    }
    let selects = state.selector().is_some() || state.jsonata.as_ref().is_some_and(|f| f.item_selector.is_some());
    if selects {
        super::inspect(
            run,
            visit,
            "afterItemSelector",
            &Value::Array(iteration_inputs.to_vec()),
        );
    }
    super::inspect(run, visit, "maxConcurrency", &serde_json::json!(max_concurrency));
    if let Some(count) = tolerance.count {
        super::inspect(run, visit, "toleratedFailureCount", &serde_json::json!(count));
    }
    if let Some(percentage) = tolerance.percentage {
        super::inspect(run, visit, "toleratedFailurePercentage", &serde_json::json!(percentage));
    }
}

/// A Map answered whole by TestState's mock: its result, or its error; with the test case's
/// count of failed iterations past the tolerance, `States.ExceedToleratedFailureThreshold`.
pub(super) fn mocked_result(
    run: &Run,
    tolerance: &Tolerance,
    total: usize,
    mocked: Result<Value, StateFailure>,
) -> Result<Value, StateFailure> {
    let failed = run.mocks.as_ref().and_then(|m| m.map_iteration_failures).unwrap_or(0);
    let mocked = match mocked {
        Ok(_) if failed > 0 && tolerance.exceeded(failed, total) => Err(StateFailure::new(
            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
            "The specified tolerated failure threshold was exceeded",
        )),
        other => other,
    };
    mocked.inspect_err(|failure| {
        let _ = run.record(
            EventType::MapStateFailed,
            EventDetails {
                error: failure.error.clone(),
                cause: failure.cause.clone(),
                ..Default::default()
            },
        );
    })
}

/// The iterations of a JSONPath Map: ItemsPath, ItemSelector (or Parameters) and the limits.
fn jsonpath_iterations(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    thread: &Thread,
    effective: &Value,
) -> Result<(Vec<Value>, usize, Tolerance), StateFailure> {
    let items = match &state.items_path {
        Some(path) => read_path(run, visit, thread, effective, path)?,
        None => effective.clone(),
    };
    if state.items_path.is_some() {
        super::inspect(run, visit, "afterItemsPath", &items);
    }
    let Value::Array(items) = items else {
        return Err(visit.runtime(EvalError(format!(
            "Invalid path '{}': the items to iterate over must be a JSON array, got {}",
            state.items_path.as_ref().map_or("$", |p| p.text()),
            to_compact(&items)
        ))));
    };
    let (max_concurrency, tolerance) = limits(run, state, visit, thread, effective)?;
    let mut iteration_inputs = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        iteration_inputs.push(select_item(run, state, visit, effective, &thread.vars, index, item)?);
    }
    Ok((iteration_inputs, max_concurrency, tolerance))
}

/// The iterations of a JSONata Map: Items, ItemSelector and the limits, each possibly an
/// expression.
fn jsonata_iterations(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    fields: &crate::model::jsonata::JsonataFields,
    effective: &Value,
) -> Result<(Vec<Value>, usize, Tolerance), StateFailure> {
    use super::jsonata;
    let bound = jsonata::bound(run, visit, thread, effective, jsonata::Extra::default());
    let items = jsonata::items(visit, fields, &bound, effective)?;
    let (max_concurrency, tolerance) = jsonata_limits(visit, fields, &bound)?;
    let mut iteration_inputs = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        iteration_inputs.push(jsonata::select_item(
            run,
            visit,
            &thread.vars,
            fields,
            effective,
            index,
            item,
        )?);
    }
    Ok((iteration_inputs, max_concurrency, tolerance))
}

/// A JSONata Map's `MaxConcurrency` (0: no limit) and tolerated failures.
pub(super) fn jsonata_limits(
    visit: &Visit<'_>,
    fields: &crate::model::jsonata::JsonataFields,
    bound: &crate::jsonata::Bound,
) -> Result<(usize, Tolerance), StateFailure> {
    use super::jsonata;
    let max_concurrency =
        jsonata::whole_seconds(visit, fields.max_concurrency.as_ref(), "MaxConcurrency", bound, false)?;
    let count = jsonata::whole_seconds(
        visit,
        fields.tolerated_failure_count.as_ref(),
        "ToleratedFailureCount",
        bound,
        false,
    )?;
    let percentage = match &fields.tolerated_failure_percentage {
        Some(template) => {
            let value = template
                .evaluate("ToleratedFailurePercentage", bound)
                .map_err(|err| visit.query_error(err))?;
            match value.as_f64().filter(|p| (0.0..=100.0).contains(p)) {
                Some(p) => Some(p),
                None => {
                    return Err(visit.query_error(format!(
                        "The ToleratedFailurePercentage field must evaluate to a number from 0 to 100, got {}",
                        to_compact(&value)
                    )));
                }
            }
        }
        None => None,
    };
    Ok((max_concurrency.unwrap_or(0) as usize, Tolerance { count, percentage }))
}

pub(super) fn select_item(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    effective: &Value,
    vars: &Map<String, Value>,
    index: usize,
    item: Value,
) -> Result<Value, StateFailure> {
    if let Some(fields) = &state.jsonata {
        return super::jsonata::select_item(run, visit, vars, fields, effective, index, item);
    }
    let Some(selector) = state.selector() else {
        return Ok(item);
    };
    let ctx = ContextObject {
        run,
        visit,
        task_token: None,
        map_item: Some((index, &item)),
    };
    let env = Env {
        input: effective,
        vars,
        context: &ctx,
        random: &visit.random,
    };
    selector.eval(&env).map_err(|e| visit.runtime(e))
}
