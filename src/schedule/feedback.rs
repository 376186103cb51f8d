//! Feedback: ratings of a round, topic suggestions and general comments sent to the organisers,
//! who triage them.
//!
//! The body of a POST is a union on `kind` (`oneOf` with a `discriminator` in the document):
//! session feedback has a round and a rating; a topic suggestion or a general comment has a
//! comment and no rating.

use std::borrow::Cow;

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::platform::auth::{Role, Subject};
use crate::platform::cache::Rendered;
use crate::platform::changelog;
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Email, Id, Int, Name, RoundRef, Text, Timestamp};
use crate::platform::http::JsonBody;
use crate::platform::pagination::{Count, Page, Paging};
use crate::platform::ratelimit::Quotum;
use crate::platform::resource::{
    self, Access, Allowed, Author, Ctx, Granted, HeaderText, LoggedInsert, New, Resource, Update,
};
use crate::platform::schema::feedback;
use crate::platform::timezone;
use crate::platform::validate::{Checked, Input, Query};
use crate::schedule::rounds::{self, FeedbackTerms, RoundStatus, Rounds};

pub const COMMENT_MAX: usize = 5000;
/// A comment that may be left out.
pub type OptionalComment = Text<COMMENT_MAX>;
/// A comment that must be given.
pub type Comment = Name<COMMENT_MAX>;
pub type AuthorName = Text<200>;
/// A rating of a round, 1 to 5.
pub type Rating = Int<1, 5>;

crate::text_enum! {
    /// What a piece of feedback is about.
    pub enum FeedbackKind {
        /// A rating of one round (with `round_id` and `rating`).
        SessionFeedback = "session_feedback",
        /// A topic for a future round.
        TopicSuggestion = "topic_suggestion",
        General = "general",
    }
}

crate::text_enum! {
    /// Where the organisers are with a piece of feedback.
    #[derive(Default)]
    pub enum FeedbackStatus {
        #[default]
        New = "new",
        Reviewed = "reviewed",
        Accepted = "accepted",
        Declined = "declined",
    }
}

/// Feedback, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "kind": "session_feedback", "round_id": 3, "rating": 5,
    "comment": "Concrete examples from our own wards; more of this please.",
    "author_name": null, "author_email": null, "status": "new",
    "created_at": "2019-04-25T17:05:00Z", "updated_at": "2019-04-25T17:05:00Z"
}))]
pub struct Feedback {
    pub id: Id,
    pub kind: FeedbackKind,
    pub round_id: Option<Id>,
    pub rating: Option<Rating>,
    pub comment: Option<OptionalComment>,
    pub author_name: Option<AuthorName>,
    pub author_email: Option<Email>,
    pub status: FeedbackStatus,
    /// The token subject that sent it, if any; shown to organizers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub submitted_by: Option<Subject>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every write; the ETag is made from it.
    #[serde(skip)]
    #[schema(ignore)]
    pub version: i64,
}

crate::record!(
    Feedback, key |f: &Feedback| f.id.0, version |f: &Feedback| f.version, hides submitted_by
);

/// A rating of one round. Anonymous feedback is welcome: the author fields are optional.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionFeedbackFields {
    pub round_id: RoundRef,
    pub rating: Rating,
    pub comment: Option<OptionalComment>,
    pub author_name: Option<AuthorName>,
    pub author_email: Option<Email>,
}

/// A topic suggestion or a general comment. Anonymous ones are welcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentFields {
    /// The round it is about, if any.
    pub round_id: Option<RoundRef>,
    pub comment: Comment,
    pub author_name: Option<AuthorName>,
    pub author_email: Option<Email>,
}

/// Feedback, as sent: a union on `kind`.
#[derive(Debug, Clone)]
pub enum FeedbackInput {
    SessionFeedback(SessionFeedbackFields),
    TopicSuggestion(CommentFields),
    General(CommentFields),
}

impl FeedbackInput {
    pub fn kind(&self) -> FeedbackKind {
        match self {
            FeedbackInput::SessionFeedback(_) => FeedbackKind::SessionFeedback,
            FeedbackInput::TopicSuggestion(_) => FeedbackKind::TopicSuggestion,
            FeedbackInput::General(_) => FeedbackKind::General,
        }
    }
}

