//! The Distributed Map end to end against a local object directory: every ItemReader input
//! type, batching, result export, tolerated failures, the errors AWS raises for bad objects,
//! child executions with their own histories, and redrive.

use serde_json::{Value, json};
use sluice_statemachine::{
    DirectoryObjectStorage, Engine, EventType, ExecutionOutcome, ExecutionStatus, FnHandler, ManualClock,
    ObjectStorage, SqliteExecutionStore, StartExecution, StateMachine, TaskContext, TaskFailure, TaskRegistry,
    validate,
};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn put(dir: &Path, bucket: &str, key: &str, body: impl AsRef<[u8]>) {
    let path = dir.join(bucket).join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn engine(dir: &Path, registry: TaskRegistry) -> Engine {
    Engine::new(registry)
        .with_clock(Arc::new(ManualClock::default()))
        .with_objects(Arc::new(DirectoryObjectStorage::new(dir)))
}

/// A Distributed Map over `reader`, with `extra` fields merged into the Map state.
fn distributed(reader: Value, child: Value, extra: Value) -> StateMachine {
    let mut map = json!({
        "Type": "Map",
        "ItemReader": reader,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Child",
            "States": {"Child": child}
        },
        "End": true
    });
    if map["ItemReader"].is_null() {
        map.as_object_mut().unwrap().remove("ItemReader");
    }
    for (k, v) in extra.as_object().unwrap() {
        map[k] = v.clone();
    }
    let definition = json!({"StartAt": "Fan", "States": {"Fan": map}});
    StateMachine::from_json(&definition.to_string()).unwrap()
}

fn get_object(key: &str, input_type: &str) -> Value {
    json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": input_type},
        "Parameters": {"Bucket": "data", "Key": key}
    })
}

fn pass() -> Value {
    json!({"Type": "Pass", "End": true})
}

async fn run(engine: &Engine, machine: &StateMachine, input: Value) -> (String, ExecutionOutcome) {
    let report = engine
        .start_execution(machine, StartExecution::new("Fanout", input))
        .await
        .unwrap();
    (report.execution_arn, report.outcome)
}

fn output(outcome: &ExecutionOutcome) -> &Value {
    match outcome {
        ExecutionOutcome::Succeeded { output } => output,
        other => panic!("expected success, got {other:?}"),
    }
}

fn failure(outcome: &ExecutionOutcome) -> (String, String) {
    match outcome {
        ExecutionOutcome::Failed { error, cause } => {
            (error.clone().unwrap_or_default(), cause.clone().unwrap_or_default())
        }
        other => panic!("expected failure, got {other:?}"),
    }
}

#[tokio::test]
async fn each_item_runs_as_a_child_execution_with_its_own_history() {
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "data",
        "in/items.jsonl",
        "{\"n\":1}\n\n{\"n\":2}\n{\"n\":3}\n",
    );
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        get_object("in/items.jsonl", "JSONL"),
        json!({"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "End": true}),
        json!({"Label": "Double"}),
    );
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(
        output(&outcome),
        &json!([{"doubled": 2}, {"doubled": 4}, {"doubled": 6}])
    );

    let types: Vec<EventType> = engine
        .execution_history(&arn)
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            EventType::ExecutionStarted,
            EventType::MapStateEntered,
            EventType::MapStateStarted,
            EventType::MapRunStarted,
            EventType::MapRunSucceeded,
            EventType::MapStateExited,
            EventType::ExecutionSucceeded
        ]
    );
    let runs = engine.list_map_runs(&arn).unwrap();
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0].map_run_arn.contains(":mapRun:Fanout/Double:"),
        "{}",
        runs[0].map_run_arn
    );
    assert_eq!(runs[0].item_counts.succeeded, 3);
    let children = engine.list_children(&runs[0].map_run_arn).unwrap();
    assert_eq!(children.len(), 3);
    assert!(children.iter().all(|c| c.status == ExecutionStatus::Succeeded));
    let child_history = engine.execution_history(&children[1].execution_arn).unwrap();
    assert_eq!(child_history.first().unwrap().event_type, EventType::ExecutionStarted);
    assert_eq!(child_history.first().unwrap().details.input, Some(json!({"n": 2})));
    assert_eq!(child_history.last().unwrap().event_type, EventType::ExecutionSucceeded);
    // Children are not top-level executions.
    assert_eq!(engine.list_executions().unwrap().len(), 1);
}

#[tokio::test]
async fn a_hundred_thousand_items_add_a_handful_of_events_to_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..100_000 {
        body.push_str(&format!("{{\"id\":{i}}}\n"));
    }
    put(dir.path(), "data", "big.jsonl", body);
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        get_object("big.jsonl", "JSONL"),
        pass(),
        json!({
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Child", "States": {"Child": pass()}
            },
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "runs"}}
        }),
    );
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    let result = output(&outcome);
    let key = result["ResultWriterDetails"]["Key"].as_str().unwrap();
    let history = engine.execution_history(&arn).unwrap();
    assert!(history.len() < 50, "{} events", history.len());
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join("out").join(key)).unwrap()).unwrap();
    let files = manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap();
    let mut total = 0;
    for file in files {
        let body = std::fs::read(dir.path().join("out").join(file["Key"].as_str().unwrap())).unwrap();
        total += serde_json::from_slice::<Vec<Value>>(&body).unwrap().len();
    }
    assert_eq!(total, 100_000);
}

