-- Writers no longer number their change-log entries: each appends its entry here, in its own
-- transaction, and `changelog::number` moves committed entries to `changes` in batches,
-- numbering them under `change_log_head`'s lock in the order it moves them. Numbers stay in
-- commit order without gaps (the numbering transactions take turns), and no writer waits for
-- another's commit. The webhook messages of an entry are written when it is numbered.
CREATE TABLE change_log_queue (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    resource TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    action change_action NOT NULL,
    changes TEXT NOT NULL,
    data TEXT,
    request_id TEXT,
    event TEXT NOT NULL,
    message TEXT NOT NULL,
    message_prefix TEXT NOT NULL,
    -- The subscriptions that take the event: a webhook's `events` is LIKE one of these.
    match_event TEXT,
    match_resource TEXT,
    match_any TEXT
);
