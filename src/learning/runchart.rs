//! Run-chart analysis: the centre line, runs, crossings and signals of a measure's points,
//! phase by phase, under the IHI or the Anhøj rules. Pure: no database and no HTTP; the API
//! (`learning::measures`) feeds it the stored points and serialises what it answers, whose
//! types carry their OpenAPI schemas here.
//!
//! How points are counted (the same in both rule sets):
//! - An *excluded* point is drawn but counts nowhere: not in the median, not in any count, and
//!   it neither makes nor breaks a run, a shift or a trend. It raises no signal, not even an
//!   astronomical one.
//! - A point *on* the median is not useful: it neither adds to nor breaks a run, shift or long
//!   run, and is left out of the useful points, runs and crossings. It still counts in trends,
//!   which do not look at the median.
//! - A *run* is a maximal sequence of useful points on one side of the median; the number of
//!   runs is the number of crossings + 1 (0 runs and 0 crossings with no useful point).
//! - Each phase is analysed on its own, against its own frozen baseline median.
//! - A phase with fewer than [`MIN_USEFUL_POINTS`] useful points, or whose baseline holds fewer
//!   than [`MIN_BASELINE_POINTS`] points, is `insufficient_data` and has no signals at all.

mod limits;
mod period;

/// `as_str` and `FromStr` for an enum whose serde names are given once more here (a test checks
/// they agree): the database stores the names as text, and this module knows no database.
macro_rules! named {
    ($ty:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!("{other:?} is not a {}", stringify!($ty))),
                }
            }
        }
    };
}
pub(crate) use named;

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use limits::{
    anhoej_limits, binomial_half_quantile, exact_runs_limits, round_log2, runs_limits,
    AnhoejLimits, RunsLimits, RUNS_TABLE,
};
pub use period::{
    align, is_aligned, period_from_number, period_label, period_number, Frequency, PeriodError,
};

/// IHI shift: this many or more useful points in a row on one side of the median.
pub const SHIFT_MIN: u32 = 6;
/// IHI trend: this many or more points all going up or all going down.
pub const TREND_MIN: u32 = 5;
/// Below this many useful points a phase is `insufficient_data`.
pub const MIN_USEFUL_POINTS: usize = 10;
/// The most points a measure holds (a weekly measure kept for nearly a century): the bound of
/// every list of points and periods the document describes.
pub const MAX_POINTS: usize = 5000;
/// The most re-baselines a measure has.
pub const MAX_PHASE_STARTS: usize = 20;
/// The bound of a value as answered; values written are bounded tighter (`measures`).
pub const MAX_MAGNITUDE: f64 = 1e15;
/// The default baseline: the first this many counted points of a phase.
pub const DEFAULT_BASELINE_POINTS: usize = 12;
/// A baseline with fewer counted points than this leaves its phase `insufficient_data`.
pub const MIN_BASELINE_POINTS: usize = 10;

/// Which way is better for a measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImprovementDirection {
    Increase,
    Decrease,
}

named!(ImprovementDirection {
    Increase = "increase",
    Decrease = "decrease"
});

/// Which rules read the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleSet {
    /// Perla, Provost & Murray 2011: shift, trend, too few or too many runs, astronomical.
    #[default]
    Ihi,
    /// Anhøj & Olesen 2014, as qicharts2 computes them: long run, few crossings (and the
    /// astronomical flag, which is a person's judgement under either rule set).
    Anhoej,
}

named!(RuleSet {
    Ihi = "ihi",
    Anhoej = "anhoej"
});

/// Which periods form the baseline. In JSON, either a list of periods or `{from, to}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Baseline {
    /// These periods.
    Periods(Vec<NaiveDate>),
    /// Every period from `from` to `to`, both included.
    Range { from: NaiveDate, to: NaiveDate },
}

impl Baseline {
    fn contains(&self, period: NaiveDate) -> bool {
        match self {
            Baseline::Periods(periods) => periods.contains(&period),
            Baseline::Range { from, to } => *from <= period && period <= *to,
        }
    }
}

