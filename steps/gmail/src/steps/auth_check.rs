//! Auth check: is there a usable Gmail token? `authorized` and `consent_required` are both
//! normal outputs, for the state machine's Choice; only infrastructure trouble is an error.

use serde::{Deserialize, Serialize};

use super::OAuthDeps;
use crate::error::GmailError;
use crate::oauth::Authorization;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthCheckInput {
    /// Which mailbox; the configured `[gmail] account` when absent.
    pub account: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStatus {
    Authorized,
    ConsentRequired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCheckOutput {
    pub status: AuthStatus,
    /// Why consent is required (no token, refresh rejected, ...). Never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the access token expires (epoch seconds), when authorized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl AuthCheckOutput {
    pub(crate) fn from_authorization(authorization: &Authorization) -> Self {
        match authorization {
            Authorization::Authorized { expires_at, .. } => AuthCheckOutput {
                status: AuthStatus::Authorized,
                reason: None,
                expires_at: Some(*expires_at),
            },
            Authorization::ConsentRequired { reason } => AuthCheckOutput {
                status: AuthStatus::ConsentRequired,
                reason: Some((*reason).to_string()),
                expires_at: None,
            },
        }
    }
}

pub async fn run(input: AuthCheckInput, deps: &OAuthDeps) -> Result<AuthCheckOutput, GmailError> {
    let settings = deps.authorizer.settings();
    let account = settings.account_or_default(input.account.as_deref())?;
    if settings.source == crate::settings::SourceKind::Local {
        // A directory of .eml files needs no Google account.
        return Ok(AuthCheckOutput {
            status: AuthStatus::Authorized,
            reason: Some("local mail source".into()),
            expires_at: None,
        });
    }
    let authorization = deps.authorizer.authorize(&account).await?;
    let output = AuthCheckOutput::from_authorization(&authorization);
    tracing::info!(account, status = ?output.status, reason = output.reason.as_deref(), "auth check");
    Ok(output)
}
