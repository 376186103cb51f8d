//! HTTP semantics for browsers, caches and retrying clients: CORS, HEAD, ETags and conditional
//! requests, idempotent POST, rate limits.

use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, id_of, spawn_app_with, spawn_replica, TestApp};

on_both_backends!(
    every_read_has_an_etag_and_a_matching_if_none_match_is_304,
    a_list_etag_changes_when_the_schedule_does,
    a_round_etag_changes_when_a_speaker_it_shows_is_renamed,
    feedback_reads_have_validators_of_their_own,
    public_reads_must_revalidate_and_token_reads_are_private,
    head_answers_like_get_without_a_body,
    a_stale_if_match_is_412_and_changes_nothing,
    a_current_if_match_writes_and_answers_the_new_etag,
    if_match_follows_rfc_9110,
    forty_concurrent_patches_with_one_if_match_give_one_success,
    a_post_retried_with_its_idempotency_key_is_answered_once,
    the_same_idempotency_key_for_another_request_is_422,
    bad_idempotency_keys_are_400,
    ten_concurrent_posts_with_one_key_create_one_record,
    anonymous_feedback_past_the_limit_is_429_with_retry_after,
    a_room_of_a_hundred_behind_one_proxy_gets_through_by_default,
    refused_tokens_past_the_limit_are_429,
    a_client_cannot_pick_a_fresh_budget_behind_a_proxy,
    a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed,
);

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> reqwest::Response {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let mut request = app.client.request(method, app.url(path)).headers(map);
    if let Some(token) = &app.admin_token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

async fn etag_of(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    header(&response, "etag").expect("an ETag")
}

async fn every_read_has_an_etag_and_a_matching_if_none_match_is_304(app: TestApp) {
    let round = id_of(
        &app.round("2019-04-25", json!({"title": "Patient comments"}))
            .await,
    );
    for path in [
        format!("/api/v1/rounds/{round}"),
        "/api/v1/rounds".to_owned(),
        "/api/v1/speakers".to_owned(),
        "/api/v1/departments".to_owned(),
        format!("/api/v1/rounds/{round}/feedback/summary"),
        "/api/v1/feedback".to_owned(),
    ] {
        let etag = etag_of(&app, &path).await;
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{path}: a strong tag, {etag}"
        );

        let revalidated = send(&app, Method::GET, &path, &[("if-none-match", &etag)], None).await;

        assert_eq!(revalidated.status(), 304, "{path}");
        assert_eq!(header(&revalidated, "etag").as_deref(), Some(etag.as_str()));
        assert!(revalidated.bytes().await.unwrap().is_empty());
        let other = send(
            &app,
            Method::GET,
            &path,
            &[("if-none-match", "\"other\"")],
            None,
        )
        .await;
        assert_eq!(other.status(), 200, "{path}");
    }
}

async fn a_list_etag_changes_when_the_schedule_does(app: TestApp) {
    app.round("2027-01-21", json!({})).await;
    let before = etag_of(&app, "/api/v1/rounds?when=upcoming").await;
    assert_eq!(
        etag_of(&app, "/api/v1/rounds?when=upcoming").await,
        before,
        "stable while nothing changes"
    );
    assert_ne!(
        etag_of(&app, "/api/v1/rounds?when=upcoming&limit=5").await,
        before,
        "another query, another tag"
    );

    app.round("2027-02-18", json!({})).await;

    let after = etag_of(&app, "/api/v1/rounds?when=upcoming").await;
    assert_ne!(after, before);
    let response = send(
        &app,
        Method::GET,
        "/api/v1/rounds?when=upcoming",
        &[("if-none-match", &before)],
        None,
    )
    .await;
    assert_eq!(response.status(), 200, "a 304 never hides a change");
}

async fn a_round_etag_changes_when_a_speaker_it_shows_is_renamed(app: TestApp) {
    let speaker = app.speaker("Tara Lagu", &["MD"]).await;
    let round = app
        .round("2019-04-25", json!({"speakers": [{"speaker_id": speaker}]}))
        .await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let before = etag_of(&app, &path).await;

    app.patch(
        &format!("/api/v1/speakers/{speaker}"),
        &json!({"credentials": ["MD", "MPH"]}),
    )
    .await;

    let response = send(
        &app,
        Method::GET,
        &path,
        &[("if-none-match", &before)],
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["speakers"][0]["display_name"], "Tara Lagu, MD, MPH");
}

async fn feedback_reads_have_validators_of_their_own(app: TestApp) {
    let round = id_of(&app.held_round(json!({})).await);
    let summary = format!("/api/v1/rounds/{round}/feedback/summary");
    let list = "/api/v1/feedback";
    let (summary_before, list_before) = (etag_of(&app, &summary).await, etag_of(&app, list).await);

    app.create(
        "/api/v1/feedback",
        json!({"kind": "session_feedback", "round_id": round, "rating": 4}),
    )
    .await;

    assert_ne!(etag_of(&app, &summary).await, summary_before);
    assert_ne!(etag_of(&app, list).await, list_before);
}

