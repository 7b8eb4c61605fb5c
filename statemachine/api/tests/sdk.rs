//! The Step Functions API driven by the real AWS SDK for Rust (`aws-sdk-sfn`, endpoint override),
//! as a user's own code would drive it: create, start, describe, list and page, history in
//! both orders, a task token answered, an execution stopped, and AWS's error codes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType, Tag};
use serde_json::{Value, json};
use sluice_sfn_api::StepFunctionsService;
use sluice_sfn_api::activities::{Activities, ActivityHandler};
use sluice_sfn_api::registry::Registry;
use sluice_statemachine::{Engine, FnHandler, SqliteExecutionStore, TaskContext, TaskRegistry};

struct Server {
    client: Client,
    tokens: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let mut registry = TaskRegistry::new();
    registry.register_lambda(
        "double",
        Arc::new(FnHandler(|_ctx: TaskContext, input: Value| async move {
            Ok(json!({"n": input["n"].as_i64().unwrap_or(0) * 2}))
        })),
    );
    registry.register(
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        Arc::new(FnHandler(move |ctx: TaskContext, _input: Value| {
            seen.lock().unwrap().push(ctx.task_token.unwrap_or_default());
            futures_ready()
        })),
    );
    let activities = Activities::open(&dir.path().join("sfn.db")).unwrap();
    registry.register_activities(Arc::new(ActivityHandler(activities.clone())));
    let store = SqliteExecutionStore::open(dir.path().join("sfn.db")).unwrap();
    let engine = Arc::new(Engine::new(registry).with_store(Arc::new(store)));
    let service = StepFunctionsService::new(engine, Registry::open(&dir.path().join("sfn.db")).unwrap(), activities);
    let addr = sluice_sfn_api::spawn(&service, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(format!("http://{addr}"))
        .load()
        .await;
    Server {
        client: Client::new(&config),
        tokens,
        _dir: dir,
    }
}

fn futures_ready() -> std::future::Ready<Result<Value, sluice_statemachine::TaskFailure>> {
    std::future::ready(Ok(json!({})))
}

const DOUBLE: &str = r#"{"StartAt": "Double", "States": {
    "Double": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:double", "Next": "Done"},
    "Done": {"Type": "Pass", "End": true}}}"#;

const WAITS: &str = r#"{"StartAt": "Ask", "States": {
    "Ask": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "ask", "Payload": {"token.$": "$$.Task.Token"}}, "End": true}}}"#;

