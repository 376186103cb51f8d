-- The materials of a round: slides, a recording, handouts, articles, links. Each is either a
-- link (`url`) or an uploaded file, kept in the file store (src/platform/files.rs) under
-- `file_key`, with what was sniffed from its bytes, its size and its SHA-256 (the strong ETag
-- of the download). The database is the record of which files exist: a file no row names is an
-- orphan, which `lhs-rounds check` reports and `check --repair` removes.
--
-- Part of the schedule: a round's iCalendar event links its public materials, so a change here
-- moves the schedule's revision like a change to any other schedule table.
CREATE TABLE materials (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    kind TEXT NOT NULL CHECK (kind IN ('slides', 'recording', 'handout', 'article', 'link')),
    title TEXT NOT NULL,
    url TEXT,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'staff', 'organizers')),
    position INTEGER NOT NULL DEFAULT 0,
    file_key TEXT,
    file_content_type TEXT,
    file_size BIGINT,
    file_sha256 TEXT,
    file_uploaded_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    CHECK (url IS NULL OR file_key IS NULL)
);
CREATE INDEX materials_round_id ON materials (round_id, position, id);
CREATE UNIQUE INDEX materials_file_key ON materials (file_key);

CREATE TRIGGER materials_insert_bumps_schedule_revision AFTER INSERT ON materials
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER materials_update_bumps_schedule_revision AFTER UPDATE ON materials
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER materials_delete_bumps_schedule_revision AFTER DELETE ON materials
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