#[tokio::test]
async fn batches_carry_their_items_and_the_batch_input() {
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "data",
        "items.json",
        json!([1, 2, 3, 4, 5, 6, 7]).to_string(),
    );
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        get_object("items.json", "JSON"),
        pass(),
        json!({
            "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
            "ItemBatcher": {"MaxItemsPerBatch": 3, "BatchInput": {"run.$": "$.run"}}
        }),
    );
    let (_, outcome) = run(&engine, &machine, json!({"run": "r1"})).await;
    let batches = output(&outcome).as_array().unwrap().clone();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0]["BatchInput"], json!({"run": "r1"}));
    assert_eq!(batches[2]["Items"], json!([{"value": 7, "index": 6}]));
    // By bytes: {"Items":[1,2]} is 15 bytes, so at most two one-digit items fit in 15.
    let by_bytes = distributed(
        get_object("items.json", "JSON"),
        pass(),
        json!({"ItemBatcher": {"MaxInputBytesPerBatch": 15}}),
    );
    let (_, outcome) = run(&engine, &by_bytes, json!({})).await;
    let sizes: Vec<usize> = output(&outcome)
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["Items"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [2, 2, 2, 1]);
}

#[tokio::test]
async fn csv_delimiters_and_given_headers_give_string_values() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "rows.tsv", "a\tb\n1\t\"x\ty\"\n2\n");
    put(dir.path(), "data", "rows.psv", "3|4|5\n");
    let engine = engine(dir.path(), TaskRegistry::new());
    let tsv = distributed(
        json!({"Resource": "arn:aws:states:::s3:getObject",
               "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "TAB"},
               "Parameters": {"Bucket": "data", "Key": "rows.tsv"}}),
        pass(),
        json!({}),
    );
    let (_, outcome) = run(&engine, &tsv, json!({})).await;
    assert_eq!(output(&outcome), &json!([{"a": "1", "b": "x\ty"}, {"a": "2", "b": ""}]));
    let psv = distributed(
        json!({"Resource": "arn:aws:states:::s3:getObject",
               "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["p", "q"], "CSVDelimiter": "PIPE"},
               "Parameters": {"Bucket": "data", "Key": "rows.psv"}}),
        pass(),
        json!({}),
    );
    let (_, outcome) = run(&engine, &psv, json!({})).await;
    assert_eq!(output(&outcome), &json!([{"p": "3", "q": "4"}]));
}

#[tokio::test]
async fn an_inventory_manifest_reads_the_gzipped_csv_files_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"\"src\",\"a/1.csv\",\"10\"\n\"src\",\"a/2.csv\",\"20\"\n")
        .unwrap();
    put(dir.path(), "inventory", "data/part-1.csv.gz", gz.finish().unwrap());
    put(dir.path(), "inventory", "data/part-2.csv", "src,b/3.csv,30\n");
    let manifest = json!({
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::inventory",
        "version": "2016-11-30",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size",
        "files": [{"key": "data/part-1.csv.gz", "size": 1}, {"key": "data/part-2.csv", "size": 1}]
    });
    put(dir.path(), "inventory", "manifest.json", manifest.to_string());
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        json!({"Resource": "arn:aws:states:::s3:getObject",
               "ReaderConfig": {"InputType": "MANIFEST", "MaxItems": 2},
               "Parameters": {"Bucket": "inventory", "Key": "manifest.json"}}),
        json!({"Type": "Pass", "Parameters": {"key.$": "$.Key"}, "End": true}),
        json!({}),
    );
    let (_, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(output(&outcome), &json!([{"key": "a/1.csv"}, {"key": "a/2.csv"}]));

    // A manifest naming a file that is not there fails, naming it.
    let broken = json!({"fileFormat": "CSV", "destinationBucket": "inventory", "fileSchema": "Bucket, Key",
                        "files": [{"key": "data/gone.csv"}]});
    put(dir.path(), "inventory", "broken.json", broken.to_string());
    let machine = distributed(
        json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "MANIFEST"},
               "Parameters": {"Bucket": "inventory", "Key": "broken.json"}}),
        pass(),
        json!({}),
    );
    let (error, cause) = failure(&run(&engine, &machine, json!({})).await.1);
    assert_eq!(error, "States.ItemReaderFailed");
    assert!(cause.contains("s3://inventory/data/gone.csv"), "{cause}");
}

