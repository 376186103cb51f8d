//! The change log: the audit trail, and the change feed other systems sync from.

use std::collections::BTreeMap;
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, id_of, spawn_app, spawn_replica, Backend, TestApp};

on_both_backends!(
    every_write_is_in_the_audit_trail_with_who_what_and_the_request,
    the_audit_trail_is_for_admins_newest_first_and_filtered,
    the_change_feed_shows_each_caller_what_it_may_see_now,
    a_record_changed_several_times_appears_once_at_its_latest_change,
    the_feed_pages_with_next_after_and_refuses_what_it_cannot_serve,
    an_after_older_than_the_feed_keeps_is_410_with_where_to_resume,
    a_follower_of_the_feed_ends_with_what_the_lists_show,
    a_rolled_back_write_takes_no_number_and_messages_come_with_the_number,
    writers_and_numberers_at_once_give_each_entry_one_number_and_readers_no_gap,
);

async fn feed(app: &TestApp, token: Option<&str>, query: &str) -> Value {
    let response = app
        .request_as(token, Method::GET, &format!("/api/v1/changes{query}"), None)
        .await;
    assert_eq!(response.status(), 200, "GET /api/v1/changes{query}");
    response.json().await.unwrap()
}

async fn every_write_is_in_the_audit_trail_with_who_what_and_the_request(app: TestApp) {
    let organizer = app.token("alice@example.org", &[Role::Organizer]);
    let created = app
        .client
        .post(app.url("/api/v1/rounds"))
        .bearer_auth(&organizer)
        .header("x-request-id", "req-42")
        .json(&json!({"title": "Falls", "starts_at": "2027-01-21T17:00:00Z", "ends_at": "2027-01-21T18:00:00Z", "location": "Room 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.headers()["x-request-id"], "req-42");
    let round = id_of(&created.json().await.unwrap());
    app.patch(
        &format!("/api/v1/rounds/{round}"),
        &json!({"title": "Falls prevention", "location": "Room 2"}),
    )
    .await;
    app.delete(&format!("/api/v1/rounds/{round}")).await;
    app.request_as(
        None,
        Method::POST,
        "/api/v1/feedback",
        Some(&json!({"kind": "general", "comment": "Thanks"})),
    )
    .await;

    let audit = app
        .get_ok(&format!("/api/v1/audit?resource=round&id={round}"))
        .await;

    let entries = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["deleted", "updated", "created"],
        "newest first"
    );
    let created = &entries[2];
    assert_eq!(created["actor"], "alice@example.org");
    assert_eq!(created["request_id"], "req-42");
    assert_eq!(created["changes"]["title"], json!([null, "Falls"]));
    let updated = &entries[1];
    assert_eq!(updated["actor"], "admin@example.org");
    assert_eq!(
        updated["changes"]["title"],
        json!(["Falls", "Falls prevention"])
    );
    assert_eq!(updated["changes"]["location"], json!(["Room 1", "Room 2"]));
    assert!(
        updated["changes"].get("updated_at").is_none(),
        "bookkeeping is left out"
    );
    assert_eq!(
        entries[0]["changes"]["title"],
        json!(["Falls prevention", null])
    );
    assert!(
        entries[0]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "generated"
    );
    let anonymous = app.get_ok("/api/v1/audit?resource=feedback").await;
    assert_eq!(anonymous["items"][0]["actor"], "anonymous");
}

async fn the_audit_trail_is_for_admins_newest_first_and_filtered(app: TestApp) {
    let organizer = app.token("alice@example.org", &[Role::Organizer]);
    let speaker = app.speaker("Tara Lagu", &["MD"]).await;
    app.department("Clinical Informatics").await;
    app.request_as(
        Some(&organizer),
        Method::PATCH,
        &format!("/api/v1/speakers/{speaker}"),
        Some(&json!({"title": "Hospitalist"})),
    )
    .await;

    assert_problem(
        app.request_as(Some(&organizer), Method::GET, "/api/v1/audit", None)
            .await,
        403,
    )
    .await;
    assert_problem(
        app.request_as(None, Method::GET, "/api/v1/audit", None)
            .await,
        401,
    )
    .await;
    let all = app.get_ok("/api/v1/audit").await;
    assert_eq!(all["total"], 3);
    let seqs: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert_eq!(
        app.get_ok("/api/v1/audit?actor=alice@example.org").await["total"],
        1
    );
    assert_eq!(
        app.get_ok("/api/v1/audit?resource=department").await["total"],
        1
    );
    assert_eq!(
        app.get_ok(&format!("/api/v1/audit?resource=speaker&id={speaker}"))
            .await["total"],
        2
    );
    assert_eq!(
        app.get_ok("/api/v1/audit?from=2099-01-01T00:00:00Z").await["total"],
        0
    );
    assert_eq!(
        app.get_ok("/api/v1/audit?to=2099-01-01T00:00:00Z&limit=1")
            .await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn the_change_feed_shows_each_caller_what_it_may_see_now(app: TestApp) {
    let speaker = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "Tara Lagu", "email": "t.lagu@example.org"}),
        )
        .await;
    app.create(
        "/api/v1/feedback",
        json!({"kind": "general", "comment": "Thanks"}),
    )
    .await;
    let organizer = app.token("o@example.org", &[Role::Organizer]);

    let public = feed(&app, None, "?after=0").await;
    let private = feed(&app, Some(&organizer), "?after=0").await;

    let resources = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["resource"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        resources(&public),
        vec!["speaker"],
        "feedback for organizers only"
    );
    assert_eq!(resources(&private), vec!["speaker", "feedback"]);
    let shown = &public["items"][0];
    assert_eq!(shown["id"], speaker["id"]);
    assert_eq!(shown["action"], "created");
    assert_eq!(shown["data"]["full_name"], "Tara Lagu");
    assert!(shown["data"].get("email").is_none(), "no private field");
    assert_eq!(private["items"][0]["data"]["email"], "t.lagu@example.org");
    assert_eq!(
        public["next_after"], private["next_after"],
        "what a caller may not see is still passed over"
    );
}

async fn a_record_changed_several_times_appears_once_at_its_latest_change(app: TestApp) {
    let kept = app.round("2027-01-21", json!({"title": "One"})).await;
    let gone = app.round("2027-02-18", json!({"title": "Two"})).await;
    let kept_path = format!("/api/v1/rounds/{}", id_of(&kept));
    app.patch(&kept_path, &json!({"title": "One, again"})).await;
    app.patch(&kept_path, &json!({"title": "One, at last"}))
        .await;
    app.delete(&format!("/api/v1/rounds/{}", id_of(&gone)))
        .await;

    let page = feed(&app, None, "?after=0").await;

    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(items[0]["id"], kept["id"]);
    assert_eq!(items[0]["action"], "updated");
    assert_eq!(
        items[0]["data"]["title"], "One, at last",
        "as GET shows it now"
    );
    assert_eq!(items[1]["id"], gone["id"]);
    assert_eq!(items[1]["action"], "deleted");
    assert_eq!(items[1]["data"], Value::Null, "a tombstone");
    assert!(items[0]["seq"].as_i64() < items[1]["seq"].as_i64());
    assert_eq!(page["next_after"], items[1]["seq"]);
}

async fn the_feed_pages_with_next_after_and_refuses_what_it_cannot_serve(app: TestApp) {
    for day in ["2027-01-21", "2027-02-18", "2027-03-18"] {
        app.round(day, json!({})).await;
    }

    let first = feed(&app, None, "?after=0&limit=2").await;
    let rest = feed(
        &app,
        None,
        &format!("?after={}&limit=2", first["next_after"]),
    )
    .await;
    let end = feed(&app, None, &format!("?after={}", rest["next_after"])).await;
    let beyond = feed(&app, None, "?after=999999").await;

    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(end["items"], json!([]));
    assert_eq!(end["next_after"], rest["next_after"], "nothing new");
    assert_eq!(
        beyond["items"],
        json!([]),
        "beyond the newest is an empty page"
    );
    for bad in ["?after=-1", "?limit=0", "?limit=1001", "?after=x"] {
        assert_problem(
            app.request_as(None, Method::GET, &format!("/api/v1/changes{bad}"), None)
                .await,
            400,
        )
        .await;
    }
}

async fn an_after_older_than_the_feed_keeps_is_410_with_where_to_resume(app: TestApp) {
    for day in ["2027-01-21", "2027-02-18", "2027-03-18"] {
        app.round(day, json!({})).await;
    }
    let newest = feed(&app, None, "?after=0").await["next_after"].clone();
    // As retention leaves it: what is at or below 2 is no longer kept.
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().unwrap();
        conn.batch_execute("UPDATE change_log_floor SET purged_through = 2 WHERE id = 1")
            .unwrap();
    })
    .await
    .unwrap();

    let gone = app
        .request_as(None, Method::GET, "/api/v1/changes?after=1", None)
        .await;

    let problem = assert_problem(gone, 410).await;
    assert_eq!(problem["resync_after"], newest);
    assert!(problem["detail"].as_str().unwrap().contains("lists"));
    assert_eq!(
        feed(&app, None, "?after=2").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Two replicas on one database, four writers on each creating, changing and deleting at the
/// same time; a follower of one replica's feed ends with exactly what the lists show.
async fn a_follower_of_the_feed_ends_with_what_the_lists_show(app: TestApp) {
    let app = Arc::new(app);
    let replica = Arc::new(spawn_replica(&app).await);
    let mut follower: BTreeMap<(String, i64), Value> = BTreeMap::new();
    let mut after = 0i64;
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let app = if writer % 2 == 0 {
                app.clone()
            } else {
                replica.clone()
            };
            tokio::spawn(async move {
                for step in 0..6 {
                    let speaker = app
                        .create(
                            "/api/v1/speakers",
                            json!({"full_name": format!("Writer {writer} step {step}")}),
                        )
                        .await;
                    let path = format!("/api/v1/speakers/{}", id_of(&speaker));
                    app.patch(&path, &json!({"title": format!("Edited {step}")}))
                        .await;
                    if step % 2 == 0 {
                        assert_eq!(app.delete(&path).await.status(), 204);
                    }
                    let round = app
                        .round(&format!("2027-0{}-1{writer}", step + 1), json!({}))
                        .await;
                    if step % 3 == 0 {
                        app.delete(&format!("/api/v1/rounds/{}", id_of(&round)))
                            .await;
                    }
                }
            })
        })
        .collect();
    let follow = |page: Value, follower: &mut BTreeMap<(String, i64), Value>| {
        for item in page["items"].as_array().unwrap() {
            let key = (
                item["resource"].as_str().unwrap().to_owned(),
                item["id"].as_i64().unwrap(),
            );
            if item["data"].is_null() {
                follower.remove(&key);
            } else {
                follower.insert(key, item["data"].clone());
            }
        }
        page["next_after"].as_i64().unwrap()
    };
    // The follower reads while the writers write...
    let mut writing = writers;
    while writing.iter().any(|w| !w.is_finished()) {
        let page = feed(&app, None, &format!("?after={after}&limit=7")).await;
        after = follow(page, &mut follower);
        writing.retain(|w| !w.is_finished());
    }
    for writer in writing {
        writer.await.unwrap();
    }
    // ...and catches up once they are done.
    loop {
        let page = feed(&app, None, &format!("?after={after}&limit=50")).await;
        let empty = page["items"].as_array().unwrap().is_empty();
        after = follow(page, &mut follower);
        if empty {
            break;
        }
    }

    let mut listed: BTreeMap<(String, i64), Value> = BTreeMap::new();
    for (collection, resource) in [("speakers", "speaker"), ("rounds", "round")] {
        let page = app
            .request_as(
                None,
                Method::GET,
                &format!("/api/v1/{collection}?limit=100"),
                None,
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            listed.insert(
                (resource.to_owned(), item["id"].as_i64().unwrap()),
                item.clone(),
            );
        }
    }
    assert_eq!(
        listed.len(),
        8 * 3 + 8 * 4,
        "the writers' work, deletions taken out"
    );
    assert_eq!(follower, listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_log_is_append_only_on_postgres() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    app.department("Clinical Informatics").await;
    let database = app.database.clone();

    let refused = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().unwrap();
        // The entry is in `changes` once numbered (here, or by the webhook worker's poll).
        lhs_rounds::platform::changelog::number(&mut conn).unwrap();
        [
            "UPDATE changes SET actor = 'someone else'",
            "DELETE FROM changes",
        ]
        .map(|sql| conn.batch_execute(sql).map_err(|e| e.to_string()))
    })
    .await
    .unwrap();

    for outcome in refused {
        let error = outcome.expect_err("refused by the trigger");
        assert!(error.contains("append-only"), "{error}");
    }
    assert_eq!(app.get_ok("/api/v1/audit").await["total"], 1);
}

