//! TestState's `mock.fieldValidationMode`: a mocked result checked against the shape of the
//! service API it stands for. STRICT (AWS's default): every required field present, every
//! field one the API returns, of its type; PRESENT: the fields given are of the API's and of
//! their type; NONE: anything goes. Shapes are known for the request-response integrations
//! below (from the services' API references); a result for any other resource (an activity, a
//! `.sync` or `.waitForTaskToken` pattern, a Lambda ARN called directly) is not checked.

use serde_json::Value;

/// How strictly a mocked result is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidationMode {
    #[default]
    Strict,
    Present,
    None,
}

impl FieldValidationMode {
    pub fn named(name: &str) -> Option<FieldValidationMode> {
        match name {
            "STRICT" => Some(FieldValidationMode::Strict),
            "PRESENT" => Some(FieldValidationMode::Present),
            "NONE" => Some(FieldValidationMode::None),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    String,
    Integer,
    Object,
    Array,
    /// An ISO 8601 text or epoch seconds, as the SDKs serialize timestamps.
    Timestamp,
    Any,
}

impl Kind {
    fn holds(self, value: &Value) -> bool {
        match self {
            Kind::String => value.is_string(),
            Kind::Integer => value.is_i64() || value.is_u64(),
            Kind::Object => value.is_object(),
            Kind::Array => value.is_array(),
            Kind::Timestamp => value.is_string() || value.is_number(),
            Kind::Any => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Integer => "an integer",
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::Timestamp => "a timestamp",
            Kind::Any => "any value",
        }
    }
}

/// (field, kind, required)
type Shape = &'static [(&'static str, Kind, bool)];

const LAMBDA_INVOKE: Shape = &[
    ("ExecutedVersion", Kind::String, false),
    ("FunctionError", Kind::String, false),
    ("LogResult", Kind::String, false),
    ("Payload", Kind::Any, false),
    ("StatusCode", Kind::Integer, false),
];
const SQS_SEND_MESSAGE: Shape = &[
    ("MD5OfMessageAttributes", Kind::String, false),
    ("MD5OfMessageBody", Kind::String, false),
    ("MD5OfMessageSystemAttributes", Kind::String, false),
    ("MessageId", Kind::String, false),
    ("SequenceNumber", Kind::String, false),
];
const SNS_PUBLISH: Shape = &[
    ("MessageId", Kind::String, false),
    ("SequenceNumber", Kind::String, false),
];
const DYNAMODB_GET_ITEM: Shape = &[("ConsumedCapacity", Kind::Object, false), ("Item", Kind::Object, false)];
const DYNAMODB_WRITE: Shape = &[
    ("Attributes", Kind::Object, false),
    ("ConsumedCapacity", Kind::Object, false),
    ("ItemCollectionMetrics", Kind::Object, false),
];
const EVENTS_PUT_EVENTS: Shape = &[
    ("Entries", Kind::Array, false),
    ("FailedEntryCount", Kind::Integer, false),
];
const STATES_START_EXECUTION: Shape = &[
    ("ExecutionArn", Kind::String, true),
    ("StartDate", Kind::Timestamp, true),
];

/// Fields Step Functions adds to every SDK integration's result.
const SDK_METADATA: &[&str] = &["SdkHttpMetadata", "SdkResponseMetadata"];

fn shape_of(resource: &str) -> Option<Shape> {
    Some(match resource {
        "arn:aws:states:::lambda:invoke" => LAMBDA_INVOKE,
        "arn:aws:states:::sqs:sendMessage" => SQS_SEND_MESSAGE,
        "arn:aws:states:::sns:publish" => SNS_PUBLISH,
        "arn:aws:states:::dynamodb:getItem" => DYNAMODB_GET_ITEM,
        "arn:aws:states:::dynamodb:putItem"
        | "arn:aws:states:::dynamodb:updateItem"
        | "arn:aws:states:::dynamodb:deleteItem" => DYNAMODB_WRITE,
        "arn:aws:states:::events:putEvents" => EVENTS_PUT_EVENTS,
        "arn:aws:states:::states:startExecution" => STATES_START_EXECUTION,
        _ => return None,
    })
}

/// Checks a mocked `result` of a Task on `resource`; the first mismatch, named.
pub fn check_mocked_result(resource: &str, result: &Value, mode: FieldValidationMode) -> Result<(), String> {
    if mode == FieldValidationMode::None {
        return Ok(());
    }
    let Some(shape) = shape_of(resource) else { return Ok(()) };
    let Some(fields) = result.as_object() else {
        return Err(format!("the mocked result of {resource} must be a JSON object"));
    };
    for (name, value) in fields {
        if SDK_METADATA.contains(&name.as_str()) {
            continue;
        }
        match shape.iter().find(|(field, _, _)| field == name) {
            None => {
                let known: Vec<&str> = shape.iter().map(|(field, _, _)| *field).collect();
                return Err(format!(
                    "the mocked result has '{name}', which {resource} does not return (it returns {})",
                    known.join(", ")
                ));
            }
            Some((_, kind, _)) if !kind.holds(value) => {
                return Err(format!("the mocked result's '{name}' must be {}", kind.name()));
            }
            Some(_) => {}
        }
    }
    if mode == FieldValidationMode::Strict
        && let Some((missing, _, _)) = shape
            .iter()
            .find(|(field, _, required)| *required && !fields.contains_key(*field))
    {
        return Err(format!(
            "the mocked result lacks '{missing}', which {resource} always returns (fieldValidationMode STRICT; PRESENT checks only the fields given)"
        ));
    }
    Ok(())
}
