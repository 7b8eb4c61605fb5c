//! Every failure the API answers, as JSON `{"error": {"code", "message"}}` with a stable code.
//! Messages say what to fix without helping an attacker: authentication failures never say
//! which check failed, and a dataset the caller may not read looks exactly like a missing one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_core::{BackendError, ConfigError};

/// Why the API could not be set up (settings, the JWKS client, the backends).
#[derive(Debug, thiserror::Error)]
pub enum ApiSetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("[api] settings are invalid: {field} {message}")]
    Settings { field: String, message: String },
    #[error("cannot build the HTTP client for the JWKS: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl sluice_core::StepError for ApiSetupError {
    fn error_name(&self) -> &'static str {
        match self {
            ApiSetupError::Backend(err) => err.error_name(),
            _ => "Config.Invalid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: `unauthorized`, `insufficient_scope`, `not_found`,
    /// `invalid_request`, `invalid_cursor`, `payload_too_large`, `unavailable`, `internal`.
    pub code: &'static str,
    pub message: String,
    www_authenticate: Option<String>,
}

const REALM: &str = "Bearer realm=\"sluice\"";

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            www_authenticate: None,
        }
    }

    /// 401. `presented` says whether any credential came with the request (RFC 6750 3.1).
    pub fn unauthorized(presented: bool) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required: send an API key (x-api-key header, api_key query parameter or cookie) or a Bearer token",
        );
        err.www_authenticate = Some(if presented {
            format!("{REALM}, error=\"invalid_token\"")
        } else {
            REALM.to_string()
        });
        err
    }

    /// 403: authenticated, but without the scope this route needs.
    pub fn insufficient_scope(scope: &str) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this request needs the scope {scope}"),
        );
        err.www_authenticate = Some(format!("{REALM}, error=\"insufficient_scope\", scope=\"{scope}\""));
        err
    }

    /// 404, the same for a missing record, a missing dataset and a dataset the caller may not see.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such record or dataset")
    }

    /// Any status with its stable code (the envelope for framework answers).
    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(status, code, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn invalid_cursor() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "the cursor is not one this API issued for this dataset (use next_cursor unchanged)",
        )
    }

    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the error was logged",
        )
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> ApiError {
        if err.is_retryable() {
            tracing::warn!(error = %err, "backend busy");
            ApiError::unavailable("the data store is busy; retry shortly")
        } else {
            tracing::error!(error = %err, "backend failure");
            ApiError::internal()
        }
    }
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable and machine-readable.
    #[schema(value_type = String, example = "not_found")]
    code: &'a str,
    /// What to fix, for a person.
    #[schema(value_type = String)]
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(challenge) = self.www_authenticate
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