#[tokio::test]
async fn list_objects_gives_each_objects_metadata() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "logs/b.txt", "bb");
    put(dir.path(), "data", "logs/a.txt", "a");
    put(dir.path(), "data", "other/c.txt", "c");
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        json!({"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "data", "Prefix": "logs/"}}),
        json!({"Type": "Pass", "Parameters": {"key.$": "$.Key", "size.$": "$.Size", "etag.$": "$.Etag", "class.$": "$.StorageClass"}, "End": true}),
        json!({}),
    );
    let (_, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(
        output(&outcome),
        &json!([
            {"key": "logs/a.txt", "size": 1, "etag": "\"0cc175b9c0f1b6a831c399e269772661\"", "class": "STANDARD"},
            {"key": "logs/b.txt", "size": 2, "etag": "\"21ad0bd836b90d08f4cf640b4c298e7c\"", "class": "STANDARD"}
        ])
    );
}

/// Runs a map over `key` read as `input_type` and returns its error and cause.
async fn reader_failure(dir: &Path, key: &str, input_type: &str) -> (String, String) {
    let engine = engine(dir, TaskRegistry::new());
    let machine = distributed(get_object(key, input_type), pass(), json!({}));
    failure(&run(&engine, &machine, json!({})).await.1)
}

#[tokio::test]
async fn bad_objects_fail_with_item_reader_failed_naming_object_and_line() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "object.json", "{\"not\": \"an array\"}");
    put(dir.path(), "data", "broken.json", "[1, 2,");
    put(
        dir.path(),
        "data",
        "lines.jsonl",
        "{\"ok\":1}\n{\"ok\":2}\n{not json}\n",
    );
    put(dir.path(), "data", "latin1.csv", b"h\nok\n\xe9t\xe9\n".as_slice());
    put(
        dir.path(),
        "data",
        "wide.csv",
        format!("{}\nv\n", "h".repeat(11 * 1024)),
    );
    put(
        dir.path(),
        "data",
        "huge.jsonl",
        format!("{{\"x\":\"{}\"}}\n", "y".repeat(300 * 1024)),
    );
    let cases = [
        ("missing.json", "JSON", "s3://data/missing.json"),
        ("object.json", "JSON", "non-iterable"),
        ("broken.json", "JSON", "s3://data/broken.json is not valid JSON"),
        ("lines.jsonl", "JSONL", "line 3 of s3://data/lines.jsonl"),
        ("latin1.csv", "CSV", "line 3 of s3://data/latin1.csv is not UTF-8"),
        ("wide.csv", "CSV", "10240 bytes"),
        ("huge.jsonl", "JSONL", "line 1 of s3://data/huge.jsonl"),
    ];
    for (key, input_type, expected) in cases {
        let (error, cause) = reader_failure(dir.path(), key, input_type).await;
        assert_eq!(error, "States.ItemReaderFailed", "{key}");
        assert!(cause.contains(expected), "{key}: {cause}");
    }
    // A missing bucket too.
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        json!({"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
               "Parameters": {"Bucket": "nobucket", "Key": "k"}}),
        pass(),
        json!({}),
    );
    let (error, cause) = failure(&run(&engine, &machine, json!({})).await.1);
    assert_eq!(error, "States.ItemReaderFailed");
    assert!(cause.contains("nobucket"), "{cause}");
}

#[tokio::test]
async fn a_ragged_csv_row_is_padded_or_cut_as_aws_does() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "ragged.csv", "a,b\n1\n2,3,4\n");
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(get_object("ragged.csv", "CSV"), pass(), json!({}));
    let (_, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(output(&outcome), &json!([{"a": "1", "b": ""}, {"a": "2", "b": "3"}]));
}

/// A child that fails when its item says so, counting its runs.
fn failing_registry(calls: Arc<AtomicUsize>, fixed: Arc<AtomicBool>) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register_lambda(
        "work",
        Arc::new(FnHandler(move |_ctx: TaskContext, input: Value| {
            calls.fetch_add(1, Ordering::SeqCst);
            let fail = input["fail"].as_bool().unwrap_or(false) && !fixed.load(Ordering::SeqCst);
            futures::future::ready(if fail {
                Err(TaskFailure::new("Work.Broken", "this item is broken"))
            } else {
                Ok(json!({"done": input["id"]}))
            })
        })),
    );
    registry
}

fn work() -> Value {
    json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work", "End": true})
}

fn flagged_items(dir: &Path, failing: &[u64]) {
    let mut body = String::new();
    for id in 0..10u64 {
        body.push_str(&json!({"id": id, "fail": failing.contains(&id)}).to_string());
        body.push('\n');
    }
    put(dir, "data", "work.jsonl", body);
}

#[tokio::test]
async fn failures_past_the_tolerance_fail_the_map_and_within_it_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    flagged_items(dir.path(), &[2, 7]);
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = engine(
        dir.path(),
        failing_registry(calls.clone(), Arc::new(AtomicBool::new(false))),
    );
    // No tolerance: the first failed child fails the map.
    let strict = distributed(get_object("work.jsonl", "JSONL"), work(), json!({"MaxConcurrency": 1}));
    let (error, _) = failure(&run(&engine, &strict, json!({})).await.1);
    assert_eq!(error, "States.ExceedToleratedFailureThreshold");
    assert!(calls.load(Ordering::SeqCst) < 10, "the map stops launching children");
    // One tolerated, two failed.
    let one = distributed(
        get_object("work.jsonl", "JSONL"),
        work(),
        json!({"ToleratedFailureCount": 1}),
    );
    let (error, _) = failure(&run(&engine, &one, json!({})).await.1);
    assert_eq!(error, "States.ExceedToleratedFailureThreshold");
    // 20% tolerated: both failures are written to FAILED_0.json.
    let tolerant = distributed(
        get_object("work.jsonl", "JSONL"),
        work(),
        json!({
            "ToleratedFailurePercentage": 20,
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out", "Prefix": "results/"}}
        }),
    );
    let (_, outcome) = run(&engine, &tolerant, json!({})).await;
    let result = output(&outcome);
    assert!(result["MapRunArn"].as_str().unwrap().contains(":mapRun:Fanout/Fan:"));
    let key = result["ResultWriterDetails"]["Key"].as_str().unwrap();
    assert!(key.starts_with("results/") && key.ends_with("/manifest.json"), "{key}");
    let read = |key: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.path().join("out").join(key)).unwrap()).unwrap()
    };
    let manifest = read(key);
    assert_eq!(manifest["DestinationBucket"], "out");
    assert_eq!(manifest["MapRunArn"], result["MapRunArn"]);
    let failed = read(manifest["ResultFiles"]["FAILED"][0]["Key"].as_str().unwrap());
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["Error"], "Work.Broken");
    assert_eq!(failed[0]["Status"], "FAILED");
    // The item as the JSONL file wrote it: keys keep their order, as AWS keeps them.
    assert_eq!(failed[0]["Input"], "{\"id\":2,\"fail\":true}");
    let succeeded = read(manifest["ResultFiles"]["SUCCEEDED"][0]["Key"].as_str().unwrap());
    assert_eq!(succeeded.as_array().unwrap().len(), 8);
    assert_eq!(succeeded[0]["Output"], "{\"done\":0}");
    assert_eq!(manifest["ResultFiles"]["PENDING"], json!([]));
}

