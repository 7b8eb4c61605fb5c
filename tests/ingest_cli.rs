//! `sluice ingest FILE`: a file handed over on the command line takes the pipeline's own path
//! (stage, PII detection, masking under the dataset's policy, ingest): no configured entity
//! reaches the records table in clear.

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

/// Synthetic people: none of them exists.
const CUSTOMERS: &str = "id,name,email,phone,country\n\
C-101,Alice Martin,alice.martin@example.com,+1-555-0101,US\n\
C-102,Bruno Keller,bruno.keller@example.net,+1-555-0102,DE\n\
C-103,Chiara Rossi,chiara.rossi@example.org,+1-555-0103,IT\n";

#[test]
fn sluice_ingest_masks_pii_under_the_dataset_policy_before_the_table() {
    let dir = tempfile::tempdir().unwrap();
    // The repository's own policies: customers' names and emails are tokenized, phones masked.
    let root = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sluice.toml")).unwrap();
    std::fs::write(dir.path().join("sluice.toml"), root).unwrap();
    let file = dir.path().join("customers.csv");
    std::fs::write(&file, CUSTOMERS).unwrap();
    let ingest = sluice(
        dir.path(),
        &["ingest", "--dataset", "customers", file.to_str().unwrap(), "--json"],
    );
    assert!(
        ingest.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ingest.stdout),
        String::from_utf8_lossy(&ingest.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&ingest.stdout).unwrap();
    assert_eq!(report["rows_written"], 3, "{report}");

    let listed = sluice(dir.path(), &["records", "list", "customers", "--json"]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    for clear in [
        "Alice",
        "Martin",
        "alice.martin",
        "example.com",
        "555-0101",
        "Bruno",
        "Chiara",
    ] {
        assert!(!text.contains(clear), "{clear:?} reached the table in clear: {text}");
    }
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], "C-101", "the key column is kept");
    assert!(first["email"].as_str().unwrap().starts_with("EMAIL_"), "{first}");
    assert_eq!(first["phone"], "*******0101");
    // Nothing clear in any object the run wrote after staging, either.
    let clean = walk(&dir.path().join(".sluice/objects/clean"));
    assert!(!clean.is_empty());
    for path in clean {
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(!body.contains("alice.martin"), "{} holds clear PII", path.display());
    }
}

/// A ragged file follows `ingest.on_bad_rows` through every stage (the PII stage included):
/// with `reject_rows` its good rows load and the bad ones go to the rejects file; with
/// `quarantine` the whole file is refused and nothing loads.
#[test]
fn a_ragged_file_follows_on_bad_rows_in_every_stage() {
    let ragged = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/csv/bad/ragged.csv")).unwrap();
    for (settings, exit, written) in [("", 0, 2), ("[ingest]\non_bad_rows = \"quarantine\"\n", 2, 0)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sluice.toml"), settings).unwrap();
        let file = dir.path().join("ragged.csv");
        std::fs::write(&file, &ragged).unwrap();
        let ingest = sluice(
            dir.path(),
            &["ingest", "--dataset", "ragged", file.to_str().unwrap(), "--json"],
        );
        let stdout = String::from_utf8_lossy(&ingest.stdout);
        assert_eq!(
            ingest.status.code(),
            Some(exit),
            "{settings:?}: {stdout}{}",
            String::from_utf8_lossy(&ingest.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["rows_written"], written, "{settings:?}: {report}");
        if exit == 0 {
            assert_eq!(report["rows_rejected"], 2, "{report}");
            assert!(
                report["rejects_key"].as_str().unwrap().ends_with(".rejects.csv"),
                "{report}"
            );
        } else {
            assert_eq!(report["quarantined"], true, "{report}");
        }
        let count = sluice(dir.path(), &["records", "list", "ragged", "--count"]);
        assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), written.to_string());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A dataset without a policy masks PII everywhere but in its key column, which names the
/// records: masking it would collapse them into one.
#[test]
fn key_columns_are_kept_unless_the_policy_names_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[datasets.contacts]\nkey_columns = [\"email\"]\n",
    )
    .unwrap();
    let file = dir.path().join("contacts.csv");
    std::fs::write(
        &file,
        "note,email\ncall Alice Martin,alice.martin@example.com\ncall Bruno Keller,bruno.keller@example.net\nmail chiara.rossi@example.org,chiara.rossi@example.org\n",
    )
    .unwrap();
    let ingest = sluice(dir.path(), &["ingest", "--dataset", "contacts", file.to_str().unwrap()]);
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));
    let count = sluice(dir.path(), &["records", "list", "contacts", "--count"]);
    assert_eq!(
        String::from_utf8_lossy(&count.stdout).trim(),
        "3",
        "no records collapsed"
    );
    let listed =
        String::from_utf8_lossy(&sluice(dir.path(), &["records", "list", "contacts", "--json"]).stdout).to_string();
    let third: serde_json::Value = serde_json::from_str(listed.lines().nth(2).unwrap()).unwrap();
    assert_eq!(third["email"], "chiara.rossi@example.org", "the key is kept");
    assert!(!third["note"].as_str().unwrap().contains("chiara"), "{third}");
}

