//! Expanding rules into local dates, and those dates into start instants, all in
//! America/New_York with rounds at 12:00 local.

use jiff::civil::{date, Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use lhs_rounds::schedule::recurrence::expand::{local_start, ExpansionError, Limits};
use lhs_rounds::schedule::recurrence::rule::Rule;

fn new_york() -> TimeZone {
    TimeZone::get("America/New_York").unwrap()
}

fn noon(day: Date) -> DateTime {
    day.at(12, 0, 0, 0)
}

/// The rule's dates in `[from, to]` for a series that starts at noon on `dtstart`.
fn expand(rule: &str, dtstart: Date, from: Date, to: Date) -> Result<Vec<Date>, ExpansionError> {
    Rule::parse(rule)
        .unwrap()
        .occurrences(noon(dtstart), &new_york(), from, to, &Limits::default())
}

fn dates_2019(rule: &str) -> Vec<Date> {
    expand(rule, date(2019, 1, 1), date(2019, 1, 1), date(2019, 12, 31)).unwrap()
}

fn utc(text: &str) -> Timestamp {
    text.parse().unwrap()
}

const THIRD_THURSDAYS_2019: [(i8, i8); 12] = [
    (1, 17),
    (2, 21),
    (3, 21),
    (4, 18),
    (5, 16),
    (6, 20),
    (7, 18),
    (8, 15),
    (9, 19),
    (10, 17),
    (11, 21),
    (12, 19),
];

fn third_thursdays_2019() -> Vec<Date> {
    THIRD_THURSDAYS_2019
        .iter()
        .map(|&(m, d)| date(2019, m, d))
        .collect()
}

#[test]
fn the_third_thursday_rule_gives_one_date_a_month_in_2019() {
    assert_eq!(dates_2019("FREQ=MONTHLY;BYDAY=3TH"), third_thursdays_2019());
}

#[test]
fn every_2019_round_starts_at_noon_local_on_both_sides_of_the_clock_changes() {
    let zone = new_york();
    let spring = date(2019, 3, 10);
    let autumn = date(2019, 11, 3);
    for day in dates_2019("FREQ=MONTHLY;BYDAY=3TH") {
        let start = local_start(day, Time::constant(12, 0, 0, 0), &zone).unwrap();
        let utc_hour = if day > spring && day < autumn { 16 } else { 17 };
        assert_eq!(
            start,
            day.at(utc_hour, 0, 0, 0).in_tz("UTC").unwrap().timestamp(),
            "{day}"
        );
        assert_eq!(
            start.in_tz("America/New_York").unwrap().datetime(),
            noon(day)
        );
    }
}

#[test]
fn the_rounds_of_2019_03_21_and_2019_11_21_start_at_noon_edt_and_noon_est() {
    let zone = new_york();
    let dates = dates_2019("FREQ=MONTHLY;BYDAY=3TH");
    assert!(dates.contains(&date(2019, 3, 21)));
    assert!(dates.contains(&date(2019, 11, 21)));
    let twelve = Time::constant(12, 0, 0, 0);
    assert_eq!(
        local_start(date(2019, 3, 21), twelve, &zone).unwrap(),
        utc("2019-03-21T16:00:00Z")
    );
    assert_eq!(
        local_start(date(2019, 11, 21), twelve, &zone).unwrap(),
        utc("2019-11-21T17:00:00Z")
    );
}

#[test]
fn the_last_thursday_rule_takes_the_fifth_thursday_of_months_that_have_one() {
    let expected: Vec<Date> = [
        (1, 31), // January 2019 has five Thursdays
        (2, 28),
        (3, 28),
        (4, 25),
        (5, 30), // so does May
        (6, 27),
        (7, 25),
        (8, 29), // August
        (9, 26),
        (10, 31), // and October
        (11, 28),
        (12, 26),
    ]
    .iter()
    .map(|&(m, d)| date(2019, m, d))
    .collect();
    assert_eq!(dates_2019("FREQ=MONTHLY;BYDAY=-1TH"), expected);
}

#[test]
fn the_third_of_the_thursdays_by_bysetpos_is_the_third_thursday() {
    let (start, end) = (date(2019, 1, 1), date(2023, 12, 31));
    let by_set_pos = expand("FREQ=MONTHLY;BYDAY=TH;BYSETPOS=3", start, start, end).unwrap();
    let by_ordinal = expand("FREQ=MONTHLY;BYDAY=3TH", start, start, end).unwrap();
    assert_eq!(by_set_pos.len(), 60);
    assert_eq!(by_set_pos, by_ordinal);
}

#[test]
fn the_last_weekday_of_the_month_is_bysetpos_minus_one_of_the_weekdays() {
    let dates = dates_2019("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1");
    assert_eq!(
        dates[..3],
        [date(2019, 1, 31), date(2019, 2, 28), date(2019, 3, 29)]
    );
    assert_eq!(
        dates[8..],
        [
            date(2019, 9, 30),
            date(2019, 10, 31),
            date(2019, 11, 29),
            date(2019, 12, 31)
        ]
    );
}

#[test]
fn every_other_thursday_counts_weeks_from_the_first_round() {
    let dates = expand(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
        date(2019, 1, 17),
        date(2019, 1, 1),
        date(2019, 3, 31),
    )
    .unwrap();
    let expected = [(1, 17), (1, 31), (2, 14), (2, 28), (3, 14), (3, 28)];
    assert_eq!(dates, expected.map(|(m, d)| date(2019, m, d)));
}

#[test]
fn every_other_thursday_keeps_its_weeks_when_the_range_starts_later() {
    let dates = expand(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
        date(2019, 1, 17),
        date(2021, 6, 1),
        date(2021, 6, 30),
    )
    .unwrap();
    // 2021-06-03 is 124 weeks after 2019-01-17; 2021-06-10 is 125.
    assert_eq!(dates, [date(2021, 6, 3), date(2021, 6, 17)]);
}

#[test]
fn bymonth_keeps_only_the_listed_months() {
    let academic = dates_2019("FREQ=MONTHLY;BYMONTH=1,2,3,4,5,9,10,11,12;BYDAY=3TH");
    let expected: Vec<Date> = third_thursdays_2019()
        .into_iter()
        .filter(|d| !(6..=8).contains(&d.month()))
        .collect();
    assert_eq!(academic, expected);

    let weekly = dates_2019("FREQ=WEEKLY;BYMONTH=2;BYDAY=TH");
    assert_eq!(weekly, [7, 14, 21, 28].map(|d| date(2019, 2, d)));
}

#[test]
fn a_weekly_rule_with_bymonth_splits_a_week_that_straddles_two_months() {
    let dates = dates_2019("FREQ=WEEKLY;BYMONTH=3;BYDAY=MO,FR");
    // The week of Monday 2019-02-25 holds Friday 2019-03-01 only.
    assert_eq!(dates.first(), Some(&date(2019, 3, 1)));
    assert_eq!(dates.last(), Some(&date(2019, 3, 29)));
    assert_eq!(dates.len(), 9);
}

#[test]
fn until_as_a_date_includes_the_round_on_that_date() {
    let dates = dates_2019("FREQ=MONTHLY;BYDAY=3TH;UNTIL=20190321");
    assert_eq!(dates, third_thursdays_2019()[..3]);
    let dates = dates_2019("FREQ=MONTHLY;BYDAY=3TH;UNTIL=20190320");
    assert_eq!(dates, third_thursdays_2019()[..2]);
}

#[test]
fn until_in_utc_is_compared_with_the_round_s_start_instant_in_the_series_zone() {
    // 2019-03-21 12:00 EDT is 16:00Z; 2019-11-21 12:00 EST is 17:00Z.
    let count = |until: &str| dates_2019(&format!("FREQ=MONTHLY;BYDAY=3TH;UNTIL={until}")).len();
    assert_eq!(count("20190321T160000Z"), 3);
    assert_eq!(count("20190321T155959Z"), 2);
    assert_eq!(count("20191121T170000Z"), 11);
    assert_eq!(count("20191121T165959Z"), 10);
}

#[test]
fn until_as_a_floating_date_time_is_compared_with_the_local_start() {
    let count = |until: &str| dates_2019(&format!("FREQ=MONTHLY;BYDAY=3TH;UNTIL={until}")).len();
    assert_eq!(count("20191121T120000"), 11);
    assert_eq!(count("20191121T115959"), 10);
}

#[test]
fn count_counts_from_the_first_round_not_from_the_start_of_the_range() {
    let dates = expand(
        "FREQ=MONTHLY;BYDAY=3TH;COUNT=6",
        date(2019, 1, 1),
        date(2019, 4, 1),
        date(2019, 12, 31),
    )
    .unwrap();
    assert_eq!(dates, third_thursdays_2019()[3..6]);
}

#[test]
fn count_is_reached_even_when_the_series_began_years_before_the_range() {
    let dates = expand(
        "FREQ=WEEKLY;BYDAY=TH;COUNT=1000",
        date(2005, 1, 6),
        date(2024, 1, 1),
        date(2024, 12, 31),
    )
    .unwrap();
    // The 1000th Thursday from 2005-01-06 is 999 weeks later.
    assert_eq!(dates.last(), Some(&date(2024, 2, 29)));
    assert_eq!(dates.len(), 9);
}

#[test]
fn a_first_date_the_rule_does_not_give_is_not_an_occurrence() {
    let dates = expand(
        "FREQ=MONTHLY;BYDAY=3TH",
        date(2019, 1, 2),
        date(2019, 1, 1),
        date(2019, 2, 28),
    )
    .unwrap();
    assert_eq!(dates, [date(2019, 1, 17), date(2019, 2, 21)]);
}

#[test]
fn nothing_occurs_before_the_first_date() {
    let dates = expand(
        "FREQ=MONTHLY;BYDAY=3TH",
        date(2019, 6, 1),
        date(2019, 1, 1),
        date(2019, 12, 31),
    )
    .unwrap();
    assert_eq!(dates, third_thursdays_2019()[5..]);
}

#[test]
fn a_monthly_rule_without_byday_takes_the_first_date_s_day_and_skips_months_without_it() {
    let dates = expand(
        "FREQ=MONTHLY",
        date(2019, 1, 31),
        date(2019, 1, 1),
        date(2019, 12, 31),
    )
    .unwrap();
    let expected = [
        (1, 31),
        (3, 31),
        (5, 31),
        (7, 31),
        (8, 31),
        (10, 31),
        (12, 31),
    ];
    assert_eq!(dates, expected.map(|(m, d)| date(2019, m, d)));
}

#[test]
fn a_weekly_rule_without_byday_takes_the_first_date_s_weekday() {
    let dates = expand(
        "FREQ=WEEKLY",
        date(2019, 1, 17),
        date(2019, 1, 1),
        date(2019, 2, 7),
    )
    .unwrap();
    assert_eq!(
        dates,
        [17, 24, 31]
            .map(|d| date(2019, 1, d))
            .into_iter()
            .chain([date(2019, 2, 7)])
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_range_of_exactly_five_years_is_accepted_and_one_day_more_is_refused() {
    let rule = "FREQ=MONTHLY;BYDAY=3TH";
    let start = date(2019, 1, 1);
    assert_eq!(
        expand(rule, start, start, date(2023, 12, 31))
            .unwrap()
            .len(),
        60
    );
    assert_eq!(
        expand(rule, start, start, date(2024, 1, 1)),
        Err(ExpansionError::RangeTooLong {
            from: start,
            to: date(2024, 1, 1),
            max_years: 5,
            last_allowed: date(2023, 12, 31),
        })
    );
}

#[test]
fn five_years_from_a_leap_day_end_the_day_before_the_fifth_february_28() {
    let rule = "FREQ=MONTHLY;BYDAY=3TH";
    let start = date(2020, 2, 29);
    assert!(expand(rule, start, start, date(2025, 2, 27)).is_ok());
    assert!(matches!(
        expand(rule, start, start, date(2025, 2, 28)),
        Err(ExpansionError::RangeTooLong { .. })
    ));
}

#[test]
fn a_range_holding_exactly_500_occurrences_is_accepted_and_501_are_refused() {
    let every_day = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU";
    let start = date(2019, 1, 1);
    let day_500 = start.checked_add(jiff::Span::new().days(499)).unwrap();
    assert_eq!(expand(every_day, start, start, day_500).unwrap().len(), 500);
    let day_501 = day_500.tomorrow().unwrap();
    let error = expand(every_day, start, start, day_501).unwrap_err();
    assert_eq!(error, ExpansionError::TooManyOccurrences { max: 500 });
    assert_eq!(
        error.to_string(),
        "the range holds more than 500 occurrences"
    );
}

#[test]
fn occurrences_before_the_range_do_not_count_toward_the_500() {
    let every_day = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;COUNT=10000";
    let dates = expand(
        every_day,
        date(2000, 1, 1),
        date(2019, 1, 1),
        date(2019, 12, 31),
    )
    .unwrap();
    assert_eq!(dates.len(), 365);
}

#[test]
fn a_reversed_range_is_refused() {
    let error = expand(
        "FREQ=MONTHLY;BYDAY=3TH",
        date(2019, 1, 1),
        date(2019, 2, 1),
        date(2019, 1, 31),
    );
    assert!(matches!(error, Err(ExpansionError::ReversedRange { .. })));
}

#[test]
fn a_range_of_a_single_day_holds_that_day_s_round() {
    let day = date(2019, 3, 21);
    assert_eq!(
        expand("FREQ=MONTHLY;BYDAY=3TH", date(2019, 1, 1), day, day).unwrap(),
        [day]
    );
}

#[test]
fn a_rule_that_gives_nothing_ends_with_nothing() {
    // A fifth Thursday in February needs a leap year whose February starts on a Thursday.
    let never = "FREQ=MONTHLY;BYMONTH=2;BYDAY=5TH";
    assert_eq!(
        expand(
            never,
            date(2025, 1, 1),
            date(2025, 1, 1),
            date(2029, 12, 31)
        )
        .unwrap(),
        []
    );
    let also_never = "FREQ=MONTHLY;INTERVAL=12;BYMONTH=6;BYDAY=3TH";
    assert_eq!(
        expand(
            also_never,
            date(2019, 1, 1),
            date(2019, 1, 1),
            date(2023, 12, 31)
        )
        .unwrap(),
        []
    );
}

#[test]
fn a_rule_with_count_that_gives_nothing_ends_even_from_the_first_year_jiff_has() {
    // COUNT walks from the first date: here from -9999 to 9999, twenty thousand years of
    // months, and still ends.
    let never = "FREQ=MONTHLY;BYMONTH=2;BYDAY=5TH;BYSETPOS=2;COUNT=10000";
    let started = std::time::Instant::now();
    let dates = expand(never, Date::MIN, date(9995, 1, 1), Date::MAX).unwrap();
    assert_eq!(dates, []);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn the_last_dates_jiff_has_are_expanded_without_error() {
    let dates = expand(
        "FREQ=WEEKLY;BYDAY=SA,SU",
        date(9999, 1, 1),
        date(9999, 12, 1),
        Date::MAX,
    )
    .unwrap();
    assert_eq!(dates.last(), Some(&date(9999, 12, 26)));
}

#[test]
fn a_start_time_in_the_spring_gap_moves_later_and_a_repeated_one_takes_the_first() {
    let zone = new_york();
    // 02:30 does not exist on 2019-03-10: read with EST, it is 03:30 EDT.
    assert_eq!(
        local_start(date(2019, 3, 10), Time::constant(2, 30, 0, 0), &zone).unwrap(),
        utc("2019-03-10T07:30:00Z")
    );
    // 01:30 happens twice on 2019-11-03: the first is EDT.
    assert_eq!(
        local_start(date(2019, 11, 3), Time::constant(1, 30, 0, 0), &zone).unwrap(),
        utc("2019-11-03T05:30:00Z")
    );
}

#[test]
fn a_weekly_rule_on_the_clock_change_sundays_neither_drops_nor_repeats_a_date() {
    let zone = new_york();
    let dates = expand(
        "FREQ=WEEKLY;BYDAY=SU",
        date(2019, 3, 3),
        date(2019, 3, 3),
        date(2019, 3, 17),
    )
    .unwrap();
    assert_eq!(dates, [3, 10, 17].map(|d| date(2019, 3, d)));
    let starts: Vec<Timestamp> = dates
        .iter()
        .map(|&d| local_start(d, Time::constant(2, 30, 0, 0), &zone).unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            utc("2019-03-03T07:30:00Z"),
            utc("2019-03-10T07:30:00Z"),
            utc("2019-03-17T06:30:00Z")
        ]
    );
}
