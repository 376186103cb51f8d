//! Expanding a [`Rule`] into the local dates of its occurrences, and giving a date its start
//! instant in the series' zone.
//!
//! The expansion works on civil dates only, period by period (a week or a month), so no
//! instant and no UTC offset enters it: a clock change can neither add nor drop a date. The
//! zone is used at the edges only, to compare a UTC `UNTIL` and to turn a date and the
//! series' start time into an instant ([`local_start`]).

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::schedule::recurrence::rule::{End, Frequency, Rule, Until};

/// The longest range one expansion covers, in calendar years.
pub const MAX_RANGE_YEARS: i16 = 5;
/// The most occurrences one expansion returns.
pub const MAX_OCCURRENCES: usize = 500;

/// What one expansion may cover and return. A range `[from, to]` covers at most `max_years`
/// when `to` is before `from` plus `max_years` calendar years (jiff's arithmetic: 2020-02-29
/// plus 5 years is 2025-02-28). So 2019-01-01 to 2023-12-31 is exactly five years and is
/// accepted; 2019-01-01 to 2024-01-01 is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_years: i16,
    pub max_occurrences: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_years: MAX_RANGE_YEARS,
            max_occurrences: MAX_OCCURRENCES,
        }
    }
}

/// Why a range could not be expanded. The first three are the caller's to fix (a 422); each
/// says which bound was passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpansionError {
    /// `to` is before `from`.
    ReversedRange { from: Date, to: Date },
    /// The range covers more than `max_years`; `last_allowed` is the latest `to` accepted.
    RangeTooLong {
        from: Date,
        to: Date,
        max_years: i16,
        last_allowed: Date,
    },
    /// The range holds more than `max` occurrences.
    TooManyOccurrences { max: usize },
    /// A date or instant beyond what jiff represents (around the years -9999 and 9999).
    OutOfRange,
}

impl fmt::Display for ExpansionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpansionError::ReversedRange { from, to } => {
                write!(f, "the range ends ({to}) before it starts ({from})")
            }
            ExpansionError::RangeTooLong {
                from,
                to,
                max_years,
                last_allowed,
            } => write!(
                f,
                "the range {from} to {to} covers more than {max_years} years \
                 (from {from} it may end on {last_allowed} at the latest)"
            ),
            ExpansionError::TooManyOccurrences { max } => {
                write!(f, "the range holds more than {max} occurrences")
            }
            ExpansionError::OutOfRange => f.write_str("a date is beyond the dates handled"),
        }
    }
}

impl std::error::Error for ExpansionError {}

/// The instant a round on the local `date` at the local `time` starts in `zone`.
///
/// A local time that does not exist (the hour skipped when clocks go forward) is read with
/// the offset in force before the gap, so it lands as much later as the gap is long (02:30 on
/// the day New York springs forward is 03:30 EDT), as RFC 5545 §3.3.5 says; a local time
/// that happens twice (the hour repeated when clocks go back) is the first of the two, as the
/// same section says. This is jiff's "compatible" disambiguation (also Temporal's default).
pub fn local_start(date: Date, time: Time, zone: &TimeZone) -> Result<Timestamp, ExpansionError> {
    zone.to_ambiguous_timestamp(date.to_datetime(time))
        .compatible()
        .map_err(|_| ExpansionError::OutOfRange)
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(Span::new().try_days(days).ok()?).ok()
}

/// Days from `earlier` to `later`: civil days are all 24 hours long.
fn days_between(earlier: Date, later: Date) -> i64 {
    earlier.duration_until(later).as_secs() / 86_400
}

fn monday_of(date: Date) -> Option<Date> {
    add_days(date, -i64::from(date.weekday().to_monday_zero_offset()))
}

/// A month as one number, so that stepping by INTERVAL months is addition.
fn month_index(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month()) - 1
}

fn month_start(index: i64) -> Option<Date> {
    let year = i16::try_from(index.div_euclid(12)).ok()?;
    let month = i8::try_from(index.rem_euclid(12) + 1).ok()?;
    Date::new(year, month, 1).ok()
}

