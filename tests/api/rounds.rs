use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, TestApp};

on_both_backends!(
    a_panel_of_eight_keeps_its_order_and_shows_each_speaker,
    a_ninth_speaker_or_the_same_speaker_twice_is_refused,
    times_are_accepted_with_any_offset_and_answered_in_utc,
    the_end_of_a_round_must_come_after_its_start,
    a_round_can_be_scheduled_before_its_topic_is_known,
    references_to_missing_records_name_each_field,
    upcoming_and_past_rounds_are_ordered_from_now,
    rounds_are_filtered_by_time_speaker_department_status_and_text,
    put_replaces_the_speakers_and_patch_merges,
    a_round_with_feedback_cannot_be_deleted,
    every_change_to_a_rounds_links_or_their_names_shows_in_its_reads,
    the_copies_of_a_rounds_links_match_the_links,
);

async fn eight_speakers(app: &TestApp) -> Vec<i32> {
    let names = [
        ("Howard Goldberg", vec!["MD"]),
        ("Paul Visintainer", vec!["PhD"]),
        ("Sandeep Muddasani", vec![]),
        ("Doug Salvador", vec!["MD", "MPH"]),
        ("Peter Lindenauer", vec!["MD", "MSc"]),
        ("Lauren Westafer", vec!["DO", "MPH"]),
        ("Tara Lagu", vec!["MD", "MPH"]),
        ("Quinn Pack", vec!["MD", "MSc"]),
    ];
    let mut ids = Vec::new();
    for (name, credentials) in names {
        ids.push(app.speaker(name, &credentials).await);
    }
    ids
}

async fn a_panel_of_eight_keeps_its_order_and_shows_each_speaker(app: TestApp) {
    let mut ids = eight_speakers(&app).await;
    ids.reverse();
    let dhq = app.department("Division of Healthcare Quality").await;
    let panel: Vec<Value> = ids
        .iter()
        .map(|id| json!({"speaker_id": id, "role": "panelist"}))
        .collect();

    let round = app
        .round(
            "2019-02-14",
            json!({"title": "The LHS at Baystate", "speakers": panel, "department_ids": [dhq]}),
        )
        .await;

    let shown: Vec<i64> = round["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["speaker_id"].as_i64().unwrap())
        .collect();
    assert_eq!(shown, ids.iter().map(|i| i64::from(*i)).collect::<Vec<_>>());
    assert_eq!(round["speakers"][0]["display_name"], "Quinn Pack, MD, MSc");
    assert_eq!(round["speakers"][0]["full_name"], "Quinn Pack");
    assert_eq!(round["speakers"][0]["credentials"], json!(["MD", "MSc"]));
    assert_eq!(round["speakers"][0]["role"], "panelist");
    assert_eq!(round["speakers"][5]["display_name"], "Sandeep Muddasani");
    assert_eq!(round["department_ids"], json!([dhq]));
    assert_eq!(
        round["departments"][0]["name"],
        "Division of Healthcare Quality"
    );
    assert_eq!(round["status"], "scheduled");
    assert_eq!(
        app.get_ok(&format!("/api/v1/rounds/{}", id_of(&round)))
            .await,
        round
    );
}

async fn a_ninth_speaker_or_the_same_speaker_twice_is_refused(app: TestApp) {
    let mut ids = eight_speakers(&app).await;
    ids.push(app.speaker("A Ninth", &[]).await);
    let nine: Vec<Value> = ids.iter().map(|id| json!({"speaker_id": id})).collect();
    let twice = json!([{"speaker_id": ids[0]}, {"speaker_id": ids[1]}, {"speaker_id": ids[0], "role": "moderator"}]);
    let base = json!({"starts_at": "2027-01-21T17:00:00Z", "ends_at": "2027-01-21T18:00:00Z", "location": "BMC – MassMutual 5"});

    let mut body = base.clone();
    body["speakers"] = Value::Array(nine);
    let problem = assert_problem(app.post("/api/v1/rounds", &body).await, 422).await;
    assert_eq!(error_fields(&problem), vec!["speakers"]);

    let mut body = base.clone();
    body["speakers"] = twice;
    let problem = assert_problem(app.post("/api/v1/rounds", &body).await, 422).await;
    assert_eq!(error_fields(&problem), vec!["speakers[2].speaker_id"]);

    let mut body = base;
    body["speakers"] = json!([{"speaker_id": ids[0], "role": "keynote"}]);
    let problem = assert_problem(app.post("/api/v1/rounds", &body).await, 422).await;
    assert_eq!(error_fields(&problem), vec!["speakers[0].role"]);
    assert_eq!(app.get_ok("/api/v1/rounds").await["total"], 0);
}

async fn times_are_accepted_with_any_offset_and_answered_in_utc(app: TestApp) {
    let round = app
        .create(
            "/api/v1/rounds",
            json!({"starts_at": "2019-04-25T12:00:00-04:00", "ends_at": "2019-04-25T13:00:00-04:00",
                   "location": "BMC – MassMutual 5"}),
        )
        .await;

    assert_eq!(round["starts_at"], "2019-04-25T16:00:00Z");
    assert_eq!(round["ends_at"], "2019-04-25T17:00:00Z");

    let bad = app
        .post(
            "/api/v1/rounds",
            &json!({"starts_at": "2019-04-25 12:00", "ends_at": "tomorrow", "location": "x"}),
        )
        .await;
    let problem = assert_problem(bad, 422).await;
    assert_eq!(error_fields(&problem), vec!["starts_at", "ends_at"]);
}

async fn the_end_of_a_round_must_come_after_its_start(app: TestApp) {
    let response = app
        .post(
            "/api/v1/rounds",
            &json!({"starts_at": "2027-01-21T13:00:00Z", "ends_at": "2027-01-21T13:00:00Z", "status": "postponed"}),
        )
        .await;

    let problem = assert_problem(response, 422).await;
    assert_eq!(
        error_fields(&problem),
        vec!["ends_at", "location", "status"]
    );
}

async fn a_round_can_be_scheduled_before_its_topic_is_known(app: TestApp) {
    let round = app.round("2027-03-18", json!({})).await;

    assert_eq!(round["title"], Value::Null);
    assert_eq!(round["speakers"], json!([]));
    assert_eq!(round["departments"], json!([]));
}

async fn references_to_missing_records_name_each_field(app: TestApp) {
    let real = app.speaker("Tara Lagu", &["MD", "MPH"]).await;

    let response = app
        .post(
            "/api/v1/rounds",
            &json!({"starts_at": "2027-01-21T17:00:00Z", "ends_at": "2027-01-21T18:00:00Z", "location": "Room 1",
                    "speakers": [{"speaker_id": real}, {"speaker_id": 987654}],
                    "department_ids": [123456]}),
        )
        .await;

    let problem = assert_problem(response, 422).await;
    assert_eq!(
        error_fields(&problem),
        vec!["speakers[1].speaker_id", "department_ids[0]"]
    );
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("no speaker with id 987654"));
}

