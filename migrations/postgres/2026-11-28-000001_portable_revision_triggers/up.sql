-- Nothing changes on PostgreSQL: this migration rewrites SQLite's revision triggers (see
-- migrations/sqlite). It exists so both backends have the same migration names.
SELECT 1;
