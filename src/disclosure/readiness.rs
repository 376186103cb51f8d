//! Whether a round is ready for learners (`GET /api/v1/rounds/{id}/readiness`): what still
//! blocks it, each with the person and the relationship it concerns; and the attention list
//! (`GET /api/v1/rounds/attention`), the upcoming rounds with their planning blockers
//! (`schedule::confirmations`) and these.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::auth::Role;
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::fields::Id;
use crate::platform::resource::{found, Ctx, Resource};
use crate::schedule::confirmations::{self, Attention, Blocker, BlockerKind, BLOCKERS_MAX};
use crate::schedule::rounds::{Round, Rounds};

use super::reviews;
use super::statements;

/// What keeps `round` from being ready for learners: [`reviews::publishing_blockers`], and no
/// published statement, or one that no longer says what would be published now.
pub fn blockers(conn: &mut DbConnection, round: &Round) -> Result<Vec<Blocker>, ApiError> {
    let mut out = reviews::publishing_blockers(conn, round)?;
    let statement = match statements::find(conn, round.id.0, None)? {
        None => Some(Blocker::new(
            BlockerKind::NoPublishedStatement,
            "no disclosure statement has been published for learners".to_owned(),
            None,
        )),
        // Learners would read what is no longer so: a speaker added, a relationship judged
        // anew, the round moved. Only once it could be published again.
        Some(latest)
            if out.is_empty()
                && serde_json::to_value(&latest.content)?
                    != serde_json::to_value(statements::content_of(conn, round)?)? =>
        {
            Some(Blocker::new(
                BlockerKind::StatementOutOfDate,
                format!(
                    "the published statement (version {}) no longer says what the round's \
                     disclosures do: publish it again",
                    latest.version.get()
                ),
                None,
            ))
        }
        Some(_) => None,
    };
    if let Some(blocker) = statement {
        let at = out
            .iter()
            .position(|b| b.kind == BlockerKind::NoCreditDesignated)
            .unwrap_or(out.len());
        out.insert(at, blocker);
    }
    out.truncate(BLOCKERS_MAX);
    Ok(out)
}

/// What blocks a round from being ready for learners.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "round_id": 3, "ready": false,
    "blockers": [{"kind": "relationship_not_judged", "speaker_id": 7, "relationship_id": 9,
        "message": "Tara Lagu, MD, MPH's relationship with Example Pharma (consultant) is not judged for this round"}]
}))]
pub struct Readiness {
    pub round_id: Id,
    /// `true` when `blockers` is empty.
    pub ready: bool,
    /// In order: each person's (no current disclosure, a relationship not judged, a relevant
    /// one not mitigated), then `no_published_statement` (or `statement_out_of_date`), then
    /// `no_credit_designated`.
    #[schema(max_items = 200)]
    pub blockers: Vec<Blocker>,
}

/// Is a round ready for learners? What blocks it
///
/// Every blocker, each with the person (`speaker_id`) and the relationship (`relationship_id`)
/// it concerns: someone without a disclosure current when the round starts
/// (`no_current_disclosure`), a relationship not judged (`relationship_not_judged`), a relevant
/// one without a mitigation (`relevant_without_mitigation`), no published statement
/// (`no_published_statement`) or one that no longer says what the round's disclosures do
/// (`statement_out_of_date`: publish again), no credit designated (`no_credit_designated`). An
/// empty list means ready. Organizers only.
#[utoipa::path(
    tag = "disclosures",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 200, description = "What blocks the round", body = Readiness), ReadErrors)
)]
#[get("/rounds/{id}/readiness")]
pub async fn readiness(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let round_id = id.into_inner();
    ctx.read(granted, false, true, None, move |conn| {
        let round = found(Rounds::find(conn, round_id)?, Rounds::NAME, round_id)?;
        let blockers = blockers(conn, &round)?;
        Rendered::json(&Readiness {
            round_id: round.id,
            ready: blockers.is_empty(),
            blockers,
        })
    })
    .await
}

/// Rounds that need attention: what keeps each upcoming round from being ready
///
/// The scheduled rounds not yet over that start within the series' `attention_days`, soonest
/// first, each with its blockers: first the planning ones, `no_title`, `no_confirmed_presenter`
/// (no presenter or panelist has confirmed), `invitation_unanswered` (an invitation older than
/// 14 days, with the speaker's id); then those of its disclosures, as
/// `GET /rounds/{id}/readiness` lists them. Rounds with nothing in the way are left out.
/// Organizers only.
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    responses(
        (status = 200, description = "The rounds that need attention", body = Attention),
        ReadErrors
    )
)]
#[get("/rounds/attention")]
pub async fn attention(ctx: Ctx) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    // Not from the read cache: the answer moves with the clock, not only with the schedule.
    ctx.read(granted, false, true, None, |conn| {
        Rendered::json(&confirmations::attention_at(conn, db::now(), blockers)?)
    })
    .await
}
