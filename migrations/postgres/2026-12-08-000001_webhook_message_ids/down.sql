-- The secrets taken out of kept answers are not put back (they were never to be kept).
DROP INDEX webhook_messages_message_id;
ALTER TABLE webhook_messages DROP COLUMN message_id;
