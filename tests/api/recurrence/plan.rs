//! Sorting a plan's occurrences into created, skipped and existing.

use jiff::civil::{date, Date};
use jiff::tz::TimeZone;
use lhs_rounds::schedule::recurrence::expand::Limits;
use lhs_rounds::schedule::recurrence::plan::{plan, Existing, Skip};
use lhs_rounds::schedule::recurrence::rule::Rule;

fn third_thursdays_2019() -> Vec<Date> {
    Rule::parse("FREQ=MONTHLY;BYDAY=3TH")
        .unwrap()
        .occurrences(
            date(2019, 1, 17).at(12, 0, 0, 0),
            &TimeZone::get("America/New_York").unwrap(),
            date(2019, 1, 1),
            date(2019, 12, 31),
            &Limits::default(),
        )
        .unwrap()
}

fn skip(month: i8, day: i8, reason: &str) -> Skip {
    Skip {
        date: date(2019, month, day),
        reason: reason.to_owned(),
    }
}

fn round(month: i8, day: i8, id: i32) -> Existing<i32> {
    Existing {
        date: date(2019, month, day),
        round: id,
    }
}

/// The rounds of 2019 as the series' page lists them (ids in the page's order).
fn the_page_s_2019_rounds() -> Vec<Existing<i32>> {
    vec![
        round(1, 17, 1),
        round(2, 14, 2),
        round(4, 25, 3),
        round(5, 23, 4),
        round(6, 20, 5),
        round(7, 18, 6),
        round(9, 26, 7),
        round(10, 24, 8),
        round(11, 21, 9),
        round(12, 19, 10),
    ]
}

#[test]
fn a_preview_of_2019_over_the_page_s_rounds_shows_which_fall_on_the_rule_and_which_moved() {
    let result = plan(
        &third_thursdays_2019(),
        &[skip(8, 15, "summer break")],
        &the_page_s_2019_rounds(),
    );
    assert_eq!(
        result.existing,
        [
            round(1, 17, 1),
            round(6, 20, 5),
            round(7, 18, 6),
            round(11, 21, 9),
            round(12, 19, 10)
        ]
    );
    assert_eq!(result.skipped, [skip(8, 15, "summer break")]);
    assert_eq!(
        result.created,
        [(2, 21), (3, 21), (4, 18), (5, 16), (9, 19), (10, 17)].map(|(m, d)| date(2019, m, d))
    );
    assert_eq!(
        result.off_rule,
        [
            round(2, 14, 2),
            round(4, 25, 3),
            round(5, 23, 4),
            round(9, 26, 7),
            round(10, 24, 8)
        ]
    );
    assert_eq!(result.unused_skips, []);
}

#[test]
fn planning_again_after_creating_creates_nothing() {
    let occurrences = third_thursdays_2019();
    let first = plan::<i32>(&occurrences, &[skip(8, 15, "summer break")], &[]);
    assert_eq!(first.created.len(), 11);
    let made: Vec<Existing<i32>> = first
        .created
        .iter()
        .zip(100..)
        .map(|(&date, round)| Existing { date, round })
        .collect();
    let second = plan(&occurrences, &[skip(8, 15, "summer break")], &made);
    assert_eq!(second.created, []);
    assert_eq!(second.existing, made);
    assert_eq!(second.skipped, [skip(8, 15, "summer break")]);
}

#[test]
fn a_skipped_date_that_already_has_a_round_is_existing_not_skipped() {
    let result = plan(
        &third_thursdays_2019(),
        &[skip(11, 21, "a holiday")],
        &[round(11, 21, 9)],
    );
    assert_eq!(result.existing, [round(11, 21, 9)]);
    assert_eq!(result.skipped, []);
    assert!(!result.created.contains(&date(2019, 11, 21)));
}

#[test]
fn a_skip_on_no_occurrence_is_reported_unused() {
    let result = plan::<i32>(
        &third_thursdays_2019(),
        &[skip(11, 28, "Thanksgiving")],
        &[],
    );
    assert_eq!(result.unused_skips, [skip(11, 28, "Thanksgiving")]);
    assert_eq!(result.created.len(), 12);
}

#[test]
fn the_first_of_two_skips_of_one_date_gives_the_reason() {
    let result = plan::<i32>(
        &third_thursdays_2019(),
        &[skip(8, 15, "summer break"), skip(8, 15, "room closed")],
        &[],
    );
    assert_eq!(result.skipped, [skip(8, 15, "summer break")]);
}

#[test]
fn every_occurrence_lands_in_exactly_one_list() {
    let occurrences = third_thursdays_2019();
    let result = plan(
        &occurrences,
        &[skip(8, 15, "summer break"), skip(3, 21, "conference")],
        &the_page_s_2019_rounds(),
    );
    let mut all: Vec<Date> = result.created.clone();
    all.extend(result.skipped.iter().map(|s| s.date));
    all.extend(result.existing.iter().map(|e| e.date));
    all.sort();
    assert_eq!(all, occurrences);
}
