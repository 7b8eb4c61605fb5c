//! One consumer's key lock: a short lease so two overlapping executions never issue keys for
//! the same consumer at once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sluice_core::Table;
use sluice_core::lease::{Acquired, Lease, ProcessLiveness};

use super::ConsumerRef;
use crate::error::TokenError;

/// How long the lock is held without renewal.
const LOCK_SECS: i64 = 120;

/// A short lease ([`sluice_core::lease`]) so two overlapping executions never issue keys for
/// one consumer at once. It names its holder (this process, and this call): a lease left by a
/// process that died on this host is taken over at once, by exactly one run, not waited out.
pub(super) struct ConsumerLock {
    lease: Lease,
    owner: String,
}

impl ConsumerLock {
    pub(super) async fn acquire(
        control: Arc<dyn Table>,
        consumer: &ConsumerRef<'_>,
        now: DateTime<Utc>,
    ) -> Result<ConsumerLock, TokenError> {
        let lease = Lease::new(
            control,
            &format!("consumer-keys#{}#{}", consumer.dataset, consumer.name),
        );
        // Per call, so two calls of one process exclude each other too.
        let owner = format!(
            "{}-{}",
            sluice_core::process::this_process(),
            hex::encode(rand::random::<[u8; 4]>())
        );
        // The lease is judged by wall-clock time, whatever clock the step runs with.
        let wall = Utc::now().timestamp().max(now.timestamp());
        match lease.acquire(&owner, LOCK_SECS, wall, &ProcessLiveness).await? {
            Acquired::Held { .. } => Ok(ConsumerLock { lease, owner }),
            Acquired::Busy { .. } => Err(TokenError::Busy {
                dataset: consumer.dataset.to_string(),
                consumer: consumer.name.to_string(),
            }),
        }
    }

    pub(super) async fn release(self) {
        if let Err(err) = self.lease.release(&self.owner, Utc::now().timestamp()).await {
            // The lease expires by itself; a failed release only delays the next run.
            tracing::warn!(error = %err, "could not release the consumer lock");
        }
    }
}
