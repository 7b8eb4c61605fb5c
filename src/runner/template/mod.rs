//! The SAM template (`infra/template.yaml`) as a local run reads it: each function's binary,
//! handler, timeout, memory and environment (Globals merged in), and the state machine's
//! DefinitionSubstitutions, with CloudFormation's intrinsic functions (short and long forms)
//! resolved against the local configuration instead of a stack:
//!
//! - the bucket, the two tables and the KMS key are the local config's `aws.bucket`,
//!   `aws.records_table`, `aws.control_table` and `aws.kms_key_id` (no key configured: the
//!   variable is left unset, as the local run uses none);
//! - a function's `Ref` is its binary (the local function name), its `Arn` the local ARN the
//!   definition is substituted with;
//! - parameters are the local configuration's values of what they configure (see
//!   [`LocalStack::parameter`]), else their template `Default`;
//! - `AWS::Region` is the local region, `AWS::StackName` is `sluice` (so the fixed state machine
//!   name `${AWS::StackName}-pipeline` is the local one), the account is `000000000000`.
//!
//! Anything else (the HTTP API's URL, log groups, `Fn::ImportValue`...) has no local value:
//! resolving it is an error naming the function and the variable, never a silent omission.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, ScalarOwned, YamlOwned};

mod resolve;

pub use resolve::LocalStack;
use resolve::{Resolver, Value};

/// The stack name a local run stands for: `${AWS::StackName}-pipeline` is then
/// [`super::STATE_MACHINE_NAME`].
pub const LOCAL_STACK_NAME: &str = "sluice";
/// The account id in local ARNs (as in [`super::local_function_arn`]).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the SAM template {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the SAM template {origin} is not valid YAML: {message}")]
    Syntax { origin: String, message: String },
    #[error("the SAM template {origin}: {message}")]
    Shape { origin: String, message: String },
    #[error("{function}: {what} cannot be resolved for a local run: {reason}")]
    Unresolvable {
        function: String,
        what: String,
        reason: String,
    },
}

