//! JSONata states: each type's own fields, then `Output` and `Assign`, with `$states` bound as
//! AWS binds it (`input` always; `result` once a Task, Parallel or Map has one; `errorOutput`
//! in a Catch; `context` always). `Assign` and `Output` both see the variables as they were
//! when the state was entered; the new values apply once both are done.

use serde_json::{Map, Value};

use super::apply_vars;
use crate::errors::{StateFailure, names};
use crate::executor::run::{ContextObject, Run, Step, Thread, Visit};
use crate::jsonata::{Bound, States, Template};
use crate::model::jsonata::JsonataFields;
use crate::model::{BranchTest, ChoiceState, FailState, Flow, Transition};

/// What `$states` holds besides the input.
#[derive(Default, Clone, Copy)]
pub(crate) struct Extra<'v> {
    pub result: Option<&'v Value>,
    pub error_output: Option<&'v Value>,
    pub task_token: Option<&'v str>,
    pub map_item: Option<(usize, &'v Value)>,
}

pub(crate) fn bound(run: &Run, visit: &Visit<'_>, thread: &Thread, input: &Value, extra: Extra<'_>) -> Bound {
    bound_with(run, visit, &thread.vars, input, extra)
}

/// [`bound`] with the workflow variables `vars`.
pub(crate) fn bound_with(
    run: &Run,
    visit: &Visit<'_>,
    vars: &Map<String, Value>,
    input: &Value,
    extra: Extra<'_>,
) -> Bound {
    let context = ContextObject {
        run,
        visit,
        task_token: extra.task_token,
        map_item: extra.map_item,
    };
    Bound::new(
        States {
            input,
            result: extra.result,
            error_output: extra.error_output,
            context: crate::env::ContextSource::context_value(&context),
        },
        vars,
        run.clock.now().timestamp_millis(),
        &visit.random,
    )
}

/// `field`'s value, or `default` when the state does not set it.
pub(crate) fn value_or(
    visit: &Visit<'_>,
    template: Option<&Template>,
    field: &str,
    bound: &Bound,
    default: impl FnOnce() -> Value,
) -> Result<Value, StateFailure> {
    match template {
        Some(template) => template.evaluate(field, bound).map_err(|err| visit.query_error(err)),
        None => Ok(default()),
    }
}

/// The variables `Assign` sets (applied later by [`apply_vars`]).
pub(crate) fn assign(
    visit: &Visit<'_>,
    template: Option<&Template>,
    bound: &Bound,
) -> Result<Option<Map<String, Value>>, StateFailure> {
    let Some(template) = template else { return Ok(None) };
    match template
        .evaluate("Assign", bound)
        .map_err(|err| visit.query_error(err))?
    {
        Value::Object(vars) => super::within_assign_limit(visit, vars).map(Some),
        other => Err(visit.query_error(format!(
            "The Assign field must evaluate to a JSON object, got {}",
            crate::json::to_compact(&other)
        ))),
    }
}

/// `Output` (default: `default_output`) and `Assign`, then the transition.
pub(crate) fn finish<'a>(
    visit: &Visit<'_>,
    thread: &mut Thread,
    flow: &'a Flow,
    fields: &JsonataFields,
    bound: &Bound,
    default_output: Value,
) -> Result<Step<'a>, StateFailure> {
    let output = value_or(visit, fields.output.as_ref(), "Output", bound, || default_output)?;
    let vars = assign(visit, fields.assign.as_ref(), bound)?;
    apply_vars(thread, vars);
    Ok(match flow.transition() {
        Transition::Next(next) => Step::Next(next, output),
        Transition::End => Step::End(output),
    })
}

/// Pass: its output is `Output`, else its input.
pub(super) fn pass<'a>(
    run: &Run,
    flow: &'a Flow,
    fields: &JsonataFields,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let bound = bound(run, visit, thread, &input, Extra::default());
    finish(visit, thread, flow, fields, &bound, input)
}

