-- Single-column CHECK constraints become domains: the same rules, cheaper to enforce.
--
-- PostgreSQL (15, checked in execMain.c, ExecRelCheck) reads a table's CHECK constraints back
-- from their stored text and plans them again at every execution of every INSERT or UPDATE of
-- the table, prepared statement or not. A domain's constraint is read and planned once per
-- connection (the type cache). A `POST /feedback` writes four tables that had five CHECKs
-- between them; measured on one server, alternating, those five were about a tenth of its
-- throughput (BENCHMARKS.md). A refused value still fails with SQLSTATE 23514
-- (check_violation), and a NULL still passes, as it did.
--
-- An UPDATE that does not set a domain column does not check it: the single-row tables below
-- (`id = 1`) are updated by every write and never change their id.
--
-- `rounds_check` (ends_at > starts_at) spans two columns, so it stays a table CHECK. SQLite
-- compiles CHECKs into each prepared statement once; its tables keep theirs (see the empty
-- migration of the same name there).
CREATE DOMAIN singleton_id AS INTEGER CHECK (VALUE = 1);
CREATE DOMAIN round_status AS TEXT CHECK (VALUE IN ('scheduled', 'cancelled'));
CREATE DOMAIN speaker_role AS TEXT CHECK (VALUE IN ('presenter', 'moderator', 'panelist'));
CREATE DOMAIN feedback_kind AS TEXT
    CHECK (VALUE IN ('session_feedback', 'topic_suggestion', 'general'));
CREATE DOMAIN feedback_status AS TEXT CHECK (VALUE IN ('new', 'reviewed', 'accepted', 'declined'));
CREATE DOMAIN feedback_rating AS INTEGER CHECK (VALUE BETWEEN 1 AND 5);
CREATE DOMAIN change_action AS TEXT CHECK (VALUE IN ('created', 'updated', 'deleted'));
CREATE DOMAIN message_status AS TEXT CHECK (VALUE IN ('pending', 'delivered', 'failed'));

ALTER TABLE rounds DROP CONSTRAINT rounds_status_check, ALTER COLUMN status TYPE round_status;
ALTER TABLE round_speakers DROP CONSTRAINT round_speakers_role_check,
    ALTER COLUMN role TYPE speaker_role;
ALTER TABLE feedback DROP CONSTRAINT feedback_kind_check, DROP CONSTRAINT feedback_status_check,
    DROP CONSTRAINT feedback_rating_check, ALTER COLUMN kind TYPE feedback_kind,
    ALTER COLUMN status TYPE feedback_status, ALTER COLUMN rating TYPE feedback_rating;
ALTER TABLE changes DROP CONSTRAINT changes_action_check, ALTER COLUMN action TYPE change_action;
ALTER TABLE webhook_messages DROP CONSTRAINT webhook_messages_status_check,
    ALTER COLUMN status TYPE message_status;
ALTER TABLE schedule_revision DROP CONSTRAINT schedule_revision_id_check,
    ALTER COLUMN id TYPE singleton_id;
ALTER TABLE series DROP CONSTRAINT series_id_check, ALTER COLUMN id TYPE singleton_id;
ALTER TABLE change_log_head DROP CONSTRAINT change_log_head_id_check,
    ALTER COLUMN id TYPE singleton_id;
ALTER TABLE change_log_floor DROP CONSTRAINT change_log_floor_id_check,
    ALTER COLUMN id TYPE singleton_id;
