//! DATE_TIME: ISO 8601, numeric dates (day-first and month-first), dates with month names, and
//! clock times.

use regex::Regex;

use super::{Candidate, TextShape, char_after, char_before, pattern};
use crate::entity::EntityType;

pub(super) struct DateTimeRecognizer {
    date: Regex,
}

const MONTH: &str = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
/// The zones RFC 2822 names (UT, GMT, the US ones) besides UTC, Z and numeric offsets.
const TIME: &str = r"(?:[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:\ ?[ap]\.?m\.?)?(?:\ ?(?:z|utc|gmt|ut|[ecmp][sd]t|[+-][0-9]{2}:?[0-9]{2}))?|[0-9]{1,2}\ ?[ap]\.?m\.?)";
/// A leading day name, as RFC 2822 writes it ("Tue, 1 Dec 2026") or spelled out.
const WEEKDAY: &str = r"(?:(?:mon|tue(?:s)?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?,?\ )?";

impl DateTimeRecognizer {
    pub fn new() -> Self {
        let iso = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[t\ ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:z|[+-][0-9]{2}:?[0-9]{2})?)?";
        let numeric = format!(r"[0-9]{{1,4}}[/.-][0-9]{{1,2}}[/.-][0-9]{{2,4}}(?:,?\ (?:at\ )?{TIME})?");
        let month_first =
            format!(r"{WEEKDAY}{MONTH}\.?\ [0-9]{{1,2}}(?:st|nd|rd|th)?(?:,?\ [0-9]{{4}})?(?:,?\ (?:at\ )?{TIME})?");
        let day_first = format!(
            r"{WEEKDAY}[0-9]{{1,2}}(?:st|nd|rd|th)?\ (?:of\ )?{MONTH}\.?,?(?:\ [0-9]{{4}})?(?:,?\ (?:at\ )?{TIME})?"
        );
        // "01-Dec-2026", "1/December/26": one separator both sides of the month name.
        let day_month_year =
            format!(r"[0-9]{{1,2}}(?:-{MONTH}-|/{MONTH}/)(?:[0-9]{{4}}|[0-9]{{2}})(?:,?\ (?:at\ )?{TIME})?");
        let month_year = format!(r"{MONTH}\ [0-9]{{4}}");
        let source = format!(
            r"(?xi)(?-u:\b)(?:{iso}|{day_month_year}|{numeric}|{month_first}|{day_first}|{month_year}|{TIME})(?-u:\b)"
        );
        DateTimeRecognizer { date: pattern(&source) }
    }

    pub fn find(&self, text: &str, shape: &TextShape, out: &mut Vec<Candidate>) {
        let possible = shape.numeric_date
            || shape.clock_time
            || shape.digit_meridiem
            || shape.month_near_number
            // 'ſ' folds to 's' under the pattern's case-insensitive Unicode matching, so it may
            // spell a month ("ſep") or an ordinal ("1ſt") the byte-level shape does not see.
            || (shape.digits > 0 && !text.is_ascii() && text.contains('\u{17F}'));
        if !possible {
            return;
        }
        for found in self.date.find_iter(text) {
            let (start, mut end) = (found.start(), found.end());
            let candidate = found.as_str();
            if !candidate.bytes().any(|b| b.is_ascii_digit()) {
                continue;
            }
            // "3.5.2024.1" or "10:30:45:12" belong to longer identifiers.
            if char_before(text, start).is_some_and(|c| matches!(c, '.' | '/' | ':' | '-' | '+') || c.is_alphanumeric())
                || char_after(text, end).is_some_and(|c| matches!(c, '/' | ':') || c.is_alphanumeric())
            {
                continue;
            }
            // "06-12-34-56-78" and "01.23.45.67.89" are phone numbers whose first three groups
            // read as a date: a date does not go on with another separator and digits.
            let rest = &text.as_bytes()[end..];
            if rest.len() >= 2 && matches!(rest[0], b'.' | b'-') && rest[1].is_ascii_digit() {
                continue;
            }
            if text[..end].ends_with('.') && !candidate.to_ascii_lowercase().ends_with("m.") {
                end -= 1;
            }
            let Some(score) = date_score(&text[start..end]) else {
                continue;
            };
            out.push(Candidate {
                kind: EntityType::DateTime,
                start,
                end,
                score,
            });
        }
    }
}

/// Whether the three bytes at `at` are a month's first three letters, in any ASCII case.
pub(super) fn month_at(bytes: &[u8], at: usize) -> bool {
    // Each prefix as one number; `| 0x20` lowercases ASCII letters and never turns another byte
    // into a lowercase letter.
    const fn key(name: &[u8; 3]) -> u32 {
        (name[0] as u32) << 16 | (name[1] as u32) << 8 | name[2] as u32
    }
    const MONTHS: [u32; 12] = [
        key(b"jan"),
        key(b"feb"),
        key(b"mar"),
        key(b"apr"),
        key(b"may"),
        key(b"jun"),
        key(b"jul"),
        key(b"aug"),
        key(b"sep"),
        key(b"oct"),
        key(b"nov"),
        key(b"dec"),
    ];
    let Some(&first) = bytes.get(at) else {
        return false;
    };
    let first = first | 0x20;
    matches!(first, b'j' | b'f' | b'm' | b'a' | b's' | b'o' | b'n' | b'd')
        && bytes.len() >= at + 3
        && MONTHS.contains(&key(&[first, bytes[at + 1] | 0x20, bytes[at + 2] | 0x20]))
}

