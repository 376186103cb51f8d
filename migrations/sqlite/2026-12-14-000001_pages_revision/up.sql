-- The series' pages (`site::pages`) show a round's outcomes and its initiatives' measures,
-- kept in the read cache under `schedule_revision`: changes to them bump it too.
CREATE TRIGGER round_outcomes_insert_bumps_schedule_revision AFTER INSERT ON round_outcomes
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_outcomes_update_bumps_schedule_revision AFTER UPDATE ON round_outcomes
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER round_outcomes_delete_bumps_schedule_revision AFTER DELETE ON round_outcomes
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER measures_insert_bumps_schedule_revision AFTER INSERT ON measures
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER measures_update_bumps_schedule_revision AFTER UPDATE ON measures
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
CREATE TRIGGER measures_delete_bumps_schedule_revision AFTER DELETE ON measures
BEGIN
    UPDATE schedule_revision
        SET revision = max(revision + 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
        WHERE id = 1;
END;
