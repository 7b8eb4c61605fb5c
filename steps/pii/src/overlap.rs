//! Overlap resolution, shared by every detector so that both give the same answer for the same
//! candidates:
//!
//! 1. entities of the same type that overlap become one (their union, the higher score);
//! 2. then, in order of score (higher first), length (the containing span first), position and
//!    type name, each entity claims the code points no earlier entity claimed. A loser inside a
//!    winner disappears; a loser that sticks out keeps only the parts that stick out, so text
//!    some detector flagged is never left unmasked by the resolution itself. Leftover parts with
//!    no letter or digit (a lone space or dash) are dropped.

use std::cmp::Ordering;

use crate::entity::{CodePoints, PiiEntity};

/// Resolves overlaps among entities of `text` (offsets in code points); the result is sorted by
/// position and no two entities overlap.
pub fn resolve(entities: Vec<PiiEntity>, text: &str) -> Vec<PiiEntity> {
    let map = CodePoints::new(text);
    let text_len = map.len();
    let mut entities: Vec<PiiEntity> = entities
        .into_iter()
        .map(|mut e| {
            e.end = e.end.min(text_len);
            e
        })
        .filter(|e| e.begin < e.end)
        .collect();
    if entities.len() <= 1 {
        return entities;
    }
    let merged = union_same_type(&mut entities);
    let mut ranked = merged;
    ranked.sort_by(priority);
    let mut claimed: Vec<(usize, usize)> = Vec::new();
    let mut kept: Vec<PiiEntity> = Vec::new();
    for entity in ranked {
        for (begin, end) in unclaimed_parts(entity.begin, entity.end, &claimed) {
            let piece = &text[map.byte_offset(begin)..map.byte_offset(end)];
            if !piece.chars().any(char::is_alphanumeric) {
                continue;
            }
            kept.push(PiiEntity::new(entity.kind.clone(), begin, end, entity.score));
            let at = claimed.partition_point(|&(b, _)| b < begin);
            claimed.insert(at, (begin, end));
        }
    }
    kept.sort_by(|a, b| a.begin.cmp(&b.begin).then_with(|| a.kind.cmp(&b.kind)));
    kept
}

/// Merges overlapping entities of one type into their union, keeping the higher score.
fn union_same_type(entities: &mut [PiiEntity]) -> Vec<PiiEntity> {
    entities.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.begin.cmp(&b.begin)).then(b.end.cmp(&a.end)));
    let mut merged: Vec<PiiEntity> = Vec::with_capacity(entities.len());
    for entity in entities.iter() {
        match merged.last_mut() {
            Some(last) if last.kind == entity.kind && entity.begin < last.end => {
                last.end = last.end.max(entity.end);
                last.score = last.score.max(entity.score);
            }
            _ => merged.push(entity.clone()),
        }
    }
    merged
}

fn priority(a: &PiiEntity, b: &PiiEntity) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| b.len().cmp(&a.len()))
        .then_with(|| a.begin.cmp(&b.begin))
        .then_with(|| a.kind.cmp(&b.kind))
}

/// The parts of `begin..end` not covered by `claimed` (sorted, disjoint intervals).
fn unclaimed_parts(begin: usize, end: usize, claimed: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut parts = Vec::new();
    let mut cursor = begin;
    for &(b, e) in claimed {
        if e <= cursor {
            continue;
        }
        if b >= end {
            break;
        }
        if b > cursor {
            parts.push((cursor, b));
        }
        cursor = cursor.max(e);
    }
    if cursor < end {
        parts.push((cursor, end));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::EntityType;

    fn entity(kind: EntityType, begin: usize, end: usize, score: f32) -> PiiEntity {
        PiiEntity::new(kind, begin, end, score)
    }

    const TEXT: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

    #[test]
    fn same_type_overlaps_become_their_union_with_the_higher_score() {
        let resolved = resolve(
            vec![entity(EntityType::Name, 0, 5, 0.6), entity(EntityType::Name, 3, 9, 0.9)],
            TEXT,
        );
        assert_eq!(resolved, vec![entity(EntityType::Name, 0, 9, 0.9)]);
    }

    #[test]
    fn a_contained_lower_score_entity_disappears() {
        let resolved = resolve(
            vec![
                entity(EntityType::Url, 0, 20, 0.95),
                entity(EntityType::Email, 5, 12, 0.9),
            ],
            TEXT,
        );
        assert_eq!(resolved, vec![entity(EntityType::Url, 0, 20, 0.95)]);
    }

    #[test]
    fn a_higher_score_entity_inside_a_lower_one_splits_it_without_unmasking_anything() {
        let resolved = resolve(
            vec![
                entity(EntityType::Url, 0, 20, 0.9),
                entity(EntityType::Email, 5, 12, 0.99),
            ],
            TEXT,
        );
        assert_eq!(
            resolved,
            vec![
                entity(EntityType::Url, 0, 5, 0.9),
                entity(EntityType::Email, 5, 12, 0.99),
                entity(EntityType::Url, 12, 20, 0.9),
            ]
        );
    }

    #[test]
    fn equal_scores_prefer_the_longer_span_then_the_earlier_one() {
        let resolved = resolve(
            vec![
                entity(EntityType::Phone, 2, 8, 0.8),
                entity(EntityType::DateTime, 0, 10, 0.8),
            ],
            TEXT,
        );
        assert_eq!(resolved, vec![entity(EntityType::DateTime, 0, 10, 0.8)]);
        let tie = resolve(
            vec![
                entity(EntityType::Phone, 4, 10, 0.8),
                entity(EntityType::Ssn, 0, 6, 0.8),
            ],
            TEXT,
        );
        assert_eq!(
            tie,
            vec![
                entity(EntityType::Ssn, 0, 6, 0.8),
                entity(EntityType::Phone, 6, 10, 0.8)
            ]
        );
    }

    #[test]
    fn resolution_does_not_depend_on_input_order() {
        let candidates = vec![
            entity(EntityType::Phone, 2, 8, 0.8),
            entity(EntityType::DateTime, 0, 10, 0.8),
            entity(EntityType::Name, 9, 15, 0.7),
            entity(EntityType::Name, 14, 18, 0.75),
        ];
        let mut reversed = candidates.clone();
        reversed.reverse();
        assert_eq!(resolve(candidates, TEXT), resolve(reversed, TEXT));
    }

    #[test]
    fn leftover_pieces_without_letters_or_digits_are_dropped_and_ends_are_clamped() {
        let text = "ab - cd";
        let resolved = resolve(
            vec![
                entity(EntityType::Name, 0, 4, 0.5),
                entity(EntityType::Phone, 0, 2, 0.9),
                entity(EntityType::Url, 5, 99, 0.5),
            ],
            text,
        );
        assert_eq!(
            resolved,
            vec![entity(EntityType::Phone, 0, 2, 0.9), entity(EntityType::Url, 5, 7, 0.5)]
        );
    }
}
