use super::layout::{NodeKind, ScopeLayout, layout_scope};
use super::*;
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use serde_json::{Value, json};
use sluice_statemachine::history::{EventDetails, EventType, HistoryEvent};
use sluice_statemachine::{
    Engine, ExecutionOutcome, FnHandler, StartExecution, StateMachine, TaskContext, TaskFailure, TaskHandler,
    TaskRegistry,
};
use std::collections::HashMap;
use std::sync::Arc;

/// One SVG element: its name and attributes (unescaped).
#[derive(Debug)]
struct Element {
    name: String,
    attrs: HashMap<String, String>,
}

/// Parses the whole document with a real XML parser (which checks that end tags match)
/// and returns every element in document order.
fn parse(svg: &str) -> Vec<Element> {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut open: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed at byte {}: {e}", reader.buffer_position()));
        let (start, closes) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(e) => {
                let name = e.name().0.to_string();
                assert_eq!(open.pop().as_deref(), Some(name.as_str()), "unbalanced </{name}>");
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let Some(start) = start else { continue };
        let name = start.name().0.to_string();
        let attrs = start
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                let key = a.key.0.to_string();
                let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap().into_owned();
                (key, value)
            })
            .collect();
        if !closes {
            open.push(name.clone());
        }
        elements.push(Element { name, attrs });
    }
    assert!(open.is_empty(), "unclosed elements: {open:?}");
    assert_eq!(elements.first().map(|e| e.name.as_str()), Some("svg"));
    elements
}

fn has_class(e: &Element, class: &str) -> bool {
    e.attrs
        .get("class")
        .is_some_and(|c| c.split_whitespace().any(|c| c == class))
}

/// The classes of the state box named `name`.
fn state_classes(elements: &[Element], name: &str) -> Vec<String> {
    let state = elements
        .iter()
        .find(|e| has_class(e, "state") && e.attrs.get("data-state").map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no box for state {name}"));
    state.attrs["class"].split_whitespace().map(str::to_string).collect()
}

fn edges<'e>(elements: &'e [Element], class: &str) -> Vec<&'e Element> {
    elements
        .iter()
        .filter(|e| e.name == "path" && has_class(e, "edge") && has_class(e, class))
        .collect()
}

/// Every state name in a definition, nested scopes included.
fn all_state_names(definition: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut scopes = vec![definition];
    while let Some(scope) = scopes.pop() {
        for (name, state) in scope["States"].as_object().unwrap() {
            names.push(name.clone());
            scopes.extend(state["Branches"].as_array().into_iter().flatten());
            for key in ["ItemProcessor", "Iterator"] {
                if state.get(key).is_some() {
                    scopes.push(&state[key]);
                }
            }
        }
    }
    names
}

/// A machine with every construct the graph draws: Choice rules and Default, Catch,
/// a loop, a Parallel, a Map, Fail and Succeed, and names that need escaping.
fn rich_definition() -> Value {
    json!({
        "StartAt": "Fetch",
        "States": {
            "Fetch": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:fetch",
                "Catch": [{"ErrorEquals": ["Fetch.Denied", "States.Timeout"], "Next": "Denied <&> \"quoted\""}],
                "Next": "Route"},
            "Route": {"Type": "Choice", "Choices": [
                {"Variable": "$.kind", "StringEquals": "many", "Next": "EachItem"},
                {"Variable": "$.kind", "StringEquals": "pair", "Next": "Both"}
            ], "Default": "Work"},
            "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:work",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Broken"}], "Next": "Again"},
            "Again": {"Type": "Choice", "Choices": [
                {"Variable": "$.more", "BooleanEquals": true, "Next": "Fetch"}
            ], "Default": "Done"},
            "EachItem": {"Type": "Map", "ItemsPath": "$.items", "ToleratedFailurePercentage": 100,
                "ItemProcessor": {"StartAt": "Item", "States": {
                    "Item": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:item",
                        "Catch": [{"ErrorEquals": ["Item.Bad"], "Next": "ItemQuarantined"}], "End": true},
                    "ItemQuarantined": {"Type": "Pass", "End": true}
                }},
                "Next": "Done"},
            "Both": {"Type": "Parallel", "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Wait", "Seconds": 0, "End": true}}},
                {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "Next": "RightAgain"},
                    "RightAgain": {"Type": "Succeed"}}}
            ], "Next": "Done"},
            "Done": {"Type": "Succeed"},
            "Broken": {"Type": "Fail", "Error": "Work.Broken"},
            "Denied <&> \"quoted\"": {"Type": "Fail", "Error": "Fetch.Denied"}
        }
    })
}

