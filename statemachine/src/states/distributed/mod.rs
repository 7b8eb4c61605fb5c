//! The Distributed Map (`ProcessorConfig.Mode = DISTRIBUTED`): a map run whose items (read
//! from S3 by `ItemReader`, or taken from the input) run as child executions, one per item or
//! per `ItemBatcher` batch, each with its own history and limits. The parent's history gains
//! a handful of events whatever the number of items.
//!
//! Children are kept in the execution store as they finish, so a map run that is resumed,
//! redriven or restarted after its process died finds the work already done: it reruns only
//! the children that failed (on a redrive) or never finished.

mod jsonata;
mod reader;
mod writer;

use super::map::{Tolerance, integer_field, limits, select_item};
use super::{keep_raw, select};
use crate::env::EvalError;
use crate::errors::{StateFailure, names};
use crate::executor::run::{Run, Step, Thread, Visit};
use crate::executor::{ExecutionOutcome, LOCAL_ARN_PREFIX};
use crate::history::{EventDetails, EventType};
use crate::json::{PAYLOAD_LIMIT_BYTES, serialized_len, to_compact};
use crate::model::map::{ItemBatcher, Transformation};
use crate::model::{MapState, Processor};
use crate::store::{
    ChildState, ExecutionRecord, ExecutionStatus, MapRunCounts, MapRunRecord, MapRunStatus, ParentLink,
};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use reader::{ItemStream, reader_failed};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use writer::{ResultTarget, write_results};

/// AWS caps `MaxItems` (and so a map run's items) at 100,000,000.
const MAX_ITEMS_CAP: u64 = 100_000_000;
/// AWS runs at most 10,000 children at once.
const MAX_CHILDREN_AT_ONCE: usize = 10_000;
/// Without a MaxConcurrency, AWS runs as many as it can; locally every child in flight holds
/// its input in memory, so "as many as it can" is this many.
const DEFAULT_CHILDREN_AT_ONCE: usize = 256;
/// Finished children are stored in groups of this many (one transaction each), or sooner
/// when the oldest waits longer than `SAVE_INTERVAL`: a crash loses little finished work.
const SAVE_GROUP: usize = 512;
/// ... or when the children waiting to be stored hold this much input and output.
const SAVE_BYTES: usize = 8 * 1024 * 1024;
const SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// Children are read back from the store this many at a time.
const PAGE: usize = 100;

/// Where the items come from, with room to put one back (a batch that is full).
struct Items {
    source: ItemSource,
    held: Option<Value>,
}

enum ItemSource {
    Reader(Box<ItemStream>),
    Inline(std::vec::IntoIter<Value>),
}

impl Items {
    fn new(source: ItemSource) -> Self {
        Self { source, held: None }
    }

    async fn next(&mut self, run: &Run) -> Result<Option<Value>, StateFailure> {
        if let Some(item) = self.held.take() {
            return Ok(Some(item));
        }
        match &mut self.source {
            ItemSource::Reader(stream) => stream.next(run.engine.objects().as_ref()).await,
            ItemSource::Inline(items) => Ok(items.next()),
        }
    }

    fn put_back(&mut self, item: Value) {
        self.held = Some(item);
    }
}

/// How items are grouped into child inputs.
struct Batching {
    max_items: Option<u64>,
    max_bytes: u64,
    batch_input: Option<Value>,
}

fn batching(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    input: &Value,
    batcher: &ItemBatcher,
) -> Result<Batching, StateFailure> {
    let max_items = integer_field(
        run,
        visit,
        thread,
        input,
        batcher.max_items_per_batch,
        batcher.max_items_per_batch_path.as_ref(),
        "MaxItemsPerBatchPath",
    )?;
    let max_bytes = integer_field(
        run,
        visit,
        thread,
        input,
        batcher.max_input_bytes_per_batch,
        batcher.max_input_bytes_per_batch_path.as_ref(),
        "MaxInputBytesPerBatchPath",
    )?;
    let batch_input = match &batcher.batch_input {
        Some(template) => Some(
            run.with_env(visit, thread, input, None, |env| template.eval(env))
                .map_err(|e| visit.runtime(e))?,
        ),
        None => None,
    };
    Batching::checked(visit, max_items, max_bytes, batch_input)
}

