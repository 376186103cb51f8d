//! Attendance: who attended which round, and the credit each claims. A record is made by a
//! check-in with the round's code, by an organizer's hand, or by an imported sign-in sheet; it
//! is never deleted, only voided, and every change to it goes through the change log
//! (`attendance.recorded`, `attendance.voided` for organizers' webhooks, never the public feed).
//!
//! Retries and races make one record: the database decides, with unique indexes on the round
//! and attendee (among records not voided) and on the nonce; a check-in that loses reads the
//! winner's record and answers it.

use actix_web::http::header;
use actix_web::{get, patch, post, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::credit::attendees::{self, Attendee, AttendeeDetails, Npi, Profession};
use crate::credit::checkin::{self, Refused, RoundCredit};
use crate::disclosure::statements;
use crate::platform::auth::{Caller, Role};
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Email, Id, Line, Name, QuarterHours, Text, Timestamp};
use crate::platform::http::JsonBody;
use crate::platform::pagination::{Count, Page, Paging};
use crate::platform::ratelimit::Quotum;
use crate::platform::resource::{Author, Ctx, Granted, HeaderText, API_PREFIX};
use crate::platform::schema::{attendance, attendees as attendees_table, feedback};
use crate::platform::validate::{Doc, Input, Query};
use crate::schedule::rounds::RoundStatus;

/// The change log's name for attendance records.
pub const RESOURCE: &str = "attendance";

pub type Nonce = Line<100>;
pub type Reason = Name<1000>;

crate::text_enum! {
    /// How attendance was recorded.
    pub enum Method { Code = "code", Organizer = "organizer", Import = "import" }
}

crate::text_enum! {
    /// Where the credit of a record stands: `awarded`; `pending_evaluation` until the attendee
    /// sends session feedback on the round (with `evaluation_required`); `not_creditable` (an
    /// organizer's decision, with its reason in `credit_note`); `none` when the round
    /// designates no credit.
    pub enum CreditStatus {
        Awarded = "awarded",
        PendingEvaluation = "pending_evaluation",
        NotCreditable = "not_creditable",
        None = "none",
    }
}

/// An attendance record.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "round_id": 3, "attendee_id": 7, "method": "code",
    "attended_at": "2019-04-25T16:58:02Z", "received_at": "2019-04-25T16:58:03Z",
    "nonce": "3f6c1a2e-9b7d-4e1f-8a55-0c2d4e6f8a9b", "reason": null, "claimed_hours": 1.0,
    "credit_status": "awarded", "credit_note": null, "voided_at": null, "void_reason": null,
    "created_at": "2019-04-25T16:58:03Z", "updated_at": "2019-04-25T16:58:03Z"
}))]
pub struct AttendanceRecord {
    pub id: Id,
    pub round_id: Id,
    pub attendee_id: Id,
    pub method: Method,
    /// When the person was there: the scan's time for an offline scan, else when it was
    /// received.
    pub attended_at: Timestamp,
    /// When the service received it.
    pub received_at: Timestamp,
    /// The client's id of the check-in: a retry with it is the same check-in.
    pub nonce: Option<Nonce>,
    /// Why an organizer marked it (marked and imported records).
    pub reason: Option<Reason>,
    /// The credit claimed, in hours: at most the round's designation.
    pub claimed_hours: QuarterHours,
    pub credit_status: CreditStatus,
    /// Why the credit status is what it is, when an organizer (or a rule) set it.
    pub credit_note: Option<Reason>,
    /// When it was voided; voided records stay, and count for nothing.
    pub voided_at: Option<Timestamp>,
    pub void_reason: Option<Reason>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip)]
    #[schema(ignore)]
    pub version: i64,
}

#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = attendance)]
pub(crate) struct AttendanceRow {
    id: i32,
    round_id: i32,
    attendee_id: i32,
    method: Method,
    attended_at: NaiveDateTime,
    received_at: NaiveDateTime,
    nonce: Option<String>,
    reason: Option<String>,
    claimed_quarter_hours: i32,
    credit_status: CreditStatus,
    credit_note: Option<String>,
    voided_at: Option<NaiveDateTime>,
    void_reason: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
}

impl From<AttendanceRow> for AttendanceRecord {
    fn from(row: AttendanceRow) -> Self {
        AttendanceRecord {
            id: Id(row.id),
            round_id: Id(row.round_id),
            attendee_id: Id(row.attendee_id),
            method: row.method,
            attended_at: Timestamp::from_naive(row.attended_at),
            received_at: Timestamp::from_naive(row.received_at),
            nonce: row.nonce.map(Line::stored),
            reason: row.reason.map(Name::stored),
            claimed_hours: QuarterHours::clamped(i64::from(row.claimed_quarter_hours)),
            credit_status: row.credit_status,
            credit_note: row.credit_note.map(Name::stored),
            voided_at: row.voided_at.map(Timestamp::from_naive),
            void_reason: row.void_reason.map(Name::stored),
            created_at: Timestamp::from_naive(row.created_at),
            updated_at: Timestamp::from_naive(row.updated_at),
            version: row.version,
        }
    }
}

/// A record with who it is for, as organizers list it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendanceEntry {
    #[serde(flatten)]
    pub record: AttendanceRecord,
    pub attendee: AttendeeSummary,
}

/// Who a record is for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttendeeSummary {
    pub full_name: attendees::FullName,
    pub email: Email,
    pub profession: Profession,
    pub npi: Option<Npi>,
}

