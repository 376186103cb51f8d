//! Reading the change log (see `changelog`): the audit trail for admins, and the change feed
//! other systems sync from.

use actix_web::{get, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::learning::initiatives::Initiatives;
use crate::learning::measures::{self, Measures};
use crate::learning::outcomes::Outcomes;
use crate::learning::pdsa::PdsaCycles;
use crate::platform::auth::{Caller, Role, Subject, Visible};
use crate::platform::cache::Rendered;
use crate::platform::changelog::{self, Action};
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::fields::{Id, Int, Line, Timestamp};
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{Ctx, Resource};
use crate::platform::schema::{change_log_floor, changes};
use crate::platform::validate::Query;
use crate::schedule::departments::Departments;
use crate::schedule::feedback::Feedbacks;
use crate::schedule::materials::{self, Visibility};
use crate::schedule::rounds::Rounds;
use crate::schedule::series::SeriesRecord;
use crate::schedule::speakers::Speakers;

/// The number of an entry of the change log.
pub type Seq = Int<0, 9007199254740991>;
/// Entries of the change feed per answer.
pub type FeedLimit = Int<1, 1000>;

crate::text_enum! {
    /// What a change was made to.
    pub enum ResourceName {
        Round = "round",
        Speaker = "speaker",
        Department = "department",
        Feedback = "feedback",
        Series = "series",
        Webhook = "webhook",
        Initiative = "initiative",
        PdsaCycle = "pdsa_cycle",
        Measure = "measure",
        DataPoint = "data_point",
        Outcome = "outcome",
        Material = "material",
        Attendee = "attendee",
        Attendance = "attendance",
        CheckinCode = "checkin_code",
        Disclosure = "disclosure",
        DisclosureReview = "disclosure_review",
        DisclosureStatement = "disclosure_statement",
    }
}

/// How long the log is kept (`LHS_AUDIT_RETENTION_DAYS`, `LHS_CHANGES_RETENTION_DAYS`).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Days the audit trail keeps an entry; 0 keeps every entry forever.
    pub audit_days: u32,
    /// Days the change feed serves an entry (deletions included, as tombstones).
    pub feed_days: u32,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Increases in commit order.
    pub seq: Seq,
    pub at: Timestamp,
    /// The token's subject, or `anonymous`.
    pub actor: Subject,
    pub resource: ResourceName,
    pub id: Id,
    pub action: Action,
    /// Each changed field as `[before, after]`.
    #[schema(value_type = Object)]
    pub changes: Value,
    /// The `X-Request-Id` of the write.
    pub request_id: Option<Line<64>>,
}

/// Filters of the audit trail.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    pub resource: Option<ResourceName>,
    /// The record's id (with `resource`).
    pub id: Option<Id>,
    /// Who made the change (a token's subject, or `anonymous`).
    pub actor: Option<Line<255>>,
    /// Changes made at or after this time.
    pub from: Option<Timestamp>,
    /// Changes made at or before this time.
    pub to: Option<Timestamp>,
}

/// One record's latest change, in the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedItem {
    pub seq: Seq,
    pub resource: ResourceName,
    pub id: Id,
    pub action: Action,
    pub at: Timestamp,
    /// The record as `GET` shows it to the caller now; `null` once it is deleted.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// A page of the change feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeFeed {
    /// Oldest first; each record once, at its latest change.
    #[schema(max_items = 1000)]
    pub items: Vec<FeedItem>,
    /// What to send as `after` next.
    pub next_after: Seq,
}

/// Where to start and how much to read.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `next_after` of the previous answer; 0 to start from the beginning.
    pub after: Option<Seq>,
    /// Items per answer (default 100).
    #[param(inline, default = 100)]
    pub limit: Option<FeedLimit>,
}

#[derive(Queryable)]
struct EntryRow {
    seq: i64,
    at: NaiveDateTime,
    actor: String,
    resource: String,
    record_id: i32,
    action: Action,
    changed_fields: String,
    request_id: Option<String>,
}

