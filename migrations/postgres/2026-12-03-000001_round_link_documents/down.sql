-- The triggers as 2026-11-29-000001_versions_and_idempotency made them, without the documents.
CREATE OR REPLACE FUNCTION bump_round_versions_of_speaker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.full_name IS DISTINCT FROM OLD.full_name OR NEW.credentials IS DISTINCT FROM OLD.credentials THEN
        UPDATE rounds SET version = version + 1
            WHERE id IN (SELECT round_id FROM round_speakers WHERE speaker_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION bump_round_versions_of_department() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name OR NEW.abbreviation IS DISTINCT FROM OLD.abbreviation THEN
        UPDATE rounds SET version = version + 1
            WHERE id IN (SELECT round_id FROM round_departments WHERE department_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION bump_round_version_of_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE rounds SET version = version + 1 WHERE id = OLD.round_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE rounds SET version = version + 1 WHERE id = NEW.round_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER round_speakers_bump_round_version AFTER INSERT OR UPDATE OR DELETE ON round_speakers
    FOR EACH ROW EXECUTE FUNCTION bump_round_version_of_link();
CREATE TRIGGER round_departments_bump_round_version AFTER INSERT OR UPDATE OR DELETE ON round_departments
    FOR EACH ROW EXECUTE FUNCTION bump_round_version_of_link();
DROP TRIGGER round_speakers_insert_refreshes_rounds ON round_speakers;
DROP TRIGGER round_speakers_update_refreshes_rounds ON round_speakers;
DROP TRIGGER round_speakers_delete_refreshes_rounds ON round_speakers;
DROP TRIGGER round_departments_insert_refreshes_rounds ON round_departments;
DROP TRIGGER round_departments_update_refreshes_rounds ON round_departments;
DROP TRIGGER round_departments_delete_refreshes_rounds ON round_departments;
DROP FUNCTION refresh_rounds_of_links();
DROP FUNCTION round_departments_doc(INTEGER);
DROP FUNCTION round_speakers_doc(INTEGER);
ALTER TABLE rounds DROP COLUMN departments_doc, DROP COLUMN speakers_doc;
