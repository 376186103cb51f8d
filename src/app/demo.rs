//! The demo schedule: the series, departments, people and rounds of the LHS Rounds page
//! (`shared/reference/lhs-rounds-page.txt`), loaded by `seed-demo` and `serve --demo`, and the
//! next three rounds generated from the series' defaults (the page's rounds are all past).
//! Loading it twice adds nothing.
//!
//! The series recurs on the third Thursday of the month (`FREQ=MONTHLY;BYDAY=3TH`), as most
//! of the page's 2019 rounds do; the page moved some (February 14, April 25, May 23,
//! September 26, October 24) and held none in August, which the series keeps as a skipped
//! date. A plan's preview over 2019 shows exactly that (see `tests/api/planning.rs`).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use diesel::prelude::*;

use crate::credit::attendance;
use crate::credit::attendees::{AttendeeDetails, Profession};
use crate::platform::changelog::{self, Action, Change};
use crate::platform::db::{write_transaction, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::fields::{
    Credential, DepartmentRef, Email, Line, LocalDate, LocalTime, Name, SpeakerRef, Text, Timestamp,
};
use crate::platform::resource::{Author, Keyed, New, Resource};
use crate::platform::schema::rounds as rounds_table;
use crate::platform::timezone;
use crate::schedule::departments::{self, DepartmentInput, Departments};
use crate::schedule::rounds::{
    DepartmentIds, Panel, RoundInput, RoundStatus, Rounds, SpeakerRole, SpeakerSlot,
};
use crate::schedule::series::{
    self, AttentionDays, Contact, Contacts, Minutes, Series, SeriesInput, SeriesRecord,
    SkippedDate, SkippedDates, DEFAULT_ATTENTION_DAYS,
};
use crate::schedule::speakers::{self, Credentials, SpeakerInput, Speakers};

const DEPARTMENTS: &[(&str, Option<&str>)] = &[
    ("Division of Healthcare Quality", Some("DHQ")),
    ("Operations Excellence", None),
    ("Clinical Informatics", None),
    ("Epidemiology and Biostatistics", Some("Epi/Biostat")),
    (
        "Institute for Healthcare Delivery and Population Science",
        Some("IHDPS"),
    ),
];

struct DemoRound {
    date: (i32, u32, u32),
    location: &'static str,
    title: Option<&'static str>,
    /// Name and credentials, in the page's order.
    speakers: &'static [(&'static str, &'static [&'static str])],
}

const GOLDBERG: (&str, &[&str]) = ("Howard Goldberg", &["MD"]);
const LINDENAUER: (&str, &[&str]) = ("Peter Lindenauer", &["MD", "MSc"]);
const SALVADOR: (&str, &[&str]) = ("Doug Salvador", &["MD", "MPH"]);
const LAGU: (&str, &[&str]) = ("Tara Lagu", &["MD", "MPH"]);

/// The page writes the past rounds' room as "MassMutual 6" (once "MassMutual6"); it is the
/// same room as the upcoming rounds' "BMC – MassMutual 6", so one spelling is used.
const ROUNDS: &[DemoRound] = &[
    DemoRound {
        date: (2019, 1, 17),
        location: "3601 Main St, PVLSI",
        title: Some("What is the LHS and why is it important?"),
        speakers: &[GOLDBERG, LINDENAUER, SALVADOR],
    },
    DemoRound {
        date: (2019, 2, 14),
        location: "BMC – MassMutual 6",
        title: Some(
            "The LHS at Baystate: mission, staff, and projects of Epi/Biostat, IHDPS, Analytics, \
             and DHQ/Operations Excellence",
        ),
        speakers: &[
            GOLDBERG,
            ("Paul Visintainer", &["PhD"]),
            ("Sandeep Muddasani", &[]),
            SALVADOR,
            LINDENAUER,
            ("Lauren Westafer", &["DO", "MPH"]),
            LAGU,
            ("Quinn Pack", &["MD", "MSc"]),
        ],
    },
    DemoRound {
        date: (2019, 4, 25),
        location: "BMC – MassMutual 5",
        title: Some("How can we use patient comments to improve care?"),
        speakers: &[LAGU],
    },
    DemoRound {
        date: (2019, 5, 23),
        location: "BMC – MassMutual 6",
        title: Some("SWOT Analysis"),
        speakers: &[],
    },
    DemoRound {
        date: (2019, 6, 20),
        location: "BMC – MassMutual 6",
        title: Some("SWOT Analysis continued"),
        speakers: &[],
    },
    DemoRound {
        date: (2019, 7, 18),
        location: "BMC – MassMutual 6",
        title: None,
        speakers: &[],
    },
    DemoRound {
        date: (2019, 9, 26),
        location: "BMC – MassMutual 5",
        title: None,
        speakers: &[],
    },
    DemoRound {
        date: (2019, 10, 24),
        location: "BMC – MassMutual 5",
        title: None,
        speakers: &[],
    },
    DemoRound {
        date: (2019, 11, 21),
        location: "BMC – MassMutual 5",
        title: None,
        speakers: &[],
    },
    DemoRound {
        date: (2019, 12, 19),
        location: "BMC – MassMutual 5",
        title: None,
        speakers: &[],
    },
];

