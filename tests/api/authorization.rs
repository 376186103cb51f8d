//! Authorize first, everywhere: every operation of the OpenAPI document, sent without a token,
//! with a token that carries no role, and as a viewer, an organizer and an admin. The role each
//! operation needs is read from its `security` in the document, which must say what the role
//! table of docs/api.md says (`role_table`), and is then checked against what the service does.
//! A new route fails here until it is in that table (and its request body, if it has a new one,
//! has a plausible example in `plausible_body`).
//!
//! A caller who may not make a request gets 401 or 403 whatever body it sends, malformed or
//! not (the body is never parsed for it), and whatever its path names, existing or not (nothing
//! is looked up for it), and nothing is stored, changed or logged as a change: the change log's
//! newest number, every table's rows, the schedule's revision and the files of the file store
//! are the same after as before. A caller who may gets 400 for a malformed body, 422 for one
//! its schema refuses (nothing stored either), and a 2xx the document lists for a plausible one.
//! An upload's body is a file's bytes: no bytes at all and a file of a kind the service does
//! not take are both 415 (nothing stored), a small PDF is taken.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, SecondsFormat, Utc};
use lhs_rounds::platform::auth::Role;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{id_of, spawn_app_with, Receiver, TestApp};

on_both_backends!(every_operation_is_authorized_before_anything_else);

/// Who an operation is for, as its `security` in the document says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// `[]` or `[{}, {"bearer": []}]`: anyone, with a token or not (the defaults of
    /// `LHS_PUBLIC_READ` and `LHS_ANONYMOUS_FEEDBACK`).
    Open,
    /// `[{"bearer": []}]`: any signed-in caller.
    SignedIn,
    /// `[{"bearer": [role, and each role above it]}]`.
    Role(Role),
    /// Declared `[{"bearer": []}]` (any signed-in caller may ask), and then granted to the
    /// person the path names (the speaker of a place, or the attendee of a record or a
    /// transcript, whose `sub` is the token's) or to a caller with the role: what the route
    /// decides before it looks anything else up.
    SpeakerOr(Role),
}

impl Rule {
    /// What the document's `security` says of this rule: it cannot name the speaker.
    fn declared(self) -> Rule {
        match self {
            Rule::SpeakerOr(_) => Rule::SignedIn,
            other => other,
        }
    }
}

