//! The read cache: repeated reads of the schedule (departments, speakers, rounds) answered from
//! memory for as long as the schedule is unchanged.
//!
//! Every change to the schedule bumps the `schedule_revision` counter in its own transaction,
//! by database trigger (see the `schedule_revision` migration), so no write path, other replica
//! or hand-run SQL can change the schedule unseen. An answer is kept with the revision it was
//! rendered at and served again only while that is still the current revision: one single-row
//! read instead of the queries and the JSON rendering of the answer. An answer is rendered in
//! one snapshot together with the revision it is kept under, so it is exactly the schedule at
//! that revision (and a page's `total` and `items` come from one state). A kept answer costs
//! one small statement (the revision alone), and on SQLite often none.
//!
//! Each process keeps its own cache and asks the database which revision is current on every
//! read, so replicas share nothing and never serve each other's stale answers. (On SQLite the
//! question is first put to SQLite's WAL index, which says whether anything was committed since
//! the revision was last read; see [`WalIndex`].) Answers that
//! the passing of time changes (`when=upcoming|past`) also carry the moment they stop holding.
//!
//! Revisions are the time of the change in microseconds, so a database restored from a backup
//! comes back with revisions whose answers are exactly the ones kept for them, and every later
//! change gets a revision no process has seen: no revision is ever reused for other data, and
//! a lower revision than one already seen needs no special handling (a slow request that read
//! an older revision simply keeps an answer no one will ask for again).

use std::sync::{Arc, Mutex};

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::Serialize;

use crate::platform::compression::{Effort, Variants};
use crate::platform::db::{self, Backend, Database, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::http::{self, TagList};
use crate::platform::schema::schedule_revision;
use crate::platform::telemetry;

/// At most this many SQLite connections of the cache's own (one per HTTP worker).
const SQLITE_REVISION_READERS_MAX: usize = 16;
/// What an entry costs besides its body and key (moka's entry, the shared buffer's header),
/// counted against the budget.
const ENTRY_OVERHEAD: usize = 160;

/// What an answer depends on besides the schedule: the path, the query (its parameters in a
/// canonical order, so `?a=1&b=2` and `?b=2&a=1` are one answer), and whether the caller sees
/// the fields only organizers see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    path: String,
    query: String,
    private: bool,
}

impl Key {
    pub fn new(path: &str, query: String, private: bool) -> Key {
        Key {
            path: path.to_owned(),
            query,
            private,
        }
    }

    fn size(&self) -> usize {
        self.path.len() + self.query.len() + std::mem::size_of::<Key>()
    }
}

/// An answer rendered to JSON, its ETag when the answer has one of its own (a record's
/// version), and the moment it stops holding if time alone can change it.
pub struct Rendered {
    body: Bytes,
    content_type: &'static str,
    etag: Option<String>,
    valid_until: Option<NaiveDateTime>,
}

impl Rendered {
    pub fn json<T: Serialize>(value: &T) -> Result<Rendered, ApiError> {
        // Boxed first: a `Vec` grows by doubling, and its spare capacity would be kept too.
        let json = serde_json::to_vec(value)?.into_boxed_slice();
        Ok(Rendered {
            body: Bytes::from(json),
            content_type: JSON,
            etag: None,
            valid_until: None,
        })
    }

    /// An answer in another media type, such as an iCalendar feed.
    pub fn text(body: String, content_type: &'static str) -> Rendered {
        Rendered {
            body: Bytes::from(body.into_bytes().into_boxed_slice()),
            content_type,
            etag: None,
            valid_until: None,
        }
    }

    /// Marks the answer as holding only before `moment` (UTC), when there is one.
    pub fn until(mut self, moment: Option<NaiveDateTime>) -> Rendered {
        self.valid_until = moment;
        self
    }

    /// The answer's own strong ETag.
    pub fn with_etag(mut self, etag: String) -> Rendered {
        self.etag = Some(etag);
        self
    }
}

/// The media type of most answers.
const JSON: &str = "application/json";

/// What a read answers: the body (with its compressed copies) and its ETag, or that the
/// caller's copy is current.
pub enum Answer {
    Fresh {
        body: Arc<Variants>,
        etag: HeaderValue,
    },
    NotModified {
        etag: HeaderValue,
        /// Whether the answer would have been sent compressed to a client that accepts it.
        compressible: bool,
    },
}

