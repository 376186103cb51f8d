//! Measures and their data points: how an initiative knows whether a change is an
//! improvement. A measure is an outcome, process or balancing measure with its operational
//! definition, data type, frequency and direction of improvement; its points are aggregate
//! numbers, one per period (never patient-level data). Its run chart is read by the IHI or the
//! Anhøj rules ([`crate::learning::runchart`]) and drawn as SVG ([`crate::learning::chart`]).
//!
//! `PUT /measures/{id}/points` upserts a batch by period, in one transaction: a point whose
//! period has one is changed, a new period adds one, an unchanged point is left alone (so the
//! same batch sent twice changes nothing the second time). When the upsert creates a signal
//! that was not there, the measure's change-log entry carries it (`signals_added`) and is sent
//! as `measure.signal_detected`.

use std::collections::HashMap;

use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::learning::chart::{self, ChartMeta};
use crate::learning::initiatives::{self, check_if_match_version, Initiatives, Under};
use crate::learning::runchart::{
    self, align, is_aligned, period_number, signals_added, AnalysisError, Baseline, Frequency,
    ImprovementDirection, MeasureSettings, PhaseSignal, PhaseStart, Point, RuleSet, RunChart,
    MAX_PHASE_STARTS, MAX_POINTS, MIN_BASELINE_POINTS,
};
use crate::platform::auth::{Role, Visible};
use crate::platform::cache::Rendered;
use crate::platform::db::{DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, LocalDate, Name, PdsaCycleRef, Text};
use crate::platform::http::JsonBody;
use crate::platform::pagination::{Count, Page, Paging};
use crate::platform::resource::{
    self, found, Access, Allowed, Audit, Author, Ctx, Keyed, Listing, New, Resource, Update,
};
use crate::platform::schema::{data_points, measures, pdsa_cycles};
use crate::platform::validate::{Doc, Input, Query};

pub type MeasureName = Name<200>;
pub type OperationalDefinition = Text<5000>;
pub type Unit = Text<100>;
pub type PhaseReason = Name<500>;
pub type PointNote = Text<500>;
pub type ExclusionReason = Text<500>;
/// The most points one `PUT /measures/{id}/points` carries.
pub const BATCH_MAX: usize = 2000;

crate::number_type!(
    /// A measured value, a target: aggregate numbers only.
    pub Value, min = -1e12, max = 1e12
);
crate::number_type!(
    /// A numerator: how many of the denominator had the event (patients, comments, falls).
    pub Numerator, min = 0.0, max = 1e12
);
crate::number_type!(
    /// A denominator: how many there were (patients, comments, bed-days); more than 0.
    pub Denominator, min = 0.0, max = 1e12, exclusive_min = 0.0
);
crate::number_type!(
    /// What a proportion or rate is multiplied by: 100 for a percentage, 1000 for "per 1,000".
    pub Multiplier, min = 0.0, max = 1e6, exclusive_min = 0.0
);

crate::text_enum! {
    /// IHI's family of measures: the aim's outcome, the process that leads to it, and what
    /// the change might make worse elsewhere.
    pub enum MeasureType { Outcome = "outcome", Process = "process", Balancing = "balancing" }
}

crate::text_enum! {
    /// What a point holds. A `proportion` (numerator ≤ denominator) and a `rate` are given as
    /// a numerator and a denominator, and their value is `numerator / denominator × multiplier`;
    /// a `count` (a whole number, not negative) and a `continuous` measure as a value.
    pub enum DataType {
        Count = "count",
        Proportion = "proportion",
        Rate = "rate",
        Continuous = "continuous",
    }
}

impl DataType {
    fn is_fraction(self) -> bool {
        matches!(self, DataType::Proportion | DataType::Rate)
    }
}

/// The baseline: the periods from `from` to `to`, both included, at least 10 of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineRange {
    pub from: LocalDate,
    pub to: LocalDate,
}

/// A re-baseline at a known change, decided by a person: from `start_period` on, a new phase
/// with its own median. The rules never re-baseline on their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseInput {
    /// The first period of the new phase.
    pub start_period: LocalDate,
    /// Why: the known change (a new process, a new definition).
    pub reason: PhaseReason,
}

crate::list_type!(
    /// Re-baselines, in order of their first period.
    pub Phases(PhaseInput),
    max = MAX_PHASE_STARTS
);

/// A measure, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "initiative_id": 1, "name": "Comments answered within 14 days",
    "type": "process",
    "operational_definition": "Of the comments received in the month, the share answered by the unit within 14 days of receipt.",
    "data_type": "proportion", "unit": "% of comments", "multiplier": 100, "frequency": "month",
    "improvement_direction": "increase", "target": 80, "baseline": null, "phases": [],
    "rules": "ihi", "points": 24, "first_period": "2018-07-01", "last_period": "2020-06-01",
    "signals": [], "created_at": "2019-04-25T17:00:00Z", "updated_at": "2019-04-25T17:00:00Z"
}))]
pub struct Measure {
    pub id: Id,
    pub initiative_id: Id,
    pub name: MeasureName,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub measure_type: MeasureType,
    pub operational_definition: Option<OperationalDefinition>,
    pub data_type: DataType,
    pub unit: Option<Unit>,
    pub multiplier: Multiplier,
    pub frequency: Frequency,
    pub improvement_direction: ImprovementDirection,
    pub target: Option<Value>,
    /// `null`: each phase's first 12 points that are not excluded.
    pub baseline: Option<BaselineRange>,
    pub phases: Phases,
    /// The rules its signals are read with (and `measure.signal_detected` sent by).
    pub rules: RuleSet,
    /// How many data points it has.
    pub points: Count,
    pub first_period: Option<LocalDate>,
    pub last_period: Option<LocalDate>,
    /// The signals its run chart shows now, under `rules`.
    #[schema(max_items = 10000)]
    pub signals: Vec<PhaseSignal>,
    #[serde(flatten)]
    pub audit: Audit,
}

