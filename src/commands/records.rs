//! `sluice records get DATASET ID`: one stored record as JSON; `sluice records list DATASET`:
//! all of a dataset's records (paged from the table), or their number.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use sluice_core::{AttrValue, Backends, Item, ItemKey, PageRequest};

#[derive(Subcommand)]
pub enum RecordsCommand {
    /// Print one record as JSON (`{"id": ..., <columns>}`).
    Get { dataset: String, id: String },
    /// Print every record of a dataset, one JSON object per line, in key order.
    List {
        dataset: String,
        /// Print only how many records the dataset holds.
        #[arg(long)]
        count: bool,
        /// Print each record as compact JSON (the default prints it indented).
        #[arg(long)]
        json: bool,
    },
}

/// A stored item as the record users see: its id and its columns.
fn record_of(id: &str, item: &Item) -> serde_json::Value {
    let mut record = serde_json::Map::new();
    record.insert("id".into(), serde_json::Value::String(id.to_string()));
    if let Some(AttrValue::M(data)) = item.get(sluice_core::item::DATA_ATTRIBUTE) {
        for (column, value) in data {
            record.insert(column.clone(), value.to_json());
        }
    }
    serde_json::Value::Object(record)
}

pub async fn run(config_path: Option<&Path>, command: RecordsCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let backends = Backends::from_config(&config).await.context("opening the backends")?;
    match command {
        RecordsCommand::Get { dataset, id } => {
            let item = backends.records.get(&ItemKey::new(dataset.clone(), id.clone())).await?;
            let Some(item) = item else {
                eprintln!("no record {id:?} in dataset {dataset:?}");
                return Ok(ExitCode::FAILURE);
            };
            println!("{}", serde_json::to_string_pretty(&record_of(&id, &item))?);
            Ok(ExitCode::SUCCESS)
        }
        RecordsCommand::List { dataset, count, json } => {
            let mut request = PageRequest {
                limit: 1000,
                ..PageRequest::default()
            };
            let mut total = 0u64;
            loop {
                let page = backends.records.query(&dataset, &request).await?;
                total += page.items.len() as u64;
                if !count {
                    for item in &page.items {
                        let id = item.get("sk").and_then(AttrValue::as_str).unwrap_or_default();
                        let record = record_of(id, item);
                        if json {
                            println!("{}", serde_json::to_string(&record)?);
                        } else {
                            println!("{}", serde_json::to_string_pretty(&record)?);
                        }
                    }
                }
                match page.last_sk {
                    Some(last) => request.start_after = Some(last),
                    None => break,
                }
            }
            if count {
                println!("{total}");
            } else if total == 0 {
                eprintln!("no records in dataset {dataset:?}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
