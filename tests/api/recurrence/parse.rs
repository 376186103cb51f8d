//! Reading rule text: the subset accepted, everything else refused with its part named, and
//! the canonical text written back.

use jiff::civil::{date, Weekday};
use lhs_rounds::schedule::recurrence::rule::{DaySpec, End, Frequency, Rule, Until};

#[test]
fn the_demo_series_rule_reads_as_the_third_thursday_of_every_month() {
    let rule = Rule::parse("FREQ=MONTHLY;BYDAY=3TH").unwrap();
    assert_eq!(rule.freq(), Frequency::Monthly);
    assert_eq!(rule.interval(), 1);
    assert_eq!(
        rule.by_day(),
        [DaySpec {
            weekday: Weekday::Thursday,
            nth: Some(3)
        }]
    );
    assert_eq!(rule.end(), End::Never);
}

#[test]
fn a_leading_rrule_prefix_lower_case_and_surrounding_space_are_accepted() {
    let canonical = Rule::parse("FREQ=MONTHLY;BYDAY=3TH").unwrap();
    for text in [
        "RRULE:FREQ=MONTHLY;BYDAY=3TH",
        "rrule:freq=monthly;byday=3th",
        "  FREQ=MONTHLY;BYDAY=+3TH\n",
        "BYDAY=3TH;FREQ=MONTHLY",
        "FREQ=MONTHLY;INTERVAL=1;BYDAY=3TH",
    ] {
        assert_eq!(Rule::parse(text).unwrap(), canonical, "{text}");
    }
}

#[test]
fn the_canonical_text_reads_back_as_the_same_rule_and_writes_the_same_text() {
    for text in [
        "FREQ=MONTHLY;BYDAY=3TH",
        "FREQ=MONTHLY;BYDAY=-1TH",
        "FREQ=MONTHLY;BYDAY=TH;BYSETPOS=3",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1",
        "FREQ=MONTHLY;INTERVAL=3;BYMONTH=1,4,7,10;BYDAY=2TU",
        "FREQ=MONTHLY;BYDAY=1MO,5MO,-1FR",
        "FREQ=MONTHLY;COUNT=12",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
        "FREQ=WEEKLY;BYMONTH=9,10,11,12;BYDAY=TU,TH",
        "FREQ=WEEKLY;BYDAY=TH;UNTIL=20191219",
        "FREQ=WEEKLY;BYDAY=TH;UNTIL=20191219T120000",
        "FREQ=WEEKLY;BYDAY=TH;UNTIL=20191219T170000Z",
    ] {
        let rule = Rule::parse(text).unwrap();
        assert_eq!(rule.to_string(), text);
        assert_eq!(Rule::parse(&rule.to_string()).unwrap(), rule);
    }
}

#[test]
fn list_items_are_written_in_canonical_order() {
    let rule =
        Rule::parse("RRULE:byday=-1fr,th,2mo;freq=monthly;bymonth=12,1;bysetpos=-1,2").unwrap();
    assert_eq!(
        rule.to_string(),
        "FREQ=MONTHLY;BYMONTH=1,12;BYDAY=2MO,TH,-1FR;BYSETPOS=2,-1"
    );
}

#[test]
fn until_is_read_as_a_date_a_floating_date_time_or_a_utc_instant() {
    let end = |text: &str| Rule::parse(text).unwrap().end();
    assert_eq!(
        end("FREQ=WEEKLY;UNTIL=20191121"),
        End::Until(Until::Date(date(2019, 11, 21)))
    );
    assert_eq!(
        end("FREQ=WEEKLY;UNTIL=20191121T120000"),
        End::Until(Until::Floating(date(2019, 11, 21).at(12, 0, 0, 0)))
    );
    assert_eq!(
        end("FREQ=WEEKLY;UNTIL=20191121T170000Z"),
        End::Until(Until::Utc("2019-11-21T17:00:00Z".parse().unwrap()))
    );
}

#[test]
fn count_and_until_together_are_refused_in_either_order() {
    for text in [
        "FREQ=MONTHLY;BYDAY=3TH;COUNT=5;UNTIL=20191231",
        "FREQ=MONTHLY;BYDAY=3TH;UNTIL=20191231;COUNT=5",
    ] {
        let error = Rule::parse(text).unwrap_err();
        assert!(error.message.contains("COUNT and UNTIL"), "{error}");
    }
}

