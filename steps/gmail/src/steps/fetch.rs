//! Gmail fetch: lists the messages matching the query, walks their parts, and hands every wanted
//! attachment to the sink in the same step (Gmail's attachment ids change between calls).
//!
//! Idempotence lives in the control table, partition `gmail#message#<account>#<message id>`:
//! - `part#<part id>`: claimed with a conditional write (a 15-minute lease, so a crashed run's
//!   claim can be taken over) before download, then marked done with the resulting key. Two
//!   concurrent runs never both process a part.
//! - `done`: written once every part of the message is handled; later runs skip the message
//!   without calling `messages.get`, so a rerun spends only `messages.list` quota.
//!
//! Every wanted part also gets its entry in the attachment ledger ([`sluice_core::ledger`])
//! *before* its part record says done: a crash in between leaves the part claimed (taken over
//! when the claim expires), never done and unrecorded. A part an earlier run finished without
//! a ledger entry gets one from its part record.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::ledger::{Ledger, LedgerEntry, LedgerState};
use sluice_core::{AttrValue, BackendError, DeleteCondition, ItemKey, PutCondition, Table};

use crate::error::GmailError;
use crate::http::HttpClient;
use crate::mail::{Labeled, MailPart, MailSource, Mailbox, MessagePage, WantedTypes};
use crate::oauth::{Authorizer, now_epoch};
use crate::settings::GmailSettings;
use crate::sink::{AttachmentSink, FetchedAttachment};

/// Longer than a Lambda can run, so a live claim is never taken over.
const CLAIM_LEASE_SECS: i64 = 15 * 60;
const DONE_SK: &str = "done";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FetchInput {
    pub account: Option<String>,
    /// Overrides `[gmail] query`.
    pub query: Option<String>,
    /// Lowers `[gmail] max_messages_per_run` for this run.
    pub max_messages: Option<u32>,
    /// The run (the execution's name): when given, the run's work list is written to
    /// `runs/<run id>/work-<n>.jsonl` and the output carries its key instead of the keys.
    pub run_id: Option<String>,
    /// The batch of the run (0 first): the first one's work list takes up every ledger entry
    /// not yet final, whichever run fetched it; later ones add what they fetched.
    pub batch: u32,
    /// Take up again the entries that stayed `failed` after their attempts.
    pub retry_failed: bool,
    /// The run's mailbox lease holder: the lease is renewed (and must still be this run's).
    pub lease_owner: Option<String>,
}

/// Keys and counts only: never file contents, names or addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchOutput {
    /// What the sink produced, one key per attachment handled in this run.
    pub keys: Vec<String>,
    pub messages_listed: u64,
    /// Listed, but fully handled by an earlier run.
    pub messages_already_done: u64,
    pub messages_read: u64,
    /// Listed, then gone before they could be read.
    pub messages_vanished: u64,
    /// Unreadable messages, recorded as done so they are not read again.
    pub messages_malformed: u64,
    pub attachments_fetched: u64,
    pub attachments_quarantined: u64,
    /// Already handled (by an earlier or a concurrent run).
    pub attachments_duplicate: u64,
    /// Claimed by a run still in progress; this message will be looked at again.
    pub attachments_in_progress: u64,
    pub attachments_unwanted: u64,
    pub attachments_too_large: u64,
    /// Parts (or whole messages) a limit of the mail source left out, recorded as skipped.
    #[serde(default)]
    pub parts_skipped: u64,
    /// Links to Drive files in message bodies: not fetched (gmail.readonly cannot read Drive).
    pub drive_links: u64,
    pub bytes_fetched: u64,
    /// Messages given `gmail.label_processed` once all their attachments were handled.
    #[serde(default)]
    pub messages_labeled: u64,
    /// Not labeled because the token was granted without `gmail.modify` (consent again to
    /// grant it), or because the call failed (the message stays done either way).
    #[serde(default)]
    pub labels_not_granted: u64,
    #[serde(default)]
    pub labels_failed: u64,
    /// Gmail quota units spent (5 per list, get and attachments.get call, 2 per history page,
    /// 1 per profile).
    pub quota_units: u64,
    /// How the messages were found: `full` (the whole query listed) or `incremental` (the
    /// mailbox's history since the last complete listing).
    #[serde(default)]
    pub sync: String,
    /// The kept history id had expired at Google: this run listed the whole query again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub history_expired: bool,
    /// More matching messages remain than this run examined: run again.
    pub has_more: bool,
    /// The run's batch this was (as asked).
    #[serde(default)]
    pub batch: u32,
    /// The work list of the run (`run_id` given): one JSON line per unfinished ledger entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_manifest_key: Option<String>,
    /// How many entries the work list holds, and how many of them earlier runs left.
    #[serde(default)]
    pub work_items: u64,
    #[serde(default)]
    pub work_carried_over: u64,
    /// Failed entries this run takes up again.
    #[serde(default)]
    pub work_retried: u64,
    /// Attachments skipped for their size under a lower limit, to be fetched again.
    #[serde(default)]
    pub skipped_reopened: u64,
}

