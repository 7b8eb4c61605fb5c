//! The `[pii]` section of the configuration, the per-dataset policies in it, and building the
//! configured detector.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use sluice_core::Config;

use crate::comprehend::{ComprehendDetector, ComprehendSettings};
use crate::detector::{BuiltinDetector, Detector};
use crate::error::PiiError;
use crate::policy::PiiPolicy;

/// Which detector finds PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The built-in recognizers (local default; no network, no cost).
    #[default]
    Builtin,
    /// Amazon Comprehend DetectPiiEntities.
    Comprehend,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "builtin" => Ok(Engine::Builtin),
            "comprehend" => Ok(Engine::Comprehend),
            other => Err(format!("unknown PII engine {other:?} (expected builtin or comprehend)")),
        }
    }
}

/// `[pii]` in `sluice.toml` (or `SLUICE_PII__...` on Lambda).
///
/// ```toml
/// [pii]
/// engine = "comprehend"
/// [pii.comprehend]
/// endpoint_url = "http://127.0.0.1:4599"
/// [pii.policies.orders]          # a PiiPolicy, see crate::policy
/// entities = { EMAIL = "tokenize" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiSettings {
    pub engine: Engine,
    pub comprehend: ComprehendSettings,
    /// Policies by dataset, validated by [`PiiSettings::policies`].
    pub policies: BTreeMap<String, toml::Value>,
    /// Cell text per detection batch (bytes): bounds memory, and fills Comprehend requests.
    pub batch_bytes: usize,
}

impl Default for PiiSettings {
    fn default() -> Self {
        PiiSettings {
            engine: Engine::Builtin,
            comprehend: ComprehendSettings::default(),
            policies: BTreeMap::new(),
            batch_bytes: 1024 * 1024,
        }
    }
}

/// Every dataset's validated policy; datasets without one get [`PiiPolicy::default`].
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: BTreeMap<String, PiiPolicy>,
}

impl PolicySet {
    pub fn new(policies: BTreeMap<String, PiiPolicy>) -> Self {
        PolicySet { policies }
    }

    pub fn for_dataset(&self, dataset: &str) -> PiiPolicy {
        self.policies.get(dataset).cloned().unwrap_or_default()
    }
}

impl PiiSettings {
    /// Reads `[pii]` from the configuration.
    pub fn from_config(config: &Config) -> Result<PiiSettings, PiiError> {
        let settings: PiiSettings = config.section("pii").map_err(PiiError::Config)?;
        if settings.comprehend.max_request_bytes < 64 || settings.comprehend.max_request_bytes > 100_000 {
            return Err(PiiError::InvalidSetting {
                field: "pii.comprehend.max_request_bytes",
                reason: "must be between 64 and 100000 (Comprehend's 100 KB limit)".into(),
            });
        }
        if settings.comprehend.overlap_bytes * 2 > settings.comprehend.max_request_bytes {
            return Err(PiiError::InvalidSetting {
                field: "pii.comprehend.overlap_bytes",
                reason: "must be at most half of max_request_bytes".into(),
            });
        }
        if settings.batch_bytes == 0 {
            return Err(PiiError::InvalidSetting {
                field: "pii.batch_bytes",
                reason: "must be greater than 0".into(),
            });
        }
        Ok(settings)
    }

    /// Validates every `[pii.policies.<dataset>]`; the first bad one is an error naming it.
    pub fn policies(&self, origin: &str) -> Result<PolicySet, PiiError> {
        let mut policies = BTreeMap::new();
        for (dataset, value) in &self.policies {
            let where_ = format!("{origin} [pii.policies.{dataset}]");
            policies.insert(dataset.clone(), PiiPolicy::from_value(value.clone(), &where_)?);
        }
        Ok(PolicySet::new(policies))
    }

    /// The detector these settings name.
    pub async fn detector(&self, config: &Config, engine: Option<Engine>) -> Arc<dyn Detector> {
        match engine.unwrap_or(self.engine) {
            Engine::Builtin => Arc::new(BuiltinDetector::new()),
            Engine::Comprehend => {
                Arc::new(ComprehendDetector::from_aws_settings(&config.aws, self.comprehend.clone()).await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn policies_in_the_config_are_validated_and_name_their_dataset() {
        let config = Config::from_toml(
            "[pii]\nengine = \"comprehend\"\n[pii.policies.orders]\nentities = { EMAIL = \"tokenize\" }\n[pii.policies.bad]\ndefault = \"shred\"",
            "sluice.toml",
            Path::new("."),
        )
        .unwrap();
        let settings = PiiSettings::from_config(&config).unwrap();
        assert_eq!(settings.engine, Engine::Comprehend);
        let err = settings.policies("sluice.toml").unwrap_err().to_string();
        assert!(err.contains("pii.policies.bad") && err.contains("shred"), "{err}");
    }

    #[test]
    fn unknown_settings_and_bad_limits_are_rejected() {
        let typo = Config::from_toml("[pii]\nengin = \"builtin\"", "c.toml", Path::new(".")).unwrap();
        assert!(
            PiiSettings::from_config(&typo)
                .unwrap_err()
                .to_string()
                .contains("engin")
        );
        let big = Config::from_toml("[pii.comprehend]\nmax_request_bytes = 200000", "c.toml", Path::new(".")).unwrap();
        assert!(
            PiiSettings::from_config(&big)
                .unwrap_err()
                .to_string()
                .contains("max_request_bytes")
        );
    }
}
