//! The report of an initiative: the items of SQUIRE 2.0 (Standards for QUality Improvement
//! Reporting Excellence) that the record can fill, in the guideline's order, as JSON or, with
//! `Accept: text/markdown`, as a Markdown draft to start a write-up from.
//!
//! What it fills: the title (item 1), the problem (4), the aims (6), the context (7: the
//! departments and the rounds that discussed it), the interventions and the team (8), the
//! measures with their operational definitions (10), how variation was read (11: the run-chart
//! rules, the baselines and re-baselines), the ethical determination (12), and the results over
//! time (13: the PDSA timeline with its decisions, the decisions of the rounds, and each
//! measure's signals). The rest of SQUIRE (the rationale, the interpretation, the limitations)
//! is for people to write.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::learning::initiatives::{self, Initiative, Initiatives};
use crate::learning::measures::{self, DataType, MeasureName, MeasureType, Unit};
use crate::learning::outcomes::{self, OutcomeKind};
use crate::learning::pdsa::{self, PdsaCycle};
use crate::learning::runchart::{period_label, PhaseResult, RuleSet, RunChart, Signal, Status};
use crate::platform::auth::{Caller, Visible};
use crate::platform::cache::Rendered;
use crate::platform::db::DbConnection;
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::fields::{Id, LocalDate, Timestamp};
use crate::platform::resource::{Access, Ctx};
use crate::platform::schema::{departments, rounds};
use crate::schedule::departments::DepartmentName;
use crate::schedule::rounds::{DepartmentSummary, Title as RoundTitle};

/// The most PDSA cycles (and change ideas) the report lists: the latest.
const CYCLES_MAX: usize = 1000;
/// The most steps of the timeline the report lists: the latest.
const TIMELINE_MAX: usize = 5000;

/// The media type of the Markdown report.
pub const MARKDOWN: &str = "text/markdown; charset=utf-8";

/// A round that discussed the initiative.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportRound {
    pub round_id: Id,
    pub title: Option<RoundTitle>,
    pub starts_at: Timestamp,
    pub purpose: initiatives::Purpose,
    pub note: Option<initiatives::LinkNote>,
}

/// Item 7: where the work happens.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportContext {
    #[schema(max_items = 20)]
    pub departments: Vec<DepartmentSummary>,
    /// By date.
    #[schema(max_items = 500)]
    pub rounds: Vec<ReportRound>,
}

/// Items 4 and 6: the problem and the aim.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportAims {
    pub problem_statement: Option<initiatives::ProblemStatement>,
    pub aim_statement: Option<initiatives::AimStatement>,
    pub aim_target: Option<initiatives::AimTarget>,
    pub aim_target_date: Option<LocalDate>,
    pub stage: initiatives::Stage,
    pub lhs_phase: initiatives::LhsPhase,
    pub status: initiatives::InitiativeStatus,
    pub progress_score: Option<initiatives::ProgressScore>,
}

/// Item 8: the changes tested and who did the work.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportInterventions {
    /// Each change idea once, in the order first tested.
    #[schema(max_items = 1000)]
    pub change_ideas: Vec<pdsa::ChangeIdea>,
    pub team: initiatives::TeamView,
}

/// A phase of a measure's run chart, in brief.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportPhase {
    #[schema(value_type = Option<String>, format = Date, max_length = 10)]
    pub start_period: Option<chrono::NaiveDate>,
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    pub status: Status,
    #[schema(minimum = -1e15, maximum = 1e15)]
    pub centre: Option<f64>,
    #[schema(minimum = 0, maximum = 5000, format = Int32)]
    pub useful_points: usize,
    #[schema(max_items = 10000)]
    pub signals: Vec<Signal>,
}

/// Items 10 and 11: a measure, its definition, and how its variation was read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportMeasure {
    pub id: Id,
    pub name: MeasureName,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub measure_type: MeasureType,
    pub operational_definition: Option<measures::OperationalDefinition>,
    pub data_type: DataType,
    pub unit: Option<Unit>,
    pub frequency: crate::learning::runchart::Frequency,
    pub improvement_direction: crate::learning::runchart::ImprovementDirection,
    pub target: Option<measures::Value>,
    pub rules: RuleSet,
    pub points: crate::platform::pagination::Count,
    #[schema(max_items = 21)]
    pub phases: Vec<ReportPhase>,
}

