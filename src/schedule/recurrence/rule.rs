//! The RRULE text a series carries, read into a [`Rule`] and written back in one canonical
//! spelling.
//!
//! Everything outside the subset is refused with the part named, because the text comes from
//! an organizer's form (or a calendar client's export) and a 422 that says `BYMONTHDAY` is
//! something they can act on.

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::Offset;
use jiff::Timestamp;

/// The longest rule text read. The longest sensible rule of the subset (every weekday, every
/// month, every position) is under 200 characters; the bound keeps parsing work trivial.
pub const MAX_RULE_LEN: usize = 256;
/// INTERVAL for FREQ=WEEKLY: at most a year of weeks. A gap longer than a year is not a series.
pub const MAX_WEEKLY_INTERVAL: u16 = 52;
/// INTERVAL for FREQ=MONTHLY: at most a year of months (12 = once a year).
pub const MAX_MONTHLY_INTERVAL: u16 = 12;
/// COUNT: 10,000 weekly rounds is 190 years; anything larger is a typo, not a series.
pub const MAX_COUNT: u32 = 10_000;
/// BYSETPOS: a month holds at most 31 candidate dates, so a larger position never matches.
pub const MAX_SETPOS: i8 = 31;
/// A BYDAY ordinal: a month has at most five of any weekday.
pub const MAX_ORDINAL: i8 = 5;

/// The rule parts the subset accepts, in the order [`Rule`]'s `Display` writes them.
pub const SUPPORTED_PARTS: [&str; 7] = [
    "FREQ", "INTERVAL", "BYMONTH", "BYDAY", "BYSETPOS", "UNTIL", "COUNT",
];
/// Parts RFC 5545 defines that a series may not use. Named on their own so the error says
/// "not supported" rather than "unknown".
const UNSUPPORTED_PARTS: [&str; 7] = [
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "WKST",
];

/// A rule that could not be accepted, and the part of it at fault (`FREQ`, `BYDAY`, ...; or
/// `RRULE` when the text as a whole is malformed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub part: String,
    pub message: String,
}

impl RuleError {
    fn new(part: &str, message: impl Into<String>) -> Self {
        RuleError {
            part: part.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.message)
    }
}

impl std::error::Error for RuleError {}

/// How often the rule's period comes round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Weekly,
    Monthly,
}

/// One BYDAY entry: a weekday and, in a MONTHLY rule, which of that weekday in the month
/// (`3TH` the third Thursday, `-1TH` the last). Without an ordinal it means every such
/// weekday of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySpec {
    pub weekday: Weekday,
    pub nth: Option<i8>,
}

impl DaySpec {
    /// Monday-first, then no ordinal, 1..5, -5..-1: the canonical order.
    fn sort_key(&self) -> (i8, i8) {
        let nth = match self.nth {
            None => 0,
            Some(n) if n > 0 => n,
            Some(n) => 20 + n,
        };
        (self.weekday.to_monday_zero_offset(), nth)
    }
}

/// The last moment of a series, as the three forms of RFC 5545's UNTIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `YYYYMMDD`: the series may have an occurrence on this local date and none after.
    Date(Date),
    /// `YYYYMMDDTHHMMSS`: a local ("floating") date and time in the series' zone.
    Floating(DateTime),
    /// `YYYYMMDDTHHMMSSZ`: an instant; an occurrence counts if it starts no later.
    Utc(Timestamp),
}

/// How the series ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Never,
    Count(u32),
    Until(Until),
}

/// A recurrence rule of the subset a series uses: FREQ=WEEKLY or MONTHLY, with INTERVAL,
/// BYDAY (ordinals in MONTHLY only), BYSETPOS (MONTHLY, with BYDAY), BYMONTH, and UNTIL or
/// COUNT. Only [`Rule::parse`] makes one, so every `Rule` is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(crate) freq: Frequency,
    pub(crate) interval: u16,
    /// Sorted in canonical order, no duplicates.
    pub(crate) by_day: Vec<DaySpec>,
    /// Sorted (positive ascending, then negative), no duplicates.
    pub(crate) by_set_pos: Vec<i8>,
    /// Sorted ascending, no duplicates.
    pub(crate) by_month: Vec<i8>,
    pub(crate) end: End,
}

impl Rule {
    pub fn freq(&self) -> Frequency {
        self.freq
    }
    pub fn interval(&self) -> u16 {
        self.interval
    }
    pub fn by_day(&self) -> &[DaySpec] {
        &self.by_day
    }
    pub fn by_set_pos(&self) -> &[i8] {
        &self.by_set_pos
    }
    pub fn by_month(&self) -> &[i8] {
        &self.by_month
    }
    pub fn end(&self) -> End {
        self.end
    }

