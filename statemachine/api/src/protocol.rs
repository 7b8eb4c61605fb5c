//! The AWS JSON 1.0 protocol as Step Functions speaks it: `POST /` with
//! `X-Amz-Target: AWSStepFunctions.<Operation>`, a JSON body, errors as
//! `{"__type": "<Code>", "message": ...}` with AWS's HTTP status, timestamps as epoch seconds.
//! Request signatures are accepted unchecked, as the local emulators do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// An error answer: AWS's code, its HTTP status, and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    /// A client error (HTTP 400), as nearly all of Step Functions' are.
    pub fn client(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::client("ValidationException", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            code: "InternalServerError",
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        answer(
            self.status,
            json!({"__type": format!("com.amazonaws.states#{}", self.code), "message": self.message}),
        )
    }
}

pub fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

/// A timestamp as the protocol writes it.
pub fn epoch_seconds(time: &DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

/// A request's fields, read with the errors AWS gives for missing or mistyped ones.
pub struct Request {
    pub body: Value,
}

impl Request {
    pub fn parse(body: &[u8]) -> Result<Request, ApiError> {
        let body: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::client("SerializationException", format!("the request is not JSON: {e}")))?
        };
        if !body.is_object() {
            return Err(ApiError::client(
                "SerializationException",
                "the request must be a JSON object",
            ));
        }
        Ok(Request { body })
    }

    pub fn optional(&self, field: &str) -> Result<Option<&str>, ApiError> {
        match self.body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::client(
                "SerializationException",
                format!("{field} must be a string"),
            )),
        }
    }

    pub fn required(&self, field: &str) -> Result<&str, ApiError> {
        self.optional(field)?
            .ok_or_else(|| ApiError::validation(format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null")))
    }

    pub fn flag(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::client(
                "SerializationException",
                format!("{field} must be a boolean"),
            )),
        }
    }

    /// `maxResults`: 0 or absent means the default; above `max` is refused.
    pub fn page_size(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.body.get("maxResults") {
            None | Some(Value::Null) => Ok(default),
            Some(value) => match value.as_u64() {
                Some(0) => Ok(default),
                Some(n) if n as usize <= max => Ok(n as usize),
                _ => Err(ApiError::validation(format!(
                    "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {max}"
                ))),
            },
        }
    }

    /// Where a paginated listing resumes: the offset a previous page's `nextToken` carries.
    pub fn page_start(&self) -> Result<usize, ApiError> {
        match self.optional("nextToken")? {
            None => Ok(0),
            Some(token) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.strip_prefix("offset:").and_then(|n| n.parse().ok()))
                .ok_or_else(|| ApiError::client("InvalidToken", "the nextToken is not one this server gave")),
        }
    }
}

/// `items[start..start+size]` and the token for the rest, if any.
pub fn page<T: Clone>(items: &[T], start: usize, size: usize) -> (Vec<T>, Option<String>) {
    let end = start.saturating_add(size).min(items.len());
    let slice = items.get(start.min(end)..end).unwrap_or_default().to_vec();
    let next =
        (end < items.len()).then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{end}")));
    (slice, next)
}

/// Step Functions' name rule for state machines, executions and activities.
pub fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let bad = name.is_empty()
        || name.len() > 80
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c));
    if bad {
        return Err(ApiError::client(
            "InvalidName",
            format!(
                "Invalid Name: '{name}' ({field}: 1 to 80 characters, no spaces, brackets, wildcards or punctuation that ARNs reserve)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<u32> = (0..7).collect();
        let (first, next) = page(&items, 0, 3);
        assert_eq!(first, [0, 1, 2]);
        let request = Request::parse(json!({"nextToken": next.unwrap()}).to_string().as_bytes()).unwrap();
        let start = request.page_start().unwrap();
        let (second, next) = page(&items, start, 3);
        assert_eq!(second, [3, 4, 5]);
        let request = Request::parse(json!({"nextToken": next.unwrap()}).to_string().as_bytes()).unwrap();
        let (last, next) = page(&items, request.page_start().unwrap(), 3);
        assert_eq!((last, next), (vec![6], None));
        let forged = Request::parse(br#"{"nextToken": "garbage"}"#).unwrap();
        assert_eq!(forged.page_start().unwrap_err().code, "InvalidToken");
    }

    #[test]
    fn names_follow_step_functions_rules() {
        assert!(check_name("name", "orders-2026_v1").is_ok());
        for bad in ["", "has space", "a/b", "x:y", &"n".repeat(81)] {
            assert_eq!(check_name("name", bad).unwrap_err().code, "InvalidName", "{bad}");
        }
    }
}