impl Batching {
    /// The batching the limits give, or a runtime error naming the one out of range.
    fn checked(
        visit: &Visit<'_>,
        max_items: Option<i64>,
        max_bytes: Option<i64>,
        batch_input: Option<Value>,
    ) -> Result<Batching, StateFailure> {
        let max_items = match max_items {
            Some(n) if n <= 0 => {
                return Err(visit.runtime(EvalError(format!(
                    "MaxItemsPerBatch must be a positive integer, not {n}"
                ))));
            }
            other => other.map(|n| n as u64),
        };
        let max_bytes = match max_bytes {
            Some(n) if n <= 0 || n as usize > PAYLOAD_LIMIT_BYTES => {
                return Err(visit.runtime(EvalError(format!(
                    "MaxInputBytesPerBatch must be from 1 to {PAYLOAD_LIMIT_BYTES}, not {n}"
                ))));
            }
            Some(n) => n as u64,
            // A batch is a child's input: it can never be larger than a state's payload.
            None => PAYLOAD_LIMIT_BYTES as u64,
        };
        Ok(Batching {
            max_items,
            max_bytes,
            batch_input,
        })
    }
}

/// A batch being filled.
struct Batch {
    items: Vec<Value>,
    bytes: usize,
}

impl Batching {
    fn base_bytes(&self) -> usize {
        // {"Items":[]} plus ,"BatchInput":{...}
        12 + self.batch_input.as_ref().map_or(0, |b| 14 + serialized_len(b))
    }

    fn input_of(&self, items: Vec<Value>) -> Value {
        let mut map = Map::new();
        if let Some(b) = &self.batch_input {
            map.insert("BatchInput".into(), b.clone());
        }
        map.insert("Items".into(), Value::Array(items));
        Value::Object(map)
    }
}

