//! The Gmail API source. `messages.list` goes through google-gmail1's hub (its retries driven
//! by a [`Delegate`](common::Delegate) that honours `Retry-After`); `messages.get` and
//! `messages.attachments.get` go through the hub's own client but are decoded here, because
//! Gmail may send base64url without padding, which the generated types refuse.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use google_gmail1::Gmail;
use google_gmail1::common;
use google_gmail1::hyper::header::{ACCEPT, AUTHORIZATION};
use google_gmail1::hyper::{Method, Request, StatusCode};
use google_gmail1::hyper_rustls::HttpsConnector;
use google_gmail1::hyper_util::client::legacy::connect::HttpConnector;
use serde::Deserialize;

use super::{
    AttachmentDescriptor, HistoryPage, HistorySupport, Labeled, MailMessage, MailPart, MailSource, Mailbox,
    MessagePage, PartBody, count_drive_links, decode_base64url,
};
use crate::error::GmailError;
use crate::http::{HttpClient, RetryPolicy, body_of, read_body, retry_after};
use crate::oauth::{Authorization, Authorizer, Sensitive};
use crate::settings::GMAIL_MODIFY_SCOPE;

/// Gmail's cost of the calls we make, in quota units (Gmail API "Usage limits": messages.list,
/// messages.get and messages.attachments.get 5, history.list 2, getProfile 1).
pub const UNITS_LIST: u64 = 5;
pub const UNITS_GET: u64 = 5;
pub const UNITS_HISTORY: u64 = 2;
pub const UNITS_PROFILE: u64 = 1;
/// labels.list 1, labels.create and messages.modify 5.
pub const UNITS_LABELS_LIST: u64 = 1;
pub const UNITS_MODIFY: u64 = 5;
/// The user id in every call: the mailbox the token belongs to.
const USER: &str = "me";
/// A message's JSON (format=full) holds at most Gmail's 25 MB, base64-inflated, plus headers.
const MAX_MESSAGE_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

pub struct GmailSource {
    authorizer: Arc<Authorizer>,
    http: HttpClient,
    base_url: String,
    retry: RetryPolicy,
    max_attachment_bytes: u64,
}

impl GmailSource {
    pub fn new(authorizer: Arc<Authorizer>, http: HttpClient) -> Self {
        let settings = authorizer.settings();
        let mut base_url = settings.api_base_url.clone();
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        GmailSource {
            retry: RetryPolicy::from_settings(settings),
            max_attachment_bytes: settings.max_attachment_bytes,
            base_url,
            http,
            authorizer,
        }
    }
}

#[async_trait]
impl MailSource for GmailSource {
    /// Authorizes first (refreshing if needed): no usable token is `Auth.ConsentRequired`.
    async fn open(&self, account: &str) -> Result<Arc<dyn Mailbox>, GmailError> {
        let (access_token, scopes) = match self.authorizer.authorize(account).await? {
            Authorization::Authorized {
                access_token, scopes, ..
            } => (access_token, scopes),
            Authorization::ConsentRequired { .. } => {
                return Err(GmailError::ConsentRequired {
                    account: account.to_string(),
                });
            }
        };
        let mut hub = Gmail::new(self.http.clone(), access_token.expose().to_string());
        hub.base_url(self.base_url.clone());
        hub.root_url(self.base_url.clone());
        Ok(Arc::new(GmailMailbox {
            hub,
            access_token,
            account: account.to_string(),
            base_url: self.base_url.clone(),
            retry: self.retry,
            max_attachment_bytes: self.max_attachment_bytes,
            units: Arc::new(AtomicU64::new(0)),
            can_modify: scopes.iter().any(|scope| scope == GMAIL_MODIFY_SCOPE),
            label_id: tokio::sync::OnceCell::new(),
        }))
    }
}

pub struct GmailMailbox {
    hub: Gmail<HttpsConnector<HttpConnector>>,
    access_token: Sensitive,
    account: String,
    base_url: String,
    retry: RetryPolicy,
    max_attachment_bytes: u64,
    /// Quota units spent, retries included (Gmail charges for those too).
    units: Arc<AtomicU64>,
    /// The user granted `gmail.modify`: labels may be added.
    can_modify: bool,
    /// The id of the label messages get, looked up (or created) once.
    label_id: tokio::sync::OnceCell<String>,
}

