-- Nothing to do on SQLite: the PostgreSQL migration of the same name turns single-column CHECKs
-- into domains, because PostgreSQL plans a table's CHECKs again at every write. SQLite compiles
-- them into each prepared statement once, and has no domains. Both directories keep the same
-- migration names in the same order (migrations/README.md).
SELECT 1;
