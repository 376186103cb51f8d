//! A person's disclosure (ACCME Standard 3): every financial relationship with an ineligible
//! company in the 24 months before they attest it, or their statement that they have none
//! (`GET/PUT /api/v1/speakers/{id}/disclosure`), and every earlier attestation kept as history
//! (`GET /api/v1/speakers/{id}/disclosure/history`).
//!
//! The people who control content are speakers' records (the series' planners too), so one
//! disclosure serves every round they are on. It is current for the series'
//! `disclosure_valid_months` from `attested_at`; a new attestation supersedes the older ones,
//! which stay as the record of what was attested when. Organizers read and write any; a speaker
//! signed in with the identity provider's subject on their record (`speakers.sub`) reads and
//! writes their own.

use actix_web::{get, put, web, HttpResponse};
use chrono::{Months, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::auth::{Caller, Role, Subject};
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, LocalDate, Name, Text, Timestamp};
use crate::platform::http::JsonBody;
use crate::platform::resource::{Author, Ctx, Resource};
use crate::platform::schema::{disclosure_relationships, disclosures, speakers};
use crate::platform::validate::{Doc, Input};
use crate::schedule::series::{self, SeriesRecord};
use crate::schedule::speakers::Speakers;

/// How far back a disclosure reaches: ACCME asks for every relationship of the past 24 months.
pub const LOOK_BACK_MONTHS: u32 = 24;
/// How far in the future an `attested_at` may be: a client's clock a little ahead.
pub const CLOCK_SKEW_MINUTES: i64 = 5;
/// The most attestations the history answers (newest first): decades of yearly ones.
pub const HISTORY_MAX: i64 = 100;

pub type Company = Name<200>;
pub type OtherDetail = Text<200>;

crate::text_enum! {
    /// The nature of a financial relationship, as ACCME lists them; `other` with
    /// `other_detail`.
    pub enum Nature {
        Employee = "employee",
        Researcher = "researcher",
        Consultant = "consultant",
        Advisor = "advisor",
        Speaker = "speaker",
        Contractor = "contractor",
        RoyaltiesOrPatent = "royalties_or_patent",
        ExecutiveRole = "executive_role",
        OwnershipInterest = "ownership_interest",
        Other = "other",
    }
}

impl Nature {
    /// How learners read it in a statement.
    pub fn phrase(self) -> &'static str {
        match self {
            Nature::Employee => "employee",
            Nature::Researcher => "researcher",
            Nature::Consultant => "consultant",
            Nature::Advisor => "advisor",
            Nature::Speaker => "speaker",
            Nature::Contractor => "contractor",
            Nature::RoyaltiesOrPatent => "royalties or patent beneficiary",
            Nature::ExecutiveRole => "executive role",
            Nature::OwnershipInterest => "ownership interest",
            Nature::Other => "other",
        }
    }
}

/// One financial relationship, as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationshipInput {
    /// The ineligible company's name (names only: never a logo).
    pub company: Company,
    pub nature: Nature,
    /// What the relationship is, when `nature` is `other` (required then, ignored otherwise).
    pub other_detail: Option<OtherDetail>,
    pub started_on: LocalDate,
    /// `null` while it goes on. One that ended more than 24 months before `attested_at` is
    /// outside the look-back and refused.
    pub ended_on: Option<LocalDate>,
}

crate::list_type!(
    /// The relationships of one attestation, in the order given.
    pub RelationshipInputs(RelationshipInput),
    max = 50
);

/// A disclosure, as written by PUT: a new attestation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "attested_at": "2026-11-02T14:00:00Z",
    "relationships": [{"company": "Example Pharma", "nature": "consultant",
        "started_on": "2025-03-01", "ended_on": null}]
}))]
pub struct DisclosureInput {
    /// When the person attested it (a form signed on paper, say); now when left out. Never in
    /// the future.
    pub attested_at: Option<Timestamp>,
    /// `true` (with an empty `relationships`) when the person has no financial relationship
    /// with an ineligible company in the past 24 months.
    #[serde(default)]
    pub no_relationships: bool,
    #[serde(default)]
    pub relationships: RelationshipInputs,
}

/// The UTC date of an instant, as the look-back counts from it.
fn date_of(at: NaiveDateTime) -> NaiveDate {
    at.date()
}

fn chrono_date(date: LocalDate) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&date.to_string(), "%Y-%m-%d").ok()
}

