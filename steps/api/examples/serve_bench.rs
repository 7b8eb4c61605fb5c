//! `sluice serve` as a benchmark target: the router on the embedded SQLite backend with 10,000
//! seeded records, an issued API key and a JWT from a loopback test IdP. Writes the credentials
//! to the file named by the second argument for the load generator, then serves until Ctrl-C.
//!
//! cargo run --release -p sluice-api --example serve_bench -- 127.0.0.1:8787 /tmp/sluice-bench.env

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;

use sluice_api::{ApiState, serve};
use sluice_core::testing::local_test_backends;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().unwrap_or_else(|| "127.0.0.1:8787".into()).parse()?;
    let credentials_file = args.next().unwrap_or_else(|| "sluice-bench.env".into());
    let dir = tempfile::tempdir()?;
    let (_, backends) = local_test_backends(dir.path());
    support::seed_records(backends.records.as_ref(), "orders", 10_000).await;
    let (reader_key, _) = support::issue_keys(&backends, "orders").await;
    let idp = support::TestIdp::start().await;
    let mut claims = idp.claims("records:read");
    claims["exp"] = serde_json::json!(chrono::Utc::now().timestamp() + 3600);
    let jwt = idp.sign(jsonwebtoken::Algorithm::RS256, Some(support::RSA_KID), &claims);
    // Synthetic credentials of a throwaway store, for the load generator only.
    std::fs::write(&credentials_file, format!("API_KEY={reader_key}\nJWT={jwt}\n"))?;
    let state = ApiState::new(idp.api_settings(), &backends).await?;
    eprintln!("serving 10000 records of dataset orders on http://{addr}");
    serve(addr, state).await?;
    Ok(())
}
