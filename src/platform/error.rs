//! The one error type of the service. Every failure, from a malformed body to a lost database,
//! becomes an `application/problem+json` body (RFC 9457) here and nowhere else; the problem
//! answers each operation documents are declared here too ([`ReadErrors`], [`WriteErrors`]).

use std::collections::BTreeMap;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

use crate::platform::telemetry;

/// One bad field of a request body or query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path, such as `email` or `speakers[2].speaker_id`.
    #[schema(example = "speakers[2].speaker_id", max_length = 300)]
    pub field: String,
    /// What is wrong with it.
    #[schema(example = "no speaker with id 42", max_length = 500)]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: truncated(field.into(), 300),
            message: truncated(message.into(), 500),
        }
    }
}

/// At most `max` characters: problem bodies repeat what a client sent (a field name, a path),
/// and their schema bounds every string.
fn truncated(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
    }
    text
}

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "the request body has 1 invalid field",
    "errors": [{"field": "ends_at", "message": "must be after starts_at"}]
}))]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    #[schema(max_length = 200)]
    pub type_: String,
    /// The HTTP status phrase.
    #[schema(max_length = 100)]
    pub title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for a person to read.
    #[schema(max_length = 2000)]
    pub detail: String,
    /// Every bad field, for validation errors and bad query parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_items = 100)]
    pub errors: Option<Vec<FieldError>>,
    /// With 410 from the change feed: the change to continue from once the lists are read again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0, maximum = 9007199254740991_i64)]
    pub resync_after: Option<i64>,
    /// With 409 from an operation that waits for a record to be ready (a round's disclosure
    /// statement, say): what still stands in the way, each as that record's readiness lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<Vec<Object>>, max_items = 200)]
    pub blockers: Option<Vec<serde_json::Value>>,
    /// The request's id, as in the `X-Request-Id` header and the logs: quote it when asking
    /// for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        max_length = 64,
        example = "5f0c2a9e41d7b3c8a6e1f204"
    )]
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid query parameters")]
    InvalidQuery(Vec<FieldError>),
    /// No token where one is needed, or a token that was refused (with the reason).
    #[error("{}", match invalid_token { Some(why) => format!("the bearer token was refused: {why}"), None => "this needs a bearer token (Authorization: Bearer <JWT>)".to_owned() })]
    Unauthorized { invalid_token: Option<String> },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: Method, allow: Vec<Method> },
    #[error("{0}")]
    Conflict(String),
    /// 409: the record is not ready for what was asked; `blockers` say why, as its readiness
    /// does.
    #[error("{detail}")]
    NotReady {
        detail: String,
        blockers: Vec<serde_json::Value>,
    },
    /// A foreign key refused a write: it refers to a record that does not exist. The resource
    /// plumbing turns it into a 422 naming each such reference (see `resource::create_with`);
    /// what reaches a client unturned is the race it cannot settle.
    #[error("the change refers to a record that another request changed or removed; retry")]
    DanglingReference,
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive in full within `LHS_BODY_TIMEOUT` (the connection is closed).
    #[error("the request body did not arrive in full within {}", humantime::format_duration(*.0))]
    BodyTimeout(std::time::Duration),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A `Range` past the end of a file (416).
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// `If-Match` does not name the current version; `current` is its ETag (none if the record
    /// is gone).
    #[error("{}", match current { Some(etag) => format!("the record has changed: its current ETag is {etag}; read it again and retry with If-Match: {etag}"), None => "there is no current version of this record to match".to_owned() })]
    PreconditionFailed { current: Option<String> },
    #[error("this service requires If-Match on PUT, PATCH and DELETE: read the record, then send its ETag in If-Match")]
    PreconditionRequired,
    #[error("too many requests from this client; retry after {retry_after} s")]
    TooManyRequests {
        retry_after: u64,
        /// The `RateLimit-Policy` and `RateLimit` header values.
        policy: String,
        state: String,
    },
    #[error("the request body has invalid fields")]
    Validation(Vec<FieldError>),
    /// An `Idempotency-Key` already used for another request (the message says which).
    #[error("this Idempotency-Key was already used for another request")]
    IdempotencyKeyReused(String),
    /// What was asked for is no longer kept (the change feed before its retention, with the
    /// change to resync after; a record deleted since).
    #[error("{detail}")]
    Gone {
        detail: String,
        resync_after: Option<i64>,
    },
    /// The database cannot be reached or is overloaded; worth retrying.
    #[error("the database is unavailable")]
    Unavailable(String),
    /// A token names a key that is not cached, and the identity provider that would say
    /// whether it is one of its keys cannot be reached; worth retrying.
    #[error("the identity provider can't be reached to check the bearer token; retry later")]
    IdentityProviderUnavailable { retry_after: u64 },
    /// This process is stopping (readiness only: requests are still served meanwhile).
    #[error("this instance is shutting down; requests go to another one")]
    ShuttingDown,
    /// A defect. The cause is logged, never sent.
    #[error("internal server error")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("no {what} with id {id}"))
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn problem(&self) -> Problem {
        let status = self.status_code();
        let (detail, errors) = match self {
            ApiError::Validation(errors) => (
                format!(
                    "the request body has {} invalid field{}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
                Some(errors.clone()),
            ),
            ApiError::InvalidQuery(errors) => (
                format!(
                    "the query string has {} invalid parameter{}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
                Some(errors.clone()),
            ),
            ApiError::IdempotencyKeyReused(message) => (
                self.to_string(),
                Some(vec![FieldError::new("Idempotency-Key", message.clone())]),
            ),
            ApiError::MethodNotAllowed { method, allow } => (
                format!(
                    "{method} is not allowed here; allowed: {}",
                    allow
                        .iter()
                        .map(Method::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            ),
            other => (other.to_string(), None),
        };
        Problem {
            type_: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: truncated(detail, 2000),
            errors,
            resync_after: match self {
                ApiError::Gone { resync_after, .. } => *resync_after,
                _ => None,
            },
            blockers: match self {
                ApiError::NotReady { blockers, .. } => Some(blockers.clone()),
                _ => None,
            },
            request_id: telemetry::current_request_id().map(|id| id.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::NotReady { .. } | ApiError::DanglingReference => {
                StatusCode::CONFLICT
            }
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Validation(_) | ApiError::IdempotencyKeyReused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unavailable(_)
            | ApiError::IdentityProviderUnavailable { .. }
            | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => log::error!("internal error: {cause}"),
            ApiError::Unavailable(cause) => log::warn!("database unavailable: {cause}"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            let allow = allow
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            response.insert_header((header::ALLOW, allow));
        }
        if let ApiError::Unauthorized { invalid_token } = self {
            let challenge = match invalid_token {
                // RFC 6750: a quoted-string, so no quotes or backslashes inside.
                Some(why) => format!(
                    "Bearer realm=\"lhs-rounds\", error=\"invalid_token\", error_description=\"{}\"",
                    why.replace(['"', '\\'], "'")
                ),
                None => "Bearer realm=\"lhs-rounds\"".to_owned(),
            };
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let ApiError::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        if let ApiError::IdentityProviderUnavailable { retry_after } = self {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        if let ApiError::BodyTimeout(_) = self {
            // The rest of the body may still be on its way: the connection cannot be reused.
            response.force_close();
        }
        if let ApiError::PreconditionFailed {
            current: Some(etag),
        } = self
        {
            response.insert_header((header::ETAG, etag.as_str()));
        }
        if let ApiError::TooManyRequests {
            retry_after,
            policy,
            state,
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            response.insert_header(("ratelimit-policy", policy.as_str()));
            response.insert_header(("ratelimit", state.as_str()));
        }
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &error {
            Error::NotFound => ApiError::NotFound("not found".to_owned()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                ApiError::Conflict("a record with the same unique value already exists".to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                ApiError::DanglingReference
            }
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
            | Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                ApiError::Unavailable(error.to_string())
            }
            Error::DatabaseError(_, info) if info.message().contains("database is locked") => {
                ApiError::Unavailable(error.to_string())
            }
            _ => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> Self {
        ApiError::Internal(format!("JSON encoding: {error}"))
    }
}

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn responses(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| ((*status).to_owned(), problem(description)))
        .collect()
}

/// The errors any read can answer (documented on each read operation).
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (
                "400",
                "A query parameter is invalid (each one is named in `errors`)",
            ),
            (
                "401",
                "The bearer token was refused, or the operation needs one (see `WWW-Authenticate`)",
            ),
            ("403", "The token does not grant a role this needs"),
            ("404", "No such record"),
            ("405", "Method not allowed here (see the `Allow` header)"),
            (
                "429",
                "Too many refused tokens from this client; see `Retry-After`",
            ),
            ("503", "The database, or the identity provider a token needs checking with, is unavailable; retry"),
        ])
    }
}

/// The errors any write can answer (documented on each write operation).
pub struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            ("400", "The body is not well-formed JSON"),
            ("401", "No bearer token, or a refused one; see `WWW-Authenticate`"),
            ("403", "The token does not grant a role this needs"),
            ("404", "No such record"),
            ("405", "Method not allowed here (see the `Allow` header)"),
            ("409", "The change conflicts with existing data (a duplicate, or records that still refer to this one)"),
            ("413", "The body is larger than 1 MiB"),
            ("415", "The body is not JSON (`Content-Type: application/json`)"),
            ("422", "A field is invalid (each one is named in `errors`)"),
            ("429", "Too many requests from this client (refused tokens, or anonymous feedback); see `Retry-After`"),
            ("503", "The database, or the identity provider a token needs checking with, is unavailable; retry"),
        ])
    }
}
