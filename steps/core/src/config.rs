//! One typed configuration for both ways Sluice runs: a `sluice.toml` for local runs, and
//! environment variables on Lambda. Environment variables overlay the file, so the same struct
//! comes out either way:
//!
//! - `SLUICE_CONFIG`: a whole TOML document (used when there is no file);
//! - `SLUICE_BACKEND`, `SLUICE_DATA_DIR`: top-level keys;
//! - `SLUICE_<SECTION>__<KEY>` (double underscore between levels, any depth), e.g.
//!   `SLUICE_AWS__BUCKET=my-bucket`, `SLUICE_INGEST__ON_BAD_ROWS=quarantine`,
//!   `SLUICE_DATASETS__ORDERS__KEY_COLUMNS='["order_id"]'`. Values are read as TOML values
//!   when they parse as one (numbers, booleans, arrays), else as strings.
//!
//! Stages with settings of their own read them with [`Config::section`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::dataset::DatasetName;

/// Which implementation backs the objects, tables and secrets ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A directory, a SQLite file and a 0600 secrets file under `data_dir`.
    #[default]
    Local,
    /// S3, DynamoDB and Secrets Manager (or an emulator at `aws.endpoint_url`).
    Aws,
}

/// The AWS side: resource names and the endpoint override for emulators.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSettings {
    pub region: Option<String>,
    /// Sends every AWS client to this URL (moto, LocalStack) instead of AWS.
    pub endpoint_url: Option<String>,
    /// Sends the Step Functions client alone elsewhere: the local engine's endpoint when the
    /// real Lambda binaries run locally (`sluice run --lambda-binaries`).
    pub step_functions_endpoint_url: Option<String>,
    pub bucket: Option<String>,
    pub records_table: String,
    pub control_table: String,
    /// The state machine that processes files put under the bucket's `incoming/`
    /// (`asl/upload.asl.json`): the `sluice-incoming` function starts it.
    pub upload_state_machine_arn: Option<String>,
    /// When set, objects are written with SSE-KMS under this key.
    pub kms_key_id: Option<String>,
    /// Prefix of every secret name Sluice reads or writes.
    pub secret_prefix: String,
    /// Objects at least this large are uploaded in parts.
    pub multipart_threshold_bytes: u64,
    pub multipart_part_bytes: u64,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            step_functions_endpoint_url: None,
            bucket: None,
            records_table: "sluice-records".into(),
            control_table: "sluice-control".into(),
            upload_state_machine_arn: None,
            kms_key_id: None,
            secret_prefix: "sluice/".into(),
            multipart_threshold_bytes: 16 * 1024 * 1024,
            multipart_part_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The S3 stage's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageSettings {
    /// Attachments larger than this are quarantined unread.
    pub max_attachment_bytes: u64,
    /// The same for a file handed over on the command line (`sluice ingest FILE`).
    pub max_file_bytes: u64,
}

impl Default for StageSettings {
    fn default() -> Self {
        StageSettings {
            max_attachment_bytes: 50 * 1024 * 1024,
            max_file_bytes: 20 * 1024 * 1024 * 1024,
        }
    }
}

/// What ingest does with rows it cannot load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRowPolicy {
    /// Bad rows go to a rejects object beside the file; the good rows load.
    #[default]
    RejectRows,
    /// Any bad row quarantines the whole file and loads nothing.
    Quarantine,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    pub on_bad_rows: BadRowPolicy,
    /// BatchWriteItem calls in flight at once.
    pub concurrency: usize,
    /// Retries of `UnprocessedItems` before the step fails.
    pub max_retries: u32,
    /// The dataset a file lands in when nothing names one.
    pub default_dataset: String,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            on_bad_rows: BadRowPolicy::RejectRows,
            concurrency: 4,
            max_retries: 8,
            default_dataset: "default".into(),
        }
    }
}

/// The declared type of a column; `auto` infers per cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    #[default]
    Auto,
    String,
    Number,
    Bool,
}

/// One dataset's schema and source encoding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetSettings {
    /// Columns whose values, joined, form the record key. Empty: the first column.
    pub key_columns: Vec<String>,
    /// Declared column types; columns not named here are inferred.
    pub columns: BTreeMap<String, ColumnType>,
    /// The encoding of attachments for this dataset when they are not UTF-8 (e.g. `windows-1252`).
    pub encoding: Option<String>,
}

