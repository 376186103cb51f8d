-- Nothing to do on PostgreSQL: its rounds carry their links' copies since
-- 2026-12-03-000001_round_link_documents, and its change_log_head exists since
-- 2026-12-01-000001_change_log_and_webhooks. The SQLite twin catches up with both.
SELECT 1;
