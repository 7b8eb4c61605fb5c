//! Task resources: the handlers a caller registers, and how a Task state's `Resource`
//! (a Lambda ARN, the `lambda:invoke` integration, or any other ARN) finds one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// What a handler learns about the invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskContext {
    /// The state's `Resource`, as written.
    pub resource: String,
    pub state_name: String,
    pub execution_arn: String,
    /// For Lambda resources: the function name (from the ARN or `Parameters.FunctionName`).
    pub function_name: Option<String>,
    /// For `.waitForTaskToken` resources: the token to answer with.
    pub task_token: Option<String>,
}

/// A task's failure as the handler reports it; becomes the state's Error and Cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    pub error: String,
    pub cause: String,
}

impl TaskFailure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Runs one task invocation. For `.waitForTaskToken` resources the returned value is
/// ignored: the execution waits for the token to be answered.
#[async_trait]
pub trait TaskHandler: Send + Sync {
    async fn invoke(&self, ctx: TaskContext, input: Value) -> Result<Value, TaskFailure>;
}

/// How the engine should call a resolved handler.
pub(crate) enum Invocation {
    /// Call the handler with the state's Parameters; its result is the task result.
    Direct,
    /// The `arn:aws:states:::lambda:invoke` integration: call with `Payload`, wrap the result
    /// the way AWS's Lambda integration does.
    LambdaInvoke,
}

pub(crate) struct Resolved {
    pub handler: Arc<dyn TaskHandler>,
    pub invocation: Invocation,
    pub function_name: Option<String>,
    pub input: Value,
}

const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// Handlers by resource ARN, plus Lambda handlers by function name.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    by_resource: HashMap<String, Arc<dyn TaskHandler>>,
    lambdas: HashMap<String, Arc<dyn TaskHandler>>,
    /// Serves every activity ARN not bound on its own.
    activities: Option<Arc<dyn TaskHandler>>,
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("resources", &self.by_resource.keys().collect::<Vec<_>>())
            .field("lambdas", &self.lambdas.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The pattern suffixes of optimized integrations.
pub fn split_pattern(resource: &str) -> (&str, Option<&str>) {
    for suffix in [".waitForTaskToken", ".sync:2", ".sync"] {
        if let Some(base) = resource.strip_suffix(suffix) {
            return (base, Some(&suffix[1..]));
        }
    }
    (resource, None)
}

/// Whether a Task's resource is a Step Functions activity (`arn:aws:states:<region>:<account>:activity:<name>`):
/// its task waits for a worker (`GetActivityTask`) to answer its token, as `.waitForTaskToken`
/// does.
pub fn is_activity(resource: &str) -> bool {
    resource.starts_with("arn:") && resource.contains(":states:") && resource.contains(":activity:")
}

/// The function name inside a Lambda name, partial ARN or ARN (with or without qualifier).
pub fn lambda_function_name(reference: &str) -> &str {
    match reference.find(":function:") {
        Some(i) => {
            let rest = &reference[i + ":function:".len()..];
            rest.split(':').next().unwrap_or(rest)
        }
        None => reference.split(':').next().unwrap_or(reference),
    }
}

impl TaskRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds a resource ARN exactly as a Task state writes it (pattern suffix included, e.g.
    /// `arn:aws:states:::sqs:sendMessage.waitForTaskToken`). Registering
    /// `arn:aws:states:::lambda:invoke` binds every function not registered by name.
    pub fn register(&mut self, resource_arn: impl Into<String>, handler: Arc<dyn TaskHandler>) -> &mut Self {
        self.by_resource.insert(resource_arn.into(), handler);
        self
    }

    /// Binds a Lambda function by name: it serves Task states whose Resource is the
    /// function's ARN (result returned as is) and `lambda:invoke` states whose
    /// `Parameters.FunctionName` names it (result wrapped as `{"Payload": ..., "StatusCode": 200}`).
    pub fn register_lambda(&mut self, function_name: impl AsRef<str>, handler: Arc<dyn TaskHandler>) -> &mut Self {
        let name = lambda_function_name(function_name.as_ref()).to_string();
        self.lambdas.insert(name, handler);
        self
    }

    /// Binds every activity ARN to `handler` (it queues the task for a worker).
    pub fn register_activities(&mut self, handler: Arc<dyn TaskHandler>) -> &mut Self {
        self.activities = Some(handler);
        self
    }

    /// Finds the handler for a Task state; `Err` carries a message for `States.Runtime`.
    pub(crate) fn resolve(&self, resource: &str, parameters: Value) -> Result<Resolved, String> {
        let (base, _pattern) = split_pattern(resource);
        if is_activity(resource)
            && let Some(handler) = self.by_resource.get(resource).or(self.activities.as_ref())
        {
            return Ok(Resolved {
                handler: handler.clone(),
                invocation: Invocation::Direct,
                function_name: None,
                input: parameters,
            });
        }
        if base == LAMBDA_INVOKE {
            let function = parameters
                .get("FunctionName")
                .and_then(Value::as_str)
                .map(|f| lambda_function_name(f).to_string())
                .ok_or_else(|| format!("the {resource} task needs Parameters.FunctionName (a string)"))?;
            let handler = self
                .lambdas
                .get(&function)
                .or_else(|| self.by_resource.get(resource))
                .or_else(|| self.by_resource.get(LAMBDA_INVOKE))
                .cloned()
                .ok_or_else(|| format!("no task handler is registered for Lambda function '{function}'"))?;
            let payload = parameters.get("Payload").cloned().unwrap_or(json!({}));
            return Ok(Resolved {
                handler,
                invocation: Invocation::LambdaInvoke,
                function_name: Some(function),
                input: payload,
            });
        }
        if let Some(handler) = self.by_resource.get(resource) {
            return Ok(Resolved {
                handler: handler.clone(),
                invocation: Invocation::Direct,
                function_name: resource
                    .contains(":function:")
                    .then(|| lambda_function_name(resource).to_string()),
                input: parameters,
            });
        }
        if base.starts_with("arn:aws:lambda:") && base.contains(":function:") {
            let function = lambda_function_name(base).to_string();
            if let Some(handler) = self.lambdas.get(&function) {
                return Ok(Resolved {
                    handler: handler.clone(),
                    invocation: Invocation::Direct,
                    function_name: Some(function),
                    input: parameters,
                });
            }
        }
        Err(format!("no task handler is registered for resource '{resource}'"))
    }
}

/// The result shape of AWS's `lambda:invoke` integration around a function's output.
pub(crate) fn lambda_invoke_result(payload: Value, request_id: &str) -> Value {
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {},
            "HttpHeaders": {},
            "HttpStatusCode": 200
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200
    })
}

