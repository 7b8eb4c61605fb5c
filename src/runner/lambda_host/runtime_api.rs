//! The Lambda Runtime API (version 2018-06-01) as the `lambda_runtime` crate calls it, served to
//! one sandbox's process on a loopback port of its own (each Lambda sandbox has its own
//! endpoint too, which is how an answer finds its invocation's process):
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: waits for the next event; answers with its
//!   body and the `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn` and
//!   `-Trace-Id` headers (Step Functions invocations carry no client context or Cognito
//!   identity, so those two headers are never sent);
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the function's result;
//! - `POST /2018-06-01/runtime/invocation/{id}/error`: `{"errorType", "errorMessage"}` (the
//!   crate also sends `Lambda-Runtime-Function-Error-Type: unhandled`, which says nothing more);
//! - `POST /2018-06-01/runtime/init/error`: the process could not start its handler.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::exchange::{Outcome, Shared};

/// Lambda's limit on a synchronous invocation's response.
pub(super) const RESPONSE_LIMIT_BYTES: usize = 6 * 1024 * 1024;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        // Bodies are bounded by RESPONSE_LIMIT_BYTES below, with Lambda's own error.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let Some(invocation) = shared.next().await else {
        // The sandbox is being shut down: the runtime exits on an error answer.
        return runtime_error(
            StatusCode::GONE,
            "Sandbox.Shutdown",
            "this sandbox takes no more invocations",
        );
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set("lambda-runtime-deadline-ms", &invocation.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &invocation.function_arn);
    set("lambda-runtime-trace-id", &invocation.trace_id);
    set("content-type", "application/json");
    (StatusCode::OK, headers, invocation.body).into_response()
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let outcome = if body.len() > RESPONSE_LIMIT_BYTES {
        Outcome::TooLarge { bytes: body.len() }
    } else {
        Outcome::Response(body)
    };
    accepted_or_unknown(shared.complete(&id, outcome), &id)
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(rename = "errorMessage", default)]
    error_message: Option<String>,
}

fn read_error(body: &[u8]) -> (Option<String>, Option<String>) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => (parsed.error_type.filter(|t| !t.trim().is_empty()), parsed.error_message),
        Err(_) => (None, None),
    }
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let (error_type, message) = read_error(&body);
    accepted_or_unknown(shared.complete(&id, Outcome::Error { error_type, message }), &id)
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (error_type, message) = read_error(&body);
    let error_type = error_type.or_else(|| {
        headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    shared.init_failed(error_type, message);
    accepted()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn accepted_or_unknown(known: bool, id: &str) -> Response {
    if known {
        accepted()
    } else {
        runtime_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("no invocation {id} is waiting for an answer"),
        )
    }
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}
