//! The disclosure statement learners see before a round (`POST/GET
//! /api/v1/rounds/{id}/disclosure-statement`): each person who controls the round's content,
//! with their credentials and role, and their relevant financial relationships (company and
//! nature) or that they have none; and that all relevant relationships were mitigated.
//!
//! A statement is published by an organizer once nothing but the statement keeps the round from
//! being ready (`reviews::publishing_blockers`), and is then
//! frozen: its text and its structured content are stored as published, and never changed.
//! Publishing again after a change makes a new version; every version is kept, as the evidence
//! of what learners were shown. Relationships judged not relevant, and reviewers' notes, are
//! never in it.

use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::platform::auth::Role;
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, Int, Text, Timestamp};
use crate::platform::resource::{found, Author, Ctx, Resource, API_PREFIX};
use crate::platform::schema::disclosure_statements;
use crate::platform::validate::Query;
use crate::schedule::rounds::{Round, Rounds, Title};
use crate::schedule::speakers::{Credentials, DisplayName, FullName};

use super::relationships::{Company, Nature, OtherDetail};
use super::reviews::{self, PersonRole, PersonRoles};

/// What a person without a relevant relationship is said to have.
pub const NO_RELEVANT_RELATIONSHIPS: &str =
    "has no relevant financial relationships with ineligible companies";
/// The sentence every statement ends with (ACCME Standard 5's wording).
pub const ALL_MITIGATED: &str =
    "All relevant financial relationships listed for these individuals have been mitigated.";

/// A statement's version: 1 for the first published.
pub type Version = Int<1, 100000>;
pub type Sentence = Text<12000>;
pub type StatementText = Text<800000>;

/// A relevant relationship, as learners see it: the company and the nature, nothing else.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DisclosedRelationship {
    pub company: Company,
    pub nature: Nature,
    /// What the relationship is, for `nature: other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub other_detail: Option<OtherDetail>,
}

crate::list_type!(
    /// A person's relevant relationships.
    pub DisclosedRelationships(DisclosedRelationship),
    max = 50
);

/// One person of a statement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementPerson {
    pub speaker_id: Id,
    pub full_name: FullName,
    pub credentials: Credentials,
    pub display_name: DisplayName,
    /// Their role: their place on the round, or their part in the series.
    pub role: PersonRole,
    /// Every role, when they have two (a presenter who also plans the series).
    pub roles: PersonRoles,
    /// Their relevant relationships; empty when they have none.
    pub relevant_relationships: DisclosedRelationships,
    /// What the statement says of them, as a sentence.
    pub disclosure: Sentence,
}

crate::list_type!(
    /// The people of a statement, in the round's order, then the planners.
    pub StatementPeople(StatementPerson),
    max = 60
);

/// What a statement says: frozen when it is published.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementContent {
    pub round_title: Option<Title>,
    pub round_starts_at: Timestamp,
    pub people: StatementPeople,
    /// That all relevant financial relationships have been mitigated.
    pub mitigation_statement: Sentence,
    /// The whole statement as text, as it is shown.
    pub text: StatementText,
}

/// A published version of a round's disclosure statement.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "round_id": 3, "version": 1, "published_at": "2019-04-18T16:00:00Z",
    "round_title": "How can we use patient comments to improve care?",
    "round_starts_at": "2019-04-25T16:00:00Z",
    "people": [{"speaker_id": 7, "full_name": "Tara Lagu", "credentials": ["MD", "MPH"],
        "display_name": "Tara Lagu, MD, MPH", "role": "presenter", "roles": ["presenter"],
        "relevant_relationships": [],
        "disclosure": "Tara Lagu, MD, MPH (presenter) has no relevant financial relationships with ineligible companies."}],
    "mitigation_statement": "All relevant financial relationships listed for these individuals have been mitigated.",
    "text": "Disclosures for \"How can we use patient comments to improve care?\" ..."
}))]
pub struct DisclosureStatement {
    pub round_id: Id,
    pub version: Version,
    pub published_at: Timestamp,
    #[serde(flatten)]
    pub content: StatementContent,
}

// ---- the content ---------------------------------------------------------------------------

fn sentence(display_name: &str, role: PersonRole, relevant: &[DisclosedRelationship]) -> String {
    if relevant.is_empty() {
        return format!(
            "{display_name} ({}) {NO_RELEVANT_RELATIONSHIPS}.",
            role.as_str()
        );
    }
    let listed: Vec<String> = relevant
        .iter()
        .map(
            |r| match (&r.nature, Text::non_blank(r.other_detail.as_ref())) {
                (Nature::Other, Some(detail)) => format!("{} (other: {detail})", r.company),
                (nature, _) => format!("{} ({})", r.company, nature.phrase()),
            },
        )
        .collect();
    format!(
        "{display_name} ({}) has the following relevant financial relationships with ineligible \
         companies: {}.",
        role.as_str(),
        listed.join("; ")
    )
}

/// "2019-04-25 12:00", the round's start in the series' zone, as learners read it.
fn local_start(round: &Round) -> String {
    round.starts_at_local.0.format("%Y-%m-%d %H:%M").to_string()
}

