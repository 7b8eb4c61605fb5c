//! The token-issue step against the embedded backends and against moto.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use sluice_core::testing::{aws_endpoint, aws_test_backends, local_test_backends};
use sluice_core::{AttrValue, Backends, Config, ItemKey, PutCondition, StepError};
use sluice_tokens::api_key::{self, ApiKey, KeyHash};
use sluice_tokens::issue::{TokenIssueDeps, run_at, secret_name};
use sluice_tokens::{ApiKeyStore, IssueAction, StoredApiKey, TokenIssueInput, TokenSettings};

fn settings(scopes: &[&str]) -> TokenSettings {
    let text = format!(
        r#"
        [tokens]
        overlap_hours = 24
        renew_before_days = 14
        [tokens.consumers.orders.analytics]
        scopes = {scopes:?}
        lifetime_days = 90
        [tokens.consumers.orders.billing]
        scopes = ["records:read"]
        lifetime_days = 30
        "#
    );
    let config = Config::from_toml(&text, "test", Path::new(".")).unwrap();
    TokenSettings::from_config(&config).unwrap()
}

fn deps(backends: &Backends, settings: TokenSettings) -> TokenIssueDeps {
    TokenIssueDeps::new(backends, settings)
}

fn orders() -> TokenIssueInput {
    TokenIssueInput {
        dataset: Some("orders".into()),
        rotate: false,
    }
}

async fn delivered_key(backends: &Backends, consumer: &str) -> String {
    let secret = backends
        .secrets
        .get(&secret_name("orders", consumer))
        .await
        .unwrap()
        .expect("the key was delivered");
    let json: serde_json::Value = serde_json::from_str(secret.expose()).unwrap();
    json["api_key"].as_str().unwrap().to_string()
}

async fn stored(backends: &Backends, key: &str) -> StoredApiKey {
    let hash = api_key::parse(key).unwrap();
    ApiKeyStore::new(backends.control.clone())
        .find(&hash)
        .await
        .unwrap()
        .unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc::now()
}

async fn first_run_issues_and_delivers_and_reruns_change_nothing(backends: Backends) {
    let deps = deps(&backends, settings(&["records:read"]));
    let now = t0();
    let first = run_at(orders(), &deps, now).await.unwrap();
    assert_eq!(first.consumers.len(), 2);
    assert!(first.consumers.iter().all(|c| c.action == IssueAction::Issued));
    let key = delivered_key(&backends, "analytics").await;
    let record = stored(&backends, &key).await;
    assert_eq!(record.scopes, vec!["records:read".to_string()]);
    assert_eq!(record.valid_until.timestamp(), (now + Duration::days(90)).timestamp());
    assert_eq!(first.consumers[0].key_id, record.key_id());
    let output = serde_json::to_string(&first).unwrap();
    assert!(
        !output.contains(&key),
        "the plain key never appears in the state output"
    );

    for _ in 0..3 {
        let again = run_at(orders(), &deps, now + Duration::hours(1)).await.unwrap();
        assert!(again.consumers.iter().all(|c| c.action == IssueAction::Unchanged));
        assert_eq!(again.consumers[0].key_id, first.consumers[0].key_id);
    }
    assert_eq!(
        delivered_key(&backends, "analytics").await,
        key,
        "reruns deliver nothing new"
    );
}

async fn rotation_keeps_the_previous_key_for_the_overlap_then_revokes_it(backends: Backends) {
    let deps = deps(&backends, settings(&["records:read"]));
    let now = t0();
    run_at(orders(), &deps, now).await.unwrap();
    let first_key = delivered_key(&backends, "analytics").await;

    // 80 days on, less than renew_before_days (14) are left: rotate.
    let later = now + Duration::days(80);
    let rotated = run_at(orders(), &deps, later).await.unwrap();
    let analytics = &rotated.consumers[0];
    assert_eq!(analytics.action, IssueAction::Rotated);
    let second_key = delivered_key(&backends, "analytics").await;
    assert_ne!(first_key, second_key);
    let old = stored(&backends, &first_key).await;
    assert_eq!(old.valid_until.timestamp(), (later + Duration::hours(24)).timestamp());
    assert!(old.is_usable(later + Duration::hours(23)));
    assert!(!old.is_usable(later + Duration::hours(25)));
    assert!(stored(&backends, &second_key).await.is_usable(later));

    // A forced rotation revokes the oldest key at once: never more than two valid keys.
    let forced = TokenIssueInput {
        rotate: true,
        ..orders()
    };
    let third = run_at(forced, &deps, later + Duration::hours(1)).await.unwrap();
    assert_eq!(third.consumers[0].action, IssueAction::Rotated);
    assert!(stored(&backends, &first_key).await.revoked);
    assert!(!stored(&backends, &second_key).await.revoked);
}

