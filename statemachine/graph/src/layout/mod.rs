//! Where everything goes: each scope (the machine, a Parallel branch, a Map processor) is
//! laid out on its own in layers from top to bottom, the way the console draws it:
//! loops are broken by a depth-first search, states are layered by their longest path from
//! the start, long edges bend through placeholder points, a few barycenter sweeps order each
//! layer to cut crossings, and an isotonic fit centres each node over its neighbours.
//! A Parallel or Map state is a box sized to hold its nested scopes.

mod place;
mod rank;

use super::{labels, text};
use sluice_statemachine::model::Catcher;
use sluice_statemachine::model::{Flow, Scope, State};
use std::collections::HashMap;

pub(crate) const NAME_SIZE: f64 = 13.0;
pub(crate) const KIND_SIZE: f64 = 11.0;
pub(crate) const LABEL_SIZE: f64 = 11.0;
pub(crate) const LABEL_HEIGHT: f64 = 16.0;
/// How far a self-loop bulges to the right of its state.
pub(crate) const LOOP_REACH: f64 = 30.0;
/// Height of the name and kind lines at the top of a Parallel or Map box.
pub(crate) const CONTAINER_HEADER: f64 = 44.0;

const STATE_HEIGHT: f64 = 46.0;
const STATE_MIN_WIDTH: f64 = 120.0;
const TERMINAL_WIDTH: f64 = 64.0;
const TERMINAL_HEIGHT: f64 = 28.0;
const CONTAINER_PAD: f64 = 16.0;
const BRANCH_GAP: f64 = 24.0;
const LAYER_GAP: f64 = 40.0;
const LABEL_ROW: f64 = 18.0;
const NODE_GAP: f64 = 36.0;
const BEND_GAP: f64 = 14.0;
const ORDER_SWEEPS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
}

pub(crate) enum NodeKind<'m> {
    Start,
    End,
    State {
        name: &'m str,
        state: &'m State,
        /// The branches of a Parallel, or a Map's processor; empty for other states.
        inner: Vec<ScopeLayout<'m>>,
    },
    /// A point a long edge bends through; not drawn.
    Bend,
}

pub(crate) struct Node<'m> {
    pub kind: NodeKind<'m>,
    /// Top-left corner and size.
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    layer: usize,
    /// How far right of the box a self-loop and its label reach (0 without one).
    loop_reach: f64,
}

impl Node<'_> {
    fn new(kind: NodeKind<'_>, w: f64, h: f64) -> Node<'_> {
        Node {
            kind,
            x: 0.0,
            y: 0.0,
            w,
            h,
            layer: 0,
            loop_reach: 0.0,
        }
    }

    fn is_bend(&self) -> bool {
        matches!(self.kind, NodeKind::Bend)
    }

    #[cfg(test)]
    pub fn state_name(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::State { name, .. } => Some(name),
            _ => None,
        }
    }

    pub fn center_x(&self) -> f64 {
        self.x + self.w / 2.0
    }

    pub fn center_y(&self) -> f64 {
        self.y + self.h / 2.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeKind {
    Start,
    Next,
    Choice,
    Default,
    Catch,
    End,
}

pub(crate) struct Label {
    pub text: String,
    pub center: Point,
    pub w: f64,
}

pub(crate) struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    pub label: Option<Label>,
    /// From the source to the target; consecutive points are joined by vertical S-curves.
    /// Empty for a self-loop, which is drawn beside its state.
    pub points: Vec<Point>,
    /// The nodes the edge passes through, top to bottom in layout order.
    chain: Vec<usize>,
    /// The edge closes a loop and is drawn upwards.
    upward: bool,
}

impl Edge {
    pub fn is_self_loop(&self) -> bool {
        self.from == self.to
    }
}

/// A laid-out scope; coordinates are relative to `origin`, which is relative to the
/// enclosing box (or the canvas, for the machine itself).
pub(crate) struct ScopeLayout<'m> {
    pub origin: Point,
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node<'m>>,
    pub edges: Vec<Edge>,
}

