//! `sluice records get DATASET ID`: one stored record as JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use sluice_core::{AttrValue, Backends, ItemKey};

#[derive(Subcommand)]
pub enum RecordsCommand {
    /// Print one record as JSON (`{"id": ..., <columns>}`).
    Get { dataset: String, id: String },
}

pub async fn run(config_path: Option<&Path>, command: RecordsCommand) -> anyhow::Result<ExitCode> {
    super::init_cli_tracing();
    let config = super::load_config(config_path)?;
    let backends = Backends::from_config(&config).await.context("opening the backends")?;
    match command {
        RecordsCommand::Get { dataset, id } => {
            let item = backends.records.get(&ItemKey::new(dataset.clone(), id.clone())).await?;
            let Some(item) = item else {
                eprintln!("no record {id:?} in dataset {dataset:?}");
                return Ok(ExitCode::FAILURE);
            };
            let mut record = serde_json::Map::new();
            record.insert("id".into(), serde_json::Value::String(id));
            if let Some(AttrValue::M(data)) = item.get(sluice_ingest::DATA_ATTRIBUTE) {
                for (column, value) in data {
                    record.insert(column.clone(), value.to_json());
                }
            }
            println!("{}", serde_json::to_string_pretty(&record)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
