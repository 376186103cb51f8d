//! Check-in: each round's code (made when an organizer first asks for it, replaced when one
//! asks for another), its QR code, and the window in which a round takes check-ins.
//!
//! The code is an organizer's: it is in no answer to anyone else, in no feed and in no log
//! line, and the change log records only that it was made, never the code.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::auth::Role;
use crate::platform::cache::Rendered;
use crate::platform::changelog::{self, Action, Change};
use crate::platform::db::DbConnection;
use crate::platform::error::{ApiError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, Line, LocalTimestamp, QuarterHours, Timestamp};
use crate::platform::resource::{Author, Ctx, Granted};
use crate::platform::schema::{checkin_codes, rounds, series};
use crate::platform::timezone::{self, Zone};
use crate::schedule::calendar::CalendarSettings;
use crate::schedule::rounds::RoundStatus;
use crate::schedule::series::CreditType;

/// The characters of a code: no 0/O, 1/I/L, which read alike on a screen across a room.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// A code's length: 31^6, about 887 million codes, against a per-client rate limit.
pub const CODE_LENGTH: usize = 6;

/// A new code, from the operating system's random numbers (rejection sampling, so that every
/// character is as likely).
pub fn new_code() -> Result<String, ApiError> {
    let mut code = String::with_capacity(CODE_LENGTH);
    let limit = 256 - (256 % ALPHABET.len());
    while code.len() < CODE_LENGTH {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| ApiError::Internal(format!("no random numbers: {e}")))?;
        for byte in bytes {
            if usize::from(byte) < limit && code.len() < CODE_LENGTH {
                code.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(code)
}

/// A code as someone typed it: upper case, without spaces or dashes.
pub fn normalized(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// What attendance needs to know of a round: its times and status, its designation, and the
/// series' credit and check-in settings.
#[derive(Debug, Clone)]
pub struct RoundCredit {
    pub id: i32,
    pub title: Option<String>,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub status: RoundStatus,
    /// The designation as stored (a cancelled round designates none: see [`Self::designated`]).
    pub stored_hours: QuarterHours,
    pub zone: Zone,
    pub credit_type: Option<CreditType>,
    pub opens_minutes: i64,
    pub closes_minutes: i64,
    pub evaluation_required: bool,
}

impl RoundCredit {
    /// The credit designated: none for a cancelled round, or in a series without a credit type.
    pub fn designated(&self) -> QuarterHours {
        match (self.status, self.credit_type) {
            (RoundStatus::Scheduled, Some(_)) => self.stored_hours,
            _ => QuarterHours::ZERO,
        }
    }

    pub fn window(&self) -> Window {
        Window::of(
            self.starts_at.and_utc(),
            self.ends_at.and_utc(),
            self.opens_minutes,
            self.closes_minutes,
            self.zone.clone(),
        )
    }
}

type CreditRow = (
    i32,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
    RoundStatus,
    i32,
    Option<String>,
    Option<CreditType>,
    Option<i32>,
    Option<i32>,
    Option<bool>,
);

/// The [`RoundCredit`] of round `id` in one statement, or 404.
pub fn round_credit(conn: &mut DbConnection, id: i32) -> Result<RoundCredit, ApiError> {
    let row = crate::on_backend!(conn, |c| rounds::table
        .left_join(series::table.on(series::id.eq(crate::schedule::series::ID)))
        .filter(rounds::id.eq(id))
        .select((
            rounds::id,
            rounds::title,
            rounds::starts_at,
            rounds::ends_at,
            rounds::status,
            rounds::credit_quarter_hours,
            series::timezone.nullable(),
            series::credit_type.nullable(),
            series::checkin_opens_minutes.nullable(),
            series::checkin_closes_minutes.nullable(),
            series::evaluation_required.nullable(),
        ))
        .first::<CreditRow>(c)
        .optional())?;
    let Some((
        id,
        title,
        starts_at,
        ends_at,
        status,
        quarters,
        zone,
        credit_type,
        opens,
        closes,
        evaluation,
    )) = row
    else {
        return Err(ApiError::not_found("round", id));
    };
    Ok(RoundCredit {
        id,
        title,
        starts_at,
        ends_at,
        status,
        stored_hours: QuarterHours::clamped(i64::from(quarters)),
        zone: crate::schedule::series::zone_named(zone.as_deref()),
        credit_type,
        opens_minutes: opens.map_or(
            crate::schedule::series::DEFAULT_CHECKIN_OPENS_MINUTES,
            i64::from,
        ),
        closes_minutes: closes.map_or(
            crate::schedule::series::DEFAULT_CHECKIN_CLOSES_MINUTES,
            i64::from,
        ),
        evaluation_required: evaluation.unwrap_or(false),
    })
}

/// When a round takes check-ins: from `checkin_opens_minutes` before its start until
/// `checkin_closes_minutes` after its end, as lengths of time (an hour is an hour on the night
/// the clocks change). `opens` is inside, `closes` outside, as the feedback window's ends are.
#[derive(Debug, Clone)]
pub struct Window {
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
    pub zone: Zone,
}

impl Window {
    pub fn of(
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
        opens_minutes: i64,
        closes_minutes: i64,
        zone: Zone,
    ) -> Window {
        Window {
            opens: starts - Duration::minutes(opens_minutes),
            closes: ends + Duration::minutes(closes_minutes),
            zone,
        }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.opens <= at && at < self.closes
    }

    /// A time in the series' zone, with its offset.
    pub fn local(&self, at: DateTime<Utc>) -> String {
        timezone::local(&self.zone, at).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }

    /// "from ... until ... (zone)", each with its offset.
    pub fn describe(&self) -> String {
        format!(
            "from {} until {} ({})",
            self.local(self.opens),
            self.local(self.closes),
            timezone::name(&self.zone)
        )
    }

    pub fn opens_at(&self) -> Timestamp {
        Timestamp(self.opens)
    }

    pub fn closes_at(&self) -> Timestamp {
        Timestamp(self.closes)
    }
}

/// How far back an offline scan may be sent (its device may have been offline a while).
pub const SCAN_MAX_AGE: Duration = Duration::days(7);
/// How far ahead of the server's clock a scan's time may be (a phone's clock runs fast).
pub const SCAN_MAX_AHEAD: Duration = Duration::minutes(2);

/// Why a check-in is refused for its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// 409: received outside the window.
    Closed(String),
    /// 422 on `scanned_at`.
    BadScan(String),
}

/// The time of attendance of a check-in received at `now`, scanned at `scanned` if the device
/// says so: the scan's time when it is within the window, at most [`SCAN_MAX_AGE`] before
/// `now` and at most [`SCAN_MAX_AHEAD`] after it; else why not.
pub fn attended_at(
    window: &Window,
    now: DateTime<Utc>,
    scanned: Option<DateTime<Utc>>,
) -> Result<DateTime<Utc>, Refused> {
    let Some(scanned) = scanned else {
        if window.contains(now) {
            return Ok(now);
        }
        let state = if now < window.opens {
            "is not open yet"
        } else {
            "is closed"
        };
        return Err(Refused::Closed(format!(
            "check-in {state}: this round takes check-ins {}",
            window.describe()
        )));
    };
    if scanned > now + SCAN_MAX_AHEAD {
        return Err(Refused::BadScan(format!(
            "is in the future ({}): a scan may be at most 2 minutes ahead of the server's clock",
            window.local(scanned)
        )));
    }
    if scanned < now - SCAN_MAX_AGE {
        return Err(Refused::BadScan(
            "is more than 7 days ago: an offline scan must be sent within 7 days".to_owned(),
        ));
    }
    if !window.contains(scanned) {
        return Err(Refused::BadScan(format!(
            "({}) is outside the round's check-in window, {}",
            window.local(scanned),
            window.describe()
        )));
    }
    Ok(scanned)
}

/// The round's code, if one was made.
pub fn current_code(conn: &mut DbConnection, round_id: i32) -> Result<Option<String>, ApiError> {
    Ok(crate::on_backend!(conn, |c| checkin_codes::table
        .find(round_id)
        .select(checkin_codes::code)
        .first::<String>(c)
        .optional())?)
}

/// Writes a new code for the round (replacing any), recorded in the change log without it.
fn make_code(
    conn: &mut DbConnection,
    round_id: i32,
    author: Author<'_>,
    replacing: bool,
) -> Result<String, ApiError> {
    let code = new_code()?;
    let now = crate::platform::db::now();
    let values = (
        checkin_codes::round_id.eq(round_id),
        checkin_codes::code.eq(&code),
        checkin_codes::created_at.eq(now),
        checkin_codes::created_by.eq(author.actor),
    );
    crate::on_backend!(conn, |c| diesel::insert_into(checkin_codes::table)
        .values(values)
        .on_conflict(checkin_codes::round_id)
        .do_update()
        .set((
            checkin_codes::code.eq(&code),
            checkin_codes::created_at.eq(now),
            checkin_codes::created_by.eq(author.actor),
        ))
        .execute(c))?;
    // Only that a code was made: the code is never in the log.
    let entry = serde_json::json!({"round_id": round_id, "made_at": Timestamp::from_naive(now)});
    changelog::record(
        conn,
        Change {
            resource: CHECKIN_CODE,
            id: round_id,
            action: if replacing {
                Action::Updated
            } else {
                Action::Created
            },
            before: replacing.then(|| serde_json::json!({"round_id": round_id})),
            after: Some(entry),
            actor: author.actor,
            request_id: author.request_id,
        },
    )?;
    Ok(code)
}

/// The change log's name for check-in codes.
pub const CHECKIN_CODE: &str = "checkin_code";

/// A round's check-in code, for organizers.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "code": "K7QM3X", "url": "https://rounds.example.org/checkin/3?code=K7QM3X",
    "opens_at": "2019-04-25T11:45:00-04:00", "closes_at": "2019-04-25T14:00:00-04:00"
}))]
pub struct CheckinCode {
    /// 6 characters without look-alikes (no 0/O, 1/I/L).
    pub code: Line<6>,
    /// What the QR code holds: `{LHS_PUBLIC_URL}/checkin/{id}?code={code}`.
    pub url: Line<2100>,
    /// When check-in opens, in the series' zone with its offset.
    pub opens_at: LocalTimestamp,
    /// When check-in closes (that instant is outside), in the series' zone with its offset.
    pub closes_at: LocalTimestamp,
}

