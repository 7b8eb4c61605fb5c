//! Answering task tokens: SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat, the token
//! check the Step Functions endpoint makes first, and the heartbeat and task timeouts that
//! answer a token with `States.Timeout` / `States.HeartbeatTimeout`.

use serde_json::Value;

use super::{Engine, EngineError, ExecutionReport};
use crate::errors::StateFailure;
use crate::history::{EventDetails, EventType, HistoryEvent};
use crate::json::{PAYLOAD_LIMIT_BYTES, serialized_len};
use crate::states::task::{activity_started_key, call_of_answer_key};
use crate::store::{ExecutionRecord, ExecutionStatus, PendingTask, Recorded, StoreError};

impl Engine {
    /// Answers a task token with the task's output and resumes the execution.
    pub async fn send_task_success(&self, token: &str, output: Value) -> Result<ExecutionReport, EngineError> {
        let size = serialized_len(&output);
        if size > PAYLOAD_LIMIT_BYTES {
            return Err(EngineError::InputTooLarge(size));
        }
        self.answer(token, Recorded::Succeeded(output)).await
    }

    /// Answers a task token with a failure and resumes the execution.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<ExecutionReport, EngineError> {
        self.answer(token, Recorded::Failed(StateFailure::new(error, cause)))
            .await
    }

    /// Records that the task behind `token` is still alive.
    pub async fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        loop {
            let mut record = self.record_for_token(token)?;
            let now = self.clock.now();
            let task = waiting_task(&mut record.pending_tasks, token)?;
            if let Some(timeout) = task.timed_out(now) {
                task.answer = Some(Recorded::Failed(timeout));
                let arn = record.execution_arn.clone();
                if self.save_answer(record)? {
                    self.resume(&arn).await?;
                    return Err(EngineError::TaskTimedOut);
                }
                continue;
            }
            task.last_heartbeat = now;
            record.version += 1;
            match self.store.save(record) {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Fails every parked task whose TimeoutSeconds or HeartbeatSeconds has passed (with
    /// `States.Timeout`) and resumes those executions.
    pub async fn check_timeouts(&self) -> Result<Vec<ExecutionReport>, EngineError> {
        let mut reports = Vec::new();
        let mut waiting = Vec::new();
        for summary in self.store.list()? {
            if summary.status != ExecutionStatus::Running {
                continue;
            }
            // A Distributed Map's children wait on tokens of their own.
            for map_run in self.store.map_runs(&summary.execution_arn)? {
                if map_run.status == crate::store::MapRunStatus::Running {
                    let children = self.store.child_states(&map_run.map_run_arn)?;
                    waiting.extend(children.into_iter().filter(|c| c.parked).map(|c| c.execution_arn));
                }
            }
            waiting.push(summary.execution_arn);
        }
        for execution_arn in waiting {
            let Some(mut record) = self.store.load(&execution_arn)? else {
                continue;
            };
            let now = self.clock.now();
            let mut fired = false;
            for task in record.pending_tasks.iter_mut().filter(|p| p.answer.is_none()) {
                if let Some(timeout) = task.timed_out(now) {
                    task.answer = Some(Recorded::Failed(timeout));
                    fired = true;
                }
            }
            if fired && self.save_answer(record)? {
                reports.push(self.resume(&execution_arn).await?);
            }
        }
        Ok(reports)
    }

    /// Records that a worker took the activity task behind `token` (`GetActivityTask`): the
    /// execution's history gains `ActivityStarted` with the worker's name, now and on every
    /// replay. Taking it twice records it once.
    pub fn activity_task_started(&self, token: &str, worker_name: Option<&str>) -> Result<(), EngineError> {
        loop {
            let mut record = self.record_for_token(token)?;
            let now = self.clock.now();
            let task = waiting_task(&mut record.pending_tasks, token)?;
            let key = activity_started_key(call_of_answer_key(&task.answer_key));
            if record.replay.contains_key(&key) {
                return Ok(());
            }
            // The worker's HeartbeatSeconds run from when it took the task, not from when the
            // task was queued.
            task.last_heartbeat = now;
            let worker = worker_name.map_or(Value::Null, |name| Value::String(name.to_string()));
            record.replay.insert(key, Recorded::Succeeded(worker));
            let history = std::sync::Arc::make_mut(&mut record.history);
            let id = history.len() as u64 + 1;
            history.push(HistoryEvent {
                id,
                previous_event_id: id - 1,
                timestamp: now,
                event_type: EventType::ActivityStarted,
                details: Box::new(EventDetails {
                    worker_name: worker_name.map(str::to_string),
                    ..Default::default()
                }),
            });
            if self.save_answer(record)? {
                return Ok(());
            }
        }
    }

    /// Whether the store knows the execution `token` belongs to: false while that execution
    /// is still on its way to parking on it.
    pub fn task_token_known(&self, token: &str) -> Result<bool, EngineError> {
        Ok(self.store.execution_for_token(token)?.is_some())
    }

    /// Whether `token` names a task that still waits for its answer (`InvalidToken` if not).
    pub fn check_task_token(&self, token: &str) -> Result<(), EngineError> {
        let record = self.record_for_token(token)?;
        if record
            .pending_tasks
            .iter()
            .any(|p| p.token == token && p.answer.is_none())
        {
            Ok(())
        } else {
            Err(EngineError::InvalidToken)
        }
    }

    fn record_for_token(&self, token: &str) -> Result<ExecutionRecord, EngineError> {
        let arn = self
            .store
            .execution_for_token(token)?
            .ok_or(EngineError::InvalidToken)?;
        let record = self.store.load(&arn)?.ok_or(EngineError::InvalidToken)?;
        if record.status != ExecutionStatus::Running {
            return Err(EngineError::InvalidToken);
        }
        Ok(record)
    }

    /// Saves a record with a new answer; false when someone else saved first.
    fn save_answer(&self, mut record: ExecutionRecord) -> Result<bool, EngineError> {
        record.version += 1;
        match self.store.save(record) {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn answer(&self, token: &str, answer: Recorded) -> Result<ExecutionReport, EngineError> {
        loop {
            let mut record = self.record_for_token(token)?;
            let now = self.clock.now();
            let task = waiting_task(&mut record.pending_tasks, token)?;
            let timed_out = task.timed_out(now);
            task.answer = Some(match &timed_out {
                Some(timeout) => Recorded::Failed(timeout.clone()),
                None => answer.clone(),
            });
            let arn = record.execution_arn.clone();
            if self.save_answer(record)? {
                let report = self.resume(&arn).await?;
                return match timed_out {
                    Some(_) => Err(EngineError::TaskTimedOut),
                    None => Ok(report),
                };
            }
        }
    }
}

/// The task behind `token` still waiting for its answer (`InvalidToken` if none).
fn waiting_task<'r>(tasks: &'r mut [PendingTask], token: &str) -> Result<&'r mut PendingTask, EngineError> {
    tasks
        .iter_mut()
        .find(|p| p.token == token && p.answer.is_none())
        .ok_or(EngineError::InvalidToken)
}
