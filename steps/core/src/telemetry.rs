//! Process setup shared by every binary: logs and the TLS crypto provider.

use tracing_subscriber::EnvFilter;

/// Installs aws-lc-rs as the process's rustls provider, so the AWS SDK and the Google client
/// agree on one. Safe to call more than once.
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Logs as JSON on Lambda (CloudWatch parses it), human-readable elsewhere. `RUST_LOG` filters.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if on_lambda {
        builder.json().with_current_span(false).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
}

/// Everything a binary does first.
pub fn init() {
    install_crypto_provider();
    init_tracing();
}
