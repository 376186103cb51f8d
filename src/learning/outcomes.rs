//! What each round decided: its outcomes, in the order they were recorded. An outcome is a
//! piece of information, a decision, or an action item with an owner, a due date and a status
//! (and a derived `overdue`). Outcomes may name the initiative and the PDSA cycle they are
//! about.
//!
//! Decisions are kept as written: their text and rationale never change and they are not
//! deleted (409); a correction is a new outcome naming the one it corrects (`corrects_id`), and
//! the audit trail has the history. Around outcomes: the action items across rounds
//! (`GET /action-items`, organizers), the open ones carried over to a round's agenda
//! (`GET /rounds/{id}/carried-over`), and an iCalendar feed of them as to-dos
//! (`GET /action-items.ics`, RFC 5545 `VTODO`), written with `schedule::calendar`'s lines.

use actix_web::{get, post, web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::learning::initiatives::{self, PersonName, Under};
use crate::learning::pdsa;
use crate::platform::auth::{Caller, Role, Visible};
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{
    Email, Id, InitiativeRef, LocalDate, Name, OutcomeRef, PdsaCycleRef, SpeakerRef, Text,
    Timestamp,
};
use crate::platform::http::JsonBody;
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{
    self, found, Access, Allowed, Audit, Ctx, Keyed, Listing, New, Resource, Update,
};
use crate::platform::schema::{round_outcomes, rounds as rounds_table, series};
use crate::platform::timezone;
use crate::platform::validate::{Doc, ExistingIds, Input, Query};
use crate::schedule::calendar::{self, CalendarSettings};
use crate::schedule::rounds::{self, Rounds};

pub type OutcomeText = Name<2000>;
pub type Rationale = Text<5000>;
/// The most action items one feed holds (a feed has no pages).
const FEED_MAX: i64 = 5000;

crate::text_enum! {
    /// What an outcome is.
    pub enum OutcomeKind {
        Information = "information",
        /// Kept as written: a correction is a new outcome.
        Decision = "decision",
        /// Has an owner, a due date and a status.
        ActionItem = "action_item",
    }
}

crate::text_enum! {
    /// Where an action item is. `open` and `in_progress` ones are carried over to later rounds
    /// and can be overdue.
    #[derive(Default)]
    pub enum ActionStatus {
        #[default]
        Open = "open",
        InProgress = "in_progress",
        Done = "done",
        Cancelled = "cancelled",
    }
}

impl ActionStatus {
    pub fn is_open(self) -> bool {
        matches!(self, ActionStatus::Open | ActionStatus::InProgress)
    }
}

/// Who owes an action item, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub name: PersonName,
    /// Shown to organizers and admins only.
    pub email: Email,
    /// The speaker this person is, if they are one.
    pub speaker_id: Option<SpeakerRef>,
}

/// Who owes an action item, as answered: the e-mail address is shown to organizers only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnerView {
    pub name: PersonName,
    /// Organizers and admins only; `null` for everyone else.
    pub email: Option<Email>,
    pub speaker_id: Option<Id>,
}

/// An outcome of a round, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 4, "round_id": 4, "position": 2, "kind": "action_item",
    "text": "Draft the survey of department leads on data access",
    "rationale": "Weakness named by the SWOT: analysts cannot reach EHR data quickly",
    "initiative_id": null, "pdsa_cycle_id": null, "corrects_id": null,
    "owner": {"name": "Aubri Drake", "email": "aubri.drake@example.org", "speaker_id": null},
    "due_date": "2019-06-20", "status": "done", "completed_at": "2019-06-18T14:00:00Z",
    "overdue": false, "created_at": "2019-05-23T17:00:00Z", "updated_at": "2019-06-18T14:00:00Z"
}))]
pub struct Outcome {
    pub id: Id,
    pub round_id: Id,
    /// 1, 2, 3... in the order the round's outcomes were recorded.
    pub position: Id,
    pub kind: OutcomeKind,
    pub text: OutcomeText,
    pub rationale: Option<Rationale>,
    pub initiative_id: Option<Id>,
    pub pdsa_cycle_id: Option<Id>,
    /// The outcome this one corrects.
    pub corrects_id: Option<Id>,
    /// Action items only.
    pub owner: Option<OwnerView>,
    /// Action items only.
    pub due_date: Option<LocalDate>,
    /// Action items only.
    pub status: Option<ActionStatus>,
    /// When an action item was done.
    pub completed_at: Option<Timestamp>,
    /// An action item still `open` or `in_progress` after its due date (in the series' time
    /// zone); `false` for everything else.
    pub overdue: bool,
    #[serde(flatten)]
    pub audit: Audit,
}