/// The first day of the look-back of an attestation made at `attested_at`: a relationship that
/// ended on this day is still in it, one that ended the day before is not.
pub fn look_back_start(attested_at: NaiveDateTime) -> NaiveDate {
    let day = date_of(attested_at);
    day.checked_sub_months(Months::new(LOOK_BACK_MONTHS))
        .unwrap_or(NaiveDate::MIN)
}

/// Until when an attestation made at `attested_at` is current: it is current at every instant
/// before this one (a month after 31 January is the last day of February).
pub fn current_until(attested_at: NaiveDateTime, valid_months: i64) -> NaiveDateTime {
    let months = Months::new(u32::try_from(valid_months.max(0)).unwrap_or(0));
    attested_at
        .checked_add_months(months)
        .unwrap_or(NaiveDateTime::MAX)
}

impl Input for DisclosureInput {
    /// A list or `no_relationships`, never both and never neither; `other_detail` for `other`;
    /// dates in order, within the look-back and not after the attestation.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let now = db::now();
        let attested_at = match doc.get::<Timestamp>("attested_at") {
            Some(at) => {
                if at.naive() > now + chrono::Duration::minutes(CLOCK_SKEW_MINUTES) {
                    errors.push(FieldError::new(
                        "attested_at",
                        "is in the future: a disclosure is attested when it is made",
                    ));
                }
                at.naive()
            }
            None => now,
        };
        let none = doc.get::<bool>("no_relationships").unwrap_or(false);
        let items = doc.items::<RelationshipInput>("relationships");
        if none && !items.is_empty() {
            errors.push(FieldError::new(
                "relationships",
                "must be empty when no_relationships is true",
            ));
        }
        if !none && items.is_empty() {
            errors.push(FieldError::new(
                "relationships",
                "list every financial relationship with an ineligible company of the past 24 \
                 months, or send no_relationships: true",
            ));
        }
        let attested_on = date_of(attested_at);
        let earliest = look_back_start(attested_at);
        for (i, item) in items.into_iter().enumerate() {
            let Some(item) = item else {
                continue;
            };
            let field = |name: &str| format!("relationships[{i}].{name}");
            if item.nature == Nature::Other && Text::non_blank(item.other_detail.as_ref()).is_none()
            {
                errors.push(FieldError::new(
                    field("other_detail"),
                    "is required when nature is other: say what the relationship is",
                ));
            }
            let started = chrono_date(item.started_on);
            if started.is_some_and(|s| s > attested_on) {
                errors.push(FieldError::new(
                    field("started_on"),
                    format!("is after attested_at ({attested_on}): disclose what has begun"),
                ));
            }
            let Some(ended) = item.ended_on.and_then(chrono_date) else {
                continue;
            };
            if started.is_some_and(|s| ended < s) {
                errors.push(FieldError::new(field("ended_on"), "is before started_on"));
            } else if ended < earliest {
                errors.push(FieldError::new(
                    field("ended_on"),
                    format!(
                        "is outside the look-back: the relationship ended before {earliest}, more \
                         than {LOOK_BACK_MONTHS} months before attested_at ({attested_on}); leave \
                         it out"
                    ),
                ));
            } else if ended > attested_on {
                errors.push(FieldError::new(
                    field("ended_on"),
                    format!(
                        "is after attested_at ({attested_on}): a relationship that goes on has \
                         no ended_on"
                    ),
                ));
            }
        }
        errors
    }
}

/// One financial relationship, as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Relationship {
    /// Its id, which a round's review judges (each attestation's relationships have their own).
    pub id: Id,
    pub company: Company,
    pub nature: Nature,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub other_detail: Option<OtherDetail>,
    pub started_on: LocalDate,
    pub ended_on: Option<LocalDate>,
}

impl Relationship {
    /// "Example Pharma (consultant)", as a statement prints it.
    pub fn phrase(&self) -> String {
        match (&self.nature, Text::non_blank(self.other_detail.as_ref())) {
            (Nature::Other, Some(detail)) => format!("{} (other: {detail})", self.company),
            (nature, _) => format!("{} ({})", self.company, nature.phrase()),
        }
    }
}

crate::list_type!(
    /// The relationships of one attestation.
    pub Relationships(Relationship),
    max = 50
);

