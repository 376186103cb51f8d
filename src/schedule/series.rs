//! The series: the one record that describes LHS Rounds as a whole, as the hospital's page
//! does: its name, what it is about, the time zone its rounds are held in, where and when they
//! usually are, how they recur, and whom to contact about topics and feedback.

use actix_web::{get, patch, put, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::auth::{Role, Subject};
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{
    Email, Int, Line, LocalDate, LocalTime, Name, QuarterHours, SpeakerRef, Text, Timestamp,
};
use crate::platform::http::JsonBody;
use crate::platform::resource::{self, Allowed, Ctx, NoFilter, Resource, Update};
use crate::platform::schema::series;
use crate::platform::timezone::{self, Zone};
use crate::platform::validate::{Doc, Input};
use crate::schedule::recurrence::rule::{Rule, MAX_RULE_LEN};

/// The series' one record.
pub const ID: i32 = 1;

pub type SeriesName = Name<200>;
/// Markdown.
pub type SeriesDescription = Text<20000>;
/// An IANA time zone name, checked against the tz database.
pub type TimeZoneName = Name<64>;
pub type DefaultLocation = Text<200>;
/// 1 minute to a day.
pub type Minutes = Int<1, 1440>;
pub type ContactName = Name<200>;
/// Days an active initiative may go without a PDSA decision, an outcome or a data point before
/// its loop is flagged as unclosed (`learning::initiatives`).
pub type LoopAlertDays = Int<1, 3650>;
/// What `loop_alert_days` is unless the series says otherwise.
pub const DEFAULT_LOOP_ALERT_DAYS: i64 = 90;

fn default_loop_alert_days() -> LoopAlertDays {
    LoopAlertDays::clamped(DEFAULT_LOOP_ALERT_DAYS)
}

/// Days after a round's end that it still takes session feedback: 0 (until it ends) to a year.
pub type FeedbackWindowDays = Int<0, 365>;
/// What a series that does not say takes: a month.
pub const DEFAULT_FEEDBACK_WINDOW_DAYS: i64 = 30;

fn default_feedback_window() -> FeedbackWindowDays {
    FeedbackWindowDays::clamped(DEFAULT_FEEDBACK_WINDOW_DAYS)
}
pub type ContactRole = Text<200>;
/// RFC 5545 RRULE text, such as `FREQ=MONTHLY;BYDAY=3TH`.
pub type RecurrenceText = Line<MAX_RULE_LEN>;
/// How many days ahead `GET /rounds/attention` looks: a day to a year.
pub type AttentionDays = Int<1, 366>;
/// What `attention_days` is when it is not given.
pub const DEFAULT_ATTENTION_DAYS: i64 = 45;

fn default_attention_days() -> AttentionDays {
    AttentionDays::clamped(DEFAULT_ATTENTION_DAYS)
}

crate::text_enum! {
    /// The credit the series' rounds carry: AMA PRA Category 1 Credit™ (physicians), ANCC
    /// contact hours (nurses), or a certificate of participation.
    pub enum CreditType {
        AmaPraCategory1 = "ama_pra_category_1",
        AnccContactHours = "ancc_contact_hours",
        Participation = "participation",
    }
}

/// Minutes before a round starts that check-in opens: none to a day.
pub type CheckinOpensMinutes = Int<0, 1440>;
/// Minutes after a round ends that check-in closes: none to a week.
pub type CheckinClosesMinutes = Int<0, 10080>;
/// What a series that does not say takes: check-in opens 15 minutes before the start...
pub const DEFAULT_CHECKIN_OPENS_MINUTES: i64 = 15;
/// ... and closes an hour after the end.
pub const DEFAULT_CHECKIN_CLOSES_MINUTES: i64 = 60;

fn default_checkin_opens() -> CheckinOpensMinutes {
    CheckinOpensMinutes::clamped(DEFAULT_CHECKIN_OPENS_MINUTES)
}

fn default_checkin_closes() -> CheckinClosesMinutes {
    CheckinClosesMinutes::clamped(DEFAULT_CHECKIN_CLOSES_MINUTES)
}
/// How many months a speaker's disclosure stays current after it is attested: 1 to 24.
pub type DisclosureValidMonths = Int<1, 24>;
/// What `disclosure_valid_months` is when it is not given: a year, as CME offices ask.
pub const DEFAULT_DISCLOSURE_VALID_MONTHS: i64 = 12;

fn default_disclosure_valid_months() -> DisclosureValidMonths {
    DisclosureValidMonths::clamped(DEFAULT_DISCLOSURE_VALID_MONTHS)
}

crate::text_enum! {
    /// What a planner does for the series: plans its content, or reviews it.
    #[derive(Default)]
    pub enum PlannerRole { #[default] Planner = "planner", Reviewer = "reviewer" }
}

/// Someone who controls the series' content without presenting: their disclosure is judged on
/// every round, as the speakers' are. They are speakers' records, so that one disclosure serves
/// both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Planner {
    pub speaker_id: SpeakerRef,
    /// Defaults to `planner`.
    #[serde(default)]
    pub role: PlannerRole,
}

crate::list_type!(
    /// The series' planners and reviewers, in order; each speaker once.
    pub Planners(Planner),
    max = 50
);

/// Someone to contact about the series. Their e-mail address is public by design: the series'
/// page publishes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: ContactName,
    pub email: Email,
    /// What to contact them about, such as "topics, suggestions and feedback".
    pub role: Option<ContactRole>,
}

