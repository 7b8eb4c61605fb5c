//! What a detector finds: a typed span of a cell, in Unicode code points.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A PII entity type, named as Amazon Comprehend names it so both detectors are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityType {
    Email,
    Phone,
    CreditDebitNumber,
    Ssn,
    Iban,
    IpAddress,
    MacAddress,
    Url,
    DateTime,
    AwsAccessKey,
    AwsSecretKey,
    Name,
    Address,
    /// Another Comprehend type (e.g. `PASSPORT_NUMBER`), kept by its Comprehend name.
    Other(String),
}

/// Every Comprehend DetectPiiEntities type name, for validating policies.
pub const COMPREHEND_TYPE_NAMES: &[&str] = &[
    "BANK_ACCOUNT_NUMBER",
    "BANK_ROUTING",
    "CREDIT_DEBIT_NUMBER",
    "CREDIT_DEBIT_CVV",
    "CREDIT_DEBIT_EXPIRY",
    "PIN",
    "EMAIL",
    "ADDRESS",
    "NAME",
    "PHONE",
    "SSN",
    "DATE_TIME",
    "PASSPORT_NUMBER",
    "DRIVER_ID",
    "URL",
    "AGE",
    "USERNAME",
    "PASSWORD",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "LICENSE_PLATE",
    "VEHICLE_IDENTIFICATION_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER",
    "CA_SOCIAL_INSURANCE_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    "UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER",
    "IN_PERMANENT_ACCOUNT_NUMBER",
    "IN_NREGA",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "SWIFT_CODE",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "CA_HEALTH_NUMBER",
    "IN_AADHAAR",
    "IN_VOTER_NUMBER",
];

impl EntityType {
    /// The Comprehend name (`EMAIL`, `CREDIT_DEBIT_NUMBER`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            EntityType::Email => "EMAIL",
            EntityType::Phone => "PHONE",
            EntityType::CreditDebitNumber => "CREDIT_DEBIT_NUMBER",
            EntityType::Ssn => "SSN",
            EntityType::Iban => "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
            EntityType::IpAddress => "IP_ADDRESS",
            EntityType::MacAddress => "MAC_ADDRESS",
            EntityType::Url => "URL",
            EntityType::DateTime => "DATE_TIME",
            EntityType::AwsAccessKey => "AWS_ACCESS_KEY",
            EntityType::AwsSecretKey => "AWS_SECRET_KEY",
            EntityType::Name => "NAME",
            EntityType::Address => "ADDRESS",
            EntityType::Other(name) => name,
        }
    }

    /// Parses a Comprehend name; `IBAN` is accepted as shorthand for
    /// `INTERNATIONAL_BANK_ACCOUNT_NUMBER`. Unknown names are an error naming the valid ones.
    pub fn from_name(name: &str) -> Result<EntityType, UnknownEntityType> {
        let known = match name {
            "EMAIL" => EntityType::Email,
            "PHONE" => EntityType::Phone,
            "CREDIT_DEBIT_NUMBER" => EntityType::CreditDebitNumber,
            "SSN" => EntityType::Ssn,
            "INTERNATIONAL_BANK_ACCOUNT_NUMBER" | "IBAN" => EntityType::Iban,
            "IP_ADDRESS" => EntityType::IpAddress,
            "MAC_ADDRESS" => EntityType::MacAddress,
            "URL" => EntityType::Url,
            "DATE_TIME" => EntityType::DateTime,
            "AWS_ACCESS_KEY" => EntityType::AwsAccessKey,
            "AWS_SECRET_KEY" => EntityType::AwsSecretKey,
            "NAME" => EntityType::Name,
            "ADDRESS" => EntityType::Address,
            other if COMPREHEND_TYPE_NAMES.contains(&other) => EntityType::Other(other.to_string()),
            other => return Err(UnknownEntityType(other.chars().take(64).collect())),
        };
        Ok(known)
    }
}

impl EntityType {
    /// A type name as Comprehend sent it; a type newer than this list is kept by name, so an
    /// answer with it still gets masked by the policy's default.
    pub fn from_comprehend(name: &str) -> EntityType {
        EntityType::from_name(name).unwrap_or_else(|_| EntityType::Other(name.to_string()))
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityType {
    type Err = UnknownEntityType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityType::from_name(s)
    }
}

impl Serialize for EntityType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EntityType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        EntityType::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// A name that is not one of Comprehend's PII entity types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown PII entity type {0:?} (expected a Comprehend type name such as EMAIL, PHONE, CREDIT_DEBIT_NUMBER, SSN, INTERNATIONAL_BANK_ACCOUNT_NUMBER, IP_ADDRESS, MAC_ADDRESS, URL, DATE_TIME, AWS_ACCESS_KEY, AWS_SECRET_KEY, NAME, ADDRESS)"
)]
pub struct UnknownEntityType(pub String);