/// One attestation of a person's financial relationships.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 4, "speaker_id": 7, "attested_at": "2026-11-02T14:00:00Z", "no_relationships": false,
    "relationships": [{"id": 9, "company": "Example Pharma", "nature": "consultant",
        "started_on": "2025-03-01", "ended_on": null}],
    "current_until": "2027-11-02T14:00:00Z", "current": true,
    "created_at": "2026-11-02T14:00:05Z", "created_by": "mihaela.stefan@example.org"
}))]
pub struct Disclosure {
    pub id: Id,
    pub speaker_id: Id,
    pub attested_at: Timestamp,
    pub no_relationships: bool,
    pub relationships: Relationships,
    /// `attested_at` plus the series' `disclosure_valid_months`: current before this instant.
    pub current_until: Timestamp,
    /// Whether it is current now (and the latest attestation).
    pub current: bool,
    pub created_at: Timestamp,
    /// Who wrote it: an organizer, or the speaker.
    pub created_by: Option<Subject>,
}

crate::list_type!(
    /// Attestations, newest first.
    pub Disclosures(Disclosure),
    max = 100
);

/// A person's attestations, newest first: the first is the one that counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DisclosureHistory {
    pub speaker_id: Id,
    pub items: Disclosures,
}

// ---- persistence -------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = disclosures)]
struct DisclosureRow {
    id: i32,
    speaker_id: i32,
    attested_at: NaiveDateTime,
    no_relationships: bool,
    created_at: NaiveDateTime,
    created_by: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = disclosure_relationships)]
struct RelationshipRow {
    id: i32,
    disclosure_id: i32,
    company: String,
    nature: Nature,
    other_detail: Option<String>,
    started_on: String,
    ended_on: Option<String>,
}

impl From<RelationshipRow> for Relationship {
    fn from(row: RelationshipRow) -> Self {
        Relationship {
            id: Id(row.id),
            company: Name::stored(row.company),
            nature: row.nature,
            other_detail: row.other_detail.map(Text::stored),
            started_on: LocalDate::parse(&row.started_on)
                .unwrap_or(LocalDate(jiff::civil::Date::MIN)),
            ended_on: row.ended_on.as_deref().and_then(LocalDate::parse),
        }
    }
}

/// The series' `disclosure_valid_months`.
pub fn valid_months(conn: &mut DbConnection) -> Result<i64, ApiError> {
    let series = SeriesRecord::find(conn, series::ID)?
        .ok_or_else(|| ApiError::Internal("the series row is missing".to_owned()))?;
    Ok(series.disclosure_valid_months.get())
}

/// The attestations of the rows, with their relationships, in the rows' order.
fn with_relationships(
    conn: &mut DbConnection,
    rows: Vec<DisclosureRow>,
    valid_months: i64,
    now: NaiveDateTime,
) -> Result<Vec<Disclosure>, ApiError> {
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let relationships: Vec<RelationshipRow> = disclosure_relationships::table
        .filter(disclosure_relationships::disclosure_id.eq_any(&ids))
        .order((
            disclosure_relationships::disclosure_id,
            disclosure_relationships::position,
        ))
        .select(RelationshipRow::as_select())
        .load(conn)?;
    let relationships: Vec<(i32, Relationship)> = relationships
        .into_iter()
        .map(|r| (r.disclosure_id, Relationship::from(r)))
        .collect();
    let latest = rows.first().map(|r| r.id);
    Ok(rows
        .into_iter()
        .map(|row| {
            let mine: Vec<Relationship> = relationships
                .iter()
                .filter(|(of, _)| *of == row.id)
                .map(|(_, r)| r.clone())
                .collect();
            let until = current_until(row.attested_at, valid_months);
            Disclosure {
                id: Id(row.id),
                speaker_id: Id(row.speaker_id),
                attested_at: Timestamp::from_naive(row.attested_at),
                no_relationships: row.no_relationships,
                relationships: Relationships(mine),
                current_until: Timestamp::from_naive(until),
                current: Some(row.id) == latest && now < until,
                created_at: Timestamp::from_naive(row.created_at),
                created_by: row.created_by.map(Text::stored),
            }
        })
        .collect())
}

