//! iCalendar feeds (RFC 5545) of the rounds, for Outlook, Google Calendar, Apple Calendar and
//! Thunderbird to subscribe to: `GET /api/v1/rounds.ics` and, for "add to calendar" links,
//! `GET /api/v1/rounds/{id}.ics`.
//!
//! The calendar is written here rather than with the `icalendar` crate, which writes a
//! `DTSTAMP` and a random `UID` into every component it serialises, `VTIMEZONE` and its
//! observances included, where RFC 5545 does not allow them, and which would make every answer
//! differ (no stable `ETag`, so no 304 for subscribed calendars). What RFC 5545 asks of the text
//! is small and tested below: CRLF line ends, lines folded at 75 octets (never inside a UTF-8
//! character), TEXT values escaped. The time zone's rules come from the tz database through
//! jiff: the transitions of every year the events span, never a hand-typed table.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};

use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::fields::{Id, Timestamp};
use crate::platform::resource::{Access, Ctx, Resource};
use crate::platform::timezone::{self, Observance, Transition, Zone};
use crate::schedule::materials::{self, Material};
use crate::schedule::rounds::{self, Round, RoundFilter, RoundStatus, Rounds, SpeakerStatus};
use crate::schedule::series::{Series, SeriesRecord};

/// The media type of the feeds.
pub const CONTENT_TYPE: &str = "text/calendar; charset=utf-8";
/// How often subscribed calendars should fetch the feed again.
pub const REFRESH: &str = "PT1H";
/// The most rounds one feed holds (a feed has no pages).
const FEED_MAX: i64 = 5000;
/// How far back the feed reaches when `from` is not given.
const DEFAULT_MONTHS_BACK: u32 = 12;

/// Where the feeds point and how their events are named (`LHS_PUBLIC_URL`,
/// `LHS_CALENDAR_DOMAIN`).
#[derive(Debug, Clone)]
pub struct CalendarSettings {
    /// The service's public address, such as `https://rounds.example.org`; events link to
    /// their round there.
    pub public_url: Option<String>,
    /// The right-hand side of every event's UID: `round-<id>@<domain>`.
    pub domain: String,
}

impl CalendarSettings {
    /// The service's address as people reach it: `LHS_PUBLIC_URL`, else the scheme and host
    /// `req` was sent to.
    pub fn base(&self, req: &actix_web::HttpRequest) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => {
                let info = req.connection_info();
                format!("{}://{}", info.scheme(), info.host())
            }
        }
    }

    /// The domain defaults to the host of the public URL, or `lhs-rounds.invalid`.
    pub fn new(public_url: Option<&str>, domain: Option<&str>) -> CalendarSettings {
        let public_url = public_url
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty());
        let host = public_url.as_deref().and_then(|url| {
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => host.split(':').next().unwrap_or_default(),
            };
            (!host.is_empty()).then(|| host.to_owned())
        });
        let domain = domain
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .or(host)
            .unwrap_or_else(|| "lhs-rounds.invalid".to_owned());
        CalendarSettings { public_url, domain }
    }
}

/// One content line: `NAME;PARAMS:VALUE`, folded.
pub fn line(out: &mut String, name_and_params: &str, value: &str) {
    let mut unfolded = String::with_capacity(name_and_params.len() + value.len() + 1);
    unfolded.push_str(name_and_params);
    unfolded.push(':');
    unfolded.push_str(value);
    fold_into(out, &unfolded);
}

/// Folds a content line at 75 octets, never inside a UTF-8 character (RFC 5545 §3.1): each
/// continuation line starts with one space, which counts toward its 75.
pub fn fold_into(out: &mut String, unfolded: &str) {
    const LIMIT: usize = 75;
    let mut rest = unfolded;
    let mut limit = LIMIT;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        limit = LIMIT - 1;
    }
}

