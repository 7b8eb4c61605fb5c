//! Execution history, with events named as AWS names them, and AWS's event limit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// AWS stops an execution whose history reaches 25,000 events.
pub const DEFAULT_HISTORY_LIMIT: usize = 25_000;

/// Event types, spelled exactly as in `GetExecutionHistory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionTimedOut,
    ExecutionAborted,
    ExecutionRedriven,
    PassStateEntered,
    PassStateExited,
    TaskStateEntered,
    TaskStateExited,
    ChoiceStateEntered,
    ChoiceStateExited,
    WaitStateEntered,
    WaitStateExited,
    SucceedStateEntered,
    SucceedStateExited,
    FailStateEntered,
    ParallelStateEntered,
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    ParallelStateExited,
    MapStateEntered,
    MapStateStarted,
    MapIterationStarted,
    MapIterationSucceeded,
    MapIterationFailed,
    MapStateSucceeded,
    MapStateFailed,
    MapStateExited,
    MapRunStarted,
    MapRunSucceeded,
    MapRunFailed,
    MapRunRedriven,
    TaskScheduled,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TaskFailed,
    TaskTimedOut,
    ActivityScheduled,
    ActivityScheduleFailed,
    ActivityStarted,
    ActivitySucceeded,
    ActivityFailed,
    ActivityTimedOut,
    LambdaFunctionScheduled,
    LambdaFunctionStarted,
    LambdaFunctionSucceeded,
    LambdaFunctionFailed,
    LambdaFunctionTimedOut,
}

impl EventType {
    pub fn entered(state_type: &str) -> Self {
        match state_type {
            "Pass" => Self::PassStateEntered,
            "Task" => Self::TaskStateEntered,
            "Choice" => Self::ChoiceStateEntered,
            "Wait" => Self::WaitStateEntered,
            "Succeed" => Self::SucceedStateEntered,
            "Fail" => Self::FailStateEntered,
            "Parallel" => Self::ParallelStateEntered,
            _ => Self::MapStateEntered,
        }
    }

    /// Fail states have no exit event.
    pub fn exited(state_type: &str) -> Option<Self> {
        Some(match state_type {
            "Pass" => Self::PassStateExited,
            "Task" => Self::TaskStateExited,
            "Choice" => Self::ChoiceStateExited,
            "Wait" => Self::WaitStateExited,
            "Succeed" => Self::SucceedStateExited,
            "Parallel" => Self::ParallelStateExited,
            "Map" => Self::MapStateExited,
            _ => return None,
        })
    }
}

/// The details AWS attaches to an event; only the fields that apply are set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map_run_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redrive_count: Option<u32>,
    /// The worker that took an activity task (`GetActivityTask`'s `workerName`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_in_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Boxed: most events carry few details, and a history can hold many events.
    #[serde(flatten)]
    pub details: Box<EventDetails>,
}

/// A redrive keeps the events after the failed state's entry: they are inserted when the
/// replayed history reaches `after_replayed` events, followed by `ExecutionRedriven`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistorySplice {
    pub after_replayed: usize,
    pub events: Vec<HistoryEvent>,
}

/// The events of one execution as they are recorded.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub events: Vec<HistoryEvent>,
    limit: Option<usize>,
    /// Timestamps of a previous run of the same execution, reused while a resume replays it.
    earlier: Vec<(EventType, DateTime<Utc>)>,
    /// Events of runs before a redrive, inserted where they happened (see [`HistorySplice`]).
    splices: std::collections::VecDeque<HistorySplice>,
    /// Events this run has produced itself (not spliced in).
    produced: usize,
    /// How many events a checkpoint has already stored.
    pub checkpointed: usize,
}

impl History {
    pub fn new(limit: Option<usize>, earlier: &[HistoryEvent], splices: &[HistorySplice]) -> Self {
        Self {
            events: Vec::new(),
            limit,
            earlier: earlier.iter().map(|e| (e.event_type, e.timestamp)).collect(),
            splices: splices.iter().cloned().collect(),
            produced: 0,
            checkpointed: 0,
        }
    }

    fn splice_due(&mut self) {
        while self.splices.front().is_some_and(|s| s.after_replayed <= self.produced) {
            if let Some(splice) = self.splices.pop_front() {
                for mut event in splice.events {
                    event.id = self.events.len() as u64 + 1;
                    event.previous_event_id = event.id - 1;
                    self.events.push(event);
                }
            }
        }
    }

    /// Appends an event; `Err` when the limit is reached (the caller fails the execution).
    pub fn push(&mut self, event_type: EventType, details: EventDetails, now: DateTime<Utc>) -> Result<u64, usize> {
        self.splice_due();
        if let Some(limit) = self.limit
            && self.events.len() >= limit
        {
            return Err(limit);
        }
        self.produced += 1;
        let id = self.events.len() as u64 + 1;
        let timestamp = match self.earlier.get(self.events.len()) {
            Some((t, at)) if *t == event_type => *at,
            _ => now,
        };
        self.events.push(HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp,
            event_type,
            details: Box::new(details),
        });
        Ok(id)
    }

    /// Appends the final event even past the limit, so every history ends with its outcome.
    pub fn push_final(&mut self, event_type: EventType, details: EventDetails, now: DateTime<Utc>) {
        let limit = self.limit.take();
        let _ = self.push(event_type, details, now);
        self.limit = limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_refuses_events_past_its_limit_but_keeps_the_final_one() {
        let mut h = History::new(Some(2), &[], &[]);
        let now = Utc::now();
        assert_eq!(h.push(EventType::ExecutionStarted, EventDetails::default(), now), Ok(1));
        assert_eq!(h.push(EventType::PassStateEntered, EventDetails::default(), now), Ok(2));
        assert_eq!(h.push(EventType::PassStateExited, EventDetails::default(), now), Err(2));
        h.push_final(EventType::ExecutionFailed, EventDetails::default(), now);
        assert_eq!(h.events.len(), 3);
    }

    #[test]
    fn event_types_serialize_with_aws_names() {
        assert_eq!(
            serde_json::to_string(&EventType::TaskSubmitted).unwrap(),
            "\"TaskSubmitted\""
        );
    }
}