/// Lays out a whole machine; only its top level has Start and End nodes.
pub(crate) fn layout_scope(scope: &Scope, top_level: bool) -> ScopeLayout<'_> {
    let mut graph = build(scope, top_level);
    let reversed = rank::break_loops(&graph);
    for (edge, upward) in graph.edges.iter_mut().zip(reversed) {
        edge.upward = upward;
    }
    let layers = rank::assign_layers(&mut graph);
    let mut layers = rank::insert_bends(&mut graph, layers);
    rank::order_layers(&graph, &mut layers);
    place::place_horizontally(&mut graph, &layers);
    let bands = place::place_vertically(&mut graph, &layers);
    place::route_edges(&mut graph, &bands);
    place::place_labels(&mut graph);
    place::normalize(graph)
}

struct Graph<'m> {
    nodes: Vec<Node<'m>>,
    edges: Vec<Edge>,
    /// Neighbours in layout order (through bends): `down[v]` in the next layer, `up[v]` in
    /// the previous one.
    down: Vec<Vec<usize>>,
    up: Vec<Vec<usize>>,
}

/// States in the order a depth-first walk from StartAt meets them (edges in definition
/// order), then any unreachable ones by name: a stable, readable first ordering.
fn discovery_order(scope: &Scope) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::with_capacity(scope.states.len());
    let mut stack = vec![scope.start_at.as_str()];
    while let Some(name) = stack.pop() {
        if seen.contains(&name) || !scope.states.contains_key(name) {
            continue;
        }
        seen.push(name);
        let targets: Vec<&str> = outgoing(&scope.states[name])
            .into_iter()
            .filter_map(|(target, _, _)| target)
            .collect();
        stack.extend(targets.into_iter().rev());
    }
    let mut rest: Vec<&str> = scope
        .states
        .keys()
        .map(String::as_str)
        .filter(|n| !seen.contains(n))
        .collect();
    rest.sort_unstable();
    seen.extend(rest);
    seen
}

/// A state's transitions: target (`None` is the end of the scope), kind and label.
type Transition<'s> = (Option<&'s str>, EdgeKind, Option<String>);

/// `Next` (or the end of the scope) and the Catch transitions.
fn flow_and_catch<'s>(flow: &'s Flow, catch: &'s [Catcher]) -> Vec<Transition<'s>> {
    let first = match &flow.next {
        Some(next) => (Some(next.as_str()), EdgeKind::Next, None),
        None => (None, EdgeKind::End, None),
    };
    let catches = catch.iter().map(|c| {
        (
            Some(c.next.as_str()),
            EdgeKind::Catch,
            Some(labels::errors(&c.error_equals)),
        )
    });
    std::iter::once(first).chain(catches).collect()
}

/// A state's transitions: target (`None` is the end of the scope), kind and label.
fn outgoing(state: &State) -> Vec<Transition<'_>> {
    match state {
        State::Pass(s) => flow_and_catch(&s.flow, &[]),
        State::Wait(s) => flow_and_catch(&s.flow, &[]),
        State::Task(s) => flow_and_catch(&s.flow, &s.catch),
        State::Parallel(s) => flow_and_catch(&s.flow, &s.catch),
        State::Map(s) => flow_and_catch(&s.flow, &s.catch),
        State::Choice(s) => {
            let mut out: Vec<_> = s
                .choices
                .iter()
                .map(|c| (Some(c.next.as_str()), EdgeKind::Choice, Some(labels::branch(&c.test))))
                .collect();
            if let Some(default) = &s.default {
                out.push((Some(default.as_str()), EdgeKind::Default, Some("Default".into())));
            }
            out
        }
        State::Succeed(_) | State::Fail(_) => vec![(None, EdgeKind::End, None)],
    }
}

