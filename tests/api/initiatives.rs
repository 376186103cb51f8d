//! Initiatives: their fields and rules, who reads and writes them, their links to rounds (and
//! the copy of them on each round's row), the derived fields, PDSA cycles and their state
//! machine, and the SQUIRE report.

use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, spawn_app_with, Receiver, TestApp};

on_both_backends!(
    an_initiative_is_created_read_changed_and_deleted,
    an_active_initiative_needs_an_aim_and_a_closed_one_a_note,
    reads_follow_the_public_read_setting_and_team_emails_are_for_organizers,
    only_organizers_write_initiatives,
    the_list_filters_by_status_stage_phase_and_department,
    a_round_lists_the_initiatives_linked_to_it,
    the_copies_of_a_rounds_initiatives_match_the_links,
    what_an_initiative_uses_cannot_be_deleted_from_under_it,
    the_derived_fields_follow_the_loop_and_its_age,
    pdsa_cycles_are_numbered_and_move_forward_only,
    the_report_fills_the_squire_items_as_json_and_markdown,
    the_learning_events_are_sent_to_who_names_them,
    a_round_lists_at_most_a_hundred_initiatives,
);

/// A minimal initiative body, merged with `extra`.
pub fn body(title: &str, extra: Value) -> Value {
    let mut body = json!({"title": title});
    json_patch::merge(&mut body, &extra);
    body
}

pub async fn initiative(app: &TestApp, title: &str, extra: Value) -> Value {
    app.create("/api/v1/initiatives", body(title, extra)).await
}