crate::record!(Measure);

/// A measure, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Comments answered within 14 days", "type": "process",
    "operational_definition": "Of the comments received in the month, the share answered by the unit within 14 days of receipt.",
    "data_type": "proportion", "unit": "% of comments", "multiplier": 100, "frequency": "month",
    "improvement_direction": "increase", "target": 80
}))]
pub struct MeasureInput {
    pub name: MeasureName,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub measure_type: MeasureType,
    /// Exactly what is counted, from where, and what is left out.
    pub operational_definition: Option<OperationalDefinition>,
    /// Cannot change once the measure has points.
    pub data_type: DataType,
    /// Such as "% of comments" or "falls per 1,000 bed-days".
    pub unit: Option<Unit>,
    /// For proportions and rates: the value is numerator / denominator × multiplier. 1 when
    /// left out.
    pub multiplier: Option<Multiplier>,
    /// One point per week (starting on Monday), month or quarter; cannot change once the
    /// measure has points.
    pub frequency: Frequency,
    pub improvement_direction: ImprovementDirection,
    pub target: Option<Value>,
    /// Which periods the median is taken from; at least 10. Left out: each phase's first 12
    /// points that are not excluded.
    pub baseline: Option<BaselineRange>,
    /// Re-baselines at known changes, each with its reason.
    #[serde(default)]
    pub phases: Phases,
    /// Defaults to `ihi`.
    #[serde(default)]
    pub rules: RuleSet,
}

/// What `period_rules` says of a date that is not the first day of its period.
fn misaligned(frequency: Frequency, date: LocalDate) -> String {
    match align(frequency, date.naive()) {
        Ok(start) => format!(
            "must be {} (the first day of its period); the period of {date} starts on {start}",
            frequency.alignment_rule()
        ),
        Err(_) => format!("must be {}", frequency.alignment_rule()),
    }
}

impl Input for MeasureInput {
    /// Periods are the first day of their period; the baseline spans at least 10 periods;
    /// phases start in order.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let Some(frequency) = doc.get::<Frequency>("frequency") else {
            return errors;
        };
        if let Some(baseline) = doc.get::<BaselineRange>("baseline") {
            for (field, date) in [
                ("baseline.from", baseline.from),
                ("baseline.to", baseline.to),
            ] {
                if !is_aligned(frequency, date.naive()) {
                    errors.push(FieldError::new(field, misaligned(frequency, date)));
                }
            }
            let span = period_number(frequency, baseline.to.naive())
                - period_number(frequency, baseline.from.naive())
                + 1;
            if baseline.to < baseline.from {
                errors.push(FieldError::new(
                    "baseline.to",
                    "must not be before baseline.from",
                ));
            } else if span < MIN_BASELINE_POINTS as i64 {
                errors.push(FieldError::new(
                    "baseline",
                    format!(
                        "must span at least {MIN_BASELINE_POINTS} periods (it spans {span}): a \
                         median of fewer points cannot be read by the rules"
                    ),
                ));
            }
        }
        let mut previous: Option<LocalDate> = None;
        for (i, phase) in doc.items::<PhaseInput>("phases").into_iter().enumerate() {
            let Some(phase) = phase else { continue };
            let field = format!("phases[{i}].start_period");
            if !is_aligned(frequency, phase.start_period.naive()) {
                errors.push(FieldError::new(
                    &field,
                    misaligned(frequency, phase.start_period),
                ));
            }
            if previous.is_some_and(|p| phase.start_period <= p) {
                errors.push(FieldError::new(
                    &field,
                    "must be after the start of the phase before it (phases are in order)",
                ));
            }
            previous = Some(phase.start_period);
        }
        errors
    }
}

/// A data point, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataPoint {
    pub id: Id,
    pub measure_id: Id,
    /// The first day of its period.
    pub period: LocalDate,
    /// What the chart plots: as given, or numerator / denominator × multiplier.
    pub value: Value,
    pub numerator: Option<Numerator>,
    pub denominator: Option<Denominator>,
    pub excluded: bool,
    pub exclusion_reason: Option<ExclusionReason>,
    /// A person's judgement that the point is obviously different; never computed.
    pub astronomical: bool,
    pub note: Option<PointNote>,
    /// The PDSA cycle the point is annotated with.
    pub pdsa_cycle_id: Option<Id>,
    #[serde(flatten)]
    pub audit: Audit,
}

crate::record!(DataPoint);

/// One point of a batch: its period, and its value or its numerator and denominator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointInput {
    /// The first day of its period: a Monday for weekly measures, the 1st of the month, the
    /// 1st of January, April, July or October.
    pub period: LocalDate,
    /// For counts (a whole number, not negative) and continuous measures.
    pub value: Option<Value>,
    /// For proportions (not more than the denominator) and rates.
    pub numerator: Option<Numerator>,
    /// For proportions and rates; more than 0.
    pub denominator: Option<Denominator>,
    /// Drawn, but left out of the median, the counts and the rules; takes a reason.
    #[serde(default)]
    pub excluded: bool,
    pub exclusion_reason: Option<ExclusionReason>,
    /// A person's flag: the point is obviously different (a signal under both rule sets).
    #[serde(default)]
    pub astronomical: bool,
    pub note: Option<PointNote>,
    /// A PDSA cycle of the measure's initiative, to annotate the point with.
    pub pdsa_cycle_id: Option<PdsaCycleRef>,
}

crate::list_type!(
    /// The points, each period once.
    pub PointBatch(PointInput),
    max = BATCH_MAX
);