impl Keyed for Outcome {
    fn id(&self) -> i32 {
        self.id.0
    }

    /// The row's version and `overdue`, which time alone turns (see `initiatives`' `Keyed`).
    fn version(&self) -> i64 {
        self.audit.version * 2 + i64::from(self.overdue)
    }
}

impl Visible for Outcome {
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            if let Some(owner) = &mut self.owner {
                owner.email = None;
            }
        }
        self.audit = self.audit.visible_to(caller);
        self
    }
}

/// An outcome, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "action_item", "text": "Draft the survey of department leads on data access",
    "owner": {"name": "Aubri Drake", "email": "aubri.drake@example.org"},
    "due_date": "2019-06-20"
}))]
pub struct OutcomeInput {
    pub kind: OutcomeKind,
    pub text: OutcomeText,
    pub rationale: Option<Rationale>,
    /// The initiative it is about (taken from the PDSA cycle when only that is given).
    pub initiative_id: Option<InitiativeRef>,
    /// A PDSA cycle of that initiative.
    pub pdsa_cycle_id: Option<PdsaCycleRef>,
    /// The outcome this one corrects.
    pub corrects_id: Option<OutcomeRef>,
    /// Required for an action item; only for action items.
    pub owner: Option<Owner>,
    /// Required for an action item; only for action items.
    pub due_date: Option<LocalDate>,
    /// Action items only; `open` when left out.
    pub status: Option<ActionStatus>,
    /// When a `done` action item was done; now when left out.
    pub completed_at: Option<Timestamp>,
}

impl Input for OutcomeInput {
    /// An action item has an owner and a due date; nothing else has them.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let Some(kind) = doc.get::<OutcomeKind>("kind") else {
            return errors;
        };
        let given = |field: &str| doc.get::<serde_json::Value>(field).is_some();
        if kind == OutcomeKind::ActionItem {
            for field in ["owner", "due_date"] {
                if !given(field) {
                    errors.push(FieldError::new(
                        field,
                        "is required for an action item: who owes what by when",
                    ));
                }
            }
            let status = doc.get::<ActionStatus>("status").unwrap_or_default();
            if given("completed_at") && status != ActionStatus::Done {
                errors.push(FieldError::new(
                    "completed_at",
                    format!("is only for a done action item (status {status})"),
                ));
            }
        } else {
            for field in ["owner", "due_date", "status", "completed_at"] {
                if given(field) {
                    errors.push(FieldError::new(
                        field,
                        format!("is only for action items, not a {kind}"),
                    ));
                }
            }
        }
        errors
    }
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = round_outcomes)]
struct OutcomeRow {
    id: i32,
    round_id: i32,
    position: i32,
    kind: OutcomeKind,
    text: String,
    rationale: Option<String>,
    initiative_id: Option<i32>,
    pdsa_cycle_id: Option<i32>,
    corrects_id: Option<i32>,
    owner_name: Option<String>,
    owner_email: Option<String>,
    owner_speaker_id: Option<i32>,
    due_date: Option<NaiveDate>,
    status: Option<ActionStatus>,
    completed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

/// Today in the series' time zone: what due dates are compared with.
fn today(conn: &mut DbConnection) -> Result<NaiveDate, ApiError> {
    let zone = series::table
        .find(crate::schedule::series::ID)
        .select(series::timezone)
        .first::<String>(conn)
        .optional()?;
    let zone = crate::schedule::series::zone_named(zone.as_deref());
    Ok(timezone::local(&zone, db::now().and_utc()).date_naive())
}

fn outcome_of(row: OutcomeRow, today: NaiveDate) -> Outcome {
    let overdue = row.kind == OutcomeKind::ActionItem
        && row.status.is_some_and(ActionStatus::is_open)
        && row.due_date.is_some_and(|due| due < today);
    let owner = row.owner_name.clone().map(|name| OwnerView {
        name: Name::stored(name),
        email: row.owner_email.clone().map(Email::stored),
        speaker_id: row.owner_speaker_id.map(Id),
    });
    Outcome {
        id: Id(row.id),
        round_id: Id(row.round_id),
        position: Id(row.position.max(1)),
        kind: row.kind,
        text: Name::stored(row.text.clone()),
        rationale: row.rationale.clone().map(Text::stored),
        initiative_id: row.initiative_id.map(Id),
        pdsa_cycle_id: row.pdsa_cycle_id.map(Id),
        corrects_id: row.corrects_id.map(Id),
        owner,
        due_date: row.due_date.map(LocalDate::from_naive),
        status: row.status,
        completed_at: row.completed_at.map(Timestamp::from_naive),
        overdue,
        audit: crate::audit!(row),
    }
}

fn outcomes_of(conn: &mut DbConnection, rows: Vec<OutcomeRow>) -> Result<Vec<Outcome>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let today = today(conn)?;
    Ok(rows.into_iter().map(|row| outcome_of(row, today)).collect())
}