/// The change log's entries of `resource`, as `(record id, number)`, after numbering what is
/// queued.
fn numbered(conn: &mut lhs_rounds::platform::db::DbConnection, resource: &str) -> Vec<(i32, i64)> {
    use diesel::prelude::*;
    use lhs_rounds::platform::schema::changes;
    lhs_rounds::platform::changelog::number(conn).unwrap();
    lhs_rounds::on_backend!(conn, |c| changes::table
        .filter(changes::resource.eq(resource))
        .order(changes::seq)
        .select((changes::record_id, changes::seq))
        .load(c))
    .unwrap()
}

/// The entry of the creation of department `id`, as a write records it.
fn created(id: i32) -> lhs_rounds::platform::changelog::Change<'static> {
    lhs_rounds::platform::changelog::Change {
        resource: "department",
        id,
        action: lhs_rounds::platform::changelog::Action::Created,
        before: None,
        after: Some(json!({"id": id, "name": format!("Department {id}")})),
        actor: Some("test@example.org"),
        request_id: None,
    }
}

async fn a_rolled_back_write_takes_no_number_and_messages_come_with_the_number(app: TestApp) {
    use lhs_rounds::platform::changelog;
    // A receiver on this machine (nothing listens there: the messages stay pending).
    let app = crate::helpers::spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
    })
    .await
    .expect("the backend of the app given");
    let webhook = app
        .post(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["department.*"]}),
        )
        .await;
    assert_eq!(webhook.status(), 201);
    let database = app.database.clone();
    let (entries, messages) = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use lhs_rounds::platform::schema::webhook_messages;
        let mut conn = database.connection().unwrap();
        let conn = &mut *conn;
        changelog::record(conn, created(1)).unwrap();
        let rolled_back = diesel::Connection::transaction::<(), _, _>(conn, |c| {
            changelog::record(c, created(2)).unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(rolled_back.is_err());
        changelog::record(conn, created(3)).unwrap();
        let entries = numbered(conn, "department");
        // Numbering again finds nothing new.
        assert_eq!(changelog::number(conn).unwrap(), 0);
        let messages: Vec<(i64, String)> =
            lhs_rounds::on_backend!(conn, |c| webhook_messages::table
                .order(webhook_messages::id)
                .select((webhook_messages::change_seq, webhook_messages::event_type))
                .load(c))
            .unwrap();
        (entries, messages)
    })
    .await
    .unwrap();
    assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(entries[1].1, entries[0].1 + 1, "no gap: {entries:?}");
    assert_eq!(
        messages,
        entries
            .iter()
            .map(|(_, seq)| (*seq, "department.created".to_owned()))
            .collect::<Vec<_>>(),
        "one message for each numbered entry, with its number"
    );
}