async fn scope_changes_update_the_key_in_place(backends: Backends) {
    let now = t0();
    run_at(orders(), &deps(&backends, settings(&["records:read"])), now)
        .await
        .unwrap();
    let key = delivered_key(&backends, "analytics").await;
    let widened = deps(&backends, settings(&["records:read", "records:reidentify"]));
    let out = run_at(orders(), &widened, now).await.unwrap();
    assert_eq!(out.consumers[0].action, IssueAction::ScopesUpdated);
    assert_eq!(delivered_key(&backends, "analytics").await, key);
    assert_eq!(
        stored(&backends, &key).await.scopes,
        vec!["records:read".to_string(), "records:reidentify".to_string()]
    );
}

async fn revoked_or_undelivered_keys_are_replaced(backends: Backends) {
    let deps = deps(&backends, settings(&["records:read"]));
    let now = t0();
    run_at(orders(), &deps, now).await.unwrap();
    let key = delivered_key(&backends, "analytics").await;
    let store = ApiKeyStore::new(backends.control.clone());
    let mut record = stored(&backends, &key).await;
    record.revoked = true;
    store.update(&record).await.unwrap();
    let out = run_at(orders(), &deps, now).await.unwrap();
    assert_eq!(out.consumers[0].action, IssueAction::Rotated);
    assert_ne!(delivered_key(&backends, "analytics").await, key);
}

/// A run that stopped after recording a pending key: the next run revokes the orphan if the
/// consumer never received it, or finishes the rotation if it did.
async fn interrupted_runs_are_finished_or_cleaned_up(backends: Backends) {
    let deps = deps(&backends, settings(&["records:read"]));
    let now = t0();
    run_at(orders(), &deps, now).await.unwrap();
    let current = delivered_key(&backends, "analytics").await;
    let store = ApiKeyStore::new(backends.control.clone());

    let orphan = ApiKey::generate();
    let orphan_record = StoredApiKey {
        hash: orphan.hash(),
        dataset: "orders".into(),
        consumer: "analytics".into(),
        scopes: vec!["records:read".into()],
        created_at: now,
        valid_until: now + Duration::days(90),
        revoked: false,
    };
    store.create(&orphan_record).await.unwrap();
    set_pending(&backends, &api_key::parse(&current).unwrap(), &orphan.hash()).await;
    let out = run_at(orders(), &deps, now).await.unwrap();
    assert_eq!(out.consumers[0].action, IssueAction::Unchanged);
    assert!(store.find(&orphan.hash()).await.unwrap().unwrap().revoked);
    assert_eq!(delivered_key(&backends, "analytics").await, current);

    // Now the crash came after delivery: the secret already holds the pending key.
    let delivered = ApiKey::generate();
    store
        .create(&StoredApiKey {
            hash: delivered.hash(),
            ..orphan_record
        })
        .await
        .unwrap();
    let json = serde_json::json!({
        "api_key": delivered.expose(), "key_id": delivered.hash().key_id(), "dataset": "orders",
        "consumer": "analytics", "scopes": ["records:read"], "valid_until": now + Duration::days(90),
    });
    backends
        .secrets
        .put(
            &secret_name("orders", "analytics"),
            &sluice_core::SecretValue::new(json.to_string()),
        )
        .await
        .unwrap();
    set_pending(&backends, &api_key::parse(&current).unwrap(), &delivered.hash()).await;
    let out = run_at(orders(), &deps, now).await.unwrap();
    assert_eq!(out.consumers[0].key_id, delivered.hash().key_id());
    assert_eq!(out.consumers[0].action, IssueAction::Unchanged);
    let previous = stored(&backends, &current).await;
    assert_eq!(
        previous.valid_until.timestamp(),
        (now + Duration::hours(24)).timestamp()
    );
}

async fn set_pending(backends: &Backends, current: &KeyHash, pending: &KeyHash) {
    let mut state = ItemKey::new("consumer#orders#analytics", "state").to_item();
    state.insert("current".into(), AttrValue::S(current.to_hex()));
    state.insert("pending".into(), AttrValue::S(pending.to_hex()));
    backends.control.put(state, PutCondition::Always).await.unwrap();
}

