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
        ..Default::default()
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

/// `stateConfiguration.retrierRetryCount`: with retries left the error is RETRIABLE, naming
/// the retrier and its back-off for the next attempt; with none left the Catch takes it.
#[tokio::test]
async fn the_retry_count_so_far_decides_between_retry_and_catch() {
    let definition = json!({"Type": "Task", "Resource": TASK, "End": true,
        "Retry": [{"ErrorEquals": ["Other"]},
                  {"ErrorEquals": ["Work.Busy"], "IntervalSeconds": 3, "BackoffRate": 2.0, "MaxAttempts": 3, "MaxDelaySeconds": 10}],
        "Catch": [{"ErrorEquals": ["Other"], "Next": "Elsewhere"}, {"ErrorEquals": ["States.ALL"], "Next": "Recover"}]});
    let at = |count: Option<u64>| {
        let mut r = request(definition.clone(), json!({}));
        r.mock = Some(TestStateMock::Error {
            error: "Work.Busy".into(),
            cause: "try later".into(),
        });
        r.configuration.retrier_retry_count = count;
        run(r)
    };
    let first = at(None).await.unwrap();
    assert_eq!(first.status, TestStatus::Retriable);
    assert_eq!(
        first.inspection_data.unwrap()["errorDetails"],
        json!({"retryIndex": 1, "retryBackoffIntervalSeconds": 3})
    );
    let third = at(Some(2)).await.unwrap();
    assert_eq!(third.status, TestStatus::Retriable);
    // 3 * 2^2 = 12, capped at MaxDelaySeconds.
    assert_eq!(
        third.inspection_data.unwrap()["errorDetails"]["retryBackoffIntervalSeconds"],
        10
    );
    let spent = at(Some(3)).await.unwrap();
    assert_eq!(spent.status, TestStatus::CaughtError);
    assert_eq!(spent.next_state.as_deref(), Some("Recover"));
    assert_eq!(spent.inspection_data.unwrap()["errorDetails"], json!({"catchIndex": 1}));

    // A retry count without a mocked error is refused.
    let mut no_error = request(definition.clone(), json!({}));
    no_error.mock = Some(TestStateMock::Result(json!({})));
    no_error.configuration.retrier_retry_count = Some(1);
    assert!(matches!(run(no_error).await, Err(TestStateError::Request(_))));
}

