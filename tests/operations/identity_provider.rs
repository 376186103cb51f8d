//! The binary configured for OpenID Connect, as an operator starts it: two token modes at once
//! stop it, and an identity provider that cannot be reached does not.

use std::time::Duration;

use serde_json::{json, Value};

use crate::serial;
use crate::server::{free_port, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_token_modes_at_once_stop_start_up_naming_both() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let log = dir.path().join("server.log");
    // The tests' servers have LHS_JWT_SECRET; the issuer is a second mode.
    let mut server = Server::spawn(
        &database,
        &log,
        &[(
            "LHS_OIDC_ISSUER",
            "https://login.example.org/realms/hospital",
        )],
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(30));
        (status, server.log_text())
    })
    .await
    .unwrap();
    let (status, text) = status;
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("LHS_OIDC_ISSUER") && text.contains("LHS_JWT_SECRET"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_identity_provider_leaves_the_service_ready_and_answers_503_to_tokens() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let log = dir.path().join("server.log");
    // Nothing listens there.
    let issuer = format!("http://127.0.0.1:{}/realms/hospital", free_port());
    let server = Server::start(
        &database,
        &log,
        &[
            // Empty sets no mode (a `VAR=` line in a compose file): OpenID Connect is the one.
            ("LHS_JWT_SECRET", ""),
            ("LHS_OIDC_ISSUER", &issuer),
            ("LHS_OIDC_REFRESH_MIN", "1s"),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let rounds = client
        .get(server.url("/api/v1/rounds"))
        .send()
        .await
        .unwrap();
    assert_eq!(rounds.status(), 200, "anonymous reads work");
    let header = crate::server::b64url(
        json!({"alg": "RS256", "kid": "key-1", "typ": "JWT"})
            .to_string()
            .as_bytes(),
    );
    let token = format!("{header}.eyJzdWIiOiJvcHMtdXNlci00MiJ9.c2lnbmF0dXJl");
    let refused = client
        .get(server.url("/api/v1/rounds"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("identity provider can't be reached"),
        "{problem}"
    );
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "one outage of the provider does not take it off"
    );
    let text = server.log_text();
    assert!(
        text.contains("identity provider: cannot reach"),
        "the log says why: {text}"
    );
    assert!(
        !text.contains(&token) && !text.contains("ops-user-42"),
        "{text}"
    );
    assert!(!dir.path().join("rounds.db.jwt-secret").exists());
}