fn audited(filter: &AuditFilter) -> changes::BoxedQuery<'static, MultiBackend> {
    let mut query = changes::table.into_boxed();
    if let Some(resource) = filter.resource {
        query = query.filter(changes::resource.eq(resource.as_str()));
    }
    if let Some(id) = filter.id {
        query = query.filter(changes::record_id.eq(id.0));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(changes::actor.eq(actor.as_str().to_owned()));
    }
    if let Some(from) = filter.from {
        query = query.filter(changes::at.ge(from.naive()));
    }
    if let Some(to) = filter.to {
        query = query.filter(changes::at.le(to.naive()));
    }
    query
}

/// A page of the audit trail, newest first.
pub fn audit(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    paging: Paging,
) -> Result<Page<AuditEntry>, ApiError> {
    let total = audited(filter).count().get_result::<i64>(conn)?;
    let rows = audited(filter)
        .order(changes::seq.desc())
        .limit(paging.limit())
        .offset(paging.offset())
        .select((
            changes::seq,
            changes::at,
            changes::actor,
            changes::resource,
            changes::record_id,
            changes::action,
            changes::changed_fields,
            changes::request_id,
        ))
        .load::<EntryRow>(conn)?;
    let items = rows
        .into_iter()
        .filter_map(|row| {
            Some(AuditEntry {
                seq: Seq::clamped(row.seq),
                at: Timestamp::from_naive(row.at),
                actor: Subject::stored(row.actor),
                resource: row.resource.parse().ok()?,
                id: Id(row.record_id),
                action: row.action,
                changes: serde_json::from_str(&row.changed_fields).unwrap_or(Value::Null),
                request_id: row.request_id.map(Line::stored),
            })
        })
        .collect();
    Ok(paging.page(items, total))
}

/// The resources `caller` sees in the feed: the schedule with its materials (each by its
/// visibility) and the learning loop (their private fields hidden as their reads hide them), and
/// feedback for organizers.
fn visible_resources(caller: &Caller) -> Vec<&'static str> {
    let mut names = vec![
        "round",
        "speaker",
        "department",
        "series",
        "initiative",
        "pdsa_cycle",
        "measure",
        "data_point",
        "outcome",
        "material",
    ];
    if caller.sees_private_fields() {
        names.push("feedback");
    }
    names
}

/// The record as `GET` shows it to `caller` now; `None` if it no longer exists.
fn current(
    conn: &mut DbConnection,
    resource: ResourceName,
    id: i32,
    caller: &Caller,
) -> Result<Option<Value>, ApiError> {
    fn shown<R: Resource>(
        conn: &mut DbConnection,
        id: i32,
        caller: &Caller,
    ) -> Result<Option<Value>, ApiError> {
        R::find(conn, id)?
            .map(|record| serde_json::to_value(record.visible_to(caller)).map_err(ApiError::from))
            .transpose()
    }
    match resource {
        ResourceName::Round => shown::<Rounds>(conn, id, caller),
        ResourceName::Speaker => shown::<Speakers>(conn, id, caller),
        ResourceName::Department => shown::<Departments>(conn, id, caller),
        ResourceName::Feedback => shown::<Feedbacks>(conn, id, caller),
        ResourceName::Series => shown::<SeriesRecord>(conn, id, caller),
        // Never in the feed (see `visible_resources`): private to organizers. Disclosures and
        // their judgements are private too, and a statement is read from its round
        // (`disclosure_statement_url`) and announced by its webhook event.
        ResourceName::Webhook
        | ResourceName::Attendee
        | ResourceName::Attendance
        | ResourceName::CheckinCode
        | ResourceName::Disclosure
        | ResourceName::DisclosureReview
        | ResourceName::DisclosureStatement => Ok(None),
        ResourceName::Initiative => shown::<Initiatives>(conn, id, caller),
        ResourceName::PdsaCycle => shown::<PdsaCycles>(conn, id, caller),
        ResourceName::Measure => shown::<Measures>(conn, id, caller),
        ResourceName::Outcome => shown::<Outcomes>(conn, id, caller),
        ResourceName::DataPoint => measures::find_point(conn, id)?
            .map(|point| serde_json::to_value(point.visible_to(caller)).map_err(ApiError::from))
            .transpose(),
        ResourceName::Material => materials::shown_to(conn, id, caller)?
            .map(|m| serde_json::to_value(m).map_err(ApiError::from))
            .transpose(),
    }
}

