//! The ASL engine on its own: the logic behind `sluice validate`, `sluice exec` and
//! `sluice conformance`, as plain functions the `sluice` binary wires to its arguments. Each returns the exit code (or the
//! counts) and writes what the user sees to `out`.

mod compare;
mod conformance;

pub use conformance::{ConformanceCase, conformance, run_case};

use serde_json::{Value, json};
use sluice_statemachine::MockConfig;
use sluice_statemachine::{Engine, ExecutionOutcome, StartExecution};
use sluice_statemachine::{ParseError, StateMachine};
use sluice_statemachine::{TaskRegistry, validate};
use std::io::Write;
use std::path::Path;

/// Exit code for a definition, input or file that cannot be used at all.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when `exec` ends parked on task tokens (nothing can answer them in-process).
pub const EXIT_WAITING: i32 = 3;

/// `sluice validate FILE...`: prints `FILE: ok` or one line per problem; exit 0 only if all
/// files are valid.
pub fn validate_files(paths: &[&Path], out: &mut dyn Write) -> i32 {
    let mut code = 0;
    for path in paths {
        let shown = path.display();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(out, "{shown}: cannot read the file: {e}");
                code = 1;
                continue;
            }
        };
        let problems = validate(&text);
        if problems.is_empty() {
            let _ = writeln!(out, "{shown}: ok");
        } else {
            code = 1;
            for problem in problems {
                let _ = writeln!(out, "{shown}: {problem}");
            }
        }
    }
    code
}

/// How `sluice exec` runs a definition besides its input.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExecSetup<'a> {
    /// A Step Functions Local mock config and the test case of it to use.
    pub mock_config: Option<&'a Path>,
    pub test_case: Option<&'a str>,
    /// The S3 stand-in of a Distributed Map: object `KEY` of `BUCKET` is `DIR/BUCKET/KEY`.
    pub s3_dir: Option<&'a Path>,
    /// Waits, retry intervals and timeouts take no real time; the clock starts at the real
    /// time and moves as if they had (the history and `$$` timestamps read that way).
    pub virtual_clock: bool,
}

/// `sluice exec --definition FILE --input JSON [--mock-config FILE --test-case NAME] [--s3-dir DIR]
/// [--virtual-clock]`: prints the output JSON (exit 0) or `{"Error":..,"Cause":..}` (exit 1).
/// Without a mock config no task handlers are bound, so Task states fail with `States.Runtime`.
pub async fn exec(definition: &Path, input: &str, setup: ExecSetup<'_>, out: &mut dyn Write) -> i32 {
    let ExecSetup {
        mock_config,
        test_case,
        s3_dir,
        virtual_clock,
    } = setup;
    match prepare_exec(definition, input, mock_config, test_case) {
        Ok((machine, request)) => {
            // The executions (a Distributed Map's children among them) go to a scratch SQLite
            // file, not memory: a million children must not all be held at once.
            let scratch = match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "error: cannot make a scratch directory for the execution store: {e}"
                    );
                    return EXIT_USAGE;
                }
            };
            let store = match sluice_statemachine::SqliteExecutionStore::open(scratch.path().join("executions.db")) {
                Ok(store) => store,
                Err(e) => {
                    let _ = writeln!(out, "error: cannot open the scratch execution store: {e}");
                    return EXIT_USAGE;
                }
            };
            let mut engine = Engine::new(TaskRegistry::new()).with_store(std::sync::Arc::new(store));
            if virtual_clock {
                engine = engine.with_clock(std::sync::Arc::new(sluice_statemachine::ManualClock::new(
                    chrono::Utc::now(),
                )));
            }
            if let Some(dir) = s3_dir {
                engine = engine.with_objects(std::sync::Arc::new(sluice_statemachine::DirectoryObjectStorage::new(
                    dir,
                )));
            }
            match engine.start_execution(&machine, request).await {
                Ok(report) => print_outcome(&report.outcome, out),
                Err(e) => {
                    let _ = writeln!(out, "error: {e}");
                    EXIT_USAGE
                }
            }
        }
        Err(message) => {
            let _ = writeln!(out, "error: {message}");
            EXIT_USAGE
        }
    }
}

