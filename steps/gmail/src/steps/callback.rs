//! The OAuth callback (`GET /oauth/callback?code&state`), where Google sends the operator back.
//! It claims the state exactly once, exchanges the code with the parked PKCE verifier, caches
//! the token and resumes the waiting task. Anything else answers 400, failing the waiting task
//! (when there is one) with `Auth.ConsentDenied` or `Auth.InvalidState`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sluice_core::StepError;

use super::OAuthDeps;
use crate::error::GmailError;
use crate::oauth::consent::PendingConsent;
use crate::oauth::{Sensitive, now_epoch};

/// The route the REST API mounts.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// The query Google appends to the redirect URI.
#[derive(Debug, Default)]
pub struct CallbackQuery {
    pub code: Option<Sensitive>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// What the callback decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Token cached, waiting task resumed (or none was waiting).
    Authorized,
    /// Token cached, but the waiting task had already ended (timed out, aborted).
    AuthorizedTaskGone,
    /// The owner declined, or Google reported an error.
    Denied,
    /// Unknown, reused, expired or malformed state.
    InvalidState,
    /// The code exchange failed.
    ExchangeFailed,
}

/// The page to answer with.
#[derive(Debug, Clone)]
pub struct CallbackPage {
    pub status: StatusCode,
    pub outcome: CallbackOutcome,
    pub html: String,
}

impl IntoResponse for CallbackPage {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // The URL held a code: keep it out of caches and out of Referer headers.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        response
    }
}

/// An axum router answering `GET /oauth/callback` (merge it into the REST API, or run it
/// alone on Lambda through `lambda_http`).
pub fn router(deps: Arc<OAuthDeps>) -> Router {
    Router::new()
        .route(CALLBACK_PATH, get(callback_handler))
        .with_state(deps)
}

/// The axum handler itself, for mounting under another path.
pub async fn callback_handler(State(deps): State<Arc<OAuthDeps>>, RawQuery(query): RawQuery) -> CallbackPage {
    handle(CallbackQuery::parse(query.as_deref().unwrap_or("")), &deps).await
}

impl CallbackQuery {
    /// Reads the query string leniently: unknown parameters are ignored, the first of a
    /// repeated one wins.
    pub fn parse(query: &str) -> CallbackQuery {
        let mut parsed = CallbackQuery::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "code" if parsed.code.is_none() => parsed.code = Some(Sensitive::new(value.into_owned())),
                "state" if parsed.state.is_none() => parsed.state = Some(value.into_owned()),
                "error" if parsed.error.is_none() => parsed.error = Some(value.into_owned()),
                _ => {}
            }
        }
        parsed
    }
}

/// The callback's logic, independent of the HTTP framework.
pub async fn handle(query: CallbackQuery, deps: &OAuthDeps) -> CallbackPage {
    let Some(state) = query.state.as_deref() else {
        return invalid_state_page();
    };
    let consents = deps.authorizer.consents();
    let pending = match consents.claim(state).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            // Expired requests still hold a task token: fail that task now rather than let it
            // wait out its timeout. Unknown and reused states have no task to fail.
            match consents.take_expired(state).await {
                Ok(Some(task_token)) => {
                    fail_task(
                        deps,
                        &task_token,
                        "Auth.InvalidState",
                        "the consent request expired before Google redirected back",
                    )
                    .await;
                }
                Ok(None) => {}
                Err(err) => tracing::error!(error = %err, "cannot look up an expired consent request"),
            }
            tracing::warn!("OAuth callback with an unknown, reused or expired state");
            return invalid_state_page();
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot claim the consent request");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                CallbackOutcome::ExchangeFailed,
                "Try again",
                "Sluice could not reach its control table. Reload this page in a minute.",
            );
        }
    };
    let account = pending.account.clone();

    if let Some(error) = query.error.as_deref() {
        let cause = if error == "access_denied" {
            "the account owner declined access".to_string()
        } else {
            format!("Google returned the error {}", sanitize_code(error))
        };
        if let Some(task_token) = &pending.task_token {
            fail_task(deps, task_token, "Auth.ConsentDenied", &cause).await;
        }
        tracing::warn!(account, cause, "consent was not given");
        return page(
            StatusCode::BAD_REQUEST,
            CallbackOutcome::Denied,
            "Access was not granted",
            "Sluice will not read this mailbox. Start a new run to ask again.",
        );
    }

    let Some(code) = query.code.as_ref().filter(|c| is_plausible_code(c.expose())) else {
        if let Some(task_token) = &pending.task_token {
            fail_task(
                deps,
                task_token,
                "Auth.ConsentDenied",
                "the redirect carried neither a usable code nor an error",
            )
            .await;
        }
        return page(
            StatusCode::BAD_REQUEST,
            CallbackOutcome::Denied,
            "No authorization code",
            "Google's redirect did not carry an authorization code. Start a new run to ask again.",
        );
    };

    exchange_and_resume(deps, code, &pending).await
}

