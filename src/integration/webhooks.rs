//! Webhooks: signed messages about changes, sent to other systems (the intranet portal, the
//! CME office, an integration engine), following the Standard Webhooks specification.
//!
//! A message is `{"type", "timestamp", "data"}` (`data`: the record as an organizer sees it),
//! sent with `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 of the
//! HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the webhook's `whsec_` secret).
//! Messages are written to the outbox by the change log when it numbers a change's entry
//! (`changelog::number`, which each poll of the worker runs first); the worker here delivers
//! them, in order for each webhook, and retries
//! on `LHS_WEBHOOK_RETRY_SCHEDULE`. Each replica's worker claims work with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (a lease: `claimed_until`), taking a message only if
//! it is still pending and unleased when locked, and an attempt settles its message only while
//! it holds the lease: each message goes out once per attempt, in order, whichever replica
//! holds it. Each message's `webhook-id` is stored with it (`message_id`, written by the change
//! log). Where a webhook may point is `destinations`' to say.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{delete, get, patch, post, web, HttpResponse};
use base64::Engine;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use utoipa::ToSchema;

use crate::integration::destinations::{Destination, Guard, Resolver};
use crate::platform::auth::{Caller, Role};
use crate::platform::cache::Rendered;
use crate::platform::changelog::{self};
use crate::platform::db::{self, Database, DbConnection};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, Int, Line, Text, Timestamp};
use crate::platform::http::{self, JsonBody};
use crate::platform::idempotency::StoredAnswer;
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{
    self, found, Access, Allowed, Audit, Ctx, HeaderText, New, NoFilter, Resource, Update,
};
use crate::platform::schema::{webhook_attempts, webhook_messages, webhooks};
use crate::platform::telemetry;
use crate::platform::validate::{Doc, Input, Query};

/// How long a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer that is read.
const ANSWER_MAX: usize = 64 * 1024;
/// After this many messages in a row fail every retry, the webhook is disabled.
const FAILED_MESSAGES_MAX: i32 = 5;
/// How long a claimed message is left to the replica that claimed it: twice the longest an
/// attempt can take (the lookup's timeout, then the receiver's), so that only a replica that
/// died (or lost its database) leaves a message to another, which then sends it again.
const LEASE: Duration = Duration::from_secs(2 * (Resolver::TIMEOUT.as_secs() + TIMEOUT.as_secs()));
/// How often the worker looks for due messages: the delay of a change's first message is at
/// most this (a poll that finds nothing is one indexed read).
const POLL: Duration = Duration::from_millis(100);

pub type WebhookUrl = Line<2000>;
pub type EventPattern = Line<64>;
pub type WebhookDescription = Text<500>;
/// The secret is shown once, when it is made.
pub type Secret = Line<100>;

crate::list_type!(
    /// Event types such as `round.created`, `speaker.*` (every speaker event) or `*` (every event
    /// of the schedule; feedback events only when listed).
    pub EventPatterns(EventPattern),
    max = 20,
    unique = true
);

/// A webhook, as answered (its secret is never shown again).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: Id,
    pub url: WebhookUrl,
    pub events: EventPatterns,
    pub description: Option<WebhookDescription>,
    pub enabled: bool,
    /// Why the service disabled it (a 410 answer, or messages that failed every retry).
    pub disabled_reason: Option<Text<500>>,
    #[serde(flatten)]
    pub audit: Audit,
    /// Only right after it was made: never logged, never in the change log.
    #[serde(skip)]
    #[schema(ignore)]
    pub secret: Option<String>,
}

/// A webhook with its secret: the answer to its creation and to a rotation, the only times
/// the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    #[schema(inline)]
    pub webhook: Webhook,
    /// `whsec_` and the base64 of the key the signatures are made with; shown once.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Secret,
}

/// A webhook, as written by POST (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://integration.example.org/lhs-rounds", "events": ["round.*", "series.updated"],
    "description": "The intranet portal's schedule"
}))]
pub struct WebhookInput {
    /// Where messages are POSTed: http(s), no credentials in it, read as browsers read URLs
    /// (WHATWG); not a loopback, link-local, unspecified or cloud metadata address unless
    /// `LHS_WEBHOOK_ALLOWED_HOSTS` allows it, and a host that resolves within 5 s.
    pub url: WebhookUrl,
    pub events: EventPatterns,
    pub description: Option<WebhookDescription>,
    /// Defaults to `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Input for WebhookInput {
    /// A URL of the right form (where it resolves to is checked when written) and known event
    /// types, at least one.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(url) = doc.get::<String>("url") {
            if let Err(why) = Destination::parse(&url) {
                errors.push(FieldError::new("url", why));
            }
        }
        let patterns = doc.items::<String>("events");
        if doc
            .get::<Vec<Value>>("events")
            .is_some_and(|e| e.is_empty())
        {
            errors.push(FieldError::new(
                "events",
                "must list at least one event type",
            ));
        }
        for (i, pattern) in patterns.iter().enumerate() {
            if let Some(pattern) = pattern {
                if !changelog::is_known_pattern(pattern) {
                    errors.push(FieldError::new(
                        format!("events[{i}]"),
                        format!(
                            "{pattern:?} is not an event type; known: {}, or <resource>.* or *",
                            changelog::EVENT_TYPES.join(", ")
                        ),
                    ));
                }
            }
        }
        errors
    }
}

/// Where webhooks may point (`LHS_WEBHOOK_ALLOWED_HOSTS`), how deliveries are retried
/// (`LHS_WEBHOOK_RETRY_SCHEDULE`) and how long settled messages are kept
/// (`LHS_WEBHOOK_RETENTION`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The SSRF guard, with the resolver names are looked up with.
    pub guard: Guard,
    /// The wait before each retry.
    pub retry_schedule: Vec<Duration>,
    /// How long delivered and failed messages are kept; `None`: for ever.
    pub retention: Option<Duration>,
}