async fn public_reads_must_revalidate_and_token_reads_are_private(app: TestApp) {
    let anonymous = app
        .request_as(None, Method::GET, "/api/v1/rounds", None)
        .await;
    let with_token = app.get("/api/v1/rounds").await;

    assert_eq!(
        header(&anonymous, "cache-control").as_deref(),
        Some("no-cache")
    );
    assert_eq!(
        header(&with_token, "cache-control").as_deref(),
        Some("private, no-cache")
    );
    for response in [&anonymous, &with_token] {
        let vary = header(response, "vary").unwrap_or_default();
        assert!(vary.contains("Authorization"), "{vary}");
    }
    assert_ne!(
        header(&anonymous, "etag"),
        header(&with_token, "etag"),
        "organizers see other fields: another representation"
    );
}

async fn head_answers_like_get_without_a_body(app: TestApp) {
    let round = id_of(&app.round("2019-04-25", json!({})).await);
    for path in [
        format!("/api/v1/rounds/{round}"),
        "/api/v1/rounds?when=past".to_owned(),
        "/healthz".to_owned(),
        "/api/v1/rounds/424242".to_owned(),
    ] {
        let get = app.get(&path).await;
        let head = app.request(Method::HEAD, &path, None).await;

        assert_eq!(head.status(), get.status(), "{path}");
        for name in ["etag", "content-type", "cache-control", "content-length"] {
            assert_eq!(header(&head, name), header(&get, name), "{path}: {name}");
        }
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
}

async fn a_stale_if_match_is_412_and_changes_nothing(app: TestApp) {
    let round = app.round("2019-04-25", json!({"title": "First"})).await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let stale = etag_of(&app, &path).await;
    app.patch(&path, &json!({"title": "Second"})).await;
    let current = etag_of(&app, &path).await;

    let patched = send(
        &app,
        Method::PATCH,
        &path,
        &[("if-match", &stale)],
        Some(&json!({"title": "Overwritten"})),
    )
    .await;
    let deleted = send(&app, Method::DELETE, &path, &[("if-match", &stale)], None).await;

    assert_eq!(header(&patched, "etag").as_deref(), Some(current.as_str()));
    let problem = assert_problem(patched, 412).await;
    assert!(
        problem["detail"].as_str().unwrap().contains(&current),
        "the problem names the current ETag: {problem}"
    );
    assert_problem(deleted, 412).await;
    assert_eq!(app.get_ok(&path).await["title"], "Second");
}

async fn a_current_if_match_writes_and_answers_the_new_etag(app: TestApp) {
    let department = app.department("Clinical Informatics").await;
    let path = format!("/api/v1/departments/{department}");
    let current = etag_of(&app, &path).await;

    let replaced = send(
        &app,
        Method::PUT,
        &path,
        &[("if-match", &current)],
        Some(&json!({"name": "Clinical Informatics", "abbreviation": "CI"})),
    )
    .await;

    assert_eq!(replaced.status(), 200);
    let new = header(&replaced, "etag").expect("the new ETag");
    assert_ne!(new, current);
    assert_eq!(etag_of(&app, &path).await, new);
    let deleted = send(&app, Method::DELETE, &path, &[("if-match", &new)], None).await;
    assert_eq!(deleted.status(), 204);
}

async fn if_match_follows_rfc_9110(app: TestApp) {
    let department = app.department("Clinical Informatics").await;
    let path = format!("/api/v1/departments/{department}");
    let current = etag_of(&app, &path).await;
    let body = json!({"description": "x"});
    let patch = |tag: String| {
        let app = &app;
        let path = path.clone();
        let body = body.clone();
        async move {
            send(
                app,
                Method::PATCH,
                &path,
                &[("if-match", &tag)],
                Some(&body),
            )
            .await
        }
    };

    assert_problem(patch(format!("W/{current}")).await, 412).await;
    assert_problem(patch("not-a-tag".to_owned()).await, 400).await;
    assert_eq!(patch(format!("\"x\", {current}")).await.status(), 200);
    assert_eq!(patch("*".to_owned()).await.status(), 200);
    assert_problem(
        send(
            &app,
            Method::DELETE,
            "/api/v1/departments/424242",
            &[("if-match", "*")],
            None,
        )
        .await,
        412,
    )
    .await;

    let strict = spawn_app_with(app.backend(), |s| s.require_if_match = true)
        .await
        .unwrap();
    let id = strict.department("Operations Excellence").await;
    let problem = assert_problem(
        strict
            .patch(
                &format!("/api/v1/departments/{id}"),
                &json!({"description": "x"}),
            )
            .await,
        428,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("If-Match"));
}

async fn forty_concurrent_patches_with_one_if_match_give_one_success(app: TestApp) {
    let round = app.round("2019-04-25", json!({"title": "Start"})).await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let etag = etag_of(&app, &path).await;
    let app = Arc::new(app);

    let patches: Vec<_> = (0..40)
        .map(|i| {
            let (app, path, etag) = (app.clone(), path.clone(), etag.clone());
            tokio::spawn(async move {
                send(
                    &app,
                    Method::PATCH,
                    &path,
                    &[("if-match", &etag)],
                    Some(&json!({"title": format!("Edit {i}")})),
                )
                .await
                .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for patch in patches {
        statuses.push(patch.await.unwrap());
    }

    let successes = statuses.iter().filter(|s| s.is_success()).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((successes, refused), (1, 39), "{statuses:?}");
}

async fn a_post_retried_with_its_idempotency_key_is_answered_once(app: TestApp) {
    let body = json!({"kind": "topic_suggestion", "comment": "Falls prevention on medical wards"});
    let key = [("idempotency-key", "7f4c1a2e-retry-after-timeout")];

    let first = send(&app, Method::POST, "/api/v1/feedback", &key, Some(&body)).await;
    let retry = send(&app, Method::POST, "/api/v1/feedback", &key, Some(&body)).await;

    assert_eq!(first.status(), 201);
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&first, "idempotency-replayed"), None);
    assert_eq!(
        header(&retry, "idempotency-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header(&first, "location"), header(&retry, "location"));
    assert_eq!(header(&first, "etag"), header(&retry, "etag"));
    let (first, retry): (Value, Value) = (first.json().await.unwrap(), retry.json().await.unwrap());
    assert_eq!(first, retry);
    assert_eq!(app.get_ok("/api/v1/feedback").await["total"], 1);
}

async fn the_same_idempotency_key_for_another_request_is_422(app: TestApp) {
    let key = [("idempotency-key", "one-key")];
    let first = json!({"kind": "general", "comment": "Thank you"});
    let other = json!({"kind": "general", "comment": "Something else"});
    assert_eq!(
        send(&app, Method::POST, "/api/v1/feedback", &key, Some(&first))
            .await
            .status(),
        201
    );

    let reused = send(&app, Method::POST, "/api/v1/feedback", &key, Some(&other)).await;

    assert_eq!(
        error_fields(&assert_problem(reused, 422).await),
        vec!["Idempotency-Key"]
    );
    assert_eq!(app.get_ok("/api/v1/feedback").await["total"], 1);
}

async fn bad_idempotency_keys_are_400(app: TestApp) {
    let body = json!({"name": "Clinical Informatics"});
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let response = send(
            &app,
            Method::POST,
            "/api/v1/departments",
            &[("idempotency-key", key)],
            Some(&body),
        )
        .await;
        assert_problem(response, 400).await;
    }
    assert_eq!(app.get_ok("/api/v1/departments").await["total"], 0);
}

/// Half of them through a second replica: the database decides, not one process's memory.
async fn ten_concurrent_posts_with_one_key_create_one_record(app: TestApp) {
    let replica = Arc::new(spawn_replica(&app).await);
    let app = Arc::new(app);
    let posts: Vec<_> = (0..10)
        .map(|n| {
            let app = if n % 2 == 0 {
                app.clone()
            } else {
                replica.clone()
            };
            tokio::spawn(async move {
                send(
                    &app,
                    Method::POST,
                    "/api/v1/speakers",
                    &[("idempotency-key", "the-same-speaker")],
                    Some(&json!({"full_name": "Mihaela Stefan", "credentials": ["MD", "PhD"]})),
                )
                .await
            })
        })
        .collect();
    let mut locations = Vec::new();
    for post in posts {
        let response = post.await.unwrap();
        assert_eq!(response.status(), 201);
        locations.push(header(&response, "location"));
    }

    assert_eq!(app.get_ok("/api/v1/speakers").await["total"], 1);
    locations.dedup();
    assert_eq!(locations.len(), 1, "every answer names the one record");
}

async fn anonymous_feedback_past_the_limit_is_429_with_retry_after(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| s.feedback_rate_limit = "5/minute".into())
        .await
        .unwrap();
    let body = json!({"kind": "general", "comment": "Thank you"});
    for left in (0..5).rev() {
        let response = app
            .request_as(None, Method::POST, "/api/v1/feedback", Some(&body))
            .await;
        assert_eq!(response.status(), 201);
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some("\"feedback\";q=5;w=60")
        );
        let state = header(&response, "ratelimit").unwrap();
        assert!(
            state.starts_with(&format!("\"feedback\";r={left};")),
            "{state}"
        );
    }

    let refused = app
        .request_as(None, Method::POST, "/api/v1/feedback", Some(&body))
        .await;

    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert!(header(&refused, "ratelimit").unwrap().contains("r=0"));
    assert_problem(refused, 429).await;
    let signed = app.post("/api/v1/feedback", &body).await;
    assert_eq!(signed.status(), 201, "a caller with a token is not limited");
    assert_eq!(header(&signed, "ratelimit"), None);
}

async fn a_room_of_a_hundred_behind_one_proxy_gets_through_by_default(app: TestApp) {
    let round = id_of(&app.held_round(json!({})).await);
    let body = json!({"kind": "session_feedback", "rating": 5});
    for person in 0..100 {
        let response = app
            .request_as(
                None,
                Method::POST,
                &format!("/api/v1/rounds/{round}/feedback"),
                Some(&body),
            )
            .await;
        assert_eq!(response.status(), 201, "person {person}");
    }
}

async fn refused_tokens_past_the_limit_are_429(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.auth_failure_rate_limit = "3/minute".into();
        s.trusted_proxies = "127.0.0.1/32".into();
    })
    .await
    .unwrap();
    let guess = |from: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/rounds"))
                .bearer_auth("not-a-token")
                .header("x-forwarded-for", from)
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_problem(guess("10.1.1.1").await, 401).await;
    }

    let refused = guess("10.1.1.1").await;

    assert!(header(&refused, "retry-after").is_some());
    assert_problem(refused, 429).await;
    assert_problem(guess("10.2.2.2").await, 401).await;
    assert_eq!(
        app.get("/api/v1/rounds").await.status(),
        200,
        "a valid token is never limited"
    );
}

