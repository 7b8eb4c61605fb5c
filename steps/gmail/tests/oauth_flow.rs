//! The OAuth steps against the fake token endpoint: auth check, consent on a task token, the
//! callback (good, unknown, reused, expired and denied states) and the manual code exchange.

mod support;

use std::sync::atomic::Ordering;

use sluice_core::StepError;
use sluice_gmail::auth_check::{self, AuthCheckInput, AuthStatus};
use sluice_gmail::callback::{self, CallbackOutcome, CallbackQuery};
use sluice_gmail::code_exchange::{self, CodeExchangeInput};
use sluice_gmail::consent_request::{self, ConsentRequestInput};
use sluice_gmail::oauth::Sensitive;
use sluice_gmail::oauth::consent::{ConsentRequest, ConsentUrlParts};
use support::{ACCOUNT, Harness, TaskCall};

const TASK_TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAf4Synthetic+Task/Token==";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn check(h: &Harness) -> AuthStatus {
    auth_check::run(AuthCheckInput::default(), &h.oauth)
        .await
        .unwrap()
        .status
}

async fn ask_consent(h: &Harness) -> (String, String) {
    let output = consent_request::run(
        ConsentRequestInput {
            task_token: Sensitive::new(TASK_TOKEN),
            account: None,
        },
        &h.oauth,
    )
    .await
    .unwrap();
    let url = url::Url::parse(&output.consent_url).unwrap();
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    (output.consent_url, state)
}

fn query(code: Option<&str>, state: Option<&str>, error: Option<&str>) -> CallbackQuery {
    CallbackQuery {
        code: code.map(Sensitive::new),
        state: state.map(str::to_string),
        error: error.map(str::to_string),
    }
}

async fn consent_and_callback_resume_the_waiting_task(h: Harness) {
    assert_eq!(check(&h).await, AuthStatus::ConsentRequired);
    let (consent_url, state) = ask_consent(&h).await;
    assert!(
        !consent_url.contains("Synthetic"),
        "the task token must not be in the URL"
    );
    let code = h.fake.grant_consent(&consent_url);

    let page = callback::handle(query(Some(&code), Some(&state), None), &h.oauth).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.outcome, CallbackOutcome::Authorized);
    assert!(!page.html.contains(&code) && !page.html.contains(&state));
    assert_eq!(
        h.tasks.calls(),
        vec![TaskCall::Success {
            token: TASK_TOKEN.into(),
            output: serde_json::json!({"status": "authorized"})
        }]
    );
    assert_eq!(check(&h).await, AuthStatus::Authorized);

    // The same redirect again (a reload, or an attacker replaying it): refused, nothing resumed.
    let replay = callback::handle(query(Some(&code), Some(&state), None), &h.oauth).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.outcome, CallbackOutcome::InvalidState);
    assert_eq!(h.tasks.calls().len(), 1);
}

#[tokio::test]
async fn consent_and_callback_resume_the_waiting_task_on_local_backends() {
    consent_and_callback_resume_the_waiting_task(Harness::local().await).await;
}

#[tokio::test]
async fn consent_and_callback_resume_the_waiting_task_on_aws_backends() {
    if let Some(h) = Harness::aws().await {
        consent_and_callback_resume_the_waiting_task(h).await;
    }
}