/// A re-baseline decided by a person at a known change: from `start_period` on, a new phase
/// with its own baseline. The rules never start a phase on their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseStart {
    pub start_period: NaiveDate,
    pub reason: String,
}

/// A period as the answers write it, `YYYY-MM-DD`: for the document only (the fields are
/// `NaiveDate`s).
pub struct PeriodText;

impl utoipa::PartialSchema for PeriodText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Date,
            )))
            .max_length(Some(10))
            .into()
    }
}

impl ToSchema for PeriodText {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("PeriodText")
    }
}

/// What the analysis needs of a measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureSettings {
    pub frequency: Frequency,
    pub improvement_direction: ImprovementDirection,
    #[serde(default)]
    pub target: Option<f64>,
    /// `None`: each phase's first [`DEFAULT_BASELINE_POINTS`] counted points.
    #[serde(default)]
    pub baseline: Option<Baseline>,
    /// Re-baselines, in order of `start_period`.
    #[serde(default)]
    pub phases: Vec<PhaseStart>,
}

/// One data point: aggregate numbers only, never patient-level data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The first day of the period (see [`is_aligned`]).
    pub period: NaiveDate,
    pub value: f64,
    #[serde(default)]
    pub excluded: bool,
    /// A person's judgement that the point is obviously different; never computed.
    #[serde(default)]
    pub astronomical: bool,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub pdsa_cycle_id: Option<i32>,
}

/// Where a point lies against its phase's median.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Above,
    Below,
    On,
}

/// The rule behind a signal.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Shift,
    Trend,
    TooFewRuns,
    TooManyRuns,
    LongRun,
    FewCrossings,
    Astronomical,
}

named!(Rule {
    Shift = "shift",
    Trend = "trend",
    TooFewRuns = "too_few_runs",
    TooManyRuns = "too_many_runs",
    LongRun = "long_run",
    FewCrossings = "few_crossings",
    Astronomical = "astronomical",
});

/// Which way a signal points: a side of the median for shifts, long runs and astronomical
/// points, a slope for trends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Above,
    Below,
    Up,
    Down,
}

/// A phase's verdict on its amount of data: `insufficient_data` below 10 useful points (or
/// with a baseline of fewer than 10 points), when no rule is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    InsufficientData,
}

/// A non-random pattern found by a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Signal {
    pub rule: Rule,
    /// The first period of the pattern.
    #[schema(value_type = String, format = Date, max_length = 10)]
    pub from_period: NaiveDate,
    /// The last period of the pattern.
    #[schema(value_type = String, format = Date, max_length = 10)]
    pub to_period: NaiveDate,
    /// `None` for the runs-count signals (too few or too many runs, few crossings), which are
    /// about the whole phase, and for an astronomical point that lies on the median.
    pub direction: Option<Direction>,
    /// Whether the direction is the better one for the measure; `None` where there is no
    /// direction.
    pub favourable: Option<bool>,
}

/// The counts behind the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
pub struct Counts {
    /// Points in the phase that count (not excluded).
    #[schema(minimum = 0, maximum = 5000, format = Int32)]
    pub points: usize,
    /// Excluded points in the phase.
    #[schema(minimum = 0, maximum = 5000, format = Int32)]
    pub excluded_points: usize,
    /// Counted points not on the median.
    #[schema(minimum = 0, maximum = 5000, format = Int32)]
    pub useful_points: usize,
    /// Runs of useful points on one side of the median (crossings + 1).
    #[schema(minimum = 0, maximum = 5000, format = Int32)]
    pub runs: usize,
    /// Times the line of useful points crosses the median.
    #[schema(minimum = 0, maximum = 5000, format = Int32)]
    pub crossings: usize,
    /// The most useful points in one run.
    #[schema(minimum = 0, maximum = 5000, format = Int32)]
    pub longest_run: usize,
}

