//! PostgreSQL going away and coming back, missing at start, and shared by two replicas.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::load::{some, Load, Mix, Tally};
use crate::postgres::Cluster;
use crate::server::{admin_token, free_port, Server};
use crate::{
    assert_all_kept, database_name, dedicated_cluster, query_ids, serial, shared_cluster, speakers,
};

/// Runs one of the cluster's `pg_ctl` steps (which wait for the server) off the async threads.
async fn on_cluster(cluster: &Arc<Cluster>, step: fn(&Cluster) -> Result<(), String>) {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || step(&cluster))
        .await
        .expect("the pg_ctl step ran")
        .expect("pg_ctl did what it was asked");
}

/// Every failure `tally` holds is a 503 problem+json answered within 5 s.
fn assert_only_quick_503s(tally: &Tally) {
    assert!(
        tally.unanswered.is_empty(),
        "connections were closed unanswered"
    );
    for failure in &tally.failures {
        assert!(
            failure.status == Some(503) && failure.problem_json,
            "only 503 problem+json while the database is away, got {failure}"
        );
        assert!(
            failure.took < Duration::from_secs(5),
            "a request failed only after {:?}: {failure}",
            failure.took
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_mid_load_gives_quick_503s_then_heals_without_losing_acknowledged_writes(
) {
    let _turn = serial().await;
    let Some(cluster) = dedicated_cluster("restart") else {
        return;
    };
    let url = cluster.create_database("restarted").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&url, &dir.path().join("server.log"), &[]).await;
    let token = admin_token("ops-admin");
    let panel = speakers(&server, &token, 2).await;
    let load = Load::start(&server.address, &token, 4, Mix::Everything, &panel);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // `pg_ctl restart -m fast` under load.
    let cluster = Arc::new(cluster);
    on_cluster(&cluster, Cluster::restart_fast).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A longer outage, to look at while it lasts.
    on_cluster(&cluster, Cluster::stop_fast).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let asked = Instant::now();
    let ready = probe.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the database is away");
    assert!(asked.elapsed() < Duration::from_secs(5));
    let asked = Instant::now();
    let write = probe
        .post(server.url("/api/v1/feedback"))
        .bearer_auth(&token)
        .json(&json!({"kind": "general", "comment": "during the outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 503);
    assert_eq!(write.headers()["content-type"], "application/problem+json");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    on_cluster(&cluster, Cluster::start_again).await;
    let back = Instant::now();
    let recovered = loop {
        let answer = probe.get(server.url("/api/v1/rounds?limit=1")).send().await;
        if answer.is_ok_and(|a| a.status() == 200) {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no success within 10 s of PostgreSQL coming back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "PostgreSQL back -> first success: {} ms",
        recovered.as_millis()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tally = load.stop().await;

    assert_only_quick_503s(&tally);
    assert!(
        tally
            .failures
            .iter()
            .all(|f| f.at < back + Duration::from_secs(10)),
        "failures went on after PostgreSQL came back"
    );
    assert!(tally.successes_after(back) > 0, "it serves again");
    assert!(!tally.failures.is_empty(), "the outage was seen");
    let ready = probe.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let feedback = query_ids(&url, "SELECT CAST(id AS BIGINT) AS id FROM feedback");
    assert_all_kept("feedback", &tally.feedback, &feedback);
    let rounds = query_ids(&url, "SELECT CAST(id AS BIGINT) AS id FROM rounds");
    let acknowledged: Vec<i64> = tally.rounds.iter().map(|(id, _)| *id).collect();
    assert_all_kept("rounds", &acknowledged, &rounds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_at_start_is_retried_then_named_without_the_password() {
    let _turn = serial().await;
    let port = free_port();
    let url = format!("postgres://lhs:N0t-In-Logs-Pw@127.0.0.1:{port}/rounds");
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::spawn(
        &url,
        &dir.path().join("server.log"),
        &[("LHS_DB_CONNECT_TIMEOUT", "3s")],
    );
    let started = Instant::now();
    let (status, server) = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(30));
        (status, server)
    })
    .await
    .unwrap();
    let log = server.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it kept trying for LHS_DB_CONNECT_TIMEOUT: {log}"
    );
    assert!(log.contains("retrying"), "{log}");
    assert!(
        log.contains(&format!("127.0.0.1:{port}")),
        "names the host: {log}"
    );
    assert!(log.contains("Connection refused"), "names the cause: {log}");
    assert!(!log.contains("N0t-In-Logs-Pw"), "never the password: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_migrate_once_and_see_each_others_writes() {
    let _turn = serial().await;
    let Some(cluster) = shared_cluster() else {
        return;
    };
    let url = cluster.create_database(&database_name("replicas")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Started together: both find the database unmigrated.
    let a = Server::spawn(&url, &dir.path().join("a.log"), &[]);
    let b = Server::spawn(&url, &dir.path().join("b.log"), &[]);
    a.wait_ready(Duration::from_secs(60)).await;
    b.wait_ready(Duration::from_secs(60)).await;
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count() as i64;
    let recorded = query_ids(
        &url,
        "SELECT CAST(count(*) AS BIGINT) AS id FROM __diesel_schema_migrations",
    );
    assert_eq!(recorded, vec![migrations], "each migration ran once");

    let token = admin_token("ops-admin");
    let panel = speakers(&a, &token, 2).await;
    let through_a = Load::start(&a.address, &token, 2, Mix::Everything, &panel);
    let through_b = Load::start(&b.address, &token, 2, Mix::Everything, &panel);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut tally, other) = (through_a.stop().await, through_b.stop().await);
    tally.feedback.extend(other.feedback);
    tally.rounds.extend(other.rounds);
    assert!(tally.failures.is_empty(), "{}", some(&tally.failures));
    assert!(
        tally.unanswered.is_empty(),
        "connections were closed unanswered"
    );
    assert!(other.failures.is_empty(), "{}", some(&other.failures));
    let feedback = query_ids(&url, "SELECT CAST(id AS BIGINT) AS id FROM feedback");
    assert_all_kept("feedback", &tally.feedback, &feedback);
    assert_eq!(
        feedback.len(),
        tally.feedback.len(),
        "nothing written twice"
    );
    let rounds = query_ids(&url, "SELECT CAST(id AS BIGINT) AS id FROM rounds");
    assert_eq!(rounds.len(), tally.rounds.len());

    // A write through one replica is visible through the other on its next read, although
    // that one has the answer in its read cache.
    let client = reqwest::Client::new();
    let list = |server: &Server| {
        client
            .get(server.url("/api/v1/rounds?limit=1"))
            .bearer_auth(&token)
            .send()
    };
    let before: Value = list(&b).await.unwrap().json().await.unwrap();
    let _cached: Value = list(&b).await.unwrap().json().await.unwrap();
    let created: Value = client
        .post(a.url("/api/v1/rounds"))
        .bearer_auth(&token)
        .json(&json!({
            "starts_at": "2033-05-19T16:00:00Z",
            "ends_at": "2033-05-19T17:00:00Z",
            "location": "Hospital B, room 2",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let after: Value = list(&b).await.unwrap().json().await.unwrap();
    assert_eq!(
        after["total"].as_i64(),
        before["total"].as_i64().map(|t| t + 1)
    );
    let path = format!("/api/v1/rounds/{}", created["id"]);
    let seen_by_a: Value = client
        .get(a.url(&path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen_by_a["title"], Value::Null);
    let patched = client
        .patch(b.url(&path))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"title": "Renamed through B"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let seen_by_a: Value = client
        .get(a.url(&path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen_by_a["title"], "Renamed through B");
}
