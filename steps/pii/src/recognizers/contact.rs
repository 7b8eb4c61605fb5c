//! EMAIL, PHONE (international and national formats) and URL.

use regex::Regex;

use super::{Candidate, DensePattern, RunPattern, TextShape, char_before, pattern};
use crate::entity::EntityType;

/// Words that say the number after them is a phone number (English, German, French), so ten
/// bare digits with a trunk prefix ("Tel. 0612345678") are one.
const PHONE_WORDS: &[&str] = &[
    "tel", "tél", "phone", "fon", "mobil", "handy", "fax", "portable", "call", "ruf",
];

/// Every phone match begins with a digit, `+` or `(`.
pub(super) fn phone_can_start(byte: u8) -> bool {
    byte.is_ascii_digit() || matches!(byte, b'+' | b'(')
}

pub(super) struct ContactRecognizers {
    email: EmailPattern,
    phone: DensePattern,
}

/// An address: a top-level label of 2 to 24 letters after the last dot.
const EMAIL_PATTERN: &str = r"[\p{L}\p{N}._%+'-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,24}\b";
/// [`EMAIL_PATTERN`] with the top-level label unbounded: `\p{L}{2,24}` is 24 copies of every
/// letter in Unicode, most of a PII Lambda's init to compile, while this one is quick.
const EMAIL_PATTERN_UNBOUNDED: &str = r"[\p{L}\p{N}._%+'-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}\b";

/// Finds exactly what [`EMAIL_PATTERN`] finds. Every match of it is a match of the unbounded
/// pattern, in the same priority order, so an unbounded match whose last label has at most 24
/// letters is also the bounded pattern's match; only for a longer label is the bounded pattern
/// built (once) and asked.
struct EmailPattern {
    unbounded: Regex,
    bounded: std::sync::OnceLock<Regex>,
}

impl EmailPattern {
    fn new() -> Self {
        EmailPattern {
            unbounded: pattern(EMAIL_PATTERN_UNBOUNDED),
            bounded: std::sync::OnceLock::new(),
        }
    }
}

impl RunPattern for EmailPattern {
    fn find_at(&self, haystack: &str, from: usize) -> Option<(usize, usize)> {
        let (start, end) = RunPattern::find_at(&self.unbounded, haystack, from)?;
        let last_label = haystack[start..end].rsplit('.').next().unwrap_or_default();
        if last_label.chars().count() <= 24 {
            return Some((start, end));
        }
        RunPattern::find_at(self.bounded.get_or_init(|| pattern(EMAIL_PATTERN)), haystack, from)
    }
}

impl ContactRecognizers {
    pub fn new() -> Self {
        ContactRecognizers {
            email: EmailPattern::new(),
            phone: DensePattern::phone(),
        }
    }

    pub fn find(&self, text: &str, shape: &TextShape, out: &mut Vec<Candidate>) {
        if shape.has_at {
            self.find_emails(text, out);
        }
        if shape.phone_run_digits >= 7 {
            self.find_phones(text, out);
        }
        self.find_urls(text, out);
    }

