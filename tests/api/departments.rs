use serde_json::json;

use crate::helpers::{assert_problem, error_fields, id_of, TestApp};

on_both_backends!(
    creating_a_department_answers_201_with_its_location_and_body,
    department_names_are_unique_ignoring_case_in_any_script,
    a_department_is_replaced_by_put_and_patched_by_merge_patch,
    deleting_a_department_that_speakers_or_rounds_use_is_refused,
    departments_are_listed_in_pages,
    read_only_fields_are_refused_in_a_department_body,
);

async fn creating_a_department_answers_201_with_its_location_and_body(app: TestApp) {
    let response = app
        .post(
            "/api/v1/departments",
            &json!({"name": "Division of Healthcare Quality", "abbreviation": "DHQ"}),
        )
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/departments/{}", body["id"]));
    assert_eq!(body["name"], "Division of Healthcare Quality");
    assert_eq!(body["abbreviation"], "DHQ");
    assert_eq!(body["description"], serde_json::Value::Null);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.get_ok(&location).await, body);
}

async fn department_names_are_unique_ignoring_case_in_any_script(app: TestApp) {
    app.department("Épidémiologie et Biostatistique").await;

    let clash = app
        .post(
            "/api/v1/departments",
            &json!({"name": "ÉPIDÉMIOLOGIE ET BIOSTATISTIQUE"}),
        )
        .await;

    let problem = assert_problem(clash, 409).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("already named"));
}

async fn a_department_is_replaced_by_put_and_patched_by_merge_patch(app: TestApp) {
    let created = app
        .create(
            "/api/v1/departments",
            json!({"name": "Clinical Informatics", "abbreviation": "CI", "description": "EHR and analytics"}),
        )
        .await;
    let path = format!("/api/v1/departments/{}", id_of(&created));

    let replaced = app
        .put(
            &path,
            &json!({"name": "Clinical Informatics and Analytics"}),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    let replaced: serde_json::Value = replaced.json().await.unwrap();
    assert_eq!(replaced["name"], "Clinical Informatics and Analytics");
    assert_eq!(
        replaced["abbreviation"],
        serde_json::Value::Null,
        "PUT replaces the whole record"
    );

    let patched = app.patch(&path, &json!({"abbreviation": "CIA"})).await;
    assert_eq!(patched.status(), 200);
    let patched: serde_json::Value = patched.json().await.unwrap();
    assert_eq!(
        patched["name"], "Clinical Informatics and Analytics",
        "absent means unchanged"
    );
    assert_eq!(patched["abbreviation"], "CIA");

    let cleared: serde_json::Value = app
        .patch(&path, &json!({"abbreviation": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        cleared["abbreviation"],
        serde_json::Value::Null,
        "null clears"
    );

    let required = app.patch(&path, &json!({"name": null})).await;
    let problem = assert_problem(required, 422).await;
    assert_eq!(error_fields(&problem), vec!["name"]);
    assert_eq!(
        app.get_ok(&path).await["name"],
        "Clinical Informatics and Analytics"
    );
}

async fn deleting_a_department_that_speakers_or_rounds_use_is_refused(app: TestApp) {
    let department = app.department("Operations Excellence").await;
    let speaker = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "Aubri Drake", "department_id": department}),
        )
        .await;
    app.round("2027-01-21", json!({"department_ids": [department]}))
        .await;

    let refused = app
        .delete(&format!("/api/v1/departments/{department}"))
        .await;
    let problem = assert_problem(refused, 409).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 speaker") && detail.contains("1 round"),
        "{detail}"
    );
    app.get_ok(&format!("/api/v1/departments/{department}"))
        .await;

    let unused = app.department("Unused").await;
    assert_eq!(
        app.delete(&format!("/api/v1/departments/{unused}"))
            .await
            .status(),
        204
    );
    assert_problem(app.get(&format!("/api/v1/departments/{unused}")).await, 404).await;
    assert_eq!(speaker["department_id"], department);
}

async fn departments_are_listed_in_pages(app: TestApp) {
    for name in ["Gamma", "alpha", "Beta", "Delta", "epsilon"] {
        app.department(name).await;
    }

    let first = app.get_ok("/api/v1/departments?limit=2").await;
    let second = app.get_ok("/api/v1/departments?limit=2&offset=2").await;
    let defaults = app.get_ok("/api/v1/departments").await;

    assert_eq!(first["total"], 5);
    assert_eq!(
        (first["limit"].as_i64(), first["offset"].as_i64()),
        (Some(2), Some(0))
    );
    let names: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["alpha", "Beta", "Delta", "epsilon"],
        "by name, ignoring case"
    );
    assert_eq!(defaults["limit"], 20);
    assert_eq!(defaults["items"].as_array().unwrap().len(), 5);
}

async fn read_only_fields_are_refused_in_a_department_body(app: TestApp) {
    let response = app
        .post(
            "/api/v1/departments",
            &json!({"id": 9, "name": "", "created_at": "2019-01-01T00:00:00Z", "abbreviation": 7}),
        )
        .await;

    let problem = assert_problem(response, 422).await;
    assert_eq!(
        error_fields(&problem),
        vec!["name", "abbreviation", "created_at", "id"]
    );
    assert_eq!(
        app.get_ok("/api/v1/departments").await["total"],
        0,
        "nothing was written"
    );
}