fn state_node<'m>(name: &'m str, state: &'m State) -> Node<'m> {
    let kind_line = labels::state_kind(state);
    let text_width = text::width(name, NAME_SIZE).max(text::width(&kind_line, KIND_SIZE)) + 2.0 * CONTAINER_PAD;
    let inner: Vec<ScopeLayout<'m>> = match state {
        State::Parallel(p) => p.branches.iter().map(|b| layout_scope(b, false)).collect(),
        State::Map(m) => m.processor().map(|p| layout_scope(p, false)).into_iter().collect(),
        _ => Vec::new(),
    };
    if inner.is_empty() {
        let w = text_width.max(STATE_MIN_WIDTH);
        return Node::new(NodeKind::State { name, state, inner }, w, STATE_HEIGHT);
    }
    let mut inner = inner;
    let inner_width: f64 =
        inner.iter().map(|s| s.width).sum::<f64>() + BRANCH_GAP * (inner.len().saturating_sub(1)) as f64;
    let inner_height = inner.iter().map(|s| s.height).fold(0.0, f64::max);
    // Parallel branches get a frame each, which needs a little room of its own.
    let frame = if inner.len() > 1 { BRANCH_GAP / 3.0 } else { 0.0 };
    let w = (inner_width + 2.0 * (CONTAINER_PAD + frame))
        .max(text_width)
        .max(STATE_MIN_WIDTH);
    let mut x = (w - inner_width) / 2.0;
    for scope in &mut inner {
        scope.origin = Point {
            x,
            y: CONTAINER_HEADER + frame,
        };
        x += scope.width + BRANCH_GAP;
    }
    let h = CONTAINER_HEADER + inner_height + 2.0 * frame + CONTAINER_PAD;
    Node::new(NodeKind::State { name, state, inner }, w, h)
}

fn build(scope: &Scope, top_level: bool) -> Graph<'_> {
    let mut nodes = Vec::new();
    if top_level {
        nodes.push(Node::new(NodeKind::Start, TERMINAL_WIDTH, TERMINAL_HEIGHT));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for name in discovery_order(scope) {
        index.insert(name, nodes.len());
        nodes.push(state_node(name, &scope.states[name]));
    }
    let end = top_level.then(|| {
        nodes.push(Node::new(NodeKind::End, TERMINAL_WIDTH, TERMINAL_HEIGHT));
        nodes.len() - 1
    });
    let mut edges: Vec<Edge> = Vec::new();
    let mut add = |from: usize, to: usize, kind: EdgeKind, label: Option<String>| {
        // Two rules (or catchers) to the same place share one arrow with both labels.
        let dashed = kind == EdgeKind::Catch;
        if let Some(same) = edges
            .iter_mut()
            .find(|e| e.from == from && e.to == to && (e.kind == EdgeKind::Catch) == dashed)
        {
            if let (Some(old), Some(new)) = (&mut same.label, label) {
                old.text = text::truncate(&format!("{} | {new}", old.text), 60);
            }
            return;
        }
        edges.push(Edge {
            from,
            to,
            kind,
            label: label.map(|text| Label {
                text,
                center: Point { x: 0.0, y: 0.0 },
                w: 0.0,
            }),
            points: Vec::new(),
            chain: Vec::new(),
            upward: false,
        });
    };
    if let Some(&first) = index.get(scope.start_at.as_str())
        && top_level
    {
        add(0, first, EdgeKind::Start, None);
    }
    let mut names: Vec<(&str, usize)> = index.iter().map(|(n, i)| (*n, *i)).collect();
    names.sort_unstable_by_key(|(_, i)| *i);
    for (name, from) in names {
        for (target, kind, label) in outgoing(&scope.states[name]) {
            let to = match target {
                Some(target) => index.get(target).copied(),
                None => end,
            };
            if let Some(to) = to {
                add(from, to, kind, label);
            }
        }
    }
    for edge in &edges {
        if edge.is_self_loop() {
            let label = edge
                .label
                .as_ref()
                .map_or(0.0, |l| text::width(&l.text, LABEL_SIZE) + 12.0);
            nodes[edge.from].loop_reach = LOOP_REACH + label;
        }
    }
    let n = nodes.len();
    Graph {
        nodes,
        edges,
        down: vec![Vec::new(); n],
        up: vec![Vec::new(); n],
    }
}
