//! Speakers who confirm: a signed-in speaker's answer to an invitation
//! (`PUT /api/v1/rounds/{id}/speakers/{speaker_id}/response`), and the planning blockers of the
//! upcoming rounds that need an organizer's attention before they can go ahead (`GET
//! /api/v1/rounds/attention`, served by `disclosure::readiness`, which adds the disclosure's).
//!
//! A speaker is matched to a sign-in by the identity provider's subject stored on their record
//! (`speakers.sub`, which only organizers see or set): the caller whose token's `sub` it is may
//! confirm or decline their own places, and nothing else. Organizers set any place's status
//! through the round itself (`speakers[].status`).

use actix_web::{put, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::auth::{Caller, Role};
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, WriteErrors};
use crate::platform::fields::{Id, Int, Text, Timestamp};
use crate::platform::http::{self, JsonBody};
use crate::platform::resource::{found, Author, Ctx, Resource};
use crate::platform::schema::{round_speakers, rounds as rounds_table, speakers};
use crate::platform::validate::Input;
use crate::schedule::rounds::{
    self, invitation_times, Round, RoundFilter, RoundStatus, Rounds, SpeakerStatus, When,
};
use crate::schedule::series::{self, SeriesRecord};
use crate::schedule::speakers::Speakers;

/// How long an invitation may wait for its answer before the round needs attention.
pub const INVITATION_ANSWER_DAYS: i64 = 14;
/// The most rounds the attention list holds (a year of weekly rounds, several times over).
pub const ATTENTION_MAX: usize = 500;

crate::text_enum! {
    /// What a speaker may answer.
    pub enum Answer { Confirmed = "confirmed", Declined = "declined" }
}

impl From<Answer> for SpeakerStatus {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Confirmed => SpeakerStatus::Confirmed,
            Answer::Declined => SpeakerStatus::Declined,
        }
    }
}

/// A speaker's answer to their invitation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "confirmed"}))]
pub struct ResponseInput {
    pub status: Answer,
}

impl Input for ResponseInput {}

/// A speaker's place on a round, as its answer leaves it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "round_id": 12, "speaker_id": 7, "status": "confirmed",
    "invited_at": "2026-11-02T14:00:00Z", "responded_at": "2026-11-05T09:30:00Z"
}))]
pub struct SpeakerPlace {
    pub round_id: Id,
    pub speaker_id: Id,
    pub status: SpeakerStatus,
    pub invited_at: Option<Timestamp>,
    pub responded_at: Option<Timestamp>,
}

/// 403 unless the caller is an organizer or the speaker `speaker_id` signed in (their record's
/// `sub` is the token's). Decided before anything about the round or the place is looked up:
/// whether a speaker exists, or is on a round (an invited or declined speaker is shown to
/// organizers only), is no one else's to learn from the difference between a 403 and a 404.
fn authorize_place(
    conn: &mut DbConnection,
    caller: &Caller,
    speaker_id: i32,
) -> Result<(), ApiError> {
    if caller.can(Role::Organizer) {
        return Ok(());
    }
    let sub = speakers::table
        .find(speaker_id)
        .select(speakers::sub)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    match (sub, caller.subject.as_deref()) {
        (Some(theirs), Some(mine)) if theirs == mine => Ok(()),
        _ => Err(ApiError::Forbidden(
            "a speaker may answer only for their own place: this place is not yours".to_owned(),
        )),
    }
}

/// The round, once the caller may answer for the place: 404 unless the speaker is on it.
fn find_place(conn: &mut DbConnection, round_id: i32, speaker_id: i32) -> Result<Round, ApiError> {
    let round = found(Rounds::find(conn, round_id)?, Rounds::NAME, round_id)?;
    if !round
        .speakers
        .0
        .iter()
        .any(|s| s.speaker_id.0 == speaker_id)
    {
        return Err(ApiError::NotFound(format!(
            "speaker {speaker_id} is not on round {round_id}"
        )));
    }
    Ok(round)
}