/// Succeed: `Output`, else its input.
pub(super) fn succeed<'a>(
    run: &Run,
    fields: &JsonataFields,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let bound = bound(run, visit, thread, &input, Extra::default());
    Ok(Step::End(value_or(
        visit,
        fields.output.as_ref(),
        "Output",
        &bound,
        || input,
    )?))
}

/// Fail: `Error` and `Cause`, each a string (literal or evaluated).
pub(super) fn fail(
    run: &Run,
    _state: &FailState,
    fields: &JsonataFields,
    visit: &Visit<'_>,
    input: Value,
    thread: &Thread,
) -> StateFailure {
    let bound = bound(run, visit, thread, &input, Extra::default());
    let text = |template: Option<&Template>, field: &str| -> Result<Option<String>, StateFailure> {
        let Some(template) = template else { return Ok(None) };
        match template.evaluate(field, &bound).map_err(|err| visit.query_error(err))? {
            Value::String(text) => Ok(Some(text)),
            other => Err(visit.query_error(format!(
                "The {field} field must evaluate to a string, got {}",
                crate::json::to_compact(&other)
            ))),
        }
    };
    let error = match text(fields.error.as_ref(), "Error") {
        Ok(error) => error,
        Err(failure) => return failure,
    };
    match text(fields.cause.as_ref(), "Cause") {
        Ok(cause) => StateFailure { error, cause },
        Err(failure) => failure,
    }
}

/// Choice: the first rule whose `Condition` is true (its `Assign` and `Output` apply), else
/// `Default` (with the state's own `Assign` and `Output`).
pub(super) fn choice<'a>(
    run: &Run,
    state: &'a ChoiceState,
    fields: &JsonataFields,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let bound = bound(run, visit, thread, &input, Extra::default());
    for branch in &state.choices {
        let BranchTest::Jsonata(rule) = &branch.test else {
            continue;
        };
        let holds = match value_or(visit, rule.condition.as_ref(), "Condition", &bound, || {
            Value::Bool(false)
        })? {
            Value::Bool(holds) => holds,
            other => {
                return Err(visit.query_error(format!(
                    "The Condition field must evaluate to a boolean, got {}",
                    crate::json::to_compact(&other)
                )));
            }
        };
        if holds {
            let output = value_or(visit, rule.output.as_ref(), "Output", &bound, || input.clone())?;
            let vars = assign(visit, rule.assign.as_ref(), &bound)?;
            apply_vars(thread, vars);
            return Ok(Step::Next(&branch.next, output));
        }
    }
    let Some(default) = &state.default else {
        return Err(StateFailure::new(
            names::NO_CHOICE_MATCHED,
            format!("No Matches! (state '{}')", visit.name),
        ));
    };
    let output = value_or(visit, fields.output.as_ref(), "Output", &bound, || input.clone())?;
    let vars = assign(visit, fields.assign.as_ref(), &bound)?;
    apply_vars(thread, vars);
    Ok(Step::Next(default, output))
}

/// A whole number of seconds from a JSONata field (`Seconds`, `TimeoutSeconds`...).
pub(crate) fn whole_seconds(
    visit: &Visit<'_>,
    template: Option<&Template>,
    field: &str,
    bound: &Bound,
    positive: bool,
) -> Result<Option<u64>, StateFailure> {
    let Some(template) = template else { return Ok(None) };
    let value = template.evaluate(field, bound).map_err(|err| visit.query_error(err))?;
    match crate::model::whole_seconds_of(&value).filter(|&seconds| !positive || seconds > 0) {
        Some(seconds) => Ok(Some(seconds)),
        None => Err(visit.query_error(format!(
            "The {field} field must evaluate to a {} integer, got {}",
            if positive { "positive" } else { "non-negative" },
            crate::json::to_compact(&value)
        ))),
    }
}