impl WebhookSettings {
    pub fn parse(
        allowed: &str,
        schedule: &str,
        retention: &str,
    ) -> Result<WebhookSettings, String> {
        let retry_schedule = schedule
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                humantime::parse_duration(e).map_err(|_| {
                    format!(
                        "LHS_WEBHOOK_RETRY_SCHEDULE: {e:?} is not a duration such as 5s, 5m or 2h"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let retention = match retention.trim() {
            "off" | "0" => None,
            text => Some(
                humantime::parse_duration(text)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        format!(
                            "LHS_WEBHOOK_RETENTION: {text:?} is not a duration such as 30d or \
                             12h, or off"
                        )
                    })?,
            ),
        };
        Ok(WebhookSettings {
            guard: Guard::parse(allowed)?,
            retry_schedule,
            retention,
        })
    }
}

/// Checks where a webhook's URL points (422 naming `url`).
async fn check_destination(url: &str, settings: &WebhookSettings) -> Result<(), ApiError> {
    let checked = match Destination::parse(url) {
        Ok(destination) => settings.guard.check(&destination).await.map(drop),
        Err(why) => Err(why),
    };
    checked.map_err(|why| ApiError::Validation(vec![FieldError::new("url", why)]))
}

/// A new secret: `whsec_` and 24 random bytes in base64.
fn new_secret() -> Result<String, ApiError> {
    let mut key = [0u8; 24];
    getrandom::fill(&mut key)
        .map_err(|e| ApiError::Internal(format!("no randomness for a webhook secret: {e}")))?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// The `webhook-signature` of a message (Standard Webhooks, version 1).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| format!("the webhook's secret is not base64: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks)]
struct WebhookRow {
    id: i32,
    url: String,
    events: String,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    version: i64,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Webhook {
            id: Id(row.id),
            url: Line::stored(row.url),
            events: serde_json::from_str(&row.events).unwrap_or_default(),
            description: row.description.map(Text::stored),
            enabled: row.enabled,
            disabled_reason: row.disabled_reason.map(Text::stored),
            audit: crate::audit!(row),
            secret: None,
        }
    }
}

crate::record!(Webhook);

/// Webhooks: what [`resource`] needs to serve them. Only admins reach them.
pub struct Webhooks;

/// The columns a body writes, for `INSERT` and `UPDATE` alike.
macro_rules! written_columns {
    ($input:expr, $events:expr) => {
        (
            webhooks::url.eq($input.url.as_str()),
            webhooks::events.eq($events),
            webhooks::description.eq(Text::non_blank($input.description.as_ref())),
            webhooks::enabled.eq($input.enabled),
        )
    };
}

impl Resource for Webhooks {
    crate::table_resource! {
        name "webhook" in "webhooks", schedule false, read Allowed::Role(Role::Admin), write Allowed::Role(Role::Admin);
        Webhook from WebhookRow in webhooks, input WebhookInput, change WebhookInput;
        list NoFilter, by |_: &NoFilter| webhooks::table.into_boxed(), webhooks::id;
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Webhook, ApiError> {
        let secret = new_secret()?;
        let events = serde_json::to_string(&new.input.events)?;
        let values = (
            written_columns!(new.input, &events),
            webhooks::secret.eq(&secret),
            crate::created_columns!(webhooks, new.actor),
        );
        let mut webhook = Webhook::from(crate::insert_row!(conn, webhooks, WebhookRow, values)?);
        webhook.secret = Some(secret);
        Ok(webhook)
    }

    fn created_answer(record: &Webhook, _caller: &Caller) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(WebhookWithSecret {
            secret: Secret::stored(record.secret.clone().unwrap_or_default()),
            webhook: record.clone(),
        })?)
    }

    /// The answer without its secret: the secret is kept nowhere but in the webhook's row.
    fn kept_answer(answer: &StoredAnswer) -> Result<StoredAnswer, ApiError> {
        let mut body: Value = serde_json::from_str(&answer.body)?;
        if let Some(fields) = body.as_object_mut() {
            fields.remove("secret");
        }
        Ok(StoredAnswer {
            body: body.to_string(),
            ..answer.clone()
        })
    }

    /// The answer again, its secret read from the webhook's row, if the webhook is still as the
    /// POST made it: 410 once it is deleted, and 409 once it changed (its secret may have been
    /// rotated), since the secret is shown once, to the request that made it.
    fn replayed(conn: &mut DbConnection, kept: StoredAnswer) -> Result<StoredAnswer, ApiError> {
        let mut body: Value = serde_json::from_str(&kept.body)?;
        let id = body
            .get("id")
            .and_then(Value::as_i64)
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| ApiError::Internal("a kept webhook answer without its id".to_owned()))?;
        let row = webhooks::table
            .find(id)
            .select((webhooks::version, webhooks::secret))
            .first::<(i64, String)>(conn)
            .optional()?;
        let Some((version, secret)) = row else {
            return Err(ApiError::Gone {
                detail: format!(
                    "webhook {id}, which this Idempotency-Key created, has been deleted since"
                ),
                resync_after: None,
            });
        };
        let unchanged = [true, false]
            .iter()
            .any(|private| kept.etag.as_deref() == Some(&*http::record_etag(version, *private)));
        if !unchanged {
            return Err(ApiError::Conflict(format!(
                "webhook {id}, which this Idempotency-Key created, has changed since, and its \
                 secret is shown only once: GET /api/v1/webhooks/{id} shows it as it is, and \
                 POST /api/v1/webhooks/{id}/rotate-secret makes a new secret"
            )));
        }
        body["secret"] = Value::from(secret);
        Ok(StoredAnswer {
            body: body.to_string(),
            ..kept
        })
    }

    fn change_of(record: &Webhook) -> WebhookInput {
        WebhookInput {
            url: record.url.clone(),
            events: record.events.clone(),
            description: record.description.clone(),
            enabled: record.enabled,
        }
    }

    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Webhook>, ApiError> {
        let (current, input) = (&update.current, &update.change);
        let events = serde_json::to_string(&input.events)?;
        // Enabling it again forgets why it was disabled, and its run of failures.
        let reenabled = input.enabled && !current.enabled;
        let reason = match input.enabled {
            true => None,
            false => current
                .disabled_reason
                .as_ref()
                .map(|r| r.as_str().to_owned()),
        };
        let changes = (
            written_columns!(input, &events),
            webhooks::disabled_reason.eq(&reason),
            webhooks::failed_messages.eq(webhooks::failed_messages * i32::from(!reenabled)),
            crate::updated_columns!(webhooks, update.actor),
        );
        let row = crate::update_row!(
            conn,
            webhooks,
            WebhookRow,
            current.id.0,
            update.expected,
            changes
        )?;
        Ok(row.map(Webhook::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        Ok(crate::delete_row!(conn, webhooks, id, expected)? == 1)
    }
}

/// One message of a webhook and where its delivery stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    pub id: DeliveryId,
    /// The message's `webhook-id`: the same on every attempt, never used for another message
    /// (not even after the database is restored from a backup).
    #[schema(example = "msg_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b_3")]
    pub message_id: Line<64>,
    /// `round.updated`...
    pub event_type: Line<64>,
    /// The change it is about (see `/api/v1/changes`).
    pub change_seq: Int<0, 9007199254740991>,
    /// `pending` (being delivered or waiting for a retry), `delivered`, or `failed` (every
    /// retry failed).
    pub status: Line<20>,
    pub attempts: Int<0, 1000>,
    /// The receiver's last answer, if it answered.
    pub last_status_code: Option<Int<100, 599>>,
    /// Why the last attempt failed.
    pub last_error: Option<Text<1000>>,
    pub created_at: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
}