/// The limits a phase was read with; the numbers are `null` where the rules were not applied
/// (insufficient data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "rule_set", rename_all = "snake_case")]
pub enum Limits {
    /// A shift is `shift_min` or more useful points on one side; a trend `trend_min` or more
    /// points going one way; fewer runs than `runs_lower`, or more than `runs_upper`, signal.
    Ihi {
        #[schema(minimum = 1, maximum = 100)]
        shift_min: u32,
        #[schema(minimum = 1, maximum = 100)]
        trend_min: u32,
        #[schema(minimum = 0, maximum = 5000)]
        runs_lower: Option<u32>,
        #[schema(minimum = 0, maximum = 5000)]
        runs_upper: Option<u32>,
    },
    /// A run longer than `longest_run_max`, or fewer crossings than `crossings_min`, signals.
    Anhoej {
        #[schema(minimum = 0, maximum = 5000)]
        longest_run_max: Option<u32>,
        #[schema(minimum = 0, maximum = 5000)]
        crossings_min: Option<u32>,
    },
}

/// A point as the chart shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChartPoint {
    #[schema(value_type = String, format = Date, max_length = 10)]
    pub period: NaiveDate,
    #[schema(minimum = -1e15, maximum = 1e15)]
    pub value: f64,
    /// Against the phase's median, excluded points included; `None` when the phase has no
    /// median (no counted point in its baseline).
    pub side: Option<Side>,
    pub excluded: bool,
    pub astronomical: bool,
    pub in_baseline: bool,
    #[schema(max_length = 500)]
    pub note: Option<String>,
    /// The PDSA cycle the point is annotated with.
    #[schema(minimum = 1, maximum = 2147483647)]
    pub pdsa_cycle_id: Option<i32>,
    /// The point-level signals this point is part of (shift, trend, long run, astronomical).
    #[schema(max_items = 7)]
    pub signal_rules: Vec<Rule>,
}

/// One phase of the chart.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PhaseResult {
    /// 0 for the first phase.
    #[schema(minimum = 0, maximum = 20, format = Int32)]
    pub index: usize,
    /// The re-baseline's first period; `null` for the phase before any re-baseline.
    #[schema(value_type = Option<String>, format = Date, max_length = 10)]
    pub start_period: Option<NaiveDate>,
    /// Why a person re-baselined here; `null` for the first phase.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    /// The first period with a point in this phase.
    #[schema(value_type = Option<String>, format = Date, max_length = 10)]
    pub first_period: Option<NaiveDate>,
    /// The last period with a point in this phase.
    #[schema(value_type = Option<String>, format = Date, max_length = 10)]
    pub last_period: Option<NaiveDate>,
    pub status: Status,
    /// The centre line: the median of the baseline, frozen and extended across the phase.
    #[schema(minimum = -1e15, maximum = 1e15)]
    pub centre: Option<f64>,
    /// The periods the median was taken from.
    #[schema(value_type = Vec<PeriodText>, max_items = 5000)]
    pub baseline_periods: Vec<NaiveDate>,
    pub counts: Counts,
    pub limits: Limits,
    /// In order of their first period.
    #[schema(max_items = 10000)]
    pub signals: Vec<Signal>,
    #[schema(max_items = 5000)]
    pub points: Vec<ChartPoint>,
}

/// The whole analysis of a measure.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RunChart {
    pub rule_set: RuleSet,
    pub frequency: Frequency,
    pub improvement_direction: ImprovementDirection,
    #[schema(minimum = -1e15, maximum = 1e15)]
    pub target: Option<f64>,
    /// One per re-baseline, after the phase before the first.
    #[schema(max_items = 21)]
    pub phases: Vec<PhaseResult>,
}

