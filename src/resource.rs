//! The CRUD plumbing, written once: create, get, list, replace, patch and delete of any
//! [`Resource`]. A resource module declares its types, its queries and its own rules; its
//! handlers carry the OpenAPI annotations and are one line into the functions here.
//!
//! Every write runs in one transaction ([`Database::write`]): the body is checked against its
//! schema first, the references it makes are checked inside the transaction (so they cannot
//! vanish before the write), and a failure anywhere changes nothing.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::LOCATION;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::auth::{Caller, Visible};
use crate::cache::{Key, ReadCache, Rendered};
use crate::db::{Database, DbConnection};
use crate::error::ApiError;
use crate::fields::RefKind;
use crate::pagination::{Page, Paging};
use crate::schema::{departments, rounds, speakers};
use crate::validate::{merge_patch, Checked, Input, QueryValues, Reference, Validators};

/// A URL path the service answers with (`Location`).
pub type UrlPath = crate::fields::Line<200>;

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

/// A kind of record served under `/api/v1/{COLLECTION}`.
pub trait Resource: 'static {
    /// What one record is called in messages: "round".
    const NAME: &'static str;
    /// Its collection in URLs: "rounds".
    const COLLECTION: &'static str;
    /// Whether it is part of the schedule, whose reads the read cache keeps (see [`ReadCache`]).
    const SCHEDULE: bool;

    /// A record as answered.
    type Record: Serialize + Visible + Send + 'static;
    /// The body of a POST.
    type Input: Input;
    /// The body of a PUT, and what a PATCH is applied to.
    type Change: Input + Serialize;
    /// The filters of the list.
    type Filter: DeserializeOwned + Send + 'static;

    /// Whether `caller` may do `access`: `Ok`, 401 or 403.
    fn authorize(caller: &Caller, access: Access) -> Result<(), ApiError>;

    fn id(record: &Self::Record) -> i32;
    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Self::Record>, ApiError>;
    fn list(
        conn: &mut DbConnection,
        filter: &Self::Filter,
        paging: Paging,
    ) -> Result<Listing<Self::Record>, ApiError>;
    fn insert(
        conn: &mut DbConnection,
        input: Self::Input,
        actor: Option<&str>,
    ) -> Result<Self::Record, ApiError>;
    /// The stored record as the body of a PUT, to which a PATCH is applied.
    fn change_of(record: &Self::Record) -> Self::Change;
    fn update(
        conn: &mut DbConnection,
        current: Self::Record,
        change: Self::Change,
        actor: Option<&str>,
    ) -> Result<Self::Record, ApiError>;
    /// Deletes the record: 404 if there is none, 409 if others still refer to it.
    fn delete(conn: &mut DbConnection, id: i32) -> Result<(), ApiError>;
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

/// What every handler needs: the database, the read cache, the validators, the caller, and
/// the request's path.
pub struct Ctx {
    pub db: web::Data<Database>,
    pub cache: web::Data<ReadCache>,
    pub validators: web::Data<Validators>,
    pub caller: Caller,
    pub path: String,
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
            ))
        })();
        let caller = Caller::from_request(req, payload);
        let path = req.path().to_owned();
        Box::pin(async move {
            let (db, cache, validators) =
                data.ok_or_else(|| ApiError::Internal("application data is missing".to_owned()))?;
            Ok(Ctx {
                db,
                cache,
                validators,
                caller: caller.await?,
                path,
            })
        })
    }
}