impl DatasetSettings {
    /// The key columns of a file whose header is `columns`: as configured, else the first
    /// column. A configured column the header lacks is returned as the error.
    pub fn key_columns_in<'a>(&'a self, columns: &'a [String]) -> Result<Vec<&'a str>, &'a str> {
        if self.key_columns.is_empty() {
            return Ok(columns.first().map(String::as_str).into_iter().collect());
        }
        self.key_columns
            .iter()
            .map(|key| {
                columns
                    .iter()
                    .find(|c| *c == key)
                    .map(String::as_str)
                    .ok_or(key.as_str())
            })
            .collect()
    }
}

/// Every key a configuration document may have at its top level: the settings of this crate
/// and the sections the stages read (`[gmail]`, `[pii]`, `[tokens]`, `[api]`).
pub const TOP_LEVEL_KEYS: [&str; 10] = [
    "backend", "data_dir", "aws", "stage", "ingest", "datasets", "gmail", "pii", "tokens", "api",
];

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub backend: BackendKind,
    /// Where the embedded backends keep their files (`.sluice/` beside the config file).
    pub data_dir: PathBuf,
    pub aws: AwsSettings,
    pub stage: StageSettings,
    pub ingest: IngestSettings,
    pub datasets: BTreeMap<String, DatasetSettings>,
    /// Where the settings came from, for error messages.
    pub origin: String,
    raw: toml::Table,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("config {origin}: invalid [{section}]: {message}")]
    Section {
        origin: String,
        section: String,
        message: String,
    },
    #[error("environment variable {var} is invalid: {message}")]
    Env { var: String, message: String },
    #[error("config {origin}: {field} {message}")]
    Invalid {
        origin: String,
        field: String,
        message: String,
    },
}

impl crate::StepError for ConfigError {
    fn error_name(&self) -> &'static str {
        "Config.Invalid"
    }
}

const ENV_PREFIX: &str = "SLUICE_";

impl Config {
    /// Reads `path` (a `sluice.toml`), then overlays the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::from_toml_with_env(&text, &path.display().to_string(), base_dir, std::env::vars())
    }

    /// The Lambda way: `SLUICE_CONFIG` (if any) overlaid by the other `SLUICE_*` variables.
    pub fn from_env() -> Result<Config, ConfigError> {
        let document = std::env::var("SLUICE_CONFIG").unwrap_or_default();
        Self::from_toml_with_env(&document, "from environment", Path::new("."), std::env::vars())
    }

    /// Parses a TOML document, relative paths resolved against `base_dir`, with no environment.
    pub fn from_toml(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        Self::from_toml_with_env(text, origin, base_dir, std::iter::empty())
    }

    /// Parses a TOML document and overlays `env` (name, value) pairs that start with `SLUICE_`.
    pub fn from_toml_with_env(
        text: &str,
        origin: &str,
        base_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut raw: toml::Table = text.parse().map_err(|err: toml::de::Error| ConfigError::Syntax {
            origin: origin.to_string(),
            message: err.to_string(),
        })?;
        // A typo (`data_dri`, `[ingst]`) is an error, not a setting quietly ignored. Only the
        // document is checked: the environment carries unrelated SLUICE_* variables too.
        if let Some(unknown) = raw.keys().find(|key| !TOP_LEVEL_KEYS.contains(&key.as_str())) {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                field: unknown.clone(),
                message: format!(
                    "is not a Sluice setting (the top level knows {})",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            });
        }
        let mut overlaid: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name != "SLUICE_CONFIG")
            .collect();
        overlaid.sort();
        for (name, value) in overlaid {
            overlay_env(&mut raw, &name, &value)?;
        }
        Self::from_raw(raw, origin, base_dir)
    }

    fn from_raw(raw: toml::Table, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let backend: BackendKind = typed_value(&raw, origin, "backend")?.unwrap_or_default();
        let data_dir: PathBuf =
            typed_value::<PathBuf>(&raw, origin, "data_dir")?.unwrap_or_else(|| PathBuf::from(".sluice"));
        let data_dir = if data_dir.is_absolute() {
            data_dir
        } else {
            base_dir.join(data_dir)
        };
        let config = Config {
            backend,
            data_dir,
            aws: section_of(&raw, origin, "aws")?,
            stage: section_of(&raw, origin, "stage")?,
            ingest: section_of(&raw, origin, "ingest")?,
            datasets: section_of(&raw, origin, "datasets")?,
            origin: origin.to_string(),
            raw,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: &str| ConfigError::Invalid {
            origin: self.origin.clone(),
            field: field.to_string(),
            message: message.to_string(),
        };
        if self.backend == BackendKind::Aws && self.aws.bucket.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "aws.bucket",
                "is required when backend = \"aws\" (or set SLUICE_AWS__BUCKET)",
            ));
        }
        if self.ingest.concurrency == 0 {
            return Err(invalid("ingest.concurrency", "must be at least 1"));
        }
        if self.stage.max_attachment_bytes == 0 {
            return Err(invalid("stage.max_attachment_bytes", "must be greater than 0"));
        }
        if self.stage.max_file_bytes == 0 {
            return Err(invalid("stage.max_file_bytes", "must be greater than 0"));
        }
        if self.aws.multipart_part_bytes < 5 * 1024 * 1024 {
            return Err(invalid(
                "aws.multipart_part_bytes",
                "must be at least 5 MiB (S3's minimum part size)",
            ));
        }
        for (name, dataset) in &self.datasets {
            if let Err(err) = DatasetName::parse(name) {
                return Err(invalid(&format!("datasets.{name}"), &err.to_string()));
            }
            if dataset.key_columns.iter().any(|c| c.trim().is_empty()) {
                return Err(invalid(
                    &format!("datasets.{name}.key_columns"),
                    "must not contain empty names",
                ));
            }
            if let Some(label) = &dataset.encoding
                && encoding_rs::Encoding::for_label(label.as_bytes()).is_none()
            {
                return Err(invalid(
                    &format!("datasets.{name}.encoding"),
                    &format!("names an unknown encoding {label:?}"),
                ));
            }
        }
        Ok(())
    }

    /// A stage's own section (`[gmail]`, `[pii]`, ...), defaults when absent.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        section_of(&self.raw, &self.origin, name)
    }

    /// The settings of `dataset`, defaults when it is not configured.
    pub fn dataset(&self, dataset: &str) -> DatasetSettings {
        self.datasets.get(dataset).cloned().unwrap_or_default()
    }

    /// The embedded backends' SQLite file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("sluice.db")
    }
}

