//! What operators and their tools ask: liveness and readiness probes for load balancers and
//! orchestrators, and the Prometheus scrape at `/metrics`.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::operations::shutdown::Draining;
use crate::platform::cache::ReadCache;
use crate::platform::db::{self, Backend, Database, DbConnection};
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::ratelimit::{self, Limits};
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
    db.call(db::ping).await.map_err(|e| match e {
        ApiError::Internal(cause) => ApiError::Unavailable(cause),
        other => other,
    })?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

/// Where Prometheus scrapes (not part of the API document: it is for monitoring, and its
/// token is not a bearer token of the API).
pub const METRICS_PATH: &str = "/metrics";

/// The Prometheus scrape, and who may read it: with `LHS_METRICS_TOKEN`, whoever sends it as a
/// bearer token; without it, only a scraper on this host (see [`from_this_host`]).
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

    /// Whether `req` may read the metrics: 401 without the token when one is set, 403 from
    /// another host when none is.
    fn admits(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(expected) = &self.token_digest else {
            return if from_this_host(req.peer_addr().map(|a| a.ip()), req.headers()) {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "without LHS_METRICS_TOKEN, /metrics answers only clients on this host \
                     (a loopback address, not relayed by a proxy)"
                        .to_owned(),
                ))
            };
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        // Digests of equal length, compared in constant time: the time taken says nothing
        // about the token, not even its length.
        match given {
            None => Err(ApiError::Unauthorized {
                invalid_token: None,
            }),
            Some(token)
                if bool::from(Sha256::digest(token.as_bytes())[..].ct_eq(&expected[..])) =>
            {
                Ok(())
            }
            Some(_) => Err(ApiError::Unauthorized {
                invalid_token: Some("this is not the metrics token (LHS_METRICS_TOKEN)".to_owned()),
            }),
        }
    }
}

/// Whether a request comes from a process on this host: its peer (the TCP connection's other
/// end, never a header) is a loopback address, IPv4-mapped ones included, and it was not
/// relayed by a proxy for another client. A proxy on this host forwarding outside requests
/// connects from loopback too; what it says in `X-Forwarded-For`, `X-Real-IP` or `Forwarded`
/// can only take the request off this host, never bring it on: every address named there must
/// be loopback as well, and anything unreadable (or `Forwarded` at all) counts as elsewhere.
pub fn from_this_host(peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
    let Some(peer) = peer.map(ratelimit::canonical) else {
        return false;
    };
    if !peer.is_loopback() || headers.contains_key(header::FORWARDED) {
        return false;
    }
    ["x-forwarded-for", "x-real-ip"].into_iter().all(|name| {
        headers.get_all(name).all(|line| {
            line.to_str().is_ok_and(|line| {
                line.split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .all(|entry| {
                        entry
                            .parse::<IpAddr>()
                            .is_ok_and(|address| ratelimit::canonical(address).is_loopback())
                    })
            })
        })
    })
}

/// Prometheus metrics, in the text exposition format.
pub async fn metrics(
    req: HttpRequest,
    endpoint: web::Data<MetricsEndpoint>,
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, ApiError> {
    if let Err(refused) = endpoint.admits(&req) {
        if matches!(refused, ApiError::Unauthorized { .. }) {
            // Guessing the token is slowed down like guessing an API token.
            limits.failed_authentication.take(limits.client(&req))?;
        }
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
    match db.call(database_state).await {
        Ok(state) => {
            telemetry::set_gauge(telemetry::DATABASE_UP, 1.0);
            telemetry::set_gauge(telemetry::OUTBOX_DEPTH, state.outbox_depth as f64);
            telemetry::set_gauge(telemetry::OUTBOX_GIVEN_UP, state.outbox_failed as f64);
            telemetry::set_gauge(telemetry::OUTBOX_OLDEST_AGE, state.outbox_oldest_age);
            telemetry::set_gauge(telemetry::CHANGELOG_NEWEST_SEQ, state.newest_seq as f64);
            telemetry::set_gauge(telemetry::CHANGELOG_QUEUED, state.queued as f64);
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
    queued: i64,
}

fn database_state(conn: &mut DbConnection) -> Result<DatabaseState, ApiError> {
    // A scrape only reads: entries not yet numbered are counted as queued, not numbered here.
    let (outbox_depth, outbox_failed, outbox_oldest_age) = webhooks::outbox_state(conn)?;
    Ok(DatabaseState {
        outbox_depth,
        outbox_failed,
        outbox_oldest_age,
        newest_seq: changelog::newest(conn)?,
        queued: changelog::queued(conn)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn peer(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("an address"))
    }

    #[test]
    fn only_a_loopback_peer_that_no_proxy_relays_is_on_this_host() {
        let none = HeaderMap::new();
        assert!(from_this_host(peer("127.0.0.1"), &none));
        assert!(from_this_host(peer("127.8.9.10"), &none));
        assert!(from_this_host(peer("::1"), &none));
        assert!(from_this_host(peer("::ffff:127.0.0.1"), &none));
        assert!(!from_this_host(None, &none));
        for elsewhere in [
            "10.0.0.5",
            "192.0.2.2",
            "::ffff:10.0.0.5",
            "2001:db8::1",
            "fd00::2",
        ] {
            assert!(!from_this_host(peer(elsewhere), &none), "{elsewhere}");
            // A header never brings a request from elsewhere onto this host.
            let claims = headers(&[("x-forwarded-for", "127.0.0.1"), ("x-real-ip", "::1")]);
            assert!(!from_this_host(peer(elsewhere), &claims), "{elsewhere}");
        }
        // A proxy on this host relaying another client's request.
        for relayed in [
            headers(&[("x-forwarded-for", "203.0.113.7")]),
            headers(&[("x-forwarded-for", "127.0.0.1, 203.0.113.7")]),
            headers(&[("x-forwarded-for", "garbage")]),
            headers(&[("x-forwarded-for", "127.0.0.1:5000")]),
            headers(&[("x-real-ip", "203.0.113.7")]),
            headers(&[("forwarded", "for=127.0.0.1")]),
        ] {
            assert!(!from_this_host(peer("127.0.0.1"), &relayed), "{relayed:?}");
        }
        // Relayed by a local proxy for a local client: still this host.
        let local = headers(&[("x-forwarded-for", "127.0.0.1, ::1")]);
        assert!(from_this_host(peer("127.0.0.1"), &local));
    }
}
