-- The series' pages (`site::pages`) show a round's outcomes and its initiatives' measures,
-- kept in the read cache under `schedule_revision`: changes to them bump it too.
CREATE TRIGGER round_outcomes_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON round_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
CREATE TRIGGER measures_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON measures
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
