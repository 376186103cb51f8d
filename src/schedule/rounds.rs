//! Rounds: one session of the series, with its topic, time, place, speakers and organisers;
//! also the rounds of one speaker (`/speakers/{id}/rounds`), which are rounds queries.

use actix_web::{get, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use diesel::dsl::Eq;

use crate::platform::auth::{Caller, Role, Visible};
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors};
use crate::platform::fields::{
    DepartmentRef, Id, Line, LocalTimestamp, Name, QuarterHours, SpeakerRef, Text, Timestamp,
};
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{
    self, found, Access, Allowed, Audit, Ctx, Listing, New, Resource, Update, API_PREFIX,
};
use crate::platform::schema::{round_departments, round_speakers, rounds, series};
use crate::platform::timezone::Zone;
use crate::platform::validate::{Doc, ExistingIds, Input, Query};
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
/// An initiative's title (declared here, where a round shows it, and used by
/// `learning::initiatives`).
pub type InitiativeTitle = Name<300>;
/// Initiatives one round shows.
pub const ROUND_INITIATIVES_MAX: usize = 100;

crate::text_enum! {
    /// Whether a round goes ahead.
    #[derive(Default)]
    pub enum RoundStatus { #[default] Scheduled = "scheduled", Cancelled = "cancelled" }
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
    /// Where a speaker's place on a round stands: `invited` and waiting for an answer,
    /// `confirmed`, or `declined`. Only confirmed speakers are shown to anyone but organizers.
    #[derive(Default)]
    pub enum SpeakerStatus {
        Invited = "invited",
        #[default]
        Confirmed = "confirmed",
        Declined = "declined",
    }
}

impl SpeakerRole {
    /// Whether the role presents (a presenter or a panelist; a moderator does not).
    pub fn presents(self) -> bool {
        matches!(self, SpeakerRole::Presenter | SpeakerRole::Panelist)
    }
}

crate::text_enum! {
    /// Time window of the round list: `upcoming` is rounds not yet ended, soonest first; `past`
    /// is rounds that have ended, most recent first.
    pub enum When { Upcoming = "upcoming", Past = "past" }
}

crate::text_enum! {
    /// Order of the round list: by start time, `-starts_at` for latest first.
    pub enum RoundSort { StartsAt = "starts_at", StartsAtDescending = "-starts_at" }
}

/// A speaker slot of a round, as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeakerSlot {
    pub speaker_id: SpeakerRef,
    /// Defaults to `presenter`.
    #[serde(default)]
    pub role: SpeakerRole,
    /// Set by organizers. Left out: the speaker's status stays as it is, and a speaker new to
    /// the round is `confirmed`. The service sets `invited_at` and `responded_at` when it
    /// changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status: Option<SpeakerStatus>,
}

/// A speaker on a round, with what the schedule prints about them. Anyone but organizers sees
/// confirmed speakers only, without the times of their invitation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundSpeaker {
    pub speaker_id: Id,
    pub role: SpeakerRole,
    pub full_name: FullName,
    pub credentials: Credentials,
    #[schema(example = "Tara Lagu, MD, MPH")]
    pub display_name: DisplayName,
    pub status: SpeakerStatus,
    /// When the speaker was last invited (status set to `invited`); organizers only.
    // Outer `None`: hidden from this caller; `Some(None)`: never invited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_at: Option<Option<Timestamp>>,
    /// When the invitation was answered (status set to `confirmed` or `declined` after it);
    /// organizers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<Option<Timestamp>>,
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

/// A department link as stored: department, place.
pub type DepartmentLink = (i32, i32);

impl DepartmentIds {
    /// The links as stored, for [`crate::insert_ordered!`]: each department with its place in
    /// the list. Rounds and initiatives store their organising departments alike.
    pub fn links(&self) -> Vec<DepartmentLink> {
        self.0
            .iter()
            .enumerate()
            .map(|(position, department)| (department.0, position as i32))
            .collect()
    }
}

crate::list_type!(
    /// The organising departments.
    pub DepartmentSummaries(DepartmentSummary),
    max = ORGANISERS_MAX
);

