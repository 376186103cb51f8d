-- Timestamps are naive UTC (set by the service); lists are JSON text. See migrations/README.md.
CREATE TABLE departments (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    abbreviation TEXT,
    description TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT
);
CREATE UNIQUE INDEX departments_name_key ON departments (name_key);

CREATE TABLE speakers (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    full_name TEXT NOT NULL,
    credentials TEXT NOT NULL DEFAULT '[]',
    title TEXT,
    email TEXT,
    department_id INTEGER REFERENCES departments (id),
    bio TEXT,
    search_text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT
);
CREATE INDEX speakers_department_id ON speakers (department_id);
CREATE INDEX speakers_full_name ON speakers (full_name);

CREATE TABLE rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    title TEXT,
    description TEXT,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    location TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'scheduled',
    search_text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    CHECK (ends_at > starts_at),
    CHECK (status IN ('scheduled', 'cancelled'))
);
CREATE INDEX rounds_starts_at ON rounds (starts_at, id);
CREATE INDEX rounds_ends_at ON rounds (ends_at);
CREATE INDEX rounds_status ON rounds (status);

CREATE TABLE round_speakers (
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    speaker_id INTEGER NOT NULL REFERENCES speakers (id),
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (round_id, speaker_id),
    CHECK (role IN ('presenter', 'moderator', 'panelist'))
);
CREATE UNIQUE INDEX round_speakers_position ON round_speakers (round_id, position);
CREATE INDEX round_speakers_speaker_id ON round_speakers (speaker_id);

CREATE TABLE round_departments (
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    department_id INTEGER NOT NULL REFERENCES departments (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (round_id, department_id)
);
CREATE INDEX round_departments_department_id ON round_departments (department_id);

CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL,
    round_id INTEGER REFERENCES rounds (id),
    rating INTEGER,
    comment TEXT,
    author_name TEXT,
    author_email TEXT,
    status TEXT NOT NULL DEFAULT 'new',
    submitted_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (kind IN ('session_feedback', 'topic_suggestion', 'general')),
    CHECK (status IN ('new', 'reviewed', 'accepted', 'declined')),
    CHECK (rating IS NULL OR rating BETWEEN 1 AND 5)
);
CREATE INDEX feedback_round_id ON feedback (round_id);
CREATE INDEX feedback_kind ON feedback (kind);
CREATE INDEX feedback_status ON feedback (status);
CREATE INDEX feedback_created_at ON feedback (created_at, id);
