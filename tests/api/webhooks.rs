//! Signed webhooks (Standard Webhooks): configuration, delivery, retries, and a message that
//! survives the process being killed. (The official `standardwebhooks` Python package verifies
//! the signatures in `scripts/contract-test`.)

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use diesel::connection::SimpleConnection;
use hmac::{Hmac, Mac};
use lhs_rounds::integration::destinations::Resolver;
use lhs_rounds::platform::auth::Role;
use lhs_rounds::platform::config::Settings;
use lhs_rounds::platform::db::DbConnection;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{
    assert_problem, error_fields, id_of, spawn_app_with, spawn_app_with_options,
    spawn_replica_with, Backend, Receiver, TestApp, SECRET,
};

on_both_backends!(
    a_webhook_shows_its_secret_once_and_only_admins_manage_it,
    urls_that_would_reach_the_service_or_its_machine_are_refused,
    unknown_event_types_are_422_with_the_known_ones,
    messages_are_signed_and_delivered_in_order,
    a_failing_receiver_is_retried_and_a_410_disables_the_webhook,
    five_messages_in_a_row_that_fail_every_retry_disable_the_webhook,
    feedback_is_sent_only_where_it_is_listed,
    a_delivery_can_be_retried_by_hand,
    the_outbox_state_counts_what_waits_and_what_failed,
    a_receiver_that_hangs_or_answers_10_mb_does_not_hold_up_the_others,
    callers_without_the_admin_role_are_refused_before_any_name_is_resolved,
    a_name_that_does_not_resolve_in_time_is_422_naming_url_and_holds_up_nothing,
    the_guard_judges_the_host_the_client_connects_to_and_the_client_goes_nowhere_else,
    a_replayed_creation_never_shows_a_secret_after_rotation_or_deletion,
    message_ids_are_random_the_same_on_every_attempt_and_unique_after_a_restore,
    every_attempt_of_a_delivery_is_shown_with_its_time_status_error_and_duration,
    settled_messages_past_the_retention_are_purged_and_pending_ones_kept,
    two_replicas_deliver_each_message_once_per_attempt_in_order,
);

/// An app whose webhooks may reach this machine (the receivers of the tests), retrying fast.
async fn hooked(app: &TestApp) -> TestApp {
    spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
        s.webhook_retry_schedule = "1s,1s".into();
    })
    .await
    .expect("the backend of the app given")
}

async fn register(app: &TestApp, url: &str, events: Value) -> Value {
    app.create(
        "/api/v1/webhooks",
        json!({"url": url, "events": events, "description": "test receiver"}),
    )
    .await
}

/// The signature a receiver computes, independently of the service's code.
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

async fn a_webhook_shows_its_secret_once_and_only_admins_manage_it(app: TestApp) {
    let app = hooked(&app).await;
    let receiver = Receiver::start(&[]).await;

    let created = register(&app, &receiver.url, json!(["round.*"])).await;

    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let path = format!("/api/v1/webhooks/{}", id_of(&created));
    let shown = app.get_ok(&path).await;
    assert!(shown.get("secret").is_none(), "shown once");
    assert_eq!(shown["events"], json!(["round.*"]));
    assert_eq!(shown["enabled"], true);
    assert!(!app
        .get_ok("/api/v1/webhooks")
        .await
        .to_string()
        .contains(&secret));
    let audit = app.get_ok("/api/v1/audit?resource=webhook").await;
    assert!(
        !audit.to_string().contains(&secret),
        "never in the change log"
    );
    let organizer = app.token("o@example.org", &[Role::Organizer]);
    assert_problem(
        app.request_as(Some(&organizer), Method::GET, "/api/v1/webhooks", None)
            .await,
        403,
    )
    .await;

    let rotated: Value = app
        .post(&format!("{path}/rotate-secret"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(
        app.get_ok(&format!(
            "/api/v1/audit?resource=webhook&id={}",
            id_of(&created)
        ))
        .await["total"],
        2
    );
}

async fn urls_that_would_reach_the_service_or_its_machine_are_refused(app: TestApp) {
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.org/hook",
        "https://user:secret@example.org/hook",
        "not a url",
    ] {
        let response = app
            .post(
                "/api/v1/webhooks",
                &json!({"url": url, "events": ["round.created"]}),
            )
            .await;
        assert_eq!(
            error_fields(&assert_problem(response, 422).await),
            vec!["url"],
            "{url}"
        );
    }
    assert_eq!(app.get_ok("/api/v1/webhooks").await["total"], 0);

    let allowed = hooked(&app).await;
    register(
        &allowed,
        "http://127.0.0.1:9/hook",
        json!(["round.created"]),
    )
    .await;
    register(
        &allowed,
        "http://10.20.30.40/hook",
        json!(["round.created"]),
    )
    .await;
}

async fn unknown_event_types_are_422_with_the_known_ones(app: TestApp) {
    let response = app
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://10.20.30.40/hook", "events": ["round.moved", "speaker.*"]}),
        )
        .await;

    let problem = assert_problem(response, 422).await;
    assert_eq!(error_fields(&problem), vec!["events[0]"]);
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("round.cancelled") && message.contains("series.updated"));
    let empty = app
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://10.20.30.40/hook", "events": []}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(empty, 422).await),
        vec!["events"]
    );
}