async fn upcoming_and_past_rounds_are_ordered_from_now(app: TestApp) {
    for date in [
        "2019-01-17",
        "2019-04-25",
        "2019-02-14",
        "2099-03-01",
        "2098-12-01",
    ] {
        app.round(date, json!({})).await;
    }

    let past = app.get_ok("/api/v1/rounds?when=past").await;
    let upcoming = app.get_ok("/api/v1/rounds?when=upcoming").await;

    assert_eq!(
        starts(&past),
        vec!["2019-04-25", "2019-02-14", "2019-01-17"],
        "most recent first"
    );
    assert_eq!(
        starts(&upcoming),
        vec!["2098-12-01", "2099-03-01"],
        "soonest first"
    );
    let sorted = app.get_ok("/api/v1/rounds?when=past&sort=starts_at").await;
    assert_eq!(
        starts(&sorted),
        vec!["2019-01-17", "2019-02-14", "2019-04-25"]
    );
}

fn starts(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["starts_at"].as_str().unwrap()[..10].to_owned())
        .collect()
}

async fn rounds_are_filtered_by_time_speaker_department_status_and_text(app: TestApp) {
    let lagu = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let dhq = app.department("Division of Healthcare Quality").await;
    app.round("2019-04-25", json!({"title": "How can we use PATIENT comments to improve care?", "speakers": [{"speaker_id": lagu}]})).await;
    app.round(
        "2019-05-23",
        json!({"title": "SWOT Analysis", "department_ids": [dhq]}),
    )
    .await;
    app.round("2019-06-20", json!({"title": "SWOT Analysis continued", "description": "Réunion sur les Forces", "status": "cancelled"})).await;

    assert_eq!(
        starts(
            &app.get_ok(&format!("/api/v1/rounds?speaker_id={lagu}"))
                .await
        ),
        vec!["2019-04-25"]
    );
    assert_eq!(
        starts(
            &app.get_ok(&format!("/api/v1/rounds?department_id={dhq}"))
                .await
        ),
        vec!["2019-05-23"]
    );
    assert_eq!(
        starts(&app.get_ok("/api/v1/rounds?status=cancelled").await),
        vec!["2019-06-20"]
    );
    assert_eq!(
        starts(&app.get_ok("/api/v1/rounds?q=patient%20COMMENTS").await),
        vec!["2019-04-25"]
    );
    assert_eq!(
        starts(&app.get_ok("/api/v1/rounds?q=swot").await),
        vec!["2019-05-23", "2019-06-20"]
    );
    assert_eq!(
        starts(&app.get_ok("/api/v1/rounds?q=R%C3%89UNION").await),
        vec!["2019-06-20"],
        "unicode case folding"
    );
    assert_eq!(
        starts(
            &app.get_ok("/api/v1/rounds?from=2019-05-01T00:00:00-04:00&to=2019-06-20T12:00:00Z")
                .await
        ),
        vec!["2019-05-23", "2019-06-20"],
        "from and to are inclusive"
    );
    assert_eq!(
        starts(
            &app.get_ok("/api/v1/rounds?sort=-starts_at&limit=1&offset=1")
                .await
        ),
        vec!["2019-05-23"]
    );
}

