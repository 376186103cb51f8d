use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Datelike;
use diesel::connection::{Connection, InstrumentationEvent};
use lhs_rounds::platform::db::{self, Database};
use lhs_rounds::platform::pagination::Paging;
use lhs_rounds::platform::resource::Resource;
use lhs_rounds::schedule::rounds::{RoundFilter, Rounds};
use serde_json::{json, Value};

use crate::helpers::{fresh_database, id_of, spawn_app_with, Backend, TestApp, POOL_SIZE};

/// The statements the app's pooled connections run for requests. The webhook worker and the
/// maintenance thread poll through the same pool; their threads are left out by name.
struct Statements {
    log: Arc<Mutex<Vec<String>>>,
}

impl Statements {
    /// Instruments every connection of the app's pool: r2d2 keeps a connection, and what is set
    /// on it, until it breaks or ages out (minutes), so all of them are checked out at once and
    /// instrumented before they go back.
    async fn attach(app: &TestApp) -> Statements {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let database = app.database.clone();
        let shared = log.clone();
        tokio::task::spawn_blocking(move || {
            let mut connections: Vec<_> = (0..POOL_SIZE)
                .map(|_| database.connection().expect("a connection"))
                .collect();
            for conn in &mut connections {
                let log = shared.clone();
                conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                    if let InstrumentationEvent::StartQuery { query, .. } = event {
                        let thread = std::thread::current();
                        let background = thread.name().is_some_and(|name| name.starts_with("lhs-"));
                        if !background {
                            log.lock().unwrap().push(query.to_string());
                        }
                    }
                });
            }
        })
        .await
        .unwrap();
        Statements { log }
    }

    /// The statements run since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// The statements `request` runs.
    async fn of<F: std::future::Future<Output = reqwest::Response>>(
        &self,
        request: F,
        status: u16,
    ) -> Vec<String> {
        self.take();
        let response = request.await;
        assert_eq!(response.status(), status);
        self.take()
    }
}

on_both_backends!(
    statements_per_request_are_pinned,
    a_kept_answer_costs_one_statement_or_none,
    a_patch_rewrites_only_the_links_that_differ,
    listing_rounds_takes_the_same_number_of_queries_whatever_the_page_size,
    fifty_concurrent_writes_all_succeed,
    the_demo_schedule_loads_once_with_its_panel_in_order,
    the_database_refuses_what_no_enumeration_allows,
);

/// A rename and a new link to the same speaker, in two transactions at once, in either order:
/// the second waits for the first to commit (on the schedule's revision), and the round's own
/// copy of its speakers (the migration `round_link_documents`) ends with the new name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_and_a_link_at_once_leave_the_round_showing_the_new_name_on_postgres() {
    let Some(app) = spawn_app_with(Backend::Postgres, |settings| settings.cache_mb = 0).await
    else {
        return;
    };
    let speaker = app.speaker("Tara Lagu", &["MD"]).await;
    for (name, link_first) in [("Tara Lagu-Smith", true), ("Tara Smith", false)] {
        let round = id_of(&app.round("2027-01-05", json!({})).await);
        let link = format!(
            "INSERT INTO round_speakers (round_id, speaker_id, position, role) \
             VALUES ({round}, {speaker}, 0, 'presenter')"
        );
        let rename = format!("UPDATE speakers SET full_name = '{name}' WHERE id = {speaker}");
        let (first, second) = if link_first {
            (link, rename)
        } else {
            (rename, link)
        };

        let mut open = diesel::PgConnection::establish(&app.database_url).expect("a connection");
        run(&mut open, "BEGIN");
        run(&mut open, &first);
        let url = app.database_url.clone();
        let waiting = std::thread::spawn(move || {
            let mut conn = diesel::PgConnection::establish(&url).expect("a connection");
            run(&mut conn, &second);
        });
        wait_until_a_statement_waits_for_a_lock(&app);
        run(&mut open, "COMMIT");
        waiting.join().expect("the second statement");

        let body = app.get_ok(&format!("/api/v1/rounds/{round}")).await;
        assert_eq!(
            body["speakers"][0]["full_name"], name,
            "link first: {link_first}"
        );
    }
}