/// One attempt to deliver a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// When it started.
    pub attempted_at: Timestamp,
    /// The receiver's answer; `null` when it did not answer (or the message was not sent).
    pub status_code: Option<Int<100, 599>>,
    /// Why it failed; `null` when it succeeded.
    pub error: Option<Text<1000>>,
    /// How long it took, in milliseconds: the lookup, the connection and the answer.
    pub duration_ms: Int<0, 2147483647>,
}

/// A message of a webhook and every attempt to deliver it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryAttempts {
    #[serde(flatten)]
    #[schema(inline)]
    pub delivery: Delivery,
    /// Every attempt, oldest first, failed ones included.
    pub attempt_log: AttemptLog,
}

/// The most attempts a delivery shows.
pub const ATTEMPTS_SHOWN: usize = 1000;

crate::list_type!(
    /// Every attempt, oldest first, failed ones included (of a message retried by hand more
    /// than a thousand times, the latest thousand).
    pub AttemptLog(Attempt),
    max = ATTEMPTS_SHOWN
);

type DeliveryRow = (
    i64,
    String,
    String,
    i64,
    String,
    i32,
    Option<i32>,
    Option<String>,
    chrono::NaiveDateTime,
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
);

fn delivery(row: DeliveryRow) -> Delivery {
    let (id, message_id, event, seq, status, attempts, code, error, created, next, delivered) = row;
    Delivery {
        id: Int::clamped(id),
        message_id: Line::stored(message_id),
        event_type: Line::stored(event),
        change_seq: Int::clamped(seq),
        next_attempt_at: (status == "pending").then(|| Timestamp::from_naive(next)),
        status: Line::stored(status),
        attempts: Int::clamped(i64::from(attempts)),
        last_status_code: code.map(|c| Int::clamped(i64::from(c))),
        last_error: error.map(Text::stored),
        created_at: Timestamp::from_naive(created),
        delivered_at: delivered.map(Timestamp::from_naive),
    }
}

macro_rules! delivery_columns {
    () => {
        (
            webhook_messages::id,
            webhook_messages::message_id,
            webhook_messages::event_type,
            webhook_messages::change_seq,
            webhook_messages::status,
            webhook_messages::attempts,
            webhook_messages::last_status_code,
            webhook_messages::last_error,
            webhook_messages::created_at,
            webhook_messages::next_attempt_at,
            webhook_messages::delivered_at,
        )
    };
}

fn deliveries(
    conn: &mut DbConnection,
    webhook: i32,
    paging: Paging,
) -> Result<Page<Delivery>, ApiError> {
    found(Webhooks::find(conn, webhook)?, Webhooks::NAME, webhook)?;
    let total = webhook_messages::table
        .filter(webhook_messages::webhook_id.eq(webhook))
        .count()
        .get_result::<i64>(conn)?;
    let rows = webhook_messages::table
        .filter(webhook_messages::webhook_id.eq(webhook))
        .order(webhook_messages::id.desc())
        .limit(paging.limit())
        .offset(paging.offset())
        .select(delivery_columns!())
        .load::<DeliveryRow>(conn)?;
    Ok(paging.page(rows.into_iter().map(delivery).collect(), total))
}

/// Message `message` of webhook `webhook`, with its attempts (404 naming whichever is missing).
fn delivery_attempts(
    conn: &mut DbConnection,
    webhook: i32,
    message: i64,
) -> Result<DeliveryAttempts, ApiError> {
    found(Webhooks::find(conn, webhook)?, Webhooks::NAME, webhook)?;
    let row = webhook_messages::table
        .filter(webhook_messages::webhook_id.eq(webhook))
        .filter(webhook_messages::id.eq(message))
        .select(delivery_columns!())
        .first::<DeliveryRow>(conn)
        .optional()?
        .ok_or_else(|| {
            ApiError::NotFound(format!("webhook {webhook} has no delivery {message}"))
        })?;
    let mut attempts = webhook_attempts::table
        .filter(webhook_attempts::message_id.eq(message))
        .order(webhook_attempts::id.desc())
        .limit(i64::try_from(ATTEMPTS_SHOWN).unwrap_or(i64::MAX))
        .select((
            webhook_attempts::attempted_at,
            webhook_attempts::status_code,
            webhook_attempts::error,
            webhook_attempts::duration_ms,
        ))
        .load::<(chrono::NaiveDateTime, Option<i32>, Option<String>, i32)>(conn)?;
    attempts.reverse();
    Ok(DeliveryAttempts {
        delivery: delivery(row),
        attempt_log: AttemptLog(
            attempts
                .into_iter()
                .map(|(at, code, error, took)| Attempt {
                    attempted_at: Timestamp::from_naive(at),
                    status_code: code.map(|c| Int::clamped(i64::from(c))),
                    error: error.map(Text::stored),
                    duration_ms: Int::clamped(i64::from(took)),
                })
                .collect(),
        ),
    })
}