/// The body of `POST /rounds/{id}/attendance`: a check-in with the round's `code` (and a
/// `nonce`), or, for organizers, attendance marked by hand (`attendee_id` or `attendee`, and a
/// `reason`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "code": "K7QM3X", "nonce": "3f6c1a2e-9b7d-4e1f-8a55-0c2d4e6f8a9b",
    "attendee": {"full_name": "Jane Doe", "email": "jane.doe@example.org", "profession": "nurse"}
}))]
pub struct AttendanceInput {
    /// The round's check-in code (any case; spaces and dashes are ignored).
    #[serde(default)]
    pub code: Option<Line<40>>,
    /// The client's id of this check-in (a UUID, say), the same on every retry: required with
    /// a code.
    #[serde(default)]
    pub nonce: Option<Nonce>,
    /// When the code was scanned, for a scan sent later (offline): within the window, at most
    /// 7 days ago and at most 2 minutes ahead.
    #[serde(default)]
    pub scanned_at: Option<Timestamp>,
    /// Who checks in, without a token (with one, the token says who).
    #[serde(default)]
    pub attendee: Option<AttendeeDetails>,
    /// Organizers: the attendee to mark present.
    #[serde(default)]
    pub attendee_id: Option<Id>,
    /// Organizers: why attendance is marked by hand (required without a code).
    #[serde(default)]
    pub reason: Option<Reason>,
}

impl Input for AttendanceInput {
    /// A code or a reason; a nonce with a code; not both an attendee and an attendee id.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let code = doc.get::<String>("code").is_some();
        if code && doc.get::<String>("nonce").is_none() {
            errors.push(FieldError::new(
                "nonce",
                "is required with a code: send the same nonce on every retry of a check-in",
            ));
        }
        if !code && doc.get::<String>("reason").is_none() {
            errors.push(FieldError::new(
                "code",
                "is required (only organizers mark attendance without one, with a reason)",
            ));
        }
        if doc.get::<Id>("attendee_id").is_some()
            && doc.get::<serde_json::Value>("attendee").is_some()
        {
            errors.push(FieldError::new(
                "attendee_id",
                "give either attendee_id or attendee, not both",
            ));
        }
        errors
    }
}

/// The body of `PATCH /rounds/{id}/attendance/{aid}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"claimed_hours": 0.75}))]
pub struct ClaimInput {
    /// In 0.25 steps, at most the round's designation.
    pub claimed_hours: QuarterHours,
}
impl Input for ClaimInput {}

/// The body of `POST /rounds/{id}/attendance/{aid}/void`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Checked in to the wrong round"}))]
pub struct VoidInput {
    pub reason: Reason,
}
impl Input for VoidInput {}

/// The body of `POST /rounds/{id}/attendance/{aid}/credit`: an organizer's decision on a
/// record's credit, with its written reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"credit_status": "not_creditable", "reason": "Left after 10 minutes"}))]
pub struct CreditOverrideInput {
    pub credit_status: CreditStatus,
    pub reason: Reason,
}
impl Input for CreditOverrideInput {}

// ---- persistence -------------------------------------------------------------------------

fn find(conn: &mut DbConnection, id: i32) -> Result<Option<AttendanceRecord>, ApiError> {
    Ok(crate::on_backend!(conn, |c| attendance::table
        .find(id)
        .select(AttendanceRow::as_select())
        .first::<AttendanceRow>(c)
        .optional())?
    .map(AttendanceRecord::from))
}

/// Record `aid` of round `round_id`, or 404.
fn find_on_round(
    conn: &mut DbConnection,
    round_id: i32,
    aid: i32,
) -> Result<AttendanceRecord, ApiError> {
    match find(conn, aid)? {
        Some(record) if record.round_id.0 == round_id => Ok(record),
        _ => Err(ApiError::NotFound(format!(
            "round {round_id} has no attendance record {aid}"
        ))),
    }
}

fn active_of(
    conn: &mut DbConnection,
    round_id: i32,
    attendee_id: i32,
) -> Result<Option<AttendanceRecord>, ApiError> {
    Ok(crate::on_backend!(conn, |c| attendance::table
        .filter(attendance::round_id.eq(round_id))
        .filter(attendance::attendee_id.eq(attendee_id))
        .filter(attendance::voided_at.is_null())
        .select(AttendanceRow::as_select())
        .first::<AttendanceRow>(c)
        .optional())?
    .map(AttendanceRecord::from))
}

fn by_nonce(conn: &mut DbConnection, nonce: &str) -> Result<Option<AttendanceRecord>, ApiError> {
    Ok(crate::on_backend!(conn, |c| attendance::table
        .filter(attendance::nonce.eq(nonce))
        .select(AttendanceRow::as_select())
        .first::<AttendanceRow>(c)
        .optional())?
    .map(AttendanceRecord::from))
}

/// Whether the attendee sent session feedback on the round with their token.
fn evaluated(
    conn: &mut DbConnection,
    round_id: i32,
    attendee: &Attendee,
) -> Result<bool, ApiError> {
    let Some(sub) = Text::non_blank(attendee.sub.as_ref()) else {
        return Ok(false);
    };
    let count = feedback::table
        .filter(feedback::kind.eq("session_feedback"))
        .filter(feedback::round_id.eq(round_id))
        .filter(feedback::submitted_by.eq(sub))
        .count()
        .get_result::<i64>(conn)?;
    Ok(count > 0)
}

/// Why a record of a round whose learners were not shown its disclosures in time carries no
/// credit.
pub const LATE_DISCLOSURE: &str = "disclosure after the start: the round's first disclosure \
     statement was not published before it started (ACCME Standard 3)";

