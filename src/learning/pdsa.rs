//! PDSA cycles (Plan, Do, Study, Act): the small tests of change an initiative runs, numbered
//! within it, each with its prediction, what happened, what was learnt and the decision taken
//! (adopt, adapt or abandon).
//!
//! A cycle moves forward only, `plan` → `do` → `study` → `act` → `closed` (skipping ahead is
//! allowed, to record a test after the fact): leaving `plan` takes a prediction (without one,
//! there is nothing to study), and closing takes a decision. A step backwards is refused with
//! 409: what is learnt from a second try is a new cycle, and the first one's record stays as it
//! was. A closed cycle's decision stands for the same reason.

use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::learning::initiatives::{self, Initiatives, Under};
use crate::platform::auth::Role;
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, Int, Name, RoundRef, Text, Timestamp};
use crate::platform::http::JsonBody;
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{self, found, Access, Allowed, Audit, Ctx, New, Resource, Update};
use crate::platform::schema::pdsa_cycles;
use crate::platform::validate::{Doc, ExistingIds, Input, Query};

pub type ChangeIdea = Name<500>;
pub type Objective = Text<2000>;
pub type Prediction = Text<2000>;
pub type Notes = Text<5000>;
pub type PlanText = Text<1000>;
/// A cycle's number within its initiative: 1, 2, 3...
pub type CycleNumber = Int<1, 100000>;

crate::text_enum! {
    /// Where a cycle is. It moves forward only.
    #[derive(Default)]
    pub enum PdsaStage {
        #[default]
        Plan = "plan",
        Do = "do",
        Study = "study",
        Act = "act",
        Closed = "closed",
    }
}

crate::text_enum! {
    /// Whether the results matched the prediction.
    pub enum PredictionConfirmed { Yes = "yes", No = "no", Partly = "partly" }
}

crate::text_enum! {
    /// What the Act step decided: keep the change, change it and test again, or drop it.
    pub enum ActDecision { Adopt = "adopt", Adapt = "adapt", Abandon = "abandon" }
}

/// The plan: who does what, when and where, and how the data are collected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PdsaPlan {
    pub who: Option<PlanText>,
    pub what: Option<PlanText>,
    pub when: Option<PlanText>,
    #[serde(rename = "where")]
    #[schema(rename = "where")]
    pub where_: Option<PlanText>,
    pub data_collection: Option<PlanText>,
}

/// A PDSA cycle, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "initiative_id": 1, "number": 1,
    "change_idea": "Unit managers answer each comment within 14 days",
    "objective": "Test whether managers can answer comments within 14 days on one ward",
    "prediction": "At least 70% of comments answered within 14 days",
    "plan": {"who": "Ward 4 manager", "what": "Answer every comment of the weekly digest",
        "when": "September 2019", "where": "Ward 4", "data_collection": "Digest log"},
    "do_notes": "Carried out as planned", "carried_out_as_planned": true,
    "study_notes": "82% answered in 14 days", "prediction_confirmed": "yes",
    "act_decision": "adopt", "next_steps": "Spread to three more wards", "round_id": 5,
    "stage": "closed", "decided_at": "2019-10-24T16:00:00Z",
    "created_at": "2019-08-20T14:00:00Z", "updated_at": "2019-10-24T16:00:00Z"
}))]
pub struct PdsaCycle {
    pub id: Id,
    pub initiative_id: Id,
    /// 1, 2, 3... within the initiative, in the order the cycles were started.
    pub number: CycleNumber,
    pub change_idea: ChangeIdea,
    pub objective: Option<Objective>,
    pub prediction: Option<Prediction>,
    pub plan: Option<PdsaPlan>,
    pub do_notes: Option<Notes>,
    pub carried_out_as_planned: Option<bool>,
    pub study_notes: Option<Notes>,
    pub prediction_confirmed: Option<PredictionConfirmed>,
    pub act_decision: Option<ActDecision>,
    pub next_steps: Option<Objective>,
    /// The round where it was discussed.
    pub round_id: Option<Id>,
    pub stage: PdsaStage,
    /// When `act_decision` was made (or last changed).
    pub decided_at: Option<Timestamp>,
    #[serde(flatten)]
    pub audit: Audit,
}

crate::record!(PdsaCycle);

