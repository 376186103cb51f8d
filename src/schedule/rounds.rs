//! Rounds: one session of the series, with its topic, time, place, speakers and organisers;
//! also the rounds of one speaker (`/speakers/{id}/rounds`), which are rounds queries.

use std::collections::HashMap;

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::platform::auth::{Caller, Role, Subject, Visible};
use crate::platform::cache::{self, Rendered, Revised};
use crate::platform::changelog::{self, Action, Change};
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{
    DepartmentRef, Id, LocalTimestamp, Name, SpeakerRef, Text, Timestamp,
};
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{
    self, found, Access, Ctx, HeaderText, Listing, LogContext, OnWorker, OneStatement, Resource,
};
use crate::platform::schema::{
    departments, feedback, round_departments, round_speakers, rounds, speakers,
};
use crate::platform::timezone::Zone;
use crate::platform::validate::{Doc, Input, Query};
use crate::schedule::departments::{Abbreviation, DepartmentName};
use crate::schedule::speakers::{
    decode_credentials, display_name, Credentials, DisplayName, FullName, Search, Speakers,
};

/// The topic.
pub type Title = Text<300>;
pub type Description = Text<10000>;
/// Building and room, such as "BMC – MassMutual 5".
pub type Location = Name<200>;
/// One speaker, or a panel of up to eight.
pub const PANEL_MAX: usize = 8;
/// Departments that organise one round.
pub const ORGANISERS_MAX: usize = 20;

crate::text_enum! {
    /// Whether a round goes ahead.
    #[derive(Default)]
    pub enum RoundStatus {
        #[default]
        Scheduled = "scheduled",
        Cancelled = "cancelled",
    }
}

crate::text_enum! {
    /// What a speaker does at a round.
    #[derive(Default)]
    pub enum SpeakerRole {
        #[default]
        Presenter = "presenter",
        Moderator = "moderator",
        Panelist = "panelist",
    }
}

crate::text_enum! {
    /// Time window of the round list: `upcoming` is rounds not yet ended, soonest first; `past`
    /// is rounds that have ended, most recent first.
    pub enum When {
        Upcoming = "upcoming",
        Past = "past",
    }
}

crate::text_enum! {
    /// Order of the round list: by start time, `-starts_at` for latest first.
    pub enum RoundSort {
        StartsAt = "starts_at",
        StartsAtDescending = "-starts_at",
    }
}

/// A speaker slot of a round, as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeakerSlot {
    pub speaker_id: SpeakerRef,
    /// Defaults to `presenter`.
    #[serde(default)]
    pub role: SpeakerRole,
}

/// A speaker on a round, with what the schedule prints about them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundSpeaker {
    pub speaker_id: Id,
    pub role: SpeakerRole,
    pub full_name: FullName,
    pub credentials: Credentials,
    #[schema(example = "Tara Lagu, MD, MPH")]
    pub display_name: DisplayName,
}

/// An organising department, as shown on a round.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DepartmentSummary {
    pub id: Id,
    pub name: DepartmentName,
    pub abbreviation: Option<Abbreviation>,
}

crate::list_type!(
    /// Up to eight speakers, in the order the schedule lists them; each speaker once.
    pub Panel(SpeakerSlot),
    max = PANEL_MAX
);
crate::list_type!(
    /// The speakers, in the order the schedule lists them.
    pub PanelView(RoundSpeaker),
    max = PANEL_MAX
);
crate::list_type!(
    /// The organising departments, each once.
    pub DepartmentIds(DepartmentRef),
    max = ORGANISERS_MAX,
    unique = true
);
crate::list_type!(
    /// The organising departments.
    pub DepartmentSummaries(DepartmentSummary),
    max = ORGANISERS_MAX
);

/// A round, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "title": "How can we use patient comments to improve care?", "description": null,
    "starts_at": "2019-04-25T16:00:00Z", "ends_at": "2019-04-25T17:00:00Z",
    "starts_at_local": "2019-04-25T12:00:00-04:00", "ends_at_local": "2019-04-25T13:00:00-04:00",
    "location": "BMC – MassMutual 5", "status": "scheduled",
    "speakers": [{"speaker_id": 7, "role": "presenter", "full_name": "Tara Lagu",
        "credentials": ["MD", "MPH"], "display_name": "Tara Lagu, MD, MPH"}],
    "department_ids": [1],
    "departments": [{"id": 1, "name": "Division of Healthcare Quality", "abbreviation": "DHQ"}],
    "created_at": "2019-01-02T15:00:00Z", "updated_at": "2019-01-02T15:00:00Z"
}))]
pub struct Round {
    pub id: Id,
    /// The topic; empty until it is known.
    pub title: Option<Title>,
    pub description: Option<Description>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// `starts_at` in the series' time zone, with its offset: "12:00" to show as is.
    pub starts_at_local: LocalTimestamp,
    /// `ends_at` in the series' time zone, with its offset.
    pub ends_at_local: LocalTimestamp,
    pub location: Location,
    pub status: RoundStatus,
    pub speakers: PanelView,
    pub department_ids: DepartmentIds,
    pub departments: DepartmentSummaries,
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
    /// Bumped by every write to the round and to what it shows of its speakers and departments;
    /// the ETag is made from it.
    #[serde(skip)]
    #[schema(ignore)]
    pub version: i64,
    /// The iCalendar SEQUENCE: bumped whenever the start, end, place or status changes.
    #[serde(skip)]
    #[schema(ignore)]
    pub sequence: i32,
    /// The series' time zone the local times are in, for a change that moves them.
    #[serde(skip)]
    #[schema(ignore)]
    pub zone: Zone,
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
    /// The topic; leave it out until it is known.
    pub title: Option<Title>,
    pub description: Option<Description>,
    /// RFC 3339, any offset.
    pub starts_at: Timestamp,
    /// After `starts_at`.
    pub ends_at: Timestamp,
    pub location: Location,
    /// Defaults to `scheduled`.
    #[serde(default)]
    pub status: RoundStatus,
    #[serde(default)]
    pub speakers: Panel,
    #[serde(default)]
    pub department_ids: DepartmentIds,
}