/// Writes the answer to the place, with the time it was given, and records the round's change.
fn answer(
    conn: &mut DbConnection,
    actor: Author<'_>,
    before: Round,
    speaker_id: i32,
    status: SpeakerStatus,
) -> Result<SpeakerPlace, ApiError> {
    let round_id = before.id.0;
    let place = before
        .speakers
        .0
        .iter()
        .find(|s| s.speaker_id.0 == speaker_id)
        .map(|s| {
            (
                s.status,
                s.invited_at.flatten().map(Timestamp::naive),
                s.responded_at.flatten().map(Timestamp::naive),
            )
        })
        .ok_or_else(|| ApiError::not_found(Speakers::NAME, speaker_id))?;
    let (invited_at, responded_at) = invitation_times(Some(place), status, db::now());
    if place.0 != status {
        diesel::update(
            round_speakers::table
                .filter(round_speakers::round_id.eq(round_id))
                .filter(round_speakers::speaker_id.eq(speaker_id)),
        )
        .set((
            round_speakers::status.eq(status),
            round_speakers::invited_at.eq(invited_at),
            round_speakers::responded_at.eq(responded_at),
        ))
        .execute(conn)?;
        // The round's version and its copy of the links move with the link (by trigger);
        // its audit columns say who answered.
        diesel::update(rounds_table::table.find(round_id))
            .set((
                rounds_table::updated_at.eq(db::now()),
                rounds_table::updated_by.eq(actor.actor),
            ))
            .execute(conn)?;
        let after = found(Rounds::find(conn, round_id)?, Rounds::NAME, round_id)?;
        actor.record(conn, Rounds::NAME, round_id, Some(&before), Some(&after))?;
    }
    Ok(SpeakerPlace {
        round_id: Id(round_id),
        speaker_id: Id(speaker_id),
        status,
        invited_at: invited_at.map(Timestamp::from_naive),
        responded_at: responded_at.map(Timestamp::from_naive),
    })
}

/// Answer an invitation: confirm or decline a place on a round
///
/// For the speaker themselves, signed in with the identity provider's subject stored on their
/// speaker record (`sub`), or an organizer answering for them. Sets `responded_at`. A declined
/// speaker is no longer shown on the round; a round whose presenters all declined shows as to be
/// announced again.
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = [])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("speaker_id" = Id, Path, description = "Speaker id")
    ),
    request_body = ResponseInput,
    responses(
        (status = 200, description = "The place as answered", body = SpeakerPlace),
        WriteErrors
    )
)]
#[put("/rounds/{id}/speakers/{speaker_id}/response")]
pub async fn respond(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    // Any signed-in person may ask; whether the place is theirs is decided first in the write,
    // before the round is looked up, a missing `If-Match` told or the body read.
    let granted = ctx.authorize_with(signed_in(&ctx.caller))?;
    let if_match_required = ctx.require_if_match();
    let (round_id, speaker_id) = path.into_inner();
    let caller = ctx.caller.clone();
    let validators = ctx.validators.clone();
    let if_match = ctx.conditions.if_match.clone();
    let place = ctx
        .write(granted, move |conn, author| {
            authorize_place(conn, &caller, speaker_id)?;
            if_match_required?;
            let round = find_place(conn, round_id, speaker_id)?;
            // `If-Match` names the round's version as this caller sees the round.
            if let Some(tags) = &if_match {
                let etag = http::record_etag(round.audit.version, caller.sees_private_fields());
                if !tags.matches_strongly(&etag) {
                    return Err(ApiError::PreconditionFailed {
                        current: Some(etag),
                    });
                }
            }
            let input = validators
                .body::<ResponseInput>(body.value()?)
                .into_result()?;
            answer(conn, author, round, speaker_id, input.status.into())
        })
        .await?;
    Ok(HttpResponse::Ok().json(place))
}

/// 401 for a caller without a token's subject.
fn signed_in(caller: &Caller) -> Result<(), ApiError> {
    match caller.subject {
        Some(_) => Ok(()),
        None => Err(ApiError::Unauthorized {
            invalid_token: None,
        }),
    }
}

// ---- attention ---------------------------------------------------------------------------

crate::text_enum! {
    /// Why a round needs attention. More kinds may come: clients show the `message` of a kind
    /// they do not know.
    pub enum BlockerKind {
        NoTitle = "no_title",
        NoConfirmedPresenter = "no_confirmed_presenter",
        InvitationUnanswered = "invitation_unanswered",
        NoCurrentDisclosure = "no_current_disclosure",
        RelationshipNotJudged = "relationship_not_judged",
        RelevantWithoutMitigation = "relevant_without_mitigation",
        NoPublishedStatement = "no_published_statement",
        StatementOutOfDate = "statement_out_of_date",
        NoCreditDesignated = "no_credit_designated",
    }
}

/// One thing that keeps a round from being ready.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Blocker {
    pub kind: BlockerKind,
    /// What is wrong, for a person to read.
    pub message: Text<500>,
    /// The speaker it is about, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub speaker_id: Option<Id>,
    /// The financial relationship it is about (`GET /speakers/{speaker_id}/disclosure`), when
    /// it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub relationship_id: Option<Id>,
}

