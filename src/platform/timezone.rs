//! Time zones: the series' zone, from the tz database that jiff bundles, and the few
//! conversions the rest of the service needs between it and chrono's UTC instants.
//!
//! The rest of the service keeps chrono for instants and dates; only the zone rules come from
//! jiff. chrono-tz compiled every zone's transitions into tables of `&'static str`, which a
//! position-independent binary relocates at start, so all of them were dirty memory in every
//! process. jiff keeps the database as TZif bytes and parses (and caches) only the zones asked
//! for.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, Utc};
use jiff::tz::TimeZone;

/// A time zone of the tz database.
pub type Zone = TimeZone;

/// The zone the series runs in when nothing else is said.
pub const DEFAULT: &str = "America/New_York";

/// The zone named `name`, spelled exactly as the tz database spells it (`America/New_York`,
/// not `america/new_york`): the name is written into calendars as their `TZID`.
pub fn named(name: &str) -> Option<Zone> {
    let zone = TimeZone::get(name).ok()?;
    (!zone.is_unknown() && zone.iana_name() == Some(name)).then_some(zone)
}

/// The zone named `name`, or the default zone if there is no such name.
pub fn named_or_default(name: Option<&str>) -> Zone {
    name.and_then(named)
        .or_else(|| named(DEFAULT))
        .unwrap_or(TimeZone::UTC)
}

/// The zone's tz database name.
pub fn name(zone: &Zone) -> &str {
    zone.iana_name().unwrap_or("UTC")
}

fn instant(at: DateTime<Utc>) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(at.timestamp(), 0).ok()
}

fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds()).unwrap_or(Utc.fix())
}

/// `at` as the zone's local time, with the zone's offset at that instant.
pub fn local(zone: &Zone, at: DateTime<Utc>) -> DateTime<FixedOffset> {
    let offset = instant(at).map_or(jiff::tz::Offset::UTC, |i| zone.to_offset(i));
    at.with_timezone(&fixed(offset))
}

/// The instant the zone's clocks show `local`, if they show it exactly once (not in the hour
/// skipped or the hour repeated when daylight saving time starts or ends).
pub fn from_local(zone: &Zone, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Read as if it were UTC, the local time gives the civil date and time jiff asks for.
    let civil = jiff::tz::Offset::UTC.to_datetime(instant(local.and_utc())?);
    let at = zone.to_ambiguous_timestamp(civil).unambiguous().ok()?;
    DateTime::from_timestamp(at.as_second(), local.and_utc().timestamp_subsec_nanos())
}

/// The instant `days` calendar days after `at` in the zone: the same time on the zone's
/// clocks, so a day across a change to or from daylight saving time is 23 or 25 hours (a
/// local time the clocks skip is taken as the clocks show it after the change). `None` past
/// the year 9999.
pub fn add_days(zone: &Zone, at: DateTime<Utc>, days: i64) -> Option<DateTime<Utc>> {
    let later = instant(at)?
        .to_zoned_datetime(zone.clone())
        .checked_add(jiff::Span::new().try_days(days).ok()?)
        .ok()?;
    DateTime::from_timestamp(later.timestamp().as_second(), at.timestamp_subsec_nanos())
}

/// What the zone's clocks are at an instant: the offset from UTC in seconds, whether it is
/// daylight saving time, and its abbreviation (`EDT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observance {
    pub seconds: i32,
    pub daylight: bool,
    pub abbreviation: String,
}

/// The zone's observance at `at` (UTC).
pub fn observance(zone: &Zone, at: DateTime<Utc>) -> Observance {
    match instant(at) {
        Some(at) => {
            let info = zone.to_offset_info(at);
            Observance {
                seconds: info.offset().seconds(),
                daylight: info.dst().is_dst(),
                abbreviation: info.abbreviation().to_owned(),
            }
        }
        None => Observance {
            seconds: 0,
            daylight: false,
            abbreviation: String::new(),
        },
    }
}

/// A change of a zone's offset, from the tz database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The UTC instant of the change.
    pub at: NaiveDateTime,
    pub from_seconds: i32,
    pub to_seconds: i32,
    pub daylight: bool,
    pub name: String,
}

