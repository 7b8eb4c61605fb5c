//! The built-in recognizers: regular expressions that find candidates, and checksums or range
//! rules that confirm them (Luhn, mod-97, SSN ranges, address parsers). They report Comprehend's
//! type names with a score, so they stand in for Comprehend in local runs.

mod contact;
mod credentials;
mod datetime;
mod dense_sources;
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
/// run of digits, spaces, dots, dashes, plus signs, parentheses and slashes; an IPv4 address is three
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
    /// Most digits in one run of `0-9 .-+()/` (where a phone number lives).
    pub phone_run_digits: usize,
    /// Most digits in one run of `0-9 -` (where card numbers and grouped SSNs live).
    pub card_run_digits: usize,
    /// Some run of digits is exactly nine long (a bare SSN).
    pub nine_digit_run: bool,
    /// Most "digit then dot" pairs in one run of `0-9.` (an IPv4 address has three).
    pub dotted_run_dots: usize,
    /// Digit runs of 1-4, 1-2 and 2+ digits joined by single `/`, `.` or `-` (a numeric date).
    pub numeric_date: bool,
    /// A run of one or two digits, a colon and two digits (a clock time).
    pub clock_time: bool,
    /// A digit, an optional space, then `am` or `pm` in any case, the `m` perhaps after a dot
    /// ("3pm", "10 A.M.").
    pub digit_meridiem: bool,
    /// Two ASCII letters followed by two digits (how an IBAN starts).
    pub iban_start: bool,
    /// A month's first three letters where a date with a month name would put them: ending a
    /// word right before " <digit>" ("March 5", "Sep. 2024"), or after a number and an optional
    /// ordinal and "of" ("5 March", "3rd of March").
    pub month_near_number: bool,
    /// Maximal digit runs of 3, 2 and 4 digits joined by the same single dash or space (an SSN).
    pub ssn_groups: bool,
}

/// Byte classes for [`TextShape::of`]: what each byte is, and which runs it continues.
const DIGIT: u16 = 1;
const UPPER: u16 = 1 << 1;
const AT_SIGN: u16 = 1 << 2;
const COLON: u16 = 1 << 3;
const DASH: u16 = 1 << 4;
const DOT: u16 = 1 << 5;
/// `0-9 .-+()/` (phone numbers).
const PHONE_RUN: u16 = 1 << 6;
/// `0-9 -` (card numbers, grouped SSNs).
const CARD_RUN: u16 = 1 << 7;
/// `0-9.` (IPv4 addresses).
const DOTTED_RUN: u16 = 1 << 8;
/// Digits and the punctuation numbers are written with (`.-+()/:` and space).
const NUMBER: u16 = 1 << 9;

const BYTE_CLASS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut index = 0;
    while index < 256 {
        let byte = index as u8;
        let mut class = 0;
        if byte.is_ascii_digit() {
            class |= DIGIT | PHONE_RUN | CARD_RUN | DOTTED_RUN | NUMBER;
        }
        if byte.is_ascii_uppercase() {
            class |= UPPER;
        }
        class |= match byte {
            b'@' => AT_SIGN,
            b':' => COLON | NUMBER,
            b'-' => DASH | PHONE_RUN | CARD_RUN | NUMBER,
            b'.' => DOT | PHONE_RUN | DOTTED_RUN | NUMBER,
            b' ' => PHONE_RUN | CARD_RUN | NUMBER,
            b'+' => PHONE_RUN | NUMBER,
            b'/' => PHONE_RUN | NUMBER,
            b'(' | b')' => PHONE_RUN | NUMBER,
            _ => 0,
        };
        table[index] = class;
        index += 1;
    }
    table
};

