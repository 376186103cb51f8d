//! Authorize first, everywhere: every operation of the OpenAPI document, sent without a token,
//! with a token that carries no role, and as a viewer, an organizer and an admin. The role each
//! operation needs is read from its `security` in the document, which must say what the role
//! table of docs/api.md says (`role_table`), and is then checked against what the service does.
//! A new route fails here until it is in that table (and its request body, if it has a new one,
//! has a plausible example in `plausible_body`).
//!
//! A caller who may not make a request gets 401 or 403 whatever body it sends, malformed or
//! not (the body is never parsed for it), and nothing is stored, changed or logged as a change:
//! the change log's newest number, every table's rows and the schedule's revision are the same
//! after as before. A caller who may gets 400 for a malformed body, 422 for one its schema
//! refuses (nothing stored either), and a 2xx the document lists for a plausible one.

use std::collections::BTreeMap;

use chrono::{Duration, SecondsFormat, Utc};
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
        // Feedback: anyone sends it (LHS_ANONYMOUS_FEEDBACK); organizers read and triage it.
        ("POST", "/feedback" | "/rounds/{id}/feedback") => Rule::Open,
        ("GET", "/feedback" | "/feedback/{id}" | "/rounds/{id}/feedback") => organizer,
        ("PATCH", "/feedback/{id}") => organizer,
        ("DELETE", "/feedback/{id}") => admin,
        // Rounds, speakers and the series: organizers.
        ("POST", "/rounds" | "/speakers") => organizer,
        ("PUT" | "PATCH" | "DELETE", "/rounds/{id}" | "/speakers/{id}") => organizer,
        ("PUT" | "PATCH", "/series") => organizer,
        // Departments, webhooks and the audit trail: admins.
        ("POST", "/departments") => admin,
        ("PUT" | "PATCH" | "DELETE", "/departments/{id}") => admin,
        (_, webhooks) if webhooks.starts_with("/webhooks") => admin,
        ("GET", "/audit") => admin,
        _ => panic!("{method} {template} is not in the role table of this test (docs/api.md)"),
    }
}

/// A caller of the test: its name, its token and its roles (`None`: no token).
struct Caller {
    name: &'static str,
    token: Option<String>,
    roles: Option<Vec<Role>>,
}

