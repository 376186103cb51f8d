//! Planning the year: the series' recurrence, and `POST /series/plan` laying rounds out by it
//! around the clock changes, with skips that stay skipped, twice without doubling, within its
//! limits, and over the demo's 2019 as the page has it.

use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, TestApp};

on_both_backends!(
    the_recurrence_is_checked_naming_the_part_and_kept_canonical,
    the_year_is_planned_at_noon_local_on_both_sides_of_the_clock_changes,
    a_second_plan_creates_nothing_and_a_stored_skip_stays_skipped,
    the_last_thursday_of_the_month_is_a_rule_too,
    a_preview_answers_the_same_and_changes_nothing,
    a_plan_past_five_years_or_five_hundred_rounds_is_refused_and_creates_nothing,
    skips_must_be_dates_the_rule_gives_within_the_range,
    only_organizers_plan_and_only_a_series_with_a_recurrence,
    the_demo_series_preview_over_2019_shows_the_page_s_rounds,
);

async fn set_recurrence(app: &TestApp, rule: &str) {
    let response = app
        .patch("/api/v1/series", &json!({"recurrence": rule}))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn plan(app: &TestApp, body: Value) -> Value {
    let response = app.post("/api/v1/series/plan", &body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn dates(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["date"].as_str().unwrap().to_owned())
        .collect()
}

/// The planned item of `date` in `created`.
fn created_on<'a>(result: &'a Value, date: &str) -> &'a Value {
    result["created"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["date"] == date)
        .unwrap_or_else(|| panic!("{date} was not created: {result}"))
}

async fn round_count(app: &TestApp) -> i64 {
    app.get_ok("/api/v1/rounds?limit=1").await["total"]
        .as_i64()
        .unwrap()
}

