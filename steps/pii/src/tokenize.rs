//! De-identification tokens: HMAC-SHA-256 of the value under a per-dataset key, so one value
//! gives one token within a dataset (joins still work) and tokens of different datasets do not
//! link. The token carries the entity type for readers: `EMAIL_3f1c...` (128 bits, hex).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::entity::EntityType;

type HmacSha256 = Hmac<Sha256>;

/// The secrets-backend name of a dataset's tokenization key.
pub fn tokenization_key_name(dataset: &str) -> String {
    format!("pii/tokenize/{dataset}")
}

/// Makes tokens under one dataset's key.
#[derive(Clone)]
pub struct Tokenizer {
    keyed: HmacSha256,
}

impl Tokenizer {
    pub fn new(key: &[u8; 32]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        let keyed = match HmacSha256::new_from_slice(key) {
            Ok(keyed) => keyed,
            Err(_) => unreachable!("HMAC-SHA-256 takes keys of any length"),
        };
        Tokenizer { keyed }
    }

    /// The token of `value`: `<TYPE>_<first 16 bytes of the HMAC, hex>`.
    pub fn token(&self, kind: &EntityType, value: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let name = kind.as_str();
        let mut token = String::with_capacity(name.len() + 1 + 32);
        token.push_str(name);
        token.push('_');
        for byte in &digest[..16] {
            token.push(char::from(HEX[usize::from(byte >> 4)]));
            token.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        token
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokenizer(<key redacted>)")
    }
}

/// Whether `text` is a token this module makes: the vault's token shape
/// ([`sluice_core::vault::is_token`]) with a known entity type.
pub fn is_token(text: &str) -> bool {
    sluice_core::vault::is_token(text)
        && text
            .rsplit_once('_')
            .is_some_and(|(kind, _)| EntityType::from_name(kind).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_key_gives_the_same_token_and_other_keys_do_not_link() {
        let orders = Tokenizer::new(&[1; 32]);
        let patients = Tokenizer::new(&[2; 32]);
        let a = orders.token(&EntityType::Email, "ana@example.com");
        assert_eq!(a, orders.token(&EntityType::Email, "ana@example.com"));
        assert_ne!(a, orders.token(&EntityType::Email, "ana@example.org"));
        assert_ne!(a, patients.token(&EntityType::Email, "ana@example.com"));
        assert!(a.starts_with("EMAIL_") && is_token(&a), "{a}");
        assert!(!a.contains("ana"));
        assert!(is_token(
            &orders.token(&EntityType::CreditDebitNumber, "4111111111111111")
        ));
        assert!(!is_token("EMAIL_xyz"));
    }

    #[test]
    fn a_token_is_the_type_and_the_first_half_of_the_hmac_in_hex() {
        let key = [5u8; 32];
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update("+44 20 7946 0958".as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            Tokenizer::new(&key).token(&EntityType::Phone, "+44 20 7946 0958"),
            format!("PHONE_{hex}")
        );
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(format!("{:?}", Tokenizer::new(&[7; 32])), "Tokenizer(<key redacted>)");
    }
}
