//! A round's review of disclosures (`GET/PUT /api/v1/rounds/{id}/disclosure-review`): for each
//! person who controls the round's content (its speakers, but those who declined, and the
//! series' planners and reviewers), each relationship of their latest attestation made by the
//! round's start, judged relevant to the round's content or not, and how each relevant one is
//! mitigated; who judged it, and when.
//!
//! A judgement belongs to a relationship of one attestation: a new attestation has relationships
//! of its own, judged afresh, since what a person attests is what the judgement was about.

use std::collections::HashMap;

use actix_web::{get, put, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::auth::{Role, Subject};
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, LocalDate, QuarterHours, Text, Timestamp};
use crate::platform::http::JsonBody;
use crate::platform::resource::{found, Author, Ctx, Resource};
use crate::platform::schema::{disclosure_reviews, series as series_table};
use crate::platform::validate::{Doc, Input};
use crate::schedule::confirmations::{Blocker, BlockerKind, BLOCKERS_MAX};
use crate::schedule::rounds::{Round, Rounds, SpeakerRole, SpeakerStatus};
use crate::schedule::series::{self, PlannerRole, SeriesRecord};
use crate::schedule::speakers::{Credentials, DisplayName, FullName, Speakers};

use super::relationships::{self, Company, Disclosure, Nature, OtherDetail};

pub type Note = Text<2000>;

crate::text_enum! {
    /// How a relevant relationship is mitigated (ACCME Standard 3.3).
    pub enum Mitigation {
        PeerReviewOfContent = "peer_review_of_content",
        AttestationOfEvidenceBase = "attestation_of_evidence_base",
        Recusal = "recusal",
        Divestiture = "divestiture",
        Other = "other",
    }
}

crate::text_enum! {
    /// What a person does for a round: their place on it, or their part in the series.
    pub enum PersonRole {
        Presenter = "presenter",
        Moderator = "moderator",
        Panelist = "panelist",
        Planner = "planner",
        Reviewer = "reviewer",
    }
}

impl From<SpeakerRole> for PersonRole {
    fn from(role: SpeakerRole) -> Self {
        match role {
            SpeakerRole::Presenter => PersonRole::Presenter,
            SpeakerRole::Moderator => PersonRole::Moderator,
            SpeakerRole::Panelist => PersonRole::Panelist,
        }
    }
}

impl From<PlannerRole> for PersonRole {
    fn from(role: PlannerRole) -> Self {
        match role {
            PlannerRole::Planner => PersonRole::Planner,
            PlannerRole::Reviewer => PersonRole::Reviewer,
        }
    }
}

crate::list_type!(
    /// A person's roles: their place on the round first, then their part in the series.
    pub PersonRoles(PersonRole),
    max = 2
);

/// Someone who controls a round's content.
#[derive(Debug, Clone)]
pub struct Person {
    pub speaker_id: i32,
    pub full_name: FullName,
    pub credentials: Credentials,
    pub display_name: DisplayName,
    pub roles: Vec<PersonRole>,
}

/// The people who control `round`'s content, in order: its speakers as the round lists them
/// (but those who declined: they control nothing), then the series' planners not already
/// listed. A planner whose speaker record is gone is left out.
pub fn people(conn: &mut DbConnection, round: &Round) -> Result<Vec<Person>, ApiError> {
    let mut people: Vec<Person> = round
        .speakers
        .0
        .iter()
        .filter(|s| s.status != SpeakerStatus::Declined)
        .map(|s| Person {
            speaker_id: s.speaker_id.0,
            full_name: s.full_name.clone(),
            credentials: s.credentials.clone(),
            display_name: s.display_name.clone(),
            roles: vec![s.role.into()],
        })
        .collect();
    let series = SeriesRecord::find(conn, series::ID)?
        .ok_or_else(|| ApiError::Internal("the series row is missing".to_owned()))?;
    for planner in series.planners.0 {
        let id = planner.speaker_id.0;
        if let Some(person) = people.iter_mut().find(|p| p.speaker_id == id) {
            person.roles.push(planner.role.into());
            continue;
        }
        if let Some(speaker) = Speakers::find(conn, id)? {
            people.push(Person {
                speaker_id: id,
                full_name: speaker.full_name,
                credentials: speaker.credentials,
                display_name: speaker.display_name,
                roles: vec![planner.role.into()],
            });
        }
    }
    Ok(people)
}

