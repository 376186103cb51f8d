//! Disclosures (ACCME Standard 3): a speaker's attested financial relationships with their
//! look-back and validity, kept as history; a round's review; its readiness; the statement
//! learners see, published only when ready, frozen and versioned, and never showing what was
//! judged not relevant or a reviewer's note; and the timeliness credit will ask about.

use chrono::{Duration, Utc};
use lhs_rounds::disclosure::statements;
use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, spawn_app_with, Receiver, TestApp};

on_both_backends!(
    the_look_back_is_24_months_to_the_day,
    a_disclosure_is_current_for_the_series_months_from_its_attestation,
    a_disclosure_says_its_relationships_or_that_there_are_none,
    every_attestation_is_kept_as_history,
    a_signed_in_speaker_reads_and_writes_their_own_disclosure_and_no_other,
    a_review_judges_each_relationship_of_each_person_and_planner,
    readiness_names_each_blocker_with_its_person_and_relationship,
    publishing_is_refused_until_the_round_is_ready,
    every_version_of_a_statement_is_kept_and_returned,
    the_public_statement_never_shows_a_relationship_judged_not_relevant_or_a_note,
    a_panel_of_eight_where_one_disclosure_expires_the_day_before_the_round,
    the_first_publication_says_whether_learners_were_told_before_the_start,
    the_attention_list_carries_the_disclosure_blockers,
    what_counts_for_a_round_is_the_attestation_made_by_its_start,
    the_series_planners_are_speakers_each_once_in_order,
    publishing_is_a_webhook_event_and_every_step_is_in_the_audit_trail,
);

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A round from `starts_at` for an hour, with `speakers`.
async fn round_at(app: &TestApp, starts_at: chrono::DateTime<Utc>, speakers: Value) -> i32 {
    id_of(
        &app.create(
            "/api/v1/rounds",
            json!({
                "title": "Learning from patient comments",
                "starts_at": rfc3339(starts_at),
                "ends_at": rfc3339(starts_at + Duration::hours(1)),
                "location": "BMC – MassMutual 5",
                "speakers": speakers,
            }),
        )
        .await,
    )
}

/// The series offers credit: a round designates some, so only its disclosures keep it from
/// being ready.
async fn offer_credit(app: &TestApp) {
    let offered = app
        .patch(
            "/api/v1/series",
            &json!({"credit_type": "ama_pra_category_1"}),
        )
        .await;
    assert_eq!(offered.status(), 200);
}

async fn put_disclosure(app: &TestApp, speaker: i32, body: Value) -> reqwest::Response {
    app.put(&format!("/api/v1/speakers/{speaker}/disclosure"), &body)
        .await
}

async fn attest(app: &TestApp, speaker: i32, body: Value) -> Value {
    let response = put_disclosure(app, speaker, body.clone()).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "PUT disclosure {body} answered {text}");
    serde_json::from_str(&text).unwrap()
}

async fn none_since(app: &TestApp, speaker: i32, attested_at: chrono::DateTime<Utc>) -> Value {
    attest(
        app,
        speaker,
        json!({"attested_at": rfc3339(attested_at), "no_relationships": true}),
    )
    .await
}

fn relationship(company: &str, nature: &str) -> Value {
    json!({"company": company, "nature": nature, "started_on": "2025-01-01", "ended_on": null})
}

async fn readiness(app: &TestApp, round: i32) -> Value {
    app.get_ok(&format!("/api/v1/rounds/{round}/readiness"))
        .await
}

fn kinds(readiness: &Value) -> Vec<String> {
    readiness["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn judge(app: &TestApp, round: i32, judgements: Value) -> Value {
    let response = app
        .put(
            &format!("/api/v1/rounds/{round}/disclosure-review"),
            &json!({ "judgements": judgements }),
        )
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "PUT review answered {text}");
    serde_json::from_str(&text).unwrap()
}

async fn publish(app: &TestApp, round: i32) -> reqwest::Response {
    app.post(
        &format!("/api/v1/rounds/{round}/disclosure-statement"),
        &json!({}),
    )
    .await
}

