//! Planning the year: `POST /api/v1/series/plan` lays the series' rounds out by its recurrence
//! (see [`crate::schedule::recurrence`]) over a range of local dates, at the series' default
//! start time, duration and place, with no title yet. A date that already has a round is left
//! as it is; a date skipped (now or by an earlier plan) gets no round and keeps its reason in the
//! series' `skipped_dates`, so that the next plan does not bring it back. With `preview` the
//! same answer comes back and nothing is written. One transaction: all or nothing.

use actix_web::{post, HttpResponse};
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::auth::Role;
use crate::platform::db::DbConnection;
use crate::platform::error::{ApiError, FieldError, WriteErrors};
use crate::platform::fields::{Id, LocalDate, LocalTimestamp, Name, Timestamp};
use crate::platform::http::JsonBody;
use crate::platform::idempotency::StoredAnswer;
use crate::platform::resource::{self, Author, Ctx, Keyed, New, Resource, Update};
use crate::platform::schema::{rounds, series as series_table};
use crate::platform::timezone::{self, Zone};
use crate::platform::validate::{Doc, Input};
use crate::schedule::recurrence::expand::{
    check_range, local_start, ExpansionError, Limits, MAX_OCCURRENCES,
};
use crate::schedule::recurrence::plan::{self as classify, Existing, Skip};
use crate::schedule::recurrence::rule::Rule;
use crate::schedule::rounds::{
    DepartmentIds, Location, Panel, Round, RoundInput, RoundStatus, Rounds,
};
use crate::schedule::series::{self, Series, SeriesRecord, SkipReason, SkippedDate, SkippedDates};

/// Where a planned round is held when the series has no default location.
pub const LOCATION_TO_BE_ANNOUNCED: &str = "TBA";

crate::list_type!(
    /// Dates to skip, with why; each date once, within `from` and `to`.
    pub SkipList(SkippedDate),
    max = MAX_OCCURRENCES
);

/// What to plan: a range of local dates in the series' time zone, both included.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "from": "2019-01-01", "to": "2019-12-31",
    "skip": [{"date": "2019-08-15", "reason": "No round in August"}],
    "preview": true
}))]
pub struct PlanInput {
    /// The first local date of the range.
    pub from: LocalDate,
    /// The last local date of the range: at most five years after `from` (less a day).
    pub to: LocalDate,
    /// Occurrences to hold no round on, with why; stored in the series' `skipped_dates`.
    #[serde(default)]
    pub skip: SkipList,
    /// Answer what the plan would do, and change nothing.
    #[serde(default)]
    pub preview: bool,
}

impl Input for PlanInput {
    /// `to` not before `from` and within five years of it; each skipped date once, in range.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let range = (doc.get::<LocalDate>("from"), doc.get::<LocalDate>("to"));
        if let (Some(from), Some(to)) = range {
            if let Err(error) = check_range(from.date(), to.date(), &Limits::default()) {
                errors.push(FieldError::new("to", range_message(&error)));
            }
        }
        let mut seen: Vec<(LocalDate, usize)> = Vec::new();
        for (i, skip) in doc.items::<SkippedDate>("skip").into_iter().enumerate() {
            let Some(skip) = skip else {
                continue;
            };
            let field = format!("skip[{i}].date");
            if let (Some(from), Some(to)) = range {
                if skip.date < from || skip.date > to {
                    errors.push(FieldError::new(
                        &field,
                        format!("{} is not between from ({from}) and to ({to})", skip.date),
                    ));
                    continue;
                }
            }
            match seen.iter().find(|(date, _)| *date == skip.date) {
                Some((_, first)) => errors.push(FieldError::new(
                    &field,
                    format!("{} is already skipped (skip[{first}])", skip.date),
                )),
                None => seen.push((skip.date, i)),
            }
        }
        errors
    }
}

/// What a range error says to the person who sent it.
fn range_message(error: &ExpansionError) -> String {
    match error {
        ExpansionError::ReversedRange { from, .. } => {
            format!("must not be before from ({from})")
        }
        ExpansionError::RangeTooLong {
            from,
            max_years,
            last_allowed,
            ..
        } => format!(
            "a plan covers at most {max_years} years: from {from} it may end on {last_allowed} \
             at the latest"
        ),
        ExpansionError::TooManyOccurrences { max } => format!(
            "the range holds more than {max} occurrences of the series' recurrence: plan a \
             shorter range"
        ),
        ExpansionError::OutOfRange => "is beyond the dates the service handles".to_owned(),
    }
}

