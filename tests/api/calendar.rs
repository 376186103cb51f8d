//! The series record and the iCalendar feeds. (The feeds are also read by two independent
//! parsers, Python's `icalendar` and `ical.js`, in `scripts/contract-test`.)

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, spawn_app_with, Backend, TestApp};

on_both_backends!(
    the_series_is_public_and_organizers_change_it,
    a_time_zone_the_tz_database_does_not_know_is_422,
    rounds_show_their_times_in_the_series_time_zone,
    the_feed_is_an_rfc_5545_calendar_of_the_rounds,
    winter_and_summer_rounds_both_read_noon_local,
    sequence_grows_when_time_place_or_status_change,
    a_cancelled_round_stays_in_the_feed_and_a_deleted_one_leaves,
    text_is_escaped_and_long_lines_are_folded,
    the_feed_takes_the_filters_of_the_round_list,
    one_round_has_a_calendar_of_its_own,
    feeds_revalidate_with_etags,
);

async fn ics(app: &TestApp, path: &str) -> (reqwest::StatusCode, String, String) {
    let response = app.request_as(None, Method::GET, path, None).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// The content lines, unfolded (RFC 5545 §3.1).
fn lines(text: &str) -> Vec<String> {
    text.replace("\r\n ", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The events of a calendar, each as its unfolded lines.
fn events(text: &str) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in lines(text) {
        match line.as_str() {
            "BEGIN:VEVENT" => current = Some(Vec::new()),
            "END:VEVENT" => all.extend(current.take()),
            _ => {
                if let Some(event) = current.as_mut() {
                    event.push(line);
                }
            }
        }
    }
    all
}

fn property<'a>(event: &'a [String], name: &str) -> Option<&'a str> {
    event.iter().find_map(|line| {
        let (head, value) = line.split_once(':')?;
        (head == name || head.starts_with(&format!("{name};"))).then_some(value)
    })
}

async fn the_series_is_public_and_organizers_change_it(app: TestApp) {
    let series = app
        .request_as(None, Method::GET, "/api/v1/series", None)
        .await;
    assert_eq!(series.status(), 200, "anyone may read it");
    let body: Value = series.json().await.unwrap();
    let etag = app.get("/api/v1/series").await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(body["timezone"], "America/New_York");
    assert_eq!(body["default_start_time"], "12:00");
    assert_eq!(body["default_duration_minutes"], 60);

    let viewer = app.token("v@example.org", &[lhs_rounds::platform::auth::Role::Viewer]);
    let refused = app
        .request_as(
            Some(&viewer),
            Method::PATCH,
            "/api/v1/series",
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_problem(refused, 403).await;

    let changed = app
        .client
        .patch(app.url("/api/v1/series"))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("if-match", &etag)
        .json(&json!({"contacts": [{"name": "Dr. Mihaela Stefan", "email": "m.stefan@example.org", "role": "topics"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let stale = app
        .client
        .patch(app.url("/api/v1/series"))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("if-match", &etag)
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412).await;
    let now = app.get_ok("/api/v1/series").await;
    assert_eq!(now["contacts"][0]["email"], "m.stefan@example.org");
    assert_eq!(now["name"], "Learning Health System Rounds");
}

async fn a_time_zone_the_tz_database_does_not_know_is_422(app: TestApp) {
    let bad = app
        .patch(
            "/api/v1/series",
            &json!({"timezone": "America/Springfield"}),
        )
        .await;

    assert_eq!(
        error_fields(&assert_problem(bad, 422).await),
        vec!["timezone"]
    );
    assert_eq!(
        app.get_ok("/api/v1/series").await["timezone"],
        "America/New_York"
    );
}

async fn rounds_show_their_times_in_the_series_time_zone(app: TestApp) {
    let round = app.round("2019-04-25", json!({})).await;
    assert_eq!(round["starts_at_local"], "2019-04-25T08:00:00-04:00");
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let before = app.get(&path).await.headers()["etag"].clone();

    app.patch("/api/v1/series", &json!({"timezone": "Europe/Paris"}))
        .await;

    let after = app.get(&path).await;
    assert_ne!(after.headers()["etag"], before, "local times changed");
    let round: Value = after.json().await.unwrap();
    assert_eq!(round["starts_at_local"], "2019-04-25T14:00:00+02:00");
    assert_eq!(round["starts_at"], "2019-04-25T12:00:00Z");
}

async fn the_feed_is_an_rfc_5545_calendar_of_the_rounds(app: TestApp) {
    let speaker = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "Tara Lagu", "credentials": ["MD", "MPH"], "email": "t.lagu@example.org"}),
        )
        .await;
    let department = app.department("Division of Healthcare Quality").await;
    let round = app
        .create(
            "/api/v1/rounds",
            json!({"title": "How can we use patient comments to improve care?",
                   "description": "Bring your own examples.",
                   "starts_at": "2027-04-22T12:00:00-04:00", "ends_at": "2027-04-22T13:00:00-04:00",
                   "location": "BMC – MassMutual 5",
                   "speakers": [{"speaker_id": id_of(&speaker), "role": "presenter"}],
                   "department_ids": [department]}),
        )
        .await;

    let (status, content_type, text) = ics(&app, "/api/v1/rounds.ics").await;

    assert_eq!(status, 200);
    assert_eq!(content_type, "text/calendar; charset=utf-8");
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "CRLF line ends only"
    );
    let all = lines(&text);
    for expected in [
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Learning Health System Rounds",
        "X-WR-TIMEZONE:America/New_York",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
        "BEGIN:VTIMEZONE",
        "TZID:America/New_York",
        "BEGIN:DAYLIGHT",
        "BEGIN:STANDARD",
    ] {
        assert!(all.iter().any(|l| l == expected), "{expected} in\n{text}");
    }
    assert!(all.iter().any(|l| l.starts_with("PRODID:")));
    let events = events(&text);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        property(event, "UID"),
        Some(format!("round-{}@lhs-rounds.invalid", id_of(&round)).as_str())
    );
    assert_eq!(
        property(event, "DTSTART;TZID=America/New_York"),
        Some("20270422T120000")
    );
    assert_eq!(
        property(event, "DTEND;TZID=America/New_York"),
        Some("20270422T130000")
    );
    assert_eq!(
        property(event, "SUMMARY"),
        Some("How can we use patient comments to improve care?")
    );
    assert_eq!(property(event, "LOCATION"), Some("BMC – MassMutual 5"));
    assert_eq!(property(event, "STATUS"), Some("CONFIRMED"));
    assert_eq!(property(event, "SEQUENCE"), Some("0"));
    assert!(property(event, "DTSTAMP").is_some() && property(event, "LAST-MODIFIED").is_some());
    let description = property(event, "DESCRIPTION").unwrap();
    assert!(
        description.contains("Tara Lagu\\, MD\\, MPH (presenter)"),
        "{description}"
    );
    assert!(description.contains("Division of Healthcare Quality"));
    assert!(description.contains("Bring your own examples."));
    assert!(
        !text.contains("t.lagu@example.org"),
        "no private field, ever"
    );
    assert_eq!(property(event, "URL"), None, "no LHS_PUBLIC_URL here");
}