// ---- persistence -------------------------------------------------------------------------

/// Filters of the action-item list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionItemFilter {
    pub status: Option<ActionStatus>,
    /// The owner's e-mail address, ignoring case.
    pub owner_email: Option<Email>,
    pub initiative_id: Option<Id>,
    /// Due before this date.
    pub due_before: Option<LocalDate>,
    /// `true`: open or in progress after the due date; `false`: every other action item.
    pub overdue: Option<bool>,
}

/// What a list of outcomes is: a round's outcomes, a filtered list of action items, or the
/// open action items of the rounds before one.
#[derive(Debug, Clone, Deserialize)]
pub enum OutcomeQuery {
    Round(i32),
    ActionItems(ActionItemFilter),
    /// Before a round that starts at this time.
    CarriedOver {
        before: NaiveDateTime,
    },
}

impl Default for OutcomeQuery {
    fn default() -> Self {
        OutcomeQuery::ActionItems(ActionItemFilter::default())
    }
}

const OPEN: [ActionStatus; 2] = [ActionStatus::Open, ActionStatus::InProgress];

fn action_items(
    filter: &ActionItemFilter,
    today: NaiveDate,
) -> round_outcomes::BoxedQuery<'static, MultiBackend> {
    let mut query = round_outcomes::table
        .filter(round_outcomes::kind.eq(OutcomeKind::ActionItem))
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(round_outcomes::status.eq(status));
    }
    if let Some(email) = &filter.owner_email {
        query = query.filter(round_outcomes::owner_email_key.eq(email.as_str().to_lowercase()));
    }
    if let Some(initiative) = filter.initiative_id {
        query = query.filter(round_outcomes::initiative_id.eq(initiative.0));
    }
    if let Some(before) = filter.due_before {
        query = query.filter(round_outcomes::due_date.lt(before.naive()));
    }
    match filter.overdue {
        Some(true) => {
            query = query
                .filter(round_outcomes::status.eq_any(OPEN))
                .filter(round_outcomes::due_date.lt(today));
        }
        Some(false) => {
            query = query.filter(
                round_outcomes::status
                    .ne_all(OPEN)
                    .or(round_outcomes::due_date.ge(today)),
            );
        }
        None => {}
    }
    query
}

fn filtered(
    query: &OutcomeQuery,
    today: NaiveDate,
) -> round_outcomes::BoxedQuery<'static, MultiBackend> {
    match query {
        OutcomeQuery::Round(round) => round_outcomes::table
            .filter(round_outcomes::round_id.eq(*round))
            .into_boxed(),
        OutcomeQuery::ActionItems(filter) => action_items(filter, today),
        OutcomeQuery::CarriedOver { before, .. } => round_outcomes::table
            .filter(round_outcomes::kind.eq(OutcomeKind::ActionItem))
            .filter(round_outcomes::status.eq_any(OPEN))
            .filter(
                round_outcomes::round_id.eq_any(
                    rounds_table::table
                        .filter(rounds_table::starts_at.lt(*before))
                        .select(rounds_table::id),
                ),
            )
            .into_boxed(),
    }
}

