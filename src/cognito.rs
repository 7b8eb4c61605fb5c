//! The Cognito resources for the API's consumers, generated from `[tokens.consumers]`: a user
//! pool (or an existing one), its hosted domain (the token endpoint), the resource server
//! `sluice` with the scopes the consumers hold, and one app client per consumer with the
//! client-credentials grant only. `infra/template.yaml` nests the generated stack
//! (`infra/cognito.json`) and wires the API's JWT settings to its outputs; a test keeps the
//! committed file equal to what the repository's `sluice.toml` generates.
//!
//! A consumer's `records:*` scopes are bound to its dataset (`records:read:customers`), as its
//! API key is; `runs:start` is not bound to a dataset.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use sluice_tokens::TokenSettings;

/// The resource server's identifier: Cognito prefixes its scopes with it (`sluice/records:read`).
pub const RESOURCE_SERVER: &str = "sluice";

#[derive(Debug, thiserror::Error)]
pub enum CognitoTemplateError {
    #[error(
        "[tokens.consumers] is empty: there is no app client to create (deploy with CognitoConsumers=none, or add consumers)"
    )]
    NoConsumers,
}

/// The scope a consumer of `dataset` holds in Cognito for its configured `scope`.
fn bound_scope(scope: &str, dataset: &str) -> String {
    if scope.starts_with("records:") {
        format!("{scope}:{dataset}")
    } else {
        scope.to_string()
    }
}

/// A CloudFormation logical id for a consumer: letters and digits only, unique (a short hash
/// of the exact names tells apart `a-b`/`c` from `a`/`b-c`).
fn logical_id(dataset: &str, consumer: &str) -> String {
    let readable: String = format!("{dataset}{consumer}")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(40)
        .collect();
    // FNV-1a: stable across builds and platforms, which the committed template relies on.
    let hash = format!("{dataset}\0{consumer}")
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
    format!("Client{readable}{hash:08x}")
}

fn pool_id() -> Value {
    json!({"Fn::If": ["CreatesUserPool", {"Ref": "UserPool"}, {"Ref": "ExistingUserPoolId"}]})
}

