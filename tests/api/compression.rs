//! Compression: gzip and brotli for clients that accept them, the identity answer for the
//! others and for small answers, `Vary: Accept-Encoding`, and ETags of their own that
//! conditional requests understand, on cached reads, other answers, the document, the
//! calendars and the Swagger UI files.

use std::io::Read;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::TestApp;

on_both_backends!(
    a_cached_list_is_compressed_as_the_client_prefers_with_etags_of_its_own,
    if_none_match_works_with_the_tag_of_either_coding,
    if_match_accepts_the_tag_of_a_compressed_answer,
    small_answers_are_sent_as_they_are_but_still_vary,
    answers_made_per_request_and_the_calendars_are_compressed_too,
    the_document_and_the_swagger_ui_files_are_served_compressed,
);

/// The answer to `GET path` with `Accept-Encoding: accept` (none when `None`) and the extra
/// headers, with the admin's token.
async fn get_with(
    app: &TestApp,
    path: &str,
    accept: Option<&str>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .request(Method::GET, app.url(path))
        .bearer_auth(app.admin_token.as_deref().unwrap());
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

fn varies_on_encoding(headers: &HeaderMap) -> bool {
    headers.get_all("vary").iter().any(|value| {
        value
            .to_str()
            .unwrap()
            .split(',')
            .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding"))
    })
}

/// The body of an answer, decoded as its `Content-Encoding` says.
fn decoded(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    match encoding {
        None => plain.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut plain)
                .unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut plain)
                .unwrap();
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    plain
}