#[async_trait]
impl Mailbox for GmailMailbox {
    async fn list(&self, query: &str, page_token: Option<&str>, page_size: u32) -> Result<MessagePage, GmailError> {
        const OPERATION: &str = "messages.list";
        let mut delegate = RetryDelegate::new(self.retry, self.units.clone(), UNITS_LIST);
        let mut call = self
            .hub
            .users()
            .messages_list(USER)
            .max_results(page_size)
            .include_spam_trash(false)
            .delegate(&mut delegate);
        if !query.is_empty() {
            call = call.q(query);
        }
        if let Some(token) = page_token {
            call = call.page_token(token);
        }
        let result = call.doit().await;
        match result {
            Ok((_, listing)) => Ok(MessagePage {
                ids: listing
                    .messages
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.id)
                    .collect(),
                next_page_token: listing.next_page_token.filter(|t| !t.is_empty()),
            }),
            Err(err) => Err(delegate.into_error(OPERATION, &self.account, &err)),
        }
    }

    async fn message(&self, id: &str) -> Result<Option<MailMessage>, GmailError> {
        const OPERATION: &str = "messages.get";
        let path = format!("gmail/v1/users/{USER}/messages/{}?format=full", path_segment(id)?);
        let Some(body) = self
            .get(OPERATION, &path, MAX_MESSAGE_RESPONSE_BYTES, UNITS_GET)
            .await?
        else {
            return Ok(None);
        };
        let raw: RawMessage = serde_json::from_slice(&body).map_err(|err| GmailError::GmailResponse {
            operation: OPERATION,
            reason: format!(
                "message {id} is not valid JSON: line {} column {}",
                err.line(),
                err.column()
            ),
        })?;
        let mut walk = Walk {
            message_id: id,
            attachments: Vec::new(),
            drive_links: 0,
        };
        if let Some(payload) = &raw.payload {
            walk.part(payload)?;
        }
        Ok(Some(MailMessage {
            id: id.to_string(),
            attachments: walk.attachments,
            drive_links: walk.drive_links,
            skipped: Vec::new(),
        }))
    }

    async fn content(&self, part: &MailPart) -> Result<Bytes, GmailError> {
        let attachment_id = match &part.body {
            PartBody::Loaded(bytes) => return Ok(bytes.clone()),
            PartBody::Remote { attachment_id } => attachment_id,
        };
        let descriptor = &part.descriptor;
        if let Some(bytes) = self.attachment(descriptor, attachment_id).await? {
            return Ok(bytes);
        }
        // Attachment ids go stale (another messages.get of the message issued new ones):
        // read the message again for a fresh id, once.
        let fresh_id = self
            .message(&descriptor.message_id)
            .await?
            .and_then(|message| {
                message
                    .attachments
                    .into_iter()
                    .find(|p| p.descriptor.part_id == descriptor.part_id)
            })
            .and_then(|p| match p.body {
                PartBody::Remote { attachment_id } => Some(attachment_id),
                PartBody::Loaded(_) => None,
            });
        let bytes = match fresh_id {
            Some(id) => self.attachment(descriptor, &id).await?,
            None => None,
        };
        bytes.ok_or_else(|| GmailError::GmailResponse {
            operation: "messages.attachments.get",
            reason: format!(
                "attachment {} of message {} no longer exists",
                descriptor.part_id, descriptor.message_id
            ),
        })
    }

    fn history_support(&self) -> HistorySupport {
        HistorySupport::Available
    }

    async fn add_label(&self, id: &str, label: &str) -> Result<Labeled, GmailError> {
        const OPERATION: &str = "messages.modify";
        if !self.can_modify {
            return Ok(Labeled::NotGranted);
        }
        let label_id = self.label_id.get_or_try_init(|| self.label_named(label)).await?;
        let path = format!("gmail/v1/users/{USER}/messages/{}/modify", path_segment(id)?);
        let body = serde_json::json!({ "addLabelIds": [label_id] });
        match self.post(OPERATION, &path, &body, UNITS_MODIFY).await {
            // Gone since it was read: nothing to label.
            Ok(_) => Ok(Labeled::Done),
            Err(GmailError::GmailRejected { status: 403, .. }) => Ok(Labeled::NotGranted),
            Err(err) => Err(err),
        }
    }

    async fn history_id(&self) -> Result<u64, GmailError> {
        const OPERATION: &str = "getProfile";
        let path = format!("gmail/v1/users/{USER}/profile");
        let body = self
            .get(OPERATION, &path, SMALL_RESPONSE_BYTES, UNITS_PROFILE)
            .await?
            .ok_or_else(|| GmailError::GmailResponse {
                operation: OPERATION,
                reason: "the profile was not found".into(),
            })?;
        let profile: RawProfile = parse(OPERATION, &body)?;
        history_number(OPERATION, &profile.history_id)
    }

    async fn history(&self, start: u64, page_token: Option<&str>) -> Result<HistoryPage, GmailError> {
        const OPERATION: &str = "history.list";
        let mut path =
            format!("gmail/v1/users/{USER}/history?startHistoryId={start}&historyTypes=messageAdded&maxResults=500");
        if let Some(token) = page_token {
            path.push_str("&pageToken=");
            path.extend(url::form_urlencoded::byte_serialize(token.as_bytes()));
        }
        // A 404 is Google's "history that old is gone": never retried (it stays gone).
        let Some(body) = self
            .get(OPERATION, &path, MAX_MESSAGE_RESPONSE_BYTES, UNITS_HISTORY)
            .await?
        else {
            return Err(GmailError::HistoryExpired { start });
        };
        let raw: RawHistory = parse(OPERATION, &body)?;
        let added = raw
            .history
            .into_iter()
            .flat_map(|record| record.messages_added)
            .map(|added| added.message)
            .filter(|message| {
                !message
                    .label_ids
                    .iter()
                    .any(|label| matches!(label.as_str(), "SPAM" | "TRASH" | "DRAFT"))
            })
            .map(|message| message.id)
            .collect();
        Ok(HistoryPage {
            added,
            next_page_token: raw.next_page_token.filter(|t| !t.is_empty()),
            history_id: history_number(OPERATION, &raw.history_id)?,
        })
    }

    async fn received_at(&self, id: &str) -> Result<Option<i64>, GmailError> {
        const OPERATION: &str = "messages.get";
        let path = format!("gmail/v1/users/{USER}/messages/{}?format=minimal", path_segment(id)?);
        let Some(body) = self.get(OPERATION, &path, SMALL_RESPONSE_BYTES, UNITS_GET).await? else {
            return Ok(None);
        };
        let minimal: RawMinimal = parse(OPERATION, &body)?;
        let millis: i64 = minimal.internal_date.parse().map_err(|_| GmailError::GmailResponse {
            operation: OPERATION,
            reason: format!("message {id} has no usable internalDate"),
        })?;
        Ok(Some(millis / 1000))
    }

    fn quota_units(&self) -> u64 {
        self.units.load(Ordering::Relaxed)
    }
}

