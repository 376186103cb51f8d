//! What operators and their tools ask: liveness and readiness probes for load balancers and
//! orchestrators, and the Prometheus scrape at `/metrics`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::operations::shutdown::Draining;
use crate::platform::cache::ReadCache;
use crate::platform::db::{self, Backend, Database, DbConnection};
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::ratelimit::Limits;
use crate::{integration::webhooks, platform::changelog, platform::telemetry};

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok", max_length = 20)]
    pub status: &'static str,
}

/// Is the process alive?
#[utoipa::path(
    tag = "health",
    security(()),
    responses((status = 200, description = "Alive", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Does the database answer, and is this instance taking requests?
#[utoipa::path(
    tag = "health",
    security(()),
    responses((status = 200, description = "Ready to serve", body = Health), ReadErrors)
)]
#[get("/readyz")]
pub async fn readyz(
    db: web::Data<Database>,
    draining: web::Data<Draining>,
) -> Result<HttpResponse, ApiError> {
    if draining.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    db.read(db::ping).await.map_err(|e| match e {
        ApiError::Internal(cause) => ApiError::Unavailable(cause),
        other => other,
    })?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

/// Where Prometheus scrapes (not part of the API document: it is for monitoring, and its
/// token is not a bearer token of the API).
pub const METRICS_PATH: &str = "/metrics";

/// The Prometheus scrape, and who may read it.
pub struct MetricsEndpoint {
    pub handle: metrics_exporter_prometheus::PrometheusHandle,
    /// SHA-256 of `LHS_METRICS_TOKEN`, when set.
    token_digest: Option<[u8; 32]>,
}

impl MetricsEndpoint {
    pub fn new(
        handle: metrics_exporter_prometheus::PrometheusHandle,
        token: Option<&str>,
    ) -> MetricsEndpoint {
        MetricsEndpoint {
            handle,
            token_digest: token.map(|token| Sha256::digest(token.as_bytes()).into()),
        }
    }

    /// Whether `header` carries the metrics token (anything goes when none is set). The
    /// digests are compared, not the tokens, so the time taken says nothing about the token.
    fn admits(&self, header: Option<&HeaderValue>) -> Result<(), ApiError> {
        let Some(expected) = &self.token_digest else {
            return Ok(());
        };
        let given = header
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match given {
            None => Err(ApiError::Unauthorized {
                invalid_token: None,
            }),
            Some(token) if <[u8; 32]>::from(Sha256::digest(token.as_bytes())) == *expected => {
                Ok(())
            }
            Some(_) => Err(ApiError::Unauthorized {
                invalid_token: Some("this is not the metrics token (LHS_METRICS_TOKEN)".to_owned()),
            }),
        }
    }
}

/// Prometheus metrics, in the text exposition format.
pub async fn metrics(
    req: HttpRequest,
    endpoint: web::Data<MetricsEndpoint>,
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, ApiError> {
    if let Err(refused) = endpoint.admits(req.headers().get(header::AUTHORIZATION)) {
        // Guessing the token is slowed down like guessing an API token.
        limits.failed_authentication.take(limits.client(&req))?;
        return Err(refused);
    }
    let (size, in_use, idle) = db.pool_state();
    telemetry::set_gauge(telemetry::POOL_SIZE, f64::from(size));
    telemetry::set_gauge(telemetry::POOL_IN_USE, f64::from(in_use));
    telemetry::set_gauge(telemetry::POOL_IDLE, f64::from(idle));
    let cache = cache.into_inner();
    let (entries, bytes) = web::block(move || cache.usage()).await?;
    telemetry::set_gauge(telemetry::CACHE_ENTRIES, entries as f64);
    telemetry::set_gauge(telemetry::CACHE_BYTES, bytes as f64);
    if let Some(rss) = telemetry::resident_memory_bytes() {
        telemetry::set_gauge(telemetry::RESIDENT_MEMORY, rss as f64);
    }
    telemetry::record_build_info(match db.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    });
    // A scrape while the database is down still answers, saying so.
    match db.read(database_state).await {
        Ok(state) => {
            telemetry::set_gauge(telemetry::DATABASE_UP, 1.0);
            telemetry::set_gauge(telemetry::OUTBOX_DEPTH, state.outbox_depth as f64);
            telemetry::set_gauge(telemetry::OUTBOX_GIVEN_UP, state.outbox_failed as f64);
            telemetry::set_gauge(telemetry::OUTBOX_OLDEST_AGE, state.outbox_oldest_age);
            telemetry::set_gauge(telemetry::CHANGELOG_NEWEST_SEQ, state.newest_seq as f64);
        }
        Err(e) => {
            log::warn!("metrics: the database did not answer: {e}");
            telemetry::set_gauge(telemetry::DATABASE_UP, 0.0);
        }
    }
    endpoint.handle.run_upkeep();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(endpoint.handle.render()))
}

/// What the metrics read from the database at scrape time.
struct DatabaseState {
    outbox_depth: i64,
    outbox_failed: i64,
    outbox_oldest_age: f64,
    newest_seq: i64,
}

fn database_state(conn: &mut DbConnection) -> Result<DatabaseState, ApiError> {
    let (outbox_depth, outbox_failed, outbox_oldest_age) = webhooks::outbox_state(conn)?;
    Ok(DatabaseState {
        outbox_depth,
        outbox_failed,
        outbox_oldest_age,
        newest_seq: changelog::newest(conn)?,
    })
}
