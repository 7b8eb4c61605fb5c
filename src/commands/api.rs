//! `sluice api get DATASET ID --client NAME`: one record read through the REST API as a
//! consumer does, with a client-credentials token for `[tokens.clients.NAME]` (fetched once,
//! cached encrypted in the control table, refreshed when the API answers 401).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_client::SluiceClient;
use sluice_tokens::TokenSettings;
use sluice_tokens::client_credentials::ClientCredentials;

#[derive(Subcommand)]
pub enum ApiCommand {
    /// Print one record from the API (exit 1 when it answers 404).
    Get(GetArgs),
}

#[derive(Args)]
pub struct GetArgs {
    dataset: String,
    id: String,
    /// The client in `[tokens.clients.<NAME>]` whose token to use.
    #[arg(long)]
    client: String,
    /// The API's base URL.
    #[arg(long, env = "SLUICE_API_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The record with its tokens restored (needs `records:reidentify`).
    #[arg(long)]
    reidentified: bool,
}

pub async fn run(config_path: Option<&Path>, command: ApiCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let ApiCommand::Get(args) = command;
    let settings = TokenSettings::from_config(&config).context("reading [tokens]")?;
    let Some(client_settings) = settings.clients.get(&args.client).cloned() else {
        let known: Vec<&str> = settings.clients.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no client {:?} in [tokens.clients] (configured: {})",
            args.client,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let backends = sluice_core::Backends::from_config(&config)
        .await
        .context("opening the backends")?;
    let credentials = ClientCredentials::new(
        &args.client,
        client_settings,
        backends.control.clone(),
        backends.secrets.clone(),
    )?;
    let client = SluiceClient::new(&args.url, credentials)?;
    let record = if args.reidentified {
        client.get_reidentified_record(&args.dataset, &args.id).await
    } else {
        client.get_record(&args.dataset, &args.id).await
    }
    .with_context(|| {
        format!(
            "reading record {:?} of dataset {} from {}",
            args.id, args.dataset, args.url
        )
    })?;
    match record {
        Some(record) => {
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "no record {:?} in dataset {:?} (or this client may not read it)",
                args.id, args.dataset
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