/// The columns a body writes, for `INSERT` and `UPDATE` alike (`completed_at` apart).
macro_rules! written_columns {
    ($input:expr, $initiative:expr) => {
        (
            round_outcomes::kind.eq($input.kind),
            round_outcomes::text.eq($input.text.as_str()),
            round_outcomes::rationale.eq(Text::non_blank($input.rationale.as_ref())),
            round_outcomes::initiative_id.eq($initiative),
            round_outcomes::pdsa_cycle_id.eq($input.pdsa_cycle_id.map(|c| c.0)),
            round_outcomes::corrects_id.eq($input.corrects_id.map(|c| c.0)),
            round_outcomes::owner_name.eq($input.owner.as_ref().map(|o| o.name.as_str())),
            round_outcomes::owner_email.eq($input.owner.as_ref().map(|o| o.email.as_str())),
            round_outcomes::owner_email_key.eq($input
                .owner
                .as_ref()
                .map(|o| o.email.as_str().to_lowercase())),
            round_outcomes::owner_speaker_id.eq($input
                .owner
                .as_ref()
                .and_then(|o| o.speaker_id.map(|s| s.0))),
            round_outcomes::due_date.eq($input.due_date.map(LocalDate::naive)),
            round_outcomes::status.eq(status_of($input)),
        )
    };
}

fn status_of(input: &OutcomeInput) -> Option<ActionStatus> {
    (input.kind == OutcomeKind::ActionItem).then(|| input.status.unwrap_or_default())
}

/// The initiative the outcome is about: as given, or the PDSA cycle's; 422 when the cycle is
/// another initiative's.
fn initiative_of(conn: &mut DbConnection, input: &OutcomeInput) -> Result<Option<i32>, ApiError> {
    let given = input.initiative_id.map(|i| i.0);
    let Some(cycle) = input.pdsa_cycle_id else {
        return Ok(given);
    };
    match (pdsa::initiative_of(conn, cycle.0)?, given) {
        // No such cycle: the foreign key refuses it, and the 422 names it.
        (None, _) => Err(ApiError::DanglingReference),
        (Some(owner), Some(given)) if owner != given => Err(ApiError::validation(
            "pdsa_cycle_id",
            format!(
                "PDSA cycle {} is a cycle of initiative {owner}, not {given}",
                cycle.0
            ),
        )),
        (Some(owner), _) => Ok(Some(owner)),
    }
}

/// When a done action item was done: as given, as it was, or now.
fn completed_at(input: &OutcomeInput, current: Option<&Outcome>) -> Option<NaiveDateTime> {
    if status_of(input) != Some(ActionStatus::Done) {
        return None;
    }
    input
        .completed_at
        .or_else(|| current.and_then(|c| c.completed_at))
        .map(Timestamp::naive)
        .or_else(|| Some(db::now()))
}

/// Outcomes: what [`resource`] needs to serve them.
pub struct Outcomes;

impl Resource for Outcomes {
    const NAME: &'static str = "outcome";
    const COLLECTION: &'static str = "outcomes";
    const SCHEDULE: bool = false;
    const WRITE: Allowed = Allowed::Role(Role::Organizer);
    type Record = Outcome;
    type Input = Under<OutcomeInput>;
    type Change = OutcomeInput;
    type Filter = OutcomeQuery;

    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Outcome>, ApiError> {
        let row = crate::on_backend!(conn, |c| round_outcomes::table
            .find(id)
            .select(OutcomeRow::as_select())
            .first::<OutcomeRow>(c)
            .optional())?;
        Ok(outcomes_of(conn, row.into_iter().collect())?.pop())
    }