impl GmailMailbox {
    /// The id of the user label `name`, created when the mailbox has none.
    async fn label_named(&self, name: &str) -> Result<String, GmailError> {
        const LIST: &str = "labels.list";
        const CREATE: &str = "labels.create";
        let path = format!("gmail/v1/users/{USER}/labels");
        let find = |body: &[u8]| -> Result<Option<String>, GmailError> {
            let labels: RawLabels = parse(LIST, body)?;
            Ok(labels.labels.into_iter().find(|l| l.name == name).map(|l| l.id))
        };
        let listed = self.get(LIST, &path, SMALL_RESPONSE_BYTES, UNITS_LABELS_LIST).await?;
        if let Some(id) = listed.as_deref().map(find).transpose()?.flatten() {
            return Ok(id);
        }
        let body = serde_json::json!({
            "name": name,
            "labelListVisibility": "labelShow",
            "messageListVisibility": "show",
        });
        match self.post(CREATE, &path, &body, UNITS_MODIFY).await {
            Ok(Some(created)) => {
                let label: RawLabel = parse(CREATE, &created)?;
                Ok(label.id)
            }
            // Created meanwhile by another run (409): it is listed now.
            Ok(None) | Err(GmailError::GmailRejected { status: 409, .. }) => {
                let listed = self.get(LIST, &path, SMALL_RESPONSE_BYTES, UNITS_LABELS_LIST).await?;
                listed
                    .as_deref()
                    .map(find)
                    .transpose()?
                    .flatten()
                    .ok_or_else(|| GmailError::GmailResponse {
                        operation: CREATE,
                        reason: "the label was neither created nor listed".into(),
                    })
            }
            Err(err) => Err(err),
        }
    }