#[tokio::test]
async fn a_result_writer_that_cannot_write_fails_with_result_writer_failed() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "one.json", "[1]");
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        get_object("one.json", "JSON"),
        pass(),
        json!({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "no/such"}}}),
    );
    let (error, cause) = failure(&run(&engine, &machine, json!({})).await.1);
    assert_eq!(error, "States.ResultWriterFailed");
    assert!(cause.contains("no/such"), "{cause}");
}

#[tokio::test]
async fn a_redriven_map_reruns_only_its_failed_children() {
    let dir = tempfile::tempdir().unwrap();
    flagged_items(dir.path(), &[3, 8]);
    let calls = Arc::new(AtomicUsize::new(0));
    let fixed = Arc::new(AtomicBool::new(false));
    let store = Arc::new(SqliteExecutionStore::open(dir.path().join("sfn.db")).unwrap());
    let engine = engine(dir.path(), failing_registry(calls.clone(), fixed.clone())).with_store(store);
    let machine = distributed(
        get_object("work.jsonl", "JSONL"),
        work(),
        json!({"ToleratedFailureCount": 1, "MaxConcurrency": 10}),
    );
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(failure(&outcome).0, "States.ExceedToleratedFailureThreshold");
    let first_calls = calls.load(Ordering::SeqCst);
    let map_run = engine.list_map_runs(&arn).unwrap().remove(0);
    let done_before = engine
        .list_children(&map_run.map_run_arn)
        .unwrap()
        .iter()
        .filter(|c| c.status == ExecutionStatus::Succeeded)
        .count();
    assert!(
        done_before >= 7,
        "{done_before} children succeeded before the map failed"
    );

    fixed.store(true, Ordering::SeqCst);
    let report = engine.redrive_execution(&arn).await.unwrap();
    let redriven = output(&report.outcome).clone();
    assert_eq!(
        calls.load(Ordering::SeqCst) - first_calls,
        10 - done_before,
        "only the failed and unfinished children ran again"
    );
    let expected: Vec<Value> = (0..10).map(|id| json!({"done": id})).collect();
    assert_eq!(redriven, Value::Array(expected));

    let record = engine.describe_execution(&arn).unwrap();
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    assert_eq!(record.redrive_count, 1);
    let types: Vec<EventType> = engine
        .execution_history(&arn)
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    let failed_at = types.iter().position(|t| *t == EventType::ExecutionFailed).unwrap();
    assert_eq!(types[failed_at + 1], EventType::ExecutionRedriven);
    assert!(types[failed_at + 2..].contains(&EventType::MapRunRedriven));
    assert_eq!(types.last(), Some(&EventType::ExecutionSucceeded));
    // A succeeded execution cannot be redriven.
    assert!(engine.redrive_execution(&arn).await.is_err());
}

#[test]
fn validation_knows_where_distributed_fields_belong() {
    let inline_reader = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": true, "Label": "x",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
    }}});
    let problems = validate(&inline_reader.to_string());
    let pointers: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        pointers
            .iter()
            .any(|p| p.contains("/States/M/ItemReader") && p.contains("Distributed")),
        "{pointers:?}"
    );
    assert!(pointers.iter().any(|p| p.contains("/States/M/Label")), "{pointers:?}");

    let bad = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "End": true, "Label": "has space",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "XML", "MaxItems": 100_000_001, "CSVDelimiter": "COMMA"},
                       "Parameters": {"Bucket": "b", "Key": "k"}},
        "ItemBatcher": {"BatchInput": {}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Prefix": "p"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "FAST"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
    }}});
    let problems: Vec<String> = validate(&bad.to_string()).iter().map(|p| p.to_string()).collect();
    for pointer in [
        "/States/M/Label",
        "/States/M/ItemReader/ReaderConfig/InputType",
        "/States/M/ItemReader/ReaderConfig/MaxItems",
        "/States/M/ItemReader/ReaderConfig/CSVDelimiter",
        "/States/M/ItemBatcher",
        "/States/M/ResultWriter/Resource",
        "/States/M/ResultWriter/Parameters",
        "/States/M/ItemProcessor/ProcessorConfig/ExecutionType",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(pointer)),
            "{pointer} not in {problems:#?}"
        );
    }
}

