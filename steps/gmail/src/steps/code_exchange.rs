//! The manual resume: the operator answered the consent task with
//! `send-task-success --task-output '{"code": "..."}'` (a loopback redirect URI that did not
//! load, code copied from the address bar). This step exchanges that code with the PKCE
//! verifier of the pending request: the one named by `state` when given, else the account's
//! latest. Without a `code` (the callback already resumed the task) it reports the
//! authorization, so the state machine can run this step after either kind of resume.

use serde::Deserialize;

use super::OAuthDeps;
use super::auth_check::AuthCheckOutput;
use crate::error::GmailError;
use crate::oauth::Sensitive;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CodeExchangeInput {
    pub code: Option<Sensitive>,
    pub state: Option<String>,
    pub account: Option<String>,
}

pub async fn run(input: CodeExchangeInput, deps: &OAuthDeps) -> Result<AuthCheckOutput, GmailError> {
    let authorizer = &deps.authorizer;
    let account = authorizer.settings().account_or_default(input.account.as_deref())?;
    let Some(code) = input.code else {
        let authorization = authorizer.authorize(&account).await?;
        return Ok(AuthCheckOutput::from_authorization(&authorization));
    };
    let code_text = code.expose().trim();
    if code_text.is_empty() || code_text.len() > 2048 || !code_text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GmailError::input(
            "code",
            "must be the authorization code from the redirect URL (printable, at most 2048 characters)",
        ));
    }
    let code = Sensitive::new(code_text);
    let state = match input.state {
        Some(state) => state,
        None => authorizer
            .consents()
            .latest_state(&account)
            .await?
            .ok_or(GmailError::InvalidState)?,
    };
    let pending = authorizer
        .consents()
        .claim(&state)
        .await?
        .ok_or(GmailError::InvalidState)?;
    if pending.account != account {
        return Err(GmailError::InvalidState);
    }
    let token = authorizer.exchange_code(&code, &pending).await?;
    tracing::info!(account, "Gmail access granted by manual code exchange; token cached");
    Ok(AuthCheckOutput::from_authorization(
        &crate::oauth::Authorization::Authorized {
            expires_at: token.expires_at,
            access_token: token.access_token,
            scopes: token.scopes,
        },
    ))
}
