//! Leases in the control table: one holder at a time for a named thing (a mailbox's run, the
//! consumer-key issue), with an expiry, renewed while the holder works.
//!
//! A lease is taken over before its expiry only when its holder is known to be gone: an
//! execution that is no longer RUNNING (the local engine's store, or Step Functions'
//! DescribeExecution), or a process of this host that died. When nothing can be known about
//! the holder, only the expiry frees the lease. Every write is conditional, so of two
//! contenders exactly one wins.

use std::sync::Arc;

use async_trait::async_trait;

use crate::BackendError;
use crate::item::{AttrValue, EXPIRES_AT, ItemKey};
use crate::tables::{PutCondition, Table};

/// Whether a lease's holder still runs.
#[async_trait]
pub trait HolderLiveness: Send + Sync {
    /// `Some(true)`: it runs; `Some(false)`: it ended or never existed; `None`: cannot tell.
    async fn is_running(&self, holder: &str) -> Option<bool>;
}

/// Knows nothing about holders: only expiry frees a lease.
pub struct UnknownLiveness;

#[async_trait]
impl HolderLiveness for UnknownLiveness {
    async fn is_running(&self, _holder: &str) -> Option<bool> {
        None
    }
}

/// Holders named by [`crate::process::this_process`]: a process of this host that is gone.
pub struct ProcessLiveness;

#[async_trait]
impl HolderLiveness for ProcessLiveness {
    async fn is_running(&self, holder: &str) -> Option<bool> {
        crate::process::is_gone(holder).then_some(false)
    }
}

/// Holders that are Step Functions executions (their ARNs), asked with DescribeExecution.
pub struct StepFunctionsLiveness {
    client: aws_sdk_sfn::Client,
}

impl StepFunctionsLiveness {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        StepFunctionsLiveness { client }
    }
}

#[async_trait]
impl HolderLiveness for StepFunctionsLiveness {
    async fn is_running(&self, holder: &str) -> Option<bool> {
        if !holder.starts_with("arn:") {
            return None;
        }
        match self.client.describe_execution().execution_arn(holder).send().await {
            Ok(described) => Some(described.status == aws_sdk_sfn::types::ExecutionStatus::Running),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_execution_does_not_exist() => Some(false),
                _ => {
                    let err = crate::aws::sdk_error("StepFunctions", "DescribeExecution", err);
                    tracing::warn!(error = %err, "could not describe a lease holder's execution");
                    None
                }
            },
        }
    }
}

/// What [`Lease::acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The caller holds the lease until `until`; `taken_over` names a gone holder it replaced.
    Held { until: i64, taken_over: Option<String> },
    /// Someone else holds it.
    Busy { holder: String, until: i64 },
}

/// One named lease.
#[derive(Clone)]
pub struct Lease {
    table: Arc<dyn Table>,
    key: ItemKey,
}

const OWNER: &str = "owner";

impl Lease {
    /// The lease `name` (e.g. `mailbox#<account>`) in `table`.
    pub fn new(table: Arc<dyn Table>, name: &str) -> Lease {
        Lease {
            table,
            key: ItemKey::new(format!("lease#{name}"), "lease"),
        }
    }

    fn item(&self, owner: &str, until: i64) -> crate::Item {
        let mut item = self.key.to_item();
        item.insert(OWNER.into(), AttrValue::S(owner.into()));
        item.insert(EXPIRES_AT.into(), AttrValue::N(until.to_string()));
        item
    }

    /// The current holder and its expiry (none when free or expired).
    pub async fn holder(&self) -> Result<Option<(String, i64)>, BackendError> {
        Ok(self.table.get(&self.key).await?.map(|item| {
            // A lease without a holder's name is somebody's all the same.
            let owner = item
                .get(OWNER)
                .and_then(AttrValue::as_str)
                .unwrap_or("(unnamed)")
                .to_string();
            let until = item.get(EXPIRES_AT).and_then(AttrValue::as_i64).unwrap_or(i64::MAX);
            (owner, until)
        }))
    }

    async fn put(&self, owner: &str, until: i64, condition: PutCondition<'_>) -> Result<bool, BackendError> {
        match self.table.put(self.item(owner, until), condition).await {
            Ok(()) => Ok(true),
            Err(BackendError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes the lease for `owner` for `ttl_secs`: when it is free or expired, when `owner`
    /// holds it already (a redriven run), or when its holder is known to be gone.
    pub async fn acquire(
        &self,
        owner: &str,
        ttl_secs: i64,
        now: i64,
        liveness: &dyn HolderLiveness,
    ) -> Result<Acquired, BackendError> {
        let until = now + ttl_secs;
        // A few rounds: each lost race means someone else moved first; look again.
        for _ in 0..4 {
            let Some((holder, held_until)) = self.holder().await? else {
                if self.put(owner, until, PutCondition::IfAbsentOrExpired { now }).await? {
                    return Ok(Acquired::Held {
                        until,
                        taken_over: None,
                    });
                }
                continue;
            };
            if holder == owner {
                if self.renew(owner, ttl_secs, now).await? {
                    return Ok(Acquired::Held {
                        until,
                        taken_over: None,
                    });
                }
                continue;
            }
            if liveness.is_running(&holder).await != Some(false) {
                return Ok(Acquired::Busy {
                    holder,
                    until: held_until,
                });
            }
            let values = [holder.as_str()];
            let condition = PutCondition::IfFieldIn {
                field: OWNER,
                values: &values,
            };
            if self.put(owner, until, condition).await? {
                tracing::warn!(holder = %holder, "took over a lease whose holder is gone");
                return Ok(Acquired::Held {
                    until,
                    taken_over: Some(holder),
                });
            }
        }
        match self.holder().await? {
            Some((holder, until)) => Ok(Acquired::Busy { holder, until }),
            None => Err(BackendError::ConditionFailed {
                table: self.table.name().to_string(),
                condition: "the lease kept changing hands while it was being taken",
            }),
        }
    }

    /// Extends `owner`'s lease; false when `owner` no longer holds it (someone took it over).
    pub async fn renew(&self, owner: &str, ttl_secs: i64, now: i64) -> Result<bool, BackendError> {
        let values = [owner];
        let mine = PutCondition::IfFieldIn {
            field: OWNER,
            values: &values,
        };
        if self.put(owner, now + ttl_secs, mine).await? {
            return Ok(true);
        }
        // Expired while held, and nobody took it since: still ours to extend.
        if self.holder().await?.is_none() {
            return self
                .put(owner, now + ttl_secs, PutCondition::IfAbsentOrExpired { now })
                .await;
        }
        Ok(false)
    }

    /// Frees `owner`'s lease (by expiring it now); false when `owner` did not hold it.
    pub async fn release(&self, owner: &str, now: i64) -> Result<bool, BackendError> {
        let values = [owner];
        let mine = PutCondition::IfFieldIn {
            field: OWNER,
            values: &values,
        };
        self.put(owner, now, mine).await
    }
}