impl Answer {
    /// The answer to a read outside the schedule: its own ETag or a hash of its body.
    pub fn of(rendered: Rendered, if_none_match: Option<&TagList>) -> Result<Answer, ApiError> {
        let etag = rendered
            .etag
            .unwrap_or_else(|| http::body_etag(&rendered.body));
        Ok(Answer::checked(
            Arc::new(Variants::new(
                rendered.body,
                rendered.content_type,
                Effort::Answer,
            )),
            http::etag_value(etag)?,
            if_none_match,
        ))
    }

    fn checked(body: Arc<Variants>, etag: HeaderValue, if_none_match: Option<&TagList>) -> Answer {
        if if_none_match.is_some_and(|tags| etag.to_str().is_ok_and(|tag| tags.matches_weakly(tag)))
        {
            Answer::NotModified {
                etag,
                compressible: body.compressible(),
            }
        } else {
            Answer::Fresh { body, etag }
        }
    }
}

struct Entry {
    revision: i64,
    valid_until: Option<NaiveDateTime>,
    /// The rendered answer, and its compressed copies once a client asked for them.
    body: Arc<Variants>,
    etag: HeaderValue,
}

/// The cache of one process. Cloning it is cheap and shares it.
#[derive(Clone)]
pub struct ReadCache {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when the cache is off (a budget of 0). Entries are behind an `Arc`, so that a hit
    /// clones a pointer, not the entry.
    entries: Option<moka::sync::Cache<Key, Arc<Entry>, foldhash::fast::RandomState>>,
    /// SQLite only: connections of the cache's own, on which the revision is read without
    /// leaving the async worker. On a local file in WAL mode that read takes microseconds and
    /// never waits for writers, while a hop to the blocking pool costs more than the read it
    /// saves. Each is query-only with no busy timeout: when none is free or SQLite is busy,
    /// the read goes to the blocking pool like any other.
    sqlite_readers: Vec<Mutex<diesel::SqliteConnection>>,
    /// SQLite only: whether anything was committed since the revision was last read.
    wal_index: Option<WalIndex>,
}

/// The header of SQLite's WAL index (the `-shm` file), which every commit, by any connection
/// or process, rewrites; read to learn that nothing was committed since the revision was last
/// read, and then skip reading it again.
///
/// Written here because no crate reads it. The `-shm` file is how SQLite's own connections
/// learn of each other's commits (`walIndexTryHdr` in `sqlite3.c`, the layout in
/// <https://www.sqlite.org/walformat.html>): its first 96 bytes are two copies of a 48-byte
/// header whose change counter (`iChange`) grows with every transaction, whose last frame
/// (`mxFrame`) and checksums change with every commit, and whose salts change whenever the
/// log starts over. A writer updates both copies before its commit returns, the second copy
/// first. So when both copies read alike and equal those read before the last revision read,
/// no commit has completed since then, and the revision read then is still current. Anything
/// else (the copies differ mid-commit, an unknown version, an unreadable file) falls back to
/// reading the revision. Why bother: that read takes a read lock in the shared memory, under
/// a mutex that SQLite holds across a `fcntl`, and two HTTP workers doing it for every cached
/// answer kept waking each other (a futex call for every second request under load).
struct WalIndex {
    shm: std::fs::File,
    /// The header read before the last revision read, and that revision.
    seen: Mutex<Option<(WalHeader, i64)>>,
}

type WalHeader = [u8; WAL_HEADER_BYTES];
const WAL_HEADER_BYTES: usize = 48;
/// The only WAL-index version SQLite has written (3.7.0 to date), in the file's first field.
const WAL_INDEX_VERSION: u32 = 3_007_000;

impl WalIndex {
    /// The WAL index of the SQLite database at `path`, if the database is a file in WAL mode
    /// that some connection has open.
    fn open(path: &str) -> Option<WalIndex> {
        // SQLite names the index after the database's full path, symbolic links resolved.
        let database = std::fs::canonicalize(path).ok()?;
        let mut shm = database.into_os_string();
        shm.push("-shm");
        let shm = std::fs::File::open(shm).ok()?;
        let index = WalIndex {
            shm,
            seen: Mutex::new(None),
        };
        index.header().is_some().then_some(index)
    }

