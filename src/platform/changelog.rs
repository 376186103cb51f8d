//! The change log: every write records one entry in its own transaction. The same entries are
//! the audit trail (`GET /api/v1/audit`), the change feed other systems sync from
//! (`GET /api/v1/changes`), and the source of webhook messages.
//!
//! Numbers in commit order: a number taken by a write that commits after one holding a higher
//! number would let a feed reader who already read the higher one skip it. Writers therefore
//! do not number their entries. Each appends its entry to `change_log_queue`, in its own
//! transaction and without a lock, so no writer waits for another's commit; [`number`] moves the
//! committed entries to `changes`, numbering them, and writes their webhook messages to the
//! outbox. Numbering transactions take turns under `change_log_head`'s lock, so numbers are
//! handed out in the order entries are numbered, without gaps. Everything that reads the log
//! numbers first: the audit trail and the feed see every write committed before they asked, and
//! the webhook worker numbers on each poll. An entry waiting in the queue is as durable as the
//! write it records, so no message is lost when the process dies. The same statements run on
//! both backends.
//!
//! A change made by hand in SQL is not recorded: only writes through the service are.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types as sql;
use serde_json::{Map, Value};

use crate::platform::db::{self, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::schema::{change_log_head, change_log_queue, changes};

crate::text_enum! {
    /// What a write did to a record.
    pub enum Action { Created = "created", Updated = "updated", Deleted = "deleted" }
}

/// Fields every write changes, left out of the changed fields.
const BOOKKEEPING: &[&str] = &["updated_at", "updated_by", "version"];

/// One write, as the log records it.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The resource's name (its `Resource::NAME`): `round`, `speaker`...
    pub resource: &'static str,
    pub id: i32,
    pub action: Action,
    /// The record before and after, as an organizer sees it (`None` before a creation and
    /// after a deletion).
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The token's subject; `anonymous` without one.
    pub actor: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// `{field: [before, after]}` of every field that differs.
pub fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> Map<String, Value> {
    let empty = Map::new();
    let before = before.and_then(Value::as_object).unwrap_or(&empty);
    let after = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut fields = Map::new();
    for name in before.keys().chain(after.keys()) {
        if BOOKKEEPING.contains(&name.as_str()) || fields.contains_key(name) {
            continue;
        }
        let old = before.get(name).cloned().unwrap_or(Value::Null);
        let new = after.get(name).cloned().unwrap_or(Value::Null);
        if old != new {
            fields.insert(name.clone(), Value::Array(vec![old, new]));
        }
    }
    fields
}

/// The webhook event a change is: `<resource>.<action>`, or the event the change means when
/// there is one, read from the record before and after:
/// - `round.cancelled`: a round's status became `cancelled`;
/// - `initiative.stage_changed`: an initiative's `stage` changed;
/// - `pdsa_cycle.decided`: a PDSA cycle's `act_decision` was made (or made again otherwise);
/// - `measure.signal_detected`: a measure's entry carries `signals_added` (its points created a
///   signal of its run chart that was not there: see `learning::measures`);
/// - `action_item.assigned`: an action item was recorded, or given another owner;
/// - `action_item.completed`: an action item's status became `done`;
/// - `attendance.recorded`, `attendance.voided` (its `voided_at` was set) and
///   `attendance.updated` (a claim, a credit decision): attendance is never deleted.
pub fn event_type(change: &Change<'_>) -> String {
    let field = |v: &Option<Value>, name: &str| -> Value {
        v.as_ref()
            .and_then(|r| r.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let changed = |name: &str| field(&change.before, name) != field(&change.after, name);
    let became = |name: &str, value: &str| {
        field(&change.after, name) == value && field(&change.before, name) != value
    };
    let became_set =
        |name: &str| !field(&change.after, name).is_null() && field(&change.before, name).is_null();
    let special = match (change.resource, change.action) {
        ("round", Action::Updated) if became("status", "cancelled") => Some("round.cancelled"),
        ("initiative", Action::Updated) if changed("stage") => Some("initiative.stage_changed"),
        ("pdsa_cycle", Action::Created | Action::Updated)
            if !field(&change.after, "act_decision").is_null() && changed("act_decision") =>
        {
            Some("pdsa_cycle.decided")
        }
        ("measure", Action::Updated)
            if field(&change.after, "signals_added")
                .as_array()
                .is_some_and(|added| !added.is_empty()) =>
        {
            Some("measure.signal_detected")
        }
        // A statement is only ever published (each version a record of its own, never changed).
        ("disclosure_statement", Action::Created) => Some("disclosure_statement.published"),
        // Attendance is recorded, changed (a claim, a credit decision) and voided, never deleted.
        ("attendance", Action::Created) => Some("attendance.recorded"),
        ("attendance", _) if became_set("voided_at") => Some("attendance.voided"),
        ("attendance", _) => Some("attendance.updated"),
        ("outcome", action) if field(&change.after, "kind") == "action_item" => match action {
            Action::Created => Some("action_item.assigned"),
            Action::Updated if became("status", "done") => Some("action_item.completed"),
            Action::Updated if changed("owner") => Some("action_item.assigned"),
            _ => None,
        },
        _ => None,
    };
    match special {
        Some(event) => event.to_owned(),
        None => format!("{}.{}", change.resource, change.action.as_str()),
    }
}

/// The resources whose events are sent only where a subscription names them (the event, or
/// `<resource>.*`), never for `*`, which stays the schedule's: feedback carries what people
/// wrote, and the learning loop's records carry people's e-mail addresses (teams, owners) and
/// a data point each; attendance says who came.
const NAMED_ONLY: &[&str] = &[
    "feedback",
    "attendance",
    "initiative",
    "pdsa_cycle",
    "measure",
    "data_point",
    "outcome",
    "action_item",
];

/// Whether `event` is sent only where it is named (see [`NAMED_ONLY`]).
fn named_only(event: &str) -> bool {
    event
        .split_once('.')
        .is_some_and(|(resource, _)| NAMED_ONLY.contains(&resource))
}

/// The events a webhook may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "round.created",
    "round.updated",
    "round.cancelled",
    "round.deleted",
    "speaker.created",
    "speaker.updated",
    "speaker.deleted",
    "department.created",
    "department.updated",
    "department.deleted",
    "series.updated",
    "feedback.created",
    "feedback.updated",
    "feedback.deleted",
    "attendance.recorded",
    "attendance.updated",
    "attendance.voided",
    "disclosure_statement.published",
    "initiative.created",
    "initiative.updated",
    "initiative.stage_changed",
    "initiative.deleted",
    "pdsa_cycle.created",
    "pdsa_cycle.updated",
    "pdsa_cycle.decided",
    "pdsa_cycle.deleted",
    "measure.created",
    "measure.updated",
    "measure.signal_detected",
    "measure.deleted",
    "data_point.created",
    "data_point.updated",
    "data_point.deleted",
    "outcome.created",
    "outcome.updated",
    "outcome.deleted",
    "action_item.assigned",
    "action_item.completed",
];

/// What may be subscribed to: an event type, `<resource>.*`, or `*` for every event of the
/// schedule. Feedback and the learning loop's events are sent only where they are named (see
/// [`NAMED_ONLY`]).
pub fn is_known_pattern(pattern: &str) -> bool {
    pattern == "*"
        || EVENT_TYPES.contains(&pattern)
        || pattern.strip_suffix(".*").is_some_and(|resource| {
            EVENT_TYPES
                .iter()
                .any(|e| e.starts_with(&format!("{resource}.")))
        })
}

/// Whether a subscription to `patterns` receives `event` (only events of [`EVENT_TYPES`] are
/// ever sent: changes to webhooks themselves are not).
pub fn subscribes(patterns: &[String], event: &str) -> bool {
    if !EVENT_TYPES.contains(&event) {
        return false;
    }
    let named = named_only(event);
    patterns.iter().any(|pattern| {
        pattern == event
            || (pattern == "*" && !named)
            || pattern.strip_suffix(".*").is_some_and(|resource| {
                event
                    .strip_prefix(resource)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
    })
}

/// The quoted patterns a subscription to `event` lists one of (see [`subscribes`]): the event,
/// its resource's `.*`, and `*` unless it is sent only where named; none for an event that is
/// never sent.
///
/// The subscriptions are matched in SQL by their quoted patterns in the `events` text, which the
/// service writes with serde_json: a pattern is a word of `[a-z_.*]`, written as it is, so the
/// quoted pattern is there exactly when the list names it.
fn subscription_patterns(event: &str) -> Vec<String> {
    if !EVENT_TYPES.contains(&event) {
        return Vec::new();
    }
    let mut patterns = vec![event.to_owned()];
    if let Some((resource, _)) = event.split_once('.') {
        patterns.push(format!("{resource}.*"));
    }
    if !named_only(event) {
        patterns.push("*".to_owned());
    }
    patterns.into_iter().map(|p| format!("\"{p}\"")).collect()
}

/// A change-log entry ready to be written, with what its webhook messages need.
struct Entry {
    at: NaiveDateTime,
    actor: String,
    resource: &'static str,
    record_id: i32,
    action: Action,
    changes: String,
    data: Option<String>,
    request_id: Option<String>,
    event: String,
    /// The webhook message: type, time and data.
    message: String,
    /// The [`subscription_patterns`] as `LIKE` patterns, in the queue's three `match_` columns
    /// (`None` where there are fewer).
    matches: [Option<String>; 3],
    /// The start of its messages' `webhook-id`s: `msg_`, a UUIDv7 new for this change, and `_`;
    /// each message's id ends with its webhook's id. Made here rather than from the row's
    /// number, which a database restored from a backup hands out again, to ids receivers have
    /// already seen (and would drop, as Standard Webhooks tells them to).
    message_prefix: String,
}

impl Entry {
    /// The entry of `change`, made at `at`.
    fn of(change: &Change<'_>, at: NaiveDateTime) -> Entry {
        let changes = Value::Object(changed_fields(
            change.before.as_ref(),
            change.after.as_ref(),
        ))
        .to_string();
        let data = change.after.as_ref().or(change.before.as_ref());
        let event = event_type(change);
        let timestamp = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(at, chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let message = serde_json::json!({
            "type": event,
            "timestamp": timestamp,
            "data": data.cloned().unwrap_or(Value::Null),
        })
        .to_string();
        Entry {
            at,
            actor: change.actor.unwrap_or("anonymous").to_owned(),
            resource: change.resource,
            record_id: change.id,
            action: change.action,
            changes,
            data: data.map(Value::to_string),
            request_id: change.request_id.map(str::to_owned),
            message,
            matches: {
                let mut patterns = subscription_patterns(&event)
                    .into_iter()
                    .map(|p| db::contains_pattern(&p));
                [patterns.next(), patterns.next(), patterns.next()]
            },
            event,
            message_prefix: format!("msg_{}_", uuid::Uuid::now_v7().simple()),
        }
    }
}

/// Records `change` in the caller's transaction: its entry joins the queue that [`number`]
/// numbers. Writers take no lock here, so none waits for another's commit.
pub fn record(conn: &mut DbConnection, change: Change<'_>) -> Result<(), ApiError> {
    let entry = Entry::of(&change, db::now());
    crate::on_backend!(conn, |c| diesel::insert_into(change_log_queue::table)
        .values((
            change_log_queue::at.eq(entry.at),
            change_log_queue::actor.eq(&entry.actor),
            change_log_queue::resource.eq(entry.resource),
            change_log_queue::record_id.eq(entry.record_id),
            change_log_queue::action.eq(entry.action),
            change_log_queue::changed_fields.eq(&entry.changes),
            change_log_queue::data.eq(entry.data.as_deref()),
            change_log_queue::request_id.eq(entry.request_id.as_deref()),
            change_log_queue::event.eq(&entry.event),
            change_log_queue::message.eq(&entry.message),
            change_log_queue::message_prefix.eq(&entry.message_prefix),
            change_log_queue::match_event.eq(entry.matches[0].as_deref()),
            change_log_queue::match_resource.eq(entry.matches[1].as_deref()),
            change_log_queue::match_any.eq(entry.matches[2].as_deref()),
        ))
        .execute(c))?;
    Ok(())
}

/// How many queued entries one numbering transaction takes (the `LIMIT` of [`batch_end!`]).
const BATCH: usize = 500;

/// The last id of the batch one numbering transaction takes: the oldest [`BATCH`] queued.
macro_rules! batch_end {
    () => {
        "(SELECT max(id) FROM (SELECT id FROM change_log_queue ORDER BY id LIMIT 500) AS oldest)"
    };
}

/// The batch as a table, each entry with its number (the head's, counted on in the queue's
/// order).
macro_rules! numbered_batch {
    () => {
        concat!(
            "(SELECT q.*, h.seq + row_number() OVER (ORDER BY q.id) AS seq \
             FROM change_log_queue AS q CROSS JOIN change_log_head AS h WHERE q.id <= ",
            batch_end!(),
            ") AS n"
        )
    };
}

/// The batch's entries, into the log.
const LOG_BATCH: &str = concat!(
    "INSERT INTO changes (seq, at, actor, resource, record_id, action, changes, data, \
     request_id) SELECT n.seq, n.at, n.actor, n.resource, n.record_id, n.action, n.changes, \
     n.data, n.request_id FROM ",
    numbered_batch!()
);

/// The batch's webhook messages: one for each enabled webhook whose subscription takes the
/// entry's event (its `message_id`: the entry's `message_prefix` and the webhook's id), in the
/// entries' order.
const SEND_BATCH: &str = concat!(
    "INSERT INTO webhook_messages (webhook_id, message_id, change_seq, event_type, payload, \
     next_attempt_at, created_at) SELECT w.id, n.message_prefix || CAST(w.id AS TEXT), n.seq, \
     n.event, n.message, n.at, n.at FROM ",
    numbered_batch!(),
    " JOIN webhooks AS w ON w.enabled AND (w.events LIKE n.match_event ESCAPE '\\' \
     OR w.events LIKE n.match_resource ESCAPE '\\' OR w.events LIKE n.match_any ESCAPE '\\') \
     ORDER BY n.seq, w.id"
);

/// The batch, out of the queue.
const FORGET_BATCH: &str = concat!("DELETE FROM change_log_queue WHERE id <= ", batch_end!());

/// Numbers the queued entries that have committed, oldest first, and writes their webhook
/// messages; returns how many it numbered. Everything that reads the log (the audit trail, the
/// change feed, the webhook worker, the metrics) calls it first, so each sees every write that
/// committed before it asked.
///
/// Numbering transactions take turns under `change_log_head`'s row lock, and each sees the queue
/// as one snapshot taken when it has the lock: each hands out the numbers after the last one's,
/// to entries that had committed when it began. So a reader who has seen a number never meets a
/// smaller one later, and a rolled-back write takes no number. The same statements on both
/// backends; the entries stay in the database from queue to log (nothing is read back here).
pub fn number(conn: &mut DbConnection) -> Result<usize, ApiError> {
    let mut numbered = 0;
    loop {
        // Most calls find nothing: say so without a write transaction, which on SQLite would
        // take the database's one write lock.
        let queued = crate::on_backend!(conn, |c| change_log_queue::table
            .select(change_log_queue::id)
            .first::<i64>(c)
            .optional())?;
        if queued.is_none() {
            return Ok(numbered);
        }
        match db::write_transaction(conn, number_batch) {
            // A batch short of full took what had committed when this call began.
            Ok(batch) if batch < BATCH => return Ok(numbered + batch),
            Ok(batch) => numbered += batch,
            // Another numbering committed after this one's snapshot: again, after it.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::SerializationFailure,
                _,
            )) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One numbering transaction of [`number`]: the oldest [`BATCH`] queued entries.
fn number_batch(conn: &mut DbConnection) -> QueryResult<usize> {
    if let DbConnection::Postgresql(pg) = conn {
        // Every statement below sees the queue as one snapshot, taken by the first (the head's
        // lock). A numbering that committed after it makes that statement fail, to start again:
        // its entries are out of the queue and its numbers taken.
        diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(pg)?;
    }
    crate::on_backend!(conn, |c| diesel::update(change_log_head::table)
        .set(change_log_head::seq.eq(change_log_head::seq))
        .execute(c))?;
    let logged = crate::on_backend!(conn, |c| diesel::sql_query(LOG_BATCH).execute(c))?;
    if logged == 0 {
        return Ok(0);
    }
    crate::on_backend!(conn, |c| diesel::sql_query(SEND_BATCH).execute(c))?;
    let forgotten = crate::on_backend!(conn, |c| diesel::sql_query(FORGET_BATCH).execute(c))?;
    if forgotten != logged {
        // Cannot happen in one snapshot; if it did, nothing of it is kept.
        return Err(diesel::result::Error::RollbackTransaction);
    }
    crate::on_backend!(conn, |c| diesel::update(change_log_head::table)
        .set(change_log_head::seq.eq(change_log_head::seq + logged as i64))
        .execute(c))?;
    Ok(logged)
}

/// The id a record has in the texts of a [`Created`] until the database gives it one.
pub const PENDING_ID: i32 = i32::MIN;

/// A text of an entry in two parts, which go either side of the id of the record the same
/// statement creates.
struct AroundId(String, String);

impl AroundId {
    /// `text` split at its one mention of [`PENDING_ID`]; `None` if it has none or several.
    fn of(text: &str) -> Option<AroundId> {
        let pending = PENDING_ID.to_string();
        if text.matches(&pending).count() != 1 {
            return None;
        }
        let (head, tail) = text.split_once(&pending)?;
        Some(AroundId(head.to_owned(), tail.to_owned()))
    }

    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("(");
        out.push_bind_param::<sql::Text, _>(&self.0)?;
        out.push_sql(" || written.id || ");
        out.push_bind_param::<sql::Text, _>(&self.1)?;
        out.push_sql(")");
        Ok(())
    }
}

/// The change-log entry of a creation, for the PostgreSQL fast path that writes a record and its
/// entry in one statement ([`Logged`]): the same [`Entry`] that [`record`] writes, with the id to
/// come spliced into its texts.
pub struct Created {
    entry: Entry,
    changes: AroundId,
    data: AroundId,
    message: AroundId,
}

impl Created {
    /// The entry of the creation of `after`, the record as it will be with [`PENDING_ID`] for
    /// its id. `None` where that number also appears elsewhere in the texts (a comment that says
    /// it, say), where it could not be told from the id: then the write takes the usual way.
    pub fn new(
        resource: &'static str,
        after: Value,
        actor: Option<&str>,
        request_id: Option<&str>,
        at: NaiveDateTime,
    ) -> Option<Created> {
        let change = Change {
            resource,
            id: PENDING_ID,
            action: Action::Created,
            before: None,
            after: Some(after),
            actor,
            request_id,
        };
        let entry = Entry::of(&change, at);
        Some(Created {
            changes: AroundId::of(&entry.changes)?,
            data: AroundId::of(entry.data.as_deref()?)?,
            message: AroundId::of(&entry.message)?,
            entry,
        })
    }
}

/// A creation and its change-log entry in one statement, which needs no transaction
/// (PostgreSQL): `write` is an `INSERT ... RETURNING` the record's columns (`id` among them),
/// and the statement answers what it returns. The entry joins the queue as [`record`] would
/// write it, in a common table expression after the record's own; the test
/// `feedback::the_one_statement_creation_logs_what_the_usual_way_logs` compares the two.
pub struct Logged<'a, W> {
    write: W,
    created: &'a Created,
}

impl<'a, W> Logged<'a, W> {
    pub fn new(write: W, created: &'a Created) -> Self {
        Logged { write, created }
    }
}

impl<W: QueryFragment<Pg>> QueryFragment<Pg> for Logged<'_, W> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let (created, entry) = (self.created, &self.created.entry);
        out.push_sql("WITH written AS (");
        self.write.walk_ast(out.reborrow())?;
        out.push_sql(
            "), entry AS (INSERT INTO change_log_queue (at, actor, resource, record_id, action, \
             changes, data, request_id, event, message, message_prefix, match_event, \
             match_resource, match_any) SELECT ",
        );
        out.push_bind_param::<sql::Timestamp, _>(&entry.at)?;
        out.push_sql(", ");
        out.push_bind_param::<sql::Text, _>(&entry.actor)?;
        out.push_sql(", ");
        out.push_bind_param::<sql::Text, _>(entry.resource)?;
        out.push_sql(", written.id, ");
        out.push_bind_param::<sql::Text, _>(&entry.action)?;
        out.push_sql(", ");
        created.changes.walk(&mut out)?;
        out.push_sql(", ");
        created.data.walk(&mut out)?;
        out.push_sql(", ");
        out.push_bind_param::<sql::Nullable<sql::Text>, _>(&entry.request_id)?;
        out.push_sql(", ");
        out.push_bind_param::<sql::Text, _>(&entry.event)?;
        out.push_sql(", ");
        created.message.walk(&mut out)?;
        out.push_sql(", ");
        out.push_bind_param::<sql::Text, _>(&entry.message_prefix)?;
        for pattern in &entry.matches {
            out.push_sql(", ");
            out.push_bind_param::<sql::Nullable<sql::Text>, _>(pattern)?;
        }
        out.push_sql(" FROM written) SELECT written.* FROM written");
        Ok(())
    }
}

impl<W> QueryId for Logged<'_, W> {
    type QueryId = ();
    // Cached by its text, which the write's own shape decides.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<W: Query> Query for Logged<'_, W> {
    type SqlType = W::SqlType;
}

impl<W> RunQueryDsl<PgConnection> for Logged<'_, W> {}

/// The newest entry's number (0 when the log is empty).
pub fn newest(conn: &mut DbConnection) -> Result<i64, ApiError> {
    Ok(crate::on_backend!(conn, |c| changes::table
        .select(diesel::dsl::max(changes::seq))
        .first::<Option<i64>>(c))?
    .unwrap_or(0))
}

/// How many committed entries wait in the queue for their numbers.
pub fn queued(conn: &mut DbConnection) -> Result<i64, ApiError> {
    Ok(crate::on_backend!(conn, |c| change_log_queue::table
        .count()
        .get_result::<i64>(c))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_fields_that_differ_are_recorded_without_bookkeeping() {
        let before = json!({"title": "A", "location": "Room 1", "updated_at": "x", "version": 1});
        let after = json!({"title": "B", "location": "Room 1", "updated_at": "y", "version": 2});
        assert_eq!(
            Value::Object(changed_fields(Some(&before), Some(&after))),
            json!({"title": ["A", "B"]})
        );
        assert_eq!(
            Value::Object(changed_fields(None, Some(&json!({"title": "A"})))),
            json!({"title": [null, "A"]})
        );
    }

    #[test]
    fn attendance_goes_only_where_it_is_listed_and_is_named_by_what_happened() {
        let all = vec!["*".to_owned()];
        for event in [
            "attendance.recorded",
            "attendance.updated",
            "attendance.voided",
        ] {
            assert!(!subscribes(&all, event), "{event}");
            assert!(subscribes(&["attendance.*".to_owned()], event), "{event}");
            assert!(!subscription_patterns(event).contains(&"\"*\"".to_owned()));
        }
        assert!(subscribes(
            &["attendance.voided".to_owned()],
            "attendance.voided"
        ));
        assert!(!subscribes(
            &["attendance.voided".to_owned()],
            "attendance.recorded"
        ));
        let change = |action, before: Option<Value>, after: Option<Value>| Change {
            resource: "attendance",
            id: 1,
            action,
            before,
            after,
            actor: None,
            request_id: None,
        };
        let open = json!({"id": 1, "voided_at": null});
        let voided = json!({"id": 1, "voided_at": "2019-01-17T17:00:00Z"});
        assert_eq!(
            event_type(&change(Action::Created, None, Some(open.clone()))),
            "attendance.recorded"
        );
        assert_eq!(
            event_type(&change(Action::Updated, Some(open.clone()), Some(voided))),
            "attendance.voided"
        );
        assert_eq!(
            event_type(&change(Action::Updated, Some(open.clone()), Some(open))),
            "attendance.updated"
        );
    }

    #[test]
    fn feedback_goes_only_where_it_is_listed() {
        let all = vec!["*".to_owned()];
        assert!(subscribes(&all, "round.updated"));
        assert!(!subscribes(&all, "feedback.created"));
        assert!(!subscribes(&all, "webhook.created"));
        assert!(subscribes(
            &["feedback.created".to_owned()],
            "feedback.created"
        ));
        assert!(subscribes(&["speaker.*".to_owned()], "speaker.deleted"));
        assert!(!subscribes(&["speaker.*".to_owned()], "speakers.deleted"));
        assert!(is_known_pattern("department.*"));
        assert!(!is_known_pattern("round.moved"));
    }

    #[test]
    fn a_numbering_batch_is_as_long_as_it_says() {
        assert!(batch_end!().contains(&format!("LIMIT {BATCH})")));
    }

    /// Subscriptions are matched in SQL by [`subscription_patterns`]: the same ones.
    #[test]
    fn the_patterns_matched_in_sql_are_those_that_subscribe() {
        let mut patterns = vec!["*".to_owned(), "webhook.*".to_owned()];
        for event in EVENT_TYPES {
            patterns.push((*event).to_owned());
            let resource = event.split('.').next().unwrap_or_default();
            patterns.push(format!("{resource}.*"));
        }
        for event in EVENT_TYPES.iter().copied().chain(["webhook.created"]) {
            let listed = subscription_patterns(event);
            assert!(
                listed.len() <= 3,
                "{event}: the queue has three columns for them"
            );
            for pattern in &patterns {
                let list = serde_json::to_string(&[pattern]).unwrap_or_default();
                let in_sql = listed.iter().any(|quoted| list.contains(quoted.as_str()));
                assert_eq!(
                    in_sql,
                    subscribes(std::slice::from_ref(pattern), event),
                    "{pattern} for {event}"
                );
            }
        }
    }

    #[test]
    fn a_message_is_its_type_time_and_data() {
        let at = chrono::DateTime::parse_from_rfc3339("2027-01-21T17:00:00.123456Z")
            .map(|t| t.naive_utc())
            .unwrap_or_default();
        let change = Change {
            resource: "round",
            id: 3,
            action: Action::Updated,
            before: Some(json!({"id": 3, "title": "A"})),
            after: Some(json!({"id": 3, "title": "B \"quoted\""})),
            actor: None,
            request_id: None,
        };
        let message = Entry::of(&change, at).message;
        let expected = json!({
            "type": "round.updated",
            "timestamp": "2027-01-21T17:00:00Z",
            "data": {"id": 3, "title": "B \"quoted\""},
        });
        assert_eq!(message, expected.to_string());
    }

    fn event(resource: &'static str, action: Action, before: Value, after: Value) -> String {
        event_type(&Change {
            resource,
            id: 1,
            action,
            before: (!before.is_null()).then_some(before),
            after: (!after.is_null()).then_some(after),
            actor: None,
            request_id: None,
        })
    }

    #[test]
    fn the_learning_loop_events_are_read_from_the_records() {
        let stage = |from: &str, to: &str| {
            event(
                "initiative",
                Action::Updated,
                json!({"stage": from}),
                json!({"stage": to}),
            )
        };
        assert_eq!(stage("design", "testing"), "initiative.stage_changed");
        assert_eq!(stage("testing", "testing"), "initiative.updated");
        let decided = |from: Value, to: Value| {
            event(
                "pdsa_cycle",
                Action::Updated,
                json!({"act_decision": from}),
                json!({"act_decision": to}),
            )
        };
        assert_eq!(decided(Value::Null, json!("adopt")), "pdsa_cycle.decided");
        assert_eq!(
            decided(json!("adopt"), json!("adopt")),
            "pdsa_cycle.updated"
        );
        assert_eq!(decided(json!("adopt"), Value::Null), "pdsa_cycle.updated");
        assert_eq!(
            event(
                "measure",
                Action::Updated,
                json!({}),
                json!({"signals_added": [{}]})
            ),
            "measure.signal_detected"
        );
        assert_eq!(
            event(
                "measure",
                Action::Updated,
                json!({}),
                json!({"signals_added": []})
            ),
            "measure.updated"
        );
        let item = |status: &str, owner: &str| json!({"kind": "action_item", "status": status, "owner": {"name": owner}});
        assert_eq!(
            event("outcome", Action::Created, Value::Null, item("open", "A")),
            "action_item.assigned"
        );
        assert_eq!(
            event(
                "outcome",
                Action::Updated,
                item("open", "A"),
                item("done", "A")
            ),
            "action_item.completed"
        );
        assert_eq!(
            event(
                "outcome",
                Action::Updated,
                item("open", "A"),
                item("open", "B")
            ),
            "action_item.assigned"
        );
        assert_eq!(
            event(
                "outcome",
                Action::Updated,
                item("open", "A"),
                item("in_progress", "A")
            ),
            "outcome.updated"
        );
        assert_eq!(
            event(
                "outcome",
                Action::Created,
                Value::Null,
                json!({"kind": "decision"})
            ),
            "outcome.created"
        );
        for name in [
            "initiative.stage_changed",
            "pdsa_cycle.decided",
            "measure.signal_detected",
            "action_item.assigned",
            "action_item.completed",
        ] {
            assert!(EVENT_TYPES.contains(&name), "{name}");
            assert!(!subscribes(&["*".to_owned()], name), "{name} is named only");
        }
        assert!(subscribes(
            &["action_item.*".to_owned()],
            "action_item.completed"
        ));
    }

    #[test]
    fn a_round_whose_status_becomes_cancelled_is_a_cancellation() {
        let change = Change {
            resource: "round",
            id: 1,
            action: Action::Updated,
            before: Some(json!({"status": "scheduled"})),
            after: Some(json!({"status": "cancelled"})),
            actor: None,
            request_id: None,
        };
        assert_eq!(event_type(&change), "round.cancelled");
    }
}