/// A round the plan makes (or, in a preview, would make).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlannedRound {
    /// The local date, in the series' time zone.
    pub date: LocalDate,
    /// The round made; `null` in a preview.
    pub round_id: Option<Id>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// `starts_at` in the series' time zone: the default start time on every date, on either
    /// side of a clock change.
    pub starts_at_local: LocalTimestamp,
    pub ends_at_local: LocalTimestamp,
    pub location: Location,
}

/// A date that already has a round.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExistingRound {
    /// The local date, in the series' time zone.
    pub date: LocalDate,
    pub round_id: Id,
}

/// What a plan did, or would do: every occurrence of the range in exactly one of `created`,
/// `skipped` and `existing`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "created": [{"date": "2019-03-21", "round_id": null, "starts_at": "2019-03-21T16:00:00Z",
        "ends_at": "2019-03-21T17:00:00Z", "starts_at_local": "2019-03-21T12:00:00-04:00",
        "ends_at_local": "2019-03-21T13:00:00-04:00", "location": "BMC – MassMutual 5"}],
    "skipped": [{"date": "2019-08-15", "reason": "No round in August"}],
    "existing": [{"date": "2019-01-17", "round_id": 1}],
    "off_rule": [{"date": "2019-02-14", "round_id": 2}],
    "preview": true
}))]
pub struct PlanResult {
    /// The rounds made, or that would be made, by date.
    #[schema(max_items = 500)]
    pub created: Vec<PlannedRound>,
    /// The occurrences skipped, with why, by date.
    #[schema(max_items = 500)]
    pub skipped: Vec<SkippedDate>,
    /// The occurrences that already have a round, by date.
    #[schema(max_items = 500)]
    pub existing: Vec<ExistingRound>,
    /// Rounds in the range on a date the rule does not give (a round moved off its date, or an
    /// extra one), by date. They do not stop the rule's own date from being planned: skip it
    /// to keep that date free.
    #[schema(max_items = 500)]
    pub off_rule: Vec<ExistingRound>,
    /// Whether this was a preview (nothing was written).
    pub preview: bool,
}

/// The series' rule and defaults, as a plan reads them.
struct Plan {
    rule: Rule,
    zone: Zone,
    start: jiff::civil::Time,
    minutes: i64,
    location: Location,
}

impl Plan {
    fn of(series: &Series) -> Result<Plan, ApiError> {
        let rule = series.rule().ok_or_else(|| {
            ApiError::Conflict(
                "the series has no recurrence to plan by: set one first, such as \
                 PATCH /api/v1/series {\"recurrence\": \"FREQ=MONTHLY;BYDAY=3TH\"}"
                    .to_owned(),
            )
        })?;
        let time = series.default_start_time.time();
        let start = jiff::civil::Time::new(
            i8::try_from(chrono::Timelike::hour(&time)).unwrap_or(12),
            i8::try_from(chrono::Timelike::minute(&time)).unwrap_or(0),
            0,
            0,
        )
        .map_err(|e| ApiError::Internal(format!("the series' start time: {e}")))?;
        let location = series
            .default_location
            .as_ref()
            .map(|l| l.as_str().trim())
            .filter(|l| !l.is_empty())
            .unwrap_or(LOCATION_TO_BE_ANNOUNCED);
        Ok(Plan {
            rule,
            zone: series.zone(),
            start,
            minutes: series.default_duration_minutes.get(),
            location: Name::stored(location),
        })
    }

    /// The start and end of a round on the local `date`.
    fn times(&self, date: LocalDate) -> Result<(Timestamp, Timestamp), ApiError> {
        let start = local_start(date.date(), self.start, &self.zone)
            .map_err(|_| ApiError::validation("to", "is beyond the dates the service handles"))?;
        let start = DateTime::<Utc>::from_timestamp(start.as_second(), 0)
            .ok_or_else(|| ApiError::validation("to", "is beyond the dates the service handles"))?;
        Ok((
            Timestamp(start),
            Timestamp(start + chrono::Duration::minutes(self.minutes)),
        ))
    }

    fn planned(&self, date: LocalDate, round_id: Option<Id>) -> Result<PlannedRound, ApiError> {
        let (starts_at, ends_at) = self.times(date)?;
        Ok(PlannedRound {
            date,
            round_id,
            starts_at,
            ends_at,
            starts_at_local: LocalTimestamp::in_zone(starts_at, &self.zone),
            ends_at_local: LocalTimestamp::in_zone(ends_at, &self.zone),
            location: self.location.clone(),
        })
    }
}

