-- The revision triggers, written for every SQLite a person may open the file with: the
-- `sqlite3` command line of Debian 12 is SQLite 3.40, and `unixepoch('subsec')` (3.42) made a
-- hand-run `UPDATE rounds ...` there fail. `julianday('now')` exists in every version; it has
-- millisecond precision, which is all the counter needs (a bump also adds at least one).
DROP TRIGGER departments_insert_bumps_schedule_revision;
DROP TRIGGER departments_update_bumps_schedule_revision;
DROP TRIGGER departments_delete_bumps_schedule_revision;
DROP TRIGGER speakers_insert_bumps_schedule_revision;
DROP TRIGGER speakers_update_bumps_schedule_revision;
DROP TRIGGER speakers_delete_bumps_schedule_revision;
DROP TRIGGER rounds_insert_bumps_schedule_revision;
DROP TRIGGER rounds_update_bumps_schedule_revision;
DROP TRIGGER rounds_delete_bumps_schedule_revision;
DROP TRIGGER round_speakers_insert_bumps_schedule_revision;
DROP TRIGGER round_speakers_update_bumps_schedule_revision;
DROP TRIGGER round_speakers_delete_bumps_schedule_revision;
DROP TRIGGER round_departments_insert_bumps_schedule_revision;
DROP TRIGGER round_departments_update_bumps_schedule_revision;
DROP TRIGGER round_departments_delete_bumps_schedule_revision;

CREATE TRIGGER departments_insert_bumps_schedule_revision AFTER INSERT ON departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER departments_update_bumps_schedule_revision AFTER UPDATE ON departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER departments_delete_bumps_schedule_revision AFTER DELETE ON departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER speakers_insert_bumps_schedule_revision AFTER INSERT ON speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER speakers_update_bumps_schedule_revision AFTER UPDATE ON speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER speakers_delete_bumps_schedule_revision AFTER DELETE ON speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER rounds_insert_bumps_schedule_revision AFTER INSERT ON rounds
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER rounds_update_bumps_schedule_revision AFTER UPDATE ON rounds
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER rounds_delete_bumps_schedule_revision AFTER DELETE ON rounds
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_speakers_insert_bumps_schedule_revision AFTER INSERT ON round_speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_speakers_update_bumps_schedule_revision AFTER UPDATE ON round_speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_speakers_delete_bumps_schedule_revision AFTER DELETE ON round_speakers
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_departments_insert_bumps_schedule_revision AFTER INSERT ON round_departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_departments_update_bumps_schedule_revision AFTER UPDATE ON round_departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_departments_delete_bumps_schedule_revision AFTER DELETE ON round_departments
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