async fn the_look_back_is_24_months_to_the_day(app: TestApp) {
    offer_credit(&app).await;
    let speaker = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let body = |ended_on: &str| {
        json!({
            "attested_at": "2026-06-15T14:00:00Z",
            "relationships": [{"company": "Example Pharma", "nature": "consultant",
                "started_on": "2023-01-01", "ended_on": ended_on}]
        })
    };
    // Ended exactly 24 months before the attestation: still in the look-back.
    let kept = attest(&app, speaker, body("2024-06-15")).await;
    assert_eq!(kept["relationships"][0]["ended_on"], "2024-06-15");
    assert_eq!(kept["relationships"][0]["company"], "Example Pharma");

    // A day earlier: outside it.
    let problem =
        assert_problem(put_disclosure(&app, speaker, body("2024-06-14")).await, 422).await;
    assert_eq!(error_fields(&problem), ["relationships[0].ended_on"]);
    assert!(problem["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("outside the look-back"));

    // Ongoing relationships have no end; one that ends after the attestation is refused, as is
    // an end before the start.
    let problem =
        assert_problem(put_disclosure(&app, speaker, body("2026-06-16")).await, 422).await;
    assert_eq!(error_fields(&problem), ["relationships[0].ended_on"]);
    let problem =
        assert_problem(put_disclosure(&app, speaker, body("2022-12-31")).await, 422).await;
    assert_eq!(error_fields(&problem), ["relationships[0].ended_on"]);
    let history = app
        .get_ok(&format!("/api/v1/speakers/{speaker}/disclosure/history"))
        .await;
    assert_eq!(
        history["items"].as_array().unwrap().len(),
        1,
        "nothing refused is kept"
    );
}

async fn a_disclosure_is_current_for_the_series_months_from_its_attestation(app: TestApp) {
    offer_credit(&app).await;
    let speaker = app.speaker("Peter Lindenauer", &["MD"]).await;
    let attested = Utc::now() - Duration::days(30);
    let attested = attested - Duration::nanoseconds(i64::from(attested.timestamp_subsec_nanos()));
    let written = none_since(&app, speaker, attested).await;
    let until = attested
        .checked_add_months(chrono::Months::new(12))
        .unwrap();
    assert_eq!(written["current_until"], rfc3339(until));
    assert_eq!(written["current"], true);

    // A round starting the last second it is current, and one starting when it ends.
    let inside = round_at(
        &app,
        until - Duration::seconds(1),
        json!([{"speaker_id": speaker}]),
    )
    .await;
    let outside = round_at(&app, until, json!([{"speaker_id": speaker}])).await;
    assert!(!kinds(&readiness(&app, inside).await).contains(&"no_current_disclosure".to_owned()));
    let blocked = readiness(&app, outside).await;
    assert_eq!(blocked["blockers"][0]["kind"], "no_current_disclosure");
    assert_eq!(blocked["blockers"][0]["speaker_id"], speaker);

    // Six months of validity: the later round is out of reach, and so is the other.
    app.patch("/api/v1/series", &json!({"disclosure_valid_months": 6}))
        .await;
    let series = app.get_ok("/api/v1/series").await;
    assert_eq!(series["disclosure_valid_months"], 6);
    assert!(kinds(&readiness(&app, inside).await).contains(&"no_current_disclosure".to_owned()));
    let now = app
        .get_ok(&format!("/api/v1/speakers/{speaker}/disclosure"))
        .await;
    assert_eq!(
        now["current_until"],
        rfc3339(attested.checked_add_months(chrono::Months::new(6)).unwrap())
    );

    // An attestation older than its months is not current now.
    none_since(&app, speaker, Utc::now() - Duration::days(200)).await;
    let old = app
        .get_ok(&format!("/api/v1/speakers/{speaker}/disclosure"))
        .await;
    assert_eq!(old["id"], written["id"], "the latest by attested_at counts");
    let stale = app.speaker("Stale Attester", &["MD"]).await;
    let expired = none_since(&app, stale, Utc::now() - Duration::days(200)).await;
    assert_eq!(expired["current"], false);
}

async fn a_disclosure_says_its_relationships_or_that_there_are_none(app: TestApp) {
    offer_credit(&app).await;
    let speaker = app.speaker("Mihaela Stefan", &["MD", "PhD"]).await;
    let cases = [
        (json!({"relationships": []}), "relationships"),
        (json!({}), "relationships"),
        (
            json!({"no_relationships": true, "relationships": [relationship("Example Pharma", "speaker")]}),
            "relationships",
        ),
        (
            json!({"relationships": [relationship("Example Pharma", "other")]}),
            "relationships[0].other_detail",
        ),
        (
            json!({"relationships": [relationship("Example Pharma", "stockholder")]}),
            "relationships[0].nature",
        ),
        (
            json!({"no_relationships": true, "attested_at": rfc3339(Utc::now() + Duration::days(1))}),
            "attested_at",
        ),
    ];
    for (body, field) in cases {
        let problem = assert_problem(put_disclosure(&app, speaker, body.clone()).await, 422).await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    let none = attest(&app, speaker, json!({"no_relationships": true})).await;
    assert_eq!(none["no_relationships"], true);
    assert_eq!(none["relationships"], json!([]));
    let other = attest(
        &app,
        speaker,
        json!({"relationships": [{"company": "Example Devices", "nature": "other",
            "other_detail": "data safety board member", "started_on": "2025-02-01"}]}),
    )
    .await;
    assert_eq!(
        other["relationships"][0]["other_detail"],
        "data safety board member"
    );
    assert_eq!(other["relationships"][0]["ended_on"], Value::Null);
    assert_problem(
        put_disclosure(&app, 999_999, json!({"no_relationships": true})).await,
        404,
    )
    .await;
}

async fn every_attestation_is_kept_as_history(app: TestApp) {
    offer_credit(&app).await;
    let speaker = app.speaker("Paul Visintainer", &["PhD"]).await;
    assert_problem(
        app.get(&format!("/api/v1/speakers/{speaker}/disclosure"))
            .await,
        404,
    )
    .await;
    let first = none_since(&app, speaker, Utc::now() - Duration::days(400)).await;
    let second = attest(
        &app,
        speaker,
        json!({"relationships": [relationship("Example Analytics", "advisor")]}),
    )
    .await;
    let current = app
        .get_ok(&format!("/api/v1/speakers/{speaker}/disclosure"))
        .await;
    assert_eq!(current["id"], second["id"]);
    assert_eq!(current["current"], true);
    let history = app
        .get_ok(&format!("/api/v1/speakers/{speaker}/disclosure/history"))
        .await;
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], second["id"], "newest first");
    assert_eq!(items[1]["id"], first["id"]);
    assert_eq!(items[1]["no_relationships"], true);
    assert_eq!(items[1]["current"], false);
    assert_eq!(items[0]["relationships"][0]["nature"], "advisor");
}

async fn a_signed_in_speaker_reads_and_writes_their_own_disclosure_and_no_other(app: TestApp) {
    offer_credit(&app).await;
    let own = id_of(
        &app.create(
            "/api/v1/speakers",
            json!({"full_name": "Tara Lagu", "credentials": ["MD"], "sub": "tara-sub"}),
        )
        .await,
    );
    let other = app.speaker("Quinn Pack", &["MD"]).await;
    let tara = app.token("tara-sub", &[Role::Viewer]);
    let body = json!({"no_relationships": true});
    let path = |id: i32| format!("/api/v1/speakers/{id}/disclosure");

    let response = app
        .request_as(Some(&tara), Method::PUT, &path(own), Some(&body))
        .await;
    assert_eq!(response.status(), 200);
    let written: Value = response.json().await.unwrap();
    assert_eq!(written["created_by"], "tara-sub");
    let response = app
        .request_as(Some(&tara), Method::GET, &path(own), None)
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .request_as(
            Some(&tara),
            Method::GET,
            &format!("{}/history", path(own)),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);

    // Someone else's, or a speaker who does not exist: the same 403, before the body is read.
    for id in [other, 999_999] {
        assert_problem(
            app.request_as(
                Some(&tara),
                Method::PUT,
                &path(id),
                Some(&json!({"bad": 1})),
            )
            .await,
            403,
        )
        .await;
        assert_problem(
            app.request_as(Some(&tara), Method::GET, &path(id), None)
                .await,
            403,
        )
        .await;
    }
    assert_problem(
        app.request_as(None, Method::GET, &path(own), None).await,
        401,
    )
    .await;
    assert_problem(
        app.request_as(None, Method::PUT, &path(own), Some(&body))
            .await,
        401,
    )
    .await;
    // Organizers read and write anyone's.
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);
    let response = app
        .request_as(Some(&organizer), Method::PUT, &path(other), Some(&body))
        .await;
    assert_eq!(response.status(), 200);
}