/// The local date of an instant in `zone`.
fn local_date(zone: &Zone, at: NaiveDateTime) -> Option<LocalDate> {
    let date = timezone::local(zone, at.and_utc()).date_naive();
    jiff::civil::Date::new(
        i16::try_from(date.year()).ok()?,
        i8::try_from(date.month()).ok()?,
        i8::try_from(date.day()).ok()?,
    )
    .ok()
    .map(LocalDate)
}

/// Midnight UTC of `date` moved by `days`: a bound wide enough for any zone's local day.
fn utc_bound(date: LocalDate, days: i64) -> NaiveDateTime {
    let date = date.date();
    chrono::NaiveDate::from_ymd_opt(
        i32::from(date.year()),
        u32::try_from(date.month()).unwrap_or(1),
        u32::try_from(date.day()).unwrap_or(1),
    )
    .and_then(|d| d.and_hms_opt(0, 0, 0))
    .map(|d| d + chrono::Duration::days(days))
    .unwrap_or_default()
}

/// Every round that starts on a local date of `[from, to]`, by date and id.
fn rounds_between(
    conn: &mut DbConnection,
    zone: &Zone,
    from: LocalDate,
    to: LocalDate,
) -> Result<Vec<Existing<i32>>, ApiError> {
    let starts = rounds::table
        .filter(rounds::starts_at.ge(utc_bound(from, -2)))
        .filter(rounds::starts_at.lt(utc_bound(to, 3)))
        .order((rounds::starts_at, rounds::id))
        .select((rounds::id, rounds::starts_at))
        .load::<(i32, NaiveDateTime)>(conn)?;
    Ok(starts
        .into_iter()
        .filter_map(|(id, at)| {
            let date = local_date(zone, at)?;
            (date >= from && date <= to).then_some(Existing {
                date: date.date(),
                round: id,
            })
        })
        .collect())
}

/// Works the plan out, and with `write` makes its rounds and stores its skips, in the caller's
/// transaction.
fn plan(
    conn: &mut DbConnection,
    input: &PlanInput,
    write: Option<Author<'_>>,
) -> Result<PlanResult, ApiError> {
    if write.is_some() {
        // Two plans at once must not both find a date free: the first statement takes the
        // series' row (and the schedule's revision row, by trigger) until the commit.
        diesel::update(series_table::table.find(series::ID))
            .set(series_table::version.eq(series_table::version))
            .execute(conn)?;
    }
    let current = SeriesRecord::find(conn, series::ID)?
        .ok_or_else(|| ApiError::Internal("the series row is missing".to_owned()))?;
    let plan = Plan::of(&current)?;
    let anchor = current.recurrence_start.unwrap_or(input.from);
    let occurrences = plan
        .rule
        .occurrences(
            anchor.date().to_datetime(plan.start),
            &plan.zone,
            input.from.date(),
            input.to.date(),
            &Limits::default(),
        )
        .map_err(|e| ApiError::validation("to", range_message(&e)))?;
    let not_given: Vec<FieldError> = input
        .skip
        .0
        .iter()
        .enumerate()
        .filter(|(_, skip)| occurrences.binary_search(&skip.date.date()).is_err())
        .map(|(i, skip)| {
            FieldError::new(
                format!("skip[{i}].date"),
                format!(
                    "{} is not a date the series' recurrence ({}) gives",
                    skip.date, plan.rule
                ),
            )
        })
        .collect();
    if !not_given.is_empty() {
        return Err(ApiError::Validation(not_given));
    }

    // The skips asked for now, then those stored (a reason given now replaces the stored one).
    let mut skips: Vec<Skip> = input
        .skip
        .0
        .iter()
        .map(|s| Skip {
            date: s.date.date(),
            reason: s.reason.as_str().to_owned(),
        })
        .collect();
    skips.extend(current.skipped_dates.0.iter().map(|s| Skip {
        date: s.date.date(),
        reason: s.reason.as_str().to_owned(),
    }));
    let existing = rounds_between(conn, &plan.zone, input.from, input.to)?;
    let sorted = classify::plan(&occurrences, &skips, &existing);

    let mut created = Vec::with_capacity(sorted.created.len());
    for date in &sorted.created {
        created.push(plan.planned(LocalDate(*date), None)?);
    }
    if let Some(author) = write {
        store_skips(conn, author, &current, &input.skip)?;
        for round in &mut created {
            let made = make_round(conn, author, round)?;
            round.round_id = Some(made.id);
        }
    }
    let by_date = |list: Vec<Existing<i32>>| -> Vec<ExistingRound> {
        list.into_iter()
            .map(|e| ExistingRound {
                date: LocalDate(e.date),
                round_id: Id(e.round),
            })
            .take(MAX_OCCURRENCES)
            .collect()
    };
    Ok(PlanResult {
        created,
        skipped: sorted
            .skipped
            .into_iter()
            .map(|s| SkippedDate {
                date: LocalDate(s.date),
                reason: SkipReason::stored(s.reason),
            })
            .collect(),
        existing: by_date(sorted.existing),
        off_rule: by_date(sorted.off_rule),
        preview: write.is_none(),
    })
}

