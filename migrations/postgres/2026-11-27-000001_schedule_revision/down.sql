DROP TRIGGER departments_bump_schedule_revision ON departments;
DROP TRIGGER speakers_bump_schedule_revision ON speakers;
DROP TRIGGER rounds_bump_schedule_revision ON rounds;
DROP TRIGGER round_speakers_bump_schedule_revision ON round_speakers;
DROP TRIGGER round_departments_bump_schedule_revision ON round_departments;
DROP FUNCTION bump_schedule_revision();
DROP TABLE schedule_revision;
