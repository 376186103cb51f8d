-- See migrations/sqlite: a round's page shows its disclosure statement, kept in the read cache
-- under `schedule_revision`.
CREATE TRIGGER disclosure_statements_bump_schedule_revision
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON disclosure_statements
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_revision();
