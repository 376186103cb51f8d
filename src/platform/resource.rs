//! The CRUD plumbing, written once: create, get, list, replace, patch and delete of any
//! [`Resource`]. A resource module declares its types, its queries and its own rules; its
//! handlers carry the OpenAPI annotations and are one line into the functions here (most of
//! them written by [`crate::resource_handlers!`]).
//!
//! Every request is authorized first, once, before anything else is done for it: no lookup,
//! no body check and no write happens for a caller who may not make it. [`Ctx::authorize`] is
//! the only way to a [`Granted`], and every function here that works for a caller takes one.
//!
//! Every write is one transaction ([`Database::write`]): the body is checked against its
//! schema first, the references it makes are checked by the foreign keys of the write itself
//! (so they cannot vanish before it), and a failure anywhere changes nothing. The record and
//! its change-log entry ([`changelog::record`]) are written in the same transaction.
//!
//! The HTTP semantics are applied here for every resource alike: each read answers with an
//! `ETag` and honours `If-None-Match` (304); PUT, PATCH and DELETE honour `If-Match` (412, or 428
//! when the service requires it), checked by the writing statement itself
//! (`... WHERE id = ? AND version = ?`); a POST with an `Idempotency-Key` is answered once.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::ETAG;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::platform::auth::{Caller, Role, Subject, Visible};
use crate::platform::cache::{Answer, Key, ReadCache, Rendered};
use crate::platform::changelog::{self, Action, Change};
use crate::platform::compression::{self, Coding};
use crate::platform::db::{Database, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::fields::{Text, Timestamp};
use crate::platform::http::{self, Conditions, JsonBody, TagList};
use crate::platform::idempotency::{self, Fingerprint, IdempotencyKey, StoredAnswer};
use crate::platform::pagination::{Page, Paging};
use crate::platform::ratelimit::Limits;
use crate::platform::telemetry;
use crate::platform::validate::{merge_patch, Checked, Input, Query, QueryValues, Validators};

/// A URL path or a header value the service answers with (`Location`, `RateLimit`).
pub type HeaderText = crate::platform::fields::Line<200>;

/// Where the API lives (the probes are at the root).
pub const API_PREFIX: &str = "/api/v1";

/// What a request does to a resource, for [`Resource::authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Create,
    Change,
    Delete,
}

/// Who may do something to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Anyone when the schedule is public (`LHS_PUBLIC_READ`), else any signed-in person.
    Readers,
    /// Anyone when anonymous feedback is open (`LHS_ANONYMOUS_FEEDBACK`), else any signed-in
    /// person.
    Submitters,
    /// Callers with this role or one above it.
    Role(Role),
}

impl Allowed {
    /// `Ok`, 401 or 403.
    pub fn check(self, caller: &Caller) -> Result<(), ApiError> {
        match self {
            Allowed::Readers => caller.require_reader(),
            Allowed::Submitters => caller.require_submitter(),
            Allowed::Role(role) => caller.require(role),
        }
    }
}

/// A record's id and version (the version is bumped by every write to it; its `ETag` is made
/// from it). See [`crate::record!`].
pub trait Keyed {
    fn id(&self) -> i32;
    fn version(&self) -> i64;
}

/// A record's [`Keyed`] and [`Visible`]: by default from its `id: Id` and `audit: Audit` (the
/// audit's authors hidden from those who may not see private fields), or with the id and the
/// version the two closures read; `hides` names its other private fields.
///
/// ```text
/// crate::record!(Speaker, hides email);
/// crate::record!(Feedback, key |f: &Feedback| f.id.0, version |f: &Feedback| f.version, hides submitted_by);
/// ```
#[macro_export]
macro_rules! record {
    ($record:ty $(, hides $($field:ident),+)?) => {
        $crate::record!(@keyed $record, |r: &$record| r.id.0, |r: &$record| r.audit.version);
        impl $crate::platform::auth::Visible for $record {
            fn visible_to(mut self, caller: &$crate::platform::auth::Caller) -> Self {
                if !caller.sees_private_fields() {
                    $($(self.$field = None;)+)?
                }
                self.audit = $crate::platform::auth::Visible::visible_to(self.audit, caller);
                self
            }
        }
    };
    ($record:ty, key $id:expr, version $version:expr $(, hides $($field:ident),+)?) => {
        $crate::record!(@keyed $record, $id, $version);
        impl $crate::platform::auth::Visible for $record {
            fn visible_to(mut self, caller: &$crate::platform::auth::Caller) -> Self {
                if !caller.sees_private_fields() {
                    $($(self.$field = None;)+)?
                }
                self
            }
        }
    };
    (@keyed $record:ty, $id:expr, $version:expr) => {
        impl $crate::platform::resource::Keyed for $record {
            fn id(&self) -> i32 {
                ($id)(self)
            }
            fn version(&self) -> i64 {
                ($version)(self)
            }
        }
    };
}

