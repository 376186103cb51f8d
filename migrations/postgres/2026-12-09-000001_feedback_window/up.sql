-- How long after a round ends it still takes session feedback: the window runs from the round's
-- start to this many days after its end (in the series' time zone). 30 by default, 0 to 365.
-- A single-column CHECK is a domain here (see 2026-12-02-000001_checks_as_domains).
CREATE DOMAIN feedback_window_days AS INTEGER CHECK (VALUE BETWEEN 0 AND 365);
ALTER TABLE series ADD COLUMN feedback_window_days feedback_window_days NOT NULL DEFAULT 30;