/// A deterministic UUID-shaped id: a replay, resume or redrive of the same state visit finds
/// the same map run.
fn map_run_id(execution_arn: &str, call: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{execution_arn}\n{call}").as_bytes());
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// What one child ended as.
struct ChildEnd {
    record: ExecutionRecord,
    items: u64,
}

/// The counts a map run keeps while it runs.
#[derive(Default)]
struct Progress {
    items_read: u64,
    children: u64,
    succeeded_items: u64,
    failed_items: u64,
    succeeded: u64,
    failed: u64,
    parked: u64,
    pending_saves: Vec<ExecutionRecord>,
}

impl Progress {
    fn counts(&self) -> (MapRunCounts, MapRunCounts) {
        let items = MapRunCounts {
            succeeded: self.succeeded_items,
            failed: self.failed_items,
            total: self.items_read,
            running: self.items_read - self.succeeded_items - self.failed_items,
            ..Default::default()
        };
        let executions = MapRunCounts {
            succeeded: self.succeeded,
            failed: self.failed,
            total: self.children,
            running: self.children - self.succeeded - self.failed,
            ..Default::default()
        };
        (items, executions)
    }
}

pub(super) async fn attempt<'a>(
    run: &Run,
    state: &'a MapState,
    visit: &Visit<'_>,
    input: Value,
    thread: &mut Thread,
) -> Result<Step<'a>, StateFailure> {
    let processor = state
        .item_processor()
        .ok_or_else(|| visit.runtime(EvalError("the Map state has no ItemProcessor".into())))?;
    let raw = keep_raw(&state.result_path, &input);
    let effective = select(run, visit, thread, &state.input_path, input)?;
    let (max_concurrency, tolerance) = match &state.jsonata {
        Some(fields) => jsonata::limits(run, visit, thread, fields, &effective)?,
        None => limits(run, state, visit, thread, &effective)?,
    };
    let label = state.label.as_deref().unwrap_or(visit.name);
    let store = run.engine.store().clone();
    let stored = |e: crate::store::StoreError| StateFailure::runtime(format!("the execution store failed: {e}"));
    let arn_of = |attempt: u64| {
        let id = map_run_id(&run.info.execution_arn, &format!("{}#a{attempt}", thread.call_id()));
        let arn = format!("{LOCAL_ARN_PREFIX}:mapRun:{}/{label}:{id}", run.info.state_machine_name);
        (id, arn)
    };
    let mut attempt = visit.retry_count;
    // A redrive starts the state's retries over; it takes up the map run of the last attempt.
    if run.redriving && attempt == 0 {
        while store.map_run(&arn_of(attempt + 1).1).map_err(stored)?.is_some() {
            attempt += 1;
        }
    }
    let (id, map_run_arn) = arn_of(attempt);

    // Without an export to S3, the children's outputs are the result, shaped by WriterConfig.
    let kept_config = match &state.jsonata {
        Some(fields) => jsonata::kept_writer_config(fields),
        None => state
            .result_writer
            .as_ref()
            .filter(|w| w.parameters.is_none())
            .and_then(|w| w.writer_config),
    };
    let transformation = kept_config
        .and_then(|c| c.transformation)
        .unwrap_or(Transformation::Compact);
    let existing = store.map_run(&map_run_arn).map_err(stored)?;
    if let Some(done) = existing.as_ref().filter(|m| m.status == MapRunStatus::Succeeded) {
        // A replay (the execution resumed after a later state parked, or was redriven): the
        // map run's result stands. Its items are not read again, its children not run again,
        // its results not exported again.
        run.record(EventType::MapStateStarted, EventDetails::default())?;
        run.record(
            EventType::MapRunStarted,
            EventDetails {
                map_run_arn: Some(map_run_arn.clone()),
                ..Default::default()
            },
        )?;
        let result = match &done.result_writer_details {
            Some(details) => json!({"MapRunArn": map_run_arn, "ResultWriterDetails": details}),
            None => collected_outputs(store.as_ref(), &map_run_arn, transformation, visit.name)?,
        };
        run.record(
            EventType::MapRunSucceeded,
            EventDetails {
                map_run_arn: Some(map_run_arn.clone()),
                ..Default::default()
            },
        )?;
        return super::map::finished(run, state, visit, thread, raw, &effective, result);
    }

    run.record(EventType::MapStateStarted, EventDetails::default())?;
    let items = match &state.jsonata {
        Some(fields) => jsonata::open_items(run, visit, thread, fields, &effective).await?,
        None => open_items(run, state, visit, thread, &effective).await?,
    };
    let batching = match (&state.jsonata, &state.item_batcher) {
        (Some(fields), _) => jsonata::batching(run, visit, thread, fields, &effective)?,
        (None, Some(b)) => Some(batching(run, visit, thread, &effective, b)?),
        (None, None) => None,
    };
    let result_target = match &state.jsonata {
        Some(fields) => jsonata::result_target(run, visit, thread, fields, &effective)?,
        None => jsonpath_result_target(run, state, visit, thread, &effective)?,
    };

    if let Some(mocked) = super::mocked_whole(run, visit) {
        // TestState: the children do not run; what they would have been given is inspected.
        let mut items = items;
        let total = inspect_mocked_inputs(
            run,
            state,
            visit,
            &effective,
            &thread.vars,
            &mut items,
            batching.as_ref(),
        )
        .await?;
        super::inspect(run, visit, "maxConcurrency", &json!(max_concurrency));
        if let Some(count) = tolerance.count {
            super::inspect(run, visit, "toleratedFailureCount", &json!(count));
        }
        if let Some(percentage) = tolerance.percentage {
            super::inspect(run, visit, "toleratedFailurePercentage", &json!(percentage));
        }
        let result = super::map::mocked_result(run, &tolerance, total, mocked)?;
        return super::map::finished(run, state, visit, thread, raw, &effective, result);
    }

    let mut map_run = existing.clone().unwrap_or_else(|| MapRunRecord {
        map_run_arn: map_run_arn.clone(),
        execution_arn: run.info.execution_arn.clone(),
        state_name: visit.name.to_string(),
        status: MapRunStatus::Running,
        start_date: run.clock.now(),
        stop_date: None,
        max_concurrency: max_concurrency as u64,
        tolerated_failure_count: tolerance.count.unwrap_or(0),
        tolerated_failure_percentage: tolerance.percentage.unwrap_or(0.0),
        execution_type: processor.config.execution_type.unwrap_or_default(),
        item_counts: MapRunCounts::default(),
        execution_counts: MapRunCounts::default(),
        error: None,
        cause: None,
        result_writer_details: None,
        redrive_count: 0,
    });
    run.record(
        EventType::MapRunStarted,
        EventDetails {
            map_run_arn: Some(map_run_arn.clone()),
            ..Default::default()
        },
    )?;
    let redriving = run.redriving && existing.as_ref().is_some_and(|m| m.status != MapRunStatus::Succeeded);
    if redriving {
        map_run.redrive_count += 1;
        map_run.status = MapRunStatus::Running;
        map_run.error = None;
        map_run.cause = None;
        run.record(
            EventType::MapRunRedriven,
            EventDetails {
                map_run_arn: Some(map_run_arn.clone()),
                ..Default::default()
            },
        )?;
    }
    store.put_map_run(&map_run).map_err(stored)?;
    run.checkpoint();

    let known: HashMap<u64, ChildState> = store
        .child_states(&map_run_arn)
        .map_err(stored)?
        .into_iter()
        .map(|c| (c.index, c))
        .collect();
    let outcome = run_children(
        run,
        state,
        processor,
        visit,
        &effective,
        items,
        batching.as_ref(),
        ChildPlan {
            map_run_arn: &map_run_arn,
            map_run_id: &id,
            label,
            known: &known,
            redriving,
            width: if max_concurrency == 0 {
                DEFAULT_CHILDREN_AT_ONCE
            } else {
                max_concurrency.min(MAX_CHILDREN_AT_ONCE)
            },
            tolerance: &tolerance,
            vars: &thread.vars,
        },
    )
    .await;
    let (progress, failure) = match outcome {
        Ok(p) => (p, None),
        Err((p, f)) => (p, Some(f)),
    };
    let (item_counts, execution_counts) = progress.counts();
    map_run.item_counts = item_counts;
    map_run.execution_counts = execution_counts;
    if let Some(failure) = failure {
        map_run.status = MapRunStatus::Failed;
        map_run.stop_date = Some(run.clock.now());
        map_run.error = failure.error.clone();
        map_run.cause = failure.cause.clone();
        // What the children did is exported all the same: the FAILED file tells why.
        if let Some(target) = &result_target {
            match write_results(
                run.engine.objects().as_ref(),
                target,
                &map_run_arn,
                &id,
                child_pages(store.as_ref(), &map_run_arn),
            )
            .await
            {
                Ok((details, written)) => {
                    map_run.item_counts.results_written = written;
                    map_run.result_writer_details = Some(details);
                }
                Err(e) => {
                    tracing::warn!(map_run = %map_run_arn, cause = ?e.cause, "could not export the failed map run's results")
                }
            }
        }
        store.put_map_run(&map_run).map_err(stored)?;
        run.record(
            EventType::MapRunFailed,
            EventDetails {
                error: failure.error.clone(),
                cause: failure.cause.clone(),
                ..Default::default()
            },
        )?;
        return Err(failure);
    }
    if progress.parked > 0 {
        store.put_map_run(&map_run).map_err(stored)?;
        return Ok(Step::Parked);
    }
    let result = match &result_target {
        Some(target) => {
            let pages = child_pages(store.as_ref(), &map_run_arn);
            let (details, written) =
                write_results(run.engine.objects().as_ref(), target, &map_run_arn, &id, pages).await?;
            map_run.item_counts.results_written = written;
            map_run.result_writer_details = Some(details.clone());
            json!({"MapRunArn": map_run_arn, "ResultWriterDetails": details})
        }
        None => collected_outputs(store.as_ref(), &map_run_arn, transformation, visit.name)?,
    };
    map_run.status = MapRunStatus::Succeeded;
    map_run.stop_date = Some(run.clock.now());
    store.put_map_run(&map_run).map_err(stored)?;
    run.record(
        EventType::MapRunSucceeded,
        EventDetails {
            map_run_arn: Some(map_run_arn.clone()),
            ..Default::default()
        },
    )?;
    super::map::finished(run, state, visit, thread, raw, &effective, result)
}