crate::list_type!(
    /// The people to contact, in the order the page lists them.
    pub Contacts(Contact),
    max = 10
);

/// Why a date is skipped, such as "Thanksgiving" or "summer break".
pub type SkipReason = Name<200>;

/// A date the series holds no round on, and why: `POST /series/plan` leaves it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedDate {
    /// A local date in the series' time zone.
    pub date: LocalDate,
    pub reason: SkipReason,
}

crate::list_type!(
    /// The dates plans skip, by date; each date once.
    pub SkippedDates(SkippedDate),
    max = 1000
);

impl SkippedDates {
    /// The reason `date` is skipped, if it is.
    pub fn reason_for(&self, date: LocalDate) -> Option<&SkipReason> {
        self.0.iter().find(|s| s.date == date).map(|s| &s.reason)
    }
}

/// The series, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "name": "Learning Health System Rounds",
    "description": "The Learning Health System (LHS) is a novel and rapidly evolving approach...",
    "timezone": "America/New_York", "default_location": "BMC – MassMutual 5",
    "default_start_time": "12:00", "default_duration_minutes": 60, "feedback_window_days": 30,
    "recurrence": "FREQ=MONTHLY;BYDAY=3TH", "recurrence_start": null, "attention_days": 45,
    "skipped_dates": [{"date": "2019-08-15", "reason": "No round in August"}],
    "credit_type": "ama_pra_category_1", "default_credit_hours": null,
    "checkin_opens_minutes": 15, "checkin_closes_minutes": 60, "evaluation_required": false,
    "contacts": [{"name": "Dr. Mihaela Stefan", "email": "mihaela.stefan@example.org",
        "role": "topics, suggestions and feedback"}],
    "planners": [{"speaker_id": 3, "role": "planner"}], "disclosure_valid_months": 12,
    "loop_alert_days": 90,
    "updated_at": "2026-11-27T15:00:00Z"
}))]
pub struct Series {
    pub name: SeriesName,
    /// What the series is about, in Markdown.
    pub description: Option<SeriesDescription>,
    /// The IANA time zone its rounds are held in; every round's local times are in it.
    pub timezone: TimeZoneName,
    pub default_location: Option<DefaultLocation>,
    /// When a round usually starts, local time.
    pub default_start_time: LocalTime,
    /// How long a round usually lasts.
    pub default_duration_minutes: Minutes,
    /// How many days after a round ends it still takes session feedback: a rating is taken
    /// from the round's start until this many days after its end (calendar days in the
    /// series' time zone), never for a cancelled round.
    pub feedback_window_days: FeedbackWindowDays,
    /// How the rounds recur, as an RFC 5545 RRULE read in `timezone` (written back in one
    /// canonical spelling); `POST /series/plan` lays rounds out by it.
    pub recurrence: Option<RecurrenceText>,
    /// The date the rule's INTERVAL and COUNT count from (RFC 5545's DTSTART); without it, a
    /// plan counts from its own first day.
    pub recurrence_start: Option<LocalDate>,
    /// How many days ahead `GET /rounds/attention` looks.
    pub attention_days: AttentionDays,
    /// The dates plans skip, with why, by date.
    pub skipped_dates: SkippedDates,
    /// The credit its rounds carry; `null`: none.
    pub credit_type: Option<CreditType>,
    /// What a new round designates unless it says otherwise (at most its length, rounded to
    /// the quarter hour); `null`: its length, rounded to the quarter hour. No credit is
    /// designated by default while `credit_type` is `null`.
    pub default_credit_hours: Option<QuarterHours>,
    /// How many minutes before a round starts check-in opens.
    pub checkin_opens_minutes: CheckinOpensMinutes,
    /// How many minutes after a round ends check-in closes.
    pub checkin_closes_minutes: CheckinClosesMinutes,
    /// Whether a claim of credit waits for the attendee's session feedback on the round.
    pub evaluation_required: bool,
    pub contacts: Contacts,
    /// The people who plan or review the series' content (speakers' ids, in order): each one's
    /// disclosure is judged on every round, as the speakers' are.
    pub planners: Planners,
    /// How many months a speaker's disclosure stays current after `attested_at`.
    pub disclosure_valid_months: DisclosureValidMonths,
    /// An active initiative with no PDSA decision, outcome or data point in this many days
    /// shows `unclosed_loop: true`.
    pub loop_alert_days: LoopAlertDays,
    /// The token subject that last changed it; shown to organizers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub updated_by: Option<Subject>,
    pub updated_at: Timestamp,
    #[serde(skip)]
    #[schema(ignore)]
    pub version: i64,
}