async fn a_review_judges_each_relationship_of_each_person_and_planner(app: TestApp) {
    offer_credit(&app).await;
    let presenter = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let declined = app.speaker("Declined Speaker", &["MD"]).await;
    let planner = app.speaker("Mihaela Stefan", &["MD", "PhD"]).await;
    app.patch(
        "/api/v1/series",
        &json!({"planners": [{"speaker_id": planner, "role": "planner"}]}),
    )
    .await;
    let with = attest(
        &app,
        presenter,
        json!({"relationships": [relationship("Example Pharma", "consultant"),
            relationship("Example Devices", "speaker")]}),
    )
    .await;
    let planned = attest(
        &app,
        planner,
        json!({"relationships": [relationship("Example Analytics", "ownership_interest")]}),
    )
    .await;
    none_since(&app, declined, Utc::now()).await;
    let round = round_at(
        &app,
        Utc::now() + Duration::days(20),
        json!([{"speaker_id": presenter}, {"speaker_id": declined, "status": "declined"}]),
    )
    .await;
    let review = app
        .get_ok(&format!("/api/v1/rounds/{round}/disclosure-review"))
        .await;
    let people = review["people"].as_array().unwrap();
    assert_eq!(
        people.len(),
        2,
        "the presenter and the planner, not who declined"
    );
    assert_eq!(people[0]["speaker_id"], presenter);
    assert_eq!(people[0]["roles"], json!(["presenter"]));
    assert_eq!(people[1]["speaker_id"], planner);
    assert_eq!(people[1]["roles"], json!(["planner"]));
    assert_eq!(people[0]["relationships"][0]["judgement"], Value::Null);

    let (pharma, devices, analytics) = (
        with["relationships"][0]["id"].clone(),
        with["relationships"][1]["id"].clone(),
        planned["relationships"][0]["id"].clone(),
    );
    let path = format!("/api/v1/rounds/{round}/disclosure-review");
    // A mitigation for what is not relevant, `other` without a note, a relationship twice, and
    // one of nobody on the round: each named.
    let foreign = attest(
        &app,
        declined,
        json!({"relationships": [relationship("Elsewhere Inc", "employee")]}),
    )
    .await;
    let problem = assert_problem(
        app.put(
            &path,
            &json!({"judgements": [
                {"relationship_id": pharma, "relevant": false, "mitigation": "recusal"},
                {"relationship_id": devices, "relevant": true, "mitigation": "other"},
                {"relationship_id": devices, "relevant": false},
            ]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        [
            "judgements[0].mitigation",
            "judgements[1].note",
            "judgements[2].relationship_id"
        ]
    );
    let problem = assert_problem(
        app.put(
            &path,
            &json!({"judgements": [{"relationship_id": foreign["relationships"][0]["id"], "relevant": false}]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), ["judgements[0].relationship_id"]);

    let judged = judge(
        &app,
        round,
        json!([
            {"relationship_id": pharma, "relevant": true, "mitigation": "peer_review_of_content",
                "note": "slides checked"},
            {"relationship_id": devices, "relevant": false},
            {"relationship_id": analytics, "relevant": true},
        ]),
    )
    .await;
    let first = &judged["people"][0]["relationships"][0]["judgement"];
    assert_eq!(first["relevant"], true);
    assert_eq!(first["mitigation"], "peer_review_of_content");
    assert_eq!(first["note"], "slides checked");
    assert!(first["reviewed_by"].is_string());
    let reviewed_at = first["reviewed_at"].clone();
    assert_eq!(
        judged["people"][1]["relationships"][0]["judgement"]["mitigation"],
        Value::Null
    );

    // Sent again unchanged, a judgement keeps its time; one left out is taken back.
    let organizer = app.token("second-reviewer@example.org", &[Role::Organizer]);
    let response = app
        .request_as(
            Some(&organizer),
            Method::PUT,
            &path,
            Some(&json!({"judgements": [
                {"relationship_id": pharma, "relevant": true,
                    "mitigation": "peer_review_of_content", "note": "slides checked"},
                {"relationship_id": analytics, "relevant": true, "mitigation": "divestiture"},
            ]})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(
        again["people"][0]["relationships"][0]["judgement"]["reviewed_at"],
        reviewed_at
    );
    assert_ne!(
        again["people"][0]["relationships"][0]["judgement"]["reviewed_by"],
        "second-reviewer@example.org"
    );
    assert_eq!(
        again["people"][0]["relationships"][1]["judgement"],
        Value::Null
    );
    assert_eq!(
        again["people"][1]["relationships"][0]["judgement"]["reviewed_by"],
        "second-reviewer@example.org"
    );

    // Who judged what, and when, is in the audit trail: the first judgements, then the change.
    let audit = app
        .get_ok(&format!(
            "/api/v1/audit?resource=disclosure_review&id={round}"
        ))
        .await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[0]["actor"], "second-reviewer@example.org");
    assert_eq!(entries[0]["action"], "updated");
    assert_eq!(entries[1]["action"], "created");
    assert_eq!(entries[1]["actor"], "admin@example.org");

    // Organizers only, and a round that exists.
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(Some(&viewer), Method::GET, &path, None)
            .await,
        403,
    )
    .await;
    assert_problem(
        app.request_as(Some(&viewer), Method::PUT, &path, Some(&json!({"x": 1})))
            .await,
        403,
    )
    .await;
    assert_problem(
        app.get("/api/v1/rounds/999999/disclosure-review").await,
        404,
    )
    .await;
}

async fn readiness_names_each_blocker_with_its_person_and_relationship(app: TestApp) {
    offer_credit(&app).await;
    let starts = Utc::now() + Duration::days(10);
    let nobody = app.speaker("Never Attested", &["MD"]).await;
    let expired = app.speaker("Expired Attestation", &["MD"]).await;
    let unjudged = app.speaker("Unjudged Relationship", &["PhD"]).await;
    let planner = app.speaker("Unmitigated Planner", &["MD"]).await;
    app.patch(
        "/api/v1/series",
        &json!({"planners": [{"speaker_id": planner, "role": "reviewer"}]}),
    )
    .await;
    none_since(&app, expired, Utc::now() - Duration::days(360)).await;
    let pending = attest(
        &app,
        unjudged,
        json!({"relationships": [relationship("Example Pharma", "researcher")]}),
    )
    .await;
    let unmitigated = attest(
        &app,
        planner,
        json!({"relationships": [relationship("Example Devices", "royalties_or_patent")]}),
    )
    .await;
    let round = round_at(
        &app,
        starts,
        json!([{"speaker_id": nobody}, {"speaker_id": expired, "role": "panelist"},
            {"speaker_id": unjudged, "role": "moderator"}]),
    )
    .await;
    let planner_relationship = unmitigated["relationships"][0]["id"].clone();
    judge(
        &app,
        round,
        json!([{"relationship_id": planner_relationship, "relevant": true}]),
    )
    .await;

    let ready = readiness(&app, round).await;
    assert_eq!(ready["ready"], false);
    assert_eq!(
        kinds(&ready),
        [
            "no_current_disclosure",
            "no_current_disclosure",
            "relationship_not_judged",
            "relevant_without_mitigation",
            "no_published_statement"
        ]
    );
    let blockers = ready["blockers"].as_array().unwrap();
    assert_eq!(blockers[0]["speaker_id"], nobody);
    assert_eq!(blockers[1]["speaker_id"], expired);
    assert_eq!(blockers[2]["speaker_id"], unjudged);
    assert_eq!(
        blockers[2]["relationship_id"],
        pending["relationships"][0]["id"]
    );
    assert!(blockers[2]["message"]
        .as_str()
        .unwrap()
        .contains("Example Pharma"));
    assert_eq!(blockers[3]["speaker_id"], planner);
    assert_eq!(blockers[3]["relationship_id"], planner_relationship);
    assert!(blockers[4].get("speaker_id").is_none());

    // Each fixed in turn, until only the statement is missing; then published, ready.
    none_since(&app, nobody, Utc::now()).await;
    none_since(&app, expired, Utc::now()).await;
    judge(
        &app,
        round,
        json!([
            {"relationship_id": pending["relationships"][0]["id"], "relevant": false},
            {"relationship_id": planner_relationship, "relevant": true, "mitigation": "recusal"},
        ]),
    )
    .await;
    assert_eq!(
        kinds(&readiness(&app, round).await),
        ["no_published_statement"]
    );
    // A series that offers no credit designates none: the round is not ready for it either.
    let no_credit = app
        .patch("/api/v1/series", &json!({"credit_type": null}))
        .await;
    assert_eq!(no_credit.status(), 200);
    assert_eq!(
        kinds(&readiness(&app, round).await),
        ["no_published_statement", "no_credit_designated"]
    );
    assert_eq!(publish(&app, round).await.status(), 409);
    offer_credit(&app).await;
    assert_eq!(publish(&app, round).await.status(), 201);
    let ready = readiness(&app, round).await;
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["blockers"], json!([]));

    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::GET,
            &format!("/api/v1/rounds/{round}/readiness"),
            None,
        )
        .await,
        403,
    )
    .await;
    assert_problem(app.get("/api/v1/rounds/999999/readiness").await, 404).await;
}

async fn publishing_is_refused_until_the_round_is_ready(app: TestApp) {
    offer_credit(&app).await;
    let speaker = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let round = round_at(
        &app,
        Utc::now() + Duration::days(7),
        json!([{"speaker_id": speaker}]),
    )
    .await;
    let problem = assert_problem(publish(&app, round).await, 409).await;
    assert_eq!(problem["blockers"][0]["kind"], "no_current_disclosure");
    assert_eq!(problem["blockers"][0]["speaker_id"], speaker);
    assert_problem(
        app.get(&format!("/api/v1/rounds/{round}/disclosure-statement"))
            .await,
        404,
    )
    .await;
    let with = attest(
        &app,
        speaker,
        json!({"relationships": [relationship("Example Pharma", "consultant")]}),
    )
    .await;
    let problem = assert_problem(publish(&app, round).await, 409).await;
    assert_eq!(problem["blockers"][0]["kind"], "relationship_not_judged");
    assert_eq!(
        problem["blockers"][0]["relationship_id"],
        with["relationships"][0]["id"]
    );
    judge(
        &app,
        round,
        json!([{"relationship_id": with["relationships"][0]["id"], "relevant": true}]),
    )
    .await;
    let problem = assert_problem(publish(&app, round).await, 409).await;
    assert_eq!(
        problem["blockers"][0]["kind"],
        "relevant_without_mitigation"
    );
    judge(
        &app,
        round,
        json!([{"relationship_id": with["relationships"][0]["id"], "relevant": true,
            "mitigation": "attestation_of_evidence_base"}]),
    )
    .await;
    let response = publish(&app, round).await;
    assert_eq!(response.status(), 201);
    let statement: Value = response.json().await.unwrap();
    assert_eq!(statement["version"], 1);

    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::POST,
            &format!("/api/v1/rounds/{round}/disclosure-statement"),
            Some(&json!({})),
        )
        .await,
        403,
    )
    .await;
    assert_problem(publish(&app, 999_999).await, 404).await;
}

