//! The built-in recognizers: regular expressions that find candidates, and checksums or range
//! rules that confirm them (Luhn, mod-97, SSN ranges, address parsers). They report Comprehend's
//! type names with a score, so they stand in for Comprehend in local runs.

mod contact;
mod credentials;
mod datetime;
mod financial;
mod network;

use regex::Regex;

use crate::entity::{CodePoints, EntityType, PiiEntity};

/// A candidate found in a text, in byte offsets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub kind: EntityType,
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

/// Cheap facts about a text, gathered in one pass, that decide which recognizers can match at all.
///
/// Each field is a *necessary* condition of some pattern (a phone number is 7+ digits inside one
/// run of digits, spaces, dots, dashes, plus signs and parentheses; an IPv4 address is three
/// digit-then-dot pairs in one run of digits and dots; ...), so skipping a recognizer whose
/// condition fails never changes what is found. Most cells hold some digits, so the plain digit
/// count alone would send nearly every cell through the phone, date and card patterns.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TextShape {
    pub digits: usize,
    pub has_at: bool,
    pub colons: usize,
    pub dashes: usize,
    pub dots: usize,
    pub has_upper: bool,
    /// Longest run of characters an AWS secret key is made of (`A-Za-z0-9/+`).
    pub longest_key_run: usize,
    /// Most digits in one run of `0-9 .-+()` (where a phone number lives).
    pub phone_run_digits: usize,
    /// Most digits in one run of `0-9 -` (where card numbers and grouped SSNs live).
    pub card_run_digits: usize,
    /// Some run of digits is exactly nine long (a bare SSN).
    pub nine_digit_run: bool,
    /// Most "digit then dot" pairs in one run of `0-9.` (an IPv4 address has three).
    pub dotted_run_dots: usize,
    /// Most "digit then `/`, `.` or `-`" pairs in one run of `0-9/.-` (a numeric date has two).
    pub date_run_separators: usize,
    /// A digit, a colon and a digit (a clock time).
    pub digit_colon_digit: bool,
    /// A digit followed by `a` or `p`, optionally after one space ("3pm", "10 AM").
    pub digit_meridiem: bool,
    /// Two ASCII letters followed by two digits (how an IBAN starts).
    pub iban_start: bool,
}

impl TextShape {
    pub fn of(text: &str) -> TextShape {
        let mut shape = TextShape::default();
        let mut key_run = 0usize;
        let mut phone_run = 0usize;
        let mut card_run = 0usize;
        let mut digit_run = 0usize;
        let mut dotted_run = 0usize;
        let mut date_run = 0usize;
        // The three bytes before the current one (0 before the start).
        let (mut prev, mut prev2, mut prev3) = (0u8, 0u8, 0u8);
        for &byte in text.as_bytes() {
            if byte.is_ascii_digit() {
                shape.digits += 1;
                key_run += 1;
                digit_run += 1;
                phone_run += 1;
                card_run += 1;
                shape.phone_run_digits = shape.phone_run_digits.max(phone_run);
                shape.card_run_digits = shape.card_run_digits.max(card_run);
                if prev == b':' && prev2.is_ascii_digit() {
                    shape.digit_colon_digit = true;
                }
                if digit_run == 2 && prev2.is_ascii_alphabetic() && prev3.is_ascii_alphabetic() {
                    shape.iban_start = true;
                }
            } else {
                if digit_run == 9 {
                    shape.nine_digit_run = true;
                }
                digit_run = 0;
                match byte {
                    b'A'..=b'Z' | b'a'..=b'z' => {
                        shape.has_upper |= byte.is_ascii_uppercase();
                        key_run += 1;
                        if matches!(byte, b'a' | b'p' | b'A' | b'P')
                            && (prev.is_ascii_digit() || (prev == b' ' && prev2.is_ascii_digit()))
                        {
                            shape.digit_meridiem = true;
                        }
                    }
                    b'/' | b'+' => key_run += 1,
                    _ => {
                        shape.longest_key_run = shape.longest_key_run.max(key_run);
                        key_run = 0;
                    }
                }
                match byte {
                    b'@' => shape.has_at = true,
                    b':' => shape.colons += 1,
                    b'-' => shape.dashes += 1,
                    b'.' => shape.dots += 1,
                    _ => {}
                }
                if !matches!(byte, b' ' | b'.' | b'-' | b'+' | b'(' | b')') {
                    phone_run = 0;
                }
                if !matches!(byte, b' ' | b'-') {
                    card_run = 0;
                }
                if byte == b'.' {
                    if prev.is_ascii_digit() {
                        dotted_run += 1;
                        shape.dotted_run_dots = shape.dotted_run_dots.max(dotted_run);
                    }
                } else {
                    dotted_run = 0;
                }
                if matches!(byte, b'/' | b'.' | b'-') {
                    if prev.is_ascii_digit() {
                        date_run += 1;
                        shape.date_run_separators = shape.date_run_separators.max(date_run);
                    }
                } else {
                    date_run = 0;
                }
            }
            (prev3, prev2, prev) = (prev2, prev, byte);
        }
        if digit_run == 9 {
            shape.nine_digit_run = true;
        }
        shape.longest_key_run = shape.longest_key_run.max(key_run);
        shape
    }
}