/// An initiative a round discussed, as shown on the round (`GET /rounds/{id}/initiatives`
/// answers the initiatives whole).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundInitiative {
    pub id: Id,
    pub title: InitiativeTitle,
}

crate::list_type!(
    /// The initiatives linked to a round, by id.
    pub RoundInitiatives(RoundInitiative),
    max = ROUND_INITIATIVES_MAX
);

/// A round, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "title": "How can we use patient comments to improve care?", "description": null,
    "starts_at": "2019-04-25T16:00:00Z", "ends_at": "2019-04-25T17:00:00Z",
    "starts_at_local": "2019-04-25T12:00:00-04:00", "ends_at_local": "2019-04-25T13:00:00-04:00",
    "location": "BMC – MassMutual 5", "status": "scheduled",
    "speakers": [{"speaker_id": 7, "role": "presenter", "full_name": "Tara Lagu",
        "credentials": ["MD", "MPH"], "display_name": "Tara Lagu, MD, MPH",
        "status": "confirmed"}],
    "department_ids": [1],
    "departments": [{"id": 1, "name": "Division of Healthcare Quality", "abbreviation": "DHQ"}],
    "credit_hours": 1.0,
    "disclosure_statement_url": "/api/v1/rounds/3/disclosure-statement",
    "initiatives": [{"id": 1, "title": "Using patient comments to improve care"}],
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
    /// Confirmed speakers only, but for organizers, who see every invited, confirmed and
    /// declined speaker with the times of their invitation.
    pub speakers: PanelView,
    pub department_ids: DepartmentIds,
    pub departments: DepartmentSummaries,
    /// The credit designated in advance for attending it, in hours (0.25 steps; see the
    /// series' `credit_type`); 0 for a cancelled round, which designates none.
    pub credit_hours: QuarterHours,
    /// Where learners read the round's disclosure statement (who controls its content and their
    /// relevant financial relationships), relative to the API's origin; it answers 404 until
    /// the first statement is published.
    #[schema(example = "/api/v1/rounds/3/disclosure-statement")]
    pub disclosure_statement_url: Line<100>,
    /// The initiatives the round discussed (linked with `PUT /initiatives/{id}/rounds/{round_id}`).
    pub initiatives: RoundInitiatives,
    #[serde(flatten)]
    pub audit: Audit,
    /// The designation as stored (a cancelled round keeps it, should it go ahead after all),
    /// and whether an organizer chose it rather than the series' default.
    #[serde(skip)]
    #[schema(ignore)]
    pub designation: (QuarterHours, bool),
    /// The iCalendar SEQUENCE: bumped whenever the start, end, place or status changes.
    #[serde(skip)]
    #[schema(ignore)]
    pub sequence: i32,
    /// The series' time zone the local times are in, for a change that moves them.
    #[serde(skip)]
    #[schema(ignore)]
    pub zone: Zone,
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
    /// The credit designated for attending, in hours: a multiple of 0.25, at most the round's
    /// length rounded to the quarter hour. Left out or `null`: the series' default. It may
    /// change only until the round starts (later it is 409: credit is designated in advance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_hours: Option<QuarterHours>,
}

