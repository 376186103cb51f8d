//! Measures, their data points and their run charts: the rules of a batch, the upsert by
//! period, the run-chart vectors of both rule sets read through the API, re-baselining, the
//! SVG picture, and `measure.signal_detected`.

use chrono::{Datelike, Months, NaiveDate};
use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, spawn_app_with, Receiver, TestApp};
use crate::initiatives::initiative;

on_both_backends!(
    a_measure_is_created_read_changed_and_deleted,
    a_measures_settings_are_checked,
    a_batch_is_refused_whole_naming_each_bad_point,
    proportions_are_refused_when_the_numerator_is_above_the_denominator,
    the_upsert_is_by_period_and_idempotent,
    the_ihi_vectors_read_through_the_api,
    the_anhoej_vectors_read_through_the_api,
    a_rebaseline_reads_each_phase_against_its_own_median,
    the_picture_is_an_accessible_svg,
    a_new_signal_is_sent_once_as_measure_signal_detected,
    ten_years_of_weekly_points_are_read,
    an_initiative_holds_at_most_a_hundred_measures,
    a_long_batch_of_one_period_names_its_first_point,
);

/// A measure of a new initiative, with `extra` fields.
pub async fn measure(app: &TestApp, extra: Value) -> Value {
    let initiative = id_of(&initiative(app, "Measured", json!({})).await);
    let mut body = json!({"name": "Falls", "type": "outcome", "data_type": "continuous",
                          "frequency": "month", "improvement_direction": "increase"});
    json_patch::merge(&mut body, &extra);
    app.create(&format!("/api/v1/initiatives/{initiative}/measures"), body)
        .await
}

fn month(i: usize) -> String {
    let start = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    (start + Months::new(u32::try_from(i).unwrap()))
        .format("%Y-%m-%d")
        .to_string()
}

/// A batch of monthly values from January 2023.
fn monthly(values: &[f64]) -> Value {
    let points: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"period": month(i), "value": v}))
        .collect();
    json!({"points": points})
}

async fn put_points(app: &TestApp, id: i32, body: &Value) -> Value {
    let response = app
        .put(&format!("/api/v1/measures/{id}/points"), body)
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn chart(app: &TestApp, id: i32, rules: &str) -> Value {
    app.get_ok(&format!("/api/v1/measures/{id}/run-chart?rules={rules}"))
        .await
}

fn rules_of(phase: &Value) -> Vec<String> {
    phase["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap().to_owned())
        .collect()
}

const H: f64 = 9.0;
const L: f64 = 1.0;
const M: f64 = 5.0;

fn alternating() -> Vec<f64> {
    [H, L].repeat(6)
}

fn with(mut base: Vec<f64>, tail: &[f64]) -> Vec<f64> {
    base.extend_from_slice(tail);
    base
}

async fn a_measure_is_created_read_changed_and_deleted(app: TestApp) {
    let created = measure(
        &app,
        json!({"data_type": "rate", "unit": "falls per 1,000 bed-days", "multiplier": 1000,
               "target": 2.5, "improvement_direction": "decrease",
               "operational_definition": "Falls with or without harm, per 1,000 occupied bed-days"}),
    )
    .await;
    let id = id_of(&created);
    let path = format!("/api/v1/measures/{id}");
    assert_eq!(created["type"], "outcome");
    assert_eq!(created["multiplier"], 1000.0);
    assert_eq!(created["rules"], "ihi", "the default");
    assert_eq!(created["points"], 0);
    assert_eq!(created["signals"], json!([]));
    assert_eq!(app.get_ok(&path).await, created);
    let initiative = created["initiative_id"].as_i64().unwrap();
    let listed = app
        .get_ok(&format!("/api/v1/initiatives/{initiative}/measures"))
        .await;
    assert_eq!(listed["total"], 1);

    let batch = json!({"points": [
        {"period": "2023-01-01", "numerator": 3, "denominator": 1500},
        {"period": "2023-02-01", "numerator": 6, "denominator": 2000, "note": "New beds"}
    ]});
    put_points(&app, id, &batch).await;
    let points = app.get_ok(&format!("{path}/points")).await;
    assert_eq!(points["items"][0]["value"], 2.0, "3 / 1500 × 1000");
    assert_eq!(points["items"][1]["value"], 3.0);
    assert_eq!(points["items"][1]["note"], "New beds");
    let read = app.get_ok(&path).await;
    assert_eq!(read["points"], 2);
    assert_eq!(read["first_period"], "2023-01-01");
    assert_eq!(read["last_period"], "2023-02-01");

    // What the points were checked against stays while there are points.
    let problem = assert_problem(app.patch(&path, &json!({"frequency": "week"})).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("frequency"));
    assert_problem(app.patch(&path, &json!({"data_type": "count"})).await, 409).await;
    let renamed = app.patch(&path, &json!({"name": "Falls, all wards"})).await;
    assert_eq!(renamed.status(), 200);

    assert_eq!(
        app.delete(&format!("{path}/points/2023-02-01"))
            .await
            .status(),
        204
    );
    assert_problem(app.delete(&format!("{path}/points/2023-02-01")).await, 404).await;
    assert_eq!(app.get_ok(&path).await["points"], 1);
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_problem(app.get(&path).await, 404).await;
    assert_problem(app.get(&format!("{path}/points")).await, 404).await;
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::PUT,
            &format!("/api/v1/measures/{id}/points"),
            Some(&batch),
        )
        .await,
        403,
    )
    .await;
}

