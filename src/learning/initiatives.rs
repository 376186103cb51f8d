//! Initiatives: the improvement work the rounds design, implement and evaluate, each with its
//! aim (a number by a date), its stage in the learning-health-system cycle, its team and its
//! departments; their links to the rounds that discussed them (`PUT /initiatives/{id}/rounds/
//! {round_id}`, `GET /rounds/{id}/initiatives`); and what is derived from the rest of the loop:
//! when anything last happened, how many action items are open, and whether the loop is left
//! open (`unclosed_loop`).
//!
//! The derived fields change when a PDSA cycle, a measure, a data point or an outcome of the
//! initiative is written, so those writes bump the initiative's version ([`touch`]), and its
//! `ETag` changes with its answer. `unclosed_loop` also changes by the passing of time alone:
//! it is part of the version the `ETag` names (see [`Keyed`] below), so a copy kept from before
//! the loop went stale is never declared current.

use std::collections::HashMap;

use actix_web::{delete, get, put, web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::platform::auth::{Caller, Role, Visible};
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Email, Id, LocalDate, SpeakerRef, Text, Timestamp};
use crate::platform::http::{JsonBody, TagList};
use crate::platform::pagination::{Count, Page, Paging};
use crate::platform::resource::{
    self, found, Access, Allowed, Audit, Ctx, Keyed, Listing, New, Resource, Update,
};
use crate::platform::schema::{
    data_points, initiative_departments, initiative_rounds, initiative_team, initiatives, measures,
    pdsa_cycles, round_outcomes, series,
};
use crate::platform::validate::{Doc, ExistingIds, Input, Query};
use crate::schedule::rounds::{self, DepartmentIds, InitiativeTitle, Rounds};
use crate::schedule::series::{LoopAlertDays, DEFAULT_LOOP_ALERT_DAYS};

pub type ProblemStatement = Text<5000>;
pub type AimStatement = Text<2000>;
/// Why and how an initiative ended: not blank, since closing takes one.
pub type ClosingNote = crate::platform::fields::Name<5000>;
pub type LinkNote = Text<2000>;
/// A person's name as written: a team member, an action item's owner.
pub type PersonName = crate::platform::fields::Name<200>;
/// The most people on one team.
pub const TEAM_MAX: usize = 30;
/// The most rounds one initiative is linked to.
pub const ROUND_LINKS_MAX: usize = 500;

crate::number_type!(
    /// The number an aim reaches by its date, in the unit of the measure it is about.
    pub AimTarget, min = -1e12, max = 1e12
);
crate::number_type!(
    /// IHI's progress score, set by people: 0.5 (intent to participate) to 5.0 (outstanding
    /// sustainable results), in steps of 0.5.
    pub ProgressScore, min = 0.5, max = 5.0, multiple_of = 0.5
);

crate::text_enum! {
    /// Where an initiative is in the learning cycle; its `lhs_phase` follows from it.
    #[derive(Default)]
    pub enum Stage {
        /// A problem of interest named; the decision to study it pending.
        #[default]
        Problem = "problem",
        /// Internal data and external evidence assembled.
        Evidence = "evidence",
        /// Aim, measures and change ideas.
        Design = "design",
        /// PDSA cycles running.
        Testing = "testing",
        /// Adopted changes being implemented and spread.
        Implementation = "implementation",
        /// Judging the effect on the measures.
        Evaluation = "evaluation",
        /// Monitoring that the gains hold.
        Sustain = "sustain",
    }
}

crate::text_enum! {
    /// The phase of AHRQ's learning-health-system cycle (Borsky et al. 2019, the figure of the
    /// series' page): knowledge → practice → data. Read-only: it follows from `stage`.
    pub enum LhsPhase { Knowledge = "knowledge", Practice = "practice", Data = "data" }
}

impl Stage {
    pub fn lhs_phase(self) -> LhsPhase {
        match self {
            Stage::Problem | Stage::Evidence | Stage::Design => LhsPhase::Knowledge,
            Stage::Testing | Stage::Implementation => LhsPhase::Practice,
            Stage::Evaluation | Stage::Sustain => LhsPhase::Data,
        }
    }

    /// The stages of a phase.
    pub fn of_phase(phase: LhsPhase) -> Vec<Stage> {
        Stage::ALL
            .iter()
            .copied()
            .filter(|s| s.lhs_phase() == phase)
            .collect()
    }
}

crate::text_enum! {
    /// Where the work stands, apart from its stage. Closing (`completed`, `abandoned`) takes a
    /// closing note; `active` takes an aim (`aim_target` by `aim_target_date`).
    #[derive(Default)]
    pub enum InitiativeStatus {
        #[default]
        Proposed = "proposed",
        Active = "active",
        OnHold = "on_hold",
        Completed = "completed",
        Abandoned = "abandoned",
    }
}

impl InitiativeStatus {
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            InitiativeStatus::Completed | InitiativeStatus::Abandoned
        )
    }
}

crate::text_enum! {
    /// Whether the work was judged quality improvement or research needing an IRB protocol.
    #[derive(Default)]
    pub enum Determination {
        #[default]
        Undetermined = "undetermined",
        QualityImprovement = "quality_improvement",
        ResearchIrb = "research_irb",
    }
}

