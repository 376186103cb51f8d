//! Periods: the first day of a week, month or quarter.
//!
//! A measure's points are one per period, and a period is named by the date it starts on:
//! a Monday for weekly measures, the 1st of the month for monthly ones, and the 1st of
//! January, April, July or October for quarterly ones. The API refuses a point whose period is
//! not aligned ([`is_aligned`]) and can suggest the aligned one ([`align`]).

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How often a measure is taken: one point per week (starting on Monday), month or quarter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Week,
    Month,
    Quarter,
}

super::named!(Frequency {
    Week = "week",
    Month = "month",
    Quarter = "quarter"
});

impl Frequency {
    /// What the first day of a period is, in words, for error messages.
    pub fn alignment_rule(self) -> &'static str {
        match self {
            Frequency::Week => "a Monday",
            Frequency::Month => "the 1st of a month",
            Frequency::Quarter => "the 1st of January, April, July or October",
        }
    }
}

/// A date that cannot be brought to the start of its period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{date} has no {frequency:?} period start within the supported calendar")]
pub struct PeriodError {
    pub date: NaiveDate,
    pub frequency: Frequency,
}

/// The start of the period that contains `date`: the Monday on or before it, the 1st of its
/// month, or the 1st of its quarter. An error only at the very start of chrono's calendar,
/// where the Monday before does not exist.
pub fn align(frequency: Frequency, date: NaiveDate) -> Result<NaiveDate, PeriodError> {
    let err = PeriodError { date, frequency };
    match frequency {
        Frequency::Week => {
            let back = u64::from(date.weekday().num_days_from_monday());
            date.checked_sub_days(Days::new(back)).ok_or(err)
        }
        Frequency::Month => date.with_day(1).ok_or(err),
        Frequency::Quarter => {
            let first_month = (date.month0() / 3) * 3 + 1;
            NaiveDate::from_ymd_opt(date.year(), first_month, 1).ok_or(err)
        }
    }
}

/// Whether `date` is the first day of a period of this frequency.
pub fn is_aligned(frequency: Frequency, date: NaiveDate) -> bool {
    match frequency {
        Frequency::Week => date.weekday() == Weekday::Mon,
        Frequency::Month => date.day() == 1,
        Frequency::Quarter => date.day() == 1 && date.month0().is_multiple_of(3),
    }
}

/// A running number for the period that starts on `date` (assumed aligned): consecutive
/// periods have consecutive numbers, so the chart can place points at their true distance
/// and leave a gap where a period has no point.
pub fn period_number(frequency: Frequency, date: NaiveDate) -> i64 {
    match frequency {
        // Days since 0001-01-01 (a Monday) divided by 7: the Monday of each week shares its
        // number with the rest of that week.
        Frequency::Week => i64::from(date.num_days_from_ce() - 1).div_euclid(7),
        Frequency::Month => i64::from(date.year()) * 12 + i64::from(date.month0()),
        Frequency::Quarter => i64::from(date.year()) * 4 + i64::from(date.month0() / 3),
    }
}

/// The period start whose [`period_number`] is `number`; `None` outside chrono's calendar.
pub fn period_from_number(frequency: Frequency, number: i64) -> Option<NaiveDate> {
    match frequency {
        Frequency::Week => {
            let days = i32::try_from(number.checked_mul(7)?.checked_add(1)?).ok()?;
            NaiveDate::from_num_days_from_ce_opt(days)
        }
        Frequency::Month => {
            let year = i32::try_from(number.div_euclid(12)).ok()?;
            let month0 = u32::try_from(number.rem_euclid(12)).ok()?;
            NaiveDate::from_ymd_opt(year, month0 + 1, 1)
        }
        Frequency::Quarter => {
            let year = i32::try_from(number.div_euclid(4)).ok()?;
            let quarter0 = u32::try_from(number.rem_euclid(4)).ok()?;
            NaiveDate::from_ymd_opt(year, quarter0 * 3 + 1, 1)
        }
    }
}

