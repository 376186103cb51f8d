//! Rounds: one session of the series, with its topic, time, place, speakers and organisers.

use std::collections::HashMap;

use crate::db::MultiBackend;
use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Caller, Role, Visible};
use crate::cache::{Key, ReadCache, Rendered};
use crate::db::{self, Database, DbConnection};
use crate::error::ApiError;
use crate::input::{merge_patch, Checked, Id, ObjectReader, QueryReader, RefKind};
use crate::openapi::{ReadErrors, WriteErrors};
use crate::pagination::{Page, Paging};
use crate::schema::{departments, feedback, round_departments, round_speakers, rounds, speakers};
use crate::speakers::{decode_credentials, display_name};

pub const TITLE_MAX: usize = 300;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const LOCATION_MAX: usize = 200;
/// One speaker, or a panel of up to eight.
pub const SPEAKERS_MAX: usize = 8;
pub const DEPARTMENTS_MAX: usize = 20;
pub const STATUSES: &[&str] = &["scheduled", "cancelled"];
pub const ROLES: &[&str] = &["presenter", "moderator", "panelist"];

/// Whether a round goes ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundStatus {
    Scheduled,
    Cancelled,
}

/// What a speaker does at a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerRole {
    Presenter,
    Moderator,
    Panelist,
}

/// A speaker on a round, with what the schedule prints about them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundSpeaker {
    pub speaker_id: i32,
    #[schema(value_type = SpeakerRole)]
    pub role: String,
    pub full_name: String,
    pub credentials: Vec<String>,
    #[schema(example = "Tara Lagu, MD, MPH")]
    pub display_name: String,
}

/// An organising department, as shown on a round.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DepartmentSummary {
    pub id: i32,
    pub name: String,
    pub abbreviation: Option<String>,
}

/// A round, as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "title": "How can we use patient comments to improve care?", "description": null,
    "starts_at": "2019-04-25T16:00:00Z", "ends_at": "2019-04-25T17:00:00Z",
    "location": "BMC – MassMutual 5", "status": "scheduled",
    "speakers": [{"speaker_id": 7, "role": "presenter", "full_name": "Tara Lagu",
        "credentials": ["MD", "MPH"], "display_name": "Tara Lagu, MD, MPH"}],
    "department_ids": [1],
    "departments": [{"id": 1, "name": "Division of Healthcare Quality", "abbreviation": "DHQ"}],
    "created_at": "2019-01-02T15:00:00Z", "updated_at": "2019-01-02T15:00:00Z"
}))]
pub struct Round {
    pub id: i32,
    /// The topic; empty until it is known.
    pub title: Option<String>,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub location: String,
    #[schema(value_type = RoundStatus)]
    pub status: String,
    /// In the order the schedule lists them.
    pub speakers: Vec<RoundSpeaker>,
    pub department_ids: Vec<i32>,
    pub departments: Vec<DepartmentSummary>,
    /// The token subject that created it; shown to organisers and admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub created_by: Option<String>,
    /// The token subject that last changed it; shown to organisers and admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub updated_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A speaker slot in a round input.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeakerSlot {
    #[schema(minimum = 1, maximum = 2147483647)]
    pub speaker_id: i32,
    /// Defaults to `presenter`.
    #[serde(default = "presenter")]
    #[schema(value_type = SpeakerRole, default = "presenter")]
    pub role: String,
}

fn presenter() -> String {
    "presenter".to_owned()
}

/// A round, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "How can we use patient comments to improve care?",
    "starts_at": "2019-04-25T12:00:00-04:00", "ends_at": "2019-04-25T13:00:00-04:00",
    "location": "BMC – MassMutual 5", "status": "scheduled",
    "speakers": [{"speaker_id": 7, "role": "presenter"}], "department_ids": [1]
}))]
pub struct RoundInput {
    #[schema(
        max_length = 300,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub title: Option<String>,
    #[schema(
        max_length = 10000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
    /// RFC 3339, any offset.
    pub starts_at: DateTime<Utc>,
    /// After `starts_at`.
    pub ends_at: DateTime<Utc>,
    /// Building and room, such as "BMC – MassMutual 5".
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub location: String,
    #[serde(default = "scheduled")]
    #[schema(value_type = RoundStatus, default = "scheduled")]
    pub status: String,
    /// Up to eight, in order; each speaker at most once.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub speakers: Vec<SpeakerSlot>,
    /// The organising departments, each at most once.
    #[serde(default)]
    #[schema(max_items = 20, value_type = BTreeSet<Id>)]
    pub department_ids: Vec<i32>,
}

