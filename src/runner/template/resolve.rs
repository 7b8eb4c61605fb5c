//! Resolving the template's intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If`,
//! `Fn::Join`...) against a local run's configuration instead of a stack.

use super::{LOCAL_ACCOUNT_ID, LOCAL_STACK_NAME, Node, SamTemplate, get_att_parts};
use sluice_core::Config;

/// The local values the template's references resolve to.
pub struct LocalStack<'a> {
    pub config: &'a Config,
    /// The local configuration document (the `SluiceConfig` parameter, passed as `SLUICE_CONFIG`).
    pub config_document: &'a str,
    /// `RUST_LOG` for the functions (the `RustLog` parameter); `None`: the template's default.
    pub rust_log: Option<String>,
}

impl LocalStack<'_> {
    fn region(&self) -> String {
        self.config
            .aws
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    /// The local value of a template parameter: the setting of the local configuration the
    /// parameter configures, `None` for parameters no local setting corresponds to.
    pub fn parameter(&self, name: &str) -> Result<Option<String>, String> {
        let gmail = || sluice_gmail::GmailSettings::from_config(self.config).map_err(|e| e.to_string());
        Ok(Some(match name {
            "SecretPrefix" => self.config.aws.secret_prefix.clone(),
            "GmailClientId" => gmail()?.client_id,
            "GmailAccount" => gmail()?.account,
            "GmailQuery" => gmail()?.query,
            "OAuthRedirectUri" => gmail()?.redirect_uri,
            "PiiEngine" => {
                let settings =
                    sluice_pii::settings::PiiSettings::from_config(self.config).map_err(|e| e.to_string())?;
                match settings.engine {
                    sluice_pii::settings::Engine::Builtin => "builtin".to_string(),
                    sluice_pii::settings::Engine::Comprehend => "comprehend".to_string(),
                }
            }
            "SluiceConfig" => self.config_document.to_string(),
            "RustLog" => match &self.rust_log {
                Some(filter) => filter.clone(),
                None => return Ok(None),
            },
            _ => return Ok(None),
        }))
    }
}

/// A resolved value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// `AWS::NoValue`: the property (or list element) is left out.
    Absent,
    Str(String),
    List(Vec<Value>),
}

pub(super) struct Resolver<'a> {
    pub(super) template: &'a SamTemplate,
    pub(super) local: &'a LocalStack<'a>,
}