/// A step of the timeline (item 13a).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEvent {
    pub at: Timestamp,
    /// `round` (discussed at a round), `pdsa_cycle` (a cycle started), `pdsa_decision` (its
    /// Act decision), `decision` or `action_item` (an outcome of a round).
    #[schema(max_length = 20)]
    pub kind: &'static str,
    #[schema(max_length = 3000)]
    pub text: String,
    pub round_id: Option<Id>,
    pub pdsa_cycle_id: Option<Id>,
}

/// Item 13: the results over time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportResults {
    /// The PDSA cycles, by number.
    #[schema(max_items = 1000)]
    pub pdsa_cycles: Vec<PdsaCycle>,
    /// The timeline: rounds, cycles, decisions and action items, oldest first.
    #[schema(max_items = 5000)]
    pub timeline: Vec<TimelineEvent>,
}

/// The SQUIRE 2.0 items an initiative's record fills.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InitiativeReport {
    pub initiative_id: Id,
    /// The guideline: always `SQUIRE 2.0`.
    #[schema(max_length = 20)]
    pub guideline: &'static str,
    /// Item 1.
    pub title: crate::schedule::rounds::InitiativeTitle,
    /// Items 4 and 6.
    pub aims: ReportAims,
    /// Item 7.
    pub context: ReportContext,
    /// Item 8.
    pub interventions: ReportInterventions,
    /// Items 10 and 11.
    #[schema(max_items = 100)] // measures::MEASURES_MAX
    pub measures: Vec<ReportMeasure>,
    /// Item 12: quality improvement, or research under an IRB protocol.
    pub ethics: initiatives::Determination,
    /// Item 13.
    pub results: ReportResults,
}

