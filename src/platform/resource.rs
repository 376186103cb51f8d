//! The CRUD plumbing, written once: create, get, list, replace, patch and delete of any
//! [`Resource`]. A resource module declares its types, its queries and its own rules; its
//! handlers carry the OpenAPI annotations and are one line into the functions here.
//!
//! Every write is atomic ([`Database::write_checked`]): the body is checked against its schema
//! first, the references it makes are checked by the foreign keys of the write itself (so they
//! cannot vanish before it), and a failure anywhere changes nothing. A record and its
//! change-log entry written in one statement need no transaction at all (PostgreSQL).
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
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::platform::auth::{Caller, Visible};
use crate::platform::cache::{self, Answer, Key, ReadCache, Rendered, Revised, WorkerRender};
use crate::platform::changelog::{self, Action, Change};
use crate::platform::db::worker::OnConnection;
use crate::platform::db::{Atomicity, Database, DbConnection, WorkerConnections};
use crate::platform::error::ApiError;
use crate::platform::fields::RefKind;
use crate::platform::http::{self, Conditions, TagList};
use crate::platform::idempotency::{self, Fingerprint, IdempotencyKey, StoredAnswer};
use crate::platform::pagination::{Page, Paging};
use crate::platform::ratelimit::Limits;
use crate::platform::schema::{departments, rounds, speakers};
use crate::platform::telemetry;
use crate::platform::validate::{
    merge_patch, Checked, Input, Query, QueryValues, Reference, Validators,
};

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

/// A resource's PostgreSQL reads on a worker's own connection (see [`Resource::ON_WORKER`]):
/// each reads the schedule's revision in the same statement.
pub struct OnWorker<R: Resource + ?Sized> {
    pub find: WorkerFind<R>,
    pub list: WorkerList<R>,
}

/// [`Resource::find_revised`] on a worker's own connection.
pub type WorkerFind<R> = for<'c> fn(
    &'c diesel_async::AsyncPgConnection,
    i32,
) -> OnConnection<'c, Revised<Option<<R as Resource>::Record>>>;

/// [`Resource::insert_logged`] on a worker's own connection.
pub type WorkerInsert<R> = for<'c> fn(
    &'c diesel_async::AsyncPgConnection,
    &'c <R as Resource>::Input,
    Option<&'c str>,
    Option<&'c str>,
) -> OnConnection<'c, Option<<R as Resource>::Record>>;

/// [`Resource::list_revised`] on a worker's own connection.
pub type WorkerList<R> = for<'c> fn(
    &'c diesel_async::AsyncPgConnection,
    &'c <R as Resource>::Filter,
    Paging,
) -> OnConnection<'c, Revised<Listing<<R as Resource>::Record>>>;

