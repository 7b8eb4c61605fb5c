//! Lambda: fetches wanted attachments and hands each to the sink. Standalone it writes the
//! originals under `raw/` ([`RawObjectSink`]); the pipeline binds the S3 stage instead.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use sluice_core::StepFailure;
use sluice_gmail::RawObjectSink;
use sluice_gmail::fetch::{self, FetchDeps, FetchInput};
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
    );
    let deps = &deps;
    lambda_runtime::run(service_fn(|event: LambdaEvent<FetchInput>| async move {
        fetch::run(event.payload, deps).await.map_err(StepFailure::from)
    }))
    .await
}