/// A PDSA cycle, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "change_idea": "Unit managers answer each comment within 14 days",
    "objective": "Test whether managers can answer comments within 14 days on one ward",
    "prediction": "At least 70% of comments answered within 14 days",
    "plan": {"who": "Ward 4 manager", "when": "September 2019", "where": "Ward 4"},
    "stage": "plan"
}))]
pub struct PdsaCycleInput {
    /// The change being tested.
    pub change_idea: ChangeIdea,
    /// What this test is to learn.
    pub objective: Option<Objective>,
    /// What will happen; required to leave `plan`.
    pub prediction: Option<Prediction>,
    pub plan: Option<PdsaPlan>,
    /// Do: what happened, and what was not in the plan.
    pub do_notes: Option<Notes>,
    pub carried_out_as_planned: Option<bool>,
    /// Study: the results against the prediction.
    pub study_notes: Option<Notes>,
    pub prediction_confirmed: Option<PredictionConfirmed>,
    /// Act: required to close the cycle.
    pub act_decision: Option<ActDecision>,
    pub next_steps: Option<Objective>,
    /// The round where it was discussed.
    pub round_id: Option<RoundRef>,
    /// Defaults to `plan`; moves forward only.
    #[serde(default)]
    pub stage: PdsaStage,
}

impl Input for PdsaCycleInput {
    /// Leaving `plan` takes a prediction; `closed` takes a decision.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let Some(stage) = doc.get::<PdsaStage>("stage") else {
            return errors;
        };
        let prediction = doc.get::<Prediction>("prediction");
        if stage != PdsaStage::Plan && Text::non_blank(prediction.as_ref()).is_none() {
            errors.push(FieldError::new(
                "prediction",
                format!(
                    "is required to leave plan (stage {stage}): a test states what it predicts \
                     before it is run"
                ),
            ));
        }
        if stage == PdsaStage::Closed && doc.get::<ActDecision>("act_decision").is_none() {
            errors.push(FieldError::new(
                "act_decision",
                "is required to close a cycle: adopt, adapt or abandon",
            ));
        }
        errors
    }
}

/// Filters of an initiative's cycles.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PdsaFilter {
    pub stage: Option<PdsaStage>,
}

/// The filters, with the initiative from the path.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PdsaQuery {
    #[serde(flatten)]
    pub filter: PdsaFilter,
    #[serde(skip)]
    pub initiative_id: i32,
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = pdsa_cycles)]
struct PdsaRow {
    id: i32,
    initiative_id: i32,
    number: i32,
    change_idea: String,
    objective: Option<String>,
    prediction: Option<String>,
    plan: Option<String>,
    do_notes: Option<String>,
    carried_out_as_planned: Option<bool>,
    study_notes: Option<String>,
    prediction_confirmed: Option<PredictionConfirmed>,
    act_decision: Option<ActDecision>,
    next_steps: Option<String>,
    round_id: Option<i32>,
    stage: PdsaStage,
    decided_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

impl From<PdsaRow> for PdsaCycle {
    fn from(row: PdsaRow) -> Self {
        PdsaCycle {
            id: Id(row.id),
            initiative_id: Id(row.initiative_id),
            number: CycleNumber::clamped(i64::from(row.number)),
            change_idea: Name::stored(row.change_idea),
            objective: row.objective.map(Text::stored),
            prediction: row.prediction.map(Text::stored),
            plan: row
                .plan
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            do_notes: row.do_notes.map(Text::stored),
            carried_out_as_planned: row.carried_out_as_planned,
            study_notes: row.study_notes.map(Text::stored),
            prediction_confirmed: row.prediction_confirmed,
            act_decision: row.act_decision,
            next_steps: row.next_steps.map(Text::stored),
            round_id: row.round_id.map(Id),
            stage: row.stage,
            decided_at: row.decided_at.map(Timestamp::from_naive),
            audit: crate::audit!(row),
        }
    }
}

// ---- persistence -------------------------------------------------------------------------

/// The plan as stored: `None` when it says nothing.
fn plan_text(plan: Option<&PdsaPlan>) -> Result<Option<String>, ApiError> {
    let Some(plan) = plan.filter(|p| **p != PdsaPlan::default()) else {
        return Ok(None);
    };
    Ok(Some(serde_json::to_string(plan)?))
}

/// The columns a body writes, for `INSERT` and `UPDATE` alike (`plan` and `decided_at` apart).
macro_rules! written_columns {
    ($input:expr) => {
        (
            pdsa_cycles::change_idea.eq($input.change_idea.as_str()),
            pdsa_cycles::objective.eq(Text::non_blank($input.objective.as_ref())),
            pdsa_cycles::prediction.eq(Text::non_blank($input.prediction.as_ref())),
            pdsa_cycles::do_notes.eq(Text::non_blank($input.do_notes.as_ref())),
            pdsa_cycles::carried_out_as_planned.eq($input.carried_out_as_planned),
            pdsa_cycles::study_notes.eq(Text::non_blank($input.study_notes.as_ref())),
            pdsa_cycles::prediction_confirmed.eq($input.prediction_confirmed),
            pdsa_cycles::act_decision.eq($input.act_decision),
            pdsa_cycles::next_steps.eq(Text::non_blank($input.next_steps.as_ref())),
            pdsa_cycles::round_id.eq($input.round_id.map(|r| r.0)),
            pdsa_cycles::stage.eq($input.stage),
        )
    };
}

fn filtered(query: &PdsaQuery) -> pdsa_cycles::BoxedQuery<'static, MultiBackend> {
    let mut boxed = pdsa_cycles::table
        .filter(pdsa_cycles::initiative_id.eq(query.initiative_id))
        .into_boxed();
    if let Some(stage) = query.filter.stage {
        boxed = boxed.filter(pdsa_cycles::stage.eq(stage));
    }
    boxed
}