crate::text_enum! {
    /// What a person does on the team.
    pub enum TeamRole {
        Sponsor = "sponsor",
        Lead = "lead",
        Facilitator = "facilitator",
        Member = "member",
        Analyst = "analyst",
        Informaticist = "informaticist",
        PatientPartner = "patient_partner",
    }
}

crate::text_enum! {
    /// Why a round discussed an initiative.
    pub enum Purpose {
        Introduce = "introduce",
        Design = "design",
        Review = "review",
        Results = "results",
    }
}

/// A member of the team, as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    pub name: PersonName,
    /// Shown to organizers and admins only.
    pub email: Email,
    /// The speaker this person is, if they are one.
    pub speaker_id: Option<SpeakerRef>,
    pub role: TeamRole,
}

/// A member of the team, as answered: the e-mail address is shown to organizers only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamMemberView {
    pub name: PersonName,
    /// Organizers and admins only; `null` for everyone else.
    pub email: Option<Email>,
    pub speaker_id: Option<Id>,
    pub role: TeamRole,
}

crate::list_type!(
    /// The team, in order.
    pub Team(TeamMember),
    max = TEAM_MAX
);
crate::list_type!(
    /// The team, in order.
    pub TeamView(TeamMemberView),
    max = TEAM_MAX
);

/// A round that discussed the initiative, and what for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundLink {
    pub round_id: Id,
    pub purpose: Purpose,
    pub note: Option<LinkNote>,
    /// When the link was made.
    pub linked_at: Timestamp,
}

crate::list_type!(
    /// The rounds that discussed the initiative, by round id.
    pub RoundLinks(RoundLink),
    max = ROUND_LINKS_MAX
);

/// An initiative, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "title": "Using patient comments to improve care",
    "problem_statement": "Free-text comments from patient experience surveys are read by no one who can act on them.",
    "aim_statement": "Raise the share of comments answered by the unit within 14 days to 80% by June 2020.",
    "aim_target": 80, "aim_target_date": "2020-06-30",
    "stage": "testing", "lhs_phase": "practice", "status": "active", "closing_note": null,
    "progress_score": 3.0, "determination": "quality_improvement",
    "team": [{"name": "Tara Lagu", "email": "tara.lagu@example.org", "speaker_id": 7, "role": "lead"}],
    "department_ids": [1], "rounds": [{"round_id": 3, "purpose": "introduce", "note": null,
        "linked_at": "2019-04-25T17:00:00Z"}],
    "last_activity_at": "2019-06-20T17:00:00Z", "open_action_items": 2, "unclosed_loop": false,
    "created_at": "2019-04-25T17:00:00Z", "updated_at": "2019-06-20T17:00:00Z"
}))]
pub struct Initiative {
    pub id: Id,
    pub title: InitiativeTitle,
    pub problem_statement: Option<ProblemStatement>,
    pub aim_statement: Option<AimStatement>,
    pub aim_target: Option<AimTarget>,
    pub aim_target_date: Option<LocalDate>,
    pub stage: Stage,
    /// Follows from `stage`: problem, evidence and design are knowledge; testing and
    /// implementation practice; evaluation and sustain data.
    pub lhs_phase: LhsPhase,
    pub status: InitiativeStatus,
    pub closing_note: Option<ClosingNote>,
    pub progress_score: Option<ProgressScore>,
    pub determination: Determination,
    pub team: TeamView,
    pub department_ids: DepartmentIds,
    /// The rounds that discussed it.
    pub rounds: RoundLinks,
    /// The latest change to it or to its PDSA cycles, measures, data points, round links or
    /// outcomes.
    pub last_activity_at: Timestamp,
    /// Its action items still `open` or `in_progress`.
    pub open_action_items: Count,
    /// Active, with no PDSA decision, no outcome and no data point in the series'
    /// `loop_alert_days` (counted from its creation when it has none yet): the loop of
    /// knowledge, practice and data is not being closed.
    pub unclosed_loop: bool,
    #[serde(flatten)]
    pub audit: Audit,
}

impl Keyed for Initiative {
    fn id(&self) -> i32 {
        self.id.0
    }

    /// The row's version and `unclosed_loop`: time alone can turn the flag, and a strong
    /// `ETag` must change with the answer. Writes check the row's own version (`audit.version`).
    fn version(&self) -> i64 {
        self.audit.version * 2 + i64::from(self.unclosed_loop)
    }
}

impl Visible for Initiative {
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            for member in &mut self.team.0 {
                member.email = None;
            }
        }
        self.audit = self.audit.visible_to(caller);
        self
    }
}

