//! CREDIT_DEBIT_NUMBER (Luhn and issuer prefixes), SSN (the SSA's never-issued ranges) and
//! INTERNATIONAL_BANK_ACCOUNT_NUMBER (per-country length and ISO 7064 mod-97).

use regex::Regex;

use super::{Candidate, DensePattern, TextShape, char_after, char_before, context_before, pattern};
use crate::entity::EntityType;

pub(super) struct FinancialRecognizers {
    card: DensePattern,
    ssn: Regex,
    bare_ssn: Regex,
    ssn_context: Regex,
    iban: Regex,
}

impl FinancialRecognizers {
    pub fn new() -> Self {
        FinancialRecognizers {
            card: DensePattern::card(),
            ssn: pattern(r"(?-u:\b)[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} )[0-9]{4}(?-u:\b)"),
            bare_ssn: pattern(r"(?-u:\b)[0-9]{9}(?-u:\b)"),
            ssn_context: pattern(r"(?i)ssn|social security"),
            // ASCII-only: under Unicode case folding `[A-Z]` also takes 'ſ' and the Kelvin sign,
            // whose multi-byte encodings the country and length slicing below cannot split.
            iban: pattern(r"(?i-u:\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32})"),
        }
    }

    pub fn find(&self, text: &str, shape: &TextShape, out: &mut Vec<Candidate>) {
        if shape.card_run_digits >= 13 {
            self.find_cards(text, out);
        }
        if shape.ssn_groups {
            self.find_grouped_ssns(text, out);
        }
        if shape.nine_digit_run {
            self.find_bare_ssns(text, out);
        }
        if shape.iban_start && text.len() >= 15 {
            self.find_ibans(text, out);
        }
    }

    fn find_cards(&self, text: &str, out: &mut Vec<Candidate>) {
        // A card number is digits joined by single spaces or dashes.
        let in_card = |byte: u8| byte.is_ascii_digit() || matches!(byte, b' ' | b'-');
        super::for_each_match_in_runs(
            &self.card,
            text,
            in_card,
            |run| super::has_digits(run, 13),
            |start, end| {
                if char_before(text, start).is_some_and(|c| matches!(c, '-' | '.' | '+'))
                    || char_after(text, end).is_some_and(|c| matches!(c, '-'))
                {
                    return;
                }
                // Card numbers have at least 13 digits.
                if text[start..end].bytes().filter(u8::is_ascii_digit).count() < 13 {
                    return;
                }
                // Greedy matching may take a trailing group (an expiry, a count); drop groups from
                // the end until a valid card number remains.
                let groups = digit_groups(&text[start..end]);
                for last in (1..=groups.len()).rev() {
                    // Card numbers end in a group of at least three digits (4-4-4-4, 4-6-5, 4-4-4-4-3).
                    if last > 1 && groups[last - 1].1 - groups[last - 1].0 < 3 {
                        continue;
                    }
                    let (from, to) = (start + groups[0].0, start + groups[last - 1].1);
                    if let Some(score) = card_score(&text[from..to]) {
                        out.push(Candidate {
                            kind: EntityType::CreditDebitNumber,
                            start: from,
                            end: to,
                            score,
                        });
                        break;
                    }
                }
            },
        );
    }

    fn find_grouped_ssns(&self, text: &str, out: &mut Vec<Candidate>) {
        for found in self.ssn.find_iter(text) {
            let (start, end) = (found.start(), found.end());
            if char_before(text, start).is_some_and(|c| matches!(c, '-' | '.' | '+' | '/'))
                || char_after(text, end).is_some_and(|c| matches!(c, '-' | '/'))
                || (char_after(text, end) == Some('.') && text[end + 1..].starts_with(|c: char| c.is_ascii_digit()))
            {
                continue;
            }
            let candidate = found.as_str();
            if !ssn_is_valid(candidate) {
                continue;
            }
            let dashed = candidate.contains('-');
            out.push(Candidate {
                kind: EntityType::Ssn,
                start,
                end,
                score: if dashed { 0.95 } else { 0.85 },
            });
        }
    }

    /// Nine bare digits are an SSN only where the text says so.
    fn find_bare_ssns(&self, text: &str, out: &mut Vec<Candidate>) {
        if self.ssn_context.is_match(text) {
            for found in self.bare_ssn.find_iter(text) {
                if ssn_is_valid(found.as_str()) && context_before(text, found.start(), 40, &["ssn", "social security"])
                {
                    out.push(Candidate {
                        kind: EntityType::Ssn,
                        start: found.start(),
                        end: found.end(),
                        score: 0.8,
                    });
                }
            }
        }
    }

    fn find_ibans(&self, text: &str, out: &mut Vec<Candidate>) {
        for found in self.iban.find_iter(text) {
            let start = found.start();
            let candidate = found.as_str();
            let country = candidate[..2].to_ascii_uppercase();
            let Some(length) = iban_length(&country) else {
                continue;
            };
            // Take exactly the country's length of characters (single spaces allowed between).
            let mut taken = 0;
            let mut end = start;
            for (at, c) in candidate.char_indices() {
                if c != ' ' {
                    taken += 1;
                    if taken == length {
                        end = start + at + 1;
                        break;
                    }
                }
            }
            if taken != length || char_after(text, end).is_some_and(|c| c.is_alphanumeric()) {
                continue;
            }
            if iban_checksum_is_valid(&text[start..end]) {
                out.push(Candidate {
                    kind: EntityType::Iban,
                    start,
                    end,
                    score: 0.99,
                });
            }
        }
    }
}

