DROP TRIGGER rounds_update_bumps_sequence;
ALTER TABLE rounds DROP COLUMN sequence;
DROP TRIGGER series_timezone_bumps_round_versions;
DROP TRIGGER series_update_bumps_schedule_revision;
DROP TABLE series;
