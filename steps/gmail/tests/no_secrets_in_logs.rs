//! The whole OAuth and fetch flow at TRACE level: no token, code, task token, client secret or
//! mail content reaches the logs, the step outputs or the error messages.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use sluice_gmail::auth_check::{self, AuthCheckInput};
use sluice_gmail::callback::{self, CallbackQuery};
use sluice_gmail::consent_request::{self, ConsentRequestInput};
use sluice_gmail::fetch::{self, FetchInput};
use sluice_gmail::oauth::Sensitive;
use support::fake_google::CLIENT_SECRET;
use support::{ACCOUNT, Harness, mail_fixtures};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TASK_TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAf4SecretTaskToken==";

#[tokio::test]
async fn no_secret_or_mail_content_is_logged_or_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("sluice_gmail=trace,sluice_core=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::local().await;
    h.fake.add_dir(&mail_fixtures());
    let mut outputs = Vec::new();

    let consent = consent_request::run(
        ConsentRequestInput {
            task_token: Sensitive::new(TASK_TOKEN),
            account: None,
        },
        &h.oauth,
    )
    .await
    .unwrap();
    outputs.push(serde_json::to_string(&consent).unwrap());
    let state = url::Url::parse(&consent.consent_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = h.fake.grant_consent(&consent.consent_url);
    let page = callback::handle(
        CallbackQuery {
            code: Some(Sensitive::new(code.clone())),
            state: Some(state),
            error: None,
        },
        &h.oauth,
    )
    .await;
    outputs.push(page.html);
    let token = h.oauth.authorizer.token_cache().load(ACCOUNT).await.unwrap().unwrap();
    // Force a refresh, so that path logs too.
    h.seed_token("ya29.expired-one", token.refresh_token.as_ref().map(|t| t.expose()), 0)
        .await;
    let check = auth_check::run(AuthCheckInput::default(), &h.oauth).await.unwrap();
    outputs.push(serde_json::to_string(&check).unwrap());
    let token = h.oauth.authorizer.token_cache().load(ACCOUNT).await.unwrap().unwrap();
    let fetched = fetch::run(FetchInput::default(), &h.fetch_deps(h.raw_sink()))
        .await
        .unwrap();
    assert_eq!(fetched.attachments_fetched, 7);
    outputs.push(serde_json::to_string(&fetched).unwrap());
    // An error path too.
    h.fake.revoke_all();
    let err = fetch::run(FetchInput::default(), &h.fetch_deps(h.raw_sink()))
        .await
        .unwrap_err();
    outputs.push(err.to_string());

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("consent"), "the flow did log: {logs}");
    let everything = format!("{logs}\n{}", outputs.join("\n"));
    let refresh = token.refresh_token.unwrap();
    for secret in [
        TASK_TOKEN,
        code.as_str(),
        token.access_token.expose(),
        refresh.expose(),
        "ya29.expired-one",
        CLIENT_SECRET,
        "alice.martin@example.com",
        "Crème",
    ] {
        assert!(!everything.contains(secret), "{secret:?} leaked:\n{everything}");
    }
}
