//! Lambda: a run begins. Takes the mailbox's lease (or reports who holds it) and reads the
//! run's options from the execution input.

use sluice_gmail::steps::run;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = sluice_gmail::lambda::run_deps_from_env().await?;
    let deps = &deps;
    sluice_core::lambda::serve_step(|input| run::begin(input, deps)).await
}