/// Every change of the zone's offset or daylight saving time in `[start, end)`. A change of
/// abbreviation alone is no change to a calendar.
pub fn transitions(zone: &Zone, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Transition> {
    let (Some(from), Some(until)) = (instant(start), instant(end)) else {
        return Vec::new();
    };
    let mut before = observance(zone, start);
    let mut found = Vec::new();
    for change in zone.following(from) {
        let at = change.timestamp();
        if at >= until {
            break;
        }
        let after = Observance {
            seconds: change.offset().seconds(),
            daylight: change.dst().is_dst(),
            abbreviation: change.abbreviation().to_owned(),
        };
        if (after.seconds, after.daylight) != (before.seconds, before.daylight) {
            if let Some(utc) = DateTime::from_timestamp(at.as_second(), 0) {
                found.push(Transition {
                    at: utc.naive_utc(),
                    from_seconds: before.seconds,
                    to_seconds: after.seconds,
                    daylight: after.daylight,
                    name: after.abbreviation.clone(),
                });
            }
        }
        before = after;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone as _};

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn only_names_the_tz_database_spells_that_way_are_zones() {
        assert!(named("America/New_York").is_some());
        assert!(named("UTC").is_some());
        assert!(named("america/new_york").is_none());
        assert!(named("Mars/Olympus_Mons").is_none());
        assert!(named("Etc/Unknown").is_none());
        assert!(named("").is_none());
        assert_eq!(name(&named_or_default(Some("nowhere"))), DEFAULT);
    }

    #[test]
    fn noon_in_new_york_is_five_in_winter_and_four_in_summer_utc() {
        let zone = named_or_default(None);
        let noon = |m| {
            NaiveDate::from_ymd_opt(2026, m, 19)
                .and_then(|d| d.and_hms_opt(12, 0, 0))
                .unwrap_or_default()
        };
        assert_eq!(from_local(&zone, noon(1)), Some(utc(2026, 1, 19, 17)));
        assert_eq!(from_local(&zone, noon(7)), Some(utc(2026, 7, 19, 16)));
        assert_eq!(
            local(&zone, utc(2026, 7, 19, 16)).to_rfc3339(),
            "2026-07-19T12:00:00-04:00"
        );
    }

    #[test]
    fn a_local_time_the_clocks_skip_or_repeat_is_no_instant() {
        let zone = named_or_default(None);
        let at = |d, h| {
            NaiveDate::from_ymd_opt(2026, if d == 8 { 3 } else { 11 }, d)
                .and_then(|d| d.and_hms_opt(h, 30, 0))
                .unwrap_or_default()
        };
        assert_eq!(from_local(&zone, at(8, 2)), None);
        assert_eq!(from_local(&zone, at(1, 1)), None);
        assert!(from_local(&zone, at(8, 3)).is_some());
    }

    #[test]
    fn days_are_added_on_the_zones_clocks() {
        let zone = named_or_default(None);
        // 2026-03-08: New York's clocks go from 2:00 to 3:00; 2026-11-01: from 2:00 back to 1:00.
        assert_eq!(
            add_days(&zone, utc(2026, 3, 7, 17), 1),
            Some(utc(2026, 3, 8, 16)),
            "noon to noon across the spring change: 23 hours"
        );
        assert_eq!(
            add_days(&zone, utc(2026, 10, 31, 16), 1),
            Some(utc(2026, 11, 1, 17)),
            "noon to noon across the autumn change: 25 hours"
        );
        assert_eq!(
            add_days(&TimeZone::UTC, utc(2026, 1, 31, 13), 30),
            Some(utc(2026, 3, 2, 13))
        );
        assert_eq!(
            add_days(&zone, utc(2026, 1, 1, 0), 0),
            Some(utc(2026, 1, 1, 0))
        );
        let with_micros = utc(2026, 1, 1, 0) + chrono::Duration::microseconds(7);
        assert_eq!(
            add_days(&zone, with_micros, 2),
            Some(utc(2026, 1, 3, 0) + chrono::Duration::microseconds(7))
        );
    }

    #[test]
    fn the_observance_names_daylight_saving_time() {
        let zone = named_or_default(None);
        let summer = observance(&zone, utc(2026, 7, 1, 0));
        assert_eq!(
            summer,
            Observance {
                seconds: -4 * 3600,
                daylight: true,
                abbreviation: "EDT".to_owned()
            }
        );
        assert!(!observance(&zone, utc(2026, 1, 1, 0)).daylight);
    }
}