/// Reads every child's input as the map run would (for TestState's inspection data:
/// `afterItemSelector`, `afterItemBatcher`); how many items there were.
async fn inspect_mocked_inputs(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    effective: &Value,
    vars: &Map<String, Value>,
    items: &mut Items,
    batching: Option<&Batching>,
) -> Result<usize, StateFailure> {
    let mut inputs = Vec::new();
    let mut item_index = 0;
    while let Some((input, _)) =
        next_input(run, state, visit, effective, vars, items, batching, &mut item_index).await?
    {
        inputs.push(input);
    }
    let selects = state.selector().is_some() || state.jsonata.as_ref().is_some_and(|f| f.item_selector.is_some());
    match batching {
        Some(_) => super::inspect(run, visit, "afterItemBatcher", &Value::Array(inputs)),
        None if selects => super::inspect(run, visit, "afterItemSelector", &Value::Array(inputs)),
        None => {}
    }
    Ok(item_index)
}

/// Where a JSONPath `ResultWriter` with `Parameters` exports the results.
fn jsonpath_result_target(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    thread: &Thread,
    effective: &Value,
) -> Result<Option<ResultTarget>, StateFailure> {
    let Some(writer) = &state.result_writer else {
        return Ok(None);
    };
    let Some(template) = &writer.parameters else {
        return Ok(None);
    };
    let config = writer.writer_config.unwrap_or_default();
    let parameters = run
        .with_env(visit, thread, effective, None, |env| template.eval(env))
        .map_err(|e| visit.runtime(e))?;
    Ok(Some(ResultTarget::from_parameters(
        &parameters,
        config.output_type,
        config.transformation.unwrap_or(Transformation::None),
    )?))
}

