DROP TABLE change_log_head;

DROP TRIGGER speakers_update_bumps_round_versions;
DROP TRIGGER departments_update_bumps_round_versions;
DROP TRIGGER round_speakers_insert_bumps_round_version;
DROP TRIGGER round_speakers_update_bumps_round_version;
DROP TRIGGER round_speakers_delete_bumps_round_version;
DROP TRIGGER round_departments_insert_bumps_round_version;
DROP TRIGGER round_departments_update_bumps_round_version;
DROP TRIGGER round_departments_delete_bumps_round_version;
DROP VIEW round_speakers_docs;
DROP VIEW round_departments_docs;

-- The triggers as 2026-11-29-000001_versions_and_idempotency made them.
CREATE TRIGGER speakers_update_bumps_round_versions AFTER UPDATE OF full_name, credentials ON speakers
    WHEN OLD.full_name IS NOT NEW.full_name OR OLD.credentials IS NOT NEW.credentials
BEGIN
    UPDATE rounds SET version = version + 1
        WHERE id IN (SELECT round_id FROM round_speakers WHERE speaker_id = NEW.id);
END;
CREATE TRIGGER departments_update_bumps_round_versions AFTER UPDATE OF name, abbreviation ON departments
    WHEN OLD.name IS NOT NEW.name OR OLD.abbreviation IS NOT NEW.abbreviation
BEGIN
    UPDATE rounds SET version = version + 1
        WHERE id IN (SELECT round_id FROM round_departments WHERE department_id = NEW.id);
END;
CREATE TRIGGER round_speakers_insert_bumps_round_version AFTER INSERT ON round_speakers
BEGIN
    UPDATE rounds SET version = version + 1 WHERE id = NEW.round_id;
END;
CREATE TRIGGER round_speakers_update_bumps_round_version AFTER UPDATE ON round_speakers
BEGIN
    UPDATE rounds SET version = version + 1 WHERE id IN (OLD.round_id, NEW.round_id);
END;
CREATE TRIGGER round_speakers_delete_bumps_round_version AFTER DELETE ON round_speakers
BEGIN
    UPDATE rounds SET version = version + 1 WHERE id = OLD.round_id;
END;
CREATE TRIGGER round_departments_insert_bumps_round_version AFTER INSERT ON round_departments
BEGIN
    UPDATE rounds SET version = version + 1 WHERE id = NEW.round_id;
END;
CREATE TRIGGER round_departments_update_bumps_round_version AFTER UPDATE ON round_departments
BEGIN
    UPDATE rounds SET version = version + 1 WHERE id IN (OLD.round_id, NEW.round_id);
END;
CREATE TRIGGER round_departments_delete_bumps_round_version AFTER DELETE ON round_departments
BEGIN
    UPDATE rounds SET version = version + 1 WHERE id = OLD.round_id;
END;

ALTER TABLE rounds DROP COLUMN speakers_doc;
ALTER TABLE rounds DROP COLUMN departments_doc;
