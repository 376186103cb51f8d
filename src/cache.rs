//! The read cache: repeated reads of the schedule (departments, speakers, rounds) answered from
//! memory for as long as the schedule is unchanged.
//!
//! Every change to the schedule bumps the `schedule_revision` counter in its own transaction,
//! by database trigger (see the `schedule_revision` migration), so no write path, other replica
//! or hand-run SQL can change the schedule unseen. An answer is kept with the revision it was
//! rendered at and served again only while that is still the current revision: one single-row
//! read instead of the queries and the JSON rendering of the answer. The revision is read
//! before the answer is rendered, so a kept answer is never older than its revision.
//!
//! Each process keeps its own cache and asks the database which revision is current on every
//! read, so replicas share nothing and never serve each other's stale answers. Answers that
//! the passing of time changes (`when=upcoming|past`) also carry the moment they stop holding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::Serialize;

use crate::auth::Caller;
use crate::db::{Backend, Database, DbConnection};
use crate::error::ApiError;
use crate::schema::schedule_revision;

/// At most this many SQLite connections of the cache's own (one per HTTP worker).
const SQLITE_REVISION_READERS_MAX: usize = 16;
/// What an entry costs besides its body and key (the entry, its slot, the shared buffer's
/// header), counted against the budget.
const ENTRY_OVERHEAD: usize = 128;

/// What an answer depends on besides the schedule: the URL and whether the caller sees the
/// fields only organisers see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    path: String,
    query: String,
    private: bool,
}

impl Key {
    pub fn new(req: &HttpRequest, caller: &Caller) -> Key {
        Key {
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            private: caller.sees_private_fields(),
        }
    }

    fn size(&self) -> usize {
        self.path.len() + self.query.len() + std::mem::size_of::<Key>() + ENTRY_OVERHEAD
    }
}

/// An answer rendered to JSON, and the moment it stops holding if time alone can change it.
pub struct Rendered {
    body: Bytes,
    valid_until: Option<NaiveDateTime>,
}

impl Rendered {
    pub fn json<T: Serialize>(value: &T) -> Result<Rendered, ApiError> {
        // Boxed first: a `Vec` grows by doubling, and its spare capacity would be kept too.
        let json = serde_json::to_vec(value)?.into_boxed_slice();
        Ok(Rendered {
            body: Bytes::from(json),
            valid_until: None,
        })
    }

    /// Marks the answer as holding only before `moment` (UTC), when there is one.
    pub fn until(mut self, moment: Option<NaiveDateTime>) -> Rendered {
        self.valid_until = moment;
        self
    }
}

struct Entry {
    revision: i64,
    valid_until: Option<NaiveDateTime>,
    body: Bytes,
    size: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    bytes: usize,
    /// The highest revision read so far. A lower one means the database went back (restored
    /// from a backup, say): everything kept is then dropped.
    newest: i64,
}

impl Entries {
    fn observe(&mut self, revision: i64) {
        if revision < self.newest {
            self.map.clear();
            self.bytes = 0;
        }
        self.newest = revision;
    }
}

/// The cache of one process. Cloning it is cheap and shares it.
#[derive(Clone)]
pub struct ReadCache {
    inner: Arc<Inner>,
}

struct Inner {
    /// At most this many bytes of answers are kept; 0 turns the cache off.
    budget: usize,
    entries: Mutex<Entries>,
    /// SQLite only: connections of the cache's own, on which the revision is read without
    /// leaving the async worker. On a local file in WAL mode that read takes microseconds and
    /// never waits for writers, while a hop to the blocking pool costs more than the read it
    /// saves. Each is query-only with no busy timeout: when none is free or SQLite is busy,
    /// the read goes to the blocking pool like any other.
    sqlite_readers: Vec<Mutex<diesel::SqliteConnection>>,
}

enum Outcome {
    Hit(Bytes),
    Rendered(i64, Rendered),
    Uncached(Rendered),
}