/// A judgement of one relationship for one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Judgement {
    pub relevant: bool,
    /// How a relevant relationship is mitigated; `null` until it is (a blocker meanwhile).
    pub mitigation: Option<Mitigation>,
    /// The reviewer's note: organizers only, never shown to learners.
    pub note: Option<Note>,
    pub reviewed_at: Timestamp,
    pub reviewed_by: Option<Subject>,
}

/// A relationship of a person on the round, with its judgement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewedRelationship {
    pub relationship_id: Id,
    pub company: Company,
    pub nature: Nature,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub other_detail: Option<OtherDetail>,
    pub started_on: LocalDate,
    pub ended_on: Option<LocalDate>,
    /// `null` until it is judged.
    pub judgement: Option<Judgement>,
}

crate::list_type!(
    /// A person's relationships, as attested.
    pub ReviewedRelationships(ReviewedRelationship),
    max = 50
);

/// The attestation a review reads, without its relationships (listed beside it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttestationSummary {
    pub disclosure_id: Id,
    pub attested_at: Timestamp,
    pub no_relationships: bool,
    pub current_until: Timestamp,
    /// Whether it is current when the round starts.
    pub current_at_start: bool,
}

/// One person on the round, with their latest attestation and its relationships judged.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewedPerson {
    pub speaker_id: Id,
    pub display_name: DisplayName,
    pub roles: PersonRoles,
    /// Their latest attestation made by the round's start; `null` if they made none by then.
    pub disclosure: Option<AttestationSummary>,
    pub relationships: ReviewedRelationships,
}

crate::list_type!(
    /// The people on a round: its speakers, then the series' planners.
    pub ReviewedPeople(ReviewedPerson),
    max = 60
);

/// A round's review of its people's disclosures.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "round_id": 3,
    "people": [{"speaker_id": 7, "display_name": "Tara Lagu, MD, MPH", "roles": ["presenter"],
        "disclosure": {"disclosure_id": 4, "attested_at": "2026-11-02T14:00:00Z",
            "no_relationships": false, "current_until": "2027-11-02T14:00:00Z",
            "current_at_start": true},
        "relationships": [{"relationship_id": 9, "company": "Example Pharma",
            "nature": "consultant", "started_on": "2025-03-01", "ended_on": null,
            "judgement": {"relevant": true, "mitigation": "peer_review_of_content",
                "note": "slides reviewed by Dr. Stefan", "reviewed_at": "2026-11-03T10:00:00Z",
                "reviewed_by": "mihaela.stefan@example.org"}}]}]
}))]
pub struct RoundReview {
    pub round_id: Id,
    pub people: ReviewedPeople,
}

/// A person with what the review and the statement read of them.
pub struct PersonDisclosure {
    pub person: Person,
    pub disclosure: Option<Disclosure>,
    /// Whether `disclosure` is current when the round starts.
    pub current_at_start: bool,
    /// Each relationship of `disclosure` with its judgement, in order.
    pub judged: Vec<(relationships::Relationship, Option<Judgement>)>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = disclosure_reviews)]
struct ReviewRow {
    relationship_id: i32,
    relevant: bool,
    mitigation: Option<Mitigation>,
    note: Option<String>,
    reviewed_at: NaiveDateTime,
    reviewed_by: Option<String>,
}

fn judgements(conn: &mut DbConnection, round_id: i32) -> Result<HashMap<i32, Judgement>, ApiError> {
    let rows: Vec<ReviewRow> = disclosure_reviews::table
        .filter(disclosure_reviews::round_id.eq(round_id))
        .select(ReviewRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.relationship_id,
                Judgement {
                    relevant: r.relevant,
                    mitigation: r.mitigation,
                    note: r.note.map(Text::stored),
                    reviewed_at: Timestamp::from_naive(r.reviewed_at),
                    reviewed_by: r.reviewed_by.map(Text::stored),
                },
            )
        })
        .collect())
}