/// Adds the plan's skips to the series' (a date skipped again takes the new reason), as a
/// change of the series.
fn store_skips(
    conn: &mut DbConnection,
    author: Author<'_>,
    current: &Series,
    skip: &SkipList,
) -> Result<(), ApiError> {
    let mut dates = current.skipped_dates.0.clone();
    for asked in &skip.0 {
        match dates.iter_mut().find(|s| s.date == asked.date) {
            Some(stored) => stored.reason = asked.reason.clone(),
            None => dates.push(asked.clone()),
        }
    }
    dates.sort_by_key(|s| s.date);
    if dates == current.skipped_dates.0 {
        return Ok(());
    }
    if dates.len() > SkippedDates::MAX {
        return Err(ApiError::validation(
            "skip",
            format!(
                "the series would skip more than {} dates: take out some of its skipped_dates",
                SkippedDates::MAX
            ),
        ));
    }
    let mut change = SeriesRecord::change_of(current);
    change.skipped_dates = SkippedDates(dates);
    let update = Update {
        current: current.clone(),
        change,
        actor: author.actor,
        expected: current.version(),
    };
    let after = SeriesRecord::update(conn, update)?.ok_or_else(|| {
        ApiError::Unavailable("the series changed while the plan was written; retry".to_owned())
    })?;
    author.record(
        conn,
        SeriesRecord::NAME,
        series::ID,
        Some(current),
        Some(&after),
    )?;
    Ok(())
}

/// Makes the round of one planned date, with no title yet, as `POST /rounds` would.
fn make_round(
    conn: &mut DbConnection,
    author: Author<'_>,
    planned: &PlannedRound,
) -> Result<Round, ApiError> {
    let input = RoundInput {
        title: None,
        description: None,
        starts_at: planned.starts_at,
        ends_at: planned.ends_at,
        location: planned.location.clone(),
        status: RoundStatus::Scheduled,
        speakers: Panel(Vec::new()),
        department_ids: DepartmentIds(Vec::new()),
        credit_hours: None,
    };
    let round = Rounds::insert(
        conn,
        New {
            input,
            actor: author.actor,
        },
    )?;
    author.record(conn, Rounds::NAME, round.id(), None, Some(&round))?;
    Ok(round)
}

// ---- handlers ----------------------------------------------------------------------------

/// Plan the year: make the rounds of the series' recurrence over a range of dates
///
/// For each date the series' `recurrence` gives between `from` and `to` (local dates in its
/// time zone), a round at its default start time, duration and location, with no title yet:
/// unless a round already starts on that date (`existing`) or the date is skipped, now or by an
/// earlier plan (`skipped`). Skips given here are stored in the series' `skipped_dates`. A second
/// run creates nothing. With `preview`, the same answer and no change. At most five years and
/// 500 occurrences (422 beyond, and nothing is made); 409 when the series has no recurrence.
#[utoipa::path(
    tag = "series",
    security(("bearer" = ["organizer", "admin"])),
    request_body = PlanInput,
    responses(
        (status = 200, description = "What the plan made (or, with `preview`, would make)", body = PlanResult),
        WriteErrors
    )
)]
#[post("/series/plan")]
pub async fn plan_series(ctx: Ctx, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let body = body.value()?;
    let request = serde_json::to_vec(&body)?;
    let input = ctx.validators.body::<PlanInput>(body).into_result()?;
    if input.preview {
        // One snapshot, no transaction that writes: a preview changes nothing.
        let result = ctx
            .db
            .read_snapshot(move |conn| plan(conn, &input, None))
            .await?;
        return Ok(HttpResponse::Ok().json(result));
    }
    resource::write_idempotent(&ctx, granted, &request, move |conn, author| {
        let result = plan(conn, &input, Some(author))?;
        Ok(StoredAnswer {
            status: 200,
            location: None,
            etag: None,
            body: serde_json::to_string(&result)?,
        })
    })
    .await
}