/// Status, headers and decoded body of `GET path` in each of identity, gzip and brotli;
/// asserts that each coding was the one used and that the bodies are the same.
async fn in_every_coding(app: &TestApp, path: &str) -> Vec<(HeaderMap, Vec<u8>)> {
    let mut answers = Vec::new();
    for (accept, expected) in [
        (None, None),
        (Some("gzip"), Some("gzip")),
        (Some("gzip, deflate, br, zstd"), Some("br")),
    ] {
        let response = get_with(app, path, accept, &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let encoding = header(&headers, "content-encoding");
        assert_eq!(encoding.as_deref(), expected, "{path} with {accept:?}");
        let raw = response.bytes().await.unwrap();
        assert_eq!(
            header(&headers, "content-length").map(|l| l.parse::<usize>().unwrap()),
            Some(raw.len()),
            "{path}: the length is the encoded body's"
        );
        assert!(
            varies_on_encoding(&headers),
            "{path}: Vary: Accept-Encoding"
        );
        answers.push((headers, decoded(encoding.as_deref(), &raw)));
    }
    let identity = &answers[0].1;
    assert!(identity.len() >= 1024, "{path} is large enough to compress");
    for (headers, body) in &answers[1..] {
        assert_eq!(body, identity, "{path}: {headers:?}");
    }
    answers
}

/// Enough rounds for a list of well over a kilobyte.
async fn a_full_schedule(app: &TestApp) {
    for day in 10..22 {
        app.round(
            &format!("2031-03-{day}"),
            json!({"title": format!("Sepsis bundle compliance, part {day}")}),
        )
        .await;
    }
}

async fn a_cached_list_is_compressed_as_the_client_prefers_with_etags_of_its_own(app: TestApp) {
    a_full_schedule(&app).await;
    let path = "/api/v1/rounds?limit=50";

    let answers = in_every_coding(&app, path).await;

    let tags: Vec<String> = answers
        .iter()
        .map(|(headers, _)| header(headers, "etag").unwrap())
        .collect();
    let identity = tags[0].trim_end_matches('"');
    assert_eq!(tags[1], format!("{identity}-gzip\""));
    assert_eq!(tags[2], format!("{identity}-br\""));
    let list: Value = serde_json::from_slice(&answers[2].1).unwrap();
    assert_eq!(list["total"], 12);
    // Read again, from the cache: the same compressed bytes.
    let again = get_with(&app, path, Some("br"), &[]).await;
    assert_eq!(header(again.headers(), "etag").unwrap(), tags[2]);
    assert_eq!(
        decoded(Some("br"), &again.bytes().await.unwrap()),
        answers[0].1
    );
}

async fn if_none_match_works_with_the_tag_of_either_coding(app: TestApp) {
    a_full_schedule(&app).await;
    let path = "/api/v1/rounds?limit=50";
    let answers = in_every_coding(&app, path).await;
    let identity = header(&answers[0].0, "etag").unwrap();
    let gzip = header(&answers[1].0, "etag").unwrap();
    let brotli = header(&answers[2].0, "etag").unwrap();

    for (accept, sent, answered) in [
        (Some("gzip"), &gzip, &gzip),
        (Some("br"), &brotli, &brotli),
        (None, &identity, &identity),
        // A client that kept another coding's copy: it is current, and the 304 names the
        // tag a 200 to this request would have had.
        (Some("gzip"), &identity, &gzip),
        (None, &brotli, &identity),
    ] {
        let response = get_with(&app, path, accept, &[("if-none-match", sent)]).await;
        assert_eq!(response.status(), 304, "{accept:?} {sent}");
        assert_eq!(header(response.headers(), "etag").as_ref(), Some(answered));
        assert!(varies_on_encoding(response.headers()));
        assert!(response.bytes().await.unwrap().is_empty());
    }

    // A change: the old tags, of either coding, no longer match.
    app.round("2031-04-01", json!({})).await;
    let response = get_with(&app, path, Some("gzip"), &[("if-none-match", &gzip)]).await;
    assert_eq!(response.status(), 200);
    assert_ne!(header(response.headers(), "etag").unwrap(), gzip);
}

async fn if_match_accepts_the_tag_of_a_compressed_answer(app: TestApp) {
    let long = "A review of sepsis bundle compliance across the medical ICUs. ".repeat(20);
    let round = app
        .round("2031-05-05", json!({"description": long.clone()}))
        .await;
    let path = format!("/api/v1/rounds/{}", round["id"]);
    let read = get_with(&app, &path, Some("gzip"), &[]).await;
    assert_eq!(
        header(read.headers(), "content-encoding").as_deref(),
        Some("gzip")
    );
    let tag = header(read.headers(), "etag").unwrap();
    assert!(tag.ends_with("-gzip\""), "{tag}");

    let patched = app
        .client
        .patch(app.url(&path))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("if-match", &tag)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"location": "Room 5"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{:?}", patched.text().await);

    // The tag is now stale, whichever coding it names.
    let stale = app
        .client
        .patch(app.url(&path))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("if-match", &tag)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"location": "Room 6"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
}

async fn small_answers_are_sent_as_they_are_but_still_vary(app: TestApp) {
    let department = app
        .create("/api/v1/departments", json!({"name": "Nephrology"}))
        .await;
    let path = format!("/api/v1/departments/{}", department["id"]);
    let response = get_with(&app, &path, Some("gzip, br"), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "content-encoding"), None);
    assert!(varies_on_encoding(response.headers()));
    let tag = header(response.headers(), "etag").unwrap();
    assert!(!tag.contains("-gzip") && !tag.contains("-br"), "{tag}");
    let body = response.bytes().await.unwrap();
    assert!(body.len() < 1024);
    serde_json::from_slice::<Value>(&body).unwrap();

    let probe = get_with(&app, "/healthz", Some("gzip"), &[]).await;
    assert_eq!(header(probe.headers(), "content-encoding"), None);
    assert!(varies_on_encoding(probe.headers()));
    // A small problem answer too.
    let missing = get_with(&app, "/api/v1/rounds/999999", Some("gzip"), &[]).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(missing.headers(), "content-encoding"), None);
}

