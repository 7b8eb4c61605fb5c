//! `sluice pii scan FILE`: the PII detectors over a text file, one JSON object per entity.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_pii::{Engine, PiiSettings};

#[derive(Subcommand)]
pub enum PiiCommand {
    /// Print `{"line","begin","end","type","score"}` for every entity found (code points, end exclusive).
    Scan(ScanArgs),
}

#[derive(Args)]
pub struct ScanArgs {
    /// A UTF-8 text file.
    file: PathBuf,
    /// Which detector to use (default: pii.engine from the config, else builtin).
    #[arg(long)]
    engine: Option<Engine>,
}

pub async fn run(config_path: Option<&Path>, command: PiiCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    match command {
        PiiCommand::Scan(args) => {
            let settings = PiiSettings::from_config(&config).context("reading [pii]")?;
            let detector = settings.detector(&config, args.engine).await;
            let file = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
            let mut out = std::io::stdout().lock();
            sluice_pii::scan::scan(std::io::BufReader::new(file), detector.as_ref(), &mut out)
                .await
                .with_context(|| format!("scanning {}", args.file.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
