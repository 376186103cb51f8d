//! The series' own pages (`/`, `/rounds/{id}`, `/embed/upcoming`) and their forms: status,
//! content in the page's format, escaping, what the public never sees, the read cache and its
//! validators, the forms' refusals, framing, and `LHS_SITE=off`.

use lhs_rounds::platform::auth::Role;
use reqwest::header;
use serde_json::{json, Value};

use crate::helpers::{id_of, spawn_app_with, TestApp};

on_both_backends!(
    the_demo_s_page_shows_every_round_of_the_reference_page_in_its_format,
    the_demo_rendered_on_the_reference_page_s_day_has_its_rounds_in_its_order,
    a_round_s_page_shows_confirmed_speakers_public_materials_and_escaped_text,
    the_feedback_form_is_shown_only_inside_the_round_s_window,
    forms_from_another_site_or_from_nowhere_are_refused,
    a_topic_suggestion_is_sent_as_a_form_and_answered_with_a_303,
    a_form_with_errors_comes_back_with_each_error_tied_to_its_field,
    session_feedback_is_sent_from_the_round_s_page_inside_its_window_only,
    a_script_in_the_description_comes_out_inert,
    pages_are_kept_in_the_read_cache_until_what_they_show_changes,
    a_round_s_page_shows_its_initiatives_run_charts_as_soon_as_a_measure_is_added,
    pages_refuse_framing_and_the_fragment_is_framed_only_by_the_embed_origins,
    the_stylesheet_is_fingerprinted_and_cached_immutably,
    an_unknown_round_is_a_page_that_says_so,
    the_check_in_page_from_the_qr_url_checks_in_once_however_often_it_is_sent,
    the_check_in_page_says_plainly_why_it_takes_no_check_in,
    check_ins_from_another_site_are_refused_and_nothing_is_recorded,
    without_public_reads_the_check_in_page_names_no_round_and_still_checks_in,
    a_round_s_page_says_its_disclosure_statement_or_plainly_that_there_is_none,
);

/// The demo loaded into the app's database.
async fn load_demo(app: &TestApp) {
    let database = app.database.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        lhs_rounds::app::demo::seed(&mut conn).expect("the demo loads");
    })
    .await
    .unwrap();
}

/// GETs a page without a token, as a browser would, asserting 200 HTML.
async fn page(app: &TestApp, path: &str) -> (reqwest::header::HeaderMap, String) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let headers = response.headers().clone();
    (headers, response.text().await.unwrap())
}

/// The text of HTML, with the entities askama writes turned back into characters.
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The rounds' lines of a page, in its order (the text of each link in a `rounds` list).
fn round_lines(html: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for list in html.split("<ul class=\"rounds\">").skip(1) {
        let list = list.split("</ul>").next().unwrap();
        for item in list.split("<li>").skip(1) {
            let text = item
                .split("\">")
                .nth(1)
                .unwrap()
                .split("</a>")
                .next()
                .unwrap();
            lines.push(unescape(text));
        }
    }
    lines
}

/// A round of the reference page: its date as the pages write it, its room, speakers and
/// title.
#[derive(Debug)]
struct ReferenceRound {
    date: String,
    room: String,
    speakers: Vec<String>,
    title: Option<String>,
}

/// The ten rounds of the reference page (`tests/fixtures/lhs-rounds-page.txt`, a copy of
/// `shared/reference/lhs-rounds-page.txt`), in its order: upcoming, then past. Its
/// hand-typed slips are read as meant: "June 20th" is June 20, "201912-1pm" is "2019, 12-1pm",
/// "MassMutual6" is "MassMutual 6".
fn reference_rounds() -> Vec<ReferenceRound> {
    let text = include_str!("../fixtures/lhs-rounds-page.txt");
    let mut rounds = Vec::new();
    for line in text.lines().filter_map(|l| l.trim().strip_prefix("• ")) {
        let line = line.trim().strip_prefix("Thursday, ").unwrap();
        let (date, rest) = line.split_once("2019").unwrap();
        let date: String = date
            .replace("st,", ",")
            .replace("nd,", ",")
            .replace("rd,", ",")
            .replace("th,", ",");
        let (_, place) = rest.split_once("@ ").unwrap();
        let (room, topic) = match place.split_once(':') {
            Some((room, topic)) => (room.trim(), Some(topic.trim())),
            None => (place.trim(), None),
        };
        let room = room.replace("MassMutual6", "MassMutual 6");
        let (speakers, title) = match topic {
            None => (Vec::new(), None),
            Some(topic) => match topic.split_once('“') {
                Some((people, title)) => (
                    people
                        .trim()
                        .strip_suffix("on")
                        .unwrap()
                        .trim()
                        .trim_end_matches([',', ';'])
                        .split(';')
                        .map(|p| p.trim().trim_start_matches("& ").trim().to_owned())
                        .filter(|p| !p.is_empty())
                        .collect(),
                    Some(title.trim_end_matches('”').to_owned()),
                ),
                None => (Vec::new(), Some(topic.to_owned())),
            },
        };
        rounds.push(ReferenceRound {
            date: format!("Thursday, {} 2019", date.trim()),
            room,
            speakers,
            title,
        });
    }
    rounds
}