    /// A round's outcomes in the order recorded; action items by due date.
    fn list(
        conn: &mut DbConnection,
        query: &OutcomeQuery,
        paging: Paging,
    ) -> Result<Listing<Outcome>, ApiError> {
        let today = today(conn)?;
        let total = filtered(query, today).count().get_result::<i64>(conn)?;
        let ordered = match query {
            OutcomeQuery::Round(_) => {
                filtered(query, today).order((round_outcomes::position, round_outcomes::id))
            }
            _ => filtered(query, today).order((round_outcomes::due_date, round_outcomes::id)),
        };
        let rows = ordered
            .limit(paging.limit())
            .offset(paging.offset())
            .select(OutcomeRow::as_select())
            .load::<OutcomeRow>(conn)?;
        Ok(paging.page(outcomes_of(conn, rows)?, total).into())
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Outcome, ApiError> {
        let round = new.input.parent;
        let input = &new.input.input;
        let initiative = initiative_of(conn, input)?;
        if let Some(initiative) = initiative {
            if !initiatives::touch(conn, initiative)? {
                return Err(ApiError::DanglingReference);
            }
        }
        let last = round_outcomes::table
            .filter(round_outcomes::round_id.eq(round))
            .select(diesel::dsl::max(round_outcomes::position))
            .first::<Option<i32>>(conn)?;
        let values = (
            written_columns!(input, initiative),
            round_outcomes::round_id.eq(round),
            round_outcomes::position.eq(last.unwrap_or(0) + 1),
            round_outcomes::completed_at.eq(completed_at(input, None)),
            crate::created_columns!(round_outcomes, new.actor),
        );
        let row = crate::insert_row!(conn, round_outcomes, OutcomeRow, values)?;
        Ok(outcome_of(row, today(conn)?))
    }

    fn change_of(record: &Outcome) -> OutcomeInput {
        OutcomeInput {
            kind: record.kind,
            text: record.text.clone(),
            rationale: record.rationale.clone(),
            initiative_id: record.initiative_id.map(|i| InitiativeRef(i.0)),
            pdsa_cycle_id: record.pdsa_cycle_id.map(|c| PdsaCycleRef(c.0)),
            corrects_id: record.corrects_id.map(|c| OutcomeRef(c.0)),
            owner: record.owner.as_ref().map(|o| Owner {
                name: o.name.clone(),
                email: o.email.clone().unwrap_or_else(|| Email::stored("")),
                speaker_id: o.speaker_id.map(|s| SpeakerRef(s.0)),
            }),
            due_date: record.due_date,
            status: record.status,
            // Kept by the write while the item stays done (see `completed_at`): a patch that
            // reopens or cancels it must not carry it over.
            completed_at: None,
        }
    }

    /// The kind never changes, and a decision is kept as written (409).
    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Outcome>, ApiError> {
        let (current, input) = (&update.current, &update.change);
        let id = current.id.0;
        if input.kind != current.kind {
            return Err(ApiError::Conflict(format!(
                "outcome {id} is a {} and stays one: record a new outcome (with corrects_id: \
                 {id}) instead",
                current.kind
            )));
        }
        let rewritten = input.text.as_str() != current.text.as_str()
            || Text::non_blank(input.rationale.as_ref())
                != Text::non_blank(current.rationale.as_ref())
            || input.corrects_id.map(|c| c.0) != current.corrects_id.map(|c| c.0);
        if current.kind == OutcomeKind::Decision && rewritten {
            return Err(ApiError::Conflict(format!(
                "decision {id} is kept as written: record the correction as a new outcome of the \
                 round with corrects_id: {id} (the audit trail keeps both)"
            )));
        }
        let initiative = initiative_of(conn, input)?;
        for touched in [current.initiative_id.map(|i| i.0), initiative]
            .into_iter()
            .flatten()
        {
            initiatives::touch(conn, touched)?;
        }
        let changes = (
            written_columns!(input, initiative),
            round_outcomes::completed_at.eq(completed_at(input, Some(current))),
            crate::updated_columns!(round_outcomes, update.actor),
        );
        let target = round_outcomes::table
            .find(id)
            .filter(round_outcomes::version.eq(current.audit.version));
        let Some(row) = crate::on_backend!(conn, |c| diesel::update(target)
            .set(changes.clone())
            .returning(OutcomeRow::as_returning())
            .get_result::<OutcomeRow>(c)
            .optional())?
        else {
            return Ok(None);
        };
        Ok(Some(outcome_of(row, today(conn)?)))
    }

    /// A decision is not deleted; nor is an outcome another corrects.
    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        let current = found(Outcomes::find(conn, id)?, Outcomes::NAME, id)?;
        if current.kind == OutcomeKind::Decision {
            return Err(ApiError::Conflict(format!(
                "decision {id} is kept as written and is not deleted: record a correction as a \
                 new outcome with corrects_id: {id}"
            )));
        }
        if expected.is_some_and(|v| v != current.version()) {
            return Ok(false);
        }
        let corrections = crate::count_rows!(conn, round_outcomes, corrects_id, Some(id))?;
        db::refuse_while_used(
            &format!("outcome {id} is corrected by"),
            &[(corrections, "outcome")],
            "it stays with its corrections",
        )?;
        if let Some(initiative) = current.initiative_id {
            initiatives::touch(conn, initiative.0)?;
        }
        let deleted = diesel::delete(
            round_outcomes::table
                .find(id)
                .filter(round_outcomes::version.eq(current.audit.version)),
        )
        .execute(conn)?;
        Ok(deleted == 1)
    }
}