/// The score of a date/time candidate, or `None` when its numbers cannot be a date or time.
fn date_score(candidate: &str) -> Option<f32> {
    let lower = candidate.to_ascii_lowercase();
    let numbers: Vec<u32> = lower
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect();
    if (0..lower.len()).any(|at| month_at(lower.as_bytes(), at)) {
        // The first number is the day, unless it is the year of "March 2024".
        let valid = match numbers.first() {
            Some(&year) if numbers.len() == 1 && year >= 1000 => true,
            Some(day) => (1..=31).contains(day),
            None => false,
        };
        return valid.then_some(0.9);
    }
    let date_part = lower.split([' ', 't', ',']).next().unwrap_or("");
    let separators: Vec<char> = date_part.chars().filter(|c| matches!(c, '/' | '.' | '-')).collect();
    if separators.is_empty() {
        return time_is_valid(&lower).then_some(0.8);
    }
    if separators.len() != 2 || separators[0] != separators[1] {
        return None;
    }
    let [a, b, c] = numbers.get(..3)? else {
        return None;
    };
    let (a, b, c) = (*a, *b, *c);
    let year_len = date_part.rsplit(['/', '.', '-']).next().map_or(0, str::len);
    let valid = if a >= 1000 {
        (1..=12).contains(&b) && (1..=31).contains(&c)
    } else {
        (year_len == 2 || year_len == 4)
            && ((1..=12).contains(&a) && (1..=31).contains(&b) || (1..=31).contains(&a) && (1..=12).contains(&b))
    };
    valid.then_some(0.85)
}

fn time_is_valid(lower: &str) -> bool {
    let meridiem = lower.contains('m');
    let numbers: Vec<u32> = lower
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .take(3)
        .filter_map(|part| part.parse().ok())
        .collect();
    match numbers[..] {
        [hour] => meridiem && (1..=12).contains(&hour),
        [hour, minute, ..] => {
            let hours = if meridiem { 1..=12 } else { 0..=23 };
            hours.contains(&hour) && minute < 60 && lower.contains(':')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::recognizers::test_support::found_of;

    #[test]
    fn dates_in_common_formats_are_found() {
        for date in [
            "2024-01-15",
            "2024-01-15T10:30:00Z",
            "2024-01-15 10:30",
            "01/15/2024",
            "15/01/2024",
            "15.01.2024",
            "1/5/24",
            "January 15, 2024",
            "Jan 15, 2024",
            "15 January 2024",
            "3rd of March 2023",
            "March 2024",
            "10:30",
            "10:30 AM",
            "3pm",
            "23:59:59",
        ] {
            let text = format!("due {date} ok");
            assert_eq!(found_of(&text, "DATE_TIME"), [date], "{text}");
        }
    }

    #[test]
    fn rfc_2822_dates_are_found_whole() {
        for date in [
            "Tue, 1 Dec 2026 14:05:09 +0100",
            "1 Dec 2026 14:05 GMT",
            "Mon, 07 Sep 2026 08:00:00 -0500",
            "Fri, 24 Apr 2026 23:59 UT",
            "Sat, 3 Oct 2026 10:15:00 EDT",
            "Wednesday, 2 December 2026",
            "Thursday, December 3, 2026",
        ] {
            let text = format!("Date: {date} (sent)");
            assert_eq!(found_of(&text, "DATE_TIME"), [date], "{text}");
        }
    }

    #[test]
    fn day_month_name_year_dates_with_hyphens_or_slashes_are_found() {
        for date in [
            "01-Dec-2026",
            "1-December-2026",
            "15-mar-26",
            "9-Sep-1999",
            "03/Aug/2026",
        ] {
            let text = format!("expires {date}.");
            assert_eq!(found_of(&text, "DATE_TIME"), [date], "{text}");
        }
        assert!(found_of("ref 41-Dec-2026", "DATE_TIME").is_empty());
    }

    #[test]
    fn dotted_and_hyphenated_phone_numbers_are_not_dates() {
        for text in [
            "030.1234.5678",
            "06-12-34-56-78",
            "01.23.45.67.89",
            "tel 04.91.22.33.44 ok",
            "11-22-33-44",
            "12.03.44.55",
        ] {
            assert!(
                found_of(text, "DATE_TIME").is_empty(),
                "{text}: {:?}",
                found_of(text, "DATE_TIME")
            );
        }
        // A date at the end of a sentence keeps its place.
        assert_eq!(found_of("seit 15.01.2024.", "DATE_TIME"), ["15.01.2024"]);
        assert_eq!(found_of("seit 15.01.2024-x", "DATE_TIME"), ["15.01.2024"]);
    }

    #[test]
    fn impossible_dates_and_plain_numbers_are_not_dates() {
        for text in [
            "2024-13-45",
            "99/99/2024",
            "page 12 of 30",
            "ratio 3:2",
            "25:61",
            "v1.2.3",
        ] {
            assert!(
                found_of(text, "DATE_TIME").is_empty(),
                "{text}: {:?}",
                found_of(text, "DATE_TIME")
            );
        }
    }
}