/// The statement `round` would publish now (the caller has checked it is ready).
pub fn content_of(conn: &mut DbConnection, round: &Round) -> Result<StatementContent, ApiError> {
    let mut people = Vec::new();
    for p in reviews::disclosures_of(conn, round)? {
        // Only relationships judged relevant: one judged not relevant is never shown.
        let relevant: Vec<DisclosedRelationship> = p
            .judged
            .iter()
            .filter(|(_, j)| j.as_ref().is_some_and(|j| j.relevant))
            .map(|(r, _)| DisclosedRelationship {
                company: r.company.clone(),
                nature: r.nature,
                other_detail: r.other_detail.clone(),
            })
            .collect();
        let role = p
            .person
            .roles
            .first()
            .copied()
            .unwrap_or(PersonRole::Presenter);
        let said = sentence(p.person.display_name.as_str(), role, &relevant);
        people.push(StatementPerson {
            speaker_id: Id(p.person.speaker_id),
            full_name: p.person.full_name,
            credentials: p.person.credentials,
            display_name: p.person.display_name,
            role,
            roles: PersonRoles(p.person.roles),
            relevant_relationships: DisclosedRelationships(relevant),
            disclosure: Text::stored(said),
        });
    }
    let heading = match round.title.as_ref().map(|t| t.as_str()) {
        Some(title) if !title.trim().is_empty() => format!(
            "Disclosure of financial relationships: \"{title}\", {}",
            local_start(round)
        ),
        _ => format!(
            "Disclosure of financial relationships: LHS Rounds, {}",
            local_start(round)
        ),
    };
    let mut text = vec![heading, String::new()];
    if people.is_empty() {
        text.push("No one controls this round's content yet.".to_owned());
    }
    text.extend(people.iter().map(|p| p.disclosure.as_str().to_owned()));
    text.push(String::new());
    text.push(ALL_MITIGATED.to_owned());
    Ok(StatementContent {
        round_title: round.title.clone(),
        round_starts_at: round.starts_at,
        people: StatementPeople(people),
        mitigation_statement: Text::stored(ALL_MITIGATED),
        text: Text::stored(text.join("\n")),
    })
}

// ---- persistence -------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = disclosure_statements)]
struct StatementRow {
    id: i32,
    round_id: i32,
    version: i32,
    published_at: NaiveDateTime,
    content: String,
}

impl StatementRow {
    fn statement(self) -> Result<(i32, DisclosureStatement), ApiError> {
        let content: StatementContent = serde_json::from_str(&self.content)?;
        Ok((
            self.id,
            DisclosureStatement {
                round_id: Id(self.round_id),
                version: Version::clamped(i64::from(self.version)),
                published_at: Timestamp::from_naive(self.published_at),
                content,
            },
        ))
    }
}

/// When `round_id`'s first statement was published; `None` if none has been.
///
/// Credit needs a timely statement: attendance on a credit-bearing round whose first statement
/// was published after the round started is recorded `not_creditable` (reason: disclosure after
/// the start), unless an organizer overrides it with a written reason. Attendance asks this (or
/// [`published_in_time`]) in the transaction that records a check-in, and again when it reports
/// credit, since a statement may be published after the first check-in. The override is the
/// attendance record's to store, since it is about that record and not the statement: the
/// written reason (required, non-blank text, like a review's note), the organizer's `sub` and
/// the time, recorded through the change log like any write. Later versions never move the
/// first publication: what counts is when learners were first told.
pub fn first_published_at(
    conn: &mut DbConnection,
    round_id: i32,
) -> Result<Option<NaiveDateTime>, ApiError> {
    Ok(disclosure_statements::table
        .filter(disclosure_statements::round_id.eq(round_id))
        .select(diesel::dsl::min(disclosure_statements::published_at))
        .first::<Option<NaiveDateTime>>(conn)?)
}

/// Whether learners of a round starting at `starts_at` were shown a statement in time: its first
/// was published at or before the start. `false` when none has been published.
pub fn published_in_time(
    conn: &mut DbConnection,
    round_id: i32,
    starts_at: NaiveDateTime,
) -> Result<bool, ApiError> {
    Ok(first_published_at(conn, round_id)?.is_some_and(|first| first <= starts_at))
}

/// `round_id`'s statement of `version`, or its latest.
pub fn find(
    conn: &mut DbConnection,
    round_id: i32,
    version: Option<i64>,
) -> Result<Option<DisclosureStatement>, ApiError> {
    let mut query = disclosure_statements::table
        .filter(disclosure_statements::round_id.eq(round_id))
        .into_boxed();
    if let Some(version) = version {
        query = query.filter(disclosure_statements::version.eq(version as i32));
    }
    query
        .order(disclosure_statements::version.desc())
        .select(StatementRow::as_select())
        .first(conn)
        .optional()?
        .map(|row| row.statement().map(|(_, s)| s))
        .transpose()
}

/// What publishing did: a new version, or none because nothing changed since the latest.
pub enum Published {
    New(DisclosureStatement),
    Unchanged(DisclosureStatement),
}