/// The rule of an operation's `security`, failing on any other form: the scopes of a role
/// must list it and every role above it, as the service grants it to them.
fn rule_of(what: &str, security: &Value) -> Rule {
    let roles = Role::ALL.map(Role::as_str);
    match security {
        Value::Array(alternatives) if alternatives.is_empty() => Rule::Open,
        Value::Array(alternatives) if *alternatives == [json!({}), json!({"bearer": []})] => {
            Rule::Open
        }
        Value::Array(alternatives) if *alternatives == [json!({"bearer": []})] => Rule::SignedIn,
        Value::Array(alternatives) if alternatives.len() == 1 => {
            let scopes: Vec<&str> = alternatives[0]["bearer"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: security {security} is not the bearer scheme"))
                .iter()
                .map(|scope| scope.as_str().unwrap())
                .collect();
            let lowest = (0..roles.len())
                .find(|&i| scopes == roles[i..])
                .unwrap_or_else(|| {
                    panic!("{what}: scopes {scopes:?} are not a role and every role above it")
                });
            Rule::Role(Role::ALL[lowest])
        }
        other => panic!("{what}: unexpected security {other}"),
    }
}

/// The role table of docs/api.md ("Who may do what"), operation by operation: what the
/// document must declare. A route missing here fails the test until its rule is decided.
fn role_table(method: &str, template: &str) -> Rule {
    let organizer = Rule::Role(Role::Organizer);
    let admin = Rule::Role(Role::Admin);
    let path = template.strip_prefix("/api/v1").unwrap_or(template);
    match (method, path) {
        // Probes; the schedule, its calendars, the change feed: anyone (LHS_PUBLIC_READ).
        ("GET", "/healthz" | "/readyz") => Rule::Open,
        ("GET", "/rounds" | "/rounds/{id}" | "/rounds.ics" | "/rounds/{id}.ics") => Rule::Open,
        ("GET", "/speakers" | "/speakers/{id}" | "/speakers/{id}/rounds") => Rule::Open,
        ("GET", "/departments" | "/departments/{id}" | "/series") => Rule::Open,
        ("GET", "/rounds/{id}/feedback/summary" | "/changes") => Rule::Open,
        // Materials: anyone reads them (LHS_PUBLIC_READ); what each caller may see of them is
        // their visibility's to decide (one they may not see is 404, in lists left out).
        (
            "GET",
            "/rounds/{id}/materials"
            | "/rounds/{id}/materials/{material_id}"
            | "/rounds/{id}/materials/{material_id}/file",
        ) => Rule::Open,
        // The learning loop: anyone reads it (LHS_PUBLIC_READ; team members' and owners' e-mail
        // addresses are organizers'); organizers write it and list action items across rounds.
        (
            "GET",
            "/initiatives"
            | "/initiatives/{id}"
            | "/initiatives/{id}/report"
            | "/initiatives/{id}/pdsa-cycles"
            | "/initiatives/{id}/measures"
            | "/rounds/{id}/initiatives"
            | "/pdsa-cycles/{id}"
            | "/measures/{id}"
            | "/measures/{id}/points"
            | "/measures/{id}/run-chart"
            | "/measures/{id}/run-chart.svg"
            | "/rounds/{id}/outcomes"
            | "/rounds/{id}/carried-over"
            | "/outcomes/{id}"
            | "/action-items.ics",
        ) => Rule::Open,
        ("GET", "/action-items") => organizer,
        (
            "POST",
            "/initiatives" | "/initiatives/{id}/pdsa-cycles" | "/initiatives/{id}/measures",
        ) => organizer,
        ("POST", "/rounds/{id}/outcomes") => organizer,
        (
            "PUT" | "PATCH" | "DELETE",
            "/initiatives/{id}" | "/pdsa-cycles/{id}" | "/measures/{id}" | "/outcomes/{id}",
        ) => organizer,
        ("PUT" | "DELETE", "/initiatives/{id}/rounds/{round_id}") => organizer,
        ("PUT", "/measures/{id}/points") => organizer,
        ("DELETE", "/measures/{id}/points/{period}") => organizer,
        // Attendance and credit: anyone with a round's code checks in; a person reads their own
        // attendee, records and transcript (the path's person is the token's); organizers the
        // rest.
        ("POST", "/rounds/{id}/attendance") => Rule::Open,
        ("GET" | "PATCH", "/me/attendee") | ("GET", "/me/transcript") => Rule::SignedIn,
        ("GET", "/attendees/{id}/transcript") => Rule::SpeakerOr(Role::Organizer),
        ("GET" | "PATCH", "/rounds/{id}/attendance/{aid}") => Rule::SpeakerOr(Role::Organizer),
        ("GET" | "POST", "/attendees") => organizer,
        ("GET" | "PUT" | "PATCH" | "DELETE", "/attendees/{id}") => organizer,
        ("GET", "/rounds/{id}/attendance" | "/rounds/{id}/checkin.svg" | "/series/report") => {
            organizer
        }
        ("GET" | "POST", "/rounds/{id}/checkin-code") => organizer,
        (
            "POST",
            "/rounds/{id}/attendance/import"
            | "/rounds/{id}/attendance/{aid}/credit"
            | "/rounds/{id}/attendance/{aid}/void",
        ) => organizer,
        // Who the token says the caller is: any signed-in caller, even one granted no role.
        ("GET", "/me") => Rule::SignedIn,
        // Feedback: anyone sends it (LHS_ANONYMOUS_FEEDBACK); organizers read and triage it.
        ("POST", "/feedback" | "/rounds/{id}/feedback") => Rule::Open,
        ("GET", "/feedback" | "/feedback/{id}" | "/rounds/{id}/feedback") => organizer,
        ("PATCH", "/feedback/{id}") => organizer,
        ("DELETE", "/feedback/{id}") => admin,
        // Rounds, speakers and the series: organizers.
        ("POST", "/rounds" | "/speakers") => organizer,
        ("PUT" | "PATCH" | "DELETE", "/rounds/{id}" | "/speakers/{id}") => organizer,
        ("PUT" | "PATCH", "/series") => organizer,
        // Planning: the year's rounds and what needs attention, organizers.
        ("POST", "/series/plan") => organizer,
        ("GET", "/rounds/attention") => organizer,
        // A speaker answers for their own place (signed in, any role or none); organizers for
        // anyone's.
        ("PUT", "/rounds/{id}/speakers/{speaker_id}/response") => Rule::SpeakerOr(Role::Organizer),
        // Disclosures: the speaker's own (signed in, any role or none), organizers anyone's; a
        // round's review, readiness and publishing, organizers; its statement, anyone.
        ("GET" | "PUT", "/speakers/{id}/disclosure") => Rule::SpeakerOr(Role::Organizer),
        ("GET", "/speakers/{id}/disclosure/history") => Rule::SpeakerOr(Role::Organizer),
        ("GET" | "PUT", "/rounds/{id}/disclosure-review") => organizer,
        ("GET", "/rounds/{id}/readiness") => organizer,
        ("POST", "/rounds/{id}/disclosure-statement") => organizer,
        ("GET", "/rounds/{id}/disclosure-statement") => Rule::Open,
        // Materials and their files: organizers.
        ("POST", "/rounds/{id}/materials") => organizer,
        ("PUT" | "PATCH" | "DELETE", "/rounds/{id}/materials/{material_id}") => organizer,
        ("PUT" | "DELETE", "/rounds/{id}/materials/{material_id}/file") => organizer,
        // Departments, webhooks and the audit trail: admins.
        ("POST", "/departments") => admin,
        ("PUT" | "PATCH" | "DELETE", "/departments/{id}") => admin,
        (_, webhooks) if webhooks.starts_with("/webhooks") => admin,
        ("GET", "/audit") => admin,
        _ => panic!("{method} {template} is not in the role table of this test (docs/api.md)"),
    }
}

/// The `sub` of the speaker on the test's rounds: the caller with a token of no role.
const SPEAKER_SUB: &str = "nobody@example.org";

/// A caller of the test: its name, its token and its roles (`None`: no token), and whether it
/// is the speaker whose places the test's paths name.
struct Caller {
    name: &'static str,
    token: Option<String>,
    roles: Option<Vec<Role>>,
    speaker: bool,
}

impl Caller {
    fn may(&self, rule: Rule) -> bool {
        let has = |needed: Role, roles: &[Role]| roles.iter().any(|role| *role >= needed);
        match (rule, &self.roles) {
            (Rule::Open, _) => true,
            (_, None) => false,
            (Rule::SignedIn, Some(_)) => true,
            (Rule::Role(needed), Some(roles)) => has(needed, roles),
            (Rule::SpeakerOr(needed), Some(roles)) => self.speaker || has(needed, roles),
        }
    }

    /// What a refused call answers: 401 without a token, 403 with one.
    fn refusal(&self) -> u16 {
        if self.token.is_none() {
            401
        } else {
            403
        }
    }
}

/// Records for an operation's path to name, made by the admin: each of a kind the path's ids
/// can name, none referring to another (so each may be deleted) but the round's own: a round
/// held an hour ago (so it takes session feedback) with the test's speaker invited to it (the
/// place `{speaker_id}` names, which its speaker may answer) and a public material with a file
/// (so that anyone finds it, and its file may be downloaded, replaced or deleted).
#[derive(Debug, Clone)]
struct Records {
    department: i32,
    speaker: i32,
    round: i32,
    /// The speaker invited to `round`, whose `sub` is [`SPEAKER_SUB`]: one for the whole run
    /// (a `sub` names one speaker).
    speaker_on_round: i32,
    material: i32,
    feedback: i32,
    webhook: Option<(i32, i64)>,
    /// An initiative with nothing of its own but a link to `linked_round` (so it may be
    /// deleted, and the link too).
    initiative: i32,
    linked_round: i32,
    /// A PDSA cycle and a measure (with a point for [`PERIOD`]) of another initiative, and an
    /// outcome of another round: what each is part of stays deletable.
    cycle: i32,
    measure: i32,
    outcome: i32,
    /// An attendee with no attendance (so it may be deleted).
    attendee: i32,
    /// `round`'s check-in code (the round is held now: check-in is open).
    code: String,
    /// An attendance record of the test's person (the attendee whose `sub` is [`SPEAKER_SUB`])
    /// on a round of its own (a round with attendance cannot be deleted).
    attendance_round: i32,
    attendance: i32,
    /// The test's person as an attendee: one for the whole run.
    person: i32,
}

/// The period of the point of `Records::measure`.
const PERIOD: &str = "2023-01-01";

/// A small PDF: a file the service takes.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
/// A 1x1 GIF: a file of a kind the service does not take (415).
const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// Everything a request of the test may have changed, by name.
type Snapshot = BTreeMap<&'static str, String>;

struct Run {
    app: TestApp,
    receiver: Receiver,
    /// The attendee whose `sub` is [`SPEAKER_SUB`].
    person: i32,
    /// The speaker whose `sub` is [`SPEAKER_SUB`], invited to every round of `records`.
    speaker_on_rounds: i32,
    /// Makes the names of new records unique.
    serial: std::cell::Cell<u32>,
}

impl Run {
    fn next(&self) -> u32 {
        let n = self.serial.get() + 1;
        self.serial.set(n);
        n
    }

    /// Fresh records; a webhook (with a delivery) only for the webhooks' operations, since every
    /// webhook gets a message for each change it listens to.
    async fn records(&self, with_webhook: bool) -> Records {
        let app = &self.app;
        let n = self.next();
        let webhook = match with_webhook {
            true => Some(self.webhook().await),
            false => None,
        };
        let now = Utc::now();
        let mut round = held_round(now);
        round["speakers"] = json!([{"speaker_id": self.speaker_on_rounds, "status": "invited"}]);
        let round = id_of(&app.create("/api/v1/rounds", round).await);
        let material = id_of(
            &app.create(
                &format!("/api/v1/rounds/{round}/materials"),
                json!({"kind": "slides", "title": format!("Slides {n}"), "visibility": "public"}),
            )
            .await,
        );
        let upload = app
            .client
            .put(app.url(&format!("/api/v1/rounds/{round}/materials/{material}/file")))
            .bearer_auth(app.admin_token.as_deref().unwrap())
            .header("content-type", "application/pdf")
            .body(PDF)
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), 200, "{}", upload.text().await.unwrap());
        // The test's speaker has a disclosure attested before the round, and the round a
        // published statement.
        let attested = app
            .put(
                &format!("/api/v1/speakers/{}/disclosure", self.speaker_on_rounds),
                &json!({"no_relationships": true, "attested_at": (now - Duration::days(1))
                    .to_rfc3339_opts(SecondsFormat::Secs, true)}),
            )
            .await;
        assert_eq!(attested.status(), 200, "{}", attested.text().await.unwrap());
        let published = app
            .post(
                &format!("/api/v1/rounds/{round}/disclosure-statement"),
                &json!({}),
            )
            .await;
        assert_eq!(
            published.status(),
            201,
            "{}",
            published.text().await.unwrap()
        );
        let initiative = id_of(
            &app.create(
                "/api/v1/initiatives",
                json!({"title": format!("Initiative {n}")}),
            )
            .await,
        );
        let linked_round = id_of(&app.create("/api/v1/rounds", held_round(now)).await);
        let link = app
            .put(
                &format!("/api/v1/initiatives/{initiative}/rounds/{linked_round}"),
                &json!({"purpose": "introduce"}),
            )
            .await;
        assert!(link.status().is_success(), "{}", link.status());
        let host = id_of(
            &app.create("/api/v1/initiatives", json!({"title": format!("Host {n}")}))
                .await,
        );
        let cycle = id_of(
            &app.create(
                &format!("/api/v1/initiatives/{host}/pdsa-cycles"),
                json!({"change_idea": format!("Idea {n}")}),
            )
            .await,
        );
        let measure = id_of(
            &app.create(
                &format!("/api/v1/initiatives/{host}/measures"),
                json!({"name": format!("Measure {n}"), "type": "process",
                       "data_type": "count", "frequency": "month",
                       "improvement_direction": "increase"}),
            )
            .await,
        );
        let point = app
            .put(
                &format!("/api/v1/measures/{measure}/points"),
                &json!({"points": [{"period": PERIOD, "value": 1}]}),
            )
            .await;
        assert_eq!(point.status(), 200);
        let outcome_round = id_of(&app.create("/api/v1/rounds", held_round(now)).await);
        let outcome = id_of(
            &app.create(
                &format!("/api/v1/rounds/{outcome_round}/outcomes"),
                json!({"kind": "information", "text": format!("Noted {n}")}),
            )
            .await,
        );
        let code = app
            .get_ok(&format!("/api/v1/rounds/{round}/checkin-code"))
            .await["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let attendance_round = id_of(&app.create("/api/v1/rounds", held_round(now)).await);
        let attendance = id_of(
            &app.create(
                &format!("/api/v1/rounds/{attendance_round}/attendance"),
                json!({"attendee_id": self.person, "reason": "Signed the sheet"}),
            )
            .await,
        );
        let attendee = id_of(
            &app.create(
                "/api/v1/attendees",
                json!({"full_name": format!("Learner {n}"),
                       "email": format!("learner{n}@example.org"), "profession": "nurse"}),
            )
            .await,
        );
        Records {
            attendee,
            code,
            attendance_round,
            attendance,
            person: self.person,
            initiative,
            linked_round,
            cycle,
            measure,
            outcome,
            department: app.department(&format!("Unit {n}")).await,
            speaker: app.speaker(&format!("Speaker {n}"), &["MD"]).await,
            round,
            speaker_on_round: self.speaker_on_rounds,
            material,
            feedback: id_of(
                &app.create(
                    "/api/v1/feedback",
                    json!({"kind": "general", "comment": format!("Comment {n}")}),
                )
                .await,
            ),
            webhook,
        }
    }

    /// A webhook listening to deleted departments, and the delivery of one such message.
    async fn webhook(&self) -> (i32, i64) {
        let app = &self.app;
        let webhook = id_of(
            &app.create(
                "/api/v1/webhooks",
                json!({"url": self.receiver.url, "events": ["department.deleted"]}),
            )
            .await,
        );
        let department = app.department(&format!("Gone {}", self.next())).await;
        let deleted = app
            .delete(&format!("/api/v1/departments/{department}"))
            .await;
        assert_eq!(deleted.status(), 204);
        let deliveries = app
            .get_ok(&format!("/api/v1/webhooks/{webhook}/deliveries"))
            .await;
        let delivery = deliveries["items"][0]["id"]
            .as_i64()
            .expect("the webhook has a delivery");
        (webhook, delivery)
    }

    /// The change log's newest number, the rows of every table, the schedule's revision, the
    /// last write to each table with an `updated_at`, the speakers' answers, the series'
    /// planning, the materials' files and the files in the file store.
    async fn snapshot(&self) -> Snapshot {
        use diesel::dsl::{count_star, max};
        use diesel::prelude::*;
        use lhs_rounds::platform::schema::*;
        let database = self.app.database.clone();
        let materials_dir = self.app.materials_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = database.connection().unwrap();
            let conn = &mut *conn;
            // What writes have queued for the log is numbered first (the webhook worker might
            // do it between two snapshots): a refused request's entry would show in `changes`.
            lhs_rounds::platform::changelog::number(conn).unwrap();
            let mut seen = Snapshot::new();
            macro_rules! rows {
                ($($table:ident),*) => {$(
                    let n: i64 = $table::table.select(count_star()).get_result(conn).unwrap();
                    seen.insert(stringify!($table), n.to_string());
                )*};
            }
            rows!(
                departments,
                speakers,
                rounds,
                round_speakers,
                round_departments,
                feedback,
                idempotency_keys,
                changes,
                change_log_queue,
                webhooks,
                webhook_messages,
                materials,
                disclosures,
                disclosure_relationships,
                disclosure_reviews,
                disclosure_statements,
                attendees,
                checkin_codes,
                attendance,
                initiatives,
                initiative_team,
                initiative_departments,
                initiative_rounds,
                pdsa_cycles,
                measures,
                data_points,
                round_outcomes
            );
            macro_rules! last_write {
                ($($table:ident),*) => {$(
                    let at: Option<chrono::NaiveDateTime> = $table::table
                        .select(max($table::updated_at))
                        .get_result(conn)
                        .unwrap();
                    seen.insert(concat!(stringify!($table), ".updated_at"), format!("{at:?}"));
                )*};
            }
            last_write!(
                departments,
                speakers,
                rounds,
                feedback,
                webhooks,
                series,
                materials,
                attendees,
                attendance,
                initiatives,
                pdsa_cycles,
                measures,
                data_points,
                round_outcomes
            );
            // A speaker's answer changes a place, not the number of places.
            let answers: (i64, Option<chrono::NaiveDateTime>) = round_speakers::table
                .filter(round_speakers::status.ne("invited"))
                .select((count_star(), max(round_speakers::responded_at)))
                .get_result(conn)
                .unwrap();
            seen.insert("round_speakers.answered", format!("{answers:?}"));
            // An upload or a file deleted changes a material's file, not the materials.
            let files: (i64, Option<chrono::NaiveDateTime>) = materials::table
                .filter(materials::file_key.is_not_null())
                .select((count_star(), max(materials::file_uploaded_at)))
                .get_result(conn)
                .unwrap();
            seen.insert("materials.files", format!("{files:?}"));
            // What plans read and keep: the rule, how far ahead attention looks, the skips.
            let planning: (Option<String>, i32, String) = series::table
                .select((
                    series::recurrence,
                    series::attention_days,
                    series::skipped_dates,
                ))
                .get_result(conn)
                .unwrap();
            seen.insert("series.planning", format!("{planning:?}"));
            seen.insert("file store", stored_files(&materials_dir));
            let seq: Option<i64> = changes::table
                .select(max(changes::seq))
                .get_result(conn)
                .unwrap();
            seen.insert("changes.seq", format!("{seq:?}"));
            let revision: i64 = schedule_revision::table
                .select(schedule_revision::revision)
                .get_result(conn)
                .unwrap();
            seen.insert("schedule_revision", revision.to_string());
            let version: i64 = series::table
                .select(series::version)
                .get_result(conn)
                .unwrap();
            seen.insert("series.version", version.to_string());
            seen
        })
        .await
        .unwrap()
    }
}