impl Series {
    /// The series' time zone (UTC if the stored name were ever not one: it is checked when
    /// written).
    pub fn zone(&self) -> Zone {
        timezone::named(self.timezone.as_str()).unwrap_or(Zone::UTC)
    }
}

crate::record!(Series, key |_: &Series| ID, version |s: &Series| s.version, hides updated_by);

/// The series, as written by PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Learning Health System Rounds", "timezone": "America/New_York",
    "default_location": "BMC – MassMutual 5", "default_start_time": "12:00",
    "default_duration_minutes": 60, "feedback_window_days": 30,
    "recurrence": "FREQ=MONTHLY;BYDAY=3TH",
    "contacts": [{"name": "Aubri Drake", "email": "aubri.drake@example.org",
        "role": "topics, suggestions and feedback"}]
}))]
pub struct SeriesInput {
    pub name: SeriesName,
    pub description: Option<SeriesDescription>,
    /// An IANA time zone name such as `America/New_York`.
    pub timezone: TimeZoneName,
    pub default_location: Option<DefaultLocation>,
    pub default_start_time: LocalTime,
    pub default_duration_minutes: Minutes,
    /// How many days after a round ends it still takes session feedback (from its start);
    /// 30 when left out.
    #[serde(default = "default_feedback_window")]
    #[schema(default = 30)]
    pub feedback_window_days: FeedbackWindowDays,
    /// An RFC 5545 RRULE of the subset a series needs: FREQ=WEEKLY or MONTHLY, INTERVAL, BYDAY
    /// (with an ordinal such as `3TH` or `-1TH` in a MONTHLY rule), BYSETPOS, BYMONTH, and
    /// UNTIL or COUNT. Anything else is refused, naming the part.
    pub recurrence: Option<RecurrenceText>,
    /// What INTERVAL and COUNT count from (and, for a rule without BYDAY, its weekday or day of
    /// the month); a plan's first day when left out.
    pub recurrence_start: Option<LocalDate>,
    /// Defaults to 45.
    #[serde(default = "default_attention_days")]
    #[schema(default = 45)]
    pub attention_days: AttentionDays,
    /// The dates plans skip, each once; a plan adds the skips it is given. Take one out to let
    /// the next plan make its round.
    #[serde(default)]
    pub skipped_dates: SkippedDates,
    /// `ama_pra_category_1`, `ancc_contact_hours` or `participation`; `null` or left out: none.
    pub credit_type: Option<CreditType>,
    /// A multiple of 0.25: what a new round designates unless it says otherwise; `null` or
    /// left out: each round's length, rounded to the quarter hour. Rounds already written keep
    /// theirs: credit is designated in advance, round by round.
    pub default_credit_hours: Option<QuarterHours>,
    /// 15 when left out.
    #[serde(default = "default_checkin_opens")]
    #[schema(default = 15)]
    pub checkin_opens_minutes: CheckinOpensMinutes,
    /// 60 when left out.
    #[serde(default = "default_checkin_closes")]
    #[schema(default = 60)]
    pub checkin_closes_minutes: CheckinClosesMinutes,
    /// `false` when left out.
    #[serde(default)]
    pub evaluation_required: bool,
    #[serde(default)]
    pub contacts: Contacts,
    /// Speakers' ids with their role (`planner` or `reviewer`), in order, each once.
    #[serde(default)]
    pub planners: Planners,
    /// Defaults to 12.
    #[serde(default = "default_disclosure_valid_months")]
    #[schema(default = 12)]
    pub disclosure_valid_months: DisclosureValidMonths,
    /// Days an active initiative may go without a PDSA decision, an outcome or a data point
    /// before its loop is flagged (`unclosed_loop`); 90 when left out.
    #[serde(default = "default_loop_alert_days")]
    #[schema(default = 90)]
    pub loop_alert_days: LoopAlertDays,
}

