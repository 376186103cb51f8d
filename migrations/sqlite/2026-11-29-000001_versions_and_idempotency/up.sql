-- Versions: each record's version is bumped by every write to it, so a strong ETag can be
-- derived from it and `If-Match` checked in the writing statement itself
-- (`UPDATE ... WHERE id = ? AND version = ?`).
ALTER TABLE departments ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE speakers ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE rounds ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE feedback ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- A round shows its speakers' names and credentials and its departments' names: a change to
-- any of them, or to its links, is a new version of the round (by trigger, so that hand-run SQL
-- counts too and no ETag hides the change).
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

-- Idempotent POST (the IETF Idempotency-Key draft): the first request's fingerprint and its
-- answer, written in the same transaction as what it created. The primary key is what makes a
-- concurrent duplicate wait for the first and replay its answer, across replicas.
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