async fn a_measures_settings_are_checked(app: TestApp) {
    let initiative = id_of(&initiative(&app, "Settings", json!({})).await);
    let path = format!("/api/v1/initiatives/{initiative}/measures");
    let base = json!({"name": "Falls", "type": "outcome", "data_type": "count",
                      "frequency": "week", "improvement_direction": "decrease"});
    let with = |extra: Value| {
        let mut body = base.clone();
        json_patch::merge(&mut body, &extra);
        body
    };
    for (extra, fields) in [
        (
            json!({"baseline": {"from": "2024-01-01", "to": "2024-02-26"}}),
            vec!["baseline"],
        ),
        (
            json!({"baseline": {"from": "2024-01-02", "to": "2024-06-04"}}),
            vec!["baseline.from", "baseline.to"],
        ),
        (
            json!({"baseline": {"from": "2024-06-03", "to": "2024-01-01"}}),
            vec!["baseline.to"],
        ),
        (
            json!({"phases": [{"start_period": "2024-06-03", "reason": "New rota"},
                           {"start_period": "2024-06-03", "reason": "Again"}]}),
            vec!["phases[1].start_period"],
        ),
        (
            json!({"phases": [{"start_period": "2024-06-04", "reason": "Not a Monday"}]}),
            vec!["phases[0].start_period"],
        ),
        (
            json!({"phases": [{"start_period": "2024-06-03", "reason": " "}]}),
            vec!["phases[0].reason"],
        ),
        (json!({"multiplier": 0}), vec!["multiplier"]),
        (json!({"frequency": "day"}), vec!["frequency"]),
        (json!({"type": "structure"}), vec!["type"]),
        (json!({"rules": "western_electric"}), vec!["rules"]),
    ] {
        let problem = assert_problem(app.post(&path, &with(extra.clone())).await, 422).await;
        assert_eq!(error_fields(&problem), fields, "{extra}");
    }
    let problem = assert_problem(
        app.post(
            &path,
            &with(json!({"baseline": {"from": "2024-01-02", "to": "2024-06-04"}})),
        )
        .await,
        422,
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2024-01-01"),
        "says which Monday: {problem}"
    );
    app.create(
        &path,
        with(
            json!({"baseline": {"from": "2024-01-01", "to": "2024-03-04"},
                    "phases": [{"start_period": "2024-06-03", "reason": "New rota"}]}),
        ),
    )
    .await;
    assert_problem(
        app.post("/api/v1/initiatives/2147483647/measures", &base)
            .await,
        404,
    )
    .await;
}

