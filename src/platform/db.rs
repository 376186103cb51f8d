//! The database: backend selection from the URL, the connection pool, migrations, write
//! transactions, and the few places where the two backends need different SQL.
//!
//! One binary serves both backends: [`DbConnection`] is a diesel `MultiConnection` over
//! PostgreSQL and SQLite, chosen at run time by the scheme of `DATABASE_URL`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::platform::error::ApiError;
use crate::platform::telemetry;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a SQLite writer waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// How long a request waits for a pooled connection. Below 5 s, so that while the database is
/// unreachable a request fails with 503 within 5 s rather than hanging.
const POOL_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest pause between two attempts to reach PostgreSQL at start-up.
const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Run on every PostgreSQL connection. Statements are prepared once per connection and their SQL
/// text already differs by which filters are given, so a plan made for the parameters' values
/// buys nothing, while PostgreSQL's default plans again, at every execution, a statement whose
/// generic plan it estimates dearer.
const PG_SESSION_SETUP: &str = "SET plan_cache_mode = force_generic_plan";
/// Any fixed number: replicas starting together take turns to migrate.
const MIGRATION_LOCK_KEY: i64 = 0x4c48_5352_6f75_6e64;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    // SQLite last: the derive tries backends in order, and SQLite accepts any string as a path.
    Sqlite(diesel::SqliteConnection),
}

