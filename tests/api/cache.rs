//! The read cache: kept answers are served only while the schedule is unchanged.

use diesel::connection::SimpleConnection;
use lhs_rounds::platform::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{id_of, spawn_app_with, Backend, TestApp};

on_both_backends!(
    a_round_shows_its_speakers_and_departments_as_they_are_now,
    a_change_made_outside_the_service_is_seen_at_once,
    a_change_to_any_schedule_table_moves_the_revision,
    a_database_restored_from_a_backup_is_not_answered_from_memory,
    an_unchanged_schedule_is_answered_from_memory,
    organisers_and_the_public_get_their_own_answers,
    a_round_leaves_the_upcoming_list_when_it_ends,
    feedback_does_not_disturb_the_schedule,
    with_the_revision_row_deleted_by_hand_reads_and_writes_go_on_without_the_cache,
);

/// Runs `sql` on the app's database directly, as another process or an administrator would.
async fn run_sql(app: &TestApp, sql: impl Into<String>) {
    let database = app.database.clone();
    let sql = sql.into();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        conn.batch_execute(&sql).expect("the statement runs");
    })
    .await
    .unwrap();
}

/// A round titled "Patient comments", read once so that its answer is kept; its path.
async fn a_round_read_once(app: &TestApp) -> String {
    let round = app
        .round("2019-04-25", json!({"title": "Patient comments"}))
        .await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    assert_eq!(app.get_ok(&path).await["title"], "Patient comments");
    path
}

/// Retitles every round by hand, then sets the revision to `revision`: a restore from a
/// backup, or a change whose bump is taken back.
async fn retitle_with_revision(app: &TestApp, title: &str, revision: i64) {
    run_sql(
        app,
        format!(
            "BEGIN;
             UPDATE rounds SET title = '{title}';
             UPDATE schedule_revision SET revision = {revision} WHERE id = 1;
             COMMIT;"
        ),
    )
    .await;
}

async fn a_round_shows_its_speakers_and_departments_as_they_are_now(app: TestApp) {
    let speaker = app.speaker("Tara Lagu", &["MD"]).await;
    let department = app.department("Division of Healthcare Quality").await;
    let round = app
        .round(
            "2019-04-25",
            json!({"speakers": [{"speaker_id": speaker, "role": "presenter"}],
                   "department_ids": [department]}),
        )
        .await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let list = "/api/v1/rounds?limit=50";
    assert_eq!(
        app.get_ok(&path).await["speakers"][0]["display_name"],
        "Tara Lagu, MD"
    );
    assert_eq!(app.get_ok(list).await["total"], 1);

    let renamed = app
        .patch(
            &format!("/api/v1/speakers/{speaker}"),
            &json!({"credentials": ["MD", "MPH"]}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let abbreviated = app
        .patch(
            &format!("/api/v1/departments/{department}"),
            &json!({"abbreviation": "DHQ"}),
        )
        .await;
    assert_eq!(abbreviated.status(), 200);

    let again = app.get_ok(&path).await;
    assert_eq!(again["speakers"][0]["display_name"], "Tara Lagu, MD, MPH");
    assert_eq!(again["departments"][0]["abbreviation"], "DHQ");
    let listed = app.get_ok(list).await;
    assert_eq!(
        listed["items"][0]["speakers"][0]["display_name"],
        "Tara Lagu, MD, MPH"
    );

    app.round("2019-05-23", json!({})).await;
    assert_eq!(app.get_ok(list).await["total"], 2);
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    assert_eq!(app.get_ok(list).await["total"], 1);
}

async fn a_change_made_outside_the_service_is_seen_at_once(app: TestApp) {
    let path = a_round_read_once(&app).await;

    run_sql(&app, "UPDATE rounds SET title = 'Changed by hand'").await;

    assert_eq!(app.get_ok(&path).await["title"], "Changed by hand");
}

async fn a_change_to_any_schedule_table_moves_the_revision(app: TestApp) {
    let speaker = app.speaker("Tara Lagu", &["MD"]).await;
    let department = app.department("Division of Healthcare Quality").await;
    app.round(
        "2019-04-25",
        json!({"speakers": [{"speaker_id": speaker, "role": "presenter"}],
               "department_ids": [department]}),
    )
    .await;
    // One statement per table: a table rebuilt by a later migration without its triggers
    // fails here.
    let changes = [
        "UPDATE departments SET description = 'changed'",
        "UPDATE speakers SET bio = 'changed'",
        "UPDATE rounds SET description = 'changed'",
        "UPDATE round_speakers SET role = 'panelist'",
        "UPDATE round_departments SET position = position",
        "UPDATE series SET name = name",
    ];
    for sql in changes {
        let before = revision(&app).await;
        run_sql(&app, sql).await;
        assert!(
            revision(&app).await > before,
            "{sql} left the revision alone"
        );
    }
}

async fn a_database_restored_from_a_backup_is_not_answered_from_memory(app: TestApp) {
    let path = a_round_read_once(&app).await;
    let seen_before = revision(&app).await;

    // The restored copy carries an older revision and other data...
    retitle_with_revision(&app, "From the backup", 1).await;
    assert_eq!(app.get_ok(&path).await["title"], "From the backup");

    // ...and the next change is stamped from the clock, above every revision seen before.
    run_sql(
        &app,
        "UPDATE rounds SET title = 'Changed after the restore'",
    )
    .await;
    assert!(revision(&app).await > seen_before);
    assert_eq!(
        app.get_ok(&path).await["title"],
        "Changed after the restore"
    );
}

async fn an_unchanged_schedule_is_answered_from_memory(app: TestApp) {
    let path = a_round_read_once(&app).await;
    let kept = revision(&app).await;

    // A change whose trigger's bump is taken back: the revision is where it was, so the kept
    // answer is still served. This is what makes repeated reads cheap.
    retitle_with_revision(&app, "Unseen", kept).await;
    assert_eq!(app.get_ok(&path).await["title"], "Patient comments");

    run_sql(
        &app,
        "UPDATE schedule_revision SET revision = revision + 1 WHERE id = 1",
    )
    .await;
    assert_eq!(app.get_ok(&path).await["title"], "Unseen");
}

async fn organisers_and_the_public_get_their_own_answers(app: TestApp) {
    let created = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "Tara Lagu", "email": "tara.lagu@example.org"}),
        )
        .await;
    let path = format!("/api/v1/speakers/{}", id_of(&created));
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);

    for _ in 0..2 {
        let public: Value = app
            .request_as(None, reqwest::Method::GET, &path, None)
            .await
            .json()
            .await
            .unwrap();
        assert!(public.get("email").is_none(), "{public}");
        let private: Value = app
            .request_as(Some(&organizer), reqwest::Method::GET, &path, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(private["email"], "tara.lagu@example.org");
    }
}