/// The credit a new record starts with, and the note that explains it: the designation claimed
/// whole, awarded unless the series requires an evaluation not yet sent; none where the round
/// designates none; `not_creditable` where the round's first disclosure statement was not
/// published by its start (an organizer may override it, with a written reason). A record made
/// before the start while no statement is published yet is not judged by it: the statement may
/// still come in time.
fn initial_credit(
    conn: &mut DbConnection,
    round: &RoundCredit,
    attendee: &Attendee,
    at: NaiveDateTime,
) -> Result<(QuarterHours, CreditStatus, Option<&'static str>), ApiError> {
    let designated = round.designated();
    if designated == QuarterHours::ZERO {
        return Ok((QuarterHours::ZERO, CreditStatus::None, None));
    }
    if at >= round.starts_at && !statements::published_in_time(conn, round.id, round.starts_at)? {
        return Ok((
            designated,
            CreditStatus::NotCreditable,
            Some(LATE_DISCLOSURE),
        ));
    }
    if round.evaluation_required && !evaluated(conn, round.id, attendee)? {
        return Ok((designated, CreditStatus::PendingEvaluation, None));
    }
    Ok((designated, CreditStatus::Awarded, None))
}

/// What a new record holds.
struct NewRecord<'a> {
    round: &'a RoundCredit,
    attendee: &'a Attendee,
    method: Method,
    attended_at: NaiveDateTime,
    received_at: NaiveDateTime,
    nonce: Option<&'a str>,
    reason: Option<&'a str>,
}

/// Writes the record, or finds the one a concurrent or earlier request made: `(record, true)`
/// when this one made it.
fn insert(
    conn: &mut DbConnection,
    new: NewRecord<'_>,
    author: Author<'_>,
) -> Result<(AttendanceRecord, bool), ApiError> {
    if let Some(existing) = active_of(conn, new.round.id, new.attendee.id.0)? {
        return Ok((existing, false));
    }
    let (claimed, status, note) = initial_credit(conn, new.round, new.attendee, new.received_at)?;
    let now = new.received_at;
    let values = (
        (
            attendance::round_id.eq(new.round.id),
            attendance::attendee_id.eq(new.attendee.id.0),
            attendance::method.eq(new.method),
            attendance::attended_at.eq(new.attended_at),
            attendance::received_at.eq(now),
            attendance::nonce.eq(new.nonce),
            attendance::reason.eq(new.reason),
        ),
        (
            attendance::claimed_quarter_hours.eq(claimed.quarters()),
            attendance::credit_status.eq(status),
            attendance::credit_note.eq(note),
            attendance::evaluated_at.eq((status == CreditStatus::Awarded
                && new.round.evaluation_required)
                .then_some(now)),
        ),
        crate::created_columns!(attendance, author.actor),
    );
    let inserted = crate::on_backend!(conn, |c| diesel::insert_into(attendance::table)
        .values(values)
        .on_conflict_do_nothing()
        .returning(AttendanceRow::as_returning())
        .get_result::<AttendanceRow>(c)
        .optional())?;
    match inserted {
        Some(row) => {
            let record = AttendanceRecord::from(row);
            author.record(conn, RESOURCE, record.id.0, None, Some(&record))?;
            Ok((record, true))
        }
        // Another request got in first: its record is the answer.
        None => {
            if let Some(existing) = active_of(conn, new.round.id, new.attendee.id.0)? {
                return Ok((existing, false));
            }
            match new.nonce.map(|n| by_nonce(conn, n)).transpose()?.flatten() {
                Some(existing) => same_check_in(existing, new.round.id),
                None => Err(ApiError::Conflict(
                    "another check-in changed this attendance meanwhile; retry".to_owned(),
                )),
            }
        }
    }
}

/// A record found by its nonce answers a retry of the check-in that made it; a nonce already
/// used on another round is 409.
fn same_check_in(
    existing: AttendanceRecord,
    round_id: i32,
) -> Result<(AttendanceRecord, bool), ApiError> {
    if existing.round_id.0 == round_id {
        Ok((existing, false))
    } else {
        Err(ApiError::Conflict(
            "this nonce was already used for a check-in to another round: send a new nonce for \
             each check-in"
                .to_owned(),
        ))
    }
}

/// Changes a record at its version (`None` if another write got in first), recorded in the log.
fn change(
    conn: &mut DbConnection,
    current: &AttendanceRecord,
    author: Author<'_>,
    set: impl FnOnce(&mut DbConnection, i32, i64) -> QueryResult<Option<AttendanceRow>>,
) -> Result<AttendanceRecord, ApiError> {
    let row = set(conn, current.id.0, current.version)?.ok_or_else(|| {
        ApiError::Conflict("the record changed meanwhile; read it again and retry".to_owned())
    })?;
    let changed = AttendanceRecord::from(row);
    author.record(conn, RESOURCE, changed.id.0, Some(current), Some(&changed))?;
    Ok(changed)
}

/// A rating of round `round_id` sent by the signed-in person `sub` is their evaluation of it:
/// each of their records there waiting for it (`pending_evaluation`, and not decided by an
/// organizer) is awarded, through the change log, in the rating's transaction. Registered with
/// `feedback::on_evaluation` at start-up.
pub fn evaluation_sent(
    conn: &mut DbConnection,
    round_id: i32,
    sub: &str,
    author: Author<'_>,
) -> Result<(), ApiError> {
    let theirs = attendees_table::table
        .filter(attendees_table::sub.eq(sub))
        .select(attendees_table::id);
    let waiting = crate::on_backend!(conn, |c| attendance::table
        .filter(attendance::round_id.eq(round_id))
        .filter(attendance::credit_status.eq(CreditStatus::PendingEvaluation))
        .filter(attendance::voided_at.is_null())
        .filter(attendance::credit_overridden.eq(false))
        .filter(attendance::attendee_id.eq_any(theirs))
        .select(AttendanceRow::as_select())
        .load::<AttendanceRow>(c))?;
    for row in waiting {
        award(conn, AttendanceRecord::from(row), author)?;
    }
    Ok(())
}

