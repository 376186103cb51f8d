//! Telemetry: the id of each request and the log lines that carry it, the two log formats, and
//! the Prometheus metrics (the recorder, the metric names, and what records them).
//!
//! Nothing here knows the database or the routes: modules record into it (the pool its checkout
//! times, the cache its hits), and the `/metrics` handler (`health`) renders it.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

// ---- request ids -----------------------------------------------------------------------------

/// The id of a request: the client's `X-Request-Id` when it is 1-64 visible ASCII characters,
/// a new one otherwise. Echoed on every answer and in every problem body, recorded in the change
/// log, and on every log line about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    pub const HEADER: &'static str = "x-request-id";

    /// The client's id if it is acceptable, else a new one.
    pub fn of_header(value: Option<&HeaderValue>) -> RequestId {
        value
            .and_then(RequestId::accept)
            .unwrap_or_else(RequestId::generate)
    }

    fn accept(value: &HeaderValue) -> Option<RequestId> {
        let bytes = value.as_bytes();
        let visible =
            (1..=64).contains(&bytes.len()) && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        visible
            .then(|| value.to_str().ok().map(|s| RequestId(Arc::from(s))))
            .flatten()
    }

    fn generate() -> RequestId {
        let mut bytes = [0u8; 12];
        if getrandom::fill(&mut bytes).is_err() {
            // No randomness: a time-based id still tells requests apart in the logs.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            return RequestId(Arc::from(format!("t{nanos:x}")));
        }
        RequestId(Arc::from(hex::encode(bytes)))
    }

    /// The id of the request `req` is about.
    pub fn of(req: &HttpRequest) -> Option<Arc<str>> {
        req.extensions().get::<RequestId>().map(|id| id.0.clone())
    }
}

tokio::task_local! {
    /// The request the current task serves; set around the whole service call.
    static REQUEST_ID: Arc<str>;
}

thread_local! {
    /// The request a blocking-pool thread is working for (see [`block`]).
    static BLOCKING_REQUEST_ID: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The id of the request being served here, if any: on the async worker serving it, or on a
/// blocking thread working for it.
pub fn current_request_id() -> Option<Arc<str>> {
    REQUEST_ID
        .try_with(Arc::clone)
        .ok()
        .or_else(|| BLOCKING_REQUEST_ID.with(|id| id.borrow().clone()))
}

/// Serves `future` as the request `id`: every log line written while it runs carries the id.
pub async fn serving<F: std::future::Future>(id: Arc<str>, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// Runs `f` as the request `id` (synchronously).
pub fn serving_sync<R>(id: Arc<str>, f: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(id, f)
}

/// `web::block` that keeps the request id for the log lines of `f`: the blocking pool's threads
/// are not the task's, so the id travels with the closure.
pub async fn block<F, R>(f: F) -> Result<R, actix_web::error::BlockingError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let id = current_request_id();
    web::block(move || {
        struct Restore(Option<Arc<str>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                BLOCKING_REQUEST_ID.with(|slot| *slot.borrow_mut() = previous);
            }
        }
        let previous = BLOCKING_REQUEST_ID.with(|slot| slot.replace(id));
        let _restore = Restore(previous);
        f()
    })
    .await
}

/// The subject (`sub`) of the caller's verified token, for the access log.
#[derive(Debug, Clone)]
pub struct TokenSubject(pub String);

// ---- logs ------------------------------------------------------------------------------------

/// `LHS_LOG_FORMAT`: lines for people, or one JSON object per line for log shippers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Sets up the process's logger: `filter` as in `RUST_LOG`, written to stderr in `format`.
pub fn init_logging(filter: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter);
    match format {
        LogFormat::Text => builder.format(write_text),
        LogFormat::Json => builder.format(write_json),
    };
    // A second call (tests) keeps the first logger.
    let _ = builder.try_init();
}

