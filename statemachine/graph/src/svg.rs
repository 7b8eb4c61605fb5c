//! Drawing a laid-out machine as SVG, coloured by an execution's path when there is one.

use super::execution::{ExecutionPath, ExecutionState, StateMark};
use super::layout::{
    Edge, EdgeKind, KIND_SIZE, LABEL_HEIGHT, LABEL_SIZE, LOOP_REACH, NAME_SIZE, Node, NodeKind, Point, ScopeLayout,
};
use super::{labels, text};
use sluice_statemachine::model::State;
use std::fmt::Write;

const MARGIN: f64 = 24.0;
const HEADER_HEIGHT: f64 = 60.0;
const FONT: &str = "Helvetica, Arial, sans-serif";

const EDGE: &str = "#545b64";
const EDGE_TAKEN: &str = "#037f0c";
const EDGE_MUTED: &str = "#c1c7cd";
const LABEL_TEXT: &str = "#414d5c";

/// Fill, border, name and kind colours of a box.
struct Palette {
    fill: &'static str,
    stroke: &'static str,
    name: &'static str,
    kind: &'static str,
}

const PLAIN: Palette = Palette {
    fill: "#ffffff",
    stroke: "#545b64",
    name: "#16191f",
    kind: "#5f6b7a",
};

fn palette(mark: StateMark) -> Palette {
    match mark {
        StateMark::NotVisited => Palette {
            fill: "#f4f4f4",
            stroke: "#c1c7cd",
            name: "#8d99a8",
            kind: "#a6b0bb",
        },
        StateMark::Succeeded => Palette {
            fill: "#eaf6ea",
            stroke: "#037f0c",
            name: "#16191f",
            kind: "#2b6b30",
        },
        StateMark::CaughtError => Palette {
            fill: "#fff3e8",
            stroke: "#e07941",
            name: "#16191f",
            kind: "#9a4b17",
        },
        StateMark::InProgress => Palette {
            fill: "#e8f2fd",
            stroke: "#0972d3",
            name: "#16191f",
            kind: "#0b4f94",
        },
        StateMark::Failed => Palette {
            fill: "#fdeceb",
            stroke: "#d91515",
            name: "#16191f",
            kind: "#a11111",
        },
    }
}

fn mark_class(mark: StateMark) -> &'static str {
    match mark {
        StateMark::NotVisited => "not-visited",
        StateMark::Succeeded => "succeeded",
        StateMark::CaughtError => "caught-error",
        StateMark::InProgress => "in-progress",
        StateMark::Failed => "failed",
    }
}

const LEGEND: [(StateMark, &str); 5] = [
    (StateMark::Succeeded, "Succeeded"),
    (StateMark::Failed, "Failed"),
    (StateMark::CaughtError, "Caught error"),
    (StateMark::InProgress, "In progress / waiting"),
    (StateMark::NotVisited, "Not visited"),
];

pub(crate) fn render(layout: &ScopeLayout<'_>, path: Option<&ExecutionPath>) -> String {
    let header = if path.is_some() { HEADER_HEIGHT } else { 0.0 };
    let title = path.map(title_of);
    let header_width = title
        .as_deref()
        .map(|t| text::width(t, 14.0).max(legend_width()))
        .unwrap_or(0.0);
    let width = layout.width.max(header_width) + 2.0 * MARGIN;
    let height = layout.height + header + 2.0 * MARGIN;
    let mut svg = String::with_capacity(16 * 1024);
    let _ = write!(
        svg,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="{FONT}">
<defs>{}{}{}</defs>
<rect class="background" width="100%" height="100%" fill="#ffffff"/>
"##,
        marker("arrow", EDGE),
        marker("arrow-taken", EDGE_TAKEN),
        marker("arrow-muted", EDGE_MUTED),
    );
    if let (Some(path), Some(title)) = (path, &title) {
        draw_header(&mut svg, path, title);
    }
    let origin = Point {
        x: MARGIN + (width - 2.0 * MARGIN - layout.width) / 2.0,
        y: MARGIN + header,
    };
    draw_scope(&mut svg, layout, origin, path);
    svg.push_str("</svg>\n");
    svg
}

fn marker(id: &str, colour: &str) -> String {
    format!(
        r#"<marker id="{id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
    )
}

fn title_of(path: &ExecutionPath) -> String {
    let mut title = format!(
        "Execution {}: {}",
        path.name().unwrap_or("(unnamed)"),
        path.state().as_str()
    );
    if let Some(error) = path.error() {
        let _ = write!(title, " ({})", text::truncate(error, 60));
    }
    title
}

fn legend_width() -> f64 {
    LEGEND
        .iter()
        .map(|(_, name)| 22.0 + text::width(name, 12.0) + 18.0)
        .sum()
}