    /// Reads RFC 5545 RRULE text, with or without a leading `RRULE:`, case-insensitively as
    /// the RFC says. The first fault found is reported, naming its part.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let text = text.trim();
        if text.len() > MAX_RULE_LEN {
            return Err(RuleError::new(
                "RRULE",
                format!("is longer than {MAX_RULE_LEN} characters"),
            ));
        }
        let upper = text.to_ascii_uppercase();
        let body = upper.strip_prefix("RRULE:").unwrap_or(&upper);
        if body.is_empty() {
            return Err(RuleError::new("FREQ", "is required"));
        }

        let mut parts: Vec<(&'static str, &str)> = Vec::new();
        for raw in body.split(';') {
            if raw.is_empty() {
                return Err(RuleError::new(
                    "RRULE",
                    "has an empty part (two `;` together, or one at either end)",
                ));
            }
            let Some((name, value)) = raw.split_once('=') else {
                return Err(RuleError::new(&part_label(raw), "has no `=` and value"));
            };
            let Some(name) = SUPPORTED_PARTS.iter().copied().find(|&p| p == name) else {
                if let Some(&known) = UNSUPPORTED_PARTS.iter().find(|&&p| p == name) {
                    return Err(RuleError::new(
                        known,
                        "is not supported: a series' rule may use only FREQ, INTERVAL, \
                         BYMONTH, BYDAY, BYSETPOS, UNTIL and COUNT",
                    ));
                }
                return Err(RuleError::new(
                    &part_label(name),
                    "is not a part of an RFC 5545 recurrence rule",
                ));
            };
            if parts.iter().any(|&(seen, _)| seen == name) {
                return Err(RuleError::new(name, "appears more than once"));
            }
            if value.is_empty() {
                return Err(RuleError::new(name, "has no value"));
            }
            parts.push((name, value));
        }

        // FREQ decides what the other parts may say, so it is read first wherever it stands.
        let freq = match parts.iter().find(|&&(name, _)| name == "FREQ") {
            None => return Err(RuleError::new("FREQ", "is required")),
            Some(&(_, "WEEKLY")) => Frequency::Weekly,
            Some(&(_, "MONTHLY")) => Frequency::Monthly,
            Some(_) => {
                return Err(RuleError::new(
                    "FREQ",
                    "only WEEKLY and MONTHLY are supported",
                ))
            }
        };

        let mut rule = Rule {
            freq,
            interval: 1,
            by_day: Vec::new(),
            by_set_pos: Vec::new(),
            by_month: Vec::new(),
            end: End::Never,
        };
        for &(name, value) in &parts {
            match name {
                "INTERVAL" => rule.interval = parse_interval(freq, value)?,
                "BYMONTH" => rule.by_month = parse_by_month(value)?,
                "BYDAY" => rule.by_day = parse_by_day(freq, value)?,
                "BYSETPOS" => rule.by_set_pos = parse_by_set_pos(value)?,
                "UNTIL" => {
                    if rule.end != End::Never {
                        return Err(count_and_until("UNTIL"));
                    }
                    rule.end = End::Until(parse_until(value)?);
                }
                "COUNT" => {
                    if rule.end != End::Never {
                        return Err(count_and_until("COUNT"));
                    }
                    rule.end = End::Count(parse_count(value)?);
                }
                _ => {}
            }
        }

        if !rule.by_set_pos.is_empty() {
            if freq != Frequency::Monthly {
                return Err(RuleError::new(
                    "BYSETPOS",
                    "is supported only with FREQ=MONTHLY",
                ));
            }
            if rule.by_day.is_empty() {
                return Err(RuleError::new(
                    "BYSETPOS",
                    "needs BYDAY: it picks among the days BYDAY gives",
                ));
            }
        }
        Ok(rule)
    }
}

/// The name of an unknown part as the error reports it: the name itself when it looks like
/// one, otherwise `RRULE` (so arbitrary input is not echoed back at length).
fn part_label(name: &str) -> String {
    let plausible = !name.is_empty()
        && name.len() <= 20
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if plausible {
        name.to_owned()
    } else {
        "RRULE".to_owned()
    }
}

fn count_and_until(part: &str) -> RuleError {
    RuleError::new(part, "COUNT and UNTIL must not both be given (RFC 5545)")
}