#[tokio::test]
async fn an_object_directory_is_what_the_engine_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let objects = DirectoryObjectStorage::new(dir.path());
    objects.put_object("b", "x/y.json", b"[]".to_vec()).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("b/x/y.json")).unwrap(), b"[]");
}

#[tokio::test]
async fn a_child_waiting_for_a_task_token_parks_the_parent_until_it_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "two.json", "[{\"id\": 1}, {\"id\": 2}]");
    let tokens = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = tokens.clone();
    let mut registry = TaskRegistry::new();
    registry.register(
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        Arc::new(FnHandler(move |ctx: TaskContext, _input: Value| {
            seen.lock().unwrap().push(ctx.task_token.unwrap_or_default());
            futures::future::ready(Ok(json!({})))
        })),
    );
    let store = Arc::new(SqliteExecutionStore::open(dir.path().join("sfn.db")).unwrap());
    let engine = engine(dir.path(), registry).with_store(store);
    let machine = distributed(
        get_object("two.json", "JSON"),
        json!({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
               "Parameters": {"token.$": "$$.Task.Token"}, "End": true}),
        json!({}),
    );
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    assert!(matches!(outcome, ExecutionOutcome::Waiting { .. }), "{outcome:?}");
    assert_eq!(
        engine.describe_execution(&arn).unwrap().status,
        ExecutionStatus::Running
    );
    // Waiting for its children is not abandonment.
    assert!(engine.abort_abandoned().unwrap().is_empty());
    let issued = tokens.lock().unwrap().clone();
    assert_eq!(issued.len(), 2);
    engine
        .send_task_success(&issued[0], json!({"answer": 1}))
        .await
        .unwrap();
    assert_eq!(
        engine.describe_execution(&arn).unwrap().status,
        ExecutionStatus::Running
    );
    engine
        .send_task_success(&issued[1], json!({"answer": 2}))
        .await
        .unwrap();
    let record = engine.describe_execution(&arn).unwrap();
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    let mut answers: Vec<Value> = record.output.unwrap().as_array().unwrap().clone();
    answers.sort_by_key(|a| a["answer"].as_i64());
    assert_eq!(answers, vec![json!({"answer": 1}), json!({"answer": 2})]);
}

/// A map whose children each wait for a token; returns the engine, the machine and the
/// counter of token handler calls.
fn token_map(
    dir: &Path,
    tokens: Arc<std::sync::Mutex<Vec<String>>>,
    calls: Arc<AtomicUsize>,
) -> (Engine, StateMachine) {
    put(dir, "data", "two.json", "[{\"id\": 1}, {\"id\": 2}]");
    let mut registry = TaskRegistry::new();
    registry.register(
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        Arc::new(FnHandler(move |ctx: TaskContext, _input: Value| {
            calls.fetch_add(1, Ordering::SeqCst);
            tokens.lock().unwrap().push(ctx.task_token.unwrap_or_default());
            futures::future::ready(Ok(json!({})))
        })),
    );
    let store = Arc::new(SqliteExecutionStore::open(dir.join("sfn.db")).unwrap());
    let engine = engine(dir, registry).with_store(store);
    let machine = distributed(
        get_object("two.json", "JSON"),
        json!({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
               "Parameters": {"token.$": "$$.Task.Token"}, "TimeoutSeconds": 5, "End": true}),
        json!({"ToleratedFailureCount": 1}),
    );
    (engine, machine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_answered_at_the_same_moment_both_reach_the_parent() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (engine, machine) = token_map(dir.path(), tokens.clone(), calls.clone());
        let (arn, _) = run(&engine, &machine, json!({})).await;
        let issued = tokens.lock().unwrap().clone();
        let (a, b) = (engine.clone(), engine.clone());
        let (t0, t1) = (issued[0].clone(), issued[1].clone());
        let first = tokio::spawn(async move { a.send_task_success(&t0, json!({"answer": 1})).await });
        let second = tokio::spawn(async move { b.send_task_success(&t1, json!({"answer": 2})).await });
        let _ = first.await.unwrap();
        let _ = second.await.unwrap();
        let record = engine.describe_execution(&arn).unwrap();
        assert_eq!(
            record.status,
            ExecutionStatus::Succeeded,
            "the parent was left {:?}",
            record.status
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2, "no child ran twice");
    }
}

#[tokio::test]
async fn a_childs_task_timeout_fires_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (engine, machine) = token_map(dir.path(), tokens.clone(), Arc::new(AtomicUsize::new(0)));
    let clock = Arc::new(ManualClock::default());
    let engine = engine.with_clock(clock.clone());
    let (arn, _) = run(&engine, &machine, json!({})).await;
    let issued = tokens.lock().unwrap().clone();
    engine
        .send_task_success(&issued[0], json!({"answer": 1}))
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(3600));
    let fired = engine.check_timeouts().await.unwrap();
    assert_eq!(fired.len(), 1);
    let record = engine.describe_execution(&arn).unwrap();
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "one timed-out child is tolerated"
    );
    let output = record.output.unwrap();
    assert_eq!(output[1]["Error"], "States.Timeout");
}