fn run(conn: &mut diesel::PgConnection, sql: &str) {
    use diesel::RunQueryDsl;
    diesel::sql_query(sql).execute(conn).expect(sql);
}

/// Polls (for at most ten seconds) until a backend of the app's database waits for a lock.
fn wait_until_a_statement_waits_for_a_lock(app: &TestApp) {
    for _ in 0..200 {
        if backends_of(app, "wait_event_type = 'Lock'") > 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the second transaction never waited for the first");
}

/// How many of the database's backends `condition` (on `pg_stat_activity`) takes in.
fn backends_of(app: &TestApp, condition: &str) -> i64 {
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.database.connection().expect("a connection");
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND {condition}"
    ))
    .get_result::<Count>(&mut conn)
    .expect("pg_stat_activity")
    .n
}

/// Statements per request, so that they cannot grow back unseen, and the same on both
/// backends: one architecture. A round is one statement (its row carries its links, and the
/// series' zone is joined); a page is its count and its rows in one snapshot; a write is one
/// transaction ending with its change-log entry, queued to be numbered (`changelog::number`).
async fn statements_per_request_are_pinned(app: TestApp) {
    let backend = app.backend();
    // A cache miss is what every read costs with the cache off (`LHS_CACHE_MB=0`).
    let app = spawn_app_with(backend, |settings| settings.cache_mb = 0)
        .await
        .unwrap();
    let speakers = [app.speaker("A", &["MD"]).await, app.speaker("B", &[]).await];
    let department = app.department("Clinical Informatics").await;
    let mut round = 0;
    for day in 1..=3 {
        round = id_of(
            &app.round(
                &format!("2027-01-{day:02}"),
                json!({"speakers": [{"speaker_id": speakers[0]}, {"speaker_id": speakers[1]}],
                       "department_ids": [department]}),
            )
            .await,
        );
    }
    let path = format!("/api/v1/rounds/{round}");
    let held = id_of(&app.held_round(json!({})).await);
    let statements = Statements::attach(&app).await;

    let lists = [
        statements.of(app.get(&path), 200).await,
        statements.of(app.get("/api/v1/rounds?limit=50"), 200).await,
        statements
            .of(
                app.post(
                    "/api/v1/feedback",
                    &json!({"kind": "topic_suggestion", "comment": "Sepsis bundles"}),
                ),
                201,
            )
            .await,
        statements
            .of(
                app.post(
                    "/api/v1/feedback",
                    &json!({"kind": "session_feedback", "round_id": held, "rating": 5}),
                ),
                201,
            )
            .await,
        statements
            .of(app.patch(&path, &json!({"title": "New"})), 200)
            .await,
    ];
    let counts = lists.each_ref().map(Vec::len);
    // A round: one. A page: BEGIN, count, rows, COMMIT. POST: BEGIN, INSERT, the change-log
    // entry, COMMIT; on PostgreSQL the feedback's one-statement path (`LoggedInsert`). A rating
    // reads its round's window first, in the transaction: BEGIN, the round, INSERT, the entry,
    // then (a signed-in person's rating is their evaluation) their records waiting for it,
    // COMMIT, on both. PATCH: BEGIN, the round, UPDATE, the round again, the entry, COMMIT.
    let feedback = match backend {
        Backend::Postgres => 1,
        Backend::Sqlite => 4,
    };
    assert_eq!(
        counts,
        [1, 4, feedback, 6, 6],
        "GET a round, GET a page, POST /feedback (a suggestion, a rating), PATCH a title: \
         {lists:?}"
    );

    // What the PATCH wrote without reading it back is what a read finds...
    let patched = app.patch(&path, &json!({"location": "Room 2"})).await;
    let etag = patched.headers()["etag"].clone();
    let patched: Value = patched.json().await.unwrap();
    let read = app.get(&path).await;
    assert_eq!(read.headers()["etag"], etag);
    assert_eq!(read.json::<Value>().await.unwrap(), patched);
    // ...and what its change-log entry and webhook messages carry.
    let database = app.database.clone();
    let logged = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use lhs_rounds::platform::schema::changes;
        let mut conn = database.connection().unwrap();
        lhs_rounds::platform::changelog::number(&mut conn).unwrap();
        lhs_rounds::on_backend!(&mut *conn, |c| changes::table
            .order(changes::seq.desc())
            .select(changes::data)
            .first::<Option<String>>(c))
        .unwrap()
    })
    .await
    .unwrap();
    let logged: Value = serde_json::from_str(&logged.unwrap()).unwrap();
    assert_eq!(logged, patched);
}