/// Unsigned decimal digits only: no sign, no spaces, and short enough not to overflow.
fn digits(value: &str) -> Option<u32> {
    if value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// An optionally signed integer, as RFC 5545's `ordwk` and `setposday` are written.
fn signed(value: &str) -> Option<i64> {
    let (negative, rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let n = i64::from(digits(rest)?);
    Some(if negative { -n } else { n })
}

fn list<'a>(part: &str, value: &'a str) -> Result<Vec<&'a str>, RuleError> {
    let items: Vec<&str> = value.split(',').collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(RuleError::new(part, "has an empty item in its list"));
    }
    Ok(items)
}

fn parse_interval(freq: Frequency, value: &str) -> Result<u16, RuleError> {
    let max = match freq {
        Frequency::Weekly => MAX_WEEKLY_INTERVAL,
        Frequency::Monthly => MAX_MONTHLY_INTERVAL,
    };
    digits(value)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            let unit = match freq {
                Frequency::Weekly => "weeks with FREQ=WEEKLY",
                Frequency::Monthly => "months with FREQ=MONTHLY",
            };
            RuleError::new(
                "INTERVAL",
                format!("must be a whole number from 1 to {max} ({unit})"),
            )
        })
}

fn parse_by_month(value: &str) -> Result<Vec<i8>, RuleError> {
    let mut months = Vec::new();
    for item in list("BYMONTH", value)? {
        let month = digits(item)
            .and_then(|n| i8::try_from(n).ok())
            .filter(|n| (1..=12).contains(n))
            .ok_or_else(|| {
                RuleError::new("BYMONTH", format!("`{item}` is not a month from 1 to 12"))
            })?;
        if months.contains(&month) {
            return Err(RuleError::new("BYMONTH", format!("lists {month} twice")));
        }
        months.push(month);
    }
    months.sort_unstable();
    Ok(months)
}

const WEEKDAY_CODES: [(&str, Weekday); 7] = [
    ("MO", Weekday::Monday),
    ("TU", Weekday::Tuesday),
    ("WE", Weekday::Wednesday),
    ("TH", Weekday::Thursday),
    ("FR", Weekday::Friday),
    ("SA", Weekday::Saturday),
    ("SU", Weekday::Sunday),
];

pub(crate) fn weekday_code(weekday: Weekday) -> &'static str {
    WEEKDAY_CODES
        .iter()
        .find(|&&(_, w)| w == weekday)
        .map_or("MO", |&(code, _)| code)
}

fn parse_by_day(freq: Frequency, value: &str) -> Result<Vec<DaySpec>, RuleError> {
    let mut days: Vec<DaySpec> = Vec::new();
    for item in list("BYDAY", value)? {
        let bad = || {
            RuleError::new(
                "BYDAY",
                format!(
                    "`{item}` is not a weekday (MO, TU, WE, TH, FR, SA, SU), \
                     optionally after an ordinal such as 3 or -1"
                ),
            )
        };
        let split = item.len().checked_sub(2).ok_or_else(bad)?;
        let (Some(ordinal), Some(code)) = (item.get(..split), item.get(split..)) else {
            return Err(bad());
        };
        let weekday = WEEKDAY_CODES
            .iter()
            .find(|&&(c, _)| c == code)
            .map(|&(_, w)| w)
            .ok_or_else(bad)?;
        let nth = if ordinal.is_empty() {
            None
        } else {
            let n = signed(ordinal).ok_or_else(bad)?;
            if freq != Frequency::Monthly {
                return Err(RuleError::new(
                    "BYDAY",
                    format!("`{item}`: an ordinal is allowed only with FREQ=MONTHLY"),
                ));
            }
            let max = i64::from(MAX_ORDINAL);
            if n == 0 || n.abs() > max {
                return Err(RuleError::new(
                    "BYDAY",
                    format!("`{item}`: the ordinal must be 1 to {max} or -1 to -{max}"),
                ));
            }
            i8::try_from(n).ok()
        };
        let spec = DaySpec { weekday, nth };
        if days.contains(&spec) {
            return Err(RuleError::new("BYDAY", format!("lists {item} twice")));
        }
        days.push(spec);
    }
    days.sort_by_key(DaySpec::sort_key);
    Ok(days)
}

fn parse_by_set_pos(value: &str) -> Result<Vec<i8>, RuleError> {
    let mut positions = Vec::new();
    for item in list("BYSETPOS", value)? {
        let max = i64::from(MAX_SETPOS);
        let position = signed(item)
            .filter(|&n| n != 0 && n.abs() <= max)
            .and_then(|n| i8::try_from(n).ok())
            .ok_or_else(|| {
                RuleError::new(
                    "BYSETPOS",
                    format!("`{item}` must be 1 to {max} or -1 to -{max}"),
                )
            })?;
        if positions.contains(&position) {
            return Err(RuleError::new("BYSETPOS", format!("lists {item} twice")));
        }
        positions.push(position);
    }
    positions.sort_by_key(|&p| {
        if p > 0 {
            i16::from(p)
        } else {
            100 + i16::from(p)
        }
    });
    Ok(positions)
}

