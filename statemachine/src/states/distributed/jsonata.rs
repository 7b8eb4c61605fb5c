//! A JSONata Distributed Map's fields, evaluated with `$states` and the variables bound: `Items`
//! or `ItemReader` (`Arguments`, `ReaderConfig.MaxItems`), `ItemBatcher` (its limits and
//! `BatchInput`), `ResultWriter` (`Arguments`), `MaxConcurrency` and the tolerated failures.
//! What they come to is what the JSONPath fields come to, so the map run itself is one.

use serde_json::{Map, Value};

use super::writer::ResultTarget;
use super::{Batching, ItemSource, Items, Tolerance, open_reader};
use crate::errors::StateFailure;
use crate::executor::run::{Run, Thread, Visit};
use crate::jsonata::Bound;
use crate::model::jsonata::JsonataFields;
use crate::model::map::{ItemReader, Transformation, WriterConfig};
use crate::states::jsonata::{Extra, bound, value_or, whole_seconds};

fn bound_for(run: &Run, visit: &Visit<'_>, thread: &Thread, input: &Value) -> Bound {
    bound(run, visit, thread, input, Extra::default())
}

pub(super) fn limits(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    fields: &JsonataFields,
    input: &Value,
) -> Result<(usize, Tolerance), StateFailure> {
    crate::states::map::jsonata_limits(visit, fields, &bound_for(run, visit, thread, input))
}

/// The `WriterConfig` of a `ResultWriter` that exports nothing (it only shapes the result).
pub(super) fn kept_writer_config(fields: &JsonataFields) -> Option<WriterConfig> {
    fields
        .result_writer
        .as_ref()
        .filter(|w| w.arguments.is_none())
        .and_then(|w| w.writer_config)
}

/// `ItemReader`'s items, else `Items` (default: the input).
pub(super) async fn open_items(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    fields: &JsonataFields,
    input: &Value,
) -> Result<Items, StateFailure> {
    let bound = bound_for(run, visit, thread, input);
    let Some(reader) = &fields.item_reader else {
        let items = crate::states::jsonata::items(visit, fields, &bound, input)?;
        return Ok(Items::new(ItemSource::Inline(items.into_iter())));
    };
    let max_items = whole_seconds(
        visit,
        reader.reader_config.max_items.as_ref(),
        "MaxItems",
        &bound,
        false,
    )?
    .unwrap_or(0);
    let parameters = value_or(visit, reader.arguments.as_ref(), "Arguments", &bound, || {
        Value::Object(Map::new())
    })?;
    let literal = ItemReader {
        resource: reader.resource.clone(),
        parameters: None,
        reader_config: reader.reader_config.literal.clone(),
    };
    open_reader(run, &literal, &parameters, max_items).await
}

pub(super) fn batching(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    fields: &JsonataFields,
    input: &Value,
) -> Result<Option<Batching>, StateFailure> {
    let Some(batcher) = &fields.item_batcher else {
        return Ok(None);
    };
    let bound = bound_for(run, visit, thread, input);
    let limit = |template, field| {
        whole_seconds(visit, template, field, &bound, true).map(|n| n.map(|n| n.min(i64::MAX as u64) as i64))
    };
    let max_items = limit(batcher.max_items_per_batch.as_ref(), "MaxItemsPerBatch")?;
    let max_bytes = limit(batcher.max_input_bytes_per_batch.as_ref(), "MaxInputBytesPerBatch")?;
    let batch_input = match &batcher.batch_input {
        Some(template) => Some(
            template
                .evaluate("BatchInput", &bound)
                .map_err(|err| visit.query_error(err))?,
        ),
        None => None,
    };
    Batching::checked(visit, max_items, max_bytes, batch_input).map(Some)
}

/// Where a `ResultWriter` with `Arguments` exports the results.
pub(super) fn result_target(
    run: &Run,
    visit: &Visit<'_>,
    thread: &Thread,
    fields: &JsonataFields,
    input: &Value,
) -> Result<Option<ResultTarget>, StateFailure> {
    let Some(writer) = &fields.result_writer else {
        return Ok(None);
    };
    let Some(arguments) = &writer.arguments else {
        return Ok(None);
    };
    let parameters = arguments
        .evaluate("Arguments", &bound_for(run, visit, thread, input))
        .map_err(|err| visit.query_error(err))?;
    let config = writer.writer_config.unwrap_or_default();
    Ok(Some(ResultTarget::from_parameters(
        &parameters,
        config.output_type,
        config.transformation.unwrap_or(Transformation::None),
    )?))
}
