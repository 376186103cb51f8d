-- Attendance and CME credit (issue 25).
--
-- The series says what credit its rounds carry and when check-in is open: the credit type (NULL:
-- none), the default designation in quarter hours (NULL: as long as the round, rounded to the
-- quarter hour), the minutes check-in opens before a round starts and closes after it ends, and
-- whether a claim waits for the attendee's session feedback.
ALTER TABLE series ADD COLUMN credit_type TEXT
    CHECK (credit_type IN ('ama_pra_category_1', 'ancc_contact_hours', 'participation'));
ALTER TABLE series ADD COLUMN default_credit_quarter_hours INTEGER
    CHECK (default_credit_quarter_hours BETWEEN 0 AND 96);
ALTER TABLE series ADD COLUMN checkin_opens_minutes INTEGER NOT NULL DEFAULT 15
    CHECK (checkin_opens_minutes BETWEEN 0 AND 1440);
ALTER TABLE series ADD COLUMN checkin_closes_minutes INTEGER NOT NULL DEFAULT 60
    CHECK (checkin_closes_minutes BETWEEN 0 AND 10080);
ALTER TABLE series ADD COLUMN evaluation_required BOOLEAN NOT NULL DEFAULT 0;

-- A round's designation, in quarter hours (AMA PRA: 1 credit per 60 minutes, in 0.25 steps),
-- made when the round is written: the series' default unless `credit_hours_set` says the
-- organizer chose it. The service keeps it at most the round's length and unchanged once the
-- round has started (src/schedule/rounds.rs).
ALTER TABLE rounds ADD COLUMN credit_quarter_hours INTEGER NOT NULL DEFAULT 0
    CHECK (credit_quarter_hours BETWEEN 0 AND 96);
ALTER TABLE rounds ADD COLUMN credit_hours_set BOOLEAN NOT NULL DEFAULT 0;

-- The people who attend: a learner's record, matched to a signed-in person by `sub`, then by
-- e-mail. `email_key` is the address folded to lower case in Rust (SQLite's lower() folds ASCII
-- only), unique; `search_text` is the name and address folded, for `q`.
CREATE TABLE attendees (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    full_name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    profession TEXT NOT NULL CHECK (profession IN ('physician', 'physician_assistant',
        'nurse_practitioner', 'nurse', 'pharmacist', 'psychologist', 'other', 'student')),
    npi TEXT,
    sub TEXT,
    search_text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX attendees_email_key ON attendees (email_key);
CREATE UNIQUE INDEX attendees_sub ON attendees (sub);
CREATE INDEX attendees_name_key ON attendees (name_key, id);

-- A round's check-in code, made when an organizer first asks for it and replaced when one asks
-- for another. It goes with its round (the round's row is its only owner).
CREATE TABLE checkin_codes (
    round_id INTEGER PRIMARY KEY NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT
);

-- Who attended which round, never deleted: a mistake is voided (`voided_at`, `void_reason`) and
-- stays. One record per round and attendee among those not voided, and one per `nonce`: the
-- database decides between concurrent check-ins, across replicas.
CREATE TABLE attendance (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    attendee_id INTEGER NOT NULL REFERENCES attendees (id),
    method TEXT NOT NULL CHECK (method IN ('code', 'organizer', 'import')),
    attended_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    nonce TEXT,
    reason TEXT,
    claimed_quarter_hours INTEGER NOT NULL CHECK (claimed_quarter_hours BETWEEN 0 AND 96),
    credit_status TEXT NOT NULL
        CHECK (credit_status IN ('awarded', 'pending_evaluation', 'not_creditable', 'none')),
    credit_note TEXT,
    credit_overridden BOOLEAN NOT NULL DEFAULT 0,
    evaluated_at TIMESTAMP,
    voided_at TIMESTAMP,
    void_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    CHECK ((voided_at IS NULL) = (void_reason IS NULL))
);
CREATE UNIQUE INDEX attendance_round_attendee ON attendance (round_id, attendee_id)
    WHERE voided_at IS NULL;
CREATE UNIQUE INDEX attendance_nonce ON attendance (nonce);
CREATE INDEX attendance_attendee ON attendance (attendee_id, round_id);

-- Session feedback sent with an attendee's token is their evaluation of the round: a claim
-- waiting for it (`pending_evaluation`) is then `awarded`, unless an organizer decided the
-- record's credit. The feedback is linked to the attendee by the token's subject, which their
-- attendee holds (`sub`); a trigger, so that no writer of feedback can forget it.
CREATE TRIGGER attendance_evaluated AFTER INSERT ON feedback
WHEN NEW.kind = 'session_feedback' AND NEW.submitted_by IS NOT NULL AND NEW.round_id IS NOT NULL
BEGIN
    UPDATE attendance
    SET credit_status = 'awarded', evaluated_at = NEW.created_at, updated_at = NEW.created_at,
        version = version + 1
    WHERE round_id = NEW.round_id AND credit_status = 'pending_evaluation'
        AND voided_at IS NULL AND credit_overridden = 0
        AND attendee_id IN (SELECT id FROM attendees WHERE sub = NEW.submitted_by);
END;
