-- Nothing to do on SQLite: the PostgreSQL migration of the same name keeps each round's speakers
-- and departments on the round's row, because there the two joins cost two to four times the
-- round's own lookup. SQLite answers them in microseconds, from the link tables as before. Both
-- directories keep the same migration names in the same order (migrations/README.md).
SELECT 1;
