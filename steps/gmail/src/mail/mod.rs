//! Mail sources behind one port: the Gmail API ([`gmail::GmailSource`]) or a directory of
//! `.eml` files ([`local::LocalMailSource`]). Both describe attachments the same way: the part
//! id follows Gmail's numbering (`""` for a single-part message, `"1"`, `"1.0"`, ... for the
//! parts of multiparts), so a message gives the same descriptors whichever source read it.

pub mod gmail;
pub mod local;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use serde::Serialize;

use crate::error::GmailError;

/// One attachment of one message, as the source describes it before downloading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentDescriptor {
    pub message_id: String,
    /// Gmail's part id: the path of child indexes through nested multiparts.
    pub part_id: String,
    /// The file name as the sender wrote it (untrusted).
    pub file_name: String,
    /// Lowercase MIME type.
    pub mime_type: String,
    /// Decoded size in bytes, as the source reports it before download.
    pub size: u64,
    /// The `charset=` its Content-Type declares (untrusted: the stage checks it), if any.
    pub charset: Option<String>,
}

/// The `charset` parameter of a Content-Type header value (`text/csv; charset="windows-1252"`).
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let value = value.trim().trim_matches('"').trim();
        (!value.is_empty() && value.len() <= 40).then(|| value.to_ascii_lowercase())
    })
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone)]
pub enum PartBody {
    /// Already in hand (small Gmail parts, every local part).
    Loaded(Bytes),
    /// Fetched with `messages.attachments.get`; the id is only valid for a while.
    Remote { attachment_id: String },
}

#[derive(Debug, Clone)]
pub struct MailPart {
    pub descriptor: AttachmentDescriptor,
    pub body: PartBody,
}

/// A message reduced to what the fetch step needs.
#[derive(Debug, Clone)]
pub struct MailMessage {
    pub id: String,
    /// Every leaf part with a file name, wanted or not.
    pub attachments: Vec<MailPart>,
    /// Links to Google Drive files in the text parts: attachments Gmail did not attach.
    pub drive_links: usize,
    /// Parts (or the whole message) left out by a limit of the source, each recorded in the
    /// ledger as `skipped` with its reason, so the rest of the mailbox goes on.
    pub skipped: Vec<SkippedPart>,
}

/// A part the source could not hand over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPart {
    /// The part's id, or `*` for the whole message.
    pub part_id: String,
    /// Why, with the limit, in a sentence (no contents, no addresses).
    pub reason: String,
    /// A verdict on the part itself (it is broken): the ledger says `quarantined`, not
    /// `skipped` (left out by a limit).
    pub quarantine: bool,
}

/// One page of message ids.
#[derive(Debug, Clone, Default)]
pub struct MessagePage {
    pub ids: Vec<String>,
    pub next_page_token: Option<String>,
}

/// One page of a mailbox's history since a history id (`users.history.list`).
#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    /// Messages added since, outside spam and trash, in history order.
    pub added: Vec<String>,
    pub next_page_token: Option<String>,
    /// The mailbox's current history id, as of this page.
    pub history_id: u64,
}

/// What a source knows of history-based sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySupport {
    /// `users.history.list` and `users.getProfile`: later runs read only what changed.
    Available,
    /// A directory of files: listing it costs nothing, every run lists it all.
    None,
}

/// What adding a label to a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labeled {
    Done,
    /// The token was granted without `gmail.modify`: nothing changed.
    NotGranted,
    /// The source has no labels (a directory of files).
    Unsupported,
}

/// An opened mailbox, for one fetch run.
#[async_trait]
pub trait Mailbox: Send + Sync {
    /// One page of the ids of messages matching `query`.
    async fn list(&self, query: &str, page_token: Option<&str>, page_size: u32) -> Result<MessagePage, GmailError>;

    /// Whether [`Mailbox::history`] and [`Mailbox::history_id`] work.
    fn history_support(&self) -> HistorySupport {
        HistorySupport::None
    }

    /// The mailbox's current history id (`users.getProfile`).
    async fn history_id(&self) -> Result<u64, GmailError> {
        Err(GmailError::HistoryUnavailable)
    }

    /// One page of the messages added since `start` (`users.history.list`, messageAdded);
    /// `GmailError::HistoryExpired` when Google no longer has history that old (its 404).
    async fn history(&self, start: u64, page_token: Option<&str>) -> Result<HistoryPage, GmailError> {
        let _ = (start, page_token);
        Err(GmailError::HistoryUnavailable)
    }

    /// When Gmail received the message (`internalDate`, epoch seconds), or `None` when it is
    /// gone.
    async fn received_at(&self, id: &str) -> Result<Option<i64>, GmailError> {
        let _ = id;
        Err(GmailError::HistoryUnavailable)
    }

    /// The message, or `None` when it vanished since it was listed.
    async fn message(&self, id: &str) -> Result<Option<MailMessage>, GmailError>;

    /// Adds the label named `label` (created when missing) to message `id`.
    async fn add_label(&self, id: &str, label: &str) -> Result<Labeled, GmailError> {
        let _ = (id, label);
        Ok(Labeled::Unsupported)
    }

