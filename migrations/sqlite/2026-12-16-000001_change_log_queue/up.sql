-- See migrations/postgres: writers append their change-log entry here, and
-- `changelog::number` moves committed entries to `changes`, numbering them.
CREATE TABLE change_log_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    resource TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    changes TEXT NOT NULL,
    data TEXT,
    request_id TEXT,
    event TEXT NOT NULL,
    message TEXT NOT NULL,
    message_prefix TEXT NOT NULL,
    -- The subscriptions that take the event: a webhook's `events` is LIKE one of these.
    match_event TEXT,
    match_resource TEXT,
    match_any TEXT,
    CHECK (action IN ('created', 'updated', 'deleted'))
);
