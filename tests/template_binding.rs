//! `infra/template.yaml` against the table the local runner binds by (`sluice::runner::FUNCTIONS`):
//! what ships and what runs locally are the same functions, under the same names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sluice::runner::lambda_host::{LambdaBinaries, LocalRun};
use sluice::runner::template::{SamTemplate, SubstitutionTarget};
use sluice::runner::{FUNCTIONS, PIPELINE_DEFINITION};
use sluice_core::Config;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> SamTemplate {
    SamTemplate::load(&repo_root().join("infra/template.yaml")).unwrap()
}

#[test]
fn every_bound_function_has_its_substitution_and_a_template_function_with_its_binary() {
    let template = template();
    let substitutions = template.definition_substitutions().unwrap();
    let functions = template.functions().unwrap();
    for function in &FUNCTIONS {
        let (substitution, binary) = (function.substitution, function.binary);
        match substitutions.get(substitution) {
            Some(SubstitutionTarget::Function {
                binary: theirs,
                logical_id,
            }) => assert_eq!(
                theirs, binary,
                "${{{substitution}}} is {logical_id}, whose binary is {theirs}, not {binary}"
            ),
            other => panic!("the state machine's ${{{substitution}}} is not a function: {other:?}"),
        }
        assert!(
            functions.iter().any(|f| f.binary == binary),
            "no AWS::Serverless::Function builds {binary}"
        );
    }
}

#[test]
fn every_function_substitution_of_the_state_machine_is_bound_locally() {
    let bound: BTreeSet<(&str, &str)> = FUNCTIONS.iter().map(|f| (f.substitution, f.binary)).collect();
    for (substitution, target) in template().definition_substitutions().unwrap() {
        if let SubstitutionTarget::Function { binary, logical_id } = target {
            assert!(
                bound.contains(&(substitution.as_str(), binary.as_str())),
                "${{{substitution}}} ({logical_id}, binary {binary}) is not in sluice::runner::FUNCTIONS"
            );
        }
    }
}

#[test]
fn the_definition_uses_exactly_the_template_substitutions() {
    let placeholders: BTreeSet<String> = PIPELINE_DEFINITION
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect();
    let substitutions: BTreeSet<String> = template().definition_substitutions().unwrap().into_keys().collect();
    assert_eq!(placeholders, substitutions);
}

/// The uploads state machine names exactly its definition's placeholders, each bound to the
/// function the pipeline's machine binds it to (they run the same per-file states).
#[test]
fn the_uploads_machine_binds_its_placeholders_as_the_pipeline_does() {
    let definition = sluice::runner::UPLOAD_DEFINITION;
    let placeholders: BTreeSet<String> = definition
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect();
    let template = template();
    let uploads = template.substitutions_of("upload.asl.json").unwrap();
    assert_eq!(placeholders, uploads.keys().cloned().collect::<BTreeSet<_>>());
    let pipeline = template.definition_substitutions().unwrap();
    for (name, target) in &uploads {
        assert_eq!(Some(target), pipeline.get(name), "{name}");
    }
}

#[test]
fn the_template_gives_every_pipeline_function_a_local_environment() {
    let text = "backend = \"aws\"\n[aws]\nbucket = \"b\"\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:1\"\n[gmail]\nsource = \"gmail\"\nredirect_uri = \"http://127.0.0.1:8080/oauth/callback\"\n";
    let config = Config::from_toml(text, "test", Path::new(".")).unwrap();
    let binaries = LambdaBinaries::from_template(
        Path::new("target/debug"),
        &template(),
        &LocalRun {
            config: &config,
            config_document: text,
            config_overrides: &[],
            base_dir: Path::new("."),
        },
    )
    .unwrap();
    let names: BTreeSet<&str> = binaries.functions.keys().map(String::as_str).collect();
    let bound: BTreeSet<&str> = FUNCTIONS
        .iter()
        .map(|f| f.binary)
        .chain([sluice_functions::OAUTH_CALLBACK_BINARY])
        .collect();
    assert_eq!(
        names, bound,
        "the Tasks' functions, and the OAuth callback that resumes a run"
    );
    for (binary, function) in &binaries.functions {
        let env = &function.environment;
        let reads = |path: &str| {
            FUNCTIONS
                .iter()
                .any(|f| f.binary == binary && f.reads.iter().any(|r| r.path() == path))
        };
        if reads("aws.bucket") {
            assert_eq!(env["SLUICE_AWS__BUCKET"], "b", "{binary}");
        } else {
            assert!(
                !env.contains_key("SLUICE_AWS__BUCKET"),
                "{binary} is given a bucket it never reads"
            );
        }
        if reads("aws.control_table") {
            assert_eq!(env["SLUICE_AWS__CONTROL_TABLE"], config.aws.control_table, "{binary}");
        }
        assert_eq!(
            env["SLUICE_CONFIG"], text,
            "{binary}: the local document rides in SLUICE_CONFIG"
        );
        assert!(
            !env.contains_key("SLUICE_AWS__KMS_KEY_ID"),
            "{binary}: no local KMS key"
        );
        assert!(function.timeout.as_secs() >= 10, "{binary}");
        assert_eq!(function.handler, "bootstrap");
    }
    let fetch = &binaries.functions["sluice-gmail-fetch"];
    assert_eq!((fetch.timeout.as_secs(), fetch.memory_mb), (900, 1024));
    assert_eq!(
        binaries.functions["sluice-consent-request"].environment["SLUICE_GMAIL__REDIRECT_URI"],
        "http://127.0.0.1:8080/oauth/callback",
        "the OAuthRedirectUri parameter is the local redirect URI"
    );
}

