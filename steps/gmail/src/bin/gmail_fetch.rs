//! Lambda: fetches wanted attachments and hands each to the sink. Standalone it writes the
//! originals under `raw/` ([`RawObjectSink`]); the pipeline binds the S3 stage instead.

use std::sync::Arc;

use sluice_gmail::RawObjectSink;
use sluice_gmail::fetch::{self, FetchDeps};
use sluice_gmail::lambda::LambdaContext;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let context = LambdaContext::from_env().await?;
    let sink = Arc::new(RawObjectSink::new(context.backends.objects.clone()));
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