/// All built-in recognizers, compiled once. Cheap to share (`&self` only).
pub struct BuiltinRecognizers {
    contact: contact::ContactRecognizers,
    financial: financial::FinancialRecognizers,
    network: network::NetworkRecognizers,
    datetime: datetime::DateTimeRecognizer,
    credentials: credentials::CredentialRecognizers,
}

impl Default for BuiltinRecognizers {
    fn default() -> Self {
        Self::new()
    }
}

impl BuiltinRecognizers {
    pub fn new() -> Self {
        BuiltinRecognizers {
            contact: contact::ContactRecognizers::new(),
            financial: financial::FinancialRecognizers::new(),
            network: network::NetworkRecognizers::new(),
            datetime: datetime::DateTimeRecognizer::new(),
            credentials: credentials::CredentialRecognizers::new(),
        }
    }

    /// Every candidate in `text`, unresolved (they may overlap), in byte offsets.
    pub(crate) fn candidates(&self, text: &str, out: &mut Vec<Candidate>) {
        let shape = TextShape::of(text);
        self.contact.find(text, &shape, out);
        self.financial.find(text, &shape, out);
        self.network.find(text, &shape, out);
        self.datetime.find(text, &shape, out);
        self.credentials.find(text, &shape, out);
    }

    /// The entities of `text` in code points, overlaps resolved.
    pub fn recognize(&self, text: &str) -> Vec<PiiEntity> {
        let mut found = Vec::new();
        self.candidates(text, &mut found);
        if found.is_empty() {
            return Vec::new();
        }
        let map = CodePoints::new(text);
        let entities = found
            .into_iter()
            .map(|c| PiiEntity::new(c.kind, map.char_index(c.start), map.char_index(c.end), c.score))
            .collect();
        crate::overlap::resolve(entities, text)
    }
}

/// Compiles a pattern that is part of this crate's source; a failure is a bug caught by the tests.
pub(crate) fn pattern(source: &str) -> Regex {
    match Regex::new(source) {
        Ok(regex) => regex,
        Err(err) => panic!("built-in PII pattern does not compile: {err}"),
    }
}

/// The character before byte `at`, if any.
pub(crate) fn char_before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

/// The character at byte `at`, if any.
pub(crate) fn char_after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

/// Whether `needle` (lowercase ASCII) occurs in the `window` bytes before `at`, ignoring case.
pub(crate) fn context_before(text: &str, at: usize, window: usize, needles: &[&str]) -> bool {
    let mut from = at.saturating_sub(window);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let before = text[from..at].to_ascii_lowercase();
    needles.iter().any(|needle| before.contains(needle))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The `(type, matched text)` pairs the built-in recognizers report for `text`.
    pub fn found(text: &str) -> Vec<(String, String)> {
        let map = CodePoints::new(text);
        BuiltinRecognizers::new()
            .recognize(text)
            .into_iter()
            .map(|e| {
                (
                    e.kind.to_string(),
                    text[map.byte_offset(e.begin)..map.byte_offset(e.end)].to_string(),
                )
            })
            .collect()
    }

    pub fn found_of(text: &str, kind: &str) -> Vec<String> {
        found(text)
            .into_iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v)
            .collect()
    }
}