/// Wait: until `Seconds` from now or the `Timestamp`, then `Output` and `Assign`.
pub(super) async fn wait<'a>(
    run: &Run,
    flow: &'a Flow,
    fields: &JsonataFields,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let bound = bound(run, visit, thread, &input, Extra::default());
    let now = run.clock.now();
    let wake_at = if let Some(seconds) = whole_seconds(visit, fields.seconds.as_ref(), "Seconds", &bound, false)? {
        now + chrono::Duration::seconds(seconds.min(i64::MAX as u64 / 1000) as i64)
    } else if let Some(timestamp) = &fields.timestamp {
        let value = timestamp
            .evaluate("Timestamp", &bound)
            .map_err(|err| visit.query_error(err))?;
        value.as_str().and_then(crate::model::parse_timestamp).ok_or_else(|| {
            visit.query_error(format!(
                "The Timestamp field must evaluate to an ISO-8601 extended offset date-time string, got {}",
                crate::json::to_compact(&value)
            ))
        })?
    } else {
        now
    };
    run.sleep_recorded(format!("{}#wait", thread.call_id()), wake_at).await;
    finish(visit, thread, flow, fields, &bound, input)
}

/// `Arguments` (what a Task sends, what Parallel branches get), else the state's input.
pub(crate) fn arguments(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    fields: &JsonataFields,
    input: &Value,
    task_token: Option<&str>,
) -> Result<Value, StateFailure> {
    let bound = bound(
        run,
        visit,
        thread,
        input,
        Extra {
            task_token,
            ..Extra::default()
        },
    );
    value_or(visit, fields.arguments.as_ref(), "Arguments", &bound, || input.clone())
}

/// After a Task, Parallel or Map: `Output` (default: the result) and `Assign`, both seeing
/// `$states.result`.
pub(crate) fn finish_with_result<'a>(
    run: &Run,
    visit: &Visit<'_>,
    thread: &mut Thread,
    flow: &'a Flow,
    fields: &JsonataFields,
    input: &Value,
    result: Value,
) -> Result<Step<'a>, StateFailure> {
    let bound = bound(
        run,
        visit,
        thread,
        input,
        Extra {
            result: Some(&result),
            ..Extra::default()
        },
    );
    finish(visit, thread, flow, fields, &bound, result)
}

/// A JSONata catcher: `Output` (default: the error output) and `Assign`, seeing
/// `$states.errorOutput`.
pub(crate) fn caught(
    run: &Run,
    visit: &Visit<'_>,
    thread: &mut Thread,
    fields: &JsonataFields,
    input: &Value,
    error_output: Value,
) -> Result<Value, StateFailure> {
    let bound = bound(
        run,
        visit,
        thread,
        input,
        Extra {
            error_output: Some(&error_output),
            ..Extra::default()
        },
    );
    let output = value_or(visit, fields.output.as_ref(), "Output", &bound, || error_output.clone())?;
    let vars = assign(visit, fields.assign.as_ref(), &bound)?;
    apply_vars(thread, vars);
    Ok(output)
}

/// A Map's items: `Items`, else its input; an array or a `States.QueryEvaluationError`.
pub(crate) fn items(
    visit: &Visit<'_>,
    fields: &JsonataFields,
    bound: &Bound,
    input: &Value,
) -> Result<Vec<Value>, StateFailure> {
    match value_or(visit, fields.items.as_ref(), "Items", bound, || input.clone())? {
        Value::Array(items) => Ok(items),
        other => Err(visit.query_error(format!(
            "Map state input must be an array but was: {}",
            crate::json::to_compact(&other)
        ))),
    }
}

/// One Map item's input: `ItemSelector` with `$states.context.Map.Item` bound, else the item.
pub(crate) fn select_item(
    run: &Run,
    visit: &Visit<'_>,
    vars: &Map<String, Value>,
    fields: &JsonataFields,
    input: &Value,
    index: usize,
    item: Value,
) -> Result<Value, StateFailure> {
    let Some(selector) = &fields.item_selector else {
        return Ok(item);
    };
    let bound = bound_with(
        run,
        visit,
        vars,
        input,
        Extra {
            map_item: Some((index, &item)),
            ..Extra::default()
        },
    );
    selector
        .evaluate("ItemSelector", &bound)
        .map_err(|err| visit.query_error(err))
}