async fn winter_and_summer_rounds_both_read_noon_local(app: TestApp) {
    for (day, offset) in [("2019-01-17", "-05:00"), ("2019-04-25", "-04:00")] {
        app.create(
            "/api/v1/rounds",
            json!({"starts_at": format!("{day}T12:00:00{offset}"), "ends_at": format!("{day}T13:00:00{offset}"), "location": "Room 1"}),
        )
        .await;
    }

    let (_, _, text) = ics(
        &app,
        "/api/v1/rounds.ics?from=2019-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
    )
    .await;

    let starts: Vec<String> = events(&text)
        .iter()
        .map(|e| {
            property(e, "DTSTART;TZID=America/New_York")
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(starts, vec!["20190117T120000", "20190425T120000"]);
    let all = lines(&text);
    // The rules of 2019: daylight time from March 10 at 2:00, standard from November 3.
    assert!(all.iter().any(|l| l == "DTSTART:20190310T020000"), "{text}");
    assert!(all.iter().any(|l| l == "DTSTART:20191103T020000"), "{text}");
    assert!(all.iter().any(|l| l == "TZOFFSETTO:-0400"));
    assert!(all.iter().any(|l| l == "TZNAME:EST"));
}

async fn sequence_grows_when_time_place_or_status_change(app: TestApp) {
    let round = app.round("2027-03-18", json!({"title": "Falls"})).await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let event_path = format!("{path}.ics");
    let sequence = |text: String| property(&events(&text)[0], "SEQUENCE").map(str::to_owned);

    app.patch(&path, &json!({"title": "Falls prevention"}))
        .await;
    assert_eq!(
        sequence(ics(&app, &event_path).await.2).as_deref(),
        Some("0")
    );
    app.patch(&path, &json!({"starts_at": "2027-03-18T11:30:00Z"}))
        .await;
    assert_eq!(
        sequence(ics(&app, &event_path).await.2).as_deref(),
        Some("1")
    );
    app.patch(&path, &json!({"location": "Room 2"})).await;
    assert_eq!(
        sequence(ics(&app, &event_path).await.2).as_deref(),
        Some("2")
    );
}

async fn a_cancelled_round_stays_in_the_feed_and_a_deleted_one_leaves(app: TestApp) {
    let kept = id_of(&app.round("2027-05-20", json!({})).await);
    let gone = id_of(&app.round("2027-06-17", json!({})).await);

    app.patch(
        &format!("/api/v1/rounds/{kept}"),
        &json!({"status": "cancelled"}),
    )
    .await;
    app.delete(&format!("/api/v1/rounds/{gone}")).await;

    let (_, _, text) = ics(&app, "/api/v1/rounds.ics").await;
    let events = events(&text);
    assert_eq!(events.len(), 1);
    assert_eq!(property(&events[0], "STATUS"), Some("CANCELLED"));
    assert_eq!(
        property(&events[0], "SUMMARY"),
        Some("LHS Rounds: topic to be announced")
    );
    assert_eq!(property(&events[0], "SEQUENCE"), Some("1"));
}

async fn text_is_escaped_and_long_lines_are_folded(app: TestApp) {
    let title = format!("Sepsis; bundles, and you \\ {}", "é".repeat(250));
    let description = "First line\nSecond line 🩺 with 学習";
    app.round(
        "2027-07-15",
        json!({"title": title, "description": description}),
    )
    .await;

    let (_, _, text) = ics(&app, "/api/v1/rounds.ics").await;

    for physical in text.split("\r\n") {
        assert!(
            physical.len() <= 75,
            "{} octets: {physical:?}",
            physical.len()
        );
    }
    let event = &events(&text)[0];
    assert_eq!(
        property(event, "SUMMARY"),
        Some(format!("Sepsis\\; bundles\\, and you \\\\ {}", "é".repeat(250)).as_str())
    );
    assert!(property(event, "DESCRIPTION")
        .unwrap()
        .ends_with("First line\\nSecond line 🩺 with 学習"));
}

async fn the_feed_takes_the_filters_of_the_round_list(app: TestApp) {
    let speaker = app.speaker("Tara Lagu", &["MD"]).await;
    let department = app.department("Clinical Informatics").await;
    app.round(
        "2027-01-21",
        json!({"speakers": [{"speaker_id": speaker}], "department_ids": [department]}),
    )
    .await;
    app.round("2027-02-18", json!({"status": "cancelled"}))
        .await;
    let count = |query: &'static str| {
        let app = &app;
        async move { events(&ics(app, &format!("/api/v1/rounds.ics{query}")).await.2).len() }
    };

    assert_eq!(count("").await, 2);
    assert_eq!(count(&*format!("?speaker_id={speaker}").leak()).await, 1);
    assert_eq!(
        count(&*format!("?department_id={department}").leak()).await,
        1
    );
    assert_eq!(count("?status=cancelled").await, 1);
    assert_eq!(count("?from=2027-02-01T00:00:00Z").await, 1);
    assert_eq!(count("?to=2027-02-01T00:00:00Z").await, 1);
    let (status, _, empty) = ics(&app, "/api/v1/rounds.ics?speaker_id=424242").await;
    assert_eq!(
        status, 200,
        "an unknown speaker is an empty calendar, not 404"
    );
    assert!(empty.contains("BEGIN:VCALENDAR") && events(&empty).is_empty());
    assert_problem(
        app.request_as(None, Method::GET, "/api/v1/rounds.ics?limit=5", None)
            .await,
        400,
    )
    .await;
}

async fn one_round_has_a_calendar_of_its_own(app: TestApp) {
    let round = id_of(&app.round("2027-09-16", json!({"title": "One"})).await);
    app.round("2027-10-21", json!({"title": "Other"})).await;

    let (status, _, text) = ics(&app, &format!("/api/v1/rounds/{round}.ics")).await;

    assert_eq!(status, 200);
    let events = events(&text);
    assert_eq!(events.len(), 1);
    assert_eq!(property(&events[0], "SUMMARY"), Some("One"));
    for path in ["/api/v1/rounds/abc.ics", "/api/v1/rounds/424242.ics"] {
        assert_problem(app.request_as(None, Method::GET, path, None).await, 404).await;
    }
    // A calendar is read-only: other methods are 405 with what it allows.
    let put = app
        .put(&format!("/api/v1/rounds/{round}.ics"), &json!({}))
        .await;
    assert_eq!(put.headers()["allow"], "GET, HEAD");
    assert_problem(put, 405).await;
}

async fn feeds_revalidate_with_etags(app: TestApp) {
    app.round("2027-09-16", json!({})).await;
    let first = app
        .request_as(None, Method::GET, "/api/v1/rounds.ics", None)
        .await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();

    let again = app
        .client
        .get(app.url("/api/v1/rounds.ics"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    app.round("2027-10-21", json!({})).await;
    let changed = app
        .client
        .get(app.url("/api/v1/rounds.ics"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_link_to_the_public_url_and_take_its_domain() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.public_url = Some("https://rounds.example.org/".into());
    })
    .await
    .expect("SQLite is always available");
    let round = id_of(&app.round("2027-09-16", json!({})).await);

    let (_, _, text) = ics(&app, "/api/v1/rounds.ics").await;

    let event = &events(&text)[0];
    assert_eq!(
        property(event, "UID"),
        Some(format!("round-{round}@rounds.example.org").as_str())
    );
    assert_eq!(
        property(event, "URL;VALUE=URI"),
        Some(format!("https://rounds.example.org/api/v1/rounds/{round}").as_str())
    );
}
