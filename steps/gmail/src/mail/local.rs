//! The local mail source: a directory of `.eml` files parsed with `mail-parser`, so Sluice runs
//! without Google. A message's id is derived from its bytes, so a file copied twice into the
//! directory is one message, as a re-delivered Gmail message with the same id would be.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::{
    AttachmentDescriptor, MailMessage, MailPart, MailSource, Mailbox, MessagePage, PartBody, count_drive_links,
};
use crate::error::GmailError;

/// Files larger than this are not mail Sluice handles (Gmail's own limit is 25 MB of
/// attachments, about 35 MB encoded).
const MAX_EML_BYTES: u64 = 64 * 1024 * 1024;

pub struct LocalMailSource {
    dir: PathBuf,
}

impl LocalMailSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalMailSource { dir: dir.into() }
    }
}

#[async_trait]
impl MailSource for LocalMailSource {
    /// Reads the directory once: the mailbox is a snapshot of it.
    async fn open(&self, _account: &str) -> Result<Arc<dyn Mailbox>, GmailError> {
        let dir = self.dir.clone();
        let mailbox = tokio::task::spawn_blocking(move || LocalMailbox::scan(&dir))
            .await
            .map_err(|err| GmailError::MailDir {
                path: self.dir.display().to_string(),
                source: std::io::Error::other(err.to_string()),
            })??;
        Ok(Arc::new(mailbox))
    }
}

/// A snapshot of a `.eml` directory: message id to file, in file-name order.
pub struct LocalMailbox {
    ids: Vec<String>,
    files: BTreeMap<String, PathBuf>,
}

impl LocalMailbox {
    fn scan(dir: &Path) -> Result<LocalMailbox, GmailError> {
        let dir_error = |source| GmailError::MailDir {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(dir_error)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("eml")) && path.is_file())
            .collect();
        paths.sort();
        let mut ids = Vec::new();
        let mut files = BTreeMap::new();
        for path in paths {
            // Hashed as a stream: a message over the size cap still gets its id, so it can be
            // recorded as skipped instead of failing every run.
            let id = message_id_of_file(&path)?;
            if files.insert(id.clone(), path).is_none() {
                ids.push(id);
            }
        }
        Ok(LocalMailbox { ids, files })
    }
}

fn read_eml(path: &Path) -> Result<Vec<u8>, GmailError> {
    let io_error = |source| GmailError::MailDir {
        path: path.display().to_string(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io_error)?.len();
    if size > MAX_EML_BYTES {
        return Err(io_error(std::io::Error::other(format!(
            "{size} bytes is more than the {MAX_EML_BYTES} bytes a message may have"
        ))));
    }
    std::fs::read(path).map_err(io_error)
}

/// A local message's id: `local-` and 16 bytes of the SHA-256 of the file, in hex (read in
/// chunks, whatever its size).
fn message_id_of_file(path: &Path) -> Result<String, GmailError> {
    let io_error = |source| GmailError::MailDir {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_error)?;
    Ok(format!("local-{}", hex::encode(&hasher.finalize()[..16])))
}

#[async_trait]
impl Mailbox for LocalMailbox {
    /// The local source has no search: `query` is ignored. The page token is an offset.
    async fn list(&self, _query: &str, page_token: Option<&str>, page_size: u32) -> Result<MessagePage, GmailError> {
        let start = match page_token {
            None => 0,
            Some(token) => token
                .parse::<usize>()
                .map_err(|_| GmailError::input("page_token", "is not a local page token"))?,
        };
        let end = start.saturating_add(page_size as usize).min(self.ids.len());
        let ids = self.ids.get(start..end).unwrap_or_default().to_vec();
        let next_page_token = (end < self.ids.len()).then(|| end.to_string());
        Ok(MessagePage { ids, next_page_token })
    }

    async fn message(&self, id: &str) -> Result<Option<MailMessage>, GmailError> {
        let Some(path) = self.files.get(id).cloned() else {
            return Ok(None);
        };
        let display = path.display().to_string();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&path)
                .map_err(|source| GmailError::MailDir {
                    path: path.display().to_string(),
                    source,
                })?
                .len();
            if size > MAX_EML_BYTES {
                return Ok(Some(MailMessage {
                    id: id.clone(),
                    attachments: Vec::new(),
                    drive_links: 0,
                    skipped: vec![super::SkippedPart {
                        part_id: "*".into(),
                        reason: format!(
                            "the message is {size} bytes, over the {MAX_EML_BYTES} bytes a message may have"
                        ),
                        quarantine: false,
                    }],
                }));
            }
            let bytes = read_eml(&path)?;
            parse_message(&id, &bytes)
                .map(Some)
                .ok_or_else(|| GmailError::GmailResponse {
                    operation: "local message read",
                    reason: format!("{} is not a MIME message", path.display()),
                })
        })
        .await
        .map_err(|err| GmailError::MailDir {
            path: display,
            source: std::io::Error::other(err.to_string()),
        })?
    }

    async fn content(&self, part: &MailPart) -> Result<Bytes, GmailError> {
        match &part.body {
            PartBody::Loaded(bytes) => Ok(bytes.clone()),
            PartBody::Remote { .. } => Err(GmailError::GmailResponse {
                operation: "local attachment read",
                reason: "a local part has no remote body".into(),
            }),
        }
    }

    fn quota_units(&self) -> u64 {
        0
    }
}