/// Awards `record`'s claim, through the change log, if it still waits for the evaluation (not
/// voided, not decided by an organizer). A record another request changed meanwhile is read
/// again and tried again: the rating is never refused over a concurrent claim.
fn award(
    conn: &mut DbConnection,
    mut record: AttendanceRecord,
    author: Author<'_>,
) -> Result<(), ApiError> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let values = (
            attendance::credit_status.eq(CreditStatus::Awarded),
            attendance::evaluated_at.eq(db::now()),
            crate::updated_columns!(attendance, author.actor),
        );
        let target = attendance::table
            .find(record.id.0)
            .filter(attendance::version.eq(record.version))
            .filter(attendance::credit_status.eq(CreditStatus::PendingEvaluation))
            .filter(attendance::voided_at.is_null())
            .filter(attendance::credit_overridden.eq(false));
        let row = crate::on_backend!(conn, |c| diesel::update(target)
            .set(values)
            .returning(AttendanceRow::as_returning())
            .get_result::<AttendanceRow>(c)
            .optional())?;
        if let Some(row) = row {
            let awarded = AttendanceRecord::from(row);
            author.record(conn, RESOURCE, awarded.id.0, Some(&record), Some(&awarded))?;
            return Ok(());
        }
        match find(conn, record.id.0)? {
            Some(now) if now.version != record.version => record = now,
            // Gone, or at the same version: no longer waiting (voided, decided, or awarded).
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// `record`, refused (409) when it is voided: a voided record is changed no more (`why` says
/// what it then cannot have).
fn live(record: AttendanceRecord, why: &str) -> Result<AttendanceRecord, ApiError> {
    match record.voided_at {
        Some(_) => Err(ApiError::Conflict(format!(
            "attendance record {} {why}",
            record.id.0
        ))),
        None => Ok(record),
    }
}

// ---- check-in ------------------------------------------------------------------------------

fn validation(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field, message)])
}

fn refuse_cancelled(round: &RoundCredit) -> Result<(), ApiError> {
    match round.status {
        RoundStatus::Cancelled => Err(ApiError::Conflict(format!(
            "round {} was cancelled: it takes no attendance",
            round.id
        ))),
        RoundStatus::Scheduled => Ok(()),
    }
}

/// The attendee a check-in is for: the token's person (matched, or made from the token and
/// the body's details), or the body's `attendee` without a token.
fn attendee_of(
    conn: &mut DbConnection,
    caller: &Caller,
    details: Option<&AttendeeDetails>,
    author: Author<'_>,
) -> Result<Attendee, ApiError> {
    if caller.is_anonymous() {
        let details = details.ok_or_else(|| {
            validation(
                "attendee",
                "is required without a token: full_name, email and profession",
            )
        })?;
        return Ok(attendees::find_or_create(conn, details, None, author)?.0);
    }
    if let Some(found) = attendees::of_caller(conn, caller, author)? {
        return Ok(found);
    }
    // First check-in of a signed-in person: their attendee is made from the token, with the
    // body's details for what a token does not say (the profession).
    let email = caller
        .email
        .as_deref()
        .filter(|e| Email::is_valid(e))
        .map(Email::stored)
        .or_else(|| details.map(|d| d.email.clone()))
        .ok_or_else(|| {
            validation(
                "attendee",
                "your token carries no e-mail address: send attendee (full_name, email, \
                 profession)",
            )
        })?;
    let full_name = caller
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(Name::stored)
        .or_else(|| details.map(|d| d.full_name.clone()))
        .unwrap_or_else(|| Name::stored(email.as_str()));
    let profession = details.map_or(Profession::Other, |d| d.profession);
    let made = AttendeeDetails {
        full_name,
        email,
        profession,
    };
    Ok(attendees::find_or_create(conn, &made, caller.subject.as_deref(), author)?.0)
}

/// A check-in with the round's code.
fn check_in(
    conn: &mut DbConnection,
    round_id: i32,
    input: &AttendanceInput,
    caller: &Caller,
    author: Author<'_>,
) -> Result<(AttendanceRecord, bool), ApiError> {
    let round = checkin::round_credit(conn, round_id)?;
    refuse_cancelled(&round)?;
    let sent = input.code.as_ref().map(|c| checkin::normalized(c.as_str()));
    let current = checkin::current_code(conn, round_id)?;
    if current.is_none() || sent != current {
        return Err(validation("code", "does not match this round"));
    }
    let nonce = input.nonce.as_ref().map(Line::as_str);
    if let Some(existing) = nonce.map(|n| by_nonce(conn, n)).transpose()?.flatten() {
        return same_check_in(existing, round_id);
    }
    let now = db::now().and_utc();
    let attended = checkin::attended_at(&round.window(), now, input.scanned_at.map(|t| t.0))
        .map_err(|refused| match refused {
            Refused::Closed(why) => ApiError::Conflict(why),
            Refused::BadScan(why) => validation("scanned_at", why),
        })?;
    let attendee = attendee_of(conn, caller, input.attendee.as_ref(), author)?;
    insert(
        conn,
        NewRecord {
            round: &round,
            attendee: &attendee,
            method: Method::Code,
            attended_at: Timestamp(attended).naive(),
            received_at: Timestamp(now).naive(),
            nonce,
            reason: None,
        },
        author,
    )
}

