-- Same schema as migrations/sqlite; see its comments.
CREATE TABLE page_signins (
    state_digest TEXT PRIMARY KEY NOT NULL,
    verifier TEXT NOT NULL,
    next_path TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE TABLE page_sessions (
    id_digest TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL,
    name TEXT,
    email TEXT,
    role TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX page_sessions_expiry ON page_sessions (expires_at);
CREATE INDEX page_signins_expiry ON page_signins (expires_at);
