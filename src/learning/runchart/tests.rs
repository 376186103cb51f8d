use super::*;
use chrono::Months;

const H: f64 = 9.0;
const L: f64 = 1.0;
/// On the median of a baseline of equally many `H` and `L` values.
const M: f64 = 5.0;

/// The first day of the `i`-th month from January 2023 (shared with the picture's tests).
pub(crate) fn month(i: usize) -> NaiveDate {
    let start = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    start + Months::new(u32::try_from(i).unwrap())
}

/// Monthly points of these values, from January 2023, none excluded.
pub(crate) fn points(values: &[f64]) -> Vec<Point> {
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| Point {
            period: month(i),
            value,
            excluded: false,
            astronomical: false,
            note: None,
            pdsa_cycle_id: None,
        })
        .collect()
}

fn settings(improvement_direction: ImprovementDirection) -> MeasureSettings {
    MeasureSettings {
        frequency: Frequency::Month,
        improvement_direction,
        target: None,
        baseline: None,
        phases: Vec::new(),
    }
}

fn increase() -> MeasureSettings {
    settings(ImprovementDirection::Increase)
}

fn chart(settings: &MeasureSettings, values: &[f64], rules: RuleSet) -> RunChart {
    run_chart(settings, &points(values), rules).unwrap()
}

fn rules_found(phase: &PhaseResult) -> Vec<Rule> {
    phase.signals.iter().map(|s| s.rule).collect()
}

fn only_phase(chart: &RunChart) -> &PhaseResult {
    assert_eq!(chart.phases.len(), 1);
    &chart.phases[0]
}

/// Twelve baseline points alternating above and below the median 5, ending below it, so
/// that whatever follows starts a new run.
fn alternating_baseline() -> Vec<f64> {
    [H, L].repeat(6)
}

fn with(mut base: Vec<f64>, tail: &[f64]) -> Vec<f64> {
    base.extend_from_slice(tail);
    base
}

#[test]
fn a_shift_of_five_is_not_a_signal_and_a_shift_of_six_is() {
    let five = chart(
        &increase(),
        &with(alternating_baseline(), &[H; 5]),
        RuleSet::Ihi,
    );
    let phase = only_phase(&five);
    assert_eq!(phase.centre, Some(5.0));
    assert_eq!(phase.counts.longest_run, 5);
    assert!(!rules_found(phase).contains(&Rule::Shift));

    let six = chart(
        &increase(),
        &with(alternating_baseline(), &[H; 6]),
        RuleSet::Ihi,
    );
    let phase = only_phase(&six);
    let shift = phase
        .signals
        .iter()
        .find(|s| s.rule == Rule::Shift)
        .unwrap();
    assert_eq!((shift.from_period, shift.to_period), (month(12), month(17)));
    assert_eq!(shift.direction, Some(Direction::Above));
    for (i, point) in phase.points.iter().enumerate() {
        assert_eq!(point.signal_rules.contains(&Rule::Shift), i >= 12, "{i}");
    }
}

#[test]
fn points_on_the_median_neither_add_to_nor_break_a_shift() {
    // H H M H H H: five useful points above, the one on the median does not make it six.
    let tail = [H, H, M, H, H, H];
    let base = with(alternating_baseline()[..10].to_vec(), &[M, M]);
    let phase_chart = chart(&increase(), &with(base.clone(), &tail), RuleSet::Ihi);
    let phase = only_phase(&phase_chart);
    assert_eq!(phase.centre, Some(5.0));
    assert_eq!(phase.counts.points, 18);
    assert_eq!(phase.counts.useful_points, 15);
    assert_eq!(phase.counts.longest_run, 5);
    assert!(!rules_found(phase).contains(&Rule::Shift));
    assert_eq!(phase.points[14].side, Some(Side::On));

    // One more above: the run goes on across the point on the median.
    let phase_chart = chart(
        &increase(),
        &with(base, &[H, H, M, H, H, H, H]),
        RuleSet::Ihi,
    );
    let phase = only_phase(&phase_chart);
    let shift = phase
        .signals
        .iter()
        .find(|s| s.rule == Rule::Shift)
        .unwrap();
    assert_eq!((shift.from_period, shift.to_period), (month(12), month(18)));
    assert!(
        phase.points[14].signal_rules.is_empty(),
        "on the median, not in the shift"
    );
    assert_eq!(phase.counts.runs, 11);
    assert_eq!(phase.counts.crossings, 10);
}

