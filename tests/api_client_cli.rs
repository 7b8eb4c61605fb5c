//! `sluice api get DATASET ID --client NAME` against `sluice serve`, authorized by a fake
//! Cognito-like token endpoint (client-credentials grant): the record comes back for a client
//! with `records:read`, a client without it is refused with the API's 403, and an unknown
//! client name is named.

use std::process::{Command, Output, Stdio};

use sluice_client::testing::FakeTokenEndpoint;
use sluice_core::{Backends, Config, SecretValue};

fn sluice(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(dir.join("sluice.toml"))
        .args(args)
        .env_remove("SLUICE_BACKEND")
        .env_remove("SLUICE_API_URL")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_a_record_with_its_client_credentials_and_is_refused_without_the_scope() {
    let idp = FakeTokenEndpoint::start(&[
        ("reader-app", "s3cret-r", &["records:read"]),
        ("ops-app", "s3cret-o", &["runs:start"]),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config_text = format!(
        r#"
[api.jwt]
issuer = "{issuer}"
client_ids = ["reader-app", "ops-app"]
scope_prefix = "sluice/"

[tokens.clients.reader]
token_url = "{token_url}"
client_id = "reader-app"
client_secret_name = "clients/reader"

[tokens.clients.ops]
token_url = "{token_url}"
client_id = "ops-app"
client_secret_name = "clients/ops"
"#,
        issuer = idp.issuer(),
        token_url = idp.token_url()
    );
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, &config_text).unwrap();
    let config = Config::load(&config_path).unwrap();
    {
        let backends = Backends::local(&config).unwrap();
        for (name, secret) in [("clients/reader", "s3cret-r"), ("clients/ops", "s3cret-o")] {
            backends.secrets.put(name, &SecretValue::new(secret)).await.unwrap();
        }
    }
    let csv = dir.path().join("orders.csv");
    std::fs::write(&csv, "id,amount,city\nO-1,12.50,Lyon\nO-2,3,Graz\n").unwrap();
    let dir_path = dir.path().to_path_buf();
    let blocking = move |args: Vec<String>| {
        let dir = dir_path.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sluice(&dir, &args)
        })
    };
    let ingest = blocking(vec![
        "ingest".into(),
        csv.display().to_string(),
        "--dataset".into(),
        "orders".into(),
    ])
    .await
    .unwrap();
    assert!(ingest.status.success(), "{}", String::from_utf8_lossy(&ingest.stderr));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(&config_path)
        .args(["serve", "--addr", &addr])
        .env_remove("SLUICE_BACKEND")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut listening = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            listening = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let url = format!("http://{addr}");
    let get = |client: &str, id: &str| {
        blocking(
            ["api", "get", "orders", id, "--client", client, "--url", url.as_str()]
                .map(String::from)
                .to_vec(),
        )
    };
    let read = if listening {
        Some(get("reader", "O-1").await.unwrap())
    } else {
        None
    };
    let missing = get("reader", "O-9").await.unwrap();
    let refused = get("ops", "O-1").await.unwrap();
    let unknown = get("nobody", "O-1").await.unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    let read = read.expect("sluice serve did not listen within 10 s");
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let record: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(record, serde_json::json!({"id": "O-1", "amount": 12.5, "city": "Lyon"}));
    assert_eq!(
        idp.tokens_issued(),
        2,
        "one token per client: the reader's second call used the cache"
    );

    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no record \"O-9\""));

    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("403 insufficient_scope") && why.contains("records:read"),
        "{why}"
    );
    assert!(!why.contains("s3cret"), "{why}");

    assert!(!unknown.status.success());
    let why = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        why.contains("no client \"nobody\"") && why.contains("ops, reader"),
        "{why}"
    );
}