/// Attendance an organizer marks by hand: any time, with a reason.
fn mark(
    conn: &mut DbConnection,
    round_id: i32,
    input: &AttendanceInput,
    author: Author<'_>,
) -> Result<(AttendanceRecord, bool), ApiError> {
    let round = checkin::round_credit(conn, round_id)?;
    refuse_cancelled(&round)?;
    let nonce = input.nonce.as_ref().map(Line::as_str);
    if let Some(existing) = nonce.map(|n| by_nonce(conn, n)).transpose()?.flatten() {
        return same_check_in(existing, round_id);
    }
    let attendee = match (&input.attendee_id, &input.attendee) {
        (Some(id), _) => crate::platform::resource::found(
            <attendees::Attendees as crate::platform::resource::Resource>::find(conn, id.0)?,
            "attendee",
            id.0,
        )
        .map_err(|_| validation("attendee_id", format!("no attendee with id {}", id.0)))?,
        (None, Some(details)) => attendees::find_or_create(conn, details, None, author)?.0,
        (None, None) => {
            return Err(validation(
                "attendee_id",
                "is required to mark attendance: attendee_id, or attendee (full_name, email, \
                 profession)",
            ))
        }
    };
    insert(
        conn,
        NewRecord {
            round: &round,
            attendee: &attendee,
            method: Method::Organizer,
            attended_at: marked_time(&round, input.scanned_at),
            received_at: db::now(),
            nonce,
            reason: input.reason.as_ref().map(Name::as_str),
        },
        author,
    )
}

/// When marked attendance was: the time given, else now while the round takes check-ins, else
/// the round's start (an organizer marking it afterwards).
fn marked_time(round: &RoundCredit, given: Option<Timestamp>) -> NaiveDateTime {
    if let Some(at) = given {
        return at.naive();
    }
    let now = db::now();
    if round.window().contains(now.and_utc()) {
        now
    } else {
        round.starts_at
    }
}

fn record_location(record: &AttendanceRecord) -> String {
    format!(
        "{API_PREFIX}/rounds/{}/attendance/{}",
        record.round_id.0, record.id.0
    )
}

/// Per-client limit of check-ins (`LHS_CHECKIN_RATE_LIMIT`): anyone with the code may send
/// them; organizers are not limited.
fn limit(ctx: &Ctx) -> Result<Option<Quotum>, ApiError> {
    match &ctx.limits.checkin {
        Some(limit) if !ctx.caller.can(Role::Organizer) => Ok(Some(limit.take(ctx.client)?)),
        _ => Ok(None),
    }
}

/// Check in to a round, or mark attendance
///
/// With the round's `code` and a `nonce`: anyone may check in (rate-limited per client). With
/// a token the attendee is the token's person; without one, `attendee` says who. The first
/// check-in is 201; a repeat for the same round and attendee, or with the same nonce, is 200
/// with the record already made. A wrong code is 422; outside the check-in window 409 (the
/// problem gives the window's times, with their offset); a cancelled round 409.
///
/// Organizers may mark attendance without a code, at any time: `attendee_id` or `attendee`,
/// and a `reason`.
#[utoipa::path(
    tag = "attendance",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Round id")),
    request_body = AttendanceInput,
    responses(
        (status = 201, description = "Recorded", body = AttendanceRecord,
            headers(("Location" = HeaderText, description = "URL of the record"))),
        (status = 200, description = "Already recorded: the record made before", body = AttendanceRecord),
        WriteErrors
    )
)]
#[post("/rounds/{id}/attendance")]
pub async fn record_attendance(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (granted, quotum) = authorize_check_in(&ctx)?;
    let round_id = id.into_inner();
    let response = async {
        let (record, created) = record_checked(&ctx, granted, round_id, body.value()?).await?;
        let mut response = if created {
            let mut r = HttpResponse::Created();
            r.insert_header((header::LOCATION, record_location(&record)));
            r
        } else {
            HttpResponse::Ok()
        };
        Ok(response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(record))
    }
    .await;
    Quotum::added_to(quotum, response)
}

/// Records attendance from a body as `POST /rounds/{id}/attendance` takes it: checked against
/// its schema and rules, then written (what the check-in page sends too). `true` when a record
/// was made; a repeat answers the record made before.
pub async fn record_checked(
    ctx: &Ctx,
    granted: Granted,
    round_id: i32,
    body: serde_json::Value,
) -> Result<(AttendanceRecord, bool), ApiError> {
    let input = ctx.validators.body::<AttendanceInput>(body).into_result()?;
    let organizer = ctx.caller.can(Role::Organizer);
    if input.code.is_none() && !organizer {
        return Err(validation(
            "code",
            "is required (only organizers mark attendance without one)",
        ));
    }
    let caller = ctx.caller.clone();
    let attempt = move |conn: &mut DbConnection, author: Author<'_>| match input.code {
        Some(_) => check_in(conn, round_id, &input, &caller, author),
        None => mark(conn, round_id, &input, author),
    };
    match ctx.write(granted, attempt.clone()).await {
        // A concurrent first check-in of the same person won a unique index the statements
        // did not expect: this one reads its record now.
        Err(ApiError::Conflict(why)) if why.contains("meanwhile") => {
            ctx.write(granted, attempt).await
        }
        other => other,
    }
}

/// Whether the caller may send a check-in, and the client's quota for it: anyone may (the code
/// is the credential, checked when it is written).
pub fn authorize_check_in(ctx: &Ctx) -> Result<(Granted, Option<Quotum>), ApiError> {
    let granted = ctx.authorize_with(Ok(()))?;
    Ok((granted, limit(ctx)?))
}

/// Records that the person of `details` attended round `round_id` (their attendee found by
/// e-mail address, or made), as a sign-in sheet would: what the demo loads. `true` when a
/// record was made.
pub fn record_from_sheet(
    conn: &mut DbConnection,
    round_id: i32,
    details: &AttendeeDetails,
    reason: &str,
    author: Author<'_>,
) -> Result<bool, ApiError> {
    let round = checkin::round_credit(conn, round_id)?;
    let (attendee, _) = attendees::find_or_create(conn, details, None, author)?;
    let (_, made) = insert(
        conn,
        NewRecord {
            round: &round,
            attendee: &attendee,
            method: Method::Import,
            attended_at: round.starts_at,
            received_at: db::now(),
            nonce: None,
            reason: Some(reason),
        },
        author,
    )?;
    Ok(made)
}

