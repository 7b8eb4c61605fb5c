//! Applying a policy to one cell: mask, redact or tokenize each entity, keep the rest.

use std::borrow::Cow;

use crate::entity::{CodePoints, PiiEntity};
use crate::policy::{Action, PiiPolicy};
use crate::tokenize::Tokenizer;
use crate::vault::VaultEntry;

/// The policy needs a tokenization key that was not supplied.
#[derive(Debug, thiserror::Error)]
#[error("the PII policy tokenizes but no tokenization key was given")]
pub struct MissingTokenizer;

/// Rewrites cells by a policy. Build it once per dataset.
#[derive(Debug)]
pub struct CellCleaner {
    policy: PiiPolicy,
    tokenizer: Option<Tokenizer>,
}

/// What cleaning one cell did.
#[derive(Debug, Default)]
pub struct CleanedCell<'a, 'e> {
    pub text: Cow<'a, str>,
    /// The entities at or above the column's minimum score (the ones the policy acted on,
    /// `keep` included).
    /// Borrowed when every entity qualifies (the common case), so cleaning does not allocate.
    pub applied: Cow<'e, [PiiEntity]>,
}

impl CellCleaner {
    pub fn new(policy: PiiPolicy, tokenizer: Option<Tokenizer>) -> Result<CellCleaner, MissingTokenizer> {
        if policy.tokenizes() && tokenizer.is_none() {
            return Err(MissingTokenizer);
        }
        Ok(CellCleaner { policy, tokenizer })
    }

    pub fn policy(&self) -> &PiiPolicy {
        &self.policy
    }