impl Resolver<'_> {
    pub(super) fn string(&self, node: &Node) -> Result<String, String> {
        match self.value(node)? {
            Value::Str(s) => Ok(s),
            Value::Absent => Err("resolves to AWS::NoValue where a value is needed".into()),
            Value::List(_) => Err("resolves to a list where a string is needed".into()),
        }
    }

    pub(super) fn value(&self, node: &Node) -> Result<Value, String> {
        match node {
            Node::Scalar(s) => Ok(Value::Str(s.clone())),
            Node::Null => Err("is null".into()),
            Node::Seq(items) => Ok(Value::List(
                items
                    .iter()
                    .map(|item| self.value(item))
                    .filter(|v| !matches!(v, Ok(Value::Absent)))
                    .collect::<Result<_, _>>()?,
            )),
            Node::Map(_) => Err("is a mapping, not a value".into()),
            Node::Intrinsic(name, arg) => self.intrinsic(name, arg),
        }
    }

    /// A document (an IAM policy statement): mappings and lists kept, every value resolved,
    /// list elements and entries that resolve to `AWS::NoValue` (or to nothing) left out.
    pub(super) fn json(&self, node: &Node) -> Result<Option<serde_json::Value>, String> {
        use serde_json::Value as Json;
        Ok(match node {
            Node::Map(entries) => {
                let mut object = serde_json::Map::new();
                for (key, value) in entries {
                    if let Some(value) = self.json(value)? {
                        object.insert(key.clone(), value);
                    }
                }
                Some(Json::Object(object))
            }
            Node::Seq(items) => {
                let items: Vec<Json> = items
                    .iter()
                    .map(|item| self.json(item))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect();
                (!items.is_empty()).then_some(Json::Array(items))
            }
            other => match self.value(other)? {
                Value::Absent => None,
                Value::Str(s) => Some(Json::String(s)),
                Value::List(items) => {
                    let items: Vec<Json> = items
                        .into_iter()
                        .filter_map(|v| match v {
                            Value::Str(s) => Some(Json::String(s)),
                            _ => None,
                        })
                        .collect();
                    (!items.is_empty()).then_some(Json::Array(items))
                }
            },
        })
    }

    fn intrinsic(&self, name: &str, arg: &Node) -> Result<Value, String> {
        match name {
            "Ref" => {
                let target = arg.as_str().ok_or("!Ref takes a name")?;
                self.reference(target)
            }
            "GetAtt" => {
                let (resource, attribute) = get_att_parts(arg).ok_or("!GetAtt takes Resource.Attribute")?;
                self.resource_value(&resource, &attribute)
            }
            "Sub" => self.sub(arg).map(Value::Str),
            "If" => {
                let Node::Seq(items) = arg else {
                    return Err("!If takes [condition, then, else]".into());
                };
                let [Node::Scalar(condition), then, otherwise] = items.as_slice() else {
                    return Err("!If takes [condition, then, else]".into());
                };
                if self.condition(condition)? {
                    self.value(then)
                } else {
                    self.value(otherwise)
                }
            }
            "Join" => {
                let Node::Seq(items) = arg else {
                    return Err("!Join takes [delimiter, [values]]".into());
                };
                let [delimiter, values] = items.as_slice() else {
                    return Err("!Join takes [delimiter, [values]]".into());
                };
                let delimiter = self.string(delimiter)?;
                let Value::List(values) = self.value(values)? else {
                    return Err("!Join's second argument is not a list".into());
                };
                let parts = values
                    .into_iter()
                    .map(|v| match v {
                        Value::Str(s) => Ok(s),
                        _ => Err("!Join's values must be strings".to_string()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Str(parts.join(&delimiter)))
            }
            "Select" => {
                let Node::Seq(items) = arg else {
                    return Err("!Select takes [index, [values]]".into());
                };
                let [index, values] = items.as_slice() else {
                    return Err("!Select takes [index, [values]]".into());
                };
                let index: usize = self
                    .string(index)?
                    .parse()
                    .map_err(|_| "!Select's index is not a number".to_string())?;
                match self.value(values)? {
                    Value::List(values) => values
                        .into_iter()
                        .nth(index)
                        .ok_or_else(|| format!("!Select's index {index} is out of range")),
                    _ => Err("!Select's second argument is not a list".into()),
                }
            }
            other => Err(format!("Fn::{other} has no local value")),
        }
    }

    fn condition(&self, name: &str) -> Result<bool, String> {
        let condition = self
            .template
            .root
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| format!("the condition {name} is not defined"))?;
        self.truth(condition)
    }

    fn truth(&self, node: &Node) -> Result<bool, String> {
        let Node::Intrinsic(name, arg) = node else {
            return match node.as_str() {
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                _ => Err(format!("{node:?} is not a condition")),
            };
        };
        let operands = || match arg.as_ref() {
            Node::Seq(items) => Ok(items.as_slice()),
            _ => Err(format!("Fn::{name} takes a list")),
        };
        match name.as_str() {
            "Equals" => match operands()? {
                [a, b] => Ok(self.value(a)? == self.value(b)?),
                _ => Err("Fn::Equals takes two values".into()),
            },
            "Not" => match operands()? {
                [inner] => Ok(!self.truth(inner)?),
                _ => Err("Fn::Not takes one condition".into()),
            },
            "And" => operands()?.iter().try_fold(true, |all, c| Ok(all && self.truth(c)?)),
            "Or" => operands()?.iter().try_fold(false, |any, c| Ok(any || self.truth(c)?)),
            "Condition" => self.condition(arg.as_str().ok_or("Condition takes a name")?),
            other => Err(format!("Fn::{other} is not a condition function")),
        }
    }

    fn reference(&self, target: &str) -> Result<Value, String> {
        let local = self.local;
        Ok(Value::Str(match target {
            "AWS::NoValue" => return Ok(Value::Absent),
            "AWS::Region" => local.region(),
            "AWS::AccountId" => LOCAL_ACCOUNT_ID.to_string(),
            "AWS::Partition" => "aws".to_string(),
            "AWS::URLSuffix" => "amazonaws.com".to_string(),
            "AWS::StackName" => LOCAL_STACK_NAME.to_string(),
            pseudo if pseudo.starts_with("AWS::") => {
                return Err(format!("the pseudo parameter {pseudo} has no local value"));
            }
            _ => {
                if let Some(parameter) = self.template.root.get("Parameters").and_then(|p| p.get(target)) {
                    return match local.parameter(target)? {
                        Some(value) => Ok(Value::Str(value)),
                        None => match parameter.get("Default") {
                            Some(default) => self.value(default),
                            None => Err(format!("the parameter {target} has no local value and no Default")),
                        },
                    };
                }
                return self.resource_value(target, "Ref");
            }
        }))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String, String> {
        match self.resource_value(resource, attribute)? {
            Value::Str(s) => Ok(s),
            // Inside a string, the KMS key when none is configured is not a value.
            _ => Err(format!("{resource}.{attribute} has no local value")),
        }
    }

    /// A resource's `Ref` (attribute `Ref`) or `GetAtt` attribute, locally.
    fn resource_value(&self, logical_id: &str, attribute: &str) -> Result<Value, String> {
        let Some(resource_type) = self.template.resource_type(logical_id) else {
            return Err(format!(
                "{logical_id} is neither a parameter nor a resource of the template"
            ));
        };
        let aws = &self.local.config.aws;
        let region = self.local.region();
        let bucket = || {
            aws.bucket
                .clone()
                .ok_or_else(|| "the local config has no aws.bucket".to_string())
        };
        let table_arn = |table: &str| format!("arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT_ID}:table/{table}");
        let value = match (logical_id, resource_type, attribute) {
            ("DataBucket", "AWS::S3::Bucket", "Ref") => bucket()?,
            ("DataBucket", "AWS::S3::Bucket", "Arn") => format!("arn:aws:s3:::{}", bucket()?),
            ("RecordsTable", "AWS::DynamoDB::Table", "Ref") => aws.records_table.clone(),
            ("RecordsTable", "AWS::DynamoDB::Table", "Arn") => table_arn(&aws.records_table),
            ("ControlTable", "AWS::DynamoDB::Table", "Ref") => aws.control_table.clone(),
            ("ControlTable", "AWS::DynamoDB::Table", "Arn") => table_arn(&aws.control_table),
            // No key in the local config: the local run encrypts with none, and so do the functions.
            ("DataKey", "AWS::KMS::Key", "Ref" | "Arn") => match &aws.kms_key_id {
                Some(key) => key.clone(),
                None => return Ok(Value::Absent),
            },
            (_, "AWS::Serverless::Function", "Ref" | "Arn") => {
                let functions = self.template.functions().map_err(|e| e.to_string())?;
                let binary = functions
                    .iter()
                    .find(|f| f.logical_id == logical_id)
                    .map(|f| f.binary.clone())
                    .ok_or_else(|| format!("{logical_id} is not a function"))?;
                if attribute == "Ref" {
                    binary
                } else {
                    crate::runner::local_function_arn(&binary)
                }
            }
            // A nested stack (the API consumers' Cognito pool) runs nowhere locally: what it
            // would give a function (the API's JWT settings) comes from the local config.
            (_, "AWS::Serverless::Application" | "AWS::CloudFormation::Stack", _) => return Ok(Value::Absent),
            _ => {
                return Err(format!(
                    "{logical_id} ({resource_type}){} has no local value",
                    if attribute == "Ref" {
                        String::new()
                    } else {
                        format!(".{attribute}")
                    }
                ));
            }
        };
        Ok(Value::Str(value))
    }

    /// `Fn::Sub`: `${Name}`, `${Resource.Attribute}`, `${!Literal}`, with optional variables.
    fn sub(&self, arg: &Node) -> Result<String, String> {
        let (text, variables) = match arg {
            Node::Scalar(text) => (text.as_str(), &[][..]),
            Node::Seq(items) => match items.as_slice() {
                [Node::Scalar(text), variables] => (text.as_str(), variables.entries()),
                _ => return Err("!Sub takes a string or [string, {variables}]".into()),
            },
            _ => return Err("!Sub takes a string or [string, {variables}]".into()),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or("!Sub has an unclosed ${")?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some((_, node)) = variables.iter().find(|(k, _)| k == name) {
                out.push_str(&self.string(node)?);
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(resource, attribute)?);
            } else {
                match self.reference(name)? {
                    Value::Str(s) => out.push_str(&s),
                    _ => return Err(format!("${{{name}}} has no local value")),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}
