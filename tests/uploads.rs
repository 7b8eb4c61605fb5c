//! Files put under `incoming/<dataset>/` (S3 on AWS, the local store's folder here): picked up
//! by `sluice watch`, recorded in the uploads ledger, and run through the pipeline's own
//! per-file states, so the same policy masks them and each version loads once.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn sluice(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(dir.join("sluice.toml"))
        .args(args)
        .env_remove("SLUICE_BACKEND")
        .output()
        .unwrap()
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// The uploads machine runs the pipeline's per-file states, not a copy that could drift.
#[test]
fn the_uploads_definition_runs_the_pipelines_own_per_file_states() {
    let read = |name: &str| -> Value {
        let path = format!("{}/asl/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let pipeline = read("pipeline.asl.json");
    let uploads = read("upload.asl.json");
    let per_file = &pipeline["States"]["ProcessAttachments"]["ItemProcessor"];
    let upload = &uploads["States"]["ProcessUploads"]["ItemProcessor"];
    assert_eq!(upload["StartAt"], per_file["StartAt"]);
    assert_eq!(
        upload["States"], per_file["States"],
        "asl/upload.asl.json's ProcessUploads must hold pipeline.asl.json's ProcessAttachments states as they are"
    );
    assert_eq!(
        uploads["States"]["ProcessUploads"]["ItemSelector"],
        pipeline["States"]["ProcessAttachments"]["ItemSelector"]
    );
}

#[test]
fn watched_uploads_are_masked_recorded_and_loaded_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sluice.toml")).unwrap();
    std::fs::write(dir.path().join("sluice.toml"), root).unwrap();
    let incoming = dir.path().join(".sluice/objects/incoming");
    std::fs::create_dir_all(incoming.join("customers")).unwrap();
    std::fs::create_dir_all(incoming.join("Not A Dataset")).unwrap();
    // Synthetic people: none of them exists.
    std::fs::write(
        incoming.join("customers/week 1.csv"),
        "id,name,email,phone,country\nC-301,Elena Ward,elena.ward@example.com,+1-555-0131,US\n\
         C-302,Farid Noor,farid.noor@example.net,+1-555-0132,DE\n",
    )
    .unwrap();
    std::fs::write(incoming.join("Not A Dataset/x.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(
        incoming.join("customers/broken.csv"),
        b"id,name\nC-1,\xff\xfe\x00\x00bad\n",
    )
    .unwrap();

    let first = sluice(dir.path(), &["watch", "--once", "--settle", "0", "--json"]);
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    let lines = json_lines(&first);
    assert_eq!(lines.len(), 3, "{lines:?}\n{stderr}");
    let by_key = |key: &str| {
        lines
            .iter()
            .find(|line| line["key"] == key)
            .unwrap_or_else(|| panic!("{key}: {lines:?}"))
    };
    let week = &by_key("incoming/customers/week 1.csv")["result"];
    assert_eq!(week["status"], "ingested", "{week}");
    assert_eq!(week["rows_written"], 2, "{week}");
    let skipped = &by_key("incoming/Not A Dataset/x.csv")["result"];
    assert_eq!(skipped["status"], "skipped");
    assert!(skipped["reason"].as_str().unwrap().contains("is invalid"), "{skipped}");
    let broken = &by_key("incoming/customers/broken.csv")["result"];
    assert_eq!(broken["status"], "quarantined", "{broken}");
    assert!(first.status.success(), "{stderr}");

    // Nothing in clear reached the table.
    let listed = sluice(dir.path(), &["records", "list", "customers", "--json"]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    for clear in ["Elena", "Ward", "elena.ward", "Farid", "555-0131"] {
        assert!(!text.contains(clear), "{clear:?} reached the table in clear: {text}");
    }

    // A second pass finds every version done: it says nothing and loads nothing.
    let second = sluice(dir.path(), &["watch", "--once", "--settle", "0", "--json"]);
    assert!(
        json_lines(&second).is_empty(),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    let count = sluice(dir.path(), &["records", "list", "customers", "--count"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "2");

    // A changed file is a new version: taken again, and the table follows it.
    std::fs::write(
        incoming.join("customers/week 1.csv"),
        "id,name,email,phone,country\nC-303,Gina Holt,gina.holt@example.org,+1-555-0133,IT\n",
    )
    .unwrap();
    let third = sluice(dir.path(), &["watch", "--once", "--settle", "0", "--json"]);
    let lines = json_lines(&third);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["result"]["rows_written"], 1);
    let count = sluice(dir.path(), &["records", "list", "customers", "--count"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "3");
}

/// `sluice ingest FILE` is an upload too: the same bytes twice load once, and the second time
/// says so.
#[test]
fn ingesting_the_same_bytes_again_says_they_were_taken() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), "").unwrap();
    let file = dir.path().join("stock.csv");
    std::fs::write(&file, "sku,qty\nS-1,4\nS-2,5\n").unwrap();
    let args = ["ingest", "--dataset", "stock", file.to_str().unwrap(), "--json"];
    let first: Value = serde_json::from_slice(&sluice(dir.path(), &args).stdout).unwrap();
    assert_eq!(first["rows_written"], 2, "{first}");
    let again = sluice(dir.path(), &args);
    assert!(again.status.success());
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["already_done"], true, "{again}");
    assert_eq!(again["ledger_state"], "ingested", "{again}");
    // The command's own copy under incoming/ is gone; the original is under raw/.
    let incoming = dir.path().join(".sluice/objects/incoming/stock");
    assert_eq!(std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0), 0);
}