impl TextShape {
    /// A short pass over every byte for the classes present, then a
    /// closer look only at the stretches around digits, where the number-shaped patterns live.
    pub fn of(text: &str) -> TextShape {
        let bytes = text.as_bytes();
        let seen = bytes
            .iter()
            .fold(0u16, |seen, &byte| seen | BYTE_CLASS[usize::from(byte)]);
        let count = |present: u16, needle: u8| {
            if seen & present == 0 {
                0
            } else {
                bytes.iter().filter(|&&byte| byte == needle).count()
            }
        };
        let mut shape = TextShape {
            has_at: seen & AT_SIGN != 0,
            has_upper: seen & UPPER != 0,
            colons: count(COLON, b':'),
            dashes: count(DASH, b'-'),
            dots: count(DOT, b'.'),
            ..TextShape::default()
        };
        if seen & DIGIT != 0 {
            let mut at = 0;
            while let Some(offset) = bytes[at..].iter().position(u8::is_ascii_digit) {
                at = shape.scan_number(bytes, at + offset);
            }
        }
        shape
    }

    /// Walks the stretch of digits and number punctuation that starts with the digit at `start`
    /// and returns where it ends. The byte before `start` is not a digit and no digit-carrying
    /// run reaches across it, so every run count starts from zero here.
    fn scan_number(&mut self, bytes: &[u8], start: usize) -> usize {
        let letter_at = |at: Option<usize>| at.and_then(|at| bytes.get(at)).is_some_and(u8::is_ascii_alphabetic);
        if letter_at(start.checked_sub(1))
            && letter_at(start.checked_sub(2))
            && bytes.get(start + 1).is_some_and(u8::is_ascii_digit)
        {
            self.iban_start = true;
        }
        if start >= 2 && bytes[start - 1] == b' ' && !self.month_near_number {
            // The word before the space (and an optional dot) may be a month name of 3-9 letters.
            let word_end = if bytes[start - 2] == b'.' { start - 2 } else { start - 1 };
            self.month_near_number =
                (3..=9).any(|length| word_end >= length && datetime::month_at(bytes, word_end - length));
        }
        // Whole digit runs at a time, then one punctuation byte: digits only extend the runs.
        let (mut phone_run, mut card_run, mut dotted_run) = (0usize, 0usize, 0usize);
        // The last two finished digit runs (byte ranges).
        let mut finished = [(0usize, 0usize); 2];
        let mut at = start;
        loop {
            let run_start = at;
            while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            let digits = at - run_start;
            if digits > 0 {
                self.digits += digits;
                phone_run += digits;
                card_run += digits;
                self.phone_run_digits = self.phone_run_digits.max(phone_run);
                self.card_run_digits = self.card_run_digits.max(card_run);
                self.finish_digit_run(bytes, &mut finished, (run_start, at));
            }
            let Some(&byte) = bytes.get(at) else {
                break;
            };
            let class = BYTE_CLASS[usize::from(byte)];
            if class & NUMBER == 0 {
                break;
            }
            self.clock_time |= byte == b':'
                && (1..=2).contains(&digits)
                && bytes
                    .get(at + 1..at + 3)
                    .is_some_and(|next| next.iter().all(u8::is_ascii_digit));
            phone_run *= usize::from(class & PHONE_RUN != 0);
            card_run *= usize::from(class & CARD_RUN != 0);
            dotted_run = (dotted_run + usize::from(byte == b'.' && digits > 0)) * usize::from(class & DOTTED_RUN != 0);
            self.dotted_run_dots = self.dotted_run_dots.max(dotted_run);
            at += 1;
        }
        // The stretch starts with a digit, so `at > start`; bytes before it are no digits.
        let prev = bytes[at - 1];
        let prev2 = if at >= start + 2 { bytes[at - 2] } else { 0 };
        // A letter ends the stretch; "3pm" and "10 AM" put the meridiem right here.
        let m_at = |at: usize| bytes.get(at).is_some_and(|&byte| byte | 0x20 == b'm');
        if bytes.get(at).is_some_and(|&byte| matches!(byte | 0x20, b'a' | b'p'))
            && (prev.is_ascii_digit() || (prev == b' ' && prev2.is_ascii_digit()))
            && (m_at(at + 1) || (bytes.get(at + 1) == Some(&b'.') && m_at(at + 2)))
        {
            self.digit_meridiem = true;
        }
        at
    }