/// The files under `dir` (the local file store, staging files included): how many, and a
/// digest of their names and sizes.
fn stored_files(dir: &std::path::Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(path);
            } else {
                found.push((path, meta.len()));
            }
        }
    }
    found.sort();
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    found.hash(&mut digest);
    format!("{} files, digest {:x}", found.len(), digest.finish())
}

/// A round held from 90 to 30 minutes ago: inside its session feedback window, and its
/// check-in still open (it closes an hour after the end).
fn held_round(now: chrono::DateTime<Utc>) -> Value {
    let minutes = |m: i64| (now - Duration::minutes(m)).to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({"starts_at": minutes(90), "ends_at": minutes(30), "location": "BMC – MassMutual 5"})
}

/// The path with its ids filled from `records`: `{id}` names a record of the collection
/// before it, `{delivery_id}` the webhook's delivery, `{material_id}` the round's material,
/// `{speaker_id}` the speaker on the round, `{round_id}` the round linked to the initiative and
/// `{period}` the measure's point.
fn fill(template: &str, records: &Records) -> String {
    let segments: Vec<&str> = template.split('/').collect();
    let mut path = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let id = match (
            segment.contains("{id}"),
            i.checked_sub(1).map(|j| segments[j]),
        ) {
            // A record's round is its own.
            (true, Some("rounds")) if template.contains("{aid}") => {
                records.attendance_round.to_string()
            }
            (true, Some("rounds")) => records.round.to_string(),
            // A transcript is the test's person's; any other attendee path a fresh attendee's.
            (true, Some("attendees")) if template.ends_with("/transcript") => {
                records.person.to_string()
            }
            (true, Some("attendees")) => records.attendee.to_string(),
            // A disclosure's path names the test's speaker, who may read and write their own.
            (true, Some("speakers")) if template.contains("/disclosure") => {
                records.speaker_on_round.to_string()
            }
            (true, Some("speakers")) => records.speaker.to_string(),
            (true, Some("departments")) => records.department.to_string(),
            (true, Some("feedback")) => records.feedback.to_string(),
            (true, Some("webhooks")) => records.webhook.expect("a webhook").0.to_string(),
            (true, Some("initiatives")) => records.initiative.to_string(),
            (true, Some("pdsa-cycles")) => records.cycle.to_string(),
            (true, Some("measures")) => records.measure.to_string(),
            (true, Some("outcomes")) => records.outcome.to_string(),
            (true, collection) => panic!("{template}: what does {{id}} name after {collection:?}?"),
            (false, _) => String::new(),
        };
        let delivery = records
            .webhook
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        path.push(
            segment
                .replace("{id}", &id)
                .replace("{delivery_id}", &delivery)
                .replace("{material_id}", &records.material.to_string())
                .replace("{speaker_id}", &records.speaker_on_round.to_string())
                .replace("{round_id}", &records.linked_round.to_string())
                .replace("{period}", PERIOD)
                .replace("{aid}", &records.attendance.to_string()),
        );
    }
    let mut path = path.join("/");
    // The yearly report is of a year.
    if template.ends_with("/series/report") {
        path.push_str("?year=2026");
    }
    assert!(
        !path.contains('{'),
        "{template}: an id this test does not fill"
    );
    path
}