fn scheduled() -> String {
    "scheduled".to_owned()
}

impl RoundInput {
    pub fn read(body: Value) -> Checked<RoundInput> {
        let mut r = ObjectReader::new(body);
        let title = r.text("title", TITLE_MAX);
        let description = r.text("description", DESCRIPTION_MAX);
        let starts_at = r.timestamp("starts_at");
        let ends_at = r.timestamp("ends_at");
        if let (Some(starts), Some(ends)) = (starts_at, ends_at) {
            if ends <= starts {
                r.error("ends_at", "must be after starts_at");
            }
        }
        let location = r.required_text("location", LOCATION_MAX);
        let status = r
            .choice("status", STATUSES, Some("scheduled"))
            .unwrap_or("scheduled");
        let slots = r.objects("speakers", SPEAKERS_MAX, |s| {
            let speaker_id = s.required_reference("speaker_id", RefKind::Speaker);
            let role = s.choice("role", ROLES, Some("presenter"));
            (speaker_id, role)
        });
        let mut speakers: Vec<SpeakerSlot> = Vec::with_capacity(slots.len());
        for (i, slot) in slots.into_iter().enumerate() {
            if let (Some(speaker_id), Some(role)) = slot {
                if let Some(first) = speakers.iter().position(|s| s.speaker_id == speaker_id) {
                    r.error(
                        &format!("speakers[{i}].speaker_id"),
                        format!(
                            "speaker {speaker_id} is already on this round (speakers[{first}])"
                        ),
                    );
                }
                speakers.push(SpeakerSlot {
                    speaker_id,
                    role: role.to_owned(),
                });
            }
        }
        let department_ids = r.references("department_ids", DEPARTMENTS_MAX, RefKind::Department);
        let input = RoundInput {
            title,
            description,
            starts_at: starts_at.unwrap_or_default(),
            ends_at: ends_at.unwrap_or_default(),
            location,
            status: status.to_owned(),
            speakers,
            department_ids,
        };
        r.finish(input)
    }

    fn search_text(&self) -> String {
        let mut text = self.title.as_deref().unwrap_or_default().to_lowercase();
        if let Some(description) = &self.description {
            text.push('\n');
            text.push_str(&description.to_lowercase());
        }
        text
    }
}

impl From<Round> for RoundInput {
    fn from(round: Round) -> Self {
        RoundInput {
            title: round.title,
            description: round.description,
            starts_at: round.starts_at,
            ends_at: round.ends_at,
            location: round.location,
            status: round.status,
            speakers: round
                .speakers
                .into_iter()
                .map(|s| SpeakerSlot {
                    speaker_id: s.speaker_id,
                    role: s.role,
                })
                .collect(),
            department_ids: round.department_ids,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = rounds)]
struct RoundRow {
    id: i32,
    title: Option<String>,
    description: Option<String>,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    location: String,
    status: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
}

/// Filters and order of the round list.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoundFilter {
    /// `upcoming`: not yet ended, soonest first; `past`: ended, most recent first.
    #[param(inline, value_type = Option<When>)]
    pub when: Option<&'static str>,
    /// Rounds starting at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Rounds starting at or before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// Rounds this speaker is on.
    #[param(minimum = 1, maximum = 2147483647)]
    pub speaker_id: Option<i32>,
    /// Rounds this department organises.
    #[param(minimum = 1, maximum = 2147483647)]
    pub department_id: Option<i32>,
    #[param(inline, value_type = Option<RoundStatus>)]
    pub status: Option<&'static str>,
    /// Text in the title or description, ignoring case.
    #[param(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub q: Option<String>,
    /// Order by start time; `-starts_at` for latest first. Overrides the order of `when`.
    #[param(inline, value_type = Option<RoundSort>)]
    pub sort: Option<&'static str>,
}

