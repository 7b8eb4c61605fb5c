//! One module per subcommand, plus what they share.

pub mod api;
pub mod asl;
pub mod cognito;
pub mod graph;
pub mod ingest;
pub mod pii;
pub mod records;
pub mod run;
pub mod serve;
pub mod stepfunctions;
pub mod watch;

use std::path::Path;

use anyhow::Context;
use sluice_core::Config;

/// The configuration: `--config`, else `./sluice.toml` when present, else defaults (with the
/// embedded backends under `./.sluice/`). The environment overlays either.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let default = Path::new("sluice.toml");
    match path {
        Some(path) => Config::load(path).with_context(|| format!("loading {}", path.display())),
        None if default.is_file() => Config::load(default).context("loading ./sluice.toml"),
        None => Config::from_toml_with_env("", "built-in defaults", Path::new("."), std::env::vars())
            .context("reading SLUICE_* environment variables"),
    }
}

/// Logs for interactive commands: warnings and errors only unless RUST_LOG says otherwise.
/// Without `RUST_LOG`: warnings, and the access and audit logs (who read or re-identified what).
const DEFAULT_LOG_FILTER: &str = "warn,sluice::access=info,sluice::audit=info";

pub fn init_cli_tracing() -> LogWriter {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    // A request must not wait on stderr: lines go to a buffer that a writer thread empties,
    // never dropped (see `sluice::log_sink`).
    let (writer, guard) = sluice::log_sink::log_sink(std::io::stderr());
    // Colours for a terminal only: a log file gets plain lines.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter::filter_fn};
    let is_access = |metadata: &tracing::Metadata<'_>| metadata.target() == sluice_api::ACCESS_LOG_TARGET;
    let general = tracing_subscriber::fmt::layer()
        .with_ansi(terminal)
        .with_writer(writer.clone())
        .compact()
        .with_filter(filter_fn(move |metadata| !is_access(metadata)));
    let access = sluice::access_log::AccessLogLayer::new(writer).with_filter(filter_fn(is_access));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(general)
        .with(access)
        .try_init()
        .is_ok();
    LogWriter(installed.then_some(guard))
}

/// Keeps the log writer thread until the command ends; dropping it flushes what is buffered.
#[must_use = "logs written after it is dropped are lost"]
pub struct LogWriter(#[allow(dead_code)] Option<sluice::log_sink::LogSinkGuard>);
