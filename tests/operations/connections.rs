//! How the service reaches PostgreSQL: one driver (libpq), so every URL libpq accepts works,
//! TLS, a password in the URL and a password file among them, and the start-up log says so.

use std::time::Duration;

use diesel::{Connection, RunQueryDsl};

use crate::serial;
use crate::server::Server;

/// The role and password the service logs in with (`:` and `@` must be escaped in a URL, and
/// `:` in a password file).
const ROLE: &str = "rounds_app";
const PASSWORD: &str = "s3cr3t:p@ss";
const PASSWORD_IN_URL: &str = "s3cr3t%3Ap%40ss";

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// How many of the role's sessions use TLS, and how many do not.
fn sessions_of_the_role(admin_url: &str) -> (i64, i64) {
    let mut admin = diesel::PgConnection::establish(admin_url).unwrap();
    let mut count = |ssl: bool| {
        diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_stat_activity AS a JOIN pg_stat_ssl AS s USING (pid) \
             WHERE a.usename = '{ROLE}' AND s.ssl = {ssl}"
        ))
        .get_result::<Count>(&mut admin)
        .unwrap()
        .n
    };
    (count(true), count(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_a_password_in_the_url_and_a_password_file_all_reach_postgres() {
    let _turn = serial().await;
    let Some(cluster) = dedicated_cluster_secured() else {
        return;
    };
    let mut admin = diesel::PgConnection::establish(&cluster.admin_url).unwrap();
    for sql in [
        format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"),
        format!("CREATE DATABASE rounds_tls OWNER {ROLE}"),
    ] {
        diesel::sql_query(sql).execute(&mut admin).unwrap();
    }
    let port = cluster
        .admin_url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();

    // A password in the URL, over TLS.
    let url =
        format!("postgres://{ROLE}:{PASSWORD_IN_URL}@127.0.0.1:{port}/rounds_tls?sslmode=require");
    let server = Server::start(&url, &dir.path().join("url.log"), &[]).await;
    let (tls, plain) = sessions_of_the_role(&cluster.admin_url);
    assert!(tls > 0 && plain == 0, "TLS sessions {tls}, plain {plain}");
    assert!(
        server.log_text().contains("libpq"),
        "the start-up log says what runs where: {}",
        server.log_text()
    );
    assert!(
        !server.log_text().contains(PASSWORD) && !server.log_text().contains(PASSWORD_IN_URL),
        "the password stays out of the log"
    );
    drop(server);

    // No password in the URL: libpq reads PGPASSFILE (which it ignores unless only its owner
    // may read it).
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "127.0.0.1:{port}:rounds_tls:{ROLE}:{}\n",
            PASSWORD.replace(':', "\\:")
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let url = format!("postgres://{ROLE}@127.0.0.1:{port}/rounds_tls?sslmode=require");
    let passfile = passfile.display().to_string();
    let server = Server::start(
        &url,
        &dir.path().join("passfile.log"),
        &[("PGPASSFILE", passfile.as_str())],
    )
    .await;
    let answer = reqwest::get(server.url("/api/v1/rounds")).await.unwrap();
    assert_eq!(answer.status(), 200);
    drop(server);

    // Without the password file, the same URL is refused at start-up, and the error says why.
    let mut refused = Server::spawn(
        &url,
        &dir.path().join("refused.log"),
        &[("LHS_DB_CONNECT_TIMEOUT", "1s")],
    );
    let status = refused.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        refused.log_text().contains("password"),
        "{}",
        refused.log_text()
    );
}

/// A cluster of the test's own with TLS and password logins (see `Cluster::start_secured`).
fn dedicated_cluster_secured() -> Option<crate::postgres::Cluster> {
    match crate::postgres::Cluster::start_secured("tls") {
        Ok(cluster) => Some(cluster),
        Err(reason) => {
            crate::postgres_unavailable(&reason);
            None
        }
    }
}
