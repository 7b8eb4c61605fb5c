//! Packing cells into as few DetectPiiEntities requests as possible, and mapping the answers
//! back to cells.
//!
//! Comprehend bills 100-character units with a 3-unit minimum per request and takes at most
//! 100 KB of UTF-8 per request. Cells are joined with a newline into requests filled up to the
//! byte limit, so billing approaches total characters / 100. A cell longer than a request is cut
//! into segments on whitespace that overlap by more than any entity is long, so every entity lies
//! whole in some segment; the same entity found in two segments is merged afterwards.
//!
//! Offsets are Unicode code points (end exclusive) throughout. An entity the service reports
//! across a separator is clipped to each cell it touches, so no entity ever spans two cells.

use crate::entity::{CodePoints, PiiEntity};

/// Joins cells inside a request. No built-in pattern crosses a line break, and clipping makes
/// the guarantee independent of the detector behind the API.
pub const SEPARATOR: &str = "\n";

/// Request size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackingLimits {
    /// The most UTF-8 bytes one request may carry (Comprehend: 100 KB).
    pub max_request_bytes: usize,
    /// How many bytes consecutive segments of a long cell share; longer than any entity.
    pub overlap_bytes: usize,
}

impl Default for PackingLimits {
    fn default() -> Self {
        PackingLimits {
            max_request_bytes: 100_000,
            overlap_bytes: 512,
        }
    }
}

/// Where one piece of a cell sits in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Index of the cell in the batch.
    pub cell: usize,
    /// Code-point offset of the piece within its cell.
    pub cell_offset: usize,
    /// Code-point offset of the piece within the request text.
    pub request_offset: usize,
    /// Length of the piece in code points.
    pub len: usize,
}

/// One DetectPiiEntities request: its text and what each part of it belongs to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackedRequest {
    pub text: String,
    /// Sorted by `request_offset`.
    pub placements: Vec<Placement>,
    chars: usize,
}

impl PackedRequest {
    /// Length of the request text in code points (what Comprehend bills).
    pub fn chars(&self) -> usize {
        self.chars
    }

    /// The units Comprehend bills for this request: 100 characters each, 3 at least.
    pub fn billing_units(&self) -> u64 {
        billing_units(self.chars)
    }

    fn push(&mut self, cell: usize, cell_offset: usize, piece: &str) {
        if !self.text.is_empty() {
            self.text.push_str(SEPARATOR);
            self.chars += SEPARATOR.chars().count();
        }
        let len = piece.chars().count();
        self.placements.push(Placement {
            cell,
            cell_offset,
            request_offset: self.chars,
            len,
        });
        self.text.push_str(piece);
        self.chars += len;
    }

    /// Maps entities of the request text (code points) to `(cell index, entity in cell code
    /// points)`, clipping any entity that reaches over a separator to each piece it covers.
    pub fn map_back(&self, entities: &[PiiEntity]) -> Vec<(usize, PiiEntity)> {
        let mut mapped = Vec::with_capacity(entities.len());
        for entity in entities {
            let first = self
                .placements
                .partition_point(|p| p.request_offset + p.len <= entity.begin);
            for placement in &self.placements[first..] {
                if placement.request_offset >= entity.end {
                    break;
                }
                let begin = entity.begin.max(placement.request_offset);
                let end = entity.end.min(placement.request_offset + placement.len);
                if begin >= end {
                    continue;
                }
                let shift = placement.cell_offset as isize - placement.request_offset as isize;
                mapped.push((
                    placement.cell,
                    PiiEntity::new(
                        entity.kind.clone(),
                        (begin as isize + shift) as usize,
                        (end as isize + shift) as usize,
                        entity.score,
                    ),
                ));
            }
        }
        mapped
    }
}

/// Comprehend's billing for one request of `chars` characters.
pub fn billing_units(chars: usize) -> u64 {
    (chars as u64).div_ceil(100).max(3)
}

/// Packs `cells` into requests. Empty and all-whitespace cells need no request and are left out.
pub fn pack(cells: &[&str], limits: &PackingLimits) -> Vec<PackedRequest> {
    let mut requests = Vec::new();
    let mut current = PackedRequest::default();
    for (index, cell) in cells.iter().enumerate() {
        if cell.trim().is_empty() {
            continue;
        }
        for (cell_offset, piece) in segments(cell, limits) {
            let needed = piece.len() + if current.text.is_empty() { 0 } else { SEPARATOR.len() };
            if current.text.len() + needed > limits.max_request_bytes && !current.text.is_empty() {
                requests.push(std::mem::take(&mut current));
            }
            current.push(index, cell_offset, piece);
        }
    }
    if !current.text.is_empty() {
        requests.push(current);
    }
    requests
}