/// Input the analysis refuses; the API validates writes so that stored data never gets here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    #[error("{period} is not {}", frequency.alignment_rule())]
    MisalignedPeriod {
        period: NaiveDate,
        frequency: Frequency,
    },
    #[error("two points for the period {period}")]
    DuplicatePeriod { period: NaiveDate },
    #[error("the value for {period} is not a finite number")]
    NonFiniteValue { period: NaiveDate },
    #[error("the target is not a finite number")]
    NonFiniteTarget,
    #[error("the phase starting {period} does not start after the one before it")]
    PhasesOutOfOrder { period: NaiveDate },
    #[error("the baseline runs from {from} to {to}, which is backwards")]
    BaselineReversed { from: NaiveDate, to: NaiveDate },
}

/// A signal with the phase it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PhaseSignal {
    #[schema(minimum = 0, maximum = 20, format = Int32)]
    pub phase_index: usize,
    /// The phase's [`PhaseResult::start_period`]: what identifies a phase across upserts.
    #[schema(value_type = Option<String>, format = Date, max_length = 10)]
    pub phase_start: Option<NaiveDate>,
    pub signal: Signal,
}

impl RunChart {
    /// Every signal of every phase, in order.
    pub fn signals(&self) -> impl Iterator<Item = PhaseSignal> + '_ {
        self.phases.iter().flat_map(|phase| {
            phase.signals.iter().map(move |signal| PhaseSignal {
                phase_index: phase.index,
                phase_start: phase.start_period,
                signal: signal.clone(),
            })
        })
    }
}

/// The signals in `new` that were not in `old`, for `measure.signal_detected`.
///
/// Signals are matched by (phase, rule, from_period), where a phase is identified by its
/// re-baseline start rather than its index, so that data added before the first re-baseline
/// does not make every later signal look new. `to_period` is left out on purpose: a shift that
/// grows by one point keeps its first period, so it is the same shift and fires once, when it
/// first reaches six points; a shift that starts elsewhere is a new one.
pub fn signals_added(old: &RunChart, new: &RunChart) -> Vec<PhaseSignal> {
    type Key = (Option<NaiveDate>, Rule, NaiveDate);
    let key = |s: &PhaseSignal| -> Key { (s.phase_start, s.signal.rule, s.signal.from_period) };
    let before: HashSet<Key> = old.signals().map(|s| key(&s)).collect();
    new.signals()
        .filter(|s| !before.contains(&key(s)))
        .collect()
}

/// Analyses a measure's points, phase by phase, under one rule set.
///
/// Points may come in any order; they are read in period order. Every period (points, phase
/// starts, baseline) must be aligned to the measure's frequency.
pub fn run_chart(
    settings: &MeasureSettings,
    points: &[Point],
    rule_set: RuleSet,
) -> Result<RunChart, AnalysisError> {
    validate(settings, points)?;
    let mut sorted: Vec<&Point> = points.iter().collect();
    sorted.sort_by_key(|p| p.period);

    // Phase boundaries: an implicit first phase when points come before the first re-baseline
    // (or there is none), then one phase per re-baseline, empty ones included.
    let mut bounds: Vec<(Option<&PhaseStart>, NaiveDate)> = Vec::new();
    let first_start = settings.phases.first().map(|p| p.start_period);
    if let Some(first) = sorted.first() {
        if first_start.is_none_or(|start| first.period < start) {
            bounds.push((None, first.period));
        }
    }
    for phase in &settings.phases {
        bounds.push((Some(phase), phase.start_period));
    }

    let mut phases = Vec::with_capacity(bounds.len());
    for (index, &(declared, start)) in bounds.iter().enumerate() {
        let end = bounds.get(index + 1).map(|b| b.1);
        let in_phase: Vec<&Point> = sorted
            .iter()
            .copied()
            .filter(|p| p.period >= start && end.is_none_or(|e| p.period < e))
            .collect();
        phases.push(analyse_phase(
            index, declared, &in_phase, settings, rule_set,
        ));
    }

    Ok(RunChart {
        rule_set,
        frequency: settings.frequency,
        improvement_direction: settings.improvement_direction,
        target: settings.target,
        phases,
    })
}