/// The component of each variant, and the fields struct it is made of.
fn variant_component(kind: FeedbackKind, round_in_path: bool) -> &'static str {
    match (kind, round_in_path) {
        (FeedbackKind::SessionFeedback, false) => "SessionFeedbackInput",
        (FeedbackKind::SessionFeedback, true) => "RoundSessionFeedbackInput",
        (FeedbackKind::TopicSuggestion, _) => "TopicSuggestionInput",
        (FeedbackKind::General, _) => "GeneralFeedbackInput",
    }
}

fn variant_fields(kind: FeedbackKind) -> RefOr<Schema> {
    match kind {
        FeedbackKind::SessionFeedback => SessionFeedbackFields::schema(),
        FeedbackKind::TopicSuggestion | FeedbackKind::General => CommentFields::schema(),
    }
}

/// A variant: its fields with `kind` first, required and fixed to the variant's value. Under
/// `/rounds/{id}/feedback` the round comes from the path, so `round_id` is not required.
fn variant_schema(kind: FeedbackKind, round_in_path: bool) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(fields)) = variant_fields(kind) else {
        return variant_fields(kind);
    };
    let mut object = fields;
    let mut properties = std::mem::take(&mut object.properties);
    let discriminator = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([kind.as_str()]))
        .into();
    object.properties.insert("kind".to_owned(), discriminator);
    object.properties.append(&mut properties);
    object.required.insert(0, "kind".to_owned());
    if round_in_path {
        object.required.retain(|field| field != "round_id");
    }
    object.description = Some(
        match kind {
            FeedbackKind::SessionFeedback => "Session feedback: a rating of one round.",
            FeedbackKind::TopicSuggestion => "A topic suggestion for a future round.",
            FeedbackKind::General => "A general comment for the organisers.",
        }
        .to_owned(),
    );
    RefOr::T(Schema::Object(object))
}

fn union_schema(round_in_path: bool) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(
        "Feedback, by `kind`: `session_feedback` rates a round (`round_id` and `rating` \
         required); `topic_suggestion` and `general` carry a `comment` and no rating. \
         Anonymous feedback is welcome: the author fields are optional.",
    ));
    let mut mapping = Vec::new();
    for kind in FeedbackKind::ALL {
        let component = variant_component(*kind, round_in_path);
        one_of = one_of.item(Ref::from_schema_name(component));
        mapping.push((kind.as_str(), format!("#/components/schemas/{component}")));
    }
    one_of
        .discriminator(Some(Discriminator::with_mapping("kind", mapping)))
        .into()
}

fn union_components(round_in_path: bool, schemas: &mut Vec<(String, RefOr<Schema>)>) {
    for kind in FeedbackKind::ALL {
        schemas.push((
            variant_component(*kind, round_in_path).to_owned(),
            variant_schema(*kind, round_in_path),
        ));
    }
    <SessionFeedbackFields as ToSchema>::schemas(schemas);
    <CommentFields as ToSchema>::schemas(schemas);
}

impl PartialSchema for FeedbackInput {
    fn schema() -> RefOr<Schema> {
        union_schema(false)
    }
}

impl ToSchema for FeedbackInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FeedbackInput")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        union_components(false, schemas);
    }
}

/// The body of `POST /rounds/{id}/feedback`: [`FeedbackInput`] with the round from the path.
/// It is documented only: the server puts the path's round into the body and checks it as a
/// [`FeedbackInput`].
pub struct RoundFeedbackInput;

impl PartialSchema for RoundFeedbackInput {
    fn schema() -> RefOr<Schema> {
        union_schema(true)
    }
}

impl ToSchema for RoundFeedbackInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RoundFeedbackInput")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        union_components(true, schemas);
    }
}

impl<'de> Deserialize<'de> for FeedbackInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let kind: FeedbackKind =
            serde_json::from_value(fields.remove("kind").unwrap_or(Value::Null))
                .map_err(D::Error::custom)?;
        let rest = Value::Object(fields);
        let input = match kind {
            FeedbackKind::SessionFeedback => {
                serde_json::from_value(rest).map(FeedbackInput::SessionFeedback)
            }
            FeedbackKind::TopicSuggestion => {
                serde_json::from_value(rest).map(FeedbackInput::TopicSuggestion)
            }
            FeedbackKind::General => serde_json::from_value(rest).map(FeedbackInput::General),
        };
        input.map_err(D::Error::custom)
    }
}