    /// The header, when both copies read alike (no commit midway) and the version is known.
    fn header(&self) -> Option<WalHeader> {
        use std::os::unix::fs::FileExt;
        let mut copies = [0u8; 2 * WAL_HEADER_BYTES];
        self.shm.read_exact_at(&mut copies, 0).ok()?;
        let (first, second) = copies.split_at(WAL_HEADER_BYTES);
        let version = u32::from_ne_bytes([first[0], first[1], first[2], first[3]]);
        let initialised = first[12] == 1;
        (first == second && version == WAL_INDEX_VERSION && initialised)
            .then(|| first.try_into().ok())
            .flatten()
    }

    /// The revision last read, if nothing was committed since; else the header to remember
    /// with the revision about to be read.
    fn unchanged(&self) -> Result<i64, Option<WalHeader>> {
        let header = self.header();
        let seen = *self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match (header, seen) {
            (Some(now), Some((then, revision))) if now == then => Ok(revision),
            _ => Err(header),
        }
    }

    fn remember(&self, header: WalHeader, revision: i64) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some((header, revision));
    }
}

/// What a read of the schedule found, given the revision of the answer already kept.
enum Revised<T> {
    /// The schedule is still at that revision: nothing was read besides it.
    Unchanged,
    /// `value`, read in one snapshot with `revision` (`None` when the revision's row is
    /// missing: then the answer is not kept).
    Read { revision: Option<i64>, value: T },
}

/// `render` with the revision, both in one read-only snapshot.
fn in_snapshot<T>(
    conn: &mut DbConnection,
    render: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
) -> Result<Revised<T>, ApiError> {
    db::read_transaction(conn, |conn| {
        let revision = current_revision(conn)?;
        Ok(Revised::Read {
            revision,
            value: render(conn)?,
        })
    })
}

/// The ETag of a list of the schedule: it changes whenever the list could, with the revision,
/// the query, the caller's view, or the moment time alone changes it.
fn list_etag(revision: i64, key: &Key, valid_until: Option<NaiveDateTime>) -> String {
    http::derived_etag(&format!("r{revision}-"), &(key, valid_until))
}

impl ReadCache {
    /// A cache of at most `budget` bytes of answers over `database`, for `workers` HTTP
    /// workers; a budget of 0 turns it off.
    pub fn new(database: &Database, budget: usize, workers: usize) -> Result<ReadCache, String> {
        let mut sqlite_readers = Vec::new();
        let mut wal_index = None;
        if budget > 0 && database.backend() == Backend::Sqlite {
            // One per worker, so that a worker rarely finds them all taken.
            for _ in 0..workers.clamp(1, SQLITE_REVISION_READERS_MAX) {
                let mut conn = diesel::SqliteConnection::establish(&database.url().target)
                    .map_err(|e| format!("cannot open the cache's SQLite connection: {e}"))?;
                conn.batch_execute("PRAGMA query_only = ON; PRAGMA busy_timeout = 0;")
                    .map_err(|e| format!("cannot set up the cache's SQLite connection: {e}"))?;
                sqlite_readers.push(Mutex::new(conn));
            }
            // After the readers: they keep the index open.
            wal_index = WalIndex::open(&database.url().target);
            if wal_index.is_none() {
                log::info!("no SQLite WAL index to watch: every cached read reads the revision");
            }
        }
        Ok(ReadCache::with_readers(budget, sqlite_readers, wal_index))
    }

