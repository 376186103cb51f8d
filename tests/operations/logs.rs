//! A full run's log, in both formats, at the chattiest level: every access line has the request
//! id, the route template, the status, the duration, the bytes and the caller's `sub`, and no line
//! carries a token, a secret or a feedback author's e-mail address.

use std::time::Duration;

use serde_json::{json, Value};

use crate::serial;
use crate::server::{admin_token, Server, SECRET};

const METRICS_TOKEN: &str = "metrics-scrape-token-0f3e";
const AUTHOR_EMAIL: &str = "grace.author@example.org";
const ANONYMOUS_EMAIL: &str = "anon.writer@example.org";
const INVALID_EMAIL: &str = "typo.author@example";
const SPEAKER_EMAIL: &str = "dr.speaker@example.org";
const ATTENDEE_EMAIL: &str = "checked.in@example.org";
const ATTENDEE_NPI: &str = "1245319599";
const SHEET_EMAIL: &str = "on.the.sheet@example.org";
const SHEET_NPI: &str = "1003000126";
const FORGED_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.Zm9yZ2VkLXNpZ25hdHVyZQ";

/// Runs everything that handles a secret through a server logging in `format`; returns its log
/// and the secrets it handled.
async fn a_full_run(format: &str) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let log = dir.path().join("server.log");
    let mut server = Server::start(
        &database,
        &log,
        &[
            ("RUST_LOG", "debug"),
            ("LHS_LOG_FORMAT", format),
            ("LHS_METRICS_TOKEN", METRICS_TOKEN),
            ("LHS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
            ("LHS_SHUTDOWN_GRACE", "100ms"),
        ],
    )
    .await;
    let token = admin_token("ops-admin");
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };

    let speaker: Value = post(
        "/api/v1/speakers",
        json!({"full_name": "Dr Speaker", "credentials": ["MD"], "email": SPEAKER_EMAIL}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    // Held an hour ago: a round takes session feedback from its start.
    let hours_ago = |hours: i64| {
        (chrono::Utc::now() - chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let round: Value = post(
        "/api/v1/rounds",
        json!({
            "starts_at": hours_ago(2), "ends_at": hours_ago(1),
            "location": "Hospital A", "speakers": [{"speaker_id": speaker["id"]}],
        }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let rated = post(
        "/api/v1/feedback",
        json!({"kind": "session_feedback", "round_id": round["id"], "rating": 5,
               "author_name": "Grace", "author_email": AUTHOR_EMAIL}),
    )
    .await
    .unwrap();
    assert_eq!(rated.status(), 201);
    let anonymous = client
        .post(server.url("/api/v1/feedback"))
        .json(&json!({"kind": "general", "comment": "More on sepsis", "author_email": ANONYMOUS_EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 201);
    let invalid = post(
        "/api/v1/feedback",
        json!({"kind": "general", "comment": "x", "author_email": INVALID_EMAIL}),
    )
    .await
    .unwrap();
    assert_eq!(invalid.status(), 422);
    for path in [
        format!("/api/v1/rounds/{}", round["id"]),
        "/api/v1/feedback".to_owned(),
        "/api/v1/speakers".to_owned(),
    ] {
        let read = client
            .get(server.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200, "{path}");
    }
    let forged = client
        .get(server.url("/api/v1/feedback"))
        .bearer_auth(FORGED_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let metrics = client
        .get(server.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let webhook: Value = post(
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "events": ["round.*"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let first_secret = webhook["secret"]
        .as_str()
        .expect("a webhook secret")
        .to_owned();
    let rotated: Value = post(
        &format!("/api/v1/webhooks/{}/rotate-secret", webhook["id"]),
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let second_secret = rotated["secret"].as_str().expect("a new secret").to_owned();
    // Attendance: an attendee with an NPI, a check-in with the round's code, a sign-in sheet.
    let round: Value = post(
        "/api/v1/rounds",
        json!({"starts_at": hours_ago(0), "ends_at": hours_ago(-1), "location": "Room 2"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let attendee = post(
        "/api/v1/attendees",
        json!({"full_name": "Pat Npi", "email": "pat.npi@example.org", "profession": "physician",
            "npi": ATTENDEE_NPI}),
    )
    .await
    .unwrap();
    assert_eq!(attendee.status(), 201);
    let code: Value = client
        .get(server.url(&format!("/api/v1/rounds/{}/checkin-code", round["id"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = code["code"].as_str().expect("a check-in code").to_owned();
    let checked_in = client
        .post(server.url(&format!("/api/v1/rounds/{}/attendance", round["id"])))
        .json(&json!({"code": code, "nonce": "log-test-1", "attendee":
            {"full_name": "Checked In", "email": ATTENDEE_EMAIL, "profession": "nurse"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(checked_in.status(), 201);
    let imported = client
        .post(server.url(&format!("/api/v1/rounds/{}/attendance/import", round["id"])))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(format!(
            "full_name,email,profession,npi\nOn The Sheet,{SHEET_EMAIL},physician,{SHEET_NPI}\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200);
    // A change for the worker to (fail to) deliver, signed with the secrets.
    post(
        "/api/v1/rounds",
        json!({"starts_at": "2031-07-17T16:00:00Z", "ends_at": "2031-07-17T17:00:00Z", "location": "B"}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    server.signal("TERM");
    let server = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(30));
        assert_eq!(status.code(), Some(0));
        server
    })
    .await
    .unwrap();
    let secrets = vec![
        SECRET.to_owned(),
        token,
        FORGED_TOKEN.to_owned(),
        METRICS_TOKEN.to_owned(),
        first_secret,
        second_secret,
        AUTHOR_EMAIL.to_owned(),
        ANONYMOUS_EMAIL.to_owned(),
        INVALID_EMAIL.to_owned(),
        SPEAKER_EMAIL.to_owned(),
        ATTENDEE_EMAIL.to_owned(),
        ATTENDEE_NPI.to_owned(),
        SHEET_EMAIL.to_owned(),
        SHEET_NPI.to_owned(),
        code,
    ];
    (server.log_text(), secrets)
}

fn assert_nothing_secret(log: &str, secrets: &[String]) {
    assert!(
        log.lines().count() > 20,
        "a full run logs something:\n{log}"
    );
    for secret in secrets {
        let line = log.lines().find(|line| line.contains(secret.as_str()));
        assert!(line.is_none(), "{secret:?} reached the log: {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_request_ids_and_never_a_secret() {
    let _turn = serial().await;
    let (log, secrets) = a_full_run("text").await;
    assert_nothing_secret(&log, &secrets);
    let access = log
        .lines()
        .find(|line| line.contains("lhs_rounds::access] GET /api/v1/rounds/"))
        .expect("an access line for a round");
    for part in [
        "route=/api/v1/rounds/{id}",
        "status=200",
        "duration_ms=",
        "bytes=",
        "sub=ops-admin",
        "request_id=",
    ] {
        assert!(access.contains(part), "{part} is missing from {access}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_never_carry_a_secret() {
    let _turn = serial().await;
    let (log, secrets) = a_full_run("json").await;
    assert_nothing_secret(&log, &secrets);
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for line in &lines {
        for key in ["time", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "{key} is missing from {line}");
        }
    }
    let access: Vec<&Value> = lines
        .iter()
        .filter(|line| line["target"] == "lhs_rounds::access")
        .collect();
    assert!(!access.is_empty());
    for line in &access {
        assert!(
            line["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert!(line["status"].is_u64() && line["bytes"].is_u64(), "{line}");
        assert!(
            line["duration_ms"].is_number() && line["route"].is_string(),
            "{line}"
        );
    }
    assert!(access
        .iter()
        .any(|line| line["route"] == "/api/v1/rounds/{id}"
            && line["sub"] == "ops-admin"
            && line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("GET /api/v1/rounds/"))));
    // The 422's log lines, if any, carry its request id.
    let refused = access
        .iter()
        .find(|line| line["status"] == 422)
        .expect("the invalid feedback's access line");
    let id = refused["request_id"].as_str().unwrap();
    assert!(lines
        .iter()
        .filter(|line| line["request_id"] == id)
        .all(|line| line["target"] != "lhs_rounds::access" || line["status"] == 422));
}
