//! The Comprehend adapter against a local DetectPiiEntities server backed by real detection.

mod support;

use std::time::Duration;

use sluice_core::retry::Backoff;
use sluice_pii::comprehend::packing::billing_units;
use sluice_pii::{BuiltinDetector, Cell, ComprehendDetector, ComprehendSettings, DetectError, Detector};
use support::comprehend_server::ComprehendServer;
use support::corpus;

fn fast_backoff(max_attempts: u32) -> Backoff {
    Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
        max_attempts,
    }
}

async fn detector(server: &ComprehendServer, settings: ComprehendSettings) -> ComprehendDetector {
    ComprehendDetector::new(server.client(), settings).with_backoff(fast_backoff(4))
}

const ADVERSARIAL: &[&str] = &[
    "café owner zoë: zoë@example.fr",
    "東京の電話 +81-3-1234-5678 です",
    "😀😀👍🏽 card 4111 1111 1111 1111 🎉",
    "",
    "e\u{301}\u{301} then 192.168.0.1 and 2001:db8::1",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ssn 536-22-1234 ok",
    "IBAN DE89 3704 0044 0532 0130 00",
];

#[tokio::test]
async fn comprehend_answers_map_back_to_the_same_entities_as_local_detection() {
    let server = ComprehendServer::start().await;
    let comprehend = detector(&server, ComprehendSettings::default()).await;
    let cells: Vec<Cell> = ADVERSARIAL.iter().map(|t| Cell::new(t)).collect();
    let remote = comprehend.detect(&cells).await.unwrap();
    let local = BuiltinDetector::new().detect(&cells).await.unwrap();
    assert_eq!(remote, local);
    assert!(remote.iter().filter(|e| !e.is_empty()).count() >= 6);
    let received = server.received();
    assert_eq!(received.len(), 1, "all cells packed in one request");
    assert_eq!(received[0].operation, "DetectPiiEntities");
}

#[tokio::test]
async fn long_cells_are_segmented_over_the_wire_and_found_once() {
    let server = ComprehendServer::start().await;
    let settings = ComprehendSettings {
        max_request_bytes: 400,
        overlap_bytes: 150,
        ..ComprehendSettings::default()
    };
    let comprehend = detector(&server, settings).await;
    let long: String = (0..60)
        .map(|i| format!("é😀 row {i} mail u{i}@example.com card 4111-1111-1111-1111; "))
        .collect();
    let cells = [Cell::new(&long), Cell::new("short a@b.io")];
    let remote = comprehend.detect(&cells).await.unwrap();
    assert_eq!(remote, BuiltinDetector::new().detect(&cells).await.unwrap());
    assert_eq!(remote[0].len(), 120);
    assert!(server.received().iter().all(|r| r.bytes <= 400));
    assert!(server.received().len() > 10);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_backoff() {
    let server = ComprehendServer::start().await;
    server
        .state
        .throttle_first
        .store(2, std::sync::atomic::Ordering::SeqCst);
    server.state.fail_first.store(1, std::sync::atomic::Ordering::SeqCst);
    let comprehend = detector(&server, ComprehendSettings::default()).await;
    let found = comprehend.detect(&[Cell::new("mail a@example.com")]).await.unwrap();
    assert_eq!(found[0].len(), 1);
    assert_eq!(comprehend.usage().retries, 3);
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn a_batch_that_stays_throttled_fails_instead_of_passing_through() {
    let server = ComprehendServer::start().await;
    server
        .state
        .throttle_first
        .store(100, std::sync::atomic::Ordering::SeqCst);
    let comprehend = detector(&server, ComprehendSettings::default()).await;
    let err = comprehend.detect(&[Cell::new("mail a@example.com")]).await.unwrap_err();
    assert!(matches!(err, DetectError::Throttled { attempts: 4, .. }), "{err}");
}

#[tokio::test]
async fn a_rejected_request_fails_at_once_without_retrying() {
    let server = ComprehendServer::start().await;
    // Packing limits above Comprehend's: the server rejects the oversized text.
    let settings = ComprehendSettings {
        max_request_bytes: 200_000,
        ..ComprehendSettings::default()
    };
    let comprehend = detector(&server, settings).await;
    let big = "word ".repeat(30_000);
    let err = comprehend.detect(&[Cell::new(&big)]).await.unwrap_err();
    assert!(err.to_string().contains("TextSizeLimitExceededException"), "{err}");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn the_prefilter_skips_detection_for_requests_without_pii() {
    let server = ComprehendServer::start().await;
    let settings = ComprehendSettings {
        prefilter: true,
        ..ComprehendSettings::default()
    };
    let comprehend = detector(&server, settings).await;
    let found = comprehend.detect(&[Cell::new("nothing personal here")]).await.unwrap();
    assert!(found[0].is_empty());
    let usage = comprehend.usage();
    assert_eq!((usage.contains_requests, usage.detect_requests), (1, 0));
}

#[tokio::test]
async fn packing_bills_within_ten_percent_of_the_lower_bound() {
    let server = ComprehendServer::start().await;
    let comprehend = detector(&server, ComprehendSettings::default()).await;
    let mut rng = corpus::Rng::new(7);
    let rows: Vec<[String; 3]> = (0..3000)
        .map(|_| {
            [
                corpus::free_text_cell(&mut rng),
                corpus::free_text_cell(&mut rng),
                corpus::free_text_cell(&mut rng),
            ]
        })
        .collect();
    let cells: Vec<Cell> = rows.iter().flatten().map(|t| Cell::new(t)).collect();
    comprehend.detect(&cells).await.unwrap();
    let billed: u64 = server.received().iter().map(|r| billing_units(r.chars)).sum();
    assert_eq!(billed, comprehend.usage().billed_units);
    let chars: usize = rows.iter().flatten().map(|t| t.chars().count()).sum();
    let lower_bound = chars as f64 / 100.0;
    let one_per_cell: u64 = rows.iter().flatten().map(|t| billing_units(t.chars().count())).sum();
    assert!((billed as f64) <= lower_bound * 1.1, "{billed} vs {lower_bound}");
    assert!(one_per_cell > billed * 3, "{one_per_cell} vs {billed}");
}