/// The address the room's QR code holds: the service's check-in page for the round and code.
fn checkin_url(base: &str, round_id: i32, code: &str) -> String {
    format!("{base}/checkin/{round_id}?code={code}")
}

fn answer(round: &RoundCredit, code: String, base: &str) -> CheckinCode {
    let window = round.window();
    CheckinCode {
        url: Line::stored(checkin_url(base, round.id, &code)),
        code: Line::stored(code),
        opens_at: LocalTimestamp::in_zone(window.opens_at(), &window.zone),
        closes_at: LocalTimestamp::in_zone(window.closes_at(), &window.zone),
    }
}

/// Round `round_id`'s code, made when it has none (or anew, the old one retired, when
/// `renew`), with its URL under `base` and the check-in window.
async fn code_answer(
    ctx: &Ctx,
    granted: Granted,
    round_id: i32,
    base: String,
    renew: bool,
) -> Result<CheckinCode, ApiError> {
    ctx.write(granted, move |conn, author| {
        let round = round_credit(conn, round_id)?;
        let code = match (current_code(conn, round_id)?, renew) {
            (Some(code), false) => code,
            (had, _) => make_code(conn, round_id, author, had.is_some())?,
        };
        Ok(answer(&round, code, &base))
    })
    .await
}

/// A round's check-in code
///
/// Made when it is first asked for. Organizers only: the code is in no other answer.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 200, description = "The code, its URL and the check-in window", body = CheckinCode), ReadErrors)
)]
#[get("/rounds/{id}/checkin-code")]
pub async fn get_checkin_code(
    ctx: Ctx,
    id: web::Path<i32>,
    req: HttpRequest,
    settings: web::Data<CalendarSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let code = code_answer(&ctx, granted, id.into_inner(), settings.base(&req), false).await?;
    ctx.answer(granted, Rendered::json(&code)?)
}

