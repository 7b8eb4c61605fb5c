//! The two ends of a pipeline run over one mailbox.
//!
//! [`begin`] takes the mailbox's lease (one run per mailbox at a time) and reads the run's
//! options; a second run finds the lease held and ends at once, saying by whom and until when.
//! [`finish`] releases the lease and summarizes the attachment ledger: per dataset, entries by
//! state, what this run moved, and every entry that stayed `failed`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_core::Table;
use sluice_core::lease::{Acquired, HolderLiveness, Lease};
use sluice_core::ledger::{Ledger, LedgerSummary};
use sluice_core::run_options::RunOptions;

use crate::error::GmailError;
use crate::oauth::now_epoch;
use crate::settings::GmailSettings;

/// What the run steps need.
#[derive(Clone)]
pub struct RunDeps {
    pub settings: GmailSettings,
    pub control: Arc<dyn Table>,
    /// Tells whether a lease's holder (an execution) still runs.
    pub liveness: Arc<dyn HolderLiveness>,
}

/// The lease of a mailbox's runs.
pub fn mailbox_lease(control: Arc<dyn Table>, account: &str) -> Lease {
    Lease::new(control, &format!("mailbox#{account}"))
}

#[derive(Debug, Clone, Deserialize)]
pub struct BeginInput {
    /// The execution's input: the run's options.
    #[serde(default)]
    pub input: serde_json::Value,
    /// The execution (`$$.Execution.Id`): the lease's holder.
    pub execution: String,
    /// Its name (`$$.Execution.Name`): the run id in object keys.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BeginStatus {
    Started,
    /// Another run holds the mailbox: this one does nothing.
    MailboxBusy,
}

/// Small: it travels in the state for the whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginOutput {
    pub status: BeginStatus,
    pub mailbox: String,
    pub run_id: String,
    pub owner: String,
    pub retry_failed: bool,
    /// Epoch seconds: ledger entries moved since belong to this run.
    pub started_at: i64,
    /// The first fetched batch's work list takes up what earlier runs left.
    pub carry_over: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<String>,
    /// A gone holder whose lease this run took over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over: Option<String>,
    pub message: String,
}

fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| epoch.to_string())
}

fn short(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

pub async fn begin(input: BeginInput, deps: &RunDeps) -> Result<BeginOutput, GmailError> {
    let options = RunOptions::from_input(&input.input).map_err(|m| GmailError::input("input", m))?;
    let mailbox = deps.settings.account_or_default(options.mailbox.as_deref())?;
    if input.execution.is_empty() || input.name.is_empty() {
        return Err(GmailError::input("execution", "and name must name the execution"));
    }
    let now = now_epoch();
    let lease = mailbox_lease(deps.control.clone(), &mailbox);
    let acquired = lease
        .acquire(
            &input.execution,
            deps.settings.run_lease_secs,
            now,
            deps.liveness.as_ref(),
        )
        .await?;
    let mut output = BeginOutput {
        status: BeginStatus::Started,
        mailbox: mailbox.clone(),
        run_id: input.name,
        owner: input.execution,
        retry_failed: options.retry_failed,
        started_at: now,
        carry_over: true,
        holder: None,
        held_until: None,
        took_over: None,
        message: String::new(),
    };
    match acquired {
        Acquired::Held { taken_over, .. } => {
            output.message = match &taken_over {
                Some(gone) => format!(
                    "mailbox {mailbox}: took over the lease of run {}, which is no longer running",
                    short(gone)
                ),
                None => format!("mailbox {mailbox}: this run holds it"),
            };
            output.took_over = taken_over;
        }
        Acquired::Busy { holder, until } => {
            output.status = BeginStatus::MailboxBusy;
            let held = if until > now {
                format!("until {} unless it ends sooner", rfc3339(until))
            } else {
                // Expired, but the holder is known to be still running (parked on consent).
                "while it runs (it may be waiting for Gmail consent)".to_string()
            };
            output.message = format!(
                "another run ({}) holds mailbox {mailbox} {held}; this run did nothing",
                short(&holder)
            );
            output.holder = Some(holder);
            output.held_until = Some(rfc3339(until));
        }
    }
    tracing::info!(mailbox = %output.mailbox, status = ?output.status, "run begins");
    Ok(output)
}

#[derive(Debug, Clone, Deserialize)]
pub struct FinishInput {
    /// [`BeginOutput`], as the state holds it.
    pub run: BeginOutput,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishOutput {
    pub mailbox: String,
    /// False when the lease was no longer this run's (it expired and another run took it).
    pub released: bool,
    pub ledger: LedgerSummary,
}

pub async fn finish(input: FinishInput, deps: &RunDeps) -> Result<FinishOutput, GmailError> {
    let run = input.run;
    let summary = Ledger::new(deps.control.clone(), &run.mailbox)
        .summary(&run.run_id)
        .await?;
    let released = mailbox_lease(deps.control.clone(), &run.mailbox)
        .release(&run.owner, now_epoch())
        .await?;
    tracing::info!(mailbox = %run.mailbox, released, not_final = summary.not_final, failed = summary.failed_total, "run finished");
    Ok(FinishOutput {
        mailbox: run.mailbox,
        released,
        ledger: summary,
    })
}