/// A template node: YAML with CloudFormation's intrinsic functions (`!Ref X` and `{"Ref": X}`
/// alike) made explicit.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
    /// `Ref`, `GetAtt`, `Sub`, `If`, `Join`, `Equals`, ... (without the `Fn::` prefix), and
    /// `Condition` (a named condition inside a condition).
    Intrinsic(String, Box<Node>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

fn from_yaml(yaml: YamlOwned) -> Result<Node, String> {
    Ok(match yaml {
        YamlOwned::Value(ScalarOwned::Null) => Node::Null,
        YamlOwned::Value(ScalarOwned::Boolean(b)) => Node::Scalar(b.to_string()),
        YamlOwned::Value(ScalarOwned::Integer(i)) => Node::Scalar(i.to_string()),
        YamlOwned::Value(ScalarOwned::FloatingPoint(f)) => Node::Scalar(f.to_string()),
        YamlOwned::Value(ScalarOwned::String(s)) => Node::Scalar(s),
        YamlOwned::Representation(s, _, _) => Node::Scalar(s),
        YamlOwned::Sequence(items) => Node::Seq(items.into_iter().map(from_yaml).collect::<Result<_, _>>()?),
        YamlOwned::Mapping(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (key, value) in map {
                let key = match from_yaml(key)? {
                    Node::Scalar(key) => key,
                    other => return Err(format!("a mapping key is not a scalar: {other:?}")),
                };
                entries.push((key, from_yaml(value)?));
            }
            // The long form: a one-key mapping {"Ref": ...} or {"Fn::Name": ...}.
            if let [(key, _)] = entries.as_slice()
                && (key == "Ref" || key == "Condition" || key.starts_with("Fn::"))
            {
                let (key, value) = entries.remove(0);
                let name = key.strip_prefix("Fn::").unwrap_or(&key).to_string();
                return Ok(Node::Intrinsic(name, Box::new(value)));
            }
            Node::Map(entries)
        }
        // The short form: `!Ref X`, `!GetAtt A.B`, `!Sub "..."`, `!If [...]`.
        YamlOwned::Tagged(tag, inner) if tag.handle == "!" => Node::Intrinsic(tag.suffix, Box::new(from_yaml(*inner)?)),
        YamlOwned::Tagged(tag, inner) => return Err(format!("unknown tag {}{} on {inner:?}", tag.handle, tag.suffix)),
        YamlOwned::Alias(_) => return Err("YAML aliases are not supported in a SAM template".into()),
        YamlOwned::BadValue => return Err("a value could not be read".into()),
    })
}

/// A parsed SAM template.
#[derive(Debug, Clone)]
pub struct SamTemplate {
    origin: String,
    root: Node,
}

/// One `AWS::Serverless::Function`, Globals merged in, its environment not yet resolved.
#[derive(Debug, Clone)]
pub struct TemplateFunction {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary` (what `cargo lambda build` names the bootstrap after).
    pub binary: String,
    timeout: Option<Node>,
    memory: Option<Node>,
    handler: Option<Node>,
    environment: Vec<(String, Node)>,
    policies: Option<Node>,
}

/// What a DefinitionSubstitution of the state machine refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstitutionTarget {
    /// `!GetAtt SomeFunction.Arn` (or its `Ref`): the function and its binary.
    Function { logical_id: String, binary: String },
    /// Anything else (`!Ref DataBucket`...), as written.
    Other(String),
}

/// A function's settings for a local run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFunction {
    pub binary: String,
    pub handler: String,
    pub timeout_seconds: u64,
    pub memory_mb: u32,
    /// The variables the template gives it, resolved (the ones resolving to `AWS::NoValue` left out).
    pub environment: BTreeMap<String, String>,
}

impl TemplateFunction {
    /// The names of the environment variables it is given (Globals' and its own).
    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.environment.iter().map(|(name, _)| name.as_str())
    }
}

impl SamTemplate {
    pub fn load(path: &Path) -> Result<SamTemplate, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<SamTemplate, TemplateError> {
        let syntax = |message: String| TemplateError::Syntax {
            origin: origin.to_string(),
            message,
        };
        let documents = YamlOwned::load_from_str(text).map_err(|e| syntax(e.to_string()))?;
        let Some(document) = documents.into_iter().next() else {
            return Err(syntax("the file holds no YAML document".into()));
        };
        let root = from_yaml(document).map_err(syntax)?;
        let template = SamTemplate {
            origin: origin.to_string(),
            root,
        };
        if !matches!(template.root.get("Resources"), Some(Node::Map(_))) {
            return Err(template.shape("has no Resources mapping"));
        }
        Ok(template)
    }

    fn shape(&self, message: impl Into<String>) -> TemplateError {
        TemplateError::Shape {
            origin: self.origin.clone(),
            message: message.into(),
        }
    }

    fn resources(&self) -> &[(String, Node)] {
        self.root.get("Resources").map(Node::entries).unwrap_or_default()
    }

    fn resource(&self, logical_id: &str) -> Option<&Node> {
        self.root.get("Resources").and_then(|r| r.get(logical_id))
    }

    fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resource(logical_id)?.get("Type")?.as_str()
    }

    /// Every `AWS::Serverless::Function`, in template order.
    pub fn functions(&self) -> Result<Vec<TemplateFunction>, TemplateError> {
        let globals = self.root.get("Globals").and_then(|g| g.get("Function"));
        let global = |key: &str| globals.and_then(|g| g.get(key)).cloned();
        let mut functions = Vec::new();
        for (logical_id, resource) in self.resources() {
            if resource.get("Type").and_then(Node::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Node::as_str)
                .ok_or_else(|| self.shape(format!("{logical_id} has no Metadata.BuildProperties.Binary")))?
                .to_string();
            let properties = resource.get("Properties");
            let own = |key: &str| properties.and_then(|p| p.get(key)).cloned();
            let variables = |environment: Option<&Node>| -> Result<Vec<(String, Node)>, TemplateError> {
                match environment.and_then(|e| e.get("Variables")) {
                    None => Ok(Vec::new()),
                    Some(Node::Map(entries)) => Ok(entries.clone()),
                    Some(_) => Err(self.shape(format!("{logical_id}: Environment.Variables is not a plain mapping"))),
                }
            };
            // The function's own variables override the Globals' ones of the same name.
            let mut environment = variables(globals.and_then(|g| g.get("Environment")))?;
            for (name, value) in variables(properties.and_then(|p| p.get("Environment")))? {
                environment.retain(|(existing, _)| existing != &name);
                environment.push((name, value));
            }
            functions.push(TemplateFunction {
                logical_id: logical_id.clone(),
                binary,
                timeout: own("Timeout").or_else(|| global("Timeout")),
                memory: own("MemorySize").or_else(|| global("MemorySize")),
                handler: own("Handler").or_else(|| global("Handler")),
                environment,
                policies: own("Policies"),
            });
        }
        Ok(functions)
    }

    /// The function whose binary is `binary`.
    pub fn function(&self, binary: &str) -> Result<Option<TemplateFunction>, TemplateError> {
        Ok(self.functions()?.into_iter().find(|f| f.binary == binary))
    }

    /// The DefinitionSubstitutions of the pipeline's `AWS::Serverless::StateMachine` (the one
    /// whose `DefinitionUri` is `asl/pipeline.asl.json`).
    pub fn definition_substitutions(&self) -> Result<BTreeMap<String, SubstitutionTarget>, TemplateError> {
        self.substitutions_of("pipeline.asl.json")
    }

    /// The DefinitionSubstitutions of the (one) state machine whose definition is the file
    /// `definition` of `asl/`.
    pub fn substitutions_of(&self, definition: &str) -> Result<BTreeMap<String, SubstitutionTarget>, TemplateError> {
        let machines: Vec<_> = self
            .resources()
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Node::as_str) == Some("AWS::Serverless::StateMachine"))
            .filter(|(_, r)| {
                r.get("Properties")
                    .and_then(|p| p.get("DefinitionUri"))
                    .and_then(Node::as_str)
                    .is_some_and(|uri| uri.ends_with(&format!("asl/{definition}")))
            })
            .collect();
        let [(logical_id, machine)] = machines.as_slice() else {
            return Err(self.shape(format!(
                "has {} AWS::Serverless::StateMachine resources defined by asl/{definition}; one is expected",
                machines.len()
            )));
        };
        let substitutions = machine
            .get("Properties")
            .and_then(|p| p.get("DefinitionSubstitutions"))
            .map(Node::entries)
            .unwrap_or_default();
        let functions = self.functions()?;
        let function_named = |id: &str| functions.iter().find(|f| f.logical_id == id);
        let mut out = BTreeMap::new();
        for (name, value) in substitutions {
            let referenced = match value {
                Node::Intrinsic(f, arg) if f == "GetAtt" => match get_att_parts(arg) {
                    Some((resource, attribute)) if attribute == "Arn" => Some(resource),
                    _ => None,
                },
                Node::Intrinsic(f, arg) if f == "Ref" => arg.as_str().map(str::to_string),
                _ => None,
            };
            let target = match referenced.as_deref().and_then(function_named) {
                Some(function) => SubstitutionTarget::Function {
                    logical_id: function.logical_id.clone(),
                    binary: function.binary.clone(),
                },
                None => SubstitutionTarget::Other(format!("{value:?}")),
            };
            out.insert(name.clone(), target);
        }
        if out.is_empty() {
            return Err(self.shape(format!("{logical_id} has no DefinitionSubstitutions")));
        }
        Ok(out)
    }

    /// `function`'s settings with every value resolved against `local`.
    pub fn resolve(
        &self,
        function: &TemplateFunction,
        local: &LocalStack<'_>,
    ) -> Result<ResolvedFunction, TemplateError> {
        let resolver = Resolver { template: self, local };
        let unresolvable = |what: String, reason: String| TemplateError::Unresolvable {
            function: format!("{} ({})", function.logical_id, function.binary),
            what,
            reason,
        };
        let number = |field: &str, node: &Option<Node>, default: u64| -> Result<u64, TemplateError> {
            let Some(node) = node else { return Ok(default) };
            let value = resolver
                .string(node)
                .map_err(|reason| unresolvable(field.to_string(), reason))?;
            value
                .parse::<u64>()
                .map_err(|_| unresolvable(field.to_string(), format!("{value:?} is not a whole number")))
        };
        // Lambda's defaults when neither the function nor Globals say.
        let timeout_seconds = number("Timeout", &function.timeout, 3)?;
        let memory_mb = u32::try_from(number("MemorySize", &function.memory, 128)?)
            .map_err(|_| unresolvable("MemorySize".into(), "is too large".into()))?;
        let handler = match &function.handler {
            Some(node) => resolver
                .string(node)
                .map_err(|reason| unresolvable("Handler".into(), reason))?,
            None => "bootstrap".to_string(),
        };
        let mut environment = BTreeMap::new();
        for (name, node) in &function.environment {
            let value = resolver
                .value(node)
                .map_err(|reason| unresolvable(format!("environment variable {name}"), reason))?;
            match value {
                Value::Absent => {}
                Value::Str(value) => {
                    environment.insert(name.clone(), value);
                }
                Value::List(_) => {
                    return Err(unresolvable(
                        format!("environment variable {name}"),
                        "resolves to a list, not a string".into(),
                    ));
                }
            }
        }
        Ok(ResolvedFunction {
            binary: function.binary.clone(),
            handler,
            timeout_seconds,
            memory_mb,
            environment,
        })
    }
}

impl SamTemplate {
    /// The IAM policy of `function`'s role: the statements of its inline `Policies` documents,
    /// resolved against `local`. A statement whose every resource has no local value (the KMS
    /// key when the local run has none) is left out: it grants nothing here.
    pub fn role_policy(
        &self,
        function: &TemplateFunction,
        local: &LocalStack<'_>,
    ) -> Result<serde_json::Value, TemplateError> {
        let resolver = Resolver { template: self, local };
        let unresolvable = |reason: String| TemplateError::Unresolvable {
            function: format!("{} ({})", function.logical_id, function.binary),
            what: "Policies".into(),
            reason,
        };
        let mut statements = Vec::new();
        let documents = match &function.policies {
            None => &[][..],
            Some(Node::Seq(documents)) => documents.as_slice(),
            Some(_) => return Err(unresolvable("is not a list of policy documents".into())),
        };
        for document in documents {
            let Some(Node::Seq(entries)) = document.get("Statement") else {
                // A SAM policy template (`S3ReadPolicy: ...`) or a managed policy's name.
                return Err(unresolvable(format!(
                    "only inline documents with a Statement list can be checked, not {document:?}"
                )));
            };
            for entry in entries {
                let Some(statement) = resolver.json(entry).map_err(unresolvable)? else {
                    continue;
                };
                let grants_something = statement.get("Resource").is_some() || statement.get("NotResource").is_some();
                if grants_something {
                    statements.push(statement);
                }
            }
        }
        Ok(serde_json::json!({"Version": "2012-10-17", "Statement": statements}))
    }
}

fn get_att_parts(arg: &Node) -> Option<(String, String)> {
    match arg {
        Node::Scalar(s) => s.split_once('.').map(|(r, a)| (r.to_string(), a.to_string())),
        Node::Seq(items) => match items.as_slice() {
            [Node::Scalar(r), Node::Scalar(a)] => Some((r.clone(), a.clone())),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Config;

    const TEMPLATE: &str = r#"
Parameters:
  Prefix: {Type: String, Default: "p/"}
  Flag: {Type: String, Default: ""}
  Unmapped: {Type: String}
Conditions:
  HasFlag: !Not [!Equals [!Ref Flag, ""]]
Globals:
  Function:
    Timeout: 30
    MemorySize: 256
    Environment:
      Variables:
        BUCKET: !Ref DataBucket
        SHARED: global
        NUMBER: 5
Resources:
  DataBucket: {Type: AWS::S3::Bucket}
  DataKey: {Type: AWS::KMS::Key}
  HttpApi: {Type: AWS::Serverless::HttpApi}
  Worker:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: sluice-stage}}
    Properties:
      Timeout: 300
      Environment:
        Variables:
          SHARED: own
          KEY: !GetAtt DataKey.Arn
          FLAGGED: !If [HasFlag, !Ref Flag, !Ref "AWS::NoValue"]
          SELF: {"Fn::GetAtt": [Worker, Arn]}
          SUBBED: !Sub "${AWS::StackName}-pipeline/${DataBucket.Arn}/${!Literal}"
          JOINED: !Join ["-", [a, !Ref "AWS::Region"]]
  Broken:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: sluice-ingest}}
    Properties:
      Environment:
        Variables:
          URL: !Sub "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
          MISSING: !Ref Unmapped
          UNKNOWN: !Sub "${X}-suffix"
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: ../asl/pipeline.asl.json
      DefinitionSubstitutions:
        WorkerArn: !GetAtt Worker.Arn
        Bucket: !Ref DataBucket
"#;

    fn config() -> Config {
        Config::from_toml(
            "backend = \"aws\"\n[aws]\nbucket = \"b1\"\nregion = \"eu-west-1\"\n",
            "test",
            Path::new("."),
        )
        .unwrap()
    }

    #[test]
    fn functions_merge_globals_and_resolve_every_intrinsic_form() {
        let template = SamTemplate::parse(TEMPLATE, "test").unwrap();
        let config = config();
        let local = LocalStack {
            config: &config,
            config_document: "",
            rust_log: None,
        };
        let worker = template.function("sluice-stage").unwrap().unwrap();
        let resolved = template.resolve(&worker, &local).unwrap();
        assert_eq!(resolved.timeout_seconds, 300, "the function's own Timeout wins");
        assert_eq!(resolved.memory_mb, 256, "MemorySize from Globals");
        assert_eq!(resolved.handler, "bootstrap");
        let env = &resolved.environment;
        assert_eq!(env["BUCKET"], "b1");
        assert_eq!(env["SHARED"], "own");
        assert_eq!(env["NUMBER"], "5");
        assert!(!env.contains_key("KEY"), "no KMS key configured: left unset");
        assert!(!env.contains_key("FLAGGED"), "the false branch is AWS::NoValue");
        assert_eq!(env["SELF"], crate::runner::local_function_arn("sluice-stage"));
        assert_eq!(env["JOINED"], "a-eu-west-1");
        assert_eq!(env["SUBBED"], "sluice-pipeline/arn:aws:s3:::b1/${Literal}");
    }

    #[test]
    fn what_has_no_local_value_is_an_error_naming_function_and_variable() {
        let template = SamTemplate::parse(TEMPLATE, "test").unwrap();
        let config = config();
        let local = LocalStack {
            config: &config,
            config_document: "",
            rust_log: None,
        };
        let mut broken = template.function("sluice-ingest").unwrap().unwrap();
        let only = |name: &str, f: &mut TemplateFunction| f.environment.retain(|(n, _)| n == name || n == "BUCKET");
        only("URL", &mut broken);
        let err = template.resolve(&broken, &local).unwrap_err().to_string();
        assert!(
            err.contains("Broken (sluice-ingest)") && err.contains("URL") && err.contains("HttpApi"),
            "{err}"
        );
        let mut broken = template.function("sluice-ingest").unwrap().unwrap();
        only("MISSING", &mut broken);
        let err = template.resolve(&broken, &local).unwrap_err().to_string();
        assert!(err.contains("MISSING") && err.contains("Unmapped"), "{err}");
        let mut broken = template.function("sluice-ingest").unwrap().unwrap();
        only("UNKNOWN", &mut broken);
        let err = template.resolve(&broken, &local).unwrap_err().to_string();
        assert!(err.contains("UNKNOWN") && err.contains("X is neither"), "{err}");
    }

    #[test]
    fn substitutions_name_the_functions_they_point_at() {
        let template = SamTemplate::parse(TEMPLATE, "test").unwrap();
        let substitutions = template.definition_substitutions().unwrap();
        assert_eq!(
            substitutions["WorkerArn"],
            SubstitutionTarget::Function {
                logical_id: "Worker".into(),
                binary: "sluice-stage".into()
            }
        );
        assert!(matches!(substitutions["Bucket"], SubstitutionTarget::Other(_)));
    }
}