/// Publishes `round`'s statement as of `at` (now, but for the demo's history): 409 with the
/// blockers unless the round is ready; the latest version again when nothing changed since it.
pub fn publish_at(
    conn: &mut DbConnection,
    author: Author<'_>,
    round: &Round,
    at: NaiveDateTime,
) -> Result<Published, ApiError> {
    let blockers = reviews::publishing_blockers(conn, round)?;
    if !blockers.is_empty() {
        return Err(ApiError::NotReady {
            detail: format!(
                "round {} is not ready for its disclosure statement: {} blocker{} (see \
                 GET /rounds/{}/readiness)",
                round.id.0,
                blockers.len(),
                if blockers.len() == 1 { "" } else { "s" },
                round.id.0
            ),
            blockers: blockers
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
        });
    }
    let content = content_of(conn, round)?;
    let latest = find(conn, round.id.0, None)?;
    if let Some(latest) = latest.as_ref() {
        if serde_json::to_value(&latest.content)? == serde_json::to_value(&content)? {
            return Ok(Published::Unchanged(latest.clone()));
        }
    }
    let version = latest.map(|l| l.version.get() + 1).unwrap_or(1);
    let id: i32 = diesel::insert_into(disclosure_statements::table)
        .values((
            disclosure_statements::round_id.eq(round.id.0),
            disclosure_statements::version.eq(version as i32),
            disclosure_statements::published_at.eq(at),
            disclosure_statements::published_by.eq(author.actor),
            disclosure_statements::text.eq(content.text.as_str()),
            disclosure_statements::content.eq(serde_json::to_string(&content)?),
        ))
        .returning(disclosure_statements::id)
        .get_result(conn)?;
    let statement = DisclosureStatement {
        round_id: round.id,
        version: Version::clamped(version),
        published_at: Timestamp::from_naive(at),
        content,
    };
    author.record(conn, "disclosure_statement", id, None, Some(&statement))?;
    Ok(Published::New(statement))
}

// ---- handlers ----------------------------------------------------------------------------

/// Which version to read.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// An earlier version (organizers only); the latest when left out.
    pub version: Option<Version>,
}

/// Publish a round's disclosure statement for learners
///
/// Refused (409, with the `blockers` of `GET /rounds/{id}/readiness`) until every person on the
/// round has a disclosure current at its start, every relationship is judged and every relevant
/// one mitigated, and credit is designated. The statement is then frozen as version 1, or the
/// next version when something changed since the latest (201); when nothing changed, the latest
/// is answered as it is (200). Every version is kept. Publishing is the webhook event
/// `disclosure_statement.published`. Organizers only.
#[utoipa::path(
    tag = "disclosures",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    responses(
        (status = 201, description = "A new version, published", body = DisclosureStatement),
        (status = 200, description = "Nothing changed: the latest version", body = DisclosureStatement),
        WriteErrors
    )
)]
#[post("/rounds/{id}/disclosure-statement")]
pub async fn publish(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let round_id = id.into_inner();
    let published = ctx
        .write(granted, move |conn, author| {
            let round = found(Rounds::find(conn, round_id)?, Rounds::NAME, round_id)?;
            publish_at(conn, author, &round, db::now())
        })
        .await?;
    Ok(match published {
        Published::New(statement) => HttpResponse::Created()
            .insert_header((
                actix_web::http::header::LOCATION,
                format!(
                    "{API_PREFIX}/rounds/{round_id}/disclosure-statement?version={}",
                    statement.version.get()
                ),
            ))
            .json(statement),
        Published::Unchanged(statement) => HttpResponse::Ok().json(statement),
    })
}

/// Get a round's disclosure statement, as learners see it
///
/// The latest published version: each person who controls the round's content with their
/// credentials and role, their relevant financial relationships (company and nature) or that
/// they have none, the sentence that all relevant relationships have been mitigated, and
/// `published_at`. Public. `?version=N` answers an earlier version, for organizers. 404 until
/// one is published.
#[utoipa::path(
    tag = "disclosures",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Round id"), StatementQuery),
    responses((status = 200, description = "The statement", body = DisclosureStatement), ReadErrors)
)]
#[get("/rounds/{id}/disclosure-statement")]
pub async fn get_statement(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    // Public: the latest version is what learners are shown.
    let granted = ctx.authorize_with(ctx.caller.require_reader())?;
    let round_id = id.into_inner();
    let query = query.values()?;
    let given: StatementQuery = query.get()?;
    // An earlier version is evidence for organizers, checked before anything is looked up.
    if given.version.is_some() {
        ctx.caller.require(Role::Organizer)?;
    }
    let version = given.version.map(Version::get);
    ctx.read(granted, false, false, Some(&query), move |conn| {
        let statement = find(conn, round_id, version)?.ok_or_else(|| match version {
            Some(v) => ApiError::NotFound(format!(
                "round {round_id} has no disclosure statement of version {v}"
            )),
            None => ApiError::NotFound(format!(
                "no disclosure statement has been published for round {round_id} yet"
            )),
        })?;
        Rendered::json(&statement)
    })
    .await
}