    /// Notes a maximal digit run `run` (a byte range) that follows the `finished` two.
    fn finish_digit_run(&mut self, bytes: &[u8], finished: &mut [(usize, usize); 2], run: (usize, usize)) {
        let [(start1, end1), (start2, end2)] = *finished;
        let date_separator = |at: usize| matches!(bytes[at], b'/' | b'.' | b'-');
        // "5 March", "5th March", "5 of March", "5th of March".
        self.month_near_number |= [1, 3, 4, 6]
            .iter()
            .any(|offset| datetime::month_at(bytes, run.1 + offset));
        self.nine_digit_run |= run.1 - run.0 == 9;
        self.numeric_date |= run.1 - run.0 >= 2
            && (1..=2).contains(&(end2 - start2))
            && (1..=4).contains(&(end1 - start1))
            && end2 + 1 == run.0
            && end1 + 1 == start2
            && date_separator(end1)
            && date_separator(end2);
        self.ssn_groups |= run.1 - run.0 == 4
            && end2 - start2 == 2
            && end1 - start1 == 3
            && end2 + 1 == run.0
            && end1 + 1 == start2
            && bytes[end1] == bytes[end2]
            && matches!(bytes[end1], b'-' | b' ');
        *finished = [finished[1], run];
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
        self.candidates_in_shape(text, &TextShape::of(text), out);
    }