#[test]
fn points_on_the_median_neither_add_to_nor_break_an_anhoej_long_run() {
    let base = with(alternating_baseline()[..10].to_vec(), &[M, M]);
    // 7 above + 1 on the median: 17 useful points, longest run 7 = the limit: no signal.
    let seven = chart(
        &increase(),
        &with(base.clone(), &[H, H, H, M, H, H, H, H]),
        RuleSet::Anhoej,
    );
    let phase = only_phase(&seven);
    assert_eq!(phase.counts.useful_points, 17);
    assert_eq!(
        phase.limits,
        Limits::Anhoej {
            longest_run_max: Some(7),
            crossings_min: Some(5)
        }
    );
    assert!(!rules_found(phase).contains(&Rule::LongRun));

    // 8 above across the point on the median: 18 useful, limit 7, a long run.
    let eight = chart(
        &increase(),
        &with(base, &[H, H, H, M, H, H, H, H, H]),
        RuleSet::Anhoej,
    );
    let phase = only_phase(&eight);
    let long = phase
        .signals
        .iter()
        .find(|s| s.rule == Rule::LongRun)
        .unwrap();
    assert_eq!((long.from_period, long.to_period), (month(12), month(20)));
    assert_eq!(long.direction, Some(Direction::Above));
}

#[test]
fn a_repeated_value_neither_makes_nor_breaks_a_trend() {
    // 2, 3, 3, 4, 6 is four points going up: no trend.
    let four = [5.0, 1.0, 9.0, 2.0, 3.0, 3.0, 4.0, 6.0, 1.0, 9.0, 2.0, 8.0];
    let phase_chart = chart(&increase(), &four, RuleSet::Ihi);
    let phase = only_phase(&phase_chart);
    assert_eq!(phase.status, Status::Ok);
    assert!(!rules_found(phase).contains(&Rule::Trend));

    // 2, 3, 3, 4, 6, 7 is five: a trend, spanning the repeated value.
    let five = [5.0, 1.0, 9.0, 2.0, 3.0, 3.0, 4.0, 6.0, 7.0, 1.0, 9.0, 2.0];
    let phase_chart = chart(&increase(), &five, RuleSet::Ihi);
    let phase = only_phase(&phase_chart);
    let trend = phase
        .signals
        .iter()
        .find(|s| s.rule == Rule::Trend)
        .unwrap();
    assert_eq!((trend.from_period, trend.to_period), (month(3), month(8)));
    assert_eq!(trend.direction, Some(Direction::Up));
    assert_eq!(trend.favourable, Some(true));
    assert!(phase.points[5].signal_rules.contains(&Rule::Trend));
}

#[test]
fn trends_count_points_not_steps_and_share_their_turning_point() {
    let found = trends(&[1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
    assert_eq!(
        found,
        vec![
            Trend {
                from: 0,
                to: 4,
                direction: Direction::Up
            },
            Trend {
                from: 4,
                to: 8,
                direction: Direction::Down
            },
        ]
    );
    assert!(
        trends(&[1.0, 2.0, 3.0, 4.0]).is_empty(),
        "4 points, 3 steps"
    );
    // Repeats at either end: the trend spans where the values move.
    let found = trends(&[1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0]);
    assert_eq!(
        found,
        vec![Trend {
            from: 1,
            to: 5,
            direction: Direction::Up
        }]
    );
    assert!(trends(&[3.0; 8]).is_empty(), "a flat line is no trend");
}

#[test]
fn nine_useful_points_are_insufficient_data_and_give_no_signals() {
    // 11 points whose median, 6, is two of them: 9 useful points. Rising all the way with a
    // flagged point, which would signal with one more useful point.
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 8.0, 9.0, 10.0, 11.0];
    let mut data = points(&values);
    data[10].astronomical = true;
    for rules in [RuleSet::Ihi, RuleSet::Anhoej] {
        let result = run_chart(&increase(), &data, rules).unwrap();
        let phase = only_phase(&result);
        assert_eq!(phase.counts.useful_points, 9);
        assert_eq!(phase.status, Status::InsufficientData);
        assert!(phase.signals.is_empty(), "{rules:?}");
        assert!(phase.points.iter().all(|p| p.signal_rules.is_empty()));
    }
    let ihi = run_chart(&increase(), &data, RuleSet::Ihi).unwrap();
    assert_eq!(
        ihi.phases[0].limits,
        Limits::Ihi {
            shift_min: 6,
            trend_min: 5,
            runs_lower: None,
            runs_upper: None
        }
    );
}

#[test]
fn ten_useful_points_are_enough() {
    // 11 distinct points: the median, 6, is one of them, leaving 10 useful points.
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0];
    let ihi = chart(&increase(), &values, RuleSet::Ihi);
    let phase = only_phase(&ihi);
    assert_eq!(phase.counts.useful_points, 10);
    assert_eq!(phase.status, Status::Ok);
    assert_eq!(
        phase.limits,
        Limits::Ihi {
            shift_min: 6,
            trend_min: 5,
            runs_lower: Some(3),
            runs_upper: Some(9)
        }
    );
    // One trend over all 11 points, and 2 runs (5 below, 5 above): too few for 10.
    assert_eq!(rules_found(phase), vec![Rule::Trend, Rule::TooFewRuns]);

    let anhoej = chart(&increase(), &values, RuleSet::Anhoej);
    let phase = only_phase(&anhoej);
    assert_eq!(phase.status, Status::Ok);
    assert_eq!(
        phase.limits,
        Limits::Anhoej {
            longest_run_max: Some(6),
            crossings_min: Some(2)
        }
    );
    // 1 crossing, fewer than 2.
    assert_eq!(rules_found(phase), vec![Rule::FewCrossings]);
    let few = &phase.signals[0];
    assert_eq!((few.from_period, few.to_period), (month(0), month(10)));
    assert_eq!((few.direction, few.favourable), (None, None));
}