// ---- the worker ----------------------------------------------------------------------------

/// A message claimed for one attempt.
struct Claimed {
    id: i64,
    /// Its `webhook-id`.
    message_id: String,
    webhook: i32,
    url: String,
    secret: String,
    payload: String,
    attempts: i32,
    /// The lease of this claim: the attempt settles the message only while it still holds it.
    lease: chrono::NaiveDateTime,
}

/// Claims the next message of each webhook that is due, and not being delivered by this process
/// (`busy`) or another (its lease), for one attempt each.
fn claim(
    conn: &mut DbConnection,
    busy: &HashSet<i32>,
    only: Option<i32>,
) -> Result<Vec<Claimed>, ApiError> {
    // The messages of the changes committed since the last poll.
    changelog::number(conn)?;
    // Most polls find nothing: say so without a write transaction, which on SQLite would take
    // the database's one write lock ten times a second.
    let pending = webhook_messages::table
        .filter(webhook_messages::status.eq("pending"))
        .select(webhook_messages::id)
        .first::<i64>(conn)
        .optional()?;
    if pending.is_none() {
        return Ok(Vec::new());
    }
    db::write_transaction(conn, |conn| claim_due(conn, busy, only))
}

/// The oldest due message of each webhook not `busy` (of `only`, if given), leased to this
/// worker. Runs in the caller's write transaction.
///
/// The heads are read first, without locks; another replica may settle one of them before this
/// one locks it. So the locking statement, and the write of the lease, take a message only if it
/// is still pending, due and leased to no one: a message settled meanwhile is left alone (and
/// its webhook's next message waits for the next poll), never sent again out of turn.
fn claim_due(
    conn: &mut DbConnection,
    busy: &HashSet<i32>,
    only: Option<i32>,
) -> Result<Vec<Claimed>, ApiError> {
    let now = db::now();
    let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    // The oldest pending message of each enabled webhook: messages to one endpoint go out in
    // order.
    let heads: Vec<(i32, Option<i64>)> = webhook_messages::table
        .inner_join(webhooks::table)
        .filter(webhooks::enabled.eq(true))
        .filter(webhook_messages::status.eq("pending"))
        .group_by(webhook_messages::webhook_id)
        .select((
            webhook_messages::webhook_id,
            diesel::dsl::min(webhook_messages::id),
        ))
        .load(conn)?;
    let ids: Vec<i64> = heads
        .into_iter()
        .filter(|(webhook, _)| !busy.contains(webhook))
        .filter(|(webhook, _)| only.is_none_or(|only| only == *webhook))
        .filter_map(|(_, id)| id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let free = webhook_messages::claimed_until
        .is_null()
        .or(webhook_messages::claimed_until.lt(now));
    let due = webhook_messages::table
        .filter(webhook_messages::id.eq_any(&ids))
        .filter(webhook_messages::status.eq("pending"))
        .filter(webhook_messages::next_attempt_at.le(now))
        .filter(free);
    let claimable: Vec<i64> = match conn {
        // Another replica's worker skips what this one has locked, and the other way round;
        // a row another replica changed since the heads were read is read again, as it is now,
        // before the conditions are applied.
        DbConnection::Postgresql(pg) => due
            .select(webhook_messages::id)
            .for_update()
            .skip_locked()
            .load(pg)?,
        DbConnection::Sqlite(sqlite) => due.select(webhook_messages::id).load(sqlite)?,
    };
    if claimable.is_empty() {
        return Ok(Vec::new());
    }
    let claimed: Vec<i64> = diesel::update(
        webhook_messages::table
            .filter(webhook_messages::id.eq_any(&claimable))
            .filter(webhook_messages::status.eq("pending"))
            .filter(free),
    )
    .set(webhook_messages::claimed_until.eq(lease))
    .returning(webhook_messages::id)
    .get_results(conn)?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let rows = webhook_messages::table
        .inner_join(webhooks::table)
        .filter(webhook_messages::id.eq_any(&claimed))
        .select((
            webhook_messages::id,
            webhook_messages::message_id,
            webhook_messages::webhook_id,
            webhooks::url,
            webhooks::secret,
            webhook_messages::payload,
            webhook_messages::attempts,
        ))
        .load::<(i64, String, i32, String, String, String, i32)>(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, message_id, webhook, url, secret, payload, attempts)| Claimed {
                id,
                message_id,
                webhook,
                url,
                secret,
                payload,
                attempts,
                lease,
            },
        )
        .collect())
}

/// HTTP clients by destination. Building one loads the system's root certificates, which costs
/// more than a delivery to a nearby receiver, and a kept client keeps its connection open. The
/// key is the host with the addresses just checked for this attempt: a client connects only
/// where the latest check allowed, so DNS cannot change in between.
#[derive(Default)]
struct Clients(Mutex<HashMap<(String, Vec<SocketAddr>), reqwest::Client>>);

/// The clients' resolver for every name but the one just checked: it looks nothing up, so that
/// a client can only connect to the addresses the guard allowed.
struct Unchecked;

impl reqwest::dns::Resolve for Unchecked {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move { Err(format!("{name} was not checked by the webhook guard").into()) })
    }
}