/// A kind of record served under `/api/v1/{COLLECTION}`: what the plumbing needs to know of it.
pub trait Resource: 'static {
    /// What one record is called in messages and in the change log: "round".
    const NAME: &'static str;
    /// Its collection in URLs: "rounds".
    const COLLECTION: &'static str;
    /// Whether it is part of the schedule, whose reads the read cache keeps (see [`ReadCache`]).
    const SCHEDULE: bool;
    /// Who may read its records.
    const READ: Allowed = Allowed::Readers;
    /// Who may change them, and create and delete them unless the next two say otherwise.
    const WRITE: Allowed;
    /// Who may create them.
    const CREATE: Allowed = Self::WRITE;
    /// Who may delete them.
    const DELETE: Allowed = Self::WRITE;

    /// A record as answered.
    type Record: Serialize + Visible + Keyed + Clone + Send + 'static;
    /// The body of a POST.
    type Input: Input + Clone;
    /// The body of a PUT, and what a PATCH is applied to.
    type Change: Input + Serialize + Clone;
    /// The filters of the list.
    type Filter: DeserializeOwned + Clone + Send + 'static;

    /// Whether `caller` may do `access`: `Ok`, 401 or 403, as [`Resource::READ`],
    /// [`Resource::CREATE`], [`Resource::WRITE`] and [`Resource::DELETE`] say.
    fn authorize(caller: &Caller, access: Access) -> Result<(), ApiError> {
        match access {
            Access::Read => Self::READ.check(caller),
            Access::Create => Self::CREATE.check(caller),
            Access::Change => Self::WRITE.check(caller),
            Access::Delete => Self::DELETE.check(caller),
        }
    }

    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Self::Record>, ApiError>;
    /// A page, read in the caller's snapshot.
    fn list(
        _conn: &mut DbConnection,
        _filter: &Self::Filter,
        _paging: Paging,
    ) -> Result<Listing<Self::Record>, ApiError> {
        Err(not_served::<Self>("listed"))
    }
    fn insert(_conn: &mut DbConnection, _new: New<Self>) -> Result<Self::Record, ApiError> {
        Err(not_served::<Self>("created"))
    }
    /// The stored record as the body of a PUT, to which a PATCH is applied.
    fn change_of(record: &Self::Record) -> Self::Change;
    /// Writes the change, only if the record is still at the version expected: `None` if it is
    /// not (another write got in first).
    fn update(
        _conn: &mut DbConnection,
        _update: Update<Self>,
    ) -> Result<Option<Self::Record>, ApiError> {
        Err(not_served::<Self>("changed"))
    }
    /// Deletes the record, only if it is still at `expected` (when given): 404 if there is
    /// none, 409 if others still refer to it, `false` if it is at another version.
    fn delete(
        _conn: &mut DbConnection,
        _id: i32,
        _expected: Option<i64>,
    ) -> Result<bool, ApiError> {
        Err(not_served::<Self>("deleted"))
    }

    /// What else the creation of `record` writes, in its transaction, after its change-log
    /// entry (through the change log too).
    fn after_insert(
        _conn: &mut DbConnection,
        _record: &Self::Record,
        _author: Author<'_>,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// The answer to the POST that created `record` (what `GET` shows, unless the resource
    /// shows more once, such as a webhook's secret).
    fn created_answer(record: &Self::Record, caller: &Caller) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(record.clone().visible_to(caller))?)
    }

    /// What an `Idempotency-Key` keeps of the answer to the POST that created a record: the
    /// answer, unless it shows what must be kept nowhere but in the record's own row (a
    /// webhook's secret); [`Resource::replayed`] then reads that back from the row.
    fn kept_answer(answer: &StoredAnswer) -> Result<StoredAnswer, ApiError> {
        Ok(answer.clone())
    }

    /// A kept answer, replayed to a retry of its POST: as kept, or completed from the record
    /// as it is now (or refused, when the record no longer is what the answer showed).
    fn replayed(_conn: &mut DbConnection, kept: StoredAnswer) -> Result<StoredAnswer, ApiError> {
        Ok(kept)
    }
}

/// What every record shows of its writes: who made and last changed it (to organizers and
/// admins only), when, and its version. Flattened into the record's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Audit {
    /// The token subject that created it; shown to organizers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub created_by: Option<Subject>,
    /// The token subject that last changed it; shown to organizers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub updated_by: Option<Subject>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every write; the ETag is made from it.
    #[serde(skip)]
    #[schema(ignore)]
    pub version: i64,
}

impl Audit {
    /// The audit fields as the columns of the same names store them.
    pub fn stored(
        created_by: Option<String>,
        updated_by: Option<String>,
        created_at: NaiveDateTime,
        updated_at: NaiveDateTime,
        version: i64,
    ) -> Audit {
        Audit {
            created_by: created_by.map(Text::stored),
            updated_by: updated_by.map(Text::stored),
            created_at: Timestamp::from_naive(created_at),
            updated_at: Timestamp::from_naive(updated_at),
            version,
        }
    }
}

/// The [`Audit`] of a row with the five audit columns (`created_by`, `updated_by`, `created_at`,
/// `updated_at`, `version`).
#[macro_export]
macro_rules! audit {
    ($row:expr) => {
        $crate::platform::resource::Audit::stored(
            $row.created_by,
            $row.updated_by,
            $row.created_at,
            $row.updated_at,
            $row.version,
        )
    };
}

impl Visible for Audit {
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            self.created_by = None;
            self.updated_by = None;
        }
        self
    }
}

/// What a creation writes: the checked body, and who sends it.
pub struct New<'a, R: Resource + ?Sized> {
    pub input: R::Input,
    pub actor: Option<&'a str>,
}

/// What a change writes: the record as it is, the checked body, who sends it, and the version
/// the record must still be at (else nothing is written).
pub struct Update<'a, R: Resource + ?Sized> {
    pub current: R::Record,
    pub change: R::Change,
    pub actor: Option<&'a str>,
    pub expected: i64,
}

/// The error of a write a resource does not serve: no route leads to it.
fn not_served<R: Resource + ?Sized>(what: &str) -> ApiError {
    ApiError::Internal(format!("a {} is never {what} this way", R::NAME))
}

/// A page of a list, and when it stops holding by the passing of time alone (`None`: never).
pub struct Listing<T> {
    pub page: Page<T>,
    pub valid_until: Option<NaiveDateTime>,
}

