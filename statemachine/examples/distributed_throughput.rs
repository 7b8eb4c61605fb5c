//! `cargo run --release -p sluice-statemachine --example distributed_throughput -- ITEMS BATCH [STANDARD|EXPRESS] [memory|sqlite]`:
//! items per second through a Distributed Map of Pass children that reads a JSONL object of
//! ITEMS items from a local object directory, BATCH items per child (1 = no ItemBatcher), with
//! the results exported by a ResultWriter. Children are kept in the execution store as they
//! finish (SQLite by default, what `sluice run` uses). Peak memory: run it under
//! `/usr/bin/time -v`.

use serde_json::json;
use sluice_statemachine::{
    DirectoryObjectStorage, Engine, ExecutionOutcome, ExecutionStore, MemoryExecutionStore, SqliteExecutionStore,
    StartExecution, StateMachine, TaskRegistry,
};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

fn definition(batch: usize, execution_type: &str) -> String {
    let mut map = json!({
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
                       "Parameters": {"Bucket": "bench", "Key": "items.jsonl"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
                          "StartAt": "Touch", "States": {"Touch": {"Type": "Pass", "End": true}}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "bench", "Prefix": "out"}},
        "End": true
    });
    if batch > 1 {
        map["ItemBatcher"] = json!({"MaxItemsPerBatch": batch});
    }
    json!({"StartAt": "Fan", "States": {"Fan": map}}).to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let items: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let batch: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(1);
    let execution_type = args.get(2).map(String::as_str).unwrap_or("STANDARD").to_string();
    let store_kind = args.get(3).map(String::as_str).unwrap_or("sqlite").to_string();
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("s3/bench"))?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.path().join("s3/bench/items.jsonl"))?);
    for i in 0..items {
        writeln!(file, "{{\"id\":{i},\"key\":\"raw/orders/{i:08}/orders.csv\"}}")?;
    }
    file.flush()?;
    drop(file);
    let store: Arc<dyn ExecutionStore> = match store_kind.as_str() {
        "memory" => Arc::new(MemoryExecutionStore::new()),
        _ => Arc::new(SqliteExecutionStore::open(dir.path().join("sfn.db"))?),
    };
    let engine = Engine::new(TaskRegistry::new())
        .with_store(store.clone())
        .with_objects(Arc::new(DirectoryObjectStorage::new(dir.path().join("s3"))));
    let machine = StateMachine::from_json(&definition(batch, &execution_type))?;
    let started = Instant::now();
    let report = engine
        .start_execution(&machine, StartExecution::new("Bench", json!({})))
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let events = engine.execution_history(&report.execution_arn)?.len();
    match report.outcome {
        ExecutionOutcome::Succeeded { .. } => println!(
            "distributed map, {items} items, batches of {batch}, {execution_type} children, {store_kind} store: {seconds:.2} s = {:.0} items/s ({} children, {events} parent events)",
            items as f64 / seconds,
            items.div_ceil(batch)
        ),
        other => println!("unexpected outcome: {other:?}"),
    }
    Ok(())
}