/// What a load added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub series: bool,
    pub departments: usize,
    pub speakers: usize,
    pub rounds: usize,
    /// Of `rounds`, those generated from the series' defaults.
    pub generated: usize,
    /// Attendance records of the past rounds.
    pub attendance: usize,
    /// Disclosure statements published (for the page's 2019 rounds).
    pub statements: usize,
    /// The learning loop (`app::learning_demo`).
    pub learning: crate::app::learning_demo::LearningReport,
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}added {} departments, {} speakers, {} rounds ({} of them upcoming, generated from \
             the series' defaults), {} disclosure statements, {} attendance records",
            if self.series {
                "described the series, "
            } else {
                ""
            },
            self.departments,
            self.speakers,
            self.rounds,
            self.generated,
            self.statements,
            self.attendance
        )?;
        if self.learning.initiatives > 0 {
            write!(f, "; the learning loop: {}", self.learning)?;
        }
        Ok(())
    }
}

/// 12:00-13:00 in Springfield, MA, in UTC: 17:00Z in winter, 16:00Z under daylight saving.
pub fn noon_hour(
    year: i32,
    month: u32,
    day: u32,
) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let new_york = timezone::named_or_default(None);
    let start = timezone::from_local(&new_york, date.and_hms_opt(12, 0, 0)?)?;
    let end = timezone::from_local(&new_york, date.and_hms_opt(13, 0, 0)?)?;
    Some((start, end))
}