async fn an_initiative_is_created_read_changed_and_deleted(app: TestApp) {
    let dhq = app.department("Division of Healthcare Quality").await;
    let lagu = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let response = app
        .post(
            "/api/v1/initiatives",
            &body(
                "Using patient comments to improve care",
                json!({
                    "problem_statement": "Comments are read by no one who can act on them.",
                    "aim_statement": "80% answered within 14 days by June 2020",
                    "aim_target": 80, "aim_target_date": "2020-06-30",
                    "stage": "testing", "status": "active", "progress_score": 3.5,
                    "determination": "quality_improvement",
                    "team": [
                        {"name": "Tara Lagu", "email": "tara.lagu@example.org", "speaker_id": lagu, "role": "lead"},
                        {"name": "Aubri Drake", "email": "aubri.drake@example.org", "role": "facilitator"}
                    ],
                    "department_ids": [dhq]
                }),
            ),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = id_of(&created);
    assert_eq!(location, format!("/api/v1/initiatives/{id}"));
    assert_eq!(created["stage"], "testing");
    assert_eq!(created["lhs_phase"], "practice", "derived from the stage");
    assert_eq!(created["aim_target"], 80.0);
    assert_eq!(created["aim_target_date"], "2020-06-30");
    assert_eq!(created["progress_score"], 3.5);
    assert_eq!(created["team"][0]["speaker_id"], lagu);
    assert_eq!(created["team"][1]["role"], "facilitator");
    assert_eq!(created["department_ids"], json!([dhq]));
    assert_eq!(created["rounds"], json!([]));
    assert_eq!(created["open_action_items"], 0);
    assert_eq!(created["unclosed_loop"], false);
    assert_eq!(app.get_ok(&location).await, created);

    for (stage, phase) in [
        ("problem", "knowledge"),
        ("evidence", "knowledge"),
        ("design", "knowledge"),
        ("implementation", "practice"),
        ("evaluation", "data"),
        ("sustain", "data"),
    ] {
        let changed = app.patch(&location, &json!({"stage": stage})).await;
        assert_eq!(changed.status(), 200);
        let changed: Value = changed.json().await.unwrap();
        assert_eq!(changed["lhs_phase"], phase, "{stage}");
    }
    let patched: Value = app
        .patch(&location, &json!({"team": [], "progress_score": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["team"], json!([]));
    assert_eq!(patched["progress_score"], Value::Null);
    let replaced = app
        .put(&location, &body("Patient comments, renamed", json!({})))
        .await;
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(
        replaced["status"], "proposed",
        "PUT replaces the whole record"
    );
    assert_eq!(replaced["department_ids"], json!([]));

    assert_eq!(app.delete(&location).await.status(), 204);
    assert_problem(app.get(&location).await, 404).await;
}

async fn an_active_initiative_needs_an_aim_and_a_closed_one_a_note(app: TestApp) {
    let refused = app
        .post(
            "/api/v1/initiatives",
            &body("No aim", json!({"status": "active"})),
        )
        .await;
    let problem = assert_problem(refused, 422).await;
    assert_eq!(
        error_fields(&problem),
        vec!["aim_target", "aim_target_date"]
    );

    let created = initiative(
        &app,
        "An aim",
        json!({"aim_target": 10, "aim_target_date": "2020-01-01"}),
    )
    .await;
    let path = format!("/api/v1/initiatives/{}", id_of(&created));
    for status in ["completed", "abandoned"] {
        let problem = assert_problem(app.patch(&path, &json!({"status": status})).await, 422).await;
        assert_eq!(error_fields(&problem), vec!["closing_note"], "{status}");
    }
    let closed = app
        .patch(
            &path,
            &json!({"status": "completed", "closing_note": "Sustained for a year"}),
        )
        .await;
    assert_eq!(closed.status(), 200);

    for (field, value) in [
        ("progress_score", json!(0.75)),
        ("progress_score", json!(5.5)),
        ("progress_score", json!(0)),
        ("stage", json!("done")),
        ("determination", json!("qi")),
        ("aim_target_date", json!("2020-02-30")),
    ] {
        let problem = assert_problem(
            app.post("/api/v1/initiatives", &body("Bad", json!({field: value})))
                .await,
            422,
        )
        .await;
        assert_eq!(error_fields(&problem), vec![field], "{field}: {value}");
    }
    let bad_team = json!({"team": [{"name": "A", "email": "not an address", "role": "member"},
                                   {"name": "B", "email": "b@example.org", "role": "boss"},
                                   {"name": "C", "email": "c@example.org", "role": "member", "speaker_id": 2147483647}]});
    let problem = assert_problem(
        app.post("/api/v1/initiatives", &body("Team", bad_team))
            .await,
        422,
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        vec!["team[0].email", "team[1].role", "team[2].speaker_id"]
    );
    let problem = assert_problem(
        app.post(
            "/api/v1/initiatives",
            &body("Departments", json!({"department_ids": [2147483647]})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["department_ids[0]"]);
}

async fn reads_follow_the_public_read_setting_and_team_emails_are_for_organizers(app: TestApp) {
    let created = initiative(
        &app,
        "Private addresses",
        json!({"team": [{"name": "Tara Lagu", "email": "tara.lagu@example.org", "role": "lead"}]}),
    )
    .await;
    let path = format!("/api/v1/initiatives/{}", id_of(&created));
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);
    for token in [None, Some(viewer.as_str())] {
        let shown: Value = app
            .request_as(token, Method::GET, &path, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(shown["team"][0]["name"], "Tara Lagu");
        assert_eq!(shown["team"][0]["email"], Value::Null, "{token:?}");
        assert!(shown.get("created_by").is_none());
        let listed: Value = app
            .request_as(token, Method::GET, "/api/v1/initiatives", None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["items"][0]["team"][0]["email"], Value::Null);
    }
    let shown: Value = app
        .request_as(Some(&organizer), Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["team"][0]["email"], "tara.lagu@example.org");

    let closed = spawn_app_with(app.backend(), |s| s.public_read = false)
        .await
        .unwrap();
    assert_problem(
        closed
            .request_as(None, Method::GET, "/api/v1/initiatives", None)
            .await,
        401,
    )
    .await;
    let viewer = closed.token("viewer@example.org", &[Role::Viewer]);
    let listed = closed
        .request_as(Some(&viewer), Method::GET, "/api/v1/initiatives", None)
        .await;
    assert_eq!(listed.status(), 200);
}

async fn only_organizers_write_initiatives(app: TestApp) {
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);
    let body = body("Who may write", json!({}));
    assert_problem(
        app.request_as(None, Method::POST, "/api/v1/initiatives", Some(&body))
            .await,
        401,
    )
    .await;
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::POST,
            "/api/v1/initiatives",
            Some(&body),
        )
        .await,
        403,
    )
    .await;
    // Authorized first: a viewer's bad body is 403, not 422.
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::POST,
            "/api/v1/initiatives",
            Some(&json!({"nonsense": true})),
        )
        .await,
        403,
    )
    .await;
    let created = app
        .request_as(
            Some(&organizer),
            Method::POST,
            "/api/v1/initiatives",
            Some(&body),
        )
        .await;
    assert_eq!(created.status(), 201);
    let id = id_of(&created.json().await.unwrap());
    let round = id_of(&app.round("2019-05-23", json!({})).await);
    let link = format!("/api/v1/initiatives/{id}/rounds/{round}");
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::PUT,
            &link,
            Some(&json!({"purpose": "design"})),
        )
        .await,
        403,
    )
    .await;
    let linked = app
        .request_as(
            Some(&organizer),
            Method::PUT,
            &link,
            Some(&json!({"purpose": "design"})),
        )
        .await;
    assert_eq!(linked.status(), 201);
}