#[tokio::test]
async fn a_redriven_standard_child_goes_on_from_the_state_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "one.json", "[{\"id\": 7}]");
    let prepared = Arc::new(AtomicUsize::new(0));
    let fixed = Arc::new(AtomicBool::new(false));
    let mut registry = TaskRegistry::new();
    let counter = prepared.clone();
    registry.register_lambda(
        "prepare",
        Arc::new(FnHandler(move |_ctx: TaskContext, input: Value| {
            counter.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Ok(input))
        })),
    );
    let flag = fixed.clone();
    registry.register_lambda(
        "finish",
        Arc::new(FnHandler(move |_ctx: TaskContext, input: Value| {
            futures::future::ready(if flag.load(Ordering::SeqCst) {
                Ok(json!({"finished": input["id"]}))
            } else {
                Err(TaskFailure::new("Finish.NotYet", "synthetic"))
            })
        })),
    );
    let store = Arc::new(SqliteExecutionStore::open(dir.path().join("sfn.db")).unwrap());
    let engine = engine(dir.path(), registry).with_store(store);
    let definition = json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "End": true,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": "data", "Key": "one.json"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Prepare", "States": {
                "Prepare": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:prepare", "Next": "Finish"},
                "Finish": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:finish", "End": true}}}}}});
    let machine = StateMachine::from_json(&definition.to_string()).unwrap();
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(failure(&outcome).0, "States.ExceedToleratedFailureThreshold");
    fixed.store(true, Ordering::SeqCst);
    let report = engine.redrive_execution(&arn).await.unwrap();
    assert_eq!(output(&report.outcome), &json!([{"finished": 7}]));
    assert_eq!(
        prepared.load(Ordering::SeqCst),
        1,
        "the state that succeeded did not run again"
    );
    let map_run = engine.list_map_runs(&arn).unwrap().remove(0);
    let child = &engine.list_children(&map_run.map_run_arn).unwrap()[0];
    let types: Vec<EventType> = engine
        .execution_history(&child.execution_arn)
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    assert!(types.contains(&EventType::ExecutionRedriven), "{types:?}");
    assert_eq!(
        engine.describe_execution(&child.execution_arn).unwrap().redrive_count,
        1
    );
}

#[tokio::test]
async fn a_batch_never_exceeds_the_payload_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..1000 {
        body.push_str(&json!({"n": i, "pad": "x".repeat(1000)}).to_string());
        body.push('\n');
    }
    put(dir.path(), "data", "wide.jsonl", body);
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = distributed(
        get_object("wide.jsonl", "JSONL"),
        json!({"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.Items)"}, "End": true}),
        json!({"ItemBatcher": {"MaxItemsPerBatch": 1000}}),
    );
    let (_, outcome) = run(&engine, &machine, json!({})).await;
    let sizes: Vec<i64> = output(&outcome)
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["n"].as_i64().unwrap())
        .collect();
    assert!(sizes.len() >= 4, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<i64>(), 1000);
}

#[tokio::test]
async fn a_map_run_that_fails_still_exports_what_its_children_did() {
    let dir = tempfile::tempdir().unwrap();
    flagged_items(dir.path(), &[4]);
    let engine = engine(
        dir.path(),
        failing_registry(Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false))),
    );
    let machine = distributed(
        get_object("work.jsonl", "JSONL"),
        work(),
        json!({"MaxConcurrency": 1,
               "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out"}}}),
    );
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(failure(&outcome).0, "States.ExceedToleratedFailureThreshold");
    let map_run = engine.list_map_runs(&arn).unwrap().remove(0);
    let key = map_run.result_writer_details.unwrap()["Key"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join("out").join(&key)).unwrap()).unwrap();
    let failed_key = manifest["ResultFiles"]["FAILED"][0]["Key"].as_str().unwrap();
    let failed: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out").join(failed_key)).unwrap()).unwrap();
    assert_eq!(failed[0]["Error"], "Work.Broken");
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Size"].as_u64().map(|s| s > 0),
        Some(true)
    );
}

#[tokio::test]
async fn a_redrive_after_a_retried_map_takes_up_the_last_attempts_map_run() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "five.json", "[0, 1, 2, 3, 4]");
    let calls = Arc::new(AtomicUsize::new(0));
    let item_two_failed = Arc::new(AtomicBool::new(false));
    let fixed = Arc::new(AtomicBool::new(false));
    let mut registry = TaskRegistry::new();
    let (c, two, f) = (calls.clone(), item_two_failed.clone(), fixed.clone());
    registry.register_lambda(
        "work",
        Arc::new(FnHandler(move |_ctx: TaskContext, input: Value| {
            c.fetch_add(1, Ordering::SeqCst);
            // Item 2 fails once (the first attempt); item 4 fails until fixed.
            let fail = (input == json!(2) && !two.swap(true, Ordering::SeqCst))
                || (input == json!(4) && !f.load(Ordering::SeqCst));
            futures::future::ready(if fail {
                Err(TaskFailure::new("Work.Broken", "synthetic"))
            } else {
                Ok(input)
            })
        })),
    );
    let store = Arc::new(SqliteExecutionStore::open(dir.path().join("sfn.db")).unwrap());
    let engine = engine(dir.path(), registry).with_store(store);
    let machine = distributed(
        get_object("five.json", "JSON"),
        work(),
        json!({"MaxConcurrency": 1,
               "Retry": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "MaxAttempts": 1, "IntervalSeconds": 1}]}),
    );
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(failure(&outcome).0, "States.ExceedToleratedFailureThreshold");
    assert_eq!(engine.list_map_runs(&arn).unwrap().len(), 2, "one map run per attempt");
    let before = calls.load(Ordering::SeqCst);
    fixed.store(true, Ordering::SeqCst);
    let report = engine.redrive_execution(&arn).await.unwrap();
    assert_eq!(output(&report.outcome), &json!([0, 1, 2, 3, 4]));
    assert_eq!(
        calls.load(Ordering::SeqCst) - before,
        1,
        "only item 4, unfinished in the last attempt, ran"
    );
}

