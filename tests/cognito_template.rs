//! `infra/cognito.json`, the Cognito stack `infra/template.yaml` nests, is what
//! `sluice cognito-template` generates from the repository's `sluice.toml`: a consumer added to
//! the config without regenerating the file fails here, with the command to run.

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_cognito_stack_matches_the_repository_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(root.join("sluice.toml"))
        .arg("cognito-template")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let committed = std::fs::read_to_string(root.join("infra/cognito.json")).unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "infra/cognito.json is stale: run `sluice cognito-template -o infra/cognito.json`"
    );
    let document: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let clients = document["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Cognito::UserPoolClient")
        .count();
    assert_eq!(clients, 3, "one app client per consumer of sluice.toml");
}
