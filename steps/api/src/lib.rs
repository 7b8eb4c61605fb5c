//! Sluice's REST API over the cleaned records, and the one authorizer in front of it.
//!
//! - [`settings`]: the `[api]` section (page sizes, key cache, JWT issuer and audience).
//! - [`auth`]: API keys (header, query or cookie) and Bearer JWTs (RS256/ES256 via a cached
//!   JWKS), the scopes a principal holds, and the API Gateway Lambda authorizer.
//! - [`records`]: single, batch and paged reads of a dataset, with tamper-proof cursors ([`cursor`]).
//! - [`reidentify`]: a record with its tokens restored from the vault, audited.
//! - [`routes`]: the one route table (router, authorizer, OpenAPI scopes).
//! - [`runs`]: `POST /runs` and the [`RunStarter`] port (Step Functions on AWS, the local engine locally).
//! - [`openapi`]: the OpenAPI document served at `/openapi.json`.
//! - [`error`]: JSON errors with stable codes.
//! - [`server`]: [`ApiState`], [`router`] and [`serve`].

mod access;
pub use access::ACCESS_LOG_TARGET;
pub mod auth;
pub mod cursor;
pub mod error;
pub mod openapi;
pub mod records;
pub mod reidentify;
pub mod routes;
pub mod run_starter;
pub mod runs;
pub mod schema;
pub mod server;
pub mod settings;
pub mod state;

pub use auth::{Authorizer, Principal};
pub use error::{ApiError, ApiSetupError};
pub use reidentify::AUDIT_LOG_TARGET;
pub use run_starter::{RunStartError, RunStarted, RunStarter, StepFunctionsRunStarter};
pub use server::{router, serve, serve_on};
pub use settings::{ApiSettings, JwtSettings};
pub use state::ApiState;
