-- A counter that every change to the schedule (departments, speakers, rounds and their links)
-- bumps in its own transaction, by trigger: the read cache (src/cache.rs) serves an answer only
-- while the counter is where it was when the answer was rendered. Triggers, not application
-- code, so that no write path, other replica or hand-run SQL can change the schedule unseen.
-- Feedback is not part of the schedule and leaves the counter alone.
-- Each bump sets the counter to the current time in microseconds (or one more than it was, if
-- that is larger), so that after a database is restored from a backup the counter never comes
-- back to a value a running process has already seen with other data.
CREATE TABLE schedule_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO schedule_revision (id, revision) VALUES (1, 0);
-- SQLite has row triggers only: one per table and kind of change.

CREATE TRIGGER departments_insert_bumps_schedule_revision AFTER INSERT ON departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER departments_update_bumps_schedule_revision AFTER UPDATE ON departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER departments_delete_bumps_schedule_revision AFTER DELETE ON departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER speakers_insert_bumps_schedule_revision AFTER INSERT ON speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER speakers_update_bumps_schedule_revision AFTER UPDATE ON speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER speakers_delete_bumps_schedule_revision AFTER DELETE ON speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER rounds_insert_bumps_schedule_revision AFTER INSERT ON rounds
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER rounds_update_bumps_schedule_revision AFTER UPDATE ON rounds
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER rounds_delete_bumps_schedule_revision AFTER DELETE ON rounds
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_speakers_insert_bumps_schedule_revision AFTER INSERT ON round_speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_speakers_update_bumps_schedule_revision AFTER UPDATE ON round_speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_speakers_delete_bumps_schedule_revision AFTER DELETE ON round_speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_departments_insert_bumps_schedule_revision AFTER INSERT ON round_departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_departments_update_bumps_schedule_revision AFTER UPDATE ON round_departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_departments_delete_bumps_schedule_revision AFTER DELETE ON round_departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER))
        WHERE id = 1;
END;
