//! Executions kept in memory, for tests and one-shot runs.

use super::{ExecutionRecord, ExecutionStore, ExecutionSummary, StoreError};
use crate::history::HistoryEvent;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct MemoryExecutionStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    executions: HashMap<String, ExecutionRecord>,
    tokens: HashMap<String, String>,
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
        let mut all: Vec<ExecutionSummary> = self.lock().executions.values().map(ExecutionSummary::from).collect();
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
}
