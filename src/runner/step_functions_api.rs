//! The local engine behind the Step Functions API calls a Lambda binary makes: when the real
//! binaries run locally, their Step Functions client is sent here
//! (`aws.step_functions_endpoint_url`), so that the OAuth callback's `SendTaskSuccess` resumes
//! the local execution that waits for consent, and run-begin's `DescribeExecution` asks the
//! local engine whether a lease's holder still runs. It speaks the AWS JSON 1.0 protocol
//! (`X-Amz-Target: AWSStepFunctions.<Operation>`) for those operations. As on AWS, an answered
//! task's execution resumes in the background: the call returns at once.

use std::sync::{Arc, Weak};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sluice_statemachine::{Engine, EngineError};
use tokio::task::JoinHandle;

/// The endpoint, serving until dropped.
pub struct StepFunctionsApi {
    pub url: String,
    listener: Option<tokio::net::TcpListener>,
    server: Option<JoinHandle<()>>,
}

impl StepFunctionsApi {
    /// Takes a loopback port now (the functions' environment needs the URL before the engine
    /// exists); [`StepFunctionsApi::serve`] answers on it.
    pub async fn bind() -> std::io::Result<StepFunctionsApi> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok(StepFunctionsApi {
            url,
            listener: Some(listener),
            server: None,
        })
    }

    pub fn serve(&mut self, engine: &Arc<Engine>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let app = Router::new().route("/", post(call)).with_state(Arc::downgrade(engine));
        self.server = Some(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the local Step Functions endpoint stopped");
            }
        }));
    }
}

impl Drop for StepFunctionsApi {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn client_error(kind: &str, message: impl Into<String>) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        json!({"__type": kind, "message": message.into()}),
    )
}

fn engine_error(err: EngineError) -> Response {
    match err {
        EngineError::InvalidToken => client_error("InvalidToken", "the task token names no waiting task"),
        EngineError::ExecutionDoesNotExist(arn) => client_error("ExecutionDoesNotExist", format!("no execution {arn}")),
        other => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"__type": "ServiceUnavailable", "message": other.to_string()}),
        ),
    }
}

async fn call(State(engine): State<Weak<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(engine) = engine.upgrade() else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"__type": "ServiceUnavailable", "message": "the local engine has stopped"}),
        );
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target.strip_prefix("AWSStepFunctions.") else {
        return client_error("UnknownOperationException", format!("unknown target {target:?}"));
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return client_error("SerializationException", format!("the request is not JSON: {e}")),
    };
    let text = |field: &str| request.get(field).and_then(Value::as_str).map(str::to_string);
    match operation {
        "SendTaskSuccess" | "SendTaskFailure" => {
            let Some(token) = text("taskToken") else {
                return client_error("ValidationException", "taskToken is required");
            };
            if let Err(err) = engine.check_task_token(&token) {
                return engine_error(err);
            }
            let resume: std::pin::Pin<Box<dyn Future<Output = Result<_, EngineError>> + Send>> =
                if operation == "SendTaskSuccess" {
                    let output = match text("output").map(|o| serde_json::from_str::<Value>(&o)) {
                        Some(Ok(output)) => output,
                        Some(Err(e)) => return client_error("InvalidOutput", format!("output is not JSON: {e}")),
                        None => return client_error("ValidationException", "output is required"),
                    };
                    Box::pin(async move { engine.send_task_success(&token, output).await })
                } else {
                    let (error, cause) = (text("error").unwrap_or_default(), text("cause").unwrap_or_default());
                    Box::pin(async move { engine.send_task_failure(&token, &error, &cause).await })
                };
            // The execution goes on without the caller, as on AWS; a failure to resume is logged.
            tokio::spawn(async move {
                if let Err(err) = resume.await {
                    tracing::warn!(error = %err, "resuming an answered execution failed");
                }
            });
            answer(StatusCode::OK, json!({}))
        }
        "SendTaskHeartbeat" => {
            let Some(token) = text("taskToken") else {
                return client_error("ValidationException", "taskToken is required");
            };
            match engine.send_task_heartbeat(&token).await {
                Ok(()) => answer(StatusCode::OK, json!({})),
                Err(err) => engine_error(err),
            }
        }
        "DescribeExecution" => {
            let Some(arn) = text("executionArn") else {
                return client_error("ValidationException", "executionArn is required");
            };
            match engine.describe_execution(&arn) {
                Ok(record) => answer(
                    StatusCode::OK,
                    json!({
                        "executionArn": record.execution_arn,
                        "name": record.name,
                        "stateMachineArn": record.state_machine_arn,
                        "status": record.status.as_str(),
                        "startDate": record.start_date.timestamp_millis() as f64 / 1000.0,
                    }),
                ),
                Err(err) => engine_error(err),
            }
        }
        other => client_error(
            "UnknownOperationException",
            format!("the local engine does not serve {other} to Lambda functions"),
        ),
    }
}