async fn the_list_filters_by_status_stage_phase_and_department(app: TestApp) {
    let dhq = app.department("Division of Healthcare Quality").await;
    let aim = json!({"aim_target": 1, "aim_target_date": "2020-01-01"});
    let mut a = aim.clone();
    json_patch::merge(
        &mut a,
        &json!({"status": "active", "stage": "testing", "department_ids": [dhq]}),
    );
    initiative(&app, "A", a).await;
    initiative(&app, "B", json!({"stage": "evaluation"})).await;
    initiative(
        &app,
        "C",
        json!({"stage": "problem", "department_ids": [dhq]}),
    )
    .await;
    let titles = |page: Value| -> Vec<String> {
        let mut titles: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect();
        titles.sort();
        titles
    };
    assert_eq!(
        titles(app.get_ok("/api/v1/initiatives").await),
        ["A", "B", "C"]
    );
    assert_eq!(
        titles(app.get_ok("/api/v1/initiatives?status=active").await),
        ["A"]
    );
    assert_eq!(
        titles(app.get_ok("/api/v1/initiatives?stage=evaluation").await),
        ["B"]
    );
    assert_eq!(
        titles(app.get_ok("/api/v1/initiatives?lhs_phase=knowledge").await),
        ["C"]
    );
    assert_eq!(
        titles(app.get_ok("/api/v1/initiatives?lhs_phase=data").await),
        ["B"]
    );
    assert_eq!(
        titles(
            app.get_ok(&format!("/api/v1/initiatives?department_id={dhq}"))
                .await
        ),
        ["A", "C"]
    );
    let problem = assert_problem(app.get("/api/v1/initiatives?lhs_phase=wisdom").await, 400).await;
    assert_eq!(error_fields(&problem), vec!["lhs_phase"]);
}

async fn a_round_lists_the_initiatives_linked_to_it(app: TestApp) {
    let round = app
        .round(
            "2019-04-25",
            json!({"title": "How can we use patient comments to improve care?"}),
        )
        .await;
    let round_id = id_of(&round);
    assert_eq!(round["initiatives"], json!([]));
    let a = id_of(&initiative(&app, "Patient comments", json!({})).await);
    let b = id_of(&initiative(&app, "Readmissions", json!({})).await);
    let link = |i: i32| format!("/api/v1/initiatives/{i}/rounds/{round_id}");

    let made = app
        .put(
            &link(a),
            &json!({"purpose": "introduce", "note": "Tara Lagu's talk"}),
        )
        .await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    assert_eq!(made["initiative_id"], a);
    assert_eq!(made["round_id"], round_id);
    assert_eq!(made["purpose"], "introduce");
    let again = app
        .put(
            &link(a),
            &json!({"purpose": "introduce", "note": "Tara Lagu's talk"}),
        )
        .await;
    assert_eq!(again.status(), 200, "the same link again");
    let changed = app.put(&link(a), &json!({"purpose": "review"})).await;
    assert_eq!(changed.status(), 200);
    assert_eq!(
        app.put(&link(b), &json!({"purpose": "design"}))
            .await
            .status(),
        201
    );

    let shown = app.get_ok(&format!("/api/v1/rounds/{round_id}")).await;
    assert_eq!(
        shown["initiatives"],
        json!([{"id": a, "title": "Patient comments"}, {"id": b, "title": "Readmissions"}])
    );
    let initiative_a = app.get_ok(&format!("/api/v1/initiatives/{a}")).await;
    assert_eq!(initiative_a["rounds"][0]["round_id"], round_id);
    assert_eq!(initiative_a["rounds"][0]["purpose"], "review");
    assert_eq!(initiative_a["rounds"][0]["note"], Value::Null);

    let listed = app
        .get_ok(&format!("/api/v1/rounds/{round_id}/initiatives"))
        .await;
    assert_eq!(listed["total"], 2);
    assert_eq!(
        app.get_ok(&format!(
            "/api/v1/rounds/{round_id}/initiatives?stage=sustain"
        ))
        .await["total"],
        0
    );

    // A new title shows on the round, whose version (its ETag) moves with it.
    let etag = app
        .get(&format!("/api/v1/rounds/{round_id}"))
        .await
        .headers()["etag"]
        .clone();
    app.patch(
        &format!("/api/v1/initiatives/{b}"),
        &json!({"title": "Fewer readmissions"}),
    )
    .await;
    let response = app.get(&format!("/api/v1/rounds/{round_id}")).await;
    assert_ne!(response.headers()["etag"], etag);
    let shown: Value = response.json().await.unwrap();
    assert_eq!(shown["initiatives"][1]["title"], "Fewer readmissions");

    assert_eq!(app.delete(&link(a)).await.status(), 204);
    assert_problem(app.delete(&link(a)).await, 404).await;
    let shown = app.get_ok(&format!("/api/v1/rounds/{round_id}")).await;
    assert_eq!(
        shown["initiatives"],
        json!([{"id": b, "title": "Fewer readmissions"}])
    );
    assert_problem(
        app.put(
            &format!("/api/v1/initiatives/{a}/rounds/2147483647"),
            &json!({"purpose": "review"}),
        )
        .await,
        404,
    )
    .await;
    assert_problem(
        app.put(
            &format!("/api/v1/initiatives/2147483647/rounds/{round_id}"),
            &json!({"purpose": "review"}),
        )
        .await,
        404,
    )
    .await;
    let problem = assert_problem(app.put(&link(a), &json!({"purpose": "chat"})).await, 422).await;
    assert_eq!(error_fields(&problem), vec!["purpose"]);
    assert_problem(app.get("/api/v1/rounds/2147483647/initiatives").await, 404).await;
}

