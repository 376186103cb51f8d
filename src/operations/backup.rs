//! Backups and integrity checks, for the `backup` and `check` commands: the database, and the
//! file store against the materials that name its files.
//!
//! A SQLite backup is `VACUUM INTO`: one read transaction copies the whole database into a new
//! file, so the copy is consistent (every write committed before it began, none after) while
//! the service keeps serving and writing; WAL readers do not block writers. On PostgreSQL,
//! `pg_dump` already does this, and better than a reimplementation would.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::ManageConnection;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::platform::db::{self, Backend, ConnectionManager, DatabaseUrl, DbConnection};
use crate::platform::files::Files;
use crate::schedule::materials;

/// How old a file no material names must be before `check --repair` removes it: an upload
/// stores its file a moment before the write that names it commits, and that file is not an
/// orphan.
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// Copies the SQLite database at `url` to `file` (which must not exist); returns what was done.
pub fn backup(url: &DatabaseUrl, file: &Path) -> Result<String, String> {
    if url.backend == Backend::Postgres {
        return Err(format!(
            "the database at {} is PostgreSQL: back it up with pg_dump, which copies a \
             consistent snapshot while the service serves, for example\n  \
             pg_dump --format=custom --file=lhs-rounds.dump \"$DATABASE_URL\"\n\
             and restore it with pg_restore (see docs/postgresql.md)",
            url.location()
        ));
    }
    if file.exists() {
        return Err(format!(
            "{} exists already: a backup never overwrites a file; choose a new name",
            file.display()
        ));
    }
    let target = file
        .to_str()
        .ok_or_else(|| format!("{} is not a UTF-8 path", file.display()))?;
    let mut conn = open_existing(url)?;
    let started = std::time::Instant::now();
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target)
        .execute(&mut conn)
        .map_err(|e| format!("cannot back up {} to {target}: {e}", url.location()))?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    Ok(format!(
        "backed up {} to {target}: {bytes} bytes in {} ms",
        url.location(),
        started.elapsed().as_millis()
    ))
}

/// What `check` found: problems (the database is damaged or inconsistent) and notes (what
/// could not be checked, and why).
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    pub checked: Vec<String>,
}

/// Checks the database at `url` without changing it: SQLite's `PRAGMA integrity_check` and
/// `PRAGMA foreign_key_check`; on PostgreSQL, every single-column foreign key verified row by
/// row, constraints left unvalidated, and B-tree indexes when `amcheck` is installed. Both:
/// pending migrations, and the row the read cache needs.
pub fn check(url: &DatabaseUrl) -> Result<Report, String> {
    let mut conn = open_existing(url)?;
    // Before the session turns read-only: diesel creates its bookkeeping table if it is missing.
    let pending = db::pending_migrations(&mut conn)?;
    if let DbConnection::Postgresql(pg) = &mut conn {
        // A check looks; it never changes what it looks at.
        pg.batch_execute("SET default_transaction_read_only = on")
            .map_err(|e| format!("cannot set the session read-only: {e}"))?;
    }
    let mut report = Report::default();
    let failed = |what: &str, e: diesel::result::Error| format!("cannot run {what}: {e}");
    match &mut conn {
        DbConnection::Sqlite(sqlite) => {
            let rows = diesel::sql_query("PRAGMA integrity_check")
                .load::<IntegrityRow>(sqlite)
                .map_err(|e| failed("PRAGMA integrity_check", e))?;
            for row in rows.into_iter().filter(|r| r.integrity_check != "ok") {
                report
                    .problems
                    .push(format!("integrity: {}", row.integrity_check));
            }
            report
                .checked
                .push("integrity (PRAGMA integrity_check)".to_owned());
            let rows = diesel::sql_query("PRAGMA foreign_key_check")
                .load::<ForeignKeyRow>(sqlite)
                .map_err(|e| failed("PRAGMA foreign_key_check", e))?;
            for row in rows {
                report.problems.push(format!(
                    "foreign key: row {} of {} refers to a missing row of {}",
                    row.rowid
                        .map_or_else(|| "?".to_owned(), |id| id.to_string()),
                    row.table,
                    row.parent
                ));
            }
            report
                .checked
                .push("foreign keys (PRAGMA foreign_key_check)".to_owned());
        }
        DbConnection::Postgresql(pg) => check_postgres(pg, &mut report)?,
    }
    if !pending.is_empty() {
        report.problems.push(format!(
            "{} migration(s) not applied: {} (run `lhs-rounds migrate`)",
            pending.len(),
            pending.join(", ")
        ));
    }
    report.checked.push("migrations".to_owned());
    if pending.is_empty() {
        check_attendance(&mut conn, &mut report)?;
    }
    let revision = crate::platform::cache::current_revision(&mut conn)
        .map_err(|e| format!("cannot read schedule_revision: {e}"))?;
    if revision.is_none() && pending.is_empty() {
        report.problems.push(
            "the schedule_revision row is missing: the read cache is off until it is restored"
                .to_owned(),
        );
    }
    Ok(report)
}