/// The children's outputs in item order, as the state's result; past the payload limit a
/// ResultWriter is needed (as on AWS).
fn collected_outputs(
    store: &dyn crate::store::ExecutionStore,
    map_run_arn: &str,
    transformation: Transformation,
    state_name: &str,
) -> Result<Value, StateFailure> {
    let mut next_page = child_pages(store, map_run_arn);
    let mut outputs = Vec::new();
    let mut bytes = 2usize;
    loop {
        let page = next_page()?;
        if page.is_empty() {
            return Ok(Value::Array(outputs));
        }
        for child in &page {
            let before = outputs.len();
            writer::compact(child, transformation, &mut outputs);
            bytes += outputs[before..].iter().map(|o| serialized_len(o) + 1).sum::<usize>();
        }
        if bytes > PAYLOAD_LIMIT_BYTES {
            return Err(StateFailure::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The state/task '{state_name}' returned a result with a size exceeding the maximum number of bytes service limit. Export the results with a ResultWriter."
                ),
            ));
        }
    }
}

/// Hands out a map run's stored children in index order, a page at a time.
fn child_pages<'s>(
    store: &'s dyn crate::store::ExecutionStore,
    map_run_arn: &'s str,
) -> impl FnMut() -> Result<Vec<ExecutionRecord>, StateFailure> + 's {
    let mut from = 0u64;
    move || {
        let page = store
            .children(map_run_arn, from, PAGE)
            .map_err(|e| StateFailure::runtime(format!("the execution store failed: {e}")))?;
        if let Some(last) = page.last().and_then(|c| c.parent.as_ref()) {
            from = last.index + 1;
        }
        Ok(page)
    }
}

