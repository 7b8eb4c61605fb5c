//! The tokens stage: access for a dataset's consumers, and tokens Sluice itself presents to others.
//!
//! - [`api_key`]: the consumer API key format (prefix, 190 random bits, checksum) and its SHA-256.
//! - [`stored`]: the hashed key records in the control table, and key look-ups.
//! - [`issue`]: the token-issue step: issue, rotate with overlap, deliver once into the consumer's secret.
//! - [`client_credentials`]: outbound OAuth2 client-credentials tokens, cached encrypted, fetched once at a time.
//! - [`error`]: the stage's errors and their Step Functions names.

pub mod api_key;
pub mod client_credentials;
pub mod error;
pub mod issue;
pub mod stored;

pub use api_key::{ApiKey, KeyHash, MalformedApiKey};
pub use error::TokenError;
pub use issue::{ConsumerSettings, IssueAction, IssuedConsumer, TokenIssueInput, TokenIssueOutput, TokenSettings, run};
pub use stored::{ApiKeyStore, StoredApiKey};
