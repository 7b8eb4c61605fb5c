//! Parse + type + batch-build throughput: 100,000 rows of 10 columns, one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_core::config::DatasetSettings;

// The same allocator as the `sluice` binary, so the figure is the one a user gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: usize = 100_000;

fn csv_text() -> Vec<u8> {
    let mut text = String::from("id,name,email,city,zip,amount,count,active,joined,note\n");
    for i in 0..ROWS {
        text.push_str(&format!(
            "{i:08},Person {i},person{i}@example.test,City {c},{z:05},{a}.{b:02},{n},{t},2026-{m:02}-{d:02},\"note, with comma {i}\"\n",
            c = i % 500,
            z = i % 99_999,
            a = i % 10_000,
            b = i % 100,
            n = i % 77,
            t = i % 3 == 0,
            m = i % 12 + 1,
            d = i % 28 + 1,
        ));
    }
    text.into_bytes()
}

fn parse_type_batch(c: &mut Criterion) {
    let text = csv_text();
    let settings = DatasetSettings::default();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    group.bench_function("parse_type_batch_100k_rows_10_cols", |b| {
        b.iter(|| {
            let mut batches = 0usize;
            let stats = sluice_ingest::read_file(
                &text[..],
                "bench",
                &settings,
                20,
                |batch| {
                    batches += std::hint::black_box(batch).len();
                    true
                },
                |_, _, _| {},
            )
            .unwrap_or_else(|problem| panic!("{}", problem.describe()));
            assert_eq!(stats.rows_read as usize, ROWS);
            batches
        })
    });
    group.finish();
}

criterion_group!(benches, parse_type_batch);
criterion_main!(benches);
