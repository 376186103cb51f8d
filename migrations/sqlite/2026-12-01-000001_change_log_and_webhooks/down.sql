DROP TABLE webhook_attempts;
DROP TABLE webhook_messages;
DROP TABLE webhooks;
DROP TABLE change_log_floor;
DROP TABLE changes;