    /// The bytes of `part`, downloaded now (Gmail's attachment ids go stale).
    async fn content(&self, part: &MailPart) -> Result<Bytes, GmailError>;

    /// Gmail quota units this mailbox has spent (0 for local sources).
    fn quota_units(&self) -> u64;
}

/// A source of mailboxes, chosen from `[gmail] source`.
#[async_trait]
pub trait MailSource: Send + Sync {
    async fn open(&self, account: &str) -> Result<Arc<dyn Mailbox>, GmailError>;
}

/// The configured attachment types: MIME types (`text/csv`, `text/*`) and extensions (`.csv`).
#[derive(Debug, Clone)]
pub struct WantedTypes {
    mime_types: Vec<String>,
    extensions: Vec<String>,
}

impl WantedTypes {
    pub fn new(entries: &[String]) -> Self {
        let (extensions, mime_types): (Vec<String>, Vec<String>) = entries
            .iter()
            .map(|entry| entry.trim().to_ascii_lowercase())
            .partition(|entry| entry.starts_with('.'));
        WantedTypes { mime_types, extensions }
    }

    /// Whether an attachment of this type or with this file name is wanted.
    pub fn wants(&self, mime_type: &str, file_name: &str) -> bool {
        let mime_type = mime_type.to_ascii_lowercase();
        let by_type = self.mime_types.iter().any(|wanted| match wanted.strip_suffix("/*") {
            Some(family) => mime_type.split('/').next() == Some(family),
            None => *wanted == mime_type,
        });
        let name = file_name.to_ascii_lowercase();
        by_type || self.extensions.iter().any(|ext| name.ends_with(ext.as_str()))
    }
}

/// Decodes base64url as Gmail sends it: with or without `=` padding (and tolerating the
/// standard alphabet and line breaks, which some proxies produce).
pub fn decode_base64url(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    if text.bytes().any(|b| matches!(b, b'+' | b'/' | b'\r' | b'\n' | b' ')) {
        let normalized: String = text
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                other => other,
            })
            .collect();
        LENIENT.decode(normalized)
    } else {
        LENIENT.decode(text)
    }
}

/// Counts links to Drive or Docs files in a text part.
pub fn count_drive_links(text: &str) -> usize {
    ["://drive.google.com/", "://docs.google.com/"]
        .iter()
        .map(|needle| text.matches(needle).count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decodes_with_and_without_padding() {
        // "id,name\n1,a?" has bytes that encode to '-' and '_' territory and needs padding.
        let data = b"id,name\n1,\xfb\xff?";
        let padded = base64::engine::general_purpose::URL_SAFE.encode(data);
        let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
        assert!(padded.ends_with('='), "{padded}");
        assert!(!unpadded.ends_with('='));
        assert!(unpadded.contains('-') || unpadded.contains('_'), "{unpadded}");
        assert_eq!(decode_base64url(&padded).unwrap(), data);
        assert_eq!(decode_base64url(&unpadded).unwrap(), data);
        let standard = base64::engine::general_purpose::STANDARD.encode(data);
        assert_eq!(decode_base64url(&standard).unwrap(), data);
    }

    #[test]
    fn base64url_rejects_garbage() {
        assert!(decode_base64url("not*base64").is_err());
        assert!(decode_base64url("a").is_err());
    }

    #[test]
    fn wanted_types_match_by_mime_type_family_or_extension() {
        let wanted = WantedTypes::new(&["text/csv".into(), ".CSV".into(), "application/vnd.ms-excel".into()]);
        assert!(wanted.wants("text/csv", "x.bin"));
        assert!(wanted.wants("application/octet-stream", "Report.Csv"));
        assert!(wanted.wants("Application/Vnd.MS-Excel", "r.xls"));
        assert!(!wanted.wants("image/png", "logo.png"));
        assert!(!wanted.wants("application/pdf", "csv.pdf"));
        let family = WantedTypes::new(&["text/*".into()]);
        assert!(family.wants("text/plain", "notes.txt"));
        assert!(!family.wants("textual/x", "a"));
    }

    #[test]
    fn drive_links_are_counted() {
        let html =
            r#"<a href="https://drive.google.com/file/d/abc/view">x</a> and https://docs.google.com/spreadsheets/d/1"#;
        assert_eq!(count_drive_links(html), 2);
        assert_eq!(count_drive_links("no links"), 0);
    }
}

#[cfg(test)]
mod charset_tests {
    #[test]
    fn the_charset_parameter_is_read_from_a_content_type() {
        assert_eq!(
            super::charset_of("text/csv; charset=\"Windows-1252\"; name=\"p.csv\"").as_deref(),
            Some("windows-1252")
        );
        assert_eq!(super::charset_of("text/csv;CHARSET=utf-8").as_deref(), Some("utf-8"));
        assert_eq!(super::charset_of("text/csv; name=\"charset=x.csv\""), None);
        assert_eq!(super::charset_of("text/csv"), None);
        assert_eq!(super::charset_of("text/csv; charset=\"\""), None);
    }
}
