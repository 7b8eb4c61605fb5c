//! `RedriveExecution`: a FAILED, TIMED_OUT or ABORTED execution restarts from the state that
//! did not finish. What ran before is replayed from the record (task results are not redone),
//! the history keeps every earlier event followed by `ExecutionRedriven`, and a Distributed
//! Map in the redriven state reruns only its failed and unfinished children.

use super::{Engine, EngineError, ExecutionReport};
use crate::history::{EventDetails, EventType, HistoryEvent, HistorySplice};
use crate::store::{ExecutionRecord, ExecutionStatus};
use chrono::{DateTime, Utc};

/// How many events of a history made with `splices` were produced by the run itself (not
/// spliced in) before the event at `position` (0-based).
fn produced_before(splices: &[HistorySplice], position: usize) -> usize {
    let mut spliced = 0;
    let mut inserted = 0;
    for splice in splices {
        let start = splice.after_replayed + inserted;
        if start >= position {
            break;
        }
        spliced += splice.events.len().min(position - start);
        inserted += splice.events.len();
    }
    position - spliced
}

/// Whether a replay key belongs to the state visit `call` (its attempts, retries, tokens,
/// and everything nested under it).
fn belongs_to(key: &str, call: &str) -> bool {
    key.strip_prefix(call)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('#') || rest.starts_with('/'))
}

/// Turns a FAILED, TIMED_OUT or ABORTED record into the start of its redrive: the failed
/// visit's replay entries dropped, the earlier events kept for the history, the counters up.
pub(crate) fn prepare_redrive(record: &mut ExecutionRecord, now: DateTime<Utc>) {
    let history = record.history.as_ref().clone();
    // Where the replayed run stops repeating the past: before the failed state's entry,
    // or (aborted, timed out) at the last event that was stored.
    let position = match record.failure_point.take() {
        Some(point) if record.status == ExecutionStatus::Failed && point.entered_event > 0 => {
            record.replay.retain(|key, _| !belongs_to(key, &point.call));
            (point.entered_event as usize - 1).min(history.len())
        }
        _ => history.len().saturating_sub(1),
    };
    let mut kept: Vec<HistoryEvent> = history[position..].to_vec();
    record.redrive_count += 1;
    kept.push(HistoryEvent {
        id: 0,
        previous_event_id: 0,
        timestamp: now,
        event_type: EventType::ExecutionRedriven,
        details: Box::new(EventDetails {
            redrive_count: Some(record.redrive_count),
            ..Default::default()
        }),
    });
    let after_replayed = produced_before(&record.history_splices, position);
    record.history_splices.push(HistorySplice {
        after_replayed,
        events: kept,
    });
    record.status = ExecutionStatus::Running;
    record.redrive_date = Some(now);
    record.stop_date = None;
    record.output = None;
    record.error = None;
    record.cause = None;
}

impl Engine {
    /// Redrives an execution (see the module doc). An execution still marked RUNNING whose
    /// process is gone is first marked ABORTED.
    pub async fn redrive_execution(&self, execution_arn: &str) -> Result<ExecutionReport, EngineError> {
        if let Some(cause) = self.abandonment(execution_arn)? {
            self.abort(execution_arn, &cause)?;
        }
        let mut record = self
            .store
            .load(execution_arn)?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(execution_arn.to_string()))?;
        if !record.status.is_redrivable() {
            return Err(EngineError::NotRedrivable {
                arn: execution_arn.to_string(),
                status: record.status,
            });
        }
        self.claim(execution_arn)?;
        prepare_redrive(&mut record, self.clock.now());
        // Stored RUNNING before it runs: whoever asks right after the redrive (DescribeExecution
        // after RedriveExecution) sees it redriven, as on AWS.
        record.version += 1;
        if let Err(err) = self.store.save(record.clone()) {
            let _ = self.store.release_lease(execution_arn, &self.owner);
            return Err(err.into());
        }
        self.run_stored(execution_arn, record, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_keys_of_a_visit_include_nested_ones_only() {
        assert!(belongs_to("/5", "/5"));
        assert!(belongs_to("/5#a0", "/5"));
        assert!(belongs_to("/5#a0/i3/2#a1", "/5"));
        assert!(!belongs_to("/50#a0", "/5"));
        assert!(!belongs_to("/4#a0", "/5"));
    }

    #[test]
    fn produced_events_skip_the_spliced_ones() {
        let splice = |after, n| HistorySplice {
            after_replayed: after,
            events: vec![
                HistoryEvent {
                    id: 0,
                    previous_event_id: 0,
                    timestamp: chrono::Utc::now(),
                    event_type: EventType::ExecutionRedriven,
                    details: Box::default(),
                };
                n
            ],
        };
        assert_eq!(produced_before(&[], 7), 7);
        // 3 produced, 4 spliced, then produced again.
        let splices = [splice(3, 4)];
        assert_eq!(produced_before(&splices, 3), 3);
        assert_eq!(produced_before(&splices, 5), 3);
        assert_eq!(produced_before(&splices, 9), 5);
    }
}
