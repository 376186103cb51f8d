use serde_json::json;

use crate::helpers::{assert_problem, error_fields, TestApp};

on_both_backends!(
    malformed_json_is_a_400_problem,
    a_body_that_is_not_json_is_a_415_problem,
    a_body_over_one_mebibyte_is_a_413_problem,
    bad_query_parameters_are_400_naming_each_one,
    an_unknown_route_is_a_404_problem,
    a_wrong_method_is_a_405_problem_with_allow,
    unknown_and_malformed_ids_are_404_problems,
    a_body_that_is_not_an_object_is_a_422_problem,
    health_and_readiness_answer,
    values_the_schema_forbids_are_refused_as_the_schema_says,
    a_reference_to_no_record_in_an_otherwise_valid_body_is_named,
);

/// For a caller who may send it: anyone else is refused before the body is looked at.
async fn malformed_json_is_a_400_problem(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/departments"))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();

    let problem = assert_problem(response, 400).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("not well-formed JSON"));
}

async fn a_body_that_is_not_json_is_a_415_problem(app: TestApp) {
    let text = app
        .client
        .post(app.url("/api/v1/feedback"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    let missing = app
        .client
        .post(app.url("/api/v1/feedback"))
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_problem(text, 415).await;
    assert_problem(missing, 415).await;
}

async fn a_body_over_one_mebibyte_is_a_413_problem(app: TestApp) {
    let huge = json!({"kind": "general", "comment": "x".repeat(1024 * 1024 + 1)});

    let response = app.post("/api/v1/feedback", &huge).await;

    assert_problem(response, 413).await;
    assert_eq!(app.get_ok("/api/v1/feedback").await["total"], 0);
}

async fn bad_query_parameters_are_400_naming_each_one(app: TestApp) {
    let response = app
        .get("/api/v1/rounds?limit=0&offset=-1&when=later&from=yesterday&speaker_id=x&colour=red")
        .await;

    let problem = assert_problem(response, 400).await;
    assert_eq!(
        error_fields(&problem),
        vec!["when", "from", "speaker_id", "limit", "offset", "colour"]
    );
    assert_problem(app.get("/api/v1/speakers?limit=101").await, 400).await;
    assert_problem(app.get("/api/v1/feedback?kind=praise").await, 400).await;
    assert_problem(app.get("/api/v1/departments?limit=5&limit=6").await, 400).await;
}

async fn an_unknown_route_is_a_404_problem(app: TestApp) {
    assert_problem(app.get("/api/v1/lectures").await, 404).await;
    assert_problem(app.get("/nothing-here").await, 404).await;
}

async fn a_wrong_method_is_a_405_problem_with_allow(app: TestApp) {
    let response = app
        .request(reqwest::Method::DELETE, "/api/v1/rounds", None)
        .await;
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert_problem(response, 405).await;
    assert_eq!(allow, "GET, HEAD, POST");

    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/rounds/1/feedback/summary",
            None,
        )
        .await;
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert_problem(response, 405).await;
    assert_eq!(allow, "GET, HEAD");
}

async fn unknown_and_malformed_ids_are_404_problems(app: TestApp) {
    for path in [
        "/api/v1/rounds/123456",
        "/api/v1/speakers/0",
        "/api/v1/departments/abc",
        "/api/v1/feedback/99999999999",
    ] {
        assert_problem(app.get(path).await, 404).await;
    }
    assert_problem(
        app.put("/api/v1/departments/424242", &json!({"name": "x"}))
            .await,
        404,
    )
    .await;
    assert_problem(
        app.patch("/api/v1/rounds/424242", &json!({"title": "x"}))
            .await,
        404,
    )
    .await;
    assert_problem(app.delete("/api/v1/feedback/424242").await, 404).await;
}

async fn a_body_that_is_not_an_object_is_a_422_problem(app: TestApp) {
    let response = app.post("/api/v1/rounds", &json!([1, 2, 3])).await;

    let problem = assert_problem(response, 422).await;
    assert_eq!(error_fields(&problem), vec!["(body)"]);
}

async fn health_and_readiness_answer(app: TestApp) {
    assert_eq!(app.get_ok("/healthz").await, json!({"status": "ok"}));
    assert_eq!(app.get_ok("/readyz").await, json!({"status": "ready"}));
}

async fn values_the_schema_forbids_are_refused_as_the_schema_says(app: TestApp) {
    let empty_value = app.get("/api/v1/rounds?to=&limit=").await;
    assert_eq!(
        error_fields(&assert_problem(empty_value, 400).await),
        vec!["to", "limit"]
    );
    assert_eq!(
        app.get_ok("/api/v1/rounds?q=").await["total"],
        0,
        "an empty search is no filter"
    );

    let nulls = app
        .post(
            "/api/v1/rounds",
            &json!({"starts_at": "2027-01-21T17:00:00Z", "ends_at": "2027-01-21T18:00:00Z",
                    "location": "Room 1", "status": null, "speakers": null}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(nulls, 422).await),
        vec!["status", "speakers"]
    );

    let years = app
        .post(
            "/api/v1/rounds",
            &json!({"starts_at": "0000-01-01T00:00:00+01:00", "ends_at": "9999-12-31T23:00:00-05:00", "location": "x"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(years, 422).await),
        vec!["starts_at", "ends_at"]
    );

    let nul = app
        .post(
            "/api/v1/speakers",
            &json!({"full_name": "A", "credentials": ["M\u{0}D"]}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(nul, 422).await),
        vec!["credentials[0]"]
    );
    assert_problem(app.get("/api/v1/rounds?q=a%00b").await, 400).await;

    let blank_email = app
        .post("/api/v1/speakers", &json!({"full_name": "A", "email": ""}))
        .await;
    assert_eq!(
        error_fields(&assert_problem(blank_email, 422).await),
        vec!["email"]
    );

    let department = app.department("Clinical Informatics").await;
    let integral_float = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "B", "department_id": f64::from(department)}),
        )
        .await;
    assert_eq!(integral_float["department_id"], department);

    let typo = app
        .patch(
            &format!("/api/v1/departments/{department}"),
            &json!({"nmae": null}),
        )
        .await;
    assert_eq!(error_fields(&assert_problem(typo, 422).await), vec!["nmae"]);
}

