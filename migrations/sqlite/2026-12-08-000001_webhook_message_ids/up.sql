-- Each webhook message's `webhook-id`, stored with it so that every attempt sends the same one.
-- New messages get `msg_<UUIDv7 of the change>_<webhook id>` from the change log's writer;
-- the messages already written keep the id they were sent with (`msg_<row id>`), so that a
-- message retried after the upgrade is still recognised by its receiver.
--
-- SQLite cannot add a NOT NULL column without a constant default, and rebuilding the table
-- would delete its attempts (ON DELETE CASCADE) inside the migration's transaction: the column
-- is added nullable, and triggers refuse a NULL, as NOT NULL would.
ALTER TABLE webhook_messages ADD COLUMN message_id TEXT;
UPDATE webhook_messages SET message_id = 'msg_' || id;
CREATE UNIQUE INDEX webhook_messages_message_id ON webhook_messages (message_id);
CREATE TRIGGER webhook_messages_message_id_insert BEFORE INSERT ON webhook_messages
WHEN NEW.message_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'NOT NULL constraint failed: webhook_messages.message_id');
END;
CREATE TRIGGER webhook_messages_message_id_update BEFORE UPDATE OF message_id ON webhook_messages
WHEN NEW.message_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'NOT NULL constraint failed: webhook_messages.message_id');
END;

-- A webhook's secret is kept nowhere but in its row: the answers kept for an Idempotency-Key
-- of POST /api/v1/webhooks lose theirs (a replay reads it back from the row, while the webhook
-- is unchanged).
UPDATE idempotency_keys SET body = json_remove(body, '$.secret')
WHERE method = 'POST' AND path = '/api/v1/webhooks' AND json_type(body, '$.secret') IS NOT NULL;
