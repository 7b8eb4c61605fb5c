//! A local fake of the Gmail REST endpoints Sluice calls (`messages.list`, `messages.get`,
//! `messages.attachments.get`, `history.list`, `getProfile`) and of Google's token endpoint, on
//! 127.0.0.1:0. Every added message gets a history id; history older than
//! [`FakeGoogle::expire_history`] answers 404, as Google's does. A listing with a query
//! applies its `after:`/`before:` (epoch seconds) and leaves out messages marked as not
//! matching. It serves
//! `.eml` files the way Gmail does: parts numbered by position, attachments behind ids that
//! change on every `messages.get`, attachment data in base64url without padding. It checks
//! bearer tokens, PKCE and client credentials, and can throttle or fail on request.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "sluice-test.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "GOCSPX-synthetic-test-secret";
pub const READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";

pub struct FakeGoogle {
    pub base_url: String,
    pub token_uri: String,
    pub state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Default)]
pub struct FakeState {
    mailbox: Mutex<Mailbox>,
    oauth: Mutex<OAuthState>,
    pub list_calls: AtomicU64,
    pub get_calls: AtomicU64,
    pub attachment_calls: AtomicU64,
    pub history_calls: AtomicU64,
    pub profile_calls: AtomicU64,
    pub label_list_calls: AtomicU64,
    pub label_create_calls: AtomicU64,
    pub modify_calls: AtomicU64,
    /// Answer messages.modify with 403, as Gmail does for a token without gmail.modify.
    pub refuse_modify: std::sync::atomic::AtomicBool,
    pub token_calls: AtomicU64,
    /// Answer this many upcoming Gmail requests with 429 and `Retry-After: retry_after_secs`.
    pub throttle_next: AtomicU32,
    pub retry_after_secs: AtomicU64,
    /// Answer this many upcoming token requests with 503.
    pub token_failures_next: AtomicU32,
    /// Seconds until issued access tokens expire.
    pub access_token_lifetime: AtomicU64,
}

#[derive(Default)]
struct Mailbox {
    /// The listing order; an id may appear twice, as Gmail does when mail arrives mid-paging.
    listing: Vec<String>,
    messages: HashMap<String, FakeMessage>,
    corrupt: Vec<String>,
    /// The mailbox's current history id: one step per message added.
    history_id: u64,
    /// (history id, message id), in order.
    history: Vec<(u64, String)>,
    /// History before this id is gone (404).
    history_kept_from: u64,
    /// User labels: (id, name).
    labels: Vec<(String, String)>,
}

struct FakeMessage {
    parts: Value,
    /// part id -> bytes of parts with a file name.
    attachments: BTreeMap<String, Vec<u8>>,
    /// attachment id -> part id, valid only until the next `messages.get` of this message.
    live_ids: HashMap<String, String>,
    gets: u64,
    /// When Gmail received it (epoch seconds).
    internal_date: i64,
    /// Whether a listing with a query lists it.
    matches_query: bool,
    /// Label ids added with messages.modify.
    labels: Vec<String>,
}