#[test]
fn too_many_runs_is_an_ihi_signal_without_a_direction() {
    let values = [H, L].repeat(10);
    let phase_chart = chart(&increase(), &values, RuleSet::Ihi);
    let phase = only_phase(&phase_chart);
    assert_eq!(phase.counts.runs, 20);
    assert_eq!(
        phase.limits,
        Limits::Ihi {
            shift_min: 6,
            trend_min: 5,
            runs_lower: Some(6),
            runs_upper: Some(16)
        }
    );
    let signal = &phase.signals[0];
    assert_eq!(rules_found(phase), vec![Rule::TooManyRuns]);
    assert_eq!((signal.direction, signal.favourable), (None, None));
    assert!(phase.points.iter().all(|p| p.signal_rules.is_empty()));
}

#[test]
fn both_rule_sets_read_a_level_change() {
    // Ten below then ten above, with all twenty as the baseline.
    let values = with(vec![L; 10], &[H; 10]);
    let mut s = increase();
    s.baseline = Some(Baseline::Range {
        from: month(0),
        to: month(19),
    });

    let ihi = chart(&s, &values, RuleSet::Ihi);
    let phase = only_phase(&ihi);
    assert_eq!(phase.baseline_periods.len(), 20);
    assert_eq!(
        rules_found(phase),
        vec![Rule::Shift, Rule::TooFewRuns, Rule::Shift]
    );
    let shifts: Vec<_> = phase
        .signals
        .iter()
        .filter(|s| s.rule == Rule::Shift)
        .collect();
    assert_eq!(shifts[0].direction, Some(Direction::Below));
    assert_eq!(shifts[0].favourable, Some(false));
    assert_eq!(shifts[1].direction, Some(Direction::Above));
    assert_eq!(shifts[1].favourable, Some(true));

    let anhoej = chart(&s, &values, RuleSet::Anhoej);
    let phase = only_phase(&anhoej);
    assert_eq!(
        phase.limits,
        Limits::Anhoej {
            longest_run_max: Some(7),
            crossings_min: Some(6)
        }
    );
    assert_eq!(
        rules_found(phase),
        vec![Rule::LongRun, Rule::FewCrossings, Rule::LongRun]
    );
}

#[test]
fn favourable_follows_the_improvement_direction() {
    let up = with(alternating_baseline(), &[H; 6]);
    let down = with(alternating_baseline(), &[H, L, L, L, L, L, L]);
    let cases = [
        (ImprovementDirection::Increase, &up, Direction::Above, true),
        (ImprovementDirection::Decrease, &up, Direction::Above, false),
        (
            ImprovementDirection::Increase,
            &down,
            Direction::Below,
            false,
        ),
        (
            ImprovementDirection::Decrease,
            &down,
            Direction::Below,
            true,
        ),
    ];
    for (direction, values, side, expected) in cases {
        let result = chart(&settings(direction), values, RuleSet::Ihi);
        let shift = result.phases[0]
            .signals
            .iter()
            .find(|s| s.rule == Rule::Shift)
            .unwrap();
        assert_eq!(shift.direction, Some(side));
        assert_eq!(shift.favourable, Some(expected), "{direction:?} {side:?}");
    }
}

