//! API tests: each one runs against the real application, once on SQLite and once on
//! PostgreSQL, with a fresh database.

// A panic is how a test fails: unwrapping here is the point, unlike in the service.
#![allow(clippy::unwrap_used)]

/// Generates, for each test function `name(app: TestApp)`, a module `name` with the tests
/// `on_sqlite` and `on_postgres`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$test(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    if let Some(app) =
                        crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await
                    {
                        super::$test(app).await;
                    }
                }
            }
        )*
    };
}

mod architecture;
mod attendance;
mod auth;
mod authorization;
mod cache;
mod calendar;
mod changes;
mod compression;
mod confirmations;
mod departments;
mod disclosures;
mod errors;
mod feedback;
mod helpers;
mod http;
mod initiatives;
mod materials;
mod measures;
mod oidc;
mod openapi;
mod operations;
mod outcomes;
mod pages;
mod planning;
mod recurrence;
mod rounds;
mod speakers;
mod storage;
mod webhooks;
