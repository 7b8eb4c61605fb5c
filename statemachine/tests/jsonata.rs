//! JSONata states on the engine, where the recorded AWS cases do not reach: Task `Arguments`
//! and `Output` with `$states.result`, Catch with `$states.errorOutput`, Parallel, Map items
//! and selectors, variables shared with JSONPath states, the context and a task token.

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_statemachine::{
    Engine, ExecutionOutcome, FnHandler, ManualClock, StartExecution, StateMachine, TaskContext, TaskFailure,
    TaskRegistry,
};

const DOUBLE: &str = "arn:aws:lambda:eu-west-1:123456789012:function:double";
const BROKEN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:broken";

fn engine() -> Engine {
    let mut registry = TaskRegistry::new();
    registry.register_lambda(
        "double",
        Arc::new(FnHandler(|_ctx: TaskContext, input: Value| {
            futures::future::ready(Ok(json!({"n": input["n"].as_i64().unwrap_or(0) * 2, "seen": input})))
        })),
    );
    registry.register_lambda(
        "broken",
        Arc::new(FnHandler(|_ctx: TaskContext, _input: Value| {
            futures::future::ready(Err(TaskFailure::new("Broken.Down", "it broke")))
        })),
    );
    Engine::new(registry).with_clock(Arc::new(ManualClock::default()))
}

async fn run(definition: Value, input: Value) -> ExecutionOutcome {
    let machine = StateMachine::from_json(&definition.to_string()).unwrap();
    engine()
        .start_execution(&machine, StartExecution::new("jsonata", input))
        .await
        .unwrap()
        .outcome
}

fn output(outcome: ExecutionOutcome) -> Value {
    match outcome {
        ExecutionOutcome::Succeeded { output } => output,
        other => panic!("expected success, got {other:?}"),
    }
}

#[tokio::test]
async fn a_task_sends_its_arguments_and_outputs_from_its_result() {
    let out = output(
        run(
            json!({
                "QueryLanguage": "JSONata",
                "StartAt": "Double",
                "States": {"Double": {
                    "Type": "Task",
                    "Resource": DOUBLE,
                    "Arguments": {"n": "{% $states.input.value + 1 %}", "who": "{% $states.context.State.Name %}"},
                    "Output": {"doubled": "{% $states.result.n %}", "was": "{% $states.input.value %}"},
                    "Assign": {"last": "{% $states.result.n %}"},
                    "Next": "Show"
                },
                "Show": {"Type": "Pass", "Output": {"last": "{% $last %}", "out": "{% $states.input %}"}, "End": true}}
            }),
            json!({"value": 20}),
        )
        .await,
    );
    assert_eq!(out, json!({"last": 42, "out": {"doubled": 42, "was": 20}}));
}

#[tokio::test]
async fn a_catch_outputs_and_assigns_from_the_error_output() {
    let out = output(
        run(
            json!({
                "QueryLanguage": "JSONata",
                "StartAt": "Try",
                "States": {
                    "Try": {
                        "Type": "Task",
                        "Resource": BROKEN,
                        "Catch": [{
                            "ErrorEquals": ["States.ALL"],
                            "Output": {"error": "{% $states.errorOutput.Error %}", "input": "{% $states.input %}"},
                            "Assign": {"cause": "{% $states.errorOutput.Cause %}"},
                            "Next": "Done"
                        }],
                        "End": true
                    },
                    "Done": {"Type": "Pass", "Output": {"caught": "{% $states.input %}", "cause": "{% $cause %}"}, "End": true}
                }
            }),
            json!({"k": 1}),
        )
        .await,
    );
    assert_eq!(
        out,
        json!({"caught": {"error": "Broken.Down", "input": {"k": 1}}, "cause": "it broke"})
    );
}