fn machine(definition: &Value) -> StateMachine {
    StateMachine::from_json(&definition.to_string()).unwrap()
}

fn handler(f: impl Fn(Value) -> Result<Value, TaskFailure> + Send + Sync + 'static) -> Arc<dyn TaskHandler> {
    Arc::new(FnHandler(move |_ctx: TaskContext, input: Value| {
        futures::future::ready(f(input))
    }))
}

async fn run(definition: &Value, registry: TaskRegistry, input: Value) -> (Engine, ExecutionPath) {
    let engine = Engine::new(registry);
    let report = engine
        .start_execution(&machine(definition), StartExecution::new("Graph", input))
        .await
        .unwrap();
    let history = engine.execution_history(&report.execution_arn).unwrap();
    (engine, ExecutionPath::from_history(&history).named("run-1"))
}

#[test]
fn svg_is_well_formed_and_names_every_state() {
    let definition = rich_definition();
    let svg = render_svg(&machine(&definition), None);
    let elements = parse(&svg);
    for name in all_state_names(&definition) {
        state_classes(&elements, &name);
    }
    assert!(
        svg.contains("Denied &lt;&amp;&gt; &quot;quoted&quot;"),
        "names are escaped"
    );
    assert_eq!(elements.iter().filter(|e| has_class(e, "terminal")).count(), 2);
}

#[test]
fn catch_edges_are_dashed_and_labelled_with_their_errors() {
    let svg = render_svg(&machine(&rich_definition()), None);
    let elements = parse(&svg);
    let catches = edges(&elements, "catch");
    assert_eq!(catches.len(), 3, "one per catcher, nested ones included");
    assert!(catches.iter().all(|e| e.attrs.contains_key("stroke-dasharray")));
    let solid = edges(&elements, "next");
    assert!(!solid.is_empty());
    assert!(solid.iter().all(|e| !e.attrs.contains_key("stroke-dasharray")));
    assert!(svg.contains(">Fetch.Denied, States.Timeout</text>"));
    assert!(svg.contains(">$.kind == &quot;many&quot;</text>"));
    assert!(svg.contains(">Default</text>"));
}

#[test]
fn parallel_branches_and_map_processors_are_nested_groups() {
    let svg = render_svg(&machine(&rich_definition()), None);
    let elements = parse(&svg);
    let containers: Vec<&Element> = elements.iter().filter(|e| has_class(e, "container")).collect();
    assert_eq!(containers.len(), 2);
    assert_eq!(elements.iter().filter(|e| has_class(e, "branch")).count(), 2);
    // The inner states are drawn inside their container's box.
    let m = machine(&rich_definition());
    let layout = layout_scope(m.root(), true);
    let map = layout
        .nodes
        .iter()
        .find(|n| n.state_name() == Some("EachItem"))
        .unwrap();
    let NodeKind::State { inner, .. } = &map.kind else {
        panic!("EachItem is a state")
    };
    let processor = &inner[0];
    assert!(processor.origin.x >= 0.0 && processor.origin.x + processor.width <= map.w);
    assert!(processor.origin.y >= 0.0 && processor.origin.y + processor.height <= map.h);
}

fn assert_no_overlaps(scope: &ScopeLayout<'_>) {
    let boxes: Vec<_> = scope
        .nodes
        .iter()
        .filter(|n| !matches!(n.kind, NodeKind::Bend))
        .collect();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
            assert!(apart, "{:?} overlaps {:?}", a.state_name(), b.state_name());
        }
        if let NodeKind::State { inner, .. } = &a.kind {
            inner.iter().for_each(assert_no_overlaps);
        }
    }
}

#[test]
fn boxes_never_overlap_and_loops_point_back_up() {
    let m = machine(&rich_definition());
    let layout = layout_scope(m.root(), true);
    assert_no_overlaps(&layout);
    let y_of = |name: &str| {
        layout
            .nodes
            .iter()
            .find(|n| n.state_name() == Some(name))
            .map(|n| n.y)
            .unwrap()
    };
    assert!(y_of("Fetch") < y_of("Route") && y_of("Route") < y_of("Work") && y_of("Work") < y_of("Again"));
    let end = layout.nodes.iter().find(|n| matches!(n.kind, NodeKind::End)).unwrap();
    assert!(layout.nodes.iter().all(|n| n.y <= end.y), "End is at the bottom");
    // Rendering is deterministic, so a checked-in SVG does not churn.
    assert_eq!(render_svg(&m, None), render_svg(&m, None));
}

