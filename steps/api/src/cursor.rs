//! Opaque, tamper-proof paging cursors: the dataset and the last sort key read, signed with
//! HMAC-SHA256 under a random key from the secrets backend. A cursor only resumes the dataset
//! it was issued for; any edit makes it invalid.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The secret holding the cursor signing key (created at random on first use).
pub const CURSOR_KEY_SECRET: &str = "api-cursor-key";
const TAG_BYTES: usize = 16;
const MAX_CURSOR_CHARS: usize = 4096;

#[derive(Serialize, Deserialize)]
struct Position {
    d: String,
    k: String,
}

#[derive(Clone)]
pub struct CursorSigner {
    key: [u8; 32],
}

impl CursorSigner {
    pub fn new(key: [u8; 32]) -> CursorSigner {
        CursorSigner { key }
    }

    fn tag(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail for 32 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(payload);
        mac
    }

    /// A cursor resuming `dataset` after `last_key`.
    pub fn issue(&self, dataset: &str, last_key: &str) -> String {
        let payload = serde_json::to_vec(&Position {
            d: dataset.to_string(),
            k: last_key.to_string(),
        })
        .unwrap_or_default();
        let tag = self.tag(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// The sort key to resume after, if `cursor` is authentic and was issued for `dataset`.
    pub fn open(&self, dataset: &str, cursor: &str) -> Option<String> {
        if cursor.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let (payload, tag) = cursor.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG_BYTES {
            return None;
        }
        // Constant-time comparison of the truncated tag.
        self.tag(&payload).verify_truncated_left(&tag).ok()?;
        let position: Position = serde_json::from_slice(&payload).ok()?;
        (position.d == dataset).then_some(position.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_only_for_their_dataset_and_refuse_edits() {
        let signer = CursorSigner::new([7; 32]);
        let cursor = signer.issue("orders", "0042#a");
        assert_eq!(signer.open("orders", &cursor), Some("0042#a".into()));
        assert_eq!(signer.open("people", &cursor), None);

        let (payload, tag) = cursor.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"d":"orders","k":"9999"}"#);
        assert_eq!(signer.open("orders", &format!("{forged_payload}.{tag}")), None);
        assert_eq!(signer.open("orders", &format!("{payload}.AAAA")), None);
        assert_eq!(signer.open("orders", "garbage"), None);
        assert_eq!(CursorSigner::new([8; 32]).open("orders", &cursor), None);
    }
}