/// The pieces of one cell, each at most `max_request_bytes` long, with their code-point offsets.
/// Short cells are one piece. Long cells are cut at whitespace where there is some, and each
/// segment starts `overlap_bytes` (rounded to whitespace) before the previous one ended.
pub fn segments<'a>(cell: &'a str, limits: &PackingLimits) -> Vec<(usize, &'a str)> {
    let max = limits.max_request_bytes.max(8);
    if cell.len() <= max {
        return vec![(0, cell)];
    }
    let overlap = limits.overlap_bytes.min(max / 2);
    let map = CodePoints::new(cell);
    let mut pieces = Vec::new();
    let mut start = 0;
    loop {
        if cell.len() - start <= max {
            pieces.push((map.char_index(start), &cell[start..]));
            break;
        }
        let hard_end = floor_char_boundary(cell, start + max);
        // Prefer to end after the last whitespace of the second half of the window.
        let window_start = ceil_char_boundary(cell, start + max / 2).min(hard_end);
        let end = cell[window_start..hard_end]
            .rfind(char::is_whitespace)
            .map(|at| {
                let ws = window_start + at;
                ws + cell[ws..].chars().next().map_or(1, char::len_utf8)
            })
            .filter(|&end| end > start)
            .unwrap_or(hard_end);
        pieces.push((map.char_index(start), &cell[start..end]));
        // The next segment starts at the first word boundary inside the overlap.
        let overlap_start = floor_char_boundary(cell, end.saturating_sub(overlap)).max(start + 1);
        let overlap_start = ceil_char_boundary(cell, overlap_start);
        let next = cell[overlap_start..end]
            .find(char::is_whitespace)
            .map(|at| {
                let ws = overlap_start + at;
                ws + cell[ws..].chars().next().map_or(1, char::len_utf8)
            })
            .filter(|&next| next < end)
            .unwrap_or(overlap_start);
        start = next.max(start + 1);
        start = ceil_char_boundary(cell, start);
    }
    pieces
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// Merges the entities a batch's requests found, per cell: pieces of one cell (segments) may
/// report the same entity twice; [`crate::overlap::resolve`] unites them.
pub fn merge_per_cell(cells: &[&str], mapped: Vec<(usize, PiiEntity)>) -> Vec<Vec<PiiEntity>> {
    let mut per_cell: Vec<Vec<PiiEntity>> = vec![Vec::new(); cells.len()];
    for (cell, entity) in mapped {
        if let Some(slot) = per_cell.get_mut(cell) {
            slot.push(entity);
        }
    }
    per_cell
        .into_iter()
        .zip(cells)
        .map(|(entities, text)| crate::overlap::resolve(entities, text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{BuiltinDetector, Cell};
    use crate::entity::EntityType;

    /// What a DetectPiiEntities server backed by the built-in recognizers would answer.
    fn answer(request: &PackedRequest) -> Vec<PiiEntity> {
        BuiltinDetector::new().detect_cell(&Cell::new(&request.text))
    }

    fn via_requests(cells: &[&str], limits: &PackingLimits) -> Vec<Vec<PiiEntity>> {
        let requests = pack(cells, limits);
        let mapped = requests.iter().flat_map(|r| r.map_back(&answer(r))).collect();
        merge_per_cell(cells, mapped)
    }

    fn direct(cells: &[&str]) -> Vec<Vec<PiiEntity>> {
        cells
            .iter()
            .map(|c| BuiltinDetector::new().detect_cell(&Cell::new(c)))
            .collect()
    }

    fn texts<'a>(cell: &'a str, entities: &[PiiEntity]) -> Vec<&'a str> {
        let map = CodePoints::new(cell);
        entities
            .iter()
            .map(|e| &cell[map.byte_offset(e.begin)..map.byte_offset(e.end)])
            .collect()
    }

    const ADVERSARIAL: &[&str] = &[
        "café owner: zoë@example.fr",
        "東京の電話 +81-3-1234-5678 です",
        "😀😀👍🏽 card 4111 1111 1111 1111 🎉",
        "",
        "   ",
        "naïve résumé, IBAN DE89 3704 0044 0532 0130 00",
        "e\u{301} combining accent then 192.168.0.1",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ssn 536-22-1234",
        "plain",
    ];

    #[test]
    fn packed_offsets_map_back_exactly_for_accents_cjk_and_emoji() {
        let limits = PackingLimits::default();
        let requests = pack(ADVERSARIAL, &limits);
        assert_eq!(requests.len(), 1, "small cells share one request");
        assert_eq!(via_requests(ADVERSARIAL, &limits), direct(ADVERSARIAL));
        let found = via_requests(ADVERSARIAL, &limits);
        assert_eq!(texts(ADVERSARIAL[0], &found[0]), ["zoë@example.fr"]);
        assert_eq!(texts(ADVERSARIAL[1], &found[1]), ["+81-3-1234-5678"]);
        assert_eq!(texts(ADVERSARIAL[2], &found[2]), ["4111 1111 1111 1111"]);
        assert!(found[3].is_empty() && found[4].is_empty());
        assert_eq!(texts(ADVERSARIAL[5], &found[5]), ["DE89 3704 0044 0532 0130 00"]);
        assert_eq!(texts(ADVERSARIAL[6], &found[6]), ["192.168.0.1"]);
        assert_eq!(texts(ADVERSARIAL[7], &found[7]), ["536-22-1234"]);
    }

    #[test]
    fn small_request_limits_split_batches_without_changing_answers() {
        let limits = PackingLimits {
            max_request_bytes: 64,
            overlap_bytes: 24,
        };
        let requests = pack(ADVERSARIAL, &limits);
        assert!(requests.len() > 3);
        assert!(requests.iter().all(|r| r.text.len() <= 64));
        assert_eq!(via_requests(ADVERSARIAL, &limits), direct(ADVERSARIAL));
    }

    #[test]
    fn an_entity_across_a_separator_is_clipped_to_each_cell() {
        let request = pack(&["ab", "cd"], &PackingLimits::default()).remove(0);
        assert_eq!(request.text, "ab\ncd");
        let mapped = request.map_back(&[PiiEntity::new(EntityType::Name, 1, 4, 0.9)]);
        assert_eq!(
            mapped,
            vec![
                (0, PiiEntity::new(EntityType::Name, 1, 2, 0.9)),
                (1, PiiEntity::new(EntityType::Name, 0, 1, 0.9)),
            ]
        );
    }

    #[test]
    fn long_cells_are_segmented_on_whitespace_with_overlap_and_entities_are_found_once() {
        let mut cell = String::new();
        for i in 0..40 {
            cell.push_str(&format!(
                "é東😀 line {i} mail user{i}@example.com then 4111 1111 1111 1111 and 10.0.0.{i} "
            ));
        }
        let limits = PackingLimits {
            max_request_bytes: 300,
            overlap_bytes: 120,
        };
        let pieces = segments(&cell, &limits);
        assert!(pieces.len() > 10);
        for window in pieces.windows(2) {
            let (a_off, a) = window[0];
            let (b_off, _) = window[1];
            assert!(b_off > a_off && b_off < a_off + a.chars().count(), "segments overlap");
        }
        for (_, piece) in &pieces {
            assert!(piece.len() <= 300);
        }
        let found = via_requests(&[&cell], &limits);
        assert_eq!(found, direct(&[&cell]));
        let emails = found[0].iter().filter(|e| e.kind == EntityType::Email).count();
        let cards = found[0]
            .iter()
            .filter(|e| e.kind == EntityType::CreditDebitNumber)
            .count();
        assert_eq!((emails, cards), (40, 40));
    }

    #[test]
    fn a_long_cell_without_whitespace_is_cut_on_character_boundaries() {
        let cell = "😀".repeat(100);
        let limits = PackingLimits {
            max_request_bytes: 50,
            overlap_bytes: 10,
        };
        let pieces = segments(&cell, &limits);
        let covered: usize = pieces.last().map(|(off, p)| off + p.chars().count()).unwrap();
        assert_eq!(covered, 100);
        assert!(pieces.iter().all(|(_, p)| p.len() <= 50));
    }

    #[test]
    fn billing_counts_hundreds_with_a_three_unit_minimum() {
        assert_eq!(billing_units(1), 3);
        assert_eq!(billing_units(300), 3);
        assert_eq!(billing_units(301), 4);
        assert_eq!(billing_units(100_000), 1000);
    }

    #[test]
    fn packing_fills_requests_close_to_the_lower_bound() {
        let cells: Vec<String> = (0..5000)
            .map(|i| format!("Customer {i} wrote: please call me back about order {i}, thanks é"))
            .collect();
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        let requests = pack(&refs, &PackingLimits::default());
        let billed: u64 = requests.iter().map(PackedRequest::billing_units).sum();
        let chars: usize = refs.iter().map(|c| c.chars().count()).sum();
        let lower_bound = chars as f64 / 100.0;
        assert!(
            (billed as f64) < lower_bound * 1.1,
            "{billed} units vs bound {lower_bound}"
        );
        let one_per_cell: u64 = refs.iter().map(|c| billing_units(c.chars().count())).sum();
        assert!(one_per_cell as f64 > lower_bound * 2.0);
    }
}