async fn open_items(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    thread: &Thread,
    effective: &Value,
) -> Result<Items, StateFailure> {
    let Some(reader) = &state.item_reader else {
        let items = match &state.items_path {
            Some(path) => run
                .with_env(visit, thread, effective, None, |env| {
                    env.require(path).map(|v| v.into_owned())
                })
                .map_err(|e| visit.runtime(e))?,
            None => effective.clone(),
        };
        return match items {
            Value::Array(items) => Ok(Items::new(ItemSource::Inline(items.into_iter()))),
            other => Err(visit.runtime(EvalError(format!(
                "Invalid path '{}': the items to iterate over must be a JSON array, got {}",
                state.items_path.as_ref().map_or("$", |p| p.text()),
                to_compact(&other)
            )))),
        };
    };
    let config = &reader.reader_config;
    let max_items = integer_field(
        run,
        visit,
        thread,
        effective,
        config.max_items,
        config.max_items_path.as_ref(),
        "MaxItemsPath",
    )?
    .unwrap_or(0);
    if max_items < 0 {
        return Err(reader_failed("field MaxItems must be positive"));
    }
    let parameters = match &reader.parameters {
        Some(template) => run
            .with_env(visit, thread, effective, None, |env| template.eval(env))
            .map_err(|e| visit.runtime(e))?,
        None => Value::Object(Map::new()),
    };
    open_reader(run, reader, &parameters, max_items as u64).await
}

/// The items `reader` reads with its evaluated `parameters`, at most `max_items` (0: no limit
/// but AWS's cap).
async fn open_reader(
    run: &Run,
    reader: &crate::model::map::ItemReader,
    parameters: &Value,
    max_items: u64,
) -> Result<Items, StateFailure> {
    let stream = ItemStream::open(run.engine.objects().as_ref(), reader, parameters).await?;
    let limit = if max_items == 0 {
        MAX_ITEMS_CAP
    } else {
        max_items.min(MAX_ITEMS_CAP)
    };
    Ok(Items::new(ItemSource::Reader(Box::new(stream.limited(limit)))))
}

struct ChildPlan<'p> {
    map_run_arn: &'p str,
    map_run_id: &'p str,
    label: &'p str,
    known: &'p HashMap<u64, ChildState>,
    redriving: bool,
    width: usize,
    tolerance: &'p Tolerance,
    /// The workflow variables an `ItemSelector` sees.
    vars: &'p Map<String, Value>,
}