/// A round on `days` from now whose only presenter has no relationships, ready to publish.
async fn ready_round(app: &TestApp, days: i64) -> (i32, i32) {
    let speaker = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    none_since(app, speaker, Utc::now()).await;
    let round = round_at(
        app,
        Utc::now() + Duration::days(days),
        json!([{"speaker_id": speaker}]),
    )
    .await;
    (round, speaker)
}

async fn every_version_of_a_statement_is_kept_and_returned(app: TestApp) {
    offer_credit(&app).await;
    let (round, _) = ready_round(&app, 14).await;
    let path = format!("/api/v1/rounds/{round}/disclosure-statement");
    let first: Value = publish(&app, round).await.json().await.unwrap();
    assert_eq!(first["version"], 1);
    // Nothing changed: the same version, not a new one.
    let response = publish(&app, round).await;
    assert_eq!(response.status(), 200);
    let same: Value = response.json().await.unwrap();
    assert_eq!(same["version"], 1);
    assert_eq!(same["published_at"], first["published_at"]);

    // A panelist joins: the next publication is version 2.
    let panelist = app.speaker("Peter Lindenauer", &["MD", "MSc"]).await;
    none_since(&app, panelist, Utc::now()).await;
    let round_path = format!("/api/v1/rounds/{round}");
    let current = app.get_ok(&round_path).await;
    let mut speakers = current["speakers"].as_array().unwrap().clone();
    speakers.push(json!({"speaker_id": panelist, "role": "panelist"}));
    let speakers: Vec<Value> = speakers
        .iter()
        .map(|s| json!({"speaker_id": s["speaker_id"], "role": s["role"]}))
        .collect();
    app.patch(&round_path, &json!({ "speakers": speakers }))
        .await;
    // Until it is published again, learners would read what is no longer so.
    let stale = readiness(&app, round).await;
    assert_eq!(kinds(&stale), ["statement_out_of_date"]);
    assert!(stale["blockers"][0]["message"]
        .as_str()
        .unwrap()
        .contains("version 1"));
    let response = publish(&app, round).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        format!("{path}?version=2").as_str()
    );
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["version"], 2);
    assert_eq!(second["people"].as_array().unwrap().len(), 2);

    assert_eq!(readiness(&app, round).await["ready"], true);
    let latest: Value = app
        .request_as(None, Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(latest["version"], 2);
    let earlier = app.get_ok(&format!("{path}?version=1")).await;
    assert_eq!(earlier["version"], 1);
    assert_eq!(
        earlier["people"].as_array().unwrap().len(),
        1,
        "frozen as published"
    );
    assert_eq!(earlier["text"], first["text"]);
    assert_problem(app.get(&format!("{path}?version=3")).await, 404).await;
    // An earlier version is for organizers.
    assert_problem(
        app.request_as(None, Method::GET, &format!("{path}?version=1"), None)
            .await,
        401,
    )
    .await;
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(
            Some(&viewer),
            Method::GET,
            &format!("{path}?version=1"),
            None,
        )
        .await,
        403,
    )
    .await;
    assert_problem(app.get(&format!("{path}?version=0")).await, 400).await;
}