impl Blocker {
    pub fn new(kind: BlockerKind, message: String, speaker_id: Option<Id>) -> Blocker {
        Blocker {
            kind,
            message: Text::stored(message),
            speaker_id,
            relationship_id: None,
        }
    }
}

/// The most blockers one round lists: a panel of eight and the planners, each with a few
/// relationships.
pub const BLOCKERS_MAX: usize = 200;

/// A round that needs attention, with why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttentionItem {
    pub round_id: Id,
    /// The round, as organizers see it (every speaker, with their status).
    pub round: Round,
    /// What keeps it from being ready, the most basic first: the planning blockers, then those
    /// of its disclosures.
    #[schema(max_items = 200)]
    pub blockers: Vec<Blocker>,
}

/// The upcoming rounds that need attention.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attention {
    /// How far ahead this looked: the series' `attention_days`.
    pub attention_days: Int<1, 366>,
    /// Rounds starting up to this moment were looked at.
    pub until: Timestamp,
    /// Soonest first.
    #[schema(max_items = 500)]
    pub items: Vec<AttentionItem>,
}

/// What keeps `round` from being ready at `now`.
pub fn blockers(round: &Round, now: NaiveDateTime) -> Vec<Blocker> {
    let blocker = Blocker::new;
    let mut found = Vec::new();
    if Text::non_blank(round.title.as_ref()).is_none() {
        found.push(blocker(
            BlockerKind::NoTitle,
            "the round has no title yet".to_owned(),
            None,
        ));
    }
    if !round.has_confirmed_presenter() {
        found.push(blocker(
            BlockerKind::NoConfirmedPresenter,
            "no presenter (or panelist) has confirmed".to_owned(),
            None,
        ));
    }
    let overdue = now - chrono::Duration::days(INVITATION_ANSWER_DAYS);
    for speaker in &round.speakers.0 {
        let invited = speaker.invited_at.flatten().map(Timestamp::naive);
        if speaker.status == SpeakerStatus::Invited && invited.is_some_and(|at| at <= overdue) {
            found.push(blocker(
                BlockerKind::InvitationUnanswered,
                format!(
                    "{} has not answered an invitation sent {} or more days ago",
                    speaker.display_name, INVITATION_ANSWER_DAYS
                ),
                Some(speaker.speaker_id),
            ));
        }
    }
    found.truncate(BLOCKERS_MAX);
    found
}

/// What a later layer adds to a round's planning blockers (the disclosure's, say).
pub type MoreBlockers = fn(&mut DbConnection, &Round) -> Result<Vec<Blocker>, ApiError>;

/// The rounds that need attention as of `now`, soonest first, with the blockers `more` adds
/// after the planning ones.
pub fn attention_at(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    more: MoreBlockers,
) -> Result<Attention, ApiError> {
    let current = SeriesRecord::find(conn, series::ID)?
        .ok_or_else(|| ApiError::Internal("the series row is missing".to_owned()))?;
    let days = current.attention_days;
    let until = now + chrono::Duration::days(days.get());
    let filter = RoundFilter {
        when: Some(When::Upcoming),
        to: Some(Timestamp::from_naive(until)),
        status: Some(RoundStatus::Scheduled),
        ..RoundFilter::default()
    };
    let upcoming = rounds::list_all(conn, &filter, ATTENTION_MAX as i64, now)?;
    let mut items = Vec::new();
    for round in upcoming {
        let mut found = blockers(&round, now);
        found.extend(more(conn, &round)?);
        found.truncate(BLOCKERS_MAX);
        if !found.is_empty() {
            items.push(AttentionItem {
                round_id: round.id,
                round,
                blockers: found,
            });
        }
    }
    Ok(Attention {
        attention_days: days,
        until: Timestamp::from_naive(until),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_a_status_of_a_place() {
        assert_eq!(
            SpeakerStatus::from(Answer::Declined),
            SpeakerStatus::Declined
        );
        assert_eq!(Answer::ALL.len(), 2, "a speaker cannot answer `invited`");
    }

    #[test]
    fn the_kinds_of_blockers_are_written_as_clients_read_them() {
        assert_eq!(BlockerKind::NoTitle.as_str(), "no_title");
        assert_eq!(
            BlockerKind::InvitationUnanswered.as_str(),
            "invitation_unanswered"
        );
    }
}
