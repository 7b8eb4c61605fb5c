//! How long building the built-in detector takes (a PII Lambda's init does it once).
//!
//!     cargo run --release -p sluice-pii --example detector_init
fn main() {
    let mut times: Vec<std::time::Duration> = (0..20)
        .map(|_| {
            let started = std::time::Instant::now();
            let detector = sluice_pii::BuiltinDetector::new();
            let elapsed = started.elapsed();
            std::hint::black_box(detector);
            elapsed
        })
        .collect();
    times.sort();
    println!(
        "BuiltinDetector::new: median {:.1} ms, min {:.1} ms, max {:.1} ms (20 builds)",
        times[10].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[19].as_secs_f64() * 1e3
    );
}