async fn put_replaces_the_speakers_and_patch_merges(app: TestApp) {
    let a = app.speaker("Howard Goldberg", &["MD"]).await;
    let b = app.speaker("Peter Lindenauer", &["MD", "MSc"]).await;
    let round = app.round("2019-01-17", json!({"title": "What is the LHS?", "speakers": [{"speaker_id": a}, {"speaker_id": b}]})).await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));

    let patched: Value = app
        .patch(
            &path,
            &json!({"title": "What is the LHS and why is it important?"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["title"], "What is the LHS and why is it important?");
    assert_eq!(
        patched["speakers"].as_array().unwrap().len(),
        2,
        "absent arrays are kept"
    );

    let reordered: Value = app
        .patch(
            &path,
            &json!({"speakers": [{"speaker_id": b, "role": "moderator"}, {"speaker_id": a}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reordered["speakers"][0]["speaker_id"], b);
    assert_eq!(reordered["speakers"][0]["role"], "moderator");

    let cancelled: Value = app
        .patch(&path, &json!({"status": "cancelled", "title": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["title"], Value::Null);

    let replaced = app.put(&path, &json!({"starts_at": "2019-01-17T17:00:00Z", "ends_at": "2019-01-17T18:00:00Z", "location": "3601 Main St, PVLSI"})).await;
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(replaced["speakers"], json!([]));
    assert_eq!(replaced["status"], "scheduled");

    let bad = app
        .patch(&path, &json!({"ends_at": "2019-01-17T16:00:00Z"}))
        .await;
    assert_eq!(
        error_fields(&assert_problem(bad, 422).await),
        vec!["ends_at"]
    );
    assert_eq!(
        app.get_ok(&path).await,
        replaced,
        "a failed write changes nothing"
    );
}

async fn a_round_with_feedback_cannot_be_deleted(app: TestApp) {
    let round = id_of(&app.held_round(json!({})).await);
    let feedback = app
        .create(
            "/api/v1/feedback",
            json!({"kind": "session_feedback", "round_id": round, "rating": 4}),
        )
        .await;

    let refused = app.delete(&format!("/api/v1/rounds/{round}")).await;
    let problem = assert_problem(refused, 409).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("1 feedback item"));

    assert_eq!(
        app.delete(&format!("/api/v1/feedback/{}", id_of(&feedback)))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/api/v1/rounds/{round}"))
            .await
            .status(),
        204
    );
    assert_problem(app.delete(&format!("/api/v1/rounds/{round}")).await, 404).await;
}

/// On PostgreSQL a round carries its own copy of its links' names (the migration
/// `round_link_documents`): every change that touches them shows, in a read of the round and in
/// a page, as it does on SQLite, which joins them at each read.
async fn every_change_to_a_rounds_links_or_their_names_shows_in_its_reads(app: TestApp) {
    let (ann, bob, cy) = (
        app.speaker("Ann Arbor", &["MD"]).await,
        app.speaker("Bob Baker", &["PhD"]).await,
        app.speaker("Cy Cole", &[]).await,
    );
    let (quality, informatics) = (
        app.department("Division of Healthcare Quality").await,
        app.department("Clinical Informatics").await,
    );
    let bare = id_of(&app.round("2027-03-04", json!({})).await);
    let round = id_of(
        &app.round(
            "2027-03-11",
            json!({"speakers": [{"speaker_id": ann}, {"speaker_id": bob, "role": "panelist"}],
                   "department_ids": [quality, informatics]}),
        )
        .await,
    );
    let path = format!("/api/v1/rounds/{round}");

    let changes = [
        (
            path.clone(),
            json!({"speakers": [{"speaker_id": bob, "role": "moderator"}, {"speaker_id": cy}],
                   "department_ids": [informatics]}),
        ),
        (
            format!("/api/v1/speakers/{bob}"),
            json!({"full_name": "Robert Baker", "credentials": ["PhD", "MPH"]}),
        ),
        (
            format!("/api/v1/departments/{informatics}"),
            json!({"name": "Clinical Informatics and Analytics", "abbreviation": "CIA"}),
        ),
        (
            format!("/api/v1/speakers/{ann}"),
            json!({"full_name": "Ann Arbour"}),
        ),
    ];
    for (target, change) in &changes {
        assert_eq!(app.patch(target, change).await.status(), 200, "{target}");
    }

    let response = app.get(&path).await;
    // Each link row written or removed bumps the round's version once, on both backends (the
    // ETag names it): 1 + 4 links, the PATCH, its 4 + 3 link rows, two renames shown.
    assert_eq!(
        response.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"v15-p\"")
    );
    let read: Value = response.json().await.expect("a round");
    let speakers: Vec<(Value, Value, Value)> = read["speakers"]
        .as_array()
        .expect("speakers")
        .iter()
        .map(|s| {
            (
                s["speaker_id"].clone(),
                s["display_name"].clone(),
                s["role"].clone(),
            )
        })
        .collect();
    assert_eq!(
        speakers,
        vec![
            (
                json!(bob),
                json!("Robert Baker, PhD, MPH"),
                json!("moderator")
            ),
            (json!(cy), json!("Cy Cole"), json!("presenter")),
        ]
    );
    assert_eq!(
        read["departments"],
        json!([{"id": informatics, "name": "Clinical Informatics and Analytics",
                "abbreviation": "CIA"}])
    );
    let page = app.get_ok("/api/v1/rounds?limit=50").await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], bare);
    assert_eq!(items[0]["speakers"], json!([]));
    assert_eq!(items[0]["departments"], json!([]));
    assert_eq!(items[1], read);
}

/// The copies of a round's links its row carries (`speakers_doc`, `departments_doc`, written by
/// triggers) are rebuilt here from the link tables, which are the record, after writes of every
/// kind: through the API, and by hand in SQL (a link removed, a name changed, links reordered).
async fn the_copies_of_a_rounds_links_match_the_links(app: TestApp) {
    use diesel::prelude::*;
    fn time(at: Option<chrono::NaiveDateTime>) -> Value {
        at.map_or(Value::Null, |at| {
            json!(at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        })
    }
    use lhs_rounds::platform::schema::{
        departments, round_departments, round_speakers, rounds, speakers,
    };

    let people = eight_speakers(&app).await;
    let mut units = Vec::new();
    for name in ["Quality", "Informatics", "Epidemiology"] {
        units.push(app.department(name).await);
    }
    let mut round_ids = Vec::new();
    for (i, day) in ["2027-01-07", "2027-01-14", "2027-01-21", "2027-01-28"]
        .iter()
        .enumerate()
    {
        let panel: Vec<Value> = people
            .iter()
            .skip(i)
            .take(1 + i * 2)
            .map(|id| json!({"speaker_id": id, "role": if i % 2 == 0 { "presenter" } else { "panelist" }}))
            .collect();
        let departments: Vec<i32> = units.iter().copied().take(i % 4).collect();
        round_ids.push(id_of(
            &app.round(
                day,
                json!({"speakers": panel, "department_ids": departments}),
            )
            .await,
        ));
    }
    let writes = [
        (
            format!("/api/v1/rounds/{}", round_ids[1]),
            json!({"speakers": [{"speaker_id": people[7]}, {"speaker_id": people[1], "role": "moderator"}],
                   "department_ids": [units[2], units[0]]}),
        ),
        (
            format!("/api/v1/speakers/{}", people[2]),
            json!({"full_name": "Sandeep M. Muddasani", "credentials": ["MS"]}),
        ),
        (
            format!("/api/v1/departments/{}", units[0]),
            json!({"name": "Healthcare Quality", "abbreviation": null}),
        ),
        (
            format!("/api/v1/rounds/{}", round_ids[2]),
            json!({"speakers": []}),
        ),
        (
            format!("/api/v1/rounds/{}", round_ids[1]),
            json!({"speakers": [{"speaker_id": people[7], "status": "invited"},
                                {"speaker_id": people[1], "role": "moderator", "status": "declined"}]}),
        ),
    ];
    for (path, body) in &writes {
        assert_eq!(app.patch(path, body).await.status(), 200, "{path}");
    }
    assert_eq!(
        app.delete(&format!("/api/v1/rounds/{}", round_ids[0]))
            .await
            .status(),
        204
    );
    let (last, reordered) = (round_ids[3], people[3]);
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let sql = [
            format!(
                "DELETE FROM round_speakers WHERE round_id = {last} AND speaker_id = {reordered}"
            ),
            format!("UPDATE speakers SET full_name = 'Doug B. Salvador' WHERE id = {reordered}"),
            format!("UPDATE round_speakers SET position = position + 100 WHERE round_id = {last}"),
            "UPDATE departments SET abbreviation = 'EPI' WHERE name = 'Epidemiology'".to_owned(),
            format!(
                "UPDATE round_speakers SET status = 'invited', invited_at = '2026-11-02 09:30:00.25' \
                 WHERE round_id = {last} AND position = 101"
            ),
        ];
        for statement in sql {
            diesel::sql_query(&statement)
                .execute(&mut *conn)
                .expect(&statement);
        }
    })
    .await
    .unwrap();

    let database = app.database.clone();
    let (stored, rebuilt) = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let stored: Vec<(i32, String, String)> = rounds::table
            .order(rounds::id)
            .select((rounds::id, rounds::speakers_doc, rounds::departments_doc))
            .load(&mut *conn)
            .expect("the rounds");
        type Link = (
            i32,
            i32,
            String,
            String,
            String,
            String,
            Option<chrono::NaiveDateTime>,
            Option<chrono::NaiveDateTime>,
        );
        let links: Vec<Link> = round_speakers::table
            .inner_join(speakers::table)
            .order((round_speakers::round_id, round_speakers::position))
            .select((
                round_speakers::round_id,
                round_speakers::speaker_id,
                speakers::full_name,
                speakers::credentials,
                round_speakers::role,
                round_speakers::status,
                round_speakers::invited_at,
                round_speakers::responded_at,
            ))
            .load(&mut *conn)
            .expect("the speaker links");
        let units: Vec<(i32, i32, String, Option<String>)> = round_departments::table
            .inner_join(departments::table)
            .order((round_departments::round_id, round_departments::position))
            .select((
                round_departments::round_id,
                departments::id,
                departments::name,
                departments::abbreviation,
            ))
            .load(&mut *conn)
            .expect("the department links");
        let rebuilt: Vec<(i32, Value, Value)> = stored
            .iter()
            .map(|(id, _, _)| {
                let speakers: Vec<Value> = links
                    .iter()
                    .filter(|l| l.0 == *id)
                    .map(|l| json!([l.1, l.2, l.3, l.4, l.5, time(l.6), time(l.7)]))
                    .collect();
                let departments: Vec<Value> = units
                    .iter()
                    .filter(|u| u.0 == *id)
                    .map(|u| json!([u.1, u.2, u.3]))
                    .collect();
                (*id, Value::from(speakers), Value::from(departments))
            })
            .collect();
        let stored: Vec<(i32, Value, Value)> = stored
            .into_iter()
            .map(|(id, s, d)| {
                let mut speakers: Value = serde_json::from_str(&s).expect("JSON speakers");
                // Each backend writes a time in the copy as it writes the column: read back.
                for item in speakers.as_array_mut().expect("a list") {
                    for at in [5, 6] {
                        let text = item[at].as_str().map(|t| t.replacen('T', " ", 1));
                        item[at] = time(text.map(|t| {
                            chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f")
                                .expect("a time in the copy")
                        }));
                    }
                }
                (
                    id,
                    speakers,
                    serde_json::from_str(&d).expect("JSON departments"),
                )
            })
            .collect();
        (stored, rebuilt)
    })
    .await
    .unwrap();

    assert_eq!(stored.len(), 3, "the deleted round is gone");
    assert!(
        rebuilt
            .iter()
            .any(|(_, s, _)| s.as_array().is_some_and(|s| s.len() > 2)),
        "the data set has panels"
    );
    assert!(
        rebuilt.iter().any(|(_, s, _)| s
            .as_array()
            .is_some_and(|s| s.iter().any(|l| l[4] == "declined" && !l[6].is_null()))),
        "the data set has answered invitations"
    );
    assert!(
        rebuilt.iter().any(|(_, s, _)| s
            .as_array()
            .is_some_and(|s| s.iter().any(|l| l[5] == "2026-11-02T09:30:00.250000"))),
        "the data set has an invitation written by hand"
    );
    assert_eq!(stored, rebuilt);
}
