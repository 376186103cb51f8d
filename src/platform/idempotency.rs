//! Idempotent POST (the IETF `Idempotency-Key` draft): a client that retries a POST with the
//! same key gets the first answer again instead of a second record.
//!
//! The first request's fingerprint (caller, method, path, a hash of the body) and its answer
//! are written in the same transaction as the record it created, so the database, not the
//! memory of one process, decides: a concurrent duplicate's insert of the same key waits for the
//! first transaction (the primary key) and then fails, its own work is rolled back, and it
//! replays the stored answer. Kept for `LHS_IDEMPOTENCY_TTL` (24 h); expired keys are purged.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{ETAG, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::platform::db::{self, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::schema::idempotency_keys;

/// The header, and its longest accepted value.
pub const HEADER: &str = "idempotency-key";
pub const MAX_LENGTH: usize = 255;
/// What [`IdempotencyKey`] accepts, for the document: visible ASCII that keeps a character once
/// white space and the structured-field quotes around it are removed.
pub const PATTERN: &str = r#"^[\t\x20-\x7E]*([\x21\x23-\x7E]|"[ \t]+")[\t\x20-\x7E]*$"#;

/// A request's `Idempotency-Key`, when it sends one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<IdempotencyKey, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(read(req))
    }
}

fn read(req: &HttpRequest) -> Result<IdempotencyKey, ApiError> {
    let mut values = req.headers().get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(IdempotencyKey(None));
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "send one Idempotency-Key header, not several".to_owned(),
        ));
    }
    let text = value.to_str().map_err(|_| {
        ApiError::BadRequest("the Idempotency-Key must be visible ASCII".to_owned())
    })?;
    // A structured-field string in the draft: quotes are allowed and not part of the key.
    let key = text.trim().trim_matches('"');
    if key.is_empty() || key.len() > MAX_LENGTH {
        return Err(ApiError::BadRequest(format!(
            "the Idempotency-Key must be 1 to {MAX_LENGTH} characters (got {})",
            key.len()
        )));
    }
    Ok(IdempotencyKey(Some(key.to_owned())))
}

/// What makes two requests the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub caller: String,
    pub method: String,
    pub path: String,
    pub body_hash: String,
}

impl Fingerprint {
    pub fn new(caller: Option<&str>, method: &str, path: &str, body: &[u8]) -> Fingerprint {
        Fingerprint {
            caller: caller.unwrap_or("anonymous").to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            body_hash: hex::encode(Sha256::digest(body)),
        }
    }
}

/// An answer as it was first given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub body: String,
}

impl StoredAnswer {
    /// The answer again; `replayed` marks it `Idempotency-Replayed: true`.
    pub fn response(&self, replayed: bool) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = HttpResponse::build(status);
        response.content_type("application/json");
        if let Some(location) = &self.location {
            response.insert_header((LOCATION, location.as_str()));
        }
        if let Some(etag) = &self.etag {
            response.insert_header((ETAG, etag.as_str()));
        }
        if replayed {
            response.insert_header(("idempotency-replayed", "true"));
        }
        response.body(self.body.clone())
    }
}

/// The answer stored for `key`, if it was used for this very request; 422 if it was used for
/// another one.
pub fn replay(
    conn: &mut DbConnection,
    key: &str,
    fingerprint: &Fingerprint,
) -> Result<Option<StoredAnswer>, ApiError> {
    let stored = idempotency_keys::table
        .filter(idempotency_keys::caller.eq(&fingerprint.caller))
        .filter(idempotency_keys::idempotency_key.eq(key))
        .filter(idempotency_keys::expires_at.gt(db::now()))
        .select((
            idempotency_keys::method,
            idempotency_keys::path,
            idempotency_keys::body_hash,
            idempotency_keys::status,
            idempotency_keys::location,
            idempotency_keys::etag,
            idempotency_keys::body,
        ))
        .first::<(
            String,
            String,
            String,
            i32,
            Option<String>,
            Option<String>,
            String,
        )>(conn)
        .optional()?;
    let Some((method, path, body_hash, status, location, etag, body)) = stored else {
        return Ok(None);
    };
    if method != fingerprint.method
        || path != fingerprint.path
        || body_hash != fingerprint.body_hash
    {
        return Err(ApiError::IdempotencyKeyReused(format!(
            "was used for another request ({method} {path} with another body); use a new key \
             for a new request"
        )));
    }
    Ok(Some(StoredAnswer {
        status: u16::try_from(status).unwrap_or(200),
        location,
        etag,
        body,
    }))
}

/// Keeps `answer` for `key`, in the caller's transaction.
pub fn remember(
    conn: &mut DbConnection,
    key: &str,
    fingerprint: &Fingerprint,
    answer: &StoredAnswer,
    ttl: Duration,
) -> Result<(), ApiError> {
    let now = db::now();
    let expires =
        now + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::hours(24));
    // A key of this caller that expired but is not purged yet makes room for the new one.
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::caller.eq(&fingerprint.caller))
            .filter(idempotency_keys::idempotency_key.eq(key))
            .filter(idempotency_keys::expires_at.le(now)),
    )
    .execute(conn)?;
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::caller.eq(&fingerprint.caller),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::method.eq(&fingerprint.method),
            idempotency_keys::path.eq(&fingerprint.path),
            idempotency_keys::body_hash.eq(&fingerprint.body_hash),
            idempotency_keys::status.eq(i32::from(answer.status)),
            idempotency_keys::location.eq(&answer.location),
            idempotency_keys::etag.eq(&answer.etag),
            idempotency_keys::body.eq(&answer.body),
            idempotency_keys::created_at.eq(now),
            idempotency_keys::expires_at.eq(expires),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes expired keys; returns how many.
pub fn purge_expired(conn: &mut DbConnection) -> Result<usize, ApiError> {
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(db::now())))
            .execute(conn)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_has_the_same_fingerprint() {
        let a = Fingerprint::new(Some("alice"), "POST", "/api/v1/feedback", b"{\"a\":1}");
        let b = Fingerprint::new(Some("alice"), "POST", "/api/v1/feedback", b"{\"a\":1}");
        let c = Fingerprint::new(Some("alice"), "POST", "/api/v1/feedback", b"{\"a\":2}");
        assert_eq!(a, b);
        assert_ne!(a.body_hash, c.body_hash);
        assert_eq!(Fingerprint::new(None, "POST", "/", b"").caller, "anonymous");
    }
}