/// `[time LEVEL target] message key=value... request_id=...`
fn write_text(
    buf: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    write!(
        buf,
        "[{} {:<5} {}] {}",
        buf.timestamp_millis(),
        record.level(),
        record.target(),
        record.args()
    )?;
    let mut fields = Vec::new();
    let _ = record.key_values().visit(&mut Fields(&mut fields));
    for (key, value) in fields {
        match value {
            serde_json::Value::String(text) => write!(buf, " {key}={text}")?,
            other => write!(buf, " {key}={other}")?,
        }
    }
    if let Some(id) = current_request_id() {
        write!(buf, " request_id={id}")?;
    }
    writeln!(buf)
}

/// `{"time": ..., "level": ..., "target": ..., "message": ..., <fields>, "request_id": ...}`
fn write_json(
    buf: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    let mut line = serde_json::Map::new();
    line.insert(
        "time".to_owned(),
        chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into(),
    );
    line.insert("level".to_owned(), record.level().as_str().into());
    line.insert("target".to_owned(), record.target().into());
    line.insert("message".to_owned(), record.args().to_string().into());
    let mut fields = Vec::new();
    let _ = record.key_values().visit(&mut Fields(&mut fields));
    for (key, value) in fields {
        line.insert(key, value);
    }
    if let Some(id) = current_request_id() {
        line.insert("request_id".to_owned(), id.as_ref().into());
    }
    serde_json::to_writer(&mut *buf, &line)?;
    writeln!(buf)
}

/// Collects a log record's key-values with their JSON types.
struct Fields<'a>(&'a mut Vec<(String, serde_json::Value)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let value = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(x) = value.to_f64() {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
        } else {
            value.to_string().into()
        };
        self.0.push((key.as_str().to_owned(), value));
        Ok(())
    }
}

/// One access-log line: who asked for what, the answer, how long it took.
pub struct Access<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub route: &'a str,
    pub status: StatusCode,
    pub elapsed: Duration,
    pub bytes: Option<u64>,
    pub sub: Option<&'a str>,
}

impl Access<'_> {
    /// Writes the line (target `lhs_rounds::access`) and records the request's metrics.
    pub fn record(&self) {
        let duration_ms = (self.elapsed.as_secs_f64() * 1e6).round() / 1e3;
        log::info!(
            target: "lhs_rounds::access",
            route = self.route,
            status = self.status.as_u16(),
            duration_ms = duration_ms,
            bytes = self.bytes.unwrap_or(0),
            sub = self.sub.unwrap_or("-");
            "{} {}",
            self.method,
            self.path
        );
        if enabled() {
            let route = self.route.to_owned();
            metrics::counter!(
                HTTP_REQUESTS,
                "method" => method_label(self.method),
                "route" => route.clone(),
                "status" => self.status.as_u16().to_string()
            )
            .increment(1);
            metrics::histogram!(HTTP_DURATION, "route" => route).record(self.elapsed.as_secs_f64());
        }
    }
}

/// Standard methods as static labels; anything else is `other` (a label per made-up method would
/// let any client add series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

// ---- metrics ---------------------------------------------------------------------------------