impl Input for RoundInput {
    /// `ends_at` after `starts_at`; each speaker once.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let (Some(starts), Some(ends)) = (
            doc.get::<Timestamp>("starts_at"),
            doc.get::<Timestamp>("ends_at"),
        ) {
            if ends <= starts {
                errors.push(FieldError::new("ends_at", "must be after starts_at"));
            }
        }
        let mut seen: Vec<(i32, usize)> = Vec::new();
        for (i, slot) in doc.items::<SpeakerSlot>("speakers").into_iter().enumerate() {
            let Some(slot) = slot else {
                continue;
            };
            let speaker = slot.speaker_id.0;
            match seen.iter().find(|(id, _)| *id == speaker) {
                Some((_, first)) => errors.push(FieldError::new(
                    format!("speakers[{i}].speaker_id"),
                    format!("speaker {speaker} is already on this round (speakers[{first}])"),
                )),
                None => seen.push((speaker, i)),
            }
        }
        errors
    }
}

impl RoundInput {
    fn search_text(&self) -> String {
        let mut text = Text::non_blank(self.title.as_ref())
            .unwrap_or_default()
            .to_lowercase();
        if let Some(description) = Text::non_blank(self.description.as_ref()) {
            text.push('\n');
            text.push_str(&description.to_lowercase());
        }
        text
    }
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = rounds)]
struct RoundRow {
    id: i32,
    title: Option<String>,
    description: Option<String>,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    location: String,
    status: RoundStatus,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
    sequence: i32,
}

/// Filters and order of the round list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoundFilter {
    #[param(inline)]
    pub when: Option<When>,
    /// Rounds starting at or after this time (RFC 3339).
    #[param(inline)]
    pub from: Option<Timestamp>,
    /// Rounds starting at or before this time (RFC 3339).
    #[param(inline)]
    pub to: Option<Timestamp>,
    /// Rounds this speaker is on.
    #[param(inline)]
    pub speaker_id: Option<Id>,
    /// Rounds this department organises.
    #[param(inline)]
    pub department_id: Option<Id>,
    #[param(inline)]
    pub status: Option<RoundStatus>,
    /// Text in the title or description, ignoring case.
    #[param(inline)]
    pub q: Option<Search>,
    /// Overrides the order of `when`.
    #[param(inline)]
    pub sort: Option<RoundSort>,
}

// ---- persistence -------------------------------------------------------------------------

fn filtered(filter: &RoundFilter, now: NaiveDateTime) -> rounds::BoxedQuery<'static, MultiBackend> {
    let mut query = rounds::table.into_boxed();
    match filter.when {
        Some(When::Upcoming) => query = query.filter(rounds::ends_at.gt(now)),
        Some(When::Past) => query = query.filter(rounds::ends_at.le(now)),
        None => {}
    }
    if let Some(from) = filter.from {
        query = query.filter(rounds::starts_at.ge(from.naive()));
    }
    if let Some(to) = filter.to {
        query = query.filter(rounds::starts_at.le(to.naive()));
    }
    if let Some(speaker_id) = filter.speaker_id {
        query = query.filter(
            rounds::id.eq_any(
                round_speakers::table
                    .filter(round_speakers::speaker_id.eq(speaker_id.0))
                    .select(round_speakers::round_id),
            ),
        );
    }
    if let Some(department_id) = filter.department_id {
        query = query.filter(
            rounds::id.eq_any(
                round_departments::table
                    .filter(round_departments::department_id.eq(department_id.0))
                    .select(round_departments::round_id),
            ),
        );
    }
    if let Some(status) = filter.status {
        query = query.filter(rounds::status.eq(status));
    }
    if let Some(q) = filter.q.as_ref().filter(|q| !q.as_str().is_empty()) {
        query = query.filter(
            rounds::search_text
                .like(db::contains_pattern(&q.as_str().to_lowercase()))
                .escape('\\'),
        );
    }
    query
}

/// A page of rounds with their speakers and departments as of `now`, which decides what `when`
/// takes in, in four queries whatever the page size: count, page, all the page's speakers, all
/// the page's departments.
pub fn list_at(
    conn: &mut DbConnection,
    filter: &RoundFilter,
    paging: Paging,
    now: NaiveDateTime,
) -> Result<Page<Round>, ApiError> {
    let total = filtered(filter, now).count().get_result::<i64>(conn)?;
    let query = filtered(filter, now);
    let query = if latest_first(filter) {
        query.order((rounds::starts_at.desc(), rounds::id.desc()))
    } else {
        query.order((rounds::starts_at.asc(), rounds::id.asc()))
    };
    let rows = query
        .limit(paging.limit())
        .offset(paging.offset())
        .select(RoundRow::as_select())
        .load(conn)?;
    let items = with_embeds(conn, rows)?;
    Ok(paging.page(items, total))
}

/// Every round `filter` takes in (at most `max`), in start order, with their speakers and
/// departments: a feed has no pages.
pub fn list_all(
    conn: &mut DbConnection,
    filter: &RoundFilter,
    max: i64,
    now: NaiveDateTime,
) -> Result<Vec<Round>, ApiError> {
    let rows = filtered(filter, now)
        .order((rounds::starts_at.asc(), rounds::id.asc()))
        .limit(max)
        .select(RoundRow::as_select())
        .load(conn)?;
    with_embeds(conn, rows)
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
            .load::<(i32, i32, SpeakerRole, String, String)>(c))?
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
        speakers_of.entry(round_id).or_default().push(round_speaker(
            speaker_id,
            role,
            full_name,
            &credentials,
        ));
    }
    let zone = crate::schedule::series::zone(conn)?;
    let mut departments_of: HashMap<i32, Vec<DepartmentSummary>> = HashMap::new();
    for (round_id, id, name, abbreviation) in department_rows {
        departments_of
            .entry(round_id)
            .or_default()
            .push(department_summary(id, name, abbreviation));
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let speakers = speakers_of.remove(&row.id).unwrap_or_default();
            let departments = departments_of.remove(&row.id).unwrap_or_default();
            round_of(row, speakers, departments, &zone)
        })
        .collect())
}

