//! SIGTERM under steady load: not ready at once, served through the grace, then refused; no
//! request that was accepted fails; exit code 0.

use std::time::{Duration, Instant};

use crate::load::{some, Load, Mix};
use crate::server::{admin_token, Server};
use crate::{assert_all_kept, query_ids, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_steady_load_fails_no_accepted_request_and_exits_0() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let log = dir.path().join("server.log");
    let mut server = Server::start(
        &database,
        &log,
        &[
            ("LHS_SHUTDOWN_GRACE", "2s"),
            ("LHS_SHUTDOWN_TIMEOUT", "10s"),
        ],
    )
    .await;
    let token = admin_token("ops-admin");
    let load = Load::start(&server.address, &token, 4, Mix::Feedback, &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let signalled = Instant::now();
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready as soon as the signal came");
    assert_eq!(ready.headers()["content-type"], "application/problem+json");
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(30));
        (status, server)
    });
    let (status, server) = exit.await.unwrap();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tally = load.stop().await;

    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert!(
        tally.failures.is_empty(),
        "{} accepted requests failed:\n{}",
        tally.failures.len(),
        some(&tally.failures)
    );
    // The listener closes after the grace (2 s); a connection that was waiting in the kernel's
    // accept queue at that moment is reset by the kernel without the service ever reading it.
    // Load balancers stopped sending by then: that is what the grace is for.
    let closed = signalled + Duration::from_millis(1900);
    assert!(
        tally.resets.iter().all(|at| *at > closed),
        "a connection was reset while the service was still accepting"
    );
    let during_grace = tally.successes_after(signalled + Duration::from_millis(500));
    assert!(
        during_grace > 0,
        "requests are still served during the grace"
    );
    assert!(
        tally.refused > 0,
        "new connections are refused once the listener is closed"
    );
    assert_eq!(
        tally.successes_after(stopped),
        0,
        "nothing is served after the exit"
    );
    let stored = query_ids(&database, "SELECT CAST(id AS BIGINT) AS id FROM feedback");
    assert_all_kept("feedback", &tally.feedback, &stored);
    let log = server.log_text();
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}
