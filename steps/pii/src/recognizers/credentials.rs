//! AWS_ACCESS_KEY (the documented key-id prefixes) and AWS_SECRET_KEY (40 base64 characters,
//! scored higher next to a telling word).

use regex::Regex;

use super::{Candidate, TextShape, char_after, char_before, context_before, pattern};
use crate::entity::EntityType;

pub(super) struct CredentialRecognizers {
    access_key: Regex,
    secret_key: Regex,
}

impl CredentialRecognizers {
    pub fn new() -> Self {
        CredentialRecognizers {
            access_key: pattern(
                r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|APKA)[A-Z0-9]{16}(?-u:\b)",
            ),
            secret_key: pattern(r"[A-Za-z0-9/+]{40}"),
        }
    }

    pub fn find(&self, text: &str, shape: &TextShape, out: &mut Vec<Candidate>) {
        if !shape.has_upper || !has_key_run(text.as_bytes(), 16) {
            return;
        }
        for found in self.access_key.find_iter(text) {
            out.push(Candidate {
                kind: EntityType::AwsAccessKey,
                start: found.start(),
                end: found.end(),
                score: 0.95,
            });
        }
        if !has_key_run(text.as_bytes(), 40) {
            return;
        }
        for found in self.secret_key.find_iter(text) {
            let (start, end) = (found.start(), found.end());
            let key_char = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+'));
            // Base64 padding may follow a longer token; an assignment's '=' may precede a key.
            if key_char(char_before(text, start))
                || key_char(char_after(text, end))
                || char_after(text, end) == Some('=')
            {
                continue;
            }
            let key = found.as_str();
            let mixed = key.bytes().any(|b| b.is_ascii_uppercase())
                && key.bytes().any(|b| b.is_ascii_lowercase())
                && key.bytes().any(|b| b.is_ascii_digit());
            if !mixed {
                continue;
            }
            let named = context_before(text, start, 60, &["secret", "aws_secret", "secretaccesskey"]);
            out.push(Candidate {
                kind: EntityType::AwsSecretKey,
                start,
                end,
                score: if named { 0.95 } else { 0.7 },
            });
        }
    }
}

/// Whether `bytes` holds `min` consecutive key characters (`A-Za-z0-9/+`). Probes every
/// `min`-th byte: a byte outside the alphabet rules out every run through it, so word-length
/// runs are skipped without visiting each byte.
fn has_key_run(bytes: &[u8], min: usize) -> bool {
    let key = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'+');
    // `end` is the last byte of the earliest run of `min` that has not been ruled out.
    let mut end = min - 1;
    while end < bytes.len() {
        if !key(bytes[end]) {
            end += min;
            continue;
        }
        let mut start = end;
        while start > 0 && end - start + 1 < min && key(bytes[start - 1]) {
            start -= 1;
        }
        if end - start + 1 >= min {
            return true;
        }
        // bytes[start - 1] is outside the alphabet; a run must begin at `start` or later.
        end = start + min - 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::recognizers::test_support::found_of;

    #[test]
    fn key_runs_are_found_wherever_they_sit() {
        use super::has_key_run;
        let run = |n: usize| "aB3/+".repeat(n).chars().take(n).collect::<String>();
        for prefix in ["", " ", "a b ", "xx  yy  zz ", "é "] {
            for (length, min) in [(16, 16), (15, 16), (40, 40), (39, 40), (41, 16)] {
                let text = format!("{prefix}{} end", run(length));
                assert_eq!(has_key_run(text.as_bytes(), min), length >= min, "{text} {min}");
            }
        }
        assert!(!has_key_run(b"short", 16));
    }

    #[test]
    fn access_key_ids_and_secret_keys_are_found() {
        let text =
            "aws_access_key_id=AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(found_of(text, "AWS_ACCESS_KEY"), ["AKIAIOSFODNN7EXAMPLE"]);
        assert_eq!(
            found_of(text, "AWS_SECRET_KEY"),
            ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]
        );
        assert!(found_of("sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709", "AWS_SECRET_KEY").is_empty());
    }
}