/// The foreign keys find these (no lookup precedes the write): the answer names each reference
/// as the lookup did, and nothing is written.
async fn a_reference_to_no_record_in_an_otherwise_valid_body_is_named(app: TestApp) {
    let speaker = app.speaker("Tara Lagu", &["MD"]).await;
    let department = app.department("Division of Healthcare Quality").await;
    let round = app
        .round(
            "2027-01-21",
            json!({"speakers": [{"speaker_id": speaker}], "department_ids": [department]}),
        )
        .await;
    let id = round["id"].as_i64().unwrap();
    let path = format!("/api/v1/rounds/{id}");
    let etag = |response: &reqwest::Response| response.headers()["etag"].clone();
    let before = etag(&app.get(&path).await);
    let changes_before = app.get_ok("/api/v1/changes").await;

    let refused = [
        app.post(
            "/api/v1/feedback",
            &json!({"kind": "session_feedback", "round_id": 424242, "rating": 5}),
        )
        .await,
        app.post(
            "/api/v1/feedback",
            &json!({"kind": "general", "comment": "More rounds on falls", "round_id": 424243}),
        )
        .await,
        app.post(
            "/api/v1/speakers",
            &json!({"full_name": "Peter Lindenauer", "department_id": 4242}),
        )
        .await,
        app.patch(
            &path,
            &json!({"speakers": [{"speaker_id": speaker}, {"speaker_id": 987654, "role": "panelist"}]}),
        )
        .await,
        app.patch(&path, &json!({"department_ids": [department, 7777, 8888]}))
            .await,
        app.put(
            &path,
            &json!({"starts_at": "2027-01-21T12:00:00Z", "ends_at": "2027-01-21T13:00:00Z",
                    "location": "Room 1", "speakers": [{"speaker_id": 55555}],
                    "department_ids": [department]}),
        )
        .await,
        app.patch(
            &format!("/api/v1/speakers/{speaker}"),
            &json!({"department_id": 4343}),
        )
        .await,
    ];
    // As answered before the foreign keys did the finding (a lookup preceded each write).
    let expected = [
        (
            1,
            json!([{"field": "round_id", "message": "no round with id 424242"}]),
        ),
        (
            1,
            json!([{"field": "round_id", "message": "no round with id 424243"}]),
        ),
        (
            1,
            json!([{"field": "department_id", "message": "no department with id 4242"}]),
        ),
        (
            1,
            json!([{"field": "speakers[1].speaker_id", "message": "no speaker with id 987654"}]),
        ),
        (
            2,
            json!([{"field": "department_ids[1]", "message": "no department with id 7777"},
                   {"field": "department_ids[2]", "message": "no department with id 8888"}]),
        ),
        (
            1,
            json!([{"field": "speakers[0].speaker_id", "message": "no speaker with id 55555"}]),
        ),
        (
            1,
            json!([{"field": "department_id", "message": "no department with id 4343"}]),
        ),
    ];
    for (response, (count, errors)) in refused.into_iter().zip(expected) {
        let mut problem = assert_problem(response, 422).await;
        problem.as_object_mut().unwrap().remove("request_id");
        let fields = if count == 1 { "field" } else { "fields" };
        assert_eq!(
            problem,
            json!({"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
                   "detail": format!("the request body has {count} invalid {fields}"),
                   "errors": errors})
        );
    }
    let missing_round = app
        .post(
            "/api/v1/rounds/424242/feedback",
            &json!({"kind": "session_feedback", "rating": 5}),
        )
        .await;
    assert_eq!(
        assert_problem(missing_round, 404).await["detail"],
        "no round with id 424242"
    );

    assert_eq!(
        etag(&app.get(&path).await),
        before,
        "the round is as it was"
    );
    assert_eq!(app.get_ok("/api/v1/changes").await, changes_before);
    assert_eq!(app.get_ok("/api/v1/feedback").await["total"], 0);
    assert_eq!(app.get_ok("/api/v1/speakers").await["total"], 1);
}