impl Clients {
    /// Destinations kept at most; past that the cache starts again.
    const MAX: usize = 64;

    fn for_destination(
        &self,
        destination: &Destination,
        addresses: &[SocketAddr],
    ) -> Result<reqwest::Client, reqwest::Error> {
        let key = (destination.host().to_owned(), addresses.to_vec());
        let mut clients = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent(concat!("lhs-rounds/", env!("CARGO_PKG_VERSION")))
            // A proxy would connect wherever its own DNS says, past the guard.
            .no_proxy()
            .dns_resolver(Arc::new(Unchecked));
        if destination.address().is_none() {
            // The name exactly as the client reads it from the URL, so that the override is
            // the one it uses.
            builder = builder.resolve_to_addrs(destination.host(), addresses);
        }
        let client = builder.build()?;
        if clients.len() >= Self::MAX {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// What one attempt came to.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    took: Duration,
}

/// One attempt: the message POSTed with its signature, to the checked address, with no
/// redirects followed, within [`TIMEOUT`]; at most [`ANSWER_MAX`] of the answer read.
async fn attempt(message: &Claimed, settings: &WebhookSettings, clients: &Clients) -> Outcome {
    let started = Instant::now();
    let done = |status: Option<u16>, error: Option<String>| Outcome {
        status,
        error,
        took: started.elapsed(),
    };
    let checked = match Destination::parse(&message.url) {
        Ok(destination) => settings
            .guard
            .check(&destination)
            .await
            .map(|addresses| (destination, addresses)),
        Err(why) => Err(why),
    };
    let (destination, addresses) = match checked {
        Ok(checked) => checked,
        Err(why) => return done(None, Some(format!("not sent: the URL {why}"))),
    };
    let client = match clients.for_destination(&destination, &addresses) {
        Ok(client) => client,
        Err(e) => return done(None, Some(format!("not sent: {e}"))),
    };
    let timestamp = chrono::Utc::now().timestamp();
    let signature = match sign(
        &message.secret,
        &message.message_id,
        timestamp,
        &message.payload,
    ) {
        Ok(signature) => signature,
        Err(why) => return done(None, Some(format!("not sent: {why}"))),
    };
    let sent = client
        .post(destination.url().clone())
        .header("content-type", "application/json")
        .header("webhook-id", &message.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(message.payload.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return done(None, Some("no answer within 10 s".to_owned())),
        Err(e) => return done(None, Some(format!("cannot deliver: {e}"))),
    };
    let status = response.status().as_u16();
    // Read a little of the answer (for the log of attempts), never more than 64 KB.
    let mut read = 0usize;
    while read < ANSWER_MAX {
        match tokio::time::timeout(TIMEOUT, response.chunk()).await {
            Ok(Ok(Some(chunk))) => read += chunk.len(),
            _ => break,
        }
    }
    if (200..300).contains(&status) {
        done(Some(status), None)
    } else {
        done(Some(status), Some(format!("answered {status}")))
    }
}

/// Records an attempt and decides what comes next: delivered, retried later, or failed (and,
/// after [`FAILED_MESSAGES_MAX`] failed messages in a row or a 410, the webhook disabled). Runs
/// in the caller's write transaction. The attempt is always recorded; the message is changed
/// only while this attempt's claim still holds its lease (`false` otherwise: it expired and
/// another replica took the message, or an admin asked for it to be sent again).
fn settle(
    conn: &mut DbConnection,
    message: &Claimed,
    outcome: &Outcome,
    schedule: &[Duration],
) -> Result<bool, ApiError> {
    let now = db::now();
    let attempts = message.attempts + 1;
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::message_id.eq(message.id),
            webhook_attempts::attempted_at
                .eq(now - chrono::Duration::from_std(outcome.took).unwrap_or_default()),
            webhook_attempts::status_code.eq(outcome.status.map(i32::from)),
            webhook_attempts::error.eq(outcome.error.as_deref()),
            webhook_attempts::duration_ms
                .eq(i32::try_from(outcome.took.as_millis()).unwrap_or(i32::MAX)),
        ))
        .execute(conn)?;
    let target = webhook_messages::table
        .filter(webhook_messages::id.eq(message.id))
        .filter(webhook_messages::status.eq("pending"))
        .filter(webhook_messages::claimed_until.eq(message.lease));
    let delivered = outcome.status.is_some_and(|s| (200..300).contains(&s));
    if delivered {
        let held = diesel::update(target)
            .set((
                webhook_messages::status.eq("delivered"),
                webhook_messages::attempts.eq(attempts),
                webhook_messages::last_status_code.eq(outcome.status.map(i32::from)),
                webhook_messages::last_error.eq(None::<String>),
                webhook_messages::delivered_at.eq(Some(now)),
                webhook_messages::claimed_until.eq(None::<chrono::NaiveDateTime>),
            ))
            .execute(conn)?
            == 1;
        if held {
            diesel::update(webhooks::table.find(message.webhook))
                .set(webhooks::failed_messages.eq(0))
                .execute(conn)?;
        }
        return Ok(held);
    }
    if outcome.status == Some(410) {
        // Gone: the receiver says it will never take messages again.
        let held = diesel::update(target)
            .set((
                webhook_messages::status.eq("failed"),
                webhook_messages::attempts.eq(attempts),
                webhook_messages::last_status_code.eq(Some(410)),
                webhook_messages::last_error.eq(outcome.error.as_deref()),
                webhook_messages::claimed_until.eq(None::<chrono::NaiveDateTime>),
            ))
            .execute(conn)?
            == 1;
        if held {
            disable(conn, message.webhook, "the receiver answered 410 Gone")?;
        }
        return Ok(held);
    }
    let retry = usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| schedule.get(i));
    match retry {
        Some(wait) => {
            let wait = jittered(*wait);
            Ok(diesel::update(target)
                .set((
                    webhook_messages::attempts.eq(attempts),
                    webhook_messages::last_status_code.eq(outcome.status.map(i32::from)),
                    webhook_messages::last_error.eq(outcome.error.as_deref()),
                    webhook_messages::next_attempt_at
                        .eq(now + chrono::Duration::from_std(wait).unwrap_or_default()),
                    webhook_messages::claimed_until.eq(None::<chrono::NaiveDateTime>),
                ))
                .execute(conn)?
                == 1)
        }
        None => {
            let held = diesel::update(target)
                .set((
                    webhook_messages::status.eq("failed"),
                    webhook_messages::attempts.eq(attempts),
                    webhook_messages::last_status_code.eq(outcome.status.map(i32::from)),
                    webhook_messages::last_error.eq(outcome.error.as_deref()),
                    webhook_messages::claimed_until.eq(None::<chrono::NaiveDateTime>),
                ))
                .execute(conn)?
                == 1;
            if !held {
                return Ok(false);
            }
            let failures = diesel::update(webhooks::table.find(message.webhook))
                .set(webhooks::failed_messages.eq(webhooks::failed_messages + 1))
                .returning(webhooks::failed_messages)
                .get_result::<i32>(conn)?;
            if failures >= FAILED_MESSAGES_MAX {
                disable(
                    conn,
                    message.webhook,
                    &format!("{failures} messages in a row failed every retry"),
                )?;
            }
            Ok(true)
        }
    }
}