/// 409 for a move the state machine does not make: backwards, or a closed cycle's decision
/// changed.
fn check_move(current: &PdsaCycle, input: &PdsaCycleInput) -> Result<(), ApiError> {
    let (from, to) = (current.stage, input.stage);
    let (id, number) = (current.initiative_id.0, current.number.get());
    if to < from {
        return Err(ApiError::Conflict(format!(
            "PDSA cycle {number} is at {from}: a step back to {to} is a new cycle, not an edit; \
             start one with POST /api/v1/initiatives/{id}/pdsa-cycles (this one's record stays \
             as it is)"
        )));
    }
    if from == PdsaStage::Closed && input.act_decision != current.act_decision {
        return Err(ApiError::Conflict(format!(
            "PDSA cycle {number} is closed and its decision stands; to test the change again, \
             start a new cycle with POST /api/v1/initiatives/{id}/pdsa-cycles"
        )));
    }
    Ok(())
}

/// PDSA cycles: what [`resource`] needs to serve them.
pub struct PdsaCycles;

impl Resource for PdsaCycles {
    crate::table_resource! {
        name "pdsa_cycle" in "pdsa-cycles", schedule false, write Allowed::Role(Role::Organizer);
        PdsaCycle from PdsaRow in pdsa_cycles, input Under<PdsaCycleInput>, change PdsaCycleInput;
        list PdsaQuery, by filtered, pdsa_cycles::number;
    }

    /// Numbered after the initiative's last cycle, with the initiative's row locked meanwhile
    /// (so two cycles started at once get two numbers).
    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<PdsaCycle, ApiError> {
        let initiative = new.input.parent;
        if !initiatives::touch(conn, initiative)? {
            return Err(ApiError::not_found(Initiatives::NAME, initiative));
        }
        let last = pdsa_cycles::table
            .filter(pdsa_cycles::initiative_id.eq(initiative))
            .select(diesel::dsl::max(pdsa_cycles::number))
            .first::<Option<i32>>(conn)?;
        let input = &new.input.input;
        let now = db::now();
        let values = (
            written_columns!(input),
            pdsa_cycles::initiative_id.eq(initiative),
            pdsa_cycles::number.eq(last.unwrap_or(0) + 1),
            pdsa_cycles::plan.eq(plan_text(input.plan.as_ref())?),
            pdsa_cycles::decided_at.eq(input.act_decision.map(|_| now)),
            crate::created_columns!(pdsa_cycles, new.actor),
        );
        Ok(crate::insert_row!(conn, pdsa_cycles, PdsaRow, values)?.into())
    }

    fn change_of(record: &PdsaCycle) -> PdsaCycleInput {
        PdsaCycleInput {
            change_idea: record.change_idea.clone(),
            objective: record.objective.clone(),
            prediction: record.prediction.clone(),
            plan: record.plan.clone(),
            do_notes: record.do_notes.clone(),
            carried_out_as_planned: record.carried_out_as_planned,
            study_notes: record.study_notes.clone(),
            prediction_confirmed: record.prediction_confirmed,
            act_decision: record.act_decision,
            next_steps: record.next_steps.clone(),
            round_id: record.round_id.map(|r| RoundRef(r.0)),
            stage: record.stage,
        }
    }