    /// The cell `text` of `column` with its `entities` (resolved, code points) handled by the
    /// policy; tokenized originals are appended to `vault` for sealing.
    pub fn clean<'a, 'e>(
        &self,
        column: &str,
        text: &'a str,
        entities: &'e [PiiEntity],
        vault: &mut Vec<VaultEntry>,
    ) -> CleanedCell<'a, 'e> {
        let min_score = self.policy.min_score_for(column);
        let applied: Cow<'e, [PiiEntity]> = if entities.iter().all(|e| e.score >= min_score) {
            Cow::Borrowed(entities)
        } else {
            Cow::Owned(entities.iter().filter(|e| e.score >= min_score).cloned().collect())
        };
        if applied.is_empty() {
            return CleanedCell {
                text: Cow::Borrowed(text),
                applied,
            };
        }
        let map = CodePoints::new(text);
        // Made at the first entity that changes the text; `copied` is how much of `text` it holds.
        let mut out: Option<String> = None;
        let mut copied = 0;
        // The end of the last entity handled (kept ones too): overlaps were resolved, and a stray
        // overlap keeps the earlier decision.
        let mut handled = 0;
        for entity in applied.iter() {
            let (start, end) = (map.byte_offset(entity.begin), map.byte_offset(entity.end));
            if start < handled {
                continue;
            }
            handled = end;
            let action = self.policy.action_for(column, &entity.kind);
            if *action == Action::Keep {
                continue;
            }
            // Room for a token or two (`EMAIL_` and 32 hex digits) so the common cell never regrows.
            let out = out.get_or_insert_with(|| String::with_capacity(text.len() + 48 * applied.len()));
            out.push_str(&text[copied..start]);
            copied = end;
            let original = &text[start..end];
            match action {
                // Kept entities never get here: they stay in the text copied later.
                Action::Keep => {}
                Action::Mask { char, keep_last } => mask_into(out, original, *char, *keep_last),
                Action::Redact => {
                    out.push('[');
                    out.push_str(entity.kind.as_str());
                    out.push(']');
                }
                Action::Tokenize => {
                    // `new` refused a tokenizing policy without a tokenizer.
                    if let Some(tokenizer) = &self.tokenizer {
                        let token = tokenizer.token(&entity.kind, original);
                        out.push_str(&token);
                        vault.push(VaultEntry {
                            token,
                            kind: entity.kind.clone(),
                            value: original.to_string(),
                        });
                    }
                }
            }
        }
        let text = match out {
            Some(mut out) => {
                out.push_str(&text[copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(text),
        };
        CleanedCell { text, applied }
    }
}

/// Masks every character of `original` but the last `keep_last`; values too short to hide the
/// rest (at most twice `keep_last` characters) are masked whole.
fn mask_into(out: &mut String, original: &str, mask: char, keep_last: usize) {
    let length = original.chars().count();
    let keep = if length > keep_last * 2 { keep_last } else { 0 };
    out.extend(std::iter::repeat_n(mask, length - keep));
    if keep > 0 {
        let kept_from = original
            .char_indices()
            .nth(length - keep)
            .map_or(original.len(), |(at, _)| at);
        out.push_str(&original[kept_from..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{BuiltinDetector, Cell};
    use crate::entity::EntityType;

    fn cleaner(policy: &str) -> CellCleaner {
        let policy = PiiPolicy::from_toml(policy, "test.toml").unwrap();
        CellCleaner::new(policy, Some(Tokenizer::new(&[9; 32]))).unwrap()
    }

    fn clean_text(cleaner: &CellCleaner, column: &str, text: &str) -> (String, Vec<VaultEntry>) {
        let entities = BuiltinDetector::new().detect_cell(&Cell::new(text));
        let mut vault = Vec::new();
        let cleaned = cleaner.clean(column, text, &entities, &mut vault);
        (cleaned.text.into_owned(), vault)
    }

    #[test]
    fn mask_redact_tokenize_and_keep_follow_the_policy() {
        let c = cleaner(
            r##"
            [entities]
            CREDIT_DEBIT_NUMBER = { action = "mask", char = "#", keep_last = 4 }
            EMAIL = "tokenize"
            PHONE = "redact"
            DATE_TIME = "keep"
            "##,
        );
        let (text, vault) = clean_text(
            &c,
            "notes",
            "card 4111 1111 1111 1111 mail ana@example.com call +44 20 7946 0958 on 2024-01-15",
        );
        let token = Tokenizer::new(&[9; 32]).token(&EntityType::Email, "ana@example.com");
        assert_eq!(
            text,
            format!("card ###############1111 mail {token} call [PHONE] on 2024-01-15")
        );
        assert_eq!(vault.len(), 1);
        assert_eq!(vault[0].value, "ana@example.com");
        assert!(!format!("{vault:?}").contains("ana@"));
    }

    #[test]
    fn masking_after_accents_cjk_and_emoji_hits_exactly_the_entity() {
        let c = cleaner("");
        for prefix in ["é", "東京", "😀👍🏽", "Ünïcödé 名前 🎉 "] {
            let text = format!("{prefix} ana@example.com!");
            let (cleaned, _) = clean_text(&c, "notes", &text);
            assert_eq!(cleaned, format!("{prefix} {}!", "*".repeat(15)), "{text}");
        }
    }

    #[test]
    fn short_values_are_masked_whole_even_with_keep_last() {
        let mut out = String::new();
        mask_into(&mut out, "12345678", '*', 4);
        assert_eq!(out, "********");
        out.clear();
        mask_into(&mut out, "123456789", '*', 4);
        assert_eq!(out, "*****6789");
    }

    #[test]
    fn entities_below_the_column_minimum_score_are_left_alone() {
        let c = cleaner("[columns.notes]\nmin_score = 0.99\n[columns.other]\nmin_score = 0.1");
        let text = "call 555-123-4567";
        assert_eq!(clean_text(&c, "notes", text).0, text);
        assert_eq!(clean_text(&c, "other", text).0, "call ************");
    }

    #[test]
    fn a_tokenizing_policy_without_a_key_is_refused() {
        let policy = PiiPolicy::from_toml("default = \"tokenize\"", "t.toml").unwrap();
        assert!(CellCleaner::new(policy, None).is_err());
    }
}