/// The smallest `k * step` (k ≥ 0) that is at least `gap`: how far to jump from the series'
/// first period to the first chosen period that can reach the range.
fn jump(gap: i64, step: i64) -> i64 {
    if gap <= 0 {
        0
    } else {
        (gap + step - 1) / step * step
    }
}

impl Rule {
    /// The local dates of the occurrences within `[from, to]` (both included), in order, of
    /// this rule anchored at `dtstart` (the series' first date and its start time) in `zone`.
    ///
    /// - An occurrence is a date on or after `dtstart`'s date that the rule gives; `dtstart`
    ///   itself is one only if the rule gives it (RFC 5545 leaves a DTSTART the rule does not
    ///   give undefined; this is what python-dateutil and most libraries do).
    /// - INTERVAL counts weeks (Monday-started, RFC 5545's default WKST) or months from the
    ///   one holding `dtstart`.
    /// - Without BYDAY, a WEEKLY rule takes `dtstart`'s weekday and a MONTHLY one `dtstart`'s
    ///   day of the month (a month without that day has no occurrence), as RFC 5545 says.
    /// - COUNT counts occurrences from `dtstart`, not from `from`.
    /// - UNTIL is compared in the series' zone: a date against the occurrence's date, a
    ///   floating date-time against the occurrence's local date and start time, a UTC one
    ///   against the occurrence's start instant ([`local_start`]).
    ///
    /// The work is bounded whatever the rule: without COUNT it begins at the period holding
    /// `from`; with COUNT at `dtstart`'s; either way it stops at the first period after `to`,
    /// so a rule that gives nothing (`BYMONTH=2;BYDAY=5TH`) ends too.
    pub fn occurrences(
        &self,
        dtstart: DateTime,
        zone: &TimeZone,
        from: Date,
        to: Date,
        limits: &Limits,
    ) -> Result<Vec<Date>, ExpansionError> {
        check_range(from, to, limits)?;
        let mut walk = Walk {
            rule: self,
            dtstart,
            zone,
            from,
            to,
            max: limits.max_occurrences,
            counted: 0,
            found: Vec::new(),
        };
        let count_from_start = matches!(self.end, End::Count(_));
        let step = i64::from(self.interval);
        match self.freq {
            Frequency::Monthly => {
                let first = month_index(dtstart.date());
                let gap = if count_from_start {
                    0
                } else {
                    month_index(from) - first
                };
                let mut index = first + jump(gap, step);
                while let Some(start) = month_start(index).filter(|&s| s <= to) {
                    if walk.visit(self.month_candidates(start, dtstart.date()))? {
                        break;
                    }
                    index += step;
                }
            }
            Frequency::Weekly => {
                let first = monday_of(dtstart.date()).ok_or(ExpansionError::OutOfRange)?;
                let mut week = first;
                if !count_from_start {
                    let from_week = monday_of(from).ok_or(ExpansionError::OutOfRange)?;
                    let weeks = jump(days_between(first, from_week) / 7, step);
                    week = add_days(first, weeks * 7).ok_or(ExpansionError::OutOfRange)?;
                }
                while week <= to {
                    if walk.visit(self.week_candidates(week, dtstart.date()))? {
                        break;
                    }
                    match add_days(week, step * 7) {
                        Some(next) => week = next,
                        None => break,
                    }
                }
            }
        }
        Ok(walk.found)
    }

    fn month_allowed(&self, date: Date) -> bool {
        self.by_month.is_empty() || self.by_month.contains(&date.month())
    }