impl Input for RoundInput {
    /// `ends_at` after `starts_at`; each speaker once; no more credit than the round is long.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let (Some(starts), Some(ends)) = (
            doc.get::<Timestamp>("starts_at"),
            doc.get::<Timestamp>("ends_at"),
        ) {
            if ends <= starts {
                errors.push(FieldError::new("ends_at", "must be after starts_at"));
            } else if let Some(hours) = doc.get::<QuarterHours>("credit_hours") {
                let longest = longest_designation(starts, ends);
                if hours > longest {
                    errors.push(FieldError::new(
                        "credit_hours",
                        format!(
                            "must be at most the round's length rounded to the quarter hour \
                             ({longest})"
                        ),
                    ));
                }
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

/// The most credit a round from `starts` to `ends` may designate: its length, rounded to the
/// quarter hour.
pub fn longest_designation(starts: Timestamp, ends: Timestamp) -> QuarterHours {
    QuarterHours::of_seconds_rounded((ends.0 - starts.0).num_seconds())
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
    speakers_doc: String,
    departments_doc: String,
    credit_quarter_hours: i32,
    credit_hours_set: bool,
    initiatives_doc: String,
}

/// Filters and order of the round list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoundFilter {
    pub when: Option<When>,
    /// Rounds starting at or after this time (RFC 3339).
    pub from: Option<Timestamp>,
    /// Rounds starting at or before this time (RFC 3339).
    pub to: Option<Timestamp>,
    /// Rounds this speaker is on.
    pub speaker_id: Option<Id>,
    /// Rounds this department organises.
    pub department_id: Option<Id>,
    pub status: Option<RoundStatus>,
    /// Text in the title or description, ignoring case.
    pub q: Option<Search>,
    /// Overrides the order of `when`.
    pub sort: Option<RoundSort>,
}

crate::record!(@keyed Round, |r: &Round| r.id.0, |r: &Round| r.audit.version);

impl Visible for Round {
    /// Organizers see every speaker; everyone else the confirmed ones, without the times of
    /// their invitations (a round whose only presenters declined shows none: to be announced).
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            self.speakers
                .0
                .retain(|s| s.status == SpeakerStatus::Confirmed);
            for speaker in &mut self.speakers.0 {
                speaker.invited_at = None;
                speaker.responded_at = None;
            }
        }
        self.audit = self.audit.visible_to(caller);
        self
    }
}

impl Round {
    /// Whether a confirmed speaker presents (see [`SpeakerRole::presents`]).
    pub fn has_confirmed_presenter(&self) -> bool {
        self.speakers
            .0
            .iter()
            .any(|s| s.status == SpeakerStatus::Confirmed && s.role.presents())
    }
}

// ---- persistence -------------------------------------------------------------------------

/// Every read of rounds starts here: the rounds, each with the series' time zone (one row,
/// joined on its fixed id, so that a round is one statement). A round's speakers and
/// departments come with its row (`speakers_doc`, `departments_doc`): see [`RoundRow`].
fn with_zone() -> diesel::dsl::LeftJoinOn<rounds::table, series::table, Eq<series::id, i32>> {
    rounds::table.left_join(series::table.on(series::id.eq(crate::schedule::series::ID)))
}

/// A query of rounds (with the series' zone), on either backend.
type RoundsQuery = diesel::dsl::IntoBoxed<
    'static,
    diesel::dsl::LeftJoinOn<rounds::table, series::table, Eq<series::id, i32>>,
    MultiBackend,
>;

/// What a read of rounds selects: the round's row and the zone's name.
type RoundLine = (RoundRow, Option<String>);

macro_rules! round_line {
    () => {
        (RoundRow::as_select(), series::timezone.nullable())
    };
}

