//! Attendance and CME credit (issue 25): attendees, designation, check-in codes and their QR
//! code, check-ins and their rules, organizer marking, import, voiding, claims, transcripts and
//! the yearly report, and privacy.

use chrono::{Duration, SecondsFormat, Utc};
use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, spawn_app_with, spawn_replica, TestApp};

on_both_backends!(
    the_check_in_window_is_exact_to_the_second_across_both_clock_changes,
    attendees_are_organizers_with_unique_addresses_and_checked_npis,
    credit_is_designated_in_advance_in_quarter_hours,
    a_rounds_code_is_for_organizers_and_regenerating_it_retires_the_old_one,
    the_qr_code_reads_back_as_the_checkin_url,
    a_checkin_is_made_once_whatever_the_retries,
    ten_concurrent_identical_checkins_make_one_record_across_replicas,
    the_window_is_kept_to_the_second_with_scan_times,
    a_signed_in_person_checks_in_as_themselves,
    organizers_mark_void_and_list_attendance,
    a_sheet_is_imported_whole_or_not_at_all,
    claims_wait_for_the_evaluation_and_never_exceed_the_designation,
    transcripts_and_the_yearly_report_count_as_pars_does,
    credit_needs_the_disclosures_published_before_the_start,
    attendance_is_never_public,
    checkins_are_rate_limited_per_client_but_organizers_are_not,
);

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The series with AMA PRA Category 1 credit (and `extra`).
async fn credit_series(app: &TestApp, extra: Value) {
    let mut body = json!({"credit_type": "ama_pra_category_1"});
    json_patch::merge(&mut body, &extra);
    let response = app.patch("/api/v1/series", &body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// A round from `start` to `end` minutes from now.
async fn round_at(app: &TestApp, start: i64, end: i64) -> Value {
    app.create(
        "/api/v1/rounds",
        json!({
            "starts_at": at(Duration::minutes(start)),
            "ends_at": at(Duration::minutes(end)),
            "location": "BMC – MassMutual 5",
            "title": "Learning from variation",
        }),
    )
    .await
}

/// Publishes the round's disclosure statement (a round with no speakers and no planners has
/// nothing to disclose but the statement), dated `before` the round's start: as if published
/// then (the API publishes at the time of the request).
async fn disclosed(app: &TestApp, round: i32, before: Duration) {
    use diesel::RunQueryDsl;
    let published = app
        .post(
            &format!("/api/v1/rounds/{round}/disclosure-statement"),
            &json!({}),
        )
        .await;
    assert_eq!(
        published.status(),
        201,
        "{}",
        published.text().await.unwrap()
    );
    let starts = app.get_ok(&format!("/api/v1/rounds/{round}")).await["starts_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = (chrono::DateTime::parse_from_rfc3339(&starts).unwrap() - before)
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    let statement =
        format!("UPDATE disclosure_statements SET published_at = '{at}' WHERE round_id = {round}");
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().unwrap();
        diesel::sql_query(&statement).execute(&mut *conn).unwrap();
    })
    .await
    .unwrap();
}

async fn code_of(app: &TestApp, round: i32) -> Value {
    app.get_ok(&format!("/api/v1/rounds/{round}/checkin-code"))
        .await
}

async fn post_as(app: &TestApp, token: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
    let response = app.request_as(token, Method::POST, path, Some(body)).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn someone(n: usize) -> Value {
    json!({"full_name": format!("Learner {n}"), "email": format!("learner{n}@example.org"),
        "profession": if n.is_multiple_of(3) { "physician" } else { "nurse" }})
}

async fn attendees_are_organizers_with_unique_addresses_and_checked_npis(app: TestApp) {
    let body = json!({"full_name": "Dr. Jane Doe", "email": "Jane.Doe@example.org",
        "profession": "physician", "npi": "1234567893"});
    let jane = app.create("/api/v1/attendees", body).await;
    assert_eq!(jane["npi"], "1234567893");
    let clash = app
        .post(
            "/api/v1/attendees",
            &json!({"full_name": "J. Doe", "email": "JANE.DOE@EXAMPLE.ORG", "profession": "nurse"}),
        )
        .await;
    assert_problem(clash, 409).await;
    let bad = app
        .post(
            "/api/v1/attendees",
            &json!({"full_name": "Ann", "email": "ann@example.org", "profession": "nurse",
                "npi": "1234567890"}),
        )
        .await;
    assert_eq!(error_fields(&assert_problem(bad, 422).await), ["npi"]);
    let bad = app
        .post(
            "/api/v1/attendees",
            &json!({"full_name": "Ann", "email": "ann@example.org", "profession": "wizard"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(bad, 422).await),
        ["profession"]
    );
    app.create(
        "/api/v1/attendees",
        json!({"full_name": "Ann", "email": "ann@example.org", "profession": "nurse", "sub": "ann-sub"}),
    )
    .await;
    let same_sub = app
        .post(
            "/api/v1/attendees",
            &json!({"full_name": "Bo", "email": "bo@example.org", "profession": "nurse", "sub": "ann-sub"}),
        )
        .await;
    assert_problem(same_sub, 409).await;
    // Organizers only.
    let member = app.token("member", &[Role::Viewer]);
    let path = format!("/api/v1/attendees/{}", id_of(&jane));
    let refused = app
        .request_as(Some(&member), Method::GET, &path, None)
        .await;
    assert_eq!(refused.status(), 403);
    let refused = app
        .request_as(None, Method::GET, "/api/v1/attendees", None)
        .await;
    assert_eq!(refused.status(), 401);
    let organizer = app.token("organizer", &[Role::Organizer]);
    let list = app
        .request_as(
            Some(&organizer),
            Method::GET,
            "/api/v1/attendees?q=jane",
            None,
        )
        .await;
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(app.delete(&path).await.status(), 204);
}

async fn credit_is_designated_in_advance_in_quarter_hours(app: TestApp) {
    credit_series(&app, json!({"default_credit_hours": 1.0})).await;
    // 50 minutes: at most 0.75 (its length, rounded to the quarter hour).
    let short = round_at(&app, 60 * 24, 60 * 24 + 50).await;
    assert_eq!(short["credit_hours"], 0.75);
    let hour = round_at(&app, 60 * 48, 60 * 49).await;
    assert_eq!(hour["credit_hours"], 1.0);
    let path = format!("/api/v1/rounds/{}", id_of(&hour));
    let refused = app.patch(&path, &json!({"credit_hours": 1.25})).await;
    assert_eq!(
        error_fields(&assert_problem(refused, 422).await),
        ["credit_hours"]
    );
    let refused = app.patch(&path, &json!({"credit_hours": 0.3})).await;
    assert_eq!(
        error_fields(&assert_problem(refused, 422).await),
        ["credit_hours"]
    );
    let changed = app.patch(&path, &json!({"credit_hours": 0.5})).await;
    assert_eq!(changed.json::<Value>().await.unwrap()["credit_hours"], 0.5);
    // A cancelled round designates none.
    let cancelled = app.patch(&path, &json!({"status": "cancelled"})).await;
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["credit_hours"],
        0.0
    );
    // Once it has started, the designation is fixed.
    let started = round_at(&app, -10, 50).await;
    let path = format!("/api/v1/rounds/{}", id_of(&started));
    let refused = app.patch(&path, &json!({"credit_hours": 0.25})).await;
    let problem = assert_problem(refused, 409).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("designated in advance"));
    // Other changes still go through.
    let retitled = app.patch(&path, &json!({"title": "Renamed"})).await;
    assert_eq!(retitled.status(), 200);
}

async fn a_rounds_code_is_for_organizers_and_regenerating_it_retires_the_old_one(app: TestApp) {
    credit_series(&app, json!({})).await;
    let round = id_of(&round_at(&app, 5, 65).await);
    let first = code_of(&app, round).await;
    let code = first["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert!(
        code.chars()
            .all(|c| "ABCDEFGHJKMNPQRSTUVWXYZ23456789".contains(c)),
        "{code}"
    );
    assert!(first["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/checkin/{round}?code={code}")));
    assert!(first["opens_at"].as_str().unwrap().ends_with("-05:00"));
    assert_eq!(code_of(&app, round).await["code"], code.as_str());
    let path = format!("/api/v1/rounds/{round}/checkin-code");
    for token in [Some(app.token("member", &[Role::Viewer])), None] {
        let refused = app
            .request_as(token.as_deref(), Method::GET, &path, None)
            .await;
        assert!([401, 403].contains(&refused.status().as_u16()));
        let body = refused.text().await.unwrap();
        assert!(!body.contains(&code));
    }
    let (status, renewed) = post_as(&app, app_admin(&app).as_deref(), &path, &json!({})).await;
    assert_eq!(status, 200);
    let new_code = renewed["code"].as_str().unwrap().to_owned();
    assert_ne!(new_code, code);
    let checkin = format!("/api/v1/rounds/{round}/attendance");
    let old = json!({"code": code, "nonce": "n-old", "attendee": someone(1)});
    let (status, problem) = post_as(&app, None, &checkin, &old).await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&problem), ["code"]);
    assert!(problem.to_string().contains("does not match this round"));
    let new = json!({"code": new_code.to_lowercase(), "nonce": "n-new", "attendee": someone(1)});
    assert_eq!(post_as(&app, None, &checkin, &new).await.0, 201);
    // The code is in no public answer or log entry anyone else reads.
    let public = app
        .request_as(None, Method::GET, &format!("/api/v1/rounds/{round}"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!public.contains(&new_code));
    let audit = app.get_ok("/api/v1/audit?resource=checkin_code").await;
    assert!(!audit.to_string().contains(&new_code));
    assert!(audit["total"].as_i64().unwrap() >= 2);
}