async fn a_round_leaves_the_upcoming_list_when_it_ends(app: TestApp) {
    let now = chrono::Utc::now();
    let ends_at = now + chrono::Duration::milliseconds(1500);
    app.create(
        "/api/v1/rounds",
        json!({
            "title": "Ending soon",
            "starts_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
            "ends_at": ends_at.to_rfc3339(),
            "location": "BMC – MassMutual 5",
        }),
    )
    .await;
    let upcoming = "/api/v1/rounds?when=upcoming";
    let past = "/api/v1/rounds?when=past";
    assert_eq!(app.get_ok(upcoming).await["total"], 1);
    assert_eq!(app.get_ok(past).await["total"], 0);

    let wait = (ends_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_millis(100)).await;

    assert_eq!(app.get_ok(upcoming).await["total"], 0);
    assert_eq!(app.get_ok(past).await["total"], 1);
}

async fn feedback_does_not_disturb_the_schedule(app: TestApp) {
    let round = app.held_round(json!({})).await;
    let before = revision(&app).await;
    app.create(
        "/api/v1/feedback",
        json!({"kind": "session_feedback", "round_id": id_of(&round), "rating": 5}),
    )
    .await;
    assert_eq!(revision(&app).await, before);
    let patched = app
        .patch(
            &format!("/api/v1/rounds/{}", id_of(&round)),
            &json!({"title": "Now with a topic"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert!(revision(&app).await > before);
}

async fn revision(app: &TestApp) -> i64 {
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        lhs_rounds::platform::cache::current_revision(&mut conn)
            .expect("the revision")
            .expect("its row")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_turned_off_reads_are_rendered_every_time() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, |s| s.cache_mb = 0).await else {
            continue;
        };
        let path = a_round_read_once(&app).await;
        let kept = revision(&app).await;
        retitle_with_revision(&app, "Seen", kept).await;
        assert_eq!(app.get_ok(&path).await["title"], "Seen", "{backend:?}");
    }
}

/// An administrator fixing a title with the `sqlite3` command line that Debian ships (SQLite
/// 3.40, older than the SQLite built into the service): the triggers must run there too, and
/// the service must see the edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_with_the_system_sqlite3_command_line_is_seen() {
    let app = spawn_app_with(Backend::Sqlite, |_| {})
        .await
        .expect("SQLite is always available");
    let path = a_round_read_once(&app).await;
    let file = app.database.url().target.clone();

    let output = match std::process::Command::new("sqlite3")
        .arg(&file)
        .arg(".timeout 5000")
        .arg("UPDATE rounds SET title = 'Fixed with sqlite3';")
        .output()
    {
        Ok(output) => output,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "\n!!!! SKIPPING the sqlite3 command-line test: {e}\n\
                 !!!! (install Debian's sqlite3 package; in CI this fails)\n"
            );
            return;
        }
        Err(e) => panic!("the sqlite3 command line is required in CI: {e}"),
    };

    assert!(
        output.status.success(),
        "sqlite3 refused the edit: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(app.get_ok(&path).await["title"], "Fixed with sqlite3");
}

/// The counter's row deleted by hand (the README's "reads are answered without the cache"): a
/// round, a page and a write still answer, each read rendered afresh.
async fn with_the_revision_row_deleted_by_hand_reads_and_writes_go_on_without_the_cache(
    app: TestApp,
) {
    let path = a_round_read_once(&app).await;
    run_sql(&app, "DELETE FROM schedule_revision").await;

    assert_eq!(app.get_ok(&path).await["title"], "Patient comments");
    assert_eq!(app.get_ok("/api/v1/rounds?limit=50").await["total"], 1);
    let patched = app.patch(&path, &json!({"title": "Patient voices"})).await;
    assert_eq!(patched.status(), 200);
    assert_eq!(app.get_ok(&path).await["title"], "Patient voices");
    assert_eq!(
        app.get_ok("/api/v1/rounds?limit=50").await["items"][0]["title"],
        "Patient voices"
    );
    assert_eq!(app.get(&format!("{path}0")).await.status(), 404);
}