/// The rounds `filter` takes in as of `now`, which decides what `when` takes in: the one
/// declaration of the round list, for pages, feeds and counts alike, on both backends.
fn filtered(filter: &RoundFilter, now: NaiveDateTime) -> RoundsQuery {
    let mut query = with_zone().into_boxed();
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

/// [`filtered`] in the order the filter asks for (a count takes no order).
fn in_order(filter: &RoundFilter, now: NaiveDateTime) -> RoundsQuery {
    let query = filtered(filter, now);
    if latest_first(filter) {
        query.order((rounds::starts_at.desc(), rounds::id.desc()))
    } else {
        query.order((rounds::starts_at.asc(), rounds::id.asc()))
    }
}

/// A page of rounds as of `now`, in one snapshot (the caller's): the total, the page, and, with
/// `when`, the moment the page stops holding (the next round still going or to come ends).
pub fn list_at(
    conn: &mut DbConnection,
    filter: &RoundFilter,
    paging: Paging,
    now: NaiveDateTime,
) -> Result<Listing<Round>, ApiError> {
    let total = filtered(filter, now).count().get_result::<i64>(conn)?;
    let lines = in_order(filter, now)
        .limit(paging.limit())
        .offset(paging.offset())
        .select(round_line!())
        .load::<RoundLine>(conn)?;
    let valid_until = match filter.when {
        Some(_) => next_end_after(conn, now)?,
        None => None,
    };
    Ok(Listing {
        page: paging.page(rounds_of(lines)?, total),
        valid_until,
    })
}

/// Every round `filter` takes in (at most `max`), in its order: a feed has no pages.
pub fn list_all(
    conn: &mut DbConnection,
    filter: &RoundFilter,
    max: i64,
    now: NaiveDateTime,
) -> Result<Vec<Round>, ApiError> {
    let lines = in_order(filter, now)
        .limit(max)
        .select(round_line!())
        .load::<RoundLine>(conn)?;
    rounds_of(lines)
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

/// What decides whether a round takes session feedback: its times and status, with the series'
/// zone and feedback window (`feedback_window_days`).
#[derive(Debug, Clone)]
pub struct FeedbackTerms {
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub status: RoundStatus,
    pub zone: Zone,
    pub window_days: i64,
}

/// The [`FeedbackTerms`] of round `id` in one statement (the round's row, with the series' row
/// joined), or `None` if there is no such round.
pub fn feedback_terms(conn: &mut DbConnection, id: i32) -> Result<Option<FeedbackTerms>, ApiError> {
    type Terms = (
        NaiveDateTime,
        NaiveDateTime,
        RoundStatus,
        Option<String>,
        Option<i32>,
    );
    let terms = crate::on_backend!(conn, |c| with_zone()
        .filter(rounds::id.eq(id))
        .select((
            rounds::starts_at,
            rounds::ends_at,
            rounds::status,
            series::timezone.nullable(),
            series::feedback_window_days.nullable(),
        ))
        .first::<Terms>(c)
        .optional())?;
    Ok(
        terms.map(|(starts_at, ends_at, status, zone, days)| FeedbackTerms {
            starts_at,
            ends_at,
            status,
            zone: crate::schedule::series::zone_named(zone.as_deref()),
            window_days: days.map_or(
                crate::schedule::series::DEFAULT_FEEDBACK_WINDOW_DAYS,
                i64::from,
            ),
        }),
    )
}

/// The rounds of lines read together: they share the series' zone.
fn rounds_of(lines: Vec<RoundLine>) -> Result<Vec<Round>, ApiError> {
    let Some((_, zone)) = lines.first() else {
        return Ok(Vec::new());
    };
    let zone = crate::schedule::series::zone_named(zone.as_deref());
    lines
        .into_iter()
        .map(|(row, _)| round_of(row, &zone))
        .collect()
}

/// A list the round's row carries (see [`RoundRow`]).
fn document<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<Vec<T>, ApiError> {
    serde_json::from_str(text)
        .map_err(|error| ApiError::Internal(format!("round with a bad {column}: {error}")))
}

/// One speaker of a round's `speakers_doc`: `[speaker_id, full_name, credentials, role,
/// status, invited_at, responded_at]`.
type SpeakerItem = (
    i32,
    String,
    String,
    SpeakerRole,
    SpeakerStatus,
    Option<String>,
    Option<String>,
);

/// A time the copy carries as its backend writes one: `2019-04-25 16:00:00.5` (SQLite's column
/// text) or `2019-04-25T16:00:00.5` (PostgreSQL's JSON).
fn document_time(text: Option<&str>) -> Result<Option<NaiveDateTime>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    NaiveDateTime::parse_from_str(&text.replacen('T', " ", 1), "%Y-%m-%d %H:%M:%S%.f")
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("round with a bad time in speakers_doc: {e}")))
}

fn round_speaker(item: SpeakerItem) -> Result<RoundSpeaker, ApiError> {
    let (speaker_id, full_name, credentials, role, status, invited_at, responded_at) = item;
    let credentials = decode_credentials(&credentials);
    Ok(RoundSpeaker {
        speaker_id: Id(speaker_id),
        role,
        display_name: Text::stored(display_name(&full_name, &credentials)),
        full_name: Name::stored(full_name),
        credentials,
        status,
        invited_at: Some(document_time(invited_at.as_deref())?.map(Timestamp::from_naive)),
        responded_at: Some(document_time(responded_at.as_deref())?.map(Timestamp::from_naive)),
    })
}