/// An initiative, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Using patient comments to improve care",
    "problem_statement": "Free-text comments from patient experience surveys are read by no one who can act on them.",
    "aim_statement": "Raise the share of comments answered by the unit within 14 days to 80% by June 2020.",
    "aim_target": 80, "aim_target_date": "2020-06-30", "stage": "testing", "status": "active",
    "determination": "quality_improvement",
    "team": [{"name": "Tara Lagu", "email": "tara.lagu@example.org", "role": "lead"}],
    "department_ids": [1]
}))]
pub struct InitiativeInput {
    pub title: InitiativeTitle,
    pub problem_statement: Option<ProblemStatement>,
    /// What will be accomplished, for whom, by when.
    pub aim_statement: Option<AimStatement>,
    /// The number the aim reaches; required while `active`.
    pub aim_target: Option<AimTarget>,
    /// The date the aim reaches it by; required while `active`.
    pub aim_target_date: Option<LocalDate>,
    /// Defaults to `problem`.
    #[serde(default)]
    pub stage: Stage,
    /// Defaults to `proposed`.
    #[serde(default)]
    pub status: InitiativeStatus,
    /// Why and how it ended; required to be `completed` or `abandoned`.
    pub closing_note: Option<ClosingNote>,
    pub progress_score: Option<ProgressScore>,
    /// Defaults to `undetermined`.
    #[serde(default)]
    pub determination: Determination,
    #[serde(default)]
    pub team: Team,
    #[serde(default)]
    pub department_ids: DepartmentIds,
}

impl Input for InitiativeInput {
    /// An active initiative has an aim (a number by a date); a closed one a closing note.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match doc.get::<InitiativeStatus>("status") {
            Some(InitiativeStatus::Active) => {
                for field in ["aim_target", "aim_target_date"] {
                    if doc.get::<serde_json::Value>(field).is_none() {
                        errors.push(FieldError::new(
                            field,
                            "is required while the initiative is active: an aim is a number by a \
                             date",
                        ));
                    }
                }
            }
            Some(status) if status.is_closed() => {
                let note = doc.get::<ClosingNote>("closing_note");
                if note.is_none() {
                    errors.push(FieldError::new(
                        "closing_note",
                        format!("is required to close an initiative (status {status})"),
                    ));
                }
            }
            _ => {}
        }
        errors
    }
}

/// Filters of the initiative list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InitiativeFilter {
    pub status: Option<InitiativeStatus>,
    pub stage: Option<Stage>,
    pub lhs_phase: Option<LhsPhase>,
    /// Initiatives this department takes part in.
    pub department_id: Option<Id>,
}

/// The list's filters, and the round of `GET /rounds/{id}/initiatives`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InitiativeQuery {
    #[serde(flatten)]
    pub filter: InitiativeFilter,
    #[serde(skip)]
    pub round_id: Option<i32>,
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = initiatives)]
struct InitiativeRow {
    id: i32,
    title: String,
    problem_statement: Option<String>,
    aim_statement: Option<String>,
    aim_target: Option<f64>,
    aim_target_date: Option<NaiveDate>,
    stage: Stage,
    status: InitiativeStatus,
    closing_note: Option<String>,
    progress_score: Option<f64>,
    determination: Determination,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = initiative_team)]
struct TeamRow {
    initiative_id: i32,
    name: String,
    email: String,
    speaker_id: Option<i32>,
    role: TeamRole,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = initiative_rounds)]
struct LinkRow {
    initiative_id: i32,
    round_id: i32,
    purpose: Purpose,
    note: Option<String>,
    created_at: NaiveDateTime,
}

// ---- persistence -------------------------------------------------------------------------

/// What the derived fields are made of, per initiative.
#[derive(Debug, Default, Clone, Copy)]
struct Activity {
    /// The latest change to anything of the loop.
    latest: Option<NaiveDateTime>,
    /// The latest PDSA decision, outcome or data point: what closes a loop.
    loop_closed: Option<NaiveDateTime>,
    open_action_items: i64,
}

