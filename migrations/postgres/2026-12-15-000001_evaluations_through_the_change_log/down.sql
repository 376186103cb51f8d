CREATE FUNCTION attendance_evaluated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE attendance
    SET credit_status = 'awarded', evaluated_at = NEW.created_at, updated_at = NEW.created_at,
        version = version + 1
    WHERE round_id = NEW.round_id AND credit_status = 'pending_evaluation'
        AND voided_at IS NULL AND NOT credit_overridden
        AND attendee_id IN (SELECT id FROM attendees WHERE sub = NEW.submitted_by);
    RETURN NULL;
END;
$$;
CREATE TRIGGER attendance_evaluated AFTER INSERT ON feedback
    FOR EACH ROW
    WHEN (NEW.kind = 'session_feedback' AND NEW.submitted_by IS NOT NULL
        AND NEW.round_id IS NOT NULL)
    EXECUTE FUNCTION attendance_evaluated();
