//! The attachment ledger: every wanted attachment of a mailbox, from the moment it is fetched
//! to its final state, in the control table (partition `ledger#<mailbox>`, sort key the
//! attachment's source: `mail#<message id>#<part id>`, or `upload#<object key>` for files put
//! in the bucket's `incoming/`).
//!
//! An entry moves only forward, by conditional write: `fetched -> staged -> cleaned ->
//! ingested`, or to `quarantined` / `skipped` (final, with the reason) or `failed` (with the
//! error name and the attempts so far; a later run may take it up again). A stage that runs
//! twice (a retry, a redrive, two overlapping executions) finds the entry already moved and
//! changes nothing. A run's work is every entry that is not final, whichever run fetched it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::BackendError;
use crate::item::{AttrValue, Item, ItemKey};
use crate::tables::{PageRequest, PutCondition, Table};

/// Where an attachment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerState {
    Fetched,
    Staged,
    Cleaned,
    Ingested,
    Quarantined,
    Failed,
    Skipped,
}

impl LedgerState {
    pub const ALL: [LedgerState; 7] = [
        LedgerState::Fetched,
        LedgerState::Staged,
        LedgerState::Cleaned,
        LedgerState::Ingested,
        LedgerState::Quarantined,
        LedgerState::Failed,
        LedgerState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Fetched => "fetched",
            LedgerState::Staged => "staged",
            LedgerState::Cleaned => "cleaned",
            LedgerState::Ingested => "ingested",
            LedgerState::Quarantined => "quarantined",
            LedgerState::Failed => "failed",
            LedgerState::Skipped => "skipped",
        }
    }

    pub fn from_name(name: &str) -> Option<LedgerState> {
        LedgerState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Nothing more happens to the entry unless someone asks (`failed` may be retried).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            LedgerState::Ingested | LedgerState::Quarantined | LedgerState::Skipped | LedgerState::Failed
        )
    }

    /// The states an entry may be in for a move to `self` (the one rule of the ledger).
    fn allowed_from(self) -> &'static [&'static str] {
        match self {
            // A failed entry taken up again starts over; a skipped one is fetched when its
            // limit was raised.
            LedgerState::Fetched => &["failed", "skipped"],
            LedgerState::Staged => &["fetched"],
            LedgerState::Cleaned => &["staged"],
            LedgerState::Ingested => &["cleaned"],
            LedgerState::Quarantined | LedgerState::Failed => &["fetched", "staged", "cleaned", "failed"],
            LedgerState::Skipped => &["fetched", "failed"],
        }
    }
}

impl std::fmt::Display for LedgerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attachment, as the ledger holds it. Keys and names only: never contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Where it came from (see the module doc): the entry's key.
    pub source: String,
    /// Its original under `raw/`; none when it was skipped before it was stored.
    pub raw_key: Option<String>,
    pub dataset: String,
    pub message_id: String,
    pub part_id: String,
    pub state: LedgerState,
    /// Why it was quarantined or skipped (with the limit), in a sentence.
    pub reason: Option<String>,
    /// The Step Functions error name of the last failure.
    pub error: Option<String>,
    /// How many times processing failed.
    pub attempts: u32,
    /// The size limit an attachment was skipped under: raising it brings the attachment in.
    pub limit: Option<u64>,
    /// The run (execution name) that last moved the entry.
    pub run: Option<String>,
    pub updated_at: i64,
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// The entry is now in the asked state.
    Done,
    /// It already was (the step ran before): nothing changed.
    AlreadyThere,
    /// It is in a state the move cannot start from (it went further, or elsewhere).
    Refused { current: LedgerState },
    /// No entry has this key.
    Unknown,
}

/// The ledger of one mailbox.
#[derive(Clone)]
pub struct Ledger {
    table: Arc<dyn Table>,
    partition: String,
    /// Stamped on every entry this handle writes.
    run: Option<String>,
}

fn text(item: &Item, field: &str) -> Option<String> {
    item.get(field).and_then(AttrValue::as_str).map(str::to_string)
}