    /// One `messages.attachments.get`; `None` when the id is unknown (or stale).
    async fn attachment(
        &self,
        descriptor: &AttachmentDescriptor,
        attachment_id: &str,
    ) -> Result<Option<Bytes>, GmailError> {
        const OPERATION: &str = "messages.attachments.get";
        let path = format!(
            "gmail/v1/users/{USER}/messages/{}/attachments/{}",
            path_segment(&descriptor.message_id)?,
            path_segment(attachment_id)?
        );
        // base64 is 4/3 of the bytes; leave room for the JSON around it.
        let limit = usize::try_from(self.max_attachment_bytes.saturating_mul(4) / 3 + 64 * 1024).unwrap_or(usize::MAX);
        let Some(body) = self.get(OPERATION, &path, limit, UNITS_GET).await? else {
            return Ok(None);
        };
        let raw: RawBody = serde_json::from_slice(&body).map_err(|err| GmailError::GmailResponse {
            operation: OPERATION,
            reason: format!(
                "attachment {} of message {} is not valid JSON: line {} column {}",
                descriptor.part_id,
                descriptor.message_id,
                err.line(),
                err.column()
            ),
        })?;
        let data = raw.data.unwrap_or_default();
        let bytes = decode_base64url(&data).map_err(|err| GmailError::GmailResponse {
            operation: OPERATION,
            reason: format!(
                "attachment {} of message {} is not base64url: {err}",
                descriptor.part_id, descriptor.message_id
            ),
        })?;
        Ok(Some(Bytes::from(bytes)))
    }

    /// A GET with the retry rules, each attempt charged `units`; `None` on 404.
    async fn get(
        &self,
        operation: &'static str,
        path: &str,
        limit: usize,
        units: u64,
    ) -> Result<Option<Bytes>, GmailError> {
        self.call(Method::GET, operation, path, None, limit, units).await
    }

    /// A POST of JSON with the retry rules (labels and modify are idempotent: adding a label
    /// twice changes nothing); `None` on 404.
    async fn post(
        &self,
        operation: &'static str,
        path: &str,
        body: &serde_json::Value,
        units: u64,
    ) -> Result<Option<Bytes>, GmailError> {
        self.call(Method::POST, operation, path, Some(body), SMALL_RESPONSE_BYTES, units)
            .await
    }

    async fn call(
        &self,
        method: Method,
        operation: &'static str,
        path: &str,
        json: Option<&serde_json::Value>,
        limit: usize,
        units: u64,
    ) -> Result<Option<Bytes>, GmailError> {
        let url = format!("{}{path}", self.base_url);
        let payload = json.map(|value| Bytes::from(value.to_string())).unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.units.fetch_add(units, Ordering::Relaxed);
            let mut request = Request::builder()
                .method(method.clone())
                .uri(&url)
                .header(AUTHORIZATION, format!("Bearer {}", self.access_token.expose()))
                .header(ACCEPT, "application/json");
            if json.is_some() {
                request = request.header(google_gmail1::hyper::header::CONTENT_TYPE, "application/json");
            }
            let request = request
                .body(body_of(payload.clone()))
                .map_err(|err| GmailError::Settings {
                    field: "gmail.api_base_url".into(),
                    message: format!("cannot address {operation}: {err}"),
                })?;
            let (retryable, detail, hint) = match self.hub.client.request(request).await {
                Err(err) => (Throttle::Failing, format!("network error: {err}"), None),
                Ok(response) => {
                    let status = response.status();
                    let hint = retry_after(response.headers());
                    let body = read_body(response.into_body(), limit).await;
                    if status.is_success() {
                        return body.map(Some).map_err(|reason| GmailError::GmailResponse {
                            operation,
                            reason: format!("cannot read the response: {reason}"),
                        });
                    }
                    let error_body = body
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
                    match classify(status, error_body.as_ref()) {
                        Some(throttle) => (throttle, format!("HTTP {}", status.as_u16()), hint),
                        None if status == StatusCode::NOT_FOUND => return Ok(None),
                        None => return Err(rejected(operation, &self.account, status)),
                    }
                }
            };
            match self.retry.next_delay(attempt, hint) {
                Some(delay) => {
                    tracing::warn!(operation, attempt, %detail, delay_ms = delay.as_millis() as u64, "Gmail call failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(retryable.into_error(operation, attempt, detail)),
            }
        }
    }
}

/// Why a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Throttle {
    /// 429, or 403 with a rate-limit reason: ends as `Gmail.RateLimited`.
    RateLimited,
    /// 5xx or a network error: ends as `Gmail.Unavailable`.
    Failing,
}

