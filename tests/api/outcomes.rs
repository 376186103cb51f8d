//! What each round decided: outcomes and their rules, decisions kept as written, action items
//! with their derived `overdue`, the list across rounds, the items carried over to a round,
//! the to-do feed, and the demo's learning loop.

use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, TestApp};
use crate::initiatives::initiative;

on_both_backends!(
    a_round_records_its_outcomes_in_order,
    an_action_item_has_an_owner_and_a_due_date_and_nothing_else_does,
    a_decision_is_kept_as_written,
    an_action_item_is_done_or_overdue,
    action_items_are_listed_for_organizers_with_filters,
    open_items_are_carried_over_to_later_rounds,
    the_to_do_feed_is_an_rfc_5545_calendar_of_action_items,
    the_demo_has_the_learning_loop_of_the_page,
);

fn item(text: &str, email: &str, due: &str, extra: Value) -> Value {
    let mut body = json!({"kind": "action_item", "text": text, "due_date": due,
                          "owner": {"name": text, "email": email}});
    json_patch::merge(&mut body, &extra);
    body
}

async fn record(app: &TestApp, round: i32, body: Value) -> Value {
    app.create(&format!("/api/v1/rounds/{round}/outcomes"), body)
        .await
}

async fn a_round_records_its_outcomes_in_order(app: TestApp) {
    let round = id_of(
        &app.round("2019-05-23", json!({"title": "SWOT Analysis"}))
            .await,
    );
    let id = id_of(&initiative(&app, "Patient comments", json!({})).await);
    let cycle = app
        .create(
            &format!("/api/v1/initiatives/{id}/pdsa-cycles"),
            json!({"change_idea": "Digest"}),
        )
        .await;
    let first = record(
        &app,
        round,
        json!({"kind": "information", "text": "Strength: analysts work with clinicians"}),
    )
    .await;
    let second = record(
        &app,
        round,
        json!({"kind": "decision", "text": "Take up patient comments", "rationale": "Named first",
               "pdsa_cycle_id": id_of(&cycle)}),
    )
    .await;
    assert_eq!(first["position"], 1);
    assert_eq!(second["position"], 2);
    assert_eq!(second["initiative_id"], id, "taken from the PDSA cycle");
    assert_eq!(second["owner"], Value::Null);
    assert_eq!(second["overdue"], false);
    let third = record(
        &app,
        round,
        item("Draft the aim", "a@example.org", "2019-06-20", json!({})),
    )
    .await;
    assert_eq!(third["position"], 3);
    assert_eq!(third["status"], "open");

    let listed = app
        .get_ok(&format!("/api/v1/rounds/{round}/outcomes"))
        .await;
    let texts: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Strength: analysts work with clinicians",
            "Take up patient comments",
            "Draft the aim"
        ]
    );
    let anonymous: Value = app
        .request_as(
            None,
            Method::GET,
            &format!("/api/v1/rounds/{round}/outcomes"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(anonymous["items"][2]["owner"]["name"], "Draft the aim");
    assert_eq!(
        anonymous["items"][2]["owner"]["email"],
        Value::Null,
        "organizers only"
    );

    // A cycle of another initiative, and references to nothing.
    let other = id_of(&initiative(&app, "Other", json!({})).await);
    let problem = assert_problem(
        app.post(
            &format!("/api/v1/rounds/{round}/outcomes"),
            &json!({"kind": "decision", "text": "x", "initiative_id": other, "pdsa_cycle_id": id_of(&cycle)}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["pdsa_cycle_id"]);
    let problem = assert_problem(
        app.post(
            &format!("/api/v1/rounds/{round}/outcomes"),
            &json!({"kind": "decision", "text": "x", "initiative_id": 2147483647,
                    "pdsa_cycle_id": 2147483646, "corrects_id": 2147483645}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        vec!["initiative_id", "pdsa_cycle_id", "corrects_id"]
    );
    assert_problem(
        app.post(
            "/api/v1/rounds/2147483647/outcomes",
            &json!({"kind": "information", "text": "x"}),
        )
        .await,
        404,
    )
    .await;
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::POST,
            &format!("/api/v1/rounds/{round}/outcomes"),
            Some(&json!({"kind": "information", "text": "x"})),
        )
        .await,
        403,
    )
    .await;
    let problem = assert_problem(app.delete(&format!("/api/v1/rounds/{round}")).await, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("3 outcomes"),
        "{problem}"
    );
}

async fn an_action_item_has_an_owner_and_a_due_date_and_nothing_else_does(app: TestApp) {
    let round = id_of(&app.round("2019-05-23", json!({})).await);
    let path = format!("/api/v1/rounds/{round}/outcomes");
    for (body, fields) in [
        (
            json!({"kind": "action_item", "text": "Who? When?"}),
            vec!["owner", "due_date"],
        ),
        (
            json!({"kind": "action_item", "text": "x", "due_date": "2019-06-20",
                "owner": {"name": "A", "email": "nobody"}}),
            vec!["owner.email"],
        ),
        (
            json!({"kind": "action_item", "text": "x", "due_date": "2019-06-20",
                "owner": {"name": "A", "email": "a@example.org"}, "completed_at": "2019-06-01T12:00:00Z"}),
            vec!["completed_at"],
        ),
        (
            json!({"kind": "decision", "text": "x", "owner": {"name": "A", "email": "a@example.org"},
                "due_date": "2019-06-20", "status": "open"}),
            vec!["owner", "due_date", "status"],
        ),
        (json!({"kind": "minutes", "text": "x"}), vec!["kind"]),
        (json!({"kind": "information", "text": " "}), vec!["text"]),
        (
            json!({"kind": "action_item", "text": "x", "due_date": "20 June",
                "owner": {"name": "A", "email": "a@example.org"}}),
            vec!["due_date"],
        ),
    ] {
        let problem = assert_problem(app.post(&path, &body).await, 422).await;
        assert_eq!(error_fields(&problem), fields, "{body}");
    }
}

async fn a_decision_is_kept_as_written(app: TestApp) {
    let round = id_of(&app.round("2019-06-20", json!({})).await);
    let decision = record(
        &app,
        round,
        json!({"kind": "decision", "text": "Adopt the aim: 70%"}),
    )
    .await;
    let path = format!("/api/v1/outcomes/{}", id_of(&decision));
    let problem = assert_problem(
        app.patch(&path, &json!({"text": "Adopt the aim: 80%"}))
            .await,
        409,
    )
    .await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("new outcome") && detail.contains("corrects_id"),
        "{detail}"
    );
    assert_problem(
        app.patch(&path, &json!({"rationale": "Afterthought"}))
            .await,
        409,
    )
    .await;
    assert_problem(app.patch(&path, &json!({"kind": "information"})).await, 409).await;
    assert_problem(app.delete(&path).await, 409).await;
    // Linking it to the initiative it is about is not rewriting it.
    let id = id_of(&initiative(&app, "Aims", json!({})).await);
    let linked = app.patch(&path, &json!({"initiative_id": id})).await;
    assert_eq!(linked.status(), 200);

    let correction = record(
        &app,
        round,
        json!({"kind": "decision", "text": "Adopt the aim: 80%", "corrects_id": id_of(&decision)}),
    )
    .await;
    assert_eq!(correction["corrects_id"], id_of(&decision));
    assert_eq!(
        app.get_ok(&path).await["text"],
        "Adopt the aim: 70%",
        "kept as written"
    );
    let history = app.get_ok("/api/v1/audit?resource=outcome&limit=100").await;
    assert_eq!(history["total"], 3, "created, linked, and the correction");

    // Information may be rewritten and deleted, unless a correction names it.
    let note = record(&app, round, json!({"kind": "information", "text": "Typo"})).await;
    let note_path = format!("/api/v1/outcomes/{}", id_of(&note));
    assert_eq!(
        app.patch(&note_path, &json!({"text": "No typo"}))
            .await
            .status(),
        200
    );
    record(
        &app,
        round,
        json!({"kind": "information", "text": "x", "corrects_id": id_of(&note)}),
    )
    .await;
    assert_problem(app.delete(&note_path).await, 409).await;
}

/// PATCHes `path` with `body`, asserting 200, and answers the record.
async fn patched(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app.patch(path, &body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "PATCH {path} {body}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn an_action_item_is_done_or_overdue(app: TestApp) {
    let round = id_of(&app.round("2019-05-23", json!({})).await);
    let late = record(
        &app,
        round,
        item("Late", "a@example.org", "2019-06-20", json!({})),
    )
    .await;
    assert_eq!(late["overdue"], true, "open after its due date");
    let future = record(
        &app,
        round,
        item("Future", "a@example.org", "2099-01-01", json!({})),
    )
    .await;
    assert_eq!(future["overdue"], false);
    let path = format!("/api/v1/outcomes/{}", id_of(&late));
    let etag = app.get(&path).await.headers()["etag"].clone();
    let doing = patched(&app, &path, json!({"status": "in_progress"})).await;
    assert_eq!(doing["overdue"], true, "in progress is still overdue");
    let done = patched(&app, &path, json!({"status": "done"})).await;
    assert_eq!(done["overdue"], false);
    assert!(done["completed_at"].is_string(), "set when done");
    assert_ne!(app.get(&path).await.headers()["etag"], etag);
    let when = done["completed_at"].clone();
    let kept = patched(&app, &path, json!({"text": "Late, but done"})).await;
    assert_eq!(kept["completed_at"], when, "kept while done");
    let reopened = patched(&app, &path, json!({"status": "open"})).await;
    assert_eq!(reopened["completed_at"], Value::Null);
    let backdated = patched(
        &app,
        &path,
        json!({"status": "done", "completed_at": "2019-06-18T14:00:00Z"}),
    )
    .await;
    assert_eq!(backdated["completed_at"], "2019-06-18T14:00:00Z");
    let cancelled_late = patched(&app, &path, json!({"status": "cancelled"})).await;
    assert_eq!(
        cancelled_late["completed_at"],
        Value::Null,
        "no longer done"
    );
    let cancelled = patched(
        &app,
        &format!("/api/v1/outcomes/{}", id_of(&future)),
        json!({"status": "cancelled"}),
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
}

async fn action_items_are_listed_for_organizers_with_filters(app: TestApp) {
    let round = id_of(&app.round("2019-05-23", json!({})).await);
    let id = id_of(&initiative(&app, "Comments", json!({})).await);
    record(
        &app,
        round,
        item(
            "A",
            "Tara.Lagu@example.org",
            "2019-06-20",
            json!({"initiative_id": id}),
        ),
    )
    .await;
    record(
        &app,
        round,
        item(
            "B",
            "aubri.drake@example.org",
            "2099-06-20",
            json!({"status": "in_progress"}),
        ),
    )
    .await;
    record(
        &app,
        round,
        item(
            "C",
            "tara.lagu@example.org",
            "2019-07-01",
            json!({"status": "done"}),
        ),
    )
    .await;
    record(
        &app,
        round,
        json!({"kind": "decision", "text": "Not an action item"}),
    )
    .await;
    let texts = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        texts(app.get_ok("/api/v1/action-items").await),
        ["A", "C", "B"],
        "by due date"
    );
    assert_eq!(
        texts(app.get_ok("/api/v1/action-items?status=done").await),
        ["C"]
    );
    assert_eq!(
        texts(
            app.get_ok("/api/v1/action-items?owner_email=TARA.LAGU%40example.org")
                .await
        ),
        ["A", "C"],
        "ignoring case"
    );
    assert_eq!(
        texts(
            app.get_ok(&format!("/api/v1/action-items?initiative_id={id}"))
                .await
        ),
        ["A"]
    );
    assert_eq!(
        texts(
            app.get_ok("/api/v1/action-items?due_before=2019-07-01")
                .await
        ),
        ["A"]
    );
    assert_eq!(
        texts(app.get_ok("/api/v1/action-items?overdue=true").await),
        ["A"]
    );
    assert_eq!(
        texts(app.get_ok("/api/v1/action-items?overdue=false").await),
        ["C", "B"]
    );
    let problem = assert_problem(app.get("/api/v1/action-items?overdue=maybe").await, 400).await;
    assert_eq!(error_fields(&problem), vec!["overdue"]);
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(Some(&viewer), Method::GET, "/api/v1/action-items", None)
            .await,
        403,
    )
    .await;
    assert_problem(
        app.request_as(None, Method::GET, "/api/v1/action-items", None)
            .await,
        401,
    )
    .await;
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);
    let listed: Value = app
        .request_as(Some(&organizer), Method::GET, "/api/v1/action-items", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"][0]["owner"]["email"], "Tara.Lagu@example.org",
        "as written"
    );
}

async fn open_items_are_carried_over_to_later_rounds(app: TestApp) {
    let may = id_of(&app.round("2019-05-23", json!({})).await);
    let june = id_of(&app.round("2019-06-20", json!({})).await);
    let july = id_of(&app.round("2019-07-18", json!({})).await);
    let september = id_of(&app.round("2019-09-26", json!({})).await);
    record(
        &app,
        may,
        item("From May, open", "a@example.org", "2019-06-20", json!({})),
    )
    .await;
    record(
        &app,
        may,
        item(
            "From May, done",
            "a@example.org",
            "2019-06-20",
            json!({"status": "done"}),
        ),
    )
    .await;
    let from_june = record(
        &app,
        june,
        item(
            "From June, in progress",
            "b@example.org",
            "2019-09-26",
            json!({"status": "in_progress"}),
        ),
    )
    .await;
    record(
        &app,
        june,
        json!({"kind": "decision", "text": "Not carried"}),
    )
    .await;
    record(
        &app,
        july,
        item(
            "From July, cancelled",
            "c@example.org",
            "2019-08-01",
            json!({"status": "cancelled"}),
        ),
    )
    .await;
    record(
        &app,
        september,
        item("From September", "d@example.org", "2019-10-24", json!({})),
    )
    .await;
    let carried = |round: i32| {
        let app = &app;
        async move {
            app.get_ok(&format!("/api/v1/rounds/{round}/carried-over"))
                .await["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["text"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        carried(may).await,
        Vec::<String>::new(),
        "nothing before the first"
    );
    assert_eq!(carried(june).await, ["From May, open"]);
    assert_eq!(
        carried(july).await,
        ["From May, open", "From June, in progress"]
    );
    assert_eq!(
        carried(september).await,
        ["From May, open", "From June, in progress"]
    );
    app.patch(
        &format!("/api/v1/outcomes/{}", id_of(&from_june)),
        &json!({"status": "done"}),
    )
    .await;
    assert_eq!(
        carried(september).await,
        ["From May, open"],
        "done: no longer carried"
    );
    let anonymous: Value = app
        .request_as(
            None,
            Method::GET,
            &format!("/api/v1/rounds/{september}/carried-over"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(anonymous["items"][0]["owner"]["email"], Value::Null);
    assert_problem(app.get("/api/v1/rounds/2147483647/carried-over").await, 404).await;
}

/// The content lines of a calendar, unfolded.
fn unfolded(text: &str) -> Vec<String> {
    text.replace("\r\n ", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn the_to_do_feed_is_an_rfc_5545_calendar_of_action_items(app: TestApp) {
    let round = id_of(
        &app.round("2019-05-23", json!({"title": "SWOT Analysis"}))
            .await,
    );
    let open = record(
        &app,
        round,
        item(
            "Draft the survey; with commas, semicolons",
            "tara.lagu@example.org",
            "2019-06-20",
            json!({"rationale": "Weakness: data access"}),
        ),
    )
    .await;
    let done = record(
        &app,
        round,
        item(
            "List data sources",
            "aubri.drake@example.org",
            "2019-06-20",
            json!({"status": "done"}),
        ),
    )
    .await;
    record(
        &app,
        round,
        json!({"kind": "decision", "text": "Not a to-do"}),
    )
    .await;

    let response = app
        .request_as(None, Method::GET, "/api/v1/action-items.ics", None)
        .await;
    assert_eq!(
        response.status(),
        200,
        "calendars subscribe without a token"
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let etag = response.headers()["etag"].clone();
    let text = response.text().await.unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{line}");
    }
    let lines = unfolded(&text);
    assert_eq!(lines.iter().filter(|l| *l == "BEGIN:VTODO").count(), 2);
    assert!(!text.contains("VEVENT"));
    let uid = format!("UID:action-item-{}@lhs-rounds.invalid", id_of(&open));
    assert!(lines.contains(&uid), "{lines:?}");
    assert!(lines.contains(&"DUE;VALUE=DATE:20190620".to_owned()));
    assert!(lines.contains(&"STATUS:NEEDS-ACTION".to_owned()));
    assert!(lines.contains(&"STATUS:COMPLETED".to_owned()));
    assert!(lines.contains(&"SUMMARY:Draft the survey\\; with commas\\, semicolons".to_owned()));
    assert!(lines.iter().any(|l| l.starts_with("COMPLETED:")));
    assert!(
        !text.contains("@example.org"),
        "no owner's address in the feed"
    );
    assert!(text.contains("Owner: Draft the survey"));
    assert!(text.contains("SWOT Analysis (2019-05-23)"));

    let not_modified = app
        .client
        .get(app.url("/api/v1/action-items.ics"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);

    // One owner's feed, by address ignoring case; the UID stays when the item changes.
    let theirs = app
        .get("/api/v1/action-items.ics?owner_email=Tara.Lagu%40example.org")
        .await
        .text()
        .await
        .unwrap();
    let theirs = unfolded(&theirs);
    assert_eq!(theirs.iter().filter(|l| *l == "BEGIN:VTODO").count(), 1);
    assert!(theirs.contains(&uid));
    let sequence = |lines: &[String]| {
        lines
            .iter()
            .find(|l| l.starts_with("SEQUENCE:"))
            .cloned()
            .unwrap()
    };
    let before = sequence(&theirs);
    app.patch(
        &format!("/api/v1/outcomes/{}", id_of(&open)),
        &json!({"status": "in_progress"}),
    )
    .await;
    let after = unfolded(
        &app.get("/api/v1/action-items.ics?owner_email=tara.lagu%40example.org")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(after.contains(&uid));
    assert!(after.contains(&"STATUS:IN-PROCESS".to_owned()));
    assert_ne!(sequence(&after), before, "a new revision of the same to-do");
    let done_only = app
        .get("/api/v1/action-items.ics?status=done")
        .await
        .text()
        .await
        .unwrap();
    assert!(done_only.contains(&format!("action-item-{}@", id_of(&done))));
    assert!(!done_only.contains(&uid));
}

async fn the_demo_has_the_learning_loop_of_the_page(app: TestApp) {
    let database = app.database.clone();
    let reports = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let first = lhs_rounds::app::demo::seed(&mut conn).expect("first load");
        let second = lhs_rounds::app::demo::seed(&mut conn).expect("second load");
        (first.learning.to_string(), second.learning.to_string())
    })
    .await
    .unwrap();
    assert_eq!(
        reports.0,
        "1 initiative, 2 PDSA cycles, 1 measure with 24 points, 12 round outcomes"
    );
    assert_eq!(
        reports.1,
        "0 initiative, 0 PDSA cycles, 0 measure with 0 points, 0 round outcomes"
    );

    let initiatives = app.get_ok("/api/v1/initiatives").await;
    assert_eq!(initiatives["total"], 1);
    let initiative = &initiatives["items"][0];
    assert_eq!(
        initiative["title"],
        "Using patient comments to improve care"
    );
    assert_eq!(initiative["status"], "active");
    let april = initiative["rounds"][0]["round_id"].as_i64().unwrap();
    let round = app.get_ok(&format!("/api/v1/rounds/{april}")).await;
    assert_eq!(
        round["title"],
        "How can we use patient comments to improve care?"
    );
    assert_eq!(
        round["initiatives"][0]["title"],
        "Using patient comments to improve care"
    );

    let id = initiative["id"].as_i64().unwrap();
    let measures = app
        .get_ok(&format!("/api/v1/initiatives/{id}/measures"))
        .await;
    let measure = &measures["items"][0];
    assert_eq!(measure["points"], 24);
    let chart = app
        .get_ok(&format!("/api/v1/measures/{}/run-chart", measure["id"]))
        .await;
    let phase = &chart["phases"][0];
    assert_eq!(phase["status"], "ok");
    let shift = phase["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rule"] == "shift")
        .expect("a shift")
        .clone();
    assert_eq!(
        shift["from_period"], "2019-08-01",
        "from the month of PDSA cycle 1"
    );
    assert_eq!(shift["direction"], "above");
    assert_eq!(shift["favourable"], true);
    assert_eq!(
        phase["points"][13]["pdsa_cycle_id"],
        app.get_ok(&format!("/api/v1/initiatives/{id}/pdsa-cycles"))
            .await["items"][0]["id"]
    );

    // The SWOT rounds' outcomes, and what is still carried over.
    let rounds = app.get_ok("/api/v1/rounds?q=swot").await;
    let mut counts = Vec::new();
    for round in rounds["items"].as_array().unwrap() {
        let outcomes = app
            .get_ok(&format!("/api/v1/rounds/{}/outcomes", round["id"]))
            .await;
        counts.push((
            round["title"].as_str().unwrap().to_owned(),
            outcomes["total"].as_i64().unwrap(),
        ));
    }
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("SWOT Analysis".to_owned(), 7),
            ("SWOT Analysis continued".to_owned(), 5)
        ]
    );
    let upcoming = app.get_ok("/api/v1/rounds?when=upcoming").await;
    let next = upcoming["items"][0]["id"].as_i64().unwrap();
    let carried = app
        .get_ok(&format!("/api/v1/rounds/{next}/carried-over"))
        .await;
    assert_eq!(carried["total"], 1);
    assert_eq!(carried["items"][0]["overdue"], true);
    let report = app
        .get_ok(&format!("/api/v1/initiatives/{id}/report"))
        .await;
    assert_eq!(
        report["results"]["pdsa_cycles"].as_array().unwrap().len(),
        2
    );
}