/// Asserts that every reference round is on a line of `lines`, each after the one before,
/// with its room, speakers and title on that line.
fn assert_in_order(lines: &[String], reference: &[ReferenceRound]) {
    let mut at = 0;
    for round in reference {
        let found = lines[at..]
            .iter()
            .position(|l| l.starts_with(&format!("{}, ", round.date)))
            .unwrap_or_else(|| {
                panic!(
                    "{} is not on the page after line {at}: {lines:#?}",
                    round.date
                )
            });
        let line = &lines[at + found];
        assert!(
            line.contains(&format!("@ {}", round.room)) || line.contains(&round.room),
            "{line}: room {}",
            round.room
        );
        for speaker in &round.speakers {
            assert!(line.contains(speaker.as_str()), "{line}: speaker {speaker}");
        }
        if let Some(title) = &round.title {
            assert!(line.contains(title.trim()), "{line}: title {title}");
        }
        at += found + 1;
    }
}

async fn the_demo_s_page_shows_every_round_of_the_reference_page_in_its_format(app: TestApp) {
    load_demo(&app).await;

    let (headers, html) = page(&app, "/").await;

    assert!(html.contains("<h1>Learning Health System Rounds</h1>"));
    assert!(html.contains("What is a Learning Health System?"));
    assert!(html.contains("href=\"mailto:mihaela.stefan@example.org\""));
    assert!(html.contains("webcal://127.0.0.1:"), "a subscribe link");
    assert!(html.contains("href=\"/api/v1/rounds.ics\""));
    assert!(html.contains("action=\"/suggestions\""));
    let lines = round_lines(&html);
    // Today all ten are past, most recent first, each in the page's own format.
    for expected in [
        "Thursday, December 19, 2019, 12–1pm, @ BMC – MassMutual 5",
        "Thursday, July 18, 2019, 12–1pm, @ BMC – MassMutual 6",
        "Thursday, June 20, 2019, 12–1pm, @ BMC – MassMutual 6: SWOT Analysis continued",
        "Thursday, April 25, 2019, 12–1pm, @ BMC – MassMutual 5: Tara Lagu, MD, MPH, on “How can \
         we use patient comments to improve care?”",
        "Thursday, January 17, 2019, 12–1pm, @ 3601 Main St, PVLSI: Howard Goldberg, MD; Peter \
         Lindenauer, MD, MSc; Doug Salvador, MD, MPH, on “What is the LHS and why is it \
         important?”",
    ] {
        assert!(
            lines.contains(&expected.to_owned()),
            "{expected} in {lines:#?}"
        );
    }
    let past: Vec<&String> = lines.iter().filter(|l| l.contains("2019")).collect();
    assert_eq!(past.len(), 10, "{lines:#?}");
    assert!(past[0].contains("December 19") && past[9].contains("January 17"));
    let mut descending = reference_rounds();
    descending.sort_by_key(|r| {
        std::cmp::Reverse(chrono::NaiveDate::parse_from_str(&r.date, "%A, %B %d, %Y").unwrap())
    });
    assert_in_order(&lines, &descending);
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("script-src"),
        "{policy}"
    );
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    assert!(headers.contains_key(header::ETAG));
}