/// Everyone on `round` with the attestation that counts for it (their latest made by its start)
/// and its judgements.
pub fn disclosures_of(
    conn: &mut DbConnection,
    round: &Round,
) -> Result<Vec<PersonDisclosure>, ApiError> {
    let judged = judgements(conn, round.id.0)?;
    let starts_at = round.starts_at.naive();
    let mut out = Vec::new();
    for person in people(conn, round)? {
        let disclosure = relationships::latest_at(conn, person.speaker_id, starts_at)?;
        let current_at_start = disclosure
            .as_ref()
            .is_some_and(|d| starts_at < d.current_until.naive());
        let pairs = disclosure
            .as_ref()
            .map(|d| {
                d.relationships
                    .0
                    .iter()
                    .map(|r| (r.clone(), judged.get(&r.id.0).cloned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(PersonDisclosure {
            person,
            disclosure,
            current_at_start,
            judged: pairs,
        });
    }
    Ok(out)
}

/// The review of `round`, as organizers read it.
pub fn review_of(conn: &mut DbConnection, round: &Round) -> Result<RoundReview, ApiError> {
    let people = disclosures_of(conn, round)?
        .into_iter()
        .map(|p| ReviewedPerson {
            speaker_id: Id(p.person.speaker_id),
            display_name: p.person.display_name,
            roles: PersonRoles(p.person.roles),
            disclosure: p.disclosure.as_ref().map(|d| AttestationSummary {
                disclosure_id: d.id,
                attested_at: d.attested_at,
                no_relationships: d.no_relationships,
                current_until: d.current_until,
                current_at_start: p.current_at_start,
            }),
            relationships: ReviewedRelationships(
                p.judged
                    .into_iter()
                    .map(|(r, judgement)| ReviewedRelationship {
                        relationship_id: r.id,
                        company: r.company,
                        nature: r.nature,
                        other_detail: r.other_detail,
                        started_on: r.started_on,
                        ended_on: r.ended_on,
                        judgement,
                    })
                    .collect(),
            ),
        })
        .collect();
    Ok(RoundReview {
        round_id: round.id,
        people: ReviewedPeople(people),
    })
}

/// One judgement, as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgementInput {
    /// A relationship of the latest attestation (by the round's start) of someone on the round.
    pub relationship_id: Id,
    pub relevant: bool,
    /// Only for a relevant relationship; leave it out until it is mitigated.
    pub mitigation: Option<Mitigation>,
    /// Required with `mitigation: other`; never shown to learners.
    pub note: Option<Note>,
}

crate::list_type!(
    /// Judgements, each relationship once.
    pub JudgementInputs(JudgementInput),
    max = 500
);

/// A round's review, as written by PUT: every judgement of the round (one left out is taken
/// back).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "judgements": [{"relationship_id": 9, "relevant": true,
        "mitigation": "peer_review_of_content", "note": "slides reviewed by Dr. Stefan"}]
}))]
pub struct ReviewInput {
    pub judgements: JudgementInputs,
}

impl Input for ReviewInput {
    /// Each relationship once; a mitigation only for a relevant one; a note with `other`.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut seen: Vec<(i32, usize)> = Vec::new();
        for (i, item) in doc
            .items::<JudgementInput>("judgements")
            .into_iter()
            .enumerate()
        {
            let Some(item) = item else {
                continue;
            };
            let field = |name: &str| format!("judgements[{i}].{name}");
            match seen.iter().find(|(id, _)| *id == item.relationship_id.0) {
                Some((_, first)) => errors.push(FieldError::new(
                    field("relationship_id"),
                    format!("is already judged (judgements[{first}])"),
                )),
                None => seen.push((item.relationship_id.0, i)),
            }
            if !item.relevant && item.mitigation.is_some() {
                errors.push(FieldError::new(
                    field("mitigation"),
                    "is only for a relevant relationship: one judged not relevant needs none",
                ));
            }
            if item.mitigation == Some(Mitigation::Other)
                && Text::non_blank(item.note.as_ref()).is_none()
            {
                errors.push(FieldError::new(
                    field("note"),
                    "is required with mitigation other: say how it was mitigated",
                ));
            }
        }
        errors
    }
}

