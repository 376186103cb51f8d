-- Entries still queued are numbered into the log before the queue goes (their webhook messages,
-- not yet written, are not).
INSERT INTO changes (seq, at, actor, resource, record_id, action, changes, data, request_id)
SELECT h.seq + row_number() OVER (ORDER BY q.id), q.at, q.actor, q.resource, q.record_id,
       q.action, q.changes, q.data, q.request_id
FROM change_log_queue q CROSS JOIN change_log_head h;
UPDATE change_log_head SET seq = seq + (SELECT count(*) FROM change_log_queue);
DROP TABLE change_log_queue;
