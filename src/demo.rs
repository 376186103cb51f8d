//! The demo schedule: the departments, people and rounds of the LHS Rounds page
//! (`shared/reference/lhs-rounds-page.txt`), loaded by `seed-demo` and `serve --demo`.
//! Loading it twice adds nothing.

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::America::New_York;
use diesel::prelude::*;

use crate::db::{write_transaction, DbConnection};
use crate::departments::{self, DepartmentInput, Departments};
use crate::error::ApiError;
use crate::fields::{Credential, DepartmentRef, Name, SpeakerRef, Text, Timestamp};
use crate::resource::Resource;
use crate::rounds::{
    DepartmentIds, Panel, RoundInput, RoundStatus, Rounds, SpeakerRole, SpeakerSlot,
};
use crate::schema::rounds as rounds_table;
use crate::speakers::{self, Credentials, SpeakerInput, Speakers};

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
    pub departments: usize,
    pub speakers: usize,
    pub rounds: usize,
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "added {} departments, {} speakers, {} rounds",
            self.departments, self.speakers, self.rounds
        )
    }
}

/// 12:00-13:00 in Springfield, MA, in UTC: 17:00Z in winter, 16:00Z under daylight saving.
pub fn noon_hour(
    year: i32,
    month: u32,
    day: u32,
) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let start = New_York
        .from_local_datetime(&date.and_hms_opt(12, 0, 0)?)
        .single()?;
    let end = New_York
        .from_local_datetime(&date.and_hms_opt(13, 0, 0)?)
        .single()?;
    Some((start.with_timezone(&Utc), end.with_timezone(&Utc)))
}

/// Loads the demo schedule in one transaction.
pub fn seed(conn: &mut DbConnection) -> Result<SeedReport, ApiError> {
    write_transaction(conn, |conn| {
        let mut report = SeedReport::default();
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
                    Departments::insert(conn, input, Some("demo"))?.id.0
                }
            };
            department_ids.push(DepartmentRef(id));
        }
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
                            department_id: None,
                            bio: None,
                        };
                        Speakers::insert(conn, input, Some("demo"))?.id.0
                    }
                };
                slots.push(SpeakerSlot {
                    speaker_id: SpeakerRef(speaker_id),
                    role,
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
            };
            Rounds::insert(conn, input, Some("demo"))?;
            report.rounds += 1;
        }
        Ok(report)
    })
}

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
