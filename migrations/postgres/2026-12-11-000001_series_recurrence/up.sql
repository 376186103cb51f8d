-- Same schema as migrations/sqlite; see its comments.
ALTER TABLE series ADD COLUMN recurrence TEXT, ADD COLUMN recurrence_start TEXT,
    ADD COLUMN attention_days INTEGER NOT NULL DEFAULT 45,
    ADD COLUMN skipped_dates TEXT NOT NULL DEFAULT '[]';