#[tokio::test]
async fn an_item_selector_sees_the_workflow_variables() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "two.json", "[\"a\", \"b\"]");
    let engine = engine(dir.path(), TaskRegistry::new());
    let definition = json!({"StartAt": "Set", "States": {
        "Set": {"Type": "Pass", "Assign": {"batch": "b-7"}, "Next": "Fan"},
        "Fan": {"Type": "Map", "End": true,
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": "data", "Key": "two.json"}},
            "ItemSelector": {"value.$": "$$.Map.Item.Value", "batch.$": "$batch"},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}});
    let machine = StateMachine::from_json(&definition.to_string()).unwrap();
    let (_, outcome) = run(&engine, &machine, json!({})).await;
    assert_eq!(
        output(&outcome),
        &json!([{"value": "a", "batch": "b-7"}, {"value": "b", "batch": "b-7"}])
    );
}

#[tokio::test]
async fn a_finished_map_run_is_not_read_or_exported_again_when_its_execution_resumes() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "two.json", "[1, 2]");
    let tokens = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = tokens.clone();
    let mut registry = TaskRegistry::new();
    registry.register(
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        Arc::new(FnHandler(move |ctx: TaskContext, _input: Value| {
            seen.lock().unwrap().push(ctx.task_token.unwrap_or_default());
            futures::future::ready(Ok(json!({})))
        })),
    );
    let store = Arc::new(SqliteExecutionStore::open(dir.path().join("sfn.db")).unwrap());
    let engine = engine(dir.path(), registry).with_store(store);
    let definition = json!({"StartAt": "Fan", "States": {
        "Fan": {"Type": "Map", "Next": "Approve", "ResultPath": "$.fan",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": "data", "Key": "two.json"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}},
        "Approve": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"token.$": "$$.Task.Token"}, "ResultPath": null, "End": true}}});
    let machine = StateMachine::from_json(&definition.to_string()).unwrap();
    let (arn, outcome) = run(&engine, &machine, json!({})).await;
    assert!(matches!(outcome, ExecutionOutcome::Waiting { .. }), "{outcome:?}");
    // The items' object goes away and the export is tampered with: a resume must not care.
    std::fs::remove_file(dir.path().join("data/two.json")).unwrap();
    let manifest = engine.list_map_runs(&arn).unwrap()[0]
        .result_writer_details
        .clone()
        .unwrap()["Key"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(dir.path().join("out").join(&manifest), "kept").unwrap();
    let token = tokens.lock().unwrap()[0].clone();
    let report = engine.send_task_success(&token, json!({})).await.unwrap();
    let result = output(&report.outcome);
    assert_eq!(result["fan"]["ResultWriterDetails"]["Key"], manifest);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out").join(&manifest)).unwrap(),
        "kept"
    );
}

/// A JSONata Distributed Map: `ItemReader.Arguments` and `ReaderConfig.MaxItems` as
/// expressions, `ItemSelector` over `$states.context.Map.Item`, an `ItemBatcher` whose limit and
/// `BatchInput` are expressions, `Output` over `$states.result`, and a `ResultWriter` whose
/// `Arguments` name the prefix from the input.
#[tokio::test]
async fn a_jsonata_distributed_map_evaluates_its_reader_batcher_and_writer() {
    let dir = tempfile::tempdir().unwrap();
    put(
        dir.path(),
        "data",
        "orders.json",
        json!([{"id": 1, "n": 10}, {"id": 2, "n": 20}, {"id": 3, "n": 30}, {"id": 4, "n": 40}, {"id": 5, "n": 50}])
            .to_string(),
    );
    let engine = engine(dir.path(), TaskRegistry::new());
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Fan", "States": {"Fan": {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.limit %}"},
            "Arguments": {"Bucket": "{% $states.input.bucket %}", "Key": "{% $states.input.key %}"}
        },
        "ItemSelector": {"id": "{% $states.context.Map.Item.Value.id %}",
                         "twice": "{% $states.context.Map.Item.Value.n * 2 %}",
                         "index": "{% $states.context.Map.Item.Index %}"},
        "ItemBatcher": {"MaxItemsPerBatch": "{% 1 + 1 %}", "BatchInput": {"run": "{% $states.input.run %}"}},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Sum", "States": {"Sum": {"Type": "Pass",
                "Output": {"run": "{% $states.input.BatchInput.run %}", "sum": "{% $sum($states.input.Items.twice) %}"},
                "End": true}}
        },
        "Output": {"sums": "{% $states.result.sum %}", "runs": "{% $distinct($states.result.run) %}"},
        "End": true
    }}});
    let problems = validate(&definition.to_string());
    assert!(problems.is_empty(), "{problems:#?}");
    let machine = StateMachine::from_json(&definition.to_string()).unwrap();
    let input = json!({"bucket": "data", "key": "orders.json", "limit": 4, "run": "r7"});
    let (_, outcome) = run(&engine, &machine, input.clone()).await;
    // Four items (MaxItems), two per batch: (20 + 40), (60 + 80).
    assert_eq!(output(&outcome), &json!({"sums": [60, 140], "runs": "r7"}));

    // The same map exporting its results under the prefix the input names.
    let mut exporting = definition.clone();
    let fan = &mut exporting["States"]["Fan"];
    fan["ResultWriter"] = json!({"Resource": "arn:aws:states:::s3:putObject",
        "Arguments": {"Bucket": "data", "Prefix": "{% 'results/' & $states.input.run %}"}});
    fan["Output"] = json!("{% $states.result.ResultWriterDetails %}");
    let machine = StateMachine::from_json(&exporting.to_string()).unwrap();
    let (_, outcome) = run(&engine, &machine, input).await;
    let details = output(&outcome);
    assert_eq!(details["Bucket"], "data");
    let manifest_key = details["Key"].as_str().unwrap();
    assert!(manifest_key.starts_with("results/r7/"), "{manifest_key}");
    assert!(dir.path().join("data").join(manifest_key).is_file());
}

