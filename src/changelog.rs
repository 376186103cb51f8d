//! The change log: every write records one entry in its own transaction, numbered in commit
//! order. The same entries are the audit trail (`GET /api/v1/audit`), the change feed other
//! systems sync from (`GET /api/v1/changes`), and the source of webhook messages, which are
//! written to the outbox here, in the same transaction, so that none is lost when the process
//! dies.
//!
//! Commit order on PostgreSQL: a number taken by a transaction that commits after one holding a
//! higher number would let a feed reader who already read the higher one skip it. So the number
//! is not a sequence's: it comes from the `change_log_head` row by `UPDATE ... RETURNING`, and
//! that row's lock is held until the writer's transaction ends; the next writer gets the next
//! number only after that commit (or after a rollback, which gives the number back). Numbers are
//! therefore handed out in commit order and without gaps. The entry is written as the last
//! statement of each write, so the lock is held for little more than the commit. On SQLite,
//! writers take turns anyway, and `AUTOINCREMENT` numbers in commit order.
//!
//! A change made by hand in SQL is not recorded: only writes through the service are.

use diesel::prelude::*;
use serde_json::{Map, Value};

use crate::db::{self, DbConnection};
use crate::error::ApiError;
use crate::schema::{change_log_head, changes, webhook_messages, webhooks};

crate::text_enum! {
    /// What a write did to a record.
    pub enum Action {
        Created = "created",
        Updated = "updated",
        Deleted = "deleted",
    }
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

/// The webhook event a change is: `round.updated`, or `round.cancelled` when the round's
/// status became `cancelled`.
pub fn event_type(change: &Change<'_>) -> String {
    let status = |v: &Option<Value>| {
        v.as_ref()
            .and_then(|r| r.get("status"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if change.resource == "round"
        && change.action == Action::Updated
        && status(&change.after).as_deref() == Some("cancelled")
        && status(&change.before).as_deref() != Some("cancelled")
    {
        return "round.cancelled".to_owned();
    }
    format!("{}.{}", change.resource, change.action.as_str())
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
];

/// What may be subscribed to: an event type, `<resource>.*`, or `*` for every event of the
/// schedule. Feedback is sent only where `feedback.…` is listed explicitly (it carries what
/// people wrote).
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
    let feedback = event.starts_with("feedback.");
    patterns.iter().any(|pattern| {
        pattern == event
            || (pattern == "*" && !feedback)
            || pattern.strip_suffix(".*").is_some_and(|resource| {
                event
                    .strip_prefix(resource)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
    })
}

/// Records `change` and writes its webhook messages to the outbox, in the caller's transaction;
/// returns the entry's number. Call it as the last step of a write (see the module's comment).
pub fn record(conn: &mut DbConnection, change: Change<'_>) -> Result<i64, ApiError> {
    let now = db::now();
    let fields = Value::Object(changed_fields(
        change.before.as_ref(),
        change.after.as_ref(),
    ));
    let data = change.after.as_ref().or(change.before.as_ref());
    let data_text = data.map(Value::to_string);
    let actor = change.actor.unwrap_or("anonymous");
    let event = event_type(&change);
    let outbox = subscribed_webhooks(conn, &event)?;
    let values = (
        changes::at.eq(now),
        changes::actor.eq(actor),
        changes::resource.eq(change.resource),
        changes::record_id.eq(change.id),
        changes::action.eq(change.action),
        changes::changed_fields.eq(fields.to_string()),
        changes::data.eq(data_text.as_deref()),
        changes::request_id.eq(change.request_id),
    );
    let seq = match conn {
        DbConnection::Postgresql(pg) => {
            // The number under the head row's lock, held until this transaction ends.
            let seq = diesel::update(change_log_head::table.find(1))
                .set(change_log_head::seq.eq(change_log_head::seq + 1))
                .returning(change_log_head::seq)
                .get_result::<i64>(pg)?;
            diesel::insert_into(changes::table)
                .values((changes::seq.eq(seq), values))
                .execute(pg)?;
            seq
        }
        DbConnection::Sqlite(sqlite) => diesel::insert_into(changes::table)
            .values(values)
            .returning(changes::seq)
            .get_result::<i64>(sqlite)?,
    };
    if !outbox.is_empty() {
        let message = serde_json::json!({
            "type": event,
            "timestamp": chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(now, chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": data.cloned().unwrap_or(Value::Null),
        })
        .to_string();
        let rows: Vec<_> = outbox
            .iter()
            .map(|webhook| {
                (
                    webhook_messages::webhook_id.eq(*webhook),
                    webhook_messages::change_seq.eq(seq),
                    webhook_messages::event_type.eq(&event),
                    webhook_messages::payload.eq(&message),
                    webhook_messages::status.eq("pending"),
                    webhook_messages::next_attempt_at.eq(now),
                    webhook_messages::created_at.eq(now),
                )
            })
            .collect();
        crate::on_backend!(conn, |c| diesel::insert_into(webhook_messages::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(seq)
}

/// The enabled webhooks that subscribe to `event`.
fn subscribed_webhooks(conn: &mut DbConnection, event: &str) -> Result<Vec<i32>, ApiError> {
    let enabled = crate::on_backend!(conn, |c| webhooks::table
        .filter(webhooks::enabled.eq(true))
        .select((webhooks::id, webhooks::events))
        .load::<(i32, String)>(c))?;
    Ok(enabled
        .into_iter()
        .filter(|(_, events)| {
            let patterns: Vec<String> = serde_json::from_str(events).unwrap_or_default();
            subscribes(&patterns, event)
        })
        .map(|(id, _)| id)
        .collect())
}

/// The newest entry's number (0 when the log is empty).
pub fn newest(conn: &mut DbConnection) -> Result<i64, ApiError> {
    Ok(crate::on_backend!(conn, |c| changes::table
        .select(diesel::dsl::max(changes::seq))
        .first::<Option<i64>>(c))?
    .unwrap_or(0))
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