/// Loads the demo schedule in one transaction.
pub fn seed(conn: &mut DbConnection) -> Result<SeedReport, ApiError> {
    write_transaction(conn, |conn| {
        let before = SeriesRecord::find(conn, 1)?;
        let mut report = SeedReport {
            series: series::seed(conn, page_series())?,
            ..SeedReport::default()
        };
        if report.series {
            let after = SeriesRecord::find(conn, 1)?;
            log_change::<SeriesRecord>(conn, Action::Updated, before, after)?;
        }
        let mut department_ids = Vec::new();
        for (name, abbreviation) in DEPARTMENTS {
            let id = match departments::find_by_name(conn, name)? {
                Some(id) => id,
                None => {
                    report.departments += 1;
                    let input = DepartmentInput {
                        name: Name::stored(*name),
                        abbreviation: abbreviation.map(Text::stored),
                        description: None,
                    };
                    created::<Departments>(conn, input)?.id.0
                }
            };
            department_ids.push(DepartmentRef(id));
        }
        // The page's rounds as made, with their place in it, for their attendance.
        let mut held = Vec::new();
        for round in ROUNDS {
            let (year, month, day) = round.date;
            let (starts_at, ends_at) = noon_hour(year, month, day)
                .ok_or_else(|| ApiError::Internal(format!("bad demo date {year}-{month}-{day}")))?;
            let already = rounds_table::table
                .filter(rounds_table::starts_at.eq(starts_at.naive_utc()))
                .select(rounds_table::id)
                .first::<i32>(conn)
                .optional()?;
            if already.is_some() {
                continue;
            }
            let role = if round.speakers.len() > 3 {
                SpeakerRole::Panelist
            } else {
                SpeakerRole::Presenter
            };
            let mut slots = Vec::new();
            for (full_name, credentials) in round.speakers {
                let speaker_id = match speakers::find_by_name(conn, full_name)? {
                    Some(id) => id,
                    None => {
                        report.speakers += 1;
                        let input = SpeakerInput {
                            full_name: Name::stored(*full_name),
                            credentials: Credentials(
                                credentials.iter().map(|c| Credential::stored(*c)).collect(),
                            ),
                            title: None,
                            email: None,
                            sub: None,
                            department_id: None,
                            bio: None,
                        };
                        created::<Speakers>(conn, input)?.id.0
                    }
                };
                slots.push(SpeakerSlot {
                    speaker_id: SpeakerRef(speaker_id),
                    role,
                    status: None,
                });
            }
            let input = RoundInput {
                title: round.title.map(Text::stored),
                description: None,
                starts_at: Timestamp(starts_at),
                ends_at: Timestamp(ends_at),
                location: Name::stored(round.location),
                status: RoundStatus::Scheduled,
                speakers: Panel(slots),
                department_ids: DepartmentIds(department_ids.clone()),
                credit_hours: None,
            };
            let made = created::<Rounds>(conn, input)?;
            report.rounds += 1;
            held.push((made.id.0, report.rounds));
        }
        // Generated, not taken from the page: the next three rounds by the series' defaults
        // (a Thursday each month, the usual time and room, the topic to be announced), so that
        // a newcomer's "upcoming rounds" page is not empty.
        let defaults = SeriesRecord::find(conn, 1)?
            .ok_or_else(|| ApiError::Internal("the series row is missing".to_owned()))?;
        for (starts_at, ends_at) in next_third_thursdays(&defaults, chrono::Utc::now(), 3) {
            if round_starts_at(conn, starts_at)? {
                continue;
            }
            let input = RoundInput {
                title: None,
                description: None,
                starts_at: Timestamp(starts_at),
                ends_at: Timestamp(ends_at),
                location: Name::stored(
                    defaults
                        .default_location
                        .as_ref()
                        .map_or("BMC – MassMutual 5", |l| l.as_str()),
                ),
                status: RoundStatus::Scheduled,
                speakers: Panel(Vec::new()),
                department_ids: DepartmentIds(department_ids.clone()),
                credit_hours: None,
            };
            created::<Rounds>(conn, input)?;
            report.rounds += 1;
            report.generated += 1;
        }
        report.statements = seed_disclosures(conn)?;
        // Attendance after the statements: a record's credit depends on whether its round's
        // disclosures were published before it started.
        for (round_id, nth) in held {
            report.attendance += attend(conn, round_id, nth)?;
        }
        report.learning = crate::app::learning_demo::seed(conn)?;
        Ok(report)
    })
}

/// When the demo's speakers attested the disclosures the 2019 rounds were published with.
const ATTESTED_2018: (i32, u32, u32) = (2018, 12, 3);
/// How long before each 2019 round its statement was published.
const PUBLISHED_DAYS_BEFORE: i64 = 7;
/// The speaker whose disclosure has a relevant relationship, mitigated by peer review.
const WITH_RELATIONSHIP: &str = "Peter Lindenauer";
/// A company invented for the demo: no real speaker's relationships are known to it, and none
/// is implied.
const DEMO_COMPANY: &str = "Example Analytics Co. (fictional, demo data)";

