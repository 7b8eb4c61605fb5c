//! Executions belong to the process running them: a lease in the store, renewed while the
//! run goes on, with the run's progress checkpointed at each renewal. When that process dies
//! (kill -9, power loss) its lease runs out, or its process id is gone from this host; the
//! next engine to look marks the execution ABORTED, and it can be redriven from there.

use super::run::Run;
use super::{Engine, EngineError, ExecutionOutcome};
use crate::errors::StateFailure;
use crate::history::{EventDetails, EventType};
use crate::store::{ExecutionStatus, Lease, MapRunStatus};
use std::future::Future;

/// The error a run stops with when its lease was taken over; never recorded.
const LEASE_LOST: &str = "Sluice.LeaseLost";

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `host:pid:nonce`: the nonce tells two engines of one process apart.
pub(super) fn owner_id() -> String {
    format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether the process named in a lease is known to be gone: it ran on this host and its
/// process id no longer exists. (Elsewhere only the lease's expiry tells.) The pipeline's
/// leases use the same rule in `sluice_core::process`; the engine keeps its own copy so that it
/// takes in no AWS SDK.
fn owner_gone(owner: &str) -> bool {
    let mut parts = owner.splitn(3, ':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => false,
        Ok(pid) => {
            let proc_root = std::path::Path::new("/proc");
            if !proc_root.join("self").exists() {
                return false;
            }
            // Gone, or a zombie: killed and not yet reaped by its parent.
            match std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
                Err(_) => true,
                Ok(stat) => stat
                    .rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            }
        }
        Err(_) => false,
    }
}

pub(super) fn is_lost_failure(failure: &StateFailure) -> bool {
    failure.error.as_deref() == Some(LEASE_LOST)
}

pub(super) fn lost(outcome: &ExecutionOutcome) -> bool {
    matches!(outcome, ExecutionOutcome::Failed { error: Some(e), .. } if e == LEASE_LOST)
}

impl Engine {
    fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::from_std(self.options.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Whether a live process holds the execution's lease.
    pub(crate) fn lease_is_live(&self, execution_arn: &str) -> Result<bool, EngineError> {
        Ok(self
            .store
            .lease(execution_arn)?
            .is_some_and(|l| l.expires_at > chrono::Utc::now() && !owner_gone(&l.owner)))
    }

    /// Takes the execution for this engine; `Busy` when a live process holds it.
    pub(super) fn claim(&self, execution_arn: &str) -> Result<(), EngineError> {
        let now = chrono::Utc::now();
        if self
            .store
            .acquire_lease(execution_arn, &self.owner, self.lease_until(), now)?
        {
            return Ok(());
        }
        match self.store.lease(execution_arn)? {
            Some(Lease { owner, expires_at }) if owner_gone(&owner) => {
                // The holder died on this host: its lease is worthless, take it over.
                if self.store.acquire_lease(
                    execution_arn,
                    &self.owner,
                    self.lease_until(),
                    expires_at + chrono::Duration::milliseconds(1),
                )? {
                    return Ok(());
                }
                Err(EngineError::Busy {
                    arn: execution_arn.to_string(),
                    owner,
                    until: expires_at,
                })
            }
            Some(Lease { owner, expires_at }) => Err(EngineError::Busy {
                arn: execution_arn.to_string(),
                owner,
                until: expires_at,
            }),
            None => Err(EngineError::Busy {
                arn: execution_arn.to_string(),
                owner: "another engine".into(),
                until: now,
            }),
        }
    }

    /// Runs `work`, renewing the lease and checkpointing the replay log and the new history
    /// events every `heartbeat`; stops the work when the lease has been taken over.
    pub(super) async fn with_heartbeat<R>(
        &self,
        run: &Run,
        execution_arn: &str,
        work: impl Future<Output = Result<R, StateFailure>>,
    ) -> Result<R, StateFailure> {
        let mut work = std::pin::pin!(work);
        let mut ticker = tokio::time::interval(self.options.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = ticker.tick() => {
                    match self.store.renew_lease(execution_arn, &self.owner, self.lease_until()) {
                        Ok(true) => {}
                        Ok(false) => return Err(StateFailure::new(LEASE_LOST, "the lease was taken over")),
                        Err(e) => tracing::warn!(execution = execution_arn, error = %e, "could not renew the execution's lease"),
                    }
                    run.checkpoint();
                }
            }
        }
    }