fn section_of<T: DeserializeOwned + Default>(raw: &toml::Table, origin: &str, name: &str) -> Result<T, ConfigError> {
    match raw.get(name) {
        None => Ok(T::default()),
        Some(value) => value
            .clone()
            .try_into()
            .map_err(|err: toml::de::Error| ConfigError::Section {
                origin: origin.to_string(),
                section: name.to_string(),
                message: err.message().to_string(),
            }),
    }
}

fn typed_value<T: DeserializeOwned>(raw: &toml::Table, origin: &str, key: &str) -> Result<Option<T>, ConfigError> {
    raw.get(key)
        .map(|value| {
            value
                .clone()
                .try_into()
                .map_err(|err: toml::de::Error| ConfigError::Invalid {
                    origin: origin.to_string(),
                    field: key.to_string(),
                    message: err.message().to_string(),
                })
        })
        .transpose()
}

/// The setting a `SLUICE_*` variable sets, as its path (`SLUICE_AWS__BUCKET` is `["aws",
/// "bucket"]`); `None` for other variables and for `SLUICE_CONFIG`, which carries a whole document.
pub fn setting_of_variable(name: &str) -> Option<Vec<String>> {
    if name == "SLUICE_CONFIG" {
        return None;
    }
    let path = name.strip_prefix(ENV_PREFIX)?;
    Some(path.split("__").map(str::to_ascii_lowercase).collect())
}

fn overlay_env(raw: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let Some(path) = setting_of_variable(name) else {
        return Ok(());
    };
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            var: name.to_string(),
            message: "has an empty path segment (use one `__` between levels)".into(),
        });
    }
    let Some((leaf, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut table = raw;
    for (depth, segment) in parents.iter().enumerate() {
        let entry = table
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(inner) => inner,
            _ => {
                return Err(ConfigError::Env {
                    var: name.to_string(),
                    message: format!("{} is not a table in the config", path[..=depth].join(".")),
                });
            }
        };
    }
    table.insert(leaf.clone(), env_value(value));
    Ok(())
}

