//! PostgreSQL's one-statement requests run on the HTTP worker that serves them.
//!
//! [`Database::read`](super::Database::read) runs a read on the blocking pool: the worker hands
//! it to a pool thread and is woken when it is done, two thread wake-ups per request. On an
//! uncached PostgreSQL read, whose statement is one round trip (see `rounds`), perf put a third of
//! the service's CPU in those hand-offs. The requests that are one statement (a round, a page of
//! rounds, the revision that checks a kept answer, a feedback's creation) run here instead,
//! through diesel-async and the same diesel statements, on a connection of the worker's own: the
//! worker's event loop waits on the database's socket as it waits on the client's. Everything
//! else stays on the blocking pool.
//!
//! Each worker has one connection of its own ([`WorkerSetup::for_this_worker`], called by the
//! app factory on the worker's thread): a connection's driver task runs on the runtime that
//! opened it, so a connection shared between workers would hop threads again. The requests a
//! worker serves at once share it, their statements pipelined ([`WorkerConnections`]).
//!
//! The driver (tokio-postgres) reads neither libpq's environment (`PGPASSWORD`...) nor
//! `~/.pgpass`, and this service gives it no TLS connector. So start-up opens one connection
//! with it ([`WorkerSetup::probe`]) and, when that fails where libpq succeeded, keeps them all
//! on the blocking pool and says so in the log.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::connection::InstrumentationEvent;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::{Backend, Database, DatabaseUrl, PG_SESSION_SETUP, POOL_CHECKOUT_TIMEOUT};
use crate::platform::error::ApiError;
use crate::platform::telemetry;

/// How long start-up waits for the probe connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A future that borrows a worker connection for `'c`; not `Send`, like everything on a worker.
pub type OnConnection<'c, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + 'c>>;

/// What every worker's connection is made from: one per process, decided at start-up.
#[derive(Clone)]
pub struct WorkerSetup {
    url: DatabaseUrl,
    observer: StatementObserver,
}

impl WorkerSetup {
    /// Opens one connection with the workers' driver and closes it. `None` (logged) on SQLite,
    /// or when the driver cannot connect where libpq could (see the module's documentation):
    /// then every request keeps the blocking pool.
    pub fn probe(database: &Database) -> Option<WorkerSetup> {
        if database.backend() != Backend::Postgres {
            return None;
        }
        let url = database.url().clone();
        let target = url.target.clone();
        // Start-up may run inside a runtime already (`actix_web::main`), which cannot block on
        // another: the probe gets a thread and a runtime of its own.
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime.block_on(async {
                        match tokio::time::timeout(
                            PROBE_TIMEOUT,
                            AsyncPgConnection::establish(&target),
                        )
                        .await
                        {
                            Ok(Ok(_connection)) => Ok(()),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => {
                                Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))
                            }
                        }
                    })
                })
                .join()
                .unwrap_or_else(|_| Err("the probe thread panicked".to_owned()))
        });
        match outcome {
            Ok(()) => Some(WorkerSetup {
                url,
                observer: database.statement_observer.clone(),
            }),
            Err(why) => {
                log::info!(
                    "PostgreSQL requests all stay on the blocking pool: the workers' driver cannot connect to {} ({})",
                    url.location(),
                    url.redact(&why)
                );
                None
            }
        }
    }

    /// The connection of the worker this runs on. It opens on first use, on this worker's
    /// runtime, and closes when the worker stops.
    pub fn for_this_worker(&self) -> WorkerConnections {
        WorkerConnections(Rc::new(Shared {
            url: self.url.clone(),
            observer: self.observer.clone(),
            current: RefCell::new(None),
            opening: tokio::sync::Mutex::new(()),
        }))
    }
}

/// One worker's connection to PostgreSQL, shared by every request the worker serves at once.
/// Each request's `Ctx` takes a clone: one reference count.
///
/// Shared, not checked out: tokio-postgres pipelines the statements of concurrent requests on
/// one connection (each is its own implicit transaction, with its own `Sync`, so one's error
/// does not touch another's). A request does not wait for the one before it to get its answer
/// back before sending its own statement, and PostgreSQL runs them back to back without waiting
/// for the next. An exclusive checkout made each one wait its turn for the whole round trip;
/// two or four connections per worker instead (and so four or eight backends on two cores)
/// stalled cached reads at saturation for up to a second or more (BENCHMARKS.md).
#[derive(Clone)]
pub struct WorkerConnections(Rc<Shared>);