async fn the_public_statement_never_shows_a_relationship_judged_not_relevant_or_a_note(
    app: TestApp,
) {
    offer_credit(&app).await;
    let presenter = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let moderator = app.speaker("Mihaela Stefan", &["MD", "PhD"]).await;
    none_since(&app, moderator, Utc::now()).await;
    let with = attest(
        &app,
        presenter,
        json!({"relationships": [relationship("Shown Pharma", "consultant"),
            relationship("Hidden Devices", "speaker")]}),
    )
    .await;
    let round = round_at(
        &app,
        Utc::now() + Duration::days(5),
        json!([{"speaker_id": presenter}, {"speaker_id": moderator, "role": "moderator"}]),
    )
    .await;
    judge(
        &app,
        round,
        json!([
            {"relationship_id": with["relationships"][0]["id"], "relevant": true,
                "mitigation": "peer_review_of_content", "note": "PRIVATE-REVIEW-NOTE"},
            {"relationship_id": with["relationships"][1]["id"], "relevant": false,
                "note": "NOT-RELEVANT-NOTE"},
        ]),
    )
    .await;
    assert_eq!(publish(&app, round).await.status(), 201);
    let path = format!("/api/v1/rounds/{round}/disclosure-statement");
    let response = app.request_as(None, Method::GET, &path, None).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for private in [
        "Hidden Devices",
        "PRIVATE-REVIEW-NOTE",
        "NOT-RELEVANT-NOTE",
        "note",
    ] {
        assert!(!text.contains(private), "{private} in {text}");
    }
    let statement: Value = serde_json::from_str(&text).unwrap();
    let people = statement["people"].as_array().unwrap();
    assert_eq!(people[0]["display_name"], "Tara Lagu, MD, MPH");
    assert_eq!(people[0]["credentials"], json!(["MD", "MPH"]));
    assert_eq!(people[0]["role"], "presenter");
    assert_eq!(
        people[0]["relevant_relationships"],
        json!([{"company": "Shown Pharma", "nature": "consultant"}])
    );
    assert_eq!(people[1]["role"], "moderator");
    assert_eq!(people[1]["relevant_relationships"], json!([]));
    assert!(people[1]["disclosure"]
        .as_str()
        .unwrap()
        .contains("has no relevant financial relationships with ineligible companies"));
    assert!(statement["mitigation_statement"]
        .as_str()
        .unwrap()
        .contains("All relevant financial relationships"));
    assert!(statement["text"]
        .as_str()
        .unwrap()
        .contains("Shown Pharma (consultant)"));
    assert!(statement["published_at"].is_string());

    // The round names where the statement is, and so does its calendar event.
    let public_round: Value = app
        .request_as(None, Method::GET, &format!("/api/v1/rounds/{round}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public_round["disclosure_statement_url"], path);
    let ics = app
        .request_as(
            None,
            Method::GET,
            &format!("/api/v1/rounds/{round}.ics"),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    let unfolded = ics.replace("\r\n ", "");
    assert!(
        unfolded.contains(&format!("Disclosures of financial relationships: {path}")),
        "{unfolded}"
    );
    // The change feed, public, carries none of it either.
    let feed = app
        .request_as(None, Method::GET, "/api/v1/changes", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!feed.contains("Hidden Devices") && !feed.contains("PRIVATE-REVIEW-NOTE"));
}

async fn a_panel_of_eight_where_one_disclosure_expires_the_day_before_the_round(app: TestApp) {
    offer_credit(&app).await;
    let starts = Utc::now() + Duration::days(20);
    let starts = starts - Duration::nanoseconds(i64::from(starts.timestamp_subsec_nanos()));
    let mut panel = Vec::new();
    for i in 0..8 {
        panel.push(app.speaker(&format!("Panelist {i}"), &["MD"]).await);
    }
    for speaker in &panel[1..] {
        none_since(&app, *speaker, Utc::now() - Duration::days(10)).await;
    }
    // Attested 12 months and a day before the round: current until the day before it.
    let expiring = panel[0];
    let attested = starts.checked_sub_months(chrono::Months::new(12)).unwrap() - Duration::days(1);
    let written = none_since(&app, expiring, attested).await;
    assert_eq!(written["current"], true, "current today");
    assert_eq!(
        written["current_until"],
        rfc3339(starts - Duration::days(1))
    );
    let speakers: Vec<Value> = panel
        .iter()
        .map(|id| json!({"speaker_id": id, "role": "panelist"}))
        .collect();
    let round = round_at(&app, starts, json!(speakers)).await;

    let ready = readiness(&app, round).await;
    assert_eq!(
        kinds(&ready),
        ["no_current_disclosure", "no_published_statement"]
    );
    assert_eq!(ready["blockers"][0]["speaker_id"], expiring);
    let problem = assert_problem(publish(&app, round).await, 409).await;
    assert_eq!(problem["blockers"].as_array().unwrap().len(), 1);
    assert_eq!(problem["blockers"][0]["speaker_id"], expiring);

    // Renewed: all eight are disclosed, each with no relevant relationships.
    none_since(&app, expiring, Utc::now()).await;
    let statement: Value = publish(&app, round).await.json().await.unwrap();
    let people = statement["people"].as_array().unwrap();
    assert_eq!(people.len(), 8);
    assert!(people
        .iter()
        .all(|p| p["role"] == "panelist" && p["relevant_relationships"] == json!([])));
}

async fn the_first_publication_says_whether_learners_were_told_before_the_start(app: TestApp) {
    offer_credit(&app).await;
    let (early, _) = ready_round(&app, 3).await;
    let speaker = app.speaker("Late Speaker", &["MD"]).await;
    none_since(&app, speaker, Utc::now() - Duration::days(1)).await;
    let started = Utc::now() - Duration::hours(2);
    let started = started - Duration::nanoseconds(i64::from(started.timestamp_subsec_nanos()));
    let late = round_at(&app, started, json!([{"speaker_id": speaker}])).await;

    let ask = |round: i32, starts: chrono::NaiveDateTime| {
        let database = app.database.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = database.connection().unwrap();
                (
                    statements::first_published_at(&mut conn, round).unwrap(),
                    statements::published_in_time(&mut conn, round, starts).unwrap(),
                )
            })
            .await
            .unwrap()
        }
    };
    let early_start = (Utc::now() + Duration::days(3)).naive_utc();
    assert_eq!(
        ask(early, early_start).await,
        (None, false),
        "none published"
    );

    let before = Utc::now().naive_utc() - Duration::seconds(1);
    assert_eq!(publish(&app, early).await.status(), 201);
    let (early_first, in_time) = ask(early, early_start).await;
    assert!(early_first.unwrap() >= before);
    assert!(in_time, "published before the start");

    assert_eq!(publish(&app, late).await.status(), 201);
    let (first, in_time) = ask(late, started.naive_utc()).await;
    assert!(first.unwrap() > started.naive_utc());
    assert!(!in_time, "published after the start: not creditable");

    // A later version does not move the first publication.
    let moderator = app.speaker("Added Moderator", &["RN"]).await;
    none_since(&app, moderator, Utc::now()).await;
    app.patch(
        &format!("/api/v1/rounds/{early}"),
        &json!({"speakers": [{"speaker_id": speaker}, {"speaker_id": moderator, "role": "moderator"}]}),
    )
    .await;
    assert_eq!(publish(&app, early).await.status(), 201);
    let (again, _) = ask(early, early_start).await;
    assert_eq!(again, early_first, "the first publication stays the first");
    let latest = app
        .get_ok(&format!("/api/v1/rounds/{early}/disclosure-statement"))
        .await;
    assert_eq!(latest["version"], 2);
}

