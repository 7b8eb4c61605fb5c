//! TestState on the engine: one state, one run, AWS's statuses.

use serde_json::{Map, Value, json};
use sluice_statemachine::test_state::{
    InspectionLevel, TestStateError, TestStateMock, TestStateRequest, TestStatus, test_state,
};
use sluice_statemachine::{Engine, TaskRegistry};

fn request(definition: Value, input: Value) -> TestStateRequest {
    TestStateRequest {
        definition,
        name: "Under".into(),
        input,
        variables: Map::new(),
        inspection_level: InspectionLevel::Info,
        mock: None,
    }
}

async fn run(request: TestStateRequest) -> Result<sluice_statemachine::test_state::TestStateResponse, TestStateError> {
    test_state(Engine::new(TaskRegistry::new()), request).await
}

const TASK: &str = "arn:aws:lambda:us-east-1:123456789012:function:work";

#[tokio::test]
async fn a_pass_and_a_choice_report_their_output_and_next_state() {
    let pass = run(request(
        json!({"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "Next": "Later"}),
        json!({"n": 4}),
    ))
    .await
    .unwrap();
    assert_eq!(pass.status, TestStatus::Succeeded);
    assert_eq!(pass.output.as_deref(), Some(r#"{"doubled":8}"#));
    assert_eq!(pass.next_state.as_deref(), Some("Later"));

    let choice = json!({"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Big"}], "Default": "Small"});
    let big = run(request(choice.clone(), json!({"n": 4}))).await.unwrap();
    let small = run(request(choice, json!({"n": 1}))).await.unwrap();
    assert_eq!(
        (big.next_state.as_deref(), small.next_state.as_deref()),
        (Some("Big"), Some("Small"))
    );

    let end = run(request(json!({"Type": "Pass", "End": true}), json!({"a": 1})))
        .await
        .unwrap();
    assert_eq!((end.status, end.next_state), (TestStatus::Succeeded, None));
}

#[tokio::test]
async fn a_mocked_task_shows_what_it_was_sent_and_returned_at_debug() {
    let mut task = request(
        json!({
            "Type": "Task",
            "Resource": TASK,
            "Parameters": {"id.$": "$.id"},
            "ResultSelector": {"size.$": "$.size"},
            "ResultPath": "$.work",
            "Next": "After"
        }),
        json!({"id": 7}),
    );
    task.mock = Some(TestStateMock::Result(json!({"size": 3, "noise": true})));
    task.inspection_level = InspectionLevel::Debug;
    let answer = run(task).await.unwrap();
    assert_eq!(answer.status, TestStatus::Succeeded);
    assert_eq!(answer.output.as_deref(), Some(r#"{"id":7,"work":{"size":3}}"#));
    let data = answer.inspection_data.unwrap();
    assert_eq!(data["input"], r#"{"id":7}"#);
    assert_eq!(data["afterParameters"], r#"{"id":7}"#);
    assert_eq!(data["result"], r#"{"size":3,"noise":true}"#);
    assert_eq!(data["afterInputPath"], r#"{"id":7}"#);
    assert_eq!(data["afterResultSelector"], r#"{"size":3}"#);
    assert_eq!(data["afterResultPath"], r#"{"id":7,"work":{"size":3}}"#);
    let fields: Vec<&str> = data.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "input",
            "afterInputPath",
            "afterParameters",
            "result",
            "afterResultSelector",
            "afterResultPath"
        ],
        "in the order AWS lists them"
    );
}

/// The Pass example of AWS's TestState guide ("Using DEBUG inspectionLevel"), answer for answer.
#[tokio::test]
async fn the_pass_example_of_the_aws_guide_shows_every_step() {
    let mut pass = request(
        json!({
            "Type": "Pass",
            "InputPath": "$.payload",
            "Parameters": {"data": 1},
            "ResultPath": "$.result",
            "OutputPath": "$.result.data",
            "Next": "Another State"
        }),
        json!({"payload": {"foo": "bar"}}),
    );
    pass.inspection_level = InspectionLevel::Debug;
    let answer = run(pass).await.unwrap();
    assert_eq!(answer.status, TestStatus::Succeeded);
    assert_eq!(answer.output.as_deref(), Some("1"));
    assert_eq!(answer.next_state.as_deref(), Some("Another State"));
    assert_eq!(
        answer.inspection_data.unwrap(),
        json!({
            "input": r#"{"payload":{"foo":"bar"}}"#,
            "afterInputPath": r#"{"foo":"bar"}"#,
            "afterParameters": r#"{"data":1}"#,
            "afterResultSelector": r#"{"data":1}"#,
            "afterResultPath": r#"{"payload":{"foo":"bar"},"result":{"data":1}}"#
        })
    );
}

#[tokio::test]
async fn the_variables_after_assign_are_inspected() {
    let mut pass = request(
        json!({"Type": "Pass", "Assign": {"total.$": "States.MathAdd($.a, $x)"}, "End": true}),
        json!({"a": 2}),
    );
    pass.variables = Map::from_iter([("x".to_string(), json!(5))]);
    pass.inspection_level = InspectionLevel::Debug;
    let answer = run(pass).await.unwrap();
    let data = answer.inspection_data.unwrap();
    assert_eq!(data["variables"], r#"{"x":5,"total":7}"#);
}

#[tokio::test]
async fn a_failing_task_is_retriable_caught_or_failed_as_its_rules_say() {
    let failing = |rules: Value| {
        let mut definition = json!({"Type": "Task", "Resource": TASK, "End": true});
        for (key, value) in rules.as_object().unwrap() {
            definition[key] = value.clone();
        }
        let mut request = request(definition, json!({}));
        request.mock = Some(TestStateMock::Error {
            error: "Work.Busy".into(),
            cause: "try later".into(),
        });
        request
    };
    let retriable = run(failing(
        json!({"Retry": [{"ErrorEquals": ["Work.Busy"], "MaxAttempts": 2}]}),
    ))
    .await
    .unwrap();
    assert_eq!(retriable.status, TestStatus::Retriable);
    assert_eq!(retriable.error.as_deref(), Some("Work.Busy"));

    let caught = run(failing(
        json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}]}),
    ))
    .await
    .unwrap();
    assert_eq!(caught.status, TestStatus::CaughtError);
    assert_eq!(caught.next_state.as_deref(), Some("Recover"));
    assert!(caught.output.unwrap().contains("Work.Busy"));

    let failed = run(failing(json!({}))).await.unwrap();
    assert_eq!(failed.status, TestStatus::Failed);
    assert_eq!(failed.cause.as_deref(), Some("try later"));
}

#[tokio::test]
async fn variables_are_set_before_the_state_runs_and_a_task_needs_a_mock() {
    let mut jsonata = request(
        json!({"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $greeting & ' ' & $states.input.name %}", "End": true}),
        json!({"name": "Ada"}),
    );
    jsonata.variables.insert("greeting".into(), json!("hello"));
    let answer = run(jsonata).await.unwrap();
    assert_eq!(answer.output.as_deref(), Some(r#""hello Ada""#));

    let unmocked = run(request(
        json!({"Type": "Task", "Resource": TASK, "End": true}),
        json!({}),
    ))
    .await;
    assert!(matches!(unmocked, Err(TestStateError::TaskNeedsMock)), "{unmocked:?}");
    let mut mocked_pass = request(json!({"Type": "Pass", "End": true}), json!({}));
    mocked_pass.mock = Some(TestStateMock::Result(json!(1)));
    assert!(matches!(run(mocked_pass).await, Err(TestStateError::MockNotForType(_))));
    let invalid = run(request(json!({"Type": "Pass", "Next": 5}), json!({}))).await;
    assert!(matches!(invalid, Err(TestStateError::Invalid(_))), "{invalid:?}");
}