/// With the cache on, a kept answer costs PostgreSQL one statement, which reads only the
/// revision; SQLite reads the revision off the pool (and often not at all: see `WalIndex`). A
/// miss renders in a snapshot with the revision; the first read after a change costs
/// PostgreSQL the revision and then that snapshot.
async fn a_kept_answer_costs_one_statement_or_none(app: TestApp) {
    let round = id_of(&app.round("2027-01-21", json!({})).await);
    let path = format!("/api/v1/rounds/{round}");
    let statements = Statements::attach(&app).await;
    let mut counts = vec![
        statements.of(app.get(&path), 200).await.len(),
        statements.of(app.get(&path), 200).await.len(),
        statements.of(app.get("/api/v1/rounds"), 200).await.len(),
        statements.of(app.get("/api/v1/rounds"), 200).await.len(),
    ];
    assert_eq!(
        app.patch(&path, &json!({"title": "Retitled"}))
            .await
            .status(),
        200
    );
    statements.take();
    counts.push(statements.of(app.get(&path), 200).await.len());
    let expected = match app.backend() {
        Backend::Postgres => [4, 1, 5, 1, 5],
        Backend::Sqlite => [4, 0, 5, 0, 4],
    };
    assert_eq!(
        counts, expected,
        "a round and a page: missed, then kept; the round after a change"
    );
}

/// Speakers a, b, c become a, c, d: b goes, c moves, d comes, a stays; the departments stay
/// as they are and are not touched.
async fn a_patch_rewrites_only_the_links_that_differ(app: TestApp) {
    let mut speakers = Vec::new();
    for name in ["A", "B", "C", "D"] {
        speakers.push(app.speaker(name, &["MD"]).await);
    }
    let [a, b, c, d] = speakers[..] else {
        unreachable!()
    };
    let departments = [app.department("One").await, app.department("Two").await];
    let round = app
        .round(
            "2027-01-21",
            json!({"speakers": [{"speaker_id": a}, {"speaker_id": b}, {"speaker_id": c}],
                   "department_ids": departments}),
        )
        .await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let statements = Statements::attach(&app).await;

    statements.take();
    let patched = app
        .patch(
            &path,
            &json!({"speakers": [{"speaker_id": a}, {"speaker_id": c, "role": "moderator"},
                                 {"speaker_id": d}]}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let run = statements.take();
    let patched: Value = patched.json().await.unwrap();
    let links: Vec<&String> = run
        .iter()
        .filter(|s| s.contains("round_speakers") || s.contains("round_departments"))
        .filter(|s| s.starts_with("DELETE") || s.starts_with("INSERT"))
        .collect();
    assert_eq!(links.len(), 2, "one DELETE, one INSERT: {links:?}");
    assert!(links.iter().all(|s| s.contains("round_speakers")));
    // BEGIN, the round, UPDATE, DELETE, INSERT, the round again, the change-log entry, COMMIT.
    assert_eq!(run.len(), 8, "{run:?}");

    let ids: Vec<i64> = patched["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["speaker_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a as i64, c as i64, d as i64]);
    assert_eq!(patched["speakers"][1]["role"], "moderator");
    assert_eq!(patched["department_ids"], json!(departments));
    assert_eq!(app.get_ok(&path).await, patched);
}

async fn listing_rounds_takes_the_same_number_of_queries_whatever_the_page_size(app: TestApp) {
    let speakers = [app.speaker("A", &["MD"]).await, app.speaker("B", &[]).await];
    let department = app.department("Clinical Informatics").await;
    for day in 1..=30 {
        app.round(
            &format!("2027-01-{day:02}"),
            json!({"speakers": [{"speaker_id": speakers[0]}, {"speaker_id": speakers[1]}], "department_ids": [department]}),
        )
        .await;
    }
    let database = app.database.clone();

    let counts = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut counts = Vec::new();
        for limit in [1, 10, 30] {
            queries.store(0, Ordering::SeqCst);
            let page = Rounds::list(&mut conn, &RoundFilter::default(), Paging::new(limit, 0))
                .expect("a page")
                .page;
            assert_eq!(page.items.len() as i64, limit);
            assert!(page
                .items
                .iter()
                .all(|r| r.speakers.0.len() == 2 && r.departments.0.len() == 1));
            counts.push(queries.load(Ordering::SeqCst));
        }
        counts
    })
    .await
    .unwrap();

    assert_eq!(counts, vec![2; 3], "the count and the page");
}

