//! Lambda: a run ends. Summarizes the mailbox's attachment ledger and releases its lease.

use sluice_gmail::steps::run;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = sluice_gmail::lambda::run_deps_from_env().await?;
    let deps = &deps;
    sluice_core::lambda::serve_step(|input| run::finish(input, deps)).await
}
