//! Evaluating parsed paths against JSON values, and writing through reference paths.

use super::{CompareOp, FilterExpr, Operand, Segment};
use serde_json::Value;
use std::cmp::Ordering;

pub(super) fn select_definite<'v>(segments: &[Segment], base: &'v Value) -> Option<&'v Value> {
    let mut current = base;
    for segment in segments {
        current = match segment {
            Segment::Name(name) => current.as_object()?.get(name)?,
            Segment::Index(i) => {
                let array = current.as_array()?;
                array.get(resolve_index(*i, array.len())?)?
            }
            _ => return None,
        };
    }
    Some(current)
}

pub(super) fn select(segments: &[Segment], base: &Value, definite: bool) -> Option<Value> {
    if definite {
        return select_definite(segments, base).cloned();
    }
    let mut current: Vec<&Value> = vec![base];
    for segment in segments {
        let mut next = Vec::new();
        for value in current {
            apply(segment, value, base, &mut next);
        }
        current = next;
    }
    Some(Value::Array(current.into_iter().cloned().collect()))
}

fn resolve_index(i: i64, len: usize) -> Option<usize> {
    if i >= 0 {
        Some(i as usize)
    } else {
        let back = i.unsigned_abs() as usize;
        len.checked_sub(back)
    }
}

fn apply<'v>(segment: &Segment, value: &'v Value, root: &'v Value, out: &mut Vec<&'v Value>) {
    match segment {
        Segment::Name(name) => {
            if let Some(v) = value.as_object().and_then(|o| o.get(name)) {
                out.push(v);
            }
        }
        Segment::Index(i) => {
            if let Some(array) = value.as_array()
                && let Some(v) = resolve_index(*i, array.len()).and_then(|i| array.get(i))
            {
                out.push(v);
            }
        }
        Segment::Wildcard => match value {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(o) => out.extend(o.values()),
            _ => {}
        },
        Segment::DeepScan(name) => deep_scan(value, name.as_deref(), out),
        Segment::Names(names) => {
            if let Some(o) = value.as_object() {
                out.extend(names.iter().filter_map(|n| o.get(n)));
            }
        }
        Segment::Indices(indices) => {
            if let Some(a) = value.as_array() {
                out.extend(
                    indices
                        .iter()
                        .filter_map(|i| resolve_index(*i, a.len()).and_then(|i| a.get(i))),
                );
            }
        }
        Segment::Slice { start, end, step } => {
            if let Some(a) = value.as_array() {
                let len = a.len() as i64;
                let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let from = start.map(clamp).unwrap_or(0);
                let to = end.map(clamp).unwrap_or(len);
                let mut i = from;
                while i < to {
                    out.push(&a[i as usize]);
                    i += step;
                }
            }
        }
        Segment::Filter(expr) => match value {
            Value::Array(a) => out.extend(a.iter().filter(|item| filter_holds(expr, item, root))),
            Value::Object(_) if filter_holds(expr, value, root) => out.push(value),
            _ => {}
        },
    }
}

fn deep_scan<'v>(value: &'v Value, name: Option<&str>, out: &mut Vec<&'v Value>) {
    match value {
        Value::Object(o) => {
            for (key, child) in o {
                if name.is_none_or(|n| n == key) {
                    out.push(child);
                }
                deep_scan(child, name, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                if name.is_none() {
                    out.push(child);
                }
                deep_scan(child, name, out);
            }
        }
        _ => {}
    }
}

fn operand_value<'v>(operand: &'v Operand, current: &'v Value, root: &'v Value) -> Option<Value> {
    match operand {
        Operand::Literal(v) => Some(v.clone()),
        Operand::Current(segs) => eval_relative(segs, current),
        Operand::Root(segs) => eval_relative(segs, root),
    }
}

fn eval_relative(segments: &[Segment], base: &Value) -> Option<Value> {
    let definite = segments
        .iter()
        .all(|s| matches!(s, Segment::Name(_) | Segment::Index(_)));
    select(segments, base, definite)
}

fn filter_holds(expr: &FilterExpr, current: &Value, root: &Value) -> bool {
    match expr {
        FilterExpr::Or(parts) => parts.iter().any(|p| filter_holds(p, current, root)),
        FilterExpr::And(parts) => parts.iter().all(|p| filter_holds(p, current, root)),
        FilterExpr::Not(inner) => !filter_holds(inner, current, root),
        FilterExpr::Exists(operand) => match operand_value(operand, current, root) {
            Some(Value::Bool(b)) => b,
            Some(Value::Array(a)) if !matches!(operand, Operand::Literal(_)) => !a.is_empty(),
            Some(_) => true,
            None => false,
        },
        FilterExpr::Compare(left, op, right) => {
            let (Some(l), Some(r)) = (operand_value(left, current, root), operand_value(right, current, root)) else {
                return false;
            };
            compare(&l, *op, &r)
        }
    }
}

fn compare(l: &Value, op: CompareOp, r: &Value) -> bool {
    let ordering = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match op {
        CompareOp::Eq => ordering == Some(Ordering::Equal) || (ordering.is_none() && l == r),
        CompareOp::Ne => !(ordering == Some(Ordering::Equal) || (ordering.is_none() && l == r)),
        CompareOp::Lt => ordering == Some(Ordering::Less),
        CompareOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Gt => ordering == Some(Ordering::Greater),
        CompareOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    }
}

pub(super) fn write_into(segments: &[Segment], target: Value, value: Value, text: &str) -> Result<Value, String> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(value);
    };
    let mut target = target;
    match first {
        Segment::Name(name) => {
            let Value::Object(map) = &mut target else {
                return Err(format!(
                    "Unable to apply ReferencePath {text} to input {}",
                    crate::json::to_compact(&target)
                ));
            };
            let child = map.remove(name).unwrap_or(Value::Object(Default::default()));
            let child = if rest.is_empty() {
                value
            } else {
                let child = if child.is_null() {
                    Value::Object(Default::default())
                } else {
                    child
                };
                write_into(rest, child, value, text)?
            };
            map.insert(name.clone(), child);
            Ok(target)
        }
        Segment::Index(i) => {
            let Value::Array(array) = &mut target else {
                return Err(format!("Unable to apply ReferencePath {text}: not an array"));
            };
            let idx = *i as usize;
            if idx >= array.len() {
                return Err(format!("Unable to apply ReferencePath {text}: index out of range"));
            }
            let child = std::mem::take(&mut array[idx]);
            array[idx] = write_into(rest, child, value, text)?;
            Ok(target)
        }
        _ => Err(format!("{text} is not a valid reference path")),
    }
}