/// Checks the file store against the materials: a file no material names is an orphan (left
/// by a crash between a deletion's commit and its file's removal, or by an upload whose write
/// failed), reported and, with `repair`, removed once older than [`ORPHAN_GRACE`]; a material
/// naming a file the store does not have is a problem nothing here can mend.
pub async fn check_files(
    url: &DatabaseUrl,
    files: &Files,
    repair: bool,
    report: &mut Report,
) -> Result<(), String> {
    if !files.is_configured() {
        report
            .notes
            .push("files not checked: there is no file store (LHS_MATERIALS_URL, or the directory beside a SQLite database)".to_owned());
        return Ok(());
    }
    let mut conn = open_existing(url)?;
    let named = match materials::file_keys(&mut conn) {
        Ok(keys) => keys,
        Err(e) => {
            report.notes.push(format!(
                "files not checked: the materials cannot be read ({e}); apply the migrations first"
            ));
            return Ok(());
        }
    };
    drop(conn);
    let named: std::collections::HashSet<String> = named.into_iter().collect();
    let stored = files.list(materials::KEY_PREFIX).await?;
    let kept: std::collections::HashSet<&str> = stored.iter().map(|f| f.key.as_str()).collect();
    let now = chrono::Utc::now();
    let grace = chrono::Duration::from_std(ORPHAN_GRACE).unwrap_or_default();
    for file in stored.iter().filter(|f| !named.contains(&f.key)) {
        let recent = now - file.last_modified < grace;
        if repair && !recent {
            files.delete(&file.key).await?;
            report.notes.push(format!(
                "removed the orphan file {} ({} bytes), which no material names",
                file.key, file.size
            ));
        } else if repair {
            report.notes.push(format!(
                "kept the file {} for now: no material names it, but it is younger than {} \
                 minutes (an upload may be finishing); run check --repair again later",
                file.key,
                ORPHAN_GRACE.as_secs() / 60
            ));
        } else {
            report.problems.push(format!(
                "orphan file {} ({} bytes): no material names it (check --repair removes it)",
                file.key, file.size
            ));
        }
    }
    for key in named.iter().filter(|k| !kept.contains(k.as_str())) {
        report.problems.push(format!(
            "a material names the file {key}, which is not in the file store ({})",
            files.location()
        ));
    }
    report.checked.push(format!(
        "files ({} in {}, {} named by materials)",
        stored.len(),
        files.location(),
        named.len()
    ));
    Ok(())
}

/// Attendance whose round or attendee is missing: the foreign keys should make it impossible,
/// but a restore with keys turned off, or rows changed by hand, can leave some; attendance must
/// be verifiable for 6 years, so each is named.
fn check_attendance(conn: &mut DbConnection, report: &mut Report) -> Result<(), String> {
    use crate::platform::schema::{attendance, attendees, rounds};
    let failed = |e: diesel::result::Error| format!("cannot check attendance: {e}");
    let no_round = attendance::table
        .filter(diesel::dsl::not(diesel::dsl::exists(
            rounds::table.filter(rounds::id.eq(attendance::round_id)),
        )))
        .select(attendance::id)
        .load::<i32>(conn)
        .map_err(failed)?;
    let no_attendee = attendance::table
        .filter(diesel::dsl::not(diesel::dsl::exists(
            attendees::table.filter(attendees::id.eq(attendance::attendee_id)),
        )))
        .select(attendance::id)
        .load::<i32>(conn)
        .map_err(failed)?;
    for (ids, what) in [(no_round, "round"), (no_attendee, "attendee")] {
        if !ids.is_empty() {
            report.problems.push(format!(
                "attendance: {} record(s) refer to a missing {what}: ids {:?}",
                ids.len(),
                ids
            ));
        }
    }
    report
        .checked
        .push("attendance (each record's round and attendee)".to_owned());
    Ok(())
}