#[derive(Default)]
struct OAuthState {
    /// code -> (S256 challenge, redirect URI, granted scope)
    codes: HashMap<String, (String, String, String)>,
    refresh_tokens: HashMap<String, String>,
    access_tokens: HashMap<String, i64>,
    issued: u64,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let state = Arc::new(FakeState::default());
        state.access_token_lifetime.store(3600, Ordering::Relaxed);
        let app = Router::new()
            .route("/gmail/v1/users/{user}/messages", get(list))
            .route("/gmail/v1/users/{user}/profile", get(profile))
            .route("/gmail/v1/users/{user}/history", get(history))
            .route("/gmail/v1/users/{user}/labels", get(list_labels).post(create_label))
            .route("/gmail/v1/users/{user}/messages/{id}/modify", post(modify))
            .route("/gmail/v1/users/{user}/messages/{id}", get(message))
            .route(
                "/gmail/v1/users/{user}/messages/{id}/attachments/{aid}",
                get(attachment),
            )
            .route("/token", post(token))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGoogle {
            base_url: format!("http://{address}/"),
            token_uri: format!("http://{address}/token"),
            state,
            server,
        }
    }

    /// Adds a message from raw RFC 5322 bytes; its Gmail id is derived from the bytes, so the
    /// same file added twice is listed twice under one id. Returns the id.
    pub fn add_eml(&self, raw: &[u8]) -> String {
        self.add_eml_received(raw, chrono::Utc::now().timestamp())
    }

    /// [`FakeGoogle::add_eml`], received at `internal_date` (epoch seconds).
    pub fn add_eml_received(&self, raw: &[u8], internal_date: i64) -> String {
        let id = hex::encode(&Sha256::digest(raw)[..8]);
        let parsed = MessageParser::default().parse(raw).expect("fixture parses");
        let mut attachments = BTreeMap::new();
        let parts = gmail_part(&parsed, 0, String::new(), &mut attachments);
        let mut mailbox = self.state.mailbox.lock().unwrap();
        mailbox.listing.push(id.clone());
        mailbox.history_id += 1;
        let history_id = mailbox.history_id;
        mailbox.history.push((history_id, id.clone()));
        mailbox.messages.entry(id.clone()).or_insert(FakeMessage {
            parts,
            attachments,
            live_ids: HashMap::new(),
            gets: 0,
            internal_date,
            matches_query: true,
            labels: Vec::new(),
        });
        id
    }

    /// Listings with a query leave `id` out (it does not match the query).
    pub fn unmatched(&self, id: &str) {
        let mut mailbox = self.state.mailbox.lock().unwrap();
        if let Some(message) = mailbox.messages.get_mut(id) {
            message.matches_query = false;
        }
    }

    /// The names of the user labels message `id` was given.
    pub fn labels_of(&self, id: &str) -> Vec<String> {
        let mailbox = self.state.mailbox.lock().unwrap();
        let Some(message) = mailbox.messages.get(id) else {
            return Vec::new();
        };
        message
            .labels
            .iter()
            .filter_map(|label| {
                mailbox
                    .labels
                    .iter()
                    .find(|(lid, _)| lid == label)
                    .map(|(_, name)| name.clone())
            })
            .collect()
    }

    /// Google drops the history up to now: older start ids answer 404.
    pub fn expire_history(&self) {
        let mut mailbox = self.state.mailbox.lock().unwrap();
        mailbox.history_kept_from = mailbox.history_id;
    }

    pub fn add_dir(&self, dir: &std::path::Path) -> Vec<String> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| self.add_eml(&std::fs::read(p).unwrap())).collect()
    }

    /// `messages.get` of `id` answers JSON that is not a message.
    pub fn corrupt(&self, id: &str) {
        self.state.mailbox.lock().unwrap().corrupt.push(id.to_string());
    }

    pub fn throttle(&self, requests: u32, retry_after_secs: u64) {
        self.state.retry_after_secs.store(retry_after_secs, Ordering::Relaxed);
        self.state.throttle_next.store(requests, Ordering::Relaxed);
    }

    /// What Google does when the owner clicks "Allow" on the consent URL: issues a code bound
    /// to the URL's PKCE challenge and redirect URI.
    pub fn grant_consent(&self, consent_url: &str) -> String {
        self.grant_consent_with_scope(consent_url, READONLY)
    }

    pub fn grant_consent_with_scope(&self, consent_url: &str, scope: &str) -> String {
        let url = url::Url::parse(consent_url).unwrap();
        let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(query["code_challenge_method"], "S256");
        let mut oauth = self.state.oauth.lock().unwrap();
        oauth.issued += 1;
        let code = format!("4/0Synthetic-code-{}", oauth.issued);
        oauth.codes.insert(
            code.clone(),
            (
                query["code_challenge"].clone(),
                query["redirect_uri"].clone(),
                scope.to_string(),
            ),
        );
        code
    }

    /// A refresh token the endpoint accepts, as if consent had happened earlier.
    pub fn known_refresh_token(&self) -> String {
        let mut oauth = self.state.oauth.lock().unwrap();
        oauth.issued += 1;
        let token = format!("1//synthetic-refresh-{}", oauth.issued);
        oauth.refresh_tokens.insert(token.clone(), READONLY.into());
        token
    }

    /// Revokes every refresh token (password change, user revoked access, 7-day test expiry).
    pub fn revoke_all(&self) {
        let mut oauth = self.state.oauth.lock().unwrap();
        oauth.refresh_tokens.clear();
        oauth.access_tokens.clear();
    }

    /// An access token the Gmail endpoints accept.
    pub fn valid_access_token(&self) -> String {
        let mut oauth = self.state.oauth.lock().unwrap();
        issue_access(&mut oauth, 3600)
    }

    pub fn gmail_calls(&self) -> (u64, u64, u64) {
        (
            self.state.list_calls.load(Ordering::Relaxed),
            self.state.get_calls.load(Ordering::Relaxed),
            self.state.attachment_calls.load(Ordering::Relaxed),
        )
    }

    /// Gmail quota units spent so far (5 per list, get and attachments.get, 2 per history page,
    /// 1 per profile; throttled calls included).
    pub fn quota_units(&self) -> u64 {
        let (l, g, a) = self.gmail_calls();
        5 * (l + g + a)
            + 2 * self.state.history_calls.load(Ordering::Relaxed)
            + self.state.profile_calls.load(Ordering::Relaxed)
            + self.state.label_list_calls.load(Ordering::Relaxed)
            + 5 * self.state.label_create_calls.load(Ordering::Relaxed)
            + 5 * self.state.modify_calls.load(Ordering::Relaxed)
    }
}