fn round_of(row: RoundRow, zone: &Zone) -> Result<Round, ApiError> {
    let speakers: Vec<SpeakerItem> = document(&row.speakers_doc, "speakers_doc")?;
    let departments: Vec<(i32, String, Option<String>)> =
        document(&row.departments_doc, "departments_doc")?;
    let initiatives: Vec<(i32, String)> = document(&row.initiatives_doc, "initiatives_doc")?;
    let speakers = speakers
        .into_iter()
        .map(round_speaker)
        .collect::<Result<Vec<_>, _>>()?;
    let departments: Vec<DepartmentSummary> = departments
        .into_iter()
        .map(|(id, name, abbreviation)| DepartmentSummary {
            id: Id(id),
            name: Name::stored(name),
            abbreviation: abbreviation.map(Text::stored),
        })
        .collect();
    let (starts_at, ends_at) = (
        Timestamp::from_naive(row.starts_at),
        Timestamp::from_naive(row.ends_at),
    );
    let designated = QuarterHours::clamped(i64::from(row.credit_quarter_hours));
    Ok(Round {
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
        credit_hours: match row.status {
            RoundStatus::Cancelled => QuarterHours::ZERO,
            RoundStatus::Scheduled => designated,
        },
        designation: (designated, row.credit_hours_set),
        disclosure_statement_url: Line::stored(disclosure_statement_url(row.id)),
        initiatives: RoundInitiatives(
            initiatives
                .into_iter()
                .map(|(id, title)| RoundInitiative {
                    id: Id(id),
                    title: Name::stored(title),
                })
                .collect(),
        ),
        audit: crate::audit!(row),
        sequence: row.sequence,
        zone: zone.clone(),
    })
}

/// The path of a round's disclosure statement (`disclosure::statements` serves it).
pub fn disclosure_statement_url(round_id: i32) -> String {
    format!("{API_PREFIX}/rounds/{round_id}/disclosure-statement")
}

/// Whether the list is in the order of latest first.
fn latest_first(filter: &RoundFilter) -> bool {
    match filter.sort {
        Some(sort) => sort == RoundSort::StartsAtDescending,
        None => filter.when == Some(When::Past),
    }
}

/// Writes the speaker and department links of a round, each list in one statement.
fn insert_links(
    conn: &mut DbConnection,
    round_id: i32,
    input: &RoundInput,
) -> Result<(), ApiError> {
    let speakers = input_speaker_links(input, None, db::now());
    if !speakers.is_empty() {
        let rows: Vec<_> = speakers.iter().map(|link| link.values(round_id)).collect();
        crate::on_backend!(conn, |c| diesel::insert_into(round_speakers::table)
            .values(&rows)
            .execute(c))?;
    }
    let departments = input.department_ids.links();
    crate::insert_ordered!(
        conn,
        round_departments,
        round_id = round_id,
        department_id,
        departments
    )?;
    Ok(())
}

/// A speaker link as stored: speaker, place, role, status and the times of the invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpeakerLink {
    speaker: i32,
    position: i32,
    role: SpeakerRole,
    status: SpeakerStatus,
    invited_at: Option<NaiveDateTime>,
    responded_at: Option<NaiveDateTime>,
}

/// The columns of one `round_speakers` row.
type SpeakerLinkValues = (
    Eq<round_speakers::round_id, i32>,
    Eq<round_speakers::speaker_id, i32>,
    Eq<round_speakers::position, i32>,
    Eq<round_speakers::role, SpeakerRole>,
    Eq<round_speakers::status, SpeakerStatus>,
    Eq<round_speakers::invited_at, Option<NaiveDateTime>>,
    Eq<round_speakers::responded_at, Option<NaiveDateTime>>,
);

impl SpeakerLink {
    fn values(&self, round_id: i32) -> SpeakerLinkValues {
        (
            round_speakers::round_id.eq(round_id),
            round_speakers::speaker_id.eq(self.speaker),
            round_speakers::position.eq(self.position),
            round_speakers::role.eq(self.role),
            round_speakers::status.eq(self.status),
            round_speakers::invited_at.eq(self.invited_at),
            round_speakers::responded_at.eq(self.responded_at),
        )
    }
}

