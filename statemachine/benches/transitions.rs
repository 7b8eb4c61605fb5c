//! Criterion benchmarks of the engine's hot paths (see also the `throughput` example).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_statemachine::bench_support::{counting_loop, counting_loop_jsonata, map_input, map_over_pass};
use sluice_statemachine::{Engine, EngineOptions, ManualClock, StartExecution, StateMachine, TaskRegistry};
use std::sync::Arc;

fn engine() -> Engine {
    Engine::new(TaskRegistry::new())
        .with_clock(Arc::new(ManualClock::default()))
        .with_options(EngineOptions {
            history_limit: None,
            ..Default::default()
        })
}

fn transitions(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("transitions");
    group.sample_size(10);

    let looping = StateMachine::from_json(&counting_loop(50_000)).unwrap();
    group.throughput(Throughput::Elements(100_002));
    group.bench_function("choice_pass_loop_100k", |b| {
        // The engine (holding the 200,000-event history) is dropped outside the timing.
        b.iter_with_large_drop(|| {
            let engine = engine();
            runtime
                .block_on(engine.start_execution(&looping, StartExecution::new("Bench", serde_json::json!({"i": 0}))))
                .unwrap();
            engine
        })
    });

    let looping_jsonata = StateMachine::from_json(&counting_loop_jsonata(50_000)).unwrap();
    group.bench_function("choice_pass_loop_100k_jsonata", |b| {
        b.iter_with_large_drop(|| {
            let engine = engine();
            runtime
                .block_on(engine.start_execution(
                    &looping_jsonata,
                    StartExecution::new("Bench", serde_json::json!({"i": 0})),
                ))
                .unwrap();
            engine
        })
    });

    let map = StateMachine::from_json(&map_over_pass()).unwrap();
    let input = map_input(10_000);
    group.throughput(Throughput::Elements(10_001));
    group.bench_function("map_10k_over_pass", |b| {
        b.iter_with_large_drop(|| {
            let engine = engine();
            runtime
                .block_on(engine.start_execution(&map, StartExecution::new("Bench", input.clone())))
                .unwrap();
            engine
        })
    });
    group.finish();
}

criterion_group!(benches, transitions);
criterion_main!(benches);
