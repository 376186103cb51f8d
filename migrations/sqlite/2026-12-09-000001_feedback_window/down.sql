ALTER TABLE series DROP COLUMN feedback_window_days;