/// Which of the ids name an outcome.
pub const EXISTING: ExistingIds = crate::existing_ids!(round_outcomes);

/// Every outcome about an initiative, oldest first (for the report).
pub fn of_initiative(conn: &mut DbConnection, initiative: i32) -> Result<Vec<Outcome>, ApiError> {
    let rows = round_outcomes::table
        .filter(round_outcomes::initiative_id.eq(initiative))
        .order((round_outcomes::created_at, round_outcomes::id))
        .select(OutcomeRow::as_select())
        .load::<OutcomeRow>(conn)?;
    outcomes_of(conn, rows)
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Outcomes, one = "outcome", many = "outcomes", tag = "outcomes",
    record = Outcome, input = OutcomeInput, change = OutcomeInput,
    read = [(), ("bearer" = [])], write = [("bearer" = ["organizer", "admin"])];
    get get_outcome "/outcomes/{id}" "Get a round outcome";
    replace replace_outcome "/outcomes/{id}" "Replace a round outcome (a decision is kept as written: 409)";
    patch patch_outcome "/outcomes/{id}" "Change some fields of a round outcome (JSON merge patch): an action item's status, owner or due date";
    delete delete_outcome "/outcomes/{id}" "Delete a round outcome that is not a decision";
}

/// 404 unless round `id` exists.
fn round_must_exist(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    match rounds::exists(conn, id)? {
        true => Ok(()),
        false => Err(ApiError::not_found(Rounds::NAME, id)),
    }
}

/// List what a round decided, in the order recorded
#[utoipa::path(
    tag = "outcomes",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The round's id"), Paging),
    responses((status = 200, description = "A page of outcomes", body = Page<Outcome>), ReadErrors)
)]
#[get("/rounds/{id}/outcomes")]
pub async fn list_round_outcomes(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Outcomes>(Access::Read)?;
    let round = id.into_inner();
    let query = query.values()?;
    resource::list_filtered::<Outcomes>(
        ctx,
        granted,
        &query,
        OutcomeQuery::Round(round),
        move |conn| round_must_exist(conn, round),
    )
    .await
}

/// Record an outcome of a round
///
/// Appended after the round's outcomes. An action item takes an owner and a due date, and
/// sends `action_item.assigned`.
#[utoipa::path(
    tag = "outcomes",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "The round's id")),
    request_body = OutcomeInput,
    responses(
        (status = 201, description = "Recorded", body = Outcome,
            headers(("Location" = crate::platform::resource::HeaderText,
                description = "URL of the new outcome"))),
        WriteErrors
    )
)]
#[post("/rounds/{id}/outcomes")]
pub async fn create_outcome(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Outcomes>(Access::Create)?;
    let round = id.into_inner();
    let body = body.value()?;
    let request = serde_json::to_vec(&body)?;
    let checked = ctx
        .validators
        .body::<OutcomeInput>(body)
        .map(|input| Under {
            parent: round,
            input,
        });
    resource::create_with::<Outcomes>(ctx, granted, checked, &request, move |conn| {
        round_must_exist(conn, round)
    })
    .await
}

/// List action items across rounds, by due date
#[utoipa::path(
    tag = "outcomes",
    security(("bearer" = ["organizer", "admin"])),
    params(ActionItemFilter, Paging),
    responses((status = 200, description = "A page of action items", body = Page<Outcome>), ReadErrors)
)]
#[get("/action-items")]
pub async fn list_action_items(ctx: Ctx, query: Query) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let query = query.values()?;
    let filter: ActionItemFilter = query.get()?;
    resource::list_filtered::<Outcomes>(
        ctx,
        granted,
        &query,
        OutcomeQuery::ActionItems(filter),
        |_| Ok(()),
    )
    .await
}

