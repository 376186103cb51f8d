-- Sign-in for the service's own pages (see site::session): the sign-ins under way (the
-- authorization code flow's state, PKCE verifier and where to go after), and the sessions they
-- open. Both are found by the SHA-256 digest of what the browser holds, never by it: a copy of
-- the database opens no session. In the database, not in one process's memory, so that any
-- replica serves the callback and the pages.
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
