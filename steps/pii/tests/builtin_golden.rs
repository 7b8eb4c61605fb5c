//! The built-in recognizers' exact output on a fixed synthetic corpus, kept in
//! `tests/golden/builtin_entities.txt`: speed work on the recognizers must not change what they
//! find. The corpus is the accuracy generator's sentences, the benchmark's CSV cells, and both
//! again with one character swapped for a tricky neighbour (separators, `@`, digits, `ſ`, `é`),
//! which puts entities against every kind of edge.
//!
//! After an intended change of behaviour: `SLUICE_BLESS=1 cargo test -p sluice-pii --test
//! builtin_golden`, then review the diff of the golden file.

mod support;

use std::fmt::Write as _;

use sluice_pii::{BuiltinDetector, Cell};
use support::corpus::{self, Rng};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/builtin_entities.txt");

const TRICKY: &[char] = &[
    '-', '.', ' ', '@', ':', '/', '+', '(', ')', '#', 'x', '0', '5', '9', 'A', 'z', '_', 'ſ', 'é', '\u{a0}', '😀',
];

fn corpus_cells() -> Vec<String> {
    let mut cells: Vec<String> = corpus::generate(3_000, 41).into_iter().map(|s| s.text).collect();
    let mut rng = Rng::new(43);
    cells.extend((0..3_000).map(|_| corpus::free_text_cell(&mut rng)));
    let mutated: Vec<String> = cells
        .iter()
        .map(|text| {
            let chars: Vec<char> = text.chars().collect();
            let at = rng.below(chars.len().max(1));
            let swap = *rng.pick(TRICKY);
            chars
                .iter()
                .enumerate()
                .map(|(i, &c)| if i == at { swap } else { c })
                .collect()
        })
        .collect();
    cells.extend(mutated);
    cells
}

/// One line per entity: cell index, type, begin, end (code points), score.
fn render(cells: &[String]) -> String {
    let detector = BuiltinDetector::new();
    let mut out = String::new();
    for (index, text) in cells.iter().enumerate() {
        for entity in detector.detect_cell(&Cell::new(text)) {
            let _ = writeln!(
                out,
                "{index} {} {} {} {:.2}",
                entity.kind, entity.begin, entity.end, entity.score
            );
        }
    }
    out
}

#[test]
fn the_builtin_recognizers_find_exactly_the_golden_entities() {
    let cells = corpus_cells();
    let found = render(&cells);
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(GOLDEN, &found).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(GOLDEN).unwrap();
    if found == golden {
        return;
    }
    let cell_of = |line: &str| line.split(' ').next().and_then(|i| i.parse::<usize>().ok());
    let (found_lines, golden_lines): (Vec<&str>, Vec<&str>) = (found.lines().collect(), golden.lines().collect());
    let mut report = String::new();
    let differing: std::collections::BTreeSet<usize> = found_lines
        .iter()
        .filter(|l| !golden_lines.contains(l))
        .chain(golden_lines.iter().filter(|l| !found_lines.contains(l)))
        .filter_map(|l| cell_of(l))
        .collect();
    for index in differing.iter().take(20) {
        let of_cell = |lines: &[&str]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| cell_of(l) == Some(*index))
                .map(|l| l.to_string())
                .collect()
        };
        let _ = writeln!(
            report,
            "cell {index} {:?}\n  golden: {:?}\n  found:  {:?}",
            cells[*index],
            of_cell(&golden_lines),
            of_cell(&found_lines)
        );
    }
    panic!("{} cells differ from the golden entities:\n{report}", differing.len());
}
