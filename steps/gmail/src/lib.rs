//! Sluice's mail stages: Gmail OAuth and attachment fetch, each a step the Lambda binaries and
//! the local runner call in-process.
//!
//! - [`steps`]: the steps, each `run(input, deps)`:
//!   [`auth_check`](steps::auth_check) (`authorized` / `consent_required`),
//!   [`consent_request`](steps::consent_request) (a `.waitForTaskToken` task),
//!   [`callback`](steps::callback) (`GET /oauth/callback`, an axum router),
//!   [`code_exchange`](steps::code_exchange) (the manual resume) and
//!   [`fetch`](steps::fetch) (attachments to the S3 stage).
//! - [`oauth`]: the client secret, the token endpoint, the encrypted token cache, consent
//!   requests with PKCE, and the [`Authorizer`](oauth::Authorizer) over them.
//! - [`mail`]: the mail source port, with the Gmail API and `.eml` directory implementations.
//! - [`sink`]: where fetched attachments go ([`AttachmentSink`](sink::AttachmentSink)).
//! - [`settings`]: the `[gmail]` section; [`error`]: the stable error names; [`http`]: the
//!   HTTPS client and retry rules shared by Gmail and the token endpoint.

pub mod error;
pub mod http;
pub mod lambda;
pub mod mail;
pub mod oauth;
pub mod settings;
pub mod sink;
pub mod steps;

pub use error::GmailError;
pub use settings::{GmailSettings, SourceKind, SyncMode};
pub use sink::{AttachmentSink, FetchedAttachment, RawObjectSink, SinkError, SinkFn, StoredAttachment};
pub use steps::{OAuthDeps, auth_check, callback, code_exchange, consent_request, fetch};
