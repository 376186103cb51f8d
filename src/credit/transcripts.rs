//! What attendance adds up to: an attendee's transcript, and the series' yearly report as an
//! accredited provider files it (ACCME's PARS: sessions and hours, physician learners and
//! other learners, each counted once per session attended). JSON, or CSV with
//! `Accept: text/csv`. Voided records count for nothing.

use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::credit::attendance::{csv_text, wants_csv, CreditStatus, CsvText};
use crate::credit::attendees::{self, Attendee, Attendees, Profession};
use crate::platform::auth::{Caller, Role};
use crate::platform::cache::Rendered;
use crate::platform::db::DbConnection;
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::fields::{Id, Int, QuarterHours, Text, Timestamp};
use crate::platform::pagination::Count;
use crate::platform::resource::{found, Author, Ctx, Resource};
use crate::platform::schema::{attendance, attendees as attendees_table, rounds, series};
use crate::platform::validate::Query;
use crate::schedule::rounds::RoundStatus;
use crate::schedule::rounds::Title;
use crate::schedule::series::CreditType;

/// A number of hours (totals of a transcript or a year): 0 or more.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Hours(pub f64);

impl utoipa::PartialSchema for Hours {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .minimum(Some(0.0))
            .maximum(Some(1_000_000_000.0))
            .examples([1.5])
            .into()
    }
}
impl ToSchema for Hours {}

fn count(n: usize) -> Count {
    Count::clamped(i64::try_from(n).unwrap_or(i64::MAX))
}

fn iso(at: Timestamp) -> String {
    at.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The span of a transcript, by the rounds' start.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// Only rounds starting at or after this time.
    pub from: Option<Timestamp>,
    /// Only rounds starting before this time.
    pub to: Option<Timestamp>,
}

/// One round attended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TranscriptItem {
    pub round_id: Id,
    pub starts_at: Timestamp,
    pub title: Option<Title>,
    /// The series' credit type; `null`: none.
    pub credit_type: Option<CreditType>,
    pub designated_hours: QuarterHours,
    pub claimed_hours: QuarterHours,
    pub credit_status: CreditStatus,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TranscriptTotals {
    /// Rounds attended.
    pub sessions: Count,
    /// The hours claimed where credit is `awarded`.
    pub awarded_hours: Hours,
}

/// An attendee's transcript.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transcript {
    pub attendee: Attendee,
    #[schema(max_items = 100000)]
    pub items: Vec<TranscriptItem>,
    pub totals: TranscriptTotals,
}

type ItemRow = (
    i32,
    NaiveDateTime,
    Option<String>,
    i32,
    RoundStatus,
    i32,
    CreditStatus,
);

fn credit_type(conn: &mut DbConnection) -> Result<Option<CreditType>, ApiError> {
    Ok(series::table
        .find(crate::schedule::series::ID)
        .select(series::credit_type)
        .first::<Option<CreditType>>(conn)
        .optional()?
        .flatten())
}

/// The transcript of `attendee` over `span`, in one snapshot.
pub fn transcript(
    conn: &mut DbConnection,
    attendee: Attendee,
    span: &TranscriptQuery,
) -> Result<Transcript, ApiError> {
    let mut query = attendance::table
        .inner_join(rounds::table)
        .filter(attendance::attendee_id.eq(attendee.id.0))
        .filter(attendance::voided_at.is_null())
        .order((rounds::starts_at, rounds::id))
        .select((
            rounds::id,
            rounds::starts_at,
            rounds::title,
            rounds::credit_quarter_hours,
            rounds::status,
            attendance::claimed_quarter_hours,
            attendance::credit_status,
        ))
        .into_boxed();
    if let Some(from) = span.from {
        query = query.filter(rounds::starts_at.ge(from.naive()));
    }
    if let Some(to) = span.to {
        query = query.filter(rounds::starts_at.lt(to.naive()));
    }
    let rows = query.load::<ItemRow>(conn)?;
    let credit = credit_type(conn)?;
    let items: Vec<TranscriptItem> = rows
        .into_iter()
        .map(
            |(id, starts, title, designated, status, claimed, credit_status)| TranscriptItem {
                round_id: Id(id),
                starts_at: Timestamp::from_naive(starts),
                title: title.map(Text::stored),
                credit_type: credit,
                designated_hours: match status {
                    RoundStatus::Cancelled => QuarterHours::ZERO,
                    RoundStatus::Scheduled => QuarterHours::clamped(i64::from(designated)),
                },
                claimed_hours: QuarterHours::clamped(i64::from(claimed)),
                credit_status,
            },
        )
        .collect();
    let awarded: i32 = items
        .iter()
        .filter(|i| i.credit_status == CreditStatus::Awarded)
        .map(|i| i.claimed_hours.quarters())
        .sum();
    Ok(Transcript {
        attendee,
        totals: TranscriptTotals {
            sessions: count(items.len()),
            awarded_hours: Hours(f64::from(awarded) / 4.0),
        },
        items,
    })
}