impl FetchOutput {
    fn absorb(&mut self, other: MessageTally, recorded: &mut Vec<LedgerEntry>) {
        self.keys.extend(other.keys);
        recorded.extend(other.recorded);
        self.messages_read += other.read;
        self.messages_vanished += other.vanished;
        self.messages_malformed += other.malformed;
        self.attachments_fetched += other.fetched;
        self.attachments_quarantined += other.quarantined;
        self.attachments_duplicate += other.duplicate;
        self.attachments_in_progress += other.in_progress;
        self.attachments_unwanted += other.unwanted;
        self.attachments_too_large += other.too_large;
        self.parts_skipped += other.skipped;
        self.drive_links += other.drive_links;
        self.bytes_fetched += other.bytes;
        self.messages_labeled += other.labeled;
        self.labels_not_granted += other.label_not_granted;
        self.labels_failed += other.label_failed;
    }
}

#[derive(Default)]
struct MessageTally {
    keys: Vec<String>,
    /// Entries this batch put in the ledger, ready for processing.
    recorded: Vec<LedgerEntry>,
    read: u64,
    vanished: u64,
    malformed: u64,
    fetched: u64,
    quarantined: u64,
    duplicate: u64,
    in_progress: u64,
    unwanted: u64,
    too_large: u64,
    skipped: u64,
    drive_links: u64,
    bytes: u64,
    labeled: u64,
    label_not_granted: u64,
    label_failed: u64,
}

/// What the fetch step needs.
#[derive(Clone)]
pub struct FetchDeps {
    pub settings: GmailSettings,
    pub control: Arc<dyn Table>,
    pub source: Arc<dyn MailSource>,
    pub sink: Arc<dyn AttachmentSink>,
    /// Where work lists go (`runs/<run id>/`); a run that asks for one without it fails.
    pub objects: Option<Arc<dyn sluice_core::ObjectStore>>,
}

impl FetchDeps {
    /// The source `[gmail] source` names, over the authorizer's settings.
    pub fn new(
        authorizer: &Arc<Authorizer>,
        control: Arc<dyn Table>,
        sink: Arc<dyn AttachmentSink>,
        http: &HttpClient,
    ) -> FetchDeps {
        FetchDeps {
            settings: authorizer.settings().clone(),
            control,
            source: super::mail_source(authorizer, http),
            sink,
            objects: None,
        }
    }

    /// Lets the step write work lists to `objects`.
    pub fn with_work_lists(mut self, objects: Arc<dyn sluice_core::ObjectStore>) -> FetchDeps {
        self.objects = Some(objects);
        self
    }
}

/// The run id, as it goes into an object key.
fn checked_run_id(run_id: &str) -> Result<&str, GmailError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 80
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(run_id)
    } else {
        Err(GmailError::input(
            "run_id",
            "must be 1 to 80 letters, digits, '-' or '_' (an execution name)",
        ))
    }
}