fn round_speaker(
    speaker_id: i32,
    role: SpeakerRole,
    full_name: String,
    credentials: &str,
) -> RoundSpeaker {
    let credentials = decode_credentials(credentials);
    RoundSpeaker {
        speaker_id: Id(speaker_id),
        role,
        display_name: Text::stored(display_name(&full_name, &credentials)),
        full_name: Name::stored(full_name),
        credentials,
    }
}

fn department_summary(id: i32, name: String, abbreviation: Option<String>) -> DepartmentSummary {
    DepartmentSummary {
        id: Id(id),
        name: Name::stored(name),
        abbreviation: abbreviation.map(Text::stored),
    }
}

fn round_of(
    row: RoundRow,
    speakers: Vec<RoundSpeaker>,
    departments: Vec<DepartmentSummary>,
    zone: &Zone,
) -> Round {
    let (starts_at, ends_at) = (
        Timestamp::from_naive(row.starts_at),
        Timestamp::from_naive(row.ends_at),
    );
    Round {
        id: Id(row.id),
        title: row.title.map(Text::stored),
        description: row.description.map(Text::stored),
        starts_at,
        ends_at,
        starts_at_local: LocalTimestamp::in_zone(starts_at, zone),
        ends_at_local: LocalTimestamp::in_zone(ends_at, zone),
        location: Name::stored(row.location),
        status: row.status,
        speakers: PanelView(speakers),
        department_ids: DepartmentIds(departments.iter().map(|d| DepartmentRef(d.id.0)).collect()),
        departments: DepartmentSummaries(departments),
        created_by: row.created_by.map(Text::stored),
        updated_by: row.updated_by.map(Text::stored),
        created_at: Timestamp::from_naive(row.created_at),
        updated_at: Timestamp::from_naive(row.updated_at),
        version: row.version,
        sequence: row.sequence,
        zone: zone.clone(),
    }
}

/// Whether the list is in the order of latest first.
fn latest_first(filter: &RoundFilter) -> bool {
    match filter.sort {
        Some(sort) => sort == RoundSort::StartsAtDescending,
        None => filter.when == Some(When::Past),
    }
}

/// PostgreSQL reads a round, or a page of rounds with its total, in one statement, from one
/// snapshot (which a single statement is): the rounds, each line also carrying the schedule's
/// revision, the total, when the page stops holding and the series' time zone (uncorrelated
/// subqueries, run once), left-joined to a single row so that a read that finds no round still
/// answers one line. One round trip, where the reads took four. (Whether a kept answer is
/// still current is asked with the revision alone, before this: see `cache`.)
///
/// Each round's row carries its speakers and departments as JSON, kept by the database's
/// triggers (the migration `round_link_documents`), so the statement joins no link table.
/// Measured with pgbench (`-M prepared`, 32 clients, 1 000 rounds), the round alone ran at
/// 36 000-48 000 statements/s and the round with its links joined at 7 000-15 000, in whatever
/// shape: a `UNION ALL` of the links' rows, lateral `array_agg`s or `json_agg` subqueries (17 000
/// at best with hash joins and bitmap scans turned off). Each join built a hash table, or a
/// bitmap, for three rows. The single row left-joined to the rounds measured a fifth faster
/// than a `UNION ALL` of a header row and the rounds (BENCHMARKS.md).
///
/// SQLite keeps the separate statements of [`with_embeds`] in one read transaction: each costs
/// microseconds there, with no round trip. One statement aggregating to JSON measured no
/// faster there (a round with the cache off: 21 000-27 000 requests/s against 23 000-25 000,
/// alternating runs on two busy cores).
mod pg {
    use chrono::NaiveDateTime;
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types as sql;
    use diesel::{PgConnection, QueryResult, Queryable, RunQueryDsl};
    use diesel_async::AsyncPgConnection;

    use super::{
        department_summary, latest_first, round_of, round_speaker, DepartmentSummary, Round,
        RoundFilter, RoundRow, RoundSpeaker, RoundStatus, SpeakerRole, When,
    };
    use crate::platform::cache::Revised;
    use crate::platform::error::ApiError;
    use crate::platform::pagination::Paging;
    use crate::platform::resource::Listing;

    /// What the statement reads.
    enum Selection {
        One(i32),
        Page {
            from: Option<NaiveDateTime>,
            to: Option<NaiveDateTime>,
            speaker_id: Option<i32>,
            department_id: Option<i32>,
            status: Option<RoundStatus>,
            pattern: Option<String>,
            latest_first: bool,
            limit: i64,
            offset: i64,
        },
    }

    /// The SQL varies with the filters given (a few dozen combinations at most): each text is
    /// prepared once per connection, cached by the text.
    struct RoundsStatement {
        selection: Selection,
        when: Option<When>,
        now: NaiveDateTime,
    }