    fn with_readers(
        budget: usize,
        sqlite_readers: Vec<Mutex<diesel::SqliteConnection>>,
        wal_index: Option<WalIndex>,
    ) -> ReadCache {
        // moka evicts by recency and frequency (TinyLFU): a burst of one-off queries
        // (`?q=<random>`) cannot flush the answers that are read all the time.
        let entries = (budget > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(budget as u64)
                .weigher(|key: &Key, entry: &Arc<Entry>| {
                    u32::try_from(
                        key.size()
                            + entry.body.identity().len()
                            + entry.body.expected_extra()
                            + entry.etag.len()
                            + ENTRY_OVERHEAD,
                    )
                    .unwrap_or(u32::MAX)
                })
                // foldhash rather than SipHash: keys come from clients, and a randomly seeded
                // foldhash resists flooding at a fraction of SipHash's cost per lookup.
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        ReadCache {
            inner: Arc::new(Inner {
                entries,
                sqlite_readers,
                wal_index,
            }),
        }
    }

    /// The answer `render` produces, or the one kept for `key` if the schedule has not changed
    /// since it was rendered; 304 when `if_none_match` names its ETag (without rendering, when
    /// a kept answer is current).
    ///
    /// A kept answer is checked with the revision alone (one small statement, or on SQLite
    /// often none: see [`WalIndex`]); `render` runs only when there is none or it is stale, in
    /// one read-only snapshot with the revision it is kept under. With the cache off nothing
    /// is kept, so the revision is not read at all: `render` runs as it is, in a snapshot of
    /// its own when `snapshot` (a render of several statements).
    pub async fn answer<F>(
        &self,
        database: &Database,
        key: Key,
        if_none_match: Option<&TagList>,
        snapshot: bool,
        render: F,
    ) -> Result<Answer, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<Rendered, ApiError> + Send + 'static,
    {
        if self.inner.entries.is_none() {
            let rendered = if snapshot {
                database.read_snapshot(render).await?
            } else {
                database.call(render).await?
            };
            return Answer::of(rendered, if_none_match);
        }
        let sqlite_revision = self.sqlite_revision();
        if let Some(revision) = sqlite_revision {
            if let Some(entry) = self.lookup(&key, revision) {
                telemetry::record_cache_lookup(true);
                return Ok(Answer::checked(
                    entry.body.clone(),
                    entry.etag.clone(),
                    if_none_match,
                ));
            }
        }
        let kept = self.kept(&key);
        // Read on SQLite's own connection just now, the revision is not the kept answer's.
        let known = kept
            .as_ref()
            .filter(|_| sqlite_revision.is_none())
            .map(|entry| entry.revision);
        let revised = database
            .call(move |conn| {
                if known.is_some() && current_revision(conn)? == known {
                    return Ok(Revised::Unchanged);
                }
                in_snapshot(conn, render)
            })
            .await?;
        telemetry::record_cache_lookup(matches!(revised, Revised::Unchanged));
        Ok(match revised {
            Revised::Unchanged => match kept {
                Some(entry) => {
                    Answer::checked(entry.body.clone(), entry.etag.clone(), if_none_match)
                }
                None => {
                    return Err(ApiError::Internal(
                        "a render found the revision of an answer that is not kept".to_owned(),
                    ))
                }
            },
            Revised::Read {
                revision: None,
                value: rendered,
            } => {
                log::warn!("the schedule_revision row is missing: answering without the cache; `lhs-rounds migrate` on a fresh database restores it");
                Answer::of(rendered, if_none_match)?
            }
            Revised::Read {
                revision: Some(revision),
                value: rendered,
            } => {
                let etag = http::etag_value(
                    rendered
                        .etag
                        .clone()
                        .unwrap_or_else(|| list_etag(revision, &key, rendered.valid_until)),
                )?;
                let body = self.store(key, revision, rendered, etag.clone());
                Answer::checked(body, etag, if_none_match)
            }
        })
    }

    /// How many answers are kept, and their weight in bytes.
    pub fn usage(&self) -> (u64, u64) {
        match &self.inner.entries {
            Some(entries) => {
                entries.run_pending_tasks();
                (entries.entry_count(), entries.weighted_size())
            }
            None => (0, 0),
        }
    }

    fn sqlite_revision(&self) -> Option<i64> {
        // The header is read before the revision: a commit between the two changes the header
        // again, so the pair remembered never vouches for a revision older than its header.
        let header = match self.inner.wal_index.as_ref().map(WalIndex::unchanged) {
            Some(Ok(revision)) => return Some(revision),
            Some(Err(header)) => header,
            None => None,
        };
        let mut conn = self
            .inner
            .sqlite_readers
            .iter()
            .find_map(|reader| reader.try_lock().ok())?;
        let revision = revision_query()
            .get_result::<i64>(&mut *conn)
            .optional()
            .map_err(|e| log::debug!("revision read on the worker failed, falling back: {e}"))
            .ok()
            .flatten()?;
        if let (Some(index), Some(header)) = (&self.inner.wal_index, header) {
            index.remember(header, revision);
        }
        Some(revision)
    }

    fn lookup(&self, key: &Key, revision: i64) -> Option<Arc<Entry>> {
        self.kept(key).filter(|entry| entry.revision == revision)
    }

    /// The answer kept for `key` at whatever revision, unless time alone has changed it.
    fn kept(&self, key: &Key) -> Option<Arc<Entry>> {
        let entry = self.inner.entries.as_ref()?.get(key)?;
        entry
            .valid_until
            .is_none_or(|until| chrono::Utc::now().naive_utc() < until)
            .then_some(entry)
    }

    /// Keeps `rendered` for `key` at `revision`, unless a later one is kept; its body, to send.
    fn store(
        &self,
        key: Key,
        revision: i64,
        rendered: Rendered,
        etag: HeaderValue,
    ) -> Arc<Variants> {
        let body = Arc::new(Variants::new(
            rendered.body,
            rendered.content_type,
            Effort::Answer,
        ));
        let Some(entries) = &self.inner.entries else {
            return body;
        };
        if entries
            .get(&key)
            .is_some_and(|kept| kept.revision > revision)
        {
            // A request that read a later revision already kept its answer.
            return body;
        }
        entries.insert(
            key,
            Arc::new(Entry {
                revision,
                valid_until: rendered.valid_until,
                body: body.clone(),
                etag,
            }),
        );
        body
    }
}

/// The schedule's current revision; `None` if its row has been deleted by hand.
pub fn current_revision(conn: &mut DbConnection) -> Result<Option<i64>, ApiError> {
    Ok(crate::on_backend!(conn, |c| revision_query()
        .get_result::<i64>(c)
        .optional())?)
}

/// `SELECT revision FROM schedule_revision`: the table's `CHECK (id = 1)` allows one row, so
/// the read needs no condition and binds nothing (it runs on every cached read).
fn revision_query() -> diesel::dsl::Select<schedule_revision::table, schedule_revision::revision> {
    schedule_revision::table.select(schedule_revision::revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> Key {
        Key::new(path, String::new(), false)
    }

    fn rendered(body: &str) -> Rendered {
        Rendered {
            body: Bytes::from(body.to_owned()),
            content_type: JSON,
            etag: None,
            valid_until: None,
        }
    }

    impl ReadCache {
        fn keep(&self, key: Key, revision: i64, rendered: Rendered) {
            let etag = http::etag_value(format!("\"r{revision}\"")).expect("a valid ETag");
            self.store(key, revision, rendered, etag);
        }

        fn body(&self, key: &Key, revision: i64) -> Option<Bytes> {
            self.lookup(key, revision)
                .map(|entry| entry.body.identity().clone())
        }
    }

    #[test]
    fn an_answer_is_served_only_at_the_revision_it_was_rendered_at() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new(), None);
        cache.keep(key("/a"), 7, rendered("seven"));
        assert_eq!(cache.body(&key("/a"), 7), Some(Bytes::from("seven")));
        assert_eq!(cache.body(&key("/a"), 8), None);
        assert_eq!(cache.body(&key("/b"), 7), None);
    }