fn validate(settings: &MeasureSettings, points: &[Point]) -> Result<(), AnalysisError> {
    let frequency = settings.frequency;
    let aligned = |period: NaiveDate| {
        if is_aligned(frequency, period) {
            Ok(())
        } else {
            Err(AnalysisError::MisalignedPeriod { period, frequency })
        }
    };
    let mut seen = HashSet::with_capacity(points.len());
    for point in points {
        aligned(point.period)?;
        if !point.value.is_finite() {
            return Err(AnalysisError::NonFiniteValue {
                period: point.period,
            });
        }
        if !seen.insert(point.period) {
            return Err(AnalysisError::DuplicatePeriod {
                period: point.period,
            });
        }
    }
    if settings.target.is_some_and(|t| !t.is_finite()) {
        return Err(AnalysisError::NonFiniteTarget);
    }
    let mut previous: Option<NaiveDate> = None;
    for phase in &settings.phases {
        aligned(phase.start_period)?;
        if previous.is_some_and(|p| phase.start_period <= p) {
            return Err(AnalysisError::PhasesOutOfOrder {
                period: phase.start_period,
            });
        }
        previous = Some(phase.start_period);
    }
    match &settings.baseline {
        Some(Baseline::Periods(periods)) => periods.iter().try_for_each(|p| aligned(*p))?,
        Some(Baseline::Range { from, to }) => {
            aligned(*from)?;
            aligned(*to)?;
            if from > to {
                return Err(AnalysisError::BaselineReversed {
                    from: *from,
                    to: *to,
                });
            }
        }
        None => {}
    }
    Ok(())
}

/// A run: consecutive useful points on one side of the median, as indices into the phase.
struct Run {
    side: Side,
    members: Vec<usize>,
}

