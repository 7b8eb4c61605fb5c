//! Executions kept in memory, for tests and one-shot runs.

use super::{
    ChildState, ExecutionRecord, ExecutionStore, ExecutionSummary, Lease, MapRunRecord, ReplayLog, StoreError,
    is_answered, is_parked,
};
use crate::history::HistoryEvent;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct MemoryExecutionStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    executions: HashMap<String, ExecutionRecord>,
    tokens: HashMap<String, String>,
    /// Children by map run, then index: the value is the child's ARN.
    children: HashMap<String, BTreeMap<u64, String>>,
    map_runs: BTreeMap<String, MapRunRecord>,
    leases: HashMap<String, Lease>,
    wakeups: std::collections::HashSet<String>,
}

impl MemoryExecutionStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn index_tokens(inner: &mut Inner, record: &ExecutionRecord) {
    for task in &record.pending_tasks {
        inner.tokens.insert(task.token.clone(), record.execution_arn.clone());
    }
}

impl ExecutionStore for MemoryExecutionStore {
    fn create(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.executions.contains_key(&record.execution_arn) {
            return Err(StoreError::AlreadyExists(record.name.clone()));
        }
        index_tokens(&mut inner, record);
        inner.executions.insert(record.execution_arn.clone(), record.clone());
        Ok(())
    }

    fn save(&self, record: ExecutionRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match inner.executions.get(&record.execution_arn) {
            Some(existing) if existing.version + 1 == record.version => {}
            _ => return Err(StoreError::Conflict(record.execution_arn.clone())),
        }
        index_tokens(&mut inner, &record);
        inner.executions.insert(record.execution_arn.clone(), record);
        Ok(())
    }

    fn load(&self, execution_arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(self.lock().executions.get(execution_arn).cloned())
    }

    fn execution_for_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().tokens.get(token).cloned())
    }

    fn list(&self) -> Result<Vec<ExecutionSummary>, StoreError> {
        let mut all: Vec<ExecutionSummary> = self
            .lock()
            .executions
            .values()
            .filter(|r| r.parent.is_none())
            .map(ExecutionSummary::from)
            .collect();
        all.sort_by(|a, b| b.start_date.cmp(&a.start_date).then(a.name.cmp(&b.name)));
        Ok(all)
    }

    fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        Ok(self
            .lock()
            .executions
            .get(execution_arn)
            .map(|r| r.history.as_ref().clone())
            .unwrap_or_default())
    }

    fn save_children(&self, records: Vec<ExecutionRecord>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for record in records {
            let Some(parent) = &record.parent else { continue };
            inner
                .children
                .entry(parent.map_run_arn.clone())
                .or_default()
                .insert(parent.index, record.execution_arn.clone());
            index_tokens(&mut inner, &record);
            inner.executions.insert(record.execution_arn.clone(), record);
        }
        Ok(())
    }

    fn child_states(&self, map_run_arn: &str) -> Result<Vec<ChildState>, StoreError> {
        let inner = self.lock();
        let Some(children) = inner.children.get(map_run_arn) else {
            return Ok(Vec::new());
        };
        Ok(children
            .iter()
            .filter_map(|(index, arn)| {
                inner.executions.get(arn).map(|r| ChildState {
                    index: *index,
                    execution_arn: arn.clone(),
                    status: r.status,
                    parked: is_parked(r),
                    answered: is_answered(r),
                })
            })
            .collect())
    }

    fn children(&self, map_run_arn: &str, from_index: u64, limit: usize) -> Result<Vec<ExecutionRecord>, StoreError> {
        let inner = self.lock();
        let Some(children) = inner.children.get(map_run_arn) else {
            return Ok(Vec::new());
        };
        Ok(children
            .range(from_index..)
            .take(limit)
            .filter_map(|(_, arn)| inner.executions.get(arn).cloned())
            .collect())
    }

    fn put_map_run(&self, map_run: &MapRunRecord) -> Result<(), StoreError> {
        self.lock()
            .map_runs
            .insert(map_run.map_run_arn.clone(), map_run.clone());
        Ok(())
    }

    fn map_run(&self, map_run_arn: &str) -> Result<Option<MapRunRecord>, StoreError> {
        Ok(self.lock().map_runs.get(map_run_arn).cloned())
    }

    fn map_runs(&self, execution_arn: &str) -> Result<Vec<MapRunRecord>, StoreError> {
        let mut runs: Vec<MapRunRecord> = self
            .lock()
            .map_runs
            .values()
            .filter(|m| m.execution_arn == execution_arn)
            .cloned()
            .collect();
        runs.sort_by_key(|m| m.start_date);
        Ok(runs)
    }

    fn acquire_lease(
        &self,
        execution_arn: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if let Some(held) = inner.leases.get(execution_arn)
            && held.owner != owner
            && held.expires_at > now
        {
            return Ok(false);
        }
        inner.leases.insert(
            execution_arn.to_string(),
            Lease {
                owner: owner.to_string(),
                expires_at: until,
            },
        );
        Ok(true)
    }

    fn renew_lease(&self, execution_arn: &str, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.leases.get_mut(execution_arn) {
            Some(held) if held.owner == owner => {
                held.expires_at = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn release_lease(&self, execution_arn: &str, owner: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.leases.get(execution_arn).is_some_and(|l| l.owner == owner) {
            inner.leases.remove(execution_arn);
        }
        Ok(())
    }

    fn lease(&self, execution_arn: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self.lock().leases.get(execution_arn).cloned())
    }

    fn request_wakeup(&self, execution_arn: &str) -> Result<(), StoreError> {
        self.lock().wakeups.insert(execution_arn.to_string());
        Ok(())
    }

    fn take_wakeup(&self, execution_arn: &str) -> Result<bool, StoreError> {
        Ok(self.lock().wakeups.remove(execution_arn))
    }

    fn checkpoint(&self, execution_arn: &str, replay: &ReplayLog, events: &[HistoryEvent]) -> Result<(), StoreError> {
        if let Some(record) = self.lock().executions.get_mut(execution_arn) {
            record.replay = replay.clone();
            let history = std::sync::Arc::make_mut(&mut record.history);
            for event in events {
                let at = event.id as usize - 1;
                if at < history.len() {
                    history[at] = event.clone();
                } else {
                    history.push(event.clone());
                }
            }
        }
        Ok(())
    }
}
