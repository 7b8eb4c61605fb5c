//! The builtin_throughput workload outside criterion, for profilers: `PASSES=10
//! target/release/examples/builtin_profile [ROWS]` prints MiB/s (`perf record` it), and
//! `valgrind --tool=callgrind --toggle-collect='*workload*' target/release/examples/builtin_profile 5000`
//! counts the instructions of one warm pass, which do not depend on what else the machine runs.

#[path = "../tests/support/corpus.rs"]
mod corpus;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use sluice_pii::{BuiltinDetector, CellCleaner};

fn main() {
    let rows: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let rows = corpus::csv_rows(rows, 1);
    let bytes: usize = rows.iter().flatten().map(|c| c.len() + 1).sum();
    let detector = BuiltinDetector::new();
    let cleaner = corpus::bench_cleaner();
    let passes: usize = std::env::var("PASSES").ok().and_then(|p| p.parse().ok()).unwrap_or(1);
    // Fills the regex engines' lazy DFA caches, as every later pass of a long file finds them.
    warm_up(&rows, &detector, &cleaner);
    let started = std::time::Instant::now();
    let out = workload(&rows, passes, &detector, &cleaner);
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{bytes} bytes x {passes}: {:.1} MiB/s ({out})",
        (bytes * passes) as f64 / elapsed / (1024.0 * 1024.0)
    );
}

#[inline(never)]
fn warm_up(rows: &[Vec<String>], detector: &BuiltinDetector, cleaner: &CellCleaner) -> usize {
    one_pass(rows, detector, cleaner)
}

/// The measured part (callgrind: `--toggle-collect='*workload*'`).
#[inline(never)]
fn workload(rows: &[Vec<String>], passes: usize, detector: &BuiltinDetector, cleaner: &CellCleaner) -> usize {
    (0..passes).map(|_| one_pass(rows, detector, cleaner)).sum()
}

#[inline(never)]
fn one_pass(rows: &[Vec<String>], detector: &BuiltinDetector, cleaner: &CellCleaner) -> usize {
    corpus::detect_and_mask_rows(rows, detector, cleaner).0
}