async fn a_client_cannot_pick_a_fresh_budget_behind_a_proxy(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.auth_failure_rate_limit = "3/minute".into();
        s.trusted_proxies = "127.0.0.1/32, 10.0.0.0/8".into();
    })
    .await
    .unwrap();
    let guess = |forwarded: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/rounds"))
                .bearer_auth("not-a-token")
                .header("x-forwarded-for", forwarded)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Each way of writing a fresh address into the header gets one budget of 3 between them.
    let ways: [fn(u32) -> String; 5] = [
        // Other addresses of one IPv6 /64.
        |n| format!("2001:db8:5:6::{n:x}"),
        // The same address as IPv4-mapped IPv6 and as IPv4.
        |n| {
            if n % 2 == 0 {
                "203.0.113.9".to_owned()
            } else {
                "::ffff:203.0.113.9".to_owned()
            }
        },
        // A port that changes with every connection.
        |n| format!("198.51.100.4:{}", 40000 + n),
        // Garbage written by the client before an unreadable entry ends the chain.
        |n| format!("192.0.2.{n}, not-an-address"),
        // Whatever the client puts left of what a trusted proxy (10.0.0.7) appended.
        |n| format!("192.0.2.{n}, 198.51.100.77, 10.0.0.7"),
    ];
    for (way, forwarded) in ways.iter().enumerate() {
        for n in 0..3 {
            assert_eq!(guess(forwarded(n)).await, 401, "way {way}, guess {n}");
        }
        for n in 3..6 {
            assert_eq!(guess(forwarded(n)).await, 429, "way {way}, guess {n}");
        }
    }
    // Another client, another budget.
    assert_eq!(guess("2001:db8:5:7::1".to_owned()).await, 401);
}