async fn the_demo_rendered_on_the_reference_page_s_day_has_its_rounds_in_its_order(app: TestApp) {
    load_demo(&app).await;
    let database = app.database.clone();
    // The page was written between its June and July rounds.
    let html = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let now = chrono::NaiveDate::from_ymd_opt(2019, 7, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        lhs_rounds::site::pages::home_html(&mut conn, now, None)
            .expect("the page renders")
            .0
    })
    .await
    .unwrap();

    let reference = reference_rounds();
    assert_eq!(reference.len(), 10, "{reference:#?}");
    assert_eq!(reference[0].date, "Thursday, July 18, 2019");
    assert_eq!(reference[5].date, "Thursday, June 20, 2019");
    assert_eq!(reference[9].speakers.len(), 3, "{:?}", reference[9]);
    assert_eq!(reference[8].speakers.len(), 8, "{:?}", reference[8]);
    let upcoming = html.split("id=\"past\"").next().unwrap();
    let lines = round_lines(&html);
    assert_in_order(&lines, &reference);
    // July to December are upcoming on that day, as on the page; June back to January past.
    assert!(upcoming.contains("December 19, 2019") && !upcoming.contains("June 20, 2019"));
}

async fn a_round_s_page_shows_confirmed_speakers_public_materials_and_escaped_text(app: TestApp) {
    let confirmed = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let invited = app.speaker("Secret Person", &["PhD"]).await;
    let department = app.department("Division of Healthcare Quality").await;
    let round = app
        .round(
            "2030-04-25",
            json!({
                "title": "<script>alert(1)</script> & \"quotes\"",
                "speakers": [
                    {"speaker_id": confirmed, "role": "presenter"},
                    {"speaker_id": invited, "role": "panelist", "status": "invited"}
                ],
                "department_ids": [department]
            }),
        )
        .await;
    let id = id_of(&round);
    app.create(
        &format!("/api/v1/rounds/{id}/materials"),
        json!({"kind": "slides", "title": "Public slides", "url": "https://example.org/slides", "visibility": "public"}),
    )
    .await;
    app.create(
        &format!("/api/v1/rounds/{id}/materials"),
        json!({"kind": "article", "title": "Organisers' notes", "url": "https://example.org/notes", "visibility": "organizers"}),
    )
    .await;

    let (_, html) = page(&app, &format!("/rounds/{id}")).await;

    assert!(html.contains("Tara Lagu, MD, MPH"), "{html}");
    assert!(html.contains("(Presenter)"));
    assert!(
        !html.contains("Secret Person"),
        "an unconfirmed speaker is never shown"
    );
    assert!(html.contains("Division of Healthcare Quality"));
    assert!(
        html.contains("<h1>&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quotes&#34;</h1>"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("Public slides") && html.contains("https://example.org/slides"));
    assert!(
        !html.contains("Organisers&#39; notes")
            && !html.contains("Organisers' notes")
            && !html.contains("example.org/notes")
    );
    assert!(html.contains(&format!("href=\"/api/v1/rounds/{id}.ics\"")));
    assert!(
        !html.contains("Rate this round"),
        "a future round takes no feedback yet"
    );

    // Even a token that sees private fields gets the public page.
    let organizer = app.token("organizer@example.org", &[Role::Organizer]);
    let html = app
        .client
        .get(app.url(&format!("/rounds/{id}")))
        .bearer_auth(organizer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Secret Person") && !html.contains("example.org/notes"));
}

async fn the_feedback_form_is_shown_only_inside_the_round_s_window(app: TestApp) {
    let held = id_of(&app.held_round(json!({"title": "Held"})).await);
    let future = id_of(&app.round("2031-01-16", json!({})).await);
    let long_past = id_of(&app.round("2019-01-17", json!({})).await);
    let cancelled = id_of(&app.held_round(json!({"status": "cancelled"})).await);

    let (_, html) = page(&app, &format!("/rounds/{held}")).await;
    assert!(html.contains("Rate this round"));
    assert!(html.contains(&format!("action=\"/rounds/{held}/feedback\"")));
    assert!(html.contains("<legend>Your rating (required)</legend>"));
    for id in [future, long_past, cancelled] {
        let (_, html) = page(&app, &format!("/rounds/{id}")).await;
        assert!(!html.contains("Rate this round"), "round {id}");
    }
    let (_, html) = page(&app, &format!("/rounds/{cancelled}")).await;
    assert!(html.contains("This round was cancelled."));
}

/// POSTs a form as a browser would, with `origin` and `referer` when given, without
/// following redirects.
async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
    referer: Option<&str>,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client
        .post(app.url(path))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap());
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if let Some(referer) = referer {
        request = request.header(header::REFERER, referer);
    }
    request.send().await.unwrap()
}