impl Input for SeriesInput {
    /// The time zone is one the tz database knows; the recurrence is a rule of the subset.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(zone) = doc.get::<String>("timezone") {
            if timezone::named(zone.trim()).is_none() {
                errors.push(FieldError::new(
                    "timezone",
                    format!(
                        "{zone:?} is not a time zone of the tz database; use an IANA name such \
                         as America/New_York"
                    ),
                ));
            }
        }
        if let Some(text) = doc.get::<String>("recurrence") {
            if let Err(error) = parse_recurrence(&text) {
                errors.push(error);
            }
        }
        let mut seen: Vec<(LocalDate, usize)> = Vec::new();
        for (i, skip) in doc
            .items::<SkippedDate>("skipped_dates")
            .into_iter()
            .enumerate()
        {
            let Some(skip) = skip else {
                continue;
            };
            match seen.iter().find(|(date, _)| *date == skip.date) {
                Some((_, first)) => errors.push(FieldError::new(
                    format!("skipped_dates[{i}].date"),
                    format!("{} is already skipped (skipped_dates[{first}])", skip.date),
                )),
                None => seen.push((skip.date, i)),
            }
        }
        let mut planners: Vec<(i32, usize)> = Vec::new();
        for (i, planner) in doc.items::<Planner>("planners").into_iter().enumerate() {
            let Some(planner) = planner else {
                continue;
            };
            match planners.iter().find(|(id, _)| *id == planner.speaker_id.0) {
                Some((_, first)) => errors.push(FieldError::new(
                    format!("planners[{i}].speaker_id"),
                    format!(
                        "speaker {} is already listed (planners[{first}])",
                        planner.speaker_id.0
                    ),
                )),
                None => planners.push((planner.speaker_id.0, i)),
            }
        }
        errors
    }
}

/// The rule of `text` (blank: none), or the 422 error that names the part at fault.
pub fn parse_recurrence(text: &str) -> Result<Option<Rule>, FieldError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Rule::parse(text)
        .map(Some)
        .map_err(|e| FieldError::new("recurrence", format!("{} {}", e.part, e.message)))
}