async fn fifty_concurrent_writes_all_succeed(app: TestApp) {
    let round = id_of(&app.held_round(json!({})).await);
    let app = Arc::new(app);

    let writes: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let body = if i % 2 == 0 {
                    json!({"kind": "session_feedback", "round_id": round, "rating": 1 + i % 5})
                } else {
                    json!({"full_name": format!("Speaker {i}"), "credentials": ["MD"]})
                };
                let path = if i % 2 == 0 {
                    "/api/v1/feedback"
                } else {
                    "/api/v1/speakers"
                };
                app.post(path, &body).await.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for write in writes {
        statuses.push(write.await.unwrap());
    }

    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(app.get_ok("/api/v1/feedback").await["total"], 25);
    assert_eq!(app.get_ok("/api/v1/speakers").await["total"], 25);
}

async fn the_demo_schedule_loads_once_with_its_panel_in_order(app: TestApp) {
    let database = app.database.clone();
    let reports = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let first = lhs_rounds::app::demo::seed(&mut conn).expect("first load");
        let second = lhs_rounds::app::demo::seed(&mut conn).expect("second load");
        (first.to_string(), second.to_string())
    })
    .await
    .unwrap();
    assert_eq!(
        reports.0,
        "described the series, added 5 departments, 8 speakers, 13 rounds (3 of them \
         upcoming, generated from the series' defaults), 3 disclosure statements, 90 attendance \
         records; the learning loop: 1 initiative, 2 PDSA cycles, 1 measure with 24 points, 12 \
         round outcomes"
    );
    assert_eq!(
        reports.1,
        "added 0 departments, 0 speakers, 0 rounds (0 of them upcoming, generated from the \
         series' defaults), 0 disclosure statements, 0 attendance records"
    );

    let past = app.get_ok("/api/v1/rounds?when=past&limit=100").await;
    assert_eq!(past["total"], 10);
    let first_round = &past["items"][9];
    assert_eq!(first_round["starts_at"], "2019-01-17T17:00:00Z", "noon EST");
    assert_eq!(first_round["starts_at_local"], "2019-01-17T12:00:00-05:00");
    assert_eq!(first_round["location"], "3601 Main St, PVLSI");
    let july = &past["items"][4];
    assert_eq!(july["starts_at"], "2019-07-18T16:00:00Z", "noon EDT");
    assert_eq!(july["starts_at_local"], "2019-07-18T12:00:00-04:00");
    assert_eq!(july["ends_at_local"], "2019-07-18T13:00:00-04:00");
    assert_eq!(july["title"], Value::Null);

    // Like any write, the demo data is in the change log: 1 series, 5 + 8 + 13 records of the
    // schedule; 1 initiative, 2 PDSA cycles, 1 measure, its 24 points and their entry on the
    // measure (the shift they created), and 12 outcomes of the learning loop; the
    // disclosures, which the public feed leaves out: 8 speakers' of 2018 and Tara Lagu's
    // current one, two reviews (Peter Lindenauer's relationship, on two rounds), three
    // statements; and 12 attendees with 90 attendance records, which it never shows.
    let audit = app.get_ok("/api/v1/audit?limit=100").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(audit["total"], 27 + 41 + 9 + 2 + 3 + 12 + 90, "{audit}");
    assert!(entries.iter().all(|e| e["actor"] == "demo"));
    let feed = app.get_ok("/api/v1/changes?after=0&limit=1000").await;
    assert_eq!(
        feed["items"].as_array().unwrap().len(),
        27 + 40,
        "each record once"
    );

    let upcoming = app.get_ok("/api/v1/rounds?when=upcoming").await;
    assert_eq!(upcoming["total"], 3, "the next three, generated");
    for round in upcoming["items"].as_array().unwrap() {
        let local = round["starts_at_local"].as_str().unwrap();
        assert!(local.contains("T12:00:00-0"), "noon in New York: {local}");
        let date = chrono::NaiveDate::parse_from_str(&local[..10], "%Y-%m-%d").unwrap();
        assert_eq!(date.weekday(), chrono::Weekday::Thu, "{local}");
        assert_eq!(round["title"], Value::Null, "topic to be announced");
        assert_eq!(round["location"], "BMC – MassMutual 5");
    }
    // The 2019 rounds with speakers had their statements published a week before they started.
    for round in past["items"].as_array().unwrap() {
        if round["speakers"].as_array().unwrap().is_empty() {
            continue;
        }
        let path = round["disclosure_statement_url"].as_str().unwrap();
        let statement = app.get_ok(path).await;
        assert_eq!(statement["version"], 1);
        let starts =
            chrono::DateTime::parse_from_rfc3339(round["starts_at"].as_str().unwrap()).unwrap();
        let published =
            chrono::DateTime::parse_from_rfc3339(statement["published_at"].as_str().unwrap())
                .unwrap();
        assert_eq!(starts - published, chrono::Duration::days(7), "{path}");
        let relevant: Vec<&Value> = statement["people"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["relevant_relationships"] != json!([]))
            .collect();
        // Peter Lindenauer's one relationship, relevant wherever he speaks; no one else's.
        let his = round["speakers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["full_name"] == "Peter Lindenauer");
        let names: Vec<&Value> = relevant.iter().map(|p| &p["full_name"]).collect();
        match his {
            true => assert_eq!(names, [&json!("Peter Lindenauer")], "{path}"),
            false => assert!(names.is_empty(), "{path}"),
        }
    }
    let lagu = past["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["speakers"].as_array().unwrap().iter())
        .find(|s| s["full_name"] == "Tara Lagu")
        .unwrap()["speaker_id"]
        .clone();
    let current = app
        .get_ok(&format!("/api/v1/speakers/{lagu}/disclosure"))
        .await;
    assert_eq!(current["current"], true);
    assert_eq!(current["no_relationships"], true);
    let history = app
        .get_ok(&format!("/api/v1/speakers/{lagu}/disclosure/history"))
        .await;
    assert_eq!(history["items"].as_array().unwrap().len(), 2);
    let series = app.get_ok("/api/v1/series").await;
    assert_eq!(series["name"], "Learning Health System Rounds");
    assert_eq!(series["timezone"], "America/New_York");
    assert_eq!(series["contacts"][0]["name"], "Dr. Mihaela Stefan");
    let panel = &past["items"][8];
    let names: Vec<&str> = panel["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "Howard Goldberg, MD",
            "Paul Visintainer, PhD",
            "Sandeep Muddasani",
            "Doug Salvador, MD, MPH",
            "Peter Lindenauer, MD, MSc",
            "Lauren Westafer, DO, MPH",
            "Tara Lagu, MD, MPH",
            "Quinn Pack, MD, MSc"
        ]
    );
    assert_eq!(
        app.get_ok("/api/v1/speakers").await["total"],
        8,
        "each person once"
    );
    let lagu = app.get_ok("/api/v1/speakers?q=lagu").await;
    let lagu_rounds = app
        .get_ok(&format!(
            "/api/v1/speakers/{}/rounds",
            lagu["items"][0]["id"]
        ))
        .await;
    assert_eq!(lagu_rounds["total"], 2);
}

