//! Definitions shared by the throughput benchmark and the `throughput` example, so both
//! measure the same thing.

use serde_json::{Value, json};

/// A Choice/Pass loop that counts `$.i` up to `iterations`: two state transitions per
/// iteration (plus the final Succeed).
pub fn counting_loop(iterations: u64) -> String {
    json!({
        "StartAt": "Check",
        "States": {
            "Check": {"Type": "Choice", "Choices": [
                {"Variable": "$.i", "NumericGreaterThanEquals": iterations, "Next": "Done"}
            ], "Default": "Increment"},
            "Increment": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
            "Done": {"Type": "Succeed"}
        }
    })
    .to_string()
}

/// [`counting_loop`] in JSONata: the same two transitions per iteration, a `Condition` and an
/// `Output` expression in place of the choice rule and `States.MathAdd`.
pub fn counting_loop_jsonata(iterations: u64) -> String {
    json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Check",
        "States": {
            "Check": {"Type": "Choice", "Choices": [
                {"Condition": format!("{{% $states.input.i >= {iterations} %}}"), "Next": "Done"}
            ], "Default": "Increment"},
            "Increment": {"Type": "Pass", "Output": {"i": "{% $states.input.i + 1 %}"}, "Next": "Check"},
            "Done": {"Type": "Succeed"}
        }
    })
    .to_string()
}

/// A Map over a Pass state.
pub fn map_over_pass() -> String {
    json!({
        "StartAt": "Each",
        "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "End": true,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Touch",
                "States": {"Touch": {"Type": "Pass", "Parameters": {"item.$": "$"}, "End": true}}}}}
    })
    .to_string()
}

pub fn map_input(items: usize) -> Value {
    json!({"items": (0..items).collect::<Vec<_>>()})
}
