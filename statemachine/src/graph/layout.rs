//! Where everything goes: each scope (the machine, a Parallel branch, a Map processor) is
//! laid out on its own in layers from top to bottom, the way the console draws it:
//! loops are broken by a depth-first search, states are layered by their longest path from
//! the start, long edges bend through placeholder points, a few barycenter sweeps order each
//! layer to cut crossings, and an isotonic fit centres each node over its neighbours.
//! A Parallel or Map state is a box sized to hold its nested scopes.

use super::{labels, text};
use crate::model::{Scope, State};
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
    let reversed = break_loops(&graph);
    for (edge, upward) in graph.edges.iter_mut().zip(reversed) {
        edge.upward = upward;
    }
    let layers = assign_layers(&mut graph);
    let mut layers = insert_bends(&mut graph, layers);
    order_layers(&graph, &mut layers);
    place_horizontally(&mut graph, &layers);
    let bands = place_vertically(&mut graph, &layers);
    route_edges(&mut graph, &bands);
    place_labels(&mut graph);
    normalize(graph)
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
fn flow_and_catch<'s>(flow: &'s crate::model::Flow, catch: &'s [crate::errors::Catcher]) -> Vec<Transition<'s>> {
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
                .map(|c| (Some(c.next.as_str()), EdgeKind::Choice, Some(labels::rule(&c.rule))))
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

/// Marks the edges that close a loop. Catch edges are exceptions and must not decide the
/// main flow: a depth-first search follows the other edges first (a Catch target becomes a
/// root of its own once the flow is explored) and marks its back edges; then each Catch is
/// drawn upwards only when pointing down would close a loop.
fn break_loops(graph: &Graph<'_>) -> Vec<bool> {
    let n = graph.nodes.len();
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut catches: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in graph.edges.iter().enumerate() {
        if e.is_self_loop() {
            continue;
        }
        if e.kind == EdgeKind::Catch {
            catches[e.from].push(e.to);
        } else {
            out_edges[e.from].push(i);
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; n];
    let mut reversed = vec![false; graph.edges.len()];
    let mut roots: std::collections::VecDeque<usize> = std::iter::once(0).chain(0..n).collect();
    let mut deferred: Vec<usize> = Vec::new();
    while let Some(root) = deferred.pop().or_else(|| roots.pop_front()) {
        if mark[root] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        let mut found: Vec<usize> = Vec::new();
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if *next == 0 {
                found.extend(&catches[v]);
            }
            if let Some(&e) = out_edges[v].get(*next) {
                *next += 1;
                let w = graph.edges[e].to;
                match mark[w] {
                    Mark::Open => reversed[e] = true,
                    Mark::New => {
                        mark[w] = Mark::Open;
                        stack.push((w, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                *next += 1;
                mark[v] = Mark::Done;
                stack.pop();
            }
        }
        // Catch targets in the order they were met.
        deferred.extend(found.into_iter().rev());
    }
    let mut accepted: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in graph.edges.iter().enumerate() {
        if e.kind != EdgeKind::Catch && !e.is_self_loop() && !reversed[i] {
            accepted[e.from].push(e.to);
        }
    }
    for (i, e) in graph.edges.iter().enumerate() {
        if e.kind == EdgeKind::Catch && !e.is_self_loop() {
            if reaches(&accepted, e.to, e.from) {
                reversed[i] = true;
            } else {
                accepted[e.from].push(e.to);
            }
        }
    }
    reversed
}

fn reaches(adjacency: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; adjacency.len()];
    let mut stack = vec![from];
    while let Some(v) = stack.pop() {
        if v == to {
            return true;
        }
        if !std::mem::replace(&mut seen[v], true) {
            stack.extend(&adjacency[v]);
        }
    }
    false
}

/// The layout direction of an edge: (upper, lower).
fn ends(edge: &Edge) -> (usize, usize) {
    if edge.upward {
        (edge.to, edge.from)
    } else {
        (edge.from, edge.to)
    }
}

/// Longest-path layers from the sources; End sits alone at the bottom.
fn assign_layers(graph: &mut Graph<'_>) -> usize {
    let n = graph.nodes.len();
    let mut indegree = vec![0usize; n];
    let mut lower: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in graph.edges.iter().filter(|e| !e.is_self_loop()) {
        let (a, b) = ends(e);
        lower[a].push(b);
        indegree[b] += 1;
    }
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).rev().collect();
    let mut layer = vec![0usize; n];
    while let Some(v) = ready.pop() {
        for &w in &lower[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    let deepest = graph
        .nodes
        .iter()
        .zip(&layer)
        .filter(|(node, _)| !matches!(node.kind, NodeKind::End))
        .map(|(_, l)| *l)
        .max()
        .unwrap_or(0);
    for (node, l) in graph.nodes.iter_mut().zip(layer) {
        node.layer = if matches!(node.kind, NodeKind::End) {
            deepest + 1
        } else {
            l
        };
    }
    graph.nodes.iter().map(|node| node.layer + 1).max().unwrap_or(0)
}

/// Gives every edge a node in each layer it crosses, and returns the layers in a first
/// order: depth-first from the top, so a branch's states start out side by side.
fn insert_bends(graph: &mut Graph<'_>, layer_count: usize) -> Vec<Vec<usize>> {
    for e in 0..graph.edges.len() {
        if graph.edges[e].is_self_loop() {
            continue;
        }
        let (a, b) = ends(&graph.edges[e]);
        let mut chain = vec![a];
        for layer in graph.nodes[a].layer + 1..graph.nodes[b].layer {
            let mut bend = Node::new(NodeKind::Bend, 0.0, 0.0);
            bend.layer = layer;
            graph.nodes.push(bend);
            chain.push(graph.nodes.len() - 1);
        }
        chain.push(b);
        graph.edges[e].chain = chain;
    }
    let n = graph.nodes.len();
    graph.down = vec![Vec::new(); n];
    graph.up = vec![Vec::new(); n];
    for edge in &graph.edges {
        for pair in edge.chain.windows(2) {
            graph.down[pair[0]].push(pair[1]);
            graph.up[pair[1]].push(pair[0]);
        }
    }
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    let mut placed = vec![false; n];
    for root in 0..n {
        if placed[root] || !graph.up[root].is_empty() {
            continue;
        }
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            if placed[v] {
                continue;
            }
            placed[v] = true;
            layers[graph.nodes[v].layer].push(v);
            stack.extend(graph.down[v].iter().rev().copied());
        }
    }
    for v in (0..n).filter(|&v| !placed[v]) {
        layers[graph.nodes[v].layer].push(v);
    }
    layers
}

fn positions(layers: &[Vec<usize>], n: usize) -> Vec<f64> {
    let mut pos = vec![0.0; n];
    for layer in layers {
        for (i, &v) in layer.iter().enumerate() {
            pos[v] = i as f64;
        }
    }
    pos
}

fn crossings(graph: &Graph<'_>, layers: &[Vec<usize>]) -> usize {
    let pos = positions(layers, graph.nodes.len());
    let mut total = 0;
    for layer in layers {
        let pairs: Vec<(f64, f64)> = layer
            .iter()
            .flat_map(|&a| graph.down[a].iter().map(move |&b| (a, b)))
            .map(|(a, b)| (pos[a], pos[b]))
            .collect();
        for (i, p) in pairs.iter().enumerate() {
            total += pairs[i + 1..]
                .iter()
                .filter(|q| (p.0 < q.0 && p.1 > q.1) || (p.0 > q.0 && p.1 < q.1))
                .count();
        }
    }
    total
}

/// Barycenter sweeps, alternately down and up; the order with the fewest crossings wins.
fn order_layers(graph: &Graph<'_>, layers: &mut Vec<Vec<usize>>) {
    let n = graph.nodes.len();
    let mut best = layers.clone();
    let mut best_crossings = crossings(graph, layers);
    for sweep in 0..ORDER_SWEEPS {
        if best_crossings == 0 {
            break;
        }
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for l in order {
            let pos = positions(layers, n);
            let neighbours = if downward { &graph.up } else { &graph.down };
            let mut keyed: Vec<(f64, usize)> = layers[l]
                .iter()
                .map(|&v| {
                    let adjacent = &neighbours[v];
                    let key = if adjacent.is_empty() {
                        pos[v]
                    } else {
                        adjacent.iter().map(|&u| pos[u]).sum::<f64>() / adjacent.len() as f64
                    };
                    (key, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            layers[l] = keyed.into_iter().map(|(_, v)| v).collect();
        }
        let count = crossings(graph, layers);
        if count < best_crossings {
            best_crossings = count;
            best = layers.clone();
        }
    }
    *layers = best;
}

/// The least distance between the centres of two neighbours in a layer.
fn separation(left: &Node<'_>, right: &Node<'_>) -> f64 {
    let gap = if left.is_bend() || right.is_bend() {
        BEND_GAP
    } else {
        NODE_GAP
    };
    (left.w + right.w) / 2.0 + gap + left.loop_reach
}

/// Centres each node over its neighbours as far as the order and spacing of its layer
/// allow: weighted isotonic regression (pool adjacent violators) on the wanted centres.
fn fit_layer(wanted: &[f64], weights: &[f64], offsets: &[f64]) -> Vec<f64> {
    // Blocks of (total weight, weighted sum of targets, count).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for i in 0..wanted.len() {
        blocks.push((weights[i], weights[i] * (wanted[i] - offsets[i]), 1));
        while blocks.len() > 1 {
            let last = blocks[blocks.len() - 1];
            let prev = blocks[blocks.len() - 2];
            if prev.1 / prev.0 <= last.1 / last.0 {
                break;
            }
            blocks.pop();
            if let Some(merged) = blocks.last_mut() {
                *merged = (prev.0 + last.0, prev.1 + last.1, prev.2 + last.2);
            }
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (weight, sum, count) in blocks {
        for _ in 0..count {
            let i = out.len();
            out.push(sum / weight + offsets[i]);
        }
    }
    out
}

fn place_horizontally(graph: &mut Graph<'_>, layers: &[Vec<usize>]) {
    let n = graph.nodes.len();
    let mut center = vec![0.0; n];
    let offsets: Vec<Vec<f64>> = layers
        .iter()
        .map(|layer| {
            let mut at = 0.0;
            let mut out = Vec::with_capacity(layer.len());
            for (i, &v) in layer.iter().enumerate() {
                if i > 0 {
                    at += separation(&graph.nodes[layer[i - 1]], &graph.nodes[v]);
                }
                out.push(at);
            }
            out
        })
        .collect();
    for (layer, offs) in layers.iter().zip(&offsets) {
        for (&v, &o) in layer.iter().zip(offs) {
            center[v] = o;
        }
    }
    // Down and up sweeps pull towards one side's neighbours; the last ones towards both.
    let sweeps: [(bool, bool); 10] = [
        (true, false),
        (false, true),
        (true, false),
        (false, true),
        (true, false),
        (false, true),
        (true, true),
        (true, true),
        (true, true),
        (true, true),
    ];
    for (sweep, (use_up, use_down)) in sweeps.into_iter().enumerate() {
        let order: Vec<usize> = if sweep % 2 == 0 {
            (0..layers.len()).collect()
        } else {
            (0..layers.len()).rev().collect()
        };
        for l in order {
            let layer = &layers[l];
            let mut wanted = Vec::with_capacity(layer.len());
            let mut weights = Vec::with_capacity(layer.len());
            for &v in layer {
                let mut adjacent: Vec<usize> = Vec::new();
                if use_up {
                    adjacent.extend(&graph.up[v]);
                }
                if use_down {
                    adjacent.extend(&graph.down[v]);
                }
                wanted.push(if adjacent.is_empty() {
                    center[v]
                } else {
                    adjacent.iter().map(|&u| center[u]).sum::<f64>() / adjacent.len() as f64
                });
                // Bends weigh more so long edges stay straight.
                weights.push(if graph.nodes[v].is_bend() { 2.0 } else { 1.0 });
            }
            for (&v, x) in layer.iter().zip(fit_layer(&wanted, &weights, &offsets[l])) {
                center[v] = x;
            }
        }
    }
    for (node, c) in graph.nodes.iter_mut().zip(center) {
        node.x = c - node.w / 2.0;
    }
}

/// Layer bands (top, height); gaps grow with the labels that sit in them.
fn place_vertically(graph: &mut Graph<'_>, layers: &[Vec<usize>]) -> Vec<(f64, f64)> {
    let count = layers.len();
    // Labels per (gap, source): an edge's label sits in the gap it leaves its source by.
    let mut crowd: HashMap<(usize, usize), usize> = HashMap::new();
    for e in graph.edges.iter().filter(|e| e.label.is_some() && !e.is_self_loop()) {
        let layer = graph.nodes[e.from].layer;
        let gap = if e.upward { layer.checked_sub(1) } else { Some(layer) };
        if let Some(gap) = gap {
            *crowd.entry((gap, e.from)).or_default() += 1;
        }
    }
    let mut gap_rows = vec![0usize; count];
    for ((gap, _), labels) in crowd {
        if let Some(rows) = gap_rows.get_mut(gap) {
            *rows = (*rows).max(labels);
        }
    }
    let mut bands = Vec::with_capacity(count);
    let mut y = 0.0;
    for (l, layer) in layers.iter().enumerate() {
        let height = layer
            .iter()
            .map(|&v| graph.nodes[v].h)
            .fold(0.0, f64::max)
            .max(TERMINAL_HEIGHT);
        bands.push((y, height));
        for &v in layer {
            let node = &mut graph.nodes[v];
            node.y = y + (height - node.h) / 2.0;
        }
        y += height + LAYER_GAP + LABEL_ROW * gap_rows[l] as f64;
    }
    bands
}

/// Points for every edge, with the ends spread along the sides of the nodes they share.
fn route_edges(graph: &mut Graph<'_>, bands: &[(f64, f64)]) {
    let n = graph.nodes.len();
    // (edge, x of the neighbouring point) for the bottom and top side of each node.
    let mut bottom: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    let mut top: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (i, e) in graph.edges.iter().enumerate() {
        if e.is_self_loop() {
            continue;
        }
        let k = e.chain.len();
        bottom[e.chain[0]].push((i, graph.nodes[e.chain[1]].center_x()));
        top[e.chain[k - 1]].push((i, graph.nodes[e.chain[k - 2]].center_x()));
    }
    let mut bottom_port = vec![0.0; graph.edges.len()];
    let mut top_port = vec![0.0; graph.edges.len()];
    for (v, node) in graph.nodes.iter().enumerate() {
        for (side, ports) in [(&mut bottom[v], &mut bottom_port), (&mut top[v], &mut top_port)] {
            side.sort_by(|a, b| a.1.total_cmp(&b.1));
            let spread = if side.len() > 1 {
                (node.w * 0.6 / (side.len() - 1) as f64).min(16.0)
            } else {
                0.0
            };
            let middle = (side.len() as f64 - 1.0) / 2.0;
            for (i, (edge, _)) in side.iter().enumerate() {
                ports[*edge] = node.center_x() + (i as f64 - middle) * spread;
            }
        }
    }
    for (i, e) in graph.edges.iter_mut().enumerate() {
        if e.is_self_loop() {
            continue;
        }
        let first = &graph.nodes[e.chain[0]];
        let last = &graph.nodes[e.chain[e.chain.len() - 1]];
        let mut points = vec![Point {
            x: bottom_port[i],
            y: first.y + first.h,
        }];
        for &bend in &e.chain[1..e.chain.len() - 1] {
            let node = &graph.nodes[bend];
            let (band_top, band_height) = bands[node.layer];
            points.push(Point {
                x: node.center_x(),
                y: band_top,
            });
            points.push(Point {
                x: node.center_x(),
                y: band_top + band_height,
            });
        }
        points.push(Point {
            x: top_port[i],
            y: last.y,
        });
        if e.upward {
            points.reverse();
        }
        e.points = points;
    }
}

/// The point at `t` on the S-curve from `p` to `q` (vertical tangents at both ends).
pub(crate) fn on_curve(p: Point, q: Point, t: f64) -> Point {
    let mid = (p.y + q.y) / 2.0;
    let s = 1.0 - t;
    let (a, b, c, d) = (s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t);
    Point {
        x: a * p.x + b * p.x + c * q.x + d * q.x,
        y: a * p.y + b * mid + c * mid + d * q.y,
    }
}

/// Puts each label on the first stretch of its edge, sliding it along the curve when it
/// would cover another label.
fn place_labels(graph: &mut Graph<'_>) {
    let mut taken: Vec<(Point, f64)> = Vec::new();
    let overlaps = |c: Point, w: f64, taken: &[(Point, f64)]| {
        taken
            .iter()
            .any(|(o, ow)| (c.x - o.x).abs() < (w + ow) / 2.0 + 2.0 && (c.y - o.y).abs() < LABEL_HEIGHT + 1.0)
    };
    for e in graph.edges.iter_mut() {
        let Some(label) = &mut e.label else { continue };
        label.w = text::width(&label.text, LABEL_SIZE) + 8.0;
        if e.from == e.to {
            let node = &graph.nodes[e.from];
            label.center = Point {
                x: node.x + node.w + LOOP_REACH + 4.0 + label.w / 2.0,
                y: node.center_y(),
            };
            taken.push((label.center, label.w));
            continue;
        }
        let (p, q) = (e.points[0], e.points[1]);
        let mut chosen = on_curve(p, q, 0.5);
        for t in [0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6] {
            let c = on_curve(p, q, t);
            if !overlaps(c, label.w, &taken) {
                chosen = c;
                break;
            }
        }
        label.center = chosen;
        taken.push((chosen, label.w));
    }
}

/// Shifts everything so the scope's drawing starts at (0, 0), and measures it.
fn normalize(graph: Graph<'_>) -> ScopeLayout<'_> {
    let Graph {
        mut nodes, mut edges, ..
    } = graph;
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    let mut cover = |x0: f64, y0: f64, x1: f64, y1: f64| {
        min_x = min_x.min(x0);
        min_y = min_y.min(y0);
        max_x = max_x.max(x1);
        max_y = max_y.max(y1);
    };
    for node in nodes.iter().filter(|n| !n.is_bend()) {
        cover(node.x, node.y, node.x + node.w + node.loop_reach, node.y + node.h);
    }
    for e in &edges {
        for p in &e.points {
            cover(p.x, p.y, p.x, p.y);
        }
        if let Some(l) = &e.label {
            cover(
                l.center.x - l.w / 2.0,
                l.center.y - LABEL_HEIGHT / 2.0,
                l.center.x + l.w / 2.0,
                l.center.y + LABEL_HEIGHT / 2.0,
            );
        }
    }
    if min_x > max_x {
        (min_x, min_y, max_x, max_y) = (0.0, 0.0, 0.0, 0.0);
    }
    for node in &mut nodes {
        node.x -= min_x;
        node.y -= min_y;
    }
    for e in &mut edges {
        for p in &mut e.points {
            p.x -= min_x;
            p.y -= min_y;
        }
        if let Some(l) = &mut e.label {
            l.center.x -= min_x;
            l.center.y -= min_y;
        }
    }
    ScopeLayout {
        origin: Point { x: 0.0, y: 0.0 },
        width: max_x - min_x,
        height: max_y - min_y,
        nodes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_layer_keeps_order_and_spacing() {
        // Both want the same spot; they share it symmetrically at the least distance.
        let x = fit_layer(&[100.0, 100.0], &[1.0, 1.0], &[0.0, 50.0]);
        assert_eq!(x, vec![75.0, 125.0]);
        // Nodes already far enough apart stay where they want to be.
        let x = fit_layer(&[0.0, 200.0], &[1.0, 1.0], &[0.0, 50.0]);
        assert_eq!(x, vec![0.0, 200.0]);
    }

    #[test]
    fn curve_runs_from_start_to_end() {
        let (p, q) = (Point { x: 0.0, y: 0.0 }, Point { x: 10.0, y: 40.0 });
        assert_eq!(on_curve(p, q, 0.0), p);
        assert_eq!(on_curve(p, q, 1.0), q);
        assert_eq!(on_curve(p, q, 0.5), Point { x: 5.0, y: 20.0 });
    }
}
