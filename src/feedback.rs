//! Feedback: ratings of a round, topic suggestions and general comments sent to the organisers,
//! who triage them.

use crate::db::MultiBackend;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Caller, Role, Visible};
use crate::db::{self, Database, DbConnection};
use crate::error::ApiError;
use crate::input::{merge_patch, Checked, ObjectReader, QueryReader, RefKind};
use crate::openapi::{ReadErrors, WriteErrors};
use crate::pagination::{Page, Paging};
use crate::rounds;
use crate::schema::feedback;

pub const COMMENT_MAX: usize = 5000;
pub const AUTHOR_NAME_MAX: usize = 200;
pub const KINDS: &[&str] = &["session_feedback", "topic_suggestion", "general"];
pub const STATUSES: &[&str] = &["new", "reviewed", "accepted", "declined"];

/// What a piece of feedback is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// A rating of one round (requires `round_id` and `rating`).
    SessionFeedback,
    /// A topic for a future round.
    TopicSuggestion,
    General,
}

/// Where the organisers are with a piece of feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStatus {
    New,
    Reviewed,
    Accepted,
    Declined,
}

/// Feedback, as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "kind": "session_feedback", "round_id": 3, "rating": 5,
    "comment": "Concrete examples from our own wards; more of this please.",
    "author_name": null, "author_email": null, "status": "new",
    "created_at": "2019-04-25T17:05:00Z", "updated_at": "2019-04-25T17:05:00Z"
}))]
pub struct Feedback {
    pub id: i32,
    #[schema(value_type = FeedbackKind)]
    pub kind: String,
    pub round_id: Option<i32>,
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<i32>,
    pub comment: Option<String>,
    pub author_name: Option<String>,
    #[schema(format = "email")]
    pub author_email: Option<String>,
    #[schema(value_type = FeedbackStatus)]
    pub status: String,
    /// The token subject that sent it, if any; shown to organisers and admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub submitted_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Feedback, as submitted. Anonymous feedback is welcome: the author fields are optional.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "topic_suggestion",
    "comment": "Sepsis bundle compliance: what do our own data say?",
    "author_name": "Aubri Drake"
}))]
pub struct FeedbackInput {
    #[schema(value_type = FeedbackKind)]
    pub kind: String,
    /// Required for `session_feedback`.
    #[schema(minimum = 1, maximum = 2147483647)]
    pub round_id: Option<i32>,
    /// 1-5; required for `session_feedback`, not allowed otherwise.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<i32>,
    /// Required for `topic_suggestion` and `general`.
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub comment: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub author_name: Option<String>,
    #[schema(format = "email", max_length = 254)]
    pub author_email: Option<String>,
}

impl FeedbackInput {
    pub fn read(body: Value) -> Checked<FeedbackInput> {
        let mut r = ObjectReader::new(body);
        let kind = r.choice("kind", KINDS, None);
        let round_id = r.reference("round_id", RefKind::Round);
        let has_rating = r.has("rating");
        let rating = r.integer("rating", 1, 5).map(|n| n as i32);
        let comment = r.text("comment", COMMENT_MAX);
        match kind {
            Some("session_feedback") => {
                if round_id.is_none() && !r.has_error_for("round_id") {
                    r.error("round_id", "is required for session_feedback");
                }
                if rating.is_none() && !r.has_error_for("rating") {
                    r.error("rating", "is required for session_feedback (1-5)");
                }
            }
            Some(other) => {
                if has_rating && rating.is_some() {
                    r.error(
                        "rating",
                        format!("is only for session_feedback, not {other}"),
                    );
                }
                if comment.is_none() && !r.has_error_for("comment") {
                    r.error("comment", format!("is required for {other}"));
                }
            }
            None => {}
        }
        let input = FeedbackInput {
            kind: kind.unwrap_or_default().to_owned(),
            round_id,
            rating,
            comment,
            author_name: r.text("author_name", AUTHOR_NAME_MAX),
            author_email: r.email("author_email"),
        };
        r.finish(input)
    }
}

/// The triage change an organiser makes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "accepted"}))]
pub struct FeedbackPatch {
    /// Absent leaves the status as it is (`{}` is a no-op merge patch).
    #[schema(value_type = FeedbackStatus, required = false)]
    pub status: String,
}

