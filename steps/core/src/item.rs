//! DynamoDB-shaped items. Both table backends store exactly these, so a test body can run
//! against SQLite and DynamoDB alike. The serde form is DynamoDB's JSON (`{"S": "x"}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The partition key attribute of every Sluice table.
pub const PARTITION_KEY: &str = "pk";
/// The sort key attribute of every Sluice table.
pub const SORT_KEY: &str = "sk";
/// The attribute of a record holding its columns (kept apart from `pk`/`sk` so no column name
/// can collide with the keys): written by ingest, read by the API and the CLI.
pub const DATA_ATTRIBUTE: &str = "data";
/// The TTL attribute (epoch seconds) of the control table. Expired items are never returned.
pub const EXPIRES_AT: &str = "expires_at";
/// DynamoDB's item size limit in bytes.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// One attribute value, as DynamoDB types it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    S(String),
    /// A number, kept as its decimal text (DynamoDB's own representation; up to 38 digits).
    N(String),
    #[serde(rename = "BOOL")]
    Bool(bool),
    #[serde(rename = "NULL")]
    Null(bool),
    M(BTreeMap<String, AttrValue>),
    L(Vec<AttrValue>),
    B(#[serde(with = "base64_bytes")] Vec<u8>),
}

/// An item: attribute name to value. It always holds `pk` and `sk` as strings.
pub type Item = BTreeMap<String, AttrValue>;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        ItemKey {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of `item`, if it has string `pk` and `sk` attributes.
    pub fn of(item: &Item) -> Option<ItemKey> {
        match (item.get(PARTITION_KEY), item.get(SORT_KEY)) {
            (Some(AttrValue::S(pk)), Some(AttrValue::S(sk))) => Some(ItemKey::new(pk, sk)),
            _ => None,
        }
    }

    /// A new item holding just this key.
    pub fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert(PARTITION_KEY.into(), AttrValue::S(self.pk.clone()));
        item.insert(SORT_KEY.into(), AttrValue::S(self.sk.clone()));
        item
    }
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::S(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::N(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            AttrValue::B(b) => Some(b),
            _ => None,
        }
    }

    /// This value as plain JSON (numbers as JSON numbers when they fit, else as strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            AttrValue::S(s) => Value::String(s.clone()),
            AttrValue::N(n) => serde_json::from_str::<serde_json::Number>(n)
                .ok()
                .filter(|parsed| parsed.to_string() == *n || n.contains(['.', 'e', 'E']))
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(n.clone())),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Null(_) => Value::Null,
            AttrValue::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            AttrValue::L(l) => Value::Array(l.iter().map(AttrValue::to_json).collect()),
            AttrValue::B(b) => {
                use base64::Engine;
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    /// DynamoDB's size of this value in bytes (see "Item sizes" in the DynamoDB guide).
    pub fn size(&self) -> usize {
        match self {
            AttrValue::S(s) => s.len(),
            AttrValue::N(n) => number_size(n),
            AttrValue::B(b) => b.len(),
            AttrValue::Bool(_) | AttrValue::Null(_) => 1,
            AttrValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            AttrValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
        }
    }
}

/// DynamoDB stores numbers as base-100 digits: one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let mantissa = n.trim_start_matches(['-', '+']).split(['e', 'E']).next().unwrap_or("");
    let digits = || mantissa.bytes().filter(u8::is_ascii_digit);
    let total = digits().count();
    let leading = digits().take_while(|&d| d == b'0').count();
    let trailing = if leading == total {
        0
    } else {
        mantissa
            .bytes()
            .rev()
            .filter(u8::is_ascii_digit)
            .take_while(|&d| d == b'0')
            .count()
    };
    let significant = (total - leading - trailing).max(1);
    significant.div_ceil(2) + 1
}

/// DynamoDB's size of an item: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value.size()).sum()
}

/// The TTL of `item` in epoch seconds, if it has one.
pub fn expires_at(item: &Item) -> Option<i64> {
    item.get(EXPIRES_AT).and_then(AttrValue::as_i64)
}

/// Whether `item` has expired at `now` (epoch seconds). Both backends hide such items, since
/// DynamoDB deletes expired items lazily, up to days later.
pub fn is_expired(item: &Item, now: i64) -> bool {
    expires_at(item).is_some_and(|at| at <= now)
}

/// Binary attributes: base64 text in DynamoDB JSON, raw bytes in a binary form (the embedded
/// backend's stored items).
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::de::{Error, Visitor};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&STANDARD.encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            return STANDARD.decode(text).map_err(Error::custom);
        }
        struct RawBytes;
        impl Visitor<'_> for RawBytes {
            type Value = Vec<u8>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
                Ok(bytes.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(bytes)
            }
        }
        deserializer.deserialize_byte_buf(RawBytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_form_is_dynamodb_json() {
        let mut item = ItemKey::new("orders", "0042").to_item();
        item.insert("n".into(), AttrValue::N("1.5".into()));
        item.insert("ok".into(), AttrValue::Bool(true));
        item.insert("none".into(), AttrValue::Null(true));
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "pk": {"S": "orders"}, "sk": {"S": "0042"}, "n": {"N": "1.5"},
                "ok": {"BOOL": true}, "none": {"NULL": true}
            })
        );
        let back: Item = serde_json::from_value(json).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(AttrValue::S("héllo".into()).size(), 6);
        assert_eq!(AttrValue::N("12345".into()).size(), 4);
        assert_eq!(AttrValue::N("-0.001".into()).size(), 2);
        assert_eq!(AttrValue::Bool(false).size(), 1);
        let item = ItemKey::new("a", "b").to_item();
        assert_eq!(item_size(&item), 2 + 2 + 2);
    }

    #[test]
    fn long_numbers_render_as_json_strings_rather_than_losing_digits() {
        let big = "123456789012345678901234567890";
        assert_eq!(AttrValue::N(big.into()).to_json(), serde_json::json!(big));
        assert_eq!(AttrValue::N("42".into()).to_json(), serde_json::json!(42));
        assert_eq!(AttrValue::N("2.5".into()).to_json(), serde_json::json!(2.5));
    }

    #[test]
    fn expiry_hides_items_at_and_after_their_ttl() {
        let mut item = ItemKey::new("a", "b").to_item();
        assert!(!is_expired(&item, 100));
        item.insert(EXPIRES_AT.into(), AttrValue::N("100".into()));
        assert!(!is_expired(&item, 99));
        assert!(is_expired(&item, 100));
    }
}
