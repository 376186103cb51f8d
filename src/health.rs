//! Liveness and readiness probes for load balancers and orchestrators.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{self, Database};
use crate::error::{ApiError, ReadErrors};

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

/// Does the database answer?
#[utoipa::path(
    tag = "health",
    security(()),
    responses((status = 200, description = "Ready to serve", body = Health), ReadErrors)
)]
#[get("/readyz")]
pub async fn readyz(db: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    db.read(db::ping).await.map_err(|e| match e {
        ApiError::Internal(cause) => ApiError::Unavailable(cause),
        other => other,
    })?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}
