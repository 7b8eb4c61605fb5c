//! The path one execution took, read back from its history: which states it entered, how
//! each ended, and which transitions it followed.

use sluice_statemachine::history::{EventType, HistoryEvent};
use std::collections::{HashMap, HashSet};

/// How a state fared in an execution. When a state ran several times (Map iterations,
/// loops), the most telling outcome wins, in the order of the variants (last wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateMark {
    NotVisited,
    Succeeded,
    /// Failed, and a Catch sent the execution on elsewhere.
    CaughtError,
    /// Entered and not finished: running, or parked on a task token.
    InProgress,
    Failed,
}

/// Where the execution as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionState::Running => "RUNNING",
            ExecutionState::Succeeded => "SUCCEEDED",
            ExecutionState::Failed => "FAILED",
            ExecutionState::TimedOut => "TIMED_OUT",
            ExecutionState::Aborted => "ABORTED",
        }
    }
}

/// What the graph shows of an execution.
#[derive(Debug, Clone)]
pub struct ExecutionPath {
    name: Option<String>,
    state: ExecutionState,
    error: Option<String>,
    marks: HashMap<String, StateMark>,
    transitions: HashSet<(String, String)>,
    /// States after which their scope ended (End, Succeed).
    ended: HashSet<String>,
}

/// One entry into a state that has not been matched by its exit yet.
struct OpenVisit<'e> {
    name: &'e str,
    kind: VisitKind,
    /// A Task attempt is scheduled and has not reported back.
    attempt_running: bool,
    resource: Option<&'e str>,
    /// The latest attempt failed: an exit now means a Catch took over.
    failed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum VisitKind {
    Task,
    Parallel,
    Map,
    Other,
}

impl VisitKind {
    fn of_entered(event: EventType) -> Option<(Self, bool)> {
        use EventType::*;
        Some(match event {
            TaskStateEntered => (Self::Task, false),
            ParallelStateEntered => (Self::Parallel, false),
            MapStateEntered => (Self::Map, false),
            PassStateEntered | ChoiceStateEntered | WaitStateEntered | SucceedStateEntered => (Self::Other, false),
            FailStateEntered => (Self::Other, true),
            _ => return None,
        })
    }
}

fn is_exit(event: EventType) -> bool {
    use EventType::*;
    matches!(
        event,
        PassStateExited
            | TaskStateExited
            | ChoiceStateExited
            | WaitStateExited
            | SucceedStateExited
            | ParallelStateExited
            | MapStateExited
    )
}

