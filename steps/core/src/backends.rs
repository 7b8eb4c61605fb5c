//! The bundle of backends a stage sees, built once from the configuration.

use std::sync::Arc;

use crate::config::{BackendKind, Config};
use crate::objects::{ObjectStore, S3ObjectStore};
use crate::secrets::{SecretStore, SecretsManagerStore};
use crate::tables::{DynamoTable, Table};
use crate::{BackendError, aws};

/// The name of the records table in the embedded backend.
pub const RECORDS_TABLE: &str = "records";
/// The name of the control table in the embedded backend.
pub const CONTROL_TABLE: &str = "control";

#[derive(Clone)]
pub struct Backends {
    pub objects: Arc<dyn ObjectStore>,
    pub records: Arc<dyn Table>,
    pub control: Arc<dyn Table>,
    pub secrets: Arc<dyn SecretStore>,
}

impl Backends {
    /// The backends `config` names: the embedded ones under `data_dir`, or AWS.
    pub async fn from_config(config: &Config) -> Result<Backends, BackendError> {
        match config.backend {
            BackendKind::Local => Self::local(config),
            BackendKind::Aws => Ok(Self::aws(config).await),
        }
    }

    /// A directory, one SQLite file and a 0600 secrets file, all under `config.data_dir`.
    #[cfg(feature = "local")]
    pub fn local(config: &Config) -> Result<Backends, BackendError> {
        let database = crate::tables::SqliteDatabase::open(&config.sqlite_path())?;
        Ok(Backends {
            objects: Arc::new(crate::objects::LocalObjectStore::open(&config.data_dir)?),
            records: Arc::new(database.table(RECORDS_TABLE)),
            control: Arc::new(database.table(CONTROL_TABLE)),
            secrets: Arc::new(crate::secrets::LocalSecretStore::open(
                &config.data_dir.join("secrets.json"),
            )?),
        })
    }

    #[cfg(not(feature = "local"))]
    pub fn local(_config: &Config) -> Result<Backends, BackendError> {
        Err(BackendError::LocalNotBuilt)
    }

    /// S3, DynamoDB and Secrets Manager, at `aws.endpoint_url` when one is configured.
    pub async fn aws(config: &Config) -> Backends {
        let sdk = aws::sdk_config(&config.aws).await;
        let bucket = config.aws.bucket.clone().unwrap_or_default();
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        Backends {
            objects: Arc::new(S3ObjectStore::new(&sdk, &config.aws, &bucket)),
            records: Arc::new(DynamoTable::new(dynamodb.clone(), &config.aws.records_table)),
            control: Arc::new(DynamoTable::new(dynamodb, &config.aws.control_table)),
            secrets: Arc::new(
                SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), &config.aws.secret_prefix)
                    .with_kms_key(config.aws.kms_key_id.clone()),
            ),
        }
    }

    /// Creates the bucket and tables if they are missing (emulators, first local AWS runs).
    pub async fn provision_aws(config: &Config) -> Result<(), BackendError> {
        let sdk = aws::sdk_config(&config.aws).await;
        let bucket = config.aws.bucket.clone().unwrap_or_default();
        S3ObjectStore::new(&sdk, &config.aws, &bucket)
            .create_bucket_if_missing()
            .await?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        for table in [&config.aws.records_table, &config.aws.control_table] {
            DynamoTable::new(dynamodb.clone(), table).create_if_missing().await?;
        }
        Ok(())
    }
}
