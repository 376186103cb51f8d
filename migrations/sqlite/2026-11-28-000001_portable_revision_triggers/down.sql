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
