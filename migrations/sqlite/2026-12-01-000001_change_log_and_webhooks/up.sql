-- The change log: one entry per write, in the write's transaction. It is the audit trail
-- (GET /api/v1/audit), the change feed (GET /api/v1/changes) and the source of webhook messages.
-- On SQLite writers take turns, so AUTOINCREMENT numbers entries in commit order.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    resource TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    changes TEXT NOT NULL,
    data TEXT,
    request_id TEXT,
    CHECK (action IN ('created', 'updated', 'deleted'))
);
CREATE INDEX changes_record ON changes (resource, record_id, seq);
CREATE INDEX changes_at ON changes (at);
CREATE INDEX changes_actor ON changes (actor, seq);

-- The highest seq that retention has purged: a feed reader asking for changes after an older
-- one has missed some and must resync (410).
CREATE TABLE change_log_floor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through BIGINT NOT NULL
);
INSERT INTO change_log_floor (id, purged_through) VALUES (1, 0);

-- Webhooks: where messages about changes are sent (Standard Webhooks signatures).
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    enabled BOOLEAN NOT NULL DEFAULT 1,
    secret TEXT NOT NULL,
    disabled_reason TEXT,
    failed_messages INTEGER NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT
);

-- The outbox: one message per webhook per change it subscribes to, written in the change's
-- transaction, delivered by a background worker in order for each webhook.
CREATE TABLE webhook_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    change_seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    CHECK (status IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX webhook_messages_due ON webhook_messages (status, webhook_id, id);

-- Every attempt to deliver a message, for GET /api/v1/webhooks/{id}/deliveries.
CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    message_id INTEGER NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    attempted_at TIMESTAMP NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_message ON webhook_attempts (message_id);