fn issue_access(oauth: &mut OAuthState, lifetime: i64) -> String {
    oauth.issued += 1;
    let token = format!("ya29.synthetic-access-{}", oauth.issued);
    oauth
        .access_tokens
        .insert(token.clone(), chrono::Utc::now().timestamp() + lifetime);
    token
}

/// Gmail's JSON for one part; leaf bytes as the sender encoded them (transfer-decoded only).
fn gmail_part(
    message: &mail_parser::Message<'_>,
    index: u32,
    part_id: String,
    attachments: &mut BTreeMap<String, Vec<u8>>,
) -> Value {
    let part = message.part(index).unwrap();
    let mime_type = part
        .content_type()
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")))
        .unwrap_or_else(|| "text/plain".into());
    if let PartType::Multipart(children) = &part.body {
        let parts: Vec<Value> = children
            .iter()
            .enumerate()
            .map(|(i, child)| {
                let id = if part_id.is_empty() {
                    i.to_string()
                } else {
                    format!("{part_id}.{i}")
                };
                gmail_part(message, *child, id, attachments)
            })
            .collect();
        return json!({"partId": part_id, "mimeType": mime_type, "filename": "", "body": {"size": 0}, "parts": parts});
    }
    let bytes: Vec<u8> = match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        PartType::Message(m) => m.raw_message().to_vec(),
        _ => {
            let raw = &message.raw_message()[part.offset_body as usize..part.offset_end as usize];
            match part.encoding {
                mail_parser::Encoding::Base64 => mail_parser::decoders::base64::base64_decode(raw).unwrap(),
                mail_parser::Encoding::QuotedPrintable => {
                    mail_parser::decoders::quoted_printable::quoted_printable_decode(raw).unwrap()
                }
                mail_parser::Encoding::None => raw.to_vec(),
            }
        }
    };
    let filename = part.attachment_name().unwrap_or("").to_string();
    let size = bytes.len();
    if filename.is_empty() {
        // Body text inline, padded base64url (as Gmail sends message bodies).
        json!({"partId": part_id, "mimeType": mime_type, "filename": "", "body": {"size": size, "data": URL_SAFE.encode(&bytes)}})
    } else {
        attachments.insert(part_id.clone(), bytes);
        json!({"partId": part_id, "mimeType": mime_type, "filename": filename, "body": {"size": size, "attachmentId": "PLACEHOLDER"}})
    }
}

fn authorized(state: &FakeState, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let oauth = state.oauth.lock().unwrap();
    oauth
        .access_tokens
        .get(token)
        .is_some_and(|exp| *exp > chrono::Utc::now().timestamp())
}

/// Every Gmail call: counted, throttled on demand, authenticated.
fn gate(state: &FakeState, headers: &HeaderMap, counter: &AtomicU64) -> Option<Response> {
    counter.fetch_add(1, Ordering::Relaxed);
    let throttle = state
        .throttle_next
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok();
    if throttle {
        let wait = state.retry_after_secs.load(Ordering::Relaxed).to_string();
        let body =
            json!({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}});
        return Some((StatusCode::TOO_MANY_REQUESTS, [("retry-after", wait)], Json(body)).into_response());
    }
    if !authorized(state, headers) {
        let body = json!({"error": {"code": 401, "message": "Invalid Credentials", "status": "UNAUTHENTICATED"}});
        return Some((StatusCode::UNAUTHORIZED, Json(body)).into_response());
    }
    None
}

