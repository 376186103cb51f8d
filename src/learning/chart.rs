//! The run chart as an SVG picture, for slides and the page.
//!
//! Drawn with plotters' SVG backend into a string. plotters is built without a font feature,
//! so it only estimates text extents and writes `<text>` elements for the viewer to set: no
//! font is read, and rendering works on a machine with no fonts installed. The plotters output
//! is then made readable by a screen reader: `role="img"`, `aria-labelledby`, a `<title>` (the
//! measure's name) and a `<desc>` (the chart in words, from [`describe`]) go first in the root
//! `<svg>`.
//!
//! What it shows: each point joined by a line within its phase; the median, solid over its
//! baseline and dashed where it is extended; the target; points in a signal as orange
//! triangles (shape and colour, so that the signal is not told by colour alone); a marker and
//! a short label on points with a note or a PDSA cycle; excluded points hollow and grey; and
//! a dashed vertical line where a phase starts.

use chrono::NaiveDate;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::learning::runchart::{
    period_from_number, period_label, period_number, Direction, Frequency, ImprovementDirection,
    Limits, PhaseResult, Rule, RuleSet, RunChart, Signal, Status, MIN_USEFUL_POINTS,
};

/// What the picture needs besides the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartMeta {
    /// The measure's name: the title.
    pub title: String,
    /// The unit of the values, for the vertical axis (e.g. "falls per 1,000 bed-days").
    pub unit: String,
    pub width: u32,
    pub height: u32,
    /// Prefix of the `id`s of `<title>` and `<desc>`, so that several charts can sit in one
    /// page; only ASCII letters, digits, `-` and `_` are kept.
    pub id_prefix: String,
}

impl ChartMeta {
    /// 800 × 400, the size the chart is designed for.
    pub fn new(title: impl Into<String>, unit: impl Into<String>) -> Self {
        ChartMeta {
            title: title.into(),
            unit: unit.into(),
            width: 800,
            height: 400,
            id_prefix: "run-chart".into(),
        }
    }
}

/// Why no picture could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error(
        "a chart is from {MIN_WIDTH}×{MIN_HEIGHT} to {MAX_SIDE}×{MAX_SIDE} pixels, not {0}×{1}"
    )]
    Size(u32, u32),
    #[error("the chart could not be drawn: {0}")]
    Draw(String),
}

const MIN_WIDTH: u32 = 320;
const MIN_HEIGHT: u32 = 200;
/// Beyond this the pixel arithmetic (in i32) is no longer safe, and no slide needs more.
const MAX_SIDE: u32 = 10_000;

const DATA: RGBColor = RGBColor(31, 95, 168);
const SIGNAL: RGBColor = RGBColor(230, 97, 0);
const MEDIAN: RGBColor = RGBColor(55, 55, 55);
const TARGET: RGBColor = RGBColor(27, 127, 59);
const NOTE: RGBColor = RGBColor(94, 60, 153);
const MUTED: RGBColor = RGBColor(120, 120, 120);
const TEXT: RGBColor = RGBColor(30, 30, 30);

/// Pixels above the data for the label band: one row, or three with notes.
const BAND: i32 = 22;
const BAND_WITH_NOTES: i32 = 50;

/// The chart as an SVG document.
pub fn render_svg(chart: &RunChart, meta: &ChartMeta) -> Result<String, ChartError> {
    let fits = |side: u32, min: u32| (min..=MAX_SIDE).contains(&side);
    if !fits(meta.width, MIN_WIDTH) || !fits(meta.height, MIN_HEIGHT) {
        return Err(ChartError::Size(meta.width, meta.height));
    }
    if !drawable_range(chart) {
        return Err(ChartError::Draw("the values are too large to draw".into()));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (meta.width, meta.height)).into_drawing_area();
        draw(&root, chart, meta).map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    accessible(&svg, meta, &describe(chart, meta))
}

/// Whether the vertical range can be computed in f64: the analysis accepts any finite value,
/// but a range spanning most of f64 overflows.
fn drawable_range(chart: &RunChart) -> bool {
    let values = chart
        .phases
        .iter()
        .flat_map(|p| p.points.iter().map(|q| q.value).chain(p.centre))
        .chain(chart.target);
    values.map(f64::abs).all(|v| v < 1e300)
}

/// A text style of `px` pixels: plotters divides the size it is given by 1.24.
fn font(px: f64, color: RGBColor) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(&color)
}