impl Caller {
    fn may(&self, rule: Rule) -> bool {
        match (rule, &self.roles) {
            (Rule::Open, _) => true,
            (_, None) => false,
            (Rule::SignedIn, Some(_)) => true,
            (Rule::Role(needed), Some(roles)) => roles.iter().any(|role| *role >= needed),
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
/// can name, none referring to another (so each may be deleted), and a round held an hour ago
/// (so it takes session feedback).
#[derive(Debug, Clone, Copy)]
struct Records {
    department: i32,
    speaker: i32,
    round: i32,
    feedback: i32,
    webhook: Option<(i32, i64)>,
}

/// Everything a request of the test may have changed, by name.
type Snapshot = BTreeMap<&'static str, String>;

struct Run {
    app: TestApp,
    receiver: Receiver,
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
        Records {
            department: app.department(&format!("Unit {n}")).await,
            speaker: app.speaker(&format!("Speaker {n}"), &["MD"]).await,
            round: id_of(&app.create("/api/v1/rounds", held_round(now)).await),
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

    /// The change log's newest number, the rows of every table, the schedule's revision and
    /// the last write to each table with an `updated_at`.
    async fn snapshot(&self) -> Snapshot {
        use diesel::dsl::{count_star, max};
        use diesel::prelude::*;
        use lhs_rounds::platform::schema::*;
        let database = self.app.database.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = database.connection().unwrap();
            let conn = &mut *conn;
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
                webhooks,
                webhook_messages
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
            last_write!(departments, speakers, rounds, feedback, webhooks, series);
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

/// A round held from two hours ago to an hour ago: inside its session feedback window.
fn held_round(now: chrono::DateTime<Utc>) -> Value {
    let at = |hours: i64| (now - Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({"starts_at": at(2), "ends_at": at(1), "location": "BMC – MassMutual 5"})
}

/// The path with its ids filled from `records`: `{id}` names a record of the collection
/// before it, `{delivery_id}` the webhook's delivery.
fn fill(template: &str, records: &Records) -> String {
    let segments: Vec<&str> = template.split('/').collect();
    let mut path = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let id = match (
            segment.contains("{id}"),
            i.checked_sub(1).map(|j| segments[j]),
        ) {
            (true, Some("rounds")) => records.round.to_string(),
            (true, Some("speakers")) => records.speaker.to_string(),
            (true, Some("departments")) => records.department.to_string(),
            (true, Some("feedback")) => records.feedback.to_string(),
            (true, Some("webhooks")) => records.webhook.expect("a webhook").0.to_string(),
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
                .replace("{delivery_id}", &delivery),
        );
    }
    let path = path.join("/");
    assert!(
        !path.contains('{'),
        "{template}: an id this test does not fill"
    );
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
                                "default_duration_minutes": 60, "feedback_window_days": 30}),
        "SeriesPatch" => json!({"default_duration_minutes": 30 + n % 60}),
        "WebhookInput" => json!({"url": receiver, "events": ["round.deleted"]}),
        "WebhookPatch" => json!({"description": "Changed"}),
        other => panic!("no plausible body for {other}: add one to `plausible_body`"),
    }
}

/// What a request carries: a body and its content type, or nothing.
#[derive(Debug, Clone)]
enum Body {
    None,
    /// Not JSON at all.
    Malformed,
    /// Well-formed JSON the schema refuses.
    Refused,
    Plausible(Value),
    /// What a caller might send to learn where a name resolves.
    Probe(Value),
}

impl Body {
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Body::None => None,
            Body::Malformed => Some(b"{\"comment\": ".to_vec()),
            Body::Refused => Some(br#"{"no_such_field": [1, 2, 3]}"#.to_vec()),
            Body::Plausible(value) | Body::Probe(value) => Some(value.to_string().into_bytes()),
        }
    }
}

async fn send(
    run: &Run,
    caller: &Caller,
    method: &Method,
    path: &str,
    content_type: Option<&str>,
    body: &Body,
) -> Response {
    let app = &run.app;
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(token) = &caller.token {
        request = request.bearer_auth(token);
    }
    if let (Some(bytes), Some(content_type)) = (body.bytes(), content_type) {
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
        },
        Caller {
            name: "a token with no role",
            token: Some(app.token("nobody@example.org", &[])),
            roles: Some(Vec::new()),
        },
        Caller {
            name: "a viewer",
            token: Some(app.token("vera@example.org", &[Role::Viewer])),
            roles: Some(vec![Role::Viewer]),
        },
        Caller {
            name: "an organizer",
            token: Some(app.token("olga@example.org", &[Role::Organizer])),
            roles: Some(vec![Role::Organizer]),
        },
        Caller {
            name: "an admin",
            token: Some(app.token("ada@example.org", &[Role::Admin])),
            roles: Some(vec![Role::Admin]),
        },
    ];
    let run = Run {
        app,
        receiver,
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
            let rule = rule_of(&what, &operation["security"]);
            assert_eq!(
                rule,
                role_table(method.as_str(), template),
                "{what}: the document's security and the role table differ"
            );
            *rules.entry(format!("{rule:?}")).or_insert(0) += 1;
            operations += 1;
            let writes = method != Method::GET;
            if writes && rule == Rule::Open {
                // The only writes open to anyone: feedback, as LHS_ANONYMOUS_FEEDBACK allows.
                assert!(template.contains("feedback"), "{what} is open to anyone");
            }
            let successes: Vec<u16> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|status| status.parse().ok())
                .filter(|status| (200..300).contains(status))
                .collect();
            let (content_type, component) = match operation["requestBody"]["content"].as_object() {
                Some(content) => {
                    let (content_type, media) = content.iter().next().unwrap();
                    let component = media["schema"]["$ref"]
                        .as_str()
                        .and_then(|r| r.rsplit('/').next())
                        .unwrap_or_else(|| panic!("{what}: a request body that is a component"))
                        .to_owned();
                    (Some(content_type.clone()), Some(component))
                }
                None => (None, None),
            };
            let webhooks = template.contains("/webhooks");
            let base = run.records(webhooks).await;

            for caller in &callers {
                let allowed = caller.may(rule);
                let records = match allowed && writes {
                    // A write that goes ahead gets records of its own (a DELETE consumes them).
                    true => run.records(webhooks).await,
                    false => base,
                };
                let path = fill(template, &records);
                let n = run.next();
                let plausible = component
                    .as_deref()
                    .map(|c| plausible_body(c, &records, &run.receiver.url, n));
                let mut bodies = match &plausible {
                    Some(plausible) => vec![
                        Body::Malformed,
                        Body::Refused,
                        Body::Plausible(plausible.clone()),
                    ],
                    None => vec![Body::None],
                };
                let takes_url = component.is_some()
                    && document["components"]["schemas"][component.as_deref().unwrap()]
                        ["properties"]
                        .get("url")
                        .is_some();
                if takes_url && !allowed {
                    for url in ["http://nonexistent.invalid/", "http://localhost/"] {
                        bodies.insert(0, Body::Probe(json!({"url": url, "events": ["*"]})));
                    }
                }
                for body in bodies {
                    let before = run.snapshot().await;
                    let response =
                        send(&run, caller, &method, &path, content_type.as_deref(), &body).await;
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let text = response.text().await.unwrap_or_default();
                    let after = run.snapshot().await;
                    let attempt = format!(
                        "{what} as {caller_name} with {body:?}: {status} {text}",
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
                        (Body::Plausible(_) | Body::None, true) => {
                            assert!(
                                successes.contains(&status),
                                "{attempt}: not one of {successes:?}"
                            );
                            let logged = before["changes.seq"] != after["changes.seq"];
                            match (writes, operation["operationId"].as_str()) {
                                (false, _) => unchanged(),
                                // A delivery's state is the outbox's, not a record's.
                                (true, Some("retry_delivery")) => {}
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
        operations >= 43,
        "every operation of the document: {operations}"
    );
    assert!(refused >= 150, "refused calls: {refused}");
    for rule in [
        Rule::Open,
        Rule::Role(Role::Organizer),
        Rule::Role(Role::Admin),
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
        Some("application/merge-patch+json"),
        &probe,
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(run.snapshot().await, before);
}