/// One work list line: what a Distributed Map child needs to process the entry.
fn work_line(entry: &LedgerEntry, account: &str, run_id: &str, raw_key: &str) -> Vec<u8> {
    let mut line = serde_json::json!({
        "raw_key": raw_key,
        "dataset": entry.dataset,
        "attempts": entry.attempts,
        "ledger": {"mailbox": account, "source": entry.source, "run": run_id},
    })
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

/// Writes the batch's work list. The first batch of a run takes up every ledger entry not yet
/// final (failed ones with attempts left, or all with `retry_failed`, are moved back to
/// `fetched`); later batches list what they recorded.
async fn write_work_list(
    deps: &FetchDeps,
    account: &str,
    input: &FetchInput,
    run_id: &str,
    recorded: Vec<LedgerEntry>,
    output: &mut FetchOutput,
) -> Result<(), GmailError> {
    let Some(objects) = &deps.objects else {
        return Err(GmailError::input(
            "run_id",
            "a work list was asked for, but this fetch step has no object store to write it to",
        ));
    };
    let ledger = Ledger::new(deps.control.clone(), account).for_run(Some(run_id));
    let fetched_now: HashSet<String> = recorded.iter().map(|e| e.source.clone()).collect();
    let entries = if input.batch == 0 {
        let max_attempts = if input.retry_failed {
            u32::MAX
        } else {
            deps.settings.max_file_attempts
        };
        ledger.unfinished(max_attempts).await?
    } else {
        recorded
    };
    let mut body = Vec::new();
    for entry in entries {
        let Some(raw_key) = &entry.raw_key else { continue };
        if entry.state == LedgerState::Failed {
            ledger
                .advance(&entry.source, LedgerState::Fetched, None, None, now_epoch())
                .await?;
            output.work_retried += 1;
        }
        body.extend(work_line(&entry, account, run_id, raw_key));
        output.work_items += 1;
        if !fetched_now.contains(&entry.source) {
            output.work_carried_over += 1;
        }
    }
    let key = format!("runs/{run_id}/work-{:05}.jsonl", input.batch);
    let object = sluice_core::ObjectKey::new(key.clone())?;
    objects
        .put_bytes(&object, body.into(), &sluice_core::PutOptions::default())
        .await?;
    output.work_manifest_key = Some(key);
    // The keys are in the work list; a list of them could outgrow the state's 256 KiB.
    output.keys.clear();
    Ok(())
}

/// Makes the messages of attachments skipped under a lower size limit than today's be read
/// again (their `done` and part records go), so raising the limit brings them in.
async fn reopen_skipped(run: &FetchRun<'_>, output: &mut FetchOutput) -> Result<(), GmailError> {
    let mut reopen = Vec::new();
    run.ledger
        .for_each(|e| {
            if e.state == LedgerState::Skipped && e.limit.is_some_and(|limit| limit < run.max_bytes) {
                reopen.push(e);
            }
        })
        .await?;
    for entry in reopen {
        run.control
            .delete(
                &run.part_key(&entry.message_id, &entry.part_id),
                DeleteCondition::Always,
            )
            .await?;
        run.control
            .delete(
                &ItemKey::new(run.partition(&entry.message_id), DONE_SK),
                DeleteCondition::Always,
            )
            .await?;
        output.skipped_reopened += 1;
    }
    Ok(())
}

pub async fn run(input: FetchInput, deps: &FetchDeps) -> Result<FetchOutput, GmailError> {
    let settings = &deps.settings;
    let account = settings.account_or_default(input.account.as_deref())?;
    let query = input.query.clone().unwrap_or_else(|| settings.query.clone());
    if query.len() > 2048 {
        return Err(GmailError::input("query", "is longer than 2048 characters"));
    }
    let run_id = input.run_id.as_deref().map(checked_run_id).transpose()?;
    if let Some(owner) = &input.lease_owner {
        let lease = super::run::mailbox_lease(deps.control.clone(), &account);
        if !lease.renew(owner, settings.run_lease_secs, now_epoch()).await? {
            let holder = lease.holder().await?.map(|(h, _)| h).unwrap_or_else(|| "nobody".into());
            return Err(GmailError::LeaseLost { account, holder });
        }
    }
    let budget = input
        .max_messages
        .unwrap_or(settings.max_messages_per_run)
        .clamp(1, settings.max_messages_per_run) as u64;
    let mailbox = deps.source.open(&account).await?;
    let run = FetchRun {
        account: &account,
        mailbox: mailbox.as_ref(),
        ledger: Ledger::new(deps.control.clone(), &account).for_run(run_id),
        control: deps.control.as_ref(),
        sink: deps.sink.as_ref(),
        wanted: WantedTypes::new(&settings.wanted_types),
        max_bytes: settings.max_attachment_bytes,
        label_name: &settings.label_processed,
        holds_mailbox: input.lease_owner.is_some(),
    };

    let mut output = FetchOutput {
        batch: input.batch,
        ..FetchOutput::default()
    };
    if input.batch == 0 {
        reopen_skipped(&run, &mut output).await?;
        // Reopened messages are found by listing, not in the history since the last sync:
        // every batch lists until a complete listing keeps a new history id.
        if output.skipped_reopened > 0 {
            super::sync::forget(deps.control.as_ref(), &account).await?;
        }
    }
    let started_at = now_epoch();
    let plan = super::sync::plan(mailbox.as_ref(), deps.control.as_ref(), &account, &query, settings.sync).await?;
    output.sync = plan.name().to_string();
    output.history_expired = matches!(plan, super::sync::Plan::Full { expired: true, .. });
    let history_id = plan.history_id();
    // What history says was added (and the query matches) is this run's one page.
    let mut added = match plan {
        super::sync::Plan::Incremental { ids, .. } => Some(ids),
        super::sync::Plan::Full { .. } => None,
    };
    let mut recorded = Vec::new();
    let mut seen = HashSet::new();
    let mut page_token: Option<String> = None;
    let mut examined = 0u64;
    loop {
        let page = match added.take() {
            Some(ids) => MessagePage {
                ids,
                next_page_token: None,
            },
            None => mailbox.list(&query, page_token.as_deref(), settings.page_size).await?,
        };
        // Gmail may list a message twice when mail arrives during paging.
        let fresh: Vec<String> = page.ids.into_iter().filter(|id| seen.insert(id.clone())).collect();
        output.messages_listed += fresh.len() as u64;
        let pending = run.not_done(fresh).await?;
        output.messages_already_done += pending.already_done;
        let room = usize::try_from(budget - examined).unwrap_or(usize::MAX);
        let (now, later) = pending.ids.split_at(pending.ids.len().min(room));
        examined += now.len() as u64;
        // After a failure no new message starts, but those in flight finish (releasing their
        // claims on failure), so the next run finds no stranded claims.
        let failed = AtomicBool::new(false);
        let mut first_error = None;
        // Owned ids: a closure over `&String` makes this future not provably `Send` for every
        // lifetime, which callers that box it as `dyn Future + Send` need.
        let mut tallies = futures::stream::iter(now.iter().cloned().map(|id: String| {
            let failed = &failed;
            let run = &run;
            async move {
                if failed.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                let result = run.message(&id).await;
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                result.map(Some)
            }
        }))
        .buffer_unordered(settings.concurrency);
        while let Some(result) = tallies.next().await {
            match result {
                Ok(Some(tally)) => output.absorb(tally, &mut recorded),
                Ok(None) => {}
                Err(err) => first_error = first_error.or(Some(err)),
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        page_token = page.next_page_token;
        if !later.is_empty() || (examined >= budget && page_token.is_some()) {
            output.has_more = true;
            break;
        }
        if page_token.is_none() {
            break;
        }
    }
    // Everything up to `history_id` has been looked at: later runs start from there. Not while
    // another run still holds parts of a message: its history must be read again, or a crash of
    // that run would leave the message to no listing at all.
    if let (false, 0, Some(history_id)) = (output.has_more, output.attachments_in_progress, history_id) {
        let state = super::sync::SyncState {
            history_id,
            query: query.clone(),
            synced_at: started_at,
        };
        super::sync::save(deps.control.as_ref(), &account, &state).await?;
    }
    if output.labels_not_granted > 0 {
        tracing::warn!(
            account,
            messages = output.labels_not_granted,
            "gmail.label_processed is set but the token was granted without gmail.modify: consent again to grant it"
        );
    }
    output.quota_units = mailbox.quota_units();
    if let Some(run_id) = run_id {
        write_work_list(deps, &account, &input, run_id, recorded, &mut output).await?;
    }
    tracing::info!(
        account,
        messages_listed = output.messages_listed,
        messages_read = output.messages_read,
        attachments_fetched = output.attachments_fetched,
        attachments_duplicate = output.attachments_duplicate,
        quota_units = output.quota_units,
        sync = %output.sync,
        has_more = output.has_more,
        "fetch finished"
    );
    Ok(output)
}

struct Pending {
    ids: Vec<String>,
    already_done: u64,
}

struct FetchRun<'a> {
    account: &'a str,
    mailbox: &'a dyn Mailbox,
    ledger: Ledger,
    control: &'a dyn Table,
    sink: &'a dyn AttachmentSink,
    wanted: WantedTypes,
    max_bytes: u64,
    /// `gmail.label_processed` (empty: none).
    label_name: &'a str,
    /// This run holds the mailbox's lease, so no other fetch of it is alive: a part claimed
    /// but never finished was left by a run that died, and is taken over at once.
    holds_mailbox: bool,
}

impl FetchRun<'_> {
    fn partition(&self, message_id: &str) -> String {
        format!("gmail#message#{}#{message_id}", self.account)
    }

    fn part_key(&self, message_id: &str, part_id: &str) -> ItemKey {
        ItemKey::new(self.partition(message_id), format!("part#{part_id}"))
    }

    /// Drops the ids of messages an earlier run finished, in batches of 100.
    async fn not_done(&self, ids: Vec<String>) -> Result<Pending, GmailError> {
        let mut done = HashSet::new();
        for chunk in ids.chunks(sluice_core::tables::MAX_BATCH_GET) {
            let mut keys: Vec<ItemKey> = chunk
                .iter()
                .map(|id| ItemKey::new(self.partition(id), DONE_SK))
                .collect();
            for _ in 0..8 {
                let batch = self.control.batch_get(keys).await?;
                done.extend(batch.items.iter().filter_map(ItemKey::of).map(|k| k.pk));
                if batch.unprocessed.is_empty() {
                    break;
                }
                keys = batch.unprocessed;
            }
        }
        let before = ids.len();
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| !done.contains(&self.partition(id)))
            .collect();
        Ok(Pending {
            already_done: (before - ids.len()) as u64,
            ids,
        })
    }

    async fn message(&self, id: &str) -> Result<MessageTally, GmailError> {
        let mut tally = MessageTally::default();
        let message = match self.mailbox.message(id).await {
            Ok(Some(message)) => message,
            Ok(None) => {
                tally.vanished += 1;
                return Ok(tally);
            }
            Err(err @ GmailError::GmailResponse { .. }) => {
                tracing::warn!(message_id = id, error = %err, "unreadable message skipped");
                tally.malformed += 1;
                self.mark_done(id, "malformed").await?;
                return Ok(tally);
            }
            Err(err) => return Err(err),
        };
        tally.read += 1;
        tally.drive_links += message.drive_links as u64;
        if message.drive_links > 0 {
            tracing::warn!(
                message_id = id,
                links = message.drive_links,
                "message links Drive files; they are not fetched"
            );
        }
        for part in &message.attachments {
            self.part(part, &mut tally).await?;
        }
        for skipped in &message.skipped {
            tracing::warn!(message_id = id, part_id = %skipped.part_id, reason = %skipped.reason, "part left out");
            tally.skipped += 1;
            self.ledger
                .record(LedgerEntry {
                    source: Ledger::mail_source(id, &skipped.part_id),
                    raw_key: None,
                    dataset: String::new(),
                    message_id: id.to_string(),
                    part_id: skipped.part_id.clone(),
                    state: if skipped.quarantine {
                        LedgerState::Quarantined
                    } else {
                        LedgerState::Skipped
                    },
                    reason: Some(skipped.reason.clone()),
                    error: None,
                    attempts: 0,
                    limit: None,
                    run: None,
                    updated_at: now_epoch(),
                })
                .await?;
        }
        if tally.in_progress == 0 {
            self.mark_done(id, "done").await?;
            self.label(id, &mut tally).await;
        }
        Ok(tally)
    }

    /// Adds `gmail.label_processed` to a message that is done. The message stays done whatever
    /// happens here: a label is a courtesy to the user, not part of the record.
    async fn label(&self, id: &str, tally: &mut MessageTally) {
        if self.label_name.is_empty() {
            return;
        }
        match self.mailbox.add_label(id, self.label_name).await {
            Ok(Labeled::Done) => tally.labeled += 1,
            Ok(Labeled::NotGranted) => tally.label_not_granted += 1,
            Ok(Labeled::Unsupported) => {}
            Err(err) => {
                tracing::warn!(message_id = id, error = %err, "could not label a processed message");
                tally.label_failed += 1;
            }
        }
    }

    async fn part(&self, part: &MailPart, tally: &mut MessageTally) -> Result<(), GmailError> {
        let descriptor = &part.descriptor;
        if !self.wanted.wants(&descriptor.mime_type, &descriptor.file_name) {
            tally.unwanted += 1;
            return Ok(());
        }
        if descriptor.size > self.max_bytes {
            tracing::warn!(message_id = %descriptor.message_id, part_id = %descriptor.part_id, size = descriptor.size, "attachment over the size limit skipped");
            tally.too_large += 1;
            return self.record_skipped(descriptor, descriptor.size).await;
        }
        let key = self.part_key(&descriptor.message_id, &descriptor.part_id);
        match self.claim(&key).await? {
            Claim::Won => {}
            Claim::Done(object_key) => {
                tally.duplicate += 1;
                if let Some(raw_key) = object_key {
                    self.record(descriptor, &raw_key, LedgerState::Fetched, None, tally)
                        .await?;
                }
                return Ok(());
            }
            Claim::Held => {
                tally.in_progress += 1;
                return Ok(());
            }
        }
        match self.deliver(part, tally).await {
            Ok(()) => Ok(()),
            Err(err) => {
                // Let the next run try again rather than wait out the lease.
                if let Err(release) = self.control.delete(&key, DeleteCondition::Always).await {
                    tracing::warn!(error = %release, "could not release an attachment claim");
                }
                Err(err)
            }
        }
    }

    async fn deliver(&self, part: &MailPart, tally: &mut MessageTally) -> Result<(), GmailError> {
        let descriptor = &part.descriptor;
        let key = self.part_key(&descriptor.message_id, &descriptor.part_id);
        let content = self.mailbox.content(part).await?;
        if content.len() as u64 > self.max_bytes {
            tally.too_large += 1;
            self.record_skipped(descriptor, content.len() as u64).await?;
            return self.finish_part(&key, "too_large", None).await;
        }
        let sha256 = hex::encode(Sha256::digest(&content));
        let size = content.len() as u64;
        let stored = self
            .sink
            .accept(FetchedAttachment {
                descriptor: descriptor.clone(),
                content,
                sha256,
            })
            .await
            .map_err(|source| GmailError::Sink {
                message_id: descriptor.message_id.clone(),
                part_id: descriptor.part_id.clone(),
                source,
            })?;
        tally.fetched += 1;
        tally.bytes += size;
        if stored.quarantined {
            tally.quarantined += 1;
        }
        let (state, reason) = if stored.quarantined {
            (
                LedgerState::Quarantined,
                Some("refused when it was stored: see its reason file under quarantine/".to_string()),
            )
        } else {
            (LedgerState::Fetched, None)
        };
        self.record(descriptor, &stored.key, state, reason, tally).await?;
        self.finish_part(&key, "done", Some(&stored.key)).await?;
        tally.keys.push(stored.key);
        Ok(())
    }

    async fn claim(&self, key: &ItemKey) -> Result<Claim, GmailError> {
        let now = now_epoch();
        let mut item = key.to_item();
        item.insert("status".into(), AttrValue::S("claimed".into()));
        item.insert("claimed_at".into(), AttrValue::N(now.to_string()));
        item.insert("expires_at".into(), AttrValue::N((now + CLAIM_LEASE_SECS).to_string()));
        match self
            .control
            .put(item.clone(), PutCondition::IfAbsentOrExpired { now })
            .await
        {
            Ok(()) => Ok(Claim::Won),
            Err(BackendError::ConditionFailed { .. }) => {
                if self.holds_mailbox {
                    let stale = PutCondition::IfFieldIn {
                        field: "status",
                        values: &["claimed"],
                    };
                    match self.control.put(item, stale).await {
                        Ok(()) => {
                            tracing::warn!(key = %key.sk, "took over an attachment claim left by a run that died");
                            return Ok(Claim::Won);
                        }
                        Err(BackendError::ConditionFailed { .. }) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                let existing = self.control.get(key).await?;
                let status = existing
                    .as_ref()
                    .and_then(|i| i.get("status"))
                    .and_then(AttrValue::as_str);
                // Gone again (released by a failing run): leave it for the next run.
                Ok(match status {
                    Some("claimed") | None => Claim::Held,
                    Some(_) => Claim::Done(
                        existing
                            .as_ref()
                            .and_then(|i| i.get("object_key"))
                            .and_then(AttrValue::as_str)
                            .map(str::to_string),
                    ),
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Replaces the claim with a permanent record (no TTL).
    async fn finish_part(&self, key: &ItemKey, status: &str, object_key: Option<&str>) -> Result<(), GmailError> {
        let mut item = key.to_item();
        item.insert("status".into(), AttrValue::S(status.into()));
        item.insert("finished_at".into(), AttrValue::N(now_epoch().to_string()));
        if let Some(object_key) = object_key {
            item.insert("object_key".into(), AttrValue::S(object_key.into()));
        }
        self.control.put(item, PutCondition::Always).await?;
        Ok(())
    }

    /// Records a stored part in the ledger (a no-op when it is there already); a new entry
    /// ready for processing joins the batch's work.
    async fn record(
        &self,
        descriptor: &crate::mail::AttachmentDescriptor,
        raw_key: &str,
        state: LedgerState,
        reason: Option<String>,
        tally: &mut MessageTally,
    ) -> Result<(), GmailError> {
        let dataset = raw_key
            .strip_prefix("raw/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        let entry = LedgerEntry {
            source: Ledger::mail_source(&descriptor.message_id, &descriptor.part_id),
            raw_key: Some(raw_key.to_string()),
            dataset,
            message_id: descriptor.message_id.clone(),
            part_id: descriptor.part_id.clone(),
            state,
            reason,
            error: None,
            attempts: 0,
            limit: None,
            run: None,
            updated_at: now_epoch(),
        };
        if self.ledger.record(entry.clone()).await? && state == LedgerState::Fetched {
            tally.recorded.push(entry);
        }
        Ok(())
    }

    /// Records a part left out for its size, with the size and the limit, so that raising the
    /// limit can bring it in.
    async fn record_skipped(
        &self,
        descriptor: &crate::mail::AttachmentDescriptor,
        size: u64,
    ) -> Result<(), GmailError> {
        self.ledger
            .record(LedgerEntry {
                source: Ledger::mail_source(&descriptor.message_id, &descriptor.part_id),
                raw_key: None,
                dataset: String::new(),
                message_id: descriptor.message_id.clone(),
                part_id: descriptor.part_id.clone(),
                state: LedgerState::Skipped,
                reason: Some(format!(
                    "{size} bytes is over the attachment limit (gmail.max_attachment_bytes = {})",
                    self.max_bytes
                )),
                error: None,
                attempts: 0,
                limit: Some(self.max_bytes),
                run: None,
                updated_at: now_epoch(),
            })
            .await?;
        Ok(())
    }

    async fn mark_done(&self, message_id: &str, status: &str) -> Result<(), GmailError> {
        let mut item = ItemKey::new(self.partition(message_id), DONE_SK).to_item();
        item.insert("status".into(), AttrValue::S(status.into()));
        item.insert("finished_at".into(), AttrValue::N(now_epoch().to_string()));
        self.control.put(item, PutCondition::Always).await?;
        Ok(())
    }
}

enum Claim {
    Won,
    /// An earlier run finished the part; its object key, when it stored one.
    Done(Option<String>),
    Held,
}