fn app_admin(app: &TestApp) -> Option<String> {
    Some(app.token("organizer@example.org", &[Role::Organizer]))
}

async fn the_qr_code_reads_back_as_the_checkin_url(app: TestApp) {
    let round = id_of(&round_at(&app, 5, 65).await);
    let code = code_of(&app, round).await;
    let response = app
        .get(&format!("/api/v1/rounds/{round}/checkin.svg"))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("image/svg+xml"));
    let svg = response.text().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (svg_path, png_path) = (dir.path().join("code.svg"), dir.path().join("code.png"));
    std::fs::write(&svg_path, svg).unwrap();
    let rendered = std::process::Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png_path)
        .arg(&svg_path)
        .status()
        .expect("rsvg-convert (Debian's librsvg2-bin) is installed: .ci/run installs it");
    assert!(rendered.success());
    let read = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw"])
        .arg(&png_path)
        .output()
        .expect("zbarimg (Debian's zbar-tools) is installed: .ci/run installs it");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let text = String::from_utf8(read.stdout).unwrap();
    assert_eq!(text.trim_end(), code["url"].as_str().unwrap());
}

async fn a_checkin_is_made_once_whatever_the_retries(app: TestApp) {
    credit_series(&app, json!({})).await;
    let round = id_of(&round_at(&app, 5, 65).await);
    let code = code_of(&app, round).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{round}/attendance");
    // Without a token, who checks in must be said.
    let (status, problem) = post_as(&app, None, &path, &json!({"code": code, "nonce": "a"})).await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&problem), ["attendee"]);
    let (status, problem) = post_as(
        &app,
        None,
        &path,
        &json!({"code": code, "attendee": someone(1)}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&problem), ["nonce"]);
    let body = json!({"code": code, "nonce": "n-1", "attendee": someone(1)});
    let response = app.request_as(None, Method::POST, &path, Some(&body)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = response.json().await.unwrap();
    assert_eq!(location, format!("{path}/{}", id_of(&first)));
    assert_eq!(first["method"], "code");
    assert_eq!(first["credit_status"], "awarded");
    assert_eq!(first["claimed_hours"], 1.0);
    assert_eq!(first["nonce"], "n-1");
    assert_eq!(first["attended_at"], first["received_at"]);
    assert!(first.get("email").is_none() && !first.to_string().contains("learner1@"));
    // The same nonce, and the same person with another nonce: the same record, 200.
    let (status, again) = post_as(&app, None, &path, &body).await;
    assert_eq!((status, id_of(&again)), (200, id_of(&first)));
    let other_nonce = json!({"code": code, "nonce": "n-2", "attendee": someone(1)});
    let (status, again) = post_as(&app, None, &path, &other_nonce).await;
    assert_eq!((status, id_of(&again)), (200, id_of(&first)));
    // Without a code, only organizers (with a reason).
    let (status, problem) = post_as(
        &app,
        None,
        &path,
        &json!({"attendee": someone(2), "reason": "here"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&problem), ["code"]);
    // Not yet open: 409 with the window's times, with their offset.
    let later = id_of(&round_at(&app, 120, 180).await);
    let later_code = code_of(&app, later).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, problem) = post_as(
        &app,
        None,
        &format!("/api/v1/rounds/{later}/attendance"),
        &json!({"code": later_code, "nonce": "n-3", "attendee": someone(3)}),
    )
    .await;
    assert_eq!(status, 409);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("not open yet") && detail.contains("-05:00"),
        "{detail}"
    );
    // A cancelled round takes none.
    let patched = app
        .patch(
            &format!("/api/v1/rounds/{later}"),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let (status, _) = post_as(
        &app,
        None,
        &format!("/api/v1/rounds/{later}/attendance"),
        &json!({"code": later_code, "nonce": "n-4", "attendee": someone(3)}),
    )
    .await;
    assert_eq!(status, 409);
    // A nonce already used on another round is not this check-in.
    let third = id_of(&round_at(&app, 5, 65).await);
    let third_code = code_of(&app, third).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = post_as(
        &app,
        None,
        &format!("/api/v1/rounds/{third}/attendance"),
        &json!({"code": third_code, "nonce": "n-1", "attendee": someone(1)}),
    )
    .await;
    assert_eq!(status, 409);
    // A round with attendance cannot be deleted.
    let refused = app.delete(&format!("/api/v1/rounds/{round}")).await;
    let problem = assert_problem(refused, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("cancel"));
}