impl<T> From<Page<T>> for Listing<T> {
    fn from(page: Page<T>) -> Self {
        Listing {
            page,
            valid_until: None,
        }
    }
}

/// The filter of a list that has none.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct NoFilter {}

/// The one idiom for "404 if missing".
pub fn found<T>(record: Option<T>, name: &str, id: i32) -> Result<T, ApiError> {
    record.ok_or_else(|| ApiError::not_found(name, id))
}

/// How writes are checked (`LHS_REQUIRE_IF_MATCH`, `LHS_IDEMPOTENCY_TTL`).
#[derive(Debug, Clone)]
pub struct WritePolicy {
    pub require_if_match: bool,
    pub idempotency_ttl: Duration,
}

/// Proof that the request's caller was authorized for what it asks: made only by
/// [`Ctx::authorize`], and taken by everything here that does work for a caller.
#[derive(Debug, Clone, Copy)]
pub struct Granted(());

/// What every handler needs: the database, the read cache, the validators, the caller, the
/// request's path, its conditions and idempotency key, and the client's address.
pub struct Ctx {
    pub db: web::Data<Database>,
    pub cache: web::Data<ReadCache>,
    pub validators: web::Data<Validators>,
    pub policy: web::Data<WritePolicy>,
    pub limits: web::Data<Limits>,
    pub caller: Caller,
    pub path: String,
    pub conditions: Conditions,
    pub idempotency: IdempotencyKey,
    pub client: IpAddr,
    /// Whether the request carried a token: then its answers are for that caller only.
    pub private: bool,
    /// The content coding the client prefers (`Accept-Encoding`).
    pub coding: Coding,
    /// The request's id (`X-Request-Id`), recorded in the change log.
    pub request_id: Option<Arc<str>>,
    /// A malformed `If-Match`, `If-None-Match` or `Idempotency-Key`: reported after the caller's
    /// rights are checked (see [`Ctx::authorize`]).
    header_error: Option<String>,
}

impl FromRequest for Ctx {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Ctx, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let data = (|| {
            Some((
                req.app_data::<web::Data<Database>>()?.clone(),
                req.app_data::<web::Data<ReadCache>>()?.clone(),
                req.app_data::<web::Data<Validators>>()?.clone(),
                req.app_data::<web::Data<WritePolicy>>()?.clone(),
                req.app_data::<web::Data<Limits>>()?.clone(),
            ))
        })();
        let caller = Caller::from_request(req, payload);
        let conditions = Conditions::from_headers(req.headers());
        let idempotency = IdempotencyKey::from_request(req, payload);
        let client = data.as_ref().map(|d| d.4.client(req));
        let path = req.path().to_owned();
        let request_id = telemetry::RequestId::of(req);
        let private = req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION);
        let coding = Coding::preferred(req.headers());
        Box::pin(async move {
            let (db, cache, validators, policy, limits) =
                data.ok_or_else(|| ApiError::Internal("application data is missing".to_owned()))?;
            let idempotency = idempotency.await;
            let header_error = match (&conditions, &idempotency) {
                (Err(error), _) | (_, Err(error)) => Some(error.to_string()),
                _ => None,
            };
            Ok(Ctx {
                db,
                cache,
                validators,
                policy,
                limits,
                caller: caller.await?,
                path,
                conditions: conditions.unwrap_or_default(),
                idempotency: idempotency.unwrap_or(IdempotencyKey(None)),
                client: client.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                private,
                coding,
                request_id,
                header_error,
            })
        })
    }
}

impl Ctx {
    /// Whether the caller may do `access` to `R` (401, 403), then whether the request's
    /// conditional and idempotency headers were well-formed (400). The first thing every
    /// handler does.
    pub fn authorize<R: Resource>(&self, access: Access) -> Result<Granted, ApiError> {
        R::authorize(&self.caller, access)?;
        self.granted()
    }

    /// [`Ctx::authorize`] for a route whose rule is not one resource's: `allowed` is the
    /// caller's check (`caller.require(Role::Organizer)`, say).
    pub fn authorize_with(&self, allowed: Result<(), ApiError>) -> Result<Granted, ApiError> {
        allowed?;
        self.granted()
    }

    fn granted(&self) -> Result<Granted, ApiError> {
        match &self.header_error {
            Some(why) => Err(ApiError::BadRequest(why.clone())),
            None => Ok(Granted(())),
        }
    }