impl Series {
    /// The series' rule, if it has one (checked when written).
    pub fn rule(&self) -> Option<Rule> {
        self.recurrence
            .as_ref()
            .and_then(|text| Rule::parse(text.as_str()).ok())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = series)]
struct SeriesRow {
    name: String,
    description: Option<String>,
    timezone: String,
    default_location: Option<String>,
    default_start_time: String,
    default_duration_minutes: i32,
    contacts: String,
    version: i64,
    updated_at: chrono::NaiveDateTime,
    updated_by: Option<String>,
    feedback_window_days: i32,
    loop_alert_days: i32,
    recurrence: Option<String>,
    recurrence_start: Option<String>,
    attention_days: i32,
    skipped_dates: String,
    credit_type: Option<CreditType>,
    default_credit_quarter_hours: Option<i32>,
    checkin_opens_minutes: i32,
    checkin_closes_minutes: i32,
    evaluation_required: bool,
    planners: String,
    disclosure_valid_months: i32,
}

impl From<SeriesRow> for Series {
    fn from(row: SeriesRow) -> Self {
        Series {
            name: Name::stored(row.name),
            description: row.description.map(Text::stored),
            timezone: Name::stored(row.timezone),
            default_location: row.default_location.map(Text::stored),
            default_start_time: LocalTime::parse(&row.default_start_time)
                .unwrap_or(LocalTime::NOON),
            default_duration_minutes: Minutes::clamped(i64::from(row.default_duration_minutes)),
            feedback_window_days: FeedbackWindowDays::clamped(i64::from(row.feedback_window_days)),
            recurrence: row.recurrence.map(Line::stored),
            recurrence_start: row.recurrence_start.as_deref().and_then(LocalDate::parse),
            attention_days: AttentionDays::clamped(i64::from(row.attention_days)),
            skipped_dates: serde_json::from_str(&row.skipped_dates).unwrap_or_default(),
            credit_type: row.credit_type,
            default_credit_hours: row
                .default_credit_quarter_hours
                .map(|q| QuarterHours::clamped(i64::from(q))),
            checkin_opens_minutes: CheckinOpensMinutes::clamped(i64::from(
                row.checkin_opens_minutes,
            )),
            checkin_closes_minutes: CheckinClosesMinutes::clamped(i64::from(
                row.checkin_closes_minutes,
            )),
            evaluation_required: row.evaluation_required,
            contacts: serde_json::from_str(&row.contacts).unwrap_or_default(),
            planners: serde_json::from_str(&row.planners).unwrap_or_default(),
            disclosure_valid_months: DisclosureValidMonths::clamped(i64::from(
                row.disclosure_valid_months,
            )),
            loop_alert_days: LoopAlertDays::clamped(i64::from(row.loop_alert_days)),
            updated_by: row.updated_by.map(Text::stored),
            updated_at: Timestamp::from_naive(row.updated_at),
            version: row.version,
        }
    }
}

/// The series' time zone, for rendering rounds in local time.
pub fn zone(conn: &mut DbConnection) -> Result<Zone, ApiError> {
    let name = crate::on_backend!(conn, |c| series::table
        .find(ID)
        .select(series::timezone)
        .first::<String>(c)
        .optional())?;
    Ok(zone_named(name.as_deref()))
}

/// The series' name and time zone (a certificate's heading and dates).
pub fn name_and_zone(conn: &mut DbConnection) -> Result<(String, Zone), ApiError> {
    let row = crate::on_backend!(conn, |c| series::table
        .find(ID)
        .select((series::name, series::timezone))
        .first::<(String, String)>(c)
        .optional())?;
    Ok(match row {
        Some((name, zone)) => (name, zone_named(Some(&zone))),
        None => ("LHS Rounds".to_owned(), zone_named(None)),
    })
}

/// The zone of the series' `timezone` column as read by another query.
pub fn zone_named(name: Option<&str>) -> Zone {
    timezone::named_or_default(name)
}