#[allow(clippy::too_many_arguments)]
async fn run_children(
    run: &Run,
    state: &MapState,
    processor: &Processor,
    visit: &Visit<'_>,
    effective: &Value,
    mut items: Items,
    batching: Option<&Batching>,
    plan: ChildPlan<'_>,
) -> Result<Progress, (Progress, StateFailure)> {
    let mut progress = Progress::default();
    let mut in_flight = FuturesUnordered::new();
    let mut exhausted = false;
    let mut item_index = 0usize;
    let mut last_save = std::time::Instant::now();
    let mut pending_bytes = 0usize;
    let store = run.engine.store().clone();
    let flush = |progress: &mut Progress| -> Result<(), StateFailure> {
        if progress.pending_saves.is_empty() {
            return Ok(());
        }
        store
            .save_children(std::mem::take(&mut progress.pending_saves))
            .map_err(|e| StateFailure::runtime(format!("the execution store failed: {e}")))
    };
    loop {
        while !exhausted && in_flight.len() < plan.width {
            let next = match next_input(
                run,
                state,
                visit,
                effective,
                plan.vars,
                &mut items,
                batching,
                &mut item_index,
            )
            .await
            {
                Ok(n) => n,
                Err(f) => return Err((progress, f)),
            };
            let Some((child_input, count)) = next else {
                exhausted = true;
                break;
            };
            let index = progress.children;
            progress.children += 1;
            progress.items_read += count;
            let known = plan.known.get(&index);
            match known {
                Some(c) if c.status == ExecutionStatus::Succeeded => {
                    progress.succeeded += 1;
                    progress.succeeded_items += count;
                    continue;
                }
                // Waiting for its token, or its resume is under way elsewhere: that resume
                // ends it and wakes this run.
                Some(c)
                    if c.status == ExecutionStatus::Running
                        && (c.parked || (c.answered && run.engine.lease_is_live(&c.execution_arn).unwrap_or(true))) =>
                {
                    progress.parked += 1;
                    continue;
                }
                Some(c) if c.status.is_redrivable() && !plan.redriving => {
                    progress.failed += 1;
                    progress.failed_items += count;
                    continue;
                }
                _ => {}
            }
            let work: ChildWork = match known {
                // Answered, but the process resuming it died: resume it here.
                Some(c) if c.status == ExecutionStatus::Running && c.answered => {
                    ChildWork::Resume(c.execution_arn.clone())
                }
                Some(c) if c.status.is_redrivable() => ChildWork::Redrive(c.execution_arn.clone()),
                _ => ChildWork::Start,
            };
            in_flight.push(run_child(run, processor, &plan, index, child_input, count, work).boxed());
        }
        let Some(end) = in_flight.next().await else { break };
        let ChildEnd { record, items: count } = end;
        match record.status {
            ExecutionStatus::Succeeded => {
                progress.succeeded += 1;
                progress.succeeded_items += count;
            }
            ExecutionStatus::Running => progress.parked += 1,
            _ => {
                progress.failed += 1;
                progress.failed_items += count;
            }
        }
        let parked = record.status == ExecutionStatus::Running;
        // Each event of a child's history copies its input or output: count them all.
        pending_bytes += (serialized_len(&record.input) + record.output.as_ref().map_or(0, serialized_len))
            * (1 + record.history.len() / 2);
        progress.pending_saves.push(record);
        if parked
            || progress.pending_saves.len() >= SAVE_GROUP
            || pending_bytes >= SAVE_BYTES
            || last_save.elapsed() >= SAVE_INTERVAL
        {
            if let Err(f) = flush(&mut progress) {
                return Err((progress, f));
            }
            last_save = std::time::Instant::now();
            pending_bytes = 0;
        }
        // Counts are known at once; a percentage needs the total, known at the end.
        let fail_fast = match (plan.tolerance.count, plan.tolerance.percentage) {
            (None, None) => progress.failed_items > 0,
            (Some(c), _) => progress.failed_items > c,
            (None, Some(_)) => false,
        };
        if fail_fast {
            drop(in_flight);
            let _ = flush(&mut progress);
            return Err((progress, exceeded()));
        }
    }
    if let Err(f) = flush(&mut progress) {
        return Err((progress, f));
    }
    if progress.failed_items > 0
        && plan
            .tolerance
            .exceeded(progress.failed_items, progress.items_read as usize)
    {
        return Err((progress, exceeded()));
    }
    Ok(progress)
}

fn exceeded() -> StateFailure {
    StateFailure::new(
        names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
        "The specified tolerated failure threshold was exceeded",
    )
}

/// The next child's input (an item, or a batch) and how many items it holds.
#[allow(clippy::too_many_arguments)]
async fn next_input(
    run: &Run,
    state: &MapState,
    visit: &Visit<'_>,
    effective: &Value,
    vars: &Map<String, Value>,
    items: &mut Items,
    batching: Option<&Batching>,
    item_index: &mut usize,
) -> Result<Option<(Value, u64)>, StateFailure> {
    let Some(batching) = batching else {
        return Ok(match items.next(run).await? {
            Some(item) => {
                let selected = select_item(run, state, visit, effective, vars, *item_index, item)?;
                *item_index += 1;
                Some((selected, 1))
            }
            None => None,
        });
    };
    let mut batch = Batch {
        items: Vec::new(),
        bytes: batching.base_bytes(),
    };
    loop {
        if batching.max_items.is_some_and(|m| batch.items.len() as u64 >= m) {
            break;
        }
        let Some(item) = items.next(run).await? else { break };
        let selected = select_item(run, state, visit, effective, vars, *item_index, item.clone())?;
        let size = serialized_len(&selected) + usize::from(!batch.items.is_empty());
        let max = batching.max_bytes;
        if (batch.bytes + size) as u64 > max {
            if batch.items.is_empty() {
                return Err(visit.runtime(EvalError(format!(
                    "item {} is {size} bytes: a batch holding it would exceed {max} bytes",
                    *item_index
                ))));
            }
            items.put_back(item);
            break;
        }
        batch.bytes += size;
        batch.items.push(selected);
        *item_index += 1;
    }
    if batch.items.is_empty() {
        return Ok(None);
    }
    let count = batch.items.len() as u64;
    Ok(Some((batching.input_of(batch.items), count)))
}

