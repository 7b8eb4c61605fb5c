//! `cargo bench -p sluice-gmail --bench fetch_throughput`: fetches 500 messages with two CSV
//! attachments each from the fake Gmail API, over the embedded backends, and reports messages
//! per second and the Gmail quota units spent; then runs again and checks nothing is fetched
//! twice.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use sluice_gmail::fetch::{self, FetchInput};
use support::Harness;

const MESSAGES: usize = 500;

fn message(n: usize) -> Vec<u8> {
    let csv = |kind: &str| {
        let mut body = String::from("id,amount,comment\n");
        for row in 0..40 {
            body.push_str(&format!("{n}-{row},{}.{:02},{kind} row {row}\n", row * 3, row % 100));
        }
        body
    };
    let b64 = |text: String| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    format!(
        "From: reports@example.com\r\nTo: data@example.org\r\nSubject: export {n}\r\nMessage-ID: <bench-{n}@sluice.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nExport {n}.\r\n--b\r\nContent-Type: text/csv; name=\"orders-{n}.csv\"\r\nContent-Disposition: attachment; filename=\"orders-{n}.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b\r\nContent-Type: text/csv; name=\"refunds-{n}.csv\"\r\nContent-Disposition: attachment; filename=\"refunds-{n}.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        b64(csv("order")),
        b64(csv("refund"))
    )
    .into_bytes()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for concurrency in [4usize, 16] {
            let h = Harness::local_with(|s| {
                s.concurrency = concurrency;
                s.page_size = 100;
            })
            .await;
            for n in 0..MESSAGES {
                h.fake.add_eml(&message(n));
            }
            h.authorize().await;
            let deps = h.fetch_deps(h.raw_sink());

            let started = Instant::now();
            let first = fetch::run(FetchInput::default(), &deps).await.unwrap();
            let elapsed = started.elapsed();
            assert_eq!(first.attachments_fetched, 2 * MESSAGES as u64);
            let (lists, gets, attachments) = h.fake.gmail_calls();
            println!(
                "concurrency {concurrency:>2}: {MESSAGES} messages, {} attachments in {:.2} s = {:.0} messages/s; \
                 quota {} units (list {lists}, get {gets}, attachments.get {attachments}; fake counted {})",
                first.attachments_fetched,
                elapsed.as_secs_f64(),
                MESSAGES as f64 / elapsed.as_secs_f64(),
                first.quota_units,
                h.fake.quota_units(),
            );

            let started = Instant::now();
            let second = fetch::run(FetchInput::default(), &deps).await.unwrap();
            assert_eq!(second.attachments_fetched, 0, "nothing is fetched twice");
            assert_eq!(h.fake.gmail_calls().2, attachments, "no attachments.get on the rerun");
            println!(
                "               rerun: {} fetched, {} messages already done, quota {} units, {:.2} s",
                second.attachments_fetched,
                second.messages_already_done,
                second.quota_units,
                started.elapsed().as_secs_f64(),
            );
        }
    });
}
