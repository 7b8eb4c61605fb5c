//! Every command the README shows, run as a new user runs it: in a fresh copy of the repository
//! (its tracked files only: no `.sluice/`, no earlier run), from the repository root, with no
//! `--config`. The README's command table may not name a command this test does not run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const README: &str = include_str!("../README.md");

/// The repository's tracked files, copied into a new directory: what `git clone` gives.
fn fresh_clone() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git must be installed to list the repository's files");
    assert!(
        listed.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let clone = tempfile::tempdir().unwrap();
    for file in listed.stdout.split(|&byte| byte == 0).filter(|name| !name.is_empty()) {
        let relative = PathBuf::from(String::from_utf8(file.to_vec()).unwrap());
        let source = root.join(&relative);
        // A file deleted in the working tree but not yet in the index is not in a clone either.
        if !source.is_file() {
            continue;
        }
        let target = clone.path().join(&relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
    clone
}

/// `sluice ARGS` in `dir` with only the environment the README's command sets.
fn sluice_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("SLUICE_") || name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn succeeded(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{what}` failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The subcommands the README's command table lists (`sluice records get ...` gives
/// `records get`), in the order they appear.
fn readme_commands() -> BTreeSet<String> {
    let mut commands = BTreeSet::new();
    for line in README.lines().filter(|line| line.starts_with("| `sluice ")) {
        let cell = line.split('|').nth(1).unwrap_or_default();
        for command in cell.split('`').skip(1).step_by(2) {
            let words: Vec<&str> = command
                .split_whitespace()
                .skip(1)
                .take_while(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .collect();
            let words = match words.as_slice() {
                [group @ ("records" | "pii" | "stepfunctions"), sub, ..] => format!("{group} {sub}"),
                [single, ..] => single.to_string(),
                [] => continue,
            };
            commands.insert(words);
        }
    }
    commands
}

#[test]
fn the_readme_names_the_commands_this_test_runs() {
    let ran: BTreeSet<String> = [
        "run",
        "resume",
        "executions",
        "history",
        "redrive",
        "graph",
        "ingest",
        "watch",
        "records get",
        "records list",
        "serve",
        "stepfunctions serve",
        "api",
        "cognito-template",
        "pii scan",
        "pii reidentify",
        "validate",
        "exec",
        "conformance",
        "test-state",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        readme_commands(),
        ran,
        "the README's command table and this test disagree"
    );
}

/// The README's two local commands' job (`sluice run`, the same run again) and every command
/// of its table, in a fresh clone on the embedded backends.
#[test]
fn every_local_command_in_the_readme_works_from_a_fresh_clone() {
    let clone = fresh_clone();
    let dir = clone.path();
    assert!(!dir.join(".sluice").exists());

    let first = succeeded(&sluice_in(dir, &["run"], &[]), "sluice run");
    assert!(first.contains("succeeded"), "{first}");
    assert!(first.contains("customers: 1 ingested [1 ingested]"), "{first}");
    let again = succeeded(&sluice_in(dir, &["run"], &[]), "sluice run (again)");
    assert!(
        again.contains("0 attachments fetched"),
        "a second run fetched again:\n{again}"
    );

    let executions = succeeded(&sluice_in(dir, &["executions"], &[]), "sluice executions");
    let execution = executions
        .split_whitespace()
        .next()
        .expect("sluice executions lists the runs")
        .to_string();
    assert!(executions.contains("SUCCEEDED"), "{executions}");
    let history = succeeded(&sluice_in(dir, &["history", &execution], &[]), "sluice history");
    assert!(
        history.contains("ExecutionStarted") && history.contains("ExecutionSucceeded"),
        "{history}"
    );
    // A finished execution has nothing to answer or redrive: each says so, naming it.
    for args in [
        vec!["resume", &execution, "--code", "c0de"],
        vec!["redrive", &execution],
    ] {
        let refused = sluice_in(dir, &args, &[]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains(&execution),
            "{args:?}: {stderr}"
        );
    }

    succeeded(
        &sluice_in(
            dir,
            &[
                "graph",
                "asl/pipeline.asl.json",
                "--execution",
                &execution,
                "-o",
                "pipeline.svg",
            ],
            &[],
        ),
        "sluice graph",
    );
    let svg = std::fs::read_to_string(dir.join("pipeline.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..svg.len().min(80)]
    );

    let ingest = succeeded(
        &sluice_in(
            dir,
            &[
                "ingest",
                "fixtures/csv/good/leading_zeros.csv",
                "--dataset",
                "zeros",
                "--json",
            ],
            &[],
        ),
        "sluice ingest",
    );
    let ingest: serde_json::Value = serde_json::from_str(&ingest).unwrap();
    assert!(ingest["rows_written"].as_u64().unwrap() > 0, "{ingest}");

    let watched = dir.join(".sluice/objects/incoming/watched");
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::copy(
        dir.join("fixtures/csv/good/leading_zeros.csv"),
        watched.join("zeros.csv"),
    )
    .unwrap();
    let watch = succeeded(
        &sluice_in(dir, &["watch", "--once", "--settle", "0"], &[]),
        "sluice watch",
    );
    assert!(
        watch.contains("incoming/watched/zeros.csv: ingested into watched"),
        "{watch}"
    );

    let count = succeeded(
        &sluice_in(dir, &["records", "list", "customers", "--count"], &[]),
        "sluice records list --count",
    );
    assert_eq!(count.trim(), "4");
    let listed = succeeded(
        &sluice_in(dir, &["records", "list", "customers", "--json"], &[]),
        "sluice records list",
    );
    let first_line = listed.lines().next().expect("records list prints the records");
    let record: serde_json::Value = serde_json::from_str(first_line).unwrap();
    let id = record["id"].as_str().expect("a customer record has its id").to_string();
    let got = succeeded(
        &sluice_in(dir, &["records", "get", "customers", &id], &[]),
        "sluice records get",
    );
    assert!(got.contains(&id), "{got}");
    // The README's policy tokenizes customers' emails: none is stored in clear.
    assert!(!listed.contains("@example"), "{listed}");
    let token = record["email"]
        .as_str()
        .expect("a customer has an email token")
        .to_string();
    let restored = succeeded(
        &sluice_in(dir, &["pii", "reidentify", "customers", &token], &[]),
        "sluice pii reidentify",
    );
    let restored: serde_json::Value = serde_json::from_str(&restored).unwrap();
    assert!(
        restored["value"].as_str().is_some_and(|v| v.contains('@')),
        "{restored}"
    );

    // The consumer's command, with a client the clone does not configure: refused by name
    // (tests/api_client_cli.rs reads a record with it against a token endpoint).
    let unknown = sluice_in(dir, &["api", "get", "customers", &id, "--client", "nobody"], &[]);
    assert!(
        !unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no client \"nobody\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    let cognito = succeeded(&sluice_in(dir, &["cognito-template"], &[]), "sluice cognito-template");
    assert!(cognito.contains("AWS::Cognito::UserPoolClient"), "{cognito}");

    let text = dir.join("note.txt");
    std::fs::write(&text, "write to jane.doe@example.com or call +44 20 7946 0958\n").unwrap();
    let scan = succeeded(
        &sluice_in(dir, &["pii", "scan", text.to_str().unwrap()], &[]),
        "sluice pii scan",
    );
    assert!(scan.contains("EMAIL") && scan.contains("PHONE"), "{scan}");

    succeeded(
        &sluice_in(dir, &["validate", "asl/pipeline.asl.json"], &[]),
        "sluice validate",
    );
    let definition = dir.join("hello.asl.json");
    std::fs::write(
        &definition,
        r#"{"StartAt":"Hello","States":{"Hello":{"Type":"Pass","Parameters":{"greeting.$":"States.Format('hello {}', $.who)"},"End":true}}}"#,
    )
    .unwrap();
    let exec = succeeded(
        &sluice_in(
            dir,
            &[
                "exec",
                "--definition",
                definition.to_str().unwrap(),
                "--input",
                r#"{"who":"sluice"}"#,
            ],
            &[],
        ),
        "sluice exec",
    );
    assert!(exec.contains("hello sluice"), "{exec}");
    let cases = dir.join("cases.jsonl");
    std::fs::write(
        &cases,
        r#"{"id":"pass","category":"pass","definition":{"StartAt":"P","States":{"P":{"Type":"Pass","Result":[1,2],"End":true}}},"input":{},"expected":{"status":"SUCCEEDED","output":[1,2]}}"#,
    )
    .unwrap();
    let conformance = succeeded(
        &sluice_in(dir, &["conformance", cases.to_str().unwrap()], &[]),
        "sluice conformance",
    );
    assert!(conformance.contains("1 passed, 0 failed"), "{conformance}");

    let tested = succeeded(
        &sluice_in(
            dir,
            &[
                "test-state",
                "--definition",
                r#"{"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}], "Default": "Small"}"#,
                "--input",
                r#"{"n": 5}"#,
            ],
            &[],
        ),
        "sluice test-state",
    );
    let tested: serde_json::Value = serde_json::from_str(&tested).unwrap();
    assert_eq!(
        (tested["status"].as_str(), tested["nextState"].as_str()),
        (Some("SUCCEEDED"), Some("Big"))
    );
    let retried = succeeded(
        &sluice_in(
            dir,
            &[
                "test-state",
                "--definition",
                r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f"}, "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 2}], "End": true}"#,
                "--mock",
                r#"{"errorOutput": {"error": "Busy", "cause": "later"}}"#,
                "--state-configuration",
                r#"{"retrierRetryCount": 1}"#,
            ],
            &[],
        ),
        "sluice test-state --state-configuration",
    );
    let retried: serde_json::Value = serde_json::from_str(&retried).unwrap();
    assert_eq!(retried["status"], "RETRIABLE", "{retried}");
    assert_eq!(
        retried["inspectionData"]["errorDetails"],
        serde_json::json!({"retryIndex": 0, "retryBackoffIntervalSeconds": 4})
    );

    serve_answers_from_the_clone(dir);
    stepfunctions_answers_from_the_clone(dir);
}

/// `sluice stepfunctions serve` on a free port lists the pipeline's state machine (a raw AWS
/// JSON 1.0 request: the clients' own tests are tests/stepfunctions_clients.rs).
fn stepfunctions_answers_from_the_clone(dir: &Path) {
    let body = "{}";
    let answer = answer_from_the_clone(dir, &["stepfunctions", "serve"], |addr| {
        format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: AWSStepFunctions.ListStateMachines\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(":stateMachine:sluice-pipeline"), "{answer}");
}

/// `sluice serve` on a free port answers in the documented JSON envelope (no key: 401).
fn serve_answers_from_the_clone(dir: &Path) {
    let answer = answer_from_the_clone(dir, &["serve"], |addr| {
        format!("GET /datasets/customers/records/C-1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
    });
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.contains("application/json") && answer.contains("\"error\""),
        "{answer}"
    );
}

/// Starts `sluice ARGS --addr <a free port>` in the clone, sends it the request `request`
/// writes for that address, and stops it: the raw HTTP answer.
fn answer_from_the_clone(dir: &Path, args: &[&str], request: impl Fn(&str) -> String) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["--addr", &addr])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            stream.write_all(request(&addr).as_bytes()).unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            answer = Some(text);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    answer.unwrap_or_else(|| panic!("sluice {args:?} did not listen within 10 s"))
}