/// A short label for the period that starts on `date`: `2024-03-04`, `Mar 2024`, `2024 Q1`.
pub fn period_label(frequency: Frequency, date: NaiveDate) -> String {
    match frequency {
        Frequency::Week => date.format("%Y-%m-%d").to_string(),
        Frequency::Month => date.format("%b %Y").to_string(),
        Frequency::Quarter => format!("{} Q{}", date.year(), date.month0() / 3 + 1),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_week_starts_on_the_monday_on_or_before_the_date() {
        // 2024-03-06 is a Wednesday; 2024-03-04 the Monday before it.
        assert_eq!(
            align(Frequency::Week, d(2024, 3, 6)).unwrap(),
            d(2024, 3, 4)
        );
        assert_eq!(
            align(Frequency::Week, d(2024, 3, 4)).unwrap(),
            d(2024, 3, 4)
        );
        assert_eq!(
            align(Frequency::Week, d(2024, 3, 10)).unwrap(),
            d(2024, 3, 4)
        );
        assert!(is_aligned(Frequency::Week, d(2024, 3, 4)));
        assert!(!is_aligned(Frequency::Week, d(2024, 3, 5)));
    }

    #[test]
    fn a_month_starts_on_its_first_day() {
        assert_eq!(
            align(Frequency::Month, d(2024, 2, 29)).unwrap(),
            d(2024, 2, 1)
        );
        assert!(is_aligned(Frequency::Month, d(2024, 2, 1)));
        assert!(!is_aligned(Frequency::Month, d(2024, 2, 2)));
    }

    #[test]
    fn a_quarter_starts_on_the_first_of_january_april_july_or_october() {
        assert_eq!(
            align(Frequency::Quarter, d(2024, 5, 17)).unwrap(),
            d(2024, 4, 1)
        );
        assert_eq!(
            align(Frequency::Quarter, d(2024, 12, 31)).unwrap(),
            d(2024, 10, 1)
        );
        assert!(is_aligned(Frequency::Quarter, d(2024, 7, 1)));
        assert!(!is_aligned(Frequency::Quarter, d(2024, 8, 1)));
    }

    #[test]
    fn the_first_date_of_the_calendar_has_no_monday_before_it_and_is_refused() {
        let first = NaiveDate::MIN;
        if first.weekday() != Weekday::Mon {
            assert!(align(Frequency::Week, first).is_err());
        }
    }

    #[test]
    fn consecutive_periods_have_consecutive_numbers() {
        let w = |date| period_number(Frequency::Week, date);
        assert_eq!(w(d(2024, 3, 11)) - w(d(2024, 3, 4)), 1);
        assert_eq!(w(d(2024, 3, 10)), w(d(2024, 3, 4)));
        let m = |date| period_number(Frequency::Month, date);
        assert_eq!(m(d(2025, 1, 1)) - m(d(2024, 12, 1)), 1);
        let q = |date| period_number(Frequency::Quarter, date);
        assert_eq!(q(d(2025, 1, 1)) - q(d(2024, 10, 1)), 1);
    }

    #[test]
    fn a_period_number_leads_back_to_its_period() {
        for (frequency, date) in [
            (Frequency::Week, d(2024, 3, 4)),
            (Frequency::Week, d(1999, 12, 27)),
            (Frequency::Month, d(2024, 12, 1)),
            (Frequency::Quarter, d(2024, 10, 1)),
            (Frequency::Quarter, d(-5, 4, 1)),
        ] {
            let n = period_number(frequency, date);
            assert_eq!(
                period_from_number(frequency, n),
                Some(date),
                "{frequency:?} {date}"
            );
        }
        assert_eq!(period_from_number(Frequency::Week, i64::MAX), None);
    }

    #[test]
    fn period_labels_read_as_people_write_them() {
        assert_eq!(period_label(Frequency::Week, d(2024, 3, 4)), "2024-03-04");
        assert_eq!(period_label(Frequency::Month, d(2024, 3, 1)), "Mar 2024");
        assert_eq!(period_label(Frequency::Quarter, d(2024, 10, 1)), "2024 Q4");
    }
}