/// A TEXT value (RFC 5545 §3.3.11): backslash, semicolon and comma escaped, every line break
/// (CRLF, CR or LF) written as `\n`.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: quoted when it holds a character that would end it.
pub fn param_value(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    if clean.contains([':', ';', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// A UTC date-time value (`20190425T160000Z`).
pub fn utc_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

fn local_stamp(at: NaiveDateTime) -> String {
    at.format("%Y%m%dT%H%M%S").to_string()
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.unsigned_abs();
    let (hours, minutes, rest) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if rest == 0 {
        format!("{sign}{hours:02}{minutes:02}")
    } else {
        format!("{sign}{hours:02}{minutes:02}{rest:02}")
    }
}

fn year_start(year: i32) -> Option<DateTime<Utc>> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

/// Every change of `zone`'s offset in the years `first..=last` (UTC), from the tz database.
pub fn transitions(zone: &Zone, first: i32, last: i32) -> Vec<Transition> {
    match (year_start(first), year_start(last.saturating_add(1))) {
        (Some(start), Some(end)) => timezone::transitions(zone, start, end),
        _ => Vec::new(),
    }
}

/// The `VTIMEZONE` of `zone` for events in the years `first..=last`: its real rules for those
/// years (and the year before, so the first event's observance is there).
fn write_timezone(out: &mut String, zone: &Zone, first: i32, last: i32) {
    out.push_str("BEGIN:VTIMEZONE\r\n");
    line(out, "TZID", &escape_text(timezone::name(zone)));
    let changes = transitions(zone, first - 1, last);
    if changes.is_empty() {
        // No change in those years: one observance, in force from before the first event.
        let at = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        let jan = year_start(first).unwrap_or_default();
        let Observance {
            seconds,
            daylight,
            abbreviation: name,
        } = timezone::observance(zone, jan);
        let kind = if daylight { "DAYLIGHT" } else { "STANDARD" };
        out.push_str(&format!("BEGIN:{kind}\r\n"));
        line(out, "DTSTART", &local_stamp(at));
        line(out, "TZOFFSETFROM", &offset_text(seconds));
        line(out, "TZOFFSETTO", &offset_text(seconds));
        if !name.is_empty() {
            line(out, "TZNAME", &escape_text(&name));
        }
        out.push_str(&format!("END:{kind}\r\n"));
    }
    for change in changes {
        let kind = if change.daylight {
            "DAYLIGHT"
        } else {
            "STANDARD"
        };
        // DTSTART is the local time of the onset, in the offset in force before it.
        let onset = change.at + Duration::seconds(i64::from(change.from_seconds));
        out.push_str(&format!("BEGIN:{kind}\r\n"));
        line(out, "DTSTART", &local_stamp(onset));
        line(out, "TZOFFSETFROM", &offset_text(change.from_seconds));
        line(out, "TZOFFSETTO", &offset_text(change.to_seconds));
        if !change.name.is_empty() {
            line(out, "TZNAME", &escape_text(&change.name));
        }
        out.push_str(&format!("END:{kind}\r\n"));
    }
    out.push_str("END:VTIMEZONE\r\n");
}

/// Where a public material is: its link, or its file's download on the public URL (a file
/// has no address a calendar could use without one).
fn material_address(material: &Material, settings: &CalendarSettings) -> Option<String> {
    match (&material.url, &material.file, &settings.public_url) {
        (Some(url), _, _) => Some(url.as_str().to_owned()),
        (None, Some(file), Some(base)) => Some(format!("{base}{}", file.download_url)),
        _ => None,
    }
}

/// What an event says of its round beyond the title: the confirmed speakers with their roles
/// (none, to be announced, when no one has confirmed), the organising departments, where its
/// disclosure statement is, the description and the public materials.
fn event_description(
    round: &Round,
    materials: &[&Material],
    settings: &CalendarSettings,
) -> String {
    let mut parts = Vec::new();
    let speakers: Vec<String> = round
        .speakers
        .0
        .iter()
        .filter(|s| s.status == SpeakerStatus::Confirmed)
        .map(|s| format!("{} ({})", s.display_name, s.role.as_str()))
        .collect();
    if !speakers.is_empty() {
        parts.push(format!("Speakers: {}", speakers.join("; ")));
    }
    if !round.departments.0.is_empty() {
        let departments: Vec<&str> = round
            .departments
            .0
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        parts.push(format!("Organised by: {}", departments.join("; ")));
    }
    // Learners must be able to read the disclosures before the session (ACCME Standard 3): the
    // event names where. Without a public URL the path is all there is to name.
    let statement = round.disclosure_statement_url.as_str();
    let statement = match &settings.public_url {
        Some(base) => format!("{base}{statement}"),
        None => statement.to_owned(),
    };
    parts.push(format!(
        "Disclosures of financial relationships: {statement}"
    ));
    if let Some(description) = round.description.as_ref().map(|d| d.as_str()) {
        if !description.is_empty() {
            parts.push(description.to_owned());
        }
    }
    let linked: Vec<String> = materials
        .iter()
        .filter_map(|m| {
            material_address(m, settings).map(|at| format!("{} ({}): {at}", m.title, m.kind))
        })
        .collect();
    if !linked.is_empty() {
        parts.push(format!("Materials:\n{}", linked.join("\n")));
    }
    parts.join("\n\n")
}

fn write_event(
    out: &mut String,
    round: &Round,
    materials: &[&Material],
    zone: &Zone,
    settings: &CalendarSettings,
) {
    let tzid = format!("DTSTART;TZID={}", param_value(timezone::name(zone)));
    let tzid_end = format!("DTEND;TZID={}", param_value(timezone::name(zone)));
    let updated = round.audit.updated_at.0;
    out.push_str("BEGIN:VEVENT\r\n");
    line(
        out,
        "UID",
        &format!("round-{}@{}", round.id.0, settings.domain),
    );
    line(out, "DTSTAMP", &utc_stamp(updated));
    line(out, "LAST-MODIFIED", &utc_stamp(updated));
    line(out, "CREATED", &utc_stamp(round.audit.created_at.0));
    line(
        out,
        &tzid,
        &local_stamp(timezone::local(zone, round.starts_at.0).naive_local()),
    );
    line(
        out,
        &tzid_end,
        &local_stamp(timezone::local(zone, round.ends_at.0).naive_local()),
    );
    line(out, "SEQUENCE", &round.sequence.max(0).to_string());
    let summary = match round.title.as_ref().map(|t| t.as_str()) {
        Some(title) if !title.is_empty() => title.to_owned(),
        _ => "LHS Rounds: topic to be announced".to_owned(),
    };
    line(out, "SUMMARY", &escape_text(&summary));
    line(out, "LOCATION", &escape_text(round.location.as_str()));
    let description = event_description(round, materials, settings);
    if !description.is_empty() {
        line(out, "DESCRIPTION", &escape_text(&description));
    }
    // The public materials, as RFC 5545 attachments by reference (a URI value needs no
    // escaping; a link's characters were checked when it was written).
    for material in materials {
        if let Some(address) = material_address(material, settings) {
            let params = match &material.file {
                Some(file) if material.url.is_none() => {
                    format!("ATTACH;FMTTYPE={}", param_value(file.content_type.as_str()))
                }
                _ => "ATTACH".to_owned(),
            };
            line(out, &params, &address);
        }
    }
    if let Some(base) = &settings.public_url {
        line(
            out,
            "URL;VALUE=URI",
            &format!(
                "{base}{}/rounds/{}",
                crate::platform::resource::API_PREFIX,
                round.id.0
            ),
        );
    }
    let status = match round.status {
        RoundStatus::Scheduled => "CONFIRMED",
        RoundStatus::Cancelled => "CANCELLED",
    };
    line(out, "STATUS", status);
    line(out, "TRANSP", "OPAQUE");
    out.push_str("END:VEVENT\r\n");
}

/// A published calendar's first lines (RFC 5545 §3.4, §3.7; `X-WR-CALNAME`, the name calendar
/// applications show), in a string with room for `capacity` bytes: the feeds of rounds and of
/// action items both start so.
pub fn begin(capacity: usize, name: &str) -> String {
    let mut out = String::with_capacity(capacity);
    out.push_str("BEGIN:VCALENDAR\r\n");
    line(&mut out, "VERSION", "2.0");
    let product = format!(
        "-//lhs-rounds//LHS Rounds API {}//EN",
        env!("CARGO_PKG_VERSION")
    );
    line(&mut out, "PRODID", &product);
    line(&mut out, "CALSCALE", "GREGORIAN");
    line(&mut out, "METHOD", "PUBLISH");
    line(&mut out, "X-WR-CALNAME", &escape_text(name));
    out
}

/// The whole calendar object of `rounds`, each event with the public `materials` of its round.
pub fn render(
    series: &Series,
    rounds: &[Round],
    materials: &[Material],
    settings: &CalendarSettings,
) -> String {
    let zone = series.zone();
    let mut out = begin(1024 + rounds.len() * 700, series.name.as_str());
    line(
        &mut out,
        "X-WR-TIMEZONE",
        &escape_text(timezone::name(&zone)),
    );
    line(&mut out, "REFRESH-INTERVAL;VALUE=DURATION", REFRESH);
    line(&mut out, "X-PUBLISHED-TTL", REFRESH);
    let years = rounds
        .iter()
        .flat_map(|r| [r.starts_at.0, r.ends_at.0])
        .map(|at| timezone::local(&zone, at).year());
    let (first, last) = years.fold((None, None), |(lo, hi): (Option<i32>, Option<i32>), y| {
        (
            Some(lo.map_or(y, |l| l.min(y))),
            Some(hi.map_or(y, |h| h.max(y))),
        )
    });
    let this_year = timezone::local(&zone, Utc::now()).year();
    write_timezone(
        &mut out,
        &zone,
        first.unwrap_or(this_year),
        last.unwrap_or(this_year),
    );
    for round in rounds {
        let attached: Vec<&Material> = materials
            .iter()
            .filter(|m| m.round_id == round.id)
            .collect();
        write_event(&mut out, round, &attached, &zone, settings);
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// The rounds of a feed, oldest first, and when the answer stops holding by the passing of time
/// (the moment the oldest round leaves the default window).
fn feed_rounds(
    conn: &mut DbConnection,
    filter: &RoundFilter,
) -> Result<(Vec<Round>, Option<NaiveDateTime>), ApiError> {
    let now = db::now();
    let months_back = chrono::Months::new(DEFAULT_MONTHS_BACK);
    let window_start = now.checked_sub_months(months_back).unwrap_or(now);
    let mut query = filter.clone();
    query.from = query
        .from
        .or_else(|| Some(Timestamp::from_naive(window_start)));
    let items = rounds::list_all(conn, &query, FEED_MAX, now)?;
    // Without `from`, the oldest round leaves the feed 12 months after it starts.
    let valid_until = match filter.from {
        Some(_) => None,
        None => items
            .first()
            .and_then(|r| r.starts_at.naive().checked_add_months(months_back))
            .map(|leaves| leaves + Duration::microseconds(1)),
    };
    Ok((items, valid_until))
}

/// Subscribe to the rounds (iCalendar)
///
/// The filters of the round list: the past 12 months and everything upcoming unless `from`
/// says otherwise; a cancelled round stays, marked `STATUS:CANCELLED`, so that subscribed
/// calendars strike it out.
#[utoipa::path(
    tag = "calendar",
    security((), ("bearer" = [])),
    params(RoundFilter),
    responses(
        (status = 200, description = "An iCalendar (RFC 5545) feed: one VEVENT per round",
            content_type = "text/calendar", body = CalendarText),
        ReadErrors
    )
)]
#[get("/rounds.ics")]
pub async fn rounds_feed(
    ctx: Ctx,
    query: crate::platform::validate::Query,
    settings: web::Data<CalendarSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Rounds>(Access::Read)?;
    let query = query.values()?;
    let filter: RoundFilter = query.get()?;
    let settings = settings.get_ref().clone();
    ctx.read(granted, true, true, Some(&query), move |conn| {
        let series = found_series(conn)?;
        let (rounds, valid_until) = feed_rounds(conn, &filter)?;
        let ids: Vec<i32> = rounds.iter().map(|r| r.id.0).collect();
        let materials = materials::public_of_rounds(conn, &ids)?;
        Ok(Rendered::text(
            render(&series, &rounds, &materials, &settings),
            CONTENT_TYPE,
        )
        .until(valid_until))
    })
    .await
}

/// Add one round to a calendar (iCalendar)
#[utoipa::path(
    tag = "calendar",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Round id")),
    responses(
        (status = 200, description = "An iCalendar (RFC 5545) object with the round's one VEVENT",
            content_type = "text/calendar", body = CalendarText),
        ReadErrors
    )
)]
#[get("/rounds/{id}.ics")]
pub async fn round_event(
    ctx: Ctx,
    id: web::Path<i32>,
    settings: web::Data<CalendarSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Rounds>(Access::Read)?;
    let id = id.into_inner();
    let settings = settings.get_ref().clone();
    ctx.read(granted, true, true, None, move |conn| {
        let series = found_series(conn)?;
        let round = crate::platform::resource::found(Rounds::find(conn, id)?, Rounds::NAME, id)?;
        let materials = materials::public_of_rounds(conn, &[id])?;
        Ok(Rendered::text(
            render(&series, std::slice::from_ref(&round), &materials, &settings),
            CONTENT_TYPE,
        ))
    })
    .await
}

fn found_series(conn: &mut DbConnection) -> Result<Series, ApiError> {
    SeriesRecord::find(conn, 1)?.ok_or_else(|| {
        ApiError::Internal("the series row is missing; run `lhs-rounds migrate`".to_owned())
    })
}

/// An iCalendar object, as text.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, max_length = 50000000)]
pub struct CalendarText(#[allow(dead_code)] String);

#[cfg(test)]
mod tests {
    use super::*;

    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "")
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        for title in [
            "é".repeat(300),
            "学習する医療システムのラウンド".repeat(10),
            "🩺🏥".repeat(40),
            "a".repeat(200),
        ] {
            let mut out = String::new();
            line(&mut out, "SUMMARY", &escape_text(&title));
            for physical in out.split("\r\n").filter(|l| !l.is_empty()) {
                assert!(
                    physical.len() <= 75,
                    "{} octets: {physical}",
                    physical.len()
                );
            }
            assert_eq!(unfold(&out), format!("SUMMARY:{title}\r\n"));
        }
    }

    #[test]
    fn text_is_escaped_as_rfc_5545_says() {
        assert_eq!(
            escape_text("a;b,c\\d\r\ne\nf\rg"),
            "a\\;b\\,c\\\\d\\ne\\nf\\ng"
        );
    }

    #[test]
    fn new_york_changes_its_offset_twice_a_year_from_the_tz_database() {
        let changes = transitions(&timezone::named_or_default(None), 2019, 2019);
        assert_eq!(changes.len(), 2);
        assert!(changes[0].daylight && changes[0].to_seconds == -4 * 3600);
        // 2019-03-10 at 2:00 EST is 07:00 UTC.
        assert_eq!(
            changes[0].at,
            NaiveDate::from_ymd_opt(2019, 3, 10)
                .and_then(|d| d.and_hms_opt(7, 0, 0))
                .unwrap_or_default()
        );
        assert!(!changes[1].daylight && changes[1].name == "EST");
        let tokyo = timezone::named("Asia/Tokyo").unwrap_or(Zone::UTC);
        assert_eq!(timezone::name(&tokyo), "Asia/Tokyo");
        assert!(transitions(&tokyo, 2019, 2020).is_empty());
    }

    #[test]
    fn the_domain_of_uids_comes_from_the_public_url() {
        assert_eq!(
            CalendarSettings::new(Some("https://rounds.example.org:8443/x"), None).domain,
            "rounds.example.org"
        );
        assert_eq!(
            CalendarSettings::new(None, None).domain,
            "lhs-rounds.invalid"
        );
        assert_eq!(
            CalendarSettings::new(Some("https://a.example.org"), Some("cal.example.org")).domain,
            "cal.example.org"
        );
    }

    #[test]
    fn offsets_are_written_with_their_sign() {
        assert_eq!(offset_text(-4 * 3600), "-0400");
        assert_eq!(offset_text(5 * 3600 + 30 * 60), "+0530");
    }
}