/// Whether a material's change at `seq` is the caller's to know of: it was visible to them
/// before the change or after it. A material they never saw does not exist for them, not even
/// as a deletion; one that became hidden from them is, for them, deleted.
fn material_change_shown(
    conn: &mut DbConnection,
    seq: i64,
    caller: &Caller,
) -> Result<bool, ApiError> {
    let (data, changed) = changes::table
        .find(seq)
        .select((changes::data, changes::changed_fields))
        .first::<(Option<String>, String)>(conn)?;
    let visibility = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<Visibility>().ok())
    };
    let data: Option<Value> = data.and_then(|d| serde_json::from_str(&d).ok());
    let changed: Value = serde_json::from_str(&changed).unwrap_or(Value::Null);
    let then = [
        visibility(data.as_ref().and_then(|d| d.get("visibility"))),
        visibility(changed.pointer("/visibility/0")),
        visibility(changed.pointer("/visibility/1")),
    ];
    Ok(then.into_iter().flatten().any(|v| v.shows_to(caller)))
}

/// The oldest `after` the feed still answers: changes up to it may have been purged, or be
/// older than the feed keeps.
fn floor(conn: &mut DbConnection, retention: Retention) -> Result<i64, ApiError> {
    let purged = change_log_floor::table
        .find(1)
        .select(change_log_floor::purged_through)
        .first::<i64>(conn)
        .optional()?
        .unwrap_or(0);
    let horizon = db::now() - chrono::Duration::days(i64::from(retention.feed_days));
    let expired = changes::table
        .filter(changes::at.lt(horizon))
        .select(diesel::dsl::max(changes::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    Ok(purged.max(expired))
}

/// A page of the change feed for `caller`.
pub fn feed(
    conn: &mut DbConnection,
    after: i64,
    limit: i64,
    caller: &Caller,
    retention: Retention,
) -> Result<ChangeFeed, ApiError> {
    let newest = changelog::newest(conn)?;
    let floor = floor(conn, retention)?;
    if after < floor {
        return Err(ApiError::Gone {
            detail: format!(
                "changes after {after} are no longer kept (the feed keeps {} days): read the \
                 lists again, then continue from resync_after",
                retention.feed_days
            ),
            resync_after: Some(newest),
        });
    }
    let resources = visible_resources(caller);
    // Each record once, at its latest change after `after`.
    let latest = changes::table
        .filter(changes::seq.gt(after))
        .filter(changes::resource.eq_any(&resources))
        .group_by((changes::resource, changes::record_id))
        .select((
            changes::resource,
            changes::record_id,
            diesel::dsl::max(changes::seq),
        ))
        .load::<(String, i32, Option<i64>)>(conn)?;
    let mut latest: Vec<(i64, String, i32)> = latest
        .into_iter()
        .filter_map(|(resource, id, seq)| Some((seq?, resource, id)))
        .collect();
    latest.sort_unstable();
    let limit = usize::try_from(limit).unwrap_or(100);
    let full = latest.len() >= limit;
    latest.truncate(limit);
    let mut items = Vec::with_capacity(latest.len());
    for (seq, resource, id) in &latest {
        let Ok(name) = resource.parse::<ResourceName>() else {
            continue;
        };
        if name == ResourceName::Material && !material_change_shown(conn, *seq, caller)? {
            continue;
        }
        let (at, action) = changes::table
            .find(*seq)
            .select((changes::at, changes::action))
            .first::<(NaiveDateTime, Action)>(conn)?;
        let data = current(conn, name, *id, caller)?;
        items.push(FeedItem {
            seq: Seq::clamped(*seq),
            resource: name,
            id: Id(*id),
            action: if data.is_none() {
                Action::Deleted
            } else {
                action
            },
            at: Timestamp::from_naive(at),
            data,
        });
    }
    // A page that is not full showed every change after `after` this caller may see: the ones
    // it may not see, up to the newest, need not be read again. (Numbers are given in commit
    // order without gaps, so no change below the newest can still appear.)
    // The last change read, shown or not: one this caller may not see need not be read again.
    let last = latest.last().map_or(after, |(seq, _, _)| *seq);
    let next_after = if full {
        last
    } else {
        last.max(newest).max(after)
    };
    Ok(ChangeFeed {
        items,
        next_after: Seq::clamped(next_after),
    })
}

/// Purges what retention no longer keeps; returns how many entries went.
pub fn purge(conn: &mut DbConnection, retention: Retention) -> Result<usize, ApiError> {
    if retention.audit_days == 0 {
        return Ok(0);
    }
    let horizon = db::now() - chrono::Duration::days(i64::from(retention.audit_days));
    changelog::number(conn)?;
    db::write_transaction(conn, |conn| {
        let through = changes::table
            .filter(changes::at.lt(horizon))
            .select(diesel::dsl::max(changes::seq))
            .first::<Option<i64>>(conn)?;
        let Some(through) = through else {
            return Ok(0);
        };
        if let DbConnection::Postgresql(pg) = conn {
            // The append-only trigger lets this one purge through.
            diesel::sql_query("SET LOCAL lhs.retention = 'purge'").execute(pg)?;
        }
        let purged =
            diesel::delete(changes::table.filter(changes::seq.le(through))).execute(conn)?;
        diesel::update(change_log_floor::table.find(1))
            .set(change_log_floor::purged_through.eq(through))
            .execute(conn)?;
        Ok(purged)
    })
}

// ---- handlers ----------------------------------------------------------------------------

/// The audit trail: who changed what, and when (newest first)
#[utoipa::path(
    tag = "changes",
    security(("bearer" = ["admin"])),
    params(AuditFilter, Paging),
    responses((status = 200, description = "A page of the audit trail", body = Page<AuditEntry>), ReadErrors)
)]
#[get("/audit")]
pub async fn list_audit(ctx: Ctx, query: Query) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require(Role::Admin))?;
    let query = query.values()?;
    let filter: AuditFilter = query.get()?;
    let paging: Paging = query.get()?;
    ctx.read_log(granted, move |conn| {
        Rendered::json(&audit(conn, &filter, paging)?)
    })
    .await
}

