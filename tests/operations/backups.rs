//! `backup` and `check`: a consistent copy taken while writes go on, and a check that finds what
//! is wrong.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection;

use crate::load::{some, Load, Mix};
use crate::server::{admin_token, run_command, Server};
use crate::{assert_all_kept, database_name, query_ids, serial, shared_cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_during_write_load_passes_the_check_and_holds_every_earlier_write() {
    let _turn = serial().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let copy = dir.path().join("backup.db").to_string_lossy().into_owned();
    let server = Server::start(&database, &dir.path().join("server.log"), &[]).await;
    let token = admin_token("ops-admin");
    let load = Load::start(&server.address, &token, 4, Mix::Feedback, &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Everything acknowledged before the backup starts must be in it.
    let before = query_ids(&database, "SELECT CAST(id AS BIGINT) AS id FROM feedback");
    let backup = run_command(&database, &["backup", &copy]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tally = load.stop().await;

    let said = String::from_utf8_lossy(&backup.stdout);
    assert!(
        backup.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(said.contains("backed up"), "{said}");
    assert!(tally.failures.is_empty(), "{}", some(&tally.failures));
    assert!(
        tally.unanswered.is_empty(),
        "connections were closed unanswered"
    );
    let check = run_command(&copy, &["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let kept = query_ids(&copy, "SELECT CAST(id AS BIGINT) AS id FROM feedback");
    assert!(!before.is_empty());
    assert_all_kept("feedback (acknowledged before the backup)", &before, &kept);
    let after = query_ids(&database, "SELECT CAST(id AS BIGINT) AS id FROM feedback");
    assert!(
        after.len() > before.len(),
        "writes went on while the backup was taken"
    );

    let again = run_command(&database, &["backup", &copy]);
    assert!(!again.status.success(), "a backup never overwrites a file");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

#[tokio::test]
async fn check_names_a_row_whose_reference_is_missing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let seeded = run_command(&database, &["seed-demo"]);
    assert!(seeded.status.success(), "{seeded:?}");
    let clean = run_command(&database, &["check"]);
    assert!(clean.status.success(), "{clean:?}");
    // Damage it as only a tool with foreign keys off could: a speaker on a panel disappears.
    let mut conn = diesel::SqliteConnection::establish(&database).unwrap();
    conn.batch_execute(
        "PRAGMA foreign_keys = OFF; \
         DELETE FROM speakers WHERE id = (SELECT speaker_id FROM round_speakers LIMIT 1);",
    )
    .unwrap();
    let damaged = run_command(&database, &["check"]);
    let said = String::from_utf8_lossy(&damaged.stdout);
    assert_eq!(damaged.status.code(), Some(1), "{said}");
    assert!(
        said.contains("round_speakers") && said.contains("speakers"),
        "{said}"
    );
}

#[tokio::test]
async fn check_names_attendance_whose_round_or_attendee_is_missing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("rounds.db").to_string_lossy().into_owned();
    let seeded = run_command(&database, &["seed-demo"]);
    assert!(seeded.status.success(), "{seeded:?}");
    let clean = run_command(&database, &["check"]);
    let said = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{said}");
    assert!(said.contains("attendance"), "{said}");
    let mut conn = diesel::SqliteConnection::establish(&database).unwrap();
    conn.batch_execute(
        "PRAGMA foreign_keys = OFF; \
         DELETE FROM attendees WHERE id = (SELECT attendee_id FROM attendance ORDER BY id LIMIT 1); \
         DELETE FROM rounds WHERE id = (SELECT round_id FROM attendance ORDER BY id DESC LIMIT 1);",
    )
    .unwrap();
    let damaged = run_command(&database, &["check"]);
    let said = String::from_utf8_lossy(&damaged.stdout);
    assert_eq!(damaged.status.code(), Some(1), "{said}");
    assert!(said.contains("refer to a missing attendee"), "{said}");
    assert!(said.contains("refer to a missing round"), "{said}");
}

#[tokio::test]
async fn on_postgres_backup_points_to_pg_dump_and_check_verifies_every_foreign_key() {
    let Some(cluster) = shared_cluster() else {
        return;
    };
    let url = cluster.create_database(&database_name("checks")).unwrap();
    let backup = run_command(&url, &["backup", "/tmp/never-written.db"]);
    assert!(!backup.status.success());
    let said = String::from_utf8_lossy(&backup.stderr);
    assert!(said.contains("pg_dump"), "{said}");
    assert!(!std::path::Path::new("/tmp/never-written.db").exists());

    assert!(run_command(&url, &["seed-demo"]).status.success());
    let mut conn = diesel::PgConnection::establish(&url).unwrap();
    conn.batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        .unwrap();
    let clean = run_command(&url, &["check"]);
    let said = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{said}");
    assert!(
        said.contains("foreign keys") && said.contains("amcheck"),
        "{said}"
    );

    conn.batch_execute(
        "ALTER TABLE speakers DISABLE TRIGGER ALL; \
         DELETE FROM speakers WHERE id = (SELECT speaker_id FROM round_speakers LIMIT 1); \
         ALTER TABLE speakers ENABLE TRIGGER ALL; \
         ALTER TABLE attendees DISABLE TRIGGER ALL; \
         DELETE FROM attendees WHERE id = (SELECT attendee_id FROM attendance LIMIT 1); \
         ALTER TABLE attendees ENABLE TRIGGER ALL;",
    )
    .unwrap();
    let damaged = run_command(&url, &["check"]);
    let said = String::from_utf8_lossy(&damaged.stdout);
    assert_eq!(damaged.status.code(), Some(1), "{said}");
    assert!(said.contains("round_speakers"), "{said}");
    assert!(said.contains("refer to a missing attendee"), "{said}");
}