#[test]
fn a_state_that_loops_to_itself_is_drawn() {
    let m = machine(&json!({"StartAt": "Poll", "States": {
        "Poll": {"Type": "Choice", "Choices": [{"Variable": "$.done", "BooleanEquals": false, "Next": "Poll"}],
            "Default": "Finished"},
        "Finished": {"Type": "Succeed"}
    }}));
    let elements = parse(&render_svg(&m, None));
    let looped = edges(&elements, "choice");
    assert_eq!(looped.len(), 1);
    assert_eq!(looped[0].attrs["data-from"], "Poll");
    assert_eq!(looped[0].attrs["data-to"], "Poll");
}

#[tokio::test]
async fn execution_path_colours_visited_caught_and_failed_states() {
    let mut registry = TaskRegistry::new();
    registry.register_lambda("fetch", handler(|_| Ok(json!({"kind": "single"}))));
    registry.register_lambda("work", handler(|_| Err(TaskFailure::new("Work.Exploded", "synthetic"))));
    let (_, path) = run(&rich_definition(), registry, json!({})).await;
    assert_eq!(path.state(), ExecutionState::Failed);
    assert_eq!(path.error(), Some("Work.Broken"));
    let svg = render_svg(&machine(&rich_definition()), Some(&path));
    let elements = parse(&svg);
    assert!(state_classes(&elements, "Fetch").contains(&"succeeded".to_string()));
    assert!(state_classes(&elements, "Route").contains(&"succeeded".to_string()));
    assert!(state_classes(&elements, "Work").contains(&"caught-error".to_string()));
    assert!(state_classes(&elements, "Broken").contains(&"failed".to_string()));
    for unvisited in ["Again", "EachItem", "Item", "Both", "Left", "Done"] {
        assert!(
            state_classes(&elements, unvisited).contains(&"not-visited".to_string()),
            "{unvisited}"
        );
    }
    let taken: Vec<(&str, &str)> = edges(&elements, "taken")
        .iter()
        .map(|e| (e.attrs["data-from"].as_str(), e.attrs["data-to"].as_str()))
        .collect();
    assert_eq!(
        taken,
        vec![
            ("Start", "Fetch"),
            ("Fetch", "Route"),
            ("Route", "Work"),
            ("Work", "Broken"),
            ("Broken", "End")
        ]
    );
    assert!(svg.contains("Execution run-1: FAILED (Work.Broken)"));
}

#[tokio::test]
async fn a_failed_map_iteration_is_marked_while_the_run_succeeds() {
    let mut registry = TaskRegistry::new();
    registry.register_lambda("fetch", handler(|_| Ok(json!({"kind": "many", "items": [1, 2, 3]}))));
    registry.register_lambda(
        "item",
        handler(|input| match input.as_i64() {
            Some(2) => Err(TaskFailure::new("Item.Bad", "synthetic")),
            Some(3) => Err(TaskFailure::new("Item.Unexpected", "synthetic")),
            _ => Ok(json!("ok")),
        }),
    );
    let (_, path) = run(&rich_definition(), registry, json!({})).await;
    assert_eq!(path.state(), ExecutionState::Succeeded);
    assert_eq!(path.mark_of("EachItem"), StateMark::Succeeded);
    assert_eq!(path.mark_of("ItemQuarantined"), StateMark::Succeeded);
    // Item 1 succeeded, item 2 was caught, item 3 failed its iteration: the worst shows.
    assert_eq!(path.mark_of("Item"), StateMark::Failed);
    assert!(path.took("Item", "ItemQuarantined"));
    assert!(path.ended_after("Done"));
    let elements = parse(&render_svg(&machine(&rich_definition()), Some(&path)));
    let end = elements
        .iter()
        .find(|e| has_class(e, "terminal") && has_class(e, "end"))
        .unwrap();
    assert!(has_class(end, "reached"), "the run reached End");
}

#[tokio::test]
async fn a_parked_execution_marks_the_waiting_state_in_progress() {
    let definition = json!({"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Next": "AskConsent"},
        "AskConsent": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "consent", "Payload": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": 86400, "Next": "Use"},
        "Use": {"Type": "Succeed"}
    }});
    let mut registry = TaskRegistry::new();
    registry.register_lambda("consent", handler(|_| Ok(json!({}))));
    let engine = Engine::new(registry);
    let report = engine
        .start_execution(&machine(&definition), StartExecution::new("Graph", json!({})))
        .await
        .unwrap();
    assert!(matches!(report.outcome, ExecutionOutcome::Waiting { .. }));
    let path = ExecutionPath::from_history(&engine.execution_history(&report.execution_arn).unwrap());
    assert_eq!(path.state(), ExecutionState::Running);
    let elements = parse(&render_svg(&machine(&definition), Some(&path)));
    assert!(state_classes(&elements, "Prepare").contains(&"succeeded".to_string()));
    assert!(state_classes(&elements, "AskConsent").contains(&"in-progress".to_string()));
    assert!(state_classes(&elements, "Use").contains(&"not-visited".to_string()));
}

