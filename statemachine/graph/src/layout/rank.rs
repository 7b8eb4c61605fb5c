//! Which layer each node goes in and in what order: loops broken, longest-path layers,
//! bends for long edges, barycenter sweeps against crossings.

use super::{Edge, EdgeKind, Graph, Node, NodeKind, ORDER_SWEEPS};

/// Marks the edges that close a loop. Catch edges are exceptions and must not decide the
/// main flow: a depth-first search follows the other edges first (a Catch target becomes a
/// root of its own once the flow is explored) and marks its back edges; then each Catch is
/// drawn upwards only when pointing down would close a loop.
pub(super) fn break_loops(graph: &Graph<'_>) -> Vec<bool> {
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
pub(super) fn assign_layers(graph: &mut Graph<'_>) -> usize {
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
pub(super) fn insert_bends(graph: &mut Graph<'_>, layer_count: usize) -> Vec<Vec<usize>> {
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
pub(super) fn order_layers(graph: &Graph<'_>, layers: &mut Vec<Vec<usize>>) {
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