impl Ledger {
    pub fn new(table: Arc<dyn Table>, mailbox: &str) -> Ledger {
        Ledger {
            table,
            partition: format!("ledger#{mailbox}"),
            run: None,
        }
    }

    /// This ledger, writing on behalf of the run `run` (so a summary can tell what it did).
    pub fn for_run(mut self, run: Option<&str>) -> Ledger {
        self.run = run.map(str::to_string);
        self
    }

    /// The run this handle writes on behalf of.
    pub fn run(&self) -> Option<&str> {
        self.run.as_deref()
    }

    fn key(&self, source: &str) -> ItemKey {
        ItemKey::new(self.partition.clone(), source)
    }

    /// The source of a mail attachment.
    pub fn mail_source(message_id: &str, part_id: &str) -> String {
        format!("mail#{message_id}#{part_id}")
    }

    fn decode(&self, item: &Item) -> Result<LedgerEntry, BackendError> {
        let bad = |reason: &str| BackendError::InvalidItem {
            table: self.table.name().to_string(),
            reason: format!("ledger entry: {reason}"),
        };
        let source = text(item, "sk").ok_or_else(|| bad("no sort key"))?;
        let state = text(item, "state")
            .as_deref()
            .and_then(LedgerState::from_name)
            .ok_or_else(|| bad("no known state"))?;
        let number = |field: &str| item.get(field).and_then(AttrValue::as_i64);
        Ok(LedgerEntry {
            dataset: text(item, "dataset").unwrap_or_default(),
            message_id: text(item, "message_id").unwrap_or_default(),
            part_id: text(item, "part_id").unwrap_or_default(),
            state,
            reason: text(item, "reason"),
            error: text(item, "error"),
            attempts: number("attempts").and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            updated_at: number("updated_at").unwrap_or(0),
            limit: number("limit").and_then(|n| u64::try_from(n).ok()),
            run: text(item, "run"),
            raw_key: text(item, "raw_key"),
            source,
        })
    }

    fn encode(&self, entry: &LedgerEntry) -> Item {
        let mut item = self.key(&entry.source).to_item();
        item.insert("state".into(), AttrValue::S(entry.state.as_str().into()));
        if let Some(raw_key) = &entry.raw_key {
            item.insert("raw_key".into(), AttrValue::S(raw_key.clone()));
        }
        item.insert("dataset".into(), AttrValue::S(entry.dataset.clone()));
        item.insert("message_id".into(), AttrValue::S(entry.message_id.clone()));
        item.insert("part_id".into(), AttrValue::S(entry.part_id.clone()));
        if let Some(reason) = &entry.reason {
            item.insert("reason".into(), AttrValue::S(reason.clone()));
        }
        if let Some(error) = &entry.error {
            item.insert("error".into(), AttrValue::S(error.clone()));
        }
        item.insert("attempts".into(), AttrValue::N(entry.attempts.to_string()));
        if let Some(limit) = entry.limit {
            item.insert("limit".into(), AttrValue::N(limit.to_string()));
        }
        if let Some(run) = self.run.as_ref().or(entry.run.as_ref()) {
            item.insert("run".into(), AttrValue::S(run.clone()));
        }
        item.insert("updated_at".into(), AttrValue::N(entry.updated_at.to_string()));
        item
    }