fn disable(conn: &mut DbConnection, webhook: i32, why: &str) -> Result<(), ApiError> {
    diesel::update(webhooks::table.find(webhook))
        .set((
            webhooks::enabled.eq(false),
            webhooks::disabled_reason.eq(Some(why)),
            webhooks::version.eq(webhooks::version + 1),
            webhooks::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    log::warn!("webhook {webhook} disabled: {why}");
    Ok(())
}

/// `wait`, 20 % either way at random, so that retries of many messages do not come together.
fn jittered(wait: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    let factor = 0.8 + 0.4 * f64::from(byte[0]) / 255.0;
    wait.mul_f64(factor)
}

/// The delivery worker of a process: a thread of its own, so that a receiver that hangs or
/// answers slowly never holds up an HTTP worker; webhooks are delivered to concurrently, one
/// message at a time each.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Worker {
    /// Starts the worker; it also stops by itself once `alive` can no longer be upgraded (the
    /// server that owned it is gone).
    pub fn spawn(
        database: Database,
        settings: WebhookSettings,
        alive: std::sync::Weak<()>,
    ) -> Result<Worker, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lhs-webhooks".to_owned())
            .spawn(move || {
                // Its blocking threads named too, so that its polling can be told apart from
                // requests (the statement counts of the tests leave it out).
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .thread_name("lhs-webhooks")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        log::error!("the webhook worker cannot start: {e}");
                        return;
                    }
                };
                runtime.block_on(run(database, settings, stopping, alive));
            })
            .map_err(|e| format!("cannot start the webhook worker: {e}"))?;
        Ok(Worker {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops taking new messages and waits for the attempts under way to finish.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

async fn run(
    database: Database,
    settings: WebhookSettings,
    stop: Arc<AtomicBool>,
    alive: std::sync::Weak<()>,
) {
    let busy: Arc<Mutex<HashSet<i32>>> = Arc::default();
    let clients: Arc<Clients> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    while !stop.load(Ordering::SeqCst) && alive.strong_count() > 0 {
        let taken: HashSet<i32> = busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let db = database.clone();
        let claimed =
            tokio::task::spawn_blocking(move || db.run(|conn| claim(conn, &taken, None))).await;
        match claimed {
            Ok(Ok(messages)) => {
                for message in messages {
                    busy.lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .insert(message.webhook);
                    let (db, settings, busy, stop, clients) = (
                        database.clone(),
                        settings.clone(),
                        busy.clone(),
                        stop.clone(),
                        clients.clone(),
                    );
                    tasks.spawn(async move {
                        let webhook = message.webhook;
                        deliver_in_turn(db, settings, clients, message, stop).await;
                        busy.lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .remove(&webhook);
                    });
                }
            }
            Ok(Err(e)) => log::debug!("webhook worker: cannot claim messages: {e}"),
            Err(e) => log::warn!("webhook worker: {e}"),
        }
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(POLL).await;
    }
    // Shutting down: the attempts under way finish; no new one starts.
    while tasks.join_next().await.is_some() {}
}

/// Delivers `message`, then the webhook's next due messages one after another while they are
/// delivered and the worker is not stopping: a burst of changes to one receiver goes out at the
/// receiver's pace, not one message per poll. A failure ends the turn (its retry is scheduled).
async fn deliver_in_turn(
    db: Database,
    settings: WebhookSettings,
    clients: Arc<Clients>,
    mut message: Claimed,
    stop: Arc<AtomicBool>,
) {
    loop {
        let outcome = attempt(&message, &settings, &clients).await;
        let delivered = outcome.status.is_some_and(|s| (200..300).contains(&s));
        telemetry::record_webhook_attempt(!delivered);
        let webhook = message.webhook;
        let (db, schedule) = (db.clone(), settings.retry_schedule.clone());
        let go_on = delivered && !stop.load(Ordering::SeqCst);
        // One transaction records this attempt and leases the next message.
        let settled = tokio::task::spawn_blocking(move || {
            db.run(|conn| {
                db::write_transaction(conn, |conn| {
                    let held = settle(conn, &message, &outcome, &schedule)?;
                    if go_on && held {
                        claim_due(conn, &HashSet::new(), Some(webhook))
                    } else {
                        Ok(Vec::new())
                    }
                })
            })
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()));
        match settled {
            Ok(Ok(next)) => match next.into_iter().next() {
                Some(next) => message = next,
                None => return,
            },
            Ok(Err(e)) | Err(e) => {
                log::warn!("cannot record a webhook attempt: {e}");
                return;
            }
        }
    }
}

/// Settled messages deleted by one transaction of [`purge`]: each batch's locks are short.
const PURGE_BATCH: i64 = 500;

/// Deletes the delivered and failed messages whose last attempt is older than `retention`,
/// with their attempts, [`PURGE_BATCH`] at a time, each batch in a transaction of its own (so
/// that neither the worker nor a writer waits behind a long one). Pending messages are never
/// deleted, however old. Returns how many messages went.
pub fn purge(conn: &mut DbConnection, retention: Duration) -> Result<usize, ApiError> {
    purge_in_batches(conn, retention, PURGE_BATCH)
}

/// [`purge`], `batch` messages per transaction.
pub fn purge_in_batches(
    conn: &mut DbConnection,
    retention: Duration,
    batch: i64,
) -> Result<usize, ApiError> {
    // A retention longer than the calendar goes back keeps everything.
    let Some(horizon) = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|keep| db::now().checked_sub_signed(keep))
    else {
        return Ok(0);
    };
    let mut purged = 0;
    loop {
        let gone = db::write_transaction(conn, |conn| -> Result<usize, ApiError> {
            // Oldest first, by id: the scan stops at the batch's end rather than reading the
            // whole outbox.
            let ids: Vec<i64> = webhook_messages::table
                .filter(webhook_messages::status.ne("pending"))
                .filter(webhook_messages::next_attempt_at.lt(horizon))
                .filter(
                    webhook_messages::delivered_at
                        .is_null()
                        .or(webhook_messages::delivered_at.lt(horizon)),
                )
                .order(webhook_messages::id)
                .limit(batch)
                .select(webhook_messages::id)
                .load(conn)?;
            if ids.is_empty() {
                return Ok(0);
            }
            // Their attempts go with them (`ON DELETE CASCADE`; SQLite's connections enforce
            // foreign keys too). A message retried by hand since it was read is left alone.
            Ok(diesel::delete(
                webhook_messages::table
                    .filter(webhook_messages::id.eq_any(&ids))
                    .filter(webhook_messages::status.ne("pending")),
            )
            .execute(conn)?)
        })?;
        purged += gone;
        if gone == 0 {
            return Ok(purged);
        }
    }
}

/// Outbox statistics, for metrics: messages pending, failed, and the oldest pending one's age
/// in seconds.
pub fn outbox_state(conn: &mut DbConnection) -> Result<(i64, i64, f64), ApiError> {
    // One statement: the count and oldest message of each status.
    let by_status: Vec<(String, i64, Option<chrono::NaiveDateTime>)> = webhook_messages::table
        .filter(webhook_messages::status.eq_any(["pending", "failed"]))
        .group_by(webhook_messages::status)
        .select((
            webhook_messages::status,
            diesel::dsl::count_star(),
            diesel::dsl::min(webhook_messages::created_at),
        ))
        .load(conn)?;
    let of = |wanted: &str| by_status.iter().find(|(status, ..)| status == wanted);
    let pending = of("pending").map_or(0, |(_, count, _)| *count);
    let failed = of("failed").map_or(0, |(_, count, _)| *count);
    let oldest = of("pending").and_then(|(.., oldest)| *oldest);
    let age = oldest.map_or(0.0, |at| (db::now() - at).as_seconds_f64().max(0.0));
    Ok((pending, failed, age))
}

// ---- handlers ----------------------------------------------------------------------------

/// Register a webhook (its secret is shown once, in this answer)
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    request_body = WebhookInput,
    responses(
        (status = 201, description = "Created, with its secret (again to a retry with the same `Idempotency-Key` while the webhook is unchanged)", body = WebhookWithSecret,
            headers(("Location" = HeaderText, description = "URL of the new webhook"))),
        (status = 410, description = "A retry with the same `Idempotency-Key`, after the webhook it created was deleted",
            content_type = "application/problem+json", body = crate::platform::error::Problem),
        WriteErrors
    )
)]
#[post("/webhooks")]
pub async fn create_webhook(
    ctx: Ctx,
    body: JsonBody,
    settings: web::Data<WebhookSettings>,
) -> Result<HttpResponse, ApiError> {
    // Authorized first: an anonymous caller learns nothing of what a name resolves to.
    let granted = ctx.authorize::<Webhooks>(Access::Create)?;
    let body = body.value()?;
    let request = serde_json::to_vec(&body)?;
    let destination = body
        .get("url")
        .and_then(Value::as_str)
        .and_then(|url| Destination::parse(url).ok());
    let mut checked = ctx.validators.body::<WebhookInput>(body);
    if let Some(destination) = destination {
        // Where it points, with every other error of the body.
        if let Err(why) = settings.guard.check(&destination).await {
            checked.add_error("url", why);
        }
    }
    resource::create_with::<Webhooks>(ctx, granted, checked, &request, |_| Ok(())).await
}