/// What a round designates unless an organizer says otherwise, from the series' credit
/// settings: nothing without a credit type; else the series' default, or the round's length,
/// each at most the length rounded to the quarter hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreditDefault {
    pub credit_type: Option<CreditType>,
    pub default_hours: Option<QuarterHours>,
}

impl CreditDefault {
    /// The designation of a round of `seconds`.
    pub fn designation(&self, seconds: i64) -> QuarterHours {
        let longest = QuarterHours::of_seconds_rounded(seconds);
        match (self.credit_type, self.default_hours) {
            (None, _) => QuarterHours::ZERO,
            (Some(_), None) => longest,
            (Some(_), Some(hours)) => hours.min(longest),
        }
    }
}

/// The series' [`CreditDefault`], in one statement.
pub fn credit_default(conn: &mut DbConnection) -> Result<CreditDefault, ApiError> {
    let row = crate::on_backend!(conn, |c| series::table
        .find(ID)
        .select((series::credit_type, series::default_credit_quarter_hours))
        .first::<(Option<CreditType>, Option<i32>)>(c)
        .optional())?;
    Ok(
        row.map_or_else(CreditDefault::default, |(credit_type, quarters)| {
            CreditDefault {
                credit_type,
                default_hours: quarters.map(|q| QuarterHours::clamped(i64::from(q))),
            }
        }),
    )
}

/// The series: what [`resource`] needs to serve it. It is one record, changed and never
/// created or deleted.
pub struct SeriesRecord;

impl Resource for SeriesRecord {
    const NAME: &'static str = "series";
    const COLLECTION: &'static str = "series";
    const SCHEDULE: bool = true;
    const WRITE: Allowed = Allowed::Role(Role::Organizer);
    type Record = Series;
    type Input = SeriesInput;
    type Change = SeriesInput;
    type Filter = NoFilter;

    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Series>, ApiError> {
        Ok(crate::on_backend!(conn, |c| series::table
            .find(id)
            .select(SeriesRow::as_select())
            .first(c)
            .optional())?
        .map(Series::from))
    }

    fn change_of(record: &Series) -> SeriesInput {
        SeriesInput {
            name: record.name.clone(),
            description: record.description.clone(),
            timezone: record.timezone.clone(),
            default_location: record.default_location.clone(),
            default_start_time: record.default_start_time,
            default_duration_minutes: record.default_duration_minutes,
            feedback_window_days: record.feedback_window_days,
            recurrence: record.recurrence.clone(),
            recurrence_start: record.recurrence_start,
            attention_days: record.attention_days,
            skipped_dates: record.skipped_dates.clone(),
            credit_type: record.credit_type,
            default_credit_hours: record.default_credit_hours,
            checkin_opens_minutes: record.checkin_opens_minutes,
            checkin_closes_minutes: record.checkin_closes_minutes,
            evaluation_required: record.evaluation_required,
            contacts: record.contacts.clone(),
            planners: record.planners.clone(),
            disclosure_valid_months: record.disclosure_valid_months,
            loop_alert_days: record.loop_alert_days,
        }
    }