    impl RoundsStatement {
        /// The rounds selected, as conditions on the round `r` (those of `super::filtered`
        /// for a page).
        fn conditions<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            let (from, to, speaker_id, department_id, status, pattern) = match &self.selection {
                Selection::One(id) => {
                    out.push_sql("r.id = ");
                    return out.push_bind_param::<sql::Integer, _>(id);
                }
                Selection::Page {
                    from,
                    to,
                    speaker_id,
                    department_id,
                    status,
                    pattern,
                    ..
                } => (from, to, speaker_id, department_id, status, pattern),
            };
            out.push_sql("true");
            match self.when {
                Some(When::Upcoming) => {
                    out.push_sql(" AND r.ends_at > ");
                    out.push_bind_param::<sql::Timestamp, _>(&self.now)?;
                }
                Some(When::Past) => {
                    out.push_sql(" AND r.ends_at <= ");
                    out.push_bind_param::<sql::Timestamp, _>(&self.now)?;
                }
                None => {}
            }
            if let Some(from) = from {
                out.push_sql(" AND r.starts_at >= ");
                out.push_bind_param::<sql::Timestamp, _>(from)?;
            }
            if let Some(to) = to {
                out.push_sql(" AND r.starts_at <= ");
                out.push_bind_param::<sql::Timestamp, _>(to)?;
            }
            if let Some(speaker_id) = speaker_id {
                out.push_sql(
                    " AND r.id IN (SELECT round_id FROM round_speakers WHERE speaker_id = ",
                );
                out.push_bind_param::<sql::Integer, _>(speaker_id)?;
                out.push_sql(")");
            }
            if let Some(department_id) = department_id {
                out.push_sql(
                    " AND r.id IN (SELECT round_id FROM round_departments WHERE department_id = ",
                );
                out.push_bind_param::<sql::Integer, _>(department_id)?;
                out.push_sql(")");
            }
            if let Some(status) = status {
                out.push_sql(" AND r.status = ");
                out.push_bind_param::<sql::Text, _>(status)?;
            }
            if let Some(pattern) = pattern {
                out.push_sql(" AND r.search_text LIKE ");
                out.push_bind_param::<sql::Text, _>(pattern)?;
                out.push_sql(" ESCAPE '\\'");
            }
            Ok(())
        }
    }

    impl QueryId for RoundsStatement {
        type QueryId = ();
        const HAS_STATIC_QUERY_ID: bool = false;
    }

    /// The columns of a round, as the statement reads them.
    const ROUND_COLUMNS: &str = "r.id, r.title, r.description, r.starts_at, r.ends_at, \
        r.location, r.status, r.created_at, r.updated_at, r.created_by, r.updated_by, r.version, \
        r.sequence, r.speakers_doc, r.departments_doc";

    impl QueryFragment<Pg> for RoundsStatement {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            // Every line starts with the revision (null if its row was deleted by hand: then the
            // cache stands aside), the total, when the page stops holding, and the time zone; the
            // left join keeps one line, with no round, when none is found.
            out.push_sql("SELECT (SELECT revision FROM schedule_revision WHERE id = 1), ");
            if matches!(self.selection, Selection::Page { .. }) {
                out.push_sql("(SELECT count(*) FROM rounds AS r WHERE ");
                self.conditions(&mut out)?;
                out.push_sql(")");
            } else {
                out.push_sql("NULL::bigint");
            }
            out.push_sql(", ");
            if matches!(self.selection, Selection::Page { .. }) && self.when.is_some() {
                // The next round still going or to come ends: then the page no longer holds.
                out.push_sql("(SELECT min(ends_at) FROM rounds WHERE ends_at > ");
                out.push_bind_param::<sql::Timestamp, _>(&self.now)?;
                out.push_sql(")");
            } else {
                out.push_sql("NULL::timestamp");
            }
            out.push_sql(", (SELECT timezone FROM series WHERE id = 1), ");
            out.push_sql(ROUND_COLUMNS);
            out.push_sql(" FROM (VALUES (1)) AS one LEFT JOIN ");
            match &self.selection {
                Selection::One(_) => {
                    out.push_sql("rounds AS r ON ");
                    self.conditions(&mut out)?;
                }
                Selection::Page {
                    latest_first,
                    limit,
                    offset,
                    ..
                } => {
                    out.push_sql("(SELECT ");
                    out.push_sql(ROUND_COLUMNS);
                    out.push_sql(" FROM rounds AS r WHERE ");
                    self.conditions(&mut out)?;
                    out.push_sql(if *latest_first {
                        " ORDER BY r.starts_at DESC, r.id DESC LIMIT "
                    } else {
                        " ORDER BY r.starts_at, r.id LIMIT "
                    });
                    out.push_bind_param::<sql::BigInt, _>(limit)?;
                    out.push_sql(" OFFSET ");
                    out.push_bind_param::<sql::BigInt, _>(offset)?;
                    out.push_sql(") AS r ON true");
                }
            }
            Ok(())
        }
    }

    /// The columns of the statement, read by position (by name, each of them would be looked
    /// up among all the others in every row).
    type LineColumns = (
        sql::Nullable<sql::BigInt>,
        sql::Nullable<sql::BigInt>,
        sql::Nullable<sql::Timestamp>,
        sql::Nullable<sql::Text>,
        RoundColumns,
    );

    type RoundColumns = (
        sql::Nullable<sql::Integer>,
        sql::Nullable<sql::Text>,
        sql::Nullable<sql::Text>,
        sql::Nullable<sql::Timestamp>,
        sql::Nullable<sql::Timestamp>,
        sql::Nullable<sql::Text>,
        sql::Nullable<sql::Text>,
        sql::Nullable<sql::Timestamp>,
        sql::Nullable<sql::Timestamp>,
        sql::Nullable<sql::Text>,
        sql::Nullable<sql::Text>,
        sql::Nullable<sql::BigInt>,
        sql::Nullable<sql::Integer>,
        sql::Nullable<sql::Text>,
        sql::Nullable<sql::Text>,
    );

    impl Query for RoundsStatement {
        type SqlType = LineColumns;
    }

    impl RunQueryDsl<PgConnection> for RoundsStatement {}

    /// A line of the statement: what it read for the whole answer, and a round (all null
    /// when there was none).
    #[derive(Queryable)]
    struct Line {
        revision: Option<i64>,
        total: Option<i64>,
        next_end: Option<NaiveDateTime>,
        zone: Option<String>,
        round: RoundFields,
    }

    /// The columns of a round.
    #[derive(Queryable)]
    struct RoundFields {
        id: Option<i32>,
        title: Option<String>,
        description: Option<String>,
        starts_at: Option<NaiveDateTime>,
        ends_at: Option<NaiveDateTime>,
        location: Option<String>,
        status: Option<RoundStatus>,
        created_at: Option<NaiveDateTime>,
        updated_at: Option<NaiveDateTime>,
        created_by: Option<String>,
        updated_by: Option<String>,
        version: Option<i64>,
        sequence: Option<i32>,
        speakers: Option<String>,
        departments: Option<String>,
    }

    fn null(column: &str) -> ApiError {
        ApiError::Internal(format!("the rounds statement answered a null {column}"))
    }

    impl RoundFields {
        /// The round's row, and its speakers and departments from the JSON the round carries.
        fn into_parts(self, id: i32) -> Result<Parts, ApiError> {
            let speakers: Vec<(i32, String, String, SpeakerRole)> =
                document(self.speakers.as_deref(), "speakers_doc")?;
            let departments: Vec<(i32, String, Option<String>)> =
                document(self.departments.as_deref(), "departments_doc")?;
            let row = RoundRow {
                id,
                title: self.title,
                description: self.description,
                starts_at: self.starts_at.ok_or_else(|| null("starts_at"))?,
                ends_at: self.ends_at.ok_or_else(|| null("ends_at"))?,
                location: self.location.ok_or_else(|| null("location"))?,
                status: self.status.ok_or_else(|| null("status"))?,
                created_at: self.created_at.ok_or_else(|| null("created_at"))?,
                updated_at: self.updated_at.ok_or_else(|| null("updated_at"))?,
                created_by: self.created_by,
                updated_by: self.updated_by,
                version: self.version.ok_or_else(|| null("version"))?,
                sequence: self.sequence.ok_or_else(|| null("sequence"))?,
            };
            let speakers = speakers
                .into_iter()
                .map(|(id, name, credentials, role)| round_speaker(id, role, name, &credentials))
                .collect();
            let departments = departments
                .into_iter()
                .map(|(id, name, abbreviation)| department_summary(id, name, abbreviation))
                .collect();
            Ok((row, speakers, departments))
        }
    }

    type Parts = (RoundRow, Vec<RoundSpeaker>, Vec<DepartmentSummary>);

    /// A list the round's row carries, written by the database's triggers (see the migration
    /// `round_link_documents`).
    fn document<T: serde::de::DeserializeOwned>(
        text: Option<&str>,
        column: &str,
    ) -> Result<Vec<T>, ApiError> {
        serde_json::from_str(text.ok_or_else(|| null(column))?).map_err(|error| {
            ApiError::Internal(format!(
                "the rounds statement answered a bad {column}: {error}"
            ))
        })
    }

    /// What the statement read: the total and when the page stops holding (for a page), and the
    /// rounds in the order asked for.
    struct Read {
        total: Option<i64>,
        next_end: Option<NaiveDateTime>,
        rounds: Vec<Round>,
    }

    /// The rounds from the statement's lines.
    fn assemble(lines: Vec<Line>, latest_first: bool) -> Result<Revised<Read>, ApiError> {
        let first = lines.first().ok_or_else(|| null("line"))?;
        let (revision, total, next_end) = (first.revision, first.total, first.next_end);
        let zone = crate::schedule::series::zone_named(first.zone.as_deref());
        let mut rows = Vec::with_capacity(lines.len());
        for line in lines {
            if let Some(id) = line.round.id {
                rows.push(line.round.into_parts(id)?);
            }
        }
        // A join keeps no order that SQL promises: the rounds are put in theirs here.
        rows.sort_by_key(|(row, _, _)| (row.starts_at, row.id));
        if latest_first {
            rows.reverse();
        }
        let rounds = rows
            .into_iter()
            .map(|(row, speakers, departments)| round_of(row, speakers, departments, &zone))
            .collect();
        Ok(Revised::Read {
            revision,
            value: Read {
                total,
                next_end,
                rounds,
            },
        })
    }

    /// The statement that reads the round `id`.
    fn one(id: i32) -> RoundsStatement {
        RoundsStatement {
            selection: Selection::One(id),
            when: None,
            now: NaiveDateTime::default(),
        }
    }

    fn only_round(read: Read) -> Result<Option<Round>, ApiError> {
        Ok(read.rounds.into_iter().next())
    }

    /// The round `id`, with the revision it was read at.
    pub(super) fn round(
        conn: &mut PgConnection,
        id: i32,
    ) -> Result<Revised<Option<Round>>, ApiError> {
        assemble(one(id).load(conn)?, false)?.try_map(only_round)
    }

    /// [`round`] on a worker's own connection (see `db::worker`).
    pub(super) async fn round_on_worker(
        mut conn: &AsyncPgConnection,
        id: i32,
    ) -> Result<Revised<Option<Round>>, ApiError> {
        let lines = diesel_async::RunQueryDsl::load(one(id), &mut conn).await?;
        assemble(lines, false)?.try_map(only_round)
    }

    /// A page of the rounds `filter` takes in as of `now`, with the revision it was read at.
    /// With `when`, the page holds until the next round to end has ended.
    pub(super) fn page(
        conn: &mut PgConnection,
        filter: &RoundFilter,
        paging: Paging,
        now: NaiveDateTime,
    ) -> Result<Revised<Listing<Round>>, ApiError> {
        let (statement, latest_first) = page_statement(filter, paging, now);
        assemble(statement.load(conn)?, latest_first)?.try_map(|read| listing(read, paging))
    }

    /// [`page`] on a worker's own connection (see `db::worker`).
    pub(super) async fn page_on_worker(
        mut conn: &AsyncPgConnection,
        filter: &RoundFilter,
        paging: Paging,
        now: NaiveDateTime,
    ) -> Result<Revised<Listing<Round>>, ApiError> {
        let (statement, latest_first) = page_statement(filter, paging, now);
        let lines = diesel_async::RunQueryDsl::load(statement, &mut conn).await?;
        assemble(lines, latest_first)?.try_map(|read| listing(read, paging))
    }

    fn listing(read: Read, paging: Paging) -> Result<Listing<Round>, ApiError> {
        Ok(Listing {
            page: paging.page(read.rounds, read.total.unwrap_or(0)),
            valid_until: read.next_end,
        })
    }

    /// The statement that reads a page, and whether it is newest first.
    fn page_statement(
        filter: &RoundFilter,
        paging: Paging,
        now: NaiveDateTime,
    ) -> (RoundsStatement, bool) {
        let latest_first = latest_first(filter);
        let statement = RoundsStatement {
            selection: Selection::Page {
                from: filter.from.map(|t| t.naive()),
                to: filter.to.map(|t| t.naive()),
                speaker_id: filter.speaker_id.map(|id| id.0),
                department_id: filter.department_id.map(|id| id.0),
                status: filter.status,
                pattern: filter
                    .q
                    .as_ref()
                    .filter(|q| !q.as_str().is_empty())
                    .map(|q| crate::platform::db::contains_pattern(&q.as_str().to_lowercase())),
                latest_first,
                limit: paging.limit(),
                offset: paging.offset(),
            },
            when: filter.when,
            now,
        };
        (statement, latest_first)
    }
}