/// Byte ranges of the digit groups of a run such as "4111 1111-1111".
fn digit_groups(run: &str) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut from = None;
    for (at, byte) in run.bytes().enumerate() {
        match (byte.is_ascii_digit(), from) {
            (true, None) => from = Some(at),
            (false, Some(begin)) => {
                groups.push((begin, at));
                from = None;
            }
            _ => {}
        }
    }
    if let Some(begin) = from {
        groups.push((begin, run.len()));
    }
    groups
}

/// The score of a card-number candidate: 13 to 19 digits, one kind of separator, a Luhn
/// checksum, and a known issuer prefix for the higher score.
fn card_score(candidate: &str) -> Option<f32> {
    let digits: Vec<u8> = candidate.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    if !(13..=19).contains(&digits.len()) {
        return None;
    }
    let separators: Vec<u8> = candidate.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if separators.windows(2).any(|pair| pair[0] != pair[1]) {
        return None;
    }
    if !luhn_is_valid(&digits) || digits.iter().all(|&d| d == digits[0]) {
        return None;
    }
    Some(if has_issuer_prefix(&digits) { 0.97 } else { 0.7 })
}

/// The Luhn (mod 10) checksum over decimal digits.
pub(crate) fn luhn_is_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn has_issuer_prefix(digits: &[u8]) -> bool {
    let prefix = |n: usize| digits.iter().take(n).fold(0u32, |acc, &d| acc * 10 + u32::from(d));
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    p1 == 4                                   // Visa
        || (51..=55).contains(&p2)            // Mastercard
        || (2221..=2720).contains(&p4)        // Mastercard 2-series
        || p2 == 34 || p2 == 37               // American Express
        || p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (622126..=622925).contains(&p6) // Discover
        || (3528..=3589).contains(&p4)        // JCB
        || p2 == 36 || p2 == 38 || p2 == 39 || (300..=305).contains(&p3) // Diners Club
        || p2 == 62                           // UnionPay
        || p2 == 50 || (56..=69).contains(&p2) // Maestro and other debit ranges
}

/// SSA rules: area 000, 666 and 900-999, group 00 and serial 0000 were never issued; a few
/// numbers were published in advertising and are void, and one digit nine times (111-11-1111)
/// is a placeholder, never an issued number.
pub(crate) fn ssn_is_valid(candidate: &str) -> bool {
    let digits: String = candidate.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 9 {
        return false;
    }
    if digits.bytes().all(|digit| digit == digits.as_bytes()[0]) {
        return false;
    }
    let (area, group, serial) = (&digits[..3], &digits[3..5], &digits[5..]);
    let area_number: u32 = area.parse().unwrap_or(0);
    area_number != 0
        && area_number != 666
        && area_number < 900
        && group != "00"
        && serial != "0000"
        && !matches!(digits.as_str(), "078051120" | "219099999" | "123456789")
}

/// The IBAN length of each country in the SWIFT IBAN registry.
fn iban_length(country: &str) -> Option<usize> {
    const LENGTHS: &[(&str, usize)] = &[
        ("AD", 24),
        ("AE", 23),
        ("AL", 28),
        ("AT", 20),
        ("AZ", 28),
        ("BA", 20),
        ("BE", 16),
        ("BG", 22),
        ("BH", 22),
        ("BI", 27),
        ("BR", 29),
        ("BY", 28),
        ("CH", 21),
        ("CR", 22),
        ("CY", 28),
        ("CZ", 24),
        ("DE", 22),
        ("DJ", 27),
        ("DK", 18),
        ("DO", 28),
        ("EE", 20),
        ("EG", 29),
        ("ES", 24),
        ("FI", 18),
        ("FK", 18),
        ("FO", 18),
        ("FR", 27),
        ("GB", 22),
        ("GE", 22),
        ("GI", 23),
        ("GL", 18),
        ("GR", 27),
        ("GT", 28),
        ("HR", 21),
        ("HU", 28),
        ("IE", 22),
        ("IL", 23),
        ("IQ", 23),
        ("IS", 26),
        ("IT", 27),
        ("JO", 30),
        ("KW", 30),
        ("KZ", 20),
        ("LB", 28),
        ("LC", 32),
        ("LI", 21),
        ("LT", 20),
        ("LU", 20),
        ("LV", 21),
        ("LY", 25),
        ("MC", 27),
        ("MD", 24),
        ("ME", 22),
        ("MK", 19),
        ("MN", 20),
        ("MR", 27),
        ("MT", 31),
        ("MU", 30),
        ("NI", 28),
        ("NL", 18),
        ("NO", 15),
        ("OM", 23),
        ("PK", 24),
        ("PL", 28),
        ("PS", 29),
        ("PT", 25),
        ("QA", 29),
        ("RO", 24),
        ("RS", 22),
        ("RU", 33),
        ("SA", 24),
        ("SC", 31),
        ("SD", 18),
        ("SE", 24),
        ("SI", 19),
        ("SK", 24),
        ("SM", 27),
        ("SO", 23),
        ("ST", 25),
        ("SV", 28),
        ("TL", 23),
        ("TN", 24),
        ("TR", 26),
        ("UA", 29),
        ("VA", 22),
        ("VG", 24),
        ("XK", 20),
        ("YE", 30),
    ];
    LENGTHS
        .iter()
        .find(|(code, _)| *code == country)
        .map(|&(_, length)| length)
}

