//! Google OAuth for one mailbox: the client's credentials, the token endpoint, the encrypted
//! token cache, PKCE consent requests parked in the control table, and the [`Authorizer`] that
//! turns all of it into "here is a valid access token" or "consent is required".

pub mod authorizer;
pub mod client;
pub mod consent;
pub mod token_cache;
pub mod token_endpoint;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use authorizer::{Authorization, Authorizer};
pub use client::ClientCredentials;
pub use consent::{ConsentRequest, ConsentStore, PendingConsent};
pub use token_cache::{StoredToken, TokenCache, TokenKeyring};
pub use token_endpoint::{TokenEndpoint, TokenGrant};

/// A token, code or verifier: never printed (its `Debug` is redacted) and only read where used.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Sensitive(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

pub(crate) fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}