async fn list(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.list_calls) {
        return refusal;
    }
    let mailbox = state.mailbox.lock().unwrap();
    // Newest first, as Gmail lists.
    let listing: Vec<&String> = match query.get("q").filter(|q| !q.is_empty()) {
        None => mailbox.listing.iter().rev().collect(),
        Some(q) => {
            let bound = |operator: &str| -> Option<i64> {
                q.split_whitespace()
                    .find_map(|term| term.strip_prefix(operator))
                    .and_then(|n| n.trim_end_matches(')').parse().ok())
            };
            let (after, before) = (bound("after:"), bound("before:"));
            mailbox
                .listing
                .iter()
                .rev()
                .filter(|id| {
                    let message = &mailbox.messages[*id];
                    message.matches_query
                        && after.is_none_or(|a| message.internal_date > a)
                        && before.is_none_or(|b| message.internal_date < b)
                })
                .collect()
        }
    };
    let start: usize = query.get("pageToken").map(|t| t.parse().unwrap()).unwrap_or(0);
    let size: usize = query.get("maxResults").map(|t| t.parse().unwrap()).unwrap_or(100);
    let end = (start + size).min(listing.len());
    let messages: Vec<Value> = listing[start.min(end)..end]
        .iter()
        .map(|id| json!({"id": id, "threadId": id}))
        .collect();
    let mut body = json!({"messages": messages, "resultSizeEstimate": listing.len()});
    if end < listing.len() {
        body["nextPageToken"] = json!(end.to_string());
    }
    Json(body).into_response()
}

async fn list_labels(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.label_list_calls) {
        return refusal;
    }
    let mailbox = state.mailbox.lock().unwrap();
    let mut labels = vec![json!({"id": "INBOX", "name": "INBOX", "type": "system"})];
    labels.extend(
        mailbox
            .labels
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name, "type": "user"})),
    );
    Json(json!({ "labels": labels })).into_response()
}

async fn create_label(State(state): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.label_create_calls) {
        return refusal;
    }
    if state.refuse_modify.load(Ordering::Relaxed) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": 403, "message": "Request had insufficient authentication scopes."}})),
        )
            .into_response();
    }
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let mut mailbox = state.mailbox.lock().unwrap();
    if mailbox.labels.iter().any(|(_, n)| *n == name) {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": {"code": 409, "message": "Label name exists or conflicts"}})),
        )
            .into_response();
    }
    let id = format!("Label_{}", mailbox.labels.len() + 1);
    mailbox.labels.push((id.clone(), name.clone()));
    Json(json!({"id": id, "name": name, "type": "user"})).into_response()
}

async fn modify(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.modify_calls) {
        return refusal;
    }
    if state.refuse_modify.load(Ordering::Relaxed) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": 403, "message": "Request had insufficient authentication scopes."}})),
        )
            .into_response();
    }
    let mut mailbox = state.mailbox.lock().unwrap();
    let Some(message) = mailbox.messages.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Not Found"}})),
        )
            .into_response();
    };
    for label in body["addLabelIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !message.labels.iter().any(|l| l == label) {
            message.labels.push(label.to_string());
        }
    }
    Json(json!({"id": id, "labelIds": message.labels})).into_response()
}

async fn profile(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.profile_calls) {
        return refusal;
    }
    let mailbox = state.mailbox.lock().unwrap();
    Json(json!({"emailAddress": "inbox@example.test", "messagesTotal": mailbox.messages.len(), "historyId": mailbox.history_id.to_string()}))
        .into_response()
}

async fn history(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.history_calls) {
        return refusal;
    }
    let mailbox = state.mailbox.lock().unwrap();
    let Some(start) = query.get("startHistoryId").and_then(|s| s.parse::<u64>().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": 400, "message": "startHistoryId"}})),
        )
            .into_response();
    };
    if start < mailbox.history_kept_from {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Requested entity was not found."}})),
        )
            .into_response();
    }
    let records: Vec<&(u64, String)> = mailbox.history.iter().filter(|(id, _)| *id > start).collect();
    let offset: usize = query.get("pageToken").map(|t| t.parse().unwrap()).unwrap_or(0);
    let size: usize = query.get("maxResults").map(|t| t.parse().unwrap()).unwrap_or(100);
    let end = (offset + size).min(records.len());
    let history: Vec<Value> = records[offset.min(end)..end]
        .iter()
        .map(|(history_id, id)| {
            json!({"id": history_id.to_string(), "messages": [{"id": id, "threadId": id}],
                   "messagesAdded": [{"message": {"id": id, "threadId": id, "labelIds": ["INBOX", "UNREAD"]}}]})
        })
        .collect();
    let mut body = json!({"history": history, "historyId": mailbox.history_id.to_string()});
    if end < records.len() {
        body["nextPageToken"] = json!(end.to_string());
    }
    Json(body).into_response()
}