/// The change feed: what changed after a point, to sync incrementally
///
/// Each record once, at its latest change, with its data as `GET` shows it to the caller now
/// (`null` once deleted). Start from `after=0`; send each answer's `next_after` as the next
/// `after`. 410 when `after` is older than the feed keeps: read the lists, then continue from
/// the problem's `resync_after`.
#[utoipa::path(
    tag = "changes",
    security((), ("bearer" = [])),
    params(FeedQuery),
    responses(
        (status = 200, description = "The changes after `after`", body = ChangeFeed),
        (status = 410, description = "Changes after `after` are no longer kept: resync from the lists, then continue from `resync_after`",
            content_type = "application/problem+json", body = crate::platform::error::Problem),
        ReadErrors
    )
)]
#[get("/changes")]
pub async fn change_feed(
    ctx: Ctx,
    query: Query,
    retention: web::Data<Retention>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_reader())?;
    let query = query.values()?;
    let asked: FeedQuery = query.get()?;
    let after = asked.after.map_or(0, Seq::get);
    let limit = asked.limit.map_or(100, FeedLimit::get);
    let caller = ctx.caller.clone();
    let retention = *retention.get_ref();
    ctx.read_log(granted, move |conn| {
        Rendered::json(&feed(conn, after, limit, &caller, retention)?)
    })
    .await
}
