//! The pipeline benchmark's helper (`scripts/bench-pipeline.sh`), also handy for trying faults
//! by hand:
//!
//! - `generate DIR MESSAGES [ATTACHMENTS] [ROWS] [MAX_MESSAGES_PER_RUN]`: a synthetic mailbox in
//!   `DIR/mail` and a `DIR/sluice.toml` whose data goes to `DIR/data`;
//! - `histories DIR`: per execution of `DIR/data/sluice.db`, its history length, and its map
//!   runs' children (count, events per child, largest event).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice::synthetic::{MailboxShape, datasets_config, write_mailbox};
use sluice_statemachine::{Engine, SqliteExecutionStore, TaskRegistry};

fn number(args: &[String], at: usize, default: usize) -> anyhow::Result<usize> {
    match args.get(at) {
        Some(text) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("argument {at} ({text:?}) is not a number")),
        None => Ok(default),
    }
}

fn generate(dir: &Path, args: &[String]) -> anyhow::Result<()> {
    let shape = MailboxShape {
        messages: number(args, 3, 100)?,
        attachments: number(args, 4, 2)?,
        rows: number(args, 5, 5)?,
    };
    let per_run = number(args, 6, 500)?;
    write_mailbox(&dir.join("mail"), shape)?;
    let config = format!(
        "backend = \"local\"\ndata_dir = \"{}\"\n\n[gmail]\nsource = \"local\"\nmail_dir = \"{}\"\nmax_messages_per_run = {per_run}\n\n{}",
        dir.join("data").display(),
        dir.join("mail").display(),
        datasets_config()
    );
    std::fs::write(dir.join("sluice.toml"), config)?;
    println!("{shape:?} in {}", dir.display());
    Ok(())
}

fn histories(dir: &Path) -> anyhow::Result<()> {
    let store = SqliteExecutionStore::open(dir.join("data/sluice.db"))?;
    let engine = Engine::new(TaskRegistry::new()).with_store(Arc::new(store));
    let size = |events: &[sluice_statemachine::HistoryEvent]| {
        events
            .iter()
            .map(|e| serde_json::to_string(e).map(|s| s.len()).unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    for execution in engine.list_executions()? {
        let history = engine.execution_history(&execution.execution_arn)?;
        println!(
            "{} {}: {} events, largest {} bytes",
            execution.name,
            execution.status.as_str(),
            history.len(),
            size(&history)
        );
        let (mut children, mut events, mut most, mut largest) = (0usize, 0usize, 0usize, 0usize);
        for map_run in engine.list_map_runs(&execution.execution_arn)? {
            for child in engine.list_children(&map_run.map_run_arn)? {
                let history = engine.execution_history(&child.execution_arn)?;
                children += 1;
                events += history.len();
                most = most.max(history.len());
                largest = largest.max(size(&history));
            }
        }
        if children > 0 {
            println!(
                "  {children} children: {:.1} events each on average, {most} at most, largest event {largest} bytes",
                events as f64 / children as f64
            );
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: synthetic_mailbox generate DIR MESSAGES [ATTACHMENTS] [ROWS] [MAX_MESSAGES_PER_RUN] | histories DIR";
    let dir = PathBuf::from(args.get(2).ok_or_else(|| anyhow::anyhow!(usage))?);
    match args.get(1).map(String::as_str) {
        Some("generate") => generate(&dir, &args),
        Some("histories") => histories(&dir),
        _ => anyhow::bail!(usage),
    }
}
