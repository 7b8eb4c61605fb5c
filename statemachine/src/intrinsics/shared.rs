//! The rules the intrinsic functions share with their JSONata counterparts (`$partition`,
//! `$range`, `$hash`, `$uuid`), stated once; each caller words its own errors around them.

use serde_json::Value;

use crate::env::RandomSource;

/// The most items `States.ArrayRange` and `$range` give.
pub const ARRAY_RANGE_LIMIT: usize = 1000;

/// `items` in chunks of `size` (the last one shorter); `size` is at least 1.
pub fn partition(items: &[Value], size: usize) -> Vec<Value> {
    items
        .chunks(size.max(1))
        .map(|chunk| Value::Array(chunk.to_vec()))
        .collect()
}

/// `start`, `start + step`, ... up to `end` inclusive (down to it for a negative step).
pub fn range(start: i64, end: i64, step: i64) -> Result<Vec<Value>, &'static str> {
    if step == 0 {
        return Err("the step must not be 0");
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i <= end) || (step < 0 && i >= end) {
        if out.len() == ARRAY_RANGE_LIMIT {
            return Err("the result would exceed 1000 items");
        }
        out.push(Value::from(i));
        i = match i.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lowercase hex digest of `data` under `algorithm` (MD5, SHA-1, SHA-256, SHA-384, SHA-512).
pub fn hash(data: &[u8], algorithm: &str) -> Result<String, String> {
    use sha2::Digest as _;
    Ok(match algorithm {
        "MD5" => hex(&<md5::Md5 as md5::Digest>::digest(data)),
        "SHA-1" => hex(&<sha1::Sha1 as sha1::Digest>::digest(data)),
        "SHA-256" => hex(&sha2::Sha256::digest(data)),
        "SHA-384" => hex(&sha2::Sha384::digest(data)),
        "SHA-512" => hex(&sha2::Sha512::digest(data)),
        other => {
            return Err(format!(
                "unsupported algorithm '{other}' (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"
            ));
        }
    })
}

/// A version 4 UUID drawn from `random`.
pub fn uuid_v4(random: &RandomSource) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random.next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random.next_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}