/// The body of `PUT /measures/{id}/points`. Aggregate numbers only: never patient-level data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"points": [
    {"period": "2019-09-01", "numerator": 41, "denominator": 58},
    {"period": "2019-10-01", "numerator": 47, "denominator": 60, "pdsa_cycle_id": 1,
        "note": "Digest sent weekly from here"}
]}))]
pub struct PointsInput {
    pub points: PointBatch,
}

impl Input for PointsInput {
    /// Each period once; an excluded point says why.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut seen: HashMap<LocalDate, usize> = HashMap::new();
        for (i, point) in doc.items::<PointInput>("points").into_iter().enumerate() {
            let Some(point) = point else { continue };
            let first = *seen.entry(point.period).or_insert(i);
            if first != i {
                errors.push(FieldError::new(
                    format!("points[{i}].period"),
                    format!(
                        "{} is also points[{first}]: one point per period",
                        point.period
                    ),
                ));
            }
            if point.excluded && Text::non_blank(point.exclusion_reason.as_ref()).is_none() {
                errors.push(FieldError::new(
                    format!("points[{i}].exclusion_reason"),
                    "is required for an excluded point: say why it is left out",
                ));
            }
        }
        errors
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointsUpserted {
    pub measure_id: Id,
    pub created: Count,
    pub updated: Count,
    /// Points sent as they already were.
    pub unchanged: Count,
    /// Signals of the run chart (under the measure's `rules`) that were not there before.
    #[schema(max_items = 10000)]
    pub signals_added: Vec<PhaseSignal>,
}

/// A measure's points, in period order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointList {
    pub measure_id: Id,
    #[schema(max_items = 5000)]
    pub items: Vec<DataPoint>,
}

/// The run chart of a measure.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeasureRunChart {
    pub measure_id: Id,
    pub name: MeasureName,
    pub unit: Option<Unit>,
    pub data_type: DataType,
    #[serde(flatten)]
    pub chart: RunChart,
}

/// Which rules read the chart.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunChartQuery {
    /// `ihi` (Perla, Provost & Murray 2011) or `anhoej` (Anhøj & Olesen 2014, as qicharts2
    /// reads them); the measure's `rules` when left out.
    pub rules: Option<RuleSet>,
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = measures)]
struct MeasureRow {
    id: i32,
    initiative_id: i32,
    name: String,
    measure_type: MeasureType,
    operational_definition: Option<String>,
    data_type: DataType,
    unit: Option<String>,
    multiplier: f64,
    frequency: String,
    improvement_direction: String,
    target: Option<f64>,
    baseline_from: Option<NaiveDate>,
    baseline_to: Option<NaiveDate>,
    phases: String,
    rules: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = data_points)]
struct PointRow {
    id: i32,
    measure_id: i32,
    period: NaiveDate,
    value: f64,
    numerator: Option<f64>,
    denominator: Option<f64>,
    excluded: bool,
    exclusion_reason: Option<String>,
    astronomical: bool,
    note: Option<String>,
    pdsa_cycle_id: Option<i32>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

impl From<PointRow> for DataPoint {
    fn from(row: PointRow) -> Self {
        DataPoint {
            id: Id(row.id),
            measure_id: Id(row.measure_id),
            period: LocalDate::from_naive(row.period),
            value: Value::stored(row.value),
            numerator: row.numerator.map(Numerator::stored),
            denominator: row.denominator.map(Denominator::stored),
            excluded: row.excluded,
            exclusion_reason: row.exclusion_reason.map(Text::stored),
            astronomical: row.astronomical,
            note: row.note.map(Text::stored),
            pdsa_cycle_id: row.pdsa_cycle_id.map(Id),
            audit: crate::audit!(row),
        }
    }
}

// ---- the run chart -----------------------------------------------------------------------

/// A stored name the database checks (`CHECK`/domain): read back as the enum.
fn stored<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T, ApiError> {
    text.parse::<T>()
        .map_err(|e| ApiError::Internal(format!("a measure with a bad stored value: {e}")))
}

/// What the analysis needs of a measure.
fn settings_of(measure: &Measure) -> MeasureSettings {
    MeasureSettings {
        frequency: measure.frequency,
        improvement_direction: measure.improvement_direction,
        target: measure.target.map(Value::get),
        baseline: measure.baseline.map(|b| Baseline::Range {
            from: b.from.naive(),
            to: b.to.naive(),
        }),
        phases: measure
            .phases
            .0
            .iter()
            .map(|p| PhaseStart {
                start_period: p.start_period.naive(),
                reason: p.reason.as_str().to_owned(),
            })
            .collect(),
    }
}

fn point_of(row: &PointRow) -> Point {
    Point {
        period: row.period,
        value: row.value,
        excluded: row.excluded,
        astronomical: row.astronomical,
        note: row.note.clone(),
        pdsa_cycle_id: row.pdsa_cycle_id,
    }
}

/// The run chart of stored points: stored data was checked when written, so the analysis
/// refusing it is a defect.
fn chart_of(
    settings: &MeasureSettings,
    points: &[PointRow],
    rules: RuleSet,
) -> Result<RunChart, ApiError> {
    let points: Vec<Point> = points.iter().map(point_of).collect();
    runchart::run_chart(settings, &points, rules)
        .map_err(|e: AnalysisError| ApiError::Internal(format!("a stored measure: {e}")))
}

/// Every point of measure `id`, in period order.
fn points_of(conn: &mut DbConnection, id: i32) -> Result<Vec<PointRow>, ApiError> {
    Ok(crate::on_backend!(conn, |c| data_points::table
        .filter(data_points::measure_id.eq(id))
        .order(data_points::period)
        .select(PointRow::as_select())
        .load::<PointRow>(c))?)
}

fn measure_of(row: MeasureRow, points: &[PointRow]) -> Result<Measure, ApiError> {
    let phases: Vec<PhaseInput> = serde_json::from_str(&row.phases)
        .map_err(|e| ApiError::Internal(format!("a measure with bad phases: {e}")))?;
    let mut measure = Measure {
        id: Id(row.id),
        initiative_id: Id(row.initiative_id),
        name: Name::stored(row.name.clone()),
        measure_type: row.measure_type,
        operational_definition: row.operational_definition.clone().map(Text::stored),
        data_type: row.data_type,
        unit: row.unit.clone().map(Text::stored),
        multiplier: Multiplier::stored(row.multiplier),
        frequency: stored(&row.frequency)?,
        improvement_direction: stored(&row.improvement_direction)?,
        target: row.target.map(Value::stored),
        baseline: row
            .baseline_from
            .zip(row.baseline_to)
            .map(|(from, to)| BaselineRange {
                from: LocalDate::from_naive(from),
                to: LocalDate::from_naive(to),
            }),
        phases: Phases(phases),
        rules: stored(&row.rules)?,
        points: Count::clamped(points.len() as i64),
        first_period: points.first().map(|p| LocalDate::from_naive(p.period)),
        last_period: points.last().map(|p| LocalDate::from_naive(p.period)),
        signals: Vec::new(),
        audit: crate::audit!(row),
    };
    let chart = chart_of(&settings_of(&measure), points, measure.rules)?;
    measure.signals = chart.signals().collect();
    Ok(measure)
}

// ---- persistence -------------------------------------------------------------------------

fn filtered(initiative: i32) -> measures::BoxedQuery<'static, MultiBackend> {
    measures::table
        .filter(measures::initiative_id.eq(initiative))
        .into_boxed()
}

