//! A function's sandboxes, scaled as Lambda scales them: an invocation takes a warm idle
//! sandbox or starts a new one (so two concurrent invocations run in two processes), and a
//! sandbox that answered goes back to wait on `next`. The pool is the function's
//! [`TaskHandler`]: it answers with the function's payload, which the engine wraps as the
//! `lambda:invoke` integration does, exactly as it wraps an in-process handler's output.
//!
//! Failures are named as Step Functions names them for `arn:aws:states:::lambda:invoke`: the
//! function's own `errorType` (so Retry/Catch match `Stage.Io` as on AWS), else the `errorType`
//! Lambda reports for what happened to the sandbox (`Sandbox.Timedout`, `Runtime.ExitError`,
//! `Runtime.InitError`, `Function.ResponseSizeTooLarge`), else `Lambda.Unknown`. The cause
//! always starts with the function's name.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::body::Bytes;
use serde_json::Value;
use sluice_statemachine::{TaskContext, TaskFailure, TaskHandler};

use super::ProcessTable;
use super::exchange::{Invocation, Outcome};
use super::runtime_api::RESPONSE_LIMIT_BYTES;
use super::sandbox::{FunctionSpec, Sandbox};

/// Lambda's name for an error without a type (Step Functions: "Lambda.Unknown").
pub const UNKNOWN: &str = "Lambda.Unknown";
/// What Lambda reports when an invocation outlives the function's Timeout.
pub const TIMED_OUT: &str = "Sandbox.Timedout";
/// What Lambda reports when the runtime process exits (during init or mid-invocation).
pub const EXITED: &str = "Runtime.ExitError";
/// What Lambda reports for a runtime's `init/error` without a type of its own.
pub const INIT_ERROR: &str = "Runtime.InitError";
/// What Lambda reports when the binary cannot be started.
pub const INVALID_ENTRYPOINT: &str = "Runtime.InvalidEntrypoint";
/// What Lambda reports for a response over 6 MB.
pub const RESPONSE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";

pub(super) struct FunctionPool {
    spec: FunctionSpec,
    idle: Mutex<Vec<Sandbox>>,
    processes: Arc<ProcessTable>,
}

impl FunctionPool {
    pub fn new(spec: FunctionSpec, processes: Arc<ProcessTable>) -> Self {
        FunctionPool {
            spec,
            idle: Mutex::new(Vec::new()),
            processes,
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Sandbox>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A warm sandbox, else a new one.
    async fn acquire(&self) -> Result<Sandbox, TaskFailure> {
        loop {
            let Some(sandbox) = self.idle().pop() else { break };
            if !sandbox.shared.is_ended() {
                return Ok(sandbox);
            }
            // Exited while idle: dropped here, a new one is started.
        }
        Sandbox::start(&self.spec, self.processes.clone())
            .await
            .map_err(|message| {
                TaskFailure::new(
                    INVALID_ENTRYPOINT,
                    format!(
                        "{} cannot be started from {}: {message}",
                        self.spec.binary,
                        self.spec.path.display()
                    ),
                )
            })
    }

    fn release(&self, sandbox: Sandbox) {
        if !sandbox.shared.is_ended() {
            self.idle().push(sandbox);
        }
    }

    /// Kills the idle sandboxes (busy ones die with their invocation or the process table).
    pub fn clear(&self) {
        self.idle().clear();
    }

    fn failure(&self, outcome: Outcome, request_id: &str) -> TaskFailure {
        let binary = &self.spec.binary;
        match outcome {
            Outcome::Response(_) => TaskFailure::new(UNKNOWN, format!("{binary}: unexpected response")),
            Outcome::TooLarge { bytes } => TaskFailure::new(
                RESPONSE_TOO_LARGE,
                format!("{binary} answered {bytes} bytes, over Lambda's {RESPONSE_LIMIT_BYTES}-byte response limit"),
            ),
            Outcome::Error { error_type, message } => match error_type {
                Some(error_type) => TaskFailure::new(error_type, message.unwrap_or_default()),
                None => TaskFailure::new(
                    UNKNOWN,
                    format!(
                        "{binary} failed without an error type: {}",
                        message.unwrap_or_else(|| "no message".into())
                    ),
                ),
            },
            Outcome::InitError { error_type, message } => TaskFailure::new(
                error_type.unwrap_or_else(|| INIT_ERROR.into()),
                format!(
                    "{binary} failed during init: {}",
                    message.unwrap_or_else(|| "no message".into())
                ),
            ),
            Outcome::Exited {
                during_init,
                status,
                output,
            } => TaskFailure::new(
                EXITED,
                format!(
                    "{binary} exited {} ({status}; RequestId: {request_id}){}",
                    if during_init { "during init" } else { "mid-invocation" },
                    if output.is_empty() {
                        String::new()
                    } else {
                        format!(": {output}")
                    }
                ),
            ),
        }
    }

    fn payload(&self, body: &Bytes) -> Result<Value, TaskFailure> {
        serde_json::from_slice(body).map_err(|e| {
            TaskFailure::new(
                UNKNOWN,
                format!(
                    "{} answered a response that is not JSON ({} bytes): {e}",
                    self.spec.binary,
                    body.len()
                ),
            )
        })
    }
}

#[async_trait]
impl TaskHandler for FunctionPool {
    async fn invoke(&self, _ctx: TaskContext, input: Value) -> Result<Value, TaskFailure> {
        let body = serde_json::to_vec(&input)
            .map_err(|e| TaskFailure::new(UNKNOWN, format!("{}: the payload is not JSON: {e}", self.spec.binary)))?;
        // Dropped before it is released (the task abandoned, a timeout), the sandbox is killed.
        let sandbox = self.acquire().await?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let answer = match sandbox.shared.register(&request_id) {
            Ok(answer) => answer,
            Err(outcome) => return Err(self.failure(outcome, &request_id)),
        };
        let deadline = SystemTime::now() + self.spec.timeout;
        let invocation = Invocation {
            request_id: request_id.clone(),
            body: Bytes::from(body),
            deadline_ms: deadline
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            function_arn: self.spec.function_arn.clone(),
            trace_id: trace_id(),
        };
        if !sandbox.dispatch(invocation).await {
            return Err(TaskFailure::new(
                UNKNOWN,
                format!("{}: the sandbox closed before the event was sent", self.spec.binary),
            ));
        }
        match tokio::time::timeout(self.spec.timeout, answer).await {
            Err(_) => {
                drop(sandbox);
                Err(TaskFailure::new(
                    TIMED_OUT,
                    format!(
                        "{} timed out after {:.2} seconds, its Timeout; the process was stopped (RequestId: {request_id})",
                        self.spec.binary,
                        self.spec.timeout.as_secs_f64()
                    ),
                ))
            }
            Ok(Err(_)) => Err(TaskFailure::new(
                UNKNOWN,
                format!("{}: the sandbox went away without an answer", self.spec.binary),
            )),
            Ok(Ok(Outcome::Response(body))) => {
                self.release(sandbox);
                self.payload(&body)
            }
            Ok(Ok(outcome @ (Outcome::Error { .. } | Outcome::TooLarge { .. }))) => {
                // The runtime answered: it is fine and waits for the next event.
                self.release(sandbox);
                Err(self.failure(outcome, &request_id))
            }
            Ok(Ok(outcome)) => Err(self.failure(outcome, &request_id)),
        }
    }
}

/// An X-Ray trace header like the one Lambda passes (the runtime exports it as
/// `_X_AMZN_TRACE_ID`).
fn trace_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{seconds:08x}-{};Parent={};Sampled=0",
        &random[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}