impl Input for FeedbackInput {}

/// The triage an organizer makes; a PATCH changes nothing else (what people wrote is not edited).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "accepted"}))]
pub struct FeedbackTriageInput {
    pub status: FeedbackStatus,
}

impl Input for FeedbackTriageInput {}

/// Ratings of one round.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "round_id": 3, "count": 4, "average_rating": 4.25,
    "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 2}
}))]
pub struct FeedbackSummary {
    pub round_id: Id,
    /// How many ratings the round has.
    pub count: Count,
    /// `null` while there is no rating.
    #[schema(minimum = 1, maximum = 5)]
    pub average_rating: Option<f64>,
    pub distribution: Distribution,
}

/// How many ratings of each value.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Distribution {
    #[serde(rename = "1")]
    #[schema(rename = "1")]
    pub one: Count,
    #[serde(rename = "2")]
    #[schema(rename = "2")]
    pub two: Count,
    #[serde(rename = "3")]
    #[schema(rename = "3")]
    pub three: Count,
    #[serde(rename = "4")]
    #[schema(rename = "4")]
    pub four: Count,
    #[serde(rename = "5")]
    #[schema(rename = "5")]
    pub five: Count,
}

impl Distribution {
    fn count_mut(&mut self, rating: i32) -> Option<&mut Count> {
        match rating {
            1 => Some(&mut self.one),
            2 => Some(&mut self.two),
            3 => Some(&mut self.three),
            4 => Some(&mut self.four),
            5 => Some(&mut self.five),
            _ => None,
        }
    }
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = feedback)]
struct FeedbackRow {
    id: i32,
    kind: FeedbackKind,
    round_id: Option<i32>,
    rating: Option<i32>,
    comment: Option<String>,
    author_name: Option<String>,
    author_email: Option<String>,
    status: FeedbackStatus,
    submitted_by: Option<String>,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
    version: i64,
}

impl From<FeedbackRow> for Feedback {
    fn from(row: FeedbackRow) -> Self {
        Feedback {
            id: Id(row.id),
            kind: row.kind,
            round_id: row.round_id.map(Id),
            rating: row.rating.map(|r| Rating::clamped(i64::from(r))),
            comment: row.comment.map(Text::stored),
            author_name: row.author_name.map(Text::stored),
            author_email: row.author_email.map(Email::stored),
            status: row.status,
            submitted_by: row.submitted_by.map(Text::stored),
            created_at: Timestamp::from_naive(row.created_at),
            updated_at: Timestamp::from_naive(row.updated_at),
            version: row.version,
        }
    }
}

/// Filters of the feedback list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedbackFilter {
    /// Only feedback about this round.
    pub round_id: Option<Id>,
    pub kind: Option<FeedbackKind>,
    pub status: Option<FeedbackStatus>,
}

/// Filters of a round's feedback list (the round is in the path).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoundFeedbackFilter {
    pub kind: Option<FeedbackKind>,
    pub status: Option<FeedbackStatus>,
}

// ---- persistence -------------------------------------------------------------------------

fn filtered(filter: &FeedbackFilter) -> feedback::BoxedQuery<'static, MultiBackend> {
    let mut query = feedback::table.into_boxed();
    if let Some(round_id) = filter.round_id {
        query = query.filter(feedback::round_id.eq(round_id.0));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(feedback::kind.eq(kind));
    }
    if let Some(status) = filter.status {
        query = query.filter(feedback::status.eq(status));
    }
    query
}

/// The columns a piece of feedback is written with.
type Columns<'a> = (
    diesel::dsl::Eq<feedback::kind, FeedbackKind>,
    diesel::dsl::Eq<feedback::round_id, Option<i32>>,
    diesel::dsl::Eq<feedback::rating, Option<i32>>,
    diesel::dsl::Eq<feedback::comment, Option<&'a str>>,
    diesel::dsl::Eq<feedback::author_name, Option<&'a str>>,
    diesel::dsl::Eq<feedback::author_email, Option<&'a str>>,
);

/// What a piece of feedback stores of what was sent.
struct Stored<'a> {
    round_id: Option<i32>,
    rating: Option<i32>,
    comment: Option<&'a str>,
    author_name: Option<&'a str>,
    author_email: Option<&'a str>,
}

