//! Sluice's shared pieces, used by every stage and by the local runner.
//!
//! - [`config`]: one typed configuration for local runs (`sluice.toml`) and Lambda (environment).
//! - [`error`]: stable Step Functions error names and the Lambda error conversion.
//! - [`item`]: DynamoDB-shaped items, shared by both table backends.
//! - [`objects`], [`tables`], [`secrets`]: the backend ports, each with an AWS and an embedded
//!   implementation, bundled in [`Backends`].
//! - [`task_tokens`]: answering a paused `.waitForTaskToken` task (Step Functions or the local engine).
//! - [`ledger`], [`lease`]: the attachment ledger and the leases in the control table.
//! - [`quarantine`]: moving refused files aside with a machine-readable reason.
//! - [`retry`]: exponential backoff with full jitter.
//! - [`sealed`]: values sealed with AES-256-GCM in the control table, under a rotatable keyring.
//! - [`vault`]: the re-identification vault's format, for its writer and its readers.
//! - [`testing`]: test support (the moto endpoint or a loud skip, fresh backends).
//! - [`telemetry`]: tracing setup (JSON on Lambda) and the process-wide TLS crypto provider.

pub mod backends;
pub mod config;
pub mod dataset;
pub mod error;
pub mod item;
pub mod lambda;
pub mod lease;
pub mod ledger;
pub mod objects;
pub mod private;
pub mod process;
pub mod quarantine;
pub mod retry;
pub mod run_options;
pub mod scopes;
pub mod sealed;
pub mod secrets;
pub mod tables;
pub mod task_tokens;
pub mod telemetry;
pub mod testing;
pub mod vault;

pub mod aws;

pub use backends::Backends;
pub use config::{BackendKind, Config, ConfigError};
pub use error::{BackendError, StepError, StepFailure};
pub use item::{AttrValue, Item, ItemKey};
pub use objects::{ObjectInfo, ObjectKey, ObjectStore, PutOptions};
pub use secrets::{SecretStore, SecretValue};
pub use tables::{DeleteCondition, Page, PageRequest, PutCondition, Table};
pub use task_tokens::TaskTokens;