// ---- reading -------------------------------------------------------------------------------

type EntryRow = (AttendanceRow, (String, String, Profession, Option<String>));

fn entries(
    conn: &mut DbConnection,
    round_id: i32,
    paging: Option<Paging>,
) -> Result<(Vec<AttendanceEntry>, i64), ApiError> {
    let total = crate::count_rows!(conn, attendance, round_id, round_id)?;
    let mut query = attendance::table
        .inner_join(attendees_table::table)
        .filter(attendance::round_id.eq(round_id))
        .order((attendance::attended_at, attendance::id))
        .select((
            AttendanceRow::as_select(),
            (
                attendees_table::full_name,
                attendees_table::email,
                attendees_table::profession,
                attendees_table::npi,
            ),
        ))
        .into_boxed();
    if let Some(paging) = paging {
        query = query.limit(paging.limit()).offset(paging.offset());
    }
    let rows = query.load::<EntryRow>(conn)?;
    let items = rows
        .into_iter()
        .map(
            |(row, (full_name, email, profession, npi))| AttendanceEntry {
                record: row.into(),
                attendee: AttendeeSummary {
                    full_name: Name::stored(full_name),
                    email: Email::stored(email),
                    profession,
                    npi: npi.map(Npi::stored),
                },
            },
        )
        .collect();
    Ok((items, total))
}

/// A CSV document (RFC 4180, UTF-8, with a header), as answered.
#[derive(ToSchema)]
#[schema(value_type = String, max_length = 50000000)]
pub struct CsvText(#[allow(dead_code)] String);

/// Whether the request asks for CSV (`Accept: text/csv`).
pub fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// CSV text from rows of fields, with a header.
pub fn csv_text(header_row: &[&str], rows: Vec<Vec<String>>) -> Result<String, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::Internal(format!("CSV: {e}"));
    writer.write_record(header_row).map_err(failed)?;
    for row in rows {
        // A cell starting with =, +, - or @ is a formula to a spreadsheet: quoted with a
        // leading apostrophe, as OWASP's CSV injection advice says.
        let row: Vec<String> = row
            .into_iter()
            .map(|cell| match cell.chars().next() {
                Some('=' | '+' | '@' | '\t' | '\r') => format!("'{cell}"),
                Some('-') if cell.parse::<f64>().is_err() => format!("'{cell}"),
                _ => cell,
            })
            .collect();
        writer.write_record(&row).map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(format!("CSV: {e}")))
}

fn opt(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A round's attendance
///
/// Every record, voided ones too (`voided_at`), with who it is for. As CSV with
/// `Accept: text/csv` (every record, one page).
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id"), Paging),
    responses(
        (status = 200, description = "A page of attendance records", content((Page<AttendanceEntry> = "application/json"), (CsvText = "text/csv"))),
        ReadErrors
    )
)]
#[get("/rounds/{id}/attendance")]
pub async fn list_attendance(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let round_id = id.into_inner();
    let query = query.values()?;
    let paging: Paging = query.get()?;
    let csv = wants_csv(&req);
    ctx.read(granted, false, true, Some(&query), move |conn| {
        checkin::round_credit(conn, round_id)?;
        if csv {
            let (items, _) = entries(conn, round_id, None)?;
            let rows = items
                .into_iter()
                .map(|e| {
                    let r = e.record;
                    vec![
                        r.id.0.to_string(),
                        r.round_id.0.to_string(),
                        r.attendee_id.0.to_string(),
                        e.attendee.full_name.into_string(),
                        e.attendee.email.into_string(),
                        e.attendee.profession.as_str().to_owned(),
                        opt(e.attendee.npi.map(|n| n.as_str().to_owned())),
                        r.method.as_str().to_owned(),
                        r.attended_at
                            .0
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        r.received_at
                            .0
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        r.claimed_hours.to_string(),
                        r.credit_status.as_str().to_owned(),
                        opt(r.credit_note),
                        opt(r.reason),
                        opt(r
                            .voided_at
                            .map(|t| t.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
                        opt(r.void_reason),
                    ]
                })
                .collect();
            let text = csv_text(
                &[
                    "id",
                    "round_id",
                    "attendee_id",
                    "full_name",
                    "email",
                    "profession",
                    "npi",
                    "method",
                    "attended_at",
                    "received_at",
                    "claimed_hours",
                    "credit_status",
                    "credit_note",
                    "reason",
                    "voided_at",
                    "void_reason",
                ],
                rows,
            )?;
            return Ok(Rendered::text(text, "text/csv; charset=utf-8"));
        }
        let (items, total) = entries(conn, round_id, Some(paging))?;
        Rendered::json(&paging.page(items, total))
    })
    .await
}

/// Record `aid` of round `round_id`, read once, for a caller who may see and claim on it: an
/// organizer, or its attendee. Whose it is is decided before whether it exists is said: a
/// caller who is neither gets 403 whether or not the record exists, so that no one learns who
/// attended from a 403 and a 404.
fn owned(
    conn: &mut DbConnection,
    caller: &Caller,
    round_id: i32,
    aid: i32,
    author: Author<'_>,
) -> Result<AttendanceRecord, ApiError> {
    let record = find(conn, aid)?;
    if !caller.can(Role::Organizer) {
        let me = attendees::of_caller(conn, caller, author)?;
        match (me, &record) {
            (Some(me), Some(record)) if me.id.0 == record.attendee_id.0 => {}
            _ => {
                return Err(ApiError::Forbidden(
                    "only the record's attendee or an organizer may do this".to_owned(),
                ))
            }
        }
    }
    match record {
        Some(record) if record.round_id.0 == round_id => Ok(record),
        _ => Err(ApiError::NotFound(format!(
            "round {round_id} has no attendance record {aid}"
        ))),
    }
}

/// An attendance record
///
/// For organizers, and for the record's attendee.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = [])),
    params(("id" = Id, Path, description = "Round id"), ("aid" = Id, Path, description = "Attendance record id")),
    responses((status = 200, description = "The record", body = AttendanceRecord), ReadErrors)
)]
#[get("/rounds/{id}/attendance/{aid}")]
pub async fn get_attendance(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let (round_id, aid) = path.into_inner();
    let caller = ctx.caller.clone();
    let record = ctx
        .write(granted, move |conn, author| {
            owned(conn, &caller, round_id, aid, author)
        })
        .await?;
    ctx.answer(granted, Rendered::json(&record)?)
}

