//! Secrets Manager.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::{SecretStore, SecretValue};
use crate::BackendError;
use crate::aws::sdk_error;

const SERVICE: &str = "SecretsManager";

pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
    /// Secrets created at run time are encrypted under this key (the account default when absent).
    kms_key_id: Option<String>,
}

impl SecretsManagerStore {
    pub fn new(client: Client, prefix: &str) -> SecretsManagerStore {
        SecretsManagerStore {
            client,
            prefix: prefix.to_string(),
            kms_key_id: None,
        }
    }

    /// Encrypts the secrets this store creates under `key` (SSE-KMS everywhere).
    pub fn with_kms_key(mut self, key: Option<String>) -> SecretsManagerStore {
        self.kms_key_id = key;
        self
    }

    fn id(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> Result<Option<SecretValue>, BackendError> {
        match self.client.get_secret_value().secret_id(self.id(name)).send().await {
            Ok(output) => Ok(output.secret_string().map(SecretValue::new)),
            Err(err) if matches!(err.as_service_error(), Some(e) if e.is_resource_not_found_exception()) => Ok(None),
            Err(err) => Err(sdk_error(SERVICE, "GetSecretValue", err)),
        }
    }

    async fn put(&self, name: &str, value: &SecretValue) -> Result<(), BackendError> {
        if self.create_if_absent(name, value).await? {
            return Ok(());
        }
        self.client
            .put_secret_value()
            .secret_id(self.id(name))
            .secret_string(value.expose())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "PutSecretValue", e))?;
        Ok(())
    }

    async fn create_if_absent(&self, name: &str, value: &SecretValue) -> Result<bool, BackendError> {
        match self
            .client
            .create_secret()
            .name(self.id(name))
            .set_kms_key_id(self.kms_key_id.clone())
            .secret_string(value.expose())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if matches!(err.as_service_error(), Some(e) if e.is_resource_exists_exception()) => Ok(false),
            Err(err) => Err(sdk_error(SERVICE, "CreateSecret", err)),
        }
    }
}
