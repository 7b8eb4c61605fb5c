//! Test support shared by every crate's integration tests: the moto endpoint (or a loud skip),
//! and configs/backends with fresh, unique resource names so tests never share state.

use std::path::Path;

use crate::{Backends, Config};

/// The emulator endpoint exported by `scripts/test.sh`. When it is absent, tests that need it
/// print a SKIPPED line, unless `SLUICE_REQUIRE_AWS_TESTS=1`, where a missing endpoint panics
/// so CI can never skip silently.
pub fn aws_endpoint() -> Option<String> {
    match std::env::var("SLUICE_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("SLUICE_REQUIRE_AWS_TESTS").as_deref() == Ok("1") {
                panic!(
                    "SLUICE_REQUIRE_AWS_TESTS=1 but SLUICE_TEST_AWS_ENDPOINT is not set: start moto (scripts/test.sh does)"
                );
            }
            eprintln!(
                "SKIPPED: SLUICE_TEST_AWS_ENDPOINT is not set, so the AWS half of this test did not run (use scripts/test.sh)"
            );
            None
        }
    }
}

/// A unique lowercase name for a bucket, table or secret prefix.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 6]>()))
}

/// A `backend = "aws"` config at `endpoint` with its own bucket, tables and secret prefix.
pub fn aws_test_config(endpoint: &str) -> Config {
    let id = unique_name("sluice-test");
    let document = format!(
        r#"
        backend = "aws"
        [aws]
        region = "us-east-1"
        endpoint_url = "{endpoint}"
        bucket = "{id}"
        records_table = "{id}-records"
        control_table = "{id}-control"
        secret_prefix = "{id}/"
        "#
    );
    match Config::from_toml(&document, "aws test config", Path::new(".")) {
        Ok(config) => config,
        Err(err) => panic!("the AWS test config is invalid: {err}"),
    }
}

/// Provisioned AWS backends at `endpoint`, each call with fresh resources.
pub async fn aws_test_backends(endpoint: &str) -> (Config, Backends) {
    let config = aws_test_config(endpoint);
    if let Err(err) = Backends::provision_aws(&config).await {
        panic!("cannot provision the bucket and tables on {endpoint}: {err}");
    }
    let backends = Backends::aws(&config).await;
    (config, backends)
}

/// Embedded backends under `dir`.
pub fn local_test_backends(dir: &Path) -> (Config, Backends) {
    let config = match Config::from_toml("", "local test config", dir) {
        Ok(config) => config,
        Err(err) => panic!("the local test config is invalid: {err}"),
    };
    match Backends::local(&config) {
        Ok(backends) => (config, backends),
        Err(err) => panic!("cannot open local backends in {}: {err}", dir.display()),
    }
}
