//! The demo's learning loop, loaded after the demo schedule (`app::demo`): one initiative from
//! the page's round "How can we use patient comments to improve care?" (April 25th, 2019),
//! its two PDSA cycles, a monthly measure with 24 points that shifts after the first cycle,
//! and what the two SWOT rounds (May 23rd and June 20th, 2019) decided.
//!
//! The page says what the rounds were about, not what they decided: the outcomes, the cycles,
//! the people's e-mail addresses (at `example.org`) and the numbers are made up to show the
//! loop, and the documentation says so. Loading twice adds nothing.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::learning::initiatives::{
    AimStatement, AimTarget, Determination, InitiativeInput, InitiativeStatus, Initiatives,
    ProblemStatement, ProgressScore, Purpose, Stage, Team, TeamMember, TeamRole, Under,
};
use crate::learning::measures::{
    self, BaselineRange, DataType, Denominator, MeasureInput, MeasureType, Measures, Multiplier,
    Numerator, Phases, PointBatch, PointInput, PointsInput, Value,
};
use crate::learning::outcomes::{ActionStatus, OutcomeInput, OutcomeKind, Outcomes, Owner};
use crate::learning::pdsa::{
    ActDecision, PdsaCycleInput, PdsaCycles, PdsaPlan, PdsaStage, PredictionConfirmed,
};
use crate::learning::runchart::{Frequency, ImprovementDirection, RuleSet};
use crate::platform::changelog::{self, Action, Change};
use crate::platform::db::DbConnection;
use crate::platform::error::ApiError;
use crate::platform::fields::{
    DepartmentRef, Email, InitiativeRef, LocalDate, Name, PdsaCycleRef, RoundRef, SpeakerRef, Text,
    Timestamp,
};
use crate::platform::resource::{Author, Keyed, New, Resource};
use crate::platform::schema::{initiative_rounds, initiatives, pdsa_cycles, round_outcomes};
use crate::schedule::rounds::DepartmentIds;
use crate::schedule::{departments, speakers};

/// Who the audit trail says wrote the demo data.
const DEMO: &str = "demo";
/// The initiative's title: how a second load knows the first one's.
pub const TITLE: &str = "Using patient comments to improve care";

/// What the load added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LearningReport {
    pub initiatives: usize,
    pub pdsa_cycles: usize,
    pub measures: usize,
    pub points: usize,
    pub outcomes: usize,
}

impl std::fmt::Display for LearningReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} initiative, {} PDSA cycles, {} measure with {} points, {} round outcomes",
            self.initiatives, self.pdsa_cycles, self.measures, self.points, self.outcomes
        )
    }
}

fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate, ApiError> {
    NaiveDate::from_ymd_opt(y, m, d)
        .ok_or_else(|| ApiError::Internal(format!("bad demo date {y}-{m}-{d}")))
}

/// Noon UTC on a day: when the demo says something was written.
fn at(y: i32, m: u32, d: u32) -> Result<NaiveDateTime, ApiError> {
    date(y, m, d)?
        .and_hms_opt(17, 0, 0)
        .ok_or_else(|| ApiError::Internal("bad demo time".to_owned()))
}

/// The round of the demo schedule on a day: the one starting at noon in New York.
fn round_on(conn: &mut DbConnection, y: i32, m: u32, d: u32) -> Result<i32, ApiError> {
    let noon = date(y, m, d)?
        .and_hms_opt(12, 0, 0)
        .ok_or_else(|| ApiError::Internal("bad demo time".to_owned()))?;
    let new_york = crate::platform::timezone::named_or_default(None);
    let starts_at = crate::platform::timezone::from_local(&new_york, noon)
        .ok_or_else(|| ApiError::Internal(format!("no noon in New York on {y}-{m}-{d}")))?;
    crate::platform::schema::rounds::table
        .filter(crate::platform::schema::rounds::starts_at.eq(starts_at.naive_utc()))
        .select(crate::platform::schema::rounds::id)
        .first::<i32>(conn)
        .map_err(|_| ApiError::Internal(format!("the demo has no round on {y}-{m}-{d}")))
}

