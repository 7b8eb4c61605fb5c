//! `sluice records list`: a dataset's records in key order across pages, or their number.

use std::process::Command;

fn sluice(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(dir.join("sluice.toml"))
        .args(args)
        .env_remove("SLUICE_BACKEND")
        .output()
        .unwrap()
}

#[test]
fn records_list_pages_through_a_dataset_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), "").unwrap();
    // More rows than one page of the table, so the listing must page.
    let mut csv = String::from("sku,qty\n");
    for i in 0..2_500 {
        csv.push_str(&format!("S{i:05},{}\n", i % 7));
    }
    let file = dir.path().join("stock.csv");
    std::fs::write(&file, csv).unwrap();
    let ingest = sluice(dir.path(), &["ingest", "--dataset", "stock", file.to_str().unwrap()]);
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));

    let count = sluice(dir.path(), &["records", "list", "stock", "--count"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "2500");
    let listed = sluice(dir.path(), &["records", "list", "stock", "--json"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2500);
    assert_eq!(lines[0]["sku"], "S00000");
    assert_eq!(lines[2499]["sku"], "S02499");
    assert_eq!(lines[3]["qty"], 3);

    let none = sluice(dir.path(), &["records", "list", "nothing", "--count"]);
    assert_eq!(String::from_utf8_lossy(&none.stdout).trim(), "0");
}