fn draw_header(svg: &mut String, path: &ExecutionPath, title: &str) {
    let colour = match path.state() {
        ExecutionState::Succeeded => "#037f0c",
        ExecutionState::Running => "#0972d3",
        ExecutionState::Failed | ExecutionState::TimedOut | ExecutionState::Aborted => "#d91515",
    };
    let _ = writeln!(
        svg,
        r#"<text class="title" x="{MARGIN}" y="{:.1}" font-size="14" font-weight="700" fill="{colour}">{}</text>"#,
        MARGIN + 12.0,
        text::escape(title)
    );
    let mut x = MARGIN;
    let y = MARGIN + 28.0;
    svg.push_str(r#"<g class="legend">"#);
    for (mark, name) in LEGEND {
        let p = palette(mark);
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="14" height="14" rx="3" fill="{}" stroke="{}" stroke-width="1.5"/><text x="{:.1}" y="{:.1}" font-size="12" fill="{LABEL_TEXT}">{name}</text>"#,
            p.fill,
            p.stroke,
            x + 20.0,
            y + 11.5
        );
        x += 22.0 + text::width(name, 12.0) + 18.0;
    }
    svg.push_str("</g>\n");
}

fn draw_scope(svg: &mut String, scope: &ScopeLayout<'_>, at: Point, path: Option<&ExecutionPath>) {
    let _ = writeln!(
        svg,
        r#"<g class="scope" transform="translate({:.1},{:.1})">"#,
        at.x, at.y
    );
    for edge in &scope.edges {
        draw_edge(svg, scope, edge, path);
    }
    for node in &scope.nodes {
        draw_node(svg, node, path);
    }
    for edge in &scope.edges {
        if let Some(label) = &edge.label {
            let _ = writeln!(
                svg,
                r##"<g class="edge-label"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{LABEL_HEIGHT}" rx="3" fill="#ffffff" fill-opacity="0.9"/><text x="{:.1}" y="{:.1}" font-size="{LABEL_SIZE}" text-anchor="middle" fill="{LABEL_TEXT}">{}</text></g>"##,
                label.center.x - label.w / 2.0,
                label.center.y - LABEL_HEIGHT / 2.0,
                label.w,
                label.center.x,
                label.center.y + 4.0,
                text::escape(&label.text)
            );
        }
    }
    svg.push_str("</g>\n");
}

fn endpoint_name<'a>(node: &'a Node<'_>) -> &'a str {
    match &node.kind {
        NodeKind::Start => "Start",
        NodeKind::End => "End",
        NodeKind::State { name, .. } => name,
        NodeKind::Bend => "",
    }
}

/// Whether the execution followed this edge.
fn taken(scope: &ScopeLayout<'_>, edge: &Edge, path: &ExecutionPath) -> bool {
    let from = &scope.nodes[edge.from];
    let to = &scope.nodes[edge.to];
    match (&from.kind, &to.kind) {
        (NodeKind::Start, NodeKind::State { name, .. }) => path.mark_of(name) != StateMark::NotVisited,
        (NodeKind::State { name, state, .. }, NodeKind::End) => match state {
            State::Fail(_) => path.mark_of(name) != StateMark::NotVisited,
            _ => path.ended_after(name),
        },
        (NodeKind::State { name: a, .. }, NodeKind::State { name: b, .. }) => path.took(a, b),
        _ => false,
    }
}

fn edge_class(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Start => "start",
        EdgeKind::Next => "next",
        EdgeKind::Choice => "choice",
        EdgeKind::Default => "default",
        EdgeKind::Catch => "catch",
        EdgeKind::End => "end",
    }
}

