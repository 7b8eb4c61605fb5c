//! History events in `GetExecutionHistory`'s shape: each event's details under the member AWS
//! names for its type (`executionStartedEventDetails`, `taskScheduledEventDetails`, ...), with
//! inputs and outputs as JSON text, left out when `includeExecutionData` is false.

use serde_json::{Map, Value, json};
use sluice_statemachine::{EventType, HistoryEvent};

use crate::protocol::epoch_seconds;

/// One event as AWS answers it.
pub fn aws_event(event: &HistoryEvent, include_data: bool) -> Value {
    let mut out = Map::new();
    out.insert("timestamp".into(), json!(epoch_seconds(&event.timestamp)));
    out.insert("type".into(), json!(event.event_type));
    out.insert("id".into(), json!(event.id));
    out.insert("previousEventId".into(), json!(event.previous_event_id));
    if let Some((member, details)) = details_of(event, include_data) {
        out.insert(member.into(), Value::Object(details));
    }
    Value::Object(out)
}

/// A payload as AWS carries it in events: its JSON text.
fn text(value: &Value) -> Value {
    json!(value.to_string())
}

fn details_of(event: &HistoryEvent, include_data: bool) -> Option<(&'static str, Map<String, Value>)> {
    use EventType::*;
    let d = &event.details;
    let mut m = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            m.insert(key.into(), value);
        }
    };
    let data = |value: &Option<Value>| if include_data { value.as_ref().map(text) } else { None };
    let data_details = |value: &Option<Value>| value.as_ref().map(|_| json!({"truncated": false}));
    let string = |value: &Option<String>| value.as_ref().map(|s| json!(s));
    let member = match event.event_type {
        ExecutionStarted => {
            put("input", data(&d.input));
            put("inputDetails", data_details(&d.input));
            put("roleArn", Some(json!("arn:aws:iam::123456789012:role/sluice-local")));
            "executionStartedEventDetails"
        }
        ExecutionSucceeded => {
            put("output", data(&d.output));
            put("outputDetails", data_details(&d.output));
            "executionSucceededEventDetails"
        }
        ExecutionFailed | ExecutionAborted | ExecutionTimedOut => {
            put("error", string(&d.error));
            put("cause", string(&d.cause));
            match event.event_type {
                ExecutionFailed => "executionFailedEventDetails",
                ExecutionAborted => "executionAbortedEventDetails",
                _ => "executionTimedOutEventDetails",
            }
        }
        ExecutionRedriven => {
            put("redriveCount", d.redrive_count.map(|n| json!(n)));
            "executionRedrivenEventDetails"
        }
        PassStateEntered | TaskStateEntered | ChoiceStateEntered | WaitStateEntered | SucceedStateEntered
        | FailStateEntered | ParallelStateEntered | MapStateEntered => {
            put("name", string(&d.name));
            put("input", data(&d.input));
            put("inputDetails", data_details(&d.input));
            "stateEnteredEventDetails"
        }
        PassStateExited | TaskStateExited | ChoiceStateExited | WaitStateExited | SucceedStateExited
        | ParallelStateExited | MapStateExited => {
            put("name", string(&d.name));
            put("output", data(&d.output));
            put("outputDetails", data_details(&d.output));
            "stateExitedEventDetails"
        }
        MapStateStarted => {
            put("length", d.length.map(|n| json!(n)));
            "mapStateStartedEventDetails"
        }
        MapIterationStarted | MapIterationSucceeded | MapIterationFailed => {
            put("name", string(&d.name));
            put("index", d.index.map(|n| json!(n)));
            match event.event_type {
                MapIterationStarted => "mapIterationStartedEventDetails",
                MapIterationSucceeded => "mapIterationSucceededEventDetails",
                _ => "mapIterationFailedEventDetails",
            }
        }
        MapRunStarted => {
            put("mapRunArn", string(&d.map_run_arn));
            "mapRunStartedEventDetails"
        }
        MapRunFailed => {
            put("error", string(&d.error));
            put("cause", string(&d.cause));
            "mapRunFailedEventDetails"
        }
        MapRunRedriven => {
            put("mapRunArn", string(&d.map_run_arn));
            put("redriveCount", d.redrive_count.map(|n| json!(n)));
            "mapRunRedrivenEventDetails"
        }
        TaskScheduled => {
            put("resourceType", string(&d.resource_type));
            put("resource", string(&d.resource));
            put("region", Some(json!("us-east-1")));
            put(
                "parameters",
                Some(if include_data {
                    d.parameters.as_ref().map_or(json!("{}"), text)
                } else {
                    json!("")
                }),
            );
            "taskScheduledEventDetails"
        }
        TaskStarted => {
            put("resourceType", string(&d.resource_type));
            put("resource", string(&d.resource));
            "taskStartedEventDetails"
        }
        TaskSubmitted | TaskSucceeded => {
            put("resourceType", string(&d.resource_type));
            put("resource", string(&d.resource));
            put("output", data(&d.output));
            put("outputDetails", data_details(&d.output));
            if event.event_type == TaskSubmitted {
                "taskSubmittedEventDetails"
            } else {
                "taskSucceededEventDetails"
            }
        }
        TaskFailed | TaskTimedOut => {
            put("resourceType", string(&d.resource_type));
            put("resource", string(&d.resource));
            put("error", string(&d.error));
            put("cause", string(&d.cause));
            if event.event_type == TaskFailed {
                "taskFailedEventDetails"
            } else {
                "taskTimedOutEventDetails"
            }
        }
        ActivityScheduled => {
            put("resource", string(&d.resource));
            put("input", data(&d.input));
            put("inputDetails", data_details(&d.input));
            put("timeoutInSeconds", d.timeout_in_seconds.map(|n| json!(n)));
            put("heartbeatInSeconds", d.heartbeat_in_seconds.map(|n| json!(n)));
            "activityScheduledEventDetails"
        }
        ActivityStarted => {
            put("workerName", string(&d.worker_name));
            "activityStartedEventDetails"
        }
        ActivitySucceeded => {
            put("output", data(&d.output));
            put("outputDetails", data_details(&d.output));
            "activitySucceededEventDetails"
        }
        ActivityScheduleFailed | ActivityFailed | ActivityTimedOut => {
            put("error", string(&d.error));
            put("cause", string(&d.cause));
            match event.event_type {
                ActivityScheduleFailed => "activityScheduleFailedEventDetails",
                ActivityFailed => "activityFailedEventDetails",
                _ => "activityTimedOutEventDetails",
            }
        }
        LambdaFunctionScheduled => {
            put("resource", string(&d.resource));
            put("input", data(&d.input));
            put("inputDetails", data_details(&d.input));
            "lambdaFunctionScheduledEventDetails"
        }
        LambdaFunctionSucceeded => {
            put("output", data(&d.output));
            put("outputDetails", data_details(&d.output));
            "lambdaFunctionSucceededEventDetails"
        }
        LambdaFunctionFailed | LambdaFunctionTimedOut => {
            put("error", string(&d.error));
            put("cause", string(&d.cause));
            if event.event_type == LambdaFunctionFailed {
                "lambdaFunctionFailedEventDetails"
            } else {
                "lambdaFunctionTimedOutEventDetails"
            }
        }
        // These carry no details on AWS.
        LambdaFunctionStarted
        | ParallelStateStarted
        | ParallelStateSucceeded
        | ParallelStateFailed
        | MapStateSucceeded
        | MapStateFailed
        | MapRunSucceeded => return None,
    };
    Some((member, m))
}