fn stored(input: &FeedbackInput) -> Stored<'_> {
    let (round_id, rating, comment, author_name, author_email) = match input {
        FeedbackInput::SessionFeedback(f) => (
            Some(f.round_id.0),
            Some(f.rating.get() as i32),
            Text::non_blank(f.comment.as_ref()),
            &f.author_name,
            &f.author_email,
        ),
        FeedbackInput::TopicSuggestion(f) | FeedbackInput::General(f) => (
            f.round_id.map(|r| r.0),
            None,
            Some(f.comment.as_str()),
            &f.author_name,
            &f.author_email,
        ),
    };
    Stored {
        round_id,
        rating,
        comment,
        author_name: Text::non_blank(author_name.as_ref()),
        author_email: author_email.as_ref().map(Email::as_str),
    }
}

fn columns(input: &FeedbackInput) -> Columns<'_> {
    let s = stored(input);
    (
        feedback::kind.eq(input.kind()),
        feedback::round_id.eq(s.round_id),
        feedback::rating.eq(s.rating),
        feedback::comment.eq(s.comment),
        feedback::author_name.eq(s.author_name),
        feedback::author_email.eq(s.author_email),
    )
}

/// What a signed-in person's rating of a round (`round_id`, their token's `sub`) is to the
/// layers above this one: their evaluation of it. Credit registers it at start-up
/// (`app::startup`), so that a claim waiting for the evaluation is awarded, through the change
/// log, in the rating's transaction.
pub type EvaluationHook = fn(&mut DbConnection, i32, &str, Author<'_>) -> Result<(), ApiError>;

static ON_EVALUATION: std::sync::OnceLock<EvaluationHook> = std::sync::OnceLock::new();

/// Registers what a rating by a signed-in person does beyond itself (once per process; the
/// first registration stands).
pub fn on_evaluation(hook: EvaluationHook) {
    let _ = ON_EVALUATION.set(hook);
}

/// Feedback: what [`resource`] needs to serve it.
pub struct Feedbacks;

impl Resource for Feedbacks {
    crate::table_resource! {
        name "feedback" in "feedback", schedule false, read Allowed::Role(Role::Organizer),
        create Allowed::Submitters, write Allowed::Role(Role::Organizer), delete Allowed::Role(Role::Admin);
        Feedback from FeedbackRow in feedback, input FeedbackInput, change FeedbackTriageInput;
        list FeedbackFilter, by filtered, (feedback::created_at.desc(), feedback::id.desc());
    }

    /// What people wrote, as they wrote it; the status starts `new`.
    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Feedback, ApiError> {
        let now = db::now();
        let values = (
            columns(&new.input),
            feedback::status.eq(FeedbackStatus::New),
            feedback::submitted_by.eq(new.actor),
            (feedback::created_at.eq(now), feedback::updated_at.eq(now)),
        );
        Ok(crate::insert_row!(conn, feedback, FeedbackRow, values)?.into())
    }

    /// A rating sent by a signed-in person is their evaluation of the round: what it does
    /// beyond itself (see [`on_evaluation`]) happens in its transaction.
    fn after_insert(
        conn: &mut DbConnection,
        record: &Feedback,
        author: Author<'_>,
    ) -> Result<(), ApiError> {
        let (Some(round), Some(sub)) = (record.round_id, record.submitted_by.as_ref()) else {
            return Ok(());
        };
        match (record.kind, ON_EVALUATION.get()) {
            (FeedbackKind::SessionFeedback, Some(evaluated)) => {
                evaluated(conn, round.0, sub.as_str(), author)
            }
            _ => Ok(()),
        }
    }

    fn change_of(record: &Feedback) -> FeedbackTriageInput {
        FeedbackTriageInput {
            status: record.status,
        }
    }

    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Feedback>, ApiError> {
        let changes = (
            feedback::status.eq(update.change.status),
            feedback::updated_at.eq(db::now()),
            feedback::version.eq(feedback::version + 1),
        );
        let id = update.current.id.0;
        let row = crate::update_row!(conn, feedback, FeedbackRow, id, update.expected, changes)?;
        Ok(row.map(Feedback::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        let deleted = crate::delete_row!(conn, feedback, id, expected)?;
        if deleted == 0 && Feedbacks::find(conn, id)?.is_none() {
            return Err(ApiError::not_found(Feedbacks::NAME, id));
        }
        Ok(deleted == 1)
    }
}

/// PostgreSQL: the feedback and its change-log entry in one statement (see
/// [`changelog::Logged`]), from the same columns as [`Resource::insert`] and the same entry as
/// [`changelog::record`]; `feedback::the_one_statement_creation_logs_what_the_usual_way_logs`
/// (tests/api) compares them. Topic suggestions and general comments only: session feedback
/// is checked against its round's window first, and may be an evaluation
/// ([`Resource::after_insert`]), written in a transaction.
impl LoggedInsert for Feedbacks {
    fn insert_logged(
        conn: &mut DbConnection,
        new: &New<Self>,
        author: Author<'_>,
    ) -> Result<Option<Feedback>, ApiError> {
        let DbConnection::Postgresql(pg) = conn else {
            return Ok(None);
        };
        // Session feedback reads its round first, for its window (see `admit_rating`): the
        // usual way, in a transaction.
        if matches!(new.input, FeedbackInput::SessionFeedback(_)) {
            return Ok(None);
        }
        let now = db::now();
        let values = (
            columns(&new.input),
            feedback::status.eq(FeedbackStatus::New),
            feedback::submitted_by.eq(new.actor),
            (feedback::created_at.eq(now), feedback::updated_at.eq(now)),
        );
        let s = stored(&new.input);
        let pending = FeedbackRow {
            id: changelog::PENDING_ID,
            kind: new.input.kind(),
            round_id: s.round_id,
            rating: s.rating,
            comment: s.comment.map(str::to_owned),
            author_name: s.author_name.map(str::to_owned),
            author_email: s.author_email.map(str::to_owned),
            status: FeedbackStatus::New,
            submitted_by: new.actor.map(str::to_owned),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let after = serde_json::to_value(Feedback::from(pending))?;
        let Some(created) =
            changelog::Created::new(Feedbacks::NAME, after, author.actor, author.request_id, now)
        else {
            return Ok(None);
        };
        let write = diesel::insert_into(feedback::table)
            .values(values)
            .returning(FeedbackRow::as_returning());
        let row: FeedbackRow = changelog::Logged::new(write, &created).get_result(pg)?;
        Ok(Some(Feedback::from(row)))
    }
}

/// When a round takes session feedback: from its start until `feedback_window_days` (a series
/// setting) after its end, counted in calendar days in the series' zone; `closes` itself is
/// outside. Checked when a rating is sent, in the transaction that stores it: a rating already
/// stored stays, whatever later becomes of the round or the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackWindow {
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
}

impl FeedbackWindow {
    pub fn of(terms: &FeedbackTerms) -> FeedbackWindow {
        let (opens, ends) = (terms.starts_at.and_utc(), terms.ends_at.and_utc());
        FeedbackWindow {
            opens,
            // Past the year 9999: the window never closes before the calendar does.
            closes: timezone::add_days(&terms.zone, ends, terms.window_days)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

/// Whether round `round_id` takes a rating at `now`: the error naming `round_id` if it was
/// cancelled or `now` is outside its [`FeedbackWindow`], whose ends it gives in the series'
/// zone, with their offset.
pub fn admit_rating(
    round_id: i32,
    terms: &FeedbackTerms,
    now: DateTime<Utc>,
) -> Result<(), FieldError> {
    if terms.status == RoundStatus::Cancelled {
        return Err(FieldError::new(
            "round_id",
            format!(
                "round {round_id} was cancelled: it takes no session feedback (a topic \
                 suggestion or a general comment is still welcome)"
            ),
        ));
    }
    let window = FeedbackWindow::of(terms);
    let state = if now < window.opens {
        "has not started yet"
    } else if now >= window.closes {
        "is past its session feedback window"
    } else {
        return Ok(());
    };
    let local =
        |at| timezone::local(&terms.zone, at).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let until = match terms.window_days {
        0 => "its end".to_owned(),
        1 => "a day after its end".to_owned(),
        days => format!("{days} days after its end"),
    };
    Err(FieldError::new(
        "round_id",
        format!(
            "round {round_id} {state}: it takes session feedback from its start until {until}, \
             from {opens} until {closes} ({zone})",
            opens = local(window.opens),
            closes = local(window.closes),
            zone = timezone::name(&terms.zone),
        ),
    ))
}

/// The round a body rates, if it is session feedback that passed its schema and rules.
fn rated_round(checked: &Checked<FeedbackInput>) -> Option<i32> {
    match checked.value()? {
        FeedbackInput::SessionFeedback(fields) => Some(fields.round_id.0),
        _ => None,
    }
}

/// Session feedback on round `round_id`, checked in the write's transaction with the round's
/// row read once: 422 (see [`admit_rating`]) for a cancelled round or outside its window,
/// `Ok(false)` if there is no such round.
fn round_takes_rating(conn: &mut DbConnection, round_id: i32) -> Result<bool, ApiError> {
    let Some(terms) = rounds::feedback_terms(conn, round_id)? else {
        return Ok(false);
    };
    admit_rating(round_id, &terms, db::now().and_utc())
        .map_err(|refused| ApiError::Validation(vec![refused]))?;
    Ok(true)
}

pub fn summary(conn: &mut DbConnection, round_id: i32) -> Result<FeedbackSummary, ApiError> {
    if !rounds::exists(conn, round_id)? {
        return Err(ApiError::not_found(Rounds::NAME, round_id));
    }
    let counts = feedback::table
        .filter(feedback::round_id.eq(round_id))
        .filter(feedback::rating.is_not_null())
        .group_by(feedback::rating)
        .select((feedback::rating, diesel::dsl::count_star()))
        .load::<(Option<i32>, i64)>(conn)?;
    let mut distribution = Distribution::default();
    let (mut count, mut sum) = (0i64, 0i64);
    for (rating, n) in counts {
        let Some(rating) = rating else {
            continue;
        };
        if let Some(slot) = distribution.count_mut(rating) {
            *slot = Count::clamped(n);
        }
        count += n;
        sum += i64::from(rating) * n;
    }
    Ok(FeedbackSummary {
        round_id: Id(round_id),
        count: Count::clamped(count),
        average_rating: (count > 0).then(|| (sum as f64 / count as f64 * 100.0).round() / 100.0),
        distribution,
    })
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Feedbacks, one = "feedback", many = "feedback", tag = "feedback",
    record = Feedback, input = FeedbackInput, change = FeedbackTriageInput,
    read = [("bearer" = ["organizer", "admin"])], write = [("bearer" = ["organizer", "admin"])];
    list list_feedback "/feedback" "List feedback, newest first" [FeedbackFilter, Paging];
    get get_feedback "/feedback/{id}" "Get one piece of feedback";
    patch triage_feedback "/feedback/{id}" "Triage feedback: change its status (JSON merge patch)";
}

/// Send feedback, a topic suggestion or a comment
#[utoipa::path(
    tag = "feedback",
    security((), ("bearer" = [])),
    request_body = FeedbackInput,
    responses(
        (status = 201, description = "Received", body = Feedback,
            headers(
                ("Location" = HeaderText, description = "URL of the new feedback"),
                ("RateLimit-Policy" = HeaderText, description = "Anonymous feedback only: the client's limit (IETF RateLimit headers draft)"),
                ("RateLimit" = HeaderText, description = "Anonymous feedback only: what is left of it")
            )),
        WriteErrors
    )
)]
#[post("/feedback")]
pub async fn create_feedback(ctx: Ctx, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let (granted, quotum) = limit_anonymous(&ctx)?;
    let response = async {
        let body = body.value()?;
        create_checked(ctx, granted, body).await
    }
    .await;
    Quotum::added_to(quotum, response)
}

/// Feedback as `POST /feedback` takes it, from a caller already authorized (and counted
/// against the anonymous quota) by [`authorize_sending`]: checked against its schema and the
/// round's window, and written, alike. The service's own pages send their forms here.
pub async fn create_checked(
    ctx: Ctx,
    granted: Granted,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    let request = serde_json::to_vec(&body)?;
    let checked = ctx.validators.body::<FeedbackInput>(body);
    let rated = rated_round(&checked);
    // A round that does not exist is left to the foreign key, which names `round_id`.
    let precheck = move |conn: &mut DbConnection| match rated {
        Some(round_id) => round_takes_rating(conn, round_id).map(drop),
        None => Ok(()),
    };
    resource::create_logged::<Feedbacks>(ctx, granted, checked, &request, precheck).await
}

/// Whether the caller may send feedback, as `POST /feedback` decides it: anonymous feedback
/// counts against the client's quota (`LHS_FEEDBACK_RATE_LIMIT`).
pub fn authorize_sending(ctx: &Ctx) -> Result<Granted, ApiError> {
    limit_anonymous(ctx).map(|(granted, _)| granted)
}

/// Feedback sent without a token counts against the client's quota
/// (`LHS_FEEDBACK_RATE_LIMIT`); with a token it does not.
fn limit_anonymous(ctx: &Ctx) -> Result<(Granted, Option<Quotum>), ApiError> {
    let granted = ctx.authorize::<Feedbacks>(Access::Create)?;
    match &ctx.limits.anonymous_feedback {
        Some(limit) if ctx.caller.is_anonymous() => Ok((granted, Some(limit.take(ctx.client)?))),
        _ => Ok((granted, None)),
    }
}

/// Delete feedback
#[utoipa::path(
    tag = "feedback",
    security(("bearer" = ["admin"])),
    params(("id" = Id, Path, description = "Feedback id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/feedback/{id}")]
pub async fn delete_feedback(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    resource::delete::<Feedbacks>(ctx, id.into_inner()).await
}

/// List the feedback on a round, newest first
#[utoipa::path(
    tag = "feedback",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id"), RoundFeedbackFilter, Paging),
    responses((status = 200, description = "A page of feedback", body = Page<Feedback>), ReadErrors)
)]
#[get("/rounds/{id}/feedback")]
pub async fn list_round_feedback(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Feedbacks>(Access::Read)?;
    let round_id = id.into_inner();
    let query = query.values()?;
    let given: RoundFeedbackFilter = query.get()?;
    let filter = FeedbackFilter {
        round_id: Some(Id(round_id)),
        kind: given.kind,
        status: given.status,
    };
    resource::list_filtered::<Feedbacks>(ctx, granted, &query, filter, move |conn| {
        round_exists(conn, round_id)
    })
    .await
}

/// Send feedback on a round
///
/// The same body as `POST /feedback`; the round comes from the path.
#[utoipa::path(
    tag = "feedback",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Round id")),
    request_body = RoundFeedbackInput,
    responses(
        (status = 201, description = "Received", body = Feedback,
            headers(
                ("Location" = HeaderText, description = "URL of the new feedback"),
                ("RateLimit-Policy" = HeaderText, description = "Anonymous feedback only: the client's limit (IETF RateLimit headers draft)"),
                ("RateLimit" = HeaderText, description = "Anonymous feedback only: what is left of it")
            )),
        WriteErrors
    )
)]
#[post("/rounds/{id}/feedback")]
pub async fn create_round_feedback(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (granted, quotum) = limit_anonymous(&ctx)?;
    let round_id = id.into_inner();
    let response = async {
        let body = body.value()?;
        create_on_round(ctx, granted, round_id, body).await
    }
    .await;
    Quotum::added_to(quotum, response)
}