async fn feedback_total(app: &TestApp) -> i64 {
    app.get_ok("/api/v1/feedback").await["total"]
        .as_i64()
        .unwrap()
}

async fn forms_from_another_site_or_from_nowhere_are_refused(app: TestApp) {
    let held = id_of(&app.held_round(json!({})).await);
    let suggestion = [("comment", "Sepsis bundles")];
    let rating = [("rating", "5")];

    for (origin, referer) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("https://evil.example/page")),
        (None, None),
        // A look-alike host is another host.
        (Some(&*format!("{}.evil.example", app.address)), None),
    ] {
        let response = post_form(&app, "/suggestions", &suggestion, origin, referer).await;
        assert_eq!(response.status(), 403, "{origin:?} {referer:?}");
        assert!(response.text().await.unwrap().contains("Form refused"));
        let response = post_form(
            &app,
            &format!("/rounds/{held}/feedback"),
            &rating,
            origin,
            referer,
        )
        .await;
        assert_eq!(response.status(), 403, "{origin:?} {referer:?}");
    }

    assert_eq!(feedback_total(&app).await, 0, "nothing was stored");
}

async fn a_topic_suggestion_is_sent_as_a_form_and_answered_with_a_303(app: TestApp) {
    let response = post_form(
        &app,
        "/suggestions",
        &[
            ("comment", "Sepsis bundles <b>now</b>"),
            ("author_name", ""),
            ("author_email", "reader@example.org"),
        ],
        Some(&app.address),
        None,
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[header::LOCATION], "/suggestions/sent");
    // From a page of the service, without an `Origin` (older browsers): its `Referer`.
    let response = post_form(
        &app,
        "/suggestions",
        &[("comment", "Falls prevention")],
        None,
        Some(&app.url("/")),
    )
    .await;
    assert_eq!(response.status(), 303);

    let (_, html) = page(&app, "/suggestions/sent").await;
    assert!(html.contains("Thank you"));
    let stored = app.get_ok("/api/v1/feedback?kind=topic_suggestion").await;
    assert_eq!(stored["total"], 2);
    let comments: Vec<&str> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["comment"].as_str().unwrap())
        .collect();
    assert!(
        comments.contains(&"Sepsis bundles <b>now</b>"),
        "{comments:?}"
    );
    let sent = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["comment"] == "Sepsis bundles <b>now</b>")
        .unwrap();
    assert_eq!(sent["author_email"], "reader@example.org");
    assert!(
        sent["author_name"].is_null(),
        "a blank field is left out: {sent}"
    );
}

async fn a_form_with_errors_comes_back_with_each_error_tied_to_its_field(app: TestApp) {
    let response = post_form(
        &app,
        "/suggestions",
        &[
            ("comment", "   "),
            ("author_name", "<i>Ann</i>"),
            ("author_email", "not an address"),
        ],
        Some(&app.address),
        None,
    )
    .await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("role=\"alert\""));
    for field in ["comment", "author_email"] {
        assert!(
            html.contains(&format!("aria-describedby=\"{field}-error\""))
                && html.contains(&format!("id=\"{field}-error\"")),
            "{field}: {html}"
        );
    }
    assert!(!html.contains("id=\"author_name-error\""));
    // What was typed comes back, escaped.
    assert!(
        html.contains("value=\"&#60;i&#62;Ann&#60;/i&#62;\""),
        "{html}"
    );
    assert!(html.contains("value=\"not an address\""));
    assert!(html.contains("2 things need"));
    // The summary links each error to its field, in the form's words.
    assert!(html.contains("href=\"#author_email\""), "{html}");
    assert!(
        html.contains("href=\"#comment\">Comment: Please write your suggestion.</a>"),
        "{html}"
    );
    assert_eq!(feedback_total(&app).await, 0);
}