/// The columns a body writes, for `INSERT` and `UPDATE` alike.
macro_rules! written_columns {
    ($input:expr, $phases:expr) => {
        (
            measures::name.eq($input.name.as_str()),
            measures::measure_type.eq($input.measure_type),
            measures::operational_definition
                .eq(Text::non_blank($input.operational_definition.as_ref())),
            measures::data_type.eq($input.data_type),
            measures::unit.eq(Text::non_blank($input.unit.as_ref())),
            measures::multiplier.eq($input.multiplier.map_or(1.0, Multiplier::get)),
            measures::frequency.eq($input.frequency.as_str()),
            measures::improvement_direction.eq($input.improvement_direction.as_str()),
            measures::target.eq($input.target.map(Value::get)),
            measures::baseline_from.eq($input.baseline.map(|b| b.from.naive())),
            measures::baseline_to.eq($input.baseline.map(|b| b.to.naive())),
            measures::phases.eq($phases),
            measures::rules.eq($input.rules.as_str()),
        )
    };
}

/// Bumps measure `id`'s version: its points (and so its counts and signals) changed.
fn touch(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    diesel::update(measures::table.find(id))
        .set(measures::version.eq(measures::version + 1))
        .execute(conn)?;
    Ok(())
}

/// Measures: what [`resource`] needs to serve them.
pub struct Measures;

impl Resource for Measures {
    const NAME: &'static str = "measure";
    const COLLECTION: &'static str = "measures";
    const SCHEDULE: bool = false;
    const WRITE: Allowed = Allowed::Role(Role::Organizer);
    type Record = Measure;
    type Input = Under<MeasureInput>;
    type Change = MeasureInput;
    /// The initiative.
    type Filter = i32;

    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Measure>, ApiError> {
        let Some(row) = crate::on_backend!(conn, |c| measures::table
            .find(id)
            .select(MeasureRow::as_select())
            .first::<MeasureRow>(c)
            .optional())?
        else {
            return Ok(None);
        };
        let points = points_of(conn, id)?;
        Ok(Some(measure_of(row, &points)?))
    }

    fn list(
        conn: &mut DbConnection,
        initiative: &i32,
        paging: Paging,
    ) -> Result<Listing<Measure>, ApiError> {
        let total = filtered(*initiative).count().get_result::<i64>(conn)?;
        let rows = filtered(*initiative)
            .order(measures::id)
            .limit(paging.limit())
            .offset(paging.offset())
            .select(MeasureRow::as_select())
            .load::<MeasureRow>(conn)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let points = points_of(conn, row.id)?;
            items.push(measure_of(row, &points)?);
        }
        Ok(paging.page(items, total).into())
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Measure, ApiError> {
        let initiative = new.input.parent;
        if !initiatives::touch(conn, initiative)? {
            return Err(ApiError::not_found(Initiatives::NAME, initiative));
        }
        let count = crate::count_rows!(conn, measures, initiative_id, initiative)?;
        if count >= MEASURES_MAX as i64 {
            return Err(ApiError::Conflict(format!(
                "initiative {initiative} has {count} measures, the most its report lists; \
                 delete one first"
            )));
        }
        let input = &new.input.input;
        let phases = serde_json::to_string(&input.phases)?;
        let values = (
            written_columns!(input, &phases),
            measures::initiative_id.eq(initiative),
            crate::created_columns!(measures, new.actor),
        );
        let row = crate::insert_row!(conn, measures, MeasureRow, values)?;
        measure_of(row, &[])
    }

    fn change_of(record: &Measure) -> MeasureInput {
        MeasureInput {
            name: record.name.clone(),
            measure_type: record.measure_type,
            operational_definition: record.operational_definition.clone(),
            data_type: record.data_type,
            unit: record.unit.clone(),
            multiplier: Some(record.multiplier),
            frequency: record.frequency,
            improvement_direction: record.improvement_direction,
            target: record.target,
            baseline: record.baseline,
            phases: record.phases.clone(),
            rules: record.rules,
        }
    }

