//! Speakers who confirm: the status of each place on a round, shown to organizers and hidden
//! from everyone else until confirmed; a signed-in speaker answering for their own place and no
//! other; and the rounds that need attention.

use lhs_rounds::platform::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, TestApp};

on_both_backends!(
    a_speakers_place_is_confirmed_unless_an_organizer_says_otherwise,
    invited_and_declined_speakers_are_shown_to_organizers_only,
    a_signed_in_speaker_answers_for_their_own_place_and_no_other,
    a_round_whose_presenters_all_declined_shows_as_to_be_announced_again,
    a_speakers_sub_is_for_organizers_and_names_one_speaker,
    the_attention_list_names_what_keeps_each_upcoming_round_from_being_ready,
);

/// A speaker whose sign-in is `sub`.
async fn speaker_with_sub(app: &TestApp, name: &str, sub: &str) -> i32 {
    id_of(
        &app.create(
            "/api/v1/speakers",
            json!({"full_name": name, "credentials": ["MD"], "sub": sub}),
        )
        .await,
    )
}

/// A round on `date` with `speakers` (`[{speaker_id, role?, status?}]`).
async fn round_with(app: &TestApp, date: &str, speakers: Value) -> i32 {
    id_of(
        &app.round(
            date,
            json!({"title": "Patient comments", "speakers": speakers}),
        )
        .await,
    )
}

async fn public_speakers(app: &TestApp, round: i32) -> Value {
    let response = app
        .request_as(None, Method::GET, &format!("/api/v1/rounds/{round}"), None)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["speakers"].clone()
}

async fn respond(
    app: &TestApp,
    token: Option<&str>,
    round: i32,
    speaker: i32,
    status: &str,
) -> reqwest::Response {
    app.request_as(
        token,
        Method::PUT,
        &format!("/api/v1/rounds/{round}/speakers/{speaker}/response"),
        Some(&json!({"status": status})),
    )
    .await
}

async fn a_speakers_place_is_confirmed_unless_an_organizer_says_otherwise(app: TestApp) {
    let tara = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let quinn = app.speaker("Quinn Pack", &["MD"]).await;
    let round = round_with(
        &app,
        "2027-03-18",
        json!([{"speaker_id": tara}, {"speaker_id": quinn, "status": "invited"}]),
    )
    .await;
    let path = format!("/api/v1/rounds/{round}");

    let shown = app.get_ok(&path).await;
    assert_eq!(shown["speakers"][0]["status"], "confirmed");
    assert_eq!(shown["speakers"][0]["invited_at"], Value::Null);
    assert_eq!(shown["speakers"][0]["responded_at"], Value::Null);
    assert_eq!(shown["speakers"][1]["status"], "invited");
    let invited_at = shown["speakers"][1]["invited_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(shown["speakers"][1]["responded_at"], Value::Null);

    // A client that knows nothing of statuses keeps them as they are.
    let put = app
        .put(
            &path,
            &json!({"title": "Patient comments, again", "starts_at": "2027-03-18T12:00:00Z",
                    "ends_at": "2027-03-18T13:00:00Z", "location": "BMC – MassMutual 5",
                    "speakers": [{"speaker_id": tara}, {"speaker_id": quinn}]}),
        )
        .await;
    assert_eq!(put.status(), 200);
    let patched = app
        .patch(&path, &json!({"title": "Patient comments"}))
        .await;
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["speakers"][1]["status"], "invited");
    assert_eq!(patched["speakers"][1]["invited_at"], invited_at.as_str());

    // An organizer confirms for the speaker: the answer's time is set, the invitation's kept.
    let confirmed = app
        .patch(
            &path,
            &json!({"speakers": [{"speaker_id": tara}, {"speaker_id": quinn, "status": "confirmed"}]}),
        )
        .await;
    let confirmed: Value = confirmed.json().await.unwrap();
    assert_eq!(confirmed["speakers"][1]["status"], "confirmed");
    assert_eq!(confirmed["speakers"][1]["invited_at"], invited_at.as_str());
    assert!(confirmed["speakers"][1]["responded_at"].is_string());

    let bad = app
        .patch(
            &path,
            &json!({"speakers": [{"speaker_id": tara, "status": "maybe"}]}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(bad, 422).await),
        vec!["speakers[0].status"]
    );
}