async fn a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed(app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(app.backend(), |s| {
        s.body_timeout = std::time::Duration::from_secs(1).into();
    })
    .await
    .unwrap();
    let address = app.address.trim_start_matches("http://").to_owned();
    // A body of a declared length, and a chunked one (of no declared end).
    for start in [
        &b"POST /api/v1/feedback HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
           Content-Length: 40\r\n\r\n{\"kind\": "[..],
        &b"POST /api/v1/feedback HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
           Transfer-Encoding: chunked\r\n\r\n9\r\n{\"kind\": \r\n"[..],
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let started = std::time::Instant::now();
        stream.write_all(start).await.unwrap();
        // The rest never comes: the answer must, and then the end of the connection.
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("the server answers and closes the connection")
        .unwrap();
        let elapsed = started.elapsed();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("content-type: application/problem+json"),
            "{answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.contains("\"status\":408"), "{answer}");
        assert!(
            elapsed >= std::time::Duration::from_millis(900),
            "not before the timeout: {elapsed:?}"
        );
    }
    // A body sent in time is read as ever.
    let sent = app
        .request_as(
            None,
            Method::POST,
            "/api/v1/feedback",
            Some(&json!({"kind": "general", "comment": "In time"})),
        )
        .await;
    assert_eq!(sent.status(), 201);
}