/// 404 unless the round exists.
fn round_exists(conn: &mut DbConnection, round_id: i32) -> Result<(), ApiError> {
    match rounds::exists(conn, round_id)? {
        true => Ok(()),
        false => Err(ApiError::not_found(Rounds::NAME, round_id)),
    }
}

/// Feedback on the round in the path: the body's `round_id` may be left out, and must match
/// the path when given.
async fn create_on_round(
    ctx: Ctx,
    granted: Granted,
    round_id: i32,
    mut body: Value,
) -> Result<HttpResponse, ApiError> {
    let request = serde_json::to_vec(&body)?;
    let mut conflicting_round = None;
    if let Some(fields) = body.as_object_mut() {
        let session = fields.get("kind") == Some(&Value::from("session_feedback"));
        match fields.get("round_id") {
            None => {
                fields.insert("round_id".to_owned(), Value::from(round_id));
            }
            // `null` is "no round" where the schema allows it (comments): the path's round.
            // For session feedback the schema refuses it, as it does on `POST /feedback`.
            Some(Value::Null) if !session => {
                fields.insert("round_id".to_owned(), Value::from(round_id));
            }
            Some(given) if given.as_f64() == Some(f64::from(round_id)) => {}
            // Not a number: the schema names it; a second error would only confuse.
            Some(given) if !given.is_number() => {}
            Some(given) => conflicting_round = Some(given.to_string()),
        }
    }
    let mut checked = ctx.validators.body::<FeedbackInput>(body);
    if let Some(given) = conflicting_round {
        checked.add_error(
            "round_id",
            format!(
                "is {given} but the path is for round {round_id}; leave it out or make them match"
            ),
        );
    }
    let rates = rated_round(&checked).is_some();
    resource::create_with::<Feedbacks>(ctx, granted, checked, &request, move |conn| match rates {
        true if round_takes_rating(conn, round_id)? => Ok(()),
        true => Err(ApiError::not_found(Rounds::NAME, round_id)),
        false => round_exists(conn, round_id),
    })
    .await
}