    /// The dates a MONTHLY rule gives in the month starting `first`, in order.
    fn month_candidates(&self, first: Date, dtstart: Date) -> Vec<Date> {
        if !self.month_allowed(first) {
            return Vec::new();
        }
        if self.by_day.is_empty() {
            return first
                .with()
                .day(dtstart.day())
                .build()
                .ok()
                .into_iter()
                .collect();
        }
        let mut days = Vec::new();
        for spec in &self.by_day {
            match spec.nth {
                Some(nth) => days.extend(first.nth_weekday_of_month(nth, spec.weekday).ok()),
                None => days.extend(weekdays_in_month(first, spec.weekday)),
            }
        }
        days.sort_unstable();
        days.dedup();
        if self.by_set_pos.is_empty() {
            return days;
        }
        let mut chosen: Vec<Date> = self
            .by_set_pos
            .iter()
            .filter_map(|&pos| {
                let len = days.len();
                let at = usize::from(pos.unsigned_abs());
                let index = if pos > 0 {
                    at - 1
                } else {
                    len.checked_sub(at)?
                };
                days.get(index).copied()
            })
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    }

    /// The dates a WEEKLY rule gives in the week starting on the Monday `monday`, in order.
    fn week_candidates(&self, monday: Date, dtstart: Date) -> Vec<Date> {
        let weekdays: Vec<Weekday> = if self.by_day.is_empty() {
            vec![dtstart.weekday()]
        } else {
            self.by_day.iter().map(|spec| spec.weekday).collect()
        };
        let mut days: Vec<Date> = weekdays
            .into_iter()
            .filter_map(|w| add_days(monday, i64::from(w.to_monday_zero_offset())))
            .filter(|&d| self.month_allowed(d))
            .collect();
        days.sort_unstable();
        days.dedup();
        days
    }
}

fn weekdays_in_month(first: Date, weekday: Weekday) -> impl Iterator<Item = Date> {
    let offset = i64::from(first.weekday().until(weekday));
    (0..5)
        .filter_map(move |week| add_days(first, offset + 7 * week))
        .filter(move |d| d.month() == first.month())
}

/// Refuses a reversed range or one longer than the limit, before any work is done.
pub fn check_range(from: Date, to: Date, limits: &Limits) -> Result<(), ExpansionError> {
    if to < from {
        return Err(ExpansionError::ReversedRange { from, to });
    }
    let end = Span::new()
        .try_years(limits.max_years)
        .ok()
        .and_then(|years| from.checked_add(years).ok());
    // No end means `from` plus the limit is past the last date jiff has: any `to` is within.
    if let Some(end) = end {
        if to >= end {
            return Err(ExpansionError::RangeTooLong {
                from,
                to,
                max_years: limits.max_years,
                last_allowed: add_days(end, -1).unwrap_or(from),
            });
        }
    }
    Ok(())
}

/// The state of one expansion as it visits periods in order.
struct Walk<'a> {
    rule: &'a Rule,
    dtstart: DateTime,
    zone: &'a TimeZone,
    from: Date,
    to: Date,
    max: usize,
    /// Occurrences since `dtstart`, for COUNT.
    counted: u32,
    found: Vec<Date>,
}

impl Walk<'_> {
    /// Takes one period's candidate dates; answers whether the series or the range has ended.
    fn visit(&mut self, candidates: Vec<Date>) -> Result<bool, ExpansionError> {
        for date in candidates {
            if date < self.dtstart.date() {
                continue;
            }
            if date > self.to || !self.before_until(date)? {
                return Ok(true);
            }
            self.counted = self.counted.saturating_add(1);
            if date >= self.from {
                if self.found.len() == self.max {
                    return Err(ExpansionError::TooManyOccurrences { max: self.max });
                }
                self.found.push(date);
            }
            if let End::Count(count) = self.rule.end {
                if self.counted >= count {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn before_until(&self, date: Date) -> Result<bool, ExpansionError> {
        let End::Until(until) = self.rule.end else {
            return Ok(true);
        };
        Ok(match until {
            Until::Date(last) => date <= last,
            Until::Floating(last) => date.to_datetime(self.dtstart.time()) <= last,
            Until::Utc(last) => local_start(date, self.dtstart.time(), self.zone)? <= last,
        })
    }
}
