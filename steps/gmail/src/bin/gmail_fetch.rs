//! Lambda: fetches wanted attachments, stores each original under `raw/<dataset>/<id>/<file>`
//! ([`RawObjectSink`], as the local runner does), records it in the ledger and writes the run's
//! work list.

use std::sync::Arc;

use sluice_gmail::RawObjectSink;
use sluice_gmail::fetch::{self, FetchDeps};
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let sink = Arc::new(RawObjectSink::from_config(
        context.backends.objects.clone(),
        &context.config,
    ));
    let deps = FetchDeps::new(
        &context.oauth.authorizer,
        context.backends.control.clone(),
        sink,
        &context.http,
    )
    .with_work_lists(context.backends.objects.clone());
    let deps = &deps;
    sluice_core::lambda::serve_step(|input| fetch::run(input, deps)).await
}