/// The nested stack's template, as pretty JSON (CloudFormation reads JSON templates).
pub fn template(tokens: &TokenSettings) -> Result<String, CognitoTemplateError> {
    let consumers: Vec<(&str, &str, Vec<String>)> = tokens
        .consumers
        .iter()
        .flat_map(|(dataset, consumers)| {
            consumers.iter().map(move |(consumer, settings)| {
                let scopes = settings.scopes.iter().map(|s| bound_scope(s, dataset)).collect();
                (dataset.as_str(), consumer.as_str(), scopes)
            })
        })
        .collect();
    if consumers.is_empty() {
        return Err(CognitoTemplateError::NoConsumers);
    }
    let all_scopes: BTreeSet<&String> = consumers.iter().flat_map(|(_, _, scopes)| scopes).collect();

    let mut resources = Map::new();
    resources.insert(
        "UserPool".into(),
        json!({
            "Type": "AWS::Cognito::UserPool",
            "Condition": "CreatesUserPool",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "UserPoolName": {"Fn::Sub": "${NamePrefix}-api-consumers"},
                // Machine clients only: nobody signs up or signs in.
                "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": true},
                "DeletionProtection": "ACTIVE"
            }
        }),
    );
    resources.insert(
        "Domain".into(),
        json!({
            "Type": "AWS::Cognito::UserPoolDomain",
            "Condition": "CreatesUserPool",
            "Properties": {
                "UserPoolId": {"Ref": "UserPool"},
                "Domain": {"Fn::If": ["HasDomainPrefix", {"Ref": "DomainPrefix"},
                    {"Fn::Join": ["-", ["sluice", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]]}]}
            }
        }),
    );
    let scopes: Vec<Value> = all_scopes
        .iter()
        .map(|scope| json!({"ScopeName": scope, "ScopeDescription": format!("Sluice API: {scope}")}))
        .collect();
    resources.insert(
        "ResourceServer".into(),
        json!({
            "Type": "AWS::Cognito::UserPoolResourceServer",
            "Properties": {
                "UserPoolId": pool_id(),
                "Identifier": RESOURCE_SERVER,
                "Name": "Sluice records API",
                "Scopes": scopes
            }
        }),
    );
    let mut client_ids = vec![Value::String("[".into())];
    for (index, (dataset, consumer, scopes)) in consumers.iter().enumerate() {
        let id = logical_id(dataset, consumer);
        let allowed: Vec<String> = scopes.iter().map(|s| format!("{RESOURCE_SERVER}/{s}")).collect();
        resources.insert(
            id.clone(),
            json!({
                "Type": "AWS::Cognito::UserPoolClient",
                "DependsOn": "ResourceServer",
                "Properties": {
                    "UserPoolId": pool_id(),
                    "ClientName": {"Fn::Sub": format!("${{NamePrefix}}-{dataset}-{consumer}")},
                    "GenerateSecret": true,
                    "AllowedOAuthFlowsUserPoolClient": true,
                    "AllowedOAuthFlows": ["client_credentials"],
                    "AllowedOAuthScopes": allowed,
                    "AccessTokenValidity": 60,
                    "TokenValidityUnits": {"AccessToken": "minutes"},
                    "EnableTokenRevocation": true,
                    "PreventUserExistenceErrors": "ENABLED"
                }
            }),
        );
        if index > 0 {
            client_ids.push(Value::String(", ".into()));
        }
        client_ids.push(Value::String("\"".into()));
        client_ids.push(json!({"Ref": id}));
        client_ids.push(Value::String("\"".into()));
    }
    client_ids.push(Value::String("]".into()));

    let document = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Sluice: the API consumers' Cognito user pool, resource server and one client-credentials app client per consumer. Generated from sluice.toml by `sluice cognito-template`: do not edit.",
        "Parameters": {
            "NamePrefix": {"Type": "String", "Description": "Prefix of the pool's and clients' names (the parent stack's name)."},
            "ExistingUserPoolId": {"Type": "String", "Default": "", "AllowedPattern": "^$|^[\\w-]+_[0-9a-zA-Z]+$",
                "Description": "An existing user pool to add the resource server and clients to; empty creates one."},
            "DomainPrefix": {"Type": "String", "Default": "", "AllowedPattern": "^$|^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                "Description": "Prefix of the created pool's hosted domain (the token endpoint); empty derives one from the stack id."}
        },
        "Conditions": {
            "CreatesUserPool": {"Fn::Equals": [{"Ref": "ExistingUserPoolId"}, ""]},
            "HasDomainPrefix": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainPrefix"}, ""]}]}
        },
        "Resources": resources,
        "Outputs": {
            "UserPoolId": {"Value": pool_id()},
            "Issuer": {"Description": "The iss of the pool's access tokens", "Value": {"Fn::Join": ["", ["https://cognito-idp.", {"Ref": "AWS::Region"}, ".amazonaws.com/", pool_id()]]}},
            "ClientIds": {"Description": "The app clients, as the TOML array api.jwt.client_ids reads", "Value": {"Fn::Join": ["", client_ids]}},
            "TokenUrl": {"Description": "The client-credentials token endpoint (a created pool's domain)", "Value": {"Fn::If": ["CreatesUserPool",
                {"Fn::Join": ["", ["https://", {"Ref": "Domain"}, ".auth.", {"Ref": "AWS::Region"}, ".amazoncognito.com/oauth2/token"]]},
                "(the existing pool's domain)/oauth2/token"]}}
        }
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> TokenSettings {
        let config = sluice_core::Config::from_toml(text, "test", std::path::Path::new(".")).unwrap();
        TokenSettings::from_config(&config).unwrap()
    }

    #[test]
    fn each_consumer_gets_a_client_credentials_client_with_its_dataset_bound_scopes() {
        let tokens = settings(
            r#"
            [tokens.consumers.customers.support]
            scopes = ["records:read", "records:reidentify"]
            [tokens.consumers.orders.ops]
            scopes = ["records:read", "runs:start"]
            [tokens.consumers.a-b.c]
            [tokens.consumers.a.b-c]
            "#,
        );
        let document: Value = serde_json::from_str(&template(&tokens).unwrap()).unwrap();
        let resources = document["Resources"].as_object().unwrap();
        let clients: Vec<&Value> = resources
            .values()
            .filter(|r| r["Type"] == "AWS::Cognito::UserPoolClient")
            .collect();
        assert_eq!(clients.len(), 4, "one per consumer, distinct ids for a-b/c and a/b-c");
        assert!(resources.keys().all(|id| id.chars().all(|c| c.is_ascii_alphanumeric())));
        let support = clients
            .iter()
            .find(|c| c["Properties"]["ClientName"]["Fn::Sub"] == "${NamePrefix}-customers-support")
            .unwrap();
        assert_eq!(
            support["Properties"]["AllowedOAuthScopes"],
            json!(["sluice/records:read:customers", "sluice/records:reidentify:customers"])
        );
        assert_eq!(
            support["Properties"]["AllowedOAuthFlows"],
            json!(["client_credentials"])
        );
        let ops = clients
            .iter()
            .find(|c| c["Properties"]["ClientName"]["Fn::Sub"] == "${NamePrefix}-orders-ops")
            .unwrap();
        assert_eq!(
            ops["Properties"]["AllowedOAuthScopes"],
            json!(["sluice/records:read:orders", "sluice/runs:start"])
        );
        let declared: Vec<&str> = resources["ResourceServer"]["Properties"]["Scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ScopeName"].as_str().unwrap())
            .collect();
        for client in &clients {
            for scope in client["Properties"]["AllowedOAuthScopes"].as_array().unwrap() {
                let name = scope.as_str().unwrap().strip_prefix("sluice/").unwrap();
                assert!(declared.contains(&name), "{name} is not declared");
            }
        }
    }

    /// What CloudFormation makes of the `ClientIds` output, and the API's settings from the
    /// variables the template sets from it.
    #[test]
    fn the_outputs_configure_the_api_through_the_environment() {
        let tokens = settings("[tokens.consumers.customers.support]\n[tokens.consumers.orders.ops]\n");
        let document: Value = serde_json::from_str(&template(&tokens).unwrap()).unwrap();
        let parts = document["Outputs"]["ClientIds"]["Value"]["Fn::Join"][1]
            .as_array()
            .unwrap()
            .clone();
        let mut deployed_ids = ["7abc1client", "9def2client"].into_iter();
        let joined: String = parts
            .iter()
            .map(|part| match part {
                Value::String(text) => text.clone(),
                _ => deployed_ids.next().unwrap().to_string(),
            })
            .collect();
        let env = [
            (
                "SLUICE_API__JWT__ISSUER",
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123".to_string(),
            ),
            ("SLUICE_API__JWT__CLIENT_IDS", joined),
            ("SLUICE_API__JWT__SCOPE_PREFIX", "sluice/".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v));
        let config = sluice_core::Config::from_toml_with_env("", "env", std::path::Path::new("."), env).unwrap();
        let api = sluice_api::ApiSettings::from_config(&config).unwrap();
        let jwt = api.jwt.unwrap();
        assert_eq!(jwt.client_ids, vec!["7abc1client", "9def2client"]);
        assert_eq!(jwt.scope_prefix, "sluice/");
        assert!(jwt.issuer.ends_with("/eu-west-1_Abc123"));
    }

    #[test]
    fn no_consumers_is_refused_with_what_to_do() {
        let err = template(&TokenSettings::default()).unwrap_err();
        assert!(err.to_string().contains("CognitoConsumers=none"), "{err}");
    }
}