/// A write that commits after another is numbered after it, whichever wrote first: a reader of
/// the feed who has seen the later number never meets a smaller one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_numbered_in_commit_order_on_postgres() {
    use lhs_rounds::platform::changelog;
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let database = app.database.clone();
    let (between, after) = tokio::task::spawn_blocking(move || {
        let mut first = database.connection().unwrap();
        let mut second = database.connection().unwrap();
        let mut reader = database.connection().unwrap();
        first.batch_execute("BEGIN").unwrap();
        changelog::record(&mut first, created(1)).unwrap();
        changelog::record(&mut second, created(2)).unwrap();
        let between = numbered(&mut reader, "department");
        first.batch_execute("COMMIT").unwrap();
        (between, numbered(&mut reader, "department"))
    })
    .await
    .unwrap();
    assert_eq!(between.iter().map(|e| e.0).collect::<Vec<_>>(), [2]);
    assert_eq!(after.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(after[0], between[0]);
    assert_eq!(after[1].1, after[0].1 + 1);
    // The feed shows them in that order too.
    let admin = app.token("admin@example.org", &[Role::Admin]);
    let items = feed(&app, Some(&admin), "?after=0").await["items"].clone();
    let departments: Vec<i64> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["resource"] == "department")
        .map(|i| i["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(departments, [after[0].1, after[1].1]);
}

/// Four threads write and number at once (on PostgreSQL, numberings that meet start again;
/// on SQLite, writers take turns) while a fifth reads: every entry gets one number, the
/// numbers run without a gap, and no read ever shows a gap that a later one fills.
async fn writers_and_numberers_at_once_give_each_entry_one_number_and_readers_no_gap(app: TestApp) {
    use lhs_rounds::platform::changelog;
    const WRITERS: i32 = 4;
    const WRITES: i32 = 40;
    let database = app.database.clone();
    let (reads, last) = tokio::task::spawn_blocking(move || {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let database = database.clone();
                    scope.spawn(move || {
                        let mut conn = database.connection().unwrap();
                        for i in 0..WRITES {
                            changelog::record(&mut conn, created(1 + w * WRITES + i)).unwrap();
                            changelog::number(&mut conn).unwrap();
                        }
                    })
                })
                .collect();
            let reader = scope.spawn(|| {
                let mut conn = database.connection().unwrap();
                let mut reads = 0;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    let seen = numbered(&mut conn, "department");
                    let seqs: Vec<i64> = seen.iter().map(|e| e.1).collect();
                    let first = seqs.first().copied().unwrap_or(0);
                    assert!(
                        seqs.iter()
                            .zip(first..)
                            .all(|(seq, expected)| *seq == expected),
                        "a read with a gap: {seqs:?}"
                    );
                    reads += 1;
                    if finished {
                        return (reads, seen);
                    }
                }
            });
            for writer in writers {
                writer.join().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            reader.join().unwrap()
        })
    })
    .await
    .unwrap();
    assert!(reads > 1, "the reader read while the writers wrote");
    let mut ids: Vec<i32> = last.iter().map(|e| e.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=WRITERS * WRITES).collect::<Vec<_>>());
}
