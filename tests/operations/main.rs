//! Operations tests: the real binary started, loaded, signalled, killed, backed up, and its
//! database stopped under it, as operators and their faults would. Each test is bounded in time,
//! and they take turns ([`serial`]) so that one test's load does not slow another's clock.

// A panic is how a test fails: unwrapping here is the point, unlike in the service.
#![allow(clippy::unwrap_used)]

mod load;
#[path = "../common/postgres.rs"]
mod postgres;
#[path = "../common/receiver.rs"]
mod receiver;
mod server;

mod backups;
mod connections;
mod identity_provider;
mod logs;
mod materials;
mod postgres_faults;
mod rate_limits;
mod shutdown;
mod slow_clients;
mod sqlite_faults;
mod webhooks;

use std::sync::OnceLock;

use diesel::{Connection, RunQueryDsl};
use serde_json::json;

use postgres::Cluster;
use server::Server;

/// Held for the whole of a test: one test at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// PostgreSQL is required in CI (a missing server fails the test); elsewhere a test that needs it
/// says loudly that it skips.
fn postgres_unavailable(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL is required in CI but unavailable: {reason}");
    }
    eprintln!(
        "\n!!!! SKIPPING this PostgreSQL test: {reason}\n\
         !!!! (install the postgresql package; in CI this fails)\n"
    );
}

/// The cluster shared by the tests that do not stop it.
pub fn shared_cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| Cluster::start("operations")) {
        Ok(cluster) => Some(cluster),
        Err(reason) => {
            postgres_unavailable(reason);
            None
        }
    }
}

/// A cluster of the test's own, for a test that stops or restarts it.
pub fn dedicated_cluster(name: &str) -> Option<Cluster> {
    match Cluster::start(name) {
        Ok(cluster) => Some(cluster),
        Err(reason) => {
            postgres_unavailable(&reason);
            None
        }
    }
}

/// A unique database name for this process.
pub fn database_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

/// The rows `sql` selects, read straight from the database at `url`.
fn query_rows<T>(url: &str, sql: &str) -> Vec<T>
where
    T: diesel::QueryableByName<diesel::pg::Pg>
        + diesel::QueryableByName<diesel::sqlite::Sqlite>
        + 'static,
{
    if url.starts_with("postgres") {
        let mut conn = diesel::PgConnection::establish(url).expect("connect to PostgreSQL");
        diesel::sql_query(sql)
            .load(&mut conn)
            .expect("the query runs")
    } else {
        let mut conn = diesel::SqliteConnection::establish(url).expect("open the SQLite file");
        diesel::sql_query(sql)
            .load(&mut conn)
            .expect("the query runs")
    }
}

/// The integers `sql` selects (as `id`), read straight from the database at `url`.
pub fn query_ids(url: &str, sql: &str) -> Vec<i64> {
    query_rows::<Id>(url, sql)
        .into_iter()
        .map(|row| row.id)
        .collect()
}

/// The strings `sql` selects (as `text`), read straight from the database at `url`.
pub fn query_strings(url: &str, sql: &str) -> Vec<String> {
    query_rows::<Text>(url, sql)
        .into_iter()
        .map(|row| row.text)
        .collect()
}

/// `n` speakers created through the API; their ids.
pub async fn speakers(server: &Server, token: &str, n: usize) -> Vec<i64> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let response = client
            .post(server.url("/api/v1/speakers"))
            .bearer_auth(token)
            .json(&json!({"full_name": format!("Load Speaker {i}"), "credentials": ["MD"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let record: serde_json::Value = response.json().await.unwrap();
        ids.push(record["id"].as_i64().unwrap());
    }
    ids
}

/// Asserts that every id in `acknowledged` is in `stored`.
pub fn assert_all_kept(what: &str, acknowledged: &[i64], stored: &[i64]) {
    let stored: std::collections::HashSet<i64> = stored.iter().copied().collect();
    let lost: Vec<i64> = acknowledged
        .iter()
        .copied()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged {what} were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}
