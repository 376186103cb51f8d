use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, TestApp};

on_both_backends!(
    session_feedback_needs_a_round_and_a_rating,
    a_topic_suggestion_needs_a_comment_and_takes_no_rating,
    feedback_may_be_anonymous_or_signed,
    feedback_sent_to_a_round_takes_the_round_from_the_path,
    organisers_triage_feedback_by_patching_its_status,
    the_summary_counts_averages_and_distributes_ratings,
    feedback_is_listed_newest_first_and_filtered,
    the_one_statement_creation_logs_what_the_usual_way_logs,
    a_rating_is_taken_from_the_rounds_start,
    a_rating_is_taken_until_the_window_closes,
    the_window_is_named_in_the_series_zone,
    a_cancelled_round_takes_no_rating_but_comments_still_come,
    the_feedback_window_is_a_series_setting_of_zero_to_365_days,
);

async fn session_feedback_needs_a_round_and_a_rating(app: TestApp) {
    let missing = app
        .post(
            "/api/v1/feedback",
            &json!({"kind": "session_feedback", "comment": "Great"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(missing, 422).await),
        vec!["round_id", "rating"]
    );

    let out_of_range = app
        .post(
            "/api/v1/feedback",
            &json!({"kind": "session_feedback", "round_id": 424242, "rating": 6}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(out_of_range, 422).await),
        vec!["rating", "round_id"]
    );

    let round = id_of(&app.held_round(json!({})).await);
    let created = app
        .create(
            "/api/v1/feedback",
            json!({"kind": "session_feedback", "round_id": round, "rating": 5}),
        )
        .await;
    assert_eq!(created["status"], "new");
    assert_eq!(created["rating"], 5);
    assert_eq!(created["round_id"], round);
}

async fn a_topic_suggestion_needs_a_comment_and_takes_no_rating(app: TestApp) {
    let response = app
        .post(
            "/api/v1/feedback",
            &json!({"kind": "topic_suggestion", "rating": 3, "status": "accepted"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(response, 422).await),
        vec!["rating", "comment", "status"]
    );

    let unknown_kind = app
        .post(
            "/api/v1/feedback",
            &json!({"kind": "complaint", "comment": "x"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(unknown_kind, 422).await),
        vec!["kind"]
    );

    let too_long = app
        .post(
            "/api/v1/feedback",
            &json!({"kind": "general", "comment": "é".repeat(5001)}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(too_long, 422).await),
        vec!["comment"]
    );

    let suggestion = app
        .create("/api/v1/feedback", json!({"kind": "topic_suggestion", "comment": "Sepsis bundle compliance: what do our data say?"}))
        .await;
    assert_eq!(suggestion["round_id"], Value::Null);
    assert_eq!(suggestion["rating"], Value::Null);
}

async fn feedback_may_be_anonymous_or_signed(app: TestApp) {
    let anonymous = app
        .create(
            "/api/v1/feedback",
            json!({"kind": "general", "comment": "Thank you"}),
        )
        .await;
    let signed = app
        .create(
            "/api/v1/feedback",
            json!({"kind": "general", "comment": "Could rounds be recorded?", "author_name": "Mihaela Stefan", "author_email": "m.stefan@example.org"}),
        )
        .await;
    let bad_email = app
        .post(
            "/api/v1/feedback",
            &json!({"kind": "general", "comment": "x", "author_email": "nobody"}),
        )
        .await;

    assert_eq!(anonymous["author_name"], Value::Null);
    assert_eq!(signed["author_email"], "m.stefan@example.org");
    assert_eq!(
        error_fields(&assert_problem(bad_email, 422).await),
        vec!["author_email"]
    );
}

async fn feedback_sent_to_a_round_takes_the_round_from_the_path(app: TestApp) {
    let round = id_of(&app.held_round(json!({})).await);
    let other = id_of(&app.held_round(json!({})).await);

    let created = app
        .create(
            &format!("/api/v1/rounds/{round}/feedback"),
            json!({"kind": "session_feedback", "rating": 4}),
        )
        .await;
    assert_eq!(created["round_id"], round);
    let location_matches = app
        .create(
            &format!("/api/v1/rounds/{round}/feedback"),
            json!({"kind": "session_feedback", "rating": 3, "round_id": round}),
        )
        .await;
    assert_eq!(location_matches["round_id"], round);

    let mismatch = app
        .post(
            &format!("/api/v1/rounds/{round}/feedback"),
            &json!({"kind": "session_feedback", "rating": 4, "round_id": other}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(mismatch, 422).await),
        vec!["round_id"]
    );

    assert_problem(
        app.post(
            "/api/v1/rounds/777777/feedback",
            &json!({"kind": "session_feedback", "rating": 4}),
        )
        .await,
        404,
    )
    .await;
    let listed = app
        .get_ok(&format!("/api/v1/rounds/{round}/feedback"))
        .await;
    assert_eq!(listed["total"], 2);
    assert_eq!(
        app.get_ok(&format!("/api/v1/rounds/{other}/feedback"))
            .await["total"],
        0
    );
}

async fn organisers_triage_feedback_by_patching_its_status(app: TestApp) {
    let item = app
        .create(
            "/api/v1/feedback",
            json!({"kind": "topic_suggestion", "comment": "Falls prevention"}),
        )
        .await;
    let path = format!("/api/v1/feedback/{}", id_of(&item));

    let accepted: Value = app
        .patch(&path, &json!({"status": "accepted"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["comment"], "Falls prevention");

    let bad = app
        .patch(&path, &json!({"status": "maybe", "comment": "rewritten"}))
        .await;
    assert_eq!(
        error_fields(&assert_problem(bad, 422).await),
        vec!["status", "comment"]
    );
    let cleared = app.patch(&path, &json!({"status": null})).await;
    assert_eq!(
        error_fields(&assert_problem(cleared, 422).await),
        vec!["status"]
    );
    assert_eq!(app.get_ok(&path).await["status"], "accepted");

    assert_eq!(app.delete(&path).await.status(), 204);
    assert_problem(app.get(&path).await, 404).await;
}

async fn the_summary_counts_averages_and_distributes_ratings(app: TestApp) {
    let round = id_of(&app.held_round(json!({})).await);
    let empty = app
        .get_ok(&format!("/api/v1/rounds/{round}/feedback/summary"))
        .await;
    assert_eq!(
        empty,
        json!({"round_id": round, "count": 0, "average_rating": null,
                             "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}})
    );

    for rating in [5, 4, 5, 3] {
        app.create(
            &format!("/api/v1/rounds/{round}/feedback"),
            json!({"kind": "session_feedback", "rating": rating}),
        )
        .await;
    }
    app.create(
        "/api/v1/feedback",
        json!({"kind": "general", "comment": "not a rating", "round_id": round}),
    )
    .await;

    let summary = app
        .get_ok(&format!("/api/v1/rounds/{round}/feedback/summary"))
        .await;
    assert_eq!(
        summary,
        json!({"round_id": round, "count": 4, "average_rating": 4.25,
                               "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 2}})
    );
    assert_problem(app.get("/api/v1/rounds/999999/feedback/summary").await, 404).await;
}

async fn feedback_is_listed_newest_first_and_filtered(app: TestApp) {
    let round = id_of(&app.held_round(json!({})).await);
    let first = app
        .create(
            "/api/v1/feedback",
            json!({"kind": "general", "comment": "first"}),
        )
        .await;
    app.create(
        "/api/v1/feedback",
        json!({"kind": "session_feedback", "round_id": round, "rating": 2}),
    )
    .await;
    let last = app
        .create(
            "/api/v1/feedback",
            json!({"kind": "topic_suggestion", "comment": "last"}),
        )
        .await;
    app.patch(
        &format!("/api/v1/feedback/{}", id_of(&first)),
        &json!({"status": "reviewed"}),
    )
    .await;

    let all = app.get_ok("/api/v1/feedback").await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["items"][0]["id"], last["id"]);
    assert_eq!(
        app.get_ok("/api/v1/feedback?kind=session_feedback").await["total"],
        1
    );
    assert_eq!(
        app.get_ok(&format!("/api/v1/feedback?round_id={round}"))
            .await["total"],
        1
    );
    let reviewed = app.get_ok("/api/v1/feedback?status=reviewed").await;
    assert_eq!(reviewed["items"][0]["id"], first["id"]);
    assert_eq!(reviewed["total"], 1);
}

/// The change-log entry, its webhook messages and the answer of a creation, with what only
/// this creation has (ids, numbers, times) left out.
async fn logged(app: &TestApp, feedback_id: i64) -> Value {
    use diesel::prelude::*;
    use lhs_rounds::platform::schema::{changes, webhook_messages};
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().unwrap();
        lhs_rounds::platform::changelog::number(&mut conn).unwrap();
        let (seq, actor, action, changed, data) = changes::table
            .filter(changes::resource.eq("feedback"))
            .filter(changes::record_id.eq(feedback_id as i32))
            .select((
                changes::seq,
                changes::actor,
                changes::action,
                changes::changed_fields,
                changes::data,
            ))
            .first::<(i64, String, String, String, Option<String>)>(&mut *conn)
            .unwrap();
        let messages: Vec<(i32, String, String, String)> = webhook_messages::table
            .filter(webhook_messages::change_seq.eq(seq))
            .order(webhook_messages::webhook_id)
            .select((
                webhook_messages::webhook_id,
                webhook_messages::event_type,
                webhook_messages::payload,
                webhook_messages::message_id,
            ))
            .load(&mut *conn)
            .unwrap();
        // `msg_<UUIDv7 of the change>_<webhook id>`, the UUID left out.
        let shape = |id: &str| -> String {
            let uuid = id
                .strip_prefix("msg_")
                .and_then(|rest| rest.split_once('_'))
                .map(|(uuid, _)| uuid)
                .unwrap_or_default();
            assert!(
                uuid.len() == 32 && uuid.chars().all(|c| c.is_ascii_hexdigit()),
                "{id}"
            );
            id.replace(uuid, "<uuid>")
        };
        let without_ids = |text: &str| {
            let mut value: Value = serde_json::from_str(text).unwrap();
            strip(&mut value);
            value
        };
        json!({
            "actor": actor, "action": action,
            "changes": without_ids(&changed),
            "data": without_ids(&data.unwrap()),
            "messages": messages.iter().map(|(webhook, event, payload, id)| {
                json!([webhook, event, without_ids(payload), shape(id)])
            }).collect::<Vec<_>>(),
        })
    })
    .await
    .unwrap()
}

/// Ids, times and the message's timestamp, wherever they are.
fn strip(value: &mut Value) {
    if let Value::Object(map) = value {
        for key in ["id", "created_at", "updated_at", "timestamp"] {
            map.remove(key);
        }
        map.values_mut().for_each(strip);
    }
}

/// POST /feedback is written in one statement on PostgreSQL (`LoggedInsert`) unless it carries
/// an `Idempotency-Key`; on SQLite, and with a key, the usual way. Both must write the same
/// record, entry and messages, for every kind of body: each is sent both ways and compared.
async fn the_one_statement_creation_logs_what_the_usual_way_logs(app: TestApp) {
    use diesel::prelude::*;
    use lhs_rounds::platform::schema::webhooks;
    let round = id_of(&app.held_round(json!({})).await);
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().unwrap();
        let now = lhs_rounds::platform::db::now();
        for (events, enabled) in [
            (r#"["feedback.created"]"#, true),
            (r#"["feedback.*"]"#, true),
            (r#"["*"]"#, true),
            (r#"["round.created","speaker.*"]"#, true),
            (r#"["feedback.created"]"#, false),
        ] {
            diesel::insert_into(webhooks::table)
                .values((
                    webhooks::url.eq("https://receiver.example.org/hook"),
                    webhooks::events.eq(events),
                    webhooks::enabled.eq(enabled),
                    webhooks::secret.eq("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                    webhooks::created_at.eq(now),
                    webhooks::updated_at.eq(now),
                ))
                .execute(&mut *conn)
                .unwrap();
        }
    })
    .await
    .unwrap();
    let bodies = [
        json!({"kind": "session_feedback", "round_id": round, "rating": 4}),
        json!({"kind": "session_feedback", "round_id": round, "rating": 1, "comment": "  too long  "}),
        json!({"kind": "topic_suggestion", "comment": "Sepsis bundles \"100%\" of the time_", "author_name": "Aubri", "author_email": "a.drake@example.org"}),
        json!({"kind": "general", "comment": "Merci — très bien 👍\nLine two", "round_id": round}),
        // The placeholder of the one-statement path, in a comment: written the usual way.
        json!({"kind": "general", "comment": "ticket -2147483648"}),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let mut answers = Vec::new();
        for key in [None, Some(format!("same-{i}"))] {
            let mut request = app
                .client
                .post(app.url("/api/v1/feedback"))
                .bearer_auth(app.token("someone@example.org", &[]))
                .header("x-request-id", format!("request-{i}"))
                .json(body);
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201, "{body}");
            let mut answer: Value = response.json().await.unwrap();
            let logged = logged(&app, answer["id"].as_i64().unwrap()).await;
            strip(&mut answer);
            answers.push((answer, logged));
        }
        assert_eq!(answers[0], answers[1], "{body}");
        let messages = answers[0].1["messages"].as_array().unwrap().len();
        assert_eq!(
            messages, 2,
            "feedback.created and feedback.*, not * nor the disabled one"
        );
    }
}

// ---- the feedback window -----------------------------------------------------------------

/// An instant `minutes` from now (negative: ago), as RFC 3339 in UTC.
fn minutes_from_now(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A round from `starts` to `ends` (RFC 3339).
async fn round_between(app: &TestApp, starts: &str, ends: &str) -> Value {
    app.create(
        "/api/v1/rounds",
        json!({"starts_at": starts, "ends_at": ends, "location": "BMC – MassMutual 5"}),
    )
    .await
}

/// A rating of `round` sent both ways (`POST /feedback`, `POST /rounds/{id}/feedback`, the
/// second with an `Idempotency-Key`): the two answers' statuses and bodies.
async fn rate(app: &TestApp, round: i32) -> [(u16, Value); 2] {
    let by_body = app
        .post(
            "/api/v1/feedback",
            &json!({"kind": "session_feedback", "round_id": round, "rating": 4}),
        )
        .await;
    let by_path = app
        .client
        .post(app.url(&format!("/api/v1/rounds/{round}/feedback")))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("idempotency-key", format!("rating-of-{round}"))
        .json(&json!({"kind": "session_feedback", "rating": 2}))
        .send()
        .await
        .unwrap();
    let mut answers = Vec::new();
    for response in [by_body, by_path] {
        let status = response.status().as_u16();
        answers.push((status, response.json().await.unwrap()));
    }
    [answers[0].clone(), answers[1].clone()]
}

/// Asserts that both ratings were refused with a 422 naming `round_id`, whose message holds
/// every one of `words`, and that nothing was stored.
async fn assert_refused(app: &TestApp, round: i32, words: &[&str]) {
    let stored = app.get_ok("/api/v1/feedback").await["total"].clone();
    for (status, problem) in rate(app, round).await {
        assert_eq!(status, 422, "{problem}");
        assert_eq!(error_fields(&problem), vec!["round_id"], "{problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        for word in words {
            assert!(message.contains(word), "{word:?} is not in {message:?}");
        }
    }
    assert_eq!(app.get_ok("/api/v1/feedback").await["total"], stored);
}

async fn assert_taken(app: &TestApp, round: i32) {
    for (status, feedback) in rate(app, round).await {
        assert_eq!(status, 201, "{feedback}");
        assert_eq!(feedback["round_id"], round);
    }
}

async fn a_rating_is_taken_from_the_rounds_start(app: TestApp) {
    // A minute before it starts: refused, naming when it starts (in the series' zone).
    let soon = round_between(&app, &minutes_from_now(1), &minutes_from_now(61)).await;
    let starts_local = soon["starts_at_local"].as_str().unwrap();
    assert_refused(&app, id_of(&soon), &["has not started yet", starts_local]).await;

    // From its start (its start is now, to the second): taken.
    let now = minutes_from_now(0);
    let started = round_between(&app, &now, &minutes_from_now(60)).await;
    assert_taken(&app, id_of(&started)).await;
}

async fn a_rating_is_taken_until_the_window_closes(app: TestApp) {
    // In UTC, 30 calendar days are 30 times 24 hours: the edges to the minute.
    let patched = app
        .patch("/api/v1/series", &json!({"timezone": "UTC"}))
        .await;
    assert_eq!(patched.status(), 200);
    let thirty_days = 30 * 24 * 60;

    let closing = round_between(
        &app,
        &minutes_from_now(-thirty_days - 60 + 1),
        &minutes_from_now(-thirty_days + 1),
    )
    .await;
    assert_taken(&app, id_of(&closing)).await;

    let closed = round_between(
        &app,
        &minutes_from_now(-thirty_days - 60 - 1),
        &minutes_from_now(-thirty_days - 1),
    )
    .await;
    assert_refused(
        &app,
        id_of(&closed),
        &["is past its session feedback window", "30 days", "(UTC)"],
    )
    .await;

    // The demo's rounds of 2019 are long past theirs.
    let old = id_of(&app.round("2019-04-25", json!({})).await);
    assert_refused(&app, old, &["is past its session feedback window"]).await;
}

async fn the_window_is_named_in_the_series_zone(app: TestApp) {
    // With no days after the end, the window is the round itself: its local times, with the
    // series' offset, are the window's ends.
    let patched = app
        .patch("/api/v1/series", &json!({"feedback_window_days": 0}))
        .await;
    assert_eq!(patched.status(), 200);
    let ended = round_between(&app, &minutes_from_now(-61), &minutes_from_now(-1)).await;
    let (starts, ends) = (
        ended["starts_at_local"].as_str().unwrap(),
        ended["ends_at_local"].as_str().unwrap(),
    );
    assert!(
        starts.ends_with("-04:00") || starts.ends_with("-05:00"),
        "New York: {starts}"
    );
    assert_refused(
        &app,
        id_of(&ended),
        &[
            &format!("from {starts} until {ends} (America/New_York)"),
            "from its start until its end,",
        ],
    )
    .await;

    let running = round_between(&app, &minutes_from_now(-1), &minutes_from_now(59)).await;
    assert_taken(&app, id_of(&running)).await;
}

async fn a_cancelled_round_takes_no_rating_but_comments_still_come(app: TestApp) {
    let held = app.held_round(json!({"status": "cancelled"})).await;
    let future = app.round("2031-01-16", json!({})).await;
    assert_refused(&app, id_of(&held), &["was cancelled"]).await;
    assert_refused(&app, id_of(&future), &["has not started yet"]).await;

    for round in [id_of(&held), id_of(&future)] {
        for kind in ["topic_suggestion", "general"] {
            let comment = app
                .create(
                    &format!("/api/v1/rounds/{round}/feedback"),
                    json!({"kind": kind, "comment": "Could this round be recorded?"}),
                )
                .await;
            assert_eq!(comment["round_id"], round);
            app.create(
                "/api/v1/feedback",
                json!({"kind": kind, "comment": "More on sepsis", "round_id": round}),
            )
            .await;
        }
    }
}

async fn the_feedback_window_is_a_series_setting_of_zero_to_365_days(app: TestApp) {
    let series = app.get_ok("/api/v1/series").await;
    assert_eq!(series["feedback_window_days"], 30, "the default");

    for days in [-1, 366] {
        let refused = app
            .patch("/api/v1/series", &json!({"feedback_window_days": days}))
            .await;
        assert_eq!(
            error_fields(&assert_problem(refused, 422).await),
            vec!["feedback_window_days"]
        );
    }
    let set: Value = app
        .patch("/api/v1/series", &json!({"feedback_window_days": 365}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(set["feedback_window_days"], 365);

    // A PUT that leaves it out sets the default again, as it does every optional field.
    let mut replaced = app.get_ok("/api/v1/series").await;
    let body = json!({
        "name": replaced["name"], "timezone": replaced["timezone"],
        "default_start_time": replaced["default_start_time"],
        "default_duration_minutes": replaced["default_duration_minutes"],
    });
    replaced = app.put("/api/v1/series", &body).await.json().await.unwrap();
    assert_eq!(replaced["feedback_window_days"], 30);
}