/// The README's "Running against AWS or an emulator" command, from a fresh clone, against the
/// test suite's moto (the bucket, tables and secret prefix made unique to this test, so that
/// tests sharing moto do not meet).
#[test]
fn the_readme_aws_command_works_from_a_fresh_clone() {
    let Some(endpoint) = sluice_core::testing::aws_endpoint() else {
        return;
    };
    let clone = fresh_clone();
    let unique = format!("readme-{}", std::process::id());
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("SLUICE_AWS__ENDPOINT_URL", endpoint.as_str()),
        ("SLUICE_AWS__BUCKET", unique.as_str()),
        ("SLUICE_AWS__RECORDS_TABLE", &format!("{unique}-records")),
        ("SLUICE_AWS__CONTROL_TABLE", &format!("{unique}-control")),
        ("SLUICE_AWS__SECRET_PREFIX", &format!("{unique}/")),
    ];
    let run = succeeded(
        &sluice_in(clone.path(), &["run", "--backend", "aws"], &env),
        "sluice run --backend aws",
    );
    assert!(run.contains("customers: 1 ingested [1 ingested]"), "{run}");
    let on_aws: Vec<(&str, &str)> = env.iter().copied().chain([("SLUICE_BACKEND", "aws")]).collect();
    let count = succeeded(
        &sluice_in(clone.path(), &["records", "list", "customers", "--count"], &on_aws),
        "sluice records list --count (aws)",
    );
    assert_eq!(count.trim(), "4");
}