/// Wraps an async closure as a handler, for tests and small bindings.
pub struct FnHandler<F>(pub F);

#[async_trait]
impl<F, Fut> TaskHandler for FnHandler<F>
where
    F: Fn(TaskContext, Value) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Value, TaskFailure>> + Send,
{
    async fn invoke(&self, ctx: TaskContext, input: Value) -> Result<Value, TaskFailure> {
        (self.0)(ctx, input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Arc<dyn TaskHandler> {
        Arc::new(FnHandler(|_ctx: TaskContext, input: Value| async move { Ok(input) }))
    }

    #[test]
    fn function_names_are_taken_from_names_and_arns() {
        assert_eq!(lambda_function_name("fetch"), "fetch");
        assert_eq!(lambda_function_name("fetch:live"), "fetch");
        assert_eq!(
            lambda_function_name("arn:aws:lambda:eu-west-1:123456789012:function:fetch:3"),
            "fetch"
        );
    }

    #[test]
    fn lambda_invoke_takes_the_function_and_payload_from_parameters() {
        let mut registry = TaskRegistry::new();
        registry.register_lambda("fetch", echo());
        let resolved = registry
            .resolve(
                "arn:aws:states:::lambda:invoke.waitForTaskToken",
                json!({"FunctionName": "arn:aws:lambda:us-east-1:1:function:fetch", "Payload": {"a": 1}}),
            )
            .ok()
            .unwrap();
        assert!(matches!(resolved.invocation, Invocation::LambdaInvoke));
        assert_eq!(resolved.input, json!({"a": 1}));
        assert_eq!(resolved.function_name.as_deref(), Some("fetch"));
    }

    #[test]
    fn plain_lambda_arns_resolve_by_function_name() {
        let mut registry = TaskRegistry::new();
        registry.register_lambda("fetch", echo());
        let resolved = registry
            .resolve("arn:aws:lambda:us-east-1:1:function:fetch", json!({"x": 1}))
            .ok()
            .unwrap();
        assert!(matches!(resolved.invocation, Invocation::Direct));
        assert!(
            registry
                .resolve("arn:aws:lambda:us-east-1:1:function:other", json!({}))
                .is_err()
        );
        assert!(registry.resolve("arn:aws:states:::lambda:invoke", json!({})).is_err());
    }
}
