//! The five steps, one module each, each a `run(input, deps)` the Lambda and the local runner
//! both call, plus what they need built once per process.

pub mod auth_check;
pub mod callback;
pub mod code_exchange;
pub mod consent_request;
pub mod fetch;
pub mod run;
mod sync;

use std::sync::Arc;

use sluice_core::{Backends, TaskTokens};

use crate::error::GmailError;
use crate::http::{HttpClient, https_client};
use crate::mail::MailSource;
use crate::mail::gmail::GmailSource;
use crate::mail::local::LocalMailSource;
use crate::oauth::Authorizer;
use crate::settings::{GmailSettings, SourceKind};

/// What the OAuth steps (auth check, consent request, callback, code exchange) need.
#[derive(Clone)]
pub struct OAuthDeps {
    pub authorizer: Arc<Authorizer>,
    pub task_tokens: Arc<dyn TaskTokens>,
}

impl OAuthDeps {
    /// Builds the authorizer (reading or creating the token keyring) over `backends`.
    pub async fn new(
        settings: GmailSettings,
        backends: &Backends,
        task_tokens: Arc<dyn TaskTokens>,
        http: HttpClient,
    ) -> Result<OAuthDeps, GmailError> {
        let authorizer = Authorizer::new(settings, backends.control.clone(), backends.secrets.clone(), http).await?;
        Ok(OAuthDeps {
            authorizer: Arc::new(authorizer),
            task_tokens,
        })
    }

    /// The usual way: settings from `[gmail]`, a fresh HTTPS client.
    pub async fn from_config(
        config: &sluice_core::Config,
        backends: &Backends,
        task_tokens: Arc<dyn TaskTokens>,
    ) -> Result<OAuthDeps, GmailError> {
        let settings = GmailSettings::from_config(config)?;
        Self::new(settings, backends, task_tokens, https_client()?).await
    }
}

/// The mail source `[gmail] source` names: the `.eml` directory, or Gmail through `authorizer`.
pub fn mail_source(authorizer: &Arc<Authorizer>, http: &HttpClient) -> Arc<dyn MailSource> {
    let settings = authorizer.settings();
    match settings.source {
        SourceKind::Local => Arc::new(LocalMailSource::new(&settings.mail_dir)),
        SourceKind::Gmail => Arc::new(GmailSource::new(authorizer.clone(), http.clone())),
    }
}