fn later(a: Option<NaiveDateTime>, b: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The activity of the initiatives `ids`, each kind read in one statement for all of them.
fn activity_of(conn: &mut DbConnection, ids: &[i32]) -> Result<HashMap<i32, Activity>, ApiError> {
    use diesel::dsl::{count_star, max};
    let mut out: HashMap<i32, Activity> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let cycles = pdsa_cycles::table
        .filter(pdsa_cycles::initiative_id.eq_any(ids))
        .group_by(pdsa_cycles::initiative_id)
        .select((
            pdsa_cycles::initiative_id,
            max(pdsa_cycles::updated_at),
            max(pdsa_cycles::decided_at),
        ))
        .load::<(i32, Option<NaiveDateTime>, Option<NaiveDateTime>)>(conn)?;
    for (id, updated, decided) in cycles {
        let entry = out.entry(id).or_default();
        entry.latest = later(entry.latest, updated);
        entry.loop_closed = later(entry.loop_closed, decided);
    }
    let measured = measures::table
        .filter(measures::initiative_id.eq_any(ids))
        .group_by(measures::initiative_id)
        .select((measures::initiative_id, max(measures::updated_at)))
        .load::<(i32, Option<NaiveDateTime>)>(conn)?;
    for (id, updated) in measured {
        let entry = out.entry(id).or_default();
        entry.latest = later(entry.latest, updated);
    }
    let points = data_points::table
        .inner_join(measures::table)
        .filter(measures::initiative_id.eq_any(ids))
        .group_by(measures::initiative_id)
        .select((measures::initiative_id, max(data_points::updated_at)))
        .load::<(i32, Option<NaiveDateTime>)>(conn)?;
    for (id, updated) in points {
        let entry = out.entry(id).or_default();
        entry.latest = later(entry.latest, updated);
        entry.loop_closed = later(entry.loop_closed, updated);
    }
    let outcomes = round_outcomes::table
        .filter(round_outcomes::initiative_id.eq_any(ids))
        .group_by(round_outcomes::initiative_id)
        .select((
            round_outcomes::initiative_id,
            max(round_outcomes::updated_at),
            max(round_outcomes::created_at),
        ))
        .load::<(Option<i32>, Option<NaiveDateTime>, Option<NaiveDateTime>)>(conn)?;
    for (id, updated, created) in outcomes {
        let Some(id) = id else { continue };
        let entry = out.entry(id).or_default();
        entry.latest = later(entry.latest, updated);
        entry.loop_closed = later(entry.loop_closed, created);
    }
    let open = round_outcomes::table
        .filter(round_outcomes::initiative_id.eq_any(ids))
        .filter(round_outcomes::kind.eq("action_item"))
        .filter(round_outcomes::status.eq_any(["open", "in_progress"]))
        .group_by(round_outcomes::initiative_id)
        .select((round_outcomes::initiative_id, count_star()))
        .load::<(Option<i32>, i64)>(conn)?;
    for (id, n) in open {
        if let Some(id) = id {
            out.entry(id).or_default().open_action_items = n;
        }
    }
    Ok(out)
}

/// The series' `loop_alert_days`.
fn loop_alert_days(conn: &mut DbConnection) -> Result<i64, ApiError> {
    let days = series::table
        .find(crate::schedule::series::ID)
        .select(series::loop_alert_days)
        .first::<i32>(conn)
        .optional()?;
    Ok(days.map_or(DEFAULT_LOOP_ALERT_DAYS, |d| {
        LoopAlertDays::clamped(i64::from(d)).get()
    }))
}

/// The initiatives of `rows`, whole: their teams, departments and round links, and what is
/// derived, each read in one statement for all of them.
fn initiatives_of(
    conn: &mut DbConnection,
    rows: Vec<InitiativeRow>,
) -> Result<Vec<Initiative>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let mut teams: HashMap<i32, Vec<TeamMemberView>> = HashMap::new();
    for member in initiative_team::table
        .filter(initiative_team::initiative_id.eq_any(&ids))
        .order((initiative_team::initiative_id, initiative_team::position))
        .select(TeamRow::as_select())
        .load::<TeamRow>(conn)?
    {
        teams
            .entry(member.initiative_id)
            .or_default()
            .push(TeamMemberView {
                name: PersonName::stored(member.name),
                email: Some(Email::stored(member.email)),
                speaker_id: member.speaker_id.map(Id),
                role: member.role,
            });
    }
    let mut departments: HashMap<i32, Vec<crate::platform::fields::DepartmentRef>> = HashMap::new();
    for (initiative, department) in initiative_departments::table
        .filter(initiative_departments::initiative_id.eq_any(&ids))
        .order((
            initiative_departments::initiative_id,
            initiative_departments::position,
        ))
        .select((
            initiative_departments::initiative_id,
            initiative_departments::department_id,
        ))
        .load::<(i32, i32)>(conn)?
    {
        departments
            .entry(initiative)
            .or_default()
            .push(crate::platform::fields::DepartmentRef(department));
    }
    let mut links: HashMap<i32, Vec<RoundLink>> = HashMap::new();
    let mut linked: HashMap<i32, NaiveDateTime> = HashMap::new();
    for link in initiative_rounds::table
        .filter(initiative_rounds::initiative_id.eq_any(&ids))
        .order((
            initiative_rounds::initiative_id,
            initiative_rounds::round_id,
        ))
        .select(LinkRow::as_select())
        .load::<LinkRow>(conn)?
    {
        let at = linked.entry(link.initiative_id).or_insert(link.created_at);
        *at = (*at).max(link.created_at);
        links
            .entry(link.initiative_id)
            .or_default()
            .push(RoundLink {
                round_id: Id(link.round_id),
                purpose: link.purpose,
                note: link.note.map(Text::stored),
                linked_at: Timestamp::from_naive(link.created_at),
            });
    }
    let activity = activity_of(conn, &ids)?;
    let alert_days = loop_alert_days(conn)?;
    let now = db::now();
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            let done = activity.get(&id).copied().unwrap_or_default();
            let latest = later(
                later(Some(row.updated_at), done.latest),
                linked.get(&id).copied(),
            )
            .unwrap_or(row.updated_at);
            let clock = later(Some(row.created_at), done.loop_closed).unwrap_or(row.created_at);
            let unclosed_loop = row.status == InitiativeStatus::Active
                && now - clock > chrono::Duration::days(alert_days);
            Initiative {
                id: Id(id),
                title: InitiativeTitle::stored(row.title.clone()),
                problem_statement: row.problem_statement.clone().map(Text::stored),
                aim_statement: row.aim_statement.clone().map(Text::stored),
                aim_target: row.aim_target.map(AimTarget::stored),
                aim_target_date: row.aim_target_date.map(LocalDate::from_naive),
                stage: row.stage,
                lhs_phase: row.stage.lhs_phase(),
                status: row.status,
                closing_note: row
                    .closing_note
                    .clone()
                    .map(crate::platform::fields::Name::stored),
                progress_score: row.progress_score.map(ProgressScore::stored),
                determination: row.determination,
                team: TeamView(teams.remove(&id).unwrap_or_default()),
                department_ids: DepartmentIds(departments.remove(&id).unwrap_or_default()),
                rounds: RoundLinks(links.remove(&id).unwrap_or_default()),
                last_activity_at: Timestamp::from_naive(latest),
                open_action_items: Count::clamped(done.open_action_items),
                unclosed_loop,
                audit: crate::audit!(row),
            }
        })
        .collect())
}

