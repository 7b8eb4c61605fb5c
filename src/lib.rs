//! The `sluice` binary's library half: the local pipeline runner and the ASL engine's own
//! commands, shared by the CLI and the end-to-end tests, and the synthetic mailboxes they use.

pub mod access_log;
pub mod asl;
pub mod cognito;
pub mod log_sink;
pub mod runner;
pub mod synthetic;
