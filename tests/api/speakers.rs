use serde_json::json;

use crate::helpers::{assert_problem, error_fields, id_of, TestApp};

on_both_backends!(
    a_speaker_is_shown_with_a_display_name_built_from_the_credentials,
    a_speaker_body_with_many_mistakes_names_every_one,
    speakers_are_found_by_name_ignoring_case_and_by_department,
    a_speaker_who_is_on_a_round_cannot_be_deleted,
    the_rounds_of_a_speaker_are_listed,
    a_speaker_is_replaced_and_patched,
);

async fn a_speaker_is_shown_with_a_display_name_built_from_the_credentials(app: TestApp) {
    let speaker = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "Tara Lagu", "credentials": ["MD", "MPH"], "email": "tara.lagu@example.org",
                   "title": "Professor of Medicine"}),
        )
        .await;
    let unicode = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "Zoë Ångström-Núñez", "credentials": ["PhD"]}),
        )
        .await;
    let plain = app
        .create(
            "/api/v1/speakers",
            json!({"full_name": "Sandeep Muddasani"}),
        )
        .await;

    assert_eq!(speaker["display_name"], "Tara Lagu, MD, MPH");
    assert_eq!(speaker["credentials"], json!(["MD", "MPH"]));
    assert_eq!(speaker["email"], "tara.lagu@example.org");
    assert_eq!(unicode["display_name"], "Zoë Ångström-Núñez, PhD");
    assert_eq!(plain["display_name"], "Sandeep Muddasani");
    assert_eq!(plain["credentials"], json!([]));
    assert_eq!(
        app.get_ok(&format!("/api/v1/speakers/{}", id_of(&unicode)))
            .await,
        unicode
    );
}

async fn a_speaker_body_with_many_mistakes_names_every_one(app: TestApp) {
    let response = app
        .post(
            "/api/v1/speakers",
            &json!({
                "full_name": "   ",
                "credentials": ["MD", "MD", "MD, MPH", 3],
                "email": "not-an-address",
                "department_id": 4242,
                "display_name": "read-only",
                "nickname": "unknown field"
            }),
        )
        .await;

    let problem = assert_problem(response, 422).await;
    assert_eq!(
        error_fields(&problem),
        vec![
            "full_name",
            "credentials[1]",
            "credentials[2]",
            "credentials[3]",
            "email",
            "display_name",
            "nickname",
            "department_id"
        ]
    );
    assert_eq!(app.get_ok("/api/v1/speakers").await["total"], 0);
}

async fn speakers_are_found_by_name_ignoring_case_and_by_department(app: TestApp) {
    let epi = app.department("Epidemiology and Biostatistics").await;
    app.create(
        "/api/v1/speakers",
        json!({"full_name": "Paul Visintainer", "credentials": ["PhD"], "department_id": epi}),
    )
    .await;
    app.speaker("Peter Lindenauer", &["MD", "MSc"]).await;
    app.speaker("Émilie Lindström", &[]).await;
    app.speaker("100%_literal", &[]).await;

    let by_name = app.get_ok("/api/v1/speakers?q=LINDEN").await;
    let unicode = app.get_ok("/api/v1/speakers?q=%C3%89MILIE").await;
    let by_department = app
        .get_ok(&format!("/api/v1/speakers?department_id={epi}"))
        .await;
    let wildcard = app.get_ok("/api/v1/speakers?q=%25_").await;
    let nothing = app.get_ok("/api/v1/speakers?q=_").await;

    assert_eq!(by_name["total"], 1);
    assert_eq!(by_name["items"][0]["full_name"], "Peter Lindenauer");
    assert_eq!(unicode["items"][0]["full_name"], "Émilie Lindström");
    assert_eq!(by_department["total"], 1);
    assert_eq!(by_department["items"][0]["full_name"], "Paul Visintainer");
    assert_eq!(wildcard["total"], 1, "% and _ are taken literally");
    assert_eq!(nothing["total"], 1);
}

async fn a_speaker_who_is_on_a_round_cannot_be_deleted(app: TestApp) {
    let speaker = app.speaker("Doug Salvador", &["MD", "MPH"]).await;
    let round = app
        .round(
            "2027-02-18",
            json!({"speakers": [{"speaker_id": speaker, "role": "presenter"}]}),
        )
        .await;

    let refused = app.delete(&format!("/api/v1/speakers/{speaker}")).await;

    let problem = assert_problem(refused, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("1 round"));
    assert_eq!(
        app.delete(&format!("/api/v1/rounds/{}", id_of(&round)))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/api/v1/speakers/{speaker}"))
            .await
            .status(),
        204
    );
}

async fn the_rounds_of_a_speaker_are_listed(app: TestApp) {
    let lagu = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let other = app.speaker("Quinn Pack", &["MD", "MSc"]).await;
    app.round(
        "2019-04-25",
        json!({"title": "Patient comments", "speakers": [{"speaker_id": lagu}]}),
    )
    .await;
    app.round(
        "2019-02-14",
        json!({"speakers": [{"speaker_id": other}, {"speaker_id": lagu, "role": "panelist"}]}),
    )
    .await;
    app.round("2019-03-14", json!({"speakers": [{"speaker_id": other}]}))
        .await;

    let rounds = app.get_ok(&format!("/api/v1/speakers/{lagu}/rounds")).await;

    assert_eq!(rounds["total"], 2);
    let starts: Vec<&str> = rounds["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["starts_at"].as_str().unwrap())
        .collect();
    assert_eq!(starts, vec!["2019-02-14T12:00:00Z", "2019-04-25T12:00:00Z"]);
    assert_problem(app.get("/api/v1/speakers/999999/rounds").await, 404).await;
}

async fn a_speaker_is_replaced_and_patched(app: TestApp) {
    let id = app.speaker("Lauren Westafer", &["DO"]).await;
    let path = format!("/api/v1/speakers/{id}");

    let patched: serde_json::Value = app
        .patch(
            &path,
            &json!({"credentials": ["DO", "MPH"], "bio": "Emergency medicine"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["display_name"], "Lauren Westafer, DO, MPH");
    assert_eq!(patched["bio"], "Emergency medicine");

    let replaced: serde_json::Value = app
        .put(&path, &json!({"full_name": "Lauren A. Westafer"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replaced["display_name"], "Lauren A. Westafer");
    assert_eq!(replaced["bio"], serde_json::Value::Null);

    assert_problem(
        app.put("/api/v1/speakers/999999", &json!({"full_name": "Nobody"}))
            .await,
        404,
    )
    .await;
}