impl FeedbackPatch {
    pub fn read(body: Value) -> Checked<FeedbackPatch> {
        let mut r = ObjectReader::new(body);
        let status = r.choice("status", STATUSES, None).unwrap_or_default();
        r.finish(FeedbackPatch {
            status: status.to_owned(),
        })
    }
}

/// Ratings of one round.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "round_id": 3, "count": 4, "average_rating": 4.25,
    "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 2}
}))]
pub struct FeedbackSummary {
    pub round_id: i32,
    /// How many ratings the round has.
    pub count: i64,
    /// `null` while there is no rating.
    pub average_rating: Option<f64>,
    /// How many ratings of each value, keys "1" to "5".
    pub distribution: BTreeMap<String, i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = feedback)]
struct FeedbackRow {
    id: i32,
    kind: String,
    round_id: Option<i32>,
    rating: Option<i32>,
    comment: Option<String>,
    author_name: Option<String>,
    author_email: Option<String>,
    status: String,
    submitted_by: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<FeedbackRow> for Feedback {
    fn from(row: FeedbackRow) -> Self {
        Feedback {
            id: row.id,
            kind: row.kind,
            round_id: row.round_id,
            rating: row.rating,
            comment: row.comment,
            author_name: row.author_name,
            author_email: row.author_email,
            status: row.status,
            submitted_by: row.submitted_by,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

/// Filters of the feedback list.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedbackFilter {
    /// Only feedback about this round.
    #[param(minimum = 1, maximum = 2147483647)]
    pub round_id: Option<i32>,
    #[param(inline, value_type = Option<FeedbackKind>)]
    pub kind: Option<&'static str>,
    #[param(inline, value_type = Option<FeedbackStatus>)]
    pub status: Option<&'static str>,
}

/// Filters of a round's feedback list (the round is in the path).
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoundFeedbackFilter {
    #[param(inline, value_type = Option<FeedbackKind>)]
    pub kind: Option<&'static str>,
    #[param(inline, value_type = Option<FeedbackStatus>)]
    pub status: Option<&'static str>,
}

impl FeedbackFilter {
    fn read(query: &mut QueryReader, with_round: bool) -> FeedbackFilter {
        FeedbackFilter {
            round_id: if with_round {
                query.id("round_id")
            } else {
                None
            },
            kind: query.choice("kind", KINDS),
            status: query.choice("status", STATUSES),
        }
    }
}

// ---- persistence -------------------------------------------------------------------------

fn filtered(filter: &FeedbackFilter) -> feedback::BoxedQuery<'static, MultiBackend> {
    let mut query = feedback::table.into_boxed();
    if let Some(round_id) = filter.round_id {
        query = query.filter(feedback::round_id.eq(round_id));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(feedback::kind.eq(kind));
    }
    if let Some(status) = filter.status {
        query = query.filter(feedback::status.eq(status));
    }
    query
}

/// Newest first: organisers triage what came in last.
pub fn list(
    conn: &mut DbConnection,
    filter: &FeedbackFilter,
    paging: Paging,
) -> Result<Page<Feedback>, ApiError> {
    let total = filtered(filter).count().get_result::<i64>(conn)?;
    let rows = filtered(filter)
        .order((feedback::created_at.desc(), feedback::id.desc()))
        .limit(paging.limit)
        .offset(paging.offset)
        .select(FeedbackRow::as_select())
        .load(conn)?;
    Ok(paging.page(rows.into_iter().map(Feedback::from).collect(), total))
}

pub fn find(conn: &mut DbConnection, id: i32) -> Result<Feedback, ApiError> {
    crate::on_backend!(conn, |c| feedback::table
        .find(id)
        .select(FeedbackRow::as_select())
        .first(c)
        .optional())?
    .map(Feedback::from)
    .ok_or_else(|| ApiError::not_found("feedback", id))
}

pub fn insert(
    conn: &mut DbConnection,
    input: FeedbackInput,
    submitted_by: Option<&str>,
) -> Result<Feedback, ApiError> {
    let now = db::now();
    let id = diesel::insert_into(feedback::table)
        .values((
            feedback::kind.eq(&input.kind),
            feedback::round_id.eq(input.round_id),
            feedback::rating.eq(input.rating),
            feedback::comment.eq(&input.comment),
            feedback::author_name.eq(&input.author_name),
            feedback::author_email.eq(&input.author_email),
            feedback::status.eq("new"),
            feedback::submitted_by.eq(submitted_by),
            feedback::created_at.eq(now),
            feedback::updated_at.eq(now),
        ))
        .returning(feedback::id)
        .get_result::<i32>(conn)?;
    find(conn, id)
}

pub fn set_status(conn: &mut DbConnection, id: i32, status: &str) -> Result<Feedback, ApiError> {
    let changed = diesel::update(feedback::table.find(id))
        .set((
            feedback::status.eq(status),
            feedback::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Err(ApiError::not_found("feedback", id));
    }
    find(conn, id)
}

pub fn delete(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    let deleted = diesel::delete(feedback::table.find(id)).execute(conn)?;
    if deleted == 0 {
        return Err(ApiError::not_found("feedback", id));
    }
    Ok(())
}

pub fn summary(conn: &mut DbConnection, round_id: i32) -> Result<FeedbackSummary, ApiError> {
    if !rounds::exists(conn, round_id)? {
        return Err(ApiError::not_found("round", round_id));
    }
    let counts = feedback::table
        .filter(feedback::round_id.eq(round_id))
        .filter(feedback::rating.is_not_null())
        .group_by(feedback::rating)
        .select((feedback::rating, diesel::dsl::count_star()))
        .load::<(Option<i32>, i64)>(conn)?;
    let mut distribution: BTreeMap<String, i64> = (1..=5).map(|r| (r.to_string(), 0)).collect();
    let (mut count, mut sum) = (0i64, 0i64);
    for (rating, n) in counts {
        if let Some(rating) = rating {
            distribution.insert(rating.to_string(), n);
            count += n;
            sum += i64::from(rating) * n;
        }
    }
    Ok(FeedbackSummary {
        round_id,
        count,
        average_rating: (count > 0).then(|| (sum as f64 / count as f64 * 100.0).round() / 100.0),
        distribution,
    })
}

// ---- handlers ----------------------------------------------------------------------------

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_feedback)
        .service(create_feedback)
        .service(get_feedback)
        .service(triage_feedback)
        .service(delete_feedback)
        .service(list_round_feedback)
        .service(create_round_feedback)
        .service(round_feedback_summary);
}

/// List feedback, newest first
#[utoipa::path(
    tag = "feedback",
    security(("bearer" = ["organizer", "admin"])),
    params(FeedbackFilter, Paging),
    responses((status = 200, description = "A page of feedback", body = Page<Feedback>), ReadErrors)
)]
#[get("/feedback")]
pub async fn list_feedback(
    db: web::Data<Database>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let mut query = QueryReader::new(req.query_string())?;
    let filter = FeedbackFilter::read(&mut query, true);
    let paging = Paging::read(&mut query);
    query.finish()?;
    let page = db.read(move |conn| list(conn, &filter, paging)).await?;
    Ok(HttpResponse::Ok().json(page.visible_to(&caller)))
}