impl ExecutionPath {
    /// Reads an execution's history (as `Engine::execution_history` returns it).
    ///
    /// Task outcomes carry no state name, so a task event is matched to the most recently
    /// entered open Task state running that resource; Map iterations that run at once can
    /// blur which iteration a failure belongs to, never which state.
    pub fn from_history(events: &[HistoryEvent]) -> Self {
        let mut path = ExecutionPath {
            name: None,
            state: ExecutionState::Running,
            error: None,
            marks: HashMap::new(),
            transitions: HashSet::new(),
            ended: HashSet::new(),
        };
        let mut open: Vec<OpenVisit<'_>> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let details = &event.details;
            let name = details.name.as_deref();
            let resource = details.resource.as_deref();
            if let (Some((kind, is_fail)), Some(name)) = (VisitKind::of_entered(event.event_type), name) {
                // Its mark comes with its exit, or from what is still open at the end.
                if is_fail {
                    path.mark(name, StateMark::Failed);
                } else {
                    open.push(OpenVisit {
                        name,
                        kind,
                        attempt_running: false,
                        resource: None,
                        failed: false,
                    });
                }
                continue;
            }
            if is_exit(event.event_type) {
                let Some(name) = name else { continue };
                if let Some(at) = open.iter().rposition(|v| v.name == name) {
                    let visit = open.remove(at);
                    path.mark(
                        name,
                        if visit.failed {
                            StateMark::CaughtError
                        } else {
                            StateMark::Succeeded
                        },
                    );
                }
                match events.get(i + 1) {
                    Some(next) if VisitKind::of_entered(next.event_type).is_some() => {
                        if let Some(to) = next.details.name.as_deref() {
                            path.transitions.insert((name.to_string(), to.to_string()));
                        }
                    }
                    _ => {
                        path.ended.insert(name.to_string());
                    }
                }
                continue;
            }
            use EventType::*;
            match event.event_type {
                TaskScheduled => {
                    if let Some(v) = open
                        .iter_mut()
                        .rev()
                        .find(|v| v.kind == VisitKind::Task && !v.attempt_running)
                    {
                        v.attempt_running = true;
                        v.resource = resource;
                        v.failed = false;
                    }
                }
                TaskSucceeded | LambdaFunctionSucceeded => {
                    if let Some(v) = running_task(&mut open, resource) {
                        v.attempt_running = false;
                        v.failed = false;
                    }
                }
                TaskFailed | TaskTimedOut | LambdaFunctionFailed | LambdaFunctionTimedOut => {
                    if let Some(v) = running_task(&mut open, resource) {
                        v.attempt_running = false;
                        v.failed = true;
                    }
                }
                MapStateStarted | ParallelStateStarted => {
                    let kind = if event.event_type == MapStateStarted {
                        VisitKind::Map
                    } else {
                        VisitKind::Parallel
                    };
                    if let Some(v) = open.iter_mut().rev().find(|v| v.kind == kind && !v.attempt_running) {
                        v.attempt_running = true;
                        v.failed = false;
                    }
                }
                MapStateFailed
                | ParallelStateFailed
                | MapStateSucceeded
                | ParallelStateSucceeded
                | MapRunFailed
                | MapRunSucceeded => {
                    let kind = if matches!(
                        event.event_type,
                        MapStateFailed | MapStateSucceeded | MapRunFailed | MapRunSucceeded
                    ) {
                        VisitKind::Map
                    } else {
                        VisitKind::Parallel
                    };
                    let failed = matches!(event.event_type, MapStateFailed | ParallelStateFailed | MapRunFailed);
                    if let Some(v) = open.iter_mut().rev().find(|v| v.kind == kind && v.attempt_running) {
                        v.attempt_running = false;
                        v.failed = failed;
                    }
                }
                ExecutionSucceeded => path.state = ExecutionState::Succeeded,
                ExecutionFailed => {
                    path.state = ExecutionState::Failed;
                    path.error = details.error.clone();
                }
                ExecutionTimedOut => {
                    path.state = ExecutionState::TimedOut;
                    path.error = details.error.clone();
                }
                ExecutionAborted => {
                    path.state = ExecutionState::Aborted;
                    path.error = details.error.clone();
                }
                // A redrive enters the unfinished state again: what was open is superseded.
                ExecutionRedriven => {
                    path.state = ExecutionState::Running;
                    path.error = None;
                    for visit in open.drain(..) {
                        path.marks.remove(visit.name);
                    }
                }
                _ => {}
            }
        }
        let finished = path.state != ExecutionState::Running;
        for visit in open {
            let mark = if visit.failed || finished {
                StateMark::Failed
            } else {
                StateMark::InProgress
            };
            path.mark(visit.name, mark);
        }
        path
    }

    /// Names the execution (shown in the graph's title).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn state(&self) -> ExecutionState {
        self.state
    }

    /// The error the execution failed with, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn mark_of(&self, state: &str) -> StateMark {
        self.marks.get(state).copied().unwrap_or(StateMark::NotVisited)
    }

    /// Whether the execution went from `from` straight to `to` (by Next, a Choice or a Catch).
    pub fn took(&self, from: &str, to: &str) -> bool {
        self.transitions.contains(&(from.to_string(), to.to_string()))
    }

    /// Whether a scope ended after `state` (it had `End` or was a Succeed state).
    pub fn ended_after(&self, state: &str) -> bool {
        self.ended.contains(state)
    }

    fn mark(&mut self, state: &str, mark: StateMark) {
        let slot = self.marks.entry(state.to_string()).or_insert(StateMark::NotVisited);
        *slot = (*slot).max(mark);
    }
}

fn running_task<'v, 'e>(open: &'v mut [OpenVisit<'e>], resource: Option<&str>) -> Option<&'v mut OpenVisit<'e>> {
    let matches = |v: &OpenVisit<'_>| v.kind == VisitKind::Task && v.attempt_running;
    let exact = open
        .iter()
        .rposition(|v| matches(v) && (resource.is_none() || v.resource == resource));
    let at = exact.or_else(|| open.iter().rposition(matches))?;
    open.get_mut(at)
}