fn transcript_csv(transcript: &Transcript) -> Result<Rendered, ApiError> {
    let rows = transcript
        .items
        .iter()
        .map(|i| {
            vec![
                i.round_id.0.to_string(),
                iso(i.starts_at),
                i.title
                    .as_ref()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                i.credit_type
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
                i.designated_hours.to_string(),
                i.claimed_hours.to_string(),
                i.credit_status.as_str().to_owned(),
            ]
        })
        .collect();
    let text = csv_text(
        &[
            "round_id",
            "starts_at",
            "title",
            "credit_type",
            "designated_hours",
            "claimed_hours",
            "credit_status",
        ],
        rows,
    )?;
    Ok(Rendered::text(text, "text/csv; charset=utf-8"))
}

fn render(transcript: &Transcript, csv: bool) -> Result<Rendered, ApiError> {
    match csv {
        true => transcript_csv(transcript),
        false => Rendered::json(transcript),
    }
}

/// Whether `caller` may read attendee `id`'s transcript: an organizer, or that attendee.
fn may_read(
    conn: &mut DbConnection,
    caller: &Caller,
    id: i32,
    author: Author<'_>,
) -> Result<Attendee, ApiError> {
    if caller.can(Role::Organizer) {
        return found(Attendees::find(conn, id)?, Attendees::NAME, id);
    }
    match attendees::of_caller(conn, caller, author)? {
        Some(me) if me.id.0 == id => Ok(me),
        _ => Err(ApiError::Forbidden(
            "only organizers and the attendee may read a transcript".to_owned(),
        )),
    }
}

/// An attendee's transcript
///
/// The rounds attended (voided records left out) with their credit. For organizers, and for
/// that attendee. CSV with `Accept: text/csv`.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = [])),
    params(("id" = Id, Path, description = "Attendee id"), TranscriptQuery),
    responses((status = 200, description = "The transcript", content((Transcript = "application/json"), (CsvText = "text/csv"))), ReadErrors)
)]
#[get("/attendees/{id}/transcript")]
pub async fn attendee_transcript(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let id = id.into_inner();
    let span: TranscriptQuery = query.values()?.get()?;
    let csv = wants_csv(&req);
    let caller = ctx.caller.clone();
    let rendered = ctx
        .write(granted, move |conn, author| {
            let attendee = may_read(conn, &caller, id, author)?;
            render(&transcript(conn, attendee, &span)?, csv)
        })
        .await?;
    ctx.answer(granted, rendered)
}

/// The caller's transcript
///
/// As `GET /attendees/{id}/transcript`, for the caller's own attendee (404 until they first
/// check in).
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = [])),
    params(TranscriptQuery),
    responses((status = 200, description = "The transcript", content((Transcript = "application/json"), (CsvText = "text/csv"))), ReadErrors)
)]
#[get("/me/transcript")]
pub async fn my_transcript(
    ctx: Ctx,
    query: Query,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let span: TranscriptQuery = query.values()?.get()?;
    let csv = wants_csv(&req);
    let caller = ctx.caller.clone();
    let rendered = ctx
        .write(granted, move |conn, author| {
            let attendee = attendees::of_caller(conn, &caller, author)?.ok_or_else(|| {
                ApiError::NotFound(
                    "you are not an attendee yet: one is made when you first check in".to_owned(),
                )
            })?;
            render(&transcript(conn, attendee, &span)?, csv)
        })
        .await?;
    ctx.answer(granted, rendered)
}

// ---- the yearly report -----------------------------------------------------------------------

pub type Year = Int<1900, 9999>;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The calendar year, in the series' zone.
    // Read as optional so that its absence is a 400 naming it, like any query parameter's.
    #[param(inline, required = true)]
    pub year: Option<Year>,
}

/// One session of the year.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportRow {
    pub round_id: Id,
    pub starts_at: Timestamp,
    pub title: Option<Title>,
    /// Its length.
    pub minutes: Count,
    pub designated_hours: QuarterHours,
    /// Physicians who attended (records not voided).
    pub physicians: Count,
    /// Everyone else who attended.
    pub other_learners: Count,
    /// The hours claimed where credit is `awarded`.
    pub hours_awarded: Hours,
}

/// The year's totals, as ACCME's PARS counts them: a learner is counted once for each session
/// they attended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportTotals {
    /// Sessions held (rounds not cancelled).
    pub sessions: Count,
    /// Hours of instruction: the sessions' lengths added up.
    pub hours: Hours,
    pub physician_learners: Count,
    pub other_learners: Count,
    pub designated_hours: Hours,
    pub hours_awarded: Hours,
}

/// The series' yearly report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    #[schema(inline)]
    pub year: Year,
    #[schema(max_items = 100000)]
    pub rows: Vec<ReportRow>,
    pub totals: ReportTotals,
}

type RoundRow = (i32, NaiveDateTime, NaiveDateTime, Option<String>, i32);
type LearnerRow = (i32, Profession, CreditStatus, i32);