/// Send feedback, a topic suggestion or a comment
#[utoipa::path(
    tag = "feedback",
    security((), ("bearer" = [])),
    request_body = FeedbackInput,
    responses(
        (status = 201, description = "Received", body = Feedback,
            headers(("Location" = String, description = "URL of the new feedback"))),
        WriteErrors
    )
)]
#[post("/feedback")]
pub async fn create_feedback(
    db: web::Data<Database>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_submitter()?;
    let input = FeedbackInput::read(body.into_inner());
    let actor = caller.subject.clone();
    let created = db
        .write(move |conn| {
            let input = input.verify(conn)?;
            insert(conn, input, actor.as_deref())
        })
        .await?;
    Ok(crate::created(
        "feedback",
        created.id,
        &created.visible_to(&caller),
    ))
}

/// Get one piece of feedback
#[utoipa::path(
    tag = "feedback",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Feedback id")),
    responses((status = 200, description = "The feedback", body = Feedback), ReadErrors)
)]
#[get("/feedback/{id}")]
pub async fn get_feedback(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    let item = db.read(move |conn| find(conn, id)).await?;
    Ok(HttpResponse::Ok().json(item.visible_to(&caller)))
}

/// Triage feedback: change its status (JSON merge patch)
#[utoipa::path(
    tag = "feedback",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Feedback id")),
    request_body(content = FeedbackPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The feedback as triaged", body = Feedback), WriteErrors)
)]
#[patch("/feedback/{id}")]
pub async fn triage_feedback(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    let patch = body.into_inner();
    let item = db
        .write(move |conn| {
            let current = find(conn, id)?;
            let mut doc = serde_json::json!({ "status": current.status });
            merge_patch(&mut doc, &patch);
            let change = FeedbackPatch::read(doc).into_result()?;
            set_status(conn, id, &change.status)
        })
        .await?;
    Ok(HttpResponse::Ok().json(item.visible_to(&caller)))
}