/// The disclosures of the demo, once (nothing if any disclosure exists): every speaker of the
/// page's 2019 rounds attested in December 2018 that they had no relationships, but Peter
/// Lindenauer, who disclosed one (with a fictional company), judged relevant to the round and
/// mitigated by peer review; each 2019 round with speakers had its statement published a week
/// before it started; and Tara Lagu has a current disclosure, with no relationships, attested a
/// month ago (her 2018 one stays as history). Returns the statements published.
fn seed_disclosures(conn: &mut DbConnection) -> Result<usize, ApiError> {
    use crate::disclosure::relationships::{self, DisclosureInput, Nature, RelationshipInput};
    use crate::disclosure::reviews::{
        self, JudgementInput, JudgementInputs, Mitigation, ReviewInput,
    };
    use crate::disclosure::statements;
    use crate::platform::resource::Author;
    use crate::platform::schema::disclosures;

    let any: i64 = disclosures::table.count().get_result(conn)?;
    if any > 0 {
        return Ok(0);
    }
    let author = Author {
        actor: Some(DEMO),
        request_id: None,
    };
    let (year, month, day) = ATTESTED_2018;
    let attested = NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(17, 0, 0))
        .ok_or_else(|| ApiError::Internal("bad demo attestation date".to_owned()))?;
    let mut attested_ids = Vec::new();
    let mut published = 0;
    for page_round in ROUNDS
        .iter()
        .filter(|r| r.date.0 == 2019 && !r.speakers.is_empty())
    {
        let (year, month, day) = page_round.date;
        let Some((starts_at, _)) = noon_hour(year, month, day) else {
            continue;
        };
        let Some(round_id) = rounds_table::table
            .filter(rounds_table::starts_at.eq(starts_at.naive_utc()))
            .select(rounds_table::id)
            .first::<i32>(conn)
            .optional()?
        else {
            continue;
        };
        let Some(round) = Rounds::find(conn, round_id)? else {
            continue;
        };
        for speaker in &round.speakers.0 {
            let id = speaker.speaker_id.0;
            if attested_ids.contains(&id) {
                continue;
            }
            attested_ids.push(id);
            let related = speaker.full_name.as_str() == WITH_RELATIONSHIP;
            let input = DisclosureInput {
                attested_at: Some(Timestamp::from_naive(attested)),
                no_relationships: !related,
                relationships: relationships::RelationshipInputs(if related {
                    vec![RelationshipInput {
                        company: Name::stored(DEMO_COMPANY),
                        nature: Nature::Advisor,
                        other_detail: None,
                        started_on: LocalDate::parse("2018-01-15").ok_or_else(|| {
                            ApiError::Internal("bad demo relationship date".to_owned())
                        })?,
                        ended_on: None,
                    }]
                } else {
                    Vec::new()
                }),
            };
            relationships::attest(conn, author, id, &input)?;
        }
        let published_at = starts_at.naive_utc() - chrono::Duration::days(PUBLISHED_DAYS_BEFORE);
        let judgements: Vec<JudgementInput> = reviews::disclosures_of(conn, &round)?
            .iter()
            .flat_map(|p| p.judged.iter())
            .map(|(relationship, _)| JudgementInput {
                relationship_id: relationship.id,
                relevant: true,
                mitigation: Some(Mitigation::PeerReviewOfContent),
                note: Some(Text::stored(
                    "Slides reviewed by a planner without relationships before the round.",
                )),
            })
            .collect();
        if !judgements.is_empty() {
            let input = ReviewInput {
                judgements: JudgementInputs(judgements),
            };
            let reviewed_at = published_at - chrono::Duration::days(1);
            reviews::judge(conn, author, &round, &input, reviewed_at)?;
        }
        statements::publish_at(conn, author, &round, published_at)?;
        published += 1;
    }
    if let Some(lagu) = speakers::find_by_name(conn, LAGU.0)? {
        let input = DisclosureInput {
            attested_at: Some(Timestamp(chrono::Utc::now() - chrono::Duration::days(30))),
            no_relationships: true,
            relationships: relationships::RelationshipInputs(Vec::new()),
        };
        relationships::attest(conn, author, lagu, &input)?;
    }
    Ok(published)
}

/// Who the audit trail says wrote the demo data.
const DEMO: &str = "demo";

