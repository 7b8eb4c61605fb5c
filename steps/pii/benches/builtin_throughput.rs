//! Built-in detection plus masking throughput over CSV text (target: >= 50 MB/s per core), and
//! the Comprehend billing of a 100,000-row, 3-free-text-column CSV through the real adapter and
//! the local DetectPiiEntities server.
//!
//! `cargo bench -p sluice-pii --bench builtin_throughput`

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;

// The allocator of the `sluice` binary, which runs these stages in local pipelines.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group};
use sluice_pii::comprehend::packing::billing_units;
use sluice_pii::{BuiltinDetector, Cell, ComprehendDetector, ComprehendSettings, Detector};
use support::corpus::{bench_cleaner, csv_rows, detect_and_mask_rows};

fn detect_and_mask(c: &mut Criterion) {
    let rows = csv_rows(20_000, 1);
    let bytes: usize = rows.iter().flatten().map(|c| c.len() + 1).sum();
    let detector = BuiltinDetector::new();
    let cleaner = bench_cleaner();
    let mut group = c.benchmark_group("builtin");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.bench_function("detect+mask csv cells", |b| {
        b.iter(|| black_box(detect_and_mask_rows(&rows, &detector, &cleaner)))
    });
    group.finish();
}

/// Not a timing: counts what the adapter sends for 100,000 rows x 3 free-text columns.
fn comprehend_billing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = support::comprehend_server::ComprehendServer::start().await;
        let comprehend = ComprehendDetector::new(server.client(), ComprehendSettings::default());
        let rows = csv_rows(100_000, 2);
        let texts: Vec<&str> = rows.iter().flat_map(|r| r[2..].iter().map(String::as_str)).collect();
        // The mask step detects in batches of about 1 MiB of cell text; do the same.
        let mut batch: Vec<Cell> = Vec::new();
        let mut batch_bytes = 0;
        for text in &texts {
            batch.push(Cell::new(text));
            batch_bytes += text.len();
            if batch_bytes >= 1 << 20 {
                comprehend.detect(&batch).await.unwrap();
                batch.clear();
                batch_bytes = 0;
            }
        }
        comprehend.detect(&batch).await.unwrap();
        let received = server.received();
        let packed: u64 = received.iter().map(|r| billing_units(r.chars)).sum();
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        let per_cell: u64 = texts.iter().map(|t| billing_units(t.chars().count())).sum();
        let bound = chars as f64 / 100.0;
        println!(
            "comprehend billing, 100,000 rows x 3 free-text columns ({} cells, {chars} characters):",
            texts.len()
        );
        println!("  lower bound (chars/100):  {bound:.0} units");
        println!(
            "  packed:                   {packed} units in {} requests ({:.4}x the bound)",
            received.len(),
            packed as f64 / bound
        );
        println!(
            "  one request per cell:     {per_cell} units ({:.2}x the bound)",
            per_cell as f64 / bound
        );
    });
}

criterion_group!(benches, detect_and_mask);

fn main() {
    comprehend_billing();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