async fn a_batch_is_refused_whole_naming_each_bad_point(app: TestApp) {
    let count = measure(&app, json!({"data_type": "count", "frequency": "week"})).await;
    let id = id_of(&count);
    let other = id_of(&initiative(&app, "Another", json!({})).await);
    let foreign = app
        .create(
            &format!("/api/v1/initiatives/{other}/pdsa-cycles"),
            json!({"change_idea": "Elsewhere"}),
        )
        .await;
    let batch = json!({"points": [
        {"period": "2024-03-04", "value": 3},
        {"period": "2024-03-06", "value": 3},
        {"period": "2024-03-11", "value": -1},
        {"period": "2024-03-18", "value": 2.5},
        {"period": "2024-03-25", "numerator": 1, "denominator": 2},
        {"period": "2024-04-01", "value": 1, "excluded": true},
        {"period": "2024-04-08", "value": 1, "pdsa_cycle_id": id_of(&foreign)},
        {"period": "2024-04-15", "value": 1, "pdsa_cycle_id": 2147483647},
        {"period": "2024-03-04", "value": 4},
        {"period": "2024-04-22"}
    ]});
    let problem = assert_problem(
        app.put(&format!("/api/v1/measures/{id}/points"), &batch)
            .await,
        422,
    )
    .await;
    // What the document and the body's rules say, and references to nothing, first.
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "points[5].exclusion_reason",
            "points[7].pdsa_cycle_id",
            "points[8].period"
        ]
    );
    let message = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "points[8].period")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("points[0]"), "{message}");
    // Then what depends on the measure, every point at once.
    let problem = assert_problem(
        app.put(
            &format!("/api/v1/measures/{id}/points"),
            &json!({"points": [
                {"period": "2024-03-04", "value": 3},
                {"period": "2024-03-06", "value": 3},
                {"period": "2024-03-11", "value": -1},
                {"period": "2024-03-18", "value": 2.5},
                {"period": "2024-03-25", "numerator": 1, "denominator": 2}
            ]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        vec![
            "points[1].period",
            "points[2].value",
            "points[3].value",
            "points[4].numerator",
            "points[4].denominator",
            "points[4].value"
        ]
    );
    // Nothing was written.
    assert_eq!(
        app.get_ok(&format!("/api/v1/measures/{id}")).await["points"],
        0
    );

    // The points that depend on the database are checked in the write.
    let problem = assert_problem(
        app.put(
            &format!("/api/v1/measures/{id}/points"),
            &json!({"points": [
                {"period": "2024-03-06", "value": 3},
                {"period": "2024-04-08", "value": 1, "pdsa_cycle_id": id_of(&foreign)},
                {"period": "2024-04-15", "value": 1, "pdsa_cycle_id": 2147483647},
                {"period": "2024-04-22"}
            ]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        vec!["points[2].pdsa_cycle_id",],
        "a reference to nothing is named first, alone"
    );
    let problem = assert_problem(
        app.put(
            &format!("/api/v1/measures/{id}/points"),
            &json!({"points": [
                {"period": "2024-03-06", "value": 3},
                {"period": "2024-04-08", "value": 1, "pdsa_cycle_id": id_of(&foreign)},
                {"period": "2024-04-22"}
            ]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        vec![
            "points[0].period",
            "points[1].pdsa_cycle_id",
            "points[2].value"
        ]
    );
    let wrong = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        wrong.contains("Monday") && wrong.contains("2024-03-04"),
        "{wrong}"
    );
    assert_eq!(
        app.get_ok(&format!("/api/v1/measures/{id}")).await["points"],
        0
    );
    assert_problem(
        app.put("/api/v1/measures/2147483647/points", &json!({"points": []}))
            .await,
        404,
    )
    .await;
}

async fn proportions_are_refused_when_the_numerator_is_above_the_denominator(app: TestApp) {
    let id = id_of(&measure(&app, json!({"data_type": "proportion", "multiplier": 100})).await);
    let path = format!("/api/v1/measures/{id}/points");
    let problem = assert_problem(
        app.put(
            &path,
            &json!({"points": [{"period": "2023-01-01", "numerator": 12, "denominator": 10}]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["points[0].numerator"]);
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("denominator"));
    for (point, field) in [
        (
            json!({"period": "2023-01-01", "numerator": 1, "denominator": 0}),
            "points[0].denominator",
        ),
        (
            json!({"period": "2023-01-01", "numerator": -1, "denominator": 10}),
            "points[0].numerator",
        ),
        (
            json!({"period": "2023-01-01", "value": 50}),
            "points[0].value",
        ),
        (
            json!({"period": "2023-01-01", "denominator": 10}),
            "points[0].numerator",
        ),
    ] {
        let problem = assert_problem(app.put(&path, &json!({"points": [point]})).await, 422).await;
        assert!(
            error_fields(&problem).contains(&field.to_owned()),
            "{field}: {problem}"
        );
    }
    // The whole is allowed: 10 of 10.
    let done = put_points(
        &app,
        id,
        &json!({"points": [{"period": "2023-01-01", "numerator": 10, "denominator": 10},
                           {"period": "2023-02-01", "numerator": 0, "denominator": 7}]}),
    )
    .await;
    assert_eq!(done["created"], 2);
    let points = app.get_ok(&path).await;
    assert_eq!(points["items"][0]["value"], 100.0);
    assert_eq!(points["items"][1]["value"], 0.0);

    // A rate may exceed its denominator.
    let rate = id_of(&measure(&app, json!({"data_type": "rate", "multiplier": 1000})).await);
    put_points(
        &app,
        rate,
        &json!({"points": [{"period": "2023-01-01", "numerator": 12, "denominator": 10}]}),
    )
    .await;
}

async fn the_upsert_is_by_period_and_idempotent(app: TestApp) {
    let id = id_of(&measure(&app, json!({})).await);
    let batch = monthly(&[1.0, 2.0, 3.0]);
    let first = put_points(&app, id, &batch).await;
    assert_eq!(
        (
            first["created"].clone(),
            first["updated"].clone(),
            first["unchanged"].clone()
        ),
        (json!(3), json!(0), json!(0))
    );
    let audit_before = app.get_ok("/api/v1/audit?limit=1").await["total"].clone();
    let etag = app.get(&format!("/api/v1/measures/{id}")).await.headers()["etag"].clone();

    let again = put_points(&app, id, &batch).await;
    assert_eq!(
        (
            again["created"].clone(),
            again["updated"].clone(),
            again["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(3))
    );
    assert_eq!(
        app.get_ok("/api/v1/audit?limit=1").await["total"],
        audit_before,
        "the same batch again writes nothing"
    );
    assert_eq!(
        app.get(&format!("/api/v1/measures/{id}")).await.headers()["etag"],
        etag
    );

    let changed = put_points(
        &app,
        id,
        &json!({"points": [{"period": month(1), "value": 20},
                           {"period": month(3), "value": 4},
                           {"period": month(0), "value": 1, "excluded": true, "exclusion_reason": "Audit missed a ward"}]}),
    )
    .await;
    assert_eq!(
        (changed["created"].clone(), changed["updated"].clone()),
        (json!(1), json!(2))
    );
    let points = app.get_ok(&format!("/api/v1/measures/{id}/points")).await;
    let values: Vec<f64> = points["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![1.0, 20.0, 3.0, 4.0],
        "one point per period, in period order"
    );
    assert_eq!(points["items"][0]["excluded"], true);
    assert_eq!(
        points["items"][0]["exclusion_reason"],
        "Audit missed a ward"
    );
    assert_ne!(
        app.get(&format!("/api/v1/measures/{id}")).await.headers()["etag"],
        etag
    );

    // Each point's change is in the audit trail.
    let audit = app
        .get_ok("/api/v1/audit?resource=data_point&limit=100")
        .await;
    assert_eq!(audit["total"], 6, "3 created, then 1 created and 2 updated");
}

async fn the_ihi_vectors_read_through_the_api(app: TestApp) {
    // A shift of 5 against one of 6.
    let five = id_of(&measure(&app, json!({})).await);
    put_points(&app, five, &monthly(&with(alternating(), &[H; 5]))).await;
    let phase = &chart(&app, five, "ihi").await["phases"][0];
    assert_eq!(phase["centre"], 5.0);
    assert_eq!(phase["counts"]["longest_run"], 5);
    assert!(!rules_of(phase).contains(&"shift".to_owned()));
    let six = id_of(&measure(&app, json!({})).await);
    put_points(&app, six, &monthly(&with(alternating(), &[H; 6]))).await;
    let answer = chart(&app, six, "ihi").await;
    assert_eq!(answer["rule_set"], "ihi");
    assert_eq!(answer["measure_id"], six);
    let phase = &answer["phases"][0];
    let shift = phase["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rule"] == "shift")
        .unwrap()
        .clone();
    assert_eq!(shift["from_period"], month(12));
    assert_eq!(shift["to_period"], month(17));
    assert_eq!(shift["direction"], "above");
    assert_eq!(shift["favourable"], true, "increase is better");
    assert_eq!(phase["points"][12]["side"], "above");
    assert_eq!(phase["points"][11]["side"], "below");
    assert_eq!(phase["limits"]["shift_min"], 6);
    assert_eq!(phase["limits"]["trend_min"], 5);

    // Points on the median neither add to nor break a shift.
    let on = id_of(&measure(&app, json!({})).await);
    let base = with(alternating()[..10].to_vec(), &[M, M]);
    put_points(&app, on, &monthly(&with(base.clone(), &[H, H, M, H, H, H]))).await;
    let phase = &chart(&app, on, "ihi").await["phases"][0];
    assert_eq!(phase["counts"]["points"], 18);
    assert_eq!(phase["counts"]["useful_points"], 15);
    assert_eq!(phase["points"][14]["side"], "on");
    assert!(!rules_of(phase).contains(&"shift".to_owned()));
    put_points(
        &app,
        on,
        &json!({"points": [{"period": month(18), "value": H}]}),
    )
    .await;
    let phase = &chart(&app, on, "ihi").await["phases"][0];
    assert!(
        rules_of(phase).contains(&"shift".to_owned()),
        "six across the point on it"
    );

    // A repeated value neither makes nor breaks a trend.
    let four = id_of(&measure(&app, json!({})).await);
    put_points(
        &app,
        four,
        &monthly(&[5.0, 1.0, 9.0, 2.0, 3.0, 3.0, 4.0, 6.0, 1.0, 9.0, 2.0, 8.0]),
    )
    .await;
    assert!(!rules_of(&chart(&app, four, "ihi").await["phases"][0]).contains(&"trend".to_owned()));
    let trend = id_of(&measure(&app, json!({})).await);
    put_points(
        &app,
        trend,
        &monthly(&[5.0, 1.0, 9.0, 2.0, 3.0, 3.0, 4.0, 6.0, 7.0, 1.0, 9.0, 2.0]),
    )
    .await;
    let phase = &chart(&app, trend, "ihi").await["phases"][0];
    let found = phase["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rule"] == "trend")
        .unwrap()
        .clone();
    assert_eq!(
        (found["from_period"].clone(), found["to_period"].clone()),
        (json!(month(3)), json!(month(8)))
    );
    assert_eq!(found["direction"], "up");

    // Exactly 9 useful points: insufficient data and no signals; exactly 10: read.
    let nine = id_of(&measure(&app, json!({})).await);
    let mut rising = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 8.0, 9.0, 10.0, 11.0];
    put_points(&app, nine, &monthly(&rising)).await;
    let phase = &chart(&app, nine, "ihi").await["phases"][0];
    assert_eq!(phase["counts"]["useful_points"], 9);
    assert_eq!(phase["status"], "insufficient_data");
    assert_eq!(phase["signals"], json!([]));
    assert_eq!(phase["limits"]["runs_lower"], Value::Null);
    let ten = id_of(&measure(&app, json!({})).await);
    rising[6] = 7.0;
    put_points(&app, ten, &monthly(&rising)).await;
    let phase = &chart(&app, ten, "ihi").await["phases"][0];
    assert_eq!(phase["counts"]["useful_points"], 10);
    assert_eq!(phase["status"], "ok");
    assert_eq!(phase["limits"]["runs_lower"], 3);
    assert_eq!(phase["limits"]["runs_upper"], 9);
    assert_eq!(rules_of(phase), vec!["trend", "too_few_runs"]);

    // Too many runs: 20 alternating points, the published limits for 20 are 6 to 16.
    let many = id_of(&measure(&app, json!({})).await);
    put_points(&app, many, &monthly(&[H, L].repeat(10))).await;
    let phase = &chart(&app, many, "ihi").await["phases"][0];
    assert_eq!(phase["counts"]["runs"], 20);
    assert_eq!(
        (
            phase["limits"]["runs_lower"].clone(),
            phase["limits"]["runs_upper"].clone()
        ),
        (json!(6), json!(16))
    );
    assert_eq!(rules_of(phase), vec!["too_many_runs"]);
    assert_eq!(phase["signals"][0]["direction"], Value::Null);

    // An astronomical point is a person's flag, never computed.
    let far = id_of(&measure(&app, json!({})).await);
    put_points(&app, far, &monthly(&with(alternating(), &[1000.0, L]))).await;
    assert!(
        !rules_of(&chart(&app, far, "ihi").await["phases"][0]).contains(&"astronomical".to_owned())
    );
    put_points(
        &app,
        far,
        &json!({"points": [{"period": month(12), "value": 1000.0, "astronomical": true}]}),
    )
    .await;
    assert!(
        rules_of(&chart(&app, far, "ihi").await["phases"][0]).contains(&"astronomical".to_owned())
    );

    // The measure's own rules when none are asked for.
    assert_eq!(
        app.get_ok(&format!("/api/v1/measures/{six}/run-chart"))
            .await["rule_set"],
        "ihi"
    );
    let problem = assert_problem(
        app.get(&format!("/api/v1/measures/{six}/run-chart?rules=nelson"))
            .await,
        400,
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["rules"]);
    assert_problem(app.get("/api/v1/measures/2147483647/run-chart").await, 404).await;
}

async fn the_anhoej_vectors_read_through_the_api(app: TestApp) {
    let base = with(alternating()[..10].to_vec(), &[M, M]);
    // 7 above across a point on the median: 17 useful, the limit 7: no long run.
    let seven = id_of(&measure(&app, json!({"rules": "anhoej"})).await);
    put_points(
        &app,
        seven,
        &monthly(&with(base.clone(), &[H, H, H, M, H, H, H, H])),
    )
    .await;
    let answer = chart(&app, seven, "anhoej").await;
    assert_eq!(answer["rule_set"], "anhoej");
    let phase = &answer["phases"][0];
    assert_eq!(phase["counts"]["useful_points"], 17);
    assert_eq!(
        phase["limits"],
        json!({"rule_set": "anhoej", "longest_run_max": 7, "crossings_min": 5})
    );
    assert!(!rules_of(phase).contains(&"long_run".to_owned()));
    assert_eq!(
        app.get_ok(&format!("/api/v1/measures/{seven}/run-chart"))
            .await["rule_set"],
        "anhoej",
        "the measure's rules"
    );
    // 8: a long run.
    let eight = id_of(&measure(&app, json!({})).await);
    put_points(
        &app,
        eight,
        &monthly(&with(base, &[H, H, H, M, H, H, H, H, H])),
    )
    .await;
    let phase = &chart(&app, eight, "anhoej").await["phases"][0];
    let long = phase["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rule"] == "long_run")
        .unwrap()
        .clone();
    assert_eq!(
        (long["from_period"].clone(), long["to_period"].clone()),
        (json!(month(12)), json!(month(20)))
    );

    // Exactly 9 and 10 useful points, and few crossings.
    let nine = id_of(&measure(&app, json!({})).await);
    put_points(
        &app,
        nine,
        &monthly(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 8.0, 9.0, 10.0, 11.0]),
    )
    .await;
    let phase = &chart(&app, nine, "anhoej").await["phases"][0];
    assert_eq!(phase["status"], "insufficient_data");
    assert_eq!(phase["limits"]["longest_run_max"], Value::Null);
    let ten = id_of(&measure(&app, json!({})).await);
    put_points(
        &app,
        ten,
        &monthly(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]),
    )
    .await;
    let phase = &chart(&app, ten, "anhoej").await["phases"][0];
    assert_eq!(phase["status"], "ok");
    assert_eq!(
        phase["limits"],
        json!({"rule_set": "anhoej", "longest_run_max": 6, "crossings_min": 2})
    );
    assert_eq!(rules_of(phase), vec!["few_crossings"]);
    assert_eq!(phase["counts"]["crossings"], 1);
    // A shift of 6 is no Anhøj signal by itself in 18 points (limit 7).
    let six = id_of(&measure(&app, json!({})).await);
    put_points(&app, six, &monthly(&with(alternating(), &[H; 6]))).await;
    let phase = &chart(&app, six, "anhoej").await["phases"][0];
    assert!(!rules_of(phase).contains(&"long_run".to_owned()));
}

async fn a_rebaseline_reads_each_phase_against_its_own_median(app: TestApp) {
    let id = id_of(&measure(&app, json!({})).await);
    let second: Vec<f64> = [22.0, 18.0].repeat(6);
    put_points(&app, id, &monthly(&with(alternating(), &second))).await;
    let single = chart(&app, id, "ihi").await;
    assert_eq!(single["phases"].as_array().unwrap().len(), 1);
    assert!(rules_of(&single["phases"][0]).contains(&"shift".to_owned()));

    let rebased = app
        .patch(
            &format!("/api/v1/measures/{id}"),
            &json!({"phases": [{"start_period": month(12), "reason": "New triage protocol"}]}),
        )
        .await;
    assert_eq!(rebased.status(), 200);
    let answer = chart(&app, id, "ihi").await;
    let phases = answer["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    assert_eq!(phases[0]["centre"], 5.0);
    assert_eq!(phases[0]["start_period"], Value::Null);
    assert_eq!(phases[1]["centre"], 20.0);
    assert_eq!(phases[1]["start_period"], month(12));
    assert_eq!(phases[1]["reason"], "New triage protocol");
    assert_eq!(phases[1]["baseline_periods"][0], month(12));
    assert!(phases.iter().all(|p| p["status"] == "ok"));
    assert!(!rules_of(&phases[1]).contains(&"shift".to_owned()));
    let anhoej = chart(&app, id, "anhoej").await;
    assert!(anhoej["phases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["signals"] == json!([])));

    // The rules never re-baseline on their own: without the phase, one phase again.
    app.patch(&format!("/api/v1/measures/{id}"), &json!({"phases": []}))
        .await;
    assert_eq!(
        chart(&app, id, "ihi").await["phases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A baseline chosen by a person sets the median.
    app.patch(
        &format!("/api/v1/measures/{id}"),
        &json!({"baseline": {"from": month(12), "to": month(23)}}),
    )
    .await;
    assert_eq!(chart(&app, id, "ihi").await["phases"][0]["centre"], 20.0);
}

async fn the_picture_is_an_accessible_svg(app: TestApp) {
    let id = id_of(
        &measure(&app, json!({"name": "Comments answered <in time> & well", "unit": "% of comments", "target": 12})).await,
    );
    put_points(&app, id, &monthly(&with(alternating(), &[H; 7]))).await;
    let response = app
        .request_as(
            None,
            Method::GET,
            &format!("/api/v1/measures/{id}/run-chart.svg"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert!(response.headers().contains_key("etag"));
    let svg = response.text().await.unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.contains("role=\"img\""));
    assert!(svg.contains("width=\"800\"") && svg.contains("height=\"400\""));
    assert!(svg.contains("<title id=\"run-chart-"));
    assert!(
        svg.contains("Comments answered &lt;in time&gt; &amp; well</title>"),
        "escaped"
    );
    let desc_start = svg.find("<desc").unwrap();
    let desc = &svg[desc_start..svg.find("</desc>").unwrap()];
    assert!(
        desc.contains("a shift of 7 points above the median"),
        "{desc}"
    );
    assert!(desc.contains("Higher is better"), "{desc}");
    let anhoej = app
        .get(&format!("/api/v1/measures/{id}/run-chart.svg?rules=anhoej"))
        .await
        .text()
        .await
        .unwrap();
    assert!(anhoej.contains("Anhøj"), "the rules asked for are named");
    assert_problem(
        app.get("/api/v1/measures/2147483647/run-chart.svg").await,
        404,
    )
    .await;
}

async fn a_new_signal_is_sent_once_as_measure_signal_detected(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
        s.webhook_retry_schedule = "1s,1s".into();
    })
    .await
    .unwrap();
    let receiver = Receiver::start(&[]).await;
    app.create(
        "/api/v1/webhooks",
        json!({"url": receiver.url, "events": ["measure.signal_detected"]}),
    )
    .await;
    let id = id_of(&measure(&app, json!({})).await);
    put_points(&app, id, &monthly(&with(alternating(), &[H; 5]))).await;
    let sixth = put_points(
        &app,
        id,
        &json!({"points": [{"period": month(17), "value": H}]}),
    )
    .await;
    assert_eq!(sixth["signals_added"][0]["signal"]["rule"], "shift");
    assert_eq!(
        sixth["signals_added"][0]["signal"]["from_period"],
        month(12)
    );
    // One point longer: the same shift (it keeps its first period), not a new signal.
    let seventh = put_points(
        &app,
        id,
        &json!({"points": [{"period": month(18), "value": H}]}),
    )
    .await;
    assert_eq!(seventh["signals_added"], json!([]));
    let got = receiver.wait_for(1, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let got = if got.len() > 1 {
        got
    } else {
        receiver.received()
    };
    assert_eq!(got.len(), 1, "one message for one new shift");
    let message: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(message["type"], "measure.signal_detected");
    assert_eq!(message["data"]["id"], id);
    assert_eq!(
        message["data"]["signals_added"][0]["signal"]["rule"],
        "shift"
    );
    assert_eq!(
        message["data"]["signals_added"][0]["signal"]["to_period"],
        month(17)
    );

    // The audit trail has the measure's entry with what was added.
    let audit = app
        .get_ok(&format!("/api/v1/audit?resource=measure&id={id}&limit=100"))
        .await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["changes"]["signals_added"][1][0]["signal"]["rule"] == "shift"));
}

async fn ten_years_of_weekly_points_are_read(app: TestApp) {
    let id = id_of(&measure(&app, json!({"frequency": "week", "data_type": "count"})).await);
    let first = NaiveDate::from_ymd_opt(2015, 1, 5).unwrap();
    assert_eq!(first.weekday(), chrono::Weekday::Mon);
    let points: Vec<Value> = (0..520)
        .map(|i| {
            let period = first + chrono::Duration::weeks(i);
            let value = 20 + (i * 7919 % 11) - if i >= 300 { 6 } else { 0 };
            json!({"period": period.format("%Y-%m-%d").to_string(), "value": value})
        })
        .collect();
    let done = put_points(&app, id, &json!({"points": points})).await;
    assert_eq!(done["created"], 520);
    for rules in ["ihi", "anhoej"] {
        let answer = chart(&app, id, rules).await;
        let phase = &answer["phases"][0];
        assert_eq!(phase["counts"]["points"], 520);
        assert_eq!(phase["status"], "ok");
        assert!(
            !phase["signals"].as_array().unwrap().is_empty(),
            "a drop at week 300 ({rules})"
        );
    }
    let svg = app
        .get(&format!("/api/v1/measures/{id}/run-chart.svg"))
        .await;
    assert_eq!(svg.status(), 200);
}

async fn an_initiative_holds_at_most_a_hundred_measures(app: TestApp) {
    let initiative = id_of(&initiative(&app, "Measured a lot", json!({})).await);
    let path = format!("/api/v1/initiatives/{initiative}/measures");
    for i in 0..100 {
        app.create(
            &path,
            json!({"name": format!("Measure {i}"), "type": "process", "data_type": "count",
                   "frequency": "month", "improvement_direction": "increase"}),
        )
        .await;
    }
    let problem = assert_problem(
        app.post(
            &path,
            &json!({"name": "One more", "type": "process", "data_type": "count",
                    "frequency": "month", "improvement_direction": "increase"}),
        )
        .await,
        409,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("100 measures"));
    assert_eq!(app.get_ok(&path).await["total"], 100);
    let report = app
        .get_ok(&format!("/api/v1/initiatives/{initiative}/report"))
        .await;
    assert_eq!(report["measures"].as_array().unwrap().len(), 100);
}

/// 2000 points of one period: 1999 errors found, the first 100 answered, each naming the first
/// point of its period (the check of the batch is linear: it once took seconds).
async fn a_long_batch_of_one_period_names_its_first_point(app: TestApp) {
    let id = id_of(&measure(&app, json!({"data_type": "count"})).await);
    let points = vec![json!({"period": "2024-01-01", "value": 1}); 2000];
    let problem = assert_problem(
        app.put(
            &format!("/api/v1/measures/{id}/points"),
            &json!({"points": points}),
        )
        .await,
        422,
    )
    .await;
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 100);
    for (i, error) in errors.iter().enumerate() {
        assert_eq!(error["field"], format!("points[{}].period", i + 1));
        assert_eq!(
            error["message"],
            "2024-01-01 is also points[0]: one point per period"
        );
    }
}
