//! Writing batches: bounded concurrency, each batch written in full by the table port's
//! [`put_batch_fully`] (unprocessed items retried with backoff).

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sluice_core::retry::Backoff;
use sluice_core::tables::{BatchError, put_batch_fully};
use sluice_core::{BackendError, Item, Table};
use tokio::sync::mpsc;

use crate::IngestError;

/// Writes every batch from `batches`, at most `concurrency` at once. Returns the number of
/// items written. Stops at the first failure (dropping the receiver stops the reader too).
pub async fn write_batches(
    table: Arc<dyn Table>,
    mut batches: mpsc::Receiver<Vec<Item>>,
    concurrency: usize,
    backoff: Backoff,
) -> Result<u64, IngestError> {
    let mut in_flight = FuturesUnordered::new();
    let mut written = 0u64;
    let mut open = true;
    let max_items = table.max_batch_put();
    while open || !in_flight.is_empty() {
        tokio::select! {
            batch = batches.recv(), if open && in_flight.len() < concurrency => match batch {
                Some(mut batch) => {
                    // Backends that take more than DynamoDB's 25 get the batches already
                    // waiting merged in order (each is free of repeated keys; in one backend
                    // transaction a later item still replaces an earlier one).
                    while batch.len() < max_items {
                        match batches.try_recv() {
                            Ok(next) if batch.len() + next.len() <= max_items => batch.extend(next),
                            Ok(next) => {
                                in_flight.push(write_one(table.clone(), std::mem::replace(&mut batch, next), backoff));
                            }
                            Err(_) => break,
                        }
                    }
                    in_flight.push(write_one(table.clone(), batch, backoff));
                }
                None => open = false,
            },
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                written += done?;
            }
        }
    }
    Ok(written)
}

async fn write_one(table: Arc<dyn Table>, batch: Vec<Item>, backoff: Backoff) -> Result<u64, IngestError> {
    let total = batch.len() as u64;
    put_batch_fully(table.as_ref(), batch, backoff)
        .await
        .map_err(|err| match err {
            BatchError::Backend(err) => IngestError::Backend(err),
            BatchError::Unprocessed { left, retries } => IngestError::Backend(BackendError::Throttled {
                service: "DynamoDB",
                operation: "BatchWriteItem",
                message: format!("{left} items still unprocessed after {retries} retries"),
            }),
        })?;
    Ok(total)
}