    /// The frequency and the data type stay while the measure has points: its periods and
    /// values were checked against them.
    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Measure>, ApiError> {
        let (current, input) = (&update.current, &update.change);
        let id = current.id.0;
        let count = current.points.get();
        if count > 0 {
            for (field, was, asked) in [
                (
                    "frequency",
                    current.frequency.as_str(),
                    input.frequency.as_str(),
                ),
                (
                    "data_type",
                    current.data_type.as_str(),
                    input.data_type.as_str(),
                ),
            ] {
                if was != asked {
                    return Err(ApiError::Conflict(format!(
                        "measure {id} has {count} points by its {field} {was}: its {field} \
                         cannot become {asked} (start a new measure, or re-baseline with phases)"
                    )));
                }
            }
        }
        initiatives::touch(conn, current.initiative_id.0)?;
        let phases = serde_json::to_string(&input.phases)?;
        let changes = (
            written_columns!(input, &phases),
            crate::updated_columns!(measures, update.actor),
        );
        let Some(row) =
            crate::update_row!(conn, measures, MeasureRow, id, update.expected, changes)?
        else {
            return Ok(None);
        };
        let points = points_of(conn, id)?;
        Ok(Some(measure_of(row, &points)?))
    }

    /// Its points go with it (each recorded in the change log as deleted).
    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        let current = found(Measures::find(conn, id)?, Measures::NAME, id)?;
        if expected.is_some_and(|v| v != current.version()) {
            return Ok(false);
        }
        initiatives::touch(conn, current.initiative_id.0)?;
        diesel::delete(data_points::table.filter(data_points::measure_id.eq(id))).execute(conn)?;
        Ok(crate::delete_row!(conn, measures, id, expected)? == 1)
    }
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Measures, one = "measure", many = "measures", tag = "measures",
    record = Measure, input = MeasureInput, change = MeasureInput,
    read = [(), ("bearer" = [])], write = [("bearer" = ["organizer", "admin"])];
    get get_measure "/measures/{id}" "Get a measure, with its current signals";
    replace replace_measure "/measures/{id}" "Replace a measure";
    patch patch_measure "/measures/{id}" "Change some fields of a measure (JSON merge patch): re-baseline with `phases`";
}

/// Delete a measure and its data points
#[utoipa::path(
    tag = "measures",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "The measure's id")),
    responses((status = 204, description = "Deleted, with its points"), WriteErrors)
)]
#[delete("/measures/{id}")]
pub async fn delete_measure(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Delete)?;
    ctx.require_if_match()?;
    let id = id.into_inner();
    let if_match = ctx.conditions.if_match.clone();
    let private = ctx.caller.sees_private_fields();
    ctx.write(granted, move |conn, author| {
        let current = found(Measures::find(conn, id)?, Measures::NAME, id)?;
        check_if_match_version(if_match.as_ref(), current.version(), private)?;
        for row in points_of(conn, id)? {
            let point = DataPoint::from(row);
            author.record(conn, POINT, point.id.0, Some(&point), None)?;
        }
        if !Measures::delete(conn, id, None)? {
            return Err(ApiError::not_found(Measures::NAME, id));
        }
        author.record(conn, Measures::NAME, id, Some(&current), None)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List an initiative's measures
#[utoipa::path(
    tag = "measures",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The initiative's id"), Paging),
    responses((status = 200, description = "A page of measures", body = Page<Measure>), ReadErrors)
)]
#[get("/initiatives/{id}/measures")]
pub async fn list_measures(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Read)?;
    let initiative = id.into_inner();
    let query = query.values()?;
    resource::list_filtered::<Measures>(ctx, granted, &query, initiative, move |conn| {
        initiatives::must_exist(conn, initiative)
    })
    .await
}

/// Add a measure to an initiative
#[utoipa::path(
    tag = "measures",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "The initiative's id")),
    request_body = MeasureInput,
    responses(
        (status = 201, description = "Created", body = Measure,
            headers(("Location" = crate::platform::resource::HeaderText,
                description = "URL of the new measure"))),
        WriteErrors
    )
)]
#[post("/initiatives/{id}/measures")]
pub async fn create_measure(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Create)?;
    let initiative = id.into_inner();
    let body = body.value()?;
    let request = serde_json::to_vec(&body)?;
    let checked = ctx
        .validators
        .body::<MeasureInput>(body)
        .map(|input| Under {
            parent: initiative,
            input,
        });
    resource::create_with::<Measures>(ctx, granted, checked, &request, move |conn| {
        initiatives::must_exist(conn, initiative)
    })
    .await
}

/// The most measures an initiative has: its report lists them all (a family of measures is a
/// handful, not hundreds).
pub const MEASURES_MAX: usize = 100;

/// What a data point is called in the change log (`data_point.created`...).
pub const POINT: &str = "data_point";

/// A measure's change-log entry after its points changed: the measure with its new counts and
/// signals, and the signals the change created (`signals_added`, which makes the entry a
/// `measure.signal_detected`; see `changelog::event_type`).
#[derive(Serialize)]
struct MeasureWithSignals<'a> {
    #[serde(flatten)]
    measure: &'a Measure,
    signals_added: &'a [PhaseSignal],
}

/// Records that measure `before.id`'s points changed: bumps the measure and its initiative,
/// and writes the measure's entry with the signals the change created; answers them.
fn record_points_changed(
    conn: &mut DbConnection,
    author: Author<'_>,
    before: &Measure,
    old_chart: &RunChart,
) -> Result<Vec<PhaseSignal>, ApiError> {
    let id = before.id.0;
    touch(conn, id)?;
    initiatives::touch(conn, before.initiative_id.0)?;
    let after = found(Measures::find(conn, id)?, Measures::NAME, id)?;
    let points = points_of(conn, id)?;
    let new_chart = chart_of(&settings_of(&after), &points, after.rules)?;
    let added = signals_added(old_chart, &new_chart);
    let entry = MeasureWithSignals {
        measure: &after,
        signals_added: &added,
    };
    author.record(
        conn,
        Measures::NAME,
        id,
        Some(&serde_json::to_value(before)?),
        Some(&serde_json::to_value(&entry)?),
    )?;
    Ok(added)
}

