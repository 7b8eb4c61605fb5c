//! What every step Lambda's `main` does: logs, configuration and backends once per process, then
//! one step call per event, its error turned into the [`StepFailure`] whose name the state
//! machine's retries and catches match.

use std::future::Future;

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Backends, Config, StepFailure};

/// Starts logging, reads the configuration from the environment and builds its backends.
pub async fn environment() -> Result<(Config, Backends), lambda_runtime::Error> {
    crate::telemetry::init();
    let config = Config::from_env()?;
    let backends = Backends::from_config(&config).await?;
    Ok((config, backends))
}

/// Serves `step` until the runtime stops: each event's payload in, the step's output out.
pub async fn serve_step<I, O, E, F, Fut>(step: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    StepFailure: From<E>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<I>| {
        let output = step(event.payload);
        async move { output.await.map_err(StepFailure::from) }
    }))
    .await
}

/// Serves a step whose work belongs to a ledger entry: the payload may carry
/// `"ledger": {"mailbox", "source"}`, and the step's outcome then moves that entry.
pub async fn serve_tracked_step<I, O, E, F, Fut>(
    control: std::sync::Arc<dyn crate::Table>,
    step: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize + crate::ledger::LedgerOutcome,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    StepFailure: From<E>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<crate::ledger::Tracked<I>>| {
        let crate::ledger::Tracked { input, ledger } = event.payload;
        let output = step(input);
        let control = control.clone();
        async move {
            let output = output.await.map_err(StepFailure::from)?;
            crate::ledger::track(&control, ledger.as_ref(), &output)
                .await
                .map_err(<StepFailure as From<crate::BackendError>>::from)?;
            Ok::<_, StepFailure>(output)
        }
    }))
    .await
}
