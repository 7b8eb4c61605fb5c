//! The `[gmail]` section of the configuration: where mail comes from and how OAuth is set up.
//! Secrets never live here: `client_secret_name` names a secret in the secrets backend.

use serde::Deserialize;
use sluice_core::Config;
use url::Url;

use crate::error::GmailError;

/// Google's endpoints, the defaults for `auth_uri`, `token_uri` and `api_base_url`.
pub const GOOGLE_AUTH_URI: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const GMAIL_API_BASE_URL: &str = "https://gmail.googleapis.com/";
/// The scope Sluice always asks for: it reads mail.
pub const GMAIL_READONLY_SCOPE: &str = "https://www.googleapis.com/auth/gmail.readonly";
/// Asked for too only when `label_processed` is set: adding a label changes the mailbox.
pub const GMAIL_MODIFY_SCOPE: &str = "https://www.googleapis.com/auth/gmail.modify";

/// Where messages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A directory of `.eml` files (`mail_dir`): runs without Google.
    #[default]
    Local,
    /// The Gmail API at `api_base_url`.
    Gmail,
}

/// How a run finds the messages to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// After a complete listing, later runs read only the mailbox's history since it
    /// (`users.history.list`, 2 quota units a page) and match what was added against the query;
    /// a full listing again when Google no longer has history that old.
    #[default]
    Incremental,
    /// Every run lists the whole query (5 units a page).
    Full,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GmailSettings {
    pub source: SourceKind,
    /// `incremental` (default) or `full`: see [`SyncMode`].
    pub sync: SyncMode,
    /// A label (e.g. `sluice/processed`) added to every message once all its attachments are
    /// handled; empty: mail is never changed. Needs the `gmail.modify` scope, which consent then
    /// asks for; a token granted without it reads on and labels nothing (the output says so).
    pub label_processed: String,
    /// The `.eml` directory of the local source (relative paths: against the working directory).
    pub mail_dir: String,
    /// The Gmail search query, e.g. `has:attachment filename:csv newer_than:7d`.
    pub query: String,
    /// Which mailbox: the label of the cached token; Gmail calls always use `me`.
    pub account: String,
    pub client_id: String,
    /// The name of the secret (in the secrets backend) holding the OAuth client secret, either
    /// bare or as the JSON file Google's console downloads.
    pub client_secret_name: String,
    /// The name of the secret holding the token cache's AES-256 keys.
    pub token_key_secret_name: String,
    pub redirect_uri: String,
    pub auth_uri: String,
    pub token_uri: String,
    pub api_base_url: String,
    /// Attachment types to fetch: MIME types (`text/csv`, `text/*`) or extensions (`.csv`).
    pub wanted_types: Vec<String>,
    pub max_attachment_bytes: u64,
    /// Messages examined per fetch run; the output says when more remain.
    pub max_messages_per_run: u32,
    /// `messages.list` page size (Gmail allows up to 500).
    pub page_size: u32,
    /// Messages fetched at once.
    pub concurrency: usize,
    /// How long a run holds the mailbox without renewing it (each fetched batch renews it).
    /// Before that, only a holder known to be gone (its execution ended) loses it.
    pub run_lease_secs: i64,
    /// Processing attempts a failed attachment gets over later runs before it stays `failed`
    /// (`sluice run --retry-failed` takes it up again).
    pub max_file_attempts: u32,
    /// How long a pending consent request (and its task token) stays claimable.
    pub consent_ttl_secs: i64,
    /// An access token this close to expiry counts as expired (clock skew between hosts).
    pub clock_skew_secs: i64,
    /// Attempts at a Gmail or token-endpoint call that is throttled or failing (5xx, network).
    pub max_attempts: u32,
    /// The longest `Retry-After` honoured; longer waits fail the call so the state machine's
    /// own Retry can wait instead of a billed Lambda.
    pub max_retry_after_secs: u64,
}

