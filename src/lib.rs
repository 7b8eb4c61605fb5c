//! The `sluice` binary's library half: the local pipeline runner, shared by the CLI and the
//! end-to-end tests.

pub mod runner;