async fn answers_made_per_request_and_the_calendars_are_compressed_too(app: TestApp) {
    a_full_schedule(&app).await;
    // The change log (a read outside the schedule's cache) and the metrics (text).
    in_every_coding(&app, "/api/v1/audit?limit=50").await;
    // (Each scrape counts the one before: the bodies differ, so each is checked on its own.)
    for (accept, coding) in [("gzip", "gzip"), ("br, gzip", "br")] {
        let metrics = get_with(&app, "/metrics", Some(accept), &[]).await;
        assert_eq!(metrics.status(), 200);
        assert_eq!(
            header(metrics.headers(), "content-encoding").as_deref(),
            Some(coding)
        );
        assert!(varies_on_encoding(metrics.headers()));
        let text = decoded(Some(coding), &metrics.bytes().await.unwrap());
        assert!(String::from_utf8_lossy(&text).contains("lhs_build_info"));
    }
    // The calendar of every round.
    let calendars = in_every_coding(&app, "/api/v1/rounds.ics").await;
    assert!(String::from_utf8_lossy(&calendars[1].1).starts_with("BEGIN:VCALENDAR"));
    assert_eq!(
        header(&calendars[1].0, "content-type").as_deref(),
        Some("text/calendar; charset=utf-8")
    );
    // A write's answer, compressed as it is sent.
    let long = "Grand rounds on antimicrobial stewardship and sepsis outcomes. ".repeat(30);
    let created = app
        .client
        .post(app.url("/api/v1/rounds"))
        .bearer_auth(app.admin_token.as_deref().unwrap())
        .header("accept-encoding", "gzip")
        .json(&json!({
            "starts_at": "2031-06-01T12:00:00Z",
            "ends_at": "2031-06-01T13:00:00Z",
            "location": "BMC",
            "description": long,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        header(created.headers(), "content-encoding").as_deref(),
        Some("gzip")
    );
    let etag = header(created.headers(), "etag").unwrap();
    assert!(etag.ends_with("-gzip\""), "{etag}");
    let body: Value =
        serde_json::from_slice(&decoded(Some("gzip"), &created.bytes().await.unwrap())).unwrap();
    assert_eq!(body["description"], long.trim());
}

async fn the_document_and_the_swagger_ui_files_are_served_compressed(app: TestApp) {
    let document = in_every_coding(&app, "/api/v1/openapi.json").await;
    let parsed: Value = serde_json::from_slice(&document[1].1).unwrap();
    assert!(parsed["paths"].is_object());

    let files = [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-standalone-preset.js",
    ];
    for file in files {
        let sizes: Vec<usize> = {
            let mut sizes = Vec::new();
            for accept in [None, Some("gzip"), Some("br")] {
                let response = get_with(&app, file, accept, &[]).await;
                sizes.push(response.bytes().await.unwrap().len());
            }
            sizes
        };
        let answers = in_every_coding(&app, file).await;
        assert!(
            sizes[1] < sizes[0] / 2 && sizes[2] < sizes[0] / 2,
            "{file}: {sizes:?}"
        );
        // The files have validators: a revalidation is 304, in either coding.
        let gzip_tag = header(&answers[1].0, "etag").unwrap();
        let response = get_with(&app, file, Some("gzip"), &[("if-none-match", &gzip_tag)]).await;
        assert_eq!(response.status(), 304, "{file}");
        assert_eq!(header(response.headers(), "etag").unwrap(), gzip_tag);
    }
    let bundle = get_with(&app, "/docs/swagger-ui-bundle.js", Some("br"), &[]).await;
    let media_type = header(bundle.headers(), "content-type").unwrap();
    assert!(media_type.ends_with("/javascript"), "{media_type}");
    // The page itself, and what is not there.
    let page = get_with(&app, "/docs/", Some("gzip"), &[]).await;
    assert_eq!(page.status(), 200);
    let page = decoded(
        header(page.headers(), "content-encoding").as_deref(),
        &page.bytes().await.unwrap(),
    );
    assert!(String::from_utf8_lossy(&page).contains("swagger-ui"));
    let missing = get_with(&app, "/docs/nothing-here.js", Some("gzip"), &[]).await;
    assert_eq!(missing.status(), 404);
}