async fn the_attention_list_carries_the_disclosure_blockers(app: TestApp) {
    offer_credit(&app).await;
    let (ready, _) = ready_round(&app, 5).await;
    assert_eq!(publish(&app, ready).await.status(), 201);
    let undisclosed = app.speaker("Undisclosed Speaker", &["MD"]).await;
    let blocked = round_at(
        &app,
        Utc::now() + Duration::days(9),
        json!([{"speaker_id": undisclosed}]),
    )
    .await;
    let attention = app.get_ok("/api/v1/rounds/attention").await;
    let items = attention["items"].as_array().unwrap();
    let ids: Vec<i64> = items
        .iter()
        .map(|i| i["round_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [i64::from(blocked)], "the ready round is left out");
    let kinds: Vec<&str> = items[0]["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["no_current_disclosure", "no_published_statement"]);
    assert_eq!(items[0]["blockers"][0]["speaker_id"], undisclosed);
}

async fn publishing_is_a_webhook_event_and_every_step_is_in_the_audit_trail(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
        s.webhook_retry_schedule = "1s,1s".into();
    })
    .await
    .expect("the backend of the app given");
    offer_credit(&app).await;
    let receiver = Receiver::start(&[]).await;
    app.create(
        "/api/v1/webhooks",
        json!({"url": receiver.url, "events": ["disclosure_statement.published"]}),
    )
    .await;
    let (round, speaker) = ready_round(&app, 8).await;
    assert_eq!(publish(&app, round).await.status(), 201);
    let got = receiver.wait_for(1, 20).await;
    assert_eq!(got.len(), 1);
    let message: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(message["type"], "disclosure_statement.published");
    assert_eq!(message["data"]["round_id"], round);
    assert_eq!(message["data"]["version"], 1);

    let audit = app.get_ok("/api/v1/audit?resource=disclosure").await;
    assert_eq!(audit["items"][0]["actor"], "admin@example.org");
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["changes"]["speaker_id"][1] == speaker));
    let audit = app
        .get_ok("/api/v1/audit?resource=disclosure_statement")
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    assert_eq!(audit["items"][0]["action"], "created");
}