/// The rounds' `initiatives_doc`, rebuilt from the links after writes through the API and by
/// hand in SQL, is what the triggers kept.
async fn the_copies_of_a_rounds_initiatives_match_the_links(app: TestApp) {
    use diesel::prelude::*;
    use lhs_rounds::platform::schema::{initiative_rounds, initiatives, rounds};

    let mut round_ids = Vec::new();
    for day in ["2027-01-07", "2027-01-14", "2027-01-21"] {
        round_ids.push(id_of(&app.round(day, json!({})).await));
    }
    let mut initiative_ids = Vec::new();
    for title in ["Comments", "Falls", "Sepsis"] {
        initiative_ids.push(id_of(&initiative(&app, title, json!({})).await));
    }
    for (i, initiative) in initiative_ids.iter().enumerate() {
        for round in round_ids.iter().take(i + 1) {
            let path = format!("/api/v1/initiatives/{initiative}/rounds/{round}");
            assert_eq!(
                app.put(&path, &json!({"purpose": "review"})).await.status(),
                201
            );
        }
    }
    app.patch(
        &format!("/api/v1/initiatives/{}", initiative_ids[0]),
        &json!({"title": "Patient comments"}),
    )
    .await;
    app.delete(&format!(
        "/api/v1/initiatives/{}/rounds/{}",
        initiative_ids[2], round_ids[1]
    ))
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/initiatives/{}", initiative_ids[1]))
            .await
            .status(),
        204
    );
    let (sepsis, last) = (initiative_ids[2], round_ids[2]);
    let database = app.database.clone();
    let (stored, rebuilt) = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        for statement in [
            format!("UPDATE initiatives SET title = 'Sepsis bundle' WHERE id = {sepsis}"),
            format!("DELETE FROM initiative_rounds WHERE initiative_id = {sepsis} AND round_id = {last}"),
        ] {
            diesel::sql_query(&statement)
                .execute(&mut *conn)
                .expect(&statement);
        }
        let stored: Vec<(i32, String)> = rounds::table
            .order(rounds::id)
            .select((rounds::id, rounds::initiatives_doc))
            .load(&mut *conn)
            .expect("the rounds");
        let links: Vec<(i32, i32, String)> = initiative_rounds::table
            .inner_join(initiatives::table)
            .order((initiative_rounds::round_id, initiatives::id))
            .select((initiative_rounds::round_id, initiatives::id, initiatives::title))
            .load(&mut *conn)
            .expect("the links");
        let rebuilt: Vec<(i32, Value)> = stored
            .iter()
            .map(|(id, _)| {
                let items: Vec<Value> = links
                    .iter()
                    .filter(|l| l.0 == *id)
                    .map(|l| json!([l.1, l.2]))
                    .collect();
                (*id, Value::from(items))
            })
            .collect();
        let stored: Vec<(i32, Value)> = stored
            .into_iter()
            .map(|(id, doc)| (id, serde_json::from_str(&doc).expect("JSON")))
            .collect();
        (stored, rebuilt)
    })
    .await
    .unwrap();
    assert_eq!(stored, rebuilt);
    assert_eq!(
        stored[0].1,
        json!([
            [initiative_ids[0], "Patient comments"],
            [sepsis, "Sepsis bundle"]
        ])
    );
    assert_eq!(stored[2].1, json!([]));
}