impl ReadCache {
    /// A cache of at most `budget` bytes of answers over `database`, for `workers` HTTP
    /// workers; a budget of 0 turns it off.
    pub fn new(database: &Database, budget: usize, workers: usize) -> Result<ReadCache, String> {
        let mut sqlite_readers = Vec::new();
        if budget > 0 && database.backend() == Backend::Sqlite {
            // One per worker, so that a worker rarely finds them all taken.
            for _ in 0..workers.clamp(1, SQLITE_REVISION_READERS_MAX) {
                let mut conn = diesel::SqliteConnection::establish(&database.url().target)
                    .map_err(|e| format!("cannot open the cache's SQLite connection: {e}"))?;
                conn.batch_execute("PRAGMA query_only = ON; PRAGMA busy_timeout = 0;")
                    .map_err(|e| format!("cannot set up the cache's SQLite connection: {e}"))?;
                sqlite_readers.push(Mutex::new(conn));
            }
        }
        Ok(ReadCache::with_readers(budget, sqlite_readers))
    }

    fn with_readers(
        budget: usize,
        sqlite_readers: Vec<Mutex<diesel::SqliteConnection>>,
    ) -> ReadCache {
        ReadCache {
            inner: Arc::new(Inner {
                budget,
                entries: Mutex::new(Entries::default()),
                sqlite_readers,
            }),
        }
    }

