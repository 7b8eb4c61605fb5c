//! Malformed and hostile definitions and inputs: errors, never a panic or a hang.
//! Includes a seeded property test over randomly generated definitions and inputs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sluice_statemachine::{
    Engine, EngineOptions, ManualClock, ParseError, StartExecution, StateMachine, TaskRegistry, validate,
};
use std::sync::Arc;
use std::time::Duration;

/// Objects a Distributed Map may read: some fine, some hostile.
fn objects() -> Arc<sluice_statemachine::MemoryObjectStorage> {
    let objects = sluice_statemachine::MemoryObjectStorage::new();
    objects.insert("b", "items.json", r#"[1, {"a": [2, 3]}, "x", null, [[]]]"#);
    objects.insert("b", "items.jsonl", "{\"a\":1}\n\n[1,2]\n{broken\n");
    objects.insert("b", "rows.csv", b"h1,h2\n1,2,3\n\"unterminated\n\xff".to_vec());
    objects.insert(
        "b",
        "manifest.json",
        r#"{"fileFormat": "CSV", "destinationBucket": "arn:aws:s3:::b", "fileSchema": "Bucket, Key", "files": [{"key": "rows.csv"}, {"key": "gone.csv"}, {}]}"#,
    );
    objects.create_bucket("out");
    Arc::new(objects)
}

fn engine() -> Engine {
    Engine::new(TaskRegistry::new())
        .with_objects(objects())
        .with_clock(Arc::new(ManualClock::default()))
        .with_options(EngineOptions {
            history_limit: Some(2_000),
            ..Default::default()
        })
}

/// Parses, validates and (when valid) runs a definition; panics only if the engine does.
async fn exercise(definition: &str, input: Value) {
    let problems = validate(definition);
    match StateMachine::from_json(definition) {
        Ok(machine) => {
            assert!(
                problems.is_empty(),
                "from_json accepted what validate rejects: {problems:?}"
            );
            // A guard, not a sleep: a hang would fail the test instead of blocking CI.
            let engine = engine();
            let run = engine.start_execution(&machine, StartExecution::new("Fuzz", input));
            tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("the execution must finish")
                .ok();
        }
        Err(ParseError::Invalid(found)) => assert!(!found.is_empty()),
        Err(_) => {}
    }
}

const RICH: &str = r#"{
  "Comment": "every state type",
  "StartAt": "Prepare",
  "States": {
    "Prepare": {"Type": "Pass", "Parameters": {"items.$": "States.ArrayRange(1, 5, 1)", "when": "2030-01-01T00:00:00Z"}, "Next": "Route"},
    "Route": {"Type": "Choice", "Choices": [{"And": [{"Variable": "$.items", "IsPresent": true}, {"Not": {"Variable": "$.when", "TimestampLessThan": "2000-01-01T00:00:00Z"}}], "Next": "Fan"}], "Default": "Stop"},
    "Fan": {"Type": "Parallel", "ResultPath": "$.fan", "Next": "Each", "Branches": [
      {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "TimestampPath": "$.when", "End": true}}},
      {"StartAt": "Noop", "States": {"Noop": {"Type": "Pass", "End": true}}}
    ], "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}]},
    "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ItemSelector": {"v.$": "$$.Map.Item.Value"},
      "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "End": true}}},
      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Stop"}], "Next": "Done"},
    "Stop": {"Type": "Fail", "Error": "Stopped", "CausePath": "States.Format('at {}', $$.State.Name)"},
    "Done": {"Type": "Succeed"}
  }
}"#;

