//! The per-dataset PII policy: what to do with each entity, per column and per entity type.
//!
//! ```toml
//! min_score = 0.5                 # entities scored below this are ignored
//! default = "mask"                # for entities no rule below names
//! skip_columns = ["order_id"]     # never scanned, never changed
//!
//! [entities]
//! EMAIL = "tokenize"
//! CREDIT_DEBIT_NUMBER = { action = "mask", char = "#", keep_last = 4 }
//! DATE_TIME = "keep"
//!
//! [columns.full_name]
//! holds = ["NAME"]                # the whole cell is a NAME
//! action = "tokenize"             # every entity in this column
//!
//! [columns.notes]
//! min_score = 0.8
//! entities = { EMAIL = "redact" } # this column, this type
//! ```
//!
//! Precedence, most specific first: `columns.<c>.entities.<T>`, `columns.<c>.action`,
//! `entities.<T>`, `default`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::entity::EntityType;

/// What happens to one detected entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Leave the text as it is.
    Keep,
    /// Replace each character with `char`, except the last `keep_last` characters.
    Mask { char: char, keep_last: usize },
    /// Replace the entity with `[TYPE]`.
    Redact,
    /// Replace the entity with a stable keyed token; the original goes to the vault.
    Tokenize,
}

impl Action {
    pub const DEFAULT_MASK: Action = Action::Mask {
        char: '*',
        keep_last: 0,
    };

    pub fn name(&self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Mask { .. } => "mask",
            Action::Redact => "redact",
            Action::Tokenize => "tokenize",
        }
    }
}

/// The policy of one column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnPolicy {
    /// Entity types the whole cell holds (e.g. `NAME` for a `full_name` column).
    pub holds: Vec<EntityType>,
    pub action: Option<Action>,
    pub min_score: Option<f32>,
    pub entities: BTreeMap<EntityType, Action>,
}

/// One dataset's policy, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PiiPolicy {
    pub min_score: f32,
    pub default: Action,
    pub skip_columns: BTreeSet<String>,
    pub entities: BTreeMap<EntityType, Action>,
    pub columns: BTreeMap<String, ColumnPolicy>,
}

impl Default for PiiPolicy {
    /// Without a policy, every entity scored 0.5 or more is masked: nothing leaks by omission.
    fn default() -> Self {
        PiiPolicy {
            min_score: 0.5,
            default: Action::DEFAULT_MASK,
            skip_columns: BTreeSet::new(),
            entities: BTreeMap::new(),
            columns: BTreeMap::new(),
        }
    }
}

/// A policy that cannot be used, with where it came from and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read PII policy {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("PII policy {origin} is invalid: {message}")]
    Invalid { origin: String, message: String },
}

impl PiiPolicy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<PiiPolicy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates a policy document; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<PiiPolicy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|err| PolicyError::Invalid {
            origin: origin.to_string(),
            message: err.to_string().trim_end().to_string(),
        })?;
        raw.validate(origin)
    }

    /// Validates a policy given as an already-parsed TOML table (a `[pii.policies.<dataset>]`
    /// section of `sluice.toml`).
    pub fn from_value(value: toml::Value, origin: &str) -> Result<PiiPolicy, PolicyError> {
        let raw: RawPolicy = value.try_into().map_err(|err: toml::de::Error| PolicyError::Invalid {
            origin: origin.to_string(),
            message: err.message().to_string(),
        })?;
        raw.validate(origin)
    }

    pub fn is_skipped(&self, column: &str) -> bool {
        self.skip_columns.contains(column)
    }

    /// The entity types `column` is declared to hold as a whole.
    pub fn declared(&self, column: &str) -> &[EntityType] {
        self.columns.get(column).map_or(&[], |c| c.holds.as_slice())
    }

    pub fn min_score_for(&self, column: &str) -> f32 {
        self.columns
            .get(column)
            .and_then(|c| c.min_score)
            .unwrap_or(self.min_score)
    }

    /// The action for an entity of `kind` in `column`, most specific rule first.
    pub fn action_for(&self, column: &str, kind: &EntityType) -> &Action {
        let column_policy = self.columns.get(column);
        column_policy
            .and_then(|c| c.entities.get(kind))
            .or_else(|| column_policy.and_then(|c| c.action.as_ref()))
            .or_else(|| self.entities.get(kind))
            .unwrap_or(&self.default)
    }

    /// Whether any rule tokenizes (the step then needs the key and the vault).
    pub fn tokenizes(&self) -> bool {
        let tokenize = |a: &Action| *a == Action::Tokenize;
        tokenize(&self.default)
            || self.entities.values().any(tokenize)
            || self
                .columns
                .values()
                .any(|c| c.action.as_ref().is_some_and(tokenize) || c.entities.values().any(tokenize))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    min_score: Option<f32>,
    default: Option<Action>,
    #[serde(default)]
    skip_columns: Vec<String>,
    #[serde(default)]
    entities: BTreeMap<EntityType, Action>,
    #[serde(default)]
    columns: BTreeMap<String, RawColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    #[serde(default)]
    holds: Vec<EntityType>,
    action: Option<Action>,
    min_score: Option<f32>,
    #[serde(default)]
    entities: BTreeMap<EntityType, Action>,
}