struct Shared {
    url: DatabaseUrl,
    observer: StatementObserver,
    /// The connection, once open; `None` before the first request and after one broke.
    current: RefCell<Option<Rc<AsyncPgConnection>>>,
    /// Held while a connection opens, so that requests arriving meanwhile wait for it rather
    /// than open their own.
    opening: tokio::sync::Mutex<()>,
}

impl WorkerConnections {
    /// Runs `f` on this worker's connection: a read, or a write that is one statement (atomic
    /// by itself, so without a transaction). As on the blocking pool, a failure on a
    /// connection the database dropped is a 503, not retried (a write may have committed before
    /// its answer was lost), and the next request opens a new connection.
    pub async fn run<T>(
        &self,
        f: impl for<'c> FnOnce(&'c AsyncPgConnection) -> OnConnection<'c, T>,
    ) -> Result<T, ApiError> {
        let conn = self.connection().await?;
        let result = f(&conn).await;
        if let Err(ApiError::Internal(cause) | ApiError::Unavailable(cause)) = &result {
            let alive = diesel::sql_query("SELECT 1")
                .execute(&mut &*conn)
                .await
                .is_ok();
            if !alive {
                let cause = cause.clone();
                self.forget(&conn);
                return Err(ApiError::Unavailable(cause));
            }
        }
        result
    }

    /// The open connection, or a new one within the blocking pool's wait, counted in the same
    /// metrics.
    async fn connection(&self) -> Result<Rc<AsyncPgConnection>, ApiError> {
        let _wait = telemetry::PoolWait::enter();
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        match tokio::time::timeout(POOL_CHECKOUT_TIMEOUT, self.open()).await {
            Ok(opened) => opened,
            Err(_) => Err(ApiError::Unavailable(format!(
                "no database connection could be opened within {} s",
                POOL_CHECKOUT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn current(&self) -> Option<Rc<AsyncPgConnection>> {
        self.0.current.borrow().clone()
    }

    async fn open(&self) -> Result<Rc<AsyncPgConnection>, ApiError> {
        let _opening = self.0.opening.lock().await;
        // Another request may have opened it while this one waited.
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let shared = &self.0;
        let unreachable = |e: &dyn std::fmt::Display| {
            ApiError::Unavailable(format!(
                "cannot reach the database at {}: {}",
                shared.url.location(),
                shared.url.redact(&e.to_string())
            ))
        };
        let mut conn = AsyncPgConnection::establish(&shared.url.target)
            .await
            .map_err(|e| unreachable(&e))?;
        conn.batch_execute(PG_SESSION_SETUP)
            .await
            .map_err(|e| unreachable(&e))?;
        let observer = shared.observer.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                observer.saw(query);
            }
        });
        let conn = Rc::new(conn);
        *shared.current.borrow_mut() = Some(conn.clone());
        Ok(conn)
    }

    /// Drops `broken` unless a newer connection took its place already. Requests still on it
    /// keep it until they end.
    fn forget(&self, broken: &Rc<AsyncPgConnection>) {
        let mut current = self.0.current.borrow_mut();
        if current
            .as_ref()
            .is_some_and(|conn| Rc::ptr_eq(conn, broken))
        {
            *current = None;
        }
    }
}

/// A callback given every statement the workers' connections run (tests count them).
type Hook = Arc<dyn Fn(&str) + Send + Sync>;

/// Where the workers' connections report their statements, when someone listens.
#[derive(Clone, Default)]
pub struct StatementObserver(Arc<RwLock<Option<Hook>>>);

impl StatementObserver {
    pub fn set(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        if let Ok(mut slot) = self.0.write() {
            *slot = Some(Arc::new(hook));
        }
    }

    /// Formats the statement only when someone listens.
    fn saw(&self, statement: &dyn std::fmt::Display) {
        if let Ok(slot) = self.0.read() {
            if let Some(hook) = slot.as_ref() {
                hook(&statement.to_string());
            }
        }
    }
}