/// The path with every id naming nothing: what a caller might send to learn what exists.
fn fill_missing(template: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("a closed parameter") + open;
        path.push_str(&rest[..open]);
        path.push_str("999999");
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    path
}

/// A body the operation's schema (`component`) takes, naming `records`.
fn plausible_body(component: &str, records: &Records, receiver: &str, n: u32) -> Value {
    let when = |day: u32| format!("2027-04-{day:02}T16:00:00Z");
    match component {
        "DepartmentInput" => json!({"name": format!("Department {n}")}),
        "DepartmentPatch" => json!({"abbreviation": "U"}),
        "SpeakerInput" => json!({"full_name": format!("Person {n}"), "credentials": ["MD"]}),
        "SpeakerPatch" => json!({"title": "Professor"}),
        "RoundInput" => json!({"starts_at": when(15), "ends_at": "2027-04-15T17:00:00Z",
                               "location": "BMC – MassMutual 5"}),
        "RoundPatch" => json!({"title": "Changed"}),
        "FeedbackInput" => {
            json!({"kind": "session_feedback", "round_id": records.round, "rating": 5})
        }
        "RoundFeedbackInput" => json!({"kind": "session_feedback", "rating": 4}),
        "FeedbackTriagePatch" => json!({"status": "reviewed"}),
        // A new value each time: a write that changes nothing might log nothing.
        "SeriesInput" => json!({"name": "Learning Health System Rounds",
                                "description": format!("Revision {n}"),
                                "timezone": "America/New_York", "default_start_time": "12:00",
                                "default_duration_minutes": 60, "feedback_window_days": 30,
                                "recurrence": "FREQ=MONTHLY;BYDAY=3TH",
                                "credit_type": "ama_pra_category_1"}),
        // A range of its own each time, of 71 days: two or three third Thursdays, the first
        // skipped (a skip must be a date the recurrence gives; kept in the series), so that at
        // least one round is made.
        "PlanInput" => {
            let from =
                NaiveDate::from_ymd_opt(2030, 1, 1).unwrap() + Duration::days(71 * i64::from(n));
            let to = from + Duration::days(70);
            let third_thursday = |date: NaiveDate| {
                let first = date.with_day(1).unwrap();
                let to_thursday = (7 + 3 - first.weekday().num_days_from_monday()) % 7;
                first + Duration::days(i64::from(to_thursday) + 14)
            };
            let mut skipped = third_thursday(from);
            if skipped < from {
                skipped = third_thursday(skipped + Duration::days(31));
            }
            json!({"from": from.to_string(), "to": to.to_string(),
                   "skip": [{"date": skipped.to_string(), "reason": format!("Holiday {n}")}]})
        }
        // Each PUT is a new attestation.
        "DisclosureInput" => json!({"no_relationships": true}),
        // The test's speaker has no relationships: nothing to judge (and so nothing logged).
        "ReviewInput" => json!({"judgements": []}),
        // The test's speaker is invited: confirming changes their place.
        "ResponseInput" => json!({"status": "confirmed"}),
        // No `url`: the material has a file, and a link would be 409.
        "MaterialInput" => json!({"kind": "handout", "title": format!("Handout {n}"),
                                  "visibility": "public"}),
        "MaterialPatch" => json!({"title": format!("Slides, revised {n}")}),
        "SeriesPatch" => json!({"default_duration_minutes": 30 + n % 60}),
        "WebhookInput" => json!({"url": receiver, "events": ["round.deleted"]}),
        "WebhookPatch" => json!({"description": "Changed"}),
        // A check-in with the round's code: the attendee is the token's person, or, without a
        // token, the one the body names.
        "AttendanceInput" => json!({"code": records.code, "nonce": format!("nonce-{n}"),
                                    "attendee": {"full_name": format!("Guest {n}"),
                                                 "email": format!("guest{n}@example.org"),
                                                 "profession": "nurse"}}),
        "AttendeeInput" => json!({"full_name": format!("Learner {n}"),
                                  "email": format!("learner.{n}@example.org"),
                                  "profession": "pharmacist"}),
        "AttendeePatch" => json!({"full_name": format!("Renamed {n}")}),
        "MyAttendeePatch" => json!({"profession": "nurse"}),
        // The record was given the round's whole hour.
        "ClaimPatch" => json!({"claimed_hours": 0.5}),
        "CreditOverrideInput" => json!({"credit_status": "not_creditable",
                                        "reason": "Left after ten minutes"}),
        "VoidInput" => json!({"reason": "Signed in twice"}),
        "InitiativeInput" => json!({"title": format!("Initiative {n}")}),
        "InitiativePatch" => json!({"problem_statement": format!("Revision {n}")}),
        "InitiativeRoundInput" => json!({"purpose": "review"}),
        "PdsaCycleInput" => json!({"change_idea": format!("Idea {n}")}),
        "PdsaCyclePatch" => json!({"objective": format!("Objective {n}")}),
        "MeasureInput" => json!({"name": format!("Measure {n}"), "type": "process",
                                 "data_type": "count", "frequency": "month",
                                 "improvement_direction": "increase"}),
        "MeasurePatch" => json!({"unit": format!("comments {n}")}),
        // A new value for the measure's point: the same value changes nothing.
        "PointsInput" => json!({"points": [{"period": PERIOD, "value": 1 + n}]}),
        "OutcomeInput" => json!({"kind": "information", "text": format!("Noted {n}")}),
        "OutcomePatch" => json!({"text": format!("Revised {n}")}),
        other => panic!("no plausible body for {other}: add one to `plausible_body`"),
    }
}

