//! `sluice-incoming`: S3's "object created" events for the bucket's `incoming/`, delivered by
//! SQS. Each object version is registered in the uploads ledger
//! ([`sluice_stage::upload::register_upload`]) and one execution of the uploads state machine
//! is started for it, named after its ledger entry, so an event S3 or SQS delivers twice
//! registers nothing new and starts nothing new.
//!
//! A message whose files could not be registered or started is answered as a batch item
//! failure: SQS delivers it again, and after the queue's receive limit moves it to the
//! dead-letter queue (where an alarm fires). The other messages of the batch are done.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_core::{Backends, Config};
use sluice_stage::upload::{Registration, UploadWork, register_upload};

/// Starts the uploads state machine: Step Functions on AWS, a fake in tests.
#[async_trait]
pub trait UploadStarter: Send + Sync {
    /// Starts execution `name` with `input`. An execution of that name that exists already
    /// is the same work, started by an earlier delivery: that is no error.
    async fn start(&self, name: &str, input: &Value) -> Result<(), String>;
}

/// What the function works with.
pub struct IncomingDeps {
    pub config: Arc<Config>,
    pub backends: Backends,
    pub starter: Arc<dyn UploadStarter>,
}

/// The execution that processes `work`: named after its ledger entry (Step Functions names
/// are at most 80 characters of `[A-Za-z0-9_-]`).
pub fn execution_name(work: &UploadWork) -> String {
    let digest = Sha256::digest(work.ledger.source.as_bytes());
    format!("upload-{}", hex::encode(&digest[..20]))
}

/// One SQS batch: the answer Lambda's `ReportBatchItemFailures` reads.
pub async fn handle_batch(event: &Value, deps: &IncomingDeps) -> Value {
    let mut failures = Vec::new();
    for message in event["Records"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let id = message["messageId"].as_str().unwrap_or_default();
        if let Err(why) = handle_message(message, deps).await {
            tracing::error!(message_id = id, reason = %why, "upload event not handled; SQS delivers it again");
            failures.push(json!({ "itemIdentifier": id }));
        }
    }
    json!({ "batchItemFailures": failures })
}

async fn handle_message(message: &Value, deps: &IncomingDeps) -> Result<(), String> {
    let body = message["body"].as_str().ok_or("the message has no body")?;
    let event: Value = serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    // S3 checks a new notification's queue with a test event: nothing to do.
    if event["Event"] == "s3:TestEvent" {
        return Ok(());
    }
    // EventBridge delivers one object per event, S3 notifications a list of records. S3
    // notifications URL-encode the key; the key is tried as decoded, then as written, so a
    // name with a literal `+` or `%` is found either way.
    let keys: Vec<String> = match event["detail"]["object"]["key"].as_str() {
        Some(key) => vec![key.to_string()],
        None => event["Records"]
            .as_array()
            .ok_or("the body is neither an S3 notification nor an EventBridge event")?
            .iter()
            .filter(|record| {
                record["eventName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("ObjectCreated"))
            })
            .map(|record| {
                record["s3"]["object"]["key"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "a record has no s3.object.key".to_string())
            })
            .collect::<Result<_, _>>()?,
    };
    for key in keys {
        handle_key(&key, deps).await?;
    }
    Ok(())
}

async fn handle_key(written: &str, deps: &IncomingDeps) -> Result<(), String> {
    let decoded = decode_key(written);
    let mut registration = Registration::Gone;
    let mut key = decoded.as_str();
    for candidate in [decoded.as_str(), written] {
        key = candidate;
        registration = register_upload(
            deps.backends.objects.as_ref(),
            &deps.backends.control,
            &deps.config,
            candidate,
            None,
            false,
        )
        .await
        .map_err(|e| format!("registering {candidate}: {e}"))?;
        if registration != Registration::Gone || candidate == written {
            break;
        }
    }
    let Registration::Ready(mut work) = registration else {
        // Done before, skipped with its reason, or gone: recorded (or nothing to record).
        return Ok(());
    };
    let name = execution_name(&work);
    work.ledger.run = Some(name.clone());
    deps.starter
        .start(&name, &json!({ "files": [work] }))
        .await
        .map_err(|e| format!("starting {name} for {key}: {e}"))?;
    tracing::info!(key, execution = %name, "upload handed to the uploads state machine");
    Ok(())
}

/// S3 event keys are URL-encoded, with `+` for a space.
pub fn decode_key(encoded: &str) -> String {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// [`UploadStarter`] on Step Functions.
pub struct StepFunctionsStarter {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl StepFunctionsStarter {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: String) -> StepFunctionsStarter {
        StepFunctionsStarter {
            client,
            state_machine_arn,
        }
    }
}

#[async_trait]
impl UploadStarter for StepFunctionsStarter {
    async fn start(&self, name: &str, input: &Value) -> Result<(), String> {
        let started = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match started {
            Ok(_) => Ok(()),
            // Started by an earlier delivery of the same event (and perhaps finished).
            Err(err) if err.as_service_error().is_some_and(|e| e.is_execution_already_exists()) => Ok(()),
            Err(err) => Err(sluice_core::aws::sdk_error("Step Functions", "StartExecution", err).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        assert_eq!(
            decode_key("incoming/orders/jan+2026%28final%29.csv"),
            "incoming/orders/jan 2026(final).csv"
        );
        assert_eq!(decode_key("incoming/caf%C3%A9/x.csv"), "incoming/café/x.csv");
        assert_eq!(decode_key("incoming/a/100%25.csv"), "incoming/a/100%.csv");
    }
}