fn event(id: u64, event_type: EventType, name: Option<&str>) -> HistoryEvent {
    HistoryEvent {
        id,
        previous_event_id: id.saturating_sub(1),
        timestamp: chrono::Utc::now(),
        event_type,
        details: Box::new(EventDetails {
            name: name.map(str::to_string),
            ..Default::default()
        }),
    }
}

#[test]
fn odd_histories_do_not_confuse_the_path() {
    // Nothing at all: a run that has not started anything.
    let path = ExecutionPath::from_history(&[]);
    assert_eq!(path.state(), ExecutionState::Running);
    assert_eq!(path.mark_of("Anything"), StateMark::NotVisited);
    // Exits without entries, events without names, task results with no task, and a state
    // the definition does not have.
    let history = [
        event(1, EventType::ExecutionStarted, None),
        event(2, EventType::TaskStateExited, Some("Ghost")),
        event(3, EventType::TaskFailed, None),
        event(4, EventType::PassStateEntered, None),
        event(5, EventType::MapStateFailed, None),
        event(6, EventType::PassStateEntered, Some("NotInTheDefinition")),
        event(7, EventType::ExecutionFailed, None),
    ];
    let path = ExecutionPath::from_history(&history);
    assert_eq!(path.state(), ExecutionState::Failed);
    assert_eq!(path.mark_of("Ghost"), StateMark::NotVisited);
    assert_eq!(path.mark_of("NotInTheDefinition"), StateMark::Failed);
    let svg = render_svg(&machine(&rich_definition()), Some(&path));
    let elements = parse(&svg);
    assert!(state_classes(&elements, "Fetch").contains(&"not-visited".to_string()));
}

#[test]
fn the_pipeline_definition_renders_every_state() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../asl/pipeline.asl.json");
    let Ok(text) = std::fs::read_to_string(&file) else {
        eprintln!("SKIPPED: {} is not there", file.display());
        return;
    };
    let definition: Value = serde_json::from_str(&text).unwrap();
    let m = StateMachine::from_json(&text).unwrap();
    let elements = parse(&render_svg(&m, None));
    for name in all_state_names(&definition) {
        state_classes(&elements, &name);
    }
    assert_no_overlaps(&layout_scope(m.root(), true));
}

#[tokio::test]
async fn a_redriven_distributed_map_is_drawn_as_it_finally_ran() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let fixed = Arc::new(AtomicBool::new(false));
    let flag = fixed.clone();
    let mut registry = TaskRegistry::new();
    registry.register_lambda(
        "item",
        Arc::new(sluice_statemachine::FnHandler(
            move |_ctx: TaskContext, input: Value| {
                let broken = input == json!(2) && !flag.load(Ordering::SeqCst);
                futures::future::ready(if broken {
                    Err(TaskFailure::new("Item.Bad", "synthetic"))
                } else {
                    Ok(input)
                })
            },
        )),
    );
    let objects = sluice_statemachine::MemoryObjectStorage::new();
    objects.insert("b", "items.json", "[1, 2, 3]");
    let engine = Engine::new(registry).with_objects(Arc::new(objects));
    let definition = json!({"StartAt": "Fan", "States": {
        "Fan": {"Type": "Map", "Next": "Done",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket": "b", "Key": "items.json"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Item", "States": {"Item": {"Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:item", "End": true}}}},
        "Done": {"Type": "Succeed"}}});
    let machine = StateMachine::from_json(&definition.to_string()).unwrap();
    let report = engine
        .start_execution(&machine, StartExecution::new("Graph", json!({})))
        .await
        .unwrap();
    let history = engine.execution_history(&report.execution_arn).unwrap();
    let failed = ExecutionPath::from_history(&history);
    assert_eq!(failed.state(), ExecutionState::Failed);
    assert_eq!(failed.mark_of("Fan"), StateMark::Failed);

    fixed.store(true, Ordering::SeqCst);
    engine.redrive_execution(&report.execution_arn).await.unwrap();
    let history = engine.execution_history(&report.execution_arn).unwrap();
    let redriven = ExecutionPath::from_history(&history);
    assert_eq!(redriven.state(), ExecutionState::Succeeded);
    assert_eq!(redriven.mark_of("Fan"), StateMark::Succeeded);
    assert!(redriven.took("Fan", "Done"));
    let svg = render_svg(&machine, Some(&redriven));
    assert!(!parse(&svg).is_empty());
}