/// Made-up learners (addresses at example.org) who attended the past rounds, so that the yearly
/// report and the transcripts have something to show: physicians and other learners.
const LEARNERS: &[(&str, &str, Profession)] = &[
    (
        "Dr. Avery Quinn",
        "avery.quinn@example.org",
        Profession::Physician,
    ),
    (
        "Dr. Blake Morgan",
        "blake.morgan@example.org",
        Profession::Physician,
    ),
    (
        "Dr. Casey Rivera",
        "casey.rivera@example.org",
        Profession::Physician,
    ),
    (
        "Dr. Devon Patel",
        "devon.patel@example.org",
        Profession::Physician,
    ),
    (
        "Emery Chen, RN",
        "emery.chen@example.org",
        Profession::Nurse,
    ),
    (
        "Finley Brooks, NP",
        "finley.brooks@example.org",
        Profession::NursePractitioner,
    ),
    (
        "Gray Sullivan, PA-C",
        "gray.sullivan@example.org",
        Profession::PhysicianAssistant,
    ),
    (
        "Harper Okafor, PharmD",
        "harper.okafor@example.org",
        Profession::Pharmacist,
    ),
    (
        "Indigo Nakamura, PhD",
        "indigo.nakamura@example.org",
        Profession::Psychologist,
    ),
    (
        "Jordan Silva",
        "jordan.silva@example.org",
        Profession::Other,
    ),
    (
        "Kai Lindqvist",
        "kai.lindqvist@example.org",
        Profession::Student,
    ),
    (
        "Dr. Logan Mensah",
        "logan.mensah@example.org",
        Profession::Physician,
    ),
];

/// The sign-in sheet of the `nth` past round: most learners, a different few missing each time.
fn attend(conn: &mut DbConnection, round_id: i32, nth: usize) -> Result<usize, ApiError> {
    let author = Author {
        actor: Some(DEMO),
        request_id: None,
    };
    let mut made = 0;
    for (i, (full_name, email, profession)) in LEARNERS.iter().enumerate() {
        if (i + nth).is_multiple_of(4) {
            continue;
        }
        let details = AttendeeDetails {
            full_name: Name::stored(*full_name),
            email: Email::stored(*email),
            profession: *profession,
        };
        if attendance::record_from_sheet(conn, round_id, &details, "demo sign-in sheet", author)? {
            made += 1;
        }
    }
    Ok(made)
}

/// The demo data goes through the change log like any other write: the audit trail says the
/// demo wrote it, and a system following the change feed from the start sees it.
fn created<R: Resource>(conn: &mut DbConnection, input: R::Input) -> Result<R::Record, ApiError> {
    let new = New {
        input,
        actor: Some(DEMO),
    };
    let record = R::insert(conn, new)?;
    log_change::<R>(conn, Action::Created, None, Some(record.clone()))?;
    Ok(record)
}

fn log_change<R: Resource>(
    conn: &mut DbConnection,
    action: Action,
    before: Option<R::Record>,
    after: Option<R::Record>,
) -> Result<(), ApiError> {
    let Some(id) = after.as_ref().or(before.as_ref()).map(|record| record.id()) else {
        return Ok(());
    };
    changelog::record(
        conn,
        Change {
            resource: R::NAME,
            id,
            action,
            before: before.map(|r| serde_json::to_value(&r)).transpose()?,
            after: after.map(|r| serde_json::to_value(&r)).transpose()?,
            actor: Some(DEMO),
            request_id: None,
        },
    )?;
    Ok(())
}

/// Whether a round starts at `at` already (loading twice adds nothing).
fn round_starts_at(conn: &mut DbConnection, at: DateTime<Utc>) -> Result<bool, ApiError> {
    Ok(rounds_table::table
        .filter(rounds_table::starts_at.eq(at.naive_utc()))
        .select(rounds_table::id)
        .first::<i32>(conn)
        .optional()?
        .is_some())
}

/// The third Thursday of each of the `count` months after `now`'s, at the series' default
/// start time and for its default duration, in its time zone, in UTC.
pub fn next_third_thursdays(
    series: &Series,
    now: DateTime<Utc>,
    count: u32,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let zone = series.zone();
    let today = timezone::local(&zone, now).date_naive();
    let minutes = chrono::Duration::minutes(series.default_duration_minutes.get());
    (1..=count)
        .filter_map(|ahead| {
            let first = today
                .with_day(1)?
                .checked_add_months(chrono::Months::new(ahead))?;
            let offset = (7 + 3 - first.weekday().num_days_from_monday()) % 7;
            let third_thursday = first + chrono::Duration::days(i64::from(offset) + 14);
            let start = timezone::from_local(
                &zone,
                third_thursday.and_time(series.default_start_time.time()),
            )?;
            Some((start, start + minutes))
        })
        .collect()
}

