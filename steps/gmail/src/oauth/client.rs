//! The OAuth client's id and secret. The secret comes from the secrets backend, stored either
//! bare or as the `client_secret_*.json` Google's console downloads (read with yup-oauth2).

use sluice_core::SecretStore;
use sluice_core::secrets::SecretValue;

use crate::error::GmailError;
use crate::settings::GmailSettings;

#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretValue,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish()
    }
}

impl ClientCredentials {
    /// Reads the secret named by `client_secret_name`; the client id is the configured one, or
    /// the one in the downloaded JSON.
    pub async fn load(settings: &GmailSettings, secrets: &dyn SecretStore) -> Result<Self, GmailError> {
        let name = settings.client_secret_name.as_str();
        let problem = |reason: &str| GmailError::ClientSecret {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let stored = secrets
            .get(name)
            .await?
            .ok_or_else(|| problem("does not exist in the secrets backend"))?;
        let text = stored.expose().trim();
        let (client_id, client_secret) = if text.starts_with('{') {
            let parsed = google_gmail1::yup_oauth2::parse_application_secret(text.as_bytes()).map_err(|_| {
                problem("is JSON but not a Google OAuth client file (no \"web\" or \"installed\" client)")
            })?;
            let id = if settings.client_id.is_empty() {
                parsed.client_id
            } else {
                settings.client_id.clone()
            };
            (id, parsed.client_secret)
        } else {
            (settings.client_id.clone(), text.to_string())
        };
        if client_secret.is_empty() {
            return Err(problem("is empty"));
        }
        if client_id.is_empty() {
            return Err(GmailError::Settings {
                field: "gmail.client_id".into(),
                message: "is required when the client secret is stored bare".into(),
            });
        }
        Ok(ClientCredentials {
            client_id,
            client_secret: SecretValue::new(client_secret),
        })
    }
}