/// The attachments of a raw RFC 5322 message, numbered as Gmail numbers parts.
pub fn parse_message(id: &str, raw: &[u8]) -> Option<MailMessage> {
    let message = MessageParser::default().parse(raw)?;
    if message.parts.is_empty() {
        return None;
    }
    let mut walk = Walk {
        id,
        message: &message,
        attachments: Vec::new(),
        drive_links: 0,
        skipped: Vec::new(),
    };
    walk.part(0, String::new(), 0);
    Some(MailMessage {
        id: id.to_string(),
        attachments: walk.attachments,
        drive_links: walk.drive_links,
        skipped: walk.skipped,
    })
}

/// Nesting deeper than this is not a real message; stop rather than recurse forever.
const MAX_DEPTH: usize = 32;

struct Walk<'m, 'x> {
    id: &'m str,
    message: &'m Message<'x>,
    attachments: Vec<MailPart>,
    drive_links: usize,
    skipped: Vec<super::SkippedPart>,
}

impl Walk<'_, '_> {
    fn part(&mut self, index: u32, part_id: String, depth: usize) {
        let Some(part) = self.message.part(index) else {
            return;
        };
        if let PartType::Multipart(children) = &part.body {
            if depth >= MAX_DEPTH {
                self.skipped.push(super::SkippedPart {
                    part_id: if part_id.is_empty() { "*".into() } else { part_id },
                    reason: format!("the part is nested deeper than {MAX_DEPTH} levels of multipart"),
                    quarantine: false,
                });
                return;
            }
            for (position, child) in children.iter().enumerate() {
                let child_id = if part_id.is_empty() {
                    position.to_string()
                } else {
                    format!("{part_id}.{position}")
                };
                self.part(*child, child_id, depth + 1);
            }
            return;
        }
        let file_name = part.attachment_name().map(str::trim).unwrap_or("");
        if let PartType::Text(text) | PartType::Html(text) = &part.body
            && file_name.is_empty()
        {
            self.drive_links += count_drive_links(text);
        }
        if file_name.is_empty() {
            return;
        }
        // The header, not the parser's `encoding`: the parser falls back to the raw text when
        // base64 does not decode.
        let base64 = part
            .content_transfer_encoding()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
        if base64 {
            let encoded = self
                .message
                .raw_message()
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default();
            if let Some(problem) = malformed_base64(encoded) {
                // Decoded leniently, this would be stored and ingested as garbage.
                self.skipped.push(super::SkippedPart {
                    part_id,
                    reason: format!("its base64 transfer encoding is malformed ({problem})"),
                    quarantine: true,
                });
                return;
            }
        }
        let content = match &part.body {
            // Text parts come back converted to UTF-8: take the sender's bytes instead, as
            // Gmail's attachments.get does.
            PartType::Text(_) | PartType::Html(_) => original_bytes(self.message, part),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.to_vec(),
            PartType::Message(nested) => nested.raw_message().to_vec(),
            PartType::Multipart(_) => return,
        };
        let mime_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_ascii_lowercase();
        self.attachments.push(MailPart {
            descriptor: AttachmentDescriptor {
                message_id: self.id.to_string(),
                part_id,
                file_name: file_name.to_string(),
                mime_type,
                size: content.len() as u64,
                charset: part
                    .content_type()
                    .and_then(|ct| ct.attribute("charset"))
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty() && c.len() <= 40),
            },
            body: PartBody::Loaded(Bytes::from(content)),
        });
    }
}

/// What is wrong with a base64 body, if anything: a byte outside the alphabet, padding in the
/// middle, or a length that is not a whole number of quads (whitespace and line breaks aside).
fn malformed_base64(encoded: &[u8]) -> Option<String> {
    let mut symbols = 0usize;
    let mut padding = 0usize;
    for &byte in encoded {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'=' => padding += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding == 0 => symbols += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => {
                return Some("padding in the middle of the data".into());
            }
            other => return Some(format!("byte 0x{other:02x} is not base64")),
        }
    }
    if padding > 2 || !(symbols + padding).is_multiple_of(4) {
        return Some(format!("{} symbols are not whole groups of four", symbols + padding));
    }
    None
}

/// The transfer-decoded bytes of a part, without charset conversion.
fn original_bytes(message: &Message<'_>, part: &mail_parser::MessagePart<'_>) -> Vec<u8> {
    let raw = message
        .raw_message()
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    let decoded = match part.encoding {
        mail_parser::Encoding::Base64 => mail_parser::decoders::base64::base64_decode(raw),
        mail_parser::Encoding::QuotedPrintable => mail_parser::decoders::quoted_printable::quoted_printable_decode(raw),
        mail_parser::Encoding::None => Some(raw.to_vec()),
    };
    decoded.unwrap_or_else(|| part.contents().to_vec())
}

#[cfg(test)]
mod base64_tests {
    #[test]
    fn malformed_base64_is_told_apart_from_folded_base64() {
        assert_eq!(super::malformed_base64(b"aWQs\r\nYW1v\r\ndW50\r\n"), None);
        assert_eq!(super::malformed_base64(b"aWQ=\r\n"), None);
        assert!(super::malformed_base64(b"aWQsYW1v!!").is_some());
        assert!(super::malformed_base64(b"aW=Qs").is_some());
        assert!(super::malformed_base64(b"aWQsY").is_some(), "not whole quads");
    }
}