/// Runs a diesel expression on the backend's own connection type. A `MultiConnection` never
/// caches prepared statements, so hot queries go through this to be parsed and planned once per
/// connection instead of once per request. The expression is written once and compiled for
/// both backends.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::platform::db::DbConnection::Postgresql($c) => $body,
            $crate::platform::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A parsed `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    /// What the backend's driver is given: the URL for PostgreSQL, the file path for SQLite.
    pub target: String,
}

impl DatabaseUrl {
    /// Where the database is, for messages: PostgreSQL's host, port and database without the
    /// user or password; SQLite's file.
    pub fn location(&self) -> String {
        match self.backend {
            Backend::Sqlite => self.target.clone(),
            Backend::Postgres => {
                let rest = self.target.split_once("://").map_or("", |(_, rest)| rest);
                let rest = rest.split(['?', '#']).next().unwrap_or_default();
                let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
                let host = authority
                    .rsplit_once('@')
                    .map_or(authority, |(_, host)| host);
                let host = if host.is_empty() {
                    "the local socket"
                } else {
                    host
                };
                format!("{host}/{database}")
            }
        }
    }

    /// `text` with the URL's password, if it has one, replaced by `***`: driver messages may
    /// repeat parts of the connection string, and secrets never reach a log.
    pub fn redact(&self, text: &str) -> String {
        let password = self
            .target
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|authority| authority.rsplit_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password)
            .filter(|password| !password.is_empty());
        match password {
            Some(password) => text.replace(password, "***"),
            None => text.to_owned(),
        }
    }

    pub fn parse(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return DatabaseUrl {
                backend: Backend::Postgres,
                target: url.to_owned(),
            };
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        DatabaseUrl {
            backend: Backend::Sqlite,
            target: path.to_owned(),
        }
    }
}

/// Opens connections and reports connection errors as the driver gave them (diesel's derived
/// `establish` for a `MultiConnection` replaces them with a generic message).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        ConnectionManager { url }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.url.backend {
            Backend::Postgres => {
                let mut conn = diesel::PgConnection::establish(&self.url.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(PG_SESSION_SETUP)
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Postgresql(conn))
            }
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(&self.url.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                // Per connection: SQLite forgets these on every open.
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub type Pool = r2d2::Pool<ConnectionManager>;

/// The pool handed to handlers, with helpers that run persistence functions off the async
/// workers (`web::block`, keeping the request id for their log lines).
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: DatabaseUrl,
    /// SQLite writers of this process queue here rather than in SQLite's busy handler, which
    /// polls with sleeps of up to 100 ms and let some writers wait seconds under load. Writers
    /// of other processes are still kept apart by SQLite's own lock and `busy_timeout`.
    sqlite_writers: Arc<Mutex<()>>,
}

impl Database {
    /// Connects (one attempt), prepares SQLite's journal, applies migrations and builds the
    /// pool. Every failure is reported with the driver's own words.
    pub fn open(database_url: &str, pool_size: u32) -> Result<Database, String> {
        Database::open_within(database_url, pool_size, Duration::ZERO)
    }

    /// [`Database::open`], retrying with backoff for up to `patience` while PostgreSQL cannot be
    /// reached (it may be starting next to this service). The error names the host and the
    /// driver's cause, never the password.
    pub fn open_within(
        database_url: &str,
        pool_size: u32,
        patience: Duration,
    ) -> Result<Database, String> {
        let url = DatabaseUrl::parse(database_url);
        let manager = ConnectionManager::new(url.clone());
        let mut conn = connect_patiently(&manager, &url, patience)?;
        if url.backend == Backend::Sqlite {
            // WAL is a property of the file: set once, before any pooled connection exists.
            conn.batch_execute("PRAGMA journal_mode = WAL;")
                .map_err(|e| format!("cannot switch SQLite to WAL: {e}"))?;
        }
        run_migrations(&mut conn)?;
        drop(conn);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            // r2d2 would otherwise ping the database on every checkout: one extra round trip
            // per request. Broken connections are still detected by `has_broken`.
            .test_on_check_out(false)
            .connection_timeout(POOL_CHECKOUT_TIMEOUT)
            .build(manager)
            .map_err(|e| format!("cannot build the connection pool: {e}"))?;
        Ok(Database {
            pool,
            url,
            sqlite_writers: Arc::new(Mutex::new(())),
        })
    }

    pub fn backend(&self) -> Backend {
        self.url.backend
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A connection for code that is already off the async workers (CLI, tests).
    pub fn connection(&self) -> Result<r2d2::PooledConnection<ConnectionManager>, ApiError> {
        checkout(&self.pool)
    }

    /// Runs `f` on a pooled connection, on this thread (for threads of the service's own, such
    /// as the webhook worker): a connection the database dropped is reported as 503 and leaves
    /// the pool, as with [`Database::call`].
    pub fn run<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        run_on(&self.pool, f)
    }

    /// The pool's connections: how many may be open, are checked out, and are idle.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            self.pool.max_size(),
            state.connections - state.idle_connections,
            state.idle_connections,
        )
    }

    /// Runs `f` on the blocking thread pool in no transaction of ours: a read of one statement,
    /// or work that takes its own transactions, such as numbering the change log.
    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        telemetry::block(move || run_on(&pool, f)).await?
    }

    /// Runs a read in one read-only snapshot on the blocking thread pool (see
    /// [`read_transaction`]).
    pub async fn read_snapshot<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        telemetry::block(move || run_on(&pool, |conn| read_transaction(conn, f))).await?
    }

    /// Runs `bring_up_to_date` (which takes its own transactions), then a read in one read-only
    /// snapshot, on one connection in one hop to the blocking thread pool: for reads of what
    /// must first be brought up to date, such as the change log, which is numbered first.
    pub async fn read_snapshot_after<T, F>(
        &self,
        bring_up_to_date: fn(&mut DbConnection) -> Result<usize, ApiError>,
        f: F,
    ) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        telemetry::block(move || {
            run_on(&pool, |conn| {
                bring_up_to_date(conn)?;
                read_transaction(conn, f)
            })
        })
        .await?
    }

    /// Runs a write in one transaction on the blocking thread pool: all of it or none of it.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let writers = (self.backend() == Backend::Sqlite).then(|| self.sqlite_writers.clone());
        let pool = self.pool.clone();
        telemetry::block(move || {
            // A poisoned lock only means another writer panicked; its transaction rolled back.
            let _turn = writers
                .as_ref()
                .map(|lock| lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
            run_on(&pool, |conn| write_transaction(conn, f))
        })
        .await?
    }
}

/// A pooled connection, counted in the pool's metrics (waiting, checkout time).
fn checkout(pool: &Pool) -> Result<r2d2::PooledConnection<ConnectionManager>, ApiError> {
    let _wait = telemetry::PoolWait::enter();
    Ok(pool.get()?)
}

/// Runs `f` on a pooled connection. Not retried when the database dropped the connection: a
/// write's commit may have happened before its answer was lost, and the client is better placed
/// to retry (503 says so).
fn run_on<T>(
    pool: &Pool,
    f: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut conn = checkout(pool)?;
    let result = f(&mut conn);
    settle(&mut conn, result)
}

/// A failure on a connection the database dropped (a restart, a failover) is a 503 worth
/// retrying, not a defect, and that connection must leave the pool: it is marked broken, and
/// r2d2 discards broken connections when they are returned. The check (a ping) runs on
/// failures only.
fn settle<T>(conn: &mut DbConnection, result: Result<T, ApiError>) -> Result<T, ApiError> {
    match result {
        Err(ApiError::Internal(cause) | ApiError::Unavailable(cause)) if conn.ping().is_err() => {
            on_backend!(&mut *conn, |c| {
                AnsiTransactionManager::transaction_manager_status_mut(c).set_in_error()
            });
            Err(ApiError::Unavailable(cause))
        }
        other => other,
    }
}

/// The first connection, retried with exponential backoff (a quarter of a second, doubling, at
/// most [`CONNECT_BACKOFF_MAX`]) for up to `patience` on PostgreSQL. SQLite is a local file: its
/// errors do not heal by waiting.
fn connect_patiently(
    manager: &ConnectionManager,
    url: &DatabaseUrl,
    patience: Duration,
) -> Result<DbConnection, String> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match manager.connect() {
            Ok(conn) => return Ok(conn),
            Err(error) => url.redact(error.to_string().trim()),
        };
        let left = patience.saturating_sub(started.elapsed());
        if url.backend == Backend::Sqlite || left.is_zero() {
            let waited = if attempts > 1 {
                format!(
                    " after {attempts} attempts in {} s",
                    started.elapsed().as_secs()
                )
            } else {
                String::new()
            };
            return Err(format!(
                "cannot reach the {:?} database at {}{waited}: {error}",
                url.backend,
                url.location()
            ));
        }
        let nap = pause.min(left);
        log::warn!(
            "cannot reach the {:?} database at {} yet ({error}); retrying in {} ms",
            url.backend,
            url.location(),
            nap.as_millis()
        );
        std::thread::sleep(nap);
        pause = (pause * 2).min(CONNECT_BACKOFF_MAX);
    }
}

/// Runs `f` in a transaction that is committed only if it returns `Ok`.
///
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`: a deferred transaction that reads
/// first and writes later fails at once with "database is locked" when another writer got in
/// between, while an immediate one waits its turn through `busy_timeout`.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Postgresql(_) => conn.transaction(f),
        DbConnection::Sqlite(_) => in_transaction(conn, "BEGIN IMMEDIATE", f),
    }
}