impl RawPolicy {
    fn validate(self, origin: &str) -> Result<PiiPolicy, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let check_score = |field: &str, score: Option<f32>| match score {
            Some(s) if !(0.0..=1.0).contains(&s) => Err(invalid(format!("{field} must be between 0 and 1, got {s}"))),
            _ => Ok(()),
        };
        check_score("min_score", self.min_score)?;
        let mut skip_columns = BTreeSet::new();
        for column in self.skip_columns {
            if column.trim().is_empty() {
                return Err(invalid("skip_columns contains an empty column name".into()));
            }
            if self.columns.contains_key(&column) {
                return Err(invalid(format!(
                    "column {column:?} is both in skip_columns and configured under [columns.{column}]"
                )));
            }
            if !skip_columns.insert(column.clone()) {
                return Err(invalid(format!("skip_columns lists {column:?} twice")));
            }
        }
        let mut columns = BTreeMap::new();
        for (name, raw) in self.columns {
            check_score(&format!("columns.{name}.min_score"), raw.min_score)?;
            let mut holds = raw.holds;
            let before = holds.len();
            holds.sort();
            holds.dedup();
            if holds.len() != before {
                return Err(invalid(format!("columns.{name}.holds lists a type twice")));
            }
            columns.insert(
                name,
                ColumnPolicy {
                    holds,
                    action: raw.action,
                    min_score: raw.min_score,
                    entities: raw.entities,
                },
            );
        }
        Ok(PiiPolicy {
            min_score: self.min_score.unwrap_or(0.5),
            default: self.default.unwrap_or(Action::DEFAULT_MASK),
            skip_columns,
            entities: self.entities,
            columns,
        })
    }
}

/// An action is written as its name (`"redact"`) or as a table (`{ action = "mask", char = "#",
/// keep_last = 4 }`); `char` and `keep_last` belong to `mask` only.
impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ActionVisitor)
    }
}

struct ActionVisitor;

const ACTION_NAMES: &[&str] = &["keep", "mask", "redact", "tokenize"];
const MAX_KEEP_LAST: usize = 8;

fn named_action<E: de::Error>(name: &str) -> Result<Action, E> {
    match name {
        "keep" => Ok(Action::Keep),
        "mask" => Ok(Action::DEFAULT_MASK),
        "redact" => Ok(Action::Redact),
        "tokenize" => Ok(Action::Tokenize),
        other => Err(E::unknown_variant(other, ACTION_NAMES)),
    }
}

