use super::*;
use serde_json::json;

fn problems(definition: Value) -> Vec<ValidationProblem> {
    validate_value(&definition)
}

fn has(problems: &[ValidationProblem], pointer: &str, needle: &str) -> bool {
    problems
        .iter()
        .any(|p| p.pointer == pointer && p.message.contains(needle))
}

#[test]
fn a_valid_definition_has_no_problems() {
    let def = json!({
        "StartAt": "Check",
        "States": {
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Work"}], "Default": "Done"},
            "Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f", "Payload.$": "$"},
                     "Retry": [{"ErrorEquals": ["Gmail.RateLimited"], "BackoffRate": 2}, {"ErrorEquals": ["States.ALL"]}],
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Broken", "ResultPath": "$.error"}], "Next": "Done"},
            "Broken": {"Type": "Fail", "Error": "Pipeline.Broken"},
            "Done": {"Type": "Succeed"}
        }
    });
    assert_eq!(problems(def), vec![]);
}

#[test]
fn every_problem_is_reported_at_once_with_its_location() {
    let def = json!({
        "StartAt": "Missing",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere", "Resource": "x"},
            "B": {"Type": "Wait", "Seconds": 1, "Timestamp": "2024-01-01T00:00:00Z", "End": true},
            "C": {"Type": "Task", "Resource": "r", "End": true,
                  "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E"], "BackoffRate": 0.5, "MaxAttempts": -1}]},
            "D": {"Type": "Map", "ToleratedFailurePercentage": 150, "End": true,
                  "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}}},
            "E": {"Type": "Pass", "InputPath": "$..[", "End": true},
            "F": {"Type": "Pass", "Parameters": {"x.$": "States.Nope()"}, "End": true},
            "G": {"Type": "Bogus"}
        }
    });
    let found = problems(def);
    assert!(has(&found, "/StartAt", "'Missing'"), "{found:#?}");
    assert!(has(&found, "/States/A/Next", "'Nowhere'"));
    assert!(has(&found, "/States/A/Resource", "not allowed in a Pass state"));
    assert!(has(&found, "/States/B", "exactly one of Seconds"));
    assert!(has(&found, "/States/C/Retry/0/ErrorEquals", "must be the last"));
    assert!(has(&found, "/States/C/Retry/1/BackoffRate", "at least 1.0"));
    assert!(has(&found, "/States/C/Retry/1/MaxAttempts", "non-negative"));
    assert!(has(&found, "/States/D/ToleratedFailurePercentage", "0 to 100"));
    assert!(has(&found, "/States/E/InputPath", "invalid JSONPath"));
    assert!(has(&found, "/States/F/Parameters/x.$", "unknown intrinsic"));
    assert!(has(&found, "/States/G/Type", "not a state type"));
    assert!(found.iter().any(|p| p.state.as_deref() == Some("A")));
}

#[test]
fn unreachable_states_and_missing_terminals_are_found() {
    let looping = json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Pass", "Next": "A"},
            "Lost": {"Type": "Pass", "Next": "A"}
        }
    });
    let found = problems(looping);
    assert!(has(&found, "/States/Lost", "unreachable"));
    assert!(has(&found, "/States", "no terminal state"));

    let stuck = json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "Spin"}], "Default": "Done"},
            "Spin": {"Type": "Pass", "Next": "Spin"},
            "Done": {"Type": "Succeed"}
        }
    });
    assert!(has(&problems(stuck), "/States/Spin", "no path leads"));
}

#[test]
fn states_all_must_stand_alone_and_choices_need_one_operator() {
    let def = json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Choice", "Choices": [
                {"Variable": "$.x", "StringEquals": "a", "NumericEquals": 1, "Next": "Done"},
                {"Not": {"Variable": "$.x", "StringEquals": 1}, "Next": "Done"},
                {"Variable": "$.x", "BooleanEquals": true}
            ], "Default": "Done"},
            "B": {"Type": "Task", "Resource": "r", "End": true, "Catch": [{"ErrorEquals": ["States.ALL", "E"], "Next": "Done"}]},
            "Done": {"Type": "Succeed"}
        }
    });
    let found = problems(def);
    assert!(has(&found, "/States/A/Choices/0", "exactly one comparison"));
    assert!(has(&found, "/States/A/Choices/1/Not/StringEquals", "must be a string"));
    assert!(has(&found, "/States/A/Choices/2/Next", "needs Next"));
    assert!(has(&found, "/States/B/Catch/0/ErrorEquals/0", "alone"));
}