/// The report of `year` (in the series' zone), in one snapshot: two statements.
pub fn report(conn: &mut DbConnection, year: i64) -> Result<Report, ApiError> {
    let zone_name = series::table
        .find(crate::schedule::series::ID)
        .select(series::timezone)
        .first::<String>(conn)
        .optional()?;
    let zone = crate::schedule::series::zone_named(zone_name.as_deref());
    let bound = |y: i64| {
        chrono::NaiveDate::from_ymd_opt(i32::try_from(y).unwrap_or(9999), 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|local| crate::platform::timezone::from_local(&zone, local))
            .map(|t| t.naive_utc())
            .unwrap_or(NaiveDateTime::MAX)
    };
    let (from, to) = (bound(year), bound(year + 1));
    let held = rounds::table
        .filter(rounds::starts_at.ge(from))
        .filter(rounds::starts_at.lt(to))
        .filter(rounds::status.eq(RoundStatus::Scheduled))
        .order((rounds::starts_at, rounds::id))
        .select((
            rounds::id,
            rounds::starts_at,
            rounds::ends_at,
            rounds::title,
            rounds::credit_quarter_hours,
        ))
        .load::<RoundRow>(conn)?;
    let learners = attendance::table
        .inner_join(attendees_table::table)
        .inner_join(rounds::table)
        .filter(rounds::starts_at.ge(from))
        .filter(rounds::starts_at.lt(to))
        .filter(attendance::voided_at.is_null())
        .select((
            attendance::round_id,
            attendees_table::profession,
            attendance::credit_status,
            attendance::claimed_quarter_hours,
        ))
        .load::<LearnerRow>(conn)?;
    let credit = credit_type(conn)?;
    let mut rows = Vec::with_capacity(held.len());
    for (id, starts, ends, title, designated) in held {
        let mine = learners.iter().filter(|l| l.0 == id);
        let (mut physicians, mut others, mut awarded) = (0, 0, 0);
        for (_, profession, status, claimed) in mine {
            match profession {
                Profession::Physician => physicians += 1,
                _ => others += 1,
            }
            if *status == CreditStatus::Awarded {
                awarded += claimed;
            }
        }
        rows.push(ReportRow {
            round_id: Id(id),
            starts_at: Timestamp::from_naive(starts),
            title: title.map(Text::stored),
            minutes: Count::clamped((ends - starts).num_minutes()),
            designated_hours: match credit {
                Some(_) => QuarterHours::clamped(i64::from(designated)),
                None => QuarterHours::ZERO,
            },
            physicians: count(physicians),
            other_learners: count(others),
            hours_awarded: Hours(f64::from(awarded) / 4.0),
        });
    }
    let totals = ReportTotals {
        sessions: count(rows.len()),
        hours: Hours(rows.iter().map(|r| r.minutes.get()).sum::<i64>() as f64 / 60.0),
        physician_learners: Count::clamped(rows.iter().map(|r| r.physicians.get()).sum()),
        other_learners: Count::clamped(rows.iter().map(|r| r.other_learners.get()).sum()),
        designated_hours: Hours(rows.iter().map(|r| r.designated_hours.hours()).sum()),
        hours_awarded: Hours(rows.iter().map(|r| r.hours_awarded.0).sum()),
    };
    Ok(Report {
        year: Year::clamped(year),
        rows,
        totals,
    })
}

fn report_csv(report: &Report) -> Result<Rendered, ApiError> {
    let rows = report
        .rows
        .iter()
        .map(|r| {
            vec![
                r.round_id.0.to_string(),
                iso(r.starts_at),
                r.title
                    .as_ref()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                r.minutes.get().to_string(),
                r.designated_hours.to_string(),
                r.physicians.get().to_string(),
                r.other_learners.get().to_string(),
                r.hours_awarded.0.to_string(),
            ]
        })
        .collect();
    let text = csv_text(
        &[
            "round_id",
            "starts_at",
            "title",
            "minutes",
            "designated_hours",
            "physicians",
            "other_learners",
            "hours_awarded",
        ],
        rows,
    )?;
    Ok(Rendered::text(text, "text/csv; charset=utf-8"))
}

/// The series' yearly report
///
/// Each session of the year (rounds not cancelled, by their start in the series' zone) with its
/// learners, and the totals as ACCME's PARS counts them. Organizers only. CSV with
/// `Accept: text/csv` (the rows).
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(ReportQuery),
    responses((status = 200, description = "The report", content((Report = "application/json"), (CsvText = "text/csv"))), ReadErrors)
)]
#[get("/series/report")]
pub async fn series_report(
    ctx: Ctx,
    query: Query,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let query = query.values()?;
    let asked: ReportQuery = query.get()?;
    let year = asked.year.map(Year::get).ok_or_else(|| {
        ApiError::InvalidQuery(vec![crate::platform::error::FieldError::new(
            "year",
            "is required: the calendar year to report, such as 2026",
        )])
    })?;
    let csv = wants_csv(&req);
    ctx.read(granted, false, true, Some(&query), move |conn| {
        let report = report(conn, year)?;
        match csv {
            true => report_csv(&report),
            false => Rendered::json(&report),
        }
    })
    .await
}