/// Time window of the round list.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Upcoming,
    Past,
}

/// Order of the round list.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum RoundSort {
    #[serde(rename = "starts_at")]
    StartsAt,
    #[serde(rename = "-starts_at")]
    StartsAtDescending,
}

impl RoundFilter {
    pub fn read(query: &mut QueryReader) -> RoundFilter {
        RoundFilter {
            when: query.choice("when", &["upcoming", "past"]),
            from: query.timestamp("from"),
            to: query.timestamp("to"),
            speaker_id: query.id("speaker_id"),
            department_id: query.id("department_id"),
            status: query.choice("status", STATUSES),
            q: query.text("q", 200),
            sort: query.choice("sort", &["starts_at", "-starts_at"]),
        }
    }
}

// ---- persistence -------------------------------------------------------------------------

fn filtered(filter: &RoundFilter, now: NaiveDateTime) -> rounds::BoxedQuery<'static, MultiBackend> {
    let mut query = rounds::table.into_boxed();
    match filter.when {
        Some("upcoming") => query = query.filter(rounds::ends_at.gt(now)),
        Some("past") => query = query.filter(rounds::ends_at.le(now)),
        _ => {}
    }
    if let Some(from) = filter.from {
        query = query.filter(rounds::starts_at.ge(from.naive_utc()));
    }
    if let Some(to) = filter.to {
        query = query.filter(rounds::starts_at.le(to.naive_utc()));
    }
    if let Some(speaker_id) = filter.speaker_id {
        query = query.filter(
            rounds::id.eq_any(
                round_speakers::table
                    .filter(round_speakers::speaker_id.eq(speaker_id))
                    .select(round_speakers::round_id),
            ),
        );
    }
    if let Some(department_id) = filter.department_id {
        query = query.filter(
            rounds::id.eq_any(
                round_departments::table
                    .filter(round_departments::department_id.eq(department_id))
                    .select(round_departments::round_id),
            ),
        );
    }
    if let Some(status) = filter.status {
        query = query.filter(rounds::status.eq(status));
    }
    if let Some(q) = &filter.q {
        query = query.filter(
            rounds::search_text
                .like(db::contains_pattern(&q.to_lowercase()))
                .escape('\\'),
        );
    }
    query
}

/// A page of rounds with their speakers and departments, in four queries whatever the page
/// size: count, page, all the page's speakers, all the page's departments.
pub fn list(
    conn: &mut DbConnection,
    filter: &RoundFilter,
    paging: Paging,
) -> Result<Page<Round>, ApiError> {
    list_at(conn, filter, paging, db::now())
}

/// [`list`] as of `now`, which decides what `when` takes in.
pub fn list_at(
    conn: &mut DbConnection,
    filter: &RoundFilter,
    paging: Paging,
    now: NaiveDateTime,
) -> Result<Page<Round>, ApiError> {
    let total = filtered(filter, now).count().get_result::<i64>(conn)?;
    let latest_first = match filter.sort {
        Some(sort) => sort == "-starts_at",
        None => filter.when == Some("past"),
    };
    let query = filtered(filter, now);
    let query = if latest_first {
        query.order((rounds::starts_at.desc(), rounds::id.desc()))
    } else {
        query.order((rounds::starts_at.asc(), rounds::id.asc()))
    };
    let rows = query
        .limit(paging.limit)
        .offset(paging.offset)
        .select(RoundRow::as_select())
        .load(conn)?;
    let items = with_embeds(conn, rows)?;
    Ok(paging.page(items, total))
}

/// A page of rounds as the caller may see it, rendered to JSON. With `when`, the page holds
/// only until the next upcoming round ends, when it moves from upcoming to past.
pub fn render_list(
    conn: &mut DbConnection,
    filter: &RoundFilter,
    paging: Paging,
    caller: &Caller,
) -> Result<Rendered, ApiError> {
    let now = db::now();
    let page = list_at(conn, filter, paging, now)?;
    let valid_until = match filter.when {
        Some(_) => next_end_after(conn, now)?,
        None => None,
    };
    Ok(Rendered::json(&page.visible_to(caller))?.until(valid_until))
}