    #[test]
    fn an_answer_past_its_moment_is_not_served() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new(), None);
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        let future = chrono::Utc::now().naive_utc() + chrono::Duration::hours(1);
        cache.keep(key("/past"), 1, rendered("x").until(Some(past)));
        cache.keep(key("/future"), 1, rendered("y").until(Some(future)));
        assert_eq!(cache.body(&key("/past"), 1), None);
        assert_eq!(cache.body(&key("/future"), 1), Some(Bytes::from("y")));
    }

    #[test]
    fn an_older_answer_never_replaces_a_newer_one() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new(), None);
        cache.keep(key("/a"), 9, rendered("nine"));
        cache.keep(key("/a"), 8, rendered("eight"));
        assert_eq!(cache.body(&key("/a"), 9), Some(Bytes::from("nine")));
        assert_eq!(cache.usage().0, 1);
    }

    /// A request that read revision R and renders after a write committed R+1 used to wipe
    /// every answer kept (a lower revision was taken for a restored database).
    #[test]
    fn a_slow_request_at_an_older_revision_keeps_the_newer_answers() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new(), None);
        cache.keep(key("/hot"), 11, rendered("eleven"));

        // The slow request read revision 10 before the write and looks up its own answer...
        assert_eq!(cache.body(&key("/cold"), 10), None);
        // ...and keeps it under 10.
        cache.keep(key("/cold"), 10, rendered("ten"));

        assert_eq!(cache.body(&key("/hot"), 11), Some(Bytes::from("eleven")));
        assert_eq!(cache.body(&key("/cold"), 10), Some(Bytes::from("ten")));
    }

    #[test]
    fn a_restored_database_is_answered_with_what_was_kept_for_its_revision_only() {
        let cache = ReadCache::with_readers(1 << 20, Vec::new(), None);
        cache.keep(key("/a"), 10, rendered("ten"));
        cache.keep(key("/a"), 12, rendered("twelve"));
        // Restored to revision 10: the answer kept for 12 is not served...
        assert_eq!(cache.body(&key("/a"), 10), None);
        // ...and the next change gets a revision (the time) above anything seen.
        cache.keep(key("/a"), 13, rendered("thirteen"));
        assert_eq!(cache.body(&key("/a"), 13), Some(Bytes::from("thirteen")));
    }

    #[test]
    fn the_cache_keeps_within_its_budget_and_keeps_what_is_read_often() {
        let body = "x".repeat(1000);
        let entry = 1000 + key("/hot").size() + ENTRY_OVERHEAD;
        let cache = ReadCache::with_readers(20 * entry, Vec::new(), None);
        // A full cache (moka counts how often keys are read once it is half full)...
        for n in 0..30 {
            cache.keep(key(&format!("/warm={n}")), 1, rendered(&body));
            cache.usage();
        }
        // ...with one answer read all the time.
        cache.keep(key("/hot"), 1, rendered(&body));
        for _ in 0..50 {
            assert!(cache.body(&key("/hot"), 1).is_some());
        }
        cache.usage();
        // A flood of one-off answers...
        for n in 0..500 {
            cache.keep(key(&format!("/q={n}")), 1, rendered(&body));
            cache.usage();
        }
        let (count, bytes) = cache.usage();
        assert!(bytes <= (20 * entry) as u64, "{bytes} bytes kept");
        assert!(count <= 20);
        // ...does not push out the answer read all the time.
        assert!(cache.body(&key("/hot"), 1).is_some());
    }

    #[test]
    fn a_budget_of_zero_keeps_nothing() {
        let cache = ReadCache::with_readers(0, Vec::new(), None);
        cache.keep(key("/a"), 1, rendered("one"));
        assert_eq!(cache.body(&key("/a"), 1), None);
    }

    /// Two connections to one SQLite file in WAL mode, as the service and a hand-run
    /// `sqlite3` would have.
    fn a_wal_database() -> (
        tempfile::TempDir,
        String,
        SqliteConnection,
        SqliteConnection,
    ) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("wal.sqlite").to_string_lossy().into_owned();
        let mut writer = SqliteConnection::establish(&path).expect("a SQLite file");
        writer
            .batch_execute(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
            )
            .expect("a table in WAL mode");
        let reader = SqliteConnection::establish(&path).expect("a second connection");
        (dir, path, writer, reader)
    }

    #[test]
    fn the_wal_index_changes_with_every_commit_and_only_then() {
        let (_dir, path, mut writer, mut reader) = a_wal_database();
        let index = WalIndex::open(&path).expect("the database's WAL index");
        let before = index.header().expect("a header");

        reader
            .batch_execute("SELECT v FROM t; BEGIN; SELECT count(*) FROM t; COMMIT;")
            .expect("reads");
        assert_eq!(index.header(), Some(before), "reads leave the header alone");

        for value in 2..5 {
            let previous = index.header();
            writer
                .batch_execute(&format!("UPDATE t SET v = {value};"))
                .expect("a commit");
            assert_ne!(
                index.header(),
                previous,
                "commit {value} changed the header"
            );
        }
        let restarted = index.header();
        writer
            .batch_execute("PRAGMA wal_checkpoint(TRUNCATE); UPDATE t SET v = 9;")
            .expect("a checkpoint, then a commit that starts the log over");
        assert_ne!(index.header(), restarted, "the log started over");
    }

    #[test]
    fn a_revision_is_vouched_for_only_until_the_next_commit() {
        let (_dir, path, mut writer, _reader) = a_wal_database();
        let index = WalIndex::open(&path).expect("the database's WAL index");
        let header = index.unchanged().expect_err("nothing remembered yet");
        index.remember(header.expect("a header"), 7);
        assert_eq!(index.unchanged(), Ok(7));

        writer
            .batch_execute("UPDATE t SET v = 2;")
            .expect("a commit");
        assert!(index.unchanged().is_err(), "a commit since: read again");
    }

    #[test]
    fn there_is_no_wal_index_to_watch_without_a_wal_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir
            .path()
            .join("rollback.sqlite")
            .to_string_lossy()
            .into_owned();
        let mut conn = SqliteConnection::establish(&path).expect("a SQLite file");
        conn.batch_execute("CREATE TABLE t (v INTEGER);")
            .expect("a table in the default journal mode");
        assert!(WalIndex::open(&path).is_none());
        assert!(WalIndex::open(":memory:").is_none());
    }
}