pub const HTTP_REQUESTS: &str = "lhs_http_requests_total";
pub const HTTP_DURATION: &str = "lhs_http_request_duration_seconds";
pub const HTTP_IN_FLIGHT: &str = "lhs_http_requests_in_flight";
pub const POOL_SIZE: &str = "lhs_db_pool_size";
pub const POOL_IN_USE: &str = "lhs_db_pool_in_use";
pub const POOL_IDLE: &str = "lhs_db_pool_idle";
pub const POOL_WAITING: &str = "lhs_db_pool_waiting";
pub const POOL_CHECKOUT: &str = "lhs_db_pool_checkout_seconds";
pub const DATABASE_UP: &str = "lhs_database_up";
pub const CACHE_HITS: &str = "lhs_cache_hits_total";
pub const CACHE_MISSES: &str = "lhs_cache_misses_total";
pub const CACHE_BYTES: &str = "lhs_cache_bytes";
pub const CACHE_ENTRIES: &str = "lhs_cache_entries";
pub const OUTBOX_DEPTH: &str = "lhs_webhook_outbox_depth";
pub const OUTBOX_OLDEST_AGE: &str = "lhs_webhook_outbox_oldest_age_seconds";
pub const OUTBOX_GIVEN_UP: &str = "lhs_webhook_outbox_failed";
pub const WEBHOOK_ATTEMPTS: &str = "lhs_webhook_delivery_attempts_total";
pub const WEBHOOK_FAILURES: &str = "lhs_webhook_delivery_failures_total";
pub const CHANGELOG_NEWEST_SEQ: &str = "lhs_changelog_newest_seq";
pub const CHANGELOG_QUEUED: &str = "lhs_changelog_queued";
pub const RATE_LIMITED: &str = "lhs_rate_limit_rejections_total";
pub const BUILD_INFO: &str = "lhs_build_info";
pub const RESIDENT_MEMORY: &str = "lhs_process_resident_memory_bytes";

/// Upper bounds of the latency histograms, in seconds: sub-millisecond cache hits to slow
/// writes under load.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process records metrics (`LHS_METRICS`).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The process's Prometheus recorder, installed once (a recorder is global to the process);
/// later calls get the same handle.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .map_err(|e| format!("metrics: {e}"))?
                .install_recorder()
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            describe();
            // Histogram samples wait in buffers until upkeep folds them in; without a scrape
            // they would grow with every request.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("lhs-metrics".to_owned())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))?;
            ENABLED.store(true, Ordering::Relaxed);
            Ok(handle)
        })
        .clone()
}

/// HELP lines, and zeroes for counters that would otherwise appear only once something happens
/// (a dashboard's query should not fail before the first rate-limited request).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer, by route template"
    );
    describe_gauge!(HTTP_IN_FLIGHT, "Requests being served");
    describe_gauge!(POOL_SIZE, "Database connections the pool may open");
    describe_gauge!(POOL_IN_USE, "Database connections checked out");
    describe_gauge!(POOL_IDLE, "Database connections open and idle");
    describe_gauge!(POOL_WAITING, "Callers waiting for a database connection");
    describe_histogram!(
        POOL_CHECKOUT,
        Unit::Seconds,
        "Time to get a database connection"
    );
    describe_gauge!(DATABASE_UP, "1 when the last scrape reached the database");
    describe_counter!(CACHE_HITS, "Reads answered from the read cache");
    describe_counter!(CACHE_MISSES, "Reads the read cache could not answer");
    describe_gauge!(
        CACHE_BYTES,
        Unit::Bytes,
        "Bytes of answers kept by the read cache"
    );
    describe_gauge!(CACHE_ENTRIES, "Answers kept by the read cache");
    describe_gauge!(OUTBOX_DEPTH, "Webhook messages waiting for delivery");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest waiting webhook message"
    );
    describe_gauge!(
        OUTBOX_GIVEN_UP,
        "Webhook messages given up after every retry"
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts by this process"
    );
    describe_counter!(WEBHOOK_FAILURES, "Webhook delivery attempts that failed");
    describe_gauge!(
        CHANGELOG_NEWEST_SEQ,
        "The newest change's seq in the change log"
    );
    describe_gauge!(
        CHANGELOG_QUEUED,
        "Committed changes waiting for their seq in the change log's queue"
    );
    describe_counter!(RATE_LIMITED, "Requests refused with 429, by limit");
    describe_gauge!(
        BUILD_INFO,
        "Version, git commit and database backend of this process"
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of this process"
    );
    for counter in [CACHE_HITS, CACHE_MISSES, WEBHOOK_ATTEMPTS, WEBHOOK_FAILURES] {
        metrics::counter!(counter).absolute(0);
    }
    for limit in ["feedback", "authentication"] {
        metrics::counter!(RATE_LIMITED, "limit" => limit).absolute(0);
    }
}

