-- Same schema as migrations/sqlite; see its comments.
ALTER TABLE departments ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE speakers ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE rounds ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE feedback ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE FUNCTION bump_round_versions_of_speaker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.full_name IS DISTINCT FROM OLD.full_name OR NEW.credentials IS DISTINCT FROM OLD.credentials THEN
        UPDATE rounds SET version = version + 1
            WHERE id IN (SELECT round_id FROM round_speakers WHERE speaker_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER speakers_update_bumps_round_versions AFTER UPDATE ON speakers
    FOR EACH ROW EXECUTE FUNCTION bump_round_versions_of_speaker();

CREATE FUNCTION bump_round_versions_of_department() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name OR NEW.abbreviation IS DISTINCT FROM OLD.abbreviation THEN
        UPDATE rounds SET version = version + 1
            WHERE id IN (SELECT round_id FROM round_departments WHERE department_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER departments_update_bumps_round_versions AFTER UPDATE ON departments
    FOR EACH ROW EXECUTE FUNCTION bump_round_versions_of_department();

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

CREATE TABLE idempotency_keys (
    caller TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    location TEXT,
    etag TEXT,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (caller, idempotency_key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