/// One entity in one cell: `begin..end` in Unicode code points (end exclusive), as Comprehend
/// reports offsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiiEntity {
    #[serde(rename = "type")]
    pub kind: EntityType,
    pub begin: usize,
    pub end: usize,
    pub score: f32,
}

impl PiiEntity {
    pub fn new(kind: EntityType, begin: usize, end: usize, score: f32) -> Self {
        PiiEntity {
            kind,
            begin,
            end,
            score,
        }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.begin)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.begin
    }
}

/// Converts between byte offsets and code-point offsets of one text.
///
/// Detectors work in bytes (regex) or code points (Comprehend); masking works in bytes. ASCII
/// text (the common case) maps one to one without building a table, and so does a short
/// non-ASCII text (a typical cell): counting its few bytes per lookup is cheaper than
/// allocating a table per cell. Long texts get the table, so lookups stay logarithmic.
pub struct CodePoints<'a> {
    text: &'a str,
    ascii: bool,
    /// Byte offset of each code point, plus `text.len()` at the end; only for long non-ASCII text.
    starts: Vec<usize>,
}

/// Up to this many bytes, a non-ASCII text is mapped by counting rather than by a table.
const COUNTED_TEXT_BYTES: usize = 256;

impl<'a> CodePoints<'a> {
    pub fn new(text: &'a str) -> Self {
        let ascii = text.is_ascii();
        let starts = if ascii || text.len() <= COUNTED_TEXT_BYTES {
            Vec::new()
        } else {
            text.char_indices()
                .map(|(at, _)| at)
                .chain(std::iter::once(text.len()))
                .collect()
        };
        CodePoints { text, ascii, starts }
    }

    /// The number of code points in the text.
    pub fn len(&self) -> usize {
        if self.ascii {
            self.text.len()
        } else if self.starts.is_empty() {
            self.text.chars().count()
        } else {
            self.starts.len() - 1
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The code-point index of byte offset `byte` (which must be a char boundary).
    pub fn char_index(&self, byte: usize) -> usize {
        if self.ascii {
            byte
        } else if self.starts.is_empty() {
            // Code points that start before `byte`: the bytes that are not UTF-8 continuations.
            let before = &self.text.as_bytes()[..byte.min(self.text.len())];
            before.iter().filter(|&&b| (b as i8) >= -0x40).count()
        } else {
            self.starts.partition_point(|&start| start < byte)
        }
    }

    /// The byte offset of code point `index` (clamped to the text's end).
    pub fn byte_offset(&self, index: usize) -> usize {
        if self.ascii {
            index.min(self.text.len())
        } else if self.starts.is_empty() {
            self.text
                .char_indices()
                .nth(index)
                .map_or(self.text.len(), |(at, _)| at)
        } else {
            self.starts[index.min(self.starts.len() - 1)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_iban_shorthand_is_accepted() {
        for name in COMPREHEND_TYPE_NAMES {
            assert_eq!(EntityType::from_name(name).unwrap().as_str(), *name);
        }
        assert_eq!(EntityType::from_name("IBAN").unwrap(), EntityType::Iban);
        let err = EntityType::from_name("EMIAL").unwrap_err();
        assert!(err.to_string().contains("EMIAL"));
    }

    #[test]
    fn code_points_map_bytes_for_accented_cjk_and_emoji_text() {
        let text = "é中😀a";
        let map = CodePoints::new(text);
        assert_eq!(map.len(), 4);
        assert_eq!(map.char_index(0), 0);
        assert_eq!(map.char_index(2), 1);
        assert_eq!(map.char_index(5), 2);
        assert_eq!(map.char_index(9), 3);
        assert_eq!(map.byte_offset(3), 9);
        assert_eq!(map.byte_offset(4), 10);
        assert_eq!(&text[map.byte_offset(3)..map.byte_offset(4)], "a");
    }

    #[test]
    fn counted_and_tabled_mappings_agree() {
        let short = "é中😀a ünï 名前 🎉 x";
        let long = short.repeat(40);
        for text in [short, long.as_str()] {
            let map = CodePoints::new(text);
            let starts: Vec<usize> = text.char_indices().map(|(at, _)| at).chain([text.len()]).collect();
            assert_eq!(map.len(), starts.len() - 1);
            for (index, &start) in starts.iter().enumerate() {
                assert_eq!(map.char_index(start), index);
                assert_eq!(map.byte_offset(index), start);
            }
            assert_eq!(map.byte_offset(starts.len() + 5), text.len());
        }
    }
}
