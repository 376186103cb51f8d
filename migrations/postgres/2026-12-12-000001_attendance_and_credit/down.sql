DROP TRIGGER attendance_evaluated ON feedback;
DROP FUNCTION attendance_evaluated();
DROP TABLE attendance;
DROP TABLE checkin_codes;
DROP TABLE attendees;
ALTER TABLE rounds DROP COLUMN credit_hours_set, DROP COLUMN credit_quarter_hours;
ALTER TABLE series DROP COLUMN evaluation_required, DROP COLUMN checkin_closes_minutes,
    DROP COLUMN checkin_opens_minutes, DROP COLUMN default_credit_quarter_hours,
    DROP COLUMN credit_type;
DROP DOMAIN credit_status;
DROP DOMAIN attendance_method;
DROP DOMAIN profession;
DROP DOMAIN checkin_closes_minutes;
DROP DOMAIN checkin_opens_minutes;
DROP DOMAIN quarter_hours;
DROP DOMAIN credit_type;
