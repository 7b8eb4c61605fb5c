//! Field types whose JSON shape needs more than a plain serde type.

use crate::path::JsonPath;
use serde::Deserialize;
use serde_json::Value;

/// `InputPath`, `OutputPath` or `ResultPath`: absent (`$`), `null`, or a path.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PathField {
    #[default]
    Default,
    Null,
    Path(JsonPath),
}

impl<'de> Deserialize<'de> for PathField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(PathField::Null),
            Some(text) => JsonPath::parse(&text)
                .map(|p| {
                    if p.is_identity() {
                        PathField::Default
                    } else {
                        PathField::Path(p)
                    }
                })
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A whole number of seconds; AWS accepts `10` and `10.0` alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        whole_seconds(&value)
            .map(Seconds)
            .ok_or_else(|| serde::de::Error::custom("expected a non-negative whole number of seconds"))
    }
}

/// A non-negative integer held in a JSON number (`3` or `3.0`).
pub fn whole_seconds(value: &Value) -> Option<u64> {
    let n = value.as_number()?;
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

/// A whole number above zero (`3` or `3.0`).
pub fn is_positive_integer(value: &Value) -> bool {
    whole_seconds(value).is_some_and(|n| n > 0)
}

/// A whole number of zero or more.
pub fn is_non_negative_integer(value: &Value) -> bool {
    whole_seconds(value).is_some()
}

/// An RFC 3339 timestamp with an uppercase `T` and an offset or `Z`, as AWS requires (Wait's
/// `Timestamp`, the `Timestamp...` choice rules).
pub fn parse_timestamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if !text.contains('T') {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_need_rfc3339() {
        assert!(parse_timestamp("2016-03-14T01:59:00Z").is_some());
        assert!(parse_timestamp("2016-03-14T01:59:00.123+02:00").is_some());
        assert!(parse_timestamp("2023-02-24").is_none());
        assert!(parse_timestamp("2012-10-09T19:00:55").is_none());
    }
}
