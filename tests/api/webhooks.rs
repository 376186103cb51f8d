//! Signed webhooks (Standard Webhooks): configuration, delivery, retries, and a message that
//! survives the process being killed. (The official `standardwebhooks` Python package verifies
//! the signatures in `scripts/contract-test`.)

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{
    assert_problem, error_fields, id_of, spawn_app_with, Receiver, TestApp, SECRET,
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
    a_receiver_that_hangs_or_answers_10_mb_does_not_hold_up_the_others,
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
        "http://169.254.169.254/latest/meta-data",
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