async fn message(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.get_calls) {
        return refusal;
    }
    let mut mailbox = state.mailbox.lock().unwrap();
    if mailbox.corrupt.contains(&id) {
        return (StatusCode::OK, "{\"id\": \"truncated").into_response();
    }
    let Some(message) = mailbox.messages.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Not Found"}})),
        )
            .into_response();
    };
    message.gets += 1;
    let generation = message.gets;
    // Fresh attachment ids on every get; ids from more than a few gets ago stop working.
    message.live_ids.retain(|id, _| id_generation(id) + 3 > generation);
    let mut payload = message.parts.clone();
    assign_attachment_ids(&mut payload, generation, &mut message.live_ids);
    let internal_date = (message.internal_date * 1000).to_string();
    Json(json!({"id": id, "threadId": id, "labelIds": ["INBOX"], "internalDate": internal_date, "payload": payload}))
        .into_response()
}

fn id_generation(attachment_id: &str) -> u64 {
    attachment_id
        .split('_')
        .nth(1)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

fn assign_attachment_ids(part: &mut Value, generation: u64, live: &mut HashMap<String, String>) {
    if let Some(children) = part.get_mut("parts").and_then(Value::as_array_mut) {
        for child in children {
            assign_attachment_ids(child, generation, live);
        }
    }
    let part_id = part["partId"].as_str().unwrap_or("").to_string();
    if let Some(body) = part.get_mut("body")
        && body.get("attachmentId").is_some()
    {
        let id = format!("ANGjdJ{}_{generation}_{}", hex::encode(part_id.as_bytes()), live.len());
        body["attachmentId"] = json!(id);
        live.insert(id, part_id);
    }
}

async fn attachment(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Path((_, id, attachment_id)): Path<(String, String, String)>,
) -> Response {
    if let Some(refusal) = gate(&state, &headers, &state.attachment_calls) {
        return refusal;
    }
    let mailbox = state.mailbox.lock().unwrap();
    let bytes = mailbox
        .messages
        .get(&id)
        .and_then(|m| m.live_ids.get(&attachment_id).and_then(|part| m.attachments.get(part)));
    match bytes {
        // Gmail's attachment data: base64url, here without padding.
        Some(bytes) => Json(json!({"size": bytes.len(), "data": URL_SAFE_NO_PAD.encode(bytes)})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Invalid attachment id"}})),
        )
            .into_response(),
    }
}

async fn token(State(state): State<Arc<FakeState>>, Form(form): Form<HashMap<String, String>>) -> Response {
    state.token_calls.fetch_add(1, Ordering::Relaxed);
    if state
        .token_failures_next
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "backend error").into_response();
    }
    let oauth_error = |status: StatusCode, code: &str| {
        (
            status,
            Json(json!({"error": code, "error_description": "synthetic failure"})),
        )
            .into_response()
    };
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let lifetime = state.access_token_lifetime.load(Ordering::Relaxed) as i64;
    let mut oauth = state.oauth.lock().unwrap();
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            // Codes are single use, whatever happens next.
            let Some((challenge, redirect_uri, scope)) = oauth.codes.remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != challenge || form.get("redirect_uri") != Some(&redirect_uri) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let access = issue_access(&mut oauth, lifetime);
            oauth.issued += 1;
            let refresh = format!("1//synthetic-refresh-{}", oauth.issued);
            oauth.refresh_tokens.insert(refresh.clone(), scope.clone());
            Json(json!({"access_token": access, "expires_in": lifetime, "refresh_token": refresh, "scope": scope, "token_type": "Bearer"})).into_response()
        }
        Some("refresh_token") => {
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            let Some(scope) = oauth.refresh_tokens.get(&refresh).cloned() else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let access = issue_access(&mut oauth, lifetime);
            Json(json!({"access_token": access, "expires_in": lifetime, "scope": scope, "token_type": "Bearer"}))
                .into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}
