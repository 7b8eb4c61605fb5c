//! What a pipeline run may be asked for in its execution input (`sluice run`, `POST /runs`,
//! a schedule): one definition, checked where a run starts and where `POST /runs` takes it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunOptions {
    /// Take up again the attachments that stayed `failed` after their attempts.
    pub retry_failed: bool,
    /// The mailbox (default: `[gmail] account`).
    #[serde(alias = "account", skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
}

impl RunOptions {
    /// The options of an execution input; the error names the field that is wrong.
    pub fn from_input(input: &serde_json::Value) -> Result<RunOptions, String> {
        if input.is_null() {
            return Ok(RunOptions::default());
        }
        serde_json::from_value(input.clone()).map_err(|e| {
            format!(
                "the run input is not valid: {e} (known fields: retry_failed (true or false), mailbox (a mailbox name))"
            )
        })
    }
}