#[tokio::test]
async fn a_jsonata_distributed_maps_bad_values_fail_with_query_evaluation_errors() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "data", "items.json", "[1, 2, 3]");
    let engine = engine(dir.path(), TaskRegistry::new());
    let machine = |reader_config: Value, extra: Value| {
        let mut definition = json!({"QueryLanguage": "JSONata", "StartAt": "Fan", "States": {"Fan": {
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": reader_config,
                           "Arguments": {"Bucket": "data", "Key": "items.json"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                              "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "End": true}}});
        for (k, v) in extra.as_object().unwrap() {
            definition["States"]["Fan"][k] = v.clone();
        }
        StateMachine::from_json(&definition.to_string()).unwrap()
    };
    let not_a_count = machine(json!({"InputType": "JSON", "MaxItems": "{% 'two' %}"}), json!({}));
    let (error, cause) = failure(&run(&engine, &not_a_count, json!({})).await.1);
    assert_eq!(error, "States.QueryEvaluationError");
    assert!(cause.contains("MaxItems"), "{cause}");
    let zero_batch = machine(
        json!({"InputType": "JSON"}),
        json!({"ItemBatcher": {"MaxItemsPerBatch": "{% 0 %}"}}),
    );
    let (error, cause) = failure(&run(&engine, &zero_batch, json!({})).await.1);
    assert_eq!(error, "States.QueryEvaluationError");
    assert!(cause.contains("MaxItemsPerBatch"), "{cause}");
    let items_not_array = json!({"QueryLanguage": "JSONata", "StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "Items": "{% $states.input.many %}",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let machine = StateMachine::from_json(&items_not_array.to_string()).unwrap();
    let (error, _) = failure(&run(&engine, &machine, json!({"many": 3})).await.1);
    assert_eq!(error, "States.QueryEvaluationError");
    let (_, outcome) = run(&engine, &machine, json!({"many": [1, 2]})).await;
    assert_eq!(output(&outcome), &json!([1, 2]));
}

/// In a JSONata Distributed Map the JSONPath forms are refused (`Parameters`, `...Path`), as
/// AWS refuses them, each with its pointer.
#[test]
fn a_jsonata_distributed_map_refuses_the_jsonpath_fields() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Fan", "States": {"Fan": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "JSON", "MaxItemsPath": "$.n"},
                       "Parameters": {"Bucket": "b", "Key": "k"}},
        "ItemBatcher": {"MaxItemsPerBatchPath": "$.size"},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let problems: Vec<String> = validate(&definition.to_string())
        .iter()
        .map(|p| p.to_string())
        .collect();
    for pointer in [
        "/States/Fan/ItemReader/Parameters",
        "/States/Fan/ItemReader/ReaderConfig/MaxItemsPath",
        "/States/Fan/ItemBatcher/MaxItemsPerBatchPath",
        "/States/Fan/ResultWriter/Parameters",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(pointer)),
            "{pointer} not in {problems:#?}"
        );
    }
    let both = json!({"QueryLanguage": "JSONata", "StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "Items": "{% $states.input.list %}",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Arguments": {"Bucket": "b", "Key": "k"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let problems: Vec<String> = validate(&both.to_string()).iter().map(|p| p.to_string()).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/States/Fan/ItemReader") && p.contains("Items")),
        "{problems:#?}"
    );
    let bad_expression = json!({"QueryLanguage": "JSONata", "StartAt": "Fan", "States": {"Fan": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Arguments": {"Bucket": "{% $states.input.( %}", "Key": "k"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let problems: Vec<String> = validate(&bad_expression.to_string())
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/States/Fan/ItemReader/Arguments/Bucket")),
        "{problems:#?}"
    );
}