#[tokio::test]
async fn parallel_and_map_take_arguments_items_and_selectors() {
    let out = output(
        run(
            json!({
                "QueryLanguage": "JSONata",
                "StartAt": "Both",
                "States": {
                    "Both": {
                        "Type": "Parallel",
                        "Arguments": {"n": "{% $states.input.start %}"},
                        "Branches": [
                            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% $states.input.n * 10 %}", "End": true}}},
                            {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": DOUBLE, "Output": "{% $states.result.n %}", "End": true}}}
                        ],
                        "Output": {"sum": "{% $sum($states.result) %}"},
                        "Next": "Each"
                    },
                    "Each": {
                        "Type": "Map",
                        "Items": "{% [1, 2, 3] %}",
                        "ItemSelector": {"index": "{% $states.context.Map.Item.Index %}", "value": "{% $states.context.Map.Item.Value %}", "sum": "{% $states.input.sum %}"},
                        "ItemProcessor": {"StartAt": "Add", "States": {"Add": {"Type": "Pass", "Output": "{% $states.input.value + $states.input.sum + $states.input.index %}", "End": true}}},
                        "Output": "{% $states.result %}",
                        "End": true
                    }
                }
            }),
            json!({"start": 2}),
        )
        .await,
    );
    // sum = 2 * 10 + 2 * 2 = 24; items 1, 2, 3 at indices 0, 1, 2.
    assert_eq!(out, json!([25, 27, 29]));
}

#[tokio::test]
async fn jsonpath_and_jsonata_states_share_variables_in_one_machine() {
    let out = output(
        run(
            json!({
                "StartAt": "Path",
                "States": {
                    "Path": {"Type": "Pass", "Assign": {"fromPath.$": "$.x"}, "Next": "Ata"},
                    "Ata": {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"fromAta": "{% $fromPath * 2 %}"}, "Output": "{% $states.input %}", "Next": "Back"},
                    "Back": {"Type": "Pass", "Parameters": {"a.$": "$fromPath", "b.$": "$fromAta"}, "End": true}
                }
            }),
            json!({"x": 4}),
        )
        .await,
    );
    assert_eq!(out, json!({"a": 4, "b": 8}));
}

#[tokio::test]
async fn a_condition_that_is_not_boolean_and_a_non_array_of_items_fail_as_aws_fails_them() {
    let not_boolean = run(
        json!({
            "QueryLanguage": "JSONata",
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.x %}", "Next": "E"}], "Default": "E"},
                "E": {"Type": "Succeed"}
            }
        }),
        json!({"x": "yes"}),
    )
    .await;
    let ExecutionOutcome::Failed { error, cause } = not_boolean else {
        panic!("{not_boolean:?}")
    };
    assert_eq!(error.as_deref(), Some("States.QueryEvaluationError"));
    assert!(cause.unwrap_or_default().contains("Condition"));
    let no_choice = run(
        json!({
            "QueryLanguage": "JSONata",
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.x > 5 %}", "Next": "E"}]},
                "E": {"Type": "Succeed"}
            }
        }),
        json!({"x": 1}),
    )
    .await;
    let ExecutionOutcome::Failed { error, .. } = no_choice else {
        panic!("{no_choice:?}")
    };
    assert_eq!(error.as_deref(), Some("States.NoChoiceMatched"));
}

#[tokio::test]
async fn a_wait_until_an_evaluated_timestamp_and_a_fail_with_evaluated_error() {
    let outcome = run(
        json!({
            "QueryLanguage": "JSONata",
            "StartAt": "W",
            "States": {
                "W": {"Type": "Wait", "Timestamp": "{% $states.input.until %}", "Next": "F"},
                "F": {"Type": "Fail", "Error": "{% 'Custom.' & $states.input.kind %}", "Cause": "literal cause"}
            }
        }),
        json!({"until": "2020-01-01T00:00:00Z", "kind": "Stop"}),
    )
    .await;
    let ExecutionOutcome::Failed { error, cause } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(error.as_deref(), Some("Custom.Stop"));
    assert_eq!(cause.as_deref(), Some("literal cause"));
}

#[tokio::test]
async fn an_assign_over_256_kib_fails_in_either_language() {
    let big = "x".repeat(200 * 1024);
    for definition in [
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"a": big, "b.$": "$.more"}, "End": true}}}),
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"a": big, "b": "{% $states.input.more %}"}, "End": true}}}),
    ] {
        let outcome = run(definition, json!({"more": "y".repeat(100 * 1024)})).await;
        let ExecutionOutcome::Failed { error, cause } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(error.as_deref(), Some("States.DataLimitExceeded"));
        assert!(cause.unwrap_or_default().contains("'A'"));
    }
    // Just under the limit is fine.
    let fits = run(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"a": "x".repeat(250 * 1024)}, "End": true}}}),
        json!({}),
    )
    .await;
    assert!(matches!(fits, ExecutionOutcome::Succeeded { .. }), "{fits:?}");
}
