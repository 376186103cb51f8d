//! SQLite under SIGKILL: whatever was acknowledged survives, and nothing is half-written.

use std::time::Duration;

use crate::load::{Load, Mix};
use crate::server::{admin_token, run_command, Server};
use crate::{assert_all_kept, query_ids, serial, speakers};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_write_load_loses_no_acknowledged_write_and_leaves_no_half_written_round() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let log = dir.path().join("server.log");
    let server = Server::start(&database, &log, &[]).await;
    let token = admin_token("ops-admin");
    let panel = speakers(&server, &token, 3).await;

    let load = Load::start(&server.address, &token, 4, Mix::Everything, &panel);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.signal("KILL");
    let tally = load.stop().await;
    drop(server);

    assert!(
        !tally.feedback.is_empty() && !tally.rounds.is_empty(),
        "the load wrote something"
    );
    let feedback = query_ids(&database, "SELECT CAST(id AS BIGINT) AS id FROM feedback");
    assert_all_kept("feedback", &tally.feedback, &feedback);
    let rounds = query_ids(&database, "SELECT CAST(id AS BIGINT) AS id FROM rounds");
    let acknowledged: Vec<i64> = tally.rounds.iter().map(|(id, _)| *id).collect();
    assert_all_kept("rounds", &acknowledged, &rounds);
    // Every round of the load was created with the whole panel: one with fewer speakers
    // (acknowledged or not) would be half-written.
    let half_written = query_ids(
        &database,
        &format!(
            "SELECT CAST(r.id AS BIGINT) AS id FROM rounds r \
             WHERE (SELECT count(*) FROM round_speakers s WHERE s.round_id = r.id) <> {}",
            panel.len()
        ),
    );
    assert!(
        half_written.is_empty(),
        "half-written rounds: {half_written:?}"
    );

    let check = run_command(&database, &["check"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("ok: integrity"), "{said}");

    // And it serves again, with what it had.
    let restarted = Server::start(&database, &log, &[]).await;
    let round = reqwest::get(restarted.url(&format!("/api/v1/rounds/{}", acknowledged[0])))
        .await
        .unwrap();
    assert_eq!(round.status(), 200);
}
