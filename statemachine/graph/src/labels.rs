//! The words on the graph: a state's kind under its name ("Lambda: Invoke", "Choice state")
//! and a Choice rule written as a condition (`$.status == "ok"`).

use super::text::truncate;
use serde_json::Value;
use sluice_statemachine::model::{ChoiceRule, Comparison, Operand, Operator, State};

/// Edge labels longer than this are cut; the definition has the rest.
const MAX_LABEL_CHARS: usize = 44;

/// The second line of a state's box, as the console words it.
pub(crate) fn state_kind(state: &State) -> String {
    match state {
        State::Task(task) => task_kind(&task.resource),
        other => format!("{} state", other.type_name()),
    }
}

fn task_kind(resource: &str) -> String {
    if let Some(integration) = resource.strip_prefix("arn:aws:states:::") {
        let (base, pattern) = match integration.split_once('.') {
            Some((base, pattern)) => (base, Some(pattern)),
            None => (integration, None),
        };
        let (service, action) = match base.split_once(':') {
            Some(("aws-sdk", rest)) => rest.split_once(':').unwrap_or((rest, "")),
            Some(pair) => pair,
            None => (base, ""),
        };
        let suffix = match pattern {
            Some(p) if p.starts_with("waitForTaskToken") => " (wait for callback)",
            Some(p) if p.starts_with("sync") => " (run a job)",
            _ => "",
        };
        return format!("{}: {}{suffix}", service_name(service), capitalized(action));
    }
    if let Some((_, function)) = resource.split_once(":function:") {
        return format!("Lambda: {}", function.split(':').next().unwrap_or(function));
    }
    if resource.contains(":activity:") {
        return "Activity".into();
    }
    "Task state".into()
}

fn service_name(service: &str) -> String {
    match service {
        "lambda" => "Lambda".into(),
        "dynamodb" => "DynamoDB".into(),
        "states" => "Step Functions".into(),
        "events" => "EventBridge".into(),
        "sns" | "sqs" | "s3" | "ecs" | "eks" | "emr" => service.to_ascii_uppercase(),
        other => capitalized(other),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A choice branch's label: its rule, or a JSONata rule's Condition as written.
pub(crate) fn branch(test: &sluice_statemachine::model::BranchTest) -> String {
    match test {
        sluice_statemachine::model::BranchTest::Rule { rule: r, .. } => rule(r),
        sluice_statemachine::model::BranchTest::Jsonata(fields) => {
            match fields.condition.as_ref().map(|c| c.source()) {
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => "Condition".into(),
            }
        }
    }
}

/// A Choice rule as a short condition.
pub(crate) fn rule(rule: &ChoiceRule) -> String {
    truncate(&describe(rule), MAX_LABEL_CHARS)
}

/// Error names of a Catch, as its edge label.
pub(crate) fn errors(error_equals: &[String]) -> String {
    truncate(&error_equals.join(", "), MAX_LABEL_CHARS)
}

fn describe(rule: &ChoiceRule) -> String {
    let nested = |r: &ChoiceRule| match r {
        ChoiceRule::And(_) | ChoiceRule::Or(_) => format!("({})", describe(r)),
        other => describe(other),
    };
    match rule {
        ChoiceRule::Compare(c) => comparison(c),
        ChoiceRule::Not(inner) => format!("not {}", nested(inner)),
        ChoiceRule::And(rules) => rules.iter().map(nested).collect::<Vec<_>>().join(" and "),
        ChoiceRule::Or(rules) => rules.iter().map(nested).collect::<Vec<_>>().join(" or "),
    }
}

fn comparison(c: &Comparison) -> String {
    use Operator::*;
    let variable = c.variable.text();
    let operand = match &c.operand {
        Operand::Literal(value) => value.to_string(),
        Operand::Path(path) => path.text().to_string(),
    };
    let test = |what: &str| {
        let negated = matches!(&c.operand, Operand::Literal(Value::Bool(false)));
        format!("{variable} is {}{what}", if negated { "not " } else { "" })
    };
    let symbol = match c.operator {
        IsNull => return test("null"),
        IsPresent => return test("present"),
        IsNumeric => return test("numeric"),
        IsString => return test("a string"),
        IsBoolean => return test("a boolean"),
        IsTimestamp => return test("a timestamp"),
        StringMatches => "matches",
        StringEquals | NumericEquals | BooleanEquals | TimestampEquals => "==",
        StringLessThan | NumericLessThan | TimestampLessThan => "<",
        StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => ">",
        StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => "<=",
        StringGreaterThanEquals | NumericGreaterThanEquals | TimestampGreaterThanEquals => ">=",
    };
    format!("{variable} {symbol} {operand}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(value: Value) -> ChoiceRule {
        let mut problems = Vec::new();
        let rule = ChoiceRule::parse(&value, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        rule.unwrap()
    }

    #[test]
    fn comparisons_read_as_conditions() {
        let r = parsed(json!({"Variable": "$.auth.status", "StringEquals": "authorized"}));
        assert_eq!(rule(&r), "$.auth.status == \"authorized\"");
        let r = parsed(json!({"Variable": "$.n", "NumericLessThanPath": "$.max"}));
        assert_eq!(rule(&r), "$.n < $.max");
        let r = parsed(json!({"Variable": "$.x", "IsPresent": false}));
        assert_eq!(rule(&r), "$.x is not present");
    }

    #[test]
    fn combinators_nest_with_parentheses() {
        let r = parsed(json!({"Not": {"Or": [
            {"Variable": "$.a", "BooleanEquals": true},
            {"Variable": "$.b", "NumericGreaterThan": 2}
        ]}}));
        assert_eq!(rule(&r), "not ($.a == true or $.b > 2)");
    }

    #[test]
    fn long_rules_are_cut() {
        let r = parsed(json!({"Variable": "$.a_very_long_field_name_indeed", "StringEquals": "and a long value too"}));
        assert!(rule(&r).chars().count() <= MAX_LABEL_CHARS);
        assert!(rule(&r).ends_with('…'));
    }

    #[test]
    fn task_kinds_name_the_integration() {
        assert_eq!(task_kind("arn:aws:states:::lambda:invoke"), "Lambda: Invoke");
        assert_eq!(
            task_kind("arn:aws:states:::lambda:invoke.waitForTaskToken"),
            "Lambda: Invoke (wait for callback)"
        );
        assert_eq!(task_kind("arn:aws:states:::dynamodb:putItem"), "DynamoDB: PutItem");
        assert_eq!(task_kind("arn:aws:states:::aws-sdk:s3:getObject"), "S3: GetObject");
        assert_eq!(
            task_kind("arn:aws:lambda:us-east-1:123456789012:function:stage:live"),
            "Lambda: stage"
        );
        assert_eq!(task_kind("${StageFunctionArn}"), "Task state");
    }
}