impl Default for GmailSettings {
    fn default() -> Self {
        GmailSettings {
            source: SourceKind::Local,
            sync: SyncMode::Incremental,
            label_processed: String::new(),
            mail_dir: "mail".into(),
            query: "has:attachment".into(),
            account: "default".into(),
            client_id: String::new(),
            client_secret_name: "gmail/client-secret".into(),
            token_key_secret_name: "gmail/token-keys".into(),
            redirect_uri: String::new(),
            auth_uri: GOOGLE_AUTH_URI.into(),
            token_uri: GOOGLE_TOKEN_URI.into(),
            api_base_url: GMAIL_API_BASE_URL.into(),
            wanted_types: vec!["text/csv".into(), "application/csv".into(), ".csv".into()],
            max_attachment_bytes: 25 * 1024 * 1024,
            max_messages_per_run: 500,
            page_size: 100,
            concurrency: 4,
            run_lease_secs: 6 * 3600,
            max_file_attempts: 3,
            consent_ttl_secs: 24 * 3600,
            clock_skew_secs: 120,
            max_attempts: 5,
            max_retry_after_secs: 30,
        }
    }
}

impl GmailSettings {
    /// The scopes consent asks for.
    pub fn requested_scopes(&self) -> Vec<&'static str> {
        if self.label_processed.is_empty() {
            vec![GMAIL_READONLY_SCOPE]
        } else {
            vec![GMAIL_READONLY_SCOPE, GMAIL_MODIFY_SCOPE]
        }
    }

    /// Reads and checks the `[gmail]` section.
    pub fn from_config(config: &Config) -> Result<GmailSettings, GmailError> {
        let settings: GmailSettings = config.section("gmail").map_err(|err| GmailError::Settings {
            field: "gmail".into(),
            message: err.to_string(),
        })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), GmailError> {
        let invalid = |field: &str, message: &str| {
            Err(GmailError::Settings {
                field: format!("gmail.{field}"),
                message: message.into(),
            })
        };
        validate_account(&self.account)?;
        for (field, value) in [
            ("auth_uri", &self.auth_uri),
            ("token_uri", &self.token_uri),
            ("api_base_url", &self.api_base_url),
        ] {
            check_endpoint(field, value)?;
        }
        if !self.redirect_uri.is_empty() {
            check_endpoint("redirect_uri", &self.redirect_uri)?;
        }
        if self.wanted_types.is_empty() {
            return invalid("wanted_types", "must name at least one MIME type or extension");
        }
        let label = &self.label_processed;
        if label.len() > 225 || label.trim() != label.as_str() || label.chars().any(char::is_control) {
            return invalid(
                "label_processed",
                "must be a Gmail label name: at most 225 characters, no surrounding spaces or control characters",
            );
        }
        if let Some(bad) = self.wanted_types.iter().find(|t| !is_type_or_extension(t)) {
            return invalid(
                "wanted_types",
                &format!("entry {bad:?} is neither a MIME type (text/csv) nor an extension (.csv)"),
            );
        }
        if self.max_attachment_bytes == 0 {
            return invalid("max_attachment_bytes", "must be positive");
        }
        if !(1..=500).contains(&self.page_size) {
            return invalid("page_size", "must be between 1 and 500 (Gmail's limit)");
        }
        if self.max_messages_per_run == 0 {
            return invalid("max_messages_per_run", "must be positive");
        }
        if !(1..=64).contains(&self.concurrency) {
            return invalid("concurrency", "must be between 1 and 64");
        }
        if !(60..=7 * 24 * 3600).contains(&self.run_lease_secs) {
            return invalid("run_lease_secs", "must be between 60 and 604800 (a week)");
        }
        if !(1..=100).contains(&self.max_file_attempts) {
            return invalid("max_file_attempts", "must be between 1 and 100");
        }
        if self.consent_ttl_secs < 60 {
            return invalid("consent_ttl_secs", "must be at least 60");
        }
        if !(0..=3600).contains(&self.clock_skew_secs) {
            return invalid("clock_skew_secs", "must be between 0 and 3600");
        }
        if !(1..=20).contains(&self.max_attempts) {
            return invalid("max_attempts", "must be between 1 and 20");
        }
        if self.client_secret_name.trim().is_empty() {
            return invalid("client_secret_name", "must name a secret");
        }
        if self.token_key_secret_name.trim().is_empty() {
            return invalid("token_key_secret_name", "must name a secret");
        }
        Ok(())
    }

    /// `account`, or the configured one when absent.
    pub fn account_or_default(&self, account: Option<&str>) -> Result<String, GmailError> {
        let account = account.unwrap_or(&self.account).to_string();
        validate_account(&account)?;
        Ok(account)
    }

    /// The redirect URI, which consent needs.
    pub fn require_redirect_uri(&self) -> Result<&str, GmailError> {
        if self.redirect_uri.is_empty() {
            return Err(GmailError::Settings {
                field: "gmail.redirect_uri".into(),
                message: "is required to ask for consent (the callback URL, or a loopback URL for the manual path)"
                    .into(),
            });
        }
        Ok(&self.redirect_uri)
    }
}