/// Make a new check-in code for a round
///
/// The old code stops working at once.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 200, description = "The new code, its URL and the check-in window", body = CheckinCode), WriteErrors)
)]
#[post("/rounds/{id}/checkin-code")]
pub async fn regenerate_checkin_code(
    ctx: Ctx,
    id: web::Path<i32>,
    req: HttpRequest,
    settings: web::Data<CalendarSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let code = code_answer(&ctx, granted, id.into_inner(), settings.base(&req), true).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(code))
}

/// The QR code of a round's check-in URL, as SVG
///
/// `{LHS_PUBLIC_URL}/checkin/{id}?code={code}`, for the screen in the room. Made with the code
/// when it is first asked for.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    responses((status = 200, description = "The QR code", content_type = "image/svg+xml", body = SvgText), ReadErrors)
)]
#[get("/rounds/{id}/checkin.svg")]
pub async fn checkin_svg(
    ctx: Ctx,
    id: web::Path<i32>,
    req: HttpRequest,
    settings: web::Data<CalendarSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Organizer))?;
    let code = code_answer(&ctx, granted, id.into_inner(), settings.base(&req), false).await?;
    let svg = qr_svg(code.url.as_str())?;
    ctx.answer(granted, Rendered::text(svg, "image/svg+xml"))
}