fn log<T: serde::Serialize>(
    conn: &mut DbConnection,
    resource: &'static str,
    id: i32,
    record: &T,
) -> Result<(), ApiError> {
    changelog::record(
        conn,
        Change {
            resource,
            id,
            action: Action::Created,
            before: None,
            after: Some(serde_json::to_value(record)?),
            actor: Some(DEMO),
            request_id: None,
        },
    )?;
    Ok(())
}

fn text<const N: usize>(value: &str) -> Option<Text<N>> {
    Some(Text::stored(value))
}

fn person(name: &str, email: &str, speaker: Option<i32>) -> (Name<200>, Email, Option<SpeakerRef>) {
    (
        Name::stored(name),
        Email::stored(email),
        speaker.map(SpeakerRef),
    )
}

/// Loads the demo's learning loop in the caller's transaction (the demo's own).
pub fn seed(conn: &mut DbConnection) -> Result<LearningReport, ApiError> {
    let mut report = LearningReport::default();
    let loaded = initiatives::table
        .filter(initiatives::title.eq(TITLE))
        .select(initiatives::id)
        .first::<i32>(conn)
        .optional()?;
    if loaded.is_some() {
        return Ok(report);
    }
    let lagu = speakers::find_by_name(conn, "Tara Lagu")?;
    let muddasani = speakers::find_by_name(conn, "Sandeep Muddasani")?;
    let mut department_ids = Vec::new();
    for name in [
        "Division of Healthcare Quality",
        "Institute for Healthcare Delivery and Population Science",
    ] {
        if let Some(id) = departments::find_by_name(conn, name)? {
            department_ids.push(DepartmentRef(id));
        }
    }
    let comments_round = round_on(conn, 2019, 4, 25)?;
    let swot = round_on(conn, 2019, 5, 23)?;
    let swot_continued = round_on(conn, 2019, 6, 20)?;
    let july = round_on(conn, 2019, 7, 18)?;
    let september = round_on(conn, 2019, 9, 26)?;

    // The initiative, linked to the three rounds that took it up.
    let member = |name: &str, email: &str, speaker: Option<i32>, role: TeamRole| {
        let (name, email, speaker_id) = person(name, email, speaker);
        TeamMember {
            name,
            email,
            speaker_id,
            role,
        }
    };
    let input = InitiativeInput {
        title: Name::stored(TITLE),
        problem_statement: Some(ProblemStatement::stored(
            "Patients write comments on every experience survey, and they reach the units \
             months late, if at all: the comments that could improve care are read by no one \
             who can act on them.",
        )),
        aim_statement: Some(AimStatement::stored(
            "By June 30th, 2020, 80% of the patient comments received each month are answered \
             by the unit they are about within 14 days (from about a third in 2018-2019).",
        )),
        aim_target: AimTarget::new(80.0),
        aim_target_date: Some(LocalDate::from_naive(date(2020, 6, 30)?)),
        stage: Stage::Implementation,
        status: InitiativeStatus::Active,
        closing_note: None,
        progress_score: ProgressScore::new(3.5),
        determination: Determination::QualityImprovement,
        team: Team(vec![
            member("Tara Lagu", "tara.lagu@example.org", lagu, TeamRole::Lead),
            member(
                "Dr. Mihaela Stefan",
                "mihaela.stefan@example.org",
                None,
                TeamRole::Sponsor,
            ),
            member(
                "Aubri Drake",
                "aubri.drake@example.org",
                None,
                TeamRole::Facilitator,
            ),
            member(
                "Sandeep Muddasani",
                "sandeep.muddasani@example.org",
                muddasani,
                TeamRole::Analyst,
            ),
            member(
                "A patient partner of the Patient and Family Advisory Council",
                "pfac@example.org",
                None,
                TeamRole::PatientPartner,
            ),
        ]),
        department_ids: DepartmentIds(department_ids),
    };
    let initiative = Initiatives::insert(
        conn,
        New {
            input,
            actor: Some(DEMO),
        },
    )?
    .id
    .0;
    for (round, purpose, note, linked) in [
        (
            comments_round,
            Purpose::Introduce,
            "Tara Lagu's talk on using patient comments to improve care",
            at(2019, 4, 25)?,
        ),
        (
            swot,
            Purpose::Design,
            "Chosen as the first initiative in the SWOT analysis",
            at(2019, 5, 23)?,
        ),
        (
            swot_continued,
            Purpose::Design,
            "Aim adopted",
            at(2019, 6, 20)?,
        ),
        (
            september,
            Purpose::Results,
            "First results of PDSA cycles 1 and 2",
            at(2019, 9, 26)?,
        ),
    ] {
        diesel::insert_into(initiative_rounds::table)
            .values((
                initiative_rounds::initiative_id.eq(initiative),
                initiative_rounds::round_id.eq(round),
                initiative_rounds::purpose.eq(purpose),
                initiative_rounds::note.eq(note),
                initiative_rounds::created_at.eq(linked),
            ))
            .execute(conn)?;
    }
    diesel::update(initiatives::table.find(initiative))
        .set((
            initiatives::created_at.eq(at(2019, 4, 25)?),
            initiatives::updated_at.eq(at(2019, 10, 1)?),
        ))
        .execute(conn)?;
    let record = Initiatives::find(conn, initiative)?
        .ok_or_else(|| ApiError::Internal("the demo initiative is gone".to_owned()))?;
    log(conn, Initiatives::NAME, initiative, &record)?;
    report.initiatives = 1;

    // Two PDSA cycles: a weekly digest (adapted), then a reply template with a reminder
    // (adopted).
    let plan = |who: &str, what: &str, when: &str, place: &str, data: &str| PdsaPlan {
        who: text(who),
        what: text(what),
        when: text(when),
        where_: text(place),
        data_collection: text(data),
    };
    let cycles = [
        (
            PdsaCycleInput {
                change_idea: Name::stored(
                    "A weekly digest of patients' comments to each unit manager",
                ),
                objective: text("Learn whether unit managers read and answer a weekly digest"),
                prediction: text("Half of the managers answer at least one comment within 14 days"),
                plan: Some(plan(
                    "Patient Experience office",
                    "Send each unit manager a weekly digest of their unit's comments",
                    "August 2019",
                    "Medicine units, Baystate Medical Center",
                    "Digest log; replies recorded in the comment system",
                )),
                do_notes: text("Sent weekly to 12 managers; two units had no comments some weeks"),
                carried_out_as_planned: Some(true),
                study_notes: text(
                    "40% of August's comments answered within 14 days (32% in July); managers \
                     asked for a reply template",
                ),
                prediction_confirmed: Some(PredictionConfirmed::Partly),
                act_decision: Some(ActDecision::Adapt),
                next_steps: text("Add a reply template and a reminder on day 10"),
                round_id: Some(RoundRef(july)),
                stage: PdsaStage::Closed,
            },
            (at(2019, 7, 18)?, at(2019, 9, 5)?),
        ),
        (
            PdsaCycleInput {
                change_idea: Name::stored(
                    "A reply template and a day-10 reminder for unit managers",
                ),
                objective: text("Learn whether a template and a reminder make replies timely"),
                prediction: text("Two thirds of comments answered within 14 days by November"),
                plan: Some(plan(
                    "Unit managers, with the Patient Experience office",
                    "Reply with the template; the comment system reminds on day 10",
                    "September to November 2019",
                    "Medicine units, Baystate Medical Center",
                    "The monthly extract of comments and replies",
                )),
                do_notes: text("Carried out as planned on all 12 units"),
                carried_out_as_planned: Some(true),
                study_notes: text(
                    "52%, 60% and 67% answered within 14 days in September to November",
                ),
                prediction_confirmed: Some(PredictionConfirmed::Yes),
                act_decision: Some(ActDecision::Adopt),
                next_steps: text("Spread to the surgical units in 2020"),
                round_id: Some(RoundRef(september)),
                stage: PdsaStage::Closed,
            },
            (at(2019, 9, 5)?, at(2019, 12, 5)?),
        ),
    ];
    let mut cycle_ids = Vec::new();
    for (input, (started, decided)) in cycles {
        let cycle = PdsaCycles::insert(
            conn,
            New {
                input: Under {
                    parent: initiative,
                    input,
                },
                actor: Some(DEMO),
            },
        )?;
        let id = cycle.id.0;
        diesel::update(pdsa_cycles::table.find(id))
            .set((
                pdsa_cycles::created_at.eq(started),
                pdsa_cycles::updated_at.eq(decided),
                pdsa_cycles::decided_at.eq(decided),
            ))
            .execute(conn)?;
        let record = PdsaCycles::find(conn, id)?
            .ok_or_else(|| ApiError::Internal("the demo cycle is gone".to_owned()))?;
        log(conn, PdsaCycles::NAME, id, &record)?;
        cycle_ids.push(id);
        report.pdsa_cycles += 1;
    }

    // The measure, and 24 months of it: about a third of comments answered in time before the
    // cycles, then a shift above the median from August 2019, when the first cycle ran.
    let measure = Measures::insert(
        conn,
        New {
            input: Under {
                parent: initiative,
                input: MeasureInput {
                    name: Name::stored("Comments answered by the unit within 14 days"),
                    measure_type: MeasureType::Process,
                    operational_definition: text(
                        "Of the patient comments received in the month (experience surveys, \
                         all medicine units), the share that the unit they are about answered \
                         within 14 days of receipt. Aggregate counts from the monthly extract.",
                    ),
                    data_type: DataType::Proportion,
                    unit: text("% of comments"),
                    multiplier: Multiplier::new(100.0),
                    frequency: Frequency::Month,
                    improvement_direction: ImprovementDirection::Increase,
                    target: Value::new(80.0),
                    baseline: Some(BaselineRange {
                        from: LocalDate::from_naive(date(2018, 7, 1)?),
                        to: LocalDate::from_naive(date(2019, 6, 1)?),
                    }),
                    phases: Phases(Vec::new()),
                    rules: RuleSet::Ihi,
                },
            },
            actor: Some(DEMO),
        },
    )?;
    log(conn, Measures::NAME, measure.id.0, &measure)?;
    report.measures = 1;
    let counts: [(u32, f64, f64); 24] = [
        (0, 18.0, 58.0),
        (1, 21.0, 60.0),
        (2, 16.0, 55.0),
        (3, 24.0, 61.0),
        (4, 19.0, 57.0),
        (5, 20.0, 59.0),
        (6, 17.0, 56.0),
        (7, 23.0, 62.0),
        (8, 20.0, 58.0),
        (9, 17.0, 60.0),
        (10, 22.0, 61.0),
        (11, 19.0, 59.0),
        (12, 18.0, 57.0),
        (13, 25.0, 62.0),
        (14, 32.0, 61.0),
        (15, 38.0, 63.0),
        (16, 40.0, 60.0),
        (17, 37.0, 59.0),
        (18, 43.0, 61.0),
        (19, 45.0, 62.0),
        (20, 41.0, 60.0),
        (21, 46.0, 62.0),
        (22, 48.0, 63.0),
        (23, 50.0, 64.0),
    ];
    let first = date(2018, 7, 1)?;
    let mut points = Vec::new();
    for (month, numerator, denominator) in counts {
        let period = first
            .checked_add_months(chrono::Months::new(month))
            .ok_or_else(|| ApiError::Internal("bad demo period".to_owned()))?;
        let (note, cycle) = match month {
            13 => (Some("PDSA cycle 1: weekly digest"), cycle_ids.first()),
            14 => (Some("PDSA cycle 2: reply template"), cycle_ids.get(1)),
            _ => (None, None),
        };
        points.push(PointInput {
            period: LocalDate::from_naive(period),
            value: None,
            numerator: Numerator::new(numerator),
            denominator: Denominator::new(denominator),
            excluded: false,
            exclusion_reason: None,
            astronomical: false,
            note: note.map(Text::stored),
            pdsa_cycle_id: cycle.map(|c| PdsaCycleRef(*c)),
        });
    }
    let author = Author {
        actor: Some(DEMO),
        request_id: None,
    };
    let upserted = measures::upsert(
        conn,
        author,
        &measure,
        &PointsInput {
            points: PointBatch(points),
        },
    )?;
    report.points = usize::try_from(upserted.created.get()).unwrap_or_default();

    // What the SWOT rounds decided.
    let owner = |name: &str, email: &str, speaker: Option<i32>| {
        let (name, email, speaker_id) = person(name, email, speaker);
        Some(Owner {
            name,
            email,
            speaker_id,
        })
    };
    let outcome =
        |kind: OutcomeKind, text: &str, rationale: Option<&str>, about: bool| OutcomeInput {
            kind,
            text: Name::stored(text),
            rationale: rationale.map(Text::stored),
            initiative_id: about.then_some(InitiativeRef(initiative)),
            pdsa_cycle_id: None,
            corrects_id: None,
            owner: None,
            due_date: None,
            status: None,
            completed_at: None,
        };
    let action = |text: &str,
                  who: Option<Owner>,
                  due: NaiveDate,
                  status: ActionStatus,
                  done: Option<NaiveDateTime>,
                  about: bool| OutcomeInput {
        owner: who,
        due_date: Some(LocalDate::from_naive(due)),
        status: Some(status),
        completed_at: done.map(Timestamp::from_naive),
        ..outcome(OutcomeKind::ActionItem, text, None, about)
    };
    let may = at(2019, 5, 23)?;
    let june = at(2019, 6, 20)?;
    let decided = [
        (swot, may, outcome(OutcomeKind::Information,
            "Strength: analysts, epidemiologists and informaticians already work with clinicians across the system",
            None, false)),
        (swot, may, outcome(OutcomeKind::Information,
            "Weakness: getting timely EHR data to improvement teams takes months",
            None, false)),
        (swot, may, outcome(OutcomeKind::Information,
            "Opportunity: patients' comments arrive every week and are not yet used to improve care",
            None, false)),
        (swot, may, outcome(OutcomeKind::Information,
            "Threat: competing priorities leave clinicians little protected time for improvement work",
            None, false)),
        (swot, may, outcome(OutcomeKind::Decision,
            "Take up patients' comments as the first initiative of the learning loop",
            Some("The opportunity the SWOT named first, with a lead from the April round and data already collected"),
            true)),
        (swot, may, action(
            "Draft the initiative's aim and measures for the June round",
            owner("Tara Lagu", "tara.lagu@example.org", lagu),
            date(2019, 6, 20)?, ActionStatus::Done, Some(at(2019, 6, 18)?), true)),
        (swot, may, action(
            "List the data each department can share with improvement teams, and how long access takes",
            owner("Aubri Drake", "aubri.drake@example.org", None),
            date(2019, 6, 20)?, ActionStatus::Done, Some(at(2019, 6, 17)?), false)),
        (swot_continued, june, outcome(OutcomeKind::Information,
            "The weaknesses and threats were ranked: access to data came first, protected time second",
            None, false)),
        (swot_continued, june, outcome(OutcomeKind::Decision,
            "Adopt the aim: 80% of comments answered by the unit within 14 days by June 30th, 2020",
            Some("A number by a date, measured monthly from the comment system's extract"),
            true)),
        (swot_continued, june, outcome(OutcomeKind::Decision,
            "Review the initiative's run chart at every other round",
            None, true)),
        (swot_continued, june, action(
            "Set up the monthly extract of comments and replies for the run chart",
            owner("Sandeep Muddasani", "sandeep.muddasani@example.org", muddasani),
            date(2019, 7, 18)?, ActionStatus::Done, Some(at(2019, 7, 15)?), true)),
        (swot_continued, june, action(
            "Propose protected time for improvement teams to the LHS steering group",
            owner("Dr. Mihaela Stefan", "mihaela.stefan@example.org", None),
            date(2019, 9, 26)?, ActionStatus::InProgress, None, false)),
    ];
    for (round, when, input) in decided {
        let record = Outcomes::insert(
            conn,
            New {
                input: Under {
                    parent: round,
                    input,
                },
                actor: Some(DEMO),
            },
        )?;
        let id = record.id.0;
        diesel::update(round_outcomes::table.find(id))
            .set((
                round_outcomes::created_at.eq(when),
                round_outcomes::updated_at.eq(when),
            ))
            .execute(conn)?;
        let record = Outcomes::find(conn, id)?
            .ok_or_else(|| ApiError::Internal("the demo outcome is gone".to_owned()))?;
        log(conn, Outcomes::NAME, record.id(), &record)?;
        report.outcomes += 1;
    }
    Ok(report)
}