    /// Answers 200 with the JSON `render` produces, or with the answer kept for `key` if the
    /// schedule has not changed since it was rendered.
    pub async fn answer<F>(
        &self,
        database: &Database,
        key: Key,
        render: F,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<Rendered, ApiError> + Send + 'static,
    {
        if self.inner.budget == 0 {
            let rendered = database.read(render).await?;
            return Ok(ok_json(rendered.body));
        }
        let known = self.sqlite_revision();
        if let Some(revision) = known {
            if let Some(body) = self.lookup(&key, revision) {
                return Ok(ok_json(body));
            }
        }
        let cache = self.clone();
        let lookup_key = key.clone();
        let outcome = database
            .read(move |conn| {
                // A revision read on the worker is still good: it was read before rendering.
                let revision = match known {
                    Some(revision) => Some(revision),
                    None => current_revision(conn)?,
                };
                let Some(revision) = revision else {
                    log::warn!("the schedule_revision row is missing: answering without the cache; `lhs-rounds migrate` on a fresh database restores it");
                    return Ok(Outcome::Uncached(render(conn)?));
                };
                if let Some(body) = cache.lookup(&lookup_key, revision) {
                    return Ok(Outcome::Hit(body));
                }
                Ok(Outcome::Rendered(revision, render(conn)?))
            })
            .await?;
        match outcome {
            Outcome::Hit(body) => Ok(ok_json(body)),
            Outcome::Uncached(rendered) => Ok(ok_json(rendered.body)),
            Outcome::Rendered(revision, rendered) => {
                let body = rendered.body.clone();
                self.store(key, revision, rendered);
                Ok(ok_json(body))
            }
        }
    }

    /// How many answers are kept, and their size in bytes.
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let entries = self.entries();
        (entries.map.len(), entries.bytes)
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave a half-made entry: entries are inserted
        // whole. Keep serving.
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sqlite_revision(&self) -> Option<i64> {
        let mut conn = self
            .inner
            .sqlite_readers
            .iter()
            .find_map(|reader| reader.try_lock().ok())?;
        schedule_revision::table
            .find(1)
            .select(schedule_revision::revision)
            .first::<i64>(&mut *conn)
            .optional()
            .map_err(|e| log::debug!("revision read on the worker failed, falling back: {e}"))
            .ok()
            .flatten()
    }

    fn lookup(&self, key: &Key, revision: i64) -> Option<Bytes> {
        let mut entries = self.entries();
        entries.observe(revision);
        let entry = entries.map.get(key)?;
        let fresh = entry.revision == revision
            && entry
                .valid_until
                .is_none_or(|until| chrono::Utc::now().naive_utc() < until);
        fresh.then(|| entry.body.clone())
    }

    fn store(&self, key: Key, revision: i64, rendered: Rendered) {
        let size = rendered.body.len() + key.size();
        if size > self.inner.budget {
            return;
        }
        let mut entries = self.entries();
        if revision < entries.newest {
            // Already out of date: a newer revision has been read since it was rendered.
            return;
        }
        if let Some(kept) = entries.map.get(&key) {
            if kept.revision > revision {
                // A request that began later already kept a newer answer.
                return;
            }
        }
        if let Some(old) = entries.map.remove(&key) {
            entries.bytes -= old.size;
        }
        if entries.bytes + size > self.inner.budget {
            // Answers of older revisions can never be served again: drop them first, and
            // everything if that is not enough (simpler than an LRU, and the budget is meant to
            // hold the whole working set of a schedule).
            entries.map.retain(|_, entry| entry.revision >= revision);
            entries.bytes = entries.map.values().map(|entry| entry.size).sum();
            if entries.bytes + size > self.inner.budget {
                entries.map.clear();
                entries.bytes = 0;
            }
        }
        entries.bytes += size;
        entries.map.insert(
            key,
            Entry {
                revision,
                valid_until: rendered.valid_until,
                body: rendered.body,
                size,
            },
        );
    }
}

/// The schedule's current revision; `None` if its row has been deleted by hand.
pub fn current_revision(conn: &mut DbConnection) -> Result<Option<i64>, ApiError> {
    Ok(crate::on_backend!(conn, |c| schedule_revision::table
        .find(1)
        .select(schedule_revision::revision)
        .first::<i64>(c)
        .optional())?)
}

fn ok_json(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> Key {
        Key {
            path: path.to_owned(),
            query: String::new(),
            private: false,
        }
    }

    fn rendered(body: &str) -> Rendered {
        Rendered {
            body: Bytes::from(body.to_owned()),
            valid_until: None,
        }
    }

    #[test]
    fn an_answer_is_served_only_at_the_revision_it_was_rendered_at() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new());
        cache.store(key("/a"), 7, rendered("seven"));
        assert_eq!(cache.lookup(&key("/a"), 7), Some(Bytes::from("seven")));
        assert_eq!(cache.lookup(&key("/a"), 8), None);
        assert_eq!(cache.lookup(&key("/b"), 7), None);
    }

    #[test]
    fn an_answer_past_its_moment_is_not_served() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new());
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        let future = chrono::Utc::now().naive_utc() + chrono::Duration::hours(1);
        cache.store(key("/past"), 1, rendered("x").until(Some(past)));
        cache.store(key("/future"), 1, rendered("y").until(Some(future)));
        assert_eq!(cache.lookup(&key("/past"), 1), None);
        assert_eq!(cache.lookup(&key("/future"), 1), Some(Bytes::from("y")));
    }

    #[test]
    fn an_older_answer_never_replaces_a_newer_one() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new());
        cache.store(key("/a"), 9, rendered("nine"));
        cache.store(key("/a"), 8, rendered("eight"));
        assert_eq!(cache.lookup(&key("/a"), 9), Some(Bytes::from("nine")));
        assert_eq!(cache.usage().0, 1);
    }

    #[test]
    fn a_revision_lower_than_one_already_read_drops_everything_kept() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new());
        assert_eq!(cache.lookup(&key("/a"), 10), None);
        cache.store(key("/a"), 10, rendered("ten"));
        cache.store(key("/b"), 10, rendered("ten"));

        assert_eq!(cache.lookup(&key("/b"), 9), None);
        assert_eq!(cache.usage(), (0, 0));
        cache.store(key("/a"), 9, rendered("nine, restored"));
        assert_eq!(
            cache.lookup(&key("/a"), 9),
            Some(Bytes::from("nine, restored"))
        );
        assert_eq!(cache.lookup(&key("/a"), 10), None);
    }

    #[test]
    fn an_answer_rendered_before_a_newer_revision_was_read_is_not_kept() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new());
        assert_eq!(cache.lookup(&key("/a"), 12), None);
        cache.store(key("/b"), 11, rendered("eleven"));
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn the_cache_keeps_within_its_budget() {
        let entry = 100 + key("/0").size();
        let cache = ReadCache::with_readers(3 * entry, Vec::new());
        let body = "x".repeat(100);
        for n in 0..3 {
            cache.store(key(&format!("/{n}")), 1, rendered(&body));
        }
        assert_eq!(cache.usage(), (3, 3 * entry));

        // Full: answers of older revisions go first...
        cache.store(key("/3"), 2, rendered(&body));
        assert_eq!(cache.usage(), (1, entry));
        assert!(cache.lookup(&key("/3"), 2).is_some());

        // ...and everything if they are not enough.
        for n in 4..6 {
            cache.store(key(&format!("/{n}")), 2, rendered(&body));
        }
        cache.store(key("/6"), 2, rendered(&body));
        assert_eq!(cache.usage(), (1, entry));

        // An answer larger than the whole budget is not kept.
        cache.store(key("/big"), 2, rendered(&"x".repeat(4 * entry)));
        assert!(cache.lookup(&key("/big"), 2).is_none());
    }
}