#[test]
fn malformed_text_gives_one_clear_problem() {
    let found = validate("{\"StartAt\": \"A\", \"States\": {");
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("not valid JSON"), "{}", found[0]);
    let found = validate("[1, 2]");
    assert!(found[0].message.contains("must be a JSON object"));
    let found = validate(r#"{"StartAt": 5, "States": []}"#);
    assert!(has(&found, "/StartAt", "must be a string"));
    assert!(has(&found, "/States", "must be an object"));
}

#[test]
fn each_language_refuses_the_other_languages_fields() {
    // A JSONata machine with a JSONPath field, and a JSONPath state inside it with a JSONata one.
    let found = problems(json!({
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Parameters": {"x.$": "$.x"}, "Next": "B"},
            "B": {"Type": "Pass", "QueryLanguage": "JSONPath", "Output": "{% 1 %}", "Next": "C"},
            "C": {"Type": "Pass", "Output": {"y": "{% $states.input.x %}"}, "End": true}
        }
    }));
    assert!(has(&found, "/States/A/Parameters", "JSONata"), "{found:?}");
    assert!(
        has(&found, "/States/B/Output", "not allowed in a Pass state"),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn jsonata_expressions_are_compiled_and_their_fields_checked() {
    let found = problems(json!({
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "QueryLanguage": "JSONata", "Seconds": "soon", "Next": "C"},
            "C": {
                "Type": "Choice",
                "QueryLanguage": "JSONata",
                "Choices": [{"Condition": "{% $states.input.( %}", "Next": "E"}, {"Variable": "$.x", "IsNull": true, "Next": "E"}],
                "Default": "E"
            },
            "E": {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"v": "{% 1 ?? 2 %}"}, "End": true}
        }
    }));
    assert!(has(&found, "/States/W/Seconds", "non-negative integer"), "{found:?}");
    assert!(
        has(&found, "/States/C/Choices/0/Condition", "does not compile"),
        "{found:?}"
    );
    assert!(
        has(&found, "/States/C/Choices/1/Variable", "use Condition"),
        "{found:?}"
    );
    assert!(
        has(&found, "/States/E/Assign/v", "newer than JSONata 2.0.6"),
        "{found:?}"
    );
}

#[test]
fn nested_scopes_inherit_the_language_of_their_state() {
    let machine = |inner: Value| {
        json!({
            "StartAt": "M",
            "States": {"M": {
                "Type": "Map",
                "QueryLanguage": "JSONata",
                "ItemProcessor": {"StartAt": "P", "States": {"P": inner}},
                "End": true
            }}
        })
    };
    assert!(
        problems(machine(
            json!({"Type": "Pass", "Output": "{% $states.input %}", "End": true})
        ))
        .is_empty()
    );
    let found = problems(machine(json!({"Type": "Pass", "ResultPath": "$.x", "End": true})));
    assert!(
        has(&found, "/States/M/ItemProcessor/States/P/ResultPath", "JSONata"),
        "{found:?}"
    );
}

#[test]
fn problems_display_state_pointer_and_message() {
    let p = ValidationProblem::new(Some("Fetch"), "/States/Fetch/Next", "'X' is not a state in this scope");
    assert_eq!(
        p.to_string(),
        "state 'Fetch' (/States/Fetch/Next): 'X' is not a state in this scope"
    );
}

#[test]
fn duplicate_names_across_scopes_are_rejected() {
    let def = json!({
        "StartAt": "P",
        "States": {
            "P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}
            ]}
        }
    });
    assert!(problems(def).iter().any(|p| p.message.contains("more than once")));
}