/// A kind of record served under `/api/v1/{COLLECTION}`.
pub trait Resource: 'static {
    /// What one record is called in messages: "round".
    const NAME: &'static str;
    /// Its collection in URLs: "rounds".
    const COLLECTION: &'static str;
    /// Whether it is part of the schedule, whose reads the read cache keeps (see [`ReadCache`]).
    const SCHEDULE: bool;

    /// A record as answered.
    type Record: Serialize + Visible + Clone + Send + 'static;
    /// The body of a POST.
    type Input: Input;
    /// The body of a PUT, and what a PATCH is applied to.
    type Change: Input + Serialize;
    /// The filters of the list.
    type Filter: DeserializeOwned + Clone + Send + 'static;

    /// Whether `caller` may do `access`: `Ok`, 401 or 403.
    fn authorize(caller: &Caller, access: Access) -> Result<(), ApiError>;

    fn id(record: &Self::Record) -> i32;
    /// Bumped by every write to the record (and, for a round, to what it shows of others).
    fn version(record: &Self::Record) -> i64;
    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Self::Record>, ApiError>;
    fn list(
        conn: &mut DbConnection,
        filter: &Self::Filter,
        paging: Paging,
    ) -> Result<Listing<Self::Record>, ApiError>;
    /// [`Resource::find`] for the read cache: with the schedule's revision read in the same
    /// snapshot, and nothing else read when it is still `known` (see [`ReadCache::answer`]).
    /// A resource that can read both in one statement says so here.
    fn find_revised(
        conn: &mut DbConnection,
        id: i32,
        known: Option<i64>,
    ) -> Result<Revised<Option<Self::Record>>, ApiError> {
        cache::in_snapshot(conn, known, |conn| Self::find(conn, id))
    }
    /// [`Resource::list`] for the read cache, as [`Resource::find_revised`].
    fn list_revised(
        conn: &mut DbConnection,
        filter: &Self::Filter,
        paging: Paging,
        known: Option<i64>,
    ) -> Result<Revised<Listing<Self::Record>>, ApiError> {
        cache::in_snapshot(conn, known, |conn| Self::list(conn, filter, paging))
    }
    /// [`Resource::find_revised`] and [`Resource::list_revised`] on PostgreSQL, on the HTTP
    /// worker's own connection (see [`crate::platform::db::worker`]), for a resource that reads a record or
    /// a page with its revision in one statement. `None`: its reads stay on the blocking pool.
    const ON_WORKER: Option<OnWorker<Self>> = None;
    fn insert(
        conn: &mut DbConnection,
        input: Self::Input,
        actor: Option<&str>,
    ) -> Result<Self::Record, ApiError>;
    /// [`Resource::insert`] and the record's change-log entry in one statement, which needs no
    /// transaction, where the resource has one (on PostgreSQL: see [`changelog::Logged`]).
    /// `None` where it has not: then the write takes the usual way, `insert` and
    /// [`changelog::record`] in one transaction.
    fn insert_logged(
        _conn: &mut DbConnection,
        _input: &Self::Input,
        _actor: Option<&str>,
        _request_id: Option<&str>,
    ) -> Result<Option<Self::Record>, ApiError> {
        Ok(None)
    }
    /// [`Resource::insert_logged`] on PostgreSQL, on the HTTP worker's own connection (see
    /// [`crate::platform::db::worker`]): the statement is the write, so it needs no transaction and no
    /// hand-off to the blocking pool. `None`: creations take the blocking pool.
    const INSERT_ON_WORKER: Option<WorkerInsert<Self>> = None;
    /// The answer to the POST that created `record` (what `GET` shows, unless the resource
    /// shows more once, such as a webhook's secret).
    fn created_answer(record: &Self::Record, caller: &Caller) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(record.clone().visible_to(caller))?)
    }
    /// The stored record as the body of a PUT, to which a PATCH is applied.
    fn change_of(record: &Self::Record) -> Self::Change;
    /// Writes `change` over `current` and bumps its version, only if the record is still at
    /// version `expected`: `None` if it is not (another write got in first).
    fn update(
        conn: &mut DbConnection,
        current: Self::Record,
        change: Self::Change,
        actor: Option<&str>,
        expected: i64,
    ) -> Result<Option<Self::Record>, ApiError>;
    /// [`Resource::update`] and its change-log entry (the record before: `current`) in one
    /// statement, where the resource has one for this change (see
    /// [`Resource::insert_logged`]).
    fn update_logged(
        _conn: &mut DbConnection,
        _current: &Self::Record,
        _change: &Self::Change,
        _log: &LogContext<'_>,
        _expected: i64,
    ) -> Result<OneStatement<Self::Record>, ApiError> {
        Ok(OneStatement::Unsupported)
    }
    /// Deletes the record, only if it is still at `expected` (when given): 404 if there is
    /// none, 409 if others still refer to it, `false` if it is at another version.
    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError>;
}

/// What a change log entry records of a write besides the records: who made it and in which
/// request.
#[derive(Debug, Clone, Copy)]
pub struct LogContext<'a> {
    pub actor: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// What a write in one statement did (see [`Resource::update_logged`]).
pub enum OneStatement<T> {
    /// Written, and recorded in the change log.
    Written(T),
    /// Nothing written: the record is no longer at the version expected.
    Stale,
    /// The resource has no single statement for this change: it takes the usual way.
    Unsupported,
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

/// Where the feeds point and how their events are named (`LHS_PUBLIC_URL`,
/// `LHS_CALENDAR_DOMAIN`; see the `calendar` module).
#[derive(Debug, Clone)]
pub struct CalendarSettings {
    /// The service's public address, such as `https://rounds.example.org`; events link to
    /// their round there.
    pub public_url: Option<String>,
    /// The right-hand side of every event's UID: `round-<id>@<domain>`.
    pub domain: String,
}

impl CalendarSettings {
    /// The domain defaults to the host of the public URL, or `lhs-rounds.invalid`.
    pub fn new(public_url: Option<&str>, domain: Option<&str>) -> CalendarSettings {
        let public_url = public_url
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty());
        let host = public_url.as_deref().and_then(|url| {
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => host.split(':').next().unwrap_or_default(),
            };
            (!host.is_empty()).then(|| host.to_owned())
        });
        let domain = domain
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .or(host)
            .unwrap_or_else(|| "lhs-rounds.invalid".to_owned());
        CalendarSettings { public_url, domain }
    }
}

