//! One batch written or read in full: what the backend leaves unprocessed (DynamoDB's
//! `UnprocessedItems` / `UnprocessedKeys`), or a retryable failure, is sent again after a
//! jittered backoff, up to `backoff.max_attempts` retries. The one place this rule lives.

use super::Table;
use crate::BackendError;
use crate::item::{Item, ItemKey};
use crate::retry::Backoff;

/// Why a batch did not go through in full.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The backend still left `left` items (or keys) unprocessed after `retries` retries.
    #[error("{left} still unprocessed after {retries} retries")]
    Unprocessed { left: usize, retries: u32 },
}

/// Writes every item of `items` (at most [`Table::max_batch_put`]).
pub async fn put_batch_fully(table: &dyn Table, items: Vec<Item>, backoff: Backoff) -> Result<(), BatchError> {
    until_processed(items, backoff, |pending| async move {
        let answer = table.batch_put(&pending).await.map(|left| (left, Vec::new()));
        (pending, answer)
    })
    .await
    .map(drop)
}

/// Reads every key of `keys` (at most [`super::MAX_BATCH_GET`], each once); missing items are
/// simply absent from the answer.
pub async fn get_batch_fully(table: &dyn Table, keys: Vec<ItemKey>, backoff: Backoff) -> Result<Vec<Item>, BatchError> {
    until_processed(keys, backoff, |pending| async move {
        let answer = table
            .batch_get(pending.clone())
            .await
            .map(|batch| (batch.unprocessed, batch.items));
        (pending, answer)
    })
    .await
}

/// Sends `pending` until `send` leaves nothing unprocessed. `send` gives back what it was
/// sent (to send again after a retryable failure) and answers what it left and what it read.
async fn until_processed<T, Sent>(
    mut pending: Vec<T>,
    backoff: Backoff,
    mut send: impl FnMut(Vec<T>) -> Sent,
) -> Result<Vec<Item>, BatchError>
where
    Sent: Future<Output = (Vec<T>, Result<(Vec<T>, Vec<Item>), BackendError>)>,
{
    let mut found = Vec::new();
    let mut retries = 0u32;
    loop {
        pending = match send(pending).await {
            (_, Ok((left, items))) => {
                found.extend(items);
                left
            }
            (sent, Err(err)) if err.is_retryable() && retries < backoff.max_attempts => sent,
            (_, Err(err)) => return Err(BatchError::Backend(err)),
        };
        if pending.is_empty() {
            return Ok(found);
        }
        if retries >= backoff.max_attempts {
            return Err(BatchError::Unprocessed {
                left: pending.len(),
                retries,
            });
        }
        tokio::time::sleep(backoff.delay(retries)).await;
        retries += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::tables::{BatchGet, DeleteCondition, Page, PageRequest, PutCondition};

    /// Leaves the last item (or key) of every batch unprocessed `stubborn` times, and fails
    /// retryably once first.
    struct Grudging {
        stubborn: Mutex<u32>,
        failed_once: Mutex<bool>,
        calls: Mutex<u32>,
    }

    impl Grudging {
        fn new(stubborn: u32) -> Self {
            Grudging {
                stubborn: Mutex::new(stubborn),
                failed_once: Mutex::new(false),
                calls: Mutex::new(0),
            }
        }

        fn answer<T: Clone>(&self, batch: &[T]) -> Result<(Vec<T>, Vec<T>), BackendError> {
            *self.calls.lock().unwrap() += 1;
            let mut failed = self.failed_once.lock().unwrap();
            if !*failed {
                *failed = true;
                return Err(BackendError::Throttled {
                    service: "DynamoDB",
                    operation: "Batch",
                    message: "slow down".into(),
                });
            }
            let mut stubborn = self.stubborn.lock().unwrap();
            if *stubborn > 0 && !batch.is_empty() {
                *stubborn -= 1;
                let (done, left) = batch.split_at(batch.len() - 1);
                return Ok((done.to_vec(), left.to_vec()));
            }
            Ok((batch.to_vec(), Vec::new()))
        }
    }

    #[async_trait]
    impl Table for Grudging {
        fn name(&self) -> &str {
            "grudging"
        }
        async fn get(&self, _: &ItemKey) -> Result<Option<Item>, BackendError> {
            Ok(None)
        }
        async fn put(&self, _: Item, _: PutCondition<'_>) -> Result<(), BackendError> {
            Ok(())
        }
        async fn delete(&self, _: &ItemKey, _: DeleteCondition) -> Result<Option<Item>, BackendError> {
            Ok(None)
        }
        async fn batch_put(&self, items: &[Item]) -> Result<Vec<Item>, BackendError> {
            self.answer(items).map(|(_, left)| left)
        }
        async fn batch_get(&self, keys: Vec<ItemKey>) -> Result<BatchGet, BackendError> {
            let (done, unprocessed) = self.answer(&keys)?;
            Ok(BatchGet {
                items: done.into_iter().map(|key| key.to_item()).collect(),
                unprocessed,
            })
        }
        async fn query(&self, _: &str, _: &PageRequest) -> Result<Page, BackendError> {
            Ok(Page::default())
        }
    }

    fn fast(max_attempts: u32) -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            max_attempts,
        }
    }

    fn keys() -> Vec<ItemKey> {
        (0..3).map(|i| ItemKey::new("p", format!("{i}"))).collect()
    }

    #[tokio::test]
    async fn what_is_left_unprocessed_or_throttled_is_sent_again() {
        let table = Grudging::new(2);
        put_batch_fully(&table, keys().iter().map(ItemKey::to_item).collect(), fast(5))
            .await
            .unwrap();
        assert_eq!(
            *table.calls.lock().unwrap(),
            4,
            "throttled, two partial answers, the rest"
        );
        let table = Grudging::new(2);
        let mut found = get_batch_fully(&table, keys(), fast(5)).await.unwrap();
        found.sort_by_key(ItemKey::of);
        assert_eq!(found, keys().iter().map(ItemKey::to_item).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn retries_run_out_with_the_count_of_what_is_left() {
        let table = Grudging::new(10);
        let err = put_batch_fully(&table, keys().iter().map(ItemKey::to_item).collect(), fast(3))
            .await
            .unwrap_err();
        assert!(matches!(err, BatchError::Unprocessed { left: 1, retries: 3 }), "{err}");
        assert_eq!(*table.calls.lock().unwrap(), 4, "the first call and three retries");
        let err = get_batch_fully(&Grudging::new(10), keys(), fast(3)).await.unwrap_err();
        assert!(matches!(err, BatchError::Unprocessed { left: 1, retries: 3 }), "{err}");
    }
}