    fn find_emails(&self, text: &str, out: &mut Vec<Candidate>) {
        // An address is letters, digits and `._%+'-@` (all of them ASCII but the letters and
        // digits) around an `@`.
        let in_email = |byte: u8| {
            byte >= 0x80
                || byte.is_ascii_alphanumeric()
                || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'\'' | b'-' | b'@')
        };
        super::for_each_match_in_runs(
            &self.email,
            text,
            in_email,
            |run| run.contains(&b'@'),
            |mut start, end| {
                // A quote or dot cannot start an address; they belong to the surrounding text.
                while start < end && matches!(text.as_bytes()[start], b'\'' | b'.' | b'-') {
                    start += 1;
                }
                let address = &text[start..end];
                let Some((local, _domain)) = address.split_once('@') else {
                    return;
                };
                if local.is_empty() || local.ends_with('.') || local.contains("..") {
                    return;
                }
                out.push(Candidate {
                    kind: EntityType::Email,
                    start,
                    end,
                    score: 0.99,
                });
            },
        );
    }

    fn find_phones(&self, text: &str, out: &mut Vec<Candidate>) {
        // A phone number with its extension is made of `0-9 .-+()/`, spaces and `ext#` in
        // either case.
        let in_phone = |byte: u8| {
            byte.is_ascii_digit()
                || matches!(
                    byte,
                    b' ' | b'.' | b'-' | b'+' | b'(' | b')' | b'/' | b'e' | b'x' | b't' | b'E' | b'X' | b'T' | b'#'
                )
        };
        super::for_each_match_in_runs(
            &self.phone,
            text,
            in_phone,
            |run| super::has_digits(run, 7),
            |start, end| {
                // The number must stand alone: no letter, digit or joiner glued to either side.
                let glued_before = char_before(text, start)
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '/' | '+' | '_'));
                let after = &text[end..];
                let glued_after = after.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    || ((after.starts_with('.') || after.starts_with('-'))
                        && after[1..].starts_with(|c: char| c.is_ascii_digit()));
                if glued_before || glued_after {
                    return;
                }
                // Neither the run nor any window of it can hold the 7 digits a phone number needs.
                if text[start..end].bytes().filter(u8::is_ascii_digit).count() < 7 {
                    return;
                }
                let score = phone_score(&text[start..end]).or_else(|| {
                    (is_bare_national(&text[start..end]) && super::context_before(text, start, 20, PHONE_WORDS))
                        .then_some(0.6)
                });
                if let Some(score) = score {
                    out.push(Candidate {
                        kind: EntityType::Phone,
                        start,
                        end,
                        score,
                    });
                    return;
                }
                // A run like "2024-01-15 555-123-4567" joins a date and a phone; try the
                // space-separated windows of the run, longest first, left to right. A window
                // never takes part of a card-shaped number ("4111 1111 1111 1112"): the card
                // recognizer has turned it down, and its first groups are no phone either.
                let chunks: Vec<(usize, usize)> = space_chunks(&text[start..end], start);
                let in_card = card_shaped_chunks(text, &chunks);
                let mut first = 0;
                while first < chunks.len() {
                    let accepted = (first + 1..=chunks.len()).rev().find_map(|last| {
                        let (from, to) = (chunks[first].0, chunks[last - 1].1);
                        let window = &text[from..to];
                        let whole = first == 0 && last == chunks.len();
                        (!whole && !in_card[first..last].contains(&true))
                            .then(|| phone_score(window))
                            .flatten()
                            .map(|score| (last, from, to, score))
                    });
                    match accepted {
                        Some((last, from, to, score)) => {
                            out.push(Candidate {
                                kind: EntityType::Phone,
                                start: from,
                                end: to,
                                score,
                            });
                            first = last;
                        }
                        None => first += 1,
                    }
                }
            },
        );
    }

    fn find_urls(&self, text: &str, out: &mut Vec<Candidate>) {
        for_each_url_match(text, |start, end| {
            let end = start + trim_url_tail(&text[start..end]);
            let url = &text[start..end];
            // "www." alone or a scheme with nothing after it is not an address.
            let rest = url.split_once("://").map_or(&url[4.min(url.len())..], |(_, rest)| rest);
            if rest.len() < 3 || !rest.contains(|c: char| c.is_alphanumeric()) {
                return;
            }
            out.push(Candidate {
                kind: EntityType::Url,
                start,
                end,
                score: 0.95,
            });
        });
    }
}