/// Writes the speaker and department links of a round, each list in one statement.
fn insert_links(
    conn: &mut DbConnection,
    round_id: i32,
    input: &RoundInput,
) -> Result<(), ApiError> {
    if !input.speakers.0.is_empty() {
        let rows: Vec<_> = input
            .speakers
            .0
            .iter()
            .enumerate()
            .map(|(position, slot)| {
                (
                    round_speakers::round_id.eq(round_id),
                    round_speakers::speaker_id.eq(slot.speaker_id.0),
                    round_speakers::position.eq(position as i32),
                    round_speakers::role.eq(slot.role),
                )
            })
            .collect();
        crate::on_backend!(conn, |c| diesel::insert_into(round_speakers::table)
            .values(&rows)
            .execute(c))?;
    }
    if !input.department_ids.0.is_empty() {
        let rows: Vec<_> = input
            .department_ids
            .0
            .iter()
            .enumerate()
            .map(|(position, department)| {
                (
                    round_departments::round_id.eq(round_id),
                    round_departments::department_id.eq(department.0),
                    round_departments::position.eq(position as i32),
                )
            })
            .collect();
        crate::on_backend!(conn, |c| diesel::insert_into(round_departments::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

/// The row a change makes of `current`: what the `UPDATE` writes, and with the version and
/// sequence the database decides, what a read would find.
fn stored_row(
    current: &Round,
    input: &RoundInput,
    actor: Option<&str>,
    now: NaiveDateTime,
) -> RoundRow {
    RoundRow {
        id: current.id.0,
        title: Text::non_blank(input.title.as_ref()).map(str::to_owned),
        description: Text::non_blank(input.description.as_ref()).map(str::to_owned),
        starts_at: input.starts_at.naive(),
        ends_at: input.ends_at.naive(),
        location: input.location.as_str().to_owned(),
        status: input.status,
        created_at: current.created_at.naive(),
        updated_at: now,
        created_by: current.created_by.as_ref().map(|s| s.as_str().to_owned()),
        updated_by: actor.map(str::to_owned),
        version: current.version + 1,
        sequence: current.sequence,
    }
}

/// The `SET` of an update to a [`stored_row`].
macro_rules! round_changes {
    ($row:expr, $input:expr) => {
        (
            rounds::title.eq($row.title.as_deref()),
            rounds::description.eq($row.description.as_deref()),
            rounds::starts_at.eq($row.starts_at),
            rounds::ends_at.eq($row.ends_at),
            rounds::location.eq($row.location.as_str()),
            rounds::status.eq($row.status),
            rounds::search_text.eq($input.search_text()),
            rounds::updated_at.eq($row.updated_at),
            rounds::updated_by.eq($row.updated_by.as_deref()),
            rounds::version.eq(rounds::version + 1),
        )
    };
}

/// A speaker link as stored: speaker, place, role.
type SpeakerLink = (i32, i32, SpeakerRole);
/// A department link as stored: department, place.
type DepartmentLink = (i32, i32);

fn speaker_links(slots: impl Iterator<Item = (i32, SpeakerRole)>) -> Vec<SpeakerLink> {
    slots
        .enumerate()
        .map(|(position, (speaker, role))| (speaker, position as i32, role))
        .collect()
}

fn department_links(ids: impl Iterator<Item = i32>) -> Vec<DepartmentLink> {
    ids.enumerate()
        .map(|(position, department)| (department, position as i32))
        .collect()
}

fn current_links(current: &Round) -> (Vec<SpeakerLink>, Vec<DepartmentLink>) {
    (
        speaker_links(current.speakers.0.iter().map(|s| (s.speaker_id.0, s.role))),
        department_links(current.department_ids.0.iter().map(|d| d.0)),
    )
}

fn input_links(input: &RoundInput) -> (Vec<SpeakerLink>, Vec<DepartmentLink>) {
    (
        speaker_links(input.speakers.0.iter().map(|s| (s.speaker_id.0, s.role))),
        department_links(input.department_ids.0.iter().map(|d| d.0)),
    )
}

fn links_differ(current: &Round, input: &RoundInput) -> bool {
    current_links(current) != input_links(input)
}

/// Makes the links of round `id` those of `input`, touching only the rows that differ from
/// `current`'s: a row that keeps its place (and role) stays; the others go and the new ones
/// come, two statements at most for each kind. A move is a delete and an insert, since
/// updating places one row at a time would collide on the unique (round, place) on the way.
fn rewrite_links(
    conn: &mut DbConnection,
    id: i32,
    current: &Round,
    input: &RoundInput,
) -> Result<(), ApiError> {
    let (old_speakers, old_departments) = current_links(current);
    let (new_speakers, new_departments) = input_links(input);
    let gone: Vec<i32> = old_speakers
        .iter()
        .filter(|link| !new_speakers.contains(link))
        .map(|(speaker, _, _)| *speaker)
        .collect();
    if !gone.is_empty() {
        diesel::delete(
            round_speakers::table
                .filter(round_speakers::round_id.eq(id))
                .filter(round_speakers::speaker_id.eq_any(&gone)),
        )
        .execute(conn)?;
    }
    let added: Vec<_> = new_speakers
        .iter()
        .filter(|link| !old_speakers.contains(link))
        .map(|(speaker, position, role)| {
            (
                round_speakers::round_id.eq(id),
                round_speakers::speaker_id.eq(*speaker),
                round_speakers::position.eq(*position),
                round_speakers::role.eq(*role),
            )
        })
        .collect();
    if !added.is_empty() {
        crate::on_backend!(conn, |c| diesel::insert_into(round_speakers::table)
            .values(&added)
            .execute(c))?;
    }
    let gone: Vec<i32> = old_departments
        .iter()
        .filter(|link| !new_departments.contains(link))
        .map(|(department, _)| *department)
        .collect();
    if !gone.is_empty() {
        diesel::delete(
            round_departments::table
                .filter(round_departments::round_id.eq(id))
                .filter(round_departments::department_id.eq_any(&gone)),
        )
        .execute(conn)?;
    }
    let added: Vec<_> = new_departments
        .iter()
        .filter(|link| !old_departments.contains(link))
        .map(|(department, position)| {
            (
                round_departments::round_id.eq(id),
                round_departments::department_id.eq(*department),
                round_departments::position.eq(*position),
            )
        })
        .collect();
    if !added.is_empty() {
        crate::on_backend!(conn, |c| diesel::insert_into(round_departments::table)
            .values(&added)
            .execute(c))?;
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

/// Rounds: what [`resource`] needs to serve them.
pub struct Rounds;

impl Resource for Rounds {
    const NAME: &'static str = "round";
    const COLLECTION: &'static str = "rounds";
    const SCHEDULE: bool = true;
    type Record = Round;
    type Input = RoundInput;
    type Change = RoundInput;
    type Filter = RoundFilter;

    fn authorize(caller: &Caller, access: Access) -> Result<(), ApiError> {
        match access {
            Access::Read => caller.require_reader(),
            Access::Create | Access::Change | Access::Delete => caller.require(Role::Organizer),
        }
    }

    fn id(record: &Round) -> i32 {
        record.id.0
    }

    fn version(record: &Round) -> i64 {
        record.version
    }

    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Round>, ApiError> {
        if let DbConnection::Postgresql(pg) = conn {
            return Ok(pg::round(pg, id)?.read().flatten());
        }
        let row = crate::on_backend!(conn, |c| rounds::table
            .find(id)
            .select(RoundRow::as_select())
            .first(c)
            .optional())?;
        match row {
            Some(row) => Ok(with_embeds(conn, vec![row])?.pop()),
            None => Ok(None),
        }
    }

    const ON_WORKER: Option<OnWorker<Self>> = Some(OnWorker {
        find: |conn, id| Box::pin(pg::round_on_worker(conn, id)),
        list: |conn, filter, paging| Box::pin(pg::page_on_worker(conn, filter, paging, db::now())),
    });

    fn find_revised(
        conn: &mut DbConnection,
        id: i32,
        known: Option<i64>,
    ) -> Result<Revised<Option<Round>>, ApiError> {
        match conn {
            // A kept answer was checked before (`cache::ReadCache::answer`): render.
            DbConnection::Postgresql(pg) => pg::round(pg, id),
            DbConnection::Sqlite(_) => cache::in_snapshot(conn, known, |conn| Self::find(conn, id)),
        }
    }

    /// With `when`, the page holds only until the next upcoming round ends, when it moves from
    /// upcoming to past.
    fn list(
        conn: &mut DbConnection,
        filter: &RoundFilter,
        paging: Paging,
    ) -> Result<Listing<Round>, ApiError> {
        let now = db::now();
        if let DbConnection::Postgresql(pg) = conn {
            return pg::page(pg, filter, paging, now)?
                .read()
                .ok_or_else(|| ApiError::Internal("a page read as unchanged".to_owned()));
        }
        let page = list_at(conn, filter, paging, now)?;
        let valid_until = match filter.when {
            Some(_) => next_end_after(conn, now)?,
            None => None,
        };
        Ok(Listing { page, valid_until })
    }

    fn list_revised(
        conn: &mut DbConnection,
        filter: &RoundFilter,
        paging: Paging,
        known: Option<i64>,
    ) -> Result<Revised<Listing<Round>>, ApiError> {
        match conn {
            DbConnection::Postgresql(pg) => pg::page(pg, filter, paging, db::now()),
            DbConnection::Sqlite(_) => {
                cache::in_snapshot(conn, known, |conn| Self::list(conn, filter, paging))
            }
        }
    }

    fn insert(
        conn: &mut DbConnection,
        input: RoundInput,
        actor: Option<&str>,
    ) -> Result<Round, ApiError> {
        let now = db::now();
        let id = diesel::insert_into(rounds::table)
            .values((
                rounds::title.eq(Text::non_blank(input.title.as_ref())),
                rounds::description.eq(Text::non_blank(input.description.as_ref())),
                rounds::starts_at.eq(input.starts_at.naive()),
                rounds::ends_at.eq(input.ends_at.naive()),
                rounds::location.eq(input.location.as_str()),
                rounds::status.eq(input.status),
                rounds::search_text.eq(input.search_text()),
                rounds::created_at.eq(now),
                rounds::updated_at.eq(now),
                rounds::created_by.eq(actor),
                rounds::updated_by.eq(actor),
            ))
            .returning(rounds::id)
            .get_result::<i32>(conn)?;
        insert_links(conn, id, &input)?;
        found(Rounds::find(conn, id)?, Rounds::NAME, id)
    }

    fn change_of(record: &Round) -> RoundInput {
        RoundInput {
            title: record.title.clone(),
            description: record.description.clone(),
            starts_at: record.starts_at,
            ends_at: record.ends_at,
            location: record.location.clone(),
            status: record.status,
            speakers: Panel(
                record
                    .speakers
                    .0
                    .iter()
                    .map(|s| SpeakerSlot {
                        speaker_id: SpeakerRef(s.speaker_id.0),
                        role: s.role,
                    })
                    .collect(),
            ),
            department_ids: record.department_ids.clone(),
        }
    }

    fn update(
        conn: &mut DbConnection,
        current: Round,
        input: RoundInput,
        actor: Option<&str>,
        expected: i64,
    ) -> Result<Option<Round>, ApiError> {
        let id = current.id.0;
        let row = stored_row(&current, &input, actor, db::now());
        let changed = diesel::update(rounds::table.find(id).filter(rounds::version.eq(expected)))
            .set(round_changes!(row, input))
            .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        if links_differ(&current, &input) {
            rewrite_links(conn, id, &current, &input)?;
            // Read again: the link triggers bump the version, and new links show new names.
            return Rounds::find(conn, id);
        }
        // Only what triggers decide is read back (SQLite's `RETURNING` reports values from
        // before its AFTER triggers, which bump the sequence).
        let (version, sequence) = crate::on_backend!(conn, |c| rounds::table
            .find(id)
            .select((rounds::version, rounds::sequence))
            .first::<(i64, i32)>(c))?;
        let zone = current.zone;
        let (speakers, departments) = (current.speakers.0, current.departments.0);
        Ok(Some(Round {
            version,
            sequence,
            ..round_of(row, speakers, departments, &zone)
        }))
    }

    /// PostgreSQL, when the links stay as they are (a new title, a new room): the round after
    /// the change is known before it is made, so its change-log entry goes in the statement of
    /// the `UPDATE`, which returns what triggers decide (the sequence).
    fn update_logged(
        conn: &mut DbConnection,
        current: &Round,
        input: &RoundInput,
        log: &LogContext<'_>,
        expected: i64,
    ) -> Result<OneStatement<Round>, ApiError> {
        let DbConnection::Postgresql(pg) = conn else {
            return Ok(OneStatement::Unsupported);
        };
        if links_differ(current, input) {
            return Ok(OneStatement::Unsupported);
        }
        let id = current.id.0;
        let now = db::now();
        let row = stored_row(current, input, log.actor, now);
        let update = diesel::update(rounds::table.find(id).filter(rounds::version.eq(expected)))
            .set(round_changes!(row, input))
            .returning((rounds::id, rounds::version, rounds::sequence));
        let after = round_of(
            row.clone(),
            current.speakers.0.clone(),
            current.departments.0.clone(),
            &current.zone,
        );
        let change = Change {
            resource: Rounds::NAME,
            id,
            action: Action::Updated,
            before: Some(serde_json::to_value(current)?),
            after: Some(serde_json::to_value(&after)?),
            actor: log.actor,
            request_id: log.request_id,
        };
        let entry = changelog::Entry::of(&change, now);
        let written = changelog::Logged::new(update, &entry)
            .get_result::<(i32, i64, i32)>(pg)
            .optional()?;
        Ok(match written {
            Some((_, version, sequence)) => OneStatement::Written(Round {
                version,
                sequence,
                ..after
            }),
            None => OneStatement::Stale,
        })
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        if !exists(conn, id)? {
            return Err(ApiError::not_found(Rounds::NAME, id));
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
        if let Some(version) = expected {
            // Taking the links away bumps the version, so the version is checked first, by a
            // statement that also locks the row until the delete commits.
            let locked = diesel::update(rounds::table.find(id).filter(rounds::version.eq(version)))
                .set(rounds::version.eq(rounds::version))
                .execute(conn)?;
            if locked == 0 {
                return Ok(false);
            }
        }
        delete_links(conn, id)?;
        diesel::delete(rounds::table.find(id)).execute(conn)?;
        Ok(true)
    }
}

// ---- handlers ----------------------------------------------------------------------------

/// List rounds
#[utoipa::path(
    tag = "rounds",
    security((), ("bearer" = [])),
    params(RoundFilter, Paging),
    responses((status = 200, description = "A page of rounds", body = Page<Round>), ReadErrors)
)]
#[get("/rounds")]
pub async fn list_rounds(ctx: Ctx, query: Query) -> Result<HttpResponse, ApiError> {
    resource::list::<Rounds>(ctx, query).await
}

/// Schedule a round
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    request_body = RoundInput,
    responses(
        (status = 201, description = "Created", body = Round,
            headers(("Location" = HeaderText, description = "URL of the new round"))),
        WriteErrors
    )
)]
#[post("/rounds")]
pub async fn create_round(ctx: Ctx, body: web::Json<Value>) -> Result<HttpResponse, ApiError> {
    resource::create::<Rounds>(ctx, body.into_inner()).await
}

/// Get a round
#[utoipa::path(
    tag = "rounds",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 200, description = "The round", body = Round), ReadErrors)
)]
#[get("/rounds/{id}")]
pub async fn get_round(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    resource::get::<Rounds>(ctx, id.into_inner()).await
}