/// A Map answered whole by the mock: its iterations do not run, DEBUG shows each item after
/// ItemsPath and ItemSelector and the limits, and failed iterations past the tolerance fail it.
#[tokio::test]
async fn a_mocked_map_shows_its_items_and_holds_failures_against_its_tolerance() {
    let map = json!({"Type": "Map", "ItemsPath": "$.orders", "MaxConcurrency": 2, "ToleratedFailureCount": 1,
        "ItemSelector": {"id.$": "$$.Map.Item.Value.id", "at.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": "Charge", "States": {"Charge": {"Type": "Task", "Resource": TASK, "End": true}}},
        "ResultPath": "$.charged", "Next": "Ship",
        "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "TooMany"}]});
    let input = json!({"orders": [{"id": "a"}, {"id": "b"}, {"id": "c"}]});
    let mut mocked = request(map.clone(), input.clone());
    mocked.mock = Some(TestStateMock::Result(
        json!([{"ok": true}, {"ok": true}, {"ok": false}]),
    ));
    mocked.inspection_level = InspectionLevel::Debug;
    let answer = run(mocked.clone()).await.unwrap();
    assert_eq!(answer.status, TestStatus::Succeeded, "{answer:?}");
    assert_eq!(answer.next_state.as_deref(), Some("Ship"));
    let output: Value = serde_json::from_str(answer.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["charged"][2], json!({"ok": false}));
    let data = answer.inspection_data.unwrap();
    assert_eq!(data["afterItemsPath"], r#"[{"id":"a"},{"id":"b"},{"id":"c"}]"#);
    assert_eq!(
        data["afterItemSelector"],
        r#"[{"id":"a","at":0},{"id":"b","at":1},{"id":"c","at":2}]"#
    );
    assert_eq!(data["maxConcurrency"], 2);
    assert_eq!(data["toleratedFailureCount"], 1);
    assert_eq!(data["result"], r#"[{"ok":true},{"ok":true},{"ok":false}]"#);

    let mut within = mocked.clone();
    within.configuration.map_iteration_failure_count = Some(1);
    assert_eq!(run(within).await.unwrap().status, TestStatus::Succeeded);
    let mut past = mocked;
    past.configuration.map_iteration_failure_count = Some(2);
    let past = run(past).await.unwrap();
    assert_eq!(past.status, TestStatus::CaughtError);
    assert_eq!(past.next_state.as_deref(), Some("TooMany"));

    // A mocked error names the inner state it comes from, which must be one.
    let mut failing = request(map, input);
    failing.mock = Some(TestStateMock::Error {
        error: "Card.Declined".into(),
        cause: "no funds".into(),
    });
    failing.configuration.error_caused_by_state = Some("Charge".into());
    let failed = run(failing.clone()).await.unwrap();
    assert_eq!(failed.status, TestStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("Card.Declined"));
    failing.configuration.error_caused_by_state = Some("Nowhere".into());
    assert!(matches!(run(failing).await, Err(TestStateError::Request(m)) if m.contains("Nowhere")));
}

/// A mocked Parallel: the branches do not run; the result goes through ResultSelector.
#[tokio::test]
async fn a_mocked_parallel_takes_the_mocked_result_as_its_branches_outputs() {
    let mut parallel = request(
        json!({"Type": "Parallel", "Parameters": {"id.$": "$.id"}, "ResultSelector": {"first.$": "$[0]"}, "End": true,
               "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": TASK, "End": true}}},
                            {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}]}),
        json!({"id": 7}),
    );
    parallel.mock = Some(TestStateMock::Result(json!(["left", "right"])));
    parallel.inspection_level = InspectionLevel::Debug;
    let answer = run(parallel).await.unwrap();
    assert_eq!(answer.output.as_deref(), Some(r#"{"first":"left"}"#));
    let data = answer.inspection_data.unwrap();
    assert_eq!(data["afterParameters"], r#"{"id":7}"#);
    assert_eq!(data["afterResultSelector"], r#"{"first":"left"}"#);
}

/// `context` is laid over the Context object (with a mock only); a whole state machine's
/// state is tested by name, in the machine's query language.
#[tokio::test]
async fn context_overrides_and_a_state_out_of_a_whole_machine() {
    let machine = json!({"QueryLanguage": "JSONata", "StartAt": "First", "States": {
        "First": {"Type": "Pass", "Next": "Charge"},
        "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                   "Arguments": {"FunctionName": "charge", "Payload": {"execution": "{% $states.context.Execution.Name %}",
                                 "retry": "{% $states.context.State.RetryCount %}"}},
                   "Output": "{% $states.result.Payload %}", "End": true}}});
    let mut charge = request(machine.clone(), json!({}));
    charge.name = "Charge".into();
    charge.mock = Some(TestStateMock::Result(
        json!({"Payload": {"charged": true}, "StatusCode": 200}),
    ));
    charge.context = Some(json!({"Execution": {"Name": "order-42"}, "State": {"RetryCount": 2}}));
    charge.inspection_level = InspectionLevel::Debug;
    let answer = run(charge.clone()).await.unwrap();
    assert_eq!(answer.output.as_deref(), Some(r#"{"charged":true}"#));
    let arguments: Value =
        serde_json::from_str(answer.inspection_data.unwrap()["afterArguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["Payload"], json!({"execution": "order-42", "retry": 2}));

    let mut missing = charge.clone();
    missing.name = "Nope".into();
    assert!(matches!(run(missing).await, Err(TestStateError::Request(m)) if m.contains("Nope")));
    let mut context_without_mock = request(json!({"Type": "Pass", "End": true}), json!({}));
    context_without_mock.context = Some(json!({"Execution": {"Name": "x"}}));
    assert!(matches!(
        run(context_without_mock).await,
        Err(TestStateError::Request(_))
    ));
}

/// `mock.fieldValidationMode`: a lambda:invoke result is checked against Lambda's Invoke
/// response (STRICT, the default, and PRESENT), or not at all (NONE).
#[tokio::test]
async fn mocked_results_are_checked_against_the_service_shape() {
    let invoke = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Arguments": {"FunctionName": "f"}, "QueryLanguage": "JSONata", "End": true});
    let with = |result: Value, mode: &str| {
        let mut r = request(invoke.clone(), json!({}));
        let (mock, field_validation) = TestStateMock::from_member(&json!({
            "result": result.to_string(), "fieldValidationMode": mode}))
        .unwrap();
        r.mock = Some(mock);
        r.field_validation = field_validation;
        run(r)
    };
    assert!(with(json!({"Payload": 1, "StatusCode": 200}), "STRICT").await.is_ok());
    let unknown = with(json!({"Payload": 1, "Status": 200}), "STRICT").await;
    assert!(
        matches!(&unknown, Err(TestStateError::Request(m)) if m.contains("'Status'")),
        "{unknown:?}"
    );
    let wrong_type = with(json!({"StatusCode": "200"}), "PRESENT").await;
    assert!(
        matches!(&wrong_type, Err(TestStateError::Request(m)) if m.contains("StatusCode")),
        "{wrong_type:?}"
    );
    assert!(with(json!({"Status": 200}), "NONE").await.is_ok());
    // StartExecution always answers ExecutionArn and StartDate: STRICT wants both.
    let mut start = request(
        json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
               "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:x"}, "End": true}),
        json!({}),
    );
    start.mock = Some(TestStateMock::Result(json!({"ExecutionArn": "arn:x"})));
    assert!(matches!(run(start.clone()).await, Err(TestStateError::Request(m)) if m.contains("StartDate")));
    start.field_validation = sluice_statemachine::test_state::FieldValidationMode::Present;
    assert!(run(start).await.is_ok());
    assert!(TestStateMock::from_member(&json!({"result": "1", "fieldValidationMode": "LAX"})).is_err());
}

/// A Distributed Map reads `mapItemReaderData` instead of S3, and with a mock its children
/// do not run.
#[tokio::test]
async fn a_distributed_map_reads_the_given_reader_data() {
    let mut map = request(
        json!({"Type": "Map", "End": true,
               "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                              "Parameters": {"Bucket": "b", "Key": "orders.csv"}},
               "ItemBatcher": {"MaxItemsPerBatch": 2},
               "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                 "StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": TASK, "End": true}}}}),
        json!({}),
    );
    map.configuration.map_item_reader_data = Some("id,qty\na,1\nb,2\nc,3\n".into());
    map.mock = Some(TestStateMock::Result(json!([{"done": 2}, {"done": 1}])));
    map.inspection_level = InspectionLevel::Debug;
    let answer = run(map).await.unwrap();
    assert_eq!(answer.status, TestStatus::Succeeded, "{answer:?}");
    let batches: Value =
        serde_json::from_str(answer.inspection_data.unwrap()["afterItemBatcher"].as_str().unwrap()).unwrap();
    assert_eq!(
        batches,
        json!([{"Items": [{"id": "a", "qty": "1"}, {"id": "b", "qty": "2"}]}, {"Items": [{"id": "c", "qty": "3"}]}])
    );
}

/// An error that no event shows (an `Arguments` that fails to evaluate) is still the state's
/// error: caught by its Catch, or RETRIABLE under its Retry; a Retry that is not valid is
/// refused, not dropped; `context` replaces `Execution.Input` whole.
#[tokio::test]
async fn errors_before_the_call_and_invalid_rules_are_judged_as_aws_judges_them() {
    let failing = |rules: Value| {
        let mut definition = json!({"Type": "Task", "QueryLanguage": "JSONata", "Resource": TASK,
            "Arguments": "{% $error('no such order') %}", "End": true});
        for (key, value) in rules.as_object().unwrap() {
            definition[key] = value.clone();
        }
        let mut r = request(definition, json!({}));
        r.mock = Some(TestStateMock::Result(json!({})));
        r
    };
    let caught = run(failing(
        json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}]}),
    ))
    .await
    .unwrap();
    assert_eq!(caught.status, TestStatus::CaughtError, "{caught:?}");
    assert_eq!(caught.next_state.as_deref(), Some("Recover"));
    let retriable = run(failing(
        json!({"Retry": [{"ErrorEquals": ["States.QueryEvaluationError"]}]}),
    ))
    .await
    .unwrap();
    assert_eq!(retriable.status, TestStatus::Retriable, "{retriable:?}");
    assert_eq!(retriable.error.as_deref(), Some("States.QueryEvaluationError"));

    let invalid = run(failing(json!({"Retry": [{"ErrorEquals": [], "MaxAttempts": -1}]}))).await;
    assert!(matches!(invalid, Err(TestStateError::Invalid(_))), "{invalid:?}");

    let mut input = request(
        json!({"Type": "Task", "Resource": TASK, "Parameters": {"input.$": "$$.Execution.Input"}, "End": true}),
        json!({"b": 2}),
    );
    input.mock = Some(TestStateMock::Result(json!({})));
    input.context = Some(json!({"Execution": {"Input": {"a": 1}}}));
    input.inspection_level = InspectionLevel::Debug;
    let answer = run(input).await.unwrap();
    assert_eq!(
        answer.inspection_data.unwrap()["afterParameters"],
        r#"{"input":{"a":1}}"#
    );
}
