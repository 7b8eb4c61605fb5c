//! Where each node and edge goes once layers are ordered: centres fitted over neighbours,
//! bands for layers, S-curved edges with spread ports, labels placed off each other.

use super::super::text;
use super::{
    BEND_GAP, Graph, LABEL_HEIGHT, LABEL_ROW, LABEL_SIZE, LAYER_GAP, LOOP_REACH, NODE_GAP, Node, Point, ScopeLayout,
    TERMINAL_HEIGHT,
};
use std::collections::HashMap;

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

pub(super) fn place_horizontally(graph: &mut Graph<'_>, layers: &[Vec<usize>]) {
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
pub(super) fn place_vertically(graph: &mut Graph<'_>, layers: &[Vec<usize>]) -> Vec<(f64, f64)> {
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
pub(super) fn route_edges(graph: &mut Graph<'_>, bands: &[(f64, f64)]) {
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
fn on_curve(p: Point, q: Point, t: f64) -> Point {
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
pub(super) fn place_labels(graph: &mut Graph<'_>) {
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
pub(super) fn normalize(graph: Graph<'_>) -> ScopeLayout<'_> {
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