/// Calls `each` with the byte range of every match of
/// `(?i)(?-u:\b)(?:https?://|ftp://|www\.)[^\s<>"'`]+`, leftmost first, found by hand: every
/// match has a `://` or `www.` whose `:` or `.` a vectorized byte search finds, so a cell without
/// one costs a scan of its bytes, not a regex search. The prefixes cannot interleave, so
/// matches come in the order of these anchors.
fn for_each_url_match(text: &str, mut each: impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    let mut searched_to = 0;
    for anchor in memchr::memchr2_iter(b':', b'.', bytes) {
        if anchor < searched_to {
            continue;
        }
        let Some((start, tail_start)) = url_prefix_around(bytes, anchor) else {
            continue;
        };
        let tail: usize = text[tail_start..]
            .chars()
            .take_while(|&c| !(c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`')))
            .map(char::len_utf8)
            .sum();
        if tail > 0 {
            each(start, tail_start + tail);
            searched_to = tail_start + tail;
        }
    }
}

/// Where a `https?://`, `ftp://` or `www.` (any case, `s` also as `ſ`, which Unicode case folding
/// pairs with it) whose `:` or `.` is at `anchor` starts at an ASCII word boundary, and where it ends.
fn url_prefix_around(bytes: &[u8], anchor: usize) -> Option<(usize, usize)> {
    // `| 0x20` lowercases ASCII letters and makes no other byte into one.
    let lower_is = |from: usize, word: &[u8]| {
        bytes
            .get(from..from + word.len())
            .is_some_and(|found| found.iter().zip(word).all(|(&b, &w)| b | 0x20 == w))
    };
    let word_start = |at: usize| at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
    let start = if bytes[anchor] == b'.' {
        let start = anchor.checked_sub(3)?;
        lower_is(start, b"www").then_some(start)
    } else {
        if bytes.get(anchor + 1..anchor + 3) != Some(b"//") {
            return None;
        }
        let s_before = |at: usize| at >= 1 && bytes[at - 1] | 0x20 == b's';
        let long_s_before = |at: usize| at >= 2 && bytes[at - 2..at] == *"\u{17F}".as_bytes();
        [(5, s_before(anchor)), (6, long_s_before(anchor)), (4, true)]
            .into_iter()
            .filter(|&(length, suffix)| suffix && anchor >= length)
            .map(|(length, _)| anchor - length)
            .find(|&start| lower_is(start, b"http"))
            .or_else(|| anchor.checked_sub(3).filter(|&start| lower_is(start, b"ftp")))
    }?;
    let end = if bytes[anchor] == b'.' { anchor + 1 } else { anchor + 3 };
    word_start(start).then_some((start, end))
}

/// Drops trailing punctuation that ends the sentence rather than the URL; a closing bracket stays
/// when the URL opened it. Returns the kept length in bytes.
fn trim_url_tail(url: &str) -> usize {
    let mut end = url.len();
    while let Some(last) = url[..end].chars().next_back() {
        let unbalanced = |open: char, close: char| {
            last == close && url[..end].matches(open).count() < url[..end].matches(close).count()
        };
        // Closing quotes (guillemets in French and German text) end the quotation, not the URL.
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '*' | '»' | '›' | '”' | '’')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
            || unbalanced('{', '}')
        {
            end -= last.len_utf8();
        } else {
            break;
        }
    }
    end
}

/// The score of a phone candidate, or `None` when its shape says it is something else (a date,
/// an SSN, an IP address, a plain count) or has too few or too many digits.
fn phone_score(candidate: &str) -> Option<f32> {
    let (number, extension) = split_extension(candidate);
    let number = number.trim_end();
    // "00" dials out only before a country code, which never starts with 0.
    let international = number.starts_with('+')
        || (number.starts_with("00") && number[2..].starts_with(|c: char| matches!(c, '1'..='9')));
    let groups = DigitGroups::of(number)?;
    let digits = groups.digits;
    // One digit over and over ("000000000", "555-555-5555") is a placeholder, not a number.
    let mut number_digits = number.bytes().filter(u8::is_ascii_digit);
    let first_digit = number_digits.next()?;
    if number_digits.all(|digit| digit == first_digit) {
        return None;
    }
    let significant = if number.starts_with("00") { digits - 2 } else { digits };
    if !(7..=15).contains(&significant) {
        return None;
    }
    let separators = Separators::of(number.trim_start_matches(['+', '(']));
    let lengths = groups.lengths();
    let group_count = lengths.len();
    let has_parens = number.contains('(');
    if !international && !has_parens && looks_like_other_number(number, lengths, &separators) {
        return None;
    }
    if international {
        return Some(if significant >= 8 { 0.9 } else { 0.6 });
    }
    if has_parens {
        return Some(if digits >= 10 { 0.9 } else { 0.7 });
    }
    // National numbers: NANP 3-3-4 or 3-4, or a trunk-prefixed 0... number in groups.
    let nanp = matches!(lengths, [3, 3, 4] | [1, 3, 3, 4]) && digits <= 11;
    let trunk = number.starts_with('0') && group_count >= 2 && (9..=12).contains(&digits);
    // Two groups and eight digits without a trunk 0 are as often a year range ("1990-2005") or an
    // article number ("4711-0815") as a local number, which a context-free guess cannot tell.
    let grouped = group_count >= 2
        && lengths.iter().all(|&l| l >= 2)
        && (8..=12).contains(&digits)
        && (group_count >= 3 || digits >= 9);
    let bare = group_count == 1 && digits == 10 && !number.starts_with(['0', '1']);
    match () {
        _ if nanp => Some(0.85 + if extension { 0.05 } else { 0.0 }),
        _ if trunk => Some(0.8),
        _ if grouped => Some(0.65),
        _ if bare => Some(0.55),
        _ => None,
    }
}

/// The lengths of the digit groups of a phone candidate, without allocating (the phone pattern
/// allows at most nine groups before an extension).
struct DigitGroups {
    lengths: [usize; 16],
    count: usize,
    digits: usize,
}

impl DigitGroups {
    /// `None` when `number` has more groups than any phone candidate can.
    fn of(number: &str) -> Option<DigitGroups> {
        let mut groups = DigitGroups {
            lengths: [0; 16],
            count: 0,
            digits: 0,
        };
        let mut in_group = false;
        for byte in number.bytes() {
            if byte.is_ascii_digit() {
                if !in_group {
                    if groups.count == groups.lengths.len() {
                        return None;
                    }
                    groups.count += 1;
                    in_group = true;
                }
                groups.lengths[groups.count - 1] += 1;
                groups.digits += 1;
            } else {
                in_group = false;
            }
        }
        Some(groups)
    }

    fn lengths(&self) -> &[usize] {
        &self.lengths[..self.count]
    }
}

/// What the spaces, dots and dashes of a phone candidate have in common.
struct Separators {
    any: bool,
    all_same: bool,
    all_dots: bool,
}

impl Separators {
    fn of(number: &str) -> Separators {
        let mut first = None;
        let mut separators = Separators {
            any: false,
            all_same: true,
            all_dots: true,
        };
        for byte in number.bytes().filter(|b| matches!(b, b' ' | b'.' | b'-')) {
            separators.any = true;
            separators.all_same &= *first.get_or_insert(byte) == byte;
            separators.all_dots &= byte == b'.';
        }
        separators
    }
}

/// Ten to twelve digits after a single trunk `0`, with no separator: a national number as
/// German and French forms write it, a phone only where a phone word precedes it.
fn is_bare_national(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    (10..=12).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_digit) && bytes[0] == b'0' && bytes[1] != b'0'
}

/// For each space chunk of a phone run, whether it is one of a sequence of digit-only chunks laid
/// out as card numbers are printed: 4-4-4-4 (and a tail of 1-3 digits), 4-4-4-1..3, 4-6-4, 4-6-5.
fn card_shaped_chunks(text: &str, chunks: &[(usize, usize)]) -> Vec<bool> {
    let length = |&(from, to): &(usize, usize)| {
        let chunk = &text.as_bytes()[from..to];
        if chunk.iter().all(u8::is_ascii_digit) {
            chunk.len()
        } else {
            0
        }
    };
    let lengths: Vec<usize> = chunks.iter().map(length).collect();
    let mut in_card = vec![false; chunks.len()];
    for first in 0..lengths.len() {
        let rest = &lengths[first..];
        let taken = match rest {
            [4, 4, 4, 4, 1..=3, ..] => 5,
            [4, 4, 4, 4, ..] => 4,
            [4, 4, 4, 1..=3, ..] => 4,
            [4, 6, 4 | 5, ..] => 3,
            _ => 0,
        };
        for flag in &mut in_card[first..first + taken] {
            *flag = true;
        }
    }
    in_card
}

/// The byte ranges (offset by `base`) of the space-separated pieces of `run`.
fn space_chunks(run: &str, base: usize) -> Vec<(usize, usize)> {
    let mut chunks = Vec::new();
    let mut from = 0;
    for (at, _) in run.match_indices(' ').chain(std::iter::once((run.len(), ""))) {
        if at > from {
            chunks.push((base + from, base + at));
        }
        from = at + 1;
    }
    chunks
}

/// The candidate before its last extension marker ("ext", else "x", else "#"), and whether it had one.
fn split_extension(candidate: &str) -> (&str, bool) {
    let bytes = candidate.as_bytes();
    let marker = bytes
        .windows(3)
        .rposition(|window| window.eq_ignore_ascii_case(b"ext"))
        .or_else(|| bytes.iter().rposition(|&b| b == b'x'))
        .or_else(|| bytes.iter().rposition(|&b| b == b'#'));
    match marker {
        Some(at) => (&candidate[..at], true),
        None => (candidate, false),
    }
}

/// Dates (4-2-2, 2-2-4), SSNs (3-2-4), dotted IPv4 addresses and version numbers share the
/// digit-group shape of phone numbers; their own recognizers claim them.
fn looks_like_other_number(number: &str, lengths: &[usize], separators: &Separators) -> bool {
    matches!(lengths, [4, 2, 2] | [2, 2, 4] | [1, 2, 4] | [2, 1, 4] | [1, 1, 4])
        || (lengths == [3, 2, 4] && separators.all_same)
        || (separators.all_dots && separators.any && lengths.iter().all(|&l| l <= 3) && lengths.len() == 4)
        || (number.len() > 40)
}

#[cfg(test)]
mod tests {
    use crate::recognizers::test_support::{found, found_of};

    #[test]
    fn emails_are_found_with_plus_tags_subdomains_and_trailing_punctuation() {
        assert_eq!(
            found_of("mail jane.doe+x@mail.example.co.uk.", "EMAIL"),
            ["jane.doe+x@mail.example.co.uk"]
        );
        assert_eq!(found_of("<o'brien@example.org>", "EMAIL"), ["o'brien@example.org"]);
        assert!(found_of("not an email: a@b, x@@y.com, user@localhost", "EMAIL").is_empty());
    }

    #[test]
    fn phones_in_international_and_national_formats_are_found() {
        for phone in [
            "+1 (555) 123-4567",
            "+44 20 7946 0958",
            "+49 30 901820",
            "+33 1 23 45 67 89",
            "0044 20 7946 0958",
            "(555) 123-4567",
            "555-123-4567",
            "555.123.4567",
            "+81-3-1234-5678",
            "020 7946 0958",
            "+91 98765 43210",
            "+861012345678",
            "555-123-4567 ext. 89",
        ] {
            let text = format!("call {phone} today");
            assert_eq!(found_of(&text, "PHONE"), [phone], "{text}");
        }
    }

    #[test]
    fn dates_ssns_ips_and_small_numbers_are_not_phones() {
        for text in [
            "on 2024-01-15 we",
            "SSN 123-45-6789",
            "host 192.168.10.20",
            "paid 1234 of 5678",
            "version 1.2.3",
            "order 12345",
            "card 4111 1111 1111 1111",
            "from 1990-2005 on",
            "Artikel 4711-0815 ist ausverkauft",
            "range 2000 3000",
        ] {
            assert!(
                found_of(text, "PHONE").is_empty(),
                "{text}: {:?}",
                found_of(text, "PHONE")
            );
        }
    }

    #[test]
    fn german_and_french_national_formats_are_phones() {
        for (text, phone) in [
            ("Rückruf unter 030/1234567 bitte", "030/1234567"),
            ("Zentrale: 089 / 12 34 56.", "089 / 12 34 56"),
            ("Büro 0221/98 76 54 32", "0221/98 76 54 32"),
            ("Fax 0711 / 2233445", "0711 / 2233445"),
            ("appelez le 01.23.45.67.89 svp", "01.23.45.67.89"),
            ("mobile 06.98.76.54.32", "06.98.76.54.32"),
            ("Zentrale 030.1234.5678, Durchwahl", "030.1234.5678"),
            ("portable 06-12-34-56-78", "06-12-34-56-78"),
            ("Tel. 0612345678", "0612345678"),
            ("phone: 0301234567", "0301234567"),
            ("Telefon 0891234567", "0891234567"),
            ("Téléphone : 0478123456", "0478123456"),
            ("Mobil: 01761234567", "01761234567"),
        ] {
            assert_eq!(found_of(text, "PHONE"), [phone], "{text}");
            assert!(
                found_of(text, "DATE_TIME").is_empty(),
                "{text}: {:?}",
                found_of(text, "DATE_TIME")
            );
        }
    }

    #[test]
    fn ten_bare_digits_are_a_phone_only_after_a_phone_word() {
        for text in ["order 0612345678", "Kundennummer 0301234567", "0891234567"] {
            assert!(
                found_of(text, "PHONE").is_empty(),
                "{text}: {:?}",
                found_of(text, "PHONE")
            );
        }
    }

    #[test]
    fn an_extension_in_any_case_belongs_to_the_phone() {
        for phone in [
            "+1 212 555 0100 Ext. 42",
            "(212) 555-0100 ext. 7",
            "(415) 555-0188 EXT 1234",
            "+44 20 7946 0958 Ext 3",
            "212-555-0100 x42",
        ] {
            let text = format!("call {phone} now");
            assert_eq!(found_of(&text, "PHONE"), [phone], "{text}");
        }
    }

    #[test]
    fn a_card_number_failing_luhn_is_neither_a_card_nor_a_phone() {
        for text in [
            "card 4111 1111 1111 1112 declined",
            "4111 1111 1111 1112",
            "Karte 5400 1234 5678 9011 abgelehnt",
            "4000 0012 3456 7891 12 25",
            "amex 3782 822463 10006",
            "4222 2222 2222 3",
            "6011-0009-9013-9425",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
        // A phone next to such a number is still found.
        assert_eq!(
            found_of("ruf 555-123-4567 4111 1111 1111 1112", "PHONE"),
            ["555-123-4567"]
        );
    }

    #[test]
    fn urls_keep_their_path_and_drop_sentence_punctuation() {
        assert_eq!(
            found_of("see https://example.com/a?b=1.", "URL"),
            ["https://example.com/a?b=1"]
        );
        assert_eq!(found_of("(www.example.org/x)", "URL"), ["www.example.org/x"]);
        assert_eq!(
            found_of("wiki https://en.wikipedia.org/wiki/Foo_(bar), ok", "URL"),
            ["https://en.wikipedia.org/wiki/Foo_(bar)"]
        );
        assert!(found_of("the www. prefix", "URL").is_empty());
        assert_eq!(
            found_of("Lien «https://exemple.fr/a?id=3» ici, “www.beispiel.de/x”", "URL"),
            ["https://exemple.fr/a?id=3", "www.beispiel.de/x"]
        );
    }

    /// The hand-written URL matcher against the pattern it replaces, on random joins of the
    /// pieces that decide a match: schemes in every case, `ſ`, boundaries, stop characters.
    #[test]
    fn the_url_matcher_finds_what_the_url_pattern_finds() {
        let pattern = super::pattern(r"(?i)(?-u:\b)(?:https?://|ftp://|www\.)[^\s<>\x22'`]+");
        let pieces = [
            "http", "HTTPS", "httpſ", "hTtP", "s", "://", ":/", "ftp", "FTP://", "www", "Www.", "WWW.", ".", " ",
            "\u{a0}", "\u{2003}", "<", ">", "\"", "'", "`", "x", "_", "9", "é", "例", "/a?b=1", "(", ")", "\n", "\x0e",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut matches = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 9 + 1) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            let expected: Vec<(usize, usize)> = pattern.find_iter(&text).map(|m| (m.start(), m.end())).collect();
            let mut found = Vec::new();
            super::for_each_url_match(&text, |start, end| found.push((start, end)));
            assert_eq!(found, expected, "{text:?}");
            matches += found.len();
        }
        assert!(
            matches > 2_000,
            "only {matches} matches: the pieces no longer make URLs"
        );
    }

    /// The two-step email search against the bounded pattern itself, from every start offset of
    /// random joins of address pieces, top-level labels around the 24-letter bound among them.
    #[test]
    fn the_email_search_finds_what_the_bounded_pattern_finds() {
        use super::RunPattern;
        let bounded = super::pattern(super::EMAIL_PATTERN);
        let email = super::EmailPattern::new();
        let long_label = "é".repeat(23);
        let pieces = [
            "a",
            "jo.doe",
            "@",
            "@@",
            ".",
            "..",
            "-",
            "+x",
            "'",
            "9",
            "mail",
            "co",
            "uk",
            "é",
            "例",
            " ",
            ",",
            "abcdefghijklmnopqrstuvwx",
            "abcdefghijklmnopqrstuvwxy",
            &long_label,
            "ab",
            "_",
        ];
        let mut state = 0x5851_f42d_4c95_7f2d_u64;
        let mut matches = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 10 + 1) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            for from in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
                let expected = RunPattern::find_at(&bounded, &text, from);
                assert_eq!(email.find_at(&text, from), expected, "{text:?} from {from}");
                matches += usize::from(expected.is_some());
            }
        }
        assert!(
            matches > 2_000,
            "only {matches} matches: the pieces no longer make addresses"
        );
        // A last label past the bound: the bounded pattern settles for the address before it.
        let text = "jo@mail.co.abcdefghijklmnopqrstuvwxy";
        assert_eq!(email.find_at(text, 0), Some((0, "jo@mail.co".len())));
    }
}