async fn session_feedback_is_sent_from_the_round_s_page_inside_its_window_only(app: TestApp) {
    let held = id_of(&app.held_round(json!({})).await);
    let long_past = id_of(&app.round("2019-01-17", json!({})).await);

    let response = post_form(
        &app,
        &format!("/rounds/{held}/feedback"),
        &[("rating", "4"), ("comment", "Useful")],
        Some(&app.address),
        None,
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/rounds/{held}/feedback/sent").as_str()
    );
    let summary = app
        .get_ok(&format!("/api/v1/rounds/{held}/feedback/summary"))
        .await;
    assert_eq!(summary["count"], 1, "{summary}");

    let response = post_form(
        &app,
        &format!("/rounds/{long_past}/feedback"),
        &[("rating", "4")],
        Some(&app.address),
        None,
    )
    .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("past its session feedback window"), "{html}");

    let response = post_form(
        &app,
        &format!("/rounds/{held}/feedback"),
        &[("rating", "9")],
        Some(&app.address),
        None,
    )
    .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("aria-describedby=\"rating-error\""), "{html}");
    // The form again, as the round's page had it: its title, where it goes and the way back.
    assert!(html.contains("<h1>Rate this round</h1>"), "{html}");
    assert!(
        html.contains(&format!("action=\"/rounds/{held}/feedback\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("<a href=\"/rounds/{held}\">Back to the round</a>")),
        "{html}"
    );
    assert_eq!(feedback_total(&app).await, 1);
}

async fn a_script_in_the_description_comes_out_inert(app: TestApp) {
    let response = app
        .patch(
            "/api/v1/series",
            &json!({"description": "## About\n\n<script>alert('x')</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(2)> **bold**"}),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let (_, html) = page(&app, "/").await;

    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(!html.contains("onerror"), "{html}");
    assert!(html.contains("<strong>bold</strong>"));
    assert!(html.contains("<h2>About</h2>"));
}

async fn pages_are_kept_in_the_read_cache_until_what_they_show_changes(app: TestApp) {
    let id = id_of(
        &app.round("2019-05-23", json!({"title": "SWOT Analysis"}))
            .await,
    );
    let path = format!("/rounds/{id}");
    let response = app.client.get(app.url(&path)).send().await.unwrap();
    let etag = response.headers()[header::ETAG].clone();
    let not_modified = app
        .client
        .get(app.url(&path))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);

    // An outcome is on the round's page: recording one changes it.
    app.create(
        &format!("/api/v1/rounds/{id}/outcomes"),
        json!({"kind": "decision", "text": "Adopt the SWOT findings"}),
    )
    .await;
    let changed = app
        .client
        .get(app.url(&path))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()[header::ETAG], etag);
    assert!(changed
        .text()
        .await
        .unwrap()
        .contains("Adopt the SWOT findings"));

    // And the series' page follows the series.
    let (headers, _) = page(&app, "/").await;
    app.patch("/api/v1/series", &json!({"name": "LHS Rounds at Baystate"}))
        .await;
    let (after, html) = page(&app, "/").await;
    assert_ne!(headers[header::ETAG], after[header::ETAG]);
    assert!(html.contains("<h1>LHS Rounds at Baystate</h1>"));

    // Gzip when asked, from the same kept answer.
    let gzipped = app
        .client
        .get(app.url("/"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()[header::CONTENT_ENCODING], "gzip");
}