    /// Marks ABORTED every running execution whose process is gone: its lease expired or its
    /// process id vanished, or it holds no lease yet waits for nothing (left by a process that
    /// predates leases). Returns the ARNs it aborted.
    pub fn abort_abandoned(&self) -> Result<Vec<String>, EngineError> {
        let mut aborted = Vec::new();
        for summary in self.store.list()? {
            if summary.status != ExecutionStatus::Running {
                continue;
            }
            if let Some(cause) = self.abandonment(&summary.execution_arn)?
                && self.abort(&summary.execution_arn, &cause)?
            {
                aborted.push(summary.execution_arn);
            }
        }
        Ok(aborted)
    }

    /// Why a running execution is abandoned, if it is.
    pub(super) fn abandonment(&self, execution_arn: &str) -> Result<Option<String>, EngineError> {
        let now = chrono::Utc::now();
        match self.store.lease(execution_arn)? {
            Some(lease) if owner_gone(&lease.owner) => Ok(Some(format!(
                "The process that ran this execution ({}) is gone; the execution was aborted and can be redriven.",
                lease.owner
            ))),
            Some(lease) if lease.expires_at < now => Ok(Some(format!(
                "The lease of the process that ran this execution ({}) expired at {} without renewal; the execution was aborted and can be redriven.",
                lease.owner, lease.expires_at
            ))),
            Some(_) => Ok(None),
            None => {
                let Some(record) = self.store.load(execution_arn)? else {
                    return Ok(None);
                };
                // Created a moment ago: its process may not have claimed it yet.
                let grace = chrono::Duration::from_std(self.options.lease).unwrap_or(chrono::Duration::seconds(30));
                if record.redrive_date.unwrap_or(record.start_date) + grace > now {
                    return Ok(None);
                }
                let waits_for_token = record.pending_tasks.iter().any(|p| p.answer.is_none());
                let waits_for_children = !self.store.map_runs(execution_arn)?.is_empty();
                let answered = record.pending_tasks.iter().any(|p| p.answer.is_some());
                if waits_for_token || waits_for_children || answered {
                    Ok(None)
                } else {
                    Ok(Some(
                        "No process runs this execution and it waits for no task token; the execution was aborted and can be redriven."
                            .into(),
                    ))
                }
            }
        }
    }

    /// Aborts one running execution with `cause`; false when it was not running any more.
    pub(super) fn abort(&self, execution_arn: &str, cause: &str) -> Result<bool, EngineError> {
        self.abort_with(execution_arn, Some("States.Aborted"), Some(cause))
    }

    /// `StopExecution`: the running execution ends ABORTED, with the caller's error and cause
    /// (both optional, as on AWS); its pending tasks are dropped and a process still running it
    /// finds its next save refused. False when it had ended already.
    pub fn stop_execution(
        &self,
        execution_arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<bool, EngineError> {
        if self.store.load(execution_arn)?.is_none() {
            return Err(EngineError::ExecutionDoesNotExist(execution_arn.to_string()));
        }
        self.abort_with(execution_arn, error, cause)
    }

    fn abort_with(&self, execution_arn: &str, error: Option<&str>, cause: Option<&str>) -> Result<bool, EngineError> {
        loop {
            let Some(mut record) = self.store.load(execution_arn)? else {
                return Ok(false);
            };
            if record.status != ExecutionStatus::Running {
                return Ok(false);
            }
            let now = self.clock.now();
            let mut events = record.history.as_ref().clone();
            let id = events.len() as u64 + 1;
            events.push(crate::history::HistoryEvent {
                id,
                previous_event_id: id - 1,
                timestamp: now,
                event_type: EventType::ExecutionAborted,
                details: Box::new(EventDetails {
                    error: error.map(str::to_string),
                    cause: cause.map(str::to_string),
                    ..Default::default()
                }),
            });
            record.history = std::sync::Arc::new(events);
            record.status = ExecutionStatus::Aborted;
            record.stop_date = Some(now);
            record.error = error.map(str::to_string);
            record.cause = cause.map(str::to_string);
            record.pending_tasks.clear();
            record.version += 1;
            match self.store.save(record) {
                Ok(()) => {
                    if let Some(lease) = self.store.lease(execution_arn)? {
                        self.store.release_lease(execution_arn, &lease.owner)?;
                    }
                    // Its map runs stop with it (a redrive takes them up again).
                    for mut map_run in self.store.map_runs(execution_arn)? {
                        if map_run.status == MapRunStatus::Running {
                            map_run.status = MapRunStatus::Aborted;
                            map_run.stop_date = Some(now);
                            self.store.put_map_run(&map_run)?;
                        }
                    }
                    return Ok(true);
                }
                Err(crate::store::StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
