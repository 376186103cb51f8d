use crate::helpers::{spawn_app, Backend};

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = lhs_rounds::openapi::document()
        .to_pretty_json()
        .expect("JSON")
        + "\n";

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