async fn ten_concurrent_identical_checkins_make_one_record_across_replicas(app: TestApp) {
    credit_series(&app, json!({})).await;
    let replica = spawn_replica(&app).await;
    let round = id_of(&round_at(&app, 5, 65).await);
    let code = code_of(&app, round).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{round}/attendance");
    let body = json!({"code": code, "nonce": "same", "attendee": someone(7)});
    let posts = (0..10).map(|i| {
        let target = if i % 2 == 0 { &app } else { &replica };
        let (path, body) = (path.clone(), body.clone());
        async move { post_as(target, None, &path, &body).await }
    });
    let answers = futures_util::future::join_all(posts).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let repeated = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, repeated), (1, 9), "{answers:?}");
    let ids: std::collections::BTreeSet<i32> = answers.iter().map(|(_, r)| id_of(r)).collect();
    assert_eq!(ids.len(), 1);
    let list = app.get_ok(&path).await;
    assert_eq!(list["total"], 1);
    let attendees = app.get_ok("/api/v1/attendees").await;
    assert_eq!(attendees["total"], 1);
}

async fn the_window_is_kept_to_the_second_with_scan_times(app: TestApp) {
    credit_series(
        &app,
        json!({"checkin_opens_minutes": 15, "checkin_closes_minutes": 60}),
    )
    .await;
    let starts = Utc::now() - Duration::minutes(30);
    let starts = starts - Duration::nanoseconds(i64::from(starts.timestamp_subsec_nanos()));
    let round = app
        .create(
            "/api/v1/rounds",
            json!({"starts_at": starts.to_rfc3339(), "ends_at": (starts + Duration::hours(1)).to_rfc3339(),
                "location": "BMC"}),
        )
        .await;
    let round = id_of(&round);
    let code = code_of(&app, round).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{round}/attendance");
    let opens = starts - Duration::minutes(15);
    let scan = |n: usize, at: chrono::DateTime<Utc>| {
        json!({"code": code, "nonce": format!("scan-{n}"), "attendee": someone(n),
            "scanned_at": at.to_rfc3339_opts(SecondsFormat::Secs, true)})
    };
    let (status, problem) =
        post_as(&app, None, &path, &scan(1, opens - Duration::seconds(1))).await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&problem), ["scanned_at"]);
    let (status, record) = post_as(&app, None, &path, &scan(1, opens)).await;
    assert_eq!(status, 201);
    assert_eq!(
        record["attended_at"],
        opens.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    assert_ne!(record["attended_at"], record["received_at"]);
    // Ahead of the clock by more than 2 minutes.
    let (status, _) = post_as(
        &app,
        None,
        &path,
        &scan(2, Utc::now() + Duration::minutes(3)),
    )
    .await;
    assert_eq!(status, 422);
    // A round whose window closed an hour ago: a scan a second before it closed is taken, one
    // at the closing second is not, and without a scan time it is 409.
    let earlier = Utc::now() - Duration::hours(3);
    let earlier = earlier - Duration::nanoseconds(i64::from(earlier.timestamp_subsec_nanos()));
    let past = app
        .create(
            "/api/v1/rounds",
            json!({"starts_at": earlier.to_rfc3339(), "ends_at": (earlier + Duration::hours(1)).to_rfc3339(),
                "location": "BMC"}),
        )
        .await;
    let past = id_of(&past);
    let code = code_of(&app, past).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{past}/attendance");
    let closes = earlier + Duration::hours(2);
    let scan = |n: usize, at: chrono::DateTime<Utc>| {
        json!({"code": code, "nonce": format!("past-{n}"), "attendee": someone(n),
            "scanned_at": at.to_rfc3339_opts(SecondsFormat::Secs, true)})
    };
    assert_eq!(
        post_as(&app, None, &path, &scan(3, closes - Duration::seconds(1)))
            .await
            .0,
        201
    );
    assert_eq!(post_as(&app, None, &path, &scan(4, closes)).await.0, 422);
    let (status, problem) = post_as(
        &app,
        None,
        &path,
        &json!({"code": code, "nonce": "late", "attendee": someone(5)}),
    )
    .await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains("is closed"));
}