/// The attestations of `speaker_id` made at or before `until` (all of them: `None`), newest
/// first (by `attested_at`, then as written).
fn attested(
    conn: &mut DbConnection,
    speaker_id: i32,
    until: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<Disclosure>, ApiError> {
    let mut query = disclosures::table
        .filter(disclosures::speaker_id.eq(speaker_id))
        .into_boxed();
    if let Some(until) = until {
        query = query.filter(disclosures::attested_at.le(until));
    }
    let rows: Vec<DisclosureRow> = query
        .order((disclosures::attested_at.desc(), disclosures::id.desc()))
        .limit(limit)
        .select(DisclosureRow::as_select())
        .load(conn)?;
    let months = valid_months(conn)?;
    with_relationships(conn, rows, months, db::now())
}

/// The attestations of `speaker_id`, newest first (by `attested_at`, then as written).
pub fn history(
    conn: &mut DbConnection,
    speaker_id: i32,
    limit: i64,
) -> Result<Vec<Disclosure>, ApiError> {
    attested(conn, speaker_id, None, limit)
}

/// The attestation that counts for `speaker_id` now: their latest, current or not.
pub fn latest(conn: &mut DbConnection, speaker_id: i32) -> Result<Option<Disclosure>, ApiError> {
    Ok(history(conn, speaker_id, 1)?.into_iter().next())
}

/// The attestation that counts for a round starting at `starts_at`: the latest made by then.
/// One attested after the round started came too late for it, and a later one never changes
/// what a past round was judged and published on.
pub fn latest_at(
    conn: &mut DbConnection,
    speaker_id: i32,
    starts_at: NaiveDateTime,
) -> Result<Option<Disclosure>, ApiError> {
    Ok(attested(conn, speaker_id, Some(starts_at), 1)?
        .into_iter()
        .next())
}

/// Writes a new attestation of `speaker_id` (who exists) and records it in the change log.
pub fn attest(
    conn: &mut DbConnection,
    author: Author<'_>,
    speaker_id: i32,
    input: &DisclosureInput,
) -> Result<Disclosure, ApiError> {
    let now = db::now();
    let attested_at = input.attested_at.map(Timestamp::naive).unwrap_or(now);
    let id: i32 = diesel::insert_into(disclosures::table)
        .values((
            disclosures::speaker_id.eq(speaker_id),
            disclosures::attested_at.eq(attested_at),
            disclosures::no_relationships.eq(input.no_relationships),
            disclosures::created_at.eq(now),
            disclosures::created_by.eq(author.actor),
        ))
        .returning(disclosures::id)
        .get_result(conn)?;
    if !input.no_relationships {
        let rows: Vec<_> = input
            .relationships
            .0
            .iter()
            .enumerate()
            .map(|(position, r)| {
                (
                    disclosure_relationships::disclosure_id.eq(id),
                    disclosure_relationships::position.eq(position as i32),
                    disclosure_relationships::company.eq(r.company.as_str().trim().to_owned()),
                    disclosure_relationships::nature.eq(r.nature),
                    disclosure_relationships::other_detail.eq((r.nature == Nature::Other)
                        .then(|| Text::non_blank(r.other_detail.as_ref()).map(str::to_owned))
                        .flatten()),
                    disclosure_relationships::started_on.eq(r.started_on.to_string()),
                    disclosure_relationships::ended_on.eq(r.ended_on.map(|d| d.to_string())),
                )
            })
            .collect();
        if !rows.is_empty() {
            crate::on_backend!(conn, |c| diesel::insert_into(
                disclosure_relationships::table
            )
            .values(&rows)
            .execute(c))?;
        }
    }
    let row = disclosures::table
        .find(id)
        .select(DisclosureRow::as_select())
        .first(conn)?;
    let months = valid_months(conn)?;
    let written = with_relationships(conn, vec![row], months, now)?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("a disclosure written and not read".to_owned()))?;
    // Current only if it is now the latest attestation (one dated before an existing one is
    // history as soon as it is written).
    let written = match latest(conn, speaker_id)? {
        Some(latest) if latest.id == written.id => latest,
        _ => Disclosure {
            current: false,
            ..written
        },
    };
    author.record(conn, "disclosure", id, None, Some(&written))?;
    Ok(written)
}

/// 403 unless the caller is an organizer or the speaker `speaker_id` signed in (their record's
/// `sub` is the token's); then 404 if there is no such speaker. Whether a speaker exists is no
/// one else's to learn from the difference between a 403 and a 404.
pub fn authorize_person(
    conn: &mut DbConnection,
    caller: &Caller,
    speaker_id: i32,
) -> Result<(), ApiError> {
    let sub = speakers::table
        .find(speaker_id)
        .select(speakers::sub)
        .first::<Option<String>>(conn)
        .optional()?;
    if caller.can(Role::Organizer) {
        return match sub {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found(Speakers::NAME, speaker_id)),
        };
    }
    match (sub.flatten(), caller.subject.as_deref()) {
        (Some(theirs), Some(mine)) if theirs == mine => Ok(()),
        _ => Err(ApiError::Forbidden(
            "a disclosure is read and written by organizers and by the speaker themselves: this \
             one is not yours"
                .to_owned(),
        )),
    }
}