#[tokio::test]
async fn the_rich_definition_runs() {
    let machine = StateMachine::from_json(RICH).unwrap();
    let report = engine()
        .start_execution(&machine, StartExecution::new("Fuzz", json!({})))
        .await
        .unwrap();
    assert!(
        matches!(report.outcome, sluice_statemachine::ExecutionOutcome::Succeeded { .. }),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn every_truncation_is_rejected_cleanly() {
    for cut in 0..RICH.len() {
        if !RICH.is_char_boundary(cut) {
            continue;
        }
        let truncated = &RICH[..cut];
        assert!(
            StateMachine::from_json(truncated).is_err(),
            "accepted a truncation at {cut}"
        );
        assert!(!validate(truncated).is_empty());
    }
}

#[tokio::test]
async fn wrong_types_in_every_field_never_panic() {
    let base: Value = serde_json::from_str(RICH).unwrap();
    let replacements = [
        json!(null),
        json!(-1),
        json!(1.5),
        json!("$.nope"),
        json!("States.Format("),
        json!([]),
        json!({}),
        json!(true),
        json!(1e300),
    ];
    let mut pointers = Vec::new();
    collect_pointers(&base, String::new(), &mut pointers);
    for pointer in &pointers {
        for replacement in &replacements {
            let mut mutated = base.clone();
            if let Some(slot) = mutated.pointer_mut(pointer) {
                *slot = replacement.clone();
            }
            exercise(&mutated.to_string(), json!({"items": [1, 2]})).await;
        }
    }
    assert!(pointers.len() > 50);
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(here.clone());
                collect_pointers(v, here, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let here = format!("{at}/{i}");
                out.push(here.clone());
                collect_pointers(v, here, out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn cycles_without_an_exit_are_rejected() {
    let spin = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Wait", "Seconds": 1, "Next": "A"}}});
    assert!(StateMachine::from_json(&spin.to_string()).is_err());
}

#[tokio::test]
async fn ten_megabyte_strings_are_refused_quickly() {
    let huge = "x".repeat(10 * 1024 * 1024);
    let as_name = json!({"StartAt": huge, "States": {huge.clone(): {"Type": "Succeed"}}}).to_string();
    assert!(matches!(
        StateMachine::from_json(&as_name),
        Err(ParseError::TooLarge { .. })
    ));
    assert!(!validate(&as_name).is_empty());
    let as_path =
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": format!("$.{huge}"), "End": true}}})
            .to_string();
    assert!(StateMachine::from_json(&as_path).is_err());
    // A 10 MB input is refused at the door.
    let machine = StateMachine::from_json(r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#).unwrap();
    assert!(
        engine()
            .start_execution(&machine, StartExecution::new("Fuzz", json!({"blob": huge})))
            .await
            .is_err()
    );
}

fn nested_parallel(depth: usize) -> Value {
    let mut inner = json!({"StartAt": "Leaf", "States": {"Leaf": {"Type": "Pass", "End": true}}});
    for level in 0..depth {
        let name = format!("P{level}");
        inner = json!({"StartAt": name, "States": {name: {"Type": "Parallel", "End": true, "Branches": [inner]}}});
    }
    inner
}

#[tokio::test]
async fn deeply_nested_parallels_error_or_run() {
    // Too deep for the JSON parser's recursion limit: a clean parse error.
    let deep = nested_parallel(100).to_string();
    assert!(matches!(StateMachine::from_json(&deep), Err(ParseError::Json { .. })));
    assert!(!validate(&deep).is_empty());
    // As deep as the parser allows: it runs.
    exercise(&nested_parallel(20).to_string(), json!({"x": 1})).await;
}

#[tokio::test]
async fn hostile_paths_and_intrinsics_are_rejected() {
    for bad in [
        format!("$.a{}", "[?(@.x == 1 && ".repeat(100)),
        format!("States.Array({}1{})", "States.Array(".repeat(200), ")".repeat(200)),
        "$[99999999999999999999]".to_string(),
        "$['unterminated".to_string(),
    ] {
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"v.$": bad}, "End": true}}});
        assert!(StateMachine::from_json(&def.to_string()).is_err(), "{bad}");
    }
}

// --- random definitions -------------------------------------------------------------

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-5..100)),
        3 => json!(rng.random_range(-2.0..2.0)),
        4 => json!(["a", "b", "$.x", "2024-01-01T00:00:00Z"][rng.random_range(0..4)]),
        5 if depth < 3 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        6 if depth < 3 => {
            let mut map = serde_json::Map::new();
            for key in ["x", "items", "n", "when"] {
                if rng.random_bool(0.5) {
                    map.insert(key.into(), random_value(rng, depth + 1));
                }
            }
            Value::Object(map)
        }
        _ => json!(rng.random_range(0..3)),
    }
}

const PATHS: &[&str] = &[
    "$",
    "$.x",
    "$.items",
    "$.n",
    "$.items[0]",
    "$..x",
    "$.items[*]",
    "$$.Execution.Input",
    "$v",
    "$.x[?(@ > 1)]",
];
const EXPRS: &[&str] = &[
    "$.x",
    "States.Format('{}', $.x)",
    "States.ArrayLength($.items)",
    "States.MathAdd($.n, 1)",
    "States.JsonToString($)",
    "States.StringToJson($.x)",
    "States.ArrayGetItem($.items, 0)",
    "States.UUID()",
    "States.Hash($.x, 'SHA-256')",
];

