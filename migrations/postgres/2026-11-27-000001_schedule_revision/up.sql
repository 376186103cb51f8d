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

-- BEFORE each statement, so that a transaction takes the counter's row lock before the row locks
-- of its own changes: schedule writers queue on the counter instead of deadlocking on it.
CREATE FUNCTION bump_schedule_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE schedule_revision
        SET revision = GREATEST(revision + 1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT)
        WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER departments_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
CREATE TRIGGER speakers_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON speakers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
CREATE TRIGGER rounds_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON rounds
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
CREATE TRIGGER round_speakers_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON round_speakers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
CREATE TRIGGER round_departments_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON round_departments
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