/// What to do for one child.
enum ChildWork {
    /// Run it for the first time (or again: it was cut short before it was stored).
    Start,
    /// A stored child whose token was answered: resume it.
    Resume(String),
    /// A stored child that failed: redrive it (Standard children go on from the state that
    /// failed; Express ones start again, as on AWS).
    Redrive(String),
}

/// Runs one child execution to its end (or until it parks) and returns its record.
async fn run_child(
    run: &Run,
    processor: &Processor,
    plan: &ChildPlan<'_>,
    index: u64,
    input: Value,
    items: u64,
    work: ChildWork,
) -> ChildEnd {
    let execution_type = processor.config.execution_type.unwrap_or_default();
    let stored = match &work {
        ChildWork::Start => None,
        ChildWork::Resume(arn) | ChildWork::Redrive(arn) => run.engine.store().load(arn).ok().flatten(),
    };
    let mut redrive_count = 0;
    if let Some(mut record) = stored {
        match work {
            ChildWork::Resume(arn) => {
                if let Ok(report) = Box::pin(run.engine.resume(&arn)).await
                    && let Ok(Some(resumed)) = run.engine.store().load(&report.execution_arn)
                {
                    return ChildEnd { record: resumed, items };
                }
                return ChildEnd { record, items };
            }
            ChildWork::Redrive(_) if execution_type == crate::model::ExecutionType::Standard => {
                crate::executor::prepare_redrive(&mut record, run.clock.now());
                record.version += 1;
                let outcome = Box::pin(run.engine.run_record(&processor.machine, &mut record, true)).await;
                if let ExecutionOutcome::Waiting { .. } = outcome {
                    record.status = ExecutionStatus::Running;
                }
                return ChildEnd { record, items };
            }
            _ => redrive_count = record.redrive_count + 1,
        }
    }
    let sm = format!("{}/{}", run.info.state_machine_name, plan.label);
    let name = format!("{}-{index}", &plan.map_run_id[..8]);
    let mut record = ExecutionRecord {
        execution_arn: format!("{LOCAL_ARN_PREFIX}:execution:{sm}:{name}"),
        name,
        state_machine_arn: format!("{LOCAL_ARN_PREFIX}:stateMachine:{sm}"),
        state_machine_name: sm,
        definition: processor.machine.definition().to_string(),
        input,
        status: ExecutionStatus::Running,
        start_date: run.clock.now(),
        stop_date: None,
        output: None,
        error: None,
        cause: None,
        pending_tasks: Vec::new(),
        replay: HashMap::new(),
        mocks: run.mocks.as_ref().map(|m| m.as_ref().clone()),
        seed: run.info.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        history_limit: Some(crate::history::DEFAULT_HISTORY_LIMIT),
        parent: Some(ParentLink {
            execution_arn: run.info.execution_arn.clone(),
            map_run_arn: plan.map_run_arn.to_string(),
            index,
        }),
        execution_type,
        redrive_count,
        redrive_date: None,
        history_splices: Vec::new(),
        failure_point: None,
        version: 0,
        history: Arc::new(Vec::new()),
    };
    let outcome = Box::pin(run.engine.run_record(&processor.machine, &mut record, false)).await;
    if let ExecutionOutcome::Waiting { .. } = outcome {
        record.status = ExecutionStatus::Running;
    }
    if execution_type == crate::model::ExecutionType::Express {
        record.history = Arc::new(Vec::new());
    }
    ChildEnd { record, items }
}