impl<'de> Visitor<'de> for ActionVisitor {
    type Value = Action;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            r#"an action: "keep", "mask", "redact", "tokenize" or { action = "mask", char = "*", keep_last = 4 }"#,
        )
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Action, E> {
        named_action(name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
        let (mut name, mut mask_char, mut keep_last): (Option<String>, Option<String>, Option<i64>) =
            (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "action" => name = Some(map.next_value()?),
                "char" => mask_char = Some(map.next_value()?),
                "keep_last" => keep_last = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &["action", "char", "keep_last"])),
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("action"))?;
        let action = named_action::<A::Error>(&name)?;
        if action != Action::DEFAULT_MASK {
            if mask_char.is_some() || keep_last.is_some() {
                return Err(de::Error::custom(format!(
                    "`char` and `keep_last` apply to the mask action only, not to {name:?}"
                )));
            }
            return Ok(action);
        }
        let char = match mask_char.as_deref() {
            None => '*',
            Some(text) => {
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if !c.is_alphanumeric() && !c.is_control() => c,
                    _ => {
                        return Err(de::Error::custom(format!(
                            "mask char must be one character that is not a letter, digit or control character, got {text:?}"
                        )));
                    }
                }
            }
        };
        let keep_last = match keep_last {
            None => 0,
            Some(n) if (0..=MAX_KEEP_LAST as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(de::Error::custom(format!(
                    "keep_last must be between 0 and {MAX_KEEP_LAST}, got {n}"
                )));
            }
        };
        Ok(Action::Mask { char, keep_last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r##"
        min_score = 0.6
        default = "redact"
        skip_columns = ["order_id"]

        [entities]
        EMAIL = "tokenize"
        CREDIT_DEBIT_NUMBER = { action = "mask", char = "#", keep_last = 4 }
        DATE_TIME = "keep"

        [columns.full_name]
        holds = ["NAME"]
        action = "tokenize"

        [columns.notes]
        min_score = 0.8
        entities = { EMAIL = "redact", IBAN = "mask" }
    "##;

    #[test]
    fn the_most_specific_rule_wins() {
        let policy = PiiPolicy::from_toml(EXAMPLE, "example.toml").unwrap();
        assert_eq!(policy.action_for("notes", &EntityType::Email), &Action::Redact);
        assert_eq!(policy.action_for("notes", &EntityType::Iban), &Action::DEFAULT_MASK);
        assert_eq!(policy.action_for("notes", &EntityType::Phone), &Action::Redact);
        assert_eq!(policy.action_for("full_name", &EntityType::Email), &Action::Tokenize);
        assert_eq!(policy.action_for("other", &EntityType::Email), &Action::Tokenize);
        assert_eq!(
            policy.action_for("other", &EntityType::CreditDebitNumber),
            &Action::Mask {
                char: '#',
                keep_last: 4
            }
        );
        assert_eq!(policy.action_for("other", &EntityType::DateTime), &Action::Keep);
        assert_eq!(policy.action_for("other", &EntityType::Phone), &Action::Redact);
        assert_eq!(policy.min_score_for("notes"), 0.8);
        assert_eq!(policy.min_score_for("other"), 0.6);
        assert_eq!(policy.declared("full_name"), &[EntityType::Name]);
        assert!(policy.is_skipped("order_id"));
        assert!(policy.tokenizes());
    }

    #[test]
    fn an_empty_policy_masks_everything_it_finds() {
        let policy = PiiPolicy::from_toml("", "empty.toml").unwrap();
        assert_eq!(policy, PiiPolicy::default());
        assert_eq!(policy.action_for("any", &EntityType::Ssn), &Action::DEFAULT_MASK);
        assert!(!policy.tokenizes());
    }

    #[test]
    fn bad_policies_are_rejected_at_load_time_with_what_and_where() {
        let cases: &[(&str, &[&str])] = &[
            ("[entities]\nEMIAL = \"mask\"", &["EMIAL", "line 2"]),
            ("[entities]\nEMAIL = \"maks\"", &["maks", "tokenize"]),
            ("min_score = 1.5", &["min_score", "1.5"]),
            ("[columns.notes]\nmin_score = -0.1", &["columns.notes.min_score"]),
            (
                "default = { action = \"mask\", char = \"ab\" }",
                &["mask char", "\"ab\""],
            ),
            ("default = { action = \"mask\", char = \"x\" }", &["mask char"]),
            ("default = { action = \"mask\", keep_last = 40 }", &["keep_last", "40"]),
            (
                "default = { action = \"redact\", keep_last = 4 }",
                &["mask action only", "redact"],
            ),
            ("default = { char = \"#\" }", &["action"]),
            (
                "skip_columns = [\"a\"]\n[columns.a]\naction = \"keep\"",
                &["\"a\"", "skip_columns"],
            ),
            ("[columns.a]\nhold = [\"NAME\"]", &["hold", "holds"]),
            (
                "[columns.a]\nholds = [\"NAME\", \"NAME\"]",
                &["columns.a.holds", "twice"],
            ),
            ("colums = 1", &["colums"]),
            ("[entities\n", &["line 1"]),
        ];
        for (document, expected) in cases {
            let err = PiiPolicy::from_toml(document, "policy.toml").unwrap_err().to_string();
            assert!(err.contains("policy.toml"), "{document:?} -> {err}");
            for fragment in *expected {
                assert!(err.contains(fragment), "{document:?} -> {err} (missing {fragment:?})");
            }
        }
    }

    #[test]
    fn a_policy_section_of_the_config_is_validated_the_same_way() {
        let value: toml::Value = toml::from_str("[entities]\nEMAIL = \"tokenize\"").unwrap();
        let policy = PiiPolicy::from_value(value, "sluice.toml [pii.policies.orders]").unwrap();
        assert!(policy.tokenizes());
        let bad: toml::Value = toml::from_str("default = \"shred\"").unwrap();
        let err = PiiPolicy::from_value(bad, "sluice.toml [pii.policies.orders]").unwrap_err();
        assert!(
            err.to_string().contains("shred") && err.to_string().contains("pii.policies.orders"),
            "{err}"
        );
    }
}