/// `text/csv` or `.csv`.
fn is_type_or_extension(entry: &str) -> bool {
    entry.contains('/') || (entry.starts_with('.') && entry.len() > 1)
}

/// Account labels become parts of table keys: printable, no spaces or `#`, at most 254 bytes.
pub fn validate_account(account: &str) -> Result<(), GmailError> {
    let ok = !account.is_empty() && account.len() <= 254 && account.chars().all(|c| c.is_ascii_graphic() && c != '#');
    if ok {
        Ok(())
    } else {
        Err(GmailError::Settings {
            field: "gmail.account".into(),
            message: "must be 1-254 printable ASCII characters without spaces or '#'".into(),
        })
    }
}

/// Endpoints must be https, except on loopback (tests, the local fake, a local emulator).
fn check_endpoint(field: &str, value: &str) -> Result<(), GmailError> {
    let invalid = |message: String| GmailError::Settings {
        field: format!("gmail.{field}"),
        message,
    };
    let url = Url::parse(value).map_err(|err| invalid(format!("is not a URL: {err}")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        other => Err(invalid(format!(
            "must use https (plain {other} is only allowed on loopback)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn defaults_are_valid_and_point_at_google() {
        let settings = GmailSettings::default();
        settings.validate().unwrap();
        assert_eq!(settings.token_uri, GOOGLE_TOKEN_URI);
    }

    #[test]
    fn section_is_read_from_the_config() {
        let config = Config::from_toml(
            "[gmail]\nsource = \"gmail\"\nquery = \"label:reports\"\ntoken_uri = \"http://127.0.0.1:9/token\"",
            "t",
            Path::new("."),
        )
        .unwrap();
        let settings = GmailSettings::from_config(&config).unwrap();
        assert_eq!(settings.source, SourceKind::Gmail);
        assert_eq!(settings.query, "label:reports");
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (doc, field) in [
            ("[gmail]\ntoken_uri = \"http://evil.example/token\"", "gmail.token_uri"),
            ("[gmail]\napi_base_url = \"not a url\"", "gmail.api_base_url"),
            ("[gmail]\nwanted_types = [\"csv\"]", "gmail.wanted_types"),
            ("[gmail]\npage_size = 1000", "gmail.page_size"),
            ("[gmail]\naccount = \"a b\"", "gmail.account"),
            ("[gmail]\nclient_secret = \"oops\"", "gmail"),
        ] {
            let config = Config::from_toml(doc, "t", Path::new(".")).unwrap();
            let err = GmailSettings::from_config(&config).unwrap_err();
            assert!(err.to_string().contains(field), "{doc:?} -> {err}");
        }
    }
}