#[test]
fn a_value_with_no_local_counterpart_names_the_function_and_the_variable() {
    // No redirect URI locally: the template falls back to the HTTP API's URL, which a local run
    // does not have.
    let text = "backend = \"aws\"\n[aws]\nbucket = \"b\"\n";
    let config = Config::from_toml(text, "test", Path::new(".")).unwrap();
    let err = LambdaBinaries::from_template(
        Path::new("target/debug"),
        &template(),
        &LocalRun {
            config: &config,
            config_document: text,
            config_overrides: &[],
            base_dir: Path::new("."),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ConsentRequestFunction") && err.contains("SLUICE_GMAIL__REDIRECT_URI") && err.contains("HttpApi"),
        "{err}"
    );
}

/// Every variable the template gives a binary is a setting its step reads, and every setting
/// that only the template can give right (a bucket, a table, the mailbox) is given.
#[test]
fn every_binary_gets_exactly_the_settings_it_reads() {
    use sluice_core::config::setting_of_variable;
    use sluice_functions::{Reads, STANDALONE_FUNCTIONS};

    let template = template();
    let reads_of: Vec<(&str, &[Reads])> = FUNCTIONS
        .iter()
        .map(|f| (f.binary, f.reads))
        .chain(STANDALONE_FUNCTIONS)
        .collect();
    let functions = template.functions().unwrap();
    let mut problems = Vec::new();
    for function in &functions {
        let Some((_, reads)) = reads_of.iter().find(|(binary, _)| *binary == function.binary) else {
            problems.push(format!(
                "{} builds {}, which no table lists",
                function.logical_id, function.binary
            ));
            continue;
        };
        let given: Vec<Vec<String>> = function.variable_names().filter_map(setting_of_variable).collect();
        for name in function.variable_names() {
            // Every binary logs (RUST_LOG) and reads its document and backend kind.
            if matches!(name, "RUST_LOG" | "SLUICE_CONFIG" | "SLUICE_BACKEND") {
                continue;
            }
            match setting_of_variable(name) {
                Some(path) if reads.iter().any(|r| r.covers(&path)) => {}
                Some(_) => problems.push(format!(
                    "{} ({}) is given {name}, which its step never reads",
                    function.logical_id, function.binary
                )),
                None => problems.push(format!(
                    "{} ({}) is given {name}, which no Sluice binary reads",
                    function.logical_id, function.binary
                )),
            }
        }
        for read in reads.iter() {
            if let Reads::Given(path) = read {
                let path: Vec<String> = path.split('.').map(str::to_string).collect();
                if !given.contains(&path) {
                    problems.push(format!(
                        "{} ({}) is not given {}, which its step needs from the template",
                        function.logical_id,
                        function.binary,
                        path.join(".")
                    ));
                }
            }
        }
    }
    for (binary, _) in &reads_of {
        if !functions.iter().any(|f| f.binary == *binary) {
            problems.push(format!("no template function builds {binary}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check above catches what it is for: a variable a step never reads, and one it needs.
#[test]
fn an_unread_or_missing_variable_is_named() {
    use sluice_functions::Reads;
    let stage = FUNCTIONS.iter().find(|f| f.binary == "sluice-stage").unwrap();
    let query = ["gmail".to_string(), "query".to_string()];
    assert!(
        !stage.reads.iter().any(|r| r.covers(&query)),
        "stage does not read the Gmail query"
    );
    let bucket = ["aws".to_string(), "bucket".to_string()];
    assert!(stage.reads.contains(&Reads::Given("aws.bucket")) && stage.reads.iter().any(|r| r.covers(&bucket)));
    let dataset_key = ["datasets".to_string(), "orders".to_string(), "key_columns".to_string()];
    assert!(
        stage.reads.iter().any(|r| r.covers(&dataset_key)),
        "a whole section covers its keys"
    );
}
