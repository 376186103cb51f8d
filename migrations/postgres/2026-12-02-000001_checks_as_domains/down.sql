ALTER TABLE change_log_floor ALTER COLUMN id TYPE INTEGER,
    ADD CONSTRAINT change_log_floor_id_check CHECK (id = 1);
ALTER TABLE change_log_head ALTER COLUMN id TYPE INTEGER,
    ADD CONSTRAINT change_log_head_id_check CHECK (id = 1);
ALTER TABLE series ALTER COLUMN id TYPE INTEGER, ADD CONSTRAINT series_id_check CHECK (id = 1);
ALTER TABLE schedule_revision ALTER COLUMN id TYPE INTEGER,
    ADD CONSTRAINT schedule_revision_id_check CHECK (id = 1);
ALTER TABLE webhook_messages ALTER COLUMN status TYPE TEXT,
    ADD CONSTRAINT webhook_messages_status_check CHECK (status IN ('pending', 'delivered', 'failed'));
ALTER TABLE changes ALTER COLUMN action TYPE TEXT,
    ADD CONSTRAINT changes_action_check CHECK (action IN ('created', 'updated', 'deleted'));
ALTER TABLE feedback ALTER COLUMN kind TYPE TEXT, ALTER COLUMN status TYPE TEXT,
    ALTER COLUMN rating TYPE INTEGER,
    ADD CONSTRAINT feedback_kind_check
        CHECK (kind IN ('session_feedback', 'topic_suggestion', 'general')),
    ADD CONSTRAINT feedback_status_check CHECK (status IN ('new', 'reviewed', 'accepted', 'declined')),
    ADD CONSTRAINT feedback_rating_check CHECK (rating IS NULL OR rating BETWEEN 1 AND 5);
ALTER TABLE round_speakers ALTER COLUMN role TYPE TEXT,
    ADD CONSTRAINT round_speakers_role_check CHECK (role IN ('presenter', 'moderator', 'panelist'));
ALTER TABLE rounds ALTER COLUMN status TYPE TEXT,
    ADD CONSTRAINT rounds_status_check CHECK (status IN ('scheduled', 'cancelled'));

DROP DOMAIN message_status;
DROP DOMAIN change_action;
DROP DOMAIN feedback_rating;
DROP DOMAIN feedback_status;
DROP DOMAIN feedback_kind;
DROP DOMAIN speaker_role;
DROP DOMAIN round_status;
DROP DOMAIN singleton_id;
