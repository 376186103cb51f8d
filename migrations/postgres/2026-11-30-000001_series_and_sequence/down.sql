DROP TRIGGER rounds_update_bumps_sequence ON rounds;
DROP FUNCTION bump_round_sequence();
ALTER TABLE rounds DROP COLUMN sequence;
DROP TRIGGER series_timezone_bumps_round_versions ON series;
DROP FUNCTION bump_round_versions_of_timezone();
DROP TRIGGER series_bump_schedule_revision ON series;
DROP TABLE series;
