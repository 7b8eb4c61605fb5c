//! The local engine as the stages' ports: answering a parked task resumes it (task tokens),
//! and a lease's holder (an execution) runs while the engine's store says RUNNING.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use serde_json::Value;
use sluice_core::{BackendError, TaskTokens};
use sluice_statemachine::{Engine, EngineError};

/// The local engine, for the handlers bound into it. The engine and the handlers refer to each
/// other, so the engine is attached after both exist.
#[derive(Default)]
pub struct EngineHandle {
    engine: OnceLock<Weak<Engine>>,
}

impl EngineHandle {
    pub fn attach(&self, engine: &Arc<Engine>) {
        let _ = self.engine.set(Arc::downgrade(engine));
    }

    fn engine(&self) -> Result<Arc<Engine>, BackendError> {
        self.engine
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| BackendError::NotFound {
                what: "the local state machine engine".into(),
            })
    }
}

fn engine_error(operation: &'static str, err: EngineError) -> BackendError {
    BackendError::Aws {
        service: "local engine",
        operation,
        message: err.to_string(),
    }
}

#[async_trait]
impl TaskTokens for EngineHandle {
    async fn send_success(&self, token: &str, output: &Value) -> Result<(), BackendError> {
        self.engine()?
            .send_task_success(token, output.clone())
            .await
            .map(drop)
            .map_err(|e| engine_error("SendTaskSuccess", e))
    }

    async fn send_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), BackendError> {
        self.engine()?
            .send_task_failure(token, error, cause)
            .await
            .map(drop)
            .map_err(|e| engine_error("SendTaskFailure", e))
    }
}

#[async_trait]
impl sluice_core::lease::HolderLiveness for EngineHandle {
    async fn is_running(&self, holder: &str) -> Option<bool> {
        let engine = self.engine().ok()?;
        let running = |engine: &Engine| match engine.describe_execution(holder) {
            Ok(record) => Some(record.status == sluice_statemachine::ExecutionStatus::Running),
            Err(EngineError::ExecutionDoesNotExist(_)) => Some(false),
            Err(_) => None,
        };
        if running(&engine) == Some(true) {
            // RUNNING in the store, but its process may have died: such executions are
            // aborted first, so that a crashed run never holds the mailbox.
            if let Err(err) = engine.abort_abandoned() {
                tracing::warn!(error = %err, "could not check for abandoned executions");
            }
            return running(&engine);
        }
        running(&engine)
    }
}
