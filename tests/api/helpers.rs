//! Spawning the real application on port 0 with a fresh database, on either backend.

use std::net::TcpListener;
use std::sync::OnceLock;

use actix_web::web;
use diesel::{Connection, RunQueryDsl};
use lhs_rounds::app::startup::{Application, ServeOptions};
use lhs_rounds::platform::auth::{Auth, Role};
use lhs_rounds::platform::config::Settings;
use lhs_rounds::platform::db::Database;
use reqwest::{Method, Response};
use serde_json::{json, Value};

#[path = "../common/postgres.rs"]
mod postgres;
use postgres::Cluster;

#[path = "../common/receiver.rs"]
mod receiver;
pub use receiver::Receiver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The connections of a test app's pool.
pub const POOL_SIZE: u32 = 4;

/// The HS256 secret of test apps.
pub const SECRET: &str = "a-test-secret-of-at-least-thirty-two-bytes";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: Database,
    pub database_url: String,
    /// Sent by `get`, `post`... : an admin's token, so that tests of other rules can do anything.
    pub admin_token: Option<String>,
    pub auth: web::Data<Auth>,
    /// Where the app keeps materials' files: beside a SQLite file, or a directory of the test's
    /// own on PostgreSQL (which has no default).
    pub materials_dir: std::path::PathBuf,
    _materials: Option<tempfile::TempDir>,
    /// Last, so that the database goes after the pool that uses it.
    _scratch: Option<Scratch>,
}

/// What a fresh database leaves behind, removed when this is dropped: the SQLite file's
/// directory, or the PostgreSQL database (dropped so that a suite of hundreds of databases does
/// not fill a small CI disk).
pub enum Scratch {
    Dir {
        _dir: tempfile::TempDir,
    },
    PostgresDatabase {
        admin_url: &'static str,
        name: String,
    },
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::PostgresDatabase { admin_url, name } = self {
            // FORCE ends the sessions of the app's pool, which outlives the test body by a moment.
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

/// A fresh database on `backend`: a new SQLite file, or a new database in the test cluster.
/// `None` when PostgreSQL is missing outside CI (after saying so loudly); in CI that panics.
pub fn fresh_database(backend: Backend) -> Option<(String, Scratch)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = dir.path().join("test.db").to_string_lossy().into_owned();
            Some((url, Scratch::Dir { _dir: dir }))
        }
        Backend::Postgres => match postgres_cluster() {
            Ok(admin_url) => {
                let name = format!("lhs_test_{}", unique_suffix());
                let mut admin = diesel::PgConnection::establish(admin_url)
                    .expect("connect to the test PostgreSQL cluster");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create a test database");
                let url = postgres::database_url(admin_url, &name);
                Some((url, Scratch::PostgresDatabase { admin_url, name }))
            }
            Err(reason) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL is required in CI but unavailable: {reason}");
                }
                eprintln!(
                    "\n!!!! SKIPPING the PostgreSQL half of this test: {reason}\n\
                     !!!! (install the postgresql package or set LHS_TEST_DATABASE_URL; in CI this fails)\n"
                );
                None
            }
        },
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// A test app whose settings (tokens, docs, public reading...) `configure` changes first;
/// they start with the HS256 [`SECRET`].
pub async fn spawn_app_with(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    spawn_app_with_options(backend, configure, |_| {}).await
}

/// [`spawn_app_with`], and then `options` changes what the settings gave (a webhook resolver
/// of the test's own, say).
pub async fn spawn_app_with_options(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
    options: impl FnOnce(&mut ServeOptions),
) -> Option<TestApp> {
    let (database_url, scratch) = fresh_database(backend)?;
    Some(spawn_on(database_url, Some(scratch), configure, options).await)
}

/// Another replica of `app`: a second application serving the same database.
pub async fn spawn_replica(app: &TestApp) -> TestApp {
    spawn_on(app.database_url.clone(), None, |_| {}, |_| {}).await
}

/// [`spawn_replica`] with settings of its own.
pub async fn spawn_replica_with(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_on(app.database_url.clone(), None, configure, |_| {}).await
}

async fn spawn_on(
    database_url: String,
    scratch: Option<Scratch>,
    configure: impl FnOnce(&mut Settings),
    change_options: impl FnOnce(&mut ServeOptions),
) -> TestApp {
    let mut settings = Settings::for_database(database_url.clone());
    settings.jwt_secret = Some(SECRET.to_owned());
    // PostgreSQL has no default place for files: a directory of the test's own.
    let materials = database_url
        .starts_with("postgres")
        .then(|| tempfile::tempdir().expect("a temporary directory"));
    settings.materials_url = materials
        .as_ref()
        .map(|dir| dir.path().to_string_lossy().into_owned());
    configure(&mut settings);
    let materials_dir = match &settings.materials_url {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(format!("{database_url}.materials")),
    };
    let database =
        Database::open(&settings.database_url, POOL_SIZE).expect("open the test database");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let auth = web::Data::new(Auth::from_settings(&settings).expect("token settings"));
    let admin_token = auth
        .mint(
            "admin@example.org",
            &[Role::Admin],
            std::time::Duration::from_secs(3600),
        )
        .ok();
    let mut options = ServeOptions::from_settings(&settings, auth.clone()).expect("valid settings");
    options.workers = Some(1);
    change_options(&mut options);
    let app = Application::with_listener(listener, database.clone(), options)
        .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        database,
        database_url,
        admin_token,
        auth,
        materials_dir,
        _materials: materials,
        _scratch: scratch,
    }
}

