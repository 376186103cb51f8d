-- A round's page (`site::pages`) shows its disclosure statement, kept in the read cache under
-- `schedule_revision`: publishing one bumps it too.
CREATE TRIGGER disclosure_statements_insert_bumps_schedule_revision AFTER INSERT ON disclosure_statements
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER disclosure_statements_update_bumps_schedule_revision AFTER UPDATE ON disclosure_statements
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER disclosure_statements_delete_bumps_schedule_revision AFTER DELETE ON disclosure_statements
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
