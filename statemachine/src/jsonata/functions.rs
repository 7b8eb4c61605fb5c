//! The functions Step Functions adds to JSONata (`$partition`, `$range`, `$hash`, `$random`
//! with an optional seed, `$uuid`, `$parse`) and the one it takes away (`$eval`). The array and
//! hash rules are the intrinsic functions' own (`States.ArrayPartition` and friends).

use jlens_core::{Bindings, Error, HostFunction};
use serde_json::Value;

use crate::env::RandomSource;
use crate::intrinsics::shared;

/// An error whose message is `message` (a code the crate does not know takes it verbatim).
fn refused(function: &str, message: impl Into<String>) -> Error {
    Error::new(format!("States.{function}")).with("message", message.into())
}

fn number(args: &[Option<Value>], index: usize) -> Option<f64> {
    args.get(index).and_then(Option::as_ref).and_then(Value::as_f64)
}

fn whole(function: &str, args: &[Option<Value>], index: usize, what: &str) -> Result<i64, Error> {
    match number(args, index) {
        Some(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => Ok(n as i64),
        _ => Err(refused(function, format!("the {what} must be a whole number"))),
    }
}

/// Every AWS function, bound into `bindings`. `seed` drives `$random()` and `$uuid()` for this
/// evaluation, so a replayed state visit draws the same values.
pub(super) fn register(bindings: Bindings, seed: u64) -> Bindings {
    let random = std::sync::Arc::new(RandomSource::new(seed));
    let uuid_random = random.clone();
    bindings
        .function(
            "partition",
            HostFunction::new(2, |args, _| {
                let Some(Value::Array(items)) = args.first().and_then(Option::as_ref) else {
                    return Err(refused("partition", "the first argument must be an array"));
                };
                let size = whole("partition", args, 1, "chunk size")?;
                if size <= 0 {
                    return Err(refused("partition", "the chunk size must be greater than 0"));
                }
                Ok(Some(Value::Array(shared::partition(items, size as usize))))
            })
            .without_input(),
        )
        .function(
            "range",
            HostFunction::new(3, |args, _| {
                let start = whole("range", args, 0, "start")?;
                let end = whole("range", args, 1, "end")?;
                let step = whole("range", args, 2, "step")?;
                shared::range(start, end, step)
                    .map(|items| Some(Value::Array(items)))
                    .map_err(|reason| refused("range", reason))
            })
            .without_input(),
        )
        .function(
            "hash",
            HostFunction::new(2, |args, _| {
                let Some(Value::String(data)) = args.first().and_then(Option::as_ref) else {
                    return Err(refused("hash", "the first argument must be a string"));
                };
                let Some(Value::String(algorithm)) = args.get(1).and_then(Option::as_ref) else {
                    return Err(refused("hash", "the second argument must name the algorithm"));
                };
                shared::hash(data.as_bytes(), algorithm)
                    .map(|hex| Some(Value::String(hex)))
                    .map_err(|reason| refused("hash", reason))
            })
            .without_input(),
        )
        .function(
            "random",
            HostFunction::new(1, move |args, _| {
                let draw = match args.first().and_then(Option::as_ref) {
                    None => random.next_u64(),
                    Some(seed) => match seed.as_i64().or_else(|| seed.as_f64().map(|f| f as i64)) {
                        Some(seed) => RandomSource::new(seed as u64).next_u64(),
                        None => return Err(refused("random", "the seed must be a number")),
                    },
                };
                // 53 random bits: every double in [0, 1) that a uniform draw can give.
                Ok(Some(Value::from((draw >> 11) as f64 / (1u64 << 53) as f64)))
            })
            .without_input(),
        )
        .function(
            "uuid",
            HostFunction::new(0, move |_, _| Ok(Some(Value::String(shared::uuid_v4(&uuid_random))))).without_input(),
        )
        .function(
            "parse",
            HostFunction::new(1, |args, _| {
                let Some(Value::String(text)) = args.first().and_then(Option::as_ref) else {
                    return Err(refused("parse", "the argument must be a string of JSON"));
                };
                serde_json::from_str(text)
                    .map(Some)
                    .map_err(|err| refused("parse", format!("the argument is not JSON: {err}")))
            })
            .without_input(),
        )
        .function(
            "eval",
            HostFunction::new(1, |_, _| {
                Err(refused("eval", "$eval is not available in Step Functions; use $parse"))
            })
            .without_input(),
        )
}