async fn pages_refuse_framing_and_the_fragment_is_framed_only_by_the_embed_origins(app: TestApp) {
    app.round("2031-01-16", json!({"title": "Framed"})).await;
    let (headers, html) = page(&app, "/embed/upcoming").await;
    assert!(html.contains("Framed"));
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "no origin configured: {policy}"
    );
    // The API keeps its own policy.
    let api = app
        .client
        .get(app.url("/api/v1/series"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.headers()[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(api.headers()[header::REFERRER_POLICY], "no-referrer");

    let backend = app.backend();
    let Some(embedding) = spawn_app_with(backend, |settings| {
        settings.embed_origins =
            "https://www.baystatehealth.org, https://intranet.example.org".to_owned();
    })
    .await
    else {
        return;
    };
    let (headers, _) = page(&embedding, "/embed/upcoming").await;
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.contains(
            "frame-ancestors https://www.baystatehealth.org https://intranet.example.org"
        ),
        "{policy}"
    );
    let (headers, _) = page(&embedding, "/").await;
    assert!(headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    let Some(api_only) = spawn_app_with(backend, |settings| settings.site = false).await else {
        return;
    };
    for path in ["/", "/rounds/1", "/embed/upcoming"] {
        let response = api_only
            .client
            .get(api_only.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "LHS_SITE=off: {path}");
    }
    assert_eq!(api_only.get("/api/v1/series").await.status(), 200);
}

async fn the_stylesheet_is_fingerprinted_and_cached_immutably(app: TestApp) {
    let (_, html) = page(&app, "/").await;
    let href = html
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        href.starts_with("/assets/site-") && href.ends_with(".css"),
        "{href}"
    );

    let response = app.client.get(app.url(&href)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let etag = response.headers()[header::ETAG].clone();
    let css = response.text().await.unwrap();
    assert!(css.contains("@media print"));
    assert!(
        !css.contains("@import") && !css.contains("url("),
        "nothing from elsewhere"
    );
    let again = app
        .client
        .get(app.url(&href))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let other = app
        .client
        .get(app.url("/assets/site-0000.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

async fn an_unknown_round_is_a_page_that_says_so(app: TestApp) {
    for path in ["/rounds/999", "/rounds/abc"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(response.text().await.unwrap().contains("Not found"));
    }
}

async fn a_round_s_page_shows_its_initiatives_run_charts_as_soon_as_a_measure_is_added(
    app: TestApp,
) {
    let round = id_of(
        &app.round("2019-04-25", json!({"title": "Patient comments"}))
            .await,
    );
    let initiative = id_of(
        &crate::initiatives::initiative(&app, "Using patient comments to improve care", json!({}))
            .await,
    );
    let linked = app
        .put(
            &format!("/api/v1/initiatives/{initiative}/rounds/{round}"),
            &json!({"purpose": "introduce"}),
        )
        .await;
    assert!(linked.status().is_success(), "{}", linked.status());
    let path = format!("/rounds/{round}");
    let (before, html) = page(&app, &path).await;
    assert!(html.contains("Using patient comments to improve care"));
    assert!(!html.contains("run-chart.svg"));

    // A measure is not a schedule table of old: its trigger (the pages' migration) moves the
    // revision, so the kept page is not served again.
    let measure = app
        .create(
            &format!("/api/v1/initiatives/{initiative}/measures"),
            json!({"name": "Comments answered within 14 days", "type": "process",
                   "data_type": "continuous", "frequency": "month",
                   "improvement_direction": "increase"}),
        )
        .await;
    let measure = id_of(&measure);
    let (after, html) = page(&app, &path).await;

    assert_ne!(before[header::ETAG], after[header::ETAG]);
    assert!(
        html.contains(&format!(
            "<img src=\"/api/v1/measures/{measure}/run-chart.svg\" alt=\"Run chart of Comments answered within 14 days\""
        )),
        "{html}"
    );
    let chart = app
        .client
        .get(app.url(&format!("/api/v1/measures/{measure}/run-chart.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(chart.status(), 200, "the picture the page shows is public");
}

/// A round from `start` to `end` minutes from now, and its check-in code.
async fn round_with_code(app: &TestApp, start: i64, end: i64) -> (i32, String) {
    let at = |minutes: i64| {
        (chrono::Utc::now() + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let round = app
        .create(
            "/api/v1/rounds",
            json!({
                "starts_at": at(start),
                "ends_at": at(end),
                "location": "BMC – MassMutual 5",
                "title": "Learning from <variation>",
            }),
        )
        .await;
    let id = id_of(&round);
    let code = app
        .get_ok(&format!("/api/v1/rounds/{id}/checkin-code"))
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, code)
}

/// Jane Doe checks in to `round` from its check-in page, with `nonce` and `code`.
async fn check_in_jane(app: &TestApp, round: i32, nonce: &str, code: &str) -> reqwest::Response {
    post_form(
        app,
        &format!("/checkin/{round}"),
        &[
            ("nonce", nonce),
            ("code", code),
            ("full_name", "Jane Doe"),
            ("email", "jane.doe@example.org"),
            ("profession", "physician"),
        ],
        Some(&app.address),
        None,
    )
    .await
}

/// The value of the hidden `nonce` field of a check-in page.
fn nonce_of(html: &str) -> String {
    let start = html.find(r#"name="nonce" value=""#).expect("a nonce field")
        + r#"name="nonce" value=""#.len();
    html[start..].split('"').next().expect("a nonce").to_owned()
}

async fn attendance_of(app: &TestApp, round: i32) -> Value {
    app.get_ok(&format!("/api/v1/rounds/{round}/attendance"))
        .await
}

async fn the_check_in_page_from_the_qr_url_checks_in_once_however_often_it_is_sent(app: TestApp) {
    let (round, code) = round_with_code(&app, -10, 50).await;
    let qr = app
        .get_ok(&format!("/api/v1/rounds/{round}/checkin-code"))
        .await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = qr
        .split_once(&app.address)
        .map(|(_, p)| p.to_owned())
        .unwrap();
    assert_eq!(path, format!("/checkin/{round}?code={code}"));

    let (headers, html) = page(&app, &path).await;
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(html.contains(r#"id="code" name="code""#));
    assert!(
        html.contains(&format!(r#"value="{code}""#)),
        "the code from the URL"
    );
    assert!(
        html.contains("Learning from &#60;variation&#62;"),
        "escaped title"
    );
    for field in ["full_name", "email", "profession", "code"] {
        assert!(
            html.contains(&format!(r#"<label for="{field}">"#)),
            "{field} has a label"
        );
    }
    assert_eq!(html.matches("<button").count(), 1, "one button");
    let nonce = nonce_of(&html);
    assert_eq!(nonce.len(), 32);
    let (_, again) = page(&app, &path).await;
    assert_ne!(
        nonce_of(&again),
        nonce,
        "each load of the page makes its own nonce"
    );

    // Its one script is this service's, fingerprinted and cached immutably.
    let script = html
        .split(r#"<script src=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        script.starts_with("/assets/checkin-") && script.ends_with(".js"),
        "{script}"
    );
    let served = app.client.get(app.url(&script)).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(served.text().await.unwrap().contains("localStorage"));

    let first = check_in_jane(&app, round, &nonce, &code).await;
    assert_eq!(first.status(), 303);
    let location = first.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.starts_with(&format!("/checkin/{round}/done?as=new")),
        "{location}"
    );
    // The same submit again (a flaky connection): the same check-in, not a second one.
    let second = check_in_jane(&app, round, &nonce, &code).await;
    assert_eq!(second.status(), 303);
    let again = second.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        again.starts_with(&format!("/checkin/{round}/done?as=again")),
        "{again}"
    );
    // The page loaded again (another nonce), by the same person: still one record.
    let other = nonce_of(&page(&app, &path).await.1);
    let third = check_in_jane(&app, round, &other, &code).await;
    assert!(third.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .contains("as=again"));

    let records = attendance_of(&app, round).await;
    assert_eq!(records["total"], 1, "{records}");
    assert_eq!(records["items"][0]["nonce"], nonce.as_str());
    assert_eq!(records["items"][0]["method"], "code");

    let (_, done) = page(&app, &location).await;
    assert!(done.contains("You are checked in"), "{done}");
    let (_, done_again) = page(&app, &again).await;
    assert!(done_again.contains("You are already checked in"));
    for html in [&done, &done_again] {
        assert!(!html.contains("jane.doe@example.org") && !html.contains("Jane Doe"));
    }
    // Nor does the round's public page name who came.
    let (_, round_page) = page(&app, &format!("/rounds/{round}")).await;
    assert!(!round_page.contains("jane.doe@example.org") && !round_page.contains("Jane Doe"));
}

async fn the_check_in_page_says_plainly_why_it_takes_no_check_in(app: TestApp) {
    // A wrong code: the form again, the error tied to the code field, nothing recorded.
    let (open, _) = round_with_code(&app, -10, 50).await;
    let (_, html) = page(&app, &format!("/checkin/{open}?code=NOPE99")).await;
    let response = check_in_jane(&app, open, &nonce_of(&html), "NOPE99").await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"aria-describedby="code-error""#), "{html}");
    assert!(html.contains("not the code of this round"));
    assert!(
        html.contains(r#"value="Jane Doe""#),
        "what was typed is kept"
    );
    assert_eq!(attendance_of(&app, open).await["total"], 0);

    // Missing fields: each error beside its field.
    let response = post_form(
        &app,
        &format!("/checkin/{open}"),
        &[
            ("nonce", "n-1"),
            ("code", "NOPE99"),
            ("email", "not an address"),
        ],
        Some(&app.address),
        None,
    )
    .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    for field in ["full_name", "email", "profession"] {
        assert!(
            html.contains(&format!(r#"aria-describedby="{field}-error""#)),
            "{field}: {html}"
        );
    }

    // Not open yet, and closed: the window's times, in the series' zone.
    let (early, code) = round_with_code(&app, 120, 180).await;
    let (_, html) = page(&app, &format!("/checkin/{early}?code={code}")).await;
    assert!(html.contains("Check-in is not open yet"), "{html}");
    assert!(html.contains("(America/New_York)") && html.contains("opens on"));
    assert!(
        !html.contains("<form"),
        "no form while it takes no check-in"
    );
    let (late, code) = round_with_code(&app, -300, -240).await;
    let (_, html) = page(&app, &format!("/checkin/{late}?code={code}")).await;
    assert!(html.contains("Check-in is closed"), "{html}");
    assert!(html.contains("was open from"));
    // Sent anyway (a page left open): 409, in the same words.
    let response = check_in_jane(&app, late, "n-late", &code).await;
    assert_eq!(response.status(), 409);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Check-in is closed"));

    // Cancelled.
    let (cancelled, code) = round_with_code(&app, -10, 50).await;
    let response = app
        .patch(
            &format!("/api/v1/rounds/{cancelled}"),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (_, html) = page(&app, &format!("/checkin/{cancelled}?code={code}")).await;
    assert!(html.contains("This round was cancelled"), "{html}");
    let response = check_in_jane(&app, cancelled, "n-cancelled", &code).await;
    assert_eq!(response.status(), 409);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("This round was cancelled"));
    for round in [late, cancelled] {
        assert_eq!(attendance_of(&app, round).await["total"], 0);
    }

    // No such round.
    for path in ["/checkin/99999?code=AAAAAA", "/checkin/abc"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

async fn check_ins_from_another_site_are_refused_and_nothing_is_recorded(app: TestApp) {
    let (round, code) = round_with_code(&app, -10, 50).await;
    let form = [
        ("nonce", "n-evil"),
        ("code", code.as_str()),
        ("full_name", "Jane Doe"),
        ("email", "jane.doe@example.org"),
        ("profession", "physician"),
    ];
    for (origin, referer) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("https://evil.example/page")),
        (None, None),
    ] {
        let response = post_form(&app, &format!("/checkin/{round}"), &form, origin, referer).await;
        assert_eq!(response.status(), 403, "{origin:?} {referer:?}");
    }
    assert_eq!(attendance_of(&app, round).await["total"], 0);
}

async fn without_public_reads_the_check_in_page_names_no_round_and_still_checks_in(app: TestApp) {
    let Some(private) = spawn_app_with(app.backend(), |s| s.public_read = false).await else {
        panic!("the backend of this test is available");
    };
    let (round, code) = round_with_code(&private, -10, 50).await;
    let path = format!("/checkin/{round}?code={code}");
    let (_, html) = page(&private, &path).await;
    assert!(
        !html.contains("variation"),
        "the round's title is not shown: {html}"
    );
    let response = check_in_jane(&private, round, &nonce_of(&html), &code).await;
    assert_eq!(response.status(), 303);
    assert_eq!(attendance_of(&private, round).await["total"], 1);
}

async fn a_round_s_page_says_its_disclosure_statement_or_plainly_that_there_is_none(app: TestApp) {
    // A series that designates credit: its rounds' statements can be published.
    let series = app
        .patch(
            "/api/v1/series",
            &json!({"credit_type": "ama_pra_category_1"}),
        )
        .await;
    assert_eq!(series.status(), 200);
    let speaker = app.speaker("Tara Lagu", &["MD", "MPH"]).await;
    let round = id_of(
        &app.round(
            "2027-03-04",
            json!({"title": "Patient comments", "speakers": [{"speaker_id": speaker}]}),
        )
        .await,
    );
    let path = format!("/rounds/{round}");
    let (headers, html) = page(&app, &path).await;
    assert!(
        html.contains("No disclosure statement has been published for this round yet."),
        "{html}"
    );
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();

    // Her disclosure on file (nothing to disclose), the statement published: the page shows
    // it at once.
    let disclosed = app
        .put(
            &format!("/api/v1/speakers/{speaker}/disclosure"),
            &json!({"attested_at": "2026-06-15T14:00:00Z", "no_relationships": true}),
        )
        .await;
    assert!(
        disclosed.status().is_success(),
        "{}",
        disclosed.text().await.unwrap()
    );
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
    let response = app
        .client
        .get(app.url(&path))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "publishing makes a new page");
    let html = unescape(&response.text().await.unwrap());
    assert!(
        html.contains(
            "Tara Lagu, MD, MPH (presenter) has no relevant financial relationships with \
             ineligible companies."
        ),
        "{html}"
    );
    assert!(html.contains("Published "));
    assert!(!html.contains("No disclosure statement has been published"));
}
