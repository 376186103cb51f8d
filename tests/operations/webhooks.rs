//! Webhook deliveries shared by two replicas on one PostgreSQL: a replica killed in the middle
//! of a delivery loses nothing, and the other sends the message again once its lease runs out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::receiver::Receiver;
use crate::server::{admin_token, Server};
use crate::{database_name, serial, shared_cluster};

/// How long a claimed message is left to the replica that claimed it (the service's lease).
const LEASE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_delivery_loses_nothing_and_the_other_delivers_after_the_lease() {
    let _turn = serial().await;
    let Some(cluster) = shared_cluster() else {
        return;
    };
    let url = cluster.create_database(&database_name("webhooks")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LHS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
        ("LHS_WEBHOOK_RETRY_SCHEDULE", "1s,1s,1s"),
    ];
    // The receiver takes its first message and never answers: the replica delivering it is
    // killed meanwhile.
    let receiver = Receiver::start(&[0]).await;
    let mut a = Server::start(&url, &dir.path().join("a.log"), &env).await;
    let token = admin_token("ops-admin");
    let client = reqwest::Client::new();
    let post = |server: &Server, path: &str, body: Value| {
        client
            .post(server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let hook: Value = post(
        &a,
        "/api/v1/webhooks",
        json!({"url": receiver.url, "events": ["department.*"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    for i in 0..5 {
        let made = post(
            &a,
            "/api/v1/departments",
            json!({"name": format!("Before {i}")}),
        )
        .await
        .unwrap();
        assert_eq!(made.status(), 201);
    }
    let first = receiver.wait_for(1, 20).await;
    assert_eq!(first.len(), 1, "replica A is delivering the first message");
    let b = Server::start(&url, &dir.path().join("b.log"), &env).await;

    a.signal("KILL");
    a.wait_exit(Duration::from_secs(10));
    for i in 0..2 {
        let made = post(
            &b,
            "/api/v1/departments",
            json!({"name": format!("After {i}")}),
        )
        .await
        .unwrap();
        assert_eq!(made.status(), 201);
    }
    let got = receiver.wait_for(8, 90).await;

    assert_eq!(
        got.len(),
        8,
        "the first message twice, then the six others: {got:?}"
    );
    assert_eq!(
        got[1].id(),
        got[0].id(),
        "the killed attempt's message, sent again"
    );
    assert_eq!(got[1].body, got[0].body);
    assert!(
        got[1].at.duration_since(got[0].at) >= LEASE - Duration::from_secs(5),
        "sent again only once the lease ran out: {:?}",
        got[1].at.duration_since(got[0].at)
    );
    let path = format!("/api/v1/webhooks/{}/deliveries?limit=100", hook["id"]);
    let mut listed = Value::Null;
    let asked = Instant::now();
    while asked.elapsed() < Duration::from_secs(20) {
        listed = client
            .get(b.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|d| d["status"] == "delivered"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 7, "every change has its message: {listed}");
    assert!(
        items.iter().all(|d| d["status"] == "delivered"),
        "nothing lost: {listed}"
    );
    // Newest first in the list; the receiver got them oldest first, each once after the first.
    let in_order: Vec<&str> = items
        .iter()
        .rev()
        .map(|d| d["message_id"].as_str().unwrap())
        .collect();
    let received: Vec<&str> = got[1..].iter().map(|m| m.id()).collect();
    assert_eq!(received, in_order, "in the order of the changes");
    let mut counted: HashMap<&str, usize> = HashMap::new();
    for id in &received {
        *counted.entry(id).or_default() += 1;
    }
    assert!(counted.values().all(|n| *n == 1));
}