/// The times of a place whose status goes from `before` (none: new to the round) to `status`
/// at `now`: an invitation is sent when it becomes `invited` (and awaits its answer again), and
/// answered when an invited place becomes `confirmed` or `declined`. A place that keeps its
/// status keeps its times; a speaker put on the round as confirmed was never invited.
pub fn invitation_times(
    before: Option<(SpeakerStatus, Option<NaiveDateTime>, Option<NaiveDateTime>)>,
    status: SpeakerStatus,
    now: NaiveDateTime,
) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    match (before, status) {
        (Some((old, invited, responded)), new) if old == new => (invited, responded),
        (_, SpeakerStatus::Invited) => (Some(now), None),
        (Some((_, invited, _)), _) => (invited, Some(now)),
        (None, SpeakerStatus::Confirmed) => (None, None),
        (None, SpeakerStatus::Declined) => (None, Some(now)),
    }
}

/// A speaker's place on `round` as it is: status and times.
type PlaceState = (SpeakerStatus, Option<NaiveDateTime>, Option<NaiveDateTime>);

fn place_state(speaker: &RoundSpeaker) -> PlaceState {
    (
        speaker.status,
        speaker.invited_at.flatten().map(Timestamp::naive),
        speaker.responded_at.flatten().map(Timestamp::naive),
    )
}

fn current_speaker_links(current: &Round) -> Vec<SpeakerLink> {
    current
        .speakers
        .0
        .iter()
        .enumerate()
        .map(|(position, s)| {
            let (status, invited_at, responded_at) = place_state(s);
            SpeakerLink {
                speaker: s.speaker_id.0,
                position: position as i32,
                role: s.role,
                status,
                invited_at,
                responded_at,
            }
        })
        .collect()
}

/// The links `input` asks for over `current`'s: a slot without a status keeps its speaker's
/// (a new speaker is confirmed), and the times follow the status ([`invitation_times`]).
fn input_speaker_links(
    input: &RoundInput,
    current: Option<&Round>,
    now: NaiveDateTime,
) -> Vec<SpeakerLink> {
    input
        .speakers
        .0
        .iter()
        .enumerate()
        .map(|(position, slot)| {
            let before = current
                .and_then(|r| {
                    r.speakers
                        .0
                        .iter()
                        .find(|s| s.speaker_id.0 == slot.speaker_id.0)
                })
                .map(place_state);
            let status = slot
                .status
                .or(before.map(|(status, _, _)| status))
                .unwrap_or_default();
            let (invited_at, responded_at) = invitation_times(before, status, now);
            SpeakerLink {
                speaker: slot.speaker_id.0,
                position: position as i32,
                role: slot.role,
                status,
                invited_at,
                responded_at,
            }
        })
        .collect()
}

/// Makes the links of round `id` those of `input`, touching only the rows that differ from
/// `current`'s: a row that keeps its place (role, status and times) stays; the others go and
/// the new ones come, two statements at most for each kind. A move is a delete and an insert,
/// since updating places one row at a time would collide on the unique (round, place) on the
/// way.
fn rewrite_links(
    conn: &mut DbConnection,
    id: i32,
    current: &Round,
    input: &RoundInput,
) -> Result<(), ApiError> {
    let old_speakers = current_speaker_links(current);
    let new_speakers = input_speaker_links(input, Some(current), db::now());
    let old_departments = current.department_ids.links();
    let new_departments = input.department_ids.links();
    let gone: Vec<i32> = old_speakers
        .iter()
        .filter(|link| !new_speakers.contains(link))
        .map(|link| link.speaker)
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
        .map(|link| link.values(id))
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
    let added = new_departments
        .iter()
        .filter(|link| !old_departments.contains(link))
        .copied();
    crate::insert_ordered!(conn, round_departments, round_id = id, department_id, added)?;
    Ok(())
}

fn delete_links(conn: &mut DbConnection, round_id: i32) -> Result<(), ApiError> {
    diesel::delete(round_speakers::table.filter(round_speakers::round_id.eq(round_id)))
        .execute(conn)?;
    diesel::delete(round_departments::table.filter(round_departments::round_id.eq(round_id)))
        .execute(conn)?;
    Ok(())
}