impl Throttle {
    fn into_error(self, operation: &'static str, attempts: u32, detail: String) -> GmailError {
        match self {
            Throttle::RateLimited => GmailError::RateLimited { operation, attempts },
            Throttle::Failing => GmailError::GmailUnavailable {
                operation,
                attempts,
                detail,
            },
        }
    }
}

/// Which failures are worth retrying. Gmail reports per-user rate limits as 403 with reason
/// `userRateLimitExceeded`/`rateLimitExceeded`, and the rest as 429.
fn classify(status: StatusCode, error_body: Option<&serde_json::Value>) -> Option<Throttle> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(Throttle::RateLimited);
    }
    if status.is_server_error() {
        return Some(Throttle::Failing);
    }
    if status == StatusCode::FORBIDDEN {
        let error = error_body.and_then(|b| b.get("error"));
        let reasons = error
            .and_then(|e| e.get("errors"))
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("reason").and_then(serde_json::Value::as_str));
        let exhausted =
            error.and_then(|e| e.get("status")).and_then(serde_json::Value::as_str) == Some("RESOURCE_EXHAUSTED");
        if exhausted
            || reasons
                .into_iter()
                .any(|r| r.contains("RateLimitExceeded") || r == "rateLimitExceeded")
        {
            return Some(Throttle::RateLimited);
        }
    }
    None
}

fn rejected(operation: &'static str, account: &str, status: StatusCode) -> GmailError {
    if status == StatusCode::UNAUTHORIZED {
        // The token was revoked mid-run: the state machine goes back to consent.
        GmailError::ConsentRequired {
            account: account.to_string(),
        }
    } else {
        GmailError::GmailRejected {
            operation,
            status: status.as_u16(),
        }
    }
}

/// Gmail ids are URL-safe tokens; anything else is refused rather than spliced into a path.
fn path_segment(id: &str) -> Result<&str, GmailError> {
    if !id.is_empty() && id.len() <= 512 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(id)
    } else {
        Err(GmailError::GmailResponse {
            operation: "messages.get",
            reason: "an id is not a URL-safe token".into(),
        })
    }
}

/// Drives google-gmail1's own retry loop: the same rules as our direct calls.
struct RetryDelegate {
    policy: RetryPolicy,
    attempt: u32,
    last: Option<(Throttle, String)>,
    /// The mailbox's quota spent, and what each attempt of this call costs.
    units: Arc<AtomicU64>,
    units_per_call: u64,
}

impl RetryDelegate {
    fn new(policy: RetryPolicy, units: Arc<AtomicU64>, units_per_call: u64) -> Self {
        RetryDelegate {
            policy,
            attempt: 0,
            last: None,
            units,
            units_per_call,
        }
    }

    fn decide(&mut self, throttle: Throttle, detail: String, hint: Option<Duration>) -> common::Retry {
        self.attempt += 1;
        let delay = self.policy.next_delay(self.attempt, hint);
        tracing::warn!(attempt = self.attempt, %detail, retrying = delay.is_some(), "Gmail messages.list failed");
        self.last = Some((throttle, detail));
        match delay {
            Some(delay) => common::Retry::After(delay),
            None => common::Retry::Abort,
        }
    }

