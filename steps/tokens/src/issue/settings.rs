//! The `[tokens]` section: the consumers of each dataset (scopes, key lifetime), rotation
//! timing, and the outbound client-credentials clients; checked when it is read.

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_core::Config;
use sluice_core::dataset::DatasetName;

use crate::client_credentials::ClientCredentialsSettings;
use crate::error::TokenError;

/// The `[tokens]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// How long the previous key keeps working after a rotation.
    pub overlap_hours: u32,
    /// Rotate when the current key has less than this left.
    pub renew_before_days: u32,
    /// `[tokens.consumers.<dataset>.<consumer>]`.
    pub consumers: BTreeMap<String, BTreeMap<String, ConsumerSettings>>,
    /// `[tokens.clients.<name>]`: outbound client-credentials clients.
    pub clients: BTreeMap<String, ClientCredentialsSettings>,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            overlap_hours: 24,
            renew_before_days: 14,
            consumers: BTreeMap::new(),
            clients: BTreeMap::new(),
        }
    }
}

/// One consumer of a dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSettings {
    /// E.g. `records:read`, `records:reidentify`, `runs:start`.
    pub scopes: Vec<String>,
    pub lifetime_days: u32,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            scopes: vec!["records:read".into()],
            lifetime_days: 90,
        }
    }
}

impl TokenSettings {
    /// Reads and checks `[tokens]`.
    pub fn from_config(config: &Config) -> Result<TokenSettings, TokenError> {
        let settings: TokenSettings = config.section("tokens")?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), TokenError> {
        let invalid = |field: String, message: &str| TokenError::Settings {
            field,
            message: message.to_string(),
        };
        for (dataset, consumers) in &self.consumers {
            if let Err(err) = DatasetName::parse(dataset) {
                return Err(invalid(format!("consumers.{dataset}"), &err.to_string()));
            }
            for (name, consumer) in consumers {
                let field = format!("consumers.{dataset}.{name}");
                // A consumer name becomes a secret-name segment: the dataset-name rule keeps it plain.
                if !DatasetName::is_valid(name) {
                    return Err(invalid(
                        field,
                        "is not a valid consumer name (letters, digits, '-', '_', '.')",
                    ));
                }
                if consumer.lifetime_days == 0 {
                    return Err(invalid(format!("{field}.lifetime_days"), "must be at least 1"));
                }
                if consumer.scopes.is_empty() {
                    return Err(invalid(format!("{field}.scopes"), "must name at least one scope"));
                }
                if let Some(bad) = consumer.scopes.iter().find(|s| !sluice_core::scopes::is_known(s)) {
                    return Err(invalid(
                        format!("{field}.scopes"),
                        &format!(
                            "holds {bad:?}, which is not a Sluice scope (known: {})",
                            sluice_core::scopes::ALL.join(", ")
                        ),
                    ));
                }
            }
        }
        for (name, client) in &self.clients {
            client
                .check()
                .map_err(|message| invalid(format!("clients.{name}"), &message))?;
        }
        Ok(())
    }
}