async fn exchange_and_resume(deps: &OAuthDeps, code: &Sensitive, pending: &PendingConsent) -> CallbackPage {
    let account = pending.account.as_str();
    if let Err(err) = deps.authorizer.exchange_code(code, pending).await {
        tracing::warn!(account, error = %err, "the authorization code could not be exchanged");
        if let Some(task_token) = &pending.task_token {
            fail_task(deps, task_token, err.error_name(), &err.to_string()).await;
        }
        let status = match err {
            GmailError::TokenEndpointUnavailable { .. } | GmailError::Backend(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::BAD_REQUEST,
        };
        return page(
            status,
            CallbackOutcome::ExchangeFailed,
            "Authorization failed",
            "Google did not accept the authorization. Start a new run to ask again.",
        );
    }
    tracing::info!(account, "Gmail access granted; token cached");
    let Some(task_token) = &pending.task_token else {
        return authorized_page(CallbackOutcome::Authorized);
    };
    let output = serde_json::json!({ "status": "authorized" });
    match deps.task_tokens.send_success(task_token.expose(), &output).await {
        Ok(()) => authorized_page(CallbackOutcome::Authorized),
        Err(err) => {
            // The token is cached all the same: the next run will find it.
            tracing::warn!(account, error = %err, "access granted, but the waiting run could not be resumed");
            authorized_page(CallbackOutcome::AuthorizedTaskGone)
        }
    }
}

async fn fail_task(deps: &OAuthDeps, task_token: &Sensitive, error: &str, cause: &str) {
    if let Err(err) = deps.task_tokens.send_failure(task_token.expose(), error, cause).await {
        tracing::warn!(error_name = error, failure = %err, "could not fail the waiting task");
    }
}

/// Codes are opaque printable ASCII; bounding them keeps junk away from the token endpoint.
fn is_plausible_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 2048 && code.bytes().all(|b| b.is_ascii_graphic())
}

/// Google's error codes are short snake_case words; keep only that much of what came in.
fn sanitize_code(error: &str) -> String {
    error
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

fn invalid_state_page() -> CallbackPage {
    page(
        StatusCode::BAD_REQUEST,
        CallbackOutcome::InvalidState,
        "This link is no longer valid",
        "The consent request is unknown, was already used, or expired. Start a new run to ask again.",
    )
}

fn authorized_page(outcome: CallbackOutcome) -> CallbackPage {
    let detail = match outcome {
        CallbackOutcome::AuthorizedTaskGone => {
            "Sluice can now read this mailbox. The run that asked had already ended: start a new one."
        }
        _ => "Sluice can now read this mailbox. The waiting run continues; you can close this page.",
    };
    page(StatusCode::OK, outcome, "Access granted", detail)
}

/// A tiny page; nothing from the request is echoed into it.
fn page(status: StatusCode, outcome: CallbackOutcome, title: &str, detail: &str) -> CallbackPage {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sluice: {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}</style></head>\
         <body><h1>{title}</h1><p>{detail}</p><p><small>{at}</small></p></body></html>\n",
        at = chrono::DateTime::from_timestamp(now_epoch(), 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
    );
    CallbackPage { status, outcome, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_error_names_are_bounded() {
        assert!(is_plausible_code("4/0AeaYSHB-x_y"));
        assert!(!is_plausible_code(""));
        assert!(!is_plausible_code("a b"));
        assert!(!is_plausible_code(&"a".repeat(3000)));
        assert_eq!(sanitize_code("access_denied<script>"), "access_deniedscript");
    }

    #[test]
    fn pages_never_echo_the_request() {
        let page = invalid_state_page();
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.html.contains("no longer valid"));
    }
}