fn check_postgres(pg: &mut diesel::PgConnection, report: &mut Report) -> Result<(), String> {
    let keys = diesel::sql_query(
        "SELECT c.conname AS name, c.conrelid::regclass::text AS child, \
                quote_ident(a.attname) AS child_column, c.confrelid::regclass::text AS parent, \
                quote_ident(p.attname) AS parent_column \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute p ON p.attrelid = c.confrelid AND p.attnum = c.confkey[1] \
         WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 \
           AND c.connamespace = current_schema()::regnamespace \
         ORDER BY 1",
    )
    .load::<ForeignKey>(pg)
    .map_err(|e| format!("cannot list the foreign keys: {e}"))?;
    for key in &keys {
        // Names come from the catalogue, quoted by PostgreSQL itself (`regclass`, `quote_ident`).
        let orphans = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {child} c WHERE c.{column} IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM {parent} p WHERE p.{parent_column} = c.{column})",
            child = key.child,
            column = key.child_column,
            parent = key.parent,
            parent_column = key.parent_column,
        ))
        .get_result::<Count>(pg)
        .map_err(|e| format!("cannot check {}: {e}", key.name))?;
        if orphans.n > 0 {
            report.problems.push(format!(
                "foreign key {}: {} row(s) of {} refer to missing rows of {}",
                key.name, orphans.n, key.child, key.parent
            ));
        }
    }
    report
        .checked
        .push(format!("foreign keys ({} verified row by row)", keys.len()));
    let unvalidated = diesel::sql_query(
        "SELECT conname AS name FROM pg_constraint \
         WHERE NOT convalidated AND connamespace = current_schema()::regnamespace",
    )
    .load::<Named>(pg)
    .map_err(|e| format!("cannot list unvalidated constraints: {e}"))?;
    for constraint in unvalidated {
        report.problems.push(format!(
            "constraint {} is not validated (ALTER TABLE ... VALIDATE CONSTRAINT)",
            constraint.name
        ));
    }
    let amcheck =
        diesel::sql_query("SELECT extname AS name FROM pg_extension WHERE extname = 'amcheck'")
            .load::<Named>(pg)
            .map_err(|e| format!("cannot list extensions: {e}"))?;
    if amcheck.is_empty() {
        report.notes.push(
            "index structure not checked: the amcheck extension is not installed \
             (CREATE EXTENSION amcheck; then run check again)"
                .to_owned(),
        );
        return Ok(());
    }
    let indexes = diesel::sql_query(
        "SELECT c.oid::regclass::text AS name FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam \
         WHERE am.amname = 'btree' AND c.relnamespace = current_schema()::regnamespace",
    )
    .load::<Named>(pg)
    .map_err(|e| format!("cannot list the indexes: {e}"))?;
    for index in &indexes {
        if let Err(e) = diesel::sql_query("SELECT bt_index_check($1::regclass)")
            .bind::<Text, _>(&index.name)
            .execute(pg)
        {
            report.problems.push(format!("index {}: {e}", index.name));
        }
    }
    report
        .checked
        .push(format!("indexes ({} B-tree, amcheck)", indexes.len()));
    Ok(())
}

/// A connection to an existing database, without migrating it (a check or a backup must not
/// change what it looks at). SQLite would create a missing file; that is refused instead.
fn open_existing(url: &DatabaseUrl) -> Result<DbConnection, String> {
    if url.backend == Backend::Sqlite && !Path::new(&url.target).is_file() {
        return Err(format!("there is no SQLite database at {}", url.target));
    }
    ConnectionManager::new(url.clone()).connect().map_err(|e| {
        format!(
            "cannot open {}: {}",
            url.location(),
            url.redact(&e.to_string())
        )
    })
}

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    rowid: Option<i64>,
    #[diesel(sql_type = Text)]
    parent: String,
}

#[derive(QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    child_column: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    parent_column: String,
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}
