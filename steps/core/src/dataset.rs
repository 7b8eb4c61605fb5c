//! What a valid dataset name is, in one place. Dataset names become key prefixes, object-key
//! segments and URL segments, so they stay plain: 1 to 64 ASCII letters, digits, `-`, `_` and
//! `.`, and never `.` or `..`. Parse once where a name comes in ([`DatasetName::parse`]); the
//! error says the rule the same way everywhere.

use std::fmt;

/// How a dataset name must look, for messages that state the rule.
pub const DATASET_NAME_RULE: &str = "1 to 64 letters, digits, '-', '_' or '.', not '.' or '..'";

/// A dataset name known to be valid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DatasetName(String);

/// A name that is not a valid dataset name (shown shortened: it came from outside).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dataset name {shown:?} is invalid ({DATASET_NAME_RULE})")]
pub struct InvalidDatasetName {
    shown: String,
}

impl DatasetName {
    pub fn parse(name: &str) -> Result<DatasetName, InvalidDatasetName> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name != "."
            && name != "..";
        if valid {
            Ok(DatasetName(name.to_string()))
        } else {
            Err(InvalidDatasetName {
                shown: name.chars().take(80).collect(),
            })
        }
    }

    /// Whether `name` is a valid dataset name (for callers that answer without saying why).
    pub fn is_valid(name: &str) -> bool {
        Self::parse(name).is_ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DatasetName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DatasetName {
    type Err = InvalidDatasetName;

    fn from_str(name: &str) -> Result<DatasetName, InvalidDatasetName> {
        DatasetName::parse(name)
    }
}

impl<'de> serde::Deserialize<'de> for DatasetName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<DatasetName, D::Error> {
        let name = String::deserialize(deserializer)?;
        DatasetName::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_parse_and_anything_else_is_refused_with_the_rule() {
        for good in ["orders", "a", "Sales-2026_v1.2", &"x".repeat(64)] {
            assert_eq!(DatasetName::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", ".", "..", "a/b", "../x", "caf\u{e9}", "a b", &"x".repeat(65), "a#b"] {
            let err = DatasetName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("dataset name") && err.contains(DATASET_NAME_RULE), "{err}");
        }
        let long = DatasetName::parse(&"y".repeat(10_000)).unwrap_err().to_string();
        assert!(long.len() < 200, "a long name is shown shortened: {long}");
        let parsed: DatasetName = serde_json::from_str("\"orders\"").unwrap();
        assert_eq!(parsed.to_string(), "orders");
        assert!(serde_json::from_str::<DatasetName>("\"../etc\"").is_err());
    }
}
