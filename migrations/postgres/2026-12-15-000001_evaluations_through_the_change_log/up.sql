-- See migrations/sqlite: an evaluation awards the claims waiting for it in the service, through
-- the change log; the trigger that did it is gone.
DROP TRIGGER attendance_evaluated ON feedback;
DROP FUNCTION attendance_evaluated();
