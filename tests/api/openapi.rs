use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend};

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = lhs_rounds::app::openapi::to_json(&lhs_rounds::app::openapi::document()) + "\n";

    assert!(
        generated == COMMITTED,
        "openapi/openapi.json is out of date with the code; regenerate it with\n\n    \
         cargo run -- openapi > openapi/openapi.json\n"
    );
}

#[tokio::test]
async fn the_server_serves_the_same_document() {
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");

    let served = app.get("/api/v1/openapi.json").await.text().await.unwrap();

    assert!(
        served + "\n" == COMMITTED,
        "GET /api/v1/openapi.json differs from openapi/openapi.json"
    );
}

#[tokio::test]
async fn the_interactive_docs_are_served_offline_from_the_binary() {
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let redirect = no_redirects.get(app.url("/docs")).send().await.unwrap();
    let page = app.get("/docs/").await;
    let config = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();

    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/docs/");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    assert!(config.contains("/api/v1/openapi.json"), "{config}");
}

#[tokio::test]
async fn lhs_docs_off_turns_the_docs_page_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.docs = false)
        .await
        .expect("SQLite is always available");

    assert_problem(app.get("/docs/").await, 404).await;
    assert_problem(app.get("/docs").await, 404).await;
    assert_eq!(
        app.get("/api/v1/openapi.json").await.status(),
        200,
        "the document stays"
    );
}

/// Every `$ref` names a component of the document (a query parameter's type that is not
/// registered in `app::openapi` would otherwise leave one dangling).
#[test]
fn every_reference_in_the_document_names_a_component() {
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let document = lhs_rounds::app::openapi::document();
    let mut found = Vec::new();
    refs(&document, &mut found);

    let dangling: Vec<&String> = found
        .iter()
        .filter(|r| document.pointer(r.trim_start_matches('#')).is_none())
        .collect();

    assert!(found.len() > 50, "the document refers to its components");
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
}

/// What the OWASP ruleset for Spectral asks most often, checked here too so that `cargo test`
/// catches it without npm (`scripts/contract-test` runs the ruleset itself): a `format` on every
/// integer (int32 or int64), and the CORS headers the service sends declared on every answer.
#[test]
fn every_integer_has_a_format_and_every_answer_declares_the_cors_headers() {
    fn integers_without_format(value: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                let integer = match map.get("type") {
                    Some(serde_json::Value::String(t)) => t == "integer",
                    Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
                    _ => false,
                };
                let format = map.get("format").and_then(serde_json::Value::as_str);
                if integer && !matches!(format, Some("int32" | "int64")) {
                    out.push(at.to_owned());
                }
                for (key, child) in map {
                    if key != "example" && key != "examples" {
                        integers_without_format(child, &format!("{at}/{key}"), out);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    integers_without_format(item, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let document = lhs_rounds::app::openapi::document();
    let mut missing = Vec::new();
    integers_without_format(&document, "#", &mut missing);
    assert!(
        missing.is_empty(),
        "integers without a format: {missing:#?}"
    );

    let mut answers = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, answer) in operation["responses"].as_object().unwrap() {
                answers += 1;
                for header in [
                    "Access-Control-Allow-Origin",
                    "Access-Control-Expose-Headers",
                ] {
                    let declared = &answer["headers"][header];
                    let declared = match declared["$ref"].as_str() {
                        Some(reference) => document.pointer(&reference[1..]).unwrap(),
                        None => declared,
                    };
                    assert!(
                        declared["schema"]["type"] == "string",
                        "{method} {path} {status} does not declare {header}"
                    );
                }
            }
        }
    }
    assert!(answers > 200, "every answer of every operation: {answers}");
}