/// The columns a body writes, for `INSERT` and `UPDATE` alike.
macro_rules! written_columns {
    ($input:expr) => {
        (
            rounds::title.eq(Text::non_blank($input.title.as_ref())),
            rounds::description.eq(Text::non_blank($input.description.as_ref())),
            rounds::starts_at.eq($input.starts_at.naive()),
            rounds::ends_at.eq($input.ends_at.naive()),
            rounds::location.eq($input.location.as_str()),
            rounds::status.eq($input.status),
            rounds::search_text.eq($input.search_text()),
        )
    };
}

/// Rounds: what [`resource`] needs to serve them.
pub struct Rounds;

impl Resource for Rounds {
    const NAME: &'static str = "round";
    const COLLECTION: &'static str = "rounds";
    const SCHEDULE: bool = true;
    const WRITE: Allowed = Allowed::Role(Role::Organizer);
    type Record = Round;
    type Input = RoundInput;
    type Change = RoundInput;
    type Filter = RoundFilter;

    /// One statement: the round's row carries its links, and the zone is joined.
    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Round>, ApiError> {
        let line = crate::on_backend!(conn, |c| with_zone()
            .filter(rounds::id.eq(id))
            .select(round_line!())
            .first::<RoundLine>(c)
            .optional())?;
        Ok(rounds_of(line.into_iter().collect())?.pop())
    }