/// The charset an attachment's Content-Type declares is honoured (here windows-1252, with no
/// `encoding` configured for the dataset): the text arrives as the sender wrote it.
#[test]
fn a_declared_attachment_charset_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/mail/inline_disposition_windows1252_csv.eml"
        ),
        mail.join("prices.eml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!("[gmail]\nsource = \"local\"\nmail_dir = \"{}\"\n", mail.display()),
    )
    .unwrap();
    let run = sluice(dir.path(), &["run"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("prices: 1 ingested"), "{stdout}");
    let listed =
        String::from_utf8_lossy(&sluice(dir.path(), &["records", "list", "prices", "--json"]).stdout).to_string();
    assert!(listed.contains("Crème brûlée"), "{listed}");
}

/// A message over the size cap, and a part nested deeper than the part limit, are recorded as
/// skipped with their reason; the rest of the mailbox goes on, in this run and the next.
#[test]
fn oversized_and_too_deep_mail_is_recorded_as_skipped_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mail/two_csv_attachments.eml"),
        mail.join("a-good.eml"),
    )
    .unwrap();
    // 65 MiB, sparse: over the 64 MiB a message may have.
    let big = std::fs::File::create(mail.join("b-huge.eml")).unwrap();
    big.set_len(65 * 1024 * 1024).unwrap();
    let mut deep = String::from("From: a@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
    for level in 0..40 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
        ));
    }
    deep.push_str("Content-Type: text/csv; name=\"deep.csv\"\r\nContent-Disposition: attachment; filename=\"deep.csv\"\r\n\r\nid\r\n1\r\n");
    for level in (0..40).rev() {
        deep.push_str(&format!("--b{level}--\r\n"));
    }
    std::fs::write(mail.join("c-deep.eml"), deep).unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!("[gmail]\nsource = \"local\"\nmail_dir = \"{}\"\n", mail.display()),
    )
    .unwrap();
    for _ in 0..2 {
        let run = sluice(dir.path(), &["run"]);
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
        assert!(stdout.contains("orders: 1 ingested"), "{stdout}");
    }
    let first = sluice(dir.path(), &["run"]);
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        stdout.contains("(none): 2 skipped"),
        "both recorded in the ledger: {stdout}"
    );
    let count = sluice(dir.path(), &["records", "list", "orders", "--count"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "5");
}

/// The data directory and its database are private to their owner, whatever the umask.
#[cfg(unix)]
#[test]
fn the_data_directory_and_its_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), "").unwrap();
    let file = dir.path().join("stock.csv");
    std::fs::write(&file, "sku,qty\nS1,1\n").unwrap();
    let ingest = sluice(dir.path(), &["ingest", "--dataset", "stock", file.to_str().unwrap()]);
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = dir.path().join(".sluice");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("sluice.db")), 0o600);
    for companion in ["sluice.db-wal", "sluice.db-shm"] {
        let path = data.join(companion);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{companion}");
        }
    }
}