fn filtered(query: &InitiativeQuery) -> initiatives::BoxedQuery<'static, MultiBackend> {
    let filter = &query.filter;
    let mut boxed = initiatives::table.into_boxed();
    if let Some(status) = filter.status {
        boxed = boxed.filter(initiatives::status.eq(status));
    }
    if let Some(stage) = filter.stage {
        boxed = boxed.filter(initiatives::stage.eq(stage));
    }
    if let Some(phase) = filter.lhs_phase {
        boxed = boxed.filter(initiatives::stage.eq_any(Stage::of_phase(phase)));
    }
    if let Some(department) = filter.department_id {
        boxed = boxed.filter(
            initiatives::id.eq_any(
                initiative_departments::table
                    .filter(initiative_departments::department_id.eq(department.0))
                    .select(initiative_departments::initiative_id),
            ),
        );
    }
    if let Some(round) = query.round_id {
        boxed = boxed.filter(
            initiatives::id.eq_any(
                initiative_rounds::table
                    .filter(initiative_rounds::round_id.eq(round))
                    .select(initiative_rounds::initiative_id),
            ),
        );
    }
    boxed
}

/// The columns a body writes, for `INSERT` and `UPDATE` alike.
macro_rules! written_columns {
    ($input:expr) => {
        (
            initiatives::title.eq($input.title.as_str()),
            initiatives::problem_statement.eq(Text::non_blank($input.problem_statement.as_ref())),
            initiatives::aim_statement.eq(Text::non_blank($input.aim_statement.as_ref())),
            initiatives::aim_target.eq($input.aim_target.map(AimTarget::get)),
            initiatives::aim_target_date.eq($input.aim_target_date.map(LocalDate::naive)),
            initiatives::stage.eq($input.stage),
            initiatives::status.eq($input.status),
            initiatives::closing_note.eq($input.closing_note.as_ref().map(|n| n.as_str())),
            initiatives::progress_score.eq($input.progress_score.map(ProgressScore::get)),
            initiatives::determination.eq($input.determination),
        )
    };
}

/// Writes the team and the departments of initiative `id`, replacing what it had.
fn write_members(
    conn: &mut DbConnection,
    id: i32,
    input: &InitiativeInput,
    replace: bool,
) -> Result<(), ApiError> {
    if replace {
        diesel::delete(initiative_team::table.filter(initiative_team::initiative_id.eq(id)))
            .execute(conn)?;
        diesel::delete(
            initiative_departments::table.filter(initiative_departments::initiative_id.eq(id)),
        )
        .execute(conn)?;
    }
    if !input.team.0.is_empty() {
        let rows: Vec<_> = input
            .team
            .0
            .iter()
            .enumerate()
            .map(|(position, member)| {
                (
                    initiative_team::initiative_id.eq(id),
                    initiative_team::position.eq(position as i32),
                    initiative_team::name.eq(member.name.as_str()),
                    initiative_team::email.eq(member.email.as_str()),
                    initiative_team::speaker_id.eq(member.speaker_id.map(|s| s.0)),
                    initiative_team::role.eq(member.role),
                )
            })
            .collect();
        crate::on_backend!(conn, |c| diesel::insert_into(initiative_team::table)
            .values(&rows)
            .execute(c))?;
    }
    let departments = input.department_ids.links();
    crate::insert_ordered!(
        conn,
        initiative_departments,
        initiative_id = id,
        department_id,
        departments
    )?;
    Ok(())
}

fn members_differ(current: &Initiative, input: &InitiativeInput) -> bool {
    let team: Vec<_> = current
        .team
        .0
        .iter()
        .map(|m| {
            (
                m.name.as_str().to_owned(),
                m.email.as_ref().map(|e| e.as_str().to_owned()),
                m.speaker_id.map(|s| s.0),
                m.role,
            )
        })
        .collect();
    let wanted: Vec<_> = input
        .team
        .0
        .iter()
        .map(|m| {
            (
                m.name.as_str().to_owned(),
                Some(m.email.as_str().to_owned()),
                m.speaker_id.map(|s| s.0),
                m.role,
            )
        })
        .collect();
    team != wanted || current.department_ids.0 != input.department_ids.0
}

/// Bumps the version of initiative `id` (its derived fields changed with a write to its PDSA
/// cycles, measures, data points or outcomes) and takes its row lock until the write commits,
/// so that writes to one initiative's loop queue behind each other: `false` if there is none.
pub fn touch(conn: &mut DbConnection, id: i32) -> Result<bool, ApiError> {
    Ok(
        crate::on_backend!(conn, |c| diesel::update(initiatives::table.find(id))
            .set(initiatives::version.eq(initiatives::version + 1))
            .execute(c))?
            == 1,
    )
}