/// List webhooks
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(Paging),
    responses((status = 200, description = "A page of webhooks", body = Page<Webhook>), ReadErrors)
)]
#[get("/webhooks")]
pub async fn list_webhooks(ctx: Ctx, query: Query) -> Result<HttpResponse, ApiError> {
    resource::list::<Webhooks>(ctx, query).await
}

/// Get a webhook
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(("id" = Id, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook", body = Webhook), ReadErrors)
)]
#[get("/webhooks/{id}")]
pub async fn get_webhook(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    resource::get::<Webhooks>(ctx, id.into_inner()).await
}

/// Change a webhook (JSON merge patch); `enabled: true` enables it again
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(("id" = Id, Path, description = "Webhook id")),
    request_body(content = WebhookInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The webhook as changed", body = Webhook), WriteErrors)
)]
#[patch("/webhooks/{id}")]
pub async fn patch_webhook(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
    settings: web::Data<WebhookSettings>,
) -> Result<HttpResponse, ApiError> {
    // Authorized first: an anonymous caller learns nothing of what a name resolves to.
    let granted = ctx.authorize::<Webhooks>(Access::Change)?;
    let body = body.value()?;
    if let Some(url) = body.get("url").and_then(Value::as_str) {
        if Destination::parse(url).is_ok() {
            check_destination(url, &settings).await?;
        }
    }
    resource::patch_granted::<Webhooks>(ctx, granted, id.into_inner(), body).await
}