/// `42` -> integer, `true` -> bool, `["a"]` -> array; anything else stays a string.
fn env_value(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn file_and_environment_give_the_same_struct() {
        let file = Config::from_toml(
            r#"
            backend = "aws"
            [aws]
            bucket = "b"
            endpoint_url = "http://127.0.0.1:5000"
            [ingest]
            on_bad_rows = "quarantine"
            concurrency = 2
            [datasets.orders]
            key_columns = ["order_id"]
            "#,
            "test.toml",
            Path::new("/srv"),
        )
        .unwrap();
        let from_env = Config::from_toml_with_env(
            "",
            "env",
            Path::new("/srv"),
            env(&[
                ("SLUICE_BACKEND", "aws"),
                ("SLUICE_AWS__BUCKET", "b"),
                ("SLUICE_AWS__ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("SLUICE_INGEST__ON_BAD_ROWS", "quarantine"),
                ("SLUICE_INGEST__CONCURRENCY", "2"),
                ("SLUICE_DATASETS__ORDERS__KEY_COLUMNS", r#"["order_id"]"#),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        for config in [&file, &from_env] {
            assert_eq!(config.backend, BackendKind::Aws);
            assert_eq!(config.aws.bucket.as_deref(), Some("b"));
            assert_eq!(config.ingest.on_bad_rows, BadRowPolicy::Quarantine);
            assert_eq!(config.ingest.concurrency, 2);
            assert_eq!(config.dataset("orders").key_columns, vec!["order_id"]);
            assert_eq!(config.data_dir, Path::new("/srv/.sluice"));
        }
    }

    #[test]
    fn aws_backend_without_bucket_names_the_missing_field() {
        let err = Config::from_toml("backend = \"aws\"", "sluice.toml", Path::new(".")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("aws.bucket"), "{message}");
        assert!(message.contains("sluice.toml"), "{message}");
    }

    #[test]
    fn a_typo_in_a_section_is_an_error_naming_the_section_and_key() {
        let err = Config::from_toml("[ingest]\nconcurency = 3", "sluice.toml", Path::new(".")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("[ingest]") && message.contains("concurency"),
            "{message}"
        );
    }

    #[test]
    fn unknown_top_level_keys_and_sections_are_errors_naming_them() {
        for (doc, key) in [
            ("data_dri = \"x\"", "data_dri"),
            ("[ingst]\nconcurrency = 2", "ingst"),
            ("[dataset.orders]\nkey_columns = [\"id\"]", "dataset"),
        ] {
            let err = Config::from_toml(doc, "sluice.toml", Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains("sluice.toml"), "{doc:?} -> {err}");
        }
        // The environment may hold other SLUICE_* variables: they are not settings.
        let env = [("SLUICE_TEST_AWS_ENDPOINT".to_string(), "http://x".to_string())];
        assert!(Config::from_toml_with_env("", "env", Path::new("."), env).is_ok());
    }

    #[test]
    fn wrong_types_and_bad_values_are_rejected_with_the_field() {
        for (doc, field) in [
            ("[ingest]\nconcurrency = \"many\"", "ingest"),
            ("[ingest]\nconcurrency = 0", "ingest.concurrency"),
            ("[ingest]\non_bad_rows = \"ignore\"", "ingest"),
            ("backend = \"gcp\"", "backend"),
            ("[datasets.\"../x\"]\nkey_columns = [\"a\"]", "datasets.../x"),
            ("[datasets.d]\nencoding = \"klingon\"", "datasets.d.encoding"),
            ("[stage]\nmax_attachment_bytes = 0", "stage.max_attachment_bytes"),
        ] {
            let err = Config::from_toml(doc, "c.toml", Path::new(".")).unwrap_err();
            assert!(err.to_string().contains(field), "{doc:?} -> {err}");
        }
    }

    #[test]
    fn broken_toml_reports_the_origin_and_line() {
        let err = Config::from_toml("[ingest\nx = 1", "sluice.toml", Path::new(".")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("sluice.toml") && message.contains("line 1"),
            "{message}"
        );
    }

    #[test]
    fn env_path_into_a_scalar_is_an_error() {
        let err = Config::from_toml_with_env(
            "backend = \"local\"",
            "c",
            Path::new("."),
            env(&[("SLUICE_BACKEND__X", "1")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("SLUICE_BACKEND__X"), "{err}");
    }

    #[test]
    fn stage_sections_are_read_with_defaults() {
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(default)]
        struct GmailSettings {
            query: String,
        }
        let config = Config::from_toml("[gmail]\nquery = \"has:attachment\"", "c", Path::new(".")).unwrap();
        let gmail: GmailSettings = config.section("gmail").unwrap();
        assert_eq!(gmail.query, "has:attachment");
        let absent: GmailSettings = config.section("nothing").unwrap();
        assert_eq!(absent, GmailSettings::default());
    }
}