/// Each refused rule and the part its error names.
#[test]
fn each_refused_rule_names_the_part_at_fault() {
    let cases: &[(&str, &str)] = &[
        // FREQ
        ("", "FREQ"),
        ("RRULE:", "FREQ"),
        ("BYDAY=3TH", "FREQ"),
        ("FREQ=DAILY", "FREQ"),
        ("FREQ=YEARLY;BYMONTH=1", "FREQ"),
        ("FREQ=HOURLY", "FREQ"),
        ("FREQ=FORTNIGHTLY", "FREQ"),
        ("FREQ=MONTHLY;FREQ=MONTHLY", "FREQ"),
        // INTERVAL
        ("FREQ=MONTHLY;INTERVAL=0", "INTERVAL"),
        ("FREQ=MONTHLY;INTERVAL=13", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=53", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=-1", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=+2", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=two", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=99999999999999999999", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=", "INTERVAL"),
        ("FREQ=WEEKLY;INTERVAL=2;INTERVAL=2", "INTERVAL"),
        // BYDAY
        ("FREQ=MONTHLY;BYDAY=XX", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=T", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=0TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=6TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=-6TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=53TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=3 TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=TH,TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=TH,", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=3TÉ", "BYDAY"),
        ("FREQ=WEEKLY;BYDAY=3TH", "BYDAY"),
        // BYSETPOS
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS"),
        ("FREQ=WEEKLY;BYDAY=TH;BYSETPOS=1", "BYSETPOS"),
        ("FREQ=MONTHLY;BYDAY=TH;BYSETPOS=0", "BYSETPOS"),
        ("FREQ=MONTHLY;BYDAY=TH;BYSETPOS=32", "BYSETPOS"),
        ("FREQ=MONTHLY;BYDAY=TH;BYSETPOS=-32", "BYSETPOS"),
        ("FREQ=MONTHLY;BYDAY=TH;BYSETPOS=1,1", "BYSETPOS"),
        // BYMONTH
        ("FREQ=MONTHLY;BYMONTH=0", "BYMONTH"),
        ("FREQ=MONTHLY;BYMONTH=13", "BYMONTH"),
        ("FREQ=MONTHLY;BYMONTH=-1", "BYMONTH"),
        ("FREQ=MONTHLY;BYMONTH=1,1", "BYMONTH"),
        ("FREQ=MONTHLY;BYMONTH=JAN", "BYMONTH"),
        // UNTIL
        ("FREQ=MONTHLY;UNTIL=2019-12-31", "UNTIL"),
        ("FREQ=MONTHLY;UNTIL=20190230", "UNTIL"),
        ("FREQ=MONTHLY;UNTIL=20191231T250000Z", "UNTIL"),
        ("FREQ=MONTHLY;UNTIL=20191231T120000+0500", "UNTIL"),
        ("FREQ=MONTHLY;UNTIL=20191231X120000", "UNTIL"),
        ("FREQ=MONTHLY;COUNT=3;UNTIL=20191231", "UNTIL"),
        // COUNT
        ("FREQ=MONTHLY;COUNT=0", "COUNT"),
        ("FREQ=MONTHLY;COUNT=10001", "COUNT"),
        ("FREQ=MONTHLY;COUNT=-3", "COUNT"),
        ("FREQ=MONTHLY;UNTIL=20191231;COUNT=3", "COUNT"),
        // Parts RFC 5545 has and the subset does not.
        ("FREQ=MONTHLY;BYMONTHDAY=15", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYHOUR=12", "BYHOUR"),
        ("FREQ=MONTHLY;BYMINUTE=0", "BYMINUTE"),
        ("FREQ=MONTHLY;BYSECOND=0", "BYSECOND"),
        ("FREQ=MONTHLY;BYYEARDAY=100", "BYYEARDAY"),
        ("FREQ=WEEKLY;BYWEEKNO=20", "BYWEEKNO"),
        ("FREQ=WEEKLY;WKST=SU;BYDAY=TH", "WKST"),
        // Parts it does not have, and malformed text.
        ("FREQ=MONTHLY;X-NAME=1", "X-NAME"),
        ("FREQ=MONTHLY;RSCALE=GREGORIAN", "RSCALE"),
        ("FREQ=MONTHLY;BYDAY", "BYDAY"),
        ("FREQ=MONTHLY;;BYDAY=3TH", "RRULE"),
        ("FREQ=MONTHLY;BYDAY=3TH;", "RRULE"),
        ("FREQ=MONTHLY;<script>=1", "RRULE"),
        ("DTSTART:20190117T120000", "RRULE"),
    ];
    for &(text, part) in cases {
        let error = Rule::parse(text).expect_err(text);
        assert_eq!(error.part, part, "{text}: {error}");
        assert!(!error.message.is_empty());
    }
}

#[test]
fn the_freq_error_says_which_frequencies_are_supported() {
    let error = Rule::parse("FREQ=DAILY").unwrap_err();
    assert_eq!(
        error.to_string(),
        "FREQ: only WEEKLY and MONTHLY are supported"
    );
}

#[test]
fn text_longer_than_the_limit_is_refused_before_it_is_read() {
    let text = format!("FREQ=MONTHLY;BYDAY=3TH{}", ";BYMONTH=1".repeat(40));
    assert_eq!(Rule::parse(&text).unwrap_err().part, "RRULE");
}
