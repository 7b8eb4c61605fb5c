//! Consent request, run as a `.waitForTaskToken` task: parks a single-use state and PKCE
//! verifier beside the task token, and returns (and logs) the consent URL for the operator.
//! The task token goes only to the control table: not into the URL, the output or a log.

use serde::{Deserialize, Serialize};

use super::OAuthDeps;
use crate::error::GmailError;
use crate::oauth::Sensitive;
use crate::oauth::consent::{ConsentRequest, ConsentUrlParts};

#[derive(Debug, Clone, Deserialize)]
pub struct ConsentRequestInput {
    /// `$$.Task.Token` of the waiting task.
    pub task_token: Sensitive,
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRequestOutput {
    /// Open this to grant Sluice read access to the mailbox.
    pub consent_url: String,
    /// After this (epoch seconds) the request can no longer be completed.
    pub expires_at: i64,
}

pub async fn run(input: ConsentRequestInput, deps: &OAuthDeps) -> Result<ConsentRequestOutput, GmailError> {
    let task_token = input.task_token.expose().trim();
    if task_token.is_empty() || task_token.len() > 8192 {
        return Err(GmailError::input(
            "task_token",
            "must be a Step Functions task token (1-8192 characters)",
        ));
    }
    let authorizer = &deps.authorizer;
    let settings = authorizer.settings();
    let account = settings.account_or_default(input.account.as_deref())?;
    let redirect_uri = settings.require_redirect_uri()?;
    let credentials = authorizer.credentials().await?;
    let request = ConsentRequest::new(
        &ConsentUrlParts {
            auth_uri: &settings.auth_uri,
            client_id: &credentials.client_id,
            redirect_uri,
            scopes: &settings.requested_scopes(),
            login_hint: account.contains('@').then_some(account.as_str()),
        },
        settings.consent_ttl_secs,
    )?;
    authorizer
        .consents()
        .park(&request, &account, Some(&Sensitive::new(task_token)), redirect_uri)
        .await?;
    tracing::info!(
        account,
        consent_url = %request.url,
        expires_at = request.expires_at,
        "Gmail consent is required: open the consent URL and grant read access"
    );
    Ok(ConsentRequestOutput {
        consent_url: request.url,
        expires_at: request.expires_at,
    })
}