/// What an operation's request body is, as its document says.
#[derive(Debug, Clone)]
enum Payload {
    None,
    /// JSON of a component, sent as this content type.
    Json {
        content_type: String,
        component: String,
    },
    /// A file's bytes (`format: binary`), whatever they are sent as.
    File,
    /// A sign-in sheet, `text/csv`.
    Csv,
}

/// What a request carries: a body and its content type, or nothing.
#[derive(Debug, Clone)]
enum Body {
    None,
    /// Not JSON at all; for a file, no bytes at all (an empty upload).
    Malformed,
    /// Well-formed JSON the schema refuses; for a file, one of a kind the service does not
    /// take (a GIF).
    Refused,
    Plausible(Value),
    /// A file the service takes: a small PDF, sent as `application/pdf`.
    File,
    /// What a caller might send to learn where a name resolves.
    Probe(Value),
}

impl Body {
    /// The bytes and the content type sent for this body of `payload`.
    fn encoded(&self, payload: &Payload) -> Option<(Vec<u8>, String)> {
        let file = matches!(payload, Payload::File);
        if let (Payload::Csv, Body::Plausible(Value::String(sheet))) = (payload, self) {
            return Some((sheet.clone().into_bytes(), "text/csv".to_owned()));
        }
        let json = |bytes: Vec<u8>| match payload {
            Payload::Json { content_type, .. } => Some((bytes, content_type.clone())),
            _ => panic!("{self:?} for a body that is not JSON: {payload:?}"),
        };
        match self {
            Body::None => None,
            Body::Malformed if file => Some((Vec::new(), "application/octet-stream".to_owned())),
            Body::Refused if file => Some((GIF.to_vec(), "image/gif".to_owned())),
            Body::File => Some((PDF.to_vec(), "application/pdf".to_owned())),
            Body::Malformed => json(b"{\"comment\": ".to_vec()),
            Body::Refused => json(br#"{"no_such_field": [1, 2, 3]}"#.to_vec()),
            Body::Plausible(value) | Body::Probe(value) => json(value.to_string().into_bytes()),
        }
    }
}

async fn send(
    run: &Run,
    caller: &Caller,
    method: &Method,
    path: &str,
    payload: &Payload,
    body: &Body,
) -> Response {
    let app = &run.app;
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(token) = &caller.token {
        request = request.bearer_auth(token);
    }
    if let Some((bytes, content_type)) = body.encoded(payload) {
        request = request.header("content-type", content_type).body(bytes);
    }
    if *method == Method::POST {
        // Stored for a caller that may POST; never for one that may not.
        request = request.header("idempotency-key", format!("key-{}", run.next()));
    }
    request.send().await.expect("the server answers")
}

async fn every_operation_is_authorized_before_anything_else(app: TestApp) {
    let app = spawn_app_with(app.backend(), |s| {
        s.webhook_allowed_hosts = "127.0.0.1".into();
    })
    .await
    .expect("the backend of the app given");
    let receiver = Receiver::start(&[]).await;
    let callers = [
        Caller {
            name: "anonymous",
            token: None,
            roles: None,
            speaker: false,
        },
        Caller {
            name: "a token with no role (the speaker on the rounds)",
            token: Some(app.token(SPEAKER_SUB, &[])),
            roles: Some(Vec::new()),
            speaker: true,
        },
        Caller {
            name: "a viewer",
            token: Some(app.token("vera@example.org", &[Role::Viewer])),
            roles: Some(vec![Role::Viewer]),
            speaker: false,
        },
        Caller {
            name: "an organizer",
            token: Some(app.token("olga@example.org", &[Role::Organizer])),
            roles: Some(vec![Role::Organizer]),
            speaker: false,
        },
        Caller {
            name: "an admin",
            token: Some(app.token("ada@example.org", &[Role::Admin])),
            roles: Some(vec![Role::Admin]),
            speaker: false,
        },
    ];
    // The series has a recurrence to plan by, and the speaker of every round a sign-in.
    let recurrence = app
        .patch(
            "/api/v1/series",
            &json!({"recurrence": "FREQ=MONTHLY;BYDAY=3TH"}),
        )
        .await;
    assert_eq!(recurrence.status(), 200);
    let speaker_on_rounds = id_of(
        &app.create(
            "/api/v1/speakers",
            json!({"full_name": "Sam Okafor", "credentials": ["MD"], "sub": SPEAKER_SUB}),
        )
        .await,
    );
    // Rounds carry credit; the test's person and every signed-in caller are attendees.
    let credit = app
        .patch(
            "/api/v1/series",
            &json!({"credit_type": "ama_pra_category_1"}),
        )
        .await;
    assert_eq!(credit.status(), 200, "{}", credit.text().await.unwrap());
    let person = id_of(
        &app.create(
            "/api/v1/attendees",
            json!({"full_name": "Sam Okafor", "email": "sam.okafor@example.org",
                   "profession": "physician", "sub": SPEAKER_SUB}),
        )
        .await,
    );
    for sub in ["vera@example.org", "olga@example.org", "ada@example.org"] {
        app.create(
            "/api/v1/attendees",
            json!({"full_name": sub, "email": sub, "profession": "other", "sub": sub}),
        )
        .await;
    }
    let run = Run {
        app,
        receiver,
        person,
        speaker_on_rounds,
        serial: std::cell::Cell::new(0),
    };
    let document = lhs_rounds::app::openapi::document();
    let mut operations = 0;
    let mut refused = 0;
    let mut rules = BTreeMap::new();

    for (template, item) in document["paths"].as_object().unwrap() {
        for (method_name, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method_name.to_uppercase().as_bytes()).unwrap();
            let what = format!("{method} {template}");
            let rule = role_table(method.as_str(), template);
            assert_eq!(
                rule_of(&what, &operation["security"]),
                rule.declared(),
                "{what}: the document's security and the role table differ"
            );
            *rules.entry(format!("{rule:?}")).or_insert(0) += 1;
            operations += 1;
            let writes = method != Method::GET;
            if writes && rule == Rule::Open {
                // The only writes open to anyone: feedback, as LHS_ANONYMOUS_FEEDBACK allows, and
                // a check-in with the round's code.
                assert!(
                    template.contains("feedback") || template.ends_with("/attendance"),
                    "{what} is open to anyone"
                );
            }
            let successes: Vec<u16> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|status| status.parse().ok())
                .filter(|status| (200..300).contains(status))
                .collect();
            let payload = match operation["requestBody"]["content"].as_object() {
                Some(content) => {
                    let (content_type, media) = content.iter().next().unwrap();
                    let schema = &media["schema"];
                    match schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
                        Some(component) => Payload::Json {
                            content_type: content_type.clone(),
                            component: component.to_owned(),
                        },
                        None if schema["format"] == "binary" => Payload::File,
                        None if content_type == "text/csv" => Payload::Csv,
                        None => panic!("{what}: a request body that is a component or a file"),
                    }
                }
                None => Payload::None,
            };
            let webhooks = template.contains("/webhooks");
            let base = run.records(webhooks).await;

