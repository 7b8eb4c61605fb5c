//! The task-token port for local runs: answering a parked task resumes it in the local engine.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use serde_json::Value;
use sluice_core::{BackendError, TaskTokens};
use sluice_statemachine::{Engine, EngineError};

/// Sends task answers to the local engine. The engine and the handlers that need this port
/// refer to each other, so the engine is attached after both exist.
#[derive(Default)]
pub struct EngineTaskTokens {
    engine: OnceLock<Weak<Engine>>,
}

impl EngineTaskTokens {
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
impl TaskTokens for EngineTaskTokens {
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