/// Delete a webhook (its undelivered messages go with it)
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(("id" = Id, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    resource::delete::<Webhooks>(ctx, id.into_inner()).await
}

/// Give a webhook a new secret (shown once, in this answer)
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(("id" = Id, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook with its new secret", body = WebhookWithSecret), WriteErrors)
)]
#[post("/webhooks/{id}/rotate-secret")]
pub async fn rotate_secret(ctx: Ctx, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Webhooks>(Access::Change)?;
    let id = id.into_inner();
    let answer = ctx
        .write(granted, move |conn, author| {
            let current = found(Webhooks::find(conn, id)?, Webhooks::NAME, id)?;
            let secret = new_secret()?;
            let row = crate::on_backend!(conn, |c| diesel::update(webhooks::table.find(id))
                .set((
                    webhooks::secret.eq(&secret),
                    webhooks::updated_at.eq(db::now()),
                    webhooks::updated_by.eq(author.actor),
                    webhooks::version.eq(webhooks::version + 1),
                ))
                .returning(WebhookRow::as_returning())
                .get_result(c))?;
            let webhook = Webhook::from(row);
            // The secret itself is never in the log: only that it changed.
            let mut before = serde_json::to_value(&current)?;
            before["secret"] = Value::from("(previous)");
            let mut after = serde_json::to_value(&webhook)?;
            after["secret"] = Value::from("(rotated)");
            author.record(conn, Webhooks::NAME, id, Some(&before), Some(&after))?;
            Ok(WebhookWithSecret {
                webhook,
                secret: Secret::stored(secret),
            })
        })
        .await?;
    let etag = http::record_etag(answer.webhook.audit.version, true);
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::ETAG, etag))
        .json(answer))
}

/// List the messages of a webhook and how their delivery went, newest first
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(("id" = Id, Path, description = "Webhook id"), Paging),
    responses((status = 200, description = "A page of deliveries", body = Page<Delivery>), ReadErrors)
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Webhooks>(Access::Read)?;
    let id = id.into_inner();
    let query = query.values()?;
    let paging: Paging = query.get()?;
    ctx.read_log(granted, move |conn| {
        Rendered::json(&deliveries(conn, id, paging)?)
    })
    .await
}

/// The id of a delivery.
pub type DeliveryId = Int<1, 9007199254740991>;

/// Get a message of a webhook with every attempt to deliver it
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(
        ("id" = Id, Path, description = "Webhook id"),
        ("delivery_id" = DeliveryId, Path, description = "Delivery id")
    ),
    responses(
        (status = 200, description = "The delivery and its attempts, oldest first", body = DeliveryAttempts),
        ReadErrors
    )
)]
#[get("/webhooks/{id}/deliveries/{delivery_id}")]
pub async fn get_delivery(ctx: Ctx, path: web::Path<(i32, i64)>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Webhooks>(Access::Read)?;
    let (webhook, message) = path.into_inner();
    ctx.read(granted, false, true, None, move |conn| {
        Rendered::json(&delivery_attempts(conn, webhook, message)?)
    })
    .await
}

/// Deliver a message again (now, whatever came of its earlier attempts)
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(
        ("id" = Id, Path, description = "Webhook id"),
        ("delivery_id" = DeliveryId, Path, description = "Delivery id")
    ),
    responses((status = 200, description = "The delivery, pending again", body = Delivery), WriteErrors)
)]
#[post("/webhooks/{id}/deliveries/{delivery_id}/retry")]
pub async fn retry_delivery(
    ctx: Ctx,
    path: web::Path<(i32, i64)>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Webhooks>(Access::Change)?;
    let (webhook, message) = path.into_inner();
    let answer = ctx
        .write(granted, move |conn, _| {
            found(Webhooks::find(conn, webhook)?, Webhooks::NAME, webhook)?;
            let target = webhook_messages::table
                .filter(webhook_messages::webhook_id.eq(webhook))
                .filter(webhook_messages::id.eq(message));
            let changed = diesel::update(target)
                .set((
                    webhook_messages::status.eq("pending"),
                    webhook_messages::next_attempt_at.eq(db::now()),
                    webhook_messages::claimed_until.eq(None::<chrono::NaiveDateTime>),
                ))
                .execute(conn)?;
            if changed == 0 {
                return Err(ApiError::NotFound(format!(
                    "webhook {webhook} has no delivery {message}"
                )));
            }
            let row = webhook_messages::table
                .find(message)
                .select(delivery_columns!())
                .first::<DeliveryRow>(conn)?;
            Ok(delivery(row))
        })
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference implementations.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn the_retry_schedule_is_a_list_of_durations() {
        let settings = WebhookSettings::parse("", "5s,5m,30m,2h", "30d").expect("valid");
        assert_eq!(settings.retry_schedule[1], Duration::from_secs(300));
        assert!(WebhookSettings::parse("", "soon", "30d").is_err());
        let wait = jittered(Duration::from_secs(100));
        assert!((80..=120).contains(&wait.as_secs()));
    }

    #[test]
    fn the_retention_is_a_duration_or_off() {
        let retention = |text: &str| WebhookSettings::parse("", "5s", text).map(|s| s.retention);
        assert_eq!(retention("30d"), Ok(Some(Duration::from_secs(30 * 86400))));
        assert_eq!(retention(" 12h "), Ok(Some(Duration::from_secs(12 * 3600))));
        assert_eq!(retention("off"), Ok(None));
        assert_eq!(retention("0"), Ok(None));
        assert!(retention("a month").is_err());
        assert!(
            retention("0s").is_err(),
            "zero would purge what was just delivered"
        );
    }
}
