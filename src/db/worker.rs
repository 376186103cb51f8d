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
//! Each worker has a pool of its own ([`WorkerPools::for_this_worker`], called by the app
//! factory on the worker's thread): a connection's driver task runs on the runtime that opened
//! it, so a connection shared between workers would hop threads again.
//!
//! The driver (tokio-postgres) reads neither libpq's environment (`PGPASSWORD`...) nor
//! `~/.pgpass`, and this service gives it no TLS connector. So start-up opens one connection
//! with it ([`WorkerPools::probe`]) and, when that fails where libpq succeeded, keeps them all
//! on the blocking pool and says so in the log.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::connection::InstrumentationEvent;
use diesel::result::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::{Backend, Database, DatabaseUrl, PG_SESSION_SETUP, POOL_CHECKOUT_TIMEOUT};
use crate::error::ApiError;
use crate::telemetry;

/// The connections each worker keeps, opened on first use. One per worker measured best on
/// two cores (see BENCHMARKS.md): as many uncached reads per second as two, feedback 10-15%
/// faster (fewer writers queue on the change log's number), and no stall of cached reads at
/// saturation, where two or four let PostgreSQL's backends contend for the revision's row and
/// some requests wait a second or more. They come on top of `LHS_POOL_SIZE` (see the README).
pub const CONNECTIONS_PER_WORKER: usize = 1;

/// How long start-up waits for the probe connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A future that borrows a worker connection for `'c`; not `Send`, like everything on a worker.
pub type OnConnection<'c, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + 'c>>;

/// What every worker's pool is made from: one per process, decided at start-up.
#[derive(Clone)]
pub struct WorkerPools {
    url: DatabaseUrl,
    observer: StatementObserver,
}

impl WorkerPools {
    /// Opens one connection with the workers' driver and closes it. `None` (logged) on SQLite,
    /// or when the driver cannot connect where libpq could (see the module's documentation):
    /// then every request keeps the blocking pool.
    pub fn probe(database: &Database) -> Option<WorkerPools> {
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
            Ok(()) => Some(WorkerPools {
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

    /// The pool of the worker this runs on. Connections open on first use, on this worker's
    /// runtime, and close when the worker stops.
    pub fn for_this_worker(&self) -> Option<WorkerConnections> {
        let observer = self.observer.clone();
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        // The default checks every connection with a query on each checkout: a round trip per
        // request. A connection the database dropped is found when a read fails (`read`).
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |url| {
            let observer = observer.clone();
            let url = url.to_owned();
            Box::pin(async move {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                conn.batch_execute(PG_SESSION_SETUP)
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                    if let InstrumentationEvent::StartQuery { query, .. } = event {
                        observer.saw(query);
                    }
                });
                Ok(conn)
            })
        });
        let manager = AsyncDieselConnectionManager::new_with_config(&self.url.target, config);
        Pool::builder(manager)
            .max_size(CONNECTIONS_PER_WORKER)
            .build()
            .map_err(|e| log::warn!("cannot build a worker's connection pool: {e}"))
            .ok()
            .map(|pool| WorkerConnections {
                pool,
                url: Arc::new(self.url.clone()),
            })
    }
}

/// One worker's own connections. Each request's `Ctx` takes a clone: two reference counts.
#[derive(Clone)]
pub struct WorkerConnections {
    pool: Pool<AsyncPgConnection>,
    /// For messages only.
    url: Arc<DatabaseUrl>,
}

impl WorkerConnections {
    /// Runs `f` on one of this worker's connections: a read, or a write that is one statement
    /// (atomic by itself, so without a transaction). As on the blocking pool, a failure on a
    /// connection the database dropped is a 503, not retried (a write may have committed before
    /// its answer was lost), and that connection leaves the pool.
    pub async fn run<T>(
        &self,
        f: impl for<'c> FnOnce(&'c mut AsyncPgConnection) -> OnConnection<'c, T>,
    ) -> Result<T, ApiError> {
        let mut conn = self.checkout().await?;
        let result = f(&mut conn).await;
        if let Err(ApiError::Internal(cause) | ApiError::Unavailable(cause)) = &result {
            let alive = diesel::sql_query("SELECT 1")
                .execute(&mut *conn)
                .await
                .is_ok();
            if !alive {
                let cause = cause.clone();
                drop(Object::take(conn));
                return Err(ApiError::Unavailable(cause));
            }
        }
        result
    }

    /// A connection, within the blocking pool's wait, counted in the same metrics.
    async fn checkout(&self) -> Result<Object<AsyncPgConnection>, ApiError> {
        let _wait = telemetry::PoolWait::enter();
        match tokio::time::timeout(POOL_CHECKOUT_TIMEOUT, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(PoolError::Backend(e))) => Err(ApiError::Unavailable(format!(
                "cannot reach the database at {}: {}",
                self.url.location(),
                self.url.redact(&e.to_string())
            ))),
            Ok(Err(e)) => Err(ApiError::Unavailable(self.url.redact(&e.to_string()))),
            Err(_) => Err(ApiError::Unavailable(format!(
                "no database connection was free within {} s",
                POOL_CHECKOUT_TIMEOUT.as_secs()
            ))),
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