/// Runs `f` in one read-only snapshot: everything it reads comes from the same state of the
/// database (PostgreSQL `REPEATABLE READ READ ONLY`; on SQLite in WAL mode, a read transaction).
pub fn read_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let begin = match conn {
        DbConnection::Postgresql(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        DbConnection::Sqlite(_) => "BEGIN DEFERRED",
    };
    in_transaction(conn, begin, f)
}

/// A transaction begun with `begin`, on the backend's own transaction manager.
fn in_transaction<T, E, F>(conn: &mut DbConnection, begin: &str, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    on_backend!(&mut *conn, |c| {
        AnsiTransactionManager::begin_transaction_sql(c, begin)
    })?;
    match f(conn) {
        Ok(value) => match on_backend!(&mut *conn, |c| {
            AnsiTransactionManager::commit_transaction(c)
        }) {
            Ok(()) => Ok(value),
            Err(commit_error) => {
                // Leave the connection usable; the commit error is what the caller needs.
                let _ = on_backend!(&mut *conn, |c| {
                    AnsiTransactionManager::rollback_transaction(c)
                });
                Err(commit_error.into())
            }
        },
        Err(error) => {
            on_backend!(
                &mut *conn,
                |c| AnsiTransactionManager::rollback_transaction(c)
            )?;
            Err(error)
        }
    }
}

/// Applies pending migrations; returns the versions applied.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, String> {
    let applied = match conn {
        DbConnection::Postgresql(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .map_err(|e| format!("cannot take the migration lock: {e}"))?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect());
            let unlock =
                pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
            let applied = result.map_err(|e| format!("migration failed: {e}"))?;
            unlock.map_err(|e| format!("cannot release the migration lock: {e}"))?;
            applied
        }
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| format!("migration failed: {e}"))?,
    };
    Ok(applied)
}

/// The versions of migrations not yet applied.
pub fn pending_migrations(conn: &mut DbConnection) -> Result<Vec<String>, String> {
    let pending = match conn {
        DbConnection::Postgresql(pg) => pg.pending_migrations(POSTGRES_MIGRATIONS).map(|list| {
            list.iter()
                .map(|m| m.name().version().to_string())
                .collect()
        }),
        DbConnection::Sqlite(sqlite) => sqlite.pending_migrations(SQLITE_MIGRATIONS).map(|list| {
            list.iter()
                .map(|m| m.name().version().to_string())
                .collect()
        }),
    };
    pending.map_err(|e| format!("cannot list pending migrations: {e}"))
}

/// Reverts every migration (used by the migration round-trip test).
pub fn revert_all_migrations(conn: &mut DbConnection) -> Result<(), String> {
    let result = match conn {
        DbConnection::Postgresql(pg) => pg.revert_all_migrations(POSTGRES_MIGRATIONS).map(drop),
        DbConnection::Sqlite(sqlite) => sqlite.revert_all_migrations(SQLITE_MIGRATIONS).map(drop),
    };
    result.map_err(|e| format!("revert failed: {e}"))
}

/// `SELECT 1`, for readiness checks.
pub fn ping(conn: &mut DbConnection) -> Result<(), ApiError> {
    conn.ping()?;
    Ok(())
}

/// The time to stamp on a write: UTC at the precision both backends keep (microseconds).
pub fn now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

/// 409 while others still refer to a record: `what` says what it is to them ("speaker 3 is
/// still on"), `counts` who they are, `then` what to do first.
pub fn refuse_while_used(what: &str, counts: &[(i64, &str)], then: &str) -> Result<(), ApiError> {
    if counts.iter().all(|(n, _)| *n == 0) {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "{what} {}; {then}",
        describe_counts(counts)
    )))
}

/// "2 speakers and 1 round", for conflict messages; zero counts are left out.
pub fn describe_counts(counts: &[(i64, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    parts.join(" and ")
}

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken literally
/// (used with `ESCAPE '\'`). Case is folded by the caller on both sides.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
