-- The series: one record (id 1) with the name, description, time zone, defaults and contacts
-- of the whole series. Part of the schedule: its changes bump the schedule's revision, and a
-- change of time zone is a new version of every round (their local times change).
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
    VALUES (1, 'Learning Health System Rounds', 'America/New_York', '12:00', 60, CURRENT_TIMESTAMP);

CREATE TRIGGER series_update_bumps_schedule_revision AFTER UPDATE ON series
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER series_timezone_bumps_round_versions AFTER UPDATE OF timezone ON series
    WHEN OLD.timezone IS NOT NEW.timezone
BEGIN
    UPDATE rounds SET version = version + 1;
END;

-- The iCalendar SEQUENCE of a round: it grows whenever what a subscribed calendar must
-- re-announce changes (start, end, place, status), by trigger so that every writer counts.
ALTER TABLE rounds ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER rounds_update_bumps_sequence AFTER UPDATE OF starts_at, ends_at, location, status ON rounds
    WHEN OLD.starts_at IS NOT NEW.starts_at OR OLD.ends_at IS NOT NEW.ends_at
        OR OLD.location IS NOT NEW.location OR OLD.status IS NOT NEW.status
BEGIN
    UPDATE rounds SET sequence = sequence + 1 WHERE id = NEW.id;
END;