/// Replace a round
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    request_body = RoundInput,
    responses((status = 200, description = "The round as replaced", body = Round), WriteErrors)
)]
#[put("/rounds/{id}")]
pub async fn replace_round(
    ctx: Ctx,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    resource::replace::<Rounds>(ctx, id.into_inner(), body.into_inner()).await
}

/// Change some fields of a round (JSON merge patch)
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    request_body(content = RoundInput, content_type = "application/merge-patch+json",
        description = "Fields to change; `null` clears an optional field; arrays are replaced whole"),
    responses((status = 200, description = "The round as changed", body = Round), WriteErrors)
)]
#[patch("/rounds/{id}")]
pub async fn patch_round(
    ctx: Ctx,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    resource::patch::<Rounds>(ctx, id.into_inner(), body.into_inner()).await
}

/// Delete a round that has no feedback
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/rounds/{id}")]
pub async fn delete_round(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    resource::delete::<Rounds>(ctx, id.into_inner()).await
}

/// List the rounds a speaker is on
#[utoipa::path(
    tag = "speakers",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Speaker id"), RoundFilter, Paging),
    responses((status = 200, description = "A page of rounds", body = Page<Round>), ReadErrors)
)]
#[get("/speakers/{id}/rounds")]
pub async fn list_speaker_rounds(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    ctx.authorize::<Rounds>(Access::Read)?;
    let speaker = id.into_inner();
    let query = query.values()?;
    let mut filter: RoundFilter = query.get()?;
    // The path names the speaker (a `speaker_id` parameter is overridden).
    filter.speaker_id = Some(Id(speaker));
    let paging: Paging = query.get()?;
    let caller = ctx.caller.clone();
    ctx.read(true, Some(&query), move |conn| {
        if !crate::schedule::speakers::exists(conn, speaker)? {
            return Err(ApiError::not_found(Speakers::NAME, speaker));
        }
        let listing = Rounds::list(conn, &filter, paging)?;
        Ok(Rendered::json(&listing.page.visible_to(&caller))?.until(listing.valid_until))
    })
    .await
}
