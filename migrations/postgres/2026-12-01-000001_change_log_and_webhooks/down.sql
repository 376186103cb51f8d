DROP TABLE webhook_attempts;
DROP TABLE webhook_messages;
DROP TABLE webhooks;
DROP TABLE change_log_floor;
DROP TRIGGER changes_are_append_only ON changes;
DROP FUNCTION refuse_change_log_edits();
DROP TABLE change_log_head;
DROP TABLE changes;