/// Claim credit for attending
///
/// The attendee or an organizer sets `claimed_hours`: in 0.25 steps, at most the round's
/// designation.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = [])),
    params(("id" = Id, Path, description = "Round id"), ("aid" = Id, Path, description = "Attendance record id")),
    request_body(content = ClaimInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The record as changed", body = AttendanceRecord), WriteErrors)
)]
#[patch("/rounds/{id}/attendance/{aid}")]
pub async fn claim_credit(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let (round_id, aid) = path.into_inner();
    let caller = ctx.caller.clone();
    let validators = ctx.validators.clone();
    let record = ctx
        .write(granted, move |conn, author| {
            // Whose record it is, before the body is read.
            let current = owned(conn, &caller, round_id, aid, author)?;
            let claim = validators.body::<ClaimInput>(body.value()?).into_result()?;
            let current = live(current, "was voided: it claims nothing")?;
            let designated = checkin::round_credit(conn, round_id)?.designated();
            if claim.claimed_hours > designated {
                return Err(validation(
                    "claimed_hours",
                    format!("must be at most the round's designated {designated} hours"),
                ));
            }
            change(conn, &current, author, |c, id, version| {
                let values = (
                    attendance::claimed_quarter_hours.eq(claim.claimed_hours.quarters()),
                    crate::updated_columns!(attendance, author.actor),
                );
                crate::update_row!(c, attendance, AttendanceRow, id, version, values)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(record))
}

/// Void an attendance record
///
/// The record stays, shown as voided with its reason, and counts for nothing. Organizers only.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id"), ("aid" = Id, Path, description = "Attendance record id")),
    request_body = VoidInput,
    responses((status = 200, description = "The record, voided", body = AttendanceRecord), WriteErrors)
)]
#[post("/rounds/{id}/attendance/{aid}/void")]
pub async fn void_attendance(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let voided = "is already voided";
    decide(
        ctx,
        path.into_inner(),
        body,
        voided,
        |c, author, input: VoidInput, id, version| {
            let values = (
                attendance::voided_at.eq(db::now()),
                attendance::void_reason.eq(input.reason.as_str()),
                crate::updated_columns!(attendance, author.actor),
            );
            crate::update_row!(c, attendance, AttendanceRow, id, version, values)
        },
    )
    .await
}

/// An organizer's decision on a record of the round that is not voided (`voided` says why a
/// voided one cannot take it): the body checked, then `set` changes the row at its version.
async fn decide<T: Input>(
    ctx: Ctx,
    (round_id, aid): (i32, i32),
    body: JsonBody,
    voided: &'static str,
    set: impl FnOnce(&mut DbConnection, Author<'_>, T, i32, i64) -> QueryResult<Option<AttendanceRow>>
        + Send
        + 'static,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let input = ctx.validators.body::<T>(body.value()?).into_result()?;
    let record = ctx
        .write(granted, move |conn, author| {
            let current = live(find_on_round(conn, round_id, aid)?, voided)?;
            change(conn, &current, author, |c, id, version| {
                set(c, author, input, id, version)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(record))
}

/// Decide a record's credit
///
/// An organizer sets `credit_status` (`not_creditable`, say), with the written reason kept as
/// its `credit_note`. The decision stands: a later evaluation does not change it.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id"), ("aid" = Id, Path, description = "Attendance record id")),
    request_body = CreditOverrideInput,
    responses((status = 200, description = "The record as changed", body = AttendanceRecord), WriteErrors)
)]
#[post("/rounds/{id}/attendance/{aid}/credit")]
pub async fn override_credit(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let voided = "was voided: it has no credit to decide";
    let set =
        |c: &mut DbConnection, author: Author<'_>, input: CreditOverrideInput, id, version| {
            let values = (
                attendance::credit_status.eq(input.credit_status),
                attendance::credit_note.eq(input.reason.as_str()),
                attendance::credit_overridden.eq(true),
                crate::updated_columns!(attendance, author.actor),
            );
            crate::update_row!(c, attendance, AttendanceRow, id, version, values)
        };
    decide(ctx, path.into_inner(), body, voided, set).await
}

// ---- import --------------------------------------------------------------------------------

/// The header a sign-in sheet must have.
pub const SHEET_HEADER: [&str; 4] = ["full_name", "email", "profession", "npi"];

/// One good row of a sheet.
#[derive(Debug, Clone)]
pub struct SheetRow {
    pub line: u64,
    pub details: AttendeeDetails,
    pub npi: Option<Npi>,
}

/// Reads a sign-in sheet: every row checked, each bad one named by its line (the header is
/// line 1).
pub fn read_sheet(text: &[u8]) -> Result<Vec<SheetRow>, Vec<FieldError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut records = reader.records();
    let header_ok = match records.next() {
        Some(Ok(header)) => {
            let names: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
            names == SHEET_HEADER
        }
        _ => false,
    };
    if !header_ok {
        return Err(vec![FieldError::new(
            "line 1",
            "line 1: the header must be full_name,email,profession,npi",
        )]);
    }
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    let mut seen: Vec<(String, u64)> = Vec::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(FieldError::new(
                    format!("line {line}"),
                    format!("line {line}: not readable as CSV: {e}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let cell = |i: usize| record.get(i).unwrap_or_default().trim().to_owned();
        let mut bad = |column: &str, message: String| {
            errors.push(FieldError::new(
                format!("line {line}.{column}"),
                format!("line {line}: {column} {message}"),
            ))
        };
        if record.len() != 4 {
            bad("(row)", format!("has {} fields, not 4", record.len()));
            continue;
        }
        let (full_name, email, profession, npi) = (cell(0), cell(1), cell(2), cell(3));
        let mut ok = true;
        if full_name.is_empty() || full_name.chars().count() > 300 {
            bad("full_name", "must be 1 to 300 characters".to_owned());
            ok = false;
        }
        if !Email::is_valid(&email) || email.len() > Email::MAX {
            bad("email", format!("{email:?} is not an e-mail address"));
            ok = false;
        }
        let profession = profession.to_lowercase().parse::<Profession>();
        if profession.is_err() {
            bad(
                "profession",
                "must be physician, physician_assistant, nurse_practitioner, nurse, \
                 pharmacist, psychologist, other or student"
                    .to_owned(),
            );
            ok = false;
        }
        if !npi.is_empty() && !attendees::npi_is_valid(&npi) {
            bad(
                "npi",
                "is not a valid NPI (10 digits with the NPI check digit)".to_owned(),
            );
            ok = false;
        }
        let key = attendees::email_key(&email);
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            bad("email", format!("repeats line {first}"));
            ok = false;
        } else {
            seen.push((key, line));
        }
        if let (true, Ok(profession)) = (ok, profession) {
            rows.push(SheetRow {
                line,
                details: AttendeeDetails {
                    full_name: Name::stored(full_name),
                    email: Email::stored(email),
                    profession,
                },
                npi: (!npi.is_empty()).then(|| Npi::stored(npi)),
            });
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    /// Records made.
    pub recorded: Count,
    /// Rows whose attendee already had a record on the round (left as it was).
    pub already_recorded: Count,
    /// Attendees made for addresses not known before.
    pub attendees_created: Count,
    /// The records made.
    #[schema(max_items = 100000)]
    pub records: Vec<AttendanceRecord>,
}

/// Import a sign-in sheet
///
/// `Content-Type: text/csv`, with the header `full_name,email,profession,npi`. Every row is
/// checked and nothing is imported unless all are good: a 422 names each bad row by its line
/// (the header is line 1). Attendees are matched by e-mail address, or made. Organizers only.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    request_body(content = CsvText, content_type = "text/csv",
        description = "full_name,email,profession,npi, then one row per attendee"),
    responses((status = 200, description = "What was imported", body = ImportReport), WriteErrors)
)]
#[post("/rounds/{id}/attendance/import")]
pub async fn import_attendance(
    ctx: Ctx,
    id: web::Path<i32>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let round_id = id.into_inner();
    let is_csv = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.type_() == mime::TEXT && m.subtype() == mime::CSV);
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType(
            "a sign-in sheet is sent as Content-Type: text/csv".to_owned(),
        ));
    }
    let bytes = body
        .to_bytes_limited(crate::platform::http::BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: crate::platform::http::BODY_LIMIT,
        })?
        .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
    let rows = read_sheet(&bytes).map_err(ApiError::Validation)?;
    let report = ctx
        .write(granted, move |conn, author| {
            import(conn, round_id, &rows, author)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

fn import(
    conn: &mut DbConnection,
    round_id: i32,
    rows: &[SheetRow],
    author: Author<'_>,
) -> Result<ImportReport, ApiError> {
    let round = checkin::round_credit(conn, round_id)?;
    refuse_cancelled(&round)?;
    let (mut recorded, mut already, mut made_attendees) = (0i64, 0i64, 0i64);
    let mut records = Vec::new();
    for row in rows {
        let (attendee, made) = attendees::find_or_create(conn, &row.details, None, author)?;
        if made {
            made_attendees += 1;
            if let Some(npi) = &row.npi {
                diesel::update(attendees_table::table.find(attendee.id.0))
                    .set(attendees_table::npi.eq(npi.as_str()))
                    .execute(conn)?;
            }
        }
        let (record, created) = insert(
            conn,
            NewRecord {
                round: &round,
                attendee: &attendee,
                method: Method::Import,
                attended_at: round.starts_at,
                received_at: db::now(),
                nonce: None,
                reason: Some("imported from a sign-in sheet"),
            },
            author,
        )?;
        if created {
            recorded += 1;
            records.push(record);
        } else {
            already += 1;
        }
    }
    Ok(ImportReport {
        recorded: Count::clamped(recorded),
        already_recorded: Count::clamped(already),
        attendees_created: Count::clamped(made_attendees),
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::read_sheet;

    #[test]
    fn a_sheet_is_checked_row_by_row_with_line_numbers() {
        let good = "full_name,email,profession,npi\nJane Doe,jane@example.org,physician,1234567893\n\"Roe, Ann\",ann@example.org,nurse,\n";
        let rows = read_sheet(good.as_bytes()).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].details.full_name.as_str(), "Roe, Ann");
        assert_eq!(rows[1].line, 3);
        let bad = "full_name,email,profession,npi\nJane Doe,jane@example.org,physician,1234567890\nAnn,not-an-address,nurse,\nBo,bo@example.org,wizard,\nOk,ok@example.org,other,\n";
        let errors = read_sheet(bad.as_bytes()).err().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["line 2.npi", "line 3.email", "line 4.profession"]);
        assert!(read_sheet(b"name,email\nx,y\n").is_err());
    }
}