/// Text from people made safe for a label: no characters XML forbids, one line, at most
/// `max` characters (with an ellipsis when cut).
fn label_text(text: &str, max: usize) -> String {
    let clean: String = xml_safe(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if clean.chars().count() <= max {
        clean
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Drops the characters XML 1.0 does not allow (most control characters, U+FFFE, U+FFFF).
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

/// A number as people read it on a chart: no trailing zeros, at most 3 decimals.
pub fn format_number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// The short label of an annotated point: its PDSA cycle, else the start of its note.
fn annotation(note: Option<&str>, pdsa_cycle_id: Option<i32>) -> Option<String> {
    match (pdsa_cycle_id, note) {
        (Some(id), _) => Some(format!("PDSA {id}")),
        (None, Some(note)) if !note.trim().is_empty() => Some(label_text(note, 18)),
        _ => None,
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;
type Cartesian = Cartesian2d<RangedCoordf64, RangedCoordf64>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian>;

/// The width of `text` set at `px` pixels, estimated: plotters cannot measure without fonts,
/// and the viewer's sans-serif (DejaVu Sans, Liberation Sans, Arial) averages about 0.53 em a
/// character.
fn text_width(text: &str, px: f64) -> i32 {
    (text.chars().count() as f64 * px * 0.53).ceil() as i32
}

fn draw(root: &Area<'_>, chart: &RunChart, meta: &ChartMeta) -> DrawResult {
    root.fill(&WHITE)?;
    let (width, height) = (meta.width as i32, meta.height as i32);
    let title_chars = usize::try_from((width - 28) / 10).unwrap_or(20);
    root.draw(&Text::new(
        label_text(&meta.title, title_chars),
        (14, 10),
        font(17.0, TEXT).pos(Pos::new(HPos::Left, VPos::Top)),
    ))?;

    let frequency = chart.frequency;
    let all_points = || chart.phases.iter().flat_map(|p| p.points.iter());
    let Some(first) = all_points().map(|p| p.period).min() else {
        root.draw(&Text::new(
            "No data yet",
            (width / 2, height / 2),
            font(15.0, MUTED).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        return Ok(());
    };
    let base = period_number(frequency, first);
    let x_of = |period: NaiveDate| (period_number(frequency, period) - base) as f64;
    let last = all_points().map(|p| p.period).max().unwrap_or(first);
    let x_max = x_of(last);

    let annotated = all_points().any(|p| annotation(p.note.as_deref(), p.pdsa_cycle_id).is_some());
    let legend = Legend {
        target: chart.target,
        annotated,
        excluded: all_points().any(|p| p.excluded),
        phases: chart.phases.len() > 1,
    };
    let legend_bottom = draw_legend(root, &legend, width)?;

    // The vertical range: every value, centre line and the target, with room above for labels.
    let values = all_points()
        .map(|p| p.value)
        .chain(chart.phases.iter().filter_map(|p| p.centre))
        .chain(chart.target);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    // Above the data, a band for the labels (median and phase, then two rows of notes), so
    // that no label ever hides a point.
    let band_px = if annotated { BAND_WITH_NOTES } else { BAND };
    let plot_px = f64::from((height - legend_bottom - 8 - 6 - 42).max(100));
    let band = (f64::from(band_px) / plot_px).min(0.5);
    let y_lo = lo - span * 0.08;
    let y_hi = y_lo + (hi + span * 0.04 - y_lo) / (1.0 - band);

    let plot = root.margin(legend_bottom + 8, 6, 8, 18);
    let mut cc = ChartBuilder::on(&plot)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(-0.5..x_max + 0.5, y_lo..y_hi)?;

    let x_label = |x: &f64| {
        let n = x.round();
        if (x - n).abs() > 1e-6 || n < 0.0 || n > x_max {
            return String::new();
        }
        period_from_number(frequency, base + n as i64)
            .map(|d| period_label(frequency, d))
            .unwrap_or_default()
    };
    let x_desc = match frequency {
        Frequency::Week => "Week starting",
        Frequency::Month => "Month",
        Frequency::Quarter => "Quarter",
    };
    let unit = label_text(&meta.unit, 48);
    cc.configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_labels(
            usize::try_from(width / 110)
                .unwrap_or(6)
                .min(x_max as usize + 1),
        )
        .y_labels(6)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y: &f64| format_number(*y))
        .x_desc(x_desc)
        .y_desc(if unit.is_empty() {
            "Value".to_string()
        } else {
            unit
        })
        .label_style(font(12.0, TEXT))
        .axis_desc_style(font(13.0, TEXT))
        .axis_style(MUTED)
        .draw()?;

    // Markers shrink, then go, as periods crowd: a ten-year weekly chart is read by its line.
    let plot_width = f64::from(cc.plotting_area().dim_in_pixel().0);
    let px_per_period = plot_width / (x_max + 1.0);
    let dot = if px_per_period >= 12.0 {
        4
    } else if px_per_period >= 5.0 {
        2
    } else {
        0
    };
    let triangle = if px_per_period >= 12.0 { 8 } else { 5 };
    let line = if px_per_period >= 5.0 { 2 } else { 1 };

    // Phase changes: a dashed vertical line half a period before the phase's first period,
    // named by its reason.
    for phase in chart.phases.iter().filter(|p| p.index > 0) {
        let Some(start) = phase.start_period.or(phase.first_period) else {
            continue;
        };
        let x = x_of(start) - 0.5;
        if x < -0.5 || x > x_max + 0.5 {
            continue;
        }
        cc.draw_series(DashedLineSeries::new(
            [(x, y_lo), (x, y_hi)],
            6,
            4,
            MUTED.stroke_width(1),
        ))?;
    }

    if let Some(target) = chart.target {
        cc.draw_series(LineSeries::new(
            [(-0.5, target), (x_max + 0.5, target)],
            TARGET.stroke_width(2),
        ))?;
    }

    for phase in &chart.phases {
        draw_median(&mut cc, phase, &x_of)?;
    }

    for phase in &chart.phases {
        let counted: Vec<(f64, f64)> = phase
            .points
            .iter()
            .filter(|p| !p.excluded)
            .map(|p| (x_of(p.period), p.value))
            .collect();
        cc.draw_series(LineSeries::new(counted, DATA.stroke_width(line)))?;
    }

    // Signals last among the points, so that a neighbour never covers one.
    let (plain, signalled): (Vec<_>, Vec<_>) =
        all_points().partition(|p| p.excluded || p.signal_rules.is_empty());
    for point in plain {
        let at = (x_of(point.period), point.value);
        if point.excluded {
            cc.draw_series(std::iter::once(Circle::new(at, 4, MUTED.stroke_width(2))))?;
        } else if dot > 0 {
            cc.draw_series(std::iter::once(Circle::new(at, dot, DATA.filled())))?;
        }
    }
    for point in signalled {
        let at = (x_of(point.period), point.value);
        cc.draw_series(std::iter::once(TriangleMarker::new(
            at,
            triangle,
            SIGNAL.filled(),
        )))?;
    }

    // The label band: per phase, its median (and reason) on the first row from where the
    // phase starts; notes on the two rows below, with a dotted line down to their point.
    let plot_height = f64::from(cc.plotting_area().dim_in_pixel().1);
    let y_at_row = |row_px: i32| y_hi - f64::from(row_px) / plot_height * (y_hi - y_lo);
    let phase_x: Vec<f64> = chart
        .phases
        .iter()
        .map(|p| {
            p.start_period
                .or(p.first_period)
                .map_or(-0.5, |d| x_of(d) - 0.5)
                .max(-0.5)
        })
        .collect();
    for (i, phase) in chart.phases.iter().enumerate() {
        let Some(centre) = phase.centre else {
            continue;
        };
        let mut text = format!("median {}", format_number(centre));
        if phase.status == Status::InsufficientData {
            text.push_str(&format!(
                " · too few points for the rules ({} useful, {MIN_USEFUL_POINTS} needed)",
                phase.counts.useful_points
            ));
        }
        if phase.index > 0 {
            let reason = phase.reason.as_deref().unwrap_or("").trim();
            text = if reason.is_empty() {
                format!("Phase {} · {text}", phase.index + 1)
            } else {
                format!(
                    "Phase {}: {} · {text}",
                    phase.index + 1,
                    label_text(reason, 40)
                )
            };
        }
        // No further than the next phase's line.
        let room = phase_x.get(i + 1).unwrap_or(&(x_max + 0.5)) - phase_x[i];
        let room_px = room * px_per_period - 10.0;
        let max_chars = (room_px / (11.0 * 0.53)).floor().max(0.0) as usize;
        if max_chars >= 8 {
            let text = label_text(&text, max_chars);
            let at = (phase_x[i], y_hi);
            cc.draw_series(std::iter::once(
                EmptyElement::at(at)
                    + Text::new(
                        text,
                        (5, 4),
                        font(11.0, MEDIAN).pos(Pos::new(HPos::Left, VPos::Top)),
                    ),
            ))?;
        }
    }
    for (i, point) in all_points().enumerate() {
        let Some(text) = annotation(point.note.as_deref(), point.pdsa_cycle_id) else {
            continue;
        };
        let x = x_of(point.period);
        // Alternate two rows so that labels of neighbouring points overlap less.
        let row = if i % 2 == 0 { 24 } else { 40 };
        cc.draw_series(DashedLineSeries::new(
            [(x, point.value), (x, y_at_row(row))],
            2,
            3,
            NOTE.stroke_width(1),
        ))?;
        cc.draw_series(std::iter::once(
            EmptyElement::at((x, y_at_row(row)))
                + Rectangle::new([(-3, -3), (3, 3)], NOTE.filled())
                + Text::new(
                    text,
                    (6, 0),
                    font(11.0, NOTE).pos(Pos::new(HPos::Left, VPos::Center)),
                ),
        ))?;
    }
    Ok(())
}

fn draw_median(
    cc: &mut Chart<'_, '_>,
    phase: &PhaseResult,
    x_of: &dyn Fn(NaiveDate) -> f64,
) -> DrawResult {
    let (Some(centre), Some(first), Some(last)) =
        (phase.centre, phase.first_period, phase.last_period)
    else {
        return Ok(());
    };
    let (first, last) = (x_of(first), x_of(last));
    let b_first = phase
        .baseline_periods
        .first()
        .map(|&p| x_of(p))
        .unwrap_or(first);
    let b_last = phase
        .baseline_periods
        .last()
        .map(|&p| x_of(p))
        .unwrap_or(last);
    cc.draw_series(LineSeries::new(
        [(b_first, centre), (b_last, centre)],
        MEDIAN.stroke_width(2),
    ))?;
    for (from, to) in [(first, b_first), (b_last, last)] {
        if to > from {
            cc.draw_series(DashedLineSeries::new(
                [(from, centre), (to, centre)],
                8,
                5,
                MEDIAN.stroke_width(2),
            ))?;
        }
    }
    Ok(())
}

/// What the key lists besides the measure, the median and signals.
struct Legend {
    target: Option<f64>,
    annotated: bool,
    excluded: bool,
    phases: bool,
}

/// The key, under the title and outside the plot so that it never hides a point, in as many
/// rows as the width needs. Answers the bottom of the last row.
fn draw_legend(
    root: &Area<'_>,
    legend: &Legend,
    width: i32,
) -> Result<i32, DrawingAreaErrorKind<std::io::Error>> {
    #[derive(Clone, Copy)]
    enum Swatch {
        Measure,
        Median,
        Extended,
        Target,
        Signal,
        Note,
        Excluded,
        Phase,
    }
    let mut items = vec![
        (Swatch::Measure, "Measure".to_string()),
        (Swatch::Median, "Median".to_string()),
        (Swatch::Extended, "Median extended".to_string()),
    ];
    if let Some(target) = legend.target {
        items.push((Swatch::Target, format!("Target {}", format_number(target))));
    }
    items.push((Swatch::Signal, "Signal".to_string()));
    if legend.annotated {
        items.push((Swatch::Note, "Note or PDSA".to_string()));
    }
    if legend.excluded {
        items.push((Swatch::Excluded, "Excluded".to_string()));
    }
    if legend.phases {
        items.push((Swatch::Phase, "Phase change".to_string()));
    }

    let (mut x, mut y) = (16, 42);
    for (swatch, text) in items {
        let item_width = 22 + text_width(&text, 12.0) + 10;
        if x + item_width > width - 8 && x > 16 {
            x = 16;
            y += 20;
        }
        match swatch {
            Swatch::Measure => {
                root.draw(&PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    DATA.stroke_width(2),
                ))?;
                root.draw(&Circle::new((x + 9, y), 4, DATA.filled()))?;
            }
            Swatch::Median => {
                root.draw(&PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    MEDIAN.stroke_width(2),
                ))?;
            }
            Swatch::Extended => {
                for dash in 0..3 {
                    let from = x + dash * 7;
                    root.draw(&PathElement::new(
                        vec![(from, y), (from + 4, y)],
                        MEDIAN.stroke_width(2),
                    ))?;
                }
            }
            Swatch::Target => {
                root.draw(&PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    TARGET.stroke_width(2),
                ))?;
            }
            Swatch::Signal => {
                root.draw(&TriangleMarker::new((x + 9, y), 8, SIGNAL.filled()))?;
            }
            Swatch::Note => {
                root.draw(&Rectangle::new(
                    [(x + 6, y - 3), (x + 12, y + 3)],
                    NOTE.filled(),
                ))?;
            }
            Swatch::Excluded => {
                root.draw(&Circle::new((x + 9, y), 4, MUTED.stroke_width(2)))?;
            }
            Swatch::Phase => {
                for dash in 0..2 {
                    let from = y - 8 + dash * 10;
                    root.draw(&PathElement::new(
                        vec![(x + 9, from), (x + 9, from + 6)],
                        MUTED.stroke_width(1),
                    ))?;
                }
            }
        }
        root.draw(&Text::new(
            text.clone(),
            (x + 22, y),
            font(12.0, TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += item_width;
    }
    Ok(y + 10)
}

/// The chart in plain words, for `<desc>` (and wherever the picture needs a text alternative).
pub fn describe(chart: &RunChart, meta: &ChartMeta) -> String {
    let f = chart.frequency;
    let label = |d: NaiveDate| period_label(f, d);
    let mut out = String::new();
    let title = label_text(&meta.title, 200);
    let unit = label_text(&meta.unit, 100);
    let every = match f {
        Frequency::Week => "week",
        Frequency::Month => "month",
        Frequency::Quarter => "quarter",
    };
    out.push_str(&format!("Run chart of {title}"));
    if !unit.is_empty() {
        out.push_str(&format!(" ({unit})"));
    }
    out.push_str(&format!(", one point per {every}."));

    let points: Vec<_> = chart.phases.iter().flat_map(|p| p.points.iter()).collect();
    let excluded = points.iter().filter(|p| p.excluded).count();
    match (points.first(), points.last()) {
        (Some(first), Some(last)) => {
            out.push_str(&format!(
                " {} points from {} to {}",
                points.len(),
                label(first.period),
                label(last.period)
            ));
            if excluded > 0 {
                out.push_str(&format!(", {excluded} of them excluded"));
            }
            out.push('.');
        }
        _ => out.push_str(" No points yet."),
    }
    out.push_str(match chart.improvement_direction {
        ImprovementDirection::Increase => " Higher is better.",
        ImprovementDirection::Decrease => " Lower is better.",
    });
    if let Some(target) = chart.target {
        out.push_str(&format!(" Target: {}.", format_number(target)));
    }
    out.push_str(match chart.rule_set {
        RuleSet::Ihi => " Read with the IHI run-chart rules.",
        RuleSet::Anhoej => " Read with the Anhøj run-chart rules.",
    });

    for phase in &chart.phases {
        out.push(' ');
        out.push_str(&describe_phase(phase, chart.phases.len(), &label));
    }

    let notes: Vec<String> = points
        .iter()
        .filter_map(|p| {
            let note = p
                .note
                .as_deref()
                .map(|n| label_text(n, 200))
                .filter(|n| !n.is_empty());
            let text = match (p.pdsa_cycle_id, note) {
                (Some(id), Some(note)) => format!("PDSA cycle {id}, {note}"),
                (Some(id), None) => format!("PDSA cycle {id}"),
                (None, Some(note)) => note,
                (None, None) => return None,
            };
            let excluded = if p.excluded { " (excluded)" } else { "" };
            Some(format!("{}: {text}{excluded}", label(p.period)))
        })
        .collect();
    if !notes.is_empty() {
        out.push_str(&format!(" Notes: {}.", notes.join("; ")));
    }
    out
}

fn describe_phase(
    phase: &PhaseResult,
    phases: usize,
    label: &dyn Fn(NaiveDate) -> String,
) -> String {
    let mut out = String::new();
    if phases > 1 {
        out.push_str(&format!("Phase {}", phase.index + 1));
        if let Some(start) = phase.start_period {
            out.push_str(&format!(", from {}", label(start)));
        }
        if let Some(reason) = phase.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            out.push_str(&format!(" ({})", label_text(reason, 200)));
        }
        out.push_str(": ");
    }
    match (
        phase.centre,
        phase.baseline_periods.first(),
        phase.baseline_periods.last(),
    ) {
        (Some(centre), Some(&from), Some(&to)) => out.push_str(&format!(
            "{} {}, from the baseline {} to {}. ",
            if phases > 1 { "median" } else { "Median" },
            format_number(centre),
            label(from),
            label(to)
        )),
        _ if phases > 1 => out.push_str("no median, as it has no points to take it from. "),
        _ => out.push_str("No median, as there are no points to take it from. "),
    }
    let counts = &phase.counts;
    if phase.status == Status::InsufficientData {
        out.push_str(&format!(
            "Too few data to apply the rules: {} useful points (not on the median), {} needed, and a baseline of at least 10 points.",
            counts.useful_points, MIN_USEFUL_POINTS
        ));
        return out;
    }
    out.push_str(&format!(
        "{} useful points, {} runs, longest run {}.",
        counts.useful_points, counts.runs, counts.longest_run
    ));
    if phase.signals.is_empty() {
        out.push_str(" No signals.");
    } else {
        let described: Vec<String> = phase
            .signals
            .iter()
            .map(|s| describe_signal(s, phase, label))
            .collect();
        out.push_str(&format!(" Signals: {}.", described.join("; ")));
    }
    out
}

fn describe_signal(s: &Signal, phase: &PhaseResult, label: &dyn Fn(NaiveDate) -> String) -> String {
    let (from, to) = (label(s.from_period), label(s.to_period));
    let marked = phase
        .points
        .iter()
        .filter(|p| p.period >= s.from_period && p.period <= s.to_period)
        .filter(|p| p.signal_rules.contains(&s.rule))
        .count();
    let side = match s.direction {
        Some(Direction::Above) => "above the median",
        Some(Direction::Below) => "below the median",
        Some(Direction::Up) => "going up",
        Some(Direction::Down) => "going down",
        None => "on the median",
    };
    let verdict = match s.favourable {
        Some(true) => " (favourable)",
        Some(false) => " (unfavourable)",
        None => "",
    };
    let runs = phase.counts.runs;
    let crossings = phase.counts.crossings;
    match (s.rule, phase.limits) {
        (Rule::Shift, _) => {
            format!("a shift of {marked} points {side} from {from} to {to}{verdict}")
        }
        (Rule::LongRun, _) => {
            format!("an unusually long run of {marked} points {side} from {from} to {to}{verdict}")
        }
        (Rule::Trend, _) => format!("a trend, values {side} from {from} to {to}{verdict}"),
        (
            Rule::TooFewRuns,
            Limits::Ihi {
                runs_lower: Some(lower),
                ..
            },
        ) => {
            format!("too few runs: {runs}, where fewer than {lower} is unusual")
        }
        (
            Rule::TooManyRuns,
            Limits::Ihi {
                runs_upper: Some(upper),
                ..
            },
        ) => {
            format!("too many runs: {runs}, where more than {upper} is unusual")
        }
        (
            Rule::FewCrossings,
            Limits::Anhoej {
                crossings_min: Some(min),
                ..
            },
        ) => {
            format!(
                "too few crossings of the median: {crossings}, where fewer than {min} is unusual"
            )
        }
        (Rule::TooFewRuns, _) => format!("too few runs: {runs}"),
        (Rule::TooManyRuns, _) => format!("too many runs: {runs}"),
        (Rule::FewCrossings, _) => format!("too few crossings of the median: {crossings}"),
        (Rule::Astronomical, _) => {
            let value = phase
                .points
                .iter()
                .find(|p| p.period == s.from_period)
                .map(|p| format!(", {}", format_number(p.value)))
                .unwrap_or_default();
            format!("an astronomical point in {from}{value}, {side}{verdict}")
        }
    }
}

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in xml_safe(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Puts `role="img"` and `aria-labelledby` on the root `<svg>`, and `<title>` and `<desc>`
/// first inside it.
fn accessible(svg: &str, meta: &ChartMeta, desc: &str) -> Result<String, ChartError> {
    let missing = || ChartError::Draw("plotters wrote no <svg> element".into());
    let open = svg.find("<svg").ok_or_else(missing)?;
    let close = open + svg[open..].find('>').ok_or_else(missing)?;
    let id: String = meta
        .id_prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let id = if id.is_empty() {
        "run-chart".to_string()
    } else {
        id
    };
    let mut out = String::with_capacity(svg.len() + desc.len() + 256);
    out.push_str(&svg[..close]);
    out.push_str(&format!(
        " role=\"img\" aria-labelledby=\"{id}-title {id}-desc\">\n<title id=\"{id}-title\">{}</title>\n<desc id=\"{id}-desc\">{}</desc>",
        escape(&meta.title),
        escape(desc)
    ));
    out.push_str(&svg[close + 1..]);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