/// How writes are checked (`LHS_REQUIRE_IF_MATCH`, `LHS_IDEMPOTENCY_TTL`).
#[derive(Debug, Clone)]
pub struct WritePolicy {
    pub require_if_match: bool,
    pub idempotency_ttl: Duration,
}

/// What every handler needs: the database, the read cache, the validators, the caller, the
/// request's path, its conditions and idempotency key, and the client's address.
pub struct Ctx {
    pub db: web::Data<Database>,
    pub cache: web::Data<ReadCache>,
    pub validators: web::Data<Validators>,
    pub policy: web::Data<WritePolicy>,
    pub limits: web::Data<Limits>,
    pub calendar: web::Data<CalendarSettings>,
    /// This worker's own PostgreSQL connection, when it has one (see [`crate::platform::db::worker`]).
    pub worker: Option<WorkerConnections>,
    pub caller: Caller,
    pub path: String,
    pub conditions: Conditions,
    pub idempotency: IdempotencyKey,
    pub client: IpAddr,
    /// Whether the request carried a token: then its answers are for that caller only.
    pub private: bool,
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
                req.app_data::<web::Data<CalendarSettings>>()?.clone(),
            ))
        })();
        let worker = req.app_data::<WorkerConnections>().cloned();
        let caller = Caller::from_request(req, payload);
        let conditions = Conditions::from_headers(req.headers());
        let idempotency = IdempotencyKey::from_request(req, payload);
        let malformed = |error: &ApiError| error.to_string();
        let client = data.as_ref().map(|d| d.4.client(req));
        let path = req.path().to_owned();
        let request_id = telemetry::RequestId::of(req);
        let private = req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION);
        Box::pin(async move {
            let (db, cache, validators, policy, limits, calendar) =
                data.ok_or_else(|| ApiError::Internal("application data is missing".to_owned()))?;
            let idempotency = idempotency.await;
            let header_error = match (&conditions, &idempotency) {
                (Err(error), _) | (_, Err(error)) => Some(malformed(error)),
                _ => None,
            };
            Ok(Ctx {
                db,
                cache,
                validators,
                policy,
                limits,
                calendar,
                worker,
                caller: caller.await?,
                path,
                conditions: conditions.unwrap_or_default(),
                idempotency: idempotency.unwrap_or(IdempotencyKey(None)),
                client: client.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                private,
                request_id,
                header_error,
            })
        })
    }
}

impl Ctx {
    /// Whether the caller may do `access` to `R` (401, 403), then whether the request's
    /// conditional and idempotency headers were well-formed (400).
    pub fn authorize<R: Resource>(&self, access: Access) -> Result<(), ApiError> {
        R::authorize(&self.caller, access)?;
        self.headers_well_formed()
    }

    /// 400 when a conditional or idempotency header was malformed.
    pub fn headers_well_formed(&self) -> Result<(), ApiError> {
        match &self.header_error {
            Some(why) => Err(ApiError::BadRequest(why.clone())),
            None => Ok(()),
        }
    }

