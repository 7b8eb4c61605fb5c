//! A crash mid-ingest (the process killed between batches) followed by a rerun leaves the
//! table exactly as one clean run does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_core::{Config, Item, PageRequest};

const ROWS: usize = 200_000;

fn write_csv(path: &Path) {
    let mut text = String::from("id,name,amount,active,zip\n");
    for i in 0..ROWS {
        text.push_str(&format!(
            "{i:07},name-{i},{}.{},{},{:05}\n",
            i % 997,
            i % 100,
            i % 2 == 0,
            i % 99_999
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("sluice.toml");
    std::fs::write(&path, "[stage]\nmax_attachment_bytes = 100000000\n").unwrap();
    path
}

fn sluice(config: &Path, csv: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .arg("--config")
        .arg(config)
        .args(["ingest", "--dataset", "crash"])
        .arg(csv)
        .env_remove("SLUICE_BACKEND")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn record_count(dir: &Path) -> usize {
    let Ok(connection) = rusqlite::Connection::open_with_flags(
        dir.join(".sluice/sluice.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    connection
        .query_row("SELECT count(*) FROM items WHERE tbl = 'records'", [], |row| {
            row.get::<_, i64>(0)
        })
        .map(|n| n as usize)
        .unwrap_or(0)
}

async fn dump(dir: &Path) -> Vec<Item> {
    let config = Config::load(&dir.join("sluice.toml")).unwrap();
    let backends = sluice_core::Backends::local(&config).unwrap();
    let mut items = Vec::new();
    let mut request = PageRequest {
        limit: 1000,
        ..PageRequest::default()
    };
    loop {
        let page = backends.records.query("crash", &request).await.unwrap();
        items.extend(page.items);
        match page.last_sk {
            Some(last) => request.start_after = Some(last),
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_mid_ingest_then_rerun_matches_a_clean_run() {
    let crashed = tempfile::tempdir().unwrap();
    let clean = tempfile::tempdir().unwrap();
    let csv = crashed.path().join("orders.csv");
    write_csv(&csv);
    let crashed_config = write_config(crashed.path());
    let clean_config = write_config(clean.path());

    let mut child = sluice(&crashed_config, &csv).spawn().unwrap();
    let started = Instant::now();
    let mut seen_at_kill = 0;
    while started.elapsed() < Duration::from_secs(120) {
        seen_at_kill = record_count(crashed.path());
        if seen_at_kill > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the first run was killed, not finished");
    let after_kill = record_count(crashed.path());
    assert!(
        seen_at_kill > 0 && after_kill < ROWS,
        "killed mid-ingest: {after_kill} of {ROWS} rows were in"
    );

    assert!(
        sluice(&crashed_config, &csv).status().unwrap().success(),
        "the rerun completes"
    );
    assert!(
        sluice(&clean_config, &csv).status().unwrap().success(),
        "the clean run completes"
    );
    let (after_rerun, after_clean) = (dump(crashed.path()).await, dump(clean.path()).await);
    assert_eq!(after_rerun.len(), ROWS);
    assert!(
        after_rerun == after_clean,
        "the table after crash + rerun equals the clean run's"
    );
}
