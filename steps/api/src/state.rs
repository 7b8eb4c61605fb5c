//! What every handler shares: the backends, the authorizer, the cursor signer, the settings,
//! the run starter and the vault keys read so far; and the authentication of each request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sluice_core::secrets::key_or_create;
use sluice_core::vault::{VaultCipher, VaultReadError, VaultReader};
use sluice_core::{Backends, Config, SecretStore, Table};

use crate::auth::{Authorizer, Credentials, Principal};
use crate::cursor::{CURSOR_KEY_SECRET, CursorSigner};
use crate::error::ApiSetupError;
use crate::run_starter::RunStarter;
use crate::settings::ApiSettings;

struct Shared {
    records: Arc<dyn Table>,
    control: Arc<dyn Table>,
    secrets: Arc<dyn SecretStore>,
    vault_keys: VaultKeys,
    authorizer: Authorizer,
    cursors: CursorSigner,
    settings: ApiSettings,
}

/// Everything the handlers need, cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    shared: Arc<Shared>,
    run_starter: Option<Arc<dyn RunStarter>>,
    extra_routes: Option<Router>,
}

impl ApiState {
    /// From `[api]` and the backends (records table, control table for keys, secrets for the
    /// cursor key).
    pub async fn from_config(config: &Config, backends: &Backends) -> Result<ApiState, ApiSetupError> {
        let settings = ApiSettings::from_config(config)?;
        Self::new(settings, backends).await
    }

    pub async fn new(settings: ApiSettings, backends: &Backends) -> Result<ApiState, ApiSetupError> {
        settings.check()?;
        let authorizer = Authorizer::from_settings(&settings, backends)?;
        let cursor_key = key_or_create(backends.secrets.as_ref(), CURSOR_KEY_SECRET).await?;
        Ok(ApiState {
            shared: Arc::new(Shared {
                records: backends.records.clone(),
                control: backends.control.clone(),
                secrets: backends.secrets.clone(),
                vault_keys: VaultKeys::default(),
                authorizer,
                cursors: CursorSigner::new(cursor_key),
                settings,
            }),
            run_starter: None,
            extra_routes: None,
        })
    }

    /// Lets `POST /runs` start executions through `starter`.
    pub fn with_run_starter(mut self, starter: Arc<dyn RunStarter>) -> ApiState {
        self.run_starter = Some(starter);
        self
    }

    /// Merges routes served without this API's authentication (e.g. `GET /oauth/callback`,
    /// which authenticates by its single-use `state`).
    pub fn with_routes(mut self, routes: Router) -> ApiState {
        self.extra_routes = Some(match self.extra_routes.take() {
            Some(existing) => existing.merge(routes),
            None => routes,
        });
        self
    }

    pub(crate) fn extra_routes(&self) -> Option<Router> {
        self.extra_routes.clone()
    }

    pub fn authorizer(&self) -> &Authorizer {
        &self.shared.authorizer
    }

    pub(crate) fn records(&self) -> &dyn Table {
        self.shared.records.as_ref()
    }

    pub(crate) fn control(&self) -> &dyn Table {
        self.shared.control.as_ref()
    }

    pub(crate) fn secrets(&self) -> &dyn SecretStore {
        self.shared.secrets.as_ref()
    }

    /// The dataset's vault cipher, its key read once per process; None without a key.
    pub(crate) async fn vault_cipher(&self, dataset: &str) -> Result<Option<VaultCipher>, VaultReadError> {
        self.shared
            .vault_keys
            .cipher(self.control(), self.secrets(), dataset)
            .await
    }

    pub(crate) fn cursors(&self) -> &CursorSigner {
        &self.shared.cursors
    }

    pub(crate) fn settings(&self) -> &ApiSettings {
        &self.shared.settings
    }

    pub(crate) fn run_starter(&self) -> Option<Arc<dyn RunStarter>> {
        self.run_starter.clone()
    }
}

/// Authenticates the request; the handler then checks the scope it needs.
impl FromRequestParts<ApiState> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Principal, Response> {
        let credentials = Credentials::from_request(parts.method.as_str(), &parts.headers, parts.uri.query());
        let principal = state
            .authorizer()
            .authenticate(&credentials)
            .await
            .map_err(|err| err.into_api_error().into_response())?;
        if let Some(slot) = parts.extensions.get::<crate::access::PrincipalSlot>() {
            slot.set(&principal.subject);
        }
        Ok(principal)
    }
}

/// Vault keys already read, by dataset: one Secrets Manager call per dataset and process.
#[derive(Default)]
pub(crate) struct VaultKeys(Mutex<HashMap<String, VaultCipher>>);

impl VaultKeys {
    async fn cipher(
        &self,
        control: &dyn Table,
        secrets: &dyn SecretStore,
        dataset: &str,
    ) -> Result<Option<VaultCipher>, VaultReadError> {
        if let Some(cipher) = self.0.lock().ok().and_then(|known| known.get(dataset).cloned()) {
            return Ok(Some(cipher));
        }
        // A dataset without a key has nothing tokenized yet: asked again next time.
        let Some(reader) = VaultReader::open(control, secrets, dataset).await? else {
            return Ok(None);
        };
        let cipher = reader.cipher().clone();
        if let Ok(mut known) = self.0.lock() {
            known.insert(dataset.to_string(), cipher.clone());
        }
        Ok(Some(cipher))
    }
}
