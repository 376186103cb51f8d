-- Each webhook message's `webhook-id`, stored with it so that every attempt sends the same one.
-- New messages get `msg_<UUIDv7 of the change>_<webhook id>` from the change log's writer;
-- the messages already written keep the id they were sent with (`msg_<row id>`), so that a
-- message retried after the upgrade is still recognised by its receiver.
ALTER TABLE webhook_messages ADD COLUMN message_id TEXT;
UPDATE webhook_messages SET message_id = 'msg_' || id;
ALTER TABLE webhook_messages ALTER COLUMN message_id SET NOT NULL;
CREATE UNIQUE INDEX webhook_messages_message_id ON webhook_messages (message_id);

-- A webhook's secret is kept nowhere but in its row: the answers kept for an Idempotency-Key
-- of POST /api/v1/webhooks lose theirs (a replay reads it back from the row, while the webhook
-- is unchanged).
UPDATE idempotency_keys SET body = (body::jsonb - 'secret')::text
WHERE method = 'POST' AND path = '/api/v1/webhooks' AND body::jsonb ? 'secret';