impl TestApp {
    /// Which backend this app runs on.
    pub fn backend(&self) -> Backend {
        if self.database_url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        self.request_as(self.admin_token.as_deref(), method, path, body)
            .await
    }

    /// A request with `token` as the bearer token, or none.
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("the server answers")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PUT, path, Some(body)).await
    }

    /// A token for `subject` with `roles`, signed with the app's secret, valid for an hour.
    pub fn token(&self, subject: &str, roles: &[Role]) -> String {
        self.auth
            .mint(subject, roles, std::time::Duration::from_secs(3600))
            .expect("the app has a shared secret")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        let mut request = self.client.patch(self.url(path));
        if let Some(token) = &self.admin_token {
            request = request.bearer_auth(token);
        }
        request
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path, None).await
    }

    /// GETs `path` and returns the JSON body, asserting 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// POSTs `body` and returns the created record, asserting 201.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let response = self.post(path, &body).await;
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert_eq!(status, 201, "POST {path} {body} answered {text}");
        serde_json::from_str(&text).expect("a JSON body")
    }

    pub async fn department(&self, name: &str) -> i32 {
        id_of(
            &self
                .create("/api/v1/departments", json!({ "name": name }))
                .await,
        )
    }

    pub async fn speaker(&self, full_name: &str, credentials: &[&str]) -> i32 {
        id_of(
            &self
                .create(
                    "/api/v1/speakers",
                    json!({ "full_name": full_name, "credentials": credentials }),
                )
                .await,
        )
    }

    /// A round at noon UTC on `date` (YYYY-MM-DD), merged with `extra` fields.
    pub async fn round(&self, date: &str, extra: Value) -> Value {
        let mut body = json!({
            "starts_at": format!("{date}T12:00:00Z"),
            "ends_at": format!("{date}T13:00:00Z"),
            "location": "BMC – MassMutual 5",
        });
        json_patch::merge(&mut body, &extra);
        self.create("/api/v1/rounds", body).await
    }
}

impl TestApp {
    /// A round held from two hours ago to an hour ago, merged with `extra`: one that takes
    /// session feedback (its window runs from its start to 30 days after its end).
    pub async fn held_round(&self, extra: Value) -> Value {
        let at = |hours: i64| {
            (chrono::Utc::now() - chrono::Duration::hours(hours))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let mut body = json!({
            "starts_at": at(2),
            "ends_at": at(1),
            "location": "BMC – MassMutual 5",
        });
        json_patch::merge(&mut body, &extra);
        self.create("/api/v1/rounds", body).await
    }
}

pub fn id_of(record: &Value) -> i32 {
    record["id"].as_i64().expect("an integer id") as i32
}

/// Asserts a problem+json answer with `status` and returns its body.
pub async fn assert_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], status);
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// The fields named by a 422 or 400 problem, in order.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("an errors array")
        .iter()
        .map(|e| e["field"].as_str().expect("a field name").to_owned())
        .collect()
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

/// The admin URL of the PostgreSQL used by tests: `LHS_TEST_DATABASE_URL`, or a throwaway
/// cluster started once per test run from the installed server binaries.
fn postgres_cluster() -> Result<&'static str, String> {
    static CLUSTER: OnceLock<Result<String, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| match std::env::var("LHS_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => Cluster::start("test").map(|cluster| cluster.admin_url),
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The service's log lines, captured in this process (the API tests run the application
/// in-process): those written for requests whose id starts with [`logs::WATCHED_PREFIX`], and
/// every line of the token checks (`lhs_rounds::platform::auth`), at debug level.
pub mod logs {
    use std::sync::{Mutex, OnceLock};

    /// Requests sent with an `X-Request-Id` starting with this have their log lines kept.
    pub const WATCHED_PREFIX: &str = "logged-";

    /// (the request id, if any; the line: level, target, message, key-values).
    static LINES: Mutex<Vec<(Option<String>, String)>> = Mutex::new(Vec::new());

    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::Level::Debug
        }

        fn log(&self, record: &log::Record<'_>) {
            let id = lhs_rounds::platform::telemetry::current_request_id().map(|id| id.to_string());
            let watched = id
                .as_deref()
                .is_some_and(|id| id.starts_with(WATCHED_PREFIX));
            if !watched && !record.target().starts_with("lhs_rounds::platform::auth") {
                return;
            }
            struct Pairs(String);
            impl<'kvs> log::kv::VisitSource<'kvs> for Pairs {
                fn visit_pair(
                    &mut self,
                    key: log::kv::Key<'kvs>,
                    value: log::kv::Value<'kvs>,
                ) -> Result<(), log::kv::Error> {
                    self.0.push_str(&format!(" {key}={value}"));
                    Ok(())
                }
            }
            let mut pairs = Pairs(String::new());
            let _ = record.key_values().visit(&mut pairs);
            let line = format!(
                "{} {} {}{}",
                record.level(),
                record.target(),
                record.args(),
                pairs.0
            );
            LINES.lock().unwrap().push((id, line));
        }

        fn flush(&self) {}
    }

    /// Installs the capture (once per test process). Fails if another logger came first: then
    /// nothing could be checked.
    pub fn capture() {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            log::set_boxed_logger(Box::new(Capture))
                .expect("no other logger is installed in the API tests");
            log::set_max_level(log::LevelFilter::Debug);
        });
    }

    /// The lines logged for the request `id`.
    pub fn of_request(id: &str) -> Vec<String> {
        LINES
            .lock()
            .unwrap()
            .iter()
            .filter(|(line_id, _)| line_id.as_deref() == Some(id))
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// Every line kept so far.
    pub fn all() -> Vec<String> {
        LINES
            .lock()
            .unwrap()
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }
}
