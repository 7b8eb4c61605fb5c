//! Precision and recall of the built-in recognizers on a generated labeled corpus.
//! `cargo test -p sluice-pii --test accuracy -- --nocapture` prints the table.

mod support;

use std::collections::BTreeMap;

use sluice_pii::{BuiltinDetector, Cell};
use support::corpus;

#[derive(Default, Debug)]
struct Tally {
    true_positive: u64,
    false_positive: u64,
    false_negative: u64,
}

impl Tally {
    fn precision(&self) -> f64 {
        let found = self.true_positive + self.false_positive;
        if found == 0 {
            1.0
        } else {
            self.true_positive as f64 / found as f64
        }
    }
    fn recall(&self) -> f64 {
        let labeled = self.true_positive + self.false_negative;
        if labeled == 0 {
            1.0
        } else {
            self.true_positive as f64 / labeled as f64
        }
    }
}

#[test]
fn builtin_recognizers_meet_the_precision_and_recall_targets() {
    let samples = corpus::generate(4000, 2024);
    let detector = BuiltinDetector::new();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for sample in &samples {
        let found = detector.detect_cell(&Cell::new(&sample.text));
        let mut matched = vec![false; sample.labels.len()];
        for entity in &found {
            let hit = sample
                .labels
                .iter()
                .position(|l| l.kind == entity.kind.as_str() && l.begin == entity.begin && l.end == entity.end);
            let kind = corpus::TYPES
                .iter()
                .map(|(k, _)| *k)
                .find(|k| *k == entity.kind.as_str())
                .unwrap_or("OTHER");
            match hit {
                Some(index) => {
                    matched[index] = true;
                    tallies.entry(kind).or_default().true_positive += 1;
                }
                None => {
                    tallies.entry(kind).or_default().false_positive += 1;
                    if std::env::var_os("SHOW_MISSES").is_some() {
                        println!("FP {kind}: {}", sample.text);
                    }
                }
            }
        }
        for (label, hit) in sample.labels.iter().zip(matched) {
            if !hit {
                tallies.entry(label.kind).or_default().false_negative += 1;
                if std::env::var_os("SHOW_MISSES").is_some() {
                    println!("FN {}: {}", label.kind, sample.text);
                }
            }
        }
    }
    println!(
        "{:<36} {:>9} {:>7} {:>5} {:>5} {:>5}",
        "type", "precision", "recall", "tp", "fp", "fn"
    );
    for (kind, t) in &tallies {
        println!(
            "{kind:<36} {:>9.4} {:>7.4} {:>5} {:>5} {:>5}",
            t.precision(),
            t.recall(),
            t.true_positive,
            t.false_positive,
            t.false_negative
        );
    }
    for kind in [
        "EMAIL",
        "CREDIT_DEBIT_NUMBER",
        "SSN",
        "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
        "IP_ADDRESS",
    ] {
        let t = &tallies[kind];
        assert!(t.recall() >= 0.97 && t.precision() >= 0.95, "{kind}: {t:?}");
    }
    assert!(tallies["PHONE"].recall() >= 0.90, "PHONE: {:?}", tallies["PHONE"]);
}