fn parse_count(value: &str) -> Result<u32, RuleError> {
    digits(value)
        .filter(|n| (1..=MAX_COUNT).contains(n))
        .ok_or_else(|| {
            RuleError::new(
                "COUNT",
                format!("must be a whole number from 1 to {MAX_COUNT}"),
            )
        })
}

fn parse_until(value: &str) -> Result<Until, RuleError> {
    let bad = || {
        RuleError::new(
            "UNTIL",
            "must be a date YYYYMMDD or a date-time YYYYMMDDTHHMMSS, optionally ending in Z (UTC)",
        )
    };
    let number = |range: std::ops::Range<usize>| -> Result<i16, RuleError> {
        value
            .get(range)
            .and_then(digits)
            .and_then(|n| i16::try_from(n).ok())
            .ok_or_else(bad)
    };
    let date = || -> Result<Date, RuleError> {
        let year = number(0..4)?;
        let month = i8::try_from(number(4..6)?).map_err(|_| bad())?;
        let day = i8::try_from(number(6..8)?).map_err(|_| bad())?;
        Date::new(year, month, day)
            .map_err(|_| RuleError::new("UNTIL", format!("`{value}` is not a real date")))
    };
    let time = || -> Result<Time, RuleError> {
        if value.get(8..9) != Some("T") {
            return Err(bad());
        }
        let hour = i8::try_from(number(9..11)?).map_err(|_| bad())?;
        let minute = i8::try_from(number(11..13)?).map_err(|_| bad())?;
        let second = i8::try_from(number(13..15)?).map_err(|_| bad())?;
        Time::new(hour, minute, second, 0)
            .map_err(|_| RuleError::new("UNTIL", format!("`{value}` is not a real time of day")))
    };
    match value.len() {
        8 => Ok(Until::Date(date()?)),
        15 => Ok(Until::Floating(date()?.to_datetime(time()?))),
        16 if value.ends_with('Z') => {
            let utc = date()?.to_datetime(time()?);
            Offset::UTC.to_timestamp(utc).map(Until::Utc).map_err(|_| {
                RuleError::new("UNTIL", format!("`{value}` is beyond the dates handled"))
            })
        }
        _ => Err(bad()),
    }
}

fn write_date(f: &mut fmt::Formatter<'_>, date: Date) -> fmt::Result {
    write!(f, "{:04}{:02}{:02}", date.year(), date.month(), date.day())
}

fn write_datetime(f: &mut fmt::Formatter<'_>, at: DateTime) -> fmt::Result {
    write_date(f, at.date())?;
    write!(f, "T{:02}{:02}{:02}", at.hour(), at.minute(), at.second())
}

fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    items: &[T],
    mut item: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(f, ";{name}=")?;
    for (i, value) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        item(f, value)?;
    }
    Ok(())
}

/// The canonical text: no `RRULE:` prefix, upper case, parts in [`SUPPORTED_PARTS`] order,
/// INTERVAL left out when it is 1, list items sorted. Parsing it gives back an equal `Rule`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.freq {
            Frequency::Weekly => "FREQ=WEEKLY",
            Frequency::Monthly => "FREQ=MONTHLY",
        })?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        write_list(f, "BYMONTH", &self.by_month, |f, m| write!(f, "{m}"))?;
        write_list(f, "BYDAY", &self.by_day, |f, d| {
            if let Some(n) = d.nth {
                write!(f, "{n}")?;
            }
            f.write_str(weekday_code(d.weekday))
        })?;
        write_list(f, "BYSETPOS", &self.by_set_pos, |f, p| write!(f, "{p}"))?;
        match self.end {
            End::Never => Ok(()),
            End::Count(n) => write!(f, ";COUNT={n}"),
            End::Until(Until::Date(d)) => {
                f.write_str(";UNTIL=")?;
                write_date(f, d)
            }
            End::Until(Until::Floating(at)) => {
                f.write_str(";UNTIL=")?;
                write_datetime(f, at)
            }
            End::Until(Until::Utc(at)) => {
                f.write_str(";UNTIL=")?;
                write_datetime(f, Offset::UTC.to_datetime(at))?;
                f.write_str("Z")
            }
        }
    }
}