async fn what_an_initiative_uses_cannot_be_deleted_from_under_it(app: TestApp) {
    let dhq = app.department("Division of Healthcare Quality").await;
    let lagu = app.speaker("Tara Lagu", &["MD"]).await;
    let id = id_of(
        &initiative(
            &app,
            "Uses",
            json!({"department_ids": [dhq],
                   "team": [{"name": "Tara Lagu", "email": "t@example.org", "speaker_id": lagu, "role": "lead"}]}),
        )
        .await,
    );
    let round = id_of(&app.round("2019-05-23", json!({})).await);
    app.put(
        &format!("/api/v1/initiatives/{id}/rounds/{round}"),
        &json!({"purpose": "design"}),
    )
    .await;
    let problem =
        assert_problem(app.delete(&format!("/api/v1/departments/{dhq}")).await, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("1 initiative"),
        "{problem}"
    );
    let problem = assert_problem(app.delete(&format!("/api/v1/speakers/{lagu}")).await, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("initiative team"),
        "{problem}"
    );
    let problem = assert_problem(app.delete(&format!("/api/v1/rounds/{round}")).await, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("initiative link"),
        "{problem}"
    );

    app.create(
        &format!("/api/v1/initiatives/{id}/pdsa-cycles"),
        json!({"change_idea": "A digest"}),
    )
    .await;
    let problem = assert_problem(app.delete(&format!("/api/v1/initiatives/{id}")).await, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("1 PDSA cycle"),
        "{problem}"
    );
}

/// Writes `at` as the creation and change time of initiative `id`, by hand in SQL.
async fn backdate(app: &TestApp, table: &str, id: i32, days: i64) {
    use diesel::RunQueryDsl;
    let at = (chrono::Utc::now() - chrono::Duration::days(days))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    let statement =
        format!("UPDATE {table} SET created_at = '{at}', updated_at = '{at}' WHERE id = {id}");
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        diesel::sql_query(&statement)
            .execute(&mut *conn)
            .expect(&statement);
    })
    .await
    .unwrap();
}