/// ISO 7064 mod 97-10: move the first four characters to the end, letters to 10..35, and the
/// number must leave remainder 1.
pub(crate) fn iban_checksum_is_valid(iban: &str) -> bool {
    let compact: Vec<char> = iban
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if compact.len() < 5 {
        return false;
    }
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for c in rotated {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        remainder = if value < 10 {
            (remainder * 10 + value) % 97
        } else {
            (remainder * 100 + value) % 97
        };
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use crate::recognizers::test_support::{found, found_of};

    #[test]
    fn card_numbers_need_a_luhn_checksum_and_keep_their_separators() {
        assert_eq!(
            found_of("card 4111 1111 1111 1111 exp", "CREDIT_DEBIT_NUMBER"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            found_of("amex 3782-822463-10005.", "CREDIT_DEBIT_NUMBER"),
            ["3782-822463-10005"]
        );
        assert_eq!(
            found_of("5555555555554444", "CREDIT_DEBIT_NUMBER"),
            ["5555555555554444"]
        );
        assert!(found_of("card 4111 1111 1111 1112", "CREDIT_DEBIT_NUMBER").is_empty());
        assert!(found_of("0000 0000 0000 0000", "CREDIT_DEBIT_NUMBER").is_empty());
    }

    #[test]
    fn a_trailing_group_after_a_card_number_is_left_out() {
        assert_eq!(
            found_of("4111 1111 1111 1111 12 25", "CREDIT_DEBIT_NUMBER"),
            ["4111 1111 1111 1111"]
        );
    }

    #[test]
    fn ssns_in_never_issued_ranges_are_rejected() {
        assert_eq!(found_of("ssn 536-22-1234", "SSN"), ["536-22-1234"]);
        for invalid in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "536-00-1234",
            "536-22-0000",
            "078-05-1120",
        ] {
            assert!(found_of(&format!("ssn {invalid}"), "SSN").is_empty(), "{invalid}");
        }
        assert_eq!(found_of("social security number: 536221234", "SSN"), ["536221234"]);
        assert!(found_of("invoice 536221234", "SSN").is_empty());
    }

    #[test]
    fn placeholder_and_advertised_ssns_are_never_reported() {
        let mut placeholders: Vec<String> = (1..=9).map(|d| format!("{d}{d}{d}-{d}{d}-{d}{d}{d}{d}")).collect();
        placeholders.extend((0..=9).map(|d| d.to_string().repeat(9)));
        placeholders.extend(
            [
                "078-05-1120",
                "219-09-9999",
                "123-45-6789",
                "078 05 1120",
                "219099999",
                "123456789",
            ]
            .map(String::from),
        );
        placeholders.extend(["444 44 4444", "777-77-7777"].map(String::from));
        for placeholder in &placeholders {
            for text in [
                format!("ssn {placeholder}"),
                format!("Social Security: {placeholder}."),
                format!("SSN={placeholder}"),
            ] {
                assert!(found(&text).is_empty(), "{text}: {:?}", found(&text));
            }
        }
        // Near misses of the placeholders are ordinary numbers.
        assert_eq!(found_of("ssn 111-11-1112", "SSN"), ["111-11-1112"]);
        assert_eq!(found_of("ssn 078-05-1121", "SSN"), ["078-05-1121"]);
    }

    #[test]
    fn ibans_need_the_country_length_and_mod_97() {
        assert_eq!(
            found_of(
                "pay to DE89 3704 0044 0532 0130 00 now",
                "INTERNATIONAL_BANK_ACCOUNT_NUMBER"
            ),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            found_of("GB82WEST12345698765432", "INTERNATIONAL_BANK_ACCOUNT_NUMBER"),
            ["GB82WEST12345698765432"]
        );
        assert!(found_of("DE89 3704 0044 0532 0130 01", "INTERNATIONAL_BANK_ACCOUNT_NUMBER").is_empty());
        assert!(found_of("ZZ89370400440532013000", "INTERNATIONAL_BANK_ACCOUNT_NUMBER").is_empty());
    }

    #[test]
    fn letters_that_fold_to_ascii_do_not_break_iban_slicing() {
        for text in [
            "a\u{212A}12 3456 7890 1234 5678 90",
            "\u{17F}E89 3704 0044 0532 0130 00",
            "DE89 3704 0044 0532 0130 0\u{212A}",
        ] {
            assert!(found_of(text, "INTERNATIONAL_BANK_ACCOUNT_NUMBER").is_empty(), "{text}");
        }
    }
}