    /// Answers a read with its `ETag`, or 304 when `If-None-Match` names it: schedule reads
    /// through the read cache, others rendered on the blocking pool. `query` is part of the
    /// answer's identity.
    pub async fn read<F>(
        &self,
        schedule: bool,
        query: Option<&QueryValues>,
        render: F,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<Rendered, ApiError> + Send + 'static,
    {
        if schedule {
            return self
                .read_revised(
                    query,
                    move |conn, known| cache::in_snapshot(conn, known, render),
                    None,
                )
                .await;
        }
        let rendered = self.db.read(render).await?;
        let answer = Answer::of(rendered, self.conditions.if_none_match.as_ref())?;
        Ok(self.respond(answer))
    }

    /// A read of the schedule whose render reads the revision itself (see
    /// [`ReadCache::answer`]): in the same statement, where it can. `on_worker` is the same
    /// render on the worker's own PostgreSQL connection, used when the worker has them.
    pub async fn read_revised<F>(
        &self,
        query: Option<&QueryValues>,
        render: F,
        on_worker: Option<WorkerRender>,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(&mut DbConnection, Option<i64>) -> Result<Revised<Rendered>, ApiError>
            + Send
            + 'static,
    {
        let key = Key::new(
            &self.path,
            query.map(QueryValues::canonical).unwrap_or_default(),
            self.caller.sees_private_fields(),
        );
        let answer = self
            .cache
            .answer(
                &self.db,
                key,
                self.conditions.if_none_match.as_ref(),
                render,
                self.worker.clone().zip(on_worker),
            )
            .await?;
        Ok(self.respond(answer))
    }

    fn respond(&self, answer: Answer) -> HttpResponse {
        match answer {
            Answer::Fresh {
                body,
                etag,
                content_type,
            } => http::ok(body, content_type, etag, self.private),
            Answer::NotModified { etag } => http::not_modified(etag, self.private),
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
}

/// The references among `references` that name no record.
pub fn missing_references(
    conn: &mut DbConnection,
    references: &[Reference],
) -> Result<Vec<Reference>, ApiError> {
    let mut missing = Vec::new();
    for kind in RefKind::ALL {
        let ids: Vec<i32> = references
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        let existing: Vec<i32> = match kind {
            RefKind::Department => departments::table
                .filter(departments::id.eq_any(&ids))
                .select(departments::id)
                .load(conn)?,
            RefKind::Speaker => speakers::table
                .filter(speakers::id.eq_any(&ids))
                .select(speakers::id)
                .load(conn)?,
            RefKind::Round => rounds::table
                .filter(rounds::id.eq_any(&ids))
                .select(rounds::id)
                .load(conn)?,
        };
        missing.extend(
            references
                .iter()
                .filter(|r| r.kind == kind && !existing.contains(&r.id))
                .cloned(),
        );
    }
    // In the order the body gives them.
    missing.sort_by_key(|m| references.iter().position(|r| r == m));
    Ok(missing)
}

/// Checks the references of a checked body inside a write transaction, and returns its value
/// or every error.
pub fn verified<T>(conn: &mut DbConnection, checked: Checked<T>) -> Result<T, ApiError> {
    let missing = missing_references(conn, checked.references())?;
    checked.finish(&missing)
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
            let etag = http::record_etag(R::version(current), private);
            if tags.matches_strongly(&etag) {
                Ok(Some(R::version(current)))
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
        .map(|record| http::record_etag(R::version(&record), private));
    ApiError::PreconditionFailed { current }
}

/// A written record's answer: its JSON and its ETag.
fn written<R: Resource>(status: StatusCode, record: R::Record, caller: &Caller) -> HttpResponse {
    let etag = http::record_etag(R::version(&record), caller.sees_private_fields());
    HttpResponse::build(status)
        .insert_header((ETAG, etag))
        .json(record.visible_to(caller))
}

/// `POST /{collection}`.
pub async fn create<R: Resource>(ctx: Ctx, body: Value) -> Result<HttpResponse, ApiError>
where
    R::Input: Clone,
{
    ctx.authorize::<R>(Access::Create)?;
    let request = serde_json::to_vec(&body)?;
    let checked = ctx.validators.body::<R::Input>(body);
    create_checked::<R>(ctx, checked, &request).await
}

/// `POST` of a body already checked (and perhaps amended by the handler); `request` is the
/// body as sent, the fingerprint of an idempotent request.
pub async fn create_checked<R: Resource>(
    ctx: Ctx,
    checked: Checked<R::Input>,
    request: &[u8],
) -> Result<HttpResponse, ApiError>
where
    R::Input: Clone,
{
    if ctx.idempotency.0.is_none() && checked.is_refused() && checked.references().is_empty() {
        // Nothing to look up: refuse a bad body without a transaction.
        return Err(checked
            .into_result()
            .err()
            .unwrap_or_else(|| ApiError::Internal("a refused body without errors".to_owned())));
    }
    let look_up = match create_on_worker::<R>(&ctx, &checked).await? {
        WorkerCreate::Written(answer) => return Ok(answer.response(false)),
        WorkerCreate::Dangling => true,
        WorkerCreate::NotThere => false,
    };
    create_from::<R>(ctx, checked, request, |_| Ok(()), look_up).await
}

/// What [`create_on_worker`] did.
enum WorkerCreate {
    Written(StoredAnswer),
    /// A reference names no record: nothing was written.
    Dangling,
    /// It does not apply, or the statement wrote nothing.
    NotThere,
}

/// What the POST that created `record` answers (and stores under its `Idempotency-Key`).
fn created<R: Resource>(record: &R::Record, caller: &Caller) -> Result<StoredAnswer, ApiError> {
    Ok(StoredAnswer {
        status: StatusCode::CREATED.as_u16(),
        location: Some(format!("{API_PREFIX}/{}/{}", R::COLLECTION, R::id(record))),
        etag: Some(http::record_etag(
            R::version(record),
            caller.sees_private_fields(),
        )),
        body: R::created_answer(record, caller)?.to_string(),
    })
}

/// A `POST` written on the worker's own PostgreSQL connection ([`Resource::INSERT_ON_WORKER`]),
/// when nothing else needs the blocking pool: no `Idempotency-Key` (its replay and its storage
/// are statements of their own) and a body that passed. Otherwise, or when a reference names no
/// record, the usual way follows (which then looks the references up for the 422).
async fn create_on_worker<R: Resource>(
    ctx: &Ctx,
    checked: &Checked<R::Input>,
) -> Result<WorkerCreate, ApiError>
where
    R::Input: Clone,
{
    let (Some(worker), Some(insert)) = (&ctx.worker, R::INSERT_ON_WORKER) else {
        return Ok(WorkerCreate::NotThere);
    };
    ctx.authorize::<R>(Access::Create)?;
    if ctx.idempotency.0.is_some() || checked.is_refused() {
        return Ok(WorkerCreate::NotThere);
    }
    let input = checked.clone().into_result()?;
    let actor = ctx.caller.subject.clone();
    let request_id = ctx.request_id.clone();
    let written = worker
        .run(move |conn| {
            Box::pin(
                async move { insert(conn, &input, actor.as_deref(), request_id.as_deref()).await },
            )
        })
        .await;
    match written {
        Ok(Some(record)) => Ok(WorkerCreate::Written(created::<R>(&record, &ctx.caller)?)),
        Ok(None) => Ok(WorkerCreate::NotThere),
        Err(ApiError::DanglingReference) => Ok(WorkerCreate::Dangling),
        Err(error) => Err(error),
    }
}

/// `POST`, with `precheck` run first (a 404 for a parent in the path, say).
///
/// A body that passed its schema and rules is written without looking up its references
/// first: the foreign keys refuse one that names no record, and only then is the write made
/// again the way it was before, looking them up first, for the 422 that names each one (the
/// database names only the first it met, and SQLite not even that). A body refused anyway has
/// its references looked up, so that one answer lists every error.
pub async fn create_with<R: Resource>(
    ctx: Ctx,
    checked: Checked<R::Input>,
    request: &[u8],
    precheck: impl Fn(&mut DbConnection) -> Result<(), ApiError> + Clone + Send + 'static,
) -> Result<HttpResponse, ApiError>
where
    R::Input: Clone,
{
    create_from::<R>(ctx, checked, request, precheck, false).await
}

/// [`create_with`], looking the references up from the start when `look_up`.
async fn create_from<R: Resource>(
    ctx: Ctx,
    checked: Checked<R::Input>,
    request: &[u8],
    precheck: impl Fn(&mut DbConnection) -> Result<(), ApiError> + Clone + Send + 'static,
    look_up: bool,
) -> Result<HttpResponse, ApiError>
where
    R::Input: Clone,
{
    ctx.authorize::<R>(Access::Create)?;
    let key = ctx.idempotency.0.clone();
    let fingerprint = Fingerprint::new(ctx.caller.subject.as_deref(), "POST", &ctx.path, request);
    let ttl = ctx.policy.idempotency_ttl;
    let caller = ctx.caller.clone();
    let request_id = ctx.request_id.clone();
    let attempt = move |look_up: bool| {
        let (checked, key, fingerprint, caller, precheck, request_id) = (
            checked.clone(),
            key.clone(),
            fingerprint.clone(),
            caller.clone(),
            precheck.clone(),
            request_id.clone(),
        );
        move |conn: &mut DbConnection,
              atomicity: Atomicity|
              -> Result<(StoredAnswer, bool), ApiError> {
            let answer = |record: &R::Record| created::<R>(record, &caller);
            let look_up = look_up || checked.is_refused();
            if key.is_none() && !look_up && atomicity.single_statement() {
                precheck(conn)?;
                let input = checked.clone().into_result()?;
                let written = R::insert_logged(
                    conn,
                    &input,
                    caller.subject.as_deref(),
                    request_id.as_deref(),
                )?;
                if let Some(record) = written {
                    return Ok((answer(&record)?, false));
                }
            }
            atomicity.atomically(conn, |conn| {
                precheck(conn)?;
                if let Some(key) = &key {
                    if let Some(stored) = idempotency::replay(conn, key, &fingerprint)? {
                        return Ok((stored, true));
                    }
                }
                let input = if look_up {
                    verified(conn, checked)?
                } else {
                    checked.into_result()?
                };
                let record = R::insert(conn, input, caller.subject.as_deref())?;
                changelog::record(
                    conn,
                    Change {
                        resource: R::NAME,
                        id: R::id(&record),
                        action: Action::Created,
                        before: None,
                        after: Some(serde_json::to_value(&record)?),
                        actor: caller.subject.as_deref(),
                        request_id: request_id.as_deref(),
                    },
                )?;
                let answer = answer(&record)?;
                if let Some(key) = &key {
                    idempotency::remember(conn, key, &fingerprint, &answer, ttl)?;
                }
                Ok((answer, false))
            })
        }
    };
    let (mut look_up, mut key_retried) = (look_up, false);
    let (answer, replayed) = loop {
        match ctx.db.write_checked(attempt(look_up)).await {
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

/// `GET /{collection}/{id}`.
pub async fn get<R: Resource>(ctx: Ctx, id: i32) -> Result<HttpResponse, ApiError> {
    ctx.authorize::<R>(Access::Read)?;
    let caller = ctx.caller.clone();
    let render = move |record: Option<R::Record>| {
        let record = found(record, R::NAME, id)?;
        let etag = http::record_etag(R::version(&record), caller.sees_private_fields());
        Ok(Rendered::json(&record.visible_to(&caller))?.with_etag(etag))
    };
    if R::SCHEDULE {
        let on_worker = match R::ON_WORKER {
            Some(reads) if ctx.worker.is_some() => {
                let render = render.clone();
                Some(cache::worker_render(move |conn| {
                    Box::pin(async move { (reads.find)(conn, id).await?.try_map(render) })
                }))
            }
            _ => None,
        };
        ctx.read_revised(
            None,
            move |conn, known| R::find_revised(conn, id, known)?.try_map(render),
            on_worker,
        )
        .await
    } else {
        ctx.read(false, None, move |conn| render(R::find(conn, id)?))
            .await
    }
}

/// `GET /{collection}`.
pub async fn list<R: Resource>(ctx: Ctx, query: Query) -> Result<HttpResponse, ApiError> {
    ctx.authorize::<R>(Access::Read)?;
    let query = query.values()?;
    let filter: R::Filter = query.get()?;
    list_filtered::<R>(ctx, &query, filter).await
}

/// A list with a filter the handler completed (from the path, say).
pub async fn list_filtered<R: Resource>(
    ctx: Ctx,
    query: &QueryValues,
    filter: R::Filter,
) -> Result<HttpResponse, ApiError> {
    ctx.authorize::<R>(Access::Read)?;
    let paging: Paging = query.get()?;
    let caller = ctx.caller.clone();
    let render = move |listing: Listing<R::Record>| {
        Ok(Rendered::json(&listing.page.visible_to(&caller))?.until(listing.valid_until))
    };
    if R::SCHEDULE {
        let on_worker = match R::ON_WORKER {
            Some(reads) if ctx.worker.is_some() => {
                let render = render.clone();
                let filter = filter.clone();
                Some(cache::worker_render(move |conn| {
                    Box::pin(
                        async move { (reads.list)(conn, &filter, paging).await?.try_map(render) },
                    )
                }))
            }
            _ => None,
        };
        ctx.read_revised(
            Some(query),
            move |conn, known| R::list_revised(conn, &filter, paging, known)?.try_map(render),
            on_worker,
        )
        .await
    } else {
        ctx.read(false, Some(query), move |conn| {
            render(R::list(conn, &filter, paging)?)
        })
        .await
    }
}

/// `PUT /{collection}/{id}`: replaces the whole record.
pub async fn replace<R: Resource>(ctx: Ctx, id: i32, body: Value) -> Result<HttpResponse, ApiError>
where
    R::Change: Clone,
{
    ctx.authorize::<R>(Access::Change)?;
    ctx.require_if_match()?;
    let checked = ctx.validators.body::<R::Change>(body);
    change::<R>(ctx, id, move |_current| Ok(checked.clone())).await
}

/// `PATCH /{collection}/{id}`: the stored record with the merge patch (RFC 7386) applied,
/// checked by the same schema and rules as a PUT.
pub async fn patch<R: Resource>(ctx: Ctx, id: i32, patch: Value) -> Result<HttpResponse, ApiError> {
    ctx.authorize::<R>(Access::Change)?;
    ctx.require_if_match()?;
    let validators = ctx.validators.clone();
    change::<R>(ctx, id, move |current| {
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
    id: i32,
    make: impl Fn(&R::Record) -> Result<Checked<R::Change>, ApiError> + Clone + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let if_match = ctx.conditions.if_match.clone();
    let caller = ctx.caller.clone();
    let private = caller.sees_private_fields();
    let request_id = ctx.request_id.clone();
    let attempt = move |look_up: bool| {
        let (if_match, caller, request_id, make) = (
            if_match.clone(),
            caller.clone(),
            request_id.clone(),
            make.clone(),
        );
        move |conn: &mut DbConnection, atomicity: Atomicity| -> Result<R::Record, ApiError> {
            let log = LogContext {
                actor: caller.subject.as_deref(),
                request_id: request_id.as_deref(),
            };
            for _ in 0..WRITE_ATTEMPTS {
                let current = existing::<R>(conn, id, if_match.is_some())?;
                let asked = expected_version::<R>(if_match.as_ref(), &current, private)?;
                let version = R::version(&current);
                let checked = make(&current)?;
                let change = if look_up || checked.is_refused() {
                    verified(conn, checked)?
                } else {
                    checked.into_result()?
                };
                let one = if atomicity.single_statement() {
                    R::update_logged(conn, &current, &change, &log, version)?
                } else {
                    OneStatement::Unsupported
                };
                let written = match one {
                    OneStatement::Written(record) => Some(record),
                    OneStatement::Stale => None,
                    OneStatement::Unsupported => atomicity.atomically(conn, |conn| {
                        let before = serde_json::to_value(&current)?;
                        let Some(record) = R::update(conn, current, change, log.actor, version)?
                        else {
                            return Ok(None);
                        };
                        changelog::record(
                            conn,
                            Change {
                                resource: R::NAME,
                                id,
                                action: Action::Updated,
                                before: Some(before),
                                after: Some(serde_json::to_value(&record)?),
                                actor: log.actor,
                                request_id: log.request_id,
                            },
                        )?;
                        Ok(Some(record))
                    })?,
                };
                if let Some(record) = written {
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
        match ctx.db.write_checked(attempt(look_up)).await {
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
    ctx.authorize::<R>(Access::Delete)?;
    ctx.require_if_match()?;
    let if_match = ctx.conditions.if_match.clone();
    let private = ctx.caller.sees_private_fields();
    let actor = ctx.actor();
    let request_id = ctx.request_id.clone();
    ctx.db
        .write(move |conn| {
            let current = existing::<R>(conn, id, if_match.is_some())?;
            let expected = match &if_match {
                Some(_) => expected_version::<R>(if_match.as_ref(), &current, private)?,
                None => None,
            };
            if !R::delete(conn, id, expected)? {
                return Err(changed_since::<R>(conn, id, private));
            }
            changelog::record(
                conn,
                Change {
                    resource: R::NAME,
                    id,
                    action: Action::Deleted,
                    before: Some(serde_json::to_value(&current)?),
                    after: None,
                    actor: actor.as_deref(),
                    request_id: request_id.as_deref(),
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
