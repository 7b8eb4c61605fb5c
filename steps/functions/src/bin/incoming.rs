//! The `sluice-incoming` Lambda: S3's events for the bucket's `incoming/`, from SQS, each file
//! registered in the uploads ledger and handed to the uploads state machine
//! ([`sluice_functions::incoming`]).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sluice_functions::serve_incoming().await
}
