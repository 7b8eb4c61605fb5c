//! `sluice cognito-template [-o FILE]`: the API consumers' Cognito stack (user pool, resource
//! server, one client-credentials app client per `[tokens.consumers]` entry) that
//! `infra/template.yaml` nests as `infra/cognito.json`. Run it again after changing consumers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct CognitoTemplateArgs {
    /// Write the template here instead of printing it (e.g. infra/cognito.json).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(config_path: Option<&Path>, args: CognitoTemplateArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let tokens = sluice_tokens::TokenSettings::from_config(&config).context("reading [tokens]")?;
    let template = sluice::cognito::template(&tokens)?;
    match args.output {
        Some(path) => std::fs::write(&path, template).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{template}"),
    }
    Ok(ExitCode::SUCCESS)
}