// ---- handlers ----------------------------------------------------------------------------

/// Get a speaker's disclosure: their latest attestation
///
/// For organizers, and for the speaker themselves, signed in with the identity provider's
/// subject stored on their record (`sub`). `current` says whether it is still current (the
/// series' `disclosure_valid_months` from `attested_at`). 404 when they have attested none.
#[utoipa::path(
    tag = "disclosures",
    security(("bearer" = [])),
    params(("id" = Id, Path, description = "Speaker id")),
    responses((status = 200, description = "The latest attestation", body = Disclosure), ReadErrors)
)]
#[get("/speakers/{id}/disclosure")]
pub async fn get_disclosure(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let speaker_id = id.into_inner();
    let caller = ctx.caller.clone();
    ctx.read(granted, false, true, None, move |conn| {
        authorize_person(conn, &caller, speaker_id)?;
        let latest = latest(conn, speaker_id)?.ok_or_else(|| {
            ApiError::NotFound(format!("speaker {speaker_id} has attested no disclosure"))
        })?;
        Rendered::json(&latest)
    })
    .await
}

/// Attest a speaker's disclosure: every financial relationship of the past 24 months
///
/// Each PUT is a new attestation: it becomes the one that counts (the latest by `attested_at`),
/// and the earlier ones stay as history. Send `relationships`, or `no_relationships: true` with
/// none. A relationship that ended more than 24 months before `attested_at` is refused (422,
/// outside the look-back). For organizers, and for the speaker themselves.
#[utoipa::path(
    tag = "disclosures",
    security(("bearer" = [])),
    params(("id" = Id, Path, description = "Speaker id")),
    request_body = DisclosureInput,
    responses((status = 200, description = "The attestation as written", body = Disclosure), WriteErrors)
)]
#[put("/speakers/{id}/disclosure")]
pub async fn put_disclosure(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let speaker_id = id.into_inner();
    let caller = ctx.caller.clone();
    let validators = ctx.validators.clone();
    let written = ctx
        .write(granted, move |conn, author| {
            authorize_person(conn, &caller, speaker_id)?;
            let input = validators
                .body::<DisclosureInput>(body.value()?)
                .into_result()?;
            attest(conn, author, speaker_id, &input)
        })
        .await?;
    Ok(HttpResponse::Ok().json(written))
}

/// A speaker's attestations, newest first
///
/// Every disclosure the speaker attested (at most the latest 100), the one that counts first.
/// For organizers, and for the speaker themselves.
#[utoipa::path(
    tag = "disclosures",
    security(("bearer" = [])),
    params(("id" = Id, Path, description = "Speaker id")),
    responses((status = 200, description = "The attestations, newest first", body = DisclosureHistory), ReadErrors)
)]
#[get("/speakers/{id}/disclosure/history")]
pub async fn disclosure_history(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let speaker_id = id.into_inner();
    let caller = ctx.caller.clone();
    ctx.read(granted, false, true, None, move |conn| {
        authorize_person(conn, &caller, speaker_id)?;
        Rendered::json(&DisclosureHistory {
            speaker_id: Id(speaker_id),
            items: Disclosures(history(conn, speaker_id, HISTORY_MAX)?),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("a test time")
    }

    #[test]
    fn the_look_back_is_24_months_to_the_day() {
        let start = look_back_start(at("2026-06-15 12:00:00"));
        assert_eq!(start, NaiveDate::from_ymd_opt(2024, 6, 15).expect("a date"));
        // From the last day of February of a leap year: two years back has no 29th.
        let start = look_back_start(at("2028-02-29 12:00:00"));
        assert_eq!(start, NaiveDate::from_ymd_opt(2026, 2, 28).expect("a date"));
    }

    #[test]
    fn an_attestation_is_current_for_its_months() {
        let attested = at("2026-01-31 09:00:00");
        assert_eq!(current_until(attested, 12), at("2027-01-31 09:00:00"));
        assert_eq!(current_until(attested, 1), at("2026-02-28 09:00:00"));
    }

    #[test]
    fn natures_read_as_learners_read_them() {
        assert_eq!(Nature::RoyaltiesOrPatent.as_str(), "royalties_or_patent");
        assert_eq!(
            Nature::RoyaltiesOrPatent.phrase(),
            "royalties or patent beneficiary"
        );
        assert_eq!(Nature::ALL.len(), 10);
    }
}