fn analyse_phase(
    index: usize,
    declared: Option<&PhaseStart>,
    points: &[&Point],
    settings: &MeasureSettings,
    rule_set: RuleSet,
) -> PhaseResult {
    let counted: Vec<usize> = (0..points.len()).filter(|&i| !points[i].excluded).collect();

    // The baseline: the settings' periods where they select a counted point of this phase,
    // otherwise the phase's first DEFAULT_BASELINE_POINTS counted points.
    let chosen: Vec<usize> = match &settings.baseline {
        Some(baseline) => counted
            .iter()
            .copied()
            .filter(|&i| baseline.contains(points[i].period))
            .collect(),
        None => Vec::new(),
    };
    let baseline: Vec<usize> = if chosen.is_empty() {
        counted
            .iter()
            .copied()
            .take(DEFAULT_BASELINE_POINTS)
            .collect()
    } else {
        chosen
    };
    let centre = median(baseline.iter().map(|&i| points[i].value).collect());

    let side_of = |value: f64| {
        centre.map(|c| {
            if value > c {
                Side::Above
            } else if value < c {
                Side::Below
            } else {
                Side::On
            }
        })
    };

    // Runs over the useful points: counted and not on the median.
    let mut runs: Vec<Run> = Vec::new();
    for &i in &counted {
        let side = match side_of(points[i].value) {
            Some(side @ (Side::Above | Side::Below)) => side,
            _ => continue,
        };
        match runs.last_mut() {
            Some(run) if run.side == side => run.members.push(i),
            _ => runs.push(Run {
                side,
                members: vec![i],
            }),
        }
    }
    let useful: usize = runs.iter().map(|r| r.members.len()).sum();
    let counts = Counts {
        points: counted.len(),
        excluded_points: points.len() - counted.len(),
        useful_points: useful,
        runs: runs.len(),
        crossings: runs.len().saturating_sub(1),
        longest_run: runs.iter().map(|r| r.members.len()).max().unwrap_or(0),
    };

    let sufficient = useful >= MIN_USEFUL_POINTS && baseline.len() >= MIN_BASELINE_POINTS;
    let status = if sufficient {
        Status::Ok
    } else {
        Status::InsufficientData
    };
    let n = u32::try_from(useful).unwrap_or(u32::MAX);
    let limits = match rule_set {
        RuleSet::Ihi => {
            let runs_limits = runs_limits(n).filter(|_| sufficient);
            Limits::Ihi {
                shift_min: SHIFT_MIN,
                trend_min: TREND_MIN,
                runs_lower: runs_limits.map(|l| l.lower),
                runs_upper: runs_limits.map(|l| l.upper),
            }
        }
        RuleSet::Anhoej => {
            let anhoej = anhoej_limits(n).filter(|_| sufficient);
            Limits::Anhoej {
                longest_run_max: anhoej.map(|l| l.longest_run_max),
                crossings_min: anhoej.map(|l| l.crossings_min),
            }
        }
    };

    // Each signal with the points it marks.
    let mut found: Vec<(Signal, Vec<usize>)> = Vec::new();
    if sufficient {
        let direction_signal = |rule: Rule, members: &[usize], direction: Direction| {
            let first = members.first().map(|&i| points[i].period);
            let last = members.last().map(|&i| points[i].period);
            first.zip(last).map(|(from_period, to_period)| Signal {
                rule,
                from_period,
                to_period,
                direction: Some(direction),
                favourable: Some(favourable(direction, settings.improvement_direction)),
            })
        };
        let side_direction = |side: Side| match side {
            Side::Above => Some(Direction::Above),
            Side::Below => Some(Direction::Below),
            Side::On => None,
        };
        let whole_phase = |rule: Rule| {
            let first = runs.first().and_then(|r| r.members.first());
            let last = runs.last().and_then(|r| r.members.last());
            first.zip(last).map(|(&f, &l)| Signal {
                rule,
                from_period: points[f].period,
                to_period: points[l].period,
                direction: None,
                favourable: None,
            })
        };

        match rule_set {
            RuleSet::Ihi => {
                for run in runs
                    .iter()
                    .filter(|r| r.members.len() >= SHIFT_MIN as usize)
                {
                    if let Some(direction) = side_direction(run.side) {
                        if let Some(s) = direction_signal(Rule::Shift, &run.members, direction) {
                            found.push((s, run.members.clone()));
                        }
                    }
                }
                let values: Vec<f64> = counted.iter().map(|&i| points[i].value).collect();
                for trend in trends(&values) {
                    let members: Vec<usize> = counted[trend.from..=trend.to].to_vec();
                    if let Some(s) = direction_signal(Rule::Trend, &members, trend.direction) {
                        found.push((s, members));
                    }
                }
                if let Some(limits) = runs_limits(n) {
                    let count = u32::try_from(runs.len()).unwrap_or(u32::MAX);
                    if count < limits.lower {
                        found.extend(whole_phase(Rule::TooFewRuns).map(|s| (s, Vec::new())));
                    }
                    if count > limits.upper {
                        found.extend(whole_phase(Rule::TooManyRuns).map(|s| (s, Vec::new())));
                    }
                }
            }
            RuleSet::Anhoej => {
                if let Some(limits) = anhoej_limits(n) {
                    let too_long = |r: &&Run| r.members.len() > limits.longest_run_max as usize;
                    for run in runs.iter().filter(too_long) {
                        if let Some(direction) = side_direction(run.side) {
                            if let Some(s) =
                                direction_signal(Rule::LongRun, &run.members, direction)
                            {
                                found.push((s, run.members.clone()));
                            }
                        }
                    }
                    let crossings = u32::try_from(counts.crossings).unwrap_or(u32::MAX);
                    if crossings < limits.crossings_min {
                        found.extend(whole_phase(Rule::FewCrossings).map(|s| (s, Vec::new())));
                    }
                }
            }
        }

        for &i in counted.iter().filter(|&&i| points[i].astronomical) {
            let direction = side_of(points[i].value).and_then(side_direction);
            found.push((
                Signal {
                    rule: Rule::Astronomical,
                    from_period: points[i].period,
                    to_period: points[i].period,
                    direction,
                    favourable: direction.map(|d| favourable(d, settings.improvement_direction)),
                },
                vec![i],
            ));
        }
    }
    found.sort_by(|a, b| {
        (a.0.from_period, a.0.to_period, a.0.rule).cmp(&(b.0.from_period, b.0.to_period, b.0.rule))
    });

    let in_baseline: HashSet<usize> = baseline.iter().copied().collect();
    let chart_points = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut signal_rules: Vec<Rule> = found
                .iter()
                .filter(|(_, members)| members.contains(&i))
                .map(|(s, _)| s.rule)
                .collect();
            signal_rules.sort();
            signal_rules.dedup();
            ChartPoint {
                period: p.period,
                value: p.value,
                side: side_of(p.value),
                excluded: p.excluded,
                astronomical: p.astronomical,
                in_baseline: in_baseline.contains(&i),
                note: p.note.clone(),
                pdsa_cycle_id: p.pdsa_cycle_id,
                signal_rules,
            }
        })
        .collect();

    PhaseResult {
        index,
        start_period: declared.map(|d| d.start_period),
        reason: declared.map(|d| d.reason.clone()),
        first_period: points.first().map(|p| p.period),
        last_period: points.last().map(|p| p.period),
        status,
        centre,
        baseline_periods: baseline.iter().map(|&i| points[i].period).collect(),
        counts,
        limits,
        signals: found.into_iter().map(|(s, _)| s).collect(),
        points: chart_points,
    }
}