/// An SVG image, as answered.
#[derive(ToSchema)]
#[schema(value_type = String, max_length = 1000000)]
pub struct SvgText(#[allow(dead_code)] String);

/// `text` as a QR code in SVG, with the quiet zone readers need.
pub fn qr_svg(text: &str) -> Result<String, ApiError> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::Internal(format!("the check-in URL makes no QR code: {e}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(320, 320)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    #[test]
    fn codes_use_the_alphabet_without_look_alikes() {
        for _ in 0..200 {
            let code = new_code().unwrap_or_default();
            assert_eq!(code.len(), CODE_LENGTH);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
        }
        assert_eq!(normalized(" k7q-m3x "), "K7QM3X");
    }

    /// A round across the spring change in New York: 2019-03-10 01:30 EST to 03:30 EDT (the
    /// clocks skip from 02:00 to 03:00), so its window opens at 01:15 EST and closes at 04:30
    /// EDT: 3 h 15 min after it opens, not 4 h 15 min.
    #[test]
    fn the_window_is_exact_to_the_second_across_a_clock_change() {
        let zone = timezone::named_or_default(Some("America/New_York"));
        let window = Window::of(
            at("2019-03-10T06:30:00Z"),
            at("2019-03-10T07:30:00Z"),
            15,
            60,
            zone,
        );
        assert_eq!(window.local(window.opens), "2019-03-10T01:15:00-05:00");
        assert_eq!(window.local(window.closes), "2019-03-10T04:30:00-04:00");
        let now = at("2019-03-10T08:45:00Z");
        let check = |scan: &str| attended_at(&window, now, Some(at(scan)));
        assert!(matches!(
            check("2019-03-10T06:14:59Z"),
            Err(Refused::BadScan(_))
        ));
        assert_eq!(
            check("2019-03-10T06:15:00Z"),
            Ok(at("2019-03-10T06:15:00Z"))
        );
        assert_eq!(
            check("2019-03-10T08:29:59Z"),
            Ok(at("2019-03-10T08:29:59Z"))
        );
        // Received after the window closed: refused without a scan time...
        let late = at("2019-03-10T08:30:00Z");
        match attended_at(&window, late, None) {
            Err(Refused::Closed(why)) => {
                assert!(why.contains("2019-03-10T01:15:00-05:00"), "{why}");
                assert!(why.contains("2019-03-10T04:30:00-04:00"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // ... and taken with a scan inside it.
        assert!(attended_at(&window, late, Some(at("2019-03-10T08:29:59Z"))).is_ok());
        assert!(attended_at(&window, at("2019-03-10T08:29:59Z"), None).is_ok());
        assert!(attended_at(&window, at("2019-03-10T06:14:59Z"), None).is_err());
        assert!(attended_at(&window, at("2019-03-10T06:15:00Z"), None).is_ok());
    }

    /// The autumn change: 2019-11-03 01:30 EDT to 01:30 EST (the clocks go back from 02:00 to
    /// 01:00, so 01:30 happens twice), an hour long.
    #[test]
    fn the_window_is_exact_across_the_autumn_change() {
        let zone = timezone::named_or_default(Some("America/New_York"));
        let window = Window::of(
            at("2019-11-03T05:30:00Z"),
            at("2019-11-03T06:30:00Z"),
            15,
            60,
            zone,
        );
        assert_eq!(window.local(window.opens), "2019-11-03T01:15:00-04:00");
        assert_eq!(window.local(window.closes), "2019-11-03T02:30:00-05:00");
        assert!(!window.contains(at("2019-11-03T05:14:59Z")));
        assert!(window.contains(at("2019-11-03T05:15:00Z")));
        assert!(window.contains(at("2019-11-03T07:29:59Z")));
        assert!(!window.contains(at("2019-11-03T07:30:00Z")));
    }

    #[test]
    fn a_scan_is_at_most_seven_days_old_and_two_minutes_ahead() {
        let zone = timezone::named_or_default(Some("America/New_York"));
        let window = Window::of(
            at("2026-01-01T17:00:00Z"),
            at("2026-01-01T18:00:00Z"),
            15,
            60,
            zone,
        );
        let scan = at("2026-01-01T17:30:00Z");
        let week = at("2026-01-08T17:30:00Z");
        assert_eq!(attended_at(&window, week, Some(scan)), Ok(scan));
        let later = week + Duration::seconds(1);
        assert!(matches!(
            attended_at(&window, later, Some(scan)),
            Err(Refused::BadScan(_))
        ));
        let now = at("2026-01-01T17:28:00Z");
        assert_eq!(attended_at(&window, now, Some(scan)), Ok(scan));
        let early = now - Duration::seconds(1);
        assert!(matches!(
            attended_at(&window, early, Some(scan)),
            Err(Refused::BadScan(_))
        ));
    }
}
