//! `sluice pii scan FILE`: the PII detectors over a text file, one JSON object per entity.
//! `sluice pii reidentify DATASET TOKEN...`: the originals behind tokens, from the dataset's
//! vault (audited; the data directory's owner holds the keys, so no scope is asked here).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_pii::{Engine, PiiSettings};

#[derive(Subcommand)]
pub enum PiiCommand {
    /// Print `{"line","begin","end","type","score"}` for every entity found (code points, end exclusive).
    Scan(ScanArgs),
    /// Print `{"token","value"}` for each token from DATASET's vault (`"value": null` and exit
    /// code 1 when the vault does not hold it, e.g. another dataset's token).
    Reidentify(ReidentifyArgs),
}

#[derive(Args)]
pub struct ReidentifyArgs {
    /// The dataset whose vault holds the tokens.
    dataset: String,
    /// Tokens as the records show them (`EMAIL_3f1c...`).
    #[arg(required = true)]
    tokens: Vec<String>,
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
        PiiCommand::Reidentify(args) => reidentify(&config, args).await,
    }
}

async fn reidentify(config: &sluice_core::Config, args: ReidentifyArgs) -> anyhow::Result<ExitCode> {
    use sluice_core::vault::{VaultReader, is_token};

    sluice_core::dataset::DatasetName::parse(&args.dataset)?;
    let backends = sluice_core::Backends::from_config(config)
        .await
        .context("opening the backends")?;
    let vault = VaultReader::open(backends.control.as_ref(), backends.secrets.as_ref(), &args.dataset)
        .await
        .with_context(|| format!("opening the vault of dataset {}", args.dataset))?
        .with_context(|| {
            format!(
                "dataset {} has no vault: nothing of it was ever tokenized",
                args.dataset
            )
        })?;
    let principal = std::env::var("USER").unwrap_or_else(|_| "local".into());
    // Only token-shaped arguments are looked up; anything else cannot be in the vault.
    let tokens = args.tokens.iter().map(String::as_str).filter(|t| is_token(t));
    let originals = vault
        .reidentify_all(tokens)
        .await
        .with_context(|| format!("reading the vault of dataset {}", args.dataset))?;
    let mut out = std::io::stdout().lock();
    let (mut restored, mut unknown) = (0usize, 0usize);
    for token in &args.tokens {
        let value = originals.get(token);
        match value {
            Some(_) => restored += 1,
            None => unknown += 1,
        }
        writeln!(out, "{}", serde_json::json!({"token": token, "value": value}))?;
    }
    tracing::info!(
        target: sluice_api::AUDIT_LOG_TARGET,
        principal = %principal,
        dataset = %args.dataset,
        restored,
        unknown_tokens = unknown,
        "tokens re-identified"
    );
    if unknown > 0 {
        eprintln!(
            "error: {unknown} of {} tokens are not in dataset {}'s vault",
            args.tokens.len(),
            args.dataset
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