    /// With `when`, the page holds only until the next upcoming round ends, when it moves from
    /// upcoming to past.
    fn list(
        conn: &mut DbConnection,
        filter: &RoundFilter,
        paging: Paging,
    ) -> Result<Listing<Round>, ApiError> {
        list_at(conn, filter, paging, db::now())
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Round, ApiError> {
        let (designated, chosen) = match new.input.credit_hours {
            Some(hours) => (hours, true),
            None => (default_designation(conn, &new.input)?, false),
        };
        let values = (
            written_columns!(new.input),
            crate::created_columns!(rounds, new.actor),
            rounds::credit_quarter_hours.eq(designated.quarters()),
            rounds::credit_hours_set.eq(chosen),
        );
        let id = diesel::insert_into(rounds::table)
            .values(values)
            .returning(rounds::id)
            .get_result::<i32>(conn)?;
        insert_links(conn, id, &new.input)?;
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
                        status: Some(s.status),
                    })
                    .collect(),
            ),
            department_ids: record.department_ids.clone(),
            credit_hours: match record.designation {
                (hours, true) => Some(hours),
                (_, false) => None,
            },
        }
    }

    /// The round is read back after the write: the database's triggers decide its version,
    /// its iCalendar sequence and the copies of its links.
    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Round>, ApiError> {
        let (current, input) = (&update.current, &update.change);
        let id = current.id.0;
        let target = rounds::table
            .find(id)
            .filter(rounds::version.eq(update.expected));
        let (designated, chosen) = designation_of(conn, current, input, db::now())?;
        let changes = (
            written_columns!(input),
            crate::updated_columns!(rounds, update.actor),
            rounds::credit_quarter_hours.eq(designated.quarters()),
            rounds::credit_hours_set.eq(chosen),
        );
        if diesel::update(target).set(changes).execute(conn)? == 0 {
            return Ok(None);
        }
        rewrite_links(conn, id, current, input)?;
        Rounds::find(conn, id)
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        if !exists(conn, id)? {
            return Err(ApiError::not_found(Rounds::NAME, id));
        }
        let attendance = crate::count_rows!(conn, attendance, round_id, id)?;
        db::refuse_while_used(
            &format!("round {id} has"),
            &[(attendance, "attendance record")],
            "attendance is never deleted: cancel the round instead (PATCH its status to cancelled)",
        )?;
        let feedback = crate::count_rows!(conn, feedback, round_id, id)?;
        db::refuse_while_used(
            &format!("round {id} still has"),
            &[(feedback, "feedback item")],
            "feedback is kept unless an admin deletes it: delete the feedback first",
        )?;
        // What the learning loop recorded of the round is kept too (`learning`).
        let outcomes = crate::count_rows!(conn, round_outcomes, round_id, id)?;
        let initiatives = crate::count_rows!(conn, initiative_rounds, round_id, id)?;
        let cycles = crate::count_rows!(conn, pdsa_cycles, round_id, Some(id))?;
        db::refuse_while_used(
            &format!("round {id} still has"),
            &[
                (outcomes, "outcome"),
                (initiatives, "initiative link"),
                (cycles, "PDSA cycle"),
            ],
            "delete them, or unlink them from the round, first",
        )?;
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

/// What a round designates when the body leaves `credit_hours` out: the series' default for a
/// round of its length.
fn default_designation(
    conn: &mut DbConnection,
    input: &RoundInput,
) -> Result<QuarterHours, ApiError> {
    let seconds = (input.ends_at.0 - input.starts_at.0).num_seconds();
    Ok(crate::schedule::series::credit_default(conn)?.designation(seconds))
}

/// The designation a change writes, and whether an organizer chose it: the body's, or else the
/// series' default until the round starts and the one it has after. Credit is designated in
/// advance: once the round has started (or has attendance), a change that would make it
/// designate other credit is 409, but for cancelling it, which designates none.
fn designation_of(
    conn: &mut DbConnection,
    current: &Round,
    input: &RoundInput,
    now: NaiveDateTime,
) -> Result<(QuarterHours, bool), ApiError> {
    let started = current.starts_at.naive() <= now;
    let (designated, chosen) = match input.credit_hours {
        Some(hours) => (hours, true),
        None if started => current.designation,
        // The same length designates the same default: no need to read the series again.
        None if input.starts_at == current.starts_at && input.ends_at == current.ends_at => {
            current.designation
        }
        None => (default_designation(conn, input)?, false),
    };
    let cancelled = input.status == RoundStatus::Cancelled;
    let shown = if cancelled {
        QuarterHours::ZERO
    } else {
        designated
    };
    let longest = longest_designation(input.starts_at, input.ends_at);
    if cancelled || (shown == current.credit_hours && designated <= longest) {
        return Ok((designated, chosen));
    }
    let id = current.id.0;
    let in_advance = |why: String| {
        ApiError::Conflict(format!(
            "credit is designated in advance: {why}, so round {id} keeps its {} credit hours \
             (a cancelled round designates none)",
            current.credit_hours
        ))
    };
    if started {
        return Err(in_advance(format!(
            "the round started at {}",
            current.starts_at_local.0.to_rfc3339()
        )));
    }
    let attendance = crate::count_rows!(conn, attendance, round_id, id)?;
    if attendance > 0 {
        return Err(in_advance(format!(
            "{attendance} attendance record(s) were made with it"
        )));
    }
    Ok((designated, chosen))
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Rounds, one = "round", many = "rounds", tag = "rounds",
    record = Round, input = RoundInput, change = RoundInput,
    read = [(), ("bearer" = [])], write = [("bearer" = ["organizer", "admin"])];
    list list_rounds "/rounds" "List rounds" [RoundFilter, Paging];
    create create_round "/rounds" "Schedule a round";
    get get_round "/rounds/{id}" "Get a round";
    replace replace_round "/rounds/{id}" "Replace a round";
    patch patch_round "/rounds/{id}" "Change some fields of a round (JSON merge patch)";
}
// `DELETE /rounds/{id}` is `materials::delete_round`: a round's materials, and their files,
// go with it.

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
    let granted = ctx.authorize::<Rounds>(Access::Read)?;
    let speaker = id.into_inner();
    let query = query.values()?;
    let mut filter: RoundFilter = query.get()?;
    // The path names the speaker (a `speaker_id` parameter is overridden).
    filter.speaker_id = Some(Id(speaker));
    resource::list_filtered::<Rounds>(ctx, granted, &query, filter, move |conn| {
        match crate::schedule::speakers::exists(conn, speaker)? {
            true => Ok(()),
            false => Err(ApiError::not_found(Speakers::NAME, speaker)),
        }
    })
    .await
}

/// Which of the ids name a round.
pub const EXISTING: ExistingIds = crate::existing_ids!(rounds);
