//! `sluice graph`: the state machine drawn as the Step Functions console draws it (SVG),
//! optionally with the path one stored execution took.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use sluice_asl_graph::{ExecutionPath, render_svg};
use sluice_statemachine::{ExecutionStore, ExecutionSummary, SqliteExecutionStore, StateMachine};

#[derive(Args)]
pub struct GraphArgs {
    /// The state machine definition (ASL JSON), e.g. asl/pipeline.asl.json.
    definition: PathBuf,
    /// Colour the path this execution took (from `.sluice/sluice.db`): its ARN, or its
    /// name (the id `sluice run` prints).
    #[arg(long, value_name = "ID")]
    execution: Option<String>,
    /// Where to write the SVG.
    #[arg(short, long, value_name = "FILE.svg")]
    output: PathBuf,
}

pub async fn run(config_path: Option<&Path>, args: GraphArgs) -> anyhow::Result<ExitCode> {
    let shown = args.definition.display();
    let text = std::fs::read_to_string(&args.definition).with_context(|| format!("reading {shown}"))?;
    let machine = StateMachine::from_json(&text).with_context(|| format!("{shown} is not a usable state machine"))?;
    let path = match &args.execution {
        None => None,
        Some(id) => Some(execution_path(config_path, id)?),
    };
    let svg = render_svg(&machine, path.as_ref());
    std::fs::write(&args.output, svg).with_context(|| format!("writing {}", args.output.display()))?;
    match &path {
        Some(path) => println!(
            "wrote {} (execution {}: {})",
            args.output.display(),
            path.name().unwrap_or_default(),
            path.state().as_str()
        ),
        None => println!("wrote {}", args.output.display()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The path of a stored execution, found by ARN or by name.
fn execution_path(config_path: Option<&Path>, id: &str) -> anyhow::Result<ExecutionPath> {
    let config = super::load_config(config_path)?;
    let db = config.data_dir.join("sluice.db");
    if !db.is_file() {
        bail!(
            "no executions are stored yet: {} does not exist (start one with `sluice run`)",
            db.display()
        );
    }
    let store = SqliteExecutionStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let executions = store
        .list()
        .with_context(|| format!("listing executions in {}", db.display()))?;
    let found = find_execution(&executions, id)?;
    let history = store
        .history(&found.execution_arn)
        .with_context(|| format!("reading the history of {}", found.execution_arn))?;
    Ok(ExecutionPath::from_history(&history).named(found.name.clone()))
}

fn find_execution<'e>(executions: &'e [ExecutionSummary], id: &str) -> anyhow::Result<&'e ExecutionSummary> {
    if let Some(exact) = executions.iter().find(|e| e.execution_arn == id) {
        return Ok(exact);
    }
    let named: Vec<&ExecutionSummary> = executions
        .iter()
        .filter(|e| e.name == id || e.execution_arn.ends_with(&format!(":{id}")))
        .collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => bail!("no execution '{id}' is stored (`sluice executions` lists them)"),
        many => bail!(
            "'{id}' names {} executions; give the full ARN: {}",
            many.len(),
            many.iter()
                .map(|e| e.execution_arn.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_statemachine::ExecutionStatus;

    fn summary(arn: &str, name: &str) -> ExecutionSummary {
        ExecutionSummary {
            execution_arn: arn.into(),
            name: name.into(),
            state_machine_name: "Pipeline".into(),
            status: ExecutionStatus::Succeeded,
            start_date: chrono::Utc::now(),
            stop_date: None,
        }
    }

    #[test]
    fn executions_are_found_by_arn_or_name() {
        let all = [
            summary("arn:aws:states:local:0:execution:Pipeline:run-1", "run-1"),
            summary("arn:aws:states:local:0:execution:Other:run-2", "run-2"),
        ];
        let by_arn = find_execution(&all, "arn:aws:states:local:0:execution:Other:run-2").unwrap();
        assert_eq!(by_arn.name, "run-2");
        assert_eq!(find_execution(&all, "run-1").unwrap().name, "run-1");
        let missing = find_execution(&all, "run-3").unwrap_err().to_string();
        assert!(missing.contains("no execution 'run-3'"), "{missing}");
    }

    #[test]
    fn an_ambiguous_name_asks_for_the_arn() {
        let all = [
            summary("arn:aws:states:local:0:execution:Pipeline:same", "same"),
            summary("arn:aws:states:local:0:execution:Other:same", "same"),
        ];
        let message = find_execution(&all, "same").unwrap_err().to_string();
        assert!(message.contains("names 2 executions"), "{message}");
    }
}