/// List the action items carried over to a round
///
/// The action items of earlier rounds (rounds that started before this one) still `open` or
/// `in_progress`: what the round's agenda picks up. By due date.
#[utoipa::path(
    tag = "outcomes",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The round's id"), Paging),
    responses((status = 200, description = "A page of open action items", body = Page<Outcome>), ReadErrors)
)]
#[get("/rounds/{id}/carried-over")]
pub async fn carried_over(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Outcomes>(Access::Read)?;
    let round = id.into_inner();
    let query = query.values()?;
    let paging: Paging = query.get()?;
    let caller = ctx.caller.clone();
    ctx.read(granted, false, true, Some(&query), move |conn| {
        let starts = crate::on_backend!(conn, |c| rounds_table::table
            .find(round)
            .select(rounds_table::starts_at)
            .first::<NaiveDateTime>(c)
            .optional())?
        .ok_or_else(|| ApiError::not_found(Rounds::NAME, round))?;
        let query = OutcomeQuery::CarriedOver { before: starts };
        let listing = Outcomes::list(conn, &query, paging)?;
        Rendered::json(&listing.page.visible_to(&caller))
    })
    .await
}

/// Filters of the action-item feed.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionItemFeedFilter {
    /// One owner's items (their e-mail address, ignoring case): what an owner subscribes to.
    pub owner_email: Option<Email>,
    pub status: Option<ActionStatus>,
    pub initiative_id: Option<Id>,
}

/// An action item's status as a to-do's (RFC 5545 §3.8.1.11).
fn todo_status(status: Option<ActionStatus>) -> &'static str {
    match status.unwrap_or_default() {
        ActionStatus::Open => "NEEDS-ACTION",
        ActionStatus::InProgress => "IN-PROCESS",
        ActionStatus::Done => "COMPLETED",
        ActionStatus::Cancelled => "CANCELLED",
    }
}

/// The round an action item was decided at, for its description.
struct RoundNote {
    title: Option<String>,
    starts_at: NaiveDateTime,
}

/// The to-do of one action item. The owner is named but their e-mail address is never written:
/// the feed may be read without a token, and its subscriber knows their own address.
fn write_todo(
    out: &mut String,
    item: &Outcome,
    round: Option<&RoundNote>,
    settings: &CalendarSettings,
) {
    use calendar::{escape_text, line, utc_stamp};
    out.push_str("BEGIN:VTODO\r\n");
    line(
        out,
        "UID",
        &format!("action-item-{}@{}", item.id.0, settings.domain),
    );
    line(out, "DTSTAMP", &utc_stamp(item.audit.updated_at.0));
    line(out, "CREATED", &utc_stamp(item.audit.created_at.0));
    line(out, "LAST-MODIFIED", &utc_stamp(item.audit.updated_at.0));
    // Each write bumps the version once: a strictly growing sequence of revisions.
    line(
        out,
        "SEQUENCE",
        &(item.audit.version - 1).max(0).to_string(),
    );
    line(out, "SUMMARY", &escape_text(item.text.as_str()));
    let mut description = Vec::new();
    if let Some(owner) = &item.owner {
        description.push(format!("Owner: {}", owner.name));
    }
    if let Some(round) = round {
        let title = round.title.as_deref().unwrap_or("LHS Rounds");
        description.push(format!(
            "Decided at: {title} ({})",
            round.starts_at.format("%Y-%m-%d")
        ));
    }
    if let Some(rationale) = Text::non_blank(item.rationale.as_ref()) {
        description.push(rationale.to_owned());
    }
    if !description.is_empty() {
        line(out, "DESCRIPTION", &escape_text(&description.join("\n")));
    }
    if let Some(due) = item.due_date {
        line(
            out,
            "DUE;VALUE=DATE",
            &due.naive().format("%Y%m%d").to_string(),
        );
    }
    line(out, "STATUS", todo_status(item.status));
    if item.status == Some(ActionStatus::Done) {
        line(out, "PERCENT-COMPLETE", "100");
        if let Some(done) = item.completed_at {
            line(out, "COMPLETED", &utc_stamp(done.0));
        }
    }
    if let Some(base) = &settings.public_url {
        line(
            out,
            "URL;VALUE=URI",
            &format!(
                "{base}{}/outcomes/{}",
                crate::platform::resource::API_PREFIX,
                item.id.0
            ),
        );
    }
    out.push_str("END:VTODO\r\n");
}

