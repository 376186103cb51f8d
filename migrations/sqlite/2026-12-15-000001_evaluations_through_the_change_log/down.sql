CREATE TRIGGER attendance_evaluated AFTER INSERT ON feedback
WHEN NEW.kind = 'session_feedback' AND NEW.submitted_by IS NOT NULL AND NEW.round_id IS NOT NULL
BEGIN
    UPDATE attendance
    SET credit_status = 'awarded', evaluated_at = NEW.created_at, updated_at = NEW.created_at,
        version = version + 1
    WHERE round_id = NEW.round_id AND credit_status = 'pending_evaluation'
        AND voided_at IS NULL AND credit_overridden = 0
        AND attendee_id IN (SELECT id FROM attendees WHERE sub = NEW.submitted_by);
END;