impl Ctx {
    /// Answers a read: from the read cache for the schedule, else rendered on the blocking
    /// pool. `query` is part of the answer's identity.
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
            let key = Key::new(
                &self.path,
                query.map(QueryValues::canonical).unwrap_or_default(),
                self.caller.sees_private_fields(),
            );
            self.cache.answer(&self.db, key, render).await
        } else {
            let rendered = self.db.read(render).await?;
            Ok(rendered.into_response())
        }
    }

    /// The subject to record as the author of a write.
    pub fn actor(&self) -> Option<String> {
        self.caller.subject.clone()
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

/// The answer to a successful POST: 201, `Location`, and the record.
pub fn created<T: Serialize>(collection: &str, id: i32, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((LOCATION, format!("{API_PREFIX}/{collection}/{id}")))
        .json(body)
}

/// `POST /{collection}`.
pub async fn create<R: Resource>(ctx: Ctx, body: Value) -> Result<HttpResponse, ApiError> {
    R::authorize(&ctx.caller, Access::Create)?;
    let checked = ctx.validators.body::<R::Input>(body);
    create_checked::<R>(ctx, checked).await
}

/// `POST` of a body already checked (and perhaps amended by the handler).
pub async fn create_checked<R: Resource>(
    ctx: Ctx,
    checked: Checked<R::Input>,
) -> Result<HttpResponse, ApiError> {
    R::authorize(&ctx.caller, Access::Create)?;
    if checked.references().is_empty() {
        // Nothing to look up: refuse a bad body without a transaction.
        let value = checked.into_result()?;
        return insert::<R>(ctx, value).await;
    }
    let actor = ctx.actor();
    let record = ctx
        .db
        .write(move |conn| {
            let input = verified(conn, checked)?;
            R::insert(conn, input, actor.as_deref())
        })
        .await?;
    Ok(created(
        R::COLLECTION,
        R::id(&record),
        &record.visible_to(&ctx.caller),
    ))
}

async fn insert<R: Resource>(ctx: Ctx, input: R::Input) -> Result<HttpResponse, ApiError> {
    let actor = ctx.actor();
    let record = ctx
        .db
        .write(move |conn| R::insert(conn, input, actor.as_deref()))
        .await?;
    Ok(created(
        R::COLLECTION,
        R::id(&record),
        &record.visible_to(&ctx.caller),
    ))
}

/// `GET /{collection}/{id}`.
pub async fn get<R: Resource>(ctx: Ctx, id: i32) -> Result<HttpResponse, ApiError> {
    R::authorize(&ctx.caller, Access::Read)?;
    let caller = ctx.caller.clone();
    ctx.read(R::SCHEDULE, None, move |conn| {
        let record = found(R::find(conn, id)?, R::NAME, id)?;
        Rendered::json(&record.visible_to(&caller))
    })
    .await
}

/// `GET /{collection}`.
pub async fn list<R: Resource>(ctx: Ctx, query: QueryValues) -> Result<HttpResponse, ApiError> {
    let filter: R::Filter = query.get()?;
    list_filtered::<R>(ctx, &query, filter).await
}

/// A list with a filter the handler completed (from the path, say).
pub async fn list_filtered<R: Resource>(
    ctx: Ctx,
    query: &QueryValues,
    filter: R::Filter,
) -> Result<HttpResponse, ApiError> {
    R::authorize(&ctx.caller, Access::Read)?;
    let paging: Paging = query.get()?;
    let caller = ctx.caller.clone();
    ctx.read(R::SCHEDULE, Some(query), move |conn| {
        let listing = R::list(conn, &filter, paging)?;
        Ok(Rendered::json(&listing.page.visible_to(&caller))?.until(listing.valid_until))
    })
    .await
}

/// `PUT /{collection}/{id}`: replaces the whole record.
pub async fn replace<R: Resource>(
    ctx: Ctx,
    id: i32,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    R::authorize(&ctx.caller, Access::Change)?;
    let checked = ctx.validators.body::<R::Change>(body);
    let actor = ctx.actor();
    let record = ctx
        .db
        .write(move |conn| {
            let current = found(R::find(conn, id)?, R::NAME, id)?;
            let change = verified(conn, checked)?;
            R::update(conn, current, change, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(record.visible_to(&ctx.caller)))
}

/// `PATCH /{collection}/{id}`: the stored record with the merge patch (RFC 7386) applied,
/// checked by the same schema and rules as a PUT.
pub async fn patch<R: Resource>(ctx: Ctx, id: i32, patch: Value) -> Result<HttpResponse, ApiError> {
    R::authorize(&ctx.caller, Access::Change)?;
    let validators = ctx.validators.clone();
    let actor = ctx.actor();
    let record = ctx
        .db
        .write(move |conn| {
            let current = found(R::find(conn, id)?, R::NAME, id)?;
            let mut document = serde_json::to_value(R::change_of(&current))?;
            merge_patch(&mut document, &patch);
            let change = verified(conn, validators.body::<R::Change>(document))?;
            R::update(conn, current, change, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(record.visible_to(&ctx.caller)))
}

/// `DELETE /{collection}/{id}`.
pub async fn delete<R: Resource>(ctx: Ctx, id: i32) -> Result<HttpResponse, ApiError> {
    R::authorize(&ctx.caller, Access::Delete)?;
    ctx.db.write(move |conn| R::delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