/// A Markdown answer, as text.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, max_length = 5000000)]
pub struct MarkdownText(#[allow(dead_code)] String);

fn report_phase(phase: &PhaseResult) -> ReportPhase {
    ReportPhase {
        start_period: phase.start_period,
        reason: phase.reason.clone(),
        status: phase.status,
        centre: phase.centre,
        useful_points: phase.counts.useful_points,
        signals: phase.signals.clone(),
    }
}

/// The report of initiative `id`, as `caller` sees it.
pub fn report(
    conn: &mut DbConnection,
    id: i32,
    caller: &Caller,
) -> Result<InitiativeReport, ApiError> {
    let initiative: Initiative = initiatives::shown(conn, id, caller)?;
    let department_ids: Vec<i32> = initiative.department_ids.0.iter().map(|d| d.0).collect();
    let mut department_rows: Vec<(i32, String, Option<String>)> = departments::table
        .filter(departments::id.eq_any(&department_ids))
        .select((
            departments::id,
            departments::name,
            departments::abbreviation,
        ))
        .load(conn)?;
    department_rows.sort_by_key(|(id, _, _)| department_ids.iter().position(|d| d == id));
    let round_ids: Vec<i32> = initiative.rounds.0.iter().map(|l| l.round_id.0).collect();
    let round_rows: Vec<(i32, Option<String>, NaiveDateTime)> = rounds::table
        .filter(rounds::id.eq_any(&round_ids))
        .select((rounds::id, rounds::title, rounds::starts_at))
        .load(conn)?;
    let mut report_rounds: Vec<ReportRound> = initiative
        .rounds
        .0
        .iter()
        .filter_map(|link| {
            let (_, title, starts_at) =
                round_rows.iter().find(|(r, _, _)| *r == link.round_id.0)?;
            Some(ReportRound {
                round_id: link.round_id,
                title: title.clone().map(RoundTitle::stored),
                starts_at: Timestamp::from_naive(*starts_at),
                purpose: link.purpose,
                note: link.note.clone(),
            })
        })
        .collect();
    report_rounds.sort_by_key(|r| (r.starts_at, r.round_id));

    let cycles = pdsa::of_initiative(conn, id)?;
    let mut change_ideas: Vec<pdsa::ChangeIdea> = Vec::new();
    for cycle in &cycles {
        if !change_ideas
            .iter()
            .any(|c| c.as_str() == cycle.change_idea.as_str())
        {
            change_ideas.push(cycle.change_idea.clone());
        }
    }

    let mut report_measures = Vec::new();
    for measure_id in measures::of_initiative(conn, id)? {
        let (measure, chart): (measures::Measure, RunChart) =
            measures::chart_for_report(conn, measure_id)?;
        report_measures.push(ReportMeasure {
            id: measure.id,
            name: measure.name,
            measure_type: measure.measure_type,
            operational_definition: measure.operational_definition,
            data_type: measure.data_type,
            unit: measure.unit,
            frequency: measure.frequency,
            improvement_direction: measure.improvement_direction,
            target: measure.target,
            rules: chart.rule_set,
            points: measure.points,
            phases: chart.phases.iter().map(report_phase).collect(),
        });
    }

    let mut timeline: Vec<TimelineEvent> = Vec::new();
    for round in &report_rounds {
        let title = round
            .title
            .as_ref()
            .map_or("a round".to_owned(), |t| format!("\"{t}\""));
        let note = round
            .note
            .as_ref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        timeline.push(TimelineEvent {
            at: round.starts_at,
            kind: "round",
            text: format!("Discussed at {title} ({}){note}", round.purpose),
            round_id: Some(round.round_id),
            pdsa_cycle_id: None,
        });
    }
    for cycle in &cycles {
        let prediction = cycle
            .prediction
            .as_ref()
            .map(|p| format!("; predicted: {p}"))
            .unwrap_or_default();
        timeline.push(TimelineEvent {
            at: cycle.audit.created_at,
            kind: "pdsa_cycle",
            text: format!(
                "PDSA cycle {} started: {}{prediction}",
                cycle.number.get(),
                cycle.change_idea
            ),
            round_id: cycle.round_id,
            pdsa_cycle_id: Some(cycle.id),
        });
        if let (Some(decision), Some(at)) = (cycle.act_decision, cycle.decided_at) {
            let confirmed = cycle
                .prediction_confirmed
                .map(|c| format!(" (prediction confirmed: {c})"))
                .unwrap_or_default();
            timeline.push(TimelineEvent {
                at,
                kind: "pdsa_decision",
                text: format!("PDSA cycle {}: {decision}{confirmed}", cycle.number.get()),
                round_id: cycle.round_id,
                pdsa_cycle_id: Some(cycle.id),
            });
        }
    }
    for outcome in outcomes::of_initiative(conn, id)? {
        let outcome = outcomes::shown(outcome, caller);
        let (kind, text) = match outcome.kind {
            OutcomeKind::Decision => ("decision", format!("Decided: {}", outcome.text)),
            OutcomeKind::ActionItem => {
                let owner = outcome
                    .owner
                    .as_ref()
                    .map(|o| format!(" ({})", o.name))
                    .unwrap_or_default();
                let due = outcome
                    .due_date
                    .map(|d| format!(", due {d}"))
                    .unwrap_or_default();
                let status = outcome.status.map(|s| format!(", {s}")).unwrap_or_default();
                (
                    "action_item",
                    format!("Action item{owner}: {}{due}{status}", outcome.text),
                )
            }
            OutcomeKind::Information => ("information", format!("Noted: {}", outcome.text)),
        };
        timeline.push(TimelineEvent {
            at: outcome.audit.created_at,
            kind,
            text,
            round_id: Some(outcome.round_id),
            pdsa_cycle_id: outcome.pdsa_cycle_id,
        });
    }
    timeline.sort_by_key(|e| e.at);
    // The answer's lists are bounded (the document says so): the latest of each are kept.
    let skip = timeline.len().saturating_sub(TIMELINE_MAX);
    timeline.drain(..skip);
    let mut cycles = cycles;
    let skip = cycles.len().saturating_sub(CYCLES_MAX);
    cycles.drain(..skip);
    change_ideas.truncate(CYCLES_MAX);

    Ok(InitiativeReport {
        initiative_id: initiative.id,
        guideline: "SQUIRE 2.0",
        title: initiative.title.clone(),
        aims: ReportAims {
            problem_statement: initiative.problem_statement.clone(),
            aim_statement: initiative.aim_statement.clone(),
            aim_target: initiative.aim_target,
            aim_target_date: initiative.aim_target_date,
            stage: initiative.stage,
            lhs_phase: initiative.lhs_phase,
            status: initiative.status,
            progress_score: initiative.progress_score,
        },
        context: ReportContext {
            departments: department_rows
                .into_iter()
                .map(|(id, name, abbreviation)| DepartmentSummary {
                    id: Id(id),
                    name: DepartmentName::stored(name),
                    abbreviation: abbreviation.map(crate::platform::fields::Text::stored),
                })
                .collect(),
            rounds: report_rounds,
        },
        interventions: ReportInterventions {
            change_ideas,
            team: initiative.team.clone(),
        },
        measures: report_measures,
        ethics: initiative.determination,
        results: ReportResults {
            pdsa_cycles: cycles.into_iter().map(|c| c.visible_to(caller)).collect(),
            timeline,
        },
    })
}

/// A number as people read it in text.
fn number(value: f64) -> String {
    crate::learning::chart::format_number(value)
}

/// Markdown text from people: one line, with what would start a heading, a list or a table
/// escaped.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
    {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '<' | '>'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The report as a Markdown draft, section by section in SQUIRE's order.
pub fn markdown(report: &InitiativeReport) -> String {
    let mut out = String::new();
    let push = |out: &mut String, line: String| {
        out.push_str(&line);
        out.push('\n');
    };
    push(&mut out, format!("# {}", md(report.title.as_str())));
    push(
        &mut out,
        format!(
            "\nThe items of {} that the record of initiative {} fills (item numbers in \
             brackets).",
            report.guideline, report.initiative_id.0
        ),
    );

    push(&mut out, "\n## Problem and aims [4, 6]\n".to_owned());
    let aims = &report.aims;
    if let Some(problem) = &aims.problem_statement {
        push(&mut out, format!("**Problem.** {}\n", md(problem.as_str())));
    }
    if let Some(aim) = &aims.aim_statement {
        push(&mut out, format!("**Aim.** {}\n", md(aim.as_str())));
    }
    if let (Some(target), Some(date)) = (aims.aim_target, aims.aim_target_date) {
        push(
            &mut out,
            format!("**Target.** {} by {date}\n", number(target.get())),
        );
    }
    push(
        &mut out,
        format!(
            "**Stage.** {} ({} phase); status {}{}.",
            aims.stage,
            aims.lhs_phase,
            aims.status,
            aims.progress_score
                .map(|p| format!("; progress score {}", number(p.get())))
                .unwrap_or_default()
        ),
    );

    push(&mut out, "\n## Context [7]\n".to_owned());
    if report.context.departments.is_empty() {
        push(&mut out, "No department is named.".to_owned());
    } else {
        let names: Vec<String> = report
            .context
            .departments
            .iter()
            .map(|d| md(d.name.as_str()))
            .collect();
        push(&mut out, format!("Departments: {}.", names.join("; ")));
    }
    if !report.context.rounds.is_empty() {
        push(
            &mut out,
            "\nDiscussed at the Learning Health System Rounds:\n".to_owned(),
        );
        for round in &report.context.rounds {
            let title = round
                .title
                .as_ref()
                .map_or("(topic to be announced)".to_owned(), |t| md(t.as_str()));
            let note = round
                .note
                .as_ref()
                .map(|n| format!(" — {}", md(n.as_str())))
                .unwrap_or_default();
            push(
                &mut out,
                format!(
                    "- {}: {title} ({}){note}",
                    round.starts_at.0.format("%Y-%m-%d"),
                    round.purpose
                ),
            );
        }
    }

    push(&mut out, "\n## Interventions and team [8]\n".to_owned());
    if report.interventions.change_ideas.is_empty() {
        push(&mut out, "No change has been tested yet.".to_owned());
    } else {
        push(&mut out, "Changes tested:\n".to_owned());
        for idea in &report.interventions.change_ideas {
            push(&mut out, format!("- {}", md(idea.as_str())));
        }
    }
    if !report.interventions.team.0.is_empty() {
        push(&mut out, "\nTeam:\n".to_owned());
        for member in &report.interventions.team.0 {
            push(
                &mut out,
                format!("- {} ({})", md(member.name.as_str()), member.role),
            );
        }
    }

    push(&mut out, "\n## Measures and analysis [10, 11]\n".to_owned());
    if report.measures.is_empty() {
        push(&mut out, "No measure is defined yet.".to_owned());
    }
    for measure in &report.measures {
        push(
            &mut out,
            format!(
                "### {} ({} measure, {})\n",
                md(measure.name.as_str()),
                measure.measure_type,
                measure.data_type
            ),
        );
        if let Some(definition) = &measure.operational_definition {
            push(
                &mut out,
                format!("**Operational definition.** {}\n", md(definition.as_str())),
            );
        }
        let unit = measure
            .unit
            .as_ref()
            .map(|u| format!(", in {}", md(u.as_str())))
            .unwrap_or_default();
        let target = measure
            .target
            .map(|t| format!("; target {}", number(t.get())))
            .unwrap_or_default();
        let rules = match measure.rules {
            RuleSet::Ihi => "the IHI run-chart rules (Perla, Provost & Murray 2011)",
            RuleSet::Anhoej => "the Anhøj run-chart rules (Anhøj & Olesen 2014)",
        };
        push(
            &mut out,
            format!(
                "One point per {}{unit}, {} is better{target}; {} points, read against the \
                 median of a frozen baseline with {rules}.",
                measure.frequency.as_str(),
                if measure.improvement_direction
                    == crate::learning::runchart::ImprovementDirection::Increase
                {
                    "higher"
                } else {
                    "lower"
                },
                measure.points.get()
            ),
        );
        for (i, phase) in measure.phases.iter().enumerate() {
            let start = phase
                .start_period
                .map(|p| format!(" from {}", period_label(measure.frequency, p)))
                .unwrap_or_default();
            let reason = phase
                .reason
                .as_deref()
                .map(|r| format!(" ({})", md(r)))
                .unwrap_or_default();
            let centre = phase
                .centre
                .map(|c| format!("median {}", number(c)))
                .unwrap_or_else(|| "no median".to_owned());
            let verdict = match phase.status {
                Status::InsufficientData => format!(
                    "too few useful points to apply the rules ({})",
                    phase.useful_points
                ),
                Status::Ok if phase.signals.is_empty() => "no signal".to_owned(),
                Status::Ok => {
                    let signals: Vec<String> = phase
                        .signals
                        .iter()
                        .map(|s| {
                            let favourable = match s.favourable {
                                Some(true) => ", favourable",
                                Some(false) => ", unfavourable",
                                None => "",
                            };
                            format!(
                                "{} {} to {}{favourable}",
                                s.rule.as_str().replace('_', " "),
                                period_label(measure.frequency, s.from_period),
                                period_label(measure.frequency, s.to_period)
                            )
                        })
                        .collect();
                    format!("signals: {}", signals.join("; "))
                }
            };
            push(
                &mut out,
                format!("\n- Phase {}{start}{reason}: {centre}; {verdict}.", i + 1),
            );
        }
        push(&mut out, String::new());
    }

    push(&mut out, "\n## Ethical considerations [12]\n".to_owned());
    push(
        &mut out,
        match report.ethics {
            initiatives::Determination::QualityImprovement => {
                "Determined to be quality improvement.".to_owned()
            }
            initiatives::Determination::ResearchIrb => {
                "Determined to be research: an IRB protocol is required.".to_owned()
            }
            initiatives::Determination::Undetermined => {
                "Not yet determined (quality improvement or research).".to_owned()
            }
        },
    );

    push(&mut out, "\n## Results over time [13a]\n".to_owned());
    if report.results.timeline.is_empty() {
        push(&mut out, "Nothing recorded yet.".to_owned());
    }
    for event in &report.results.timeline {
        push(
            &mut out,
            format!("- {}: {}", event.at.0.format("%Y-%m-%d"), md(&event.text)),
        );
    }
    out
}

/// Whether the caller asked for Markdown (`Accept: text/markdown`, preferred to JSON).
fn wants_markdown(req: &HttpRequest) -> bool {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let quality = |wanted: &str| -> Option<f32> {
        accept.split(',').find_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next()?.to_ascii_lowercase();
            if media != wanted {
                return None;
            }
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some(q)
        })
    };
    match (quality("text/markdown"), quality("application/json")) {
        (Some(markdown), Some(json)) => markdown > 0.0 && markdown >= json,
        (Some(markdown), None) => markdown > 0.0,
        _ => false,
    }
}