async fn the_recurrence_is_checked_naming_the_part_and_kept_canonical(app: TestApp) {
    for (rule, part) in [
        ("FREQ=DAILY", "FREQ"),
        ("FREQ=MONTHLY;BYMONTHDAY=15", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYDAY=6TH", "BYDAY"),
        ("FREQ=WEEKLY;BYDAY=3TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=3TH;COUNT=5;UNTIL=20201231", "UNTIL"),
        ("FREQ=MONTHLY;INTERVAL=0", "INTERVAL"),
        ("FREQ=MONTHLY;BYSETPOS=2", "BYSETPOS"),
        ("FREQ=MONTHLY;WKST=SU", "WKST"),
    ] {
        let response = app
            .patch("/api/v1/series", &json!({"recurrence": rule}))
            .await;
        let problem = assert_problem(response, 422).await;
        assert_eq!(error_fields(&problem), vec!["recurrence"], "{rule}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with(part), "{rule}: {message}");
    }
    assert_eq!(
        app.get_ok("/api/v1/series").await["recurrence"],
        Value::Null,
        "a refused rule changes nothing"
    );

    set_recurrence(&app, "rrule:freq=monthly;byday=3th").await;
    let series = app.get_ok("/api/v1/series").await;
    assert_eq!(series["recurrence"], "FREQ=MONTHLY;BYDAY=3TH");
    assert_eq!(series["attention_days"], 45);
    assert_eq!(series["skipped_dates"], json!([]));

    let cleared = app
        .patch("/api/v1/series", &json!({"recurrence": null}))
        .await;
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        app.get_ok("/api/v1/series").await["recurrence"],
        Value::Null
    );
}

async fn the_year_is_planned_at_noon_local_on_both_sides_of_the_clock_changes(app: TestApp) {
    set_recurrence(&app, "FREQ=MONTHLY;BYDAY=3TH").await;

    let result = plan(
        &app,
        json!({"from": "2019-01-01", "to": "2019-12-31",
               "skip": [{"date": "2019-08-15", "reason": "Summer break"}]}),
    )
    .await;

    assert_eq!(result["preview"], false);
    assert_eq!(
        dates(&result["created"]),
        [
            "2019-01-17",
            "2019-02-21",
            "2019-03-21",
            "2019-04-18",
            "2019-05-16",
            "2019-06-20",
            "2019-07-18",
            "2019-09-19",
            "2019-10-17",
            "2019-11-21",
            "2019-12-19"
        ]
    );
    assert_eq!(
        result["skipped"],
        json!([{"date": "2019-08-15", "reason": "Summer break"}])
    );
    assert_eq!(result["existing"], json!([]));
    // Daylight saving time began on 2019-03-10 and ended on 2019-11-03: noon is 16:00Z
    // between, 17:00Z outside.
    for (date, utc, local) in [
        (
            "2019-01-17",
            "2019-01-17T17:00:00Z",
            "2019-01-17T12:00:00-05:00",
        ),
        (
            "2019-03-21",
            "2019-03-21T16:00:00Z",
            "2019-03-21T12:00:00-04:00",
        ),
        (
            "2019-10-17",
            "2019-10-17T16:00:00Z",
            "2019-10-17T12:00:00-04:00",
        ),
        (
            "2019-11-21",
            "2019-11-21T17:00:00Z",
            "2019-11-21T12:00:00-05:00",
        ),
    ] {
        let item = created_on(&result, date);
        assert_eq!(item["starts_at"], utc, "{date}");
        assert_eq!(item["starts_at_local"], local, "{date}");
        let round = app
            .get_ok(&format!(
                "/api/v1/rounds/{}",
                item["round_id"].as_i64().unwrap()
            ))
            .await;
        assert_eq!(round["starts_at_local"], local, "{date}");
        assert_eq!(
            round["ends_at_local"],
            local.replace("T12:", "T13:"),
            "{date}"
        );
        assert_eq!(
            round["title"],
            Value::Null,
            "a planned round has no title yet"
        );
        assert_eq!(
            round["location"], "TBA",
            "the series has no default location here"
        );
    }
    assert_eq!(round_count(&app).await, 11);
    assert_eq!(
        app.get_ok("/api/v1/series").await["skipped_dates"],
        json!([{"date": "2019-08-15", "reason": "Summer break"}])
    );
}

async fn a_second_plan_creates_nothing_and_a_stored_skip_stays_skipped(app: TestApp) {
    app.patch(
        "/api/v1/series",
        &json!({"recurrence": "FREQ=MONTHLY;BYDAY=3TH", "default_location": "BMC – MassMutual 5"}),
    )
    .await;
    let body = json!({"from": "2019-01-01", "to": "2019-12-31",
                      "skip": [{"date": "2019-08-15", "reason": "Summer break"}]});
    let first = plan(&app, body.clone()).await;
    assert_eq!(first["created"].as_array().unwrap().len(), 11);
    assert_eq!(
        created_on(&first, "2019-03-21")["location"],
        "BMC – MassMutual 5"
    );

    let second = plan(&app, body).await;
    assert_eq!(second["created"], json!([]));
    assert_eq!(second["existing"].as_array().unwrap().len(), 11);
    let march = second["existing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["date"] == "2019-03-21")
        .unwrap();
    assert_eq!(
        march["round_id"],
        created_on(&first, "2019-03-21")["round_id"],
        "the round made by the first plan"
    );

    // Without the skip this time: the stored one holds, with its reason.
    let third = plan(&app, json!({"from": "2019-06-01", "to": "2019-09-30"})).await;
    assert_eq!(third["created"], json!([]));
    assert_eq!(
        third["skipped"],
        json!([{"date": "2019-08-15", "reason": "Summer break"}])
    );
    assert_eq!(
        dates(&third["existing"]),
        ["2019-06-20", "2019-07-18", "2019-09-19"]
    );
    assert_eq!(round_count(&app).await, 11);

    // A deleted round comes back with the next plan; an un-skipped date gets its round.
    let june = third["existing"][0]["round_id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/rounds/{june}")).await.status(),
        204
    );
    app.patch("/api/v1/series", &json!({"skipped_dates": []}))
        .await;
    let fourth = plan(&app, json!({"from": "2019-06-01", "to": "2019-09-30"})).await;
    assert_eq!(dates(&fourth["created"]), ["2019-06-20", "2019-08-15"]);
    assert_eq!(fourth["skipped"], json!([]));
}