fn draw_edge(svg: &mut String, scope: &ScopeLayout<'_>, edge: &Edge, path: Option<&ExecutionPath>) {
    let followed = path.map(|p| taken(scope, edge, p));
    let (colour, marker, width) = match followed {
        None => (EDGE, "arrow", 1.4),
        Some(true) => (EDGE_TAKEN, "arrow-taken", 2.4),
        Some(false) => (EDGE_MUTED, "arrow-muted", 1.4),
    };
    let d = if edge.is_self_loop() {
        let node = &scope.nodes[edge.from];
        let (right, cy) = (node.x + node.w, node.center_y());
        format!(
            "M{right:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {right:.1},{:.1}",
            cy - 8.0,
            right + LOOP_REACH,
            cy - 28.0,
            right + LOOP_REACH,
            cy + 28.0,
            cy + 8.0
        )
    } else {
        curve(&edge.points)
    };
    let dash = if edge.kind == EdgeKind::Catch {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(
        svg,
        r#"<path class="edge {}{}" data-from="{}" data-to="{}" d="{d}" fill="none" stroke="{colour}" stroke-width="{width}"{dash} marker-end="url(#{marker})"/>"#,
        edge_class(edge.kind),
        if followed == Some(true) { " taken" } else { "" },
        text::escape(endpoint_name(&scope.nodes[edge.from])),
        text::escape(endpoint_name(&scope.nodes[edge.to])),
    );
}

/// Straight through bends, S-curves between layers.
fn curve(points: &[Point]) -> String {
    let mut d = String::new();
    let Some(first) = points.first() else {
        return d;
    };
    let _ = write!(d, "M{:.1},{:.1}", first.x, first.y);
    for pair in points.windows(2) {
        let (p, q) = (pair[0], pair[1]);
        if (p.x - q.x).abs() < 0.5 {
            let _ = write!(d, " L{:.1},{:.1}", q.x, q.y);
        } else {
            let mid = (p.y + q.y) / 2.0;
            let _ = write!(d, " C{:.1},{mid:.1} {:.1},{mid:.1} {:.1},{:.1}", p.x, q.x, q.x, q.y);
        }
    }
    d
}

fn draw_node(svg: &mut String, node: &Node<'_>, path: Option<&ExecutionPath>) {
    match &node.kind {
        NodeKind::Bend => {}
        NodeKind::Start | NodeKind::End => {
            let is_start = matches!(node.kind, NodeKind::Start);
            let reached = path.map(|p| is_start || p.state() == ExecutionState::Succeeded);
            let p = match reached {
                None => PLAIN,
                Some(true) => palette(StateMark::Succeeded),
                Some(false) => palette(StateMark::NotVisited),
            };
            let name = if is_start { "Start" } else { "End" };
            let _ = writeln!(
                svg,
                r#"<g class="terminal {}{}"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{:.1}" fill="{}" stroke="{}" stroke-width="1.5"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="{}">{name}</text></g>"#,
                name.to_ascii_lowercase(),
                if reached == Some(true) { " reached" } else { "" },
                node.x,
                node.y,
                node.w,
                node.h,
                node.h / 2.0,
                p.fill,
                p.stroke,
                node.center_x(),
                node.center_y() + 4.0,
                p.name,
            );
        }
        NodeKind::State { name, state, inner } => {
            let mark = path.map(|p| p.mark_of(name));
            let p = mark.map(palette).unwrap_or(PLAIN);
            let kind = labels::state_kind(state);
            let border = if mark.is_some_and(|m| m != StateMark::NotVisited) {
                2.2
            } else {
                1.4
            };
            let _ = write!(
                svg,
                r#"<g class="state {}{}" data-state="{}"><title>{} ({})</title>"#,
                state.type_name().to_ascii_lowercase(),
                mark.map(|m| format!(" {}", mark_class(m))).unwrap_or_default(),
                text::escape(name),
                text::escape(name),
                text::escape(&kind),
            );
            if inner.is_empty() {
                let _ = writeln!(
                    svg,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6" fill="{}" stroke="{}" stroke-width="{border}"/><text x="{:.1}" y="{:.1}" font-size="{NAME_SIZE}" font-weight="600" text-anchor="middle" fill="{}">{}</text><text x="{:.1}" y="{:.1}" font-size="{KIND_SIZE}" text-anchor="middle" fill="{}">{}</text></g>"#,
                    node.x,
                    node.y,
                    node.w,
                    node.h,
                    p.fill,
                    p.stroke,
                    node.center_x(),
                    node.y + 20.0,
                    p.name,
                    text::escape(name),
                    node.center_x(),
                    node.y + 36.0,
                    p.kind,
                    text::escape(&kind),
                );
                return;
            }
            let fill = if mark.is_some() { p.fill } else { "#fafafa" };
            let _ = writeln!(
                svg,
                r#"<rect class="container" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="8" fill="{fill}" fill-opacity="0.55" stroke="{}" stroke-width="{border}" stroke-dasharray="8 4"/><text x="{:.1}" y="{:.1}" font-size="{NAME_SIZE}" font-weight="600" fill="{}">{}</text><text x="{:.1}" y="{:.1}" font-size="{KIND_SIZE}" fill="{}">{}</text>"#,
                node.x,
                node.y,
                node.w,
                node.h,
                p.stroke,
                node.x + 12.0,
                node.y + 20.0,
                p.name,
                text::escape(name),
                node.x + 12.0,
                node.y + 36.0,
                p.kind,
                text::escape(&kind),
            );
            for scope in inner {
                if inner.len() > 1 {
                    // Each Parallel branch gets a faint frame of its own.
                    let _ = writeln!(
                        svg,
                        r##"<rect class="branch" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6" fill="none" stroke="#d5dbdb" stroke-width="1"/>"##,
                        node.x + scope.origin.x - 8.0,
                        node.y + scope.origin.y - 8.0,
                        scope.width + 16.0,
                        scope.height + 16.0,
                    );
                }
                draw_scope(
                    svg,
                    scope,
                    Point {
                        x: node.x + scope.origin.x,
                        y: node.y + scope.origin.y,
                    },
                    path,
                );
            }
            svg.push_str("</g>\n");
        }
    }
}