/// A file handed over on the command line is not a mail attachment: the attachment limit does
/// not refuse it (`stage.max_file_bytes` does, far higher).
#[test]
fn a_handed_over_file_has_its_own_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        "[stage]\nmax_attachment_bytes = 64\nmax_file_bytes = 100000\n",
    )
    .unwrap();
    let mut csv = String::from("sku,qty\n");
    for i in 0..200 {
        csv.push_str(&format!("S{i:04},{i}\n"));
    }
    let file = dir.path().join("stock.csv");
    std::fs::write(&file, &csv).unwrap();
    let ingest = sluice(dir.path(), &["ingest", "--dataset", "stock", file.to_str().unwrap()]);
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stdout));
    let count = sluice(dir.path(), &["records", "list", "stock", "--count"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "200");
    std::fs::write(dir.path().join("sluice.toml"), "[stage]\nmax_file_bytes = 100\n").unwrap();
    let refused = sluice(dir.path(), &["ingest", "--dataset", "stock2", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "over max_file_bytes: quarantined");
}

/// An attachment whose base64 is malformed is not decoded leniently into garbage rows: it is
/// recorded as quarantined with the reason, and the good ones of the mailbox go on.
#[test]
fn an_attachment_with_malformed_base64_is_quarantined_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mail/two_csv_attachments.eml"),
        mail.join("a-good.eml"),
    )
    .unwrap();
    std::fs::write(
        mail.join("b-broken.eml"),
        "From: a@example.com\r\nSubject: broken\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n\
         --x\r\nContent-Type: text/csv; name=\"sales.csv\"\r\nContent-Disposition: attachment; filename=\"sales.csv\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\naWQsYW1vdW50CjEsMTAK!!not*base64\r\n--x--\r\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sluice.toml"),
        format!("[gmail]\nsource = \"local\"\nmail_dir = \"{}\"\n", mail.display()),
    )
    .unwrap();
    let run = sluice(dir.path(), &["run"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("orders: 1 ingested"), "{stdout}");
    assert!(stdout.contains("base64 transfer encoding is malformed"), "{stdout}");
    let count = sluice(dir.path(), &["records", "list", "sales", "--count"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "0", "no garbage rows");
}

/// `sluice pii reidentify` gives back what `sluice ingest` tokenized, from that dataset's vault
/// only, and writes an audit line that names the dataset but never a value.
#[test]
fn tokens_are_reidentified_from_their_own_datasets_vault_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sluice.toml")).unwrap();
    // customers_eu: the same policy as customers, under its own keys.
    let eu = "\n[pii.policies.customers_eu]\ndefault = \"mask\"\nskip_columns = [\"id\", \"country\"]\n\
              entities = { EMAIL = \"tokenize\" }\n";
    std::fs::write(dir.path().join("sluice.toml"), format!("{root}{eu}")).unwrap();
    let file = dir.path().join("customers.csv");
    std::fs::write(&file, CUSTOMERS).unwrap();
    let ingest = sluice(
        dir.path(),
        &["ingest", "--dataset", "customers", file.to_str().unwrap()],
    );
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));
    let listed = sluice(dir.path(), &["records", "get", "customers", "C-102"]);
    let record: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let token = record["email"].as_str().unwrap().to_string();
    assert!(token.starts_with("EMAIL_"), "{record}");

    let restored = sluice(dir.path(), &["pii", "reidentify", "customers", &token]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&restored.stdout).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"token": token, "value": "bruno.keller@example.net"})
    );
    let audit = String::from_utf8_lossy(&restored.stderr).to_string();
    assert!(
        audit.contains("sluice::audit") && audit.contains("customers"),
        "{audit}"
    );
    assert!(!audit.contains("bruno") && !audit.contains(&token), "{audit}");

    // The same file in another dataset: its own key, so its token differs, and neither vault
    // answers for the other's token.
    let ingest = sluice(
        dir.path(),
        &["ingest", "--dataset", "customers_eu", file.to_str().unwrap()],
    );
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));
    let wrong = sluice(dir.path(), &["pii", "reidentify", "customers_eu", &token]);
    assert_eq!(wrong.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(line["value"], serde_json::Value::Null);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not in dataset customers_eu's vault"));
    let none = sluice(dir.path(), &["pii", "reidentify", "never_loaded", &token]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("has no vault"));
}
