ALTER TABLE series DROP COLUMN skipped_dates, DROP COLUMN attention_days,
    DROP COLUMN recurrence_start, DROP COLUMN recurrence;