async fn the_last_thursday_of_the_month_is_a_rule_too(app: TestApp) {
    set_recurrence(&app, "FREQ=MONTHLY;BYDAY=-1TH").await;

    let result = plan(
        &app,
        json!({"from": "2019-10-01", "to": "2020-01-31",
               "skip": [{"date": "2019-11-28", "reason": "Thanksgiving"}]}),
    )
    .await;

    assert_eq!(
        dates(&result["created"]),
        ["2019-10-31", "2019-12-26", "2020-01-30"]
    );
    assert_eq!(
        result["skipped"],
        json!([{"date": "2019-11-28", "reason": "Thanksgiving"}])
    );
    assert_eq!(
        created_on(&result, "2019-10-31")["starts_at_local"],
        "2019-10-31T12:00:00-04:00"
    );
    assert_eq!(
        created_on(&result, "2019-12-26")["starts_at_local"],
        "2019-12-26T12:00:00-05:00"
    );
}

async fn a_preview_answers_the_same_and_changes_nothing(app: TestApp) {
    set_recurrence(&app, "FREQ=MONTHLY;BYDAY=3TH").await;
    let existing = crate::helpers::id_of(
        &app.create(
            "/api/v1/rounds",
            json!({"starts_at": "2019-03-21T12:00:00-04:00", "ends_at": "2019-03-21T13:00:00-04:00",
                   "location": "BMC – MassMutual 6", "title": "Already planned"}),
        )
        .await,
    );
    let series_before = app.get_ok("/api/v1/series").await;
    let body = json!({"from": "2019-01-01", "to": "2019-06-30", "preview": true,
                      "skip": [{"date": "2019-05-16", "reason": "Conference"}]});

    let preview = plan(&app, body.clone()).await;

    assert_eq!(preview["preview"], true);
    assert_eq!(
        dates(&preview["created"]),
        ["2019-01-17", "2019-02-21", "2019-04-18", "2019-06-20"]
    );
    assert!(preview["created"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["round_id"].is_null()));
    assert_eq!(
        preview["existing"],
        json!([{"date": "2019-03-21", "round_id": existing}])
    );
    assert_eq!(
        preview["skipped"],
        json!([{"date": "2019-05-16", "reason": "Conference"}])
    );
    assert_eq!(round_count(&app).await, 1);
    assert_eq!(app.get_ok("/api/v1/series").await, series_before);

    // The real plan answers the same dates.
    let mut real = body;
    real["preview"] = json!(false);
    let done = plan(&app, real).await;
    assert_eq!(dates(&done["created"]), dates(&preview["created"]));
    assert_eq!(done["existing"], preview["existing"]);
    assert_eq!(round_count(&app).await, 5);
}