async fn a_held_lock_makes_the_step_fail_retryably(backends: Backends) {
    let deps = deps(&backends, settings(&["records:read"]));
    let mut lock = ItemKey::new("lease#consumer-keys#orders#analytics", "lease").to_item();
    lock.insert(
        "expires_at".into(),
        AttrValue::N((Utc::now().timestamp() + 60).to_string()),
    );
    backends.control.put(lock, PutCondition::Always).await.unwrap();
    let err = run_at(orders(), &deps, t0()).await.unwrap_err();
    assert_eq!(err.error_name(), "Tokens.Busy");
}

/// A lock whose holder died on this host is taken over at once; one held by a live process
/// (of this host, or of another one) is not.
async fn a_lock_left_by_a_dead_process_is_taken_over(backends: Backends) {
    let deps = deps(&backends, settings(&["records:read"]));
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()));
    let lock_held_by = |owner: String| {
        let mut lock = ItemKey::new("lease#consumer-keys#orders#analytics", "lease").to_item();
        lock.insert(
            "expires_at".into(),
            AttrValue::N((Utc::now().timestamp() + 60).to_string()),
        );
        lock.insert("owner".into(), AttrValue::S(owner));
        lock
    };
    for live in [format!("{host}:1:x"), "another-host:123:x".to_string()] {
        backends
            .control
            .put(lock_held_by(live), PutCondition::Always)
            .await
            .unwrap();
        let err = run_at(orders(), &deps, t0()).await.unwrap_err();
        assert_eq!(err.error_name(), "Tokens.Busy");
    }
    let dead = format!("{host}:{}:x", u32::MAX - 7);
    backends
        .control
        .put(lock_held_by(dead), PutCondition::Always)
        .await
        .unwrap();
    let output = run_at(orders(), &deps, t0()).await.unwrap();
    assert!(!output.consumers.is_empty());
    assert!(
        backends
            .control
            .get(&ItemKey::new("lease#consumer-keys#orders#analytics", "lease"))
            .await
            .unwrap()
            .is_none(),
        "the lock is released after the run"
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let (_, backends) = super::local_test_backends(dir.path());
                    super::$name(backends).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(endpoint) = super::aws_endpoint() else { return };
                    let (_, backends) = super::aws_test_backends(&endpoint).await;
                    super::$name(backends).await;
                }
            )*
        }
    };
}

on_both_backends!(
    first_run_issues_and_delivers_and_reruns_change_nothing,
    rotation_keeps_the_previous_key_for_the_overlap_then_revokes_it,
    scope_changes_update_the_key_in_place,
    revoked_or_undelivered_keys_are_replaced,
    interrupted_runs_are_finished_or_cleaned_up,
    a_held_lock_makes_the_step_fail_retryably,
    a_lock_left_by_a_dead_process_is_taken_over,
);

#[tokio::test]
async fn unknown_datasets_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, backends) = local_test_backends(dir.path());
    let deps = deps(&backends, settings(&["records:read"]));
    let input = TokenIssueInput {
        dataset: Some("nope".into()),
        rotate: false,
    };
    let err = run_at(input, &deps, t0()).await.unwrap_err();
    assert_eq!(err.error_name(), "Tokens.UnknownDataset");
    assert!(err.to_string().contains("\"nope\""));
}

#[test]
fn bad_consumer_settings_name_the_field() {
    let cases: BTreeMap<&str, &str> = BTreeMap::from([
        (
            "[tokens.consumers.orders.a]\nlifetime_days = 0",
            "consumers.orders.a.lifetime_days",
        ),
        (
            "[tokens.consumers.orders.a]\nscopes = [\"has space\"]",
            "consumers.orders.a.scopes",
        ),
        ("[tokens.consumers.orders.a]\nscopes = []", "consumers.orders.a.scopes"),
        (
            "[tokens.consumers.orders.a]\nscopes = [\"records:raed\"]",
            "records:raed",
        ),
        (
            "[tokens.consumers.orders.\"a/b\"]\nscopes = [\"x\"]",
            "consumers.orders.a/b",
        ),
        ("[tokens.consumers.orders.a]\nscope = [\"x\"]", "unknown field"),
        (
            "[tokens.clients.idp]\ntoken_url = \"http://idp.example.com/token\"",
            "clients.idp",
        ),
    ]);
    for (text, expected) in cases {
        let config = Config::from_toml(text, "test", Path::new(".")).unwrap();
        let err = TokenSettings::from_config(&config).unwrap_err();
        assert!(err.to_string().contains(expected), "{text}: {err}");
    }
}