#[test]
fn excluded_points_count_nowhere() {
    // An excluded 100 in the baseline would move the median from 5 to 9; an excluded low
    // point inside six highs would break the shift; a flag on an excluded point is ignored.
    let mut data = points(&with(alternating_baseline(), &[H, H, H, L, H, H, H]));
    data.insert(
        3,
        Point {
            period: month(3),
            value: 100.0,
            excluded: true,
            ..data[0].clone()
        },
    );
    for (i, p) in data.iter_mut().enumerate() {
        p.period = month(i);
    }
    data[16].excluded = true;
    data[16].astronomical = true;
    let result = run_chart(&increase(), &data, RuleSet::Ihi).unwrap();
    let phase = only_phase(&result);
    assert_eq!(phase.centre, Some(5.0));
    assert_eq!(phase.counts.points, 18);
    assert_eq!(phase.counts.excluded_points, 2);
    assert_eq!(phase.counts.useful_points, 18);
    assert!(!phase.baseline_periods.contains(&month(3)));
    assert_eq!(phase.baseline_periods.len(), 12);
    assert_eq!(phase.baseline_periods.last(), Some(&month(12)));
    let shift = phase
        .signals
        .iter()
        .find(|s| s.rule == Rule::Shift)
        .unwrap();
    assert_eq!((shift.from_period, shift.to_period), (month(13), month(19)));
    assert!(!rules_found(phase).contains(&Rule::Astronomical));
    assert!(phase.points[16].signal_rules.is_empty());
    assert_eq!(
        phase.points[16].side,
        Some(Side::Below),
        "drawn, with its side"
    );
}

#[test]
fn an_astronomical_signal_comes_only_from_a_persons_flag() {
    let mut data = points(&with(alternating_baseline(), &[1000.0, L]));
    let unflagged = run_chart(&increase(), &data, RuleSet::Ihi).unwrap();
    assert!(!rules_found(&unflagged.phases[0]).contains(&Rule::Astronomical));

    data[12].astronomical = true;
    for rules in [RuleSet::Ihi, RuleSet::Anhoej] {
        let flagged = run_chart(&increase(), &data, rules).unwrap();
        let signal = flagged.phases[0]
            .signals
            .iter()
            .find(|s| s.rule == Rule::Astronomical)
            .unwrap();
        assert_eq!(
            (signal.from_period, signal.to_period),
            (month(12), month(12))
        );
        assert_eq!(signal.direction, Some(Direction::Above));
        assert_eq!(signal.favourable, Some(true));
        assert_eq!(
            flagged.phases[0].points[12].signal_rules,
            vec![Rule::Astronomical]
        );
    }
}

#[test]
fn a_rebaseline_starts_a_new_phase_with_its_own_frozen_median() {
    // Twelve points around 5, then twelve around 20: against the first median the second
    // twelve are one long shift; a re-baseline at month 12 reads them against their own.
    let second: Vec<f64> = [22.0, 18.0].repeat(6);
    let values = with(alternating_baseline(), &second);
    let single = chart(&increase(), &values, RuleSet::Ihi);
    assert!(rules_found(only_phase(&single)).contains(&Rule::Shift));

    let mut s = increase();
    s.phases = vec![PhaseStart {
        start_period: month(12),
        reason: "new triage".into(),
    }];
    let rebased = chart(&s, &values, RuleSet::Ihi);
    assert_eq!(rebased.phases.len(), 2);
    let (first, second) = (&rebased.phases[0], &rebased.phases[1]);
    assert_eq!((first.start_period, first.reason.as_deref()), (None, None));
    assert_eq!(
        (first.first_period, first.last_period),
        (Some(month(0)), Some(month(11)))
    );
    assert_eq!(first.centre, Some(5.0));
    assert_eq!(second.start_period, Some(month(12)));
    assert_eq!(second.reason.as_deref(), Some("new triage"));
    assert_eq!(second.centre, Some(20.0));
    assert_eq!(second.baseline_periods.first(), Some(&month(12)));
    assert_eq!(second.points.len(), 12);
    assert_eq!((first.status, second.status), (Status::Ok, Status::Ok));
    assert!(!rules_found(second).contains(&Rule::Shift));
    assert_eq!(second.counts.runs, 12);

    // The Anhøj rules see the same: one long run against the first median, none after the
    // re-baseline.
    let single = chart(&increase(), &values, RuleSet::Anhoej);
    assert!(rules_found(only_phase(&single)).contains(&Rule::LongRun));
    let rebased = chart(&s, &values, RuleSet::Anhoej);
    assert_eq!(rebased.phases.len(), 2);
    assert!(rebased.phases.iter().all(|p| p.signals.is_empty()));
    assert_eq!(rebased.phases[1].centre, Some(20.0));
}