async fn a_signed_in_person_checks_in_as_themselves(app: TestApp) {
    credit_series(&app, json!({})).await;
    let round = id_of(&round_at(&app, 5, 65).await);
    let code = code_of(&app, round).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{round}/attendance");
    let token = app.token("kim-sub", &[Role::Viewer]);
    // Not an attendee yet.
    let mine = app
        .request_as(Some(&token), Method::GET, "/api/v1/me/attendee", None)
        .await;
    assert_eq!(mine.status(), 404);
    // Their token has no e-mail address here: the body gives it, and their sub is kept.
    let body = json!({"code": code, "nonce": "kim-1", "attendee":
        {"full_name": "Kim Lee", "email": "kim@example.org", "profession": "pharmacist"}});
    let (status, record) = post_as(&app, Some(&token), &path, &body).await;
    assert_eq!(status, 201, "{record}");
    let mine: Value = app
        .request_as(Some(&token), Method::GET, "/api/v1/me/attendee", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["sub"], "kim-sub");
    assert_eq!(mine["id"], record["attendee_id"]);
    // Again with only the token: matched by sub.
    let (status, again) = post_as(
        &app,
        Some(&token),
        &path,
        &json!({"code": code, "nonce": "kim-2"}),
    )
    .await;
    assert_eq!((status, id_of(&again)), (200, id_of(&record)));
    // Profession and NPI are theirs to change; nothing else.
    let patch = |body: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            app.client
                .patch(app.url("/api/v1/me/attendee"))
                .bearer_auth(token)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let changed = patch(json!({"profession": "physician", "npi": "1245319599"})).await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(
        (changed["profession"].clone(), changed["npi"].clone()),
        (json!("physician"), json!("1245319599"))
    );
    let refused = patch(json!({"email": "other@example.org"})).await;
    assert_eq!(refused.status(), 422);
    let refused = patch(json!({"npi": "1245319598"})).await;
    assert_eq!(error_fields(&assert_problem(refused, 422).await), ["npi"]);
}