async fn the_derived_fields_follow_the_loop_and_its_age(app: TestApp) {
    let id = id_of(
        &initiative(
            &app,
            "Loop",
            json!({"status": "active", "aim_target": 80, "aim_target_date": "2030-01-01"}),
        )
        .await,
    );
    let path = format!("/api/v1/initiatives/{id}");
    let round = id_of(&app.round("2027-01-07", json!({})).await);
    for (kind, extra) in [
        (
            "action_item",
            json!({"owner": {"name": "A", "email": "a@example.org"}, "due_date": "2030-01-01"}),
        ),
        (
            "action_item",
            json!({"owner": {"name": "B", "email": "b@example.org"}, "due_date": "2030-01-01", "status": "done"}),
        ),
        (
            "action_item",
            json!({"owner": {"name": "C", "email": "c@example.org"}, "due_date": "2030-01-01", "status": "in_progress"}),
        ),
        ("decision", json!({})),
    ] {
        let mut outcome = json!({"kind": kind, "text": "Something", "initiative_id": id});
        json_patch::merge(&mut outcome, &extra);
        app.create(&format!("/api/v1/rounds/{round}/outcomes"), outcome)
            .await;
    }
    let shown = app.get_ok(&path).await;
    assert_eq!(shown["open_action_items"], 2, "open and in progress");
    assert_eq!(shown["unclosed_loop"], false, "an outcome today");

    // A day's alert: once the initiative and its outcomes are older, the loop is unclosed.
    app.patch("/api/v1/series", &json!({"loop_alert_days": 1}))
        .await;
    let fresh = app.get(&path).await;
    let fresh_etag = fresh.headers()["etag"].clone();
    let database = app.database.clone();
    let old = (chrono::Utc::now() - chrono::Duration::days(3))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl;
        let mut conn = database.connection().expect("a connection");
        for statement in [
            format!(
                "UPDATE initiatives SET created_at = '{old}', updated_at = '{old}' WHERE id = {id}"
            ),
            format!("UPDATE round_outcomes SET created_at = '{old}', updated_at = '{old}'"),
        ] {
            diesel::sql_query(&statement)
                .execute(&mut *conn)
                .expect(&statement);
        }
    })
    .await
    .unwrap();
    let stale = app.get(&path).await;
    assert_ne!(
        stale.headers()["etag"],
        fresh_etag,
        "time alone turned the flag: the ETag moved with it"
    );
    let stale: Value = stale.json().await.unwrap();
    assert_eq!(stale["unclosed_loop"], true);
    assert!(
        stale["last_activity_at"].as_str().unwrap() < shown["last_activity_at"].as_str().unwrap()
    );

    // A PDSA decision closes the loop again.
    let cycle = app
        .create(
            &format!("/api/v1/initiatives/{id}/pdsa-cycles"),
            json!({"change_idea": "Digest", "prediction": "Half", "act_decision": "adopt", "stage": "closed"}),
        )
        .await;
    assert_eq!(cycle["number"], 1);
    let closed = app.get_ok(&path).await;
    assert_eq!(closed["unclosed_loop"], false);
    assert!(
        closed["last_activity_at"].as_str().unwrap() > stale["last_activity_at"].as_str().unwrap()
    );

    // Not active: never unclosed.
    let quiet = id_of(&initiative(&app, "Proposed", json!({})).await);
    backdate(&app, "initiatives", quiet, 400).await;
    assert_eq!(
        app.get_ok(&format!("/api/v1/initiatives/{quiet}")).await["unclosed_loop"],
        false
    );
}