    fn candidates_in_shape(&self, text: &str, shape: &TextShape, out: &mut Vec<Candidate>) {
        self.contact.find(text, shape, out);
        self.financial.find(text, shape, out);
        self.network.find(text, shape, out);
        self.datetime.find(text, shape, out);
        self.credentials.find(text, shape, out);
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

/// The full DFAs `build.rs` compiled from [`dense_sources`], as little-endian bytes aligned for
/// zero-copy deserialization.
#[repr(C)]
struct AlignedDfa<B: ?Sized> {
    _align: [u32; 0],
    bytes: B,
}

macro_rules! embedded_dfa {
    ($file:literal) => {{
        static DFA: &AlignedDfa<[u8]> = &AlignedDfa {
            _align: [],
            bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/", $file)),
        };
        &DFA.bytes
    }};
}

type EmbeddedDfa = regex_automata::dfa::dense::DFA<&'static [u32]>;

/// A pattern compiled to a full (dense) DFA: no per-search setup beyond a start state, for the
/// short runs [`for_each_match_in_runs`] searches many times per cell. Only for ASCII patterns
/// with ASCII word boundaries, which keep the DFA small (tens of KiB). The DFAs are built at
/// compile time and only deserialized here (building them took most of a PII Lambda's init).
pub(crate) struct DensePattern {
    dfa: regex_automata::dfa::regex::Regex<EmbeddedDfa>,
    /// Whether a byte can begin a match (every match's first byte passes).
    can_start: fn(u8) -> bool,
    source: &'static str,
    /// The same pattern for the regex crate, built only should the DFA ever refuse a search.
    fallback: std::sync::OnceLock<Regex>,
}

impl DensePattern {
    /// The phone pattern ([`dense_sources::PHONE_PATTERN`]).
    pub fn phone() -> Self {
        let dfas = (embedded_dfa!("phone.forward.dfa"), embedded_dfa!("phone.reverse.dfa"));
        DensePattern::embedded(dfas, dense_sources::PHONE_PATTERN, contact::phone_can_start)
    }

    /// The card-number pattern ([`dense_sources::CARD_PATTERN`]).
    pub fn card() -> Self {
        let dfas = (embedded_dfa!("card.forward.dfa"), embedded_dfa!("card.reverse.dfa"));
        DensePattern::embedded(dfas, dense_sources::CARD_PATTERN, |byte| byte.is_ascii_digit())
    }

    fn embedded(
        (forward, reverse): (&'static [u8], &'static [u8]),
        source: &'static str,
        can_start: fn(u8) -> bool,
    ) -> Self {
        let load = |bytes: &'static [u8]| match EmbeddedDfa::from_bytes(bytes) {
            Ok((dfa, _)) => dfa,
            Err(err) => panic!("the DFA build.rs compiled from {source:?} does not load: {err}"),
        };
        DensePattern {
            dfa: regex_automata::dfa::regex::Regex::builder().build_from_dfas(load(forward), load(reverse)),
            can_start,
            source,
            fallback: std::sync::OnceLock::new(),
        }
    }

    fn try_find_at(&self, haystack: &str, from: usize) -> Result<Option<(usize, usize)>, regex_automata::MatchError> {
        use regex_automata::dfa::Automaton;
        use regex_automata::{Anchored, Input};
        // No match starts before the first byte that can begin one; a match that starts there is
        // the leftmost, and a forward search anchored there finds its end without the reverse
        // pass an unanchored search needs to find where a match starts.
        let Some(first) = haystack.as_bytes()[from..]
            .iter()
            .position(|&byte| (self.can_start)(byte))
        else {
            return Ok(None);
        };
        let from = from + first;
        let anchored = Input::new(haystack).range(from..).anchored(Anchored::Yes);
        if let Some(end) = self.dfa.forward().try_search_fwd(&anchored)? {
            return Ok(Some((from, end.offset())));
        }
        let found = self.dfa.try_search(&Input::new(haystack).range(from..))?;
        Ok(found.map(|found| (found.start(), found.end())))
    }
}

/// What [`for_each_match_in_runs`] needs of a pattern: the leftmost-first match at or after
/// `from`, with the whole haystack visible to look-around.
pub(crate) trait RunPattern {
    fn find_at(&self, haystack: &str, from: usize) -> Option<(usize, usize)>;
}

impl RunPattern for Regex {
    fn find_at(&self, haystack: &str, from: usize) -> Option<(usize, usize)> {
        Regex::find_at(self, haystack, from).map(|found| (found.start(), found.end()))
    }
}

impl RunPattern for DensePattern {
    fn find_at(&self, haystack: &str, from: usize) -> Option<(usize, usize)> {
        match self.try_find_at(haystack, from) {
            Ok(found) => found,
            // A DFA without quit bytes does not refuse; should it, the regex crate answers.
            Err(_) => RunPattern::find_at(self.fallback.get_or_init(|| pattern(self.source)), haystack, from),
        }
    }
}

/// Calls `each` with the byte range of every match `regex.find_iter(text)` would report that
/// lies in a maximal run of `in_run` bytes that `keep_run` accepts, in order.
///
/// Only for patterns whose every match is made of `in_run` bytes (a run never splits a
/// character: non-ASCII bytes are all in or all out) and whose callers drop every match that
/// `keep_run` would reject as a whole run: then no match crosses a run's edge, a rejected run
/// only yields dropped matches, and searching each accepted run from its start finds exactly
/// what the full scan finds there. `keep_run` must also reject every part of a run it rejects
/// (the rest of a run too short to hold a kept match is not searched). The haystack keeps
/// everything before the run and the character after it, so word boundaries see the same
/// neighbours.
pub(crate) fn for_each_match_in_runs(
    regex: &impl RunPattern,
    text: &str,
    in_run: impl Fn(u8) -> bool,
    keep_run: impl Fn(&[u8]) -> bool,
    mut each: impl FnMut(usize, usize),
) {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if !in_run(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && in_run(bytes[at]) {
            at += 1;
        }
        if !keep_run(&bytes[start..at]) {
            continue;
        }
        let window_end = at + char_after(text, at).map_or(0, char::len_utf8);
        let haystack = &text[..window_end];
        let mut from = start;
        while let Some((found_start, found_end)) = regex.find_at(haystack, from) {
            each(found_start, found_end);
            // These patterns never match empty text, so the search moves on; a later match lies
            // in the rest of the run, so a rest that `keep_run` rejects holds only dropped ones.
            from = found_end;
            if !keep_run(&bytes[from.min(at)..at]) {
                break;
            }
        }
    }
}

/// Whether `run` holds at least `count` ASCII digits.
pub(crate) fn has_digits(run: &[u8], count: usize) -> bool {
    run.iter().filter(|byte| byte.is_ascii_digit()).count() >= count
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

    /// Built once: compiling the patterns is most of a test's time in debug builds.
    static RECOGNIZERS: std::sync::LazyLock<BuiltinRecognizers> = std::sync::LazyLock::new(BuiltinRecognizers::new);

    /// The `(type, matched text)` pairs the built-in recognizers report for `text`.
    pub fn found(text: &str) -> Vec<(String, String)> {
        let map = CodePoints::new(text);
        RECOGNIZERS
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A shape that lets every recognizer run.
    fn permissive() -> TextShape {
        TextShape {
            digits: usize::MAX,
            has_at: true,
            colons: usize::MAX,
            dashes: usize::MAX,
            dots: usize::MAX,
            has_upper: true,
            phone_run_digits: usize::MAX,
            card_run_digits: usize::MAX,
            nine_digit_run: true,
            dotted_run_dots: usize::MAX,
            numeric_date: true,
            clock_time: true,
            digit_meridiem: true,
            iban_start: true,
            month_near_number: true,
            ssn_groups: true,
        }
    }

    #[test]
    fn the_shape_prefilter_never_hides_a_candidate() {
        let values = [
            "ana.smith+x@mail.example.co.uk",
            "+1 (555) 123-4567",
            "0044 20 7946 0958",
            "555.123.4567 ext. 89",
            "555-123-4567 x12",
            "020 7946 0958 #5",
            "4111 1111 1111 1111",
            "3782-822463-10005",
            "536-22-1234",
            "536 22 1234",
            "ssn 536221234",
            "DE89 3704 0044 0532 0130 00",
            "gb82west12345698765432",
            "192.168.1.20",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.128",
            "00:1A:2B:3C:4D:5E",
            "00-1a-2b-3c-4d-5e",
            "001a.2b3c.4d5e",
            "https://example.com/a?b=1",
            "WWW.example.org/x",
            "2024-01-15T10:30:00Z",
            "01/15/2024",
            "15.01.2024",
            "1/5/24",
            "January 15, 2024",
            "SEP. 5th, 2024 at 10:30 PM",
            "3rd of March 2023",
            "15TH OF MARCH",
            "5 may",
            "March 2024",
            "10:30",
            "3pm",
            "10 A.M.",
            "23:59:59.123 UTC",
            "1\u{17F}t of \u{17F}ep",
            "aws_access_key_id=AKIAIOSFODNN7EXAMPLE",
            "secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "Version 2.4.1 and 12345 and 3:2",
            "030/1234567",
            "089 / 12 34 56",
            "01.23.45.67.89",
            "Tel. 0612345678",
            "+1 212 555 0100 Ext. 42",
            "Tue, 1 Dec 2026 14:05:09 +0100",
            "1 Dec 2026 14:05 GMT",
            "01-Dec-2026",
            "1/December/26",
            "Wednesday, Dec 2, 2026",
            "4111 1111 1111 1112",
        ];
        let recognizers = BuiltinRecognizers::new();
        for value in values {
            for text in [
                value.to_string(),
                format!("Note (café): {value}; ok"),
                format!("x{value}."),
            ] {
                let (mut gated, mut ungated) = (Vec::new(), Vec::new());
                recognizers.candidates(&text, &mut gated);
                recognizers.candidates_in_shape(&text, &permissive(), &mut ungated);
                assert_eq!(gated, ungated, "{text}");
            }
        }
    }

    /// The dense-DFA searches against the regex crate's on the same patterns, from every start
    /// offset of random joins of digits, separators, letters and non-ASCII text.
    #[test]
    fn dense_patterns_find_what_the_regex_crate_finds() {
        let patterns = [
            (DensePattern::phone(), dense_sources::PHONE_PATTERN),
            (DensePattern::card(), dense_sources::CARD_PATTERN),
        ];
        let pieces = [
            "0", "00", "1", "44", "555", "1234", "4111", "98765432", " ", "-", ".", "+", "(", ")", "ext", "x", "#",
            "a", "é", "_", "/", "  ", " / ", "Ext.", "EXT", "030/",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut matches = 0;
        for (dense, source) in patterns {
            let regex = pattern(source);
            for _ in 0..5_000 {
                let mut text = String::new();
                for _ in 0..(state % 12 + 1) {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
                }
                for from in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
                    let expected = RunPattern::find_at(&regex, &text, from);
                    assert_eq!(dense.find_at(&text, from), expected, "{source} in {text:?} from {from}");
                    matches += usize::from(expected.is_some());
                }
            }
        }
        assert!(
            matches > 10_000,
            "only {matches} matches: the pieces no longer make numbers"
        );
    }
}