/// Whether an initiative exists, without loading it.
pub fn exists(conn: &mut DbConnection, id: i32) -> Result<bool, ApiError> {
    Ok(initiatives::table
        .find(id)
        .select(initiatives::id)
        .first::<i32>(conn)
        .optional()?
        .is_some())
}

/// 404 unless initiative `id` exists.
pub fn must_exist(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    match exists(conn, id)? {
        true => Ok(()),
        false => Err(ApiError::not_found(Initiatives::NAME, id)),
    }
}

/// Initiatives: what [`resource`] needs to serve them.
pub struct Initiatives;

impl Resource for Initiatives {
    const NAME: &'static str = "initiative";
    const COLLECTION: &'static str = "initiatives";
    const SCHEDULE: bool = false;
    const WRITE: Allowed = Allowed::Role(Role::Organizer);
    type Record = Initiative;
    type Input = InitiativeInput;
    type Change = InitiativeInput;
    type Filter = InitiativeQuery;

    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Initiative>, ApiError> {
        let row = crate::on_backend!(conn, |c| initiatives::table
            .find(id)
            .select(InitiativeRow::as_select())
            .first::<InitiativeRow>(c)
            .optional())?;
        Ok(initiatives_of(conn, row.into_iter().collect())?.pop())
    }

    /// Most recently changed first.
    fn list(
        conn: &mut DbConnection,
        query: &InitiativeQuery,
        paging: Paging,
    ) -> Result<Listing<Initiative>, ApiError> {
        let total = filtered(query).count().get_result::<i64>(conn)?;
        let rows = filtered(query)
            .order((initiatives::updated_at.desc(), initiatives::id.desc()))
            .limit(paging.limit())
            .offset(paging.offset())
            .select(InitiativeRow::as_select())
            .load::<InitiativeRow>(conn)?;
        Ok(paging.page(initiatives_of(conn, rows)?, total).into())
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Initiative, ApiError> {
        let values = (
            written_columns!(new.input),
            crate::created_columns!(initiatives, new.actor),
        );
        let id = diesel::insert_into(initiatives::table)
            .values(values)
            .returning(initiatives::id)
            .get_result::<i32>(conn)?;
        write_members(conn, id, &new.input, false)?;
        found(Initiatives::find(conn, id)?, Initiatives::NAME, id)
    }

    fn change_of(record: &Initiative) -> InitiativeInput {
        InitiativeInput {
            title: record.title.clone(),
            problem_statement: record.problem_statement.clone(),
            aim_statement: record.aim_statement.clone(),
            aim_target: record.aim_target,
            aim_target_date: record.aim_target_date,
            stage: record.stage,
            status: record.status,
            closing_note: record.closing_note.clone(),
            progress_score: record.progress_score,
            determination: record.determination,
            team: Team(
                record
                    .team
                    .0
                    .iter()
                    .map(|m| TeamMember {
                        name: m.name.clone(),
                        email: m.email.clone().unwrap_or_else(|| Email::stored("")),
                        speaker_id: m.speaker_id.map(|s| SpeakerRef(s.0)),
                        role: m.role,
                    })
                    .collect(),
            ),
            department_ids: record.department_ids.clone(),
        }
    }

    fn update(
        conn: &mut DbConnection,
        update: Update<Self>,
    ) -> Result<Option<Initiative>, ApiError> {
        let (current, input) = (&update.current, &update.change);
        let id = current.id.0;
        // The row's own version: the record's (its ETag) also carries `unclosed_loop`.
        let target = initiatives::table
            .find(id)
            .filter(initiatives::version.eq(current.audit.version));
        let changes = (
            written_columns!(input),
            crate::updated_columns!(initiatives, update.actor),
        );
        if diesel::update(target).set(changes).execute(conn)? == 0 {
            return Ok(None);
        }
        if members_differ(current, input) {
            write_members(conn, id, input, true)?;
        }
        Initiatives::find(conn, id)
    }

    /// Its team, departments and round links go with it; its PDSA cycles, measures and
    /// outcomes are records of their own, deleted first.
    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        let current = found(Initiatives::find(conn, id)?, Initiatives::NAME, id)?;
        if expected.is_some_and(|v| v != current.version()) {
            return Ok(false);
        }
        let cycles = crate::count_rows!(conn, pdsa_cycles, initiative_id, id)?;
        let measured = crate::count_rows!(conn, measures, initiative_id, id)?;
        let outcomes = crate::count_rows!(conn, round_outcomes, initiative_id, Some(id))?;
        db::refuse_while_used(
            &format!("initiative {id} still has"),
            &[
                (cycles, "PDSA cycle"),
                (measured, "measure"),
                (outcomes, "round outcome"),
            ],
            "delete them first (outcomes are kept: an initiative with outcomes is closed, not \
             deleted)",
        )?;
        diesel::delete(initiative_team::table.filter(initiative_team::initiative_id.eq(id)))
            .execute(conn)?;
        diesel::delete(
            initiative_departments::table.filter(initiative_departments::initiative_id.eq(id)),
        )
        .execute(conn)?;
        diesel::delete(initiative_rounds::table.filter(initiative_rounds::initiative_id.eq(id)))
            .execute(conn)?;
        let deleted = diesel::delete(
            initiatives::table
                .find(id)
                .filter(initiatives::version.eq(current.audit.version)),
        )
        .execute(conn)?;
        Ok(deleted == 1)
    }
}

