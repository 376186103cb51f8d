-- The series' year, planned: its recurrence (an RFC 5545 RRULE read in the series' time zone,
-- such as FREQ=MONTHLY;BYDAY=3TH), the date INTERVAL and COUNT count from (RFC 5545's DTSTART;
-- a plan's first day when unset), how many days ahead the attention list looks, and the dates a
-- plan skipped with why (a holiday, a summer break), so that the next plan does not bring them
-- back: `[{"date": "2019-08-15", "reason": "..."}, ...]` by date, local dates in the series'
-- zone. The rule is checked by the service (src/schedule/recurrence/rule.rs), which writes it
-- back canonically.
ALTER TABLE series ADD COLUMN recurrence TEXT;
ALTER TABLE series ADD COLUMN recurrence_start TEXT;
ALTER TABLE series ADD COLUMN attention_days INTEGER NOT NULL DEFAULT 45;
ALTER TABLE series ADD COLUMN skipped_dates TEXT NOT NULL DEFAULT '[]';