fn random_scope(rng: &mut StdRng, depth: u32, counter: &mut u32) -> Value {
    let count = rng.random_range(1..5);
    let names: Vec<String> = (0..count)
        .map(|_| {
            *counter += 1;
            format!("S{counter}")
        })
        .collect();
    let mut states = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        let next = names.get(i + 1 + rng.random_range(0..2)).cloned();
        let mut state = serde_json::Map::new();
        let kind = if depth < 2 {
            rng.random_range(0..8)
        } else {
            rng.random_range(0..6)
        };
        let flow = |state: &mut serde_json::Map<String, Value>, rng: &mut StdRng| match &next {
            Some(n) if rng.random_bool(0.9) => {
                state.insert("Next".into(), json!(n));
            }
            _ => {
                state.insert("End".into(), json!(true));
            }
        };
        match kind {
            0 => {
                state.insert("Type".into(), json!("Pass"));
                if rng.random_bool(0.5) {
                    state.insert(
                        "Parameters".into(),
                        json!({"a.$": EXPRS[rng.random_range(0..EXPRS.len())]}),
                    );
                }
                if rng.random_bool(0.3) {
                    state.insert(
                        "ResultPath".into(),
                        [json!("$.r"), Value::Null, json!("$")][rng.random_range(0..3)].clone(),
                    );
                }
                if rng.random_bool(0.3) {
                    state.insert("Assign".into(), json!({"v.$": PATHS[rng.random_range(0..PATHS.len())]}));
                }
                flow(&mut state, rng);
            }
            1 => {
                state.insert("Type".into(), json!("Choice"));
                let target = names[rng.random_range(0..names.len())].clone();
                let op = [
                    "NumericGreaterThan",
                    "StringEquals",
                    "IsPresent",
                    "IsNull",
                    "BooleanEquals",
                ][rng.random_range(0..5)];
                let operand = match op {
                    "NumericGreaterThan" => json!(rng.random_range(0..5)),
                    "StringEquals" => json!("a"),
                    _ => json!(rng.random_bool(0.5)),
                };
                state.insert(
                    "Choices".into(),
                    json!([{ "Variable": PATHS[rng.random_range(0..PATHS.len())], op: operand, "Next": target }]),
                );
                state.insert(
                    "Default".into(),
                    json!(next.clone().unwrap_or_else(|| names[0].clone())),
                );
            }
            2 => {
                state.insert("Type".into(), json!("Wait"));
                if rng.random_bool(0.5) {
                    state.insert("Seconds".into(), json!(rng.random_range(0..100)));
                } else {
                    state.insert("SecondsPath".into(), json!("$.n"));
                }
                flow(&mut state, rng);
            }
            3 => {
                state.insert("Type".into(), json!("Fail"));
                state.insert("Error".into(), json!("Random.Failure"));
            }
            4 => {
                state.insert("Type".into(), json!("Succeed"));
                if rng.random_bool(0.3) {
                    state.insert("OutputPath".into(), json!(PATHS[rng.random_range(0..PATHS.len())]));
                }
            }
            5 => {
                state.insert("Type".into(), json!("Task"));
                state.insert("Resource".into(), json!("arn:aws:lambda:us-east-1:1:function:none"));
                state.insert(
                    "Catch".into(),
                    json!([{"ErrorEquals": ["States.ALL"], "Next": names[0].clone()}]),
                );
                flow(&mut state, rng);
            }
            6 => {
                state.insert("Type".into(), json!("Parallel"));
                let branches: Vec<Value> = (0..rng.random_range(1..3))
                    .map(|_| random_scope(rng, depth + 1, counter))
                    .collect();
                state.insert("Branches".into(), Value::Array(branches));
                state.insert(
                    "Retry".into(),
                    json!([{"ErrorEquals": ["States.ALL"], "MaxAttempts": rng.random_range(0..3)}]),
                );
                flow(&mut state, rng);
            }
            _ => {
                state.insert("Type".into(), json!("Map"));
                state.insert(
                    "ItemsPath".into(),
                    json!(["$.items", "$", "$.x"][rng.random_range(0..3)]),
                );
                let mut processor = random_scope(rng, depth + 1, counter);
                if rng.random_bool(0.5) {
                    // A Distributed Map, items from the input or from an object that may be
                    // missing, hostile or fine, with random batching and result export.
                    let execution_type = ["STANDARD", "EXPRESS", "STANDARD", "EXPRESS", "NOPE"][rng.random_range(0..5)];
                    processor["ProcessorConfig"] = json!({"Mode": "DISTRIBUTED", "ExecutionType": execution_type});
                    if rng.random_bool(0.6) {
                        state.remove("ItemsPath");
                        let key = ["items.json", "items.jsonl", "rows.csv", "missing", "manifest.json"]
                            [rng.random_range(0..5)];
                        let input_type =
                            ["JSON", "JSONL", "CSV", "MANIFEST", "JSON", "JSONL", "XML"][rng.random_range(0..7)];
                        state.insert(
                            "ItemReader".into(),
                            json!({"Resource": "arn:aws:states:::s3:getObject",
                                   "ReaderConfig": {"InputType": input_type, "MaxItems": rng.random_range(0..4)},
                                   "Parameters": {"Bucket": "b", "Key": key}}),
                        );
                    }
                    if rng.random_bool(0.4) {
                        state.insert(
                            "ItemBatcher".into(),
                            json!({"MaxItemsPerBatch": rng.random_range(1..3), "MaxInputBytesPerBatch": rng.random_range(1..64)}),
                        );
                    }
                    if rng.random_bool(0.3) {
                        state.insert(
                            "ResultWriter".into(),
                            json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "r"}}),
                        );
                    }
                }
                state.insert("ItemProcessor".into(), processor);
                if rng.random_bool(0.4) {
                    state.insert("ToleratedFailureCount".into(), json!(rng.random_range(0..3)));
                }
                flow(&mut state, rng);
            }
        }
        states.insert(name.clone(), Value::Object(state));
    }
    json!({"StartAt": names[0], "States": states})
}