async fn until_done(client: &Client, arn: &str) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    for _ in 0..500 {
        let described = client.describe_execution().execution_arn(arn).send().await.unwrap();
        if described.status() != &ExecutionStatus::Running {
            return described;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{arn} did not end");
}

fn code<E: aws_sdk_sfn::error::ProvideErrorMetadata>(err: &E) -> String {
    err.code().unwrap_or("?").to_string()
}

#[tokio::test]
async fn the_aws_sdk_creates_runs_and_inspects_state_machines() {
    let s = server().await;
    let c = &s.client;
    let created = c
        .create_state_machine()
        .name("doubler")
        .definition(DOUBLE)
        .role_arn("arn:aws:iam::123456789012:role/r")
        .tags(Tag::builder().key("team").value("data").build())
        .send()
        .await
        .unwrap();
    let machine = created.state_machine_arn().to_string();
    assert!(machine.ends_with(":stateMachine:doubler"), "{machine}");
    // The same request again answers as the first did; another definition under the name fails.
    let again = c
        .create_state_machine()
        .name("doubler")
        .definition(DOUBLE)
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap();
    assert_eq!(again.state_machine_arn(), machine);
    let clash = c
        .create_state_machine()
        .name("doubler")
        .definition(WAITS)
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&clash), "StateMachineAlreadyExists");
    let bad = c
        .create_state_machine()
        .name("broken")
        .definition(r#"{"StartAt": "Nowhere", "States": {}}"#)
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "InvalidDefinition");

    let described = c
        .describe_state_machine()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap();
    assert_eq!(described.name(), "doubler");
    assert_eq!(described.definition(), DOUBLE);
    let tags = c.list_tags_for_resource().resource_arn(&machine).send().await.unwrap();
    assert_eq!(tags.tags()[0].value(), Some("data"));

    // Executions: started, run in the background, described when done.
    let started = c
        .start_execution()
        .state_machine_arn(&machine)
        .name("first")
        .input(r#"{"n": 21}"#)
        .send()
        .await
        .unwrap();
    let done = until_done(c, started.execution_arn()).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::from_str::<Value>(done.output().unwrap()).unwrap(),
        json!({"n": 42})
    );
    // The name is taken once it has ended.
    let taken = c
        .start_execution()
        .state_machine_arn(&machine)
        .name("first")
        .input(r#"{"n": 21}"#)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&taken), "ExecutionAlreadyExists");
    let invalid = c
        .start_execution()
        .state_machine_arn(&machine)
        .input("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&invalid), "InvalidExecutionInput");
    for n in 0..3 {
        let arn = c
            .start_execution()
            .state_machine_arn(&machine)
            .name(format!("more-{n}"))
            .send()
            .await
            .unwrap()
            .execution_arn()
            .to_string();
        until_done(c, &arn).await;
    }

    // Every page-able listing pages.
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_executions()
            .state_machine_arn(&machine)
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(page.executions().iter().map(|e| e.name().to_string()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    assert_eq!(names, ["first", "more-0", "more-1", "more-2"]);

    let history = c
        .get_execution_history()
        .execution_arn(started.execution_arn())
        .send()
        .await
        .unwrap();
    let types: Vec<_> = history.events().iter().map(|e| e.r#type().clone()).collect();
    assert_eq!(types.first(), Some(&HistoryEventType::ExecutionStarted));
    assert_eq!(types.last(), Some(&HistoryEventType::ExecutionSucceeded));
    assert!(types.contains(&HistoryEventType::TaskScheduled), "{types:?}");
    let first = &history.events()[0];
    let input = first.execution_started_event_details().unwrap().input().unwrap();
    assert_eq!(serde_json::from_str::<Value>(input).unwrap(), json!({"n": 21}));
    let succeeded = history.events().last().unwrap();
    assert!(
        succeeded
            .execution_succeeded_event_details()
            .unwrap()
            .output()
            .is_some()
    );
    let reversed = c
        .get_execution_history()
        .execution_arn(started.execution_arn())
        .reverse_order(true)
        .max_results(1)
        .include_execution_data(false)
        .send()
        .await
        .unwrap();
    assert_eq!(reversed.events()[0].r#type(), &HistoryEventType::ExecutionSucceeded);
    assert!(reversed.next_token().is_some());
    assert!(
        reversed.events()[0]
            .execution_succeeded_event_details()
            .unwrap()
            .output()
            .is_none(),
        "no execution data when it is not asked for"
    );

    let missing = c
        .describe_execution()
        .execution_arn(format!("{}:nope", machine.replace(":stateMachine:", ":execution:")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ExecutionDoesNotExist");
    let gone = c
        .describe_state_machine()
        .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&gone), "StateMachineDoesNotExist");

    let listed = c.list_state_machines().send().await.unwrap();
    assert_eq!(listed.state_machines().len(), 1);
    c.delete_state_machine()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap();
    assert!(
        c.list_state_machines()
            .send()
            .await
            .unwrap()
            .state_machines()
            .is_empty()
    );
}

#[tokio::test]
async fn a_task_token_is_answered_and_an_execution_stopped_through_the_sdk() {
    let s = server().await;
    let c = &s.client;
    let machine = c
        .create_state_machine()
        .name("asks")
        .definition(WAITS)
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let start = |name: &'static str| {
        c.start_execution()
            .state_machine_arn(&machine)
            .name(name)
            .input("{}")
            .send()
    };
    let answered = start("answered").await.unwrap().execution_arn().to_string();
    let token = loop {
        if let Some(token) = s.tokens.lock().unwrap().first().cloned() {
            break token;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // The same name and input while it waits: the same execution.
    assert_eq!(start("answered").await.unwrap().execution_arn(), answered);
    let not_json = c
        .send_task_success()
        .task_token(&token)
        .output("{nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&not_json), "InvalidOutput");
    c.send_task_success()
        .task_token(&token)
        .output(r#"{"code": "granted"}"#)
        .send()
        .await
        .unwrap();
    let done = until_done(c, &answered).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::from_str::<Value>(done.output().unwrap()).unwrap(),
        json!({"code": "granted"})
    );
    let used = c
        .send_task_success()
        .task_token(&token)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&used), "InvalidToken");

    let stopped = start("stopped").await.unwrap().execution_arn().to_string();
    while s.tokens.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.stop_execution()
        .execution_arn(&stopped)
        .error("Operator.Stopped")
        .cause("not needed")
        .send()
        .await
        .unwrap();
    let described = c.describe_execution().execution_arn(&stopped).send().await.unwrap();
    assert_eq!(described.status(), &ExecutionStatus::Aborted);
    assert_eq!(described.error(), Some("Operator.Stopped"));
    let history = c.get_execution_history().execution_arn(&stopped).send().await.unwrap();
    let aborted = history.events().last().unwrap();
    assert_eq!(aborted.r#type(), &HistoryEventType::ExecutionAborted);
    assert_eq!(
        aborted.execution_aborted_event_details().unwrap().cause(),
        Some("not needed")
    );
}

async fn history_types(c: &aws_sdk_sfn::Client, execution: &str) -> Vec<HistoryEventType> {
    c.get_execution_history()
        .execution_arn(execution)
        .send()
        .await
        .unwrap()
        .events()
        .iter()
        .map(|e| e.r#type().clone())
        .collect()
}

/// A worker polls an activity (GetActivityTask, a long poll) and answers the task it gets, as
/// users test task tokens without a Lambda.
#[tokio::test]
async fn a_worker_polls_an_activity_and_answers_its_task() {
    let s = server().await;
    let c = s.client.clone();
    let activity = c
        .create_activity()
        .name("approve")
        .send()
        .await
        .unwrap()
        .activity_arn()
        .to_string();
    assert!(activity.contains(":activity:approve"), "{activity}");
    // Created again: the same activity.
    assert_eq!(
        c.create_activity().name("approve").send().await.unwrap().activity_arn(),
        activity
    );
    let definition = json!({"StartAt": "Approve", "States": {
        "Approve": {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 30, "End": true}}});
    let machine = c
        .create_state_machine()
        .name("approvals")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    // The worker is already waiting when the task is queued: the long poll wakes.
    let worker = {
        let c = c.clone();
        let activity = activity.clone();
        tokio::spawn(async move {
            c.get_activity_task()
                .activity_arn(activity)
                .worker_name("w1")
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let execution = c
        .start_execution()
        .state_machine_arn(&machine)
        .input(r#"{"amount": 120}"#)
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    let task = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let token = task.task_token().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<Value>(task.input().unwrap()).unwrap(),
        json!({"amount": 120})
    );
    // Taken and not answered yet: the history already shows who took it.
    let parked = history_types(&c, &execution).await;
    assert_eq!(parked.last(), Some(&HistoryEventType::ActivityStarted), "{parked:?}");
    c.send_task_heartbeat().task_token(&token).send().await.unwrap();
    c.send_task_success()
        .task_token(&token)
        .output(r#"{"approved": true}"#)
        .send()
        .await
        .unwrap();
    let done = until_done(&c, &execution).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::from_str::<Value>(done.output().unwrap()).unwrap(),
        json!({"approved": true})
    );
    // As AWS records an activity: Activity* events, not Task* ones.
    use HistoryEventType::*;
    assert_eq!(
        history_types(&c, &execution).await,
        [
            ExecutionStarted,
            TaskStateEntered,
            ActivityScheduled,
            ActivityStarted,
            ActivitySucceeded,
            TaskStateExited,
            ExecutionSucceeded
        ]
    );
    let events = c
        .get_execution_history()
        .execution_arn(&execution)
        .send()
        .await
        .unwrap();
    let scheduled = events.events()[2].activity_scheduled_event_details().unwrap();
    assert_eq!(scheduled.resource(), activity);
    assert_eq!(scheduled.heartbeat_in_seconds(), Some(30));
    assert_eq!(
        serde_json::from_str::<Value>(scheduled.input().unwrap()).unwrap(),
        json!({"amount": 120})
    );
    let started = events.events()[3].activity_started_event_details().unwrap();
    assert_eq!(started.worker_name(), Some("w1"));
    let succeeded = events.events()[4].activity_succeeded_event_details().unwrap();
    assert_eq!(succeeded.output(), Some(r#"{"approved":true}"#));

    // A worker that fails the task: ActivityFailed with its error.
    let refused = c
        .start_execution()
        .state_machine_arn(&machine)
        .input("{}")
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    let task = c.get_activity_task().activity_arn(&activity).send().await.unwrap();
    c.send_task_failure()
        .task_token(task.task_token().unwrap())
        .error("Approval.Refused")
        .cause("over the limit")
        .send()
        .await
        .unwrap();
    assert_eq!(until_done(&c, &refused).await.status(), &ExecutionStatus::Failed);
    let events = c.get_execution_history().execution_arn(&refused).send().await.unwrap();
    let failed = events
        .events()
        .iter()
        .find(|e| e.r#type() == &ActivityFailed)
        .and_then(|e| e.activity_failed_event_details())
        .expect("an ActivityFailed event");
    assert_eq!(failed.error(), Some("Approval.Refused"));
    assert_eq!(failed.cause(), Some("over the limit"));
    assert!(
        events.events()[3]
            .activity_started_event_details()
            .unwrap()
            .worker_name()
            .is_none(),
        "a worker with no name"
    );

    let listed = c.list_activities().send().await.unwrap();
    assert_eq!(listed.activities().len(), 1);
    let missing = c
        .get_activity_task()
        .activity_arn(activity.replace("approve", "nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ActivityDoesNotExist");
    c.delete_activity().activity_arn(&activity).send().await.unwrap();
    assert!(c.list_activities().send().await.unwrap().activities().is_empty());
}

/// A Step Functions Local mock config: `<machine ARN>#<test case>` runs the test case, its Task
/// states answered from the config; the machine's own ARN runs it for real.
#[tokio::test]
async fn a_test_case_of_a_mock_config_answers_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let mocks = sluice_statemachine::MockConfig::from_json(
        r#"{"StateMachines": {"orders": {"TestCases": {"HappyPath": {"Charge": "Charged"}, "Declined": {"Charge": "Refused"}}}},
            "MockedResponses": {"Charged": {"0": {"Return": {"charged": true}}},
                                "Refused": {"0": {"Throw": {"Error": "Card.Declined", "Cause": "insufficient funds"}}}}}"#,
    )
    .unwrap();
    let activities = Activities::in_memory().unwrap();
    let store = SqliteExecutionStore::open(dir.path().join("sfn.db")).unwrap();
    let engine = Arc::new(Engine::new(TaskRegistry::new()).with_store(Arc::new(store)));
    let service = StepFunctionsService::with_mocks(engine, Registry::in_memory().unwrap(), activities, mocks);
    let addr = sluice_sfn_api::spawn(&service, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(format!("http://{addr}"))
        .load()
        .await;
    let c = Client::new(&config);
    let machine = c
        .create_state_machine()
        .name("orders")
        .definition(
            r#"{"StartAt": "Charge", "States": {"Charge": {"Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:charge", "End": true}}}"#,
        )
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let run = |arn: String| {
        let c = c.clone();
        async move {
            let started = c.start_execution().state_machine_arn(arn).send().await?;
            Ok::<_, aws_sdk_sfn::error::SdkError<_>>(until_done(&c, started.execution_arn()).await)
        }
    };
    let happy = run(format!("{machine}#HappyPath")).await.unwrap();
    assert_eq!(happy.status(), &ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::from_str::<Value>(happy.output().unwrap()).unwrap(),
        json!({"charged": true})
    );
    let declined = run(format!("{machine}#Declined")).await.unwrap();
    assert_eq!(declined.status(), &ExecutionStatus::Failed);
    assert_eq!(declined.error(), Some("Card.Declined"));
    // No function is bound to the Lambda ARN: run for real, the task fails naming it.
    let real = run(machine.clone()).await.unwrap();
    assert_eq!(real.status(), &ExecutionStatus::Failed);
    assert!(real.cause().unwrap_or_default().contains("charge"), "{real:?}");
    let unknown = c
        .start_execution()
        .state_machine_arn(format!("{machine}#NoSuchCase"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unknown), "ValidationException");
}

/// An activity that does not exist fails its task with ActivityScheduleFailed (the execution
/// fails: States.Runtime is not caught); once the activity exists, a redrive schedules it.
#[tokio::test]
async fn a_missing_activity_fails_its_execution_and_a_redrive_schedules_it_once_created() {
    let s = server().await;
    let c = s.client.clone();
    let later = c
        .create_activity()
        .name("later")
        .send()
        .await
        .unwrap()
        .activity_arn()
        .to_string();
    let ghost = later.replace(":activity:later", ":activity:ghost");
    let definition = json!({"StartAt": "Ghost", "States": {
        "Ghost": {"Type": "Task", "Resource": ghost, "End": true}}});
    let machine = c
        .create_state_machine()
        .name("ghosts")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let execution = c
        .start_execution()
        .state_machine_arn(&machine)
        .input("{}")
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    let failed = until_done(&c, &execution).await;
    assert_eq!(failed.status(), &ExecutionStatus::Failed);
    assert!(failed.cause().unwrap_or_default().contains("ghost"), "{failed:?}");
    let types = history_types(&c, &execution).await;
    assert!(types.contains(&HistoryEventType::ActivityScheduleFailed), "{types:?}");

    c.create_activity().name("ghost").send().await.unwrap();
    c.redrive_execution().execution_arn(&execution).send().await.unwrap();
    let task = c.get_activity_task().activity_arn(&ghost).send().await.unwrap();
    c.send_task_success()
        .task_token(task.task_token().unwrap())
        .output(r#"{"found": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(until_done(&c, &execution).await.status(), &ExecutionStatus::Succeeded);
}