#[test]
fn the_baseline_median_is_frozen_as_points_are_added() {
    let mut values = alternating_baseline();
    let before = chart(&increase(), &values, RuleSet::Ihi);
    values.extend_from_slice(&[50.0; 12]);
    let after = chart(&increase(), &values, RuleSet::Ihi);
    assert_eq!(before.phases[0].centre, after.phases[0].centre);
    assert_eq!(
        after.phases[0].baseline_periods,
        before.phases[0].baseline_periods
    );
    assert!(!after.phases[0].points[20].in_baseline);
}

#[test]
fn a_baseline_of_chosen_periods_sets_the_median() {
    let values = with(
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0],
        &[12.0],
    );
    let mut s = increase();
    s.baseline = Some(Baseline::Periods((1..=10).map(month).collect()));
    let result = chart(&s, &values, RuleSet::Anhoej);
    assert_eq!(result.phases[0].centre, Some(6.5));
    assert_eq!(result.phases[0].baseline_periods.len(), 10);

    // Fewer than ten: the phase cannot be read.
    s.baseline = Some(Baseline::Periods((0..9).map(month).collect()));
    let short = chart(&s, &values, RuleSet::Ihi);
    assert_eq!(short.phases[0].status, Status::InsufficientData);
    assert!(short.phases[0].signals.is_empty());
}

#[test]
fn points_are_read_in_period_order_whatever_order_they_come_in() {
    let values = with(alternating_baseline(), &[H; 6]);
    let mut data = points(&values);
    data.reverse();
    let result = run_chart(&increase(), &data, RuleSet::Ihi).unwrap();
    assert_eq!(result, chart(&increase(), &values, RuleSet::Ihi));
}

#[test]
fn signals_added_names_only_the_signals_an_upsert_created() {
    let five = chart(
        &increase(),
        &with(alternating_baseline(), &[H; 5]),
        RuleSet::Ihi,
    );
    let six = chart(
        &increase(),
        &with(alternating_baseline(), &[H; 6]),
        RuleSet::Ihi,
    );
    let added = signals_added(&five, &six);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].signal.rule, Rule::Shift);
    assert_eq!(added[0].phase_start, None);
    assert!(signals_added(&six, &six).is_empty());
    assert!(
        signals_added(&six, &five).is_empty(),
        "a signal that went away is not added"
    );

    // The same shift one point longer keeps its first period: it is not added again.
    let seven = chart(
        &increase(),
        &with(alternating_baseline(), &[H; 7]),
        RuleSet::Ihi,
    );
    let shift = |c: &RunChart| {
        c.signals()
            .find(|s| s.signal.rule == Rule::Shift)
            .map(|s| (s.signal.from_period, s.signal.to_period))
    };
    assert_eq!(shift(&seven), Some((month(12), month(18))));
    assert!(signals_added(&six, &seven).is_empty());

    // A shift that starts elsewhere is a new one.
    let later = chart(
        &increase(),
        &with(alternating_baseline(), &[H, L, H, H, H, H, H, H]),
        RuleSet::Ihi,
    );
    let added = signals_added(&five, &later);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].signal.from_period, month(14));
}

#[test]
fn the_names_stored_as_text_are_the_serde_names() {
    for frequency in Frequency::ALL {
        let json = serde_json::to_value(frequency).unwrap();
        assert_eq!(json, frequency.as_str());
        assert_eq!(frequency.as_str().parse::<Frequency>(), Ok(*frequency));
    }
    for direction in ImprovementDirection::ALL {
        assert_eq!(serde_json::to_value(direction).unwrap(), direction.as_str());
        assert_eq!(direction.as_str().parse(), Ok(*direction));
    }
    for rules in RuleSet::ALL {
        assert_eq!(serde_json::to_value(rules).unwrap(), rules.as_str());
        assert_eq!(rules.as_str().parse(), Ok(*rules));
    }
    for rule in Rule::ALL {
        assert_eq!(serde_json::to_value(rule).unwrap(), rule.as_str());
    }
    assert!("daily".parse::<Frequency>().is_err());
}