#[tokio::test]
async fn the_callback_router_answers_get_oauth_callback() {
    use tower::ServiceExt;
    let h = Harness::local().await;
    let (consent_url, state) = ask_consent(&h).await;
    let code = h.fake.grant_consent(&consent_url);
    let app = callback::router(std::sync::Arc::new(h.oauth.clone()));
    let uri = format!("/oauth/callback?state={state}&code={}&scope=x", urlencode(&code));
    let response = app
        .oneshot(axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(matches!(h.tasks.calls().as_slice(), [TaskCall::Success { .. }]));
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn unknown_or_malformed_state_answers_400_and_touches_no_task() {
    let h = Harness::local().await;
    let _pending = ask_consent(&h).await;
    for state in [None, Some("AAAAAAAAAAAAAAAAAAAAAA"), Some("../../etc"), Some("")] {
        let page = callback::handle(query(Some("4/0x"), state, None), &h.oauth).await;
        assert_eq!(page.status, 400, "{state:?}");
        assert_eq!(page.outcome, CallbackOutcome::InvalidState);
    }
    assert!(h.tasks.calls().is_empty());
    assert_eq!(h.fake.state.token_calls.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn access_denied_fails_the_waiting_task_with_consent_denied() {
    let h = Harness::local().await;
    let (_, state) = ask_consent(&h).await;
    let page = callback::handle(query(None, Some(&state), Some("access_denied")), &h.oauth).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.outcome, CallbackOutcome::Denied);
    match h.tasks.calls().as_slice() {
        [TaskCall::Failure { token, error, .. }] => {
            assert_eq!(token, TASK_TOKEN);
            assert_eq!(error, "Auth.ConsentDenied");
        }
        other => panic!("expected one failure, got {other:?}"),
    }
    assert_eq!(check(&h).await, AuthStatus::ConsentRequired);
}

#[tokio::test]
async fn an_expired_state_fails_the_waiting_task_with_invalid_state() {
    let h = Harness::local().await;
    let settings = h.oauth.authorizer.settings();
    let expired = ConsentRequest::new(
        &ConsentUrlParts {
            auth_uri: &settings.auth_uri,
            client_id: &settings.client_id,
            redirect_uri: &settings.redirect_uri,
            scopes: &[support::fake_google::READONLY],
            login_hint: None,
        },
        -5,
    )
    .unwrap();
    h.oauth
        .authorizer
        .consents()
        .park(
            &expired,
            ACCOUNT,
            Some(&Sensitive::new(TASK_TOKEN)),
            &settings.redirect_uri,
        )
        .await
        .unwrap();
    let code = h.fake.grant_consent(&expired.url);
    let page = callback::handle(query(Some(&code), Some(&expired.state), None), &h.oauth).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.outcome, CallbackOutcome::InvalidState);
    assert!(matches!(
        h.tasks.calls().as_slice(),
        [TaskCall::Failure { error, .. }] if error == "Auth.InvalidState"
    ));
    assert_eq!(
        h.fake.state.token_calls.load(Ordering::Relaxed),
        0,
        "no exchange for an expired state"
    );
}

#[tokio::test]
async fn a_code_bound_to_another_pkce_challenge_is_refused() {
    let h = Harness::local().await;
    let (_, state) = ask_consent(&h).await;
    let (other_url, _) = ask_consent(&h).await;
    let foreign_code = h.fake.grant_consent(&other_url);
    let page = callback::handle(query(Some(&foreign_code), Some(&state), None), &h.oauth).await;
    assert_eq!(page.status, 400);
    assert_eq!(page.outcome, CallbackOutcome::ExchangeFailed);
    assert!(matches!(
        h.tasks.calls().as_slice(),
        [TaskCall::Failure { error, .. }] if error == "Auth.TokenRejected"
    ));
    assert_eq!(check(&h).await, AuthStatus::ConsentRequired);
}

#[tokio::test]
async fn a_consent_without_the_gmail_scope_is_denied() {
    let h = Harness::local().await;
    let (url, state) = ask_consent(&h).await;
    let code = h.fake.grant_consent_with_scope(&url, "openid");
    let page = callback::handle(query(Some(&code), Some(&state), None), &h.oauth).await;
    assert_eq!(page.status, 400);
    assert!(matches!(
        h.tasks.calls().as_slice(),
        [TaskCall::Failure { error, .. }] if error == "Auth.ConsentDenied"
    ));
    assert_eq!(check(&h).await, AuthStatus::ConsentRequired);
}

#[tokio::test]
async fn a_callback_after_the_task_timed_out_still_caches_the_token() {
    let h = Harness::local().await;
    let (url, state) = ask_consent(&h).await;
    h.tasks.gone.lock().unwrap().push(TASK_TOKEN.into());
    let code = h.fake.grant_consent(&url);
    let page = callback::handle(query(Some(&code), Some(&state), None), &h.oauth).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.outcome, CallbackOutcome::AuthorizedTaskGone);
    assert_eq!(check(&h).await, AuthStatus::Authorized);
}

#[tokio::test]
async fn manual_code_exchange_answers_the_latest_consent_request() {
    let h = Harness::local().await;
    let (url, _) = ask_consent(&h).await;
    let code = h.fake.grant_consent(&url);
    // What `send-task-success --task-output '{"code": "..."}'` hands the next state.
    let input: CodeExchangeInput = serde_json::from_value(serde_json::json!({ "code": code })).unwrap();
    let output = code_exchange::run(input, &h.oauth).await.unwrap();
    assert_eq!(output.status, AuthStatus::Authorized);
    assert_eq!(check(&h).await, AuthStatus::Authorized);
    // The request is used up: the same code again is an invalid state, not a second exchange.
    let again: CodeExchangeInput = serde_json::from_value(serde_json::json!({ "code": code })).unwrap();
    let err = code_exchange::run(again, &h.oauth).await.unwrap_err();
    assert_eq!(err.error_name(), "Auth.InvalidState");
}

#[tokio::test]
async fn code_exchange_without_a_code_reports_the_callback_s_authorization() {
    let h = Harness::local().await;
    let output = code_exchange::run(CodeExchangeInput::default(), &h.oauth)
        .await
        .unwrap();
    assert_eq!(output.status, AuthStatus::ConsentRequired);
    h.authorize().await;
    let output = code_exchange::run(CodeExchangeInput::default(), &h.oauth)
        .await
        .unwrap();
    assert_eq!(output.status, AuthStatus::Authorized);
}

#[tokio::test]
async fn malformed_manual_codes_are_refused_naming_the_field() {
    let h = Harness::local().await;
    for code in ["", "has space", &"x".repeat(5000)] {
        let input = CodeExchangeInput {
            code: Some(Sensitive::new(code)),
            ..CodeExchangeInput::default()
        };
        let err = code_exchange::run(input, &h.oauth).await.unwrap_err();
        assert_eq!(err.error_name(), "Gmail.InvalidInput");
        assert!(err.to_string().contains("code"), "{err}");
    }
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed() {
    let h = Harness::local().await;
    let refresh = h.fake.known_refresh_token();
    h.seed_token("ya29.stale", Some(&refresh), now() - 10).await;
    let output = auth_check::run(AuthCheckInput::default(), &h.oauth).await.unwrap();
    assert_eq!(output.status, AuthStatus::Authorized);
    assert!(output.expires_at.unwrap() > now() + 3000);
    let cached = h.oauth.authorizer.token_cache().load(ACCOUNT).await.unwrap().unwrap();
    assert_ne!(cached.access_token.expose(), "ya29.stale");
    assert_eq!(
        cached.refresh_token.unwrap().expose(),
        refresh,
        "the refresh token is kept"
    );
}

#[tokio::test]
async fn a_token_inside_the_clock_skew_margin_is_refreshed_early() {
    let h = Harness::local().await;
    let refresh = h.fake.known_refresh_token();
    h.seed_token("ya29.nearly", Some(&refresh), now() + 30).await;
    assert_eq!(check(&h).await, AuthStatus::Authorized);
    assert_eq!(h.fake.state.token_calls.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_rejected_refresh_deletes_the_token_and_requires_consent() {
    let h = Harness::local().await;
    let refresh = h.fake.known_refresh_token();
    h.seed_token("ya29.stale", Some(&refresh), now() - 10).await;
    h.fake.revoke_all();
    let output = auth_check::run(AuthCheckInput::default(), &h.oauth).await.unwrap();
    assert_eq!(output.status, AuthStatus::ConsentRequired);
    assert!(output.reason.unwrap().contains("invalid_grant"));
    assert!(h.oauth.authorizer.token_cache().load(ACCOUNT).await.unwrap().is_none());
}

#[tokio::test]
async fn token_endpoint_outages_are_retried_then_reported() {
    let h = Harness::local().await;
    let refresh = h.fake.known_refresh_token();
    h.seed_token("ya29.stale", Some(&refresh), now() - 10).await;
    h.fake.state.token_failures_next.store(2, Ordering::Relaxed);
    assert_eq!(
        check(&h).await,
        AuthStatus::Authorized,
        "two 503s, then success on the third attempt"
    );

    h.seed_token("ya29.stale", Some(&refresh), now() - 10).await;
    h.fake.state.token_failures_next.store(10, Ordering::Relaxed);
    let before = h.fake.state.token_calls.load(Ordering::Relaxed);
    let err = auth_check::run(AuthCheckInput::default(), &h.oauth).await.unwrap_err();
    assert_eq!(err.error_name(), "Auth.TokenEndpointUnavailable");
    assert_eq!(
        h.fake.state.token_calls.load(Ordering::Relaxed) - before,
        3,
        "bounded by max_attempts"
    );
    assert!(
        h.oauth.authorizer.token_cache().load(ACCOUNT).await.unwrap().is_some(),
        "an outage does not throw the token away"
    );
}

#[tokio::test]
async fn consent_request_refuses_a_missing_task_token() {
    let h = Harness::local().await;
    let input: Result<ConsentRequestInput, _> = serde_json::from_value(serde_json::json!({}));
    assert!(input.is_err());
    let err = consent_request::run(
        ConsentRequestInput {
            task_token: Sensitive::new("  "),
            account: None,
        },
        &h.oauth,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "Gmail.InvalidInput");
}
