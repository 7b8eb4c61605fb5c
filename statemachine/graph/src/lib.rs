//! A state machine drawn the way the Step Functions console draws it, as SVG: a box per
//! state, Start and End, arrows for Next, Choice rules, Default and Catch (dashed, with the
//! error names), Parallel branches and Map processors as nested groups; and, given an
//! execution's history, the path it took (visited green, failed red, caught orange,
//! waiting blue, the rest grey).
//!
//! - [`render_svg`]: the one entry point, a machine (and maybe a path) to an SVG document;
//! - [`ExecutionPath`]: an execution's path, read from its history;
//! - `layout`: layered placement of each scope; `labels`: the words on boxes and edges;
//! - `svg`: drawing; `text`: escaping and width estimates.

mod execution;
mod labels;
mod layout;
mod svg;
mod text;

pub use execution::{ExecutionPath, ExecutionState, StateMark};

use sluice_statemachine::StateMachine;

/// The machine as a standalone SVG document; with `path`, coloured by that execution.
pub fn render_svg(machine: &StateMachine, path: Option<&ExecutionPath>) -> String {
    let layout = layout::layout_scope(machine.root(), true);
    svg::render(&layout, path)
}

#[cfg(test)]
mod tests;