#[tokio::test]
async fn random_definitions_and_inputs_never_panic_or_hang() {
    let mut rng = StdRng::seed_from_u64(0x05ee_da51);
    let mut accepted = 0;
    for _ in 0..400 {
        let mut counter = 0;
        let definition = random_scope(&mut rng, 0, &mut counter);
        let input = random_value(&mut rng, 0);
        if StateMachine::from_json(&definition.to_string()).is_ok() {
            accepted += 1;
        }
        exercise(&definition.to_string(), input).await;
    }
    // The generator must produce runnable machines, or the test proves little.
    assert!(accepted > 50, "only {accepted} random definitions were valid");
}

#[tokio::test]
async fn random_distributed_maps_over_hostile_objects_never_panic_or_hang() {
    let mut rng = StdRng::seed_from_u64(0xd157_0b1e);
    let mut ran = 0;
    for _ in 0..300 {
        let key = ["items.json", "items.jsonl", "rows.csv", "missing", "manifest.json"][rng.random_range(0..5)];
        let input_type = ["JSON", "JSONL", "CSV", "MANIFEST"][rng.random_range(0..4)];
        let mut reader = json!({"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": input_type, "MaxItems": rng.random_range(0..4)},
            "Parameters": {"Bucket": "b", "Key": key}});
        if input_type == "CSV" && rng.random_bool(0.5) {
            reader["ReaderConfig"]["CSVHeaderLocation"] = json!("GIVEN");
            reader["ReaderConfig"]["CSVHeaders"] = json!(["a", "b"]);
        }
        let mut map = json!({"Type": "Map", "End": true, "ItemReader": reader,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"got.$": "$"}, "End": true}}}});
        if rng.random_bool(0.5) {
            map["ItemBatcher"] =
                json!({"MaxItemsPerBatch": rng.random_range(1..3), "MaxInputBytesPerBatch": rng.random_range(1..64)});
        }
        if rng.random_bool(0.4) {
            map["ResultWriter"] = json!({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out"}});
        }
        if rng.random_bool(0.3) {
            map["ToleratedFailurePercentage"] = json!(rng.random_range(0..101));
        }
        let definition = json!({"StartAt": "M", "States": {"M": map}}).to_string();
        assert!(
            StateMachine::from_json(&definition).is_ok(),
            "{:?}",
            validate(&definition)
        );
        exercise(&definition, random_value(&mut rng, 0)).await;
        ran += 1;
    }
    assert_eq!(ran, 300);
}
