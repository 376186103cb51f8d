-- Same schema as migrations/sqlite; see its comments.
CREATE TABLE series (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    description TEXT,
    timezone TEXT NOT NULL,
    default_location TEXT,
    default_start_time TEXT NOT NULL,
    default_duration_minutes INTEGER NOT NULL,
    contacts TEXT NOT NULL DEFAULT '[]',
    version BIGINT NOT NULL DEFAULT 1,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT
);
INSERT INTO series (id, name, timezone, default_start_time, default_duration_minutes, updated_at)
    VALUES (1, 'Learning Health System Rounds', 'America/New_York', '12:00', 60, LOCALTIMESTAMP);

CREATE TRIGGER series_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON series
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();

CREATE FUNCTION bump_round_versions_of_timezone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.timezone IS DISTINCT FROM OLD.timezone THEN
        UPDATE rounds SET version = version + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER series_timezone_bumps_round_versions AFTER UPDATE ON series
    FOR EACH ROW EXECUTE FUNCTION bump_round_versions_of_timezone();

ALTER TABLE rounds ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
CREATE FUNCTION bump_round_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
        OR NEW.location IS DISTINCT FROM OLD.location OR NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.sequence := OLD.sequence + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER rounds_update_bumps_sequence BEFORE UPDATE ON rounds
    FOR EACH ROW EXECUTE FUNCTION bump_round_sequence();
