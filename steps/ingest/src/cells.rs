//! Typing one CSV cell as a DynamoDB value.

use sluice_core::AttrValue;
use sluice_core::config::ColumnType;

/// DynamoDB keeps at most 38 significant digits.
const MAX_SIGNIFICANT_DIGITS: usize = 38;
/// DynamoDB's number range: 1E-130 to 9.99...E+125.
const MIN_EXPONENT: i64 = -130;
const MAX_EXPONENT: i64 = 125;

/// Why a cell does not fit its declared type. Never holds the cell's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellProblem {
    NotANumber,
    NotABool,
}

impl CellProblem {
    pub fn describe(self) -> &'static str {
        match self {
            CellProblem::NotANumber => {
                "is declared a number but is not one DynamoDB can store (at most 38 digits, no leading zeros)"
            }
            CellProblem::NotABool => "is declared a bool but is not true or false",
        }
    }
}

/// Types `text` per `declared`. `Auto`: empty is null, `true`/`false` are bools, canonical
/// decimal numbers within DynamoDB's limits are numbers, everything else (leading zeros,
/// 39+ digits, `1e999`, `+5`, `.5`) stays a string, so nothing is ever rounded or reformatted.
pub fn type_cell(text: &str, declared: ColumnType) -> Result<AttrValue, CellProblem> {
    match declared {
        ColumnType::String => Ok(AttrValue::S(text.to_string())),
        ColumnType::Auto => Ok(infer(text)),
        ColumnType::Number => match text {
            "" => Ok(AttrValue::Null(true)),
            _ if is_dynamo_number(text) => Ok(AttrValue::N(text.to_string())),
            _ => Err(CellProblem::NotANumber),
        },
        ColumnType::Bool => match text {
            "" => Ok(AttrValue::Null(true)),
            _ => parse_bool(text).map(AttrValue::Bool).ok_or(CellProblem::NotABool),
        },
    }
}

fn infer(text: &str) -> AttrValue {
    if text.is_empty() {
        return AttrValue::Null(true);
    }
    if let Some(value) = parse_bool(text) {
        return AttrValue::Bool(value);
    }
    if is_dynamo_number(text) {
        return AttrValue::N(text.to_string());
    }
    AttrValue::S(text.to_string())
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "TRUE" | "True" => Some(true),
        "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` with at most 38 significant digits and
/// an exponent DynamoDB accepts.
pub fn is_dynamo_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &bytes[int_start..i];
    if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
        return false;
    }
    let mut frac_digits: &[u8] = &[];
    if i < bytes.len() && bytes[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &bytes[start..i];
        if frac_digits.is_empty() {
            return false;
        }
    }
    let mut exponent: i64 = 0;
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        let negative = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i || i - start > 6 {
            return false;
        }
        let Ok(magnitude) = text[start..i].parse::<i64>() else {
            return false;
        };
        exponent = if negative { -magnitude } else { magnitude };
    }
    if i != bytes.len() {
        return false;
    }
    // Significant digits: drop leading zeros of the whole digit string and trailing zeros.
    let leading_zeros = int_digits.iter().chain(frac_digits).take_while(|&&d| d == b'0').count();
    let total = int_digits.len() + frac_digits.len();
    if leading_zeros == total {
        return true; // zero
    }
    let trailing_zeros = int_digits
        .iter()
        .chain(frac_digits)
        .rev()
        .take_while(|&&d| d == b'0')
        .count();
    let significant = total - leading_zeros - trailing_zeros;
    if significant > MAX_SIGNIFICANT_DIGITS {
        return false;
    }
    // The decimal exponent of the first significant digit.
    let magnitude = int_digits.len() as i64 - 1 - leading_zeros as i64 + exponent;
    (MIN_EXPONENT..=MAX_EXPONENT).contains(&magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(text: &str) -> AttrValue {
        type_cell(text, ColumnType::Auto).unwrap()
    }

    #[test]
    fn inference_keeps_anything_ambiguous_a_string() {
        assert_eq!(auto(""), AttrValue::Null(true));
        assert_eq!(auto("42"), AttrValue::N("42".into()));
        assert_eq!(auto("-0.50"), AttrValue::N("-0.50".into()));
        assert_eq!(auto("6.02e23"), AttrValue::N("6.02e23".into()));
        assert_eq!(auto("true"), AttrValue::Bool(true));
        assert_eq!(auto("FALSE"), AttrValue::Bool(false));
        for text in [
            "007", "00.5", "+5", ".5", "5.", "1e", "1e999", "0x10", "NaN", "inf", "1 000", "12-34", "yes", " 1",
        ] {
            assert_eq!(auto(text), AttrValue::S(text.into()), "{text:?}");
        }
    }

    #[test]
    fn numbers_beyond_38_digits_stay_strings() {
        let digits38 = "1".repeat(38);
        let digits39 = "1".repeat(39);
        assert_eq!(auto(&digits38), AttrValue::N(digits38.clone()));
        assert_eq!(auto(&digits39), AttrValue::S(digits39.clone()));
        // Trailing zeros are not significant: 1 followed by 60 zeros is one digit.
        let big_round = format!("1{}", "0".repeat(60));
        assert_eq!(auto(&big_round), AttrValue::N(big_round.clone()));
        assert_eq!(
            auto("0.000000000000000000000000000000000000000001"),
            AttrValue::N("0.000000000000000000000000000000000000000001".into())
        );
        assert!(is_dynamo_number("1e125") && !is_dynamo_number("1e126"));
        assert!(is_dynamo_number("1e-130") && !is_dynamo_number("1e-131"));
    }

    #[test]
    fn declared_types_reject_misfits_without_echoing_them() {
        assert_eq!(type_cell("abc", ColumnType::Number), Err(CellProblem::NotANumber));
        assert_eq!(type_cell("007", ColumnType::Number), Err(CellProblem::NotANumber));
        assert_eq!(type_cell("", ColumnType::Number), Ok(AttrValue::Null(true)));
        assert_eq!(type_cell("maybe", ColumnType::Bool), Err(CellProblem::NotABool));
        assert_eq!(type_cell("007", ColumnType::String), Ok(AttrValue::S("007".into())));
        assert_eq!(type_cell("", ColumnType::String), Ok(AttrValue::S(String::new())));
        assert!(!CellProblem::NotANumber.describe().contains("abc"));
    }
}