/// The feed of `items`: a calendar of to-dos only (due dates are dates, so no time zone).
fn render_feed(
    items: &[(Outcome, Option<RoundNote>)],
    owner: Option<&str>,
    settings: &CalendarSettings,
) -> String {
    use calendar::line;
    let name = match owner {
        Some(_) => "LHS Rounds action items (one owner)",
        None => "LHS Rounds action items",
    };
    let mut out = calendar::begin(512 + items.len() * 600, name);
    line(
        &mut out,
        "REFRESH-INTERVAL;VALUE=DURATION",
        calendar::REFRESH,
    );
    line(&mut out, "X-PUBLISHED-TTL", calendar::REFRESH);
    for (item, round) in items {
        write_todo(&mut out, item, round.as_ref(), settings);
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// Subscribe to action items as to-dos (iCalendar)
///
/// An RFC 5545 feed of `VTODO`s, one per action item, with a stable `UID`
/// (`action-item-<id>@<domain>`), `DUE` (a date), `STATUS` (`NEEDS-ACTION`, `IN-PROCESS`,
/// `COMPLETED`, `CANCELLED`) and `SEQUENCE`, so that an owner sees their items in Outlook or
/// another calendar. Done and cancelled items stay, so calendars mark them. Read as the
/// schedule is (without a token when it is public), like the round feeds; owners' e-mail
/// addresses are never written in it.
#[utoipa::path(
    tag = "calendar",
    security((), ("bearer" = [])),
    params(ActionItemFeedFilter),
    responses(
        (status = 200, description = "An iCalendar (RFC 5545) feed: one VTODO per action item",
            content_type = "text/calendar", body = crate::schedule::calendar::CalendarText),
        ReadErrors
    )
)]
#[get("/action-items.ics")]
pub async fn action_items_feed(
    ctx: Ctx,
    query: Query,
    settings: web::Data<CalendarSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Outcomes>(Access::Read)?;
    let query = query.values()?;
    let asked: ActionItemFeedFilter = query.get()?;
    let settings = settings.get_ref().clone();
    ctx.read(granted, false, true, Some(&query), move |conn| {
        let filter = ActionItemFilter {
            status: asked.status,
            owner_email: asked.owner_email.clone(),
            initiative_id: asked.initiative_id,
            due_before: None,
            overdue: None,
        };
        let today = today(conn)?;
        let rows = action_items(&filter, today)
            .order((round_outcomes::due_date, round_outcomes::id))
            .limit(FEED_MAX)
            .select(OutcomeRow::as_select())
            .load::<OutcomeRow>(conn)?;
        let round_ids: Vec<i32> = rows.iter().map(|r| r.round_id).collect();
        let notes: Vec<(i32, Option<String>, NaiveDateTime)> = rounds_table::table
            .filter(rounds_table::id.eq_any(&round_ids))
            .select((
                rounds_table::id,
                rounds_table::title,
                rounds_table::starts_at,
            ))
            .load(conn)?;
        let items: Vec<(Outcome, Option<RoundNote>)> = rows
            .into_iter()
            .map(|row| {
                let note = notes.iter().find(|(id, _, _)| *id == row.round_id).map(
                    |(_, title, starts_at)| RoundNote {
                        title: title.clone(),
                        starts_at: *starts_at,
                    },
                );
                (outcome_of(row, today), note)
            })
            .collect();
        let owner = asked.owner_email.as_ref().map(Email::as_str);
        Ok(Rendered::text(
            render_feed(&items, owner, &settings),
            calendar::CONTENT_TYPE,
        ))
    })
    .await
}

/// An outcome as `caller` sees it (for the report).
pub fn shown(outcome: Outcome, caller: &Caller) -> Outcome {
    outcome.visible_to(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_item_statuses_map_to_to_do_statuses() {
        assert_eq!(todo_status(Some(ActionStatus::Open)), "NEEDS-ACTION");
        assert_eq!(todo_status(Some(ActionStatus::InProgress)), "IN-PROCESS");
        assert_eq!(todo_status(Some(ActionStatus::Done)), "COMPLETED");
        assert_eq!(todo_status(Some(ActionStatus::Cancelled)), "CANCELLED");
        assert!(ActionStatus::InProgress.is_open() && !ActionStatus::Done.is_open());
    }
}