async fn what_counts_for_a_round_is_the_attestation_made_by_its_start(app: TestApp) {
    offer_credit(&app).await;
    let speaker = app.speaker("Howard Goldberg", &["MD"]).await;
    let started = Utc::now() - Duration::hours(2);
    let held = round_at(&app, started, json!([{"speaker_id": speaker}])).await;
    // Attested only after the round started: too late for it.
    none_since(&app, speaker, Utc::now()).await;
    let late = readiness(&app, held).await;
    assert_eq!(kinds(&late)[0], "no_current_disclosure");
    assert!(late["blockers"][0]["message"]
        .as_str()
        .unwrap()
        .contains("by the round's start"));

    // One made before it counts; a later one, with a relationship, changes nothing for it.
    let before = none_since(&app, speaker, started - Duration::days(3)).await;
    assert_eq!(
        kinds(&readiness(&app, held).await),
        ["no_published_statement"]
    );
    assert_eq!(publish(&app, held).await.status(), 201);
    attest(
        &app,
        speaker,
        json!({"relationships": [relationship("Example Pharma", "employee")]}),
    )
    .await;
    let review = app
        .get_ok(&format!("/api/v1/rounds/{held}/disclosure-review"))
        .await;
    assert_eq!(
        review["people"][0]["disclosure"]["disclosure_id"],
        before["id"]
    );
    assert_eq!(review["people"][0]["relationships"], json!([]));
    assert_eq!(readiness(&app, held).await["ready"], true);
    // An upcoming round judges the newest.
    let upcoming = round_at(
        &app,
        Utc::now() + Duration::days(3),
        json!([{"speaker_id": speaker}]),
    )
    .await;
    assert_eq!(
        kinds(&readiness(&app, upcoming).await),
        ["relationship_not_judged", "no_published_statement"]
    );
}