/// Report an initiative along SQUIRE 2.0
///
/// The items of SQUIRE 2.0 that the record fills: aims (4, 6), context (7), interventions and
/// team (8), measures and how their variation was read (10, 11), the ethical determination
/// (12), and the results over time (13: the PDSA timeline, the rounds' decisions and action
/// items, each measure's signals). JSON, or a Markdown draft with `Accept: text/markdown`.
#[utoipa::path(
    tag = "initiatives",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "The initiative's id")),
    responses(
        (status = 200, description = "The report", content(
            (InitiativeReport = "application/json"),
            (MarkdownText = "text/markdown")
        )),
        ReadErrors
    )
)]
#[get("/initiatives/{id}/report")]
pub async fn initiative_report(
    ctx: Ctx,
    req: HttpRequest,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Initiatives>(Access::Read)?;
    let id = id.into_inner();
    let as_markdown = wants_markdown(&req);
    let caller = ctx.caller.clone();
    let mut response = ctx
        .read(granted, false, true, None, move |conn| {
            let report = report(conn, id, &caller)?;
            if as_markdown {
                Ok(Rendered::text(markdown(&report), MARKDOWN))
            } else {
                Rendered::json(&report)
            }
        })
        .await?;
    // One URL, two representations: caches keep them apart by `Accept`.
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_from_people_cannot_start_a_heading_or_a_table() {
        assert_eq!(
            md("# Not a heading | nor a cell"),
            "\\# Not a heading \\| nor a cell"
        );
        assert_eq!(md("two\nlines"), "two lines");
    }
}
