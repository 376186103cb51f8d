ALTER TABLE series DROP COLUMN feedback_window_days;
DROP DOMAIN feedback_window_days;