/// The value a point stands for, or the errors of its fields, for a measure of `data_type`.
fn value_of(
    i: usize,
    point: &PointInput,
    data_type: DataType,
    multiplier: f64,
    errors: &mut Vec<FieldError>,
) -> Option<f64> {
    let field = |name: &str| format!("points[{i}].{name}");
    if data_type.is_fraction() {
        if point.value.is_some() {
            errors.push(FieldError::new(
                field("value"),
                format!(
                    "is computed from numerator and denominator for a {data_type} measure; leave \
                     it out"
                ),
            ));
        }
        let (Some(numerator), Some(denominator)) = (point.numerator, point.denominator) else {
            for (name, given) in [
                ("numerator", point.numerator.is_some()),
                ("denominator", point.denominator.is_some()),
            ] {
                if !given {
                    errors.push(FieldError::new(
                        field(name),
                        format!("is required for a {data_type} measure"),
                    ));
                }
            }
            return None;
        };
        let (n, d) = (numerator.get(), denominator.get());
        if data_type == DataType::Proportion && n > d {
            errors.push(FieldError::new(
                field("numerator"),
                format!(
                    "must not be more than the denominator ({n} > {d}): a proportion is a part \
                     of its whole"
                ),
            ));
            return None;
        }
        let value = n / d * multiplier;
        if !value.is_finite() || value.abs() > Value::MAX {
            errors.push(FieldError::new(
                field("denominator"),
                format!(
                    "gives a value of {value}, more than the largest value, {}",
                    Value::MAX
                ),
            ));
            return None;
        }
        Some(value)
    } else {
        for (name, given) in [
            ("numerator", point.numerator.is_some()),
            ("denominator", point.denominator.is_some()),
        ] {
            if given {
                errors.push(FieldError::new(
                    field(name),
                    format!("is only for proportions and rates, not a {data_type} measure"),
                ));
            }
        }
        let Some(value) = point.value.map(Value::get) else {
            errors.push(FieldError::new(
                field("value"),
                format!("is required for a {data_type} measure"),
            ));
            return None;
        };
        if data_type == DataType::Count && (value < 0.0 || value.fract() != 0.0) {
            errors.push(FieldError::new(
                field("value"),
                format!("must be a whole number, not negative, for a count ({value})"),
            ));
            return None;
        }
        Some(value)
    }
}