/// When the next round still going or to come ends, if there is one.
fn next_end_after(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, ApiError> {
    Ok(rounds::table
        .filter(rounds::ends_at.gt(now))
        .select(diesel::dsl::min(rounds::ends_at))
        .first::<Option<NaiveDateTime>>(conn)?)
}

pub fn find(conn: &mut DbConnection, id: i32) -> Result<Round, ApiError> {
    let row = crate::on_backend!(conn, |c| rounds::table
        .find(id)
        .select(RoundRow::as_select())
        .first(c)
        .optional())?
    .ok_or_else(|| ApiError::not_found("round", id))?;
    Ok(with_embeds(conn, vec![row])?.remove(0))
}

/// Whether a round exists, without loading it.
pub fn exists(conn: &mut DbConnection, id: i32) -> Result<bool, ApiError> {
    Ok(crate::on_backend!(conn, |c| rounds::table
        .find(id)
        .select(rounds::id)
        .first::<i32>(c)
        .optional())?
    .is_some())
}

/// The speakers of the rounds matching `$filter`, in round and schedule order.
macro_rules! speaker_embeds {
    ($conn:expr, $filter:expr) => {
        crate::on_backend!($conn, |c| round_speakers::table
            .inner_join(speakers::table)
            .filter($filter)
            .order((round_speakers::round_id, round_speakers::position))
            .select((
                round_speakers::round_id,
                round_speakers::speaker_id,
                round_speakers::role,
                speakers::full_name,
                speakers::credentials,
            ))
            .load::<(i32, i32, String, String, String)>(c))?
    };
}

/// The organising departments of the rounds matching `$filter`, in round and listed order.
macro_rules! department_embeds {
    ($conn:expr, $filter:expr) => {
        crate::on_backend!($conn, |c| round_departments::table
            .inner_join(departments::table)
            .filter($filter)
            .order((round_departments::round_id, round_departments::position))
            .select((
                round_departments::round_id,
                departments::id,
                departments::name,
                departments::abbreviation,
            ))
            .load::<(i32, i32, String, Option<String>)>(c))?
    };
}

fn with_embeds(conn: &mut DbConnection, rows: Vec<RoundRow>) -> Result<Vec<Round>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    // Each of these statements is prepared once per connection: one round by `=`, a page by
    // `= ANY($1)` on PostgreSQL (SQLite's `IN (?, ?, ...)` varies with the page size).
    let (speaker_rows, department_rows) = match ids[..] {
        [id] => (
            speaker_embeds!(conn, round_speakers::round_id.eq(id)),
            department_embeds!(conn, round_departments::round_id.eq(id)),
        ),
        _ => (
            speaker_embeds!(conn, round_speakers::round_id.eq_any(&ids)),
            department_embeds!(conn, round_departments::round_id.eq_any(&ids)),
        ),
    };
    let mut speakers_of: HashMap<i32, Vec<RoundSpeaker>> = HashMap::new();
    for (round_id, speaker_id, role, full_name, credentials) in speaker_rows {
        let credentials = decode_credentials(&credentials);
        speakers_of.entry(round_id).or_default().push(RoundSpeaker {
            speaker_id,
            role,
            display_name: display_name(&full_name, &credentials),
            full_name,
            credentials,
        });
    }
    let mut departments_of: HashMap<i32, Vec<DepartmentSummary>> = HashMap::new();
    for (round_id, id, name, abbreviation) in department_rows {
        departments_of
            .entry(round_id)
            .or_default()
            .push(DepartmentSummary {
                id,
                name,
                abbreviation,
            });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let departments = departments_of.remove(&row.id).unwrap_or_default();
            Round {
                id: row.id,
                title: row.title,
                description: row.description,
                starts_at: row.starts_at.and_utc(),
                ends_at: row.ends_at.and_utc(),
                location: row.location,
                status: row.status,
                speakers: speakers_of.remove(&row.id).unwrap_or_default(),
                department_ids: departments.iter().map(|d| d.id).collect(),
                departments,
                created_by: row.created_by,
                updated_by: row.updated_by,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
            }
        })
        .collect())
}

