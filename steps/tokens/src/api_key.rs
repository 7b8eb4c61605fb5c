//! Consumer API keys: `slk_` + 32 base62 characters (about 190 random bits) + a 6-character
//! checksum. The checksum lets a typo or a truncated paste be refused before any table look-up;
//! the key itself is only ever stored as its SHA-256.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every Sluice key starts with this, so secret scanners and humans recognise one.
pub const KEY_PREFIX: &str = "slk_";
const BODY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// The length of a well-formed key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A plain API key. It exists only between generation and delivery; its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> ApiKey {
        let body: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(BODY_LEN)
            .map(char::from)
            .collect();
        let checksum = checksum_of(&body);
        ApiKey(format!("{KEY_PREFIX}{body}{checksum}"))
    }

    /// The key as the consumer presents it: only for delivering it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of_text(&self.0)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Why a presented key was refused before any look-up. Never carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedApiKey {
    #[error("the API key does not start with {KEY_PREFIX}")]
    Prefix,
    #[error("the API key has the wrong length (expected {KEY_LEN} characters)")]
    Length,
    #[error("the API key holds characters outside A-Z, a-z, 0-9")]
    Characters,
    #[error("the API key's checksum does not match (a typo or a truncated key)")]
    Checksum,
}

/// Checks a presented key's shape and checksum, and hashes it for the look-up.
pub fn parse(presented: &str) -> Result<KeyHash, MalformedApiKey> {
    let rest = presented.strip_prefix(KEY_PREFIX).ok_or(MalformedApiKey::Prefix)?;
    if presented.len() != KEY_LEN {
        return Err(MalformedApiKey::Length);
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(MalformedApiKey::Characters);
    }
    let (body, checksum) = rest.split_at(BODY_LEN);
    if !bool::from(checksum_of(body).as_bytes().ct_eq(checksum.as_bytes())) {
        return Err(MalformedApiKey::Checksum);
    }
    Ok(KeyHash::of_text(presented))
}

/// The first 32 bits of SHA-256 over the body, as 6 base62 digits (62^6 > 2^32).
fn checksum_of(body: &str) -> String {
    let digest = Sha256::new().chain_update(KEY_PREFIX).chain_update(body).finalize();
    let mut value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// SHA-256 of a key: what the control table stores and is keyed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    fn of_text(key: &str) -> KeyHash {
        KeyHash(Sha256::digest(key.as_bytes()).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<KeyHash> {
        let bytes = hex::decode(text).ok()?;
        <[u8; 32]>::try_from(bytes).ok().map(KeyHash)
    }

    /// A short, public handle for logs and state output (a hash prefix reveals nothing usable).
    pub fn key_id(&self) -> String {
        format!("k_{}", &self.to_hex()[..12])
    }

    /// Compares in constant time, so timing does not reveal how much of a hash matched.
    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_to_what_they_claim() {
        let key = ApiKey::generate();
        assert_eq!(key.expose().len(), KEY_LEN);
        assert!(key.expose().starts_with(KEY_PREFIX));
        assert_eq!(parse(key.expose()), Ok(key.hash()));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(ApiKey::generate(), ApiKey::generate());
    }

    #[test]
    fn a_single_character_typo_fails_the_checksum() {
        let key = ApiKey::generate();
        let mut typo = key.expose().as_bytes().to_vec();
        let at = KEY_PREFIX.len() + 5;
        typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            parse(std::str::from_utf8(&typo).unwrap()),
            Err(MalformedApiKey::Checksum)
        );
    }

    #[test]
    fn malformed_keys_name_what_is_wrong() {
        let key = ApiKey::generate();
        assert_eq!(parse("abc"), Err(MalformedApiKey::Prefix));
        assert_eq!(parse(&key.expose()[..KEY_LEN - 1]), Err(MalformedApiKey::Length));
        let with_symbol = format!("{}!{}", &key.expose()[..10], &key.expose()[11..]);
        assert_eq!(parse(&with_symbol), Err(MalformedApiKey::Characters));
        assert_eq!(parse(""), Err(MalformedApiKey::Prefix));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(&key.expose()[4..]));
    }
}
