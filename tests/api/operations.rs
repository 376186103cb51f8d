//! What operators see: metrics, request ids, and the headers every answer carries. (Signals,
//! backups and faults need the real binary: see `tests/operations`.)

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, id_of, spawn_app_with, Backend, TestApp};

on_both_backends!(
    metrics_count_requests_by_route_template_never_by_raw_path,
    every_answer_carries_its_request_id_and_the_security_headers,
    a_problem_body_names_the_request_id,
    without_a_token_metrics_answer_only_this_host,
    with_a_token_metrics_need_it_from_anywhere,
);

/// The text of `GET /metrics`, asserting 200 and the Prometheus content type.
async fn scrape(app: &TestApp, token: Option<&str>) -> String {
    let response = app.request_as(token, Method::GET, "/metrics", None).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of the sample `name{labels}` in `text`, where `labels` is the exact label set.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_count_requests_by_route_template_never_by_raw_path(app: TestApp) {
    let round = app.round("2031-03-20", json!({})).await;
    let path = format!("/api/v1/rounds/{}", id_of(&round));
    let series =
        "lhs_http_requests_total{method=\"GET\",route=\"/api/v1/rounds/{id}\",status=\"200\"}";
    // The recorder is one per process, shared by the tests running in it: compare, don't count.
    let before = sample(&scrape(&app, None).await, series).unwrap_or(0.0);
    for _ in 0..3 {
        assert_eq!(app.get(&path).await.status(), 200);
    }
    assert_eq!(app.get("/api/v1/rounds/999999").await.status(), 404);
    let text = scrape(&app, None).await;
    let after = sample(&text, series).expect("the round's route is counted");
    assert!(after >= before + 3.0, "{before} -> {after}");
    assert!(
        text.contains(
            "lhs_http_requests_total{method=\"GET\",route=\"/api/v1/rounds/{id}\",status=\"404\"}"
        ),
        "a 404 on a known route is counted under its template"
    );
    assert!(
        !text.contains(&format!("route=\"{path}\""))
            && !text.contains("route=\"/api/v1/rounds/999999\""),
        "raw paths never become labels"
    );
    assert!(text.contains(
        "lhs_http_request_duration_seconds_bucket{route=\"/api/v1/rounds/{id}\",le=\"+Inf\"}"
    ));
    for family in [
        "lhs_http_requests_in_flight",
        "lhs_db_pool_size",
        "lhs_db_pool_in_use",
        "lhs_db_pool_idle",
        "lhs_db_pool_waiting",
        "lhs_db_pool_checkout_seconds_count",
        "lhs_cache_hits_total",
        "lhs_cache_misses_total",
        "lhs_cache_bytes",
        "lhs_webhook_outbox_depth",
        "lhs_webhook_outbox_oldest_age_seconds",
        "lhs_webhook_delivery_failures_total",
        "lhs_changelog_newest_seq",
        "lhs_changelog_queued",
        "lhs_rate_limit_rejections_total{limit=\"feedback\"}",
        "lhs_database_up",
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(family)),
            "{family} is missing from\n{text}"
        );
    }
    let backend = match app.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert!(
        text.lines().any(|line| line.starts_with("lhs_build_info{")
            && line.contains(&format!("backend=\"{backend}\""))
            && line.contains("version=\"")
            && line.contains("commit=\"")
            && line.ends_with(" 1")),
        "build info names version, commit and backend"
    );
    // The scrape only reads: the round's creation is numbered, or queued for its number.
    let newest = sample(&text, "lhs_changelog_newest_seq").expect("the newest seq");
    let queued = sample(&text, "lhs_changelog_queued").expect("the queued entries");
    assert!(
        newest + queued >= 1.0,
        "the round's creation is in the change log"
    );
}

async fn every_answer_carries_its_request_id_and_the_security_headers(app: TestApp) {
    let chosen = app
        .client
        .get(app.url("/api/v1/rounds"))
        .header("x-request-id", "ward-7:abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), 200);
    assert_eq!(chosen.headers()["x-request-id"], "ward-7:abc_123");
    let too_long = "x".repeat(65);
    for (method, path, header) in [
        (Method::GET, "/healthz", Some(too_long.as_str())),
        (Method::GET, "/api/v1/nowhere", Some("has space")),
        (Method::DELETE, "/api/v1/openapi.json", None),
        (Method::OPTIONS, "/api/v1/rounds", None),
        (Method::HEAD, "/api/v1/speakers", None),
    ] {
        let mut request = app.client.request(method.clone(), app.url(path));
        if let Some(value) = header {
            request = request.header("x-request-id", value);
        }
        let response = request.send().await.unwrap();
        let headers = response.headers();
        let id = headers["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 24, "{method} {path}: a new id replaces a bad one");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            headers["x-content-type-options"], "nosniff",
            "{method} {path}"
        );
        assert_eq!(headers["referrer-policy"], "no-referrer", "{method} {path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{method} {path}"
        );
    }
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let policy = docs.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "Swagger UI runs its own scripts: {policy}"
    );
    assert_eq!(docs.headers()["x-content-type-options"], "nosniff");
}

async fn a_problem_body_names_the_request_id(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/feedback"))
        .header("x-request-id", "trace-me-42")
        .json(&json!({ "kind": "nonsense" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let problem = assert_problem(response, 422).await;
    assert_eq!(problem["request_id"], "trace-me-42");
    let generated = app.get("/api/v1/rounds/0").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let problem: Value = assert_problem(generated, 404).await;
    assert_eq!(problem["request_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token_of_their_own() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.metrics_token = Some("scrape-secret-token".to_owned());
    })
    .await
    .expect("SQLite is always available");
    let missing = app.request_as(None, Method::GET, "/metrics", None).await;
    assert!(missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_problem(missing, 401).await;
    // An API token, even an admin's, is not the metrics token.
    let admin = app.get("/metrics").await;
    assert_problem(admin, 401).await;
    let text = scrape(&app, Some("scrape-secret-token")).await;
    assert!(text.contains("lhs_build_info"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_turned_off_are_not_served() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics = false)
        .await
        .expect("SQLite is always available");
    assert_problem(app.get("/metrics").await, 404).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn without_a_token_metrics_answer_only_this_host(app: TestApp) {
    // From loopback, as a scraper on this host: served.
    scrape(&app, None).await;
    // A proxy on this host relaying another client's request: refused, whatever it trusts.
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-for", "127.0.0.1, 198.51.100.2"),
        ("x-real-ip", "198.51.100.2"),
        ("forwarded", "for=198.51.100.2"),
    ] {
        let relayed = app
            .client
            .get(app.url("/metrics"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(relayed, 403).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("LHS_METRICS_TOKEN"),
            "{problem}"
        );
    }
}

async fn with_a_token_metrics_need_it_from_anywhere(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.metrics_token = Some("a-scrape-token-of-the-compose-file".to_owned());
    })
    .await
    .unwrap();
    // Loopback is not enough once a token is set.
    assert_problem(
        app.request_as(None, Method::GET, "/metrics", None).await,
        401,
    )
    .await;
    assert_problem(
        app.request_as(
            Some("a-scrape-token-of-the-compose-filX"),
            Method::GET,
            "/metrics",
            None,
        )
        .await,
        401,
    )
    .await;
    assert_problem(
        app.request_as(Some("a-scrape-token"), Method::GET, "/metrics", None)
            .await,
        401,
    )
    .await;
    // The token is what counts, relayed or not.
    let relayed = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("a-scrape-token-of-the-compose-file")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), 200);
    let text = scrape(&app, Some("a-scrape-token-of-the-compose-file")).await;
    assert!(text.contains("lhs_build_info"));
}