fn prepare_exec(
    definition: &Path,
    input: &str,
    mock_config: Option<&Path>,
    test_case: Option<&str>,
) -> Result<(StateMachine, StartExecution), String> {
    let text = std::fs::read_to_string(definition).map_err(|e| format!("cannot read {}: {e}", definition.display()))?;
    let machine = StateMachine::from_json(&text).map_err(|e| match e {
        ParseError::Invalid(problems) => format!(
            "{} is not a valid state machine:\n  {}",
            definition.display(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
        other => format!("{}: {other}", definition.display()),
    })?;
    let input: Value = serde_json::from_str(input).map_err(|e| format!("--input is not valid JSON: {e}"))?;
    let machine_name = definition
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.trim_end_matches(".asl").to_string())
        .unwrap_or_else(|| "StateMachine".to_string());
    let mocks = match (mock_config, test_case) {
        (Some(path), Some(case)) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let config = MockConfig::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let wanted = config
                .state_machine_names()
                .contains(&machine_name.as_str())
                .then_some(machine_name.as_str());
            Some(
                config
                    .test_case(wanted, case)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            )
        }
        (None, None) => None,
        _ => return Err("--mock-config and --test-case go together".into()),
    };
    let mut request = StartExecution::new(machine_name, input);
    request.mocks = mocks;
    Ok((machine, request))
}

fn print_outcome(outcome: &ExecutionOutcome, out: &mut dyn Write) -> i32 {
    match outcome {
        ExecutionOutcome::Succeeded { output } => {
            let _ = writeln!(out, "{}", sluice_statemachine::json::to_compact(output));
            0
        }
        ExecutionOutcome::Failed { error, cause } => {
            let _ = writeln!(out, "{}", json!({"Error": error, "Cause": cause}));
            1
        }
        ExecutionOutcome::Waiting { task_tokens } => {
            let _ = writeln!(out, "{}", json!({"Status": "WAITING", "TaskTokens": task_tokens}));
            EXIT_WAITING
        }
    }
}

/// `sluice test-state`'s arguments as given on the command line.
pub struct TestStateCli<'a> {
    pub definition: &'a str,
    pub state_name: &'a str,
    pub input: &'a str,
    pub variables: Option<&'a str>,
    pub inspection_level: &'a str,
    pub mock: Option<&'a str>,
    pub context: Option<&'a str>,
    pub state_configuration: Option<&'a str>,
}

fn parse_test_state(args: &TestStateCli<'_>) -> Result<sluice_statemachine::test_state::TestStateRequest, String> {
    use sluice_statemachine::test_state::{InspectionLevel, StateConfiguration, TestStateMock, TestStateRequest};
    let definition_text = if args.definition.trim_start().starts_with('{') {
        args.definition.to_string()
    } else {
        std::fs::read_to_string(args.definition)
            .map_err(|e| format!("cannot read --definition {}: {e}", args.definition))?
    };
    let definition: Value =
        serde_json::from_str(&definition_text).map_err(|e| format!("--definition is not valid JSON: {e}"))?;
    let input: Value = serde_json::from_str(args.input).map_err(|e| format!("--input is not valid JSON: {e}"))?;
    let variables = match args.variables {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(variables)) => variables,
            Ok(_) => return Err("--variables must be a JSON object".into()),
            Err(e) => return Err(format!("--variables is not valid JSON: {e}")),
        },
    };
    let inspection_level = InspectionLevel::named(args.inspection_level).ok_or_else(|| {
        format!(
            "--inspection-level must be INFO, DEBUG or TRACE, not {}",
            args.inspection_level
        )
    })?;
    let (mock, field_validation) = match args.mock {
        None => (None, Default::default()),
        Some(text) => {
            let mock: Value = serde_json::from_str(text).map_err(|e| format!("--mock is not valid JSON: {e}"))?;
            let (mock, mode) = TestStateMock::from_member(&mock).map_err(|e| format!("--mock: {e}"))?;
            (Some(mock), mode)
        }
    };
    let context = match args.context {
        None => None,
        Some(text) => Some(serde_json::from_str(text).map_err(|e| format!("--context is not valid JSON: {e}"))?),
    };
    let configuration = match args.state_configuration {
        None => StateConfiguration::default(),
        Some(text) => {
            let member: Value =
                serde_json::from_str(text).map_err(|e| format!("--state-configuration is not valid JSON: {e}"))?;
            StateConfiguration::from_member(&member).map_err(|e| format!("--state-configuration: {e}"))?
        }
    };
    Ok(TestStateRequest {
        definition,
        name: args.state_name.to_string(),
        input,
        variables,
        inspection_level,
        mock,
        field_validation,
        context,
        configuration,
    })
}

/// `sluice test-state`: prints TestState's response as JSON (exit 0 whatever the state did,
/// as the API answers; exit 2 when the request itself is wrong).
pub async fn test_state(args: TestStateCli<'_>, out: &mut dyn Write) -> i32 {
    let request = match parse_test_state(&args) {
        Ok(request) => request,
        Err(message) => {
            let _ = writeln!(out, "error: {message}");
            return EXIT_USAGE;
        }
    };
    match sluice_statemachine::test_state::test_state(Engine::new(TaskRegistry::new()), request).await {
        Ok(response) => {
            let text = serde_json::to_string_pretty(&response).unwrap_or_default();
            let _ = writeln!(out, "{text}");
            0
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            EXIT_USAGE
        }
    }
}