    /// The one series is changed, never created or deleted.
    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Series>, ApiError> {
        let input = &update.change;
        let contacts = serde_json::to_string(&input.contacts)?;
        let planners = serde_json::to_string(&input.planners)?;
        let mut skipped = input.skipped_dates.0.clone();
        skipped.sort_by_key(|s| s.date);
        let skipped = serde_json::to_string(&skipped)?;
        let start = serde_json::to_value(input.default_start_time)?;
        // Stored as the canonical text: `rrule:freq=monthly;byday=3th` reads back as
        // `FREQ=MONTHLY;BYDAY=3TH`. The rules checked it, so a refusal here is a defect.
        let recurrence = match &input.recurrence {
            Some(text) => parse_recurrence(text.as_str())
                .map_err(|e| {
                    ApiError::Internal(format!("a recurrence the rules let pass: {}", e.message))
                })?
                .map(|rule| rule.to_string()),
            None => None,
        };
        let target = series::table
            .find(ID)
            .filter(series::version.eq(update.expected));
        let row = crate::on_backend!(conn, |c| diesel::update(target)
            .set((
                series::name.eq(input.name.as_str()),
                series::description.eq(Text::non_blank(input.description.as_ref())),
                series::timezone.eq(input.timezone.as_str()),
                series::default_location.eq(Text::non_blank(input.default_location.as_ref())),
                series::default_start_time.eq(start.as_str().unwrap_or("12:00")),
                series::default_duration_minutes.eq(input.default_duration_minutes.get() as i32),
                series::feedback_window_days.eq(input.feedback_window_days.get() as i32),
                series::contacts.eq(&contacts),
                series::loop_alert_days.eq(input.loop_alert_days.get() as i32),
                series::recurrence.eq(recurrence.as_deref()),
                series::recurrence_start.eq(input.recurrence_start.map(|d| d.to_string())),
                series::attention_days.eq(input.attention_days.get() as i32),
                series::skipped_dates.eq(&skipped),
                (
                    series::credit_type.eq(input.credit_type),
                    series::default_credit_quarter_hours
                        .eq(input.default_credit_hours.map(QuarterHours::quarters)),
                    series::checkin_opens_minutes.eq(input.checkin_opens_minutes.get() as i32),
                    series::checkin_closes_minutes.eq(input.checkin_closes_minutes.get() as i32),
                    series::evaluation_required.eq(input.evaluation_required),
                ),
                series::planners.eq(&planners),
                series::disclosure_valid_months.eq(input.disclosure_valid_months.get() as i32),
                series::updated_at.eq(db::now()),
                series::updated_by.eq(update.actor),
                series::version.eq(series::version + 1),
            ))
            .returning(SeriesRow::as_returning())
            .get_result(c)
            .optional())?;
        Ok(row.map(Series::from))
    }
}

// ---- handlers ----------------------------------------------------------------------------

/// Get the series: its name, description, time zone, defaults and contacts
#[utoipa::path(
    tag = "series",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The series", body = Series), ReadErrors)
)]
#[get("/series")]
pub async fn get_series(ctx: Ctx) -> Result<HttpResponse, ApiError> {
    resource::get::<SeriesRecord>(ctx, ID).await
}

/// Replace the series
#[utoipa::path(
    tag = "series",
    security(("bearer" = ["organizer", "admin"])),
    request_body = SeriesInput,
    responses((status = 200, description = "The series as replaced", body = Series), WriteErrors)
)]
#[put("/series")]
pub async fn replace_series(ctx: Ctx, body: JsonBody) -> Result<HttpResponse, ApiError> {
    resource::replace::<SeriesRecord>(ctx, ID, body).await
}

/// Change some fields of the series (JSON merge patch)
#[utoipa::path(
    tag = "series",
    security(("bearer" = ["organizer", "admin"])),
    request_body(content = SeriesInput, content_type = "application/merge-patch+json",
        description = "Fields to change; `null` clears an optional field; `contacts` is replaced whole"),
    responses((status = 200, description = "The series as changed", body = Series), WriteErrors)
)]
#[patch("/series")]
pub async fn patch_series(ctx: Ctx, body: JsonBody) -> Result<HttpResponse, ApiError> {
    resource::patch::<SeriesRecord>(ctx, ID, body).await
}

/// What the demo loads: the series as the hospital's page describes it.
pub fn seed(conn: &mut DbConnection, page: SeriesInput) -> Result<bool, ApiError> {
    let Some(current) = SeriesRecord::find(conn, ID)? else {
        return Ok(false);
    };
    // Only a series nobody has described yet: running the demo twice changes nothing.
    if current.description.is_some() {
        return Ok(false);
    }
    let version = current.version;
    let update = Update {
        current,
        change: page,
        actor: Some("demo"),
        expected: version,
    };
    Ok(SeriesRecord::update(conn, update)?.is_some())
}