async fn organizers_mark_void_and_list_attendance(app: TestApp) {
    credit_series(&app, json!({})).await;
    // A round long past: organizers mark attendance outside the window too.
    let round = id_of(&round_at(&app, -60 * 24 * 3, -60 * 24 * 3 + 60).await);
    let path = format!("/api/v1/rounds/{round}/attendance");
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);
    let (status, problem) = post_as(
        &app,
        Some(&organizer),
        &path,
        &json!({"attendee": someone(1)}),
    )
    .await;
    assert_eq!(status, 422);
    assert!(error_fields(&problem).contains(&"code".to_owned()));
    let (status, marked) = post_as(
        &app,
        Some(&organizer),
        &path,
        &json!({"attendee": someone(1), "reason": "Signed the paper sheet"}),
    )
    .await;
    assert_eq!(status, 201, "{marked}");
    assert_eq!(marked["method"], "organizer");
    assert_eq!(marked["reason"], "Signed the paper sheet");
    let attendee = app
        .create(
            "/api/v1/attendees",
            json!({"full_name": "Dr. Ada Byron", "email": "ada@example.org", "profession": "physician"}),
        )
        .await;
    let (status, by_id) = post_as(
        &app,
        Some(&organizer),
        &path,
        &json!({"attendee_id": id_of(&attendee), "reason": "Came late, seen by the chair"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, problem) = post_as(
        &app,
        Some(&organizer),
        &path,
        &json!({"attendee_id": 9999, "reason": "x"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&problem), ["attendee_id"]);
    // Voiding needs a reason, keeps the record, and shows it voided.
    let void = format!("{path}/{}/void", id_of(&by_id));
    let (status, _) = post_as(&app, Some(&organizer), &void, &json!({})).await;
    assert_eq!(status, 422);
    let (status, voided) = post_as(
        &app,
        Some(&organizer),
        &void,
        &json!({"reason": "Wrong round"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(voided["void_reason"], "Wrong round");
    assert!(voided["voided_at"].is_string());
    let (status, _) = post_as(&app, Some(&organizer), &void, &json!({"reason": "again"})).await;
    assert_eq!(status, 409);
    let member = app.token("member", &[Role::Viewer]);
    let (status, _) = post_as(&app, Some(&member), &void, &json!({"reason": "x"})).await;
    assert_eq!(status, 403);
    let list = app.get_ok(&path).await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][1]["attendee"]["email"], "ada@example.org");
    assert!(list["items"][1]["voided_at"].is_string());
    // The attendee may be marked again once the mistake is voided.
    let (status, _) = post_as(
        &app,
        Some(&organizer),
        &path,
        &json!({"attendee_id": id_of(&attendee), "reason": "Right round after all"}),
    )
    .await;
    assert_eq!(status, 201);
    // As CSV.
    let csv = app
        .client
        .get(app.url(&path))
        .bearer_auth(&organizer)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("id,round_id,attendee_id,full_name,email"));
    assert_eq!(lines.count(), 3);
    assert!(text.contains("Wrong round"));
    // Members see no list; an attendee's record is never deleted with its attendee.
    let refused = app
        .request_as(Some(&member), Method::GET, &path, None)
        .await;
    assert_eq!(refused.status(), 403);
    let refused = app
        .delete(&format!("/api/v1/attendees/{}", id_of(&attendee)))
        .await;
    assert_problem(refused, 409).await;
    // An organizer's decision on credit, with its reason.
    let (status, decided) = post_as(
        &app,
        Some(&organizer),
        &format!("{path}/{}/credit", id_of(&marked)),
        &json!({"credit_status": "not_creditable", "reason": "Disclosure made after the start"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(decided["credit_status"], "not_creditable");
    assert_eq!(decided["credit_note"], "Disclosure made after the start");
    // The audit trail has it all.
    let audit = app.get_ok("/api/v1/audit?resource=attendance").await;
    assert!(audit["total"].as_i64().unwrap() >= 5);
}

async fn a_sheet_is_imported_whole_or_not_at_all(app: TestApp) {
    credit_series(&app, json!({})).await;
    let round = id_of(&round_at(&app, -60 * 24, -60 * 24 + 60).await);
    let path = format!("/api/v1/rounds/{round}/attendance/import");
    let send = |text: &'static str, content_type: &'static str| {
        let (app, path) = (&app, path.clone());
        async move {
            app.client
                .post(app.url(&path))
                .bearer_auth(app.token("organizer", &[Role::Organizer]))
                .header("content-type", content_type)
                .body(text)
                .send()
                .await
                .unwrap()
        }
    };
    let bad = "full_name,email,profession,npi\nJane Doe,jane@example.org,physician,1234567893\nAnn,not-an-address,nurse,\n\"Roe, Bo\",bo@example.org,wizard,\nCy,cy@example.org,other,1234567890\n";
    let problem = assert_problem(send(bad, "text/csv").await, 422).await;
    assert_eq!(
        error_fields(&problem),
        ["line 3.email", "line 4.profession", "line 5.npi"]
    );
    let list = app
        .get_ok(&format!("/api/v1/rounds/{round}/attendance"))
        .await;
    assert_eq!(list["total"], 0, "nothing imported");
    assert_eq!(send(bad, "application/json").await.status(), 415);
    let good = "full_name,email,profession,npi\nJane Doe,jane@example.org,physician,1234567893\n\"Roe, Bo\",bo@example.org,nurse,\n";
    let imported = send(good, "text/csv; charset=utf-8").await;
    assert_eq!(imported.status(), 200);
    let report: Value = imported.json().await.unwrap();
    assert_eq!(
        (
            report["recorded"].clone(),
            report["attendees_created"].clone()
        ),
        (json!(2), json!(2))
    );
    assert_eq!(report["records"][0]["method"], "import");
    let again: Value = send(good, "text/csv").await.json().await.unwrap();
    assert_eq!(
        (again["recorded"].clone(), again["already_recorded"].clone()),
        (json!(0), json!(2))
    );
    let attendees = app.get_ok("/api/v1/attendees?q=jane").await;
    assert_eq!(attendees["items"][0]["npi"], "1234567893");
}

async fn claims_wait_for_the_evaluation_and_never_exceed_the_designation(app: TestApp) {
    credit_series(&app, json!({"evaluation_required": true})).await;
    // Held: started 30 minutes ago, so it takes session feedback and check-ins.
    let round = id_of(&round_at(&app, -30, 30).await);
    disclosed(&app, round, Duration::days(1)).await;
    let code = code_of(&app, round).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{round}/attendance");
    let token = app.token("eve-sub", &[Role::Viewer]);
    let body = json!({"code": code, "nonce": "eve", "attendee":
        {"full_name": "Dr. Eve", "email": "eve@example.org", "profession": "physician"}});
    let (status, record) = post_as(&app, Some(&token), &path, &body).await;
    assert_eq!(status, 201);
    assert_eq!(record["credit_status"], "pending_evaluation");
    assert_eq!(record["claimed_hours"], 1.0);
    let claim = |token: String, body: Value| {
        let (app, path) = (&app, format!("{path}/{}", id_of(&record)));
        async move {
            app.client
                .patch(app.url(&path))
                .bearer_auth(token)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let lowered = claim(token.clone(), json!({"claimed_hours": 0.75})).await;
    assert_eq!(lowered.status(), 200);
    assert_eq!(
        lowered.json::<Value>().await.unwrap()["claimed_hours"],
        0.75
    );
    let refused = claim(token.clone(), json!({"claimed_hours": 1.25})).await;
    assert_eq!(
        error_fields(&assert_problem(refused, 422).await),
        ["claimed_hours"]
    );
    let refused = claim(token.clone(), json!({"claimed_hours": 0.6})).await;
    assert_eq!(
        error_fields(&assert_problem(refused, 422).await),
        ["claimed_hours"]
    );
    let stranger = app.token("someone-else", &[Role::Viewer]);
    let refused = claim(stranger, json!({"claimed_hours": 0.5})).await;
    assert_eq!(refused.status(), 403);
    let organizer = app.token("organizer", &[Role::Organizer]);
    assert_eq!(
        claim(organizer, json!({"claimed_hours": 0.5}))
            .await
            .status(),
        200
    );
    // Session feedback with their token is the evaluation.
    let (status, _) = post_as(
        &app,
        Some(&token),
        &format!("/api/v1/rounds/{round}/feedback"),
        &json!({"kind": "session_feedback", "rating": 5}),
    )
    .await;
    assert_eq!(status, 201);
    let now: Value = app
        .request_as(
            Some(&token),
            Method::GET,
            &format!("{path}/{}", id_of(&record)),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["credit_status"], "awarded");
    assert_eq!(now["claimed_hours"], 0.5);
    // The award is a change of the record like any other: in the audit trail (the change log,
    // which webhooks that list attendance are sent from), by the person whose rating it was.
    let audit = app
        .get_ok(&format!(
            "/api/v1/audit?resource=attendance&id={}",
            id_of(&record)
        ))
        .await;
    let award = &audit["items"][0];
    assert_eq!(award["action"], "updated", "{audit}");
    assert_eq!(award["actor"], "eve-sub");
    assert_eq!(
        award["changes"]["credit_status"],
        json!(["pending_evaluation", "awarded"])
    );
    // A second rating finds nothing waiting: no further change.
    let (status, _) = post_as(
        &app,
        Some(&token),
        &format!("/api/v1/rounds/{round}/feedback"),
        &json!({"kind": "session_feedback", "rating": 4}),
    )
    .await;
    assert_eq!(status, 201);
    let audit_after = app
        .get_ok(&format!(
            "/api/v1/audit?resource=attendance&id={}",
            id_of(&record)
        ))
        .await;
    assert_eq!(audit_after["total"], audit["total"]);
    // Their own transcript.
    let mine: Value = app
        .request_as(Some(&token), Method::GET, "/api/v1/me/transcript", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["totals"]["sessions"], 1);
    assert_eq!(mine["totals"]["awarded_hours"], 0.5);
    assert_eq!(mine["items"][0]["credit_status"], "awarded");
    assert_eq!(mine["attendee"]["email"], "eve@example.org");
}

async fn transcripts_and_the_yearly_report_count_as_pars_does(app: TestApp) {
    credit_series(&app, json!({})).await;
    let organizer = app.token("organizer", &[Role::Organizer]);
    let year = chrono::Datelike::year(&(Utc::now() - Duration::days(2)));
    let mut rounds = Vec::new();
    for days in [3, 2] {
        let round = id_of(&round_at(&app, -60 * 24 * days, -60 * 24 * days + 90).await);
        disclosed(&app, round, Duration::days(7)).await;
        rounds.push(round);
        for n in 0..4 {
            let (status, _) = post_as(
                &app,
                Some(&organizer),
                &format!("/api/v1/rounds/{round}/attendance"),
                &json!({"attendee": someone(n), "reason": "sign-in sheet"}),
            )
            .await;
            assert_eq!(status, 201);
        }
    }
    // Rounds three and two days ago may straddle a new year: count by each round's own year.
    let report = app
        .get_ok(&format!("/api/v1/series/report?year={year}"))
        .await;
    let rows = report["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    let row = &rows[rows.len() - 1];
    assert_eq!(row["minutes"], 90);
    assert_eq!(row["designated_hours"], 1.5);
    // someone(0) and someone(3) are physicians.
    assert_eq!(
        (row["physicians"].clone(), row["other_learners"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(row["hours_awarded"], 6.0);
    assert_eq!(
        report["totals"]["physician_learners"].as_i64().unwrap(),
        2 * rows.len() as i64
    );
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/series/report?year={year}")))
        .bearer_auth(&organizer)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with(
        "round_id,starts_at,title,minutes,designated_hours,physicians,other_learners,hours_awarded"
    ));
    let member = app.token("member", &[Role::Viewer]);
    let refused = app
        .request_as(
            Some(&member),
            Method::GET,
            "/api/v1/series/report?year=2026",
            None,
        )
        .await;
    assert_eq!(refused.status(), 403);
    let refused = app.get("/api/v1/series/report").await;
    assert_eq!(error_fields(&assert_problem(refused, 400).await), ["year"]);
    // A transcript: both rounds, 3 hours awarded.
    let attendees = app.get_ok("/api/v1/attendees?q=learner0").await;
    let id = id_of(&attendees["items"][0]);
    let transcript = app
        .get_ok(&format!("/api/v1/attendees/{id}/transcript"))
        .await;
    assert_eq!(transcript["totals"]["sessions"], 2);
    assert_eq!(transcript["totals"]["awarded_hours"], 3.0);
    assert_eq!(transcript["items"][0]["credit_type"], "ama_pra_category_1");
    assert_eq!(transcript["attendee"]["email"], "learner0@example.org");
    let from = at(-Duration::days(2) - Duration::hours(12));
    let span = app
        .get_ok(&format!(
            "/api/v1/attendees/{id}/transcript?from={}",
            from.replace('+', "%2B")
        ))
        .await;
    assert_eq!(span["totals"]["sessions"], 1);
    let refused = app
        .request_as(
            Some(&member),
            Method::GET,
            &format!("/api/v1/attendees/{id}/transcript"),
            None,
        )
        .await;
    assert_eq!(refused.status(), 403);
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/attendees/{id}/transcript")))
        .bearer_auth(&organizer)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with(
        "round_id,starts_at,title,credit_type,designated_hours,claimed_hours,credit_status"
    ));
    let none = app
        .request_as(Some(&member), Method::GET, "/api/v1/me/transcript", None)
        .await;
    assert_eq!(none.status(), 404);
}

async fn attendance_is_never_public(app: TestApp) {
    credit_series(&app, json!({})).await;
    let everything = app
        .create(
            "/api/v1/webhooks",
            json!({"url": "https://10.20.30.40/all", "events": ["*"]}),
        )
        .await;
    let listed = app
        .create(
            "/api/v1/webhooks",
            json!({"url": "https://10.20.30.40/attendance", "events": ["attendance.*"]}),
        )
        .await;
    let round = id_of(&round_at(&app, 5, 65).await);
    let code = code_of(&app, round).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{round}/attendance");
    let body = json!({"code": code, "nonce": "p-1", "attendee":
        {"full_name": "Private Person", "email": "private.person@example.org", "profession": "nurse"}});
    assert_eq!(post_as(&app, None, &path, &body).await.0, 201);
    for public in [
        "/api/v1/changes?after=0".to_owned(),
        format!("/api/v1/rounds/{round}"),
        "/api/v1/rounds".to_owned(),
        "/api/v1/rounds.ics".to_owned(),
        format!("/api/v1/rounds/{round}.ics"),
        "/api/v1/series".to_owned(),
    ] {
        let response = app.request_as(None, Method::GET, &public, None).await;
        assert_eq!(response.status(), 200, "{public}");
        let text = response.text().await.unwrap();
        for private in [
            "private.person",
            "Private Person",
            &code,
            "attendance",
            "attendee",
        ] {
            assert!(!text.contains(private), "{public} shows {private}");
        }
    }
    // The anonymous check-in's own answer holds no one's address.
    let (_, again) = post_as(&app, None, &path, &body).await;
    assert!(!again.to_string().contains("private.person"));
    // Webhooks: only one that lists attendance hears of it, and without the address.
    let void = format!("{path}/{}/void", id_of(&again));
    assert_eq!(
        app.post(&void, &json!({"reason": "test"})).await.status(),
        200
    );
    let events = |webhook: &Value| {
        let path = format!("/api/v1/webhooks/{}/deliveries?limit=100", id_of(webhook));
        let app = &app;
        async move {
            let deliveries = app.get_ok(&path).await;
            deliveries["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["event_type"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let all = events(&everything).await;
    assert!(all.contains(&"round.created".to_owned()), "{all:?}");
    assert!(all.iter().all(|e| !e.starts_with("attendance")), "{all:?}");
    let heard = events(&listed).await;
    assert!(
        heard.contains(&"attendance.recorded".to_owned()),
        "{heard:?}"
    );
    assert!(heard.contains(&"attendance.voided".to_owned()), "{heard:?}");
}

async fn checkins_are_rate_limited_per_client_but_organizers_are_not(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| s.checkin_rate_limit = "2/minute".into())
        .await
        .expect("the backend of the app given");
    let round = id_of(&round_at(&app, 5, 65).await);
    let code = code_of(&app, round).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/rounds/{round}/attendance");
    for n in 0..2 {
        let body = json!({"code": code, "nonce": format!("r-{n}"), "attendee": someone(n)});
        let response = app.request_as(None, Method::POST, &path, Some(&body)).await;
        assert_eq!(response.status(), 201);
        assert!(response.headers().contains_key("ratelimit"));
    }
    let body = json!({"code": code, "nonce": "r-2", "attendee": someone(2)});
    let refused = app.request_as(None, Method::POST, &path, Some(&body)).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let organizer = app.token("organizer", &[Role::Organizer]);
    let marked = json!({"attendee": someone(2), "reason": "at the door"});
    let (status, _) = post_as(&app, Some(&organizer), &path, &marked).await;
    assert_eq!(status, 201);
}

/// ACCME Standard 3: learners are told of the relevant financial relationships before the
/// session. Attendance on a credit-bearing round whose first statement was published after it
/// started is `not_creditable`, with the reason, unless an organizer overrides it in writing; a
/// statement published in time leaves credit to the other rules, and a later version never
/// moves the first.
async fn credit_needs_the_disclosures_published_before_the_start(app: TestApp) {
    credit_series(&app, json!({})).await;
    let organizer = app.token("organizer", &[Role::Organizer]);
    let mark = |round: i32, n: usize| {
        let (app, organizer) = (&app, organizer.clone());
        async move {
            let (status, record) = post_as(
                app,
                Some(&organizer),
                &format!("/api/v1/rounds/{round}/attendance"),
                &json!({"attendee": someone(n), "reason": "sign-in sheet"}),
            )
            .await;
            assert_eq!(status, 201, "{record}");
            record
        }
    };
    // No statement at all: the session went ahead without one.
    let undisclosed = id_of(&round_at(&app, -60, 0).await);
    let record = mark(undisclosed, 0).await;
    assert_eq!(record["credit_status"], "not_creditable");
    assert!(
        record["credit_note"]
            .as_str()
            .unwrap()
            .starts_with("disclosure after the start"),
        "{record}"
    );
    // Published after the start (now, with the round an hour old): still too late.
    let late = app
        .post(
            &format!("/api/v1/rounds/{undisclosed}/disclosure-statement"),
            &json!({}),
        )
        .await;
    assert_eq!(late.status(), 201);
    let record = mark(undisclosed, 1).await;
    assert_eq!(record["credit_status"], "not_creditable");
    // An organizer overrides it, in writing; the transcript counts it then.
    let (status, decided) = post_as(
        &app,
        Some(&organizer),
        &format!(
            "/api/v1/rounds/{undisclosed}/attendance/{}/credit",
            id_of(&record)
        ),
        &json!({"credit_status": "awarded",
                "reason": "Disclosed aloud at the start; the CME office accepted the minutes"}),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["credit_status"], "awarded");
    assert!(decided["credit_note"]
        .as_str()
        .unwrap()
        .starts_with("Disclosed aloud"));
    let transcript = app
        .get_ok(&format!(
            "/api/v1/attendees/{}/transcript",
            decided["attendee_id"]
        ))
        .await;
    assert_eq!(
        transcript["items"][0]["credit_status"], "awarded",
        "{transcript}"
    );
    // Published the day before: credit as the other rules give it.
    let disclosed_round = id_of(&round_at(&app, -60, 0).await);
    disclosed(&app, disclosed_round, Duration::days(1)).await;
    let record = mark(disclosed_round, 2).await;
    assert_eq!(record["credit_status"], "awarded", "{record}");
    assert_eq!(record["credit_note"], Value::Null);
    // A round with no credit designated carries none, statement or not.
    let none = app
        .patch("/api/v1/series", &json!({"credit_type": null}))
        .await;
    assert_eq!(none.status(), 200);
    let no_credit = id_of(&round_at(&app, -60, 0).await);
    let record = mark(no_credit, 3).await;
    assert_eq!(record["credit_status"], "none", "{record}");
}

async fn the_check_in_window_is_exact_to_the_second_across_both_clock_changes(app: TestApp) {
    // New York's clocks: 2027-03-14 02:00 EST becomes 03:00 EDT; 2027-11-07 02:00 EDT becomes
    // 01:00 EST. Each round's window is 15 minutes before its start to 60 minutes after its end,
    // as lengths of time, to the second; the answer gives each end with its own offset.
    for (starts, ends, opens, closes) in [
        (
            "2027-03-14T06:40:30Z", // 01:40:30 EST
            "2027-03-14T07:20:30Z", // 03:20:30 EDT: 40 minutes later
            "2027-03-14T01:25:30-05:00",
            "2027-03-14T04:20:30-04:00",
        ),
        (
            "2027-11-07T05:30:15Z", // 01:30:15 EDT
            "2027-11-07T06:10:15Z", // 01:10:15 EST: 40 minutes later
            "2027-11-07T01:15:15-04:00",
            "2027-11-07T02:10:15-05:00",
        ),
    ] {
        let round = id_of(
            &app.create(
                "/api/v1/rounds",
                json!({"starts_at": starts, "ends_at": ends, "location": "BMC – MassMutual 5"}),
            )
            .await,
        );
        let code = code_of(&app, round).await;
        assert_eq!(code["opens_at"], opens, "{code}");
        assert_eq!(code["closes_at"], closes, "{code}");
        // A check-in now is outside that window: 409, giving the same two times.
        let body = json!({"code": code["code"], "nonce": format!("dst-{round}"),
            "attendee": {"full_name": "Jane Doe", "email": "jane@example.org", "profession": "nurse"}});
        let (status, problem) = post_as(
            &app,
            None,
            &format!("/api/v1/rounds/{round}/attendance"),
            &body,
        )
        .await;
        assert_eq!(status, 409, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(opens) && detail.contains(closes),
            "{detail}"
        );
    }
}
