//! The authorizer as an API Gateway Lambda authorizer.
//!
//! - REST APIs (REQUEST authorizer, payload 1.0): an IAM policy for exactly the called
//!   `methodArn`; `Deny` (403) when a scope is missing; the error `Unauthorized` (API Gateway's
//!   401) when authentication fails. Cache results per credential *and* path (identity sources
//!   `method.request.header.x-api-key`... plus `context.resourcePath`), or set the TTL to 0.
//! - HTTP APIs (payload 2.0, simple responses): `{"isAuthorized": bool, "context": {...}}`.
//!
//! The context (`principal`, `method`, `scopes`, `dataset`) reaches the backend integration.

use serde_json::{Map, Value, json};

use super::credentials::{API_KEY_HEADER, API_KEY_PARAMETER, Found, is_safe_method, query_parameter_found};
use super::{AuthError, AuthMethod, Authorizer, Credentials, Denied, Principal};
use crate::routes::required_access;

#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// API Gateway turns exactly this message into a 401.
    #[error("Unauthorized")]
    Unauthorized,
    #[error("the authorizer event is not an API Gateway REQUEST authorizer event: {0}")]
    BadEvent(&'static str),
    #[error("cannot check credentials now: {0}")]
    Unavailable(String),
}

impl From<AuthorizerError> for lambda_runtime::Diagnostic {
    fn from(err: AuthorizerError) -> lambda_runtime::Diagnostic {
        let error_type = match err {
            AuthorizerError::Unauthorized => "Unauthorized",
            AuthorizerError::BadEvent(_) => "Authorizer.BadEvent",
            AuthorizerError::Unavailable(_) => "Authorizer.Unavailable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

fn lowercase_map(value: Option<&Value>) -> Map<String, Value> {
    value
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect())
        .unwrap_or_default()
}

fn credentials_of(event: &Value) -> Credentials {
    let headers = lowercase_map(event.get("headers"));
    let header = |name: &str| -> Found { headers.get(name).and_then(Value::as_str).map(|v| Ok(v.to_string())) };
    let query: Found = match event
        .get("queryStringParameters")
        .and_then(|q| q.get(API_KEY_PARAMETER))
        .and_then(Value::as_str)
    {
        Some(decoded) => Some(Ok(decoded.to_string())),
        None => event
            .get("rawQueryString")
            .and_then(Value::as_str)
            .and_then(|raw| query_parameter_found(raw, API_KEY_PARAMETER)),
    };
    let cookie_headers: Vec<String> = match event.get("cookies").and_then(Value::as_array) {
        Some(cookies) => cookies.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        None => headers
            .get("cookie")
            .and_then(Value::as_str)
            .map(str::to_string)
            .into_iter()
            .collect(),
    };
    let cookie = cookie_headers.iter().find_map(|header| {
        header.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == API_KEY_PARAMETER).then(|| Ok(value.trim().to_string()))
        })
    });
    let safe = route_of(event).is_none_or(|(method, _)| is_safe_method(&method));
    Credentials::from_parts(header("authorization"), header(API_KEY_HEADER), query, cookie, safe)
}

/// (method, path) of the request being authorized.
fn route_of(event: &Value) -> Option<(String, String)> {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).map(str::to_string);
    let method = text("/requestContext/http/method").or_else(|| text("/httpMethod"))?;
    let path = text("/rawPath")
        .or_else(|| text("/requestContext/resourcePath").and_then(|_| text("/path")))
        .or_else(|| text("/path"))?;
    Some((method, path))
}

fn context_of(principal: &Principal) -> Value {
    json!({
        "principal": principal.subject,
        "method": match principal.method { AuthMethod::ApiKey => "api_key", AuthMethod::Jwt => "jwt" },
        "scopes": principal.scopes.join(" "),
        "dataset": principal.dataset.clone().unwrap_or_default(),
    })
}

/// Answers one authorizer event.
pub async fn authorize(event: &Value, authorizer: &Authorizer) -> Result<Value, AuthorizerError> {
    let simple = event.get("version").and_then(Value::as_str) == Some("2.0");
    let (method, path) = route_of(event).ok_or(AuthorizerError::BadEvent("no HTTP method and path"))?;
    let principal = match authorizer.authenticate(&credentials_of(event)).await {
        Ok(principal) => principal,
        Err(AuthError::Unavailable(reason)) => return Err(AuthorizerError::Unavailable(reason)),
        Err(err) => {
            tracing::info!(reason = %err, "authorizer refused the request");
            return if simple {
                Ok(json!({"isAuthorized": false}))
            } else {
                Err(AuthorizerError::Unauthorized)
            };
        }
    };
    // Unknown routes are left to the API (404); public routes need no scope.
    let allowed = match required_access(&method, &path) {
        Some(access) => match principal.check(access.scope, access.dataset.as_deref()) {
            Ok(()) => true,
            // Denying would reveal the dataset exists as much as a 404 hides it; API Gateway
            // answers 403 for any Deny, so the API itself must make the 404 decision.
            Err(Denied::HiddenDataset) => true,
            Err(Denied::MissingScope) => false,
        },
        None => true,
    };
    let context = context_of(&principal);
    if simple {
        return Ok(json!({"isAuthorized": allowed, "context": context}));
    }
    let resource = event
        .get("methodArn")
        .and_then(Value::as_str)
        .ok_or(AuthorizerError::BadEvent("no methodArn"))?;
    Ok(json!({
        "principalId": principal.subject,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": if allowed { "Allow" } else { "Deny" },
                "Resource": resource,
            }],
        },
        "context": context,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_v1_and_v2_events() {
        let v1 = json!({"headers": {"X-Api-Key": "slk_a"}, "httpMethod": "GET", "path": "/runs"});
        assert_eq!(credentials_of(&v1), Credentials::ApiKey("slk_a".into()));
        let v2 = json!({"version": "2.0", "cookies": ["x=1", "api_key=slk_b"], "headers": {}});
        assert_eq!(credentials_of(&v2), Credentials::ApiKey("slk_b".into()));
        let query = json!({"queryStringParameters": {"api_key": "slk_c"}, "headers": {}});
        assert_eq!(credentials_of(&query), Credentials::ApiKey("slk_c".into()));
        let bearer = json!({"headers": {"Authorization": "Bearer t"}});
        assert_eq!(credentials_of(&bearer), Credentials::Bearer("t".into()));
    }

    #[test]
    fn routes_come_from_v1_and_v2_events() {
        let v1 = json!({"httpMethod": "GET", "path": "/datasets/a/records/1"});
        assert_eq!(route_of(&v1), Some(("GET".into(), "/datasets/a/records/1".into())));
        let v2 = json!({"rawPath": "/runs", "requestContext": {"http": {"method": "POST"}}});
        assert_eq!(route_of(&v2), Some(("POST".into(), "/runs".into())));
        assert_eq!(route_of(&json!({})), None);
    }
}
