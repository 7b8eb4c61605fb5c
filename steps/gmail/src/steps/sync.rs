//! Which messages a fetch looks at. The first run lists the whole query (`messages.list`, 5
//! quota units a page); once a listing is complete, the mailbox's history id from before it is
//! kept (control table, `gmail#sync#<account>` / `state`, with the query it belongs to), and
//! later runs read only what was added since (`users.history.list`, 2 units a page).
//!
//! History has no search: what was added is matched against the query by Gmail itself, with
//! the query narrowed to mail received since the last sync (one listing page, usually); a
//! message Gmail dates earlier (an import, a delayed delivery) is looked up on its own day.
//! When Google no longer has history that old (its 404, after about a week), the state is
//! dropped and the run lists the whole query again: the 404 is never retried.

use std::collections::HashSet;

use sluice_core::{AttrValue, Item, ItemKey, PutCondition, Table};

use crate::error::GmailError;
use crate::mail::{HistorySupport, Mailbox};
use crate::settings::SyncMode;

/// Mail Gmail dates up to this long before the last sync still counts as new to it (clocks,
/// delivery delays).
const SLACK_SECS: i64 = 24 * 3600;
const PAGE: u32 = 500;

/// Where a mailbox's sync stands: the history id a complete listing (or history read) began at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncState {
    pub history_id: u64,
    /// The query the listing was of: another query starts over with a full listing.
    pub query: String,
    /// When that listing began (epoch seconds).
    pub synced_at: i64,
}

fn key(account: &str) -> ItemKey {
    ItemKey::new(format!("gmail#sync#{account}"), "state")
}

pub(crate) async fn load(control: &dyn Table, account: &str) -> Result<Option<SyncState>, GmailError> {
    let Some(item) = control.get(&key(account)).await? else {
        return Ok(None);
    };
    let text = |field: &str| item.get(field).and_then(AttrValue::as_str).map(str::to_string);
    let history_id = text("history_id").and_then(|id| id.parse().ok());
    let synced_at = item.get("synced_at").and_then(AttrValue::as_i64);
    Ok(match (history_id, text("query"), synced_at) {
        (Some(history_id), Some(query), Some(synced_at)) => Some(SyncState {
            history_id,
            query,
            synced_at,
        }),
        // Unreadable (written by another version?): a full listing rebuilds it.
        _ => None,
    })
}

pub(crate) async fn save(control: &dyn Table, account: &str, state: &SyncState) -> Result<(), GmailError> {
    let mut item: Item = key(account).to_item();
    item.insert("history_id".into(), AttrValue::S(state.history_id.to_string()));
    item.insert("query".into(), AttrValue::S(state.query.clone()));
    item.insert("synced_at".into(), AttrValue::N(state.synced_at.to_string()));
    control.put(item, PutCondition::Always).await?;
    Ok(())
}

pub(crate) async fn forget(control: &dyn Table, account: &str) -> Result<(), GmailError> {
    control
        .delete(&key(account), sluice_core::DeleteCondition::Always)
        .await?;
    Ok(())
}

/// How this run finds its messages.
#[derive(Debug)]
pub(crate) enum Plan {
    /// List the whole query; `history_id` (read before the listing) is kept once it completes.
    Full { history_id: Option<u64>, expired: bool },
    /// The messages added since the last sync that match the query, in history order.
    Incremental { ids: Vec<String>, history_id: u64 },
}

impl Plan {
    /// What the output says of it.
    pub fn name(&self) -> &'static str {
        match self {
            Plan::Full { .. } => "full",
            Plan::Incremental { .. } => "incremental",
        }
    }

    pub fn history_id(&self) -> Option<u64> {
        match self {
            Plan::Full { history_id, .. } => *history_id,
            Plan::Incremental { history_id, .. } => Some(*history_id),
        }
    }
}

pub(crate) async fn plan(
    mailbox: &dyn Mailbox,
    control: &dyn Table,
    account: &str,
    query: &str,
    mode: SyncMode,
) -> Result<Plan, GmailError> {
    if mailbox.history_support() == HistorySupport::None || mode == SyncMode::Full {
        return Ok(Plan::Full {
            history_id: None,
            expired: false,
        });
    }
    let state = load(control, account).await?.filter(|state| state.query == query);
    let mut expired = false;
    if let Some(state) = state {
        match added_since(mailbox, query, &state).await {
            Ok((ids, history_id)) => return Ok(Plan::Incremental { ids, history_id }),
            Err(GmailError::HistoryExpired { start }) => {
                tracing::warn!(
                    account,
                    start,
                    "Gmail's history has expired: listing the whole query again"
                );
                forget(control, account).await?;
                expired = true;
            }
            Err(err) => return Err(err),
        }
    }
    // Read before listing: mail that arrives during the listing has a later history id, so
    // the next run sees it (the done markers skip what this one also took).
    let history_id = mailbox.history_id().await?;
    Ok(Plan::Full {
        history_id: Some(history_id),
        expired,
    })
}

/// The ids added since `state` that the query matches, and the mailbox's history id when the
/// reading began.
async fn added_since(mailbox: &dyn Mailbox, query: &str, state: &SyncState) -> Result<(Vec<String>, u64), GmailError> {
    let mut added = Vec::new();
    let mut seen = HashSet::new();
    let mut token: Option<String> = None;
    let mut now = None;
    loop {
        let page = mailbox.history(state.history_id, token.as_deref()).await?;
        now.get_or_insert(page.history_id);
        added.extend(page.added.into_iter().filter(|id| seen.insert(id.clone())));
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let now = now.unwrap_or(state.history_id);
    if added.is_empty() || query.trim().is_empty() {
        return Ok((added, now));
    }
    let matched = matching(mailbox, query, &added, state.synced_at).await?;
    Ok((added.into_iter().filter(|id| matched.contains(id)).collect(), now))
}

/// Which of `candidates` Gmail lists for `query`.
async fn matching(
    mailbox: &dyn Mailbox,
    query: &str,
    candidates: &[String],
    since: i64,
) -> Result<HashSet<String>, GmailError> {
    let mut left: HashSet<&str> = candidates.iter().map(String::as_str).collect();
    let mut matched = HashSet::new();
    listed_of(
        mailbox,
        &format!("({query}) after:{}", since - SLACK_SECS),
        &mut left,
        &mut matched,
    )
    .await?;
    // Dated before the last sync: each looked up on its own day.
    let older: Vec<String> = left.iter().map(|id| id.to_string()).collect();
    for id in older {
        let Some(received) = mailbox.received_at(&id).await? else {
            continue;
        };
        let window = format!(
            "({query}) after:{} before:{}",
            received - SLACK_SECS,
            received + SLACK_SECS
        );
        let mut one: HashSet<&str> = HashSet::from([id.as_str()]);
        listed_of(mailbox, &window, &mut one, &mut matched).await?;
    }
    Ok(matched)
}

/// Pages through `query` until every id of `left` was seen (moved to `matched`) or the
/// listing ends.
async fn listed_of(
    mailbox: &dyn Mailbox,
    query: &str,
    left: &mut HashSet<&str>,
    matched: &mut HashSet<String>,
) -> Result<(), GmailError> {
    let mut token: Option<String> = None;
    while !left.is_empty() {
        let page = mailbox.list(query, token.as_deref(), PAGE).await?;
        for id in page.ids {
            if left.remove(id.as_str()) {
                matched.insert(id);
            }
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(())
}
