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