/// Upsert data points of a measure, by period
///
/// One point per period: a period that has one is changed, a new one added, and a point sent as
/// it already is left alone, so sending the same batch twice changes nothing the second time.
/// A point is the first day of its period, and carries its value (counts and continuous
/// measures) or its numerator and denominator (proportions and rates: 0 ≤ numerator ≤
/// denominator for a proportion, denominator > 0). **Aggregate numbers only: never
/// patient-level data.** Points that create a signal in the run chart (under the measure's
/// `rules`) send `measure.signal_detected`.
#[utoipa::path(
    tag = "measures",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "The measure's id")),
    request_body = PointsInput,
    responses((status = 200, description = "What the upsert did", body = PointsUpserted), WriteErrors)
)]
#[put("/measures/{id}/points")]
pub async fn upsert_points(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Change)?;
    ctx.require_if_match()?;
    let id = id.into_inner();
    let checked = ctx.validators.body::<PointsInput>(body.value()?);
    if checked.is_refused() && checked.references().is_empty() {
        return Err(checked
            .into_result()
            .err()
            .unwrap_or_else(|| ApiError::Internal("a refused body without errors".to_owned())));
    }
    let if_match = ctx.conditions.if_match.clone();
    let private = ctx.caller.sees_private_fields();
    let validators = ctx.validators.clone();
    let answer = ctx
        .write(granted, move |conn, author| {
            let before = found(Measures::find(conn, id)?, Measures::NAME, id)?;
            check_if_match_version(if_match.as_ref(), before.version(), private)?;
            let input = validators.verified(conn, checked)?;
            upsert(conn, author, &before, &input)
        })
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// The upsert of [`upsert_points`], in its transaction (the demo loads its points with it).
pub fn upsert(
    conn: &mut DbConnection,
    author: Author<'_>,
    before: &Measure,
    input: &PointsInput,
) -> Result<PointsUpserted, ApiError> {
    let id = before.id.0;
    let frequency = before.frequency;
    let multiplier = before.multiplier.get();
    let mut errors = Vec::new();
    let cycles: Vec<i32> = pdsa_cycles::table
        .filter(pdsa_cycles::initiative_id.eq(before.initiative_id.0))
        .select(pdsa_cycles::id)
        .load::<i32>(conn)?;
    let mut values = Vec::with_capacity(input.points.0.len());
    for (i, point) in input.points.0.iter().enumerate() {
        if !is_aligned(frequency, point.period.naive()) {
            errors.push(FieldError::new(
                format!("points[{i}].period"),
                misaligned(frequency, point.period),
            ));
        }
        if let Some(cycle) = point.pdsa_cycle_id {
            if !cycles.contains(&cycle.0) {
                errors.push(FieldError::new(
                    format!("points[{i}].pdsa_cycle_id"),
                    format!(
                        "PDSA cycle {} is not a cycle of initiative {}, whose measure this is",
                        cycle.0, before.initiative_id.0
                    ),
                ));
            }
        }
        values.push(value_of(
            i,
            point,
            before.data_type,
            multiplier,
            &mut errors,
        ));
    }
    let existing = points_of(conn, id)?;
    let new_periods = input
        .points
        .0
        .iter()
        .filter(|p| !existing.iter().any(|e| e.period == p.period.naive()))
        .count();
    if existing.len() + new_periods > MAX_POINTS {
        errors.push(FieldError::new(
            "points",
            format!(
                "would give measure {id} {} points, more than the {MAX_POINTS} a measure holds",
                existing.len() + new_periods
            ),
        ));
    }
    if !errors.is_empty() {
        errors.truncate(crate::platform::validate::MAX_ERRORS);
        return Err(ApiError::Validation(errors));
    }
    let old_chart = chart_of(&settings_of(before), &existing, before.rules)?;
    let by_period: HashMap<NaiveDate, &PointRow> = existing.iter().map(|p| (p.period, p)).collect();
    let (mut created, mut updated, mut unchanged) = (0i64, 0i64, 0i64);
    for (point, value) in input.points.0.iter().zip(values) {
        let value = value.unwrap_or_default();
        let exclusion = if point.excluded {
            Text::non_blank(point.exclusion_reason.as_ref()).map(str::to_owned)
        } else {
            None
        };
        let note = Text::non_blank(point.note.as_ref()).map(str::to_owned);
        let columns = (
            data_points::value.eq(value),
            data_points::numerator.eq(point.numerator.map(Numerator::get)),
            data_points::denominator.eq(point.denominator.map(Denominator::get)),
            data_points::excluded.eq(point.excluded),
            data_points::exclusion_reason.eq(exclusion.clone()),
            data_points::astronomical.eq(point.astronomical),
            data_points::note.eq(note.clone()),
            data_points::pdsa_cycle_id.eq(point.pdsa_cycle_id.map(|c| c.0)),
        );
        match by_period.get(&point.period.naive()) {
            None => {
                let row = crate::insert_row!(
                    conn,
                    data_points,
                    PointRow,
                    (
                        columns,
                        data_points::measure_id.eq(id),
                        data_points::period.eq(point.period.naive()),
                        crate::created_columns!(data_points, author.actor),
                    )
                )?;
                let record = DataPoint::from(row);
                author.record(conn, POINT, record.id.0, None, Some(&record))?;
                created += 1;
            }
            Some(row) => {
                let same = row.value == value
                    && row.numerator == point.numerator.map(Numerator::get)
                    && row.denominator == point.denominator.map(Denominator::get)
                    && row.excluded == point.excluded
                    && row.exclusion_reason == exclusion
                    && row.astronomical == point.astronomical
                    && row.note == note
                    && row.pdsa_cycle_id == point.pdsa_cycle_id.map(|c| c.0);
                if same {
                    unchanged += 1;
                    continue;
                }
                let changed = crate::update_row!(
                    conn,
                    data_points,
                    PointRow,
                    row.id,
                    row.version,
                    (columns, crate::updated_columns!(data_points, author.actor))
                )?
                .ok_or_else(|| ApiError::Internal("a data point changed under its lock".into()))?;
                let old = DataPoint::from((*row).clone());
                let new = DataPoint::from(changed);
                author.record(conn, POINT, new.id.0, Some(&old), Some(&new))?;
                updated += 1;
            }
        }
    }
    let signals_added = if created + updated > 0 {
        record_points_changed(conn, author, before, &old_chart)?
    } else {
        Vec::new()
    };
    Ok(PointsUpserted {
        measure_id: Id(id),
        created: Count::clamped(created),
        updated: Count::clamped(updated),
        unchanged: Count::clamped(unchanged),
        signals_added,
    })
}

/// Delete the data point of one period
#[utoipa::path(
    tag = "measures",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "The measure's id"),
        ("period" = LocalDate, Path, description = "The first day of the point's period")
    ),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/measures/{id}/points/{period}")]
pub async fn delete_point(
    ctx: Ctx,
    path: web::Path<(i32, String)>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Change)?;
    ctx.require_if_match()?;
    let (id, period) = path.into_inner();
    let period = LocalDate::parse(&period).ok_or_else(|| {
        ApiError::NotFound(format!(
            "{period:?} is not a period (a date such as 2019-05-01)"
        ))
    })?;
    let if_match = ctx.conditions.if_match.clone();
    let private = ctx.caller.sees_private_fields();
    ctx.write(granted, move |conn, author| {
        let before = found(Measures::find(conn, id)?, Measures::NAME, id)?;
        check_if_match_version(if_match.as_ref(), before.version(), private)?;
        let points = points_of(conn, id)?;
        let old_chart = chart_of(&settings_of(&before), &points, before.rules)?;
        let Some(row) = points.into_iter().find(|p| p.period == period.naive()) else {
            return Err(ApiError::NotFound(format!(
                "measure {id} has no point for the period {period}"
            )));
        };
        diesel::delete(data_points::table.find(row.id)).execute(conn)?;
        let point = DataPoint::from(row);
        author.record(conn, POINT, point.id.0, Some(&point), None)?;
        record_points_changed(conn, author, &before, &old_chart)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List a measure's data points, in period order
#[utoipa::path(
    tag = "measures",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The measure's id")),
    responses((status = 200, description = "Every point of the measure", body = PointList), ReadErrors)
)]
#[get("/measures/{id}/points")]
pub async fn list_points(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Read)?;
    let id = id.into_inner();
    let caller = ctx.caller.clone();
    ctx.read(granted, false, true, None, move |conn| {
        let exists = crate::on_backend!(conn, |c| measures::table
            .find(id)
            .select(measures::id)
            .first::<i32>(c)
            .optional())?;
        if exists.is_none() {
            return Err(ApiError::not_found(Measures::NAME, id));
        }
        let items = points_of(conn, id)?
            .into_iter()
            .map(|row| DataPoint::from(row).visible_to(&caller))
            .collect();
        Rendered::json(&PointList {
            measure_id: Id(id),
            items,
        })
    })
    .await
}