/// Whether a direction is the better one for the measure.
fn favourable(direction: Direction, improvement: ImprovementDirection) -> bool {
    let upward = matches!(direction, Direction::Above | Direction::Up);
    upward == (improvement == ImprovementDirection::Increase)
}

/// The median; `None` for no values. The mean of the two middle values for an even count.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return None;
    }
    let upper = values[n / 2];
    if n % 2 == 1 {
        Some(upper)
    } else {
        // Halving each first cannot overflow, whatever the magnitudes.
        Some(values[n / 2 - 1] / 2.0 + upper / 2.0)
    }
}

/// A trend, as indices into the values it was found in.
#[derive(Debug, PartialEq, Eq)]
struct Trend {
    from: usize,
    to: usize,
    direction: Direction,
}

/// IHI trends: [`TREND_MIN`] or more points all going up or all going down.
///
/// Convention: points are counted, not steps (5 points = 4 rises). A value equal to the one
/// before it neither makes nor breaks a trend: runs of equal values count as one point, so
/// 1, 2, 2, 3, 4 is 4 points and no trend, and 1, 2, 2, 3, 4, 5 is a trend of 5. A trend
/// spans from the last of its first equal values to the first of its last equal values (the
/// stretch over which the values actually move), and the turning point between a rise and a
/// fall belongs to both.
fn trends(values: &[f64]) -> Vec<Trend> {
    // Groups of consecutive equal values, as (first index, last index).
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for (i, &value) in values.iter().enumerate() {
        match groups.last_mut() {
            Some(group) if values[group.1] == value => group.1 = i,
            _ => groups.push((i, i)),
        }
    }
    let mut found = Vec::new();
    // The groups of the current monotone stretch: start..=g.
    let mut start = 0;
    let mut rising: Option<bool> = None;
    let mut close = |start: usize, end: usize, up: bool| {
        let points = end - start + 1;
        if points >= TREND_MIN as usize {
            found.push(Trend {
                from: groups[start].1,
                to: groups[end].0,
                direction: if up { Direction::Up } else { Direction::Down },
            });
        }
    };
    for g in 1..groups.len() {
        let up = values[groups[g].0] > values[groups[g - 1].0];
        match rising {
            Some(r) if r != up => {
                close(start, g - 1, r);
                start = g - 1;
            }
            _ => {}
        }
        rising = Some(up);
    }
    if let Some(r) = rising {
        close(start, groups.len() - 1, r);
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;