/// Which of the ids name an initiative.
pub const EXISTING: ExistingIds = crate::existing_ids!(initiatives);

/// A body of a record created under another (`POST /initiatives/{id}/pdsa-cycles`), with the
/// parent's id from the path: the resource's `Input`. The body is checked as a `T` (whose
/// schema the document has), then completed with the parent ([`Checked::map`]).
///
/// [`Checked::map`]: crate::platform::validate::Checked::map
#[derive(Debug, Clone)]
pub struct Under<T> {
    pub parent: i32,
    pub input: T,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Under<T> {
    /// Never used to read a request (the parent comes from the path); there for `Input`.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|input| Under { parent: 0, input })
    }
}

impl<T: ToSchema> utoipa::PartialSchema for Under<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        T::schema()
    }
}

impl<T: ToSchema> ToSchema for Under<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        T::name()
    }
}

impl<T: Input> Input for Under<T> {}

/// `If-Match` on a write made outside the CRUD plumbing (a round link, a batch of data points):
/// 412 when it names another version than `version` (the record's [`Keyed::version`]). The
/// caller has already answered 428 when the service requires it and it is missing.
pub fn check_if_match_version(
    if_match: Option<&TagList>,
    version: i64,
    private: bool,
) -> Result<(), ApiError> {
    let Some(tags) = if_match else {
        return Ok(());
    };
    let etag = crate::platform::http::record_etag(version, private);
    if matches!(tags, TagList::Any) || tags.matches_strongly(&etag) {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed {
            current: Some(etag),
        })
    }
}

// ---- links to rounds ---------------------------------------------------------------------

/// A link of an initiative to a round, as written by PUT.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"purpose": "review", "note": "First results of PDSA cycle 2"}))]
pub struct InitiativeRoundInput {
    pub purpose: Purpose,
    pub note: Option<LinkNote>,
}

impl Input for InitiativeRoundInput {}

/// A link of an initiative to a round, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InitiativeRound {
    pub initiative_id: Id,
    pub round_id: Id,
    pub purpose: Purpose,
    pub note: Option<LinkNote>,
    pub linked_at: Timestamp,
}

/// What a link's write changes on the initiative: its `rounds`, when it was last changed
/// and by whom, and its version.
fn touched_by_link(conn: &mut DbConnection, id: i32, actor: Option<&str>) -> Result<(), ApiError> {
    diesel::update(initiatives::table.find(id))
        .set(crate::updated_columns!(initiatives, actor))
        .execute(conn)?;
    Ok(())
}

/// 404 unless round `id` exists.
fn round_must_exist(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    match rounds::exists(conn, id)? {
        true => Ok(()),
        false => Err(ApiError::not_found(Rounds::NAME, id)),
    }
}