async fn a_plan_past_five_years_or_five_hundred_rounds_is_refused_and_creates_nothing(
    app: TestApp,
) {
    set_recurrence(&app, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR").await;

    // Five years less a day is the longest range.
    let long = app
        .post(
            "/api/v1/series/plan",
            &json!({"from": "2019-01-01", "to": "2024-01-01"}),
        )
        .await;
    let problem = assert_problem(long, 422).await;
    assert_eq!(error_fields(&problem), vec!["to"]);
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("2023-12-31"));

    // Two years of weekdays are more than 500 rounds.
    let many = app
        .post(
            "/api/v1/series/plan",
            &json!({"from": "2019-01-01", "to": "2020-12-31"}),
        )
        .await;
    let problem = assert_problem(many, 422).await;
    assert_eq!(error_fields(&problem), vec!["to"]);
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("500"));
    assert_eq!(round_count(&app).await, 0);

    let reversed = app
        .post(
            "/api/v1/series/plan",
            &json!({"from": "2019-02-01", "to": "2019-01-01"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(reversed, 422).await),
        vec!["to"]
    );
    let not_a_date = app
        .post(
            "/api/v1/series/plan",
            &json!({"from": "2019-02-30", "to": "2019-13-01"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(not_a_date, 422).await),
        vec!["from", "to"]
    );
}

async fn skips_must_be_dates_the_rule_gives_within_the_range(app: TestApp) {
    set_recurrence(&app, "FREQ=MONTHLY;BYDAY=3TH").await;

    let off_rule = app
        .post(
            "/api/v1/series/plan",
            &json!({"from": "2019-01-01", "to": "2019-12-31",
                    "skip": [{"date": "2019-08-15", "reason": "Summer"},
                             {"date": "2019-08-22", "reason": "Typo"}]}),
        )
        .await;
    let problem = assert_problem(off_rule, 422).await;
    assert_eq!(error_fields(&problem), vec!["skip[1].date"]);

    let outside = app
        .post(
            "/api/v1/series/plan",
            &json!({"from": "2019-01-01", "to": "2019-06-30",
                    "skip": [{"date": "2019-08-15", "reason": "Summer"},
                             {"date": "2019-01-17", "reason": ""}]}),
        )
        .await;
    let problem = assert_problem(outside, 422).await;
    assert_eq!(
        error_fields(&problem),
        vec!["skip[0].date", "skip[1].reason"]
    );
    assert_eq!(round_count(&app).await, 0);
    assert_eq!(
        app.get_ok("/api/v1/series").await["skipped_dates"],
        json!([])
    );
}

async fn only_organizers_plan_and_only_a_series_with_a_recurrence(app: TestApp) {
    let body = json!({"from": "2019-01-01", "to": "2019-12-31", "preview": true});
    let anonymous = app
        .request_as(None, Method::POST, "/api/v1/series/plan", Some(&body))
        .await;
    assert_problem(anonymous, 401).await;
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    let refused = app
        .request_as(
            Some(&viewer),
            Method::POST,
            "/api/v1/series/plan",
            Some(&body),
        )
        .await;
    assert_problem(refused, 403).await;

    let without = app.post("/api/v1/series/plan", &body).await;
    let problem = assert_problem(without, 409).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("no recurrence"));
}

async fn the_demo_series_preview_over_2019_shows_the_page_s_rounds(app: TestApp) {
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        lhs_rounds::app::demo::seed(&mut conn).expect("the demo loads");
    })
    .await
    .unwrap();
    let rounds_before = round_count(&app).await;
    assert_eq!(
        app.get_ok("/api/v1/series").await["recurrence"],
        "FREQ=MONTHLY;BYDAY=3TH"
    );

    let preview = plan(
        &app,
        json!({"from": "2019-01-01", "to": "2019-12-31", "preview": true}),
    )
    .await;

    // The page's rounds on the third Thursday.
    assert_eq!(
        dates(&preview["existing"]),
        [
            "2019-01-17",
            "2019-06-20",
            "2019-07-18",
            "2019-11-21",
            "2019-12-19"
        ]
    );
    // August, which the page skipped, stays skipped.
    assert_eq!(
        preview["skipped"],
        json!([{"date": "2019-08-15", "reason": "No round in August"}])
    );
    // The rounds the page moved off the rule, and the rule's own dates of those months (and
    // March's, when the page had no round): what the plan would add.
    assert_eq!(
        dates(&preview["off_rule"]),
        [
            "2019-02-14",
            "2019-04-25",
            "2019-05-23",
            "2019-09-26",
            "2019-10-24"
        ]
    );
    assert_eq!(
        dates(&preview["created"]),
        [
            "2019-02-21",
            "2019-03-21",
            "2019-04-18",
            "2019-05-16",
            "2019-09-19",
            "2019-10-17"
        ]
    );
    assert_eq!(
        created_on(&preview, "2019-03-21")["starts_at_local"],
        "2019-03-21T12:00:00-04:00"
    );
    assert_eq!(round_count(&app).await, rounds_before);
}