/// Delete feedback
#[utoipa::path(
    tag = "feedback",
    security(("bearer" = ["admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Feedback id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/feedback/{id}")]
pub async fn delete_feedback(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    db.write(move |conn| delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List the feedback on a round, newest first
#[utoipa::path(
    tag = "feedback",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Round id"), RoundFeedbackFilter, Paging),
    responses((status = 200, description = "A page of feedback", body = Page<Feedback>), ReadErrors)
)]
#[get("/rounds/{id}/feedback")]
pub async fn list_round_feedback(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let round_id = id.into_inner();
    let mut query = QueryReader::new(req.query_string())?;
    let mut filter = FeedbackFilter::read(&mut query, false);
    let paging = Paging::read(&mut query);
    query.finish()?;
    filter.round_id = Some(round_id);
    let page = db
        .read(move |conn| {
            if !rounds::exists(conn, round_id)? {
                return Err(ApiError::not_found("round", round_id));
            }
            list(conn, &filter, paging)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page.visible_to(&caller)))
}

/// Send feedback on a round
///
/// The same body as `POST /feedback`; the round comes from the path.
#[utoipa::path(
    tag = "feedback",
    security((), ("bearer" = [])),
    params(("id" = i32, Path, minimum = 1, description = "Round id")),
    request_body = FeedbackInput,
    responses(
        (status = 201, description = "Received", body = Feedback,
            headers(("Location" = String, description = "URL of the new feedback"))),
        WriteErrors
    )
)]
#[post("/rounds/{id}/feedback")]
pub async fn create_round_feedback(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_submitter()?;
    let round_id = id.into_inner();
    let mut body = body.into_inner();
    let mut conflicting_round = None;
    if let Some(fields) = body.as_object_mut() {
        match fields.get("round_id") {
            None | Some(Value::Null) => {
                fields.insert("round_id".to_owned(), Value::from(round_id));
            }
            Some(given) if given.as_i64() == Some(i64::from(round_id)) => {}
            Some(given) => conflicting_round = Some(given.to_string()),
        }
    }
    let mut input = FeedbackInput::read(body);
    if let Some(given) = conflicting_round {
        input.add_error(
            "round_id",
            format!(
                "is {given} but the path is for round {round_id}; leave it out or make them match"
            ),
        );
    }
    let actor = caller.subject.clone();
    let created = db
        .write(move |conn| {
            if !rounds::exists(conn, round_id)? {
                return Err(ApiError::not_found("round", round_id));
            }
            let input = input.verify(conn)?;
            insert(conn, input, actor.as_deref())
        })
        .await?;
    Ok(crate::created(
        "feedback",
        created.id,
        &created.visible_to(&caller),
    ))
}

/// Summarise the ratings of a round
#[utoipa::path(
    tag = "feedback",
    security((), ("bearer" = [])),
    params(("id" = i32, Path, minimum = 1, description = "Round id")),
    responses((status = 200, description = "Count, average and distribution of ratings", body = FeedbackSummary), ReadErrors)
)]
#[get("/rounds/{id}/feedback/summary")]
pub async fn round_feedback_summary(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader()?;
    let round_id = id.into_inner();
    let summary = db.read(move |conn| summary(conn, round_id)).await?;
    Ok(HttpResponse::Ok().json(summary))
}

impl Visible for Feedback {
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            self.submitted_by = None;
        }
        self
    }
}