fn insert_links(
    conn: &mut DbConnection,
    round_id: i32,
    input: &RoundInput,
) -> Result<(), ApiError> {
    // One row per statement: multi-row inserts do not compile for a MultiConnection.
    for (position, slot) in input.speakers.iter().enumerate() {
        diesel::insert_into(round_speakers::table)
            .values((
                round_speakers::round_id.eq(round_id),
                round_speakers::speaker_id.eq(slot.speaker_id),
                round_speakers::position.eq(position as i32),
                round_speakers::role.eq(&slot.role),
            ))
            .execute(conn)?;
    }
    for (position, department_id) in input.department_ids.iter().enumerate() {
        diesel::insert_into(round_departments::table)
            .values((
                round_departments::round_id.eq(round_id),
                round_departments::department_id.eq(department_id),
                round_departments::position.eq(position as i32),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn delete_links(conn: &mut DbConnection, round_id: i32) -> Result<(), ApiError> {
    diesel::delete(round_speakers::table.filter(round_speakers::round_id.eq(round_id)))
        .execute(conn)?;
    diesel::delete(round_departments::table.filter(round_departments::round_id.eq(round_id)))
        .execute(conn)?;
    Ok(())
}

pub fn insert(
    conn: &mut DbConnection,
    input: RoundInput,
    actor: Option<&str>,
) -> Result<Round, ApiError> {
    let now = db::now();
    let id = diesel::insert_into(rounds::table)
        .values((
            rounds::title.eq(&input.title),
            rounds::description.eq(&input.description),
            rounds::starts_at.eq(input.starts_at.naive_utc()),
            rounds::ends_at.eq(input.ends_at.naive_utc()),
            rounds::location.eq(&input.location),
            rounds::status.eq(&input.status),
            rounds::search_text.eq(input.search_text()),
            rounds::created_at.eq(now),
            rounds::updated_at.eq(now),
            rounds::created_by.eq(actor),
            rounds::updated_by.eq(actor),
        ))
        .returning(rounds::id)
        .get_result::<i32>(conn)?;
    insert_links(conn, id, &input)?;
    find(conn, id)
}

pub fn update(
    conn: &mut DbConnection,
    id: i32,
    input: RoundInput,
    actor: Option<&str>,
) -> Result<Round, ApiError> {
    let changed = diesel::update(rounds::table.find(id))
        .set((
            rounds::title.eq(&input.title),
            rounds::description.eq(&input.description),
            rounds::starts_at.eq(input.starts_at.naive_utc()),
            rounds::ends_at.eq(input.ends_at.naive_utc()),
            rounds::location.eq(&input.location),
            rounds::status.eq(&input.status),
            rounds::search_text.eq(input.search_text()),
            rounds::updated_at.eq(db::now()),
            rounds::updated_by.eq(actor),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Err(ApiError::not_found("round", id));
    }
    delete_links(conn, id)?;
    insert_links(conn, id, &input)?;
    find(conn, id)
}

pub fn delete(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    if !exists(conn, id)? {
        return Err(ApiError::not_found("round", id));
    }
    let feedback = feedback::table
        .filter(feedback::round_id.eq(id))
        .count()
        .get_result::<i64>(conn)?;
    if feedback > 0 {
        return Err(ApiError::Conflict(format!(
            "round {id} still has {} ({}); delete the feedback first",
            db::describe_counts(&[(feedback, "feedback item")]),
            "feedback is kept unless an admin deletes it"
        )));
    }
    delete_links(conn, id)?;
    diesel::delete(rounds::table.find(id)).execute(conn)?;
    Ok(())
}

// ---- handlers ----------------------------------------------------------------------------

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_rounds)
        .service(create_round)
        .service(get_round)
        .service(replace_round)
        .service(patch_round)
        .service(delete_round);
}

/// List rounds
#[utoipa::path(
    tag = "rounds",
    security((), ("bearer" = [])),
    params(RoundFilter, Paging),
    responses((status = 200, description = "A page of rounds", body = Page<Round>), ReadErrors)
)]
#[get("/rounds")]
pub async fn list_rounds(
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader()?;
    let mut query = QueryReader::new(req.query_string())?;
    let filter = RoundFilter::read(&mut query);
    let paging = Paging::read(&mut query);
    query.finish()?;
    let key = Key::new(&req, &caller);
    cache
        .answer(&db, key, move |conn| {
            render_list(conn, &filter, paging, &caller)
        })
        .await
}

/// Schedule a round
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    request_body = RoundInput,
    responses(
        (status = 201, description = "Created", body = Round,
            headers(("Location" = String, description = "URL of the new round"))),
        WriteErrors
    )
)]
#[post("/rounds")]
pub async fn create_round(
    db: web::Data<Database>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let input = RoundInput::read(body.into_inner());
    let actor = caller.subject.clone();
    let created = db
        .write(move |conn| {
            let input = input.verify(conn)?;
            insert(conn, input, actor.as_deref())
        })
        .await?;
    Ok(crate::created(
        "rounds",
        created.id,
        &created.visible_to(&caller),
    ))
}