async fn pdsa_cycles_are_numbered_and_move_forward_only(app: TestApp) {
    let id = id_of(&initiative(&app, "Cycles", json!({})).await);
    let round = id_of(&app.round("2019-09-26", json!({})).await);
    let cycles = format!("/api/v1/initiatives/{id}/pdsa-cycles");
    let first = app
        .create(
            &cycles,
            json!({"change_idea": "A weekly digest", "objective": "Do managers read it?",
                   "plan": {"who": "Patient Experience", "where": "Ward 4", "when": "August"},
                   "round_id": round}),
        )
        .await;
    assert_eq!(first["number"], 1);
    assert_eq!(first["stage"], "plan");
    assert_eq!(first["plan"]["where"], "Ward 4");
    assert_eq!(first["plan"]["what"], Value::Null);
    let second = app
        .create(&cycles, json!({"change_idea": "A reply template"}))
        .await;
    assert_eq!(second["number"], 2);
    let path = format!("/api/v1/pdsa-cycles/{}", id_of(&first));

    // Leaving plan takes a prediction.
    let problem = assert_problem(app.patch(&path, &json!({"stage": "do"})).await, 422).await;
    assert_eq!(error_fields(&problem), vec!["prediction"]);
    let done = app
        .patch(
            &path,
            &json!({"stage": "do", "prediction": "Half answer within 14 days"}),
        )
        .await;
    assert_eq!(done.status(), 200);
    // Forward, skipping a stage.
    let acting: Value = app
        .patch(
            &path,
            &json!({"stage": "act", "study_notes": "40%", "prediction_confirmed": "partly"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acting["stage"], "act");
    // A step back is a new cycle.
    let problem = assert_problem(app.patch(&path, &json!({"stage": "study"})).await, 409).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("new cycle") && detail.contains("act"),
        "{detail}"
    );
    let problem = assert_problem(app.patch(&path, &json!({"stage": "plan"})).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("new cycle"));
    // Closing takes a decision.
    let problem = assert_problem(app.patch(&path, &json!({"stage": "closed"})).await, 422).await;
    assert_eq!(error_fields(&problem), vec!["act_decision"]);
    let closed: Value = app
        .patch(&path, &json!({"stage": "closed", "act_decision": "adapt"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(closed["stage"], "closed");
    assert_eq!(closed["act_decision"], "adapt");
    assert!(closed["decided_at"].is_string());
    // A closed cycle's decision stands; its notes may still be completed.
    let problem = assert_problem(
        app.patch(&path, &json!({"act_decision": "adopt"})).await,
        409,
    )
    .await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("decision stands"));
    let noted = app
        .patch(&path, &json!({"next_steps": "Add a template"}))
        .await;
    assert_eq!(noted.status(), 200);
    // PUT keeps the same rules.
    let mut body = closed.clone();
    for field in [
        "id",
        "initiative_id",
        "number",
        "decided_at",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    ] {
        body.as_object_mut().unwrap().remove(field);
    }
    body["stage"] = json!("do");
    assert_problem(app.put(&path, &body).await, 409).await;

    // Recorded after the fact, a cycle may start closed, with what closing takes.
    let problem = assert_problem(
        app.post(&cycles, &json!({"change_idea": "Late", "stage": "closed"}))
            .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["prediction", "act_decision"]);
    let late = app
        .create(
            &cycles,
            json!({"change_idea": "Late", "stage": "closed", "prediction": "p", "act_decision": "abandon"}),
        )
        .await;
    assert_eq!(late["number"], 3);

    let listed = app.get_ok(&cycles).await;
    let numbers: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    assert_eq!(
        app.get_ok(&format!("{cycles}?stage=closed")).await["total"],
        2
    );
    assert_problem(
        app.get("/api/v1/initiatives/2147483647/pdsa-cycles").await,
        404,
    )
    .await;
    assert_problem(
        app.post(
            "/api/v1/initiatives/2147483647/pdsa-cycles",
            &json!({"change_idea": "x"}),
        )
        .await,
        404,
    )
    .await;
    let problem = assert_problem(
        app.post(
            &cycles,
            &json!({"change_idea": "x", "round_id": 2147483647}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["round_id"]);
    assert_eq!(
        app.delete(&format!("/api/v1/pdsa-cycles/{}", id_of(&second)))
            .await
            .status(),
        204
    );
}

async fn the_report_fills_the_squire_items_as_json_and_markdown(app: TestApp) {
    let dhq = app.department("Division of Healthcare Quality").await;
    let id = id_of(
        &initiative(
            &app,
            "Patient comments",
            json!({"problem_statement": "Comments go unread", "aim_statement": "80% by June",
                   "aim_target": 80, "aim_target_date": "2020-06-30", "status": "active",
                   "determination": "quality_improvement", "department_ids": [dhq],
                   "team": [{"name": "Tara Lagu", "email": "tara.lagu@example.org", "role": "lead"}]}),
        )
        .await,
    );
    let round = id_of(
        &app.round("2019-04-25", json!({"title": "Patient comments"}))
            .await,
    );
    app.put(
        &format!("/api/v1/initiatives/{id}/rounds/{round}"),
        &json!({"purpose": "introduce"}),
    )
    .await;
    app.create(
        &format!("/api/v1/initiatives/{id}/pdsa-cycles"),
        json!({"change_idea": "A weekly digest", "prediction": "Half", "stage": "closed", "act_decision": "adapt"}),
    )
    .await;
    app.create(
        &format!("/api/v1/initiatives/{id}/measures"),
        json!({"name": "Answered in 14 days", "type": "process", "data_type": "proportion",
               "frequency": "month", "improvement_direction": "increase",
               "operational_definition": "Comments answered within 14 days"}),
    )
    .await;
    app.create(
        &format!("/api/v1/rounds/{round}/outcomes"),
        json!({"kind": "decision", "text": "Adopt the aim", "initiative_id": id}),
    )
    .await;

    let report = app
        .get_ok(&format!("/api/v1/initiatives/{id}/report"))
        .await;
    assert_eq!(report["guideline"], "SQUIRE 2.0");
    assert_eq!(report["title"], "Patient comments");
    assert_eq!(report["aims"]["aim_target"], 80.0);
    assert_eq!(
        report["context"]["departments"][0]["name"],
        "Division of Healthcare Quality"
    );
    assert_eq!(report["context"]["rounds"][0]["round_id"], round);
    assert_eq!(
        report["interventions"]["change_ideas"],
        json!(["A weekly digest"])
    );
    assert_eq!(report["interventions"]["team"][0]["role"], "lead");
    assert_eq!(
        report["measures"][0]["operational_definition"],
        "Comments answered within 14 days"
    );
    assert_eq!(report["ethics"], "quality_improvement");
    let kinds: Vec<&str> = report["results"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["round", "pdsa_cycle", "pdsa_decision", "decision"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let anonymous: Value = app
        .request_as(
            None,
            Method::GET,
            &format!("/api/v1/initiatives/{id}/report"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(anonymous["interventions"]["team"][0]["email"], Value::Null);

    let markdown = app
        .client
        .get(app.url(&format!("/api/v1/initiatives/{id}/report")))
        .header("accept", "text/markdown")
        .send()
        .await
        .unwrap();
    assert_eq!(markdown.status(), 200);
    assert_eq!(
        markdown.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert!(markdown
        .headers()
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().contains("Accept")));
    let text = markdown.text().await.unwrap();
    for heading in [
        "# Patient comments",
        "## Problem and aims [4, 6]",
        "## Context [7]",
        "## Interventions and team [8]",
        "## Measures and analysis [10, 11]",
        "## Ethical considerations [12]",
        "## Results over time [13a]",
    ] {
        assert!(text.contains(heading), "{heading} in\n{text}");
    }
    assert!(
        !text.contains("tara.lagu@example.org"),
        "no address in a public answer"
    );
    assert_problem(app.get("/api/v1/initiatives/2147483647/report").await, 404).await;
}

async fn the_learning_events_are_sent_to_who_names_them(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
        s.webhook_retry_schedule = "1s,1s".into();
    })
    .await
    .unwrap();
    let named = Receiver::start(&[]).await;
    let everything = Receiver::start(&[]).await;
    app.create(
        "/api/v1/webhooks",
        json!({"url": named.url, "events": ["initiative.stage_changed", "pdsa_cycle.decided", "action_item.*"]}),
    )
    .await;
    app.create(
        "/api/v1/webhooks",
        json!({"url": everything.url, "events": ["*"]}),
    )
    .await;

    let id = id_of(&initiative(&app, "Events", json!({})).await);
    app.patch(
        &format!("/api/v1/initiatives/{id}"),
        &json!({"stage": "design"}),
    )
    .await;
    app.patch(
        &format!("/api/v1/initiatives/{id}"),
        &json!({"title": "Events, renamed"}),
    )
    .await;
    let cycle = app
        .create(
            &format!("/api/v1/initiatives/{id}/pdsa-cycles"),
            json!({"change_idea": "x"}),
        )
        .await;
    app.patch(
        &format!("/api/v1/pdsa-cycles/{}", id_of(&cycle)),
        &json!({"stage": "closed", "prediction": "p", "act_decision": "adopt"}),
    )
    .await;
    let round = id_of(&app.round("2027-01-07", json!({})).await);
    let item = app
        .create(
            &format!("/api/v1/rounds/{round}/outcomes"),
            json!({"kind": "action_item", "text": "Do it", "due_date": "2027-02-01",
                   "owner": {"name": "A", "email": "a@example.org"}}),
        )
        .await;
    app.patch(
        &format!("/api/v1/outcomes/{}", id_of(&item)),
        &json!({"status": "done"}),
    )
    .await;

    let got = named.wait_for(4, 30).await;
    let types: Vec<String> = got
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        vec![
            "initiative.stage_changed",
            "pdsa_cycle.decided",
            "action_item.assigned",
            "action_item.completed",
        ],
        "in order, and only what is named"
    );
    let message: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(message["data"]["stage"], "design");
    everything.wait_for(1, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let everything: Vec<String> = everything
        .received()
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        everything,
        vec!["round.created"],
        "`*` stays the schedule's"
    );
}

/// What a round's answer lists is bounded, as the document says: the 101st link is refused.
async fn a_round_lists_at_most_a_hundred_initiatives(app: TestApp) {
    let round = id_of(&app.round("2027-01-07", json!({})).await);
    for i in 0..100 {
        let id = id_of(&initiative(&app, &format!("Initiative {i}"), json!({})).await);
        let linked = app
            .put(
                &format!("/api/v1/initiatives/{id}/rounds/{round}"),
                &json!({"purpose": "review"}),
            )
            .await;
        assert_eq!(linked.status(), 201);
    }
    let one_more = id_of(&initiative(&app, "One more", json!({})).await);
    let problem = assert_problem(
        app.put(
            &format!("/api/v1/initiatives/{one_more}/rounds/{round}"),
            &json!({"purpose": "review"}),
        )
        .await,
        409,
    )
    .await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("100 initiatives"));
    let shown = app.get_ok(&format!("/api/v1/rounds/{round}")).await;
    assert_eq!(shown["initiatives"].as_array().unwrap().len(), 100);
}