async fn messages_are_signed_and_delivered_in_order(app: TestApp) {
    let app = hooked(&app).await;
    let receiver = Receiver::start(&[]).await;
    let webhook = register(&app, &receiver.url, json!(["round.*", "series.updated"])).await;
    let secret = webhook["secret"].as_str().unwrap().to_owned();

    let round = app.round("2027-01-21", json!({"title": "One"})).await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    app.patch(&path, &json!({"title": "Two"})).await;
    app.patch(&path, &json!({"status": "cancelled"})).await;
    app.delete(&path).await;
    app.speaker("Not subscribed", &[]).await;

    let got = receiver.wait_for(4, 20).await;

    let types: Vec<String> = got
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        vec![
            "round.created",
            "round.updated",
            "round.cancelled",
            "round.deleted"
        ]
    );
    for message in &got {
        let id = &message.headers["webhook-id"];
        let timestamp = &message.headers["webhook-timestamp"];
        assert_eq!(
            message.headers["webhook-signature"],
            expected_signature(&secret, id, timestamp, &message.body)
        );
        let body: Value = serde_json::from_str(&message.body).unwrap();
        assert_eq!(body["data"]["id"], round["id"]);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let created: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        created["data"]["created_by"], "admin@example.org",
        "as an organizer sees it"
    );
    // The worker records a delivery once the receiver has answered, a moment after the
    // receiver has the message: wait for the fourth record.
    let path = format!("/api/v1/webhooks/{}/deliveries", id_of(&webhook));
    let mut deliveries = app.get_ok(&path).await;
    for _ in 0..100 {
        let items = deliveries["items"].as_array().unwrap();
        if items.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        deliveries = app.get_ok(&path).await;
    }
    assert_eq!(deliveries["total"], 4);
    assert!(
        deliveries["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{deliveries}"
    );
}