/// Link an initiative to a round (or change why it is linked)
///
/// 201 when the link is new, 200 when it was there (its purpose and note are replaced). The
/// round then lists the initiative (`initiatives` on the round), and the change log records an
/// update of the initiative, whose `rounds` changed.
#[utoipa::path(
    tag = "initiatives",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "The initiative's id"),
        ("round_id" = Id, Path, description = "The round's id")
    ),
    request_body = InitiativeRoundInput,
    responses(
        (status = 200, description = "The link, changed", body = InitiativeRound),
        (status = 201, description = "The link, made", body = InitiativeRound),
        WriteErrors
    )
)]
#[put("/initiatives/{id}/rounds/{round_id}")]
pub async fn link_round(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Initiatives>(Access::Change)?;
    ctx.require_if_match()?;
    let (id, round_id) = path.into_inner();
    let input = ctx
        .validators
        .body::<InitiativeRoundInput>(body.value()?)
        .into_result()?;
    let if_match = ctx.conditions.if_match.clone();
    let private = ctx.caller.sees_private_fields();
    let (link, created) = ctx
        .write(granted, move |conn, author| {
            let before = found(Initiatives::find(conn, id)?, Initiatives::NAME, id)?;
            check_if_match_version(if_match.as_ref(), before.version(), private)?;
            round_must_exist(conn, round_id)?;
            let note = Text::non_blank(input.note.as_ref()).map(str::to_owned);
            let existing = initiative_rounds::table
                .find((id, round_id))
                .select(LinkRow::as_select())
                .first::<LinkRow>(conn)
                .optional()?;
            let created = existing.is_none();
            if created {
                // What one answer lists is bounded (the document says so).
                let rounds = crate::count_rows!(conn, initiative_rounds, initiative_id, id)?;
                let initiatives = crate::count_rows!(conn, initiative_rounds, round_id, round_id)?;
                if rounds >= ROUND_LINKS_MAX as i64 {
                    return Err(ApiError::Conflict(format!(
                        "initiative {id} is linked to {rounds} rounds, the most it lists; unlink \
                         one first"
                    )));
                }
                if initiatives >= crate::schedule::rounds::ROUND_INITIATIVES_MAX as i64 {
                    return Err(ApiError::Conflict(format!(
                        "round {round_id} is linked to {initiatives} initiatives, the most it \
                         lists; unlink one first"
                    )));
                }
            }
            let unchanged = existing
                .as_ref()
                .is_some_and(|l| l.purpose == input.purpose && l.note == note);
            if created {
                diesel::insert_into(initiative_rounds::table)
                    .values((
                        initiative_rounds::initiative_id.eq(id),
                        initiative_rounds::round_id.eq(round_id),
                        initiative_rounds::purpose.eq(input.purpose),
                        initiative_rounds::note.eq(note.as_deref()),
                        initiative_rounds::created_at.eq(db::now()),
                    ))
                    .execute(conn)?;
            } else if !unchanged {
                diesel::update(initiative_rounds::table.find((id, round_id)))
                    .set((
                        initiative_rounds::purpose.eq(input.purpose),
                        initiative_rounds::note.eq(note.as_deref()),
                    ))
                    .execute(conn)?;
            }
            if !unchanged {
                touched_by_link(conn, id, author.actor)?;
                let after = found(Initiatives::find(conn, id)?, Initiatives::NAME, id)?;
                author.record(conn, Initiatives::NAME, id, Some(&before), Some(&after))?;
            }
            let link = initiative_rounds::table
                .find((id, round_id))
                .select(LinkRow::as_select())
                .first::<LinkRow>(conn)?;
            Ok((
                InitiativeRound {
                    initiative_id: Id(link.initiative_id),
                    round_id: Id(link.round_id),
                    purpose: link.purpose,
                    note: link.note.map(Text::stored),
                    linked_at: Timestamp::from_naive(link.created_at),
                },
                created,
            ))
        })
        .await?;
    let mut answer = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(link))
}

/// Unlink an initiative from a round
#[utoipa::path(
    tag = "initiatives",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "The initiative's id"),
        ("round_id" = Id, Path, description = "The round's id")
    ),
    responses((status = 204, description = "Unlinked"), WriteErrors)
)]
#[delete("/initiatives/{id}/rounds/{round_id}")]
pub async fn unlink_round(ctx: Ctx, path: web::Path<(i32, i32)>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Initiatives>(Access::Change)?;
    ctx.require_if_match()?;
    let (id, round_id) = path.into_inner();
    let if_match = ctx.conditions.if_match.clone();
    let private = ctx.caller.sees_private_fields();
    ctx.write(granted, move |conn, author| {
        let before = found(Initiatives::find(conn, id)?, Initiatives::NAME, id)?;
        check_if_match_version(if_match.as_ref(), before.version(), private)?;
        let gone = diesel::delete(initiative_rounds::table.find((id, round_id))).execute(conn)?;
        if gone == 0 {
            return Err(ApiError::NotFound(format!(
                "initiative {id} is not linked to round {round_id}"
            )));
        }
        touched_by_link(conn, id, author.actor)?;
        let after = found(Initiatives::find(conn, id)?, Initiatives::NAME, id)?;
        author.record(conn, Initiatives::NAME, id, Some(&before), Some(&after))?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List the initiatives a round discussed, most recently changed first
#[utoipa::path(
    tag = "initiatives",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The round's id"), InitiativeFilter, Paging),
    responses((status = 200, description = "A page of initiatives", body = Page<Initiative>), ReadErrors)
)]
#[get("/rounds/{id}/initiatives")]
pub async fn list_round_initiatives(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Initiatives>(Access::Read)?;
    let round_id = id.into_inner();
    let query = query.values()?;
    let filter = InitiativeQuery {
        filter: query.get()?,
        round_id: Some(round_id),
    };
    resource::list_filtered::<Initiatives>(ctx, granted, &query, filter, move |conn| {
        round_must_exist(conn, round_id)
    })
    .await
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Initiatives, one = "initiative", many = "initiatives", tag = "initiatives",
    record = Initiative, input = InitiativeInput, change = InitiativeInput,
    read = [(), ("bearer" = [])], write = [("bearer" = ["organizer", "admin"])];
    list list_initiatives "/initiatives" "List initiatives, most recently changed first" [InitiativeFilter, Paging];
    create create_initiative "/initiatives" "Start an initiative";
    get get_initiative "/initiatives/{id}" "Get an initiative, with its team, rounds and derived fields";
    replace replace_initiative "/initiatives/{id}" "Replace an initiative";
    patch patch_initiative "/initiatives/{id}" "Change some fields of an initiative (JSON merge patch)";
    delete delete_initiative "/initiatives/{id}" "Delete an initiative that has no PDSA cycles, measures or outcomes";
}

/// An answer for the report and others: an initiative as `caller` sees it.
pub fn shown(conn: &mut DbConnection, id: i32, caller: &Caller) -> Result<Initiative, ApiError> {
    Ok(found(Initiatives::find(conn, id)?, Initiatives::NAME, id)?.visible_to(caller))
}