            for caller in &callers {
                let allowed = caller.may(rule);
                let records = match allowed && writes {
                    // A write that goes ahead gets records of its own (a DELETE consumes them).
                    true => run.records(webhooks).await,
                    false => base.clone(),
                };
                let path = fill(template, &records);
                let n = run.next();
                let (mut bodies, takes_url) = match &payload {
                    Payload::Json { component, .. } => (
                        vec![
                            Body::Malformed,
                            Body::Refused,
                            Body::Plausible(plausible_body(
                                component,
                                &records,
                                &run.receiver.url,
                                n,
                            )),
                        ],
                        document["components"]["schemas"][component]["properties"]
                            .get("url")
                            .is_some(),
                    ),
                    Payload::File => (vec![Body::Malformed, Body::Refused, Body::File], false),
                    Payload::Csv => (
                        vec![Body::Plausible(Value::String(format!(
                            "full_name,email,profession,npi\nSheet {n},sheet{n}@example.org,nurse,\n"
                        )))],
                        false,
                    ),
                    Payload::None => (vec![Body::None], false),
                };
                let mut attempts: Vec<(String, Body)> = Vec::new();
                if !allowed {
                    if takes_url {
                        for url in ["http://nonexistent.invalid/", "http://localhost/"] {
                            attempts.push((
                                path.clone(),
                                Body::Probe(json!({"url": url, "events": ["*"]})),
                            ));
                        }
                    }
                    // Ids that name nothing: refused the same, before anything is looked up.
                    if template.contains('{') {
                        let plausible = bodies.last().unwrap().clone();
                        attempts.push((fill_missing(template), plausible));
                    }
                }
                attempts.extend(bodies.drain(..).map(|body| (path.clone(), body)));
                for (path, body) in attempts {
                    let before = run.snapshot().await;
                    let response = send(&run, caller, &method, &path, &payload, &body).await;
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let text = response.text().await.unwrap_or_default();
                    let after = run.snapshot().await;
                    let attempt = format!(
                        "{what} ({path}) as {caller_name} with {body:?}: {status} {text}",
                        caller_name = caller.name
                    );
                    let unchanged = || {
                        let changed: Vec<_> = before
                            .iter()
                            .filter(|(name, value)| after.get(*name) != Some(*value))
                            .map(|(name, value)| format!("{name}: {value} → {:?}", after.get(name)))
                            .collect();
                        assert!(changed.is_empty(), "{attempt}\nchanged: {changed:?}");
                    };
                    match (&body, allowed) {
                        (_, false) => {
                            refused += 1;
                            assert_eq!(status, caller.refusal(), "{attempt}");
                            if status == 401 {
                                let challenge = headers["www-authenticate"].to_str().unwrap();
                                assert!(challenge.starts_with("Bearer"), "{attempt}");
                            }
                            assert_eq!(
                                headers["content-type"], "application/problem+json",
                                "{attempt}"
                            );
                            unchanged();
                        }
                        // No file, or a file of a kind not taken: 415, and no file kept.
                        (Body::Malformed | Body::Refused, true)
                            if matches!(payload, Payload::File) =>
                        {
                            assert_eq!(status, 415, "{attempt}");
                            assert_eq!(
                                headers["content-type"], "application/problem+json",
                                "{attempt}"
                            );
                            unchanged();
                        }
                        (Body::Malformed, true) => {
                            assert_eq!(status, 400, "{attempt}");
                            unchanged();
                        }
                        (Body::Refused, true) => {
                            assert_eq!(status, 422, "{attempt}");
                            let problem: Value = serde_json::from_str(&text).unwrap();
                            assert!(!problem["errors"][0]["field"].is_null(), "{attempt}");
                            unchanged();
                        }
                        (Body::Plausible(_) | Body::File | Body::None, true) => {
                            assert!(
                                successes.contains(&status),
                                "{attempt}: not one of {successes:?}"
                            );
                            let logged = before["changes.seq"] != after["changes.seq"];
                            match (writes, operation["operationId"].as_str()) {
                                (false, _) => unchanged(),
                                // A delivery's state is the outbox's, not a record's.
                                (true, Some("retry_delivery")) => {}
                                // A review sent unchanged, and a statement published again with
                                // nothing changed (200, the latest version), write nothing.
                                (true, Some("put_review" | "publish")) if status == 200 => {}
                                (true, _) => assert!(logged, "{attempt}: a write not logged"),
                            }
                        }
                        (Body::Probe(_), true) => {
                            unreachable!("probes are sent to refused callers")
                        }
                    }
                }
            }
        }
    }
    assert!(
        operations >= 57,
        "every operation of the document: {operations}"
    );
    assert!(refused >= 150, "refused calls: {refused}");
    for rule in [
        Rule::Open,
        Rule::Role(Role::Organizer),
        Rule::Role(Role::Admin),
        Rule::SpeakerOr(Role::Organizer),
    ] {
        assert!(
            rules.contains_key(&format!("{rule:?}")),
            "{rule:?}: {rules:?}"
        );
    }

    // As the probe was first tried: anonymous, webhook 1, a name that does not resolve.
    let before = run.snapshot().await;
    let probe = Body::Probe(json!({"url": "http://nonexistent.invalid/"}));
    let response = send(
        &run,
        &callers[0],
        &Method::PATCH,
        "/api/v1/webhooks/1",
        &Payload::Json {
            content_type: "application/merge-patch+json".to_owned(),
            component: "WebhookPatch".to_owned(),
        },
        &probe,
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(run.snapshot().await, before);
}
