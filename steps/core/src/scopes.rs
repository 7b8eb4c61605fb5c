//! The scopes an API credential may carry: one list, for the API that checks them and the
//! token step that issues keys with them.

pub const RECORDS_READ: &str = "records:read";
pub const RECORDS_REIDENTIFY: &str = "records:reidentify";
pub const RUNS_START: &str = "runs:start";

/// Every scope Sluice knows.
pub const ALL: [&str; 3] = [RECORDS_READ, RECORDS_REIDENTIFY, RUNS_START];

pub fn is_known(scope: &str) -> bool {
    ALL.contains(&scope)
}