    fn update(
        conn: &mut DbConnection,
        update: Update<Self>,
    ) -> Result<Option<PdsaCycle>, ApiError> {
        let (current, input) = (&update.current, &update.change);
        check_move(current, input)?;
        initiatives::touch(conn, current.initiative_id.0)?;
        let decided_at = match (current.act_decision, input.act_decision) {
            (_, None) => None,
            (before, Some(after)) if before == Some(after) => {
                current.decided_at.map(Timestamp::naive)
            }
            (_, Some(_)) => Some(db::now()),
        };
        let changes = (
            written_columns!(input),
            pdsa_cycles::plan.eq(plan_text(input.plan.as_ref())?),
            pdsa_cycles::decided_at.eq(decided_at),
            crate::updated_columns!(pdsa_cycles, update.actor),
        );
        let id = current.id.0;
        let row = crate::update_row!(conn, pdsa_cycles, PdsaRow, id, update.expected, changes)?;
        Ok(row.map(PdsaCycle::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        let current = found(PdsaCycles::find(conn, id)?, PdsaCycles::NAME, id)?;
        let points = crate::count_rows!(conn, data_points, pdsa_cycle_id, Some(id))?;
        let outcomes = crate::count_rows!(conn, round_outcomes, pdsa_cycle_id, Some(id))?;
        db::refuse_while_used(
            &format!("PDSA cycle {id} is still named by"),
            &[(points, "data point"), (outcomes, "round outcome")],
            "change them first",
        )?;
        initiatives::touch(conn, current.initiative_id.0)?;
        Ok(crate::delete_row!(conn, pdsa_cycles, id, expected)? == 1)
    }
}

/// Which of the ids name a PDSA cycle.
pub const EXISTING: ExistingIds = crate::existing_ids!(pdsa_cycles);

/// The initiative of PDSA cycle `id`, if there is one.
pub fn initiative_of(conn: &mut DbConnection, id: i32) -> Result<Option<i32>, ApiError> {
    Ok(pdsa_cycles::table
        .find(id)
        .select(pdsa_cycles::initiative_id)
        .first::<i32>(conn)
        .optional()?)
}

/// Every cycle of an initiative, by number (for the report).
pub fn of_initiative(conn: &mut DbConnection, initiative: i32) -> Result<Vec<PdsaCycle>, ApiError> {
    Ok(pdsa_cycles::table
        .filter(pdsa_cycles::initiative_id.eq(initiative))
        .order(pdsa_cycles::number)
        .select(PdsaRow::as_select())
        .load::<PdsaRow>(conn)?
        .into_iter()
        .map(PdsaCycle::from)
        .collect())
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    PdsaCycles, one = "PDSA cycle", many = "PDSA cycles", tag = "initiatives",
    record = PdsaCycle, input = PdsaCycleInput, change = PdsaCycleInput,
    read = [(), ("bearer" = [])], write = [("bearer" = ["organizer", "admin"])];
    get get_pdsa_cycle "/pdsa-cycles/{id}" "Get a PDSA cycle";
    replace replace_pdsa_cycle "/pdsa-cycles/{id}" "Replace a PDSA cycle (its stage moves forward only: a step back is a new cycle, 409)";
    patch patch_pdsa_cycle "/pdsa-cycles/{id}" "Change some fields of a PDSA cycle (JSON merge patch; its stage moves forward only)";
    delete delete_pdsa_cycle "/pdsa-cycles/{id}" "Delete a PDSA cycle that no data point or outcome names";
}

/// List an initiative's PDSA cycles, by number
#[utoipa::path(
    tag = "initiatives",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The initiative's id"), PdsaFilter, Paging),
    responses((status = 200, description = "A page of PDSA cycles", body = Page<PdsaCycle>), ReadErrors)
)]
#[get("/initiatives/{id}/pdsa-cycles")]
pub async fn list_pdsa_cycles(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<PdsaCycles>(Access::Read)?;
    let initiative = id.into_inner();
    let query = query.values()?;
    let filter = PdsaQuery {
        filter: query.get()?,
        initiative_id: initiative,
    };
    resource::list_filtered::<PdsaCycles>(ctx, granted, &query, filter, move |conn| {
        initiatives::must_exist(conn, initiative)
    })
    .await
}

/// Start a PDSA cycle of an initiative
///
/// Numbered after the initiative's last cycle. It may be recorded after the fact at any stage,
/// with what that stage takes (a prediction past `plan`, a decision to be `closed`).
#[utoipa::path(
    tag = "initiatives",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "The initiative's id")),
    request_body = PdsaCycleInput,
    responses(
        (status = 201, description = "Created", body = PdsaCycle,
            headers(("Location" = crate::platform::resource::HeaderText,
                description = "URL of the new PDSA cycle"))),
        WriteErrors
    )
)]
#[post("/initiatives/{id}/pdsa-cycles")]
pub async fn create_pdsa_cycle(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<PdsaCycles>(Access::Create)?;
    let initiative = id.into_inner();
    let body = body.value()?;
    let request = serde_json::to_vec(&body)?;
    let checked = ctx
        .validators
        .body::<PdsaCycleInput>(body)
        .map(|input| Under {
            parent: initiative,
            input,
        });
    resource::create_with::<PdsaCycles>(ctx, granted, checked, &request, move |conn| {
        initiatives::must_exist(conn, initiative)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_ordered_as_the_cycle_runs() {
        let order: Vec<&str> = PdsaStage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(order, ["plan", "do", "study", "act", "closed"]);
        assert!(PdsaStage::Plan < PdsaStage::Do && PdsaStage::Act < PdsaStage::Closed);
    }
}