/// The schema's own rules hold for any writer, a hand-run SQL edit too: table CHECKs on SQLite,
/// domains on PostgreSQL (migration `2026-12-02-000001_checks_as_domains`).
async fn the_database_refuses_what_no_enumeration_allows(app: TestApp) {
    use diesel::result::{DatabaseErrorKind, Error};
    use diesel::RunQueryDsl;

    let mut conn = app.database.connection().expect("a connection");
    lhs_rounds::app::demo::seed(&mut conn).expect("the demo schedule");
    let feedback = "INSERT INTO feedback (kind, status, rating, created_at, updated_at) VALUES";
    let now = "CURRENT_TIMESTAMP";
    let allowed = [
        "UPDATE series SET feedback_window_days = 365".to_owned(),
        "UPDATE series SET feedback_window_days = 0".to_owned(),
        format!("{feedback} ('session_feedback', 'reviewed', 5, {now}, {now})"),
        format!("{feedback} ('general', 'new', NULL, {now}, {now})"),
        "UPDATE rounds SET status = 'cancelled' WHERE id = 1".to_owned(),
        "UPDATE round_speakers SET role = 'moderator'".to_owned(),
        "INSERT INTO webhooks (url, events, secret, created_at, updated_at) \
         VALUES ('https://example.org/hook', '[\"*\"]', 'whsec_x', CURRENT_TIMESTAMP, \
         CURRENT_TIMESTAMP)"
            .to_owned(),
    ];
    for sql in &allowed {
        diesel::sql_query(sql).execute(&mut conn).expect(sql);
    }
    let refused = [
        format!("{feedback} ('complaint', 'new', NULL, {now}, {now})"),
        format!("{feedback} ('general', 'lost', NULL, {now}, {now})"),
        format!("{feedback} ('session_feedback', 'new', 6, {now}, {now})"),
        format!("{feedback} ('session_feedback', 'new', 0, {now}, {now})"),
        "UPDATE rounds SET status = 'postponed' WHERE id = 1".to_owned(),
        "UPDATE round_speakers SET role = 'host'".to_owned(),
        "INSERT INTO changes (seq, at, actor, resource, record_id, action, changes) \
         VALUES (999, CURRENT_TIMESTAMP, 'someone', 'round', 1, 'renamed', '{}')"
            .to_owned(),
        "INSERT INTO webhook_messages (message_id, webhook_id, change_seq, event_type, \
         payload, status, next_attempt_at, created_at) SELECT 'msg_by_hand', id, 1, \
         'round.created', '{}', 'lost', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM webhooks"
            .to_owned(),
        "UPDATE schedule_revision SET id = 2".to_owned(),
        "UPDATE series SET id = 2".to_owned(),
        "UPDATE series SET feedback_window_days = 366".to_owned(),
        "UPDATE series SET feedback_window_days = -1".to_owned(),
        "UPDATE change_log_floor SET id = 2".to_owned(),
        "UPDATE change_log_head SET id = 2".to_owned(),
    ];
    for sql in &refused {
        let error = diesel::sql_query(sql).execute(&mut conn).expect_err(sql);
        assert!(
            matches!(
                error,
                Error::DatabaseError(DatabaseErrorKind::CheckViolation, _)
            ),
            "{sql}: {error}"
        );
    }
}

#[test]
fn migrations_go_down_and_up_again_on_sqlite() {
    migrations_go_down_and_up_again(Backend::Sqlite);
}

#[test]
fn migrations_go_down_and_up_again_on_postgres() {
    migrations_go_down_and_up_again(Backend::Postgres);
}

fn migrations_go_down_and_up_again(backend: Backend) {
    let Some((url, _dir)) = fresh_database(backend) else {
        return;
    };
    let database = Database::open(&url, 1).expect("open and migrate");
    let mut conn = database.connection().expect("a connection");

    db::revert_all_migrations(&mut conn).expect("every migration goes down");
    let applied = db::run_migrations(&mut conn).expect("and up again");

    assert!(!applied.is_empty());
    assert!(db::run_migrations(&mut conn)
        .expect("idempotent")
        .is_empty());
    lhs_rounds::app::demo::seed(&mut conn).expect("the schema works after the round trip");
}