/// Summarise the ratings of a round
#[utoipa::path(
    tag = "feedback",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 200, description = "Count, average and distribution of ratings", body = FeedbackSummary), ReadErrors)
)]
#[get("/rounds/{id}/feedback/summary")]
pub async fn round_feedback_summary(
    ctx: Ctx,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_reader())?;
    let round_id = id.into_inner();
    ctx.read(granted, false, true, None, move |conn| {
        Rendered::json(&summary(conn, round_id)?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate, NaiveDateTime};

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|day| day.and_hms_opt(h, min, 0))
            .unwrap_or_default()
    }

    /// A round of 2026-10-15, noon to 1 pm in New York (16:00 to 17:00 UTC).
    fn terms(days: i64, status: RoundStatus) -> FeedbackTerms {
        FeedbackTerms {
            starts_at: at(2026, 10, 15, 16, 0),
            ends_at: at(2026, 10, 15, 17, 0),
            status,
            zone: timezone::named_or_default(None),
            window_days: days,
        }
    }

    #[test]
    fn a_rating_is_taken_from_the_start_until_the_window_closes() {
        let round = terms(30, RoundStatus::Scheduled);
        let window = FeedbackWindow::of(&round);
        // 30 days after 1 pm on 15 October is 1 pm on 14 November in New York, which by then is
        // on standard time again (-05:00): 18:00 UTC, not 17:00.
        assert_eq!(window.opens, at(2026, 10, 15, 16, 0).and_utc());
        assert_eq!(window.closes, at(2026, 11, 14, 18, 0).and_utc());
        let tick = Duration::microseconds(1);
        for (now, taken) in [
            (window.opens - tick, false),
            (window.opens, true),
            (at(2026, 10, 15, 17, 0).and_utc(), true),
            (window.closes - tick, true),
            (window.closes, false),
        ] {
            assert_eq!(admit_rating(3, &round, now).is_ok(), taken, "at {now}");
        }
    }

    #[test]
    fn a_refusal_names_the_round_and_its_window_in_the_series_zone() {
        let round = terms(30, RoundStatus::Scheduled);
        let early = admit_rating(3, &round, at(2026, 10, 1, 0, 0).and_utc());
        let late = admit_rating(3, &round, at(2027, 1, 1, 0, 0).and_utc());
        let window = "from 2026-10-15T12:00:00-04:00 until 2026-11-14T13:00:00-05:00 \
                      (America/New_York)";
        for (refused, state) in [
            (early, "has not started yet"),
            (late, "is past its session feedback window"),
        ] {
            let refused = refused.expect_err("outside the window");
            assert_eq!(refused.field, "round_id");
            assert!(refused.message.contains(state), "{}", refused.message);
            assert!(refused.message.contains(window), "{}", refused.message);
            assert!(refused.message.contains("30 days"), "{}", refused.message);
        }
    }

    #[test]
    fn a_cancelled_round_takes_no_rating_even_in_its_window() {
        let round = terms(30, RoundStatus::Cancelled);
        let refused =
            admit_rating(3, &round, at(2026, 10, 15, 16, 30).and_utc()).expect_err("cancelled");
        assert_eq!(refused.field, "round_id");
        assert!(refused.message.contains("cancelled"), "{}", refused.message);
    }

    #[test]
    fn a_window_of_no_days_closes_when_the_round_ends() {
        let round = terms(0, RoundStatus::Scheduled);
        let end = at(2026, 10, 15, 17, 0).and_utc();
        assert_eq!(FeedbackWindow::of(&round).closes, end);
        assert!(admit_rating(3, &round, end - Duration::microseconds(1)).is_ok());
        assert!(admit_rating(3, &round, end).is_err());
    }
}