    fn into_error(self, operation: &'static str, account: &str, err: &google_gmail1::Error) -> GmailError {
        if let Some((throttle, detail)) = self.last {
            return throttle.into_error(operation, self.attempt, detail);
        }
        match err {
            google_gmail1::Error::BadRequest(value) => {
                let status = value
                    .get("error")
                    .and_then(|e| e.get("code"))
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(StatusCode::BAD_REQUEST);
                rejected(operation, account, status)
            }
            google_gmail1::Error::Failure(response) => rejected(operation, account, response.status()),
            google_gmail1::Error::JsonDecodeError(_, err) => GmailError::GmailResponse {
                operation,
                reason: format!("not a message listing: line {} column {}", err.line(), err.column()),
            },
            // Other variants carry no payload worth hiding.
            other => GmailError::GmailUnavailable {
                operation,
                attempts: self.attempt.max(1),
                detail: other.to_string(),
            },
        }
    }
}

impl common::Delegate for RetryDelegate {
    fn pre_request(&mut self) {
        self.units.fetch_add(self.units_per_call, Ordering::Relaxed);
    }

    fn http_error(&mut self, err: &google_gmail1::hyper_util::client::legacy::Error) -> common::Retry {
        self.decide(Throttle::Failing, format!("network error: {err}"), None)
    }

    fn http_failure(&mut self, response: &common::Response, error: Option<&serde_json::Value>) -> common::Retry {
        let status = response.status();
        match classify(status, error) {
            Some(throttle) => self.decide(
                throttle,
                format!("HTTP {}", status.as_u16()),
                retry_after(response.headers()),
            ),
            None => common::Retry::Abort,
        }
    }
}

/// Answers without message bodies (a profile, a history page of ids, a minimal message).
const SMALL_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

fn parse<T: serde::de::DeserializeOwned>(operation: &'static str, body: &[u8]) -> Result<T, GmailError> {
    serde_json::from_slice(body).map_err(|err| GmailError::GmailResponse {
        operation,
        reason: format!("not the expected JSON: line {} column {}", err.line(), err.column()),
    })
}

/// History ids travel as decimal strings.
fn history_number(operation: &'static str, text: &str) -> Result<u64, GmailError> {
    text.parse().map_err(|_| GmailError::GmailResponse {
        operation,
        reason: "the historyId is not a number".into(),
    })
}

#[derive(Debug, Deserialize)]
struct RawProfile {
    #[serde(rename = "historyId")]
    history_id: String,
}

#[derive(Debug, Deserialize)]
struct RawHistory {
    #[serde(default)]
    history: Vec<RawHistoryRecord>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
    #[serde(rename = "historyId")]
    history_id: String,
}

#[derive(Debug, Deserialize)]
struct RawHistoryRecord {
    #[serde(rename = "messagesAdded", default)]
    messages_added: Vec<RawAdded>,
}

#[derive(Debug, Deserialize)]
struct RawAdded {
    message: RawListedMessage,
}

