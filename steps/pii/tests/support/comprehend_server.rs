//! A small Amazon Comprehend stand-in speaking the AWS JSON 1.1 protocol
//! (`X-Amz-Target: Comprehend_20171127.DetectPiiEntities` / `.ContainsPiiEntities`). It answers
//! from the built-in recognizers (real detection, not canned answers), enforces the 100 KB text
//! limit, records what it was sent, and can throttle or fail the first requests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sluice_pii::{BuiltinDetector, Cell};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub operation: String,
    pub chars: usize,
    pub bytes: usize,
}

#[derive(Default)]
pub struct ServerState {
    pub received: Mutex<Vec<Received>>,
    /// Answer this many requests with ThrottlingException first.
    pub throttle_first: AtomicU32,
    /// Then this many with a 500 InternalServerException.
    pub fail_first: AtomicU32,
    detector: BuiltinDetector,
}

pub struct ComprehendServer {
    pub url: String,
    pub state: Arc<ServerState>,
}

impl ComprehendServer {
    pub async fn start() -> ComprehendServer {
        let state = Arc::new(ServerState::default());
        let app = Router::new().route("/", post(handle)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        ComprehendServer { url, state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// A client for this server that does not retry by itself.
    pub fn client(&self) -> aws_sdk_comprehend::Client {
        use aws_sdk_comprehend::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
        let config = aws_sdk_comprehend::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url(&self.url)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_comprehend::Client::from_conf(config)
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amzn-errortype", kind),
        ],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn handle(State(state): State<Arc<ServerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let operation = target.strip_prefix("Comprehend_20171127.").unwrap_or("").to_string();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "SerializationException", "body is not JSON");
    };
    let Some(text) = request.get("Text").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "InvalidRequestException", "Text is required");
    };
    if request.get("LanguageCode").and_then(Value::as_str).is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "LanguageCode is required",
        );
    }
    state.received.lock().unwrap().push(Received {
        operation: operation.clone(),
        chars: text.chars().count(),
        bytes: text.len(),
    });
    if take_one(&state.throttle_first) {
        return error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded");
    }
    if take_one(&state.fail_first) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "try again",
        );
    }
    if text.len() > 100_000 {
        return error(
            StatusCode::BAD_REQUEST,
            "TextSizeLimitExceededException",
            "Input text size exceeds limit. Max length of request text allowed is 100000 bytes",
        );
    }
    let entities = state.detector.detect_cell(&Cell::new(text));
    let answer = match operation.as_str() {
        "DetectPiiEntities" => json!({
            "Entities": entities.iter().map(|e| json!({
                "Score": e.score, "Type": e.kind.as_str(), "BeginOffset": e.begin, "EndOffset": e.end,
            })).collect::<Vec<_>>()
        }),
        "ContainsPiiEntities" => {
            let mut names: Vec<&str> = entities.iter().map(|e| e.kind.as_str()).collect();
            names.sort();
            names.dedup();
            json!({"Labels": names.iter().map(|n| json!({"Name": n, "Score": 0.99})).collect::<Vec<_>>()})
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "unknown operation",
            );
        }
    };
    ([("content-type", "application/x-amz-json-1.1")], answer.to_string()).into_response()
}