    /// Answers a read with its `ETag`, or 304 when `If-None-Match` names it. Reads of the
    /// schedule go through the read cache (in one snapshot with the revision they are kept
    /// under); others are rendered as they are, in one snapshot when `snapshot` (a read of
    /// several statements). `query` is part of the answer's identity.
    pub async fn read<F>(
        &self,
        _: Granted,
        schedule: bool,
        snapshot: bool,
        query: Option<&QueryValues>,
        render: F,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<Rendered, ApiError> + Send + 'static,
    {
        let if_none_match = self.conditions.if_none_match.as_ref();
        let answer = if schedule {
            let key = Key::new(
                &self.path,
                query.map(QueryValues::canonical).unwrap_or_default(),
                self.caller.sees_private_fields(),
            );
            self.cache
                .answer(&self.db, key, if_none_match, snapshot, render)
                .await?
        } else {
            let rendered = if snapshot {
                self.db.read_snapshot(render).await?
            } else {
                self.db.call(render).await?
            };
            Answer::of(rendered, if_none_match)?
        };
        Ok(self.respond(answer))
    }

    /// A read of the change log (the audit trail, the feed, webhook deliveries), not cached:
    /// the log is numbered first, then read in one snapshot, in one hop to the blocking pool.
    pub async fn read_log<F>(&self, _: Granted, render: F) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<Rendered, ApiError> + Send + 'static,
    {
        let rendered = self
            .db
            .read_snapshot_after(changelog::number, render)
            .await?;
        let answer = Answer::of(rendered, self.conditions.if_none_match.as_ref())?;
        Ok(self.respond(answer))
    }

    /// A read of the schedule as the public sees it, whoever asks (the service's own pages):
    /// kept in the read cache under the path and `variant` (what else the answer depends on,
    /// such as the host a link names), rendered in one snapshot.
    pub async fn read_public<F>(
        &self,
        _: Granted,
        variant: String,
        render: F,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<Rendered, ApiError> + Send + 'static,
    {
        let key = Key::new(&self.path, variant, false);
        let answer = self
            .cache
            .answer(
                &self.db,
                key,
                self.conditions.if_none_match.as_ref(),
                true,
                render,
            )
            .await?;
        Ok(self.respond(answer))
    }

    /// Answers a read rendered without the database (its `ETag` is a hash of its body), or 304
    /// when `If-None-Match` names it.
    pub fn answer(&self, _: Granted, rendered: Rendered) -> Result<HttpResponse, ApiError> {
        let answer = Answer::of(rendered, self.conditions.if_none_match.as_ref())?;
        Ok(self.respond(answer))
    }

    fn respond(&self, answer: Answer) -> HttpResponse {
        match answer {
            Answer::Fresh { body, etag } => body.ok(self.coding, &etag, self.private),
            Answer::NotModified { etag, compressible } => {
                compression::not_modified(compressible, self.coding, &etag, self.private)
            }
        }
    }

    /// The subject to record as the author of a write.
    pub fn actor(&self) -> Option<String> {
        self.caller.subject.clone()
    }

    /// 428 when the service requires `If-Match` and the request has none.
    pub fn require_if_match(&self) -> Result<(), ApiError> {
        if self.policy.require_if_match && self.conditions.if_match.is_none() {
            return Err(ApiError::PreconditionRequired);
        }
        Ok(())
    }

    /// Runs a write in one transaction, with what the change log records of it.
    pub async fn write<T, F>(&self, _: Granted, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection, Author<'_>) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let (actor, request_id) = (self.actor(), self.request_id.clone());
        self.db
            .write(move |conn| {
                f(
                    conn,
                    Author {
                        actor: actor.as_deref(),
                        request_id: request_id.as_deref(),
                    },
                )
            })
            .await
    }
}

/// Who made a write and in which request: what the change log records besides the records.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub actor: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

impl<'a> Author<'a> {
    /// Records a write of a `resource` record in the change log (see [`changelog::record`]).
    pub fn record<T: Serialize>(
        self,
        conn: &mut DbConnection,
        resource: &'static str,
        id: i32,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Result<(), ApiError> {
        let action = match (before, after) {
            (None, _) => Action::Created,
            (Some(_), Some(_)) => Action::Updated,
            (Some(_), None) => Action::Deleted,
        };
        changelog::record(
            conn,
            Change {
                resource,
                id,
                action,
                before: before.map(serde_json::to_value).transpose()?,
                after: after.map(serde_json::to_value).transpose()?,
                actor: self.actor,
                request_id: self.request_id,
            },
        )
    }
}

/// The version `If-Match` allows writing over: `None` for `*` or no header, the current
/// version when a tag names it, 412 otherwise.
fn expected_version<R: Resource>(
    if_match: Option<&TagList>,
    current: &R::Record,
    private: bool,
) -> Result<Option<i64>, ApiError> {
    match if_match {
        None | Some(TagList::Any) => Ok(None),
        Some(tags) => {
            let etag = http::record_etag(current.version(), private);
            if tags.matches_strongly(&etag) {
                Ok(Some(current.version()))
            } else {
                Err(ApiError::PreconditionFailed {
                    current: Some(etag),
                })
            }
        }
    }
}

/// 412 naming the record's current ETag (after a write lost the race to another).
fn changed_since<R: Resource>(conn: &mut DbConnection, id: i32, private: bool) -> ApiError {
    let current = R::find(conn, id)
        .ok()
        .flatten()
        .map(|record| http::record_etag(record.version(), private));
    ApiError::PreconditionFailed { current }
}

/// A written record's answer: its JSON and its ETag.
fn written<R: Resource>(status: StatusCode, record: R::Record, caller: &Caller) -> HttpResponse {
    let etag = http::record_etag(record.version(), caller.sees_private_fields());
    HttpResponse::build(status)
        .insert_header((ETAG, etag))
        .json(record.visible_to(caller))
}

/// What the POST that created `record` answers (and stores under its `Idempotency-Key`).
fn created<R: Resource>(record: &R::Record, caller: &Caller) -> Result<StoredAnswer, ApiError> {
    Ok(StoredAnswer {
        status: StatusCode::CREATED.as_u16(),
        location: Some(format!("{API_PREFIX}/{}/{}", R::COLLECTION, record.id())),
        etag: Some(http::record_etag(
            record.version(),
            caller.sees_private_fields(),
        )),
        body: R::created_answer(record, caller)?.to_string(),
    })
}

/// `POST /{collection}`.
pub async fn create<R: Resource>(ctx: Ctx, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<R>(Access::Create)?;
    create_granted::<R>(ctx, granted, body).await
}

/// [`create`] once the handler has authorized the caller (and done what it does besides).
pub async fn create_granted<R: Resource>(
    ctx: Ctx,
    granted: Granted,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let body = body.value()?;
    let request = serde_json::to_vec(&body)?;
    let checked = ctx.validators.body::<R::Input>(body);
    create_with::<R>(ctx, granted, checked, &request, |_| Ok(())).await
}

/// `POST` of a body already checked (and perhaps amended by the handler), with `precheck` run
/// first in the write's transaction (a 404 for a parent in the path, say); `request` is the
/// body as sent, the fingerprint of an idempotent request.
///
/// A body that passed its schema and rules is written without looking up its references
/// first: the foreign keys refuse one that names no record, and only then is the write made
/// again, looking them up first, for the 422 that names each one (the database names only the
/// first it met, and SQLite not even that). A body refused anyway has its references looked
/// up, so that one answer lists every error.
pub async fn create_with<R: Resource>(
    ctx: Ctx,
    _: Granted,
    checked: Checked<R::Input>,
    request: &[u8],
    precheck: impl Fn(&mut DbConnection) -> Result<(), ApiError> + Clone + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    if ctx.idempotency.0.is_none() && checked.is_refused() && checked.references().is_empty() {
        // Nothing to look up: refuse a bad body without a transaction.
        return Err(checked
            .into_result()
            .err()
            .unwrap_or_else(|| ApiError::Internal("a refused body without errors".to_owned())));
    }
    let key = ctx.idempotency.0.clone();
    let fingerprint = Fingerprint::new(ctx.caller.subject.as_deref(), "POST", &ctx.path, request);
    let ttl = ctx.policy.idempotency_ttl;
    let caller = ctx.caller.clone();
    let request_id = ctx.request_id.clone();
    let validators = ctx.validators.clone();
    let attempt = move |look_up: bool| {
        let (checked, key, fingerprint, caller, precheck, request_id, validators) = (
            checked.clone(),
            key.clone(),
            fingerprint.clone(),
            caller.clone(),
            precheck.clone(),
            request_id.clone(),
            validators.clone(),
        );
        move |conn: &mut DbConnection| -> Result<(StoredAnswer, bool), ApiError> {
            precheck(conn)?;
            if let Some(key) = &key {
                if let Some(stored) = idempotency::replay(conn, key, &fingerprint)? {
                    return Ok((R::replayed(conn, stored)?, true));
                }
            }
            let input = if look_up || checked.is_refused() {
                validators.verified(conn, checked)?
            } else {
                checked.into_result()?
            };
            let new = New {
                input,
                actor: caller.subject.as_deref(),
            };
            let record = R::insert(conn, new)?;
            let author = Author {
                actor: caller.subject.as_deref(),
                request_id: request_id.as_deref(),
            };
            author.record(conn, R::NAME, record.id(), None, Some(&record))?;
            R::after_insert(conn, &record, author)?;
            let answer = created::<R>(&record, &caller)?;
            if let Some(key) = &key {
                idempotency::remember(conn, key, &fingerprint, &R::kept_answer(&answer)?, ttl)?;
            }
            Ok((answer, false))
        }
    };
    let (mut look_up, mut key_retried) = (false, false);
    let (answer, replayed) = loop {
        match ctx.db.write(attempt(look_up)).await {
            // A reference names no record: again, looking the references up first.
            Err(ApiError::DanglingReference) if !look_up => look_up = true,
            // Another request with the same key committed first, and this one was rolled back
            // when it stored the key: now its answer can be replayed.
            Err(ApiError::Conflict(_)) if ctx.idempotency.0.is_some() && !key_retried => {
                key_retried = true;
            }
            other => break other?,
        }
    };
    Ok(answer.response(replayed))
}

/// A `POST` that is not a resource's creation (a plan, a record under another's path) written
/// in one transaction, its answer kept under the request's `Idempotency-Key` as
/// [`create_with`] keeps a creation's: a retry with the key and the same body (`request`, as
/// sent) gets the first answer again, the key with another request is 422.
pub async fn write_idempotent<F>(
    ctx: &Ctx,
    granted: Granted,
    request: &[u8],
    write: F,
) -> Result<HttpResponse, ApiError>
where
    F: Fn(&mut DbConnection, Author<'_>) -> Result<StoredAnswer, ApiError> + Clone + Send + 'static,
{
    let key = ctx.idempotency.0.clone();
    let fingerprint = Fingerprint::new(ctx.caller.subject.as_deref(), "POST", &ctx.path, request);
    let ttl = ctx.policy.idempotency_ttl;
    let attempt = || {
        let (key, fingerprint, write) = (key.clone(), fingerprint.clone(), write.clone());
        move |conn: &mut DbConnection,
              author: Author<'_>|
              -> Result<(StoredAnswer, bool), ApiError> {
            if let Some(key) = &key {
                if let Some(stored) = idempotency::replay(conn, key, &fingerprint)? {
                    return Ok((stored, true));
                }
            }
            let answer = write(conn, author)?;
            if let Some(key) = &key {
                idempotency::remember(conn, key, &fingerprint, &answer, ttl)?;
            }
            Ok((answer, false))
        }
    };
    let mut key_retried = false;
    let (answer, replayed) = loop {
        match ctx.write(granted, attempt()).await {
            // Another request with the same key committed first: now its answer replays.
            Err(ApiError::Conflict(_)) if key.is_some() && !key_retried => key_retried = true,
            other => break other?,
        }
    };
    Ok(answer.response(replayed))
}

/// A resource whose creation can also be written, with its change-log entry, in one statement
/// without a transaction: an opt-in fast path (PostgreSQL's `changelog::Logged`) for the one
/// resource where it was measured to matter (see BENCHMARKS.md). It writes what
/// [`Resource::insert`] and the change log write; a test of the resource compares the two.
pub trait LoggedInsert: Resource {
    /// The record created, or `None` where this creation cannot be one statement (on SQLite,
    /// say): then the usual way is taken.
    fn insert_logged(
        conn: &mut DbConnection,
        new: &New<Self>,
        author: Author<'_>,
    ) -> Result<Option<Self::Record>, ApiError>;
}

/// [`create_with`] through [`LoggedInsert`] first, when nothing else must happen in the write:
/// no `Idempotency-Key` (its replay and storage are statements of their own) and a body that
/// passed. A reference that names no record sends it the usual way, which names each one, as
/// does a body [`LoggedInsert::insert_logged`] declines; `precheck` runs in that usual way only,
/// so a body that needs one must be declined by `insert_logged`; so must one whose
/// [`Resource::after_insert`] writes anything (it runs in the usual way's transaction only).
pub async fn create_logged<R: LoggedInsert>(
    ctx: Ctx,
    granted: Granted,
    checked: Checked<R::Input>,
    request: &[u8],
    precheck: impl Fn(&mut DbConnection) -> Result<(), ApiError> + Clone + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    if ctx.idempotency.0.is_none() && !checked.is_refused() {
        let input = checked.clone().into_result()?;
        let (caller, request_id) = (ctx.caller.clone(), ctx.request_id.clone());
        let written = ctx
            .db
            .call(move |conn| {
                let new = New {
                    input,
                    actor: caller.subject.as_deref(),
                };
                let author = Author {
                    actor: caller.subject.as_deref(),
                    request_id: request_id.as_deref(),
                };
                match R::insert_logged(conn, &new, author)? {
                    Some(record) => Ok(Some(created::<R>(&record, &caller)?)),
                    None => Ok(None),
                }
            })
            .await;
        match written {
            Ok(Some(answer)) => return Ok(answer.response(false)),
            Ok(None) | Err(ApiError::DanglingReference) => {}
            Err(error) => return Err(error),
        }
    }
    create_with::<R>(ctx, granted, checked, request, precheck).await
}

/// `GET /{collection}/{id}`.
pub async fn get<R: Resource>(ctx: Ctx, id: i32) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<R>(Access::Read)?;
    let caller = ctx.caller.clone();
    ctx.read(granted, R::SCHEDULE, false, None, move |conn| {
        let record = found(R::find(conn, id)?, R::NAME, id)?;
        let etag = http::record_etag(record.version(), caller.sees_private_fields());
        Ok(Rendered::json(&record.visible_to(&caller))?.with_etag(etag))
    })
    .await
}

/// `GET /{collection}`.
pub async fn list<R: Resource>(ctx: Ctx, query: Query) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<R>(Access::Read)?;
    let query = query.values()?;
    let filter: R::Filter = query.get()?;
    list_filtered::<R>(ctx, granted, &query, filter, |_| Ok(())).await
}

/// A list with a filter the handler completed (from the path, say), with `precheck` run first
/// in the same snapshot (a 404 for a parent in the path).
pub async fn list_filtered<R: Resource>(
    ctx: Ctx,
    granted: Granted,
    query: &QueryValues,
    filter: R::Filter,
    precheck: impl FnOnce(&mut DbConnection) -> Result<(), ApiError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let paging: Paging = query.get()?;
    let caller = ctx.caller.clone();
    ctx.read(granted, R::SCHEDULE, true, Some(query), move |conn| {
        precheck(conn)?;
        let listing = R::list(conn, &filter, paging)?;
        Ok(Rendered::json(&listing.page.visible_to(&caller))?.until(listing.valid_until))
    })
    .await
}

/// `PUT /{collection}/{id}`: replaces the whole record.
pub async fn replace<R: Resource>(
    ctx: Ctx,
    id: i32,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<R>(Access::Change)?;
    ctx.require_if_match()?;
    let checked = ctx.validators.body::<R::Change>(body.value()?);
    change::<R>(ctx, granted, id, move |_current| Ok(checked.clone())).await
}

/// [`replace`] of a body the handler looked at after authorizing.
pub async fn replace_granted<R: Resource>(
    ctx: Ctx,
    granted: Granted,
    id: i32,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    ctx.require_if_match()?;
    let checked = ctx.validators.body::<R::Change>(body);
    change::<R>(ctx, granted, id, move |_current| Ok(checked.clone())).await
}

/// `PATCH /{collection}/{id}`: the stored record with the merge patch (RFC 7386) applied,
/// checked by the same schema and rules as a PUT.
pub async fn patch<R: Resource>(
    ctx: Ctx,
    id: i32,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<R>(Access::Change)?;
    let body = body.value()?;
    patch_granted::<R>(ctx, granted, id, body).await
}

/// [`patch`] of a body the handler looked at after authorizing.
pub async fn patch_granted<R: Resource>(
    ctx: Ctx,
    granted: Granted,
    id: i32,
    patch: Value,
) -> Result<HttpResponse, ApiError> {
    ctx.require_if_match()?;
    let validators = ctx.validators.clone();
    change::<R>(ctx, granted, id, move |current| {
        let mut document = serde_json::to_value(R::change_of(current))?;
        merge_patch(&mut document, &patch);
        Ok(validators.body::<R::Change>(document))
    })
    .await
}

/// How often a write without `If-Match` is made again when another write got in between its
/// read and its write (so that a patch never writes over a change it did not see).
const WRITE_ATTEMPTS: usize = 5;

/// A PUT or PATCH: `make` turns the current record into the change, which is written only
/// over the version it was made from. With `If-Match`, that version must be the one named (412
/// otherwise); without, a lost race is run again. References are checked as in
/// [`create_with`]: by the foreign keys, and looked up only after one refused the write.
async fn change<R: Resource>(
    ctx: Ctx,
    _: Granted,
    id: i32,
    make: impl Fn(&R::Record) -> Result<Checked<R::Change>, ApiError> + Clone + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let if_match = ctx.conditions.if_match.clone();
    let caller = ctx.caller.clone();
    let private = caller.sees_private_fields();
    let request_id = ctx.request_id.clone();
    let validators = ctx.validators.clone();
    let attempt = move |look_up: bool| {
        let (if_match, caller, request_id, make, validators) = (
            if_match.clone(),
            caller.clone(),
            request_id.clone(),
            make.clone(),
            validators.clone(),
        );
        move |conn: &mut DbConnection| -> Result<R::Record, ApiError> {
            let author = Author {
                actor: caller.subject.as_deref(),
                request_id: request_id.as_deref(),
            };
            for _ in 0..WRITE_ATTEMPTS {
                let current = existing::<R>(conn, id, if_match.is_some())?;
                let asked = expected_version::<R>(if_match.as_ref(), &current, private)?;
                let version = current.version();
                let checked = make(&current)?;
                let change = if look_up || checked.is_refused() {
                    validators.verified(conn, checked)?
                } else {
                    checked.into_result()?
                };
                let before = current.clone();
                let update = Update {
                    current,
                    change,
                    actor: author.actor,
                    expected: version,
                };
                if let Some(record) = R::update(conn, update)? {
                    author.record(conn, R::NAME, id, Some(&before), Some(&record))?;
                    return Ok(record);
                }
                if asked.is_some() {
                    return Err(changed_since::<R>(conn, id, private));
                }
            }
            Err(ApiError::Unavailable(
                "the record kept changing while this write was applied; retry".to_owned(),
            ))
        }
    };
    let mut look_up = false;
    let record = loop {
        match ctx.db.write(attempt(look_up)).await {
            // A reference names no record: again, looking the references up first.
            Err(ApiError::DanglingReference) if !look_up => look_up = true,
            other => break other?,
        }
    };
    Ok(written::<R>(StatusCode::OK, record, &ctx.caller))
}

/// The record to change: 404 if there is none (412 if `If-Match` expected one).
fn existing<R: Resource>(
    conn: &mut DbConnection,
    id: i32,
    if_match: bool,
) -> Result<R::Record, ApiError> {
    match R::find(conn, id)? {
        Some(record) => Ok(record),
        None if if_match => Err(ApiError::PreconditionFailed { current: None }),
        None => Err(ApiError::not_found(R::NAME, id)),
    }
}

/// `DELETE /{collection}/{id}`.
pub async fn delete<R: Resource>(ctx: Ctx, id: i32) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<R>(Access::Delete)?;
    delete_with::<R, ()>(ctx, granted, id, |_, _| Ok(())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// [`delete`] with `first` run in the same transaction, after the record's version is checked
/// and before it is deleted (what refers to it goes with it, say); what `first` returns comes
/// back once the transaction has committed.
pub async fn delete_with<R: Resource, T: Send + 'static>(
    ctx: Ctx,
    granted: Granted,
    id: i32,
    first: impl FnOnce(&mut DbConnection, Author<'_>) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    ctx.require_if_match()?;
    let if_match = ctx.conditions.if_match.clone();
    let private = ctx.caller.sees_private_fields();
    ctx.write(granted, move |conn, author| {
        let current = existing::<R>(conn, id, if_match.is_some())?;
        let expected = match &if_match {
            Some(_) => expected_version::<R>(if_match.as_ref(), &current, private)?,
            None => None,
        };
        let done = first(conn, author)?;
        if !R::delete(conn, id, expected)? {
            return Err(changed_since::<R>(conn, id, private));
        }
        author.record(conn, R::NAME, id, Some(&current), None)?;
        Ok(done)
    })
    .await
}

/// The handlers of a resource's collection and records, declared once: each operation is a
/// line naming its handler, its path and its summary, and comes out as the actix handler with
/// its OpenAPI annotation, one line into the function of this module that serves it.
///
/// ```text
/// resource_handlers! {
///     Departments, one = "department", many = "departments", tag = "departments",
///     record = Department, input = DepartmentInput, change = DepartmentInput,
///     read = [(), ("bearer" = [])], write = [("bearer" = ["admin"])];
///     list list_departments "/departments" "List departments, by name" [Paging];
///     create create_department "/departments" "Create a department";
///     ...
/// }
/// ```
#[macro_export]
macro_rules! resource_handlers {
    (
        $resource:ty, one = $one:literal, many = $many:literal, tag = $tag:literal,
        record = $record:ty, input = $input:ty, change = $change:ty,
        read = $read:tt, write = $write:tt;
        $($op:ident $handler:ident $path:literal $summary:literal $([$($params:tt)*])?;)*
    ) => {
        // In a module of their own: utoipa knows an actix handler by its attribute's bare name
        // (`#[get(...)]`), which must be in scope without clashing with the caller's imports.
        #[doc(hidden)]
        mod resource_handlers {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use actix_web::{delete, get, patch, post, put};
            $(
                $crate::resource_handlers!(@$op $handler $path $summary [$($($params)*)?]
                    $resource, $one, $many, $tag, $record, $input, $change, $read, $write);
            )*
        }
        pub use resource_handlers::*;
    };
    (@list $handler:ident $path:literal $summary:literal [$($params:tt)*]
        $resource:ty, $one:literal, $many:literal, $tag:literal, $record:ty, $input:ty,
        $change:ty, [$($read:tt)*], [$($write:tt)*]) => {
        #[doc = $summary]
        #[utoipa::path(
            tag = $tag,
            security($($read)*),
            params($($params)*),
            responses((status = 200, description = concat!("A page of ", $many),
                body = $crate::platform::pagination::Page<$record>),
                $crate::platform::error::ReadErrors)
        )]
        #[get($path)]
        pub async fn $handler(
            ctx: $crate::platform::resource::Ctx,
            query: $crate::platform::validate::Query,
        ) -> Result<actix_web::HttpResponse, $crate::platform::error::ApiError> {
            $crate::platform::resource::list::<$resource>(ctx, query).await
        }
    };
    (@create $handler:ident $path:literal $summary:literal [$($params:tt)*]
        $resource:ty, $one:literal, $many:literal, $tag:literal, $record:ty, $input:ty,
        $change:ty, [$($read:tt)*], [$($write:tt)*]) => {
        #[doc = $summary]
        #[utoipa::path(
            tag = $tag,
            security($($write)*),
            params($($params)*),
            request_body = $input,
            responses(
                (status = 201, description = "Created", body = $record,
                    headers(("Location" = $crate::platform::resource::HeaderText,
                        description = "URL of the new record"))),
                $crate::platform::error::WriteErrors
            )
        )]
        #[post($path)]
        pub async fn $handler(
            ctx: $crate::platform::resource::Ctx,
            body: $crate::platform::http::JsonBody,
        ) -> Result<actix_web::HttpResponse, $crate::platform::error::ApiError> {
            $crate::platform::resource::create::<$resource>(ctx, body).await
        }
    };
    (@get $handler:ident $path:literal $summary:literal [$($params:tt)*]
        $resource:ty, $one:literal, $many:literal, $tag:literal, $record:ty, $input:ty,
        $change:ty, [$($read:tt)*], [$($write:tt)*]) => {
        #[doc = $summary]
        #[utoipa::path(
            tag = $tag,
            security($($read)*),
            params(("id" = $crate::platform::fields::Id, Path, description = concat!("The ", $one, "'s id"))),
            responses((status = 200, description = concat!("The ", $one), body = $record),
                $crate::platform::error::ReadErrors)
        )]
        #[get($path)]
        pub async fn $handler(
            ctx: $crate::platform::resource::Ctx,
            id: actix_web::web::Path<i32>,
        ) -> Result<actix_web::HttpResponse, $crate::platform::error::ApiError> {
            $crate::platform::resource::get::<$resource>(ctx, id.into_inner()).await
        }
    };
    (@replace $handler:ident $path:literal $summary:literal [$($params:tt)*]
        $resource:ty, $one:literal, $many:literal, $tag:literal, $record:ty, $input:ty,
        $change:ty, $read:tt, $write:tt) => {
        $crate::resource_handlers!(@write_one put replace "replaced" [request_body = $change]
            $handler $path $summary $resource, $one, $tag, $record, $write);
    };
    (@patch $handler:ident $path:literal $summary:literal [$($params:tt)*]
        $resource:ty, $one:literal, $many:literal, $tag:literal, $record:ty, $input:ty,
        $change:ty, $read:tt, $write:tt) => {
        $crate::resource_handlers!(@write_one patch patch "changed" [
            request_body(content = $change, content_type = "application/merge-patch+json",
                description = "Fields to change; `null` clears an optional field; arrays are replaced whole")
        ] $handler $path $summary $resource, $one, $tag, $record, $write);
    };
    // A PUT or PATCH of one record: its `$verb`, the function of this module that serves it,
    // what the answer's record is ("replaced", "changed"), and how the body is documented.
    (@write_one $verb:ident $serve:ident $done:literal [$($body:tt)*]
        $handler:ident $path:literal $summary:literal
        $resource:ty, $one:literal, $tag:literal, $record:ty, [$($write:tt)*]) => {
        #[doc = $summary]
        #[utoipa::path(
            tag = $tag,
            security($($write)*),
            params(("id" = $crate::platform::fields::Id, Path, description = concat!("The ", $one, "'s id"))),
            $($body)*,
            responses((status = 200, description = concat!("The ", $one, " as ", $done), body = $record),
                $crate::platform::error::WriteErrors)
        )]
        #[$verb($path)]
        pub async fn $handler(
            ctx: $crate::platform::resource::Ctx,
            id: actix_web::web::Path<i32>,
            body: $crate::platform::http::JsonBody,
        ) -> Result<actix_web::HttpResponse, $crate::platform::error::ApiError> {
            $crate::platform::resource::$serve::<$resource>(ctx, id.into_inner(), body).await
        }
    };
    (@delete $handler:ident $path:literal $summary:literal [$($params:tt)*]
        $resource:ty, $one:literal, $many:literal, $tag:literal, $record:ty, $input:ty,
        $change:ty, [$($read:tt)*], [$($write:tt)*]) => {
        #[doc = $summary]
        #[utoipa::path(
            tag = $tag,
            security($($write)*),
            params(("id" = $crate::platform::fields::Id, Path, description = concat!("The ", $one, "'s id"))),
            responses((status = 204, description = "Deleted"), $crate::platform::error::WriteErrors)
        )]
        #[delete($path)]
        pub async fn $handler(
            ctx: $crate::platform::resource::Ctx,
            id: actix_web::web::Path<i32>,
        ) -> Result<actix_web::HttpResponse, $crate::platform::error::ApiError> {
            $crate::platform::resource::delete::<$resource>(ctx, id.into_inner()).await
        }
    };
}