#[derive(Debug, Deserialize)]
struct RawListedMessage {
    id: String,
    #[serde(rename = "labelIds", default)]
    label_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawLabels {
    #[serde(default)]
    labels: Vec<RawLabel>,
}

#[derive(Debug, Deserialize)]
struct RawLabel {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct RawMinimal {
    #[serde(rename = "internalDate", default)]
    internal_date: String,
}

/// Gmail's message resource, as far as we read it (data kept as text: see the module doc).
#[derive(Debug, Deserialize)]
struct RawMessage {
    payload: Option<RawPart>,
}

#[derive(Debug, Deserialize)]
struct RawPart {
    #[serde(rename = "partId", default)]
    part_id: String,
    #[serde(rename = "mimeType", default)]
    mime_type: String,
    #[serde(default)]
    filename: String,
    body: Option<RawBody>,
    #[serde(default)]
    parts: Vec<RawPart>,
    #[serde(default)]
    headers: Vec<RawHeader>,
}

#[derive(Debug, Deserialize)]
struct RawHeader {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct RawBody {
    #[serde(rename = "attachmentId")]
    attachment_id: Option<String>,
    size: Option<u64>,
    data: Option<String>,
}

struct Walk<'a> {
    message_id: &'a str,
    attachments: Vec<MailPart>,
    drive_links: usize,
}

impl Walk<'_> {
    fn part(&mut self, part: &RawPart) -> Result<(), GmailError> {
        if !part.parts.is_empty() {
            for child in &part.parts {
                self.part(child)?;
            }
            return Ok(());
        }
        let mime_type = part.mime_type.to_ascii_lowercase();
        let file_name = part.filename.trim();
        let body = part.body.as_ref();
        if file_name.is_empty() {
            if mime_type.starts_with("text/")
                && let Some(data) = body.and_then(|b| b.data.as_deref())
                && let Ok(text) = decode_base64url(data)
            {
                self.drive_links += count_drive_links(&String::from_utf8_lossy(&text));
            }
            return Ok(());
        }
        let (body, size) = match body {
            Some(RawBody {
                attachment_id: Some(id),
                size,
                ..
            }) => (
                PartBody::Remote {
                    attachment_id: id.clone(),
                },
                size.unwrap_or(0),
            ),
            Some(RawBody { data: Some(data), .. }) => {
                let bytes = decode_base64url(data).map_err(|err| GmailError::GmailResponse {
                    operation: "messages.get",
                    reason: format!(
                        "part {} of message {} is not base64url: {err}",
                        part.part_id, self.message_id
                    ),
                })?;
                let size = bytes.len() as u64;
                (PartBody::Loaded(Bytes::from(bytes)), size)
            }
            _ => (PartBody::Loaded(Bytes::new()), 0),
        };
        self.attachments.push(MailPart {
            descriptor: AttachmentDescriptor {
                message_id: self.message_id.to_string(),
                part_id: part.part_id.clone(),
                file_name: file_name.to_string(),
                mime_type,
                size,
                charset: part
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-type"))
                    .and_then(|h| super::charset_of(&h.value)),
            },
            body,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_recognised_in_all_of_gmail_s_forms() {
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, None),
            Some(Throttle::RateLimited)
        );
        assert_eq!(classify(StatusCode::SERVICE_UNAVAILABLE, None), Some(Throttle::Failing));
        let user_limit = serde_json::json!({"error": {"code": 403, "errors": [{"reason": "userRateLimitExceeded"}]}});
        assert_eq!(
            classify(StatusCode::FORBIDDEN, Some(&user_limit)),
            Some(Throttle::RateLimited)
        );
        let forbidden = serde_json::json!({"error": {"code": 403, "errors": [{"reason": "insufficientPermissions"}]}});
        assert_eq!(classify(StatusCode::FORBIDDEN, Some(&forbidden)), None);
        assert_eq!(classify(StatusCode::NOT_FOUND, None), None);
    }

    #[test]
    fn nested_parts_are_walked_and_numbered_as_gmail_numbers_them() {
        let json = serde_json::json!({
            "id": "m1",
            "payload": {"partId": "", "mimeType": "multipart/mixed", "filename": "", "parts": [
                {"partId": "0", "mimeType": "multipart/alternative", "filename": "", "parts": [
                    {"partId": "0.0", "mimeType": "text/plain", "filename": "",
                     "body": {"size": 40, "data": "c2VlIGh0dHBzOi8vZHJpdmUuZ29vZ2xlLmNvbS9maWxlL2QveA"}},
                ]},
                {"partId": "1", "mimeType": "text/csv", "filename": "a.csv", "body": {"attachmentId": "ATT1", "size": 12}},
                {"partId": "2", "mimeType": "text/csv", "filename": "b.csv", "body": {"size": 4, "data": "aWQsYQ"}},
            ]}
        });
        let raw: RawMessage = serde_json::from_value(json).unwrap();
        let mut walk = Walk {
            message_id: "m1",
            attachments: Vec::new(),
            drive_links: 0,
        };
        walk.part(raw.payload.as_ref().unwrap()).unwrap();
        assert_eq!(walk.drive_links, 1);
        let ids: Vec<_> = walk.attachments.iter().map(|a| a.descriptor.part_id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        assert!(matches!(&walk.attachments[1].body, PartBody::Loaded(b) if &b[..] == b"id,a"));
    }

    #[test]
    fn ids_that_could_escape_the_path_are_refused() {
        for bad in ["", "../x", "a/b", "a?b", "a%2F"] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
        assert!(path_segment("18c2f0a1b2c3d4e5").is_ok());
    }
}
