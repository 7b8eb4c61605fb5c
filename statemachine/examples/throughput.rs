//! `cargo run --release -p sluice-statemachine --example throughput`: state transitions per
//! second for a 100,000-transition Choice/Pass loop (JSONPath, then JSONata) and a 10,000-item Map over Pass, on one
//! core, with the history limit lifted (history is still recorded).

use sluice_statemachine::bench_support::{counting_loop, counting_loop_jsonata, map_input, map_over_pass};
use sluice_statemachine::{
    Engine, EngineOptions, ExecutionOutcome, ManualClock, StartExecution, StateMachine, TaskRegistry,
};
use std::sync::Arc;
use std::time::Instant;

fn engine() -> Engine {
    Engine::new(TaskRegistry::new())
        .with_clock(Arc::new(ManualClock::default()))
        .with_options(EngineOptions {
            history_limit: None,
            ..Default::default()
        })
}

async fn measure(label: &str, definition: &str, input: serde_json::Value, transitions: u64, runs: u32) {
    let machine = match StateMachine::from_json(definition) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{label}: {e}");
            return;
        }
    };
    let mut best = f64::MAX;
    for _ in 0..runs {
        let engine = engine();
        let started = Instant::now();
        let report = engine
            .start_execution(&machine, StartExecution::new("Bench", input.clone()))
            .await;
        let seconds = started.elapsed().as_secs_f64();
        match report.map(|r| r.outcome) {
            Ok(ExecutionOutcome::Succeeded { .. }) => best = best.min(seconds),
            other => {
                eprintln!("{label}: unexpected outcome {other:?}");
                return;
            }
        }
    }
    println!(
        "{label}: {transitions} transitions in {:.1} ms (best of {runs}) = {:.0} transitions/s",
        best * 1000.0,
        transitions as f64 / best
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // 50,000 iterations x (Choice + Pass) + the final Choice and Succeed.
    measure(
        "choice/pass loop",
        &counting_loop(50_000),
        serde_json::json!({"i": 0}),
        100_002,
        5,
    )
    .await;
    measure(
        "choice/pass loop in JSONata",
        &counting_loop_jsonata(50_000),
        serde_json::json!({"i": 0}),
        100_002,
        5,
    )
    .await;
    // The Map state itself plus one Pass per item.
    measure(
        "map of 10,000 items over Pass",
        &map_over_pass(),
        map_input(10_000),
        10_001,
        5,
    )
    .await;
}