    /// Records a fetched attachment (or one skipped or quarantined at fetch, with its reason).
    /// False when the ledger already had it: a rerun never resets an entry, except that an
    /// entry skipped (for its size) is replaced: stored now, or skipped under the new limit.
    pub async fn record(&self, entry: LedgerEntry) -> Result<bool, BackendError> {
        match self.table.put(self.encode(&entry), PutCondition::IfAbsent).await {
            Ok(()) => return Ok(true),
            Err(BackendError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e),
        }
        let condition = PutCondition::IfFieldIn {
            field: "state",
            values: &["skipped"],
        };
        match self.table.put(self.encode(&entry), condition).await {
            Ok(()) => Ok(true),
            Err(BackendError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get(&self, source: &str) -> Result<Option<LedgerEntry>, BackendError> {
        self.table
            .get(&self.key(source))
            .await?
            .map(|item| self.decode(&item))
            .transpose()
    }

    /// Moves an entry to `to`, as the ledger's rule allows; `reason` and `error` go with
    /// quarantined, skipped and failed (a failure also counts an attempt). Concurrent moves
    /// from one state: exactly one wins.
    pub async fn advance(
        &self,
        source: &str,
        to: LedgerState,
        reason: Option<String>,
        error: Option<String>,
        now: i64,
    ) -> Result<Moved, BackendError> {
        loop {
            let Some(mut entry) = self.get(source).await? else {
                return Ok(Moved::Unknown);
            };
            if entry.state == to && to != LedgerState::Failed {
                return Ok(Moved::AlreadyThere);
            }
            if !to.allowed_from().contains(&entry.state.as_str()) {
                return Ok(Moved::Refused { current: entry.state });
            }
            let from = entry.state;
            entry.state = to;
            entry.updated_at = now;
            match to {
                LedgerState::Failed => {
                    entry.attempts += 1;
                    entry.error = error.clone();
                }
                // Ingested may carry a note too (rows rejected, with where they went).
                LedgerState::Quarantined | LedgerState::Skipped | LedgerState::Ingested => {
                    entry.reason = reason.clone()
                }
                LedgerState::Fetched => {
                    entry.reason = None;
                }
                _ => {}
            }
            // Only from the state just read: a concurrent move makes this one look again.
            let condition = PutCondition::IfFieldIn {
                field: "state",
                values: state_slice(from),
            };
            match self.table.put(self.encode(&entry), condition).await {
                Ok(()) => return Ok(Moved::Done),
                Err(BackendError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Every entry, in source order, a page at a time (`start_after` is the last source seen).
    pub async fn page(
        &self,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LedgerEntry>, Option<String>), BackendError> {
        let request = PageRequest {
            sk_prefix: None,
            start_after: start_after.map(str::to_string),
            limit,
        };
        let page = self.table.query(&self.partition, &request).await?;
        let entries = page
            .items
            .iter()
            .map(|item| self.decode(item))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, page.last_sk))
    }

    /// Calls `each` on every entry, a page at a time.
    pub async fn for_each(&self, mut each: impl FnMut(LedgerEntry)) -> Result<(), BackendError> {
        let mut after: Option<String> = None;
        loop {
            let (entries, last) = self.page(after.as_deref(), 1000).await?;
            entries.into_iter().for_each(&mut each);
            match last {
                Some(last) => after = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// The work of a run: every entry not yet final, plus failed ones with attempts left
    /// (`max_attempts` = `u32::MAX` takes up every failed one).
    pub async fn unfinished(&self, max_attempts: u32) -> Result<Vec<LedgerEntry>, BackendError> {
        let mut out = Vec::new();
        self.for_each(|e| {
            if !e.state.is_final() || (e.state == LedgerState::Failed && e.attempts < max_attempts) {
                out.push(e);
            }
        })
        .await?;
        Ok(out)
    }

    /// Where the mailbox stands: per dataset, entries by state, and what the run `run` moved;
    /// the failed entries (the first [`SUMMARY_LISTED`]).
    pub async fn summary(&self, run: &str) -> Result<LedgerSummary, BackendError> {
        let mut summary = LedgerSummary::default();
        self.for_each(|e| {
            let dataset = if e.dataset.is_empty() {
                "(none)".to_string()
            } else {
                e.dataset.clone()
            };
            *summary
                .datasets
                .entry(dataset.clone())
                .or_default()
                .entry(e.state.as_str().to_string())
                .or_default() += 1;
            let moved_now = e.run.as_deref() == Some(run);
            if moved_now {
                *summary
                    .this_run
                    .entry(dataset)
                    .or_default()
                    .entry(e.state.as_str().to_string())
                    .or_default() += 1;
            }
            if !e.state.is_final() {
                summary.not_final += 1;
            }
            let listed = match e.state {
                LedgerState::Failed => {
                    summary.failed_total += 1;
                    Some(&mut summary.failed)
                }
                LedgerState::Quarantined | LedgerState::Skipped if moved_now => Some(&mut summary.set_aside),
                LedgerState::Ingested if moved_now && e.reason.is_some() => Some(&mut summary.set_aside),
                _ => None,
            };
            if let Some(list) = listed
                && list.len() < SUMMARY_LISTED
            {
                list.push(ListedEntry {
                    source: e.source,
                    dataset: e.dataset,
                    state: e.state.as_str().to_string(),
                    raw_key: e.raw_key,
                    reason: e.reason,
                    error: e.error,
                    attempts: e.attempts,
                });
            }
        })
        .await?;
        Ok(summary)
    }
}

/// How many failed (or set-aside) entries a summary lists by name.
pub const SUMMARY_LISTED: usize = 50;

/// Entry counts by state name.
pub type StateCounts = BTreeMap<String, u64>;

/// A mailbox's ledger in numbers (see [`Ledger::summary`]). Keys, names and reasons only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSummary {
    /// Dataset -> state -> entries, over the whole ledger.
    pub datasets: BTreeMap<String, StateCounts>,
    /// The same, for the entries this run moved.
    pub this_run: BTreeMap<String, StateCounts>,
    /// Every failed entry (until `--retry-failed` takes it up), the first ones by name.
    pub failed: Vec<ListedEntry>,
    pub failed_total: u64,
    /// Quarantined or skipped by this run, or ingested with rows rejected.
    pub set_aside: Vec<ListedEntry>,
    /// Entries not yet final: the next run takes them up.
    pub not_final: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedEntry {
    pub source: String,
    pub dataset: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
}

/// Which ledger entry a step's work belongs to: what a Distributed Map child passes each step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRef {
    pub mailbox: String,
    pub source: String,
    /// The run doing the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// Where a step's result moves its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerMove {
    pub to: LedgerState,
    pub reason: Option<String>,
    pub error: Option<String>,
}

impl LedgerMove {
    pub fn to(to: LedgerState) -> LedgerMove {
        LedgerMove {
            to,
            reason: None,
            error: None,
        }
    }
}

/// A step output that moves the ledger entry of the file it worked on.
pub trait LedgerOutcome {
    fn ledger_move(&self) -> Option<LedgerMove>;
}

/// A step's input with the ledger entry it works for (absent when run outside the pipeline).
#[derive(Debug, Clone, Deserialize)]
pub struct Tracked<I> {
    #[serde(flatten)]
    pub input: I,
    #[serde(default)]
    pub ledger: Option<LedgerRef>,
}

/// Applies a step's outcome to its ledger entry. A move the ledger refuses (the entry went
/// further already, by an earlier or an overlapping run) changes nothing and is no error.
pub async fn track<O: LedgerOutcome>(
    control: &Arc<dyn Table>,
    reference: Option<&LedgerRef>,
    output: &O,
) -> Result<(), BackendError> {
    let (Some(reference), Some(to)) = (reference, output.ledger_move()) else {
        return Ok(());
    };
    let ledger = Ledger::new(control.clone(), &reference.mailbox).for_run(reference.run.as_deref());
    let now = chrono::Utc::now().timestamp();
    match ledger
        .advance(&reference.source, to.to, to.reason, to.error, now)
        .await?
    {
        Moved::Done | Moved::AlreadyThere => {}
        Moved::Refused { current } => {
            tracing::info!(source = %reference.source, current = %current, to = %to.to, "ledger entry is past this step already")
        }
        Moved::Unknown => tracing::warn!(source = %reference.source, "no ledger entry for this file"),
    }
    Ok(())
}

/// A state's name as the one-element list a condition takes.
fn state_slice(state: LedgerState) -> &'static [&'static str] {
    match state {
        LedgerState::Fetched => &["fetched"],
        LedgerState::Staged => &["staged"],
        LedgerState::Cleaned => &["cleaned"],
        LedgerState::Ingested => &["ingested"],
        LedgerState::Quarantined => &["quarantined"],
        LedgerState::Failed => &["failed"],
        LedgerState::Skipped => &["skipped"],
    }
}