/// Get a round
#[utoipa::path(
    tag = "rounds",
    security((), ("bearer" = [])),
    params(("id" = i32, Path, minimum = 1, description = "Round id")),
    responses((status = 200, description = "The round", body = Round), ReadErrors)
)]
#[get("/rounds/{id}")]
pub async fn get_round(
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    caller: Caller,
    id: web::Path<i32>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader()?;
    let id = id.into_inner();
    let key = Key::new(&req, &caller);
    cache
        .answer(&db, key, move |conn| {
            Rendered::json(&find(conn, id)?.visible_to(&caller))
        })
        .await
}

/// Replace a round
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Round id")),
    request_body = RoundInput,
    responses((status = 200, description = "The round as replaced", body = Round), WriteErrors)
)]
#[put("/rounds/{id}")]
pub async fn replace_round(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    let input = RoundInput::read(body.into_inner());
    let actor = caller.subject.clone();
    let round = db
        .write(move |conn| {
            if !exists(conn, id)? {
                return Err(ApiError::not_found("round", id));
            }
            let input = input.verify(conn)?;
            update(conn, id, input, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(round.visible_to(&caller)))
}

/// Change some fields of a round (JSON merge patch)
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Round id")),
    request_body(content = RoundPatch, content_type = "application/merge-patch+json",
        description = "Fields to change; `null` clears an optional field; arrays are replaced whole"),
    responses((status = 200, description = "The round as changed", body = Round), WriteErrors)
)]
#[patch("/rounds/{id}")]
pub async fn patch_round(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    let patch = body.into_inner();
    let actor = caller.subject.clone();
    let round = db
        .write(move |conn| {
            let mut doc = serde_json::to_value(RoundInput::from(find(conn, id)?))?;
            merge_patch(&mut doc, &patch);
            let input = RoundInput::read(doc).verify(conn)?;
            update(conn, id, input, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(round.visible_to(&caller)))
}

/// Delete a round that has no feedback
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Round id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/rounds/{id}")]
pub async fn delete_round(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    db.write(move |conn| delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A merge patch of a round: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the PATCH body; the body is read by `RoundInput::read`
pub struct RoundPatch {
    #[schema(
        max_length = 300,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    title: Option<String>,
    #[schema(
        max_length = 10000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    description: Option<String>,
    /// Required field: may be changed, not cleared.
    #[schema(nullable = false)]
    starts_at: Option<DateTime<Utc>>,
    /// Required field: may be changed, not cleared.
    #[schema(nullable = false)]
    ends_at: Option<DateTime<Utc>>,
    /// Required field: may be changed, not cleared.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    location: Option<String>,
    #[schema(value_type = Option<RoundStatus>)]
    status: Option<String>,
    #[schema(max_items = 8)]
    speakers: Option<Vec<SpeakerSlot>>,
    #[schema(max_items = 20, value_type = Option<BTreeSet<Id>>)]
    department_ids: Option<Vec<i32>>,
}

impl Visible for Round {
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            self.created_by = None;
            self.updated_by = None;
        }
        self
    }
}