/// The series as the page describes it. The page names its contacts; their addresses were not
/// in the copy we have, so the demo gives `example.org` ones.
fn page_series() -> SeriesInput {
    let contact = |name: &str, email: &str| Contact {
        name: Name::stored(name),
        email: Email::stored(email),
        role: Some(Text::stored("topics, suggestions and feedback")),
    };
    SeriesInput {
        name: Name::stored("Learning Health System Rounds"),
        description: Some(Text::stored(PAGE_DESCRIPTION)),
        timezone: Name::stored(timezone::DEFAULT),
        default_location: Some(Text::stored("BMC – MassMutual 5")),
        default_start_time: LocalTime::NOON,
        default_duration_minutes: Minutes::clamped(60),
        feedback_window_days: series::FeedbackWindowDays::clamped(
            series::DEFAULT_FEEDBACK_WINDOW_DAYS,
        ),
        recurrence: Some(Line::stored(DEMO_RECURRENCE)),
        recurrence_start: None,
        attention_days: AttentionDays::clamped(DEFAULT_ATTENTION_DAYS),
        planners: series::Planners::default(),
        disclosure_valid_months: series::DisclosureValidMonths::clamped(
            series::DEFAULT_DISCLOSURE_VALID_MONTHS,
        ),
        skipped_dates: SkippedDates(
            LocalDate::parse("2019-08-15")
                .map(|date| SkippedDate {
                    date,
                    reason: Name::stored("No round in August"),
                })
                .into_iter()
                .collect(),
        ),
        credit_type: Some(series::CreditType::AmaPraCategory1),
        default_credit_hours: None,
        checkin_opens_minutes: series::CheckinOpensMinutes::clamped(
            series::DEFAULT_CHECKIN_OPENS_MINUTES,
        ),
        checkin_closes_minutes: series::CheckinClosesMinutes::clamped(
            series::DEFAULT_CHECKIN_CLOSES_MINUTES,
        ),
        evaluation_required: false,
        contacts: Contacts(vec![
            contact("Dr. Mihaela Stefan", "mihaela.stefan@example.org"),
            contact("Aubri Drake", "aubri.drake@example.org"),
        ]),
        loop_alert_days: series::LoopAlertDays::clamped(series::DEFAULT_LOOP_ALERT_DAYS),
    }
}

/// How the page's rounds recur: the third Thursday of the month.
pub const DEMO_RECURRENCE: &str = "FREQ=MONTHLY;BYDAY=3TH";

/// The page's "What is a Learning Health System?", in Markdown.
const PAGE_DESCRIPTION: &str = "## What is a Learning Health System?

The Learning Health System (LHS) is a novel and rapidly evolving approach for improving the \
outcomes of individuals, populations, and health care organizations. Learning Health Systems are \
organizations in which knowledge generation processes are embedded in daily practice to produce \
continually improved care.

In a learning health system, internal data and experience are systematically integrated with \
external evidence and that knowledge is used to drive improvements that can change people life \
and health. As a result, patients get higher quality, safer, and more efficient care, and health \
care delivery organizations become better places to work.

## Learning Health System Rounds at Baystate Health

LHS Rounds are a venue where members of the Division of Healthcare Quality, Operations \
Excellence, Clinical Informatics, Epidemiology and Biostatistics, and the Institute for \
Healthcare Delivery and Population Science collaborate with clinicians from across Baystate \
Health to address topics of high strategic importance to our health system.

If you have topics, suggestions, or feedback in mind, please contact Dr. Mihaela Stefan or \
Aubri Drake.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noon_in_springfield_follows_daylight_saving() {
        let (winter_start, winter_end) = noon_hour(2019, 1, 17).expect("valid date");
        assert_eq!(winter_start.to_rfc3339(), "2019-01-17T17:00:00+00:00");
        assert_eq!(winter_end.to_rfc3339(), "2019-01-17T18:00:00+00:00");
        let (summer_start, _) = noon_hour(2019, 7, 18).expect("valid date");
        assert_eq!(summer_start.to_rfc3339(), "2019-07-18T16:00:00+00:00");
        // 2019's daylight saving ended on November 3rd.
        let (november, _) = noon_hour(2019, 11, 21).expect("valid date");
        assert_eq!(november.to_rfc3339(), "2019-11-21T17:00:00+00:00");
    }
}
