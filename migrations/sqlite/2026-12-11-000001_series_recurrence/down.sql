ALTER TABLE series DROP COLUMN skipped_dates;
ALTER TABLE series DROP COLUMN attention_days;
ALTER TABLE series DROP COLUMN recurrence_start;
ALTER TABLE series DROP COLUMN recurrence;