/// The judgements of a round as the change log records them (relationship id → judgement).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Judgements {
    round_id: i32,
    judgements: Vec<(i32, Judgement)>,
}

/// Writes `input` as `round`'s judgements, made at `now`: a judgement unchanged keeps who made
/// it and when; one left out is taken back. Records the change if there was one.
pub fn judge(
    conn: &mut DbConnection,
    author: Author<'_>,
    round: &Round,
    input: &ReviewInput,
    now: NaiveDateTime,
) -> Result<RoundReview, ApiError> {
    let round_id = round.id.0;
    let people = disclosures_of(conn, round)?;
    let judgeable: Vec<i32> = people
        .iter()
        .flat_map(|p| p.judged.iter().map(|(r, _)| r.id.0))
        .collect();
    let errors: Vec<FieldError> = input
        .judgements
        .0
        .iter()
        .enumerate()
        .filter(|(_, j)| !judgeable.contains(&j.relationship_id.0))
        .map(|(i, j)| {
            FieldError::new(
                format!("judgements[{i}].relationship_id"),
                format!(
                    "relationship {} is not in the disclosure of anyone on round {round_id} (the \
                     latest each attested by its start)",
                    j.relationship_id.0
                ),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let before = judgements(conn, round_id)?;
    let mut after: HashMap<i32, Judgement> = HashMap::new();
    for j in &input.judgements.0 {
        let note = Text::non_blank(j.note.as_ref()).map(Text::stored);
        let same = before
            .get(&j.relationship_id.0)
            .filter(|b| b.relevant == j.relevant && b.mitigation == j.mitigation && b.note == note);
        let judgement = match same {
            Some(unchanged) => unchanged.clone(),
            None => Judgement {
                relevant: j.relevant,
                mitigation: j.mitigation,
                note,
                reviewed_at: Timestamp::from_naive(now),
                reviewed_by: author.actor.map(Text::stored),
            },
        };
        after.insert(j.relationship_id.0, judgement);
    }
    if before != after {
        diesel::delete(disclosure_reviews::table.filter(disclosure_reviews::round_id.eq(round_id)))
            .execute(conn)?;
        let rows: Vec<_> = after
            .iter()
            .map(|(id, j)| {
                (
                    disclosure_reviews::round_id.eq(round_id),
                    disclosure_reviews::relationship_id.eq(*id),
                    disclosure_reviews::relevant.eq(j.relevant),
                    disclosure_reviews::mitigation.eq(j.mitigation),
                    disclosure_reviews::note.eq(j.note.as_ref().map(|n| n.as_str().to_owned())),
                    disclosure_reviews::reviewed_at.eq(j.reviewed_at.naive()),
                    disclosure_reviews::reviewed_by
                        .eq(j.reviewed_by.as_ref().map(|s| s.as_str().to_owned())),
                )
            })
            .collect();
        if !rows.is_empty() {
            crate::on_backend!(conn, |c| diesel::insert_into(disclosure_reviews::table)
                .values(&rows)
                .execute(c))?;
        }
        let sorted = |m: &HashMap<i32, Judgement>| {
            let mut list: Vec<(i32, Judgement)> =
                m.iter().map(|(id, j)| (*id, j.clone())).collect();
            list.sort_by_key(|(id, _)| *id);
            Judgements {
                round_id,
                judgements: list,
            }
        };
        // A round's first judgements create its review.
        let before = (!before.is_empty()).then(|| sorted(&before));
        author.record(
            conn,
            "disclosure_review",
            round_id,
            before.as_ref(),
            Some(&sorted(&after)),
        )?;
    }
    review_of(conn, round)
}

// ---- what the review still lacks ------------------------------------------------------------

/// Whether `round` has credit designated in advance: the series offers credit (`credit_type`)
/// and the round designates some (`credit_hours`; a cancelled round designates none). A
/// statement is what makes credit possible, so a round with nothing to credit is not ready.
pub fn credit_designated(conn: &mut DbConnection, round: &Round) -> Result<bool, ApiError> {
    if round.credit_hours == QuarterHours::ZERO {
        return Ok(false);
    }
    let credit_type: Option<String> = series_table::table
        .find(series::ID)
        .select(series_table::credit_type)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    Ok(credit_type.is_some())
}

/// The blockers of one person's disclosure for a round.
fn person_blockers(p: &PersonDisclosure, round: &Round, out: &mut Vec<Blocker>) {
    let name = p.person.display_name.as_str();
    let speaker = Some(Id(p.person.speaker_id));
    if p.disclosure.is_none() || !p.current_at_start {
        let why = match &p.disclosure {
            None => format!(
                "{name} has attested no disclosure of financial relationships by the round's start"
            ),
            Some(d) => format!(
                "{name}'s disclosure (attested {}) is current only until {}, before the round \
                 starts ({})",
                d.attested_at.0.format("%Y-%m-%d"),
                d.current_until.0.format("%Y-%m-%d"),
                round.starts_at.0.format("%Y-%m-%d")
            ),
        };
        out.push(Blocker::new(BlockerKind::NoCurrentDisclosure, why, speaker));
        return;
    }
    for (relationship, judgement) in &p.judged {
        let (kind, why) = match judgement {
            None => (
                BlockerKind::RelationshipNotJudged,
                format!(
                    "{name}'s relationship with {} is not judged for this round",
                    relationship.phrase()
                ),
            ),
            Some(j) if j.relevant && j.mitigation.is_none() => (
                BlockerKind::RelevantWithoutMitigation,
                format!(
                    "{name}'s relationship with {} is relevant and not yet mitigated",
                    relationship.phrase()
                ),
            ),
            Some(_) => continue,
        };
        let mut blocker = Blocker::new(kind, why, speaker);
        blocker.relationship_id = Some(relationship.id);
        out.push(blocker);
    }
}

/// What keeps `round` from having its statement published: each person's disclosure, its
/// judgements and mitigations, and credit designated.
pub fn publishing_blockers(
    conn: &mut DbConnection,
    round: &Round,
) -> Result<Vec<Blocker>, ApiError> {
    let mut out = Vec::new();
    for person in disclosures_of(conn, round)? {
        person_blockers(&person, round, &mut out);
    }
    if !credit_designated(conn, round)? {
        out.push(Blocker::new(
            BlockerKind::NoCreditDesignated,
            "no credit is designated for the round".to_owned(),
            None,
        ));
    }
    out.truncate(BLOCKERS_MAX);
    Ok(out)
}

// ---- handlers ----------------------------------------------------------------------------

/// Get a round's review of disclosures
///
/// Each person who controls the round's content (its speakers but those who declined, then the
/// series' planners), their latest attestation made by the round's start and whether it is
/// current then, and each relationship with its judgement (`null` until judged). Organizers only.
#[utoipa::path(
    tag = "disclosures",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 200, description = "The round's review", body = RoundReview), ReadErrors)
)]
#[get("/rounds/{id}/disclosure-review")]
pub async fn get_review(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let round_id = id.into_inner();
    ctx.read(granted, false, true, None, move |conn| {
        let round = found(Rounds::find(conn, round_id)?, Rounds::NAME, round_id)?;
        Rendered::json(&review_of(conn, &round)?)
    })
    .await
}

/// Judge a round's disclosures: relevant or not, and how each relevant one is mitigated
///
/// Every judgement of the round at once: each relationship of the latest attestation (made by
/// the round's start) of someone on the round, `relevant` or not, and for a relevant one its
/// `mitigation`
/// (`peer_review_of_content`, `attestation_of_evidence_base`, `recusal`, `divestiture`, or
/// `other` with a `note`). A judgement sent unchanged keeps who made it and when; one left out
/// is taken back. Organizers only.
#[utoipa::path(
    tag = "disclosures",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    request_body = ReviewInput,
    responses((status = 200, description = "The round's review as judged", body = RoundReview), WriteErrors)
)]
#[put("/rounds/{id}/disclosure-review")]
pub async fn put_review(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let round_id = id.into_inner();
    let validators = ctx.validators.clone();
    let review = ctx
        .write(granted, move |conn, author| {
            let round = found(Rounds::find(conn, round_id)?, Rounds::NAME, round_id)?;
            let input = validators
                .body::<ReviewInput>(body.value()?)
                .into_result()?;
            judge(conn, author, &round, &input, db::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(review))
}