/// Sets `lhs_build_info` for this process's backend.
pub fn record_build_info(backend: &'static str) {
    if enabled() {
        metrics::gauge!(
            BUILD_INFO,
            "version" => env!("CARGO_PKG_VERSION"),
            "commit" => GIT_COMMIT,
            "backend" => backend
        )
        .set(1.0);
    }
}

/// The commit this binary was built from (`build.rs`).
pub const GIT_COMMIT: &str = env!("LHS_GIT_COMMIT");

/// Counts a request while it is served (`lhs_http_requests_in_flight`), even one whose client
/// went away mid-answer.
pub struct InFlight(bool);

impl InFlight {
    pub fn enter() -> InFlight {
        let on = enabled();
        if on {
            metrics::gauge!(HTTP_IN_FLIGHT).increment(1.0);
        }
        InFlight(on)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0 {
            metrics::gauge!(HTTP_IN_FLIGHT).decrement(1.0);
        }
    }
}

/// Counts a caller waiting for a database connection, and how long it waited.
pub struct PoolWait {
    started: std::time::Instant,
    on: bool,
}

impl PoolWait {
    pub fn enter() -> PoolWait {
        let on = enabled();
        if on {
            metrics::gauge!(POOL_WAITING).increment(1.0);
        }
        PoolWait {
            started: std::time::Instant::now(),
            on,
        }
    }
}

impl Drop for PoolWait {
    fn drop(&mut self) {
        if self.on {
            metrics::gauge!(POOL_WAITING).decrement(1.0);
            metrics::histogram!(POOL_CHECKOUT).record(self.started.elapsed().as_secs_f64());
        }
    }
}

/// A read answered from the cache (`true`) or not.
pub fn record_cache_lookup(hit: bool) {
    if enabled() {
        metrics::counter!(if hit { CACHE_HITS } else { CACHE_MISSES }).increment(1);
    }
}

/// A request refused by the rate limit `limit`.
pub fn record_rate_limited(limit: &'static str) {
    if enabled() {
        metrics::counter!(RATE_LIMITED, "limit" => limit).increment(1);
    }
}

/// A webhook delivery attempt and whether it failed.
pub fn record_webhook_attempt(failed: bool) {
    if enabled() {
        metrics::counter!(WEBHOOK_ATTEMPTS).increment(1);
        if failed {
            metrics::counter!(WEBHOOK_FAILURES).increment(1);
        }
    }
}

/// Sets a gauge read at scrape time.
pub fn set_gauge(name: &'static str, value: f64) {
    if enabled() {
        metrics::gauge!(name).set(value);
    }
}

/// The process's resident memory in bytes (Linux), `None` elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_of_visible_ascii_is_kept_and_anything_else_replaced() {
        let kept = RequestId::of_header(Some(&HeaderValue::from_static("abc-123_X.y")));
        assert_eq!(&*kept.0, "abc-123_X.y");
        let long = "x".repeat(65);
        for bad in ["", "has space", long.as_str()] {
            let header = HeaderValue::from_str(bad).expect("a valid header value");
            let replaced = RequestId::of_header(Some(&header));
            assert_ne!(&*replaced.0, bad);
            assert_eq!(
                replaced.0.len(),
                24,
                "a generated id is 12 random bytes in hex"
            );
        }
        assert_eq!(RequestId::of_header(None).0.len(), 24);
    }

    #[test]
    fn the_request_id_follows_the_request_onto_a_blocking_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("a runtime");
        let seen = runtime.block_on(serving(Arc::from("req-7"), async {
            block(current_request_id)
                .await
                .expect("the blocking call ran")
        }));
        assert_eq!(seen.as_deref(), Some("req-7"));
        assert_eq!(
            current_request_id(),
            None,
            "outside the request there is no id"
        );
    }
}