async fn invited_and_declined_speakers_are_shown_to_organizers_only(app: TestApp) {
    let tara = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let quinn = app.speaker("Quinn Pack", &["MD"]).await;
    let doug = app.speaker("Doug Salvador", &["MD"]).await;
    let round = round_with(
        &app,
        "2027-04-15",
        json!([{"speaker_id": tara}, {"speaker_id": quinn, "status": "invited"},
               {"speaker_id": doug, "status": "declined", "role": "moderator"}]),
    )
    .await;
    let path = format!("/api/v1/rounds/{round}");

    let public = public_speakers(&app, round).await;
    assert_eq!(public.as_array().unwrap().len(), 1);
    assert_eq!(public[0]["display_name"], "Tara Lagu, MD, MPH");
    assert_eq!(public[0]["status"], "confirmed");
    assert!(
        public[0].get("invited_at").is_none() && public[0].get("responded_at").is_none(),
        "{public}"
    );
    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    let seen: Value = app
        .request_as(Some(&viewer), Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["speakers"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_ok(&path).await["speakers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let list = app
        .request_as(None, Method::GET, "/api/v1/rounds?limit=10", None)
        .await;
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["items"][0]["speakers"].as_array().unwrap().len(), 1);

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
        .unwrap()
        .replace("\r\n ", "");
    assert!(ics.contains("Tara Lagu"), "{ics}");
    assert!(
        !ics.contains("Quinn Pack") && !ics.contains("Doug Salvador"),
        "{ics}"
    );
    let feed = app
        .request_as(
            None,
            Method::GET,
            "/api/v1/rounds.ics?from=2027-01-01T00:00:00Z",
            None,
        )
        .await
        .text()
        .await
        .unwrap()
        .replace("\r\n ", "");
    assert!(!feed.contains("Quinn Pack"), "{feed}");
    // The speaker's own rounds list them only where they are confirmed.
    let theirs = app
        .request_as(
            None,
            Method::GET,
            &format!("/api/v1/speakers/{quinn}/rounds"),
            None,
        )
        .await;
    let theirs: Value = theirs.json().await.unwrap();
    assert!(theirs["items"][0]["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["speaker_id"] != quinn));
}

async fn a_signed_in_speaker_answers_for_their_own_place_and_no_other(app: TestApp) {
    let tara = speaker_with_sub(&app, "Tara Lagu", "tara.lagu@example.org").await;
    let quinn = speaker_with_sub(&app, "Quinn Pack", "quinn.pack@example.org").await;
    let round = round_with(
        &app,
        "2027-05-20",
        json!([{"speaker_id": tara, "status": "invited"}, {"speaker_id": quinn, "status": "invited"}]),
    )
    .await;
    let other = round_with(
        &app,
        "2027-06-17",
        json!([{"speaker_id": quinn, "status": "invited"}]),
    )
    .await;
    // A signed-in speaker needs no role: the `sub` is what names them.
    let tara_token = app.token("tara.lagu@example.org", &[]);

    let answered = respond(&app, Some(&tara_token), round, tara, "confirmed").await;
    assert_eq!(answered.status(), 200);
    let place: Value = answered.json().await.unwrap();
    assert_eq!(place["status"], "confirmed");
    assert_eq!(place["round_id"], round);
    assert_eq!(place["speaker_id"], tara);
    assert!(place["invited_at"].is_string() && place["responded_at"].is_string());
    let public = public_speakers(&app, round).await;
    assert_eq!(public.as_array().unwrap().len(), 1);
    assert_eq!(public[0]["speaker_id"], tara);
    let audit = app
        .get_ok(&format!("/api/v1/audit?resource=round&id={round}"))
        .await;
    assert_eq!(audit["items"][0]["actor"], "tara.lagu@example.org");

    // Another speaker's place, on this round or another: refused, nothing changed.
    assert_problem(
        respond(&app, Some(&tara_token), round, quinn, "declined").await,
        403,
    )
    .await;
    assert_problem(
        respond(&app, Some(&tara_token), other, quinn, "declined").await,
        403,
    )
    .await;
    // A place that does not exist.
    assert_problem(
        respond(&app, Some(&tara_token), other, tara, "confirmed").await,
        404,
    )
    .await;
    // No token; a token whose sub names no speaker.
    assert_problem(respond(&app, None, round, tara, "declined").await, 401).await;
    let stranger = app.token("someone@example.org", &[Role::Viewer]);
    assert_problem(
        respond(&app, Some(&stranger), round, tara, "declined").await,
        403,
    )
    .await;
    // A speaker answers confirmed or declined, nothing else.
    let invited = respond(&app, Some(&tara_token), round, tara, "invited").await;
    assert_eq!(
        error_fields(&assert_problem(invited, 422).await),
        vec!["status"]
    );
    let organizer_view = app.get_ok(&format!("/api/v1/rounds/{round}")).await;
    assert_eq!(organizer_view["speakers"][0]["status"], "confirmed");
    assert_eq!(organizer_view["speakers"][1]["status"], "invited");

    // An organizer may answer for a speaker.
    let declined = respond(&app, app.admin_token.as_deref(), other, quinn, "declined").await;
    assert_eq!(declined.status(), 200);
    assert_eq!(
        app.get_ok(&format!("/api/v1/rounds/{other}")).await["speakers"][0]["status"],
        "declined"
    );
}

async fn a_round_whose_presenters_all_declined_shows_as_to_be_announced_again(app: TestApp) {
    let tara = speaker_with_sub(&app, "Tara Lagu", "tara@example.org").await;
    let moderator = app.speaker("Doug Salvador", &["MD"]).await;
    let round = round_with(
        &app,
        "2027-07-15",
        json!([{"speaker_id": tara}, {"speaker_id": moderator, "role": "moderator"}]),
    )
    .await;
    let token = app.token("tara@example.org", &[Role::Viewer]);

    assert_eq!(
        respond(&app, Some(&token), round, tara, "declined")
            .await
            .status(),
        200
    );

    let public = public_speakers(&app, round).await;
    assert_eq!(public.as_array().unwrap().len(), 1, "{public}");
    assert_eq!(public[0]["role"], "moderator");
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
        .unwrap()
        .replace("\r\n ", "");
    assert!(!ics.contains("Tara Lagu"), "{ics}");
    // Confirming again shows her again.
    assert_eq!(
        respond(&app, Some(&token), round, tara, "confirmed")
            .await
            .status(),
        200
    );
    assert_eq!(
        public_speakers(&app, round).await.as_array().unwrap().len(),
        2
    );
}

async fn a_speakers_sub_is_for_organizers_and_names_one_speaker(app: TestApp) {
    let tara = speaker_with_sub(&app, "Tara Lagu", "tara@example.org").await;
    let path = format!("/api/v1/speakers/{tara}");
    assert_eq!(app.get_ok(&path).await["sub"], "tara@example.org");
    let public: Value = app
        .request_as(None, Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(public.get("sub").is_none(), "{public}");

    let twice = app
        .post(
            "/api/v1/speakers",
            &json!({"full_name": "Another Tara", "sub": "tara@example.org"}),
        )
        .await;
    assert_problem(twice, 409).await;
}

/// Moves every invitation of round `round` back by `days`, as if it had been sent then.
async fn invitations_sent_days_ago(app: &TestApp, round: i32, days: i64) {
    let speakers = app.get_ok(&format!("/api/v1/rounds/{round}")).await["speakers"].clone();
    let database = app.database.clone();
    let at = (chrono::Utc::now() - chrono::Duration::days(days))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let ids: Vec<i64> = speakers
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "invited")
        .map(|s| s["speaker_id"].as_i64().unwrap())
        .collect();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl;
        let mut conn = database.connection().expect("a connection");
        for id in ids {
            diesel::sql_query(format!(
                "UPDATE round_speakers SET invited_at = '{at}' WHERE round_id = {round} AND speaker_id = {id}"
            ))
            .execute(&mut *conn)
            .expect("backdated");
        }
    })
    .await
    .unwrap();
}

async fn the_attention_list_names_what_keeps_each_upcoming_round_from_being_ready(app: TestApp) {
    // The series offers credit, so that a round's disclosures are all that may keep it back.
    let offered = app
        .patch(
            "/api/v1/series",
            &json!({"credit_type": "ama_pra_category_1"}),
        )
        .await;
    assert_eq!(offered.status(), 200);
    let day = |ahead: i64| {
        (chrono::Utc::now() + chrono::Duration::days(ahead))
            .format("%Y-%m-%d")
            .to_string()
    };
    let ready_speaker = app.speaker("Tara Lagu", &["MD"]).await;
    let slow = app.speaker("Quinn Pack", &["MD"]).await;
    let fresh = app.speaker("Paul Visintainer", &["PhD"]).await;
    // In 30 days: no title, nobody.
    let bare = id_of(&app.round(&day(30), json!({})).await);
    // In 10 days: a title, a presenter invited three weeks ago, a panelist invited today.
    let waiting = id_of(
        &app.round(
            &day(10),
            json!({"title": "Waiting", "speakers": [{"speaker_id": slow, "status": "invited"}]}),
        )
        .await,
    );
    invitations_sent_days_ago(&app, waiting, 21).await;
    app.patch(
        &format!("/api/v1/rounds/{waiting}"),
        &json!({"speakers": [{"speaker_id": slow}, {"speaker_id": fresh, "role": "panelist", "status": "invited"}]}),
    )
    .await;
    // Ready: a title and a confirmed presenter, whose disclosure is current and published.
    let ready = id_of(
        &app.round(
            &day(20),
            json!({"title": "Ready", "speakers": [{"speaker_id": ready_speaker}]}),
        )
        .await,
    );
    let attested = app
        .put(
            &format!("/api/v1/speakers/{ready_speaker}/disclosure"),
            &json!({"no_relationships": true}),
        )
        .await;
    assert_eq!(attested.status(), 200);
    let published = app
        .post(
            &format!("/api/v1/rounds/{ready}/disclosure-statement"),
            &json!({}),
        )
        .await;
    assert_eq!(published.status(), 201);
    // Cancelled, past, and beyond 45 days: none of them listed.
    app.round(&day(5), json!({"status": "cancelled"})).await;
    app.round(&day(-3), json!({})).await;
    let later = id_of(&app.round(&day(60), json!({})).await);

    let attention = app.get_ok("/api/v1/rounds/attention").await;

    assert_eq!(attention["attention_days"], 45);
    let items = attention["items"].as_array().unwrap();
    let ids: Vec<i64> = items
        .iter()
        .map(|i| i["round"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [i64::from(waiting), i64::from(bare)], "soonest first");
    assert_eq!(items[0]["round_id"], waiting);
    let kinds = |item: &Value| -> Vec<String> {
        item["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    // The planning blockers first, then the disclosure's (see tests/api/disclosures.rs).
    assert_eq!(
        kinds(&items[1]),
        [
            "no_title",
            "no_confirmed_presenter",
            "no_published_statement"
        ]
    );
    assert_eq!(
        kinds(&items[0])[..2],
        ["no_confirmed_presenter", "invitation_unanswered"]
    );
    assert_eq!(items[0]["blockers"][1]["speaker_id"], slow);
    assert!(items[0]["blockers"][1]["message"]
        .as_str()
        .unwrap()
        .contains("Quinn Pack"));
    assert!(items[1]["blockers"][0].get("speaker_id").is_none());
    assert_eq!(
        items[0]["round"]["speakers"].as_array().unwrap().len(),
        2,
        "every speaker, to organizers"
    );

    app.patch("/api/v1/series", &json!({"attention_days": 90}))
        .await;
    let wider = app.get_ok("/api/v1/rounds/attention").await;
    assert_eq!(wider["items"].as_array().unwrap().len(), 3);
    assert_eq!(wider["items"][2]["round"]["id"], later);

    let viewer = app.token("viewer@example.org", &[Role::Viewer]);
    assert_problem(
        app.request_as(Some(&viewer), Method::GET, "/api/v1/rounds/attention", None)
            .await,
        403,
    )
    .await;
    assert_problem(
        app.request_as(None, Method::GET, "/api/v1/rounds/attention", None)
            .await,
        401,
    )
    .await;
}
