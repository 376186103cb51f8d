-- How long after a round ends it still takes session feedback: the window runs from the round's
-- start to this many days after its end (in the series' time zone). 30 by default, 0 to 365.
ALTER TABLE series ADD COLUMN feedback_window_days INTEGER NOT NULL DEFAULT 30
    CHECK (feedback_window_days BETWEEN 0 AND 365);