async fn a_failing_receiver_is_retried_and_a_410_disables_the_webhook(app: TestApp) {
    let app = hooked(&app).await;
    let receiver = Receiver::start(&[500, 503]).await;
    let webhook = register(&app, &receiver.url, json!(["department.*"])).await;
    let path = format!("/api/v1/webhooks/{}", id_of(&webhook));

    app.department("Clinical Informatics").await;
    let got = receiver.wait_for(3, 20).await;

    assert_eq!(got.len(), 3, "two failures, then the retry that succeeds");
    assert!(
        got.iter().all(|m| m.body == got[0].body),
        "the same message again"
    );
    let delivery = &app.get_ok(&format!("{path}/deliveries")).await["items"][0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 3);

    receiver.answer_next(&[410]);
    app.department("Operations Excellence").await;
    receiver.wait_for(4, 20).await;
    for _ in 0..40 {
        if app.get_ok(&path).await["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let disabled = app.get_ok(&path).await;
    assert_eq!(disabled["enabled"], false);
    assert!(disabled["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    app.department("Epidemiology and Biostatistics").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received().len(),
        4,
        "nothing more to a disabled webhook"
    );
}

/// A receiver that takes every connection and never answers; the sockets stay open.
async fn hanging_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// A receiver that answers 200 with 10 MB of body, in chunks, and then never ends the body: a
/// client that read the whole answer would wait for its end until its timeout.
async fn flooding_receiver() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                let _ = socket.read(&mut buffer).await;
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
                chunk.extend(std::iter::repeat_n(b'x', 64 * 1024));
                chunk.extend_from_slice(b"\r\n");
                for _ in 0..160 {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                // 10 MB sent; the body's last chunk never comes.
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    url
}

/// Each webhook has its own turn: one whose receiver never answers waits out its timeout (10 s)
/// alone, and one whose receiver answers 10 MB has at most 64 KB of it read: all its messages
/// are delivered while the hanging receiver still holds its first.
async fn a_receiver_that_hangs_or_answers_10_mb_does_not_hold_up_the_others(app: TestApp) {
    let app = hooked(&app).await;
    let hanging = register(&app, &hanging_receiver().await, json!(["round.created"])).await;
    let flooding = register(&app, &flooding_receiver().await, json!(["round.created"])).await;
    let answering = Receiver::start(&[]).await;
    register(&app, &answering.url, json!(["round.created"])).await;

    for day in ["2027-01-21", "2027-02-18", "2027-03-18"] {
        app.round(day, json!({})).await;
    }
    let got = answering.wait_for(3, 20).await;
    let deliveries = |webhook: &Value| format!("/api/v1/webhooks/{}/deliveries", id_of(webhook));
    let mut flooded = Value::Null;
    for _ in 0..200 {
        flooded = app.get_ok(&deliveries(&flooding)).await;
        let items = flooded["items"].as_array().unwrap();
        if items.len() == 3 && items.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hung = app.get_ok(&deliveries(&hanging)).await;

    assert_eq!(got.len(), 3, "the answering receiver got every message");
    assert!(
        flooded["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered" && d["last_status_code"] == 200),
        "a 200 is a success, read no further than its first 64 KB: {flooded}"
    );
    assert!(
        hung["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "pending" && d["attempts"] == 0),
        "meanwhile the hanging receiver's first attempt has not ended: {hung}"
    );
}

async fn five_messages_in_a_row_that_fail_every_retry_disable_the_webhook(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
        s.webhook_retry_schedule = "100ms".into();
    })
    .await
    .expect("the backend of the app given");
    let receiver = Receiver::start(&[500; 20]).await;
    let webhook = register(&app, &receiver.url, json!(["department.*"])).await;
    let path = format!("/api/v1/webhooks/{}", id_of(&webhook));

    for name in [
        "Clinical Informatics",
        "Epidemiology and Biostatistics",
        "Division of Healthcare Quality",
        "Operations Excellence",
        "Nursing Research",
    ] {
        app.department(name).await;
    }
    for _ in 0..200 {
        if app.get_ok(&path).await["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let disabled = app.get_ok(&path).await;
    assert_eq!(disabled["enabled"], false);
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("5 messages in a row"),
        "{disabled}"
    );
    assert_eq!(
        receiver.received().len(),
        10,
        "each of the five messages tried twice (the schedule has one retry), then nothing more"
    );
    let deliveries = app.get_ok(&format!("{path}/deliveries")).await;
    assert!(
        deliveries["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "failed" && d["attempts"] == 2),
        "{deliveries}"
    );
}

async fn feedback_is_sent_only_where_it_is_listed(app: TestApp) {
    let app = hooked(&app).await;
    let everything = Receiver::start(&[]).await;
    let feedback = Receiver::start(&[]).await;
    register(&app, &everything.url, json!(["*"])).await;
    register(&app, &feedback.url, json!(["feedback.created"])).await;

    app.create(
        "/api/v1/feedback",
        json!({"kind": "general", "comment": "Thanks"}),
    )
    .await;
    app.department("Clinical Informatics").await;

    let got = feedback.wait_for(1, 20).await;
    everything.wait_for(1, 20).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let types = |r: &Receiver| -> Vec<String> {
        r.received()
            .iter()
            .map(|m| {
                serde_json::from_str::<Value>(&m.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(got.len(), 1);
    assert_eq!(types(&feedback), vec!["feedback.created"]);
    assert_eq!(types(&everything), vec!["department.created"]);
}

async fn a_delivery_can_be_retried_by_hand(app: TestApp) {
    let app = hooked(&app).await;
    // Three failures exhaust the two retries of this app's schedule.
    let receiver = Receiver::start(&[500, 500, 500]).await;
    let webhook = register(&app, &receiver.url, json!(["speaker.created"])).await;
    let path = format!("/api/v1/webhooks/{}/deliveries", id_of(&webhook));
    app.speaker("Tara Lagu", &["MD"]).await;
    receiver.wait_for(3, 20).await;
    let mut failed = Value::Null;
    for _ in 0..40 {
        failed = app.get_ok(&path).await["items"][0].clone();
        if failed["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["last_status_code"], 500);

    let retried = app
        .post(&format!("{path}/{}/retry", failed["id"]), &json!({}))
        .await;

    assert_eq!(retried.status(), 200);
    receiver.wait_for(4, 20).await;
    for _ in 0..40 {
        if app.get_ok(&path).await["items"][0]["status"] == "delivered" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the delivery retried by hand was not delivered");
}

/// What the metrics gauges of the outbox read: messages pending, failed, and the oldest pending
/// one's age.
async fn the_outbox_state_counts_what_waits_and_what_failed(app: TestApp) {
    async fn state(app: &TestApp) -> (i64, i64, f64) {
        read_db(app, |conn| {
            lhs_rounds::integration::webhooks::outbox_state(conn).unwrap()
        })
        .await
    }
    let app = hooked(&app).await;
    assert_eq!(state(&app).await, (0, 0, 0.0), "an empty outbox");
    // Three failures exhaust the two retries of this app's schedule.
    let receiver = Receiver::start(&[500, 500, 500]).await;
    let webhook = register(&app, &receiver.url, json!(["speaker.created"])).await;
    let path = format!("/api/v1/webhooks/{}/deliveries", id_of(&webhook));
    app.speaker("Tara Lagu", &["MD"]).await;
    receiver.wait_for(3, 20).await;
    deliveries_settled(&app, &path, &["failed"]).await;
    assert_eq!(state(&app).await, (0, 1, 0.0), "one given up, none waiting");

    // The message waits again, long since written, its next attempt far off (no worker takes it).
    read_db(&app, |conn| {
        conn.batch_execute(
            "UPDATE webhook_messages SET status = 'pending', \
             created_at = '2000-01-01 00:00:00', next_attempt_at = '2999-01-01 00:00:00'",
        )
        .unwrap()
    })
    .await;
    let (pending, failed, age) = state(&app).await;
    assert_eq!((pending, failed), (1, 0));
    assert!(
        age > 20.0 * 365.0 * 86_400.0,
        "the oldest waits since 2000: {age}"
    );
}

/// A resolver for tests: `names` answered from the table (anything else does not resolve),
/// each lookup counted.
fn resolver_of(names: &[(&str, &str)], lookups: Arc<AtomicUsize>) -> Resolver {
    let table: HashMap<String, IpAddr> = names
        .iter()
        .map(|(name, ip)| ((*name).to_owned(), ip.parse().unwrap()))
        .collect();
    Resolver::new(Duration::from_secs(2), move |name, port| {
        lookups.fetch_add(1, Ordering::SeqCst);
        table
            .get(name)
            .map(|ip| vec![SocketAddr::new(*ip, port)])
            .ok_or_else(|| std::io::Error::other("no such name"))
    })
}

/// The rows `f` reads, straight from the app's database.
async fn read_db<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut DbConnection) -> T + Send + 'static,
) -> T {
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().unwrap();
        f(&mut conn)
    })
    .await
    .unwrap()
}

/// Polls the list of deliveries at `path` until there are `count`, with these statuses,
/// newest first (at most 20 s).
async fn deliveries_settled(app: &TestApp, path: &str, statuses: &[&str]) -> Value {
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = app.get_ok(path).await;
        let now: Vec<&str> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["status"].as_str().unwrap())
            .collect();
        if now == statuses {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the deliveries of {path} did not become {statuses:?}: {listed}");
}

/// Item 1 of the hardening issue: no one but an admin can make the service resolve a name (and
/// so learn which internal names exist), store a webhook or log a change, whatever the URL.
async fn callers_without_the_admin_role_are_refused_before_any_name_is_resolved(app: TestApp) {
    let lookups = Arc::new(AtomicUsize::new(0));
    let counted = lookups.clone();
    let app = spawn_app_with_options(
        app.backend(),
        |_| {},
        move |o| {
            o.webhooks.guard.resolver =
                resolver_of(&[("intranet.example.org", "10.1.2.3")], counted)
        },
    )
    .await
    .unwrap();
    // A webhook at an address: made without a lookup.
    let hook = register(&app, "https://10.20.30.40/hook", json!(["round.*"])).await;
    let id = id_of(&hook);
    app.round("2027-01-21", json!({})).await;
    let delivery = app
        .get_ok(&format!("/api/v1/webhooks/{id}/deliveries"))
        .await["items"][0]["id"]
        .as_i64()
        .expect("a delivery");
    let audit_before = app.get_ok("/api/v1/audit").await["total"].clone();
    let hook_before = app.get_ok(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(lookups.load(Ordering::SeqCst), 0);

    let callers = [
        (None, 401),
        (Some(app.token("vera@example.org", &[Role::Viewer])), 403),
        (Some(app.token("olga@example.org", &[Role::Organizer])), 403),
        (Some(app.token("eve@example.org", &[])), 403),
    ];
    let urls = [
        "http://localhost/",
        "http://nonexistent.invalid/",
        "http://intranet.example.org/",
        "http://169.254.169.254/",
    ];
    for (token, status) in &callers {
        for url in urls {
            let body = json!({"url": url, "events": ["round.*"]});
            for (method, path) in [
                (Method::POST, "/api/v1/webhooks".to_owned()),
                (Method::PATCH, format!("/api/v1/webhooks/{id}")),
            ] {
                let response = app
                    .request_as(token.as_deref(), method.clone(), &path, Some(&body))
                    .await;
                let problem = assert_problem(response, *status).await;
                assert!(
                    problem.get("errors").is_none(),
                    "{method} {path}: {problem}"
                );
                let detail = problem["detail"].as_str().unwrap();
                assert!(
                    !detail.contains("resolve") && !detail.contains("points at"),
                    "{method} {path} {url}: {detail}"
                );
            }
        }
        // Every other webhook operation, too.
        for (method, path) in [
            (Method::GET, "/api/v1/webhooks".to_owned()),
            (Method::GET, format!("/api/v1/webhooks/{id}")),
            (Method::DELETE, format!("/api/v1/webhooks/{id}")),
            (Method::POST, format!("/api/v1/webhooks/{id}/rotate-secret")),
            (Method::GET, format!("/api/v1/webhooks/{id}/deliveries")),
            (
                Method::GET,
                format!("/api/v1/webhooks/{id}/deliveries/{delivery}"),
            ),
            (
                Method::POST,
                format!("/api/v1/webhooks/{id}/deliveries/{delivery}/retry"),
            ),
        ] {
            let response = app
                .request_as(token.as_deref(), method.clone(), &path, None)
                .await;
            assert_problem(response, *status).await;
        }
    }

    assert_eq!(lookups.load(Ordering::SeqCst), 0, "nothing was resolved");
    assert_eq!(
        app.get_ok("/api/v1/webhooks").await["total"],
        1,
        "nothing stored"
    );
    assert_eq!(
        app.get_ok(&format!("/api/v1/webhooks/{id}")).await,
        hook_before,
        "nothing changed"
    );
    assert_eq!(
        app.get_ok("/api/v1/audit").await["total"],
        audit_before,
        "nothing logged as a change"
    );
    // An admin's request does look the name up: the count above could have moved.
    let refused = app
        .post(
            "/api/v1/webhooks",
            &json!({"url": "http://nonexistent.invalid/", "events": ["round.*"]}),
        )
        .await;
    let problem = assert_problem(refused, 422).await;
    assert_eq!(error_fields(&problem), vec!["url"]);
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("does not resolve"));
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
}

/// A name whose DNS server never answers: refused (422 naming `url`) once the resolver's time is
/// up, looked up on threads of its own, while the service goes on serving.
async fn a_name_that_does_not_resolve_in_time_is_422_naming_url_and_holds_up_nothing(app: TestApp) {
    let threads = Arc::new(Mutex::new(Vec::new()));
    let seen = threads.clone();
    let app = Arc::new(
        spawn_app_with_options(
            app.backend(),
            |_| {},
            move |o| {
                o.webhooks.guard.resolver =
                    Resolver::new(Duration::from_millis(300), move |_, port| {
                        seen.lock()
                            .unwrap()
                            .push(std::thread::current().name().map(str::to_owned));
                        std::thread::sleep(Duration::from_secs(5));
                        Ok(vec![SocketAddr::from(([10, 1, 2, 3], port))])
                    })
            },
        )
        .await
        .unwrap(),
    );
    let started = Instant::now();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..24 {
        let app = app.clone();
        writes.spawn(async move {
            let body = json!({"url": format!("http://slow{i}.example.org/"), "events": ["*"]});
            assert_problem(app.post("/api/v1/webhooks", &body).await, 422).await
        });
    }
    // Meanwhile, reads and writes that need the database are served.
    for i in 0..5 {
        let asked = Instant::now();
        app.department(&format!("Unit {i}")).await;
        assert_eq!(app.get("/api/v1/rounds").await.status(), 200);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
    }

    while let Some(problem) = writes.join_next().await {
        let problem = problem.unwrap();
        assert_eq!(error_fields(&problem), vec!["url"]);
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("did not resolve within 0.3 s"),
            "{message}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "every write answered once its lookup's time was up: {:?}",
        started.elapsed()
    );
    let threads = threads.lock().unwrap().clone();
    assert!(!threads.is_empty());
    assert!(
        threads.iter().all(|t| t.as_deref() == Some("lhs-dns")),
        "looked up on the resolver's own threads, never the blocking pool: {threads:?}"
    );
    assert!(
        threads.len() <= Resolver::THREADS,
        "at most {} lookups at once: {}",
        Resolver::THREADS,
        threads.len()
    );
    assert_eq!(app.get_ok("/api/v1/webhooks").await["total"], 0);
}

/// The guard reads a URL as the client does, and the client connects only to the addresses the
/// guard checked for that attempt: a name that resolves nowhere but in the service's resolver is
/// delivered to, and once it resolves to a metadata address, nothing is sent.
async fn the_guard_judges_the_host_the_client_connects_to_and_the_client_goes_nowhere_else(
    app: TestApp,
) {
    let rebound = Arc::new(AtomicBool::new(false));
    let switch = rebound.clone();
    let names = move |o: &mut lhs_rounds::app::startup::ServeOptions| {
        o.webhooks.guard.resolver = Resolver::new(Duration::from_secs(2), move |name, port| {
            let ip: IpAddr = match name {
                "hooks.invalid" if switch.load(Ordering::SeqCst) => "169.254.169.254",
                "hooks.invalid" => "127.0.0.1",
                "cloud.invalid" => "fd00:ec2::254",
                "mapped.invalid" => "::ffff:127.0.0.1",
                _ => return Err(std::io::Error::other("no such name")),
            }
            .parse()
            .unwrap();
            Ok(vec![SocketAddr::new(ip, port)])
        })
    };
    let strict = spawn_app_with_options(app.backend(), |_| {}, names.clone())
        .await
        .unwrap();
    for url in [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost./",
        "http://ｌｏｃａｌｈｏｓｔ/",
        "http://127.0.0.1\\@10.20.30.40/",
        "http://[fd00:ec2::254]/",
        "http://169.254.170.2/v2/credentials",
        "http://100.100.100.200/",
        "http://metadata.google.internal/",
        "http://hooks.invalid/",
        "http://cloud.invalid/",
        "http://mapped.invalid/",
    ] {
        let response = strict
            .post("/api/v1/webhooks", &json!({"url": url, "events": ["*"]}))
            .await;
        assert_eq!(
            error_fields(&assert_problem(response, 422).await),
            vec!["url"],
            "{url}"
        );
    }
    assert_eq!(strict.get_ok("/api/v1/webhooks").await["total"], 0);

    let app = spawn_app_with_options(
        app.backend(),
        |s| {
            s.webhook_allowed_hosts = "127.0.0.1".into();
            s.webhook_retry_schedule = "100ms".into();
        },
        names,
    )
    .await
    .unwrap();
    let receiver = Receiver::start(&[]).await;
    let url = format!("http://hooks.invalid:{}/hook", receiver.port);
    let hook = register(&app, &url, json!(["department.*"])).await;
    app.department("Clinical Informatics").await;
    let got = receiver.wait_for(1, 20).await;
    assert_eq!(got.len(), 1, "delivered to the address the guard checked");
    assert_eq!(got[0].path, "/hook");
    assert_eq!(
        got[0].headers["host"],
        format!("hooks.invalid:{}", receiver.port)
    );

    rebound.store(true, Ordering::SeqCst);
    app.department("Operations Excellence").await;
    let path = format!("/api/v1/webhooks/{}/deliveries", id_of(&hook));
    let listed = deliveries_settled(&app, &path, &["failed", "delivered"]).await;
    let attempts = app
        .get_ok(&format!("{path}/{}", listed["items"][0]["id"]))
        .await["attempt_log"]
        .clone();
    assert_eq!(
        attempts.as_array().unwrap().len(),
        2,
        "tried, then retried once"
    );
    for attempt in attempts.as_array().unwrap() {
        assert_eq!(attempt["status_code"], Value::Null);
        let error = attempt["error"].as_str().unwrap();
        assert!(
            error.contains("not sent") && error.contains("169.254.169.254"),
            "{error}"
        );
    }
    assert_eq!(receiver.received().len(), 1, "nothing sent once it rebound");
}

/// A POST of a webhook with an `Idempotency-Key`: the key keeps the answer without the secret,
/// which a replay reads back from the webhook's row while the webhook is as the POST made it;
/// after a rotation the replay is 409, after a deletion 410, and neither shows a secret.
async fn a_replayed_creation_never_shows_a_secret_after_rotation_or_deletion(app: TestApp) {
    let app = hooked(&app).await;
    let create = |key: &'static str| {
        app.client
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(app.admin_token.as_deref().unwrap())
            .header("idempotency-key", key)
            .json(&json!({"url": "https://10.20.30.40/hook", "events": ["round.*"]}))
            .send()
    };
    let kept = || {
        read_db(&app, |conn| {
            use diesel::prelude::*;
            use lhs_rounds::platform::schema::idempotency_keys;
            lhs_rounds::on_backend!(conn, |c| idempotency_keys::table
                .select(idempotency_keys::body)
                .load::<String>(c))
            .unwrap()
        })
    };

    let first = create("hook-one").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let secret = first["secret"].as_str().unwrap().to_owned();
    let stored = kept().await;
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].contains(&secret) && !stored[0].contains("whsec_"),
        "{stored:?}"
    );

    let replayed = create("hook-one").await.unwrap();
    assert_eq!(replayed.status(), 201);
    assert_eq!(replayed.headers()["idempotency-replayed"], "true");
    assert_eq!(
        replayed.json::<Value>().await.unwrap(),
        first,
        "the same answer, secret included"
    );
    assert_eq!(app.get_ok("/api/v1/webhooks").await["total"], 1);

    let path = format!("/api/v1/webhooks/{}", id_of(&first));
    let rotated: Value = app
        .post(&format!("{path}/rotate-secret"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let refused = create("hook-one").await.unwrap();
    let text = refused.text().await.unwrap();
    assert!(text.contains("\"status\":409"), "{text}");
    assert!(!text.contains(&secret) && !text.contains(&new_secret) && !text.contains("whsec_"));

    let second: Value = create("hook-two").await.unwrap().json().await.unwrap();
    let second_secret = second["secret"].as_str().unwrap().to_owned();
    let deleted = app
        .delete(&format!("/api/v1/webhooks/{}", id_of(&second)))
        .await;
    assert_eq!(deleted.status(), 204);
    let gone = create("hook-two").await.unwrap();
    let problem = assert_problem(gone, 410).await;
    assert!(!problem.to_string().contains("whsec_"), "{problem}");

    let stored = kept().await;
    assert_eq!(stored.len(), 2);
    for body in &stored {
        for s in [&secret, &new_secret, &second_secret] {
            assert!(
                !body.contains(s.as_str()),
                "a secret kept with a key: {body}"
            );
        }
    }
    assert_eq!(
        app.get_ok("/api/v1/webhooks").await["total"],
        1,
        "no replay made a webhook"
    );
}

/// `webhook-id` is `msg_`, a UUIDv7 of the change and the webhook's id: the same on every attempt
/// of a message, never the same for two messages, stored with the message (and shown in its
/// delivery), and new even when the database hands out row ids it handed out before, as after a
/// restore from a backup.
async fn message_ids_are_random_the_same_on_every_attempt_and_unique_after_a_restore(app: TestApp) {
    let app = hooked(&app).await;
    let steady = Receiver::start(&[]).await;
    let flaky = Receiver::start(&[500]).await;
    let one = register(&app, &steady.url, json!(["department.*"])).await;
    let two = register(&app, &flaky.url, json!(["department.*"])).await;

    app.department("Clinical Informatics").await;
    let steady_got = steady.wait_for(1, 20).await;
    let flaky_got = flaky.wait_for(2, 20).await;

    let (a, b) = (steady_got[0].id().to_owned(), flaky_got[0].id().to_owned());
    assert_eq!(flaky_got[1].id(), b, "the same id on every attempt");
    assert_ne!(a, b, "one id per message");
    for (id, hook) in [(&a, &one), (&b, &two)] {
        let rest = id.strip_prefix("msg_").unwrap();
        let (uuid, webhook) = rest.split_once('_').unwrap();
        assert_eq!(uuid.len(), 32, "{id}");
        assert!(uuid.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(&uuid[12..13], "7", "a UUIDv7: {id}");
        assert_eq!(webhook, id_of(hook).to_string());
    }
    let listed = deliveries_settled(
        &app,
        &format!("/api/v1/webhooks/{}/deliveries", id_of(&two)),
        &["delivered"],
    )
    .await;
    assert_eq!(listed["items"][0]["message_id"], b.as_str());
    let before = message_rows(&app).await;

    // As if restored from a backup taken before those messages: their rows are gone, and the
    // database hands out the same row ids again.
    let backend = app.backend();
    read_db(&app, move |conn| {
        use diesel::RunQueryDsl;
        let statements: &[&str] = match backend {
            Backend::Sqlite => &[
                "DELETE FROM webhook_messages",
                "UPDATE sqlite_sequence SET seq = 0 WHERE name = 'webhook_messages'",
            ],
            Backend::Postgres => &[
                "DELETE FROM webhook_messages",
                "SELECT setval(pg_get_serial_sequence('webhook_messages', 'id'), 1, false)",
            ],
        };
        for sql in statements {
            diesel::sql_query(*sql).execute(conn).unwrap();
        }
    })
    .await;
    app.department("Operations Excellence").await;
    steady.wait_for(2, 20).await;
    let after = message_rows(&app).await;

    let ids = |rows: &[(i64, String)]| rows.iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(
        ids(&after),
        ids(&before),
        "the same row ids, handed out again"
    );
    for (_, id) in &after {
        assert!(
            before.iter().all(|(_, old)| old != id),
            "{id} was sent before the restore"
        );
    }
    let received: Vec<String> = steady
        .received()
        .iter()
        .chain(flaky.received().iter())
        .map(|m| m.id().to_owned())
        .collect();
    assert!(received.contains(&after[0].1) || received.contains(&after[1].1));
}

/// Every message's row id and `webhook-id`, by row id.
async fn message_rows(app: &TestApp) -> Vec<(i64, String)> {
    read_db(app, |conn| {
        use diesel::prelude::*;
        use lhs_rounds::platform::schema::webhook_messages;
        lhs_rounds::on_backend!(conn, |c| webhook_messages::table
            .order(webhook_messages::id)
            .select((webhook_messages::id, webhook_messages::message_id))
            .load::<(i64, String)>(c))
        .unwrap()
    })
    .await
}

/// `GET /webhooks/{id}/deliveries/{delivery_id}` shows every attempt of a message, the failed
/// ones too: when, the receiver's status code, the error and how long it took.
async fn every_attempt_of_a_delivery_is_shown_with_its_time_status_error_and_duration(
    app: TestApp,
) {
    let app = hooked(&app).await;
    let receiver = Receiver::start(&[500, 503]).await;
    let hook = register(&app, &receiver.url, json!(["department.*"])).await;
    let other = register(&app, "https://10.20.30.40/hook", json!(["speaker.*"])).await;
    let path = format!("/api/v1/webhooks/{}/deliveries", id_of(&hook));

    app.department("Clinical Informatics").await;
    let got = receiver.wait_for(3, 20).await;
    let listed = deliveries_settled(&app, &path, &["delivered"]).await;
    let id = listed["items"][0]["id"].clone();
    let response = app.get(&format!("{path}/{id}")).await;

    assert_eq!(response.status(), 200);
    let delivery: Value = response.json().await.unwrap();
    assert_eq!(delivery["id"], id);
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["message_id"], got[0].id());
    let log = delivery["attempt_log"].as_array().unwrap();
    let codes: Vec<&Value> = log.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(204)]);
    let errors: Vec<&Value> = log.iter().map(|a| &a["error"]).collect();
    assert_eq!(
        errors,
        [&json!("answered 500"), &json!("answered 503"), &Value::Null]
    );
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = log
        .iter()
        .map(|a| chrono::DateTime::parse_from_rfc3339(a["attempted_at"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {times:?}"
    );
    assert!(log.iter().all(|a| a["duration_ms"]
        .as_i64()
        .is_some_and(|ms| (0..10_000).contains(&ms))));

    for missing in [
        format!("{path}/2147483647"),
        format!("/api/v1/webhooks/2147483647/deliveries/{id}"),
        format!("/api/v1/webhooks/{}/deliveries/{id}", id_of(&other)),
    ] {
        assert_problem(app.get(&missing).await, 404).await;
    }
}

/// Delivered and failed messages whose last attempt is older than the retention are purged with
/// their attempts; pending ones stay, however old.
async fn settled_messages_past_the_retention_are_purged_and_pending_ones_kept(app: TestApp) {
    use lhs_rounds::integration::webhooks;
    let app = spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
        s.webhook_retry_schedule = "100ms".into();
    })
    .await
    .unwrap();
    let ok = Receiver::start(&[]).await;
    let failing = Receiver::start(&[500; 20]).await;
    let delivered = register(&app, &ok.url, json!(["department.*"])).await;
    let failed = register(&app, &failing.url, json!(["department.*"])).await;
    let pending = register(&app, &hanging_receiver().await, json!(["department.*"])).await;
    let list = |hook: &Value| format!("/api/v1/webhooks/{}/deliveries", id_of(hook));
    for name in ["Clinical Informatics", "Nursing Research", "Quality"] {
        app.department(name).await;
    }
    deliveries_settled(&app, &list(&delivered), &["delivered"; 3]).await;
    deliveries_settled(&app, &list(&failed), &["failed"; 3]).await;
    let purge = |retention: Duration, batch: i64| {
        read_db(&app, move |conn| {
            webhooks::purge_in_batches(conn, retention, batch).unwrap()
        })
    };
    let attempts = || {
        read_db(&app, |conn| {
            use diesel::prelude::*;
            use lhs_rounds::platform::schema::webhook_attempts;
            lhs_rounds::on_backend!(conn, |c| webhook_attempts::table
                .select(webhook_attempts::message_id)
                .load::<i64>(c))
            .unwrap()
        })
    };
    assert!(
        attempts().await.len() >= 9,
        "3 delivered once, 3 failed twice"
    );

    assert_eq!(
        purge(Duration::from_secs(3600), 2).await,
        0,
        "all within an hour"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let purged = purge(Duration::from_secs(1), 2).await;

    assert_eq!(purged, 6, "the delivered and the failed, two at a time");
    assert_eq!(app.get_ok(&list(&delivered)).await["total"], 0);
    assert_eq!(app.get_ok(&list(&failed)).await["total"], 0);
    let kept = app.get_ok(&list(&pending)).await;
    assert_eq!(kept["total"], 3, "{kept}");
    let kept_ids: Vec<i64> = kept["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert!(
        attempts().await.iter().all(|m| kept_ids.contains(m)),
        "the purged messages' attempts went with them"
    );
    assert_eq!(purge(Duration::from_secs(1), 2).await, 0);
}

/// Two replicas share the outbox: every message reaches its receiver once per attempt (as many
/// times as the deliveries list counts attempts), and each receiver gets its messages in the
/// order of the changes, retries included.
async fn two_replicas_deliver_each_message_once_per_attempt_in_order(app: TestApp) {
    let fast = |s: &mut Settings| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
        s.webhook_retry_schedule = "50ms,50ms,50ms".into();
    };
    let a = Arc::new(spawn_app_with(app.backend(), fast).await.unwrap());
    let b = Arc::new(spawn_replica_with(&a, fast).await);
    let receivers = [
        Receiver::start(&[500, 204, 204, 503, 204, 204, 500]).await,
        Receiver::start(&[]).await,
        Receiver::start(&[204, 500]).await,
        Receiver::start(&[]).await,
    ];
    let mut hooks = Vec::new();
    for receiver in &receivers {
        hooks.push(id_of(
            &register(&a, &receiver.url, json!(["department.*"])).await,
        ));
    }
    const CHANGES: usize = 40;

    let mut writers = tokio::task::JoinSet::new();
    for (n, replica) in [a.clone(), b.clone()].into_iter().enumerate() {
        writers.spawn(async move {
            for i in 0..CHANGES / 2 {
                replica.department(&format!("Unit {n}-{i}")).await;
            }
        });
    }
    while writers.join_next().await.is_some() {}

    for (receiver, hook) in receivers.iter().zip(&hooks) {
        let path = format!("/api/v1/webhooks/{hook}/deliveries?limit=100");
        let listed = deliveries_settled(&a, &path, &["delivered"; CHANGES]).await;
        let items = listed["items"].as_array().unwrap();
        let attempts: HashMap<&str, i64> = items
            .iter()
            .map(|d| {
                (
                    d["message_id"].as_str().unwrap(),
                    d["attempts"].as_i64().unwrap(),
                )
            })
            .collect();
        let seq: HashMap<&str, i64> = items
            .iter()
            .map(|d| {
                (
                    d["message_id"].as_str().unwrap(),
                    d["change_seq"].as_i64().unwrap(),
                )
            })
            .collect();
        // The last answers are recorded a moment after the receiver has them.
        let expected: i64 = attempts.values().sum();
        let got = receiver.wait_for(expected as usize, 10).await;
        let mut counted: HashMap<&str, i64> = HashMap::new();
        for message in &got {
            *counted.entry(message.id()).or_default() += 1;
        }
        assert_eq!(counted, attempts, "webhook {hook}: once per attempt");
        let order: Vec<i64> = got.iter().map(|m| seq[m.id()]).collect();
        assert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "webhook {hook}: in the order of the changes: {order:?}"
        );
    }
}

/// A service process on a SQLite file, with webhooks allowed to this machine.
fn start_service(database: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lhs-rounds"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database)
        .env("LHS_JWT_SECRET", SECRET)
        .env("LHS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
        .env(
            "LHS_WEBHOOK_RETRY_SCHEDULE",
            "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts")
}

async fn wait_until_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the service did not become ready");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The message is in the outbox, written with the change: killing the process before it is
/// delivered loses nothing; the restarted process delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_survives_the_process_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("killed.db");
    let (port, receiver_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let token = {
        let mut settings = lhs_rounds::platform::config::Settings::for_database("unused.db");
        settings.jwt_secret = Some(SECRET.to_owned());
        lhs_rounds::platform::auth::Auth::from_settings(&settings)
            .unwrap()
            .mint(
                "admin@example.org",
                &[Role::Admin],
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let mut service = start_service(&database, port);
    wait_until_ready(&client, &base).await;
    // The receiver is not listening yet: nothing can be delivered before the kill.
    let hook = format!("http://127.0.0.1:{receiver_port}/hook");
    let registered = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": hook, "events": ["round.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let created = client
        .post(format!("{base}/api/v1/rounds"))
        .bearer_auth(&token)
        .json(&json!({"title": "Survives", "starts_at": "2027-01-21T17:00:00Z", "ends_at": "2027-01-21T18:00:00Z", "location": "Room 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    service.kill().expect("SIGKILL");
    service.wait().expect("the process ended");
    let receiver = Receiver::start_on(receiver_port, &[]).await;
    let mut restarted = start_service(&database, port);
    wait_until_ready(&client, &base).await;

    let got = receiver.wait_for(1, 30).await;
    let _ = restarted.kill();
    let _ = restarted.wait();
    assert_eq!(got.len(), 1, "the message arrived after the restart");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "round.created");
    assert_eq!(body["data"]["title"], "Survives");
}