/// The measure and its chart under `rules` (the measure's own when `None`).
fn run_chart_of(
    conn: &mut DbConnection,
    id: i32,
    rules: Option<RuleSet>,
) -> Result<(Measure, RunChart), ApiError> {
    let row = crate::on_backend!(conn, |c| measures::table
        .find(id)
        .select(MeasureRow::as_select())
        .first::<MeasureRow>(c)
        .optional())?
    .ok_or_else(|| ApiError::not_found(Measures::NAME, id))?;
    let points = points_of(conn, id)?;
    let measure = measure_of(row, &points)?;
    let chart = chart_of(
        &settings_of(&measure),
        &points,
        rules.unwrap_or(measure.rules),
    )?;
    Ok((measure, chart))
}

/// Read a measure's run chart
///
/// Per phase (a new one at each re-baseline): the centre line (the baseline's median, frozen),
/// the counts (points, useful points — those not on the median —, runs, crossings, the longest
/// run), the limits the rules used, the signals (each with its rule, periods, direction and
/// whether it is `favourable`, from the measure's `improvement_direction`) and each point's
/// side of the median. Fewer than 10 useful points is `insufficient_data`, with no signals.
/// IHI: a shift is 6 or more useful points on one side; a trend 5 or more points going one way,
/// a repeated value neither making nor breaking it; too few or too many runs by the published
/// table. Anhøj: a run longer than round(log2 n) + 3; fewer crossings than the 5 % quantile of
/// Binomial(n − 1, ½). An astronomical point is only ever a person's flag on the point.
#[utoipa::path(
    tag = "measures",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The measure's id"), RunChartQuery),
    responses((status = 200, description = "The run chart", body = MeasureRunChart), ReadErrors)
)]
#[get("/measures/{id}/run-chart")]
pub async fn run_chart(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Read)?;
    let id = id.into_inner();
    let query = query.values()?;
    let asked: RunChartQuery = query.get()?;
    ctx.read(granted, false, true, Some(&query), move |conn| {
        let (measure, chart) = run_chart_of(conn, id, asked.rules)?;
        Rendered::json(&MeasureRunChart {
            measure_id: measure.id,
            name: measure.name,
            unit: measure.unit,
            data_type: measure.data_type,
            chart,
        })
    })
    .await
}

/// The media type of the chart's picture.
pub const SVG: &str = "image/svg+xml";

/// An SVG document, as text.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, max_length = 5000000)]
pub struct SvgText(#[allow(dead_code)] String);

/// Draw a measure's run chart (SVG)
///
/// 800×400, for slides and the page: the points and their line, the median (solid over the
/// baseline, dashed past it), the target, signals as orange triangles, notes and PDSA cycles as
/// labels, excluded points hollow, and a dashed line at each re-baseline. Readable by a screen
/// reader: `role="img"` with a `<title>` (the measure) and a `<desc>` (the chart in words).
#[utoipa::path(
    tag = "measures",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The measure's id"), RunChartQuery),
    responses(
        (status = 200, description = "The run chart as an SVG picture", content_type = "image/svg+xml", body = SvgText),
        ReadErrors
    )
)]
#[get("/measures/{id}/run-chart.svg")]
pub async fn run_chart_svg(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Measures>(Access::Read)?;
    let id = id.into_inner();
    let query = query.values()?;
    let asked: RunChartQuery = query.get()?;
    ctx.read(granted, false, true, Some(&query), move |conn| {
        let (measure, mut chart) = run_chart_of(conn, id, asked.rules)?;
        // People know a cycle by its number within the initiative ("PDSA 2"), not its id.
        let numbers: HashMap<i32, i32> = pdsa_cycles::table
            .filter(pdsa_cycles::initiative_id.eq(measure.initiative_id.0))
            .select((pdsa_cycles::id, pdsa_cycles::number))
            .load::<(i32, i32)>(conn)?
            .into_iter()
            .collect();
        for point in chart.phases.iter_mut().flat_map(|p| p.points.iter_mut()) {
            point.pdsa_cycle_id = point.pdsa_cycle_id.and_then(|c| numbers.get(&c).copied());
        }
        let unit = measure.unit.as_ref().map_or("", |u| u.as_str());
        let mut meta = ChartMeta::new(measure.name.as_str(), unit);
        meta.id_prefix = format!("run-chart-{id}");
        let svg = chart::render_svg(&chart, &meta)
            .map_err(|e| ApiError::Internal(format!("the run chart of measure {id}: {e}")))?;
        Ok(Rendered::text(svg, SVG))
    })
    .await
}

/// Data point `id`, if there is one (the change feed shows it).
pub fn find_point(conn: &mut DbConnection, id: i32) -> Result<Option<DataPoint>, ApiError> {
    Ok(data_points::table
        .find(id)
        .select(PointRow::as_select())
        .first::<PointRow>(conn)
        .optional()?
        .map(DataPoint::from))
}

/// An answer for the report: a measure's run chart under its own rules.
pub fn chart_for_report(conn: &mut DbConnection, id: i32) -> Result<(Measure, RunChart), ApiError> {
    run_chart_of(conn, id, None)
}

/// Every measure of an initiative, by id (for the report).
pub fn of_initiative(conn: &mut DbConnection, initiative: i32) -> Result<Vec<i32>, ApiError> {
    Ok(measures::table
        .filter(measures::initiative_id.eq(initiative))
        .order(measures::id)
        .select(measures::id)
        .limit(MEASURES_MAX as i64)
        .load::<i32>(conn)?)
}