#[test]
fn refused_input_says_what_is_wrong() {
    let mut data = points(&[1.0, 2.0]);
    data[1].period = NaiveDate::from_ymd_opt(2023, 2, 2).unwrap();
    assert!(matches!(
        run_chart(&increase(), &data, RuleSet::Ihi),
        Err(AnalysisError::MisalignedPeriod { .. })
    ));
    let mut data = points(&[1.0, 2.0]);
    data[1].period = data[0].period;
    assert_eq!(
        run_chart(&increase(), &data, RuleSet::Ihi),
        Err(AnalysisError::DuplicatePeriod { period: month(0) })
    );
    let data = points(&[1.0, f64::NAN]);
    assert!(matches!(
        run_chart(&increase(), &data, RuleSet::Ihi),
        Err(AnalysisError::NonFiniteValue { .. })
    ));
    let mut s = increase();
    s.phases = vec![
        PhaseStart {
            start_period: month(5),
            reason: "a".into(),
        },
        PhaseStart {
            start_period: month(5),
            reason: "b".into(),
        },
    ];
    assert!(matches!(
        run_chart(&s, &points(&[1.0]), RuleSet::Ihi),
        Err(AnalysisError::PhasesOutOfOrder { .. })
    ));
    let message = AnalysisError::MisalignedPeriod {
        period: month(0),
        frequency: Frequency::Week,
    }
    .to_string();
    assert_eq!(message, "2023-01-01 is not a Monday");
}

#[test]
fn no_points_give_no_phases_and_an_empty_declared_phase_is_still_shown() {
    let empty = run_chart(&increase(), &[], RuleSet::Ihi).unwrap();
    assert!(empty.phases.is_empty());
    let mut s = increase();
    s.phases = vec![PhaseStart {
        start_period: month(24),
        reason: "later".into(),
    }];
    let result = chart(&s, &alternating_baseline(), RuleSet::Ihi);
    assert_eq!(result.phases.len(), 2);
    assert_eq!(result.phases[1].counts, Counts::default());
    assert_eq!(result.phases[1].centre, None);
    assert_eq!(result.phases[1].status, Status::InsufficientData);
}

#[test]
fn the_output_serialises_with_snake_case_names() {
    let mut s = increase();
    s.baseline = Some(Baseline::Range {
        from: month(0),
        to: month(19),
    });
    let result = chart(&s, &with(vec![L; 10], &[H; 10]), RuleSet::Ihi);
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(json["rule_set"], "ihi");
    assert_eq!(json["improvement_direction"], "increase");
    let phase = &json["phases"][0];
    assert_eq!(phase["status"], "ok");
    assert_eq!(phase["limits"]["rule_set"], "ihi");
    assert_eq!(phase["limits"]["runs_lower"], 6);
    assert_eq!(phase["counts"]["useful_points"], 20);
    assert_eq!(phase["signals"][0]["rule"], "shift");
    assert_eq!(phase["signals"][0]["direction"], "below");
    assert_eq!(phase["signals"][0]["from_period"], "2023-01-01");
    assert_eq!(phase["signals"][1]["rule"], "too_few_runs");
    assert_eq!(phase["signals"][1]["direction"], serde_json::Value::Null);
    assert_eq!(phase["signals"][1]["favourable"], serde_json::Value::Null);
    assert_eq!(phase["points"][0]["side"], "below");

    let settings: MeasureSettings = serde_json::from_value(serde_json::json!({
        "frequency": "week",
        "improvement_direction": "decrease",
        "baseline": {"from": "2024-01-01", "to": "2024-03-25"},
        "phases": [{"start_period": "2024-06-03", "reason": "new rota"}]
    }))
    .unwrap();
    assert_eq!(settings.frequency, Frequency::Week);
    assert!(matches!(settings.baseline, Some(Baseline::Range { .. })));
    let listed: Baseline = serde_json::from_str(r#"["2024-01-01", "2024-01-08"]"#).unwrap();
    assert!(matches!(listed, Baseline::Periods(p) if p.len() == 2));
}