async fn the_series_planners_are_speakers_each_once_in_order(app: TestApp) {
    offer_credit(&app).await;
    let series = app.get_ok("/api/v1/series").await;
    assert_eq!(series["planners"], json!([]));
    assert_eq!(series["disclosure_valid_months"], 12);
    let first = app.speaker("Mihaela Stefan", &["MD", "PhD"]).await;
    let second = app.speaker("Aubri Drake", &[]).await;
    let problem = assert_problem(
        app.patch(
            "/api/v1/series",
            &json!({"planners": [{"speaker_id": first}, {"speaker_id": first, "role": "reviewer"},
                {"speaker_id": 999_999}]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        ["planners[1].speaker_id", "planners[2].speaker_id"]
    );
    let problem = assert_problem(
        app.patch("/api/v1/series", &json!({"disclosure_valid_months": 0}))
            .await,
        422,
    )
    .await;
    assert_eq!(error_fields(&problem), ["disclosure_valid_months"]);
    let response = app
        .patch(
            "/api/v1/series",
            &json!({"planners": [{"speaker_id": second, "role": "reviewer"}, {"speaker_id": first}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let series: Value = response.json().await.unwrap();
    assert_eq!(
        series["planners"],
        json!([{"speaker_id": second, "role": "reviewer"}, {"speaker_id": first, "role": "planner"}])
    );
    // A planner who also speaks is listed once on the round's review, with both roles.
    let round = round_at(
        &app,
        Utc::now() + Duration::days(4),
        json!([{"speaker_id": first}]),
    )
    .await;
    let review = app
        .get_ok(&format!("/api/v1/rounds/{round}/disclosure-review"))
        .await;
    let people: Vec<(Value, Value)> = review["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["speaker_id"].clone(), p["roles"].clone()))
        .collect();
    assert_eq!(
        people,
        [
            (json!(first), json!(["presenter", "planner"])),
            (json!(second), json!(["reviewer"]))
        ]
    );
}
