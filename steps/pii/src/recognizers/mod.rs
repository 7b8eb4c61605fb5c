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
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TextShape {
    pub digits: usize,
    pub has_at: bool,
    pub colons: usize,
    pub has_upper: bool,
    /// Longest run of characters an AWS secret key is made of (`A-Za-z0-9/+`).
    pub longest_key_run: usize,
}

impl TextShape {
    pub fn of(text: &str) -> TextShape {
        let mut shape = TextShape::default();
        let mut run = 0usize;
        for &byte in text.as_bytes() {
            match byte {
                b'0'..=b'9' => {
                    shape.digits += 1;
                    run += 1;
                }
                b'A'..=b'Z' => {
                    shape.has_upper = true;
                    run += 1;
                }
                b'a'..=b'z' | b'/' | b'+' => run += 1,
                _ => {
                    shape.longest_key_run = shape.longest_key_run.max(run);
                    run = 0;
                    match byte {
                        b'@' => shape.has_at = true,
                        b':' => shape.colons += 1,
                        _ => {}
                    }
                }
            }
        }
        shape.longest_key_run = shape.longest_key_run.max(run);
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
