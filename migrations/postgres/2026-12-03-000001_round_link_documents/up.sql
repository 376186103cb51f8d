-- Each round carries its speakers and departments, as the JSON that the read of a round needs:
-- `[[speaker_id, full_name, credentials, role], ...]` and `[[department_id, name,
-- abbreviation], ...]`, each in the order of its places. A round read on PostgreSQL is then one
-- row found by its key, as a `pgbench -S` select is, instead of a round plus two joins: measured
-- on one server with pgbench, the statement with the joins ran at a fifth to a third of the
-- rate of the round's lookup alone (BENCHMARKS.md).
--
-- The link tables stay the record; these columns are kept from them by the triggers that
-- bump a round's version whenever its links, or a linked speaker's or department's names,
-- change (a TRUNCATE of a link table fires none of them, and would leave the copies as they
-- were). Two writers never race to write them: every write to the schedule's tables
-- first takes the `schedule_revision` row (its BEFORE STATEMENT trigger) and holds it until it
-- commits, so a rename and a new link to the same speaker queue, and the statements of the
-- second one's triggers, run after the wait, read what the first one committed.
--
-- SQLite answers the joins in microseconds; its twin migration is empty.
ALTER TABLE rounds ADD COLUMN speakers_doc TEXT NOT NULL DEFAULT '[]',
    ADD COLUMN departments_doc TEXT NOT NULL DEFAULT '[]';

CREATE FUNCTION round_speakers_doc(round INTEGER) RETURNS TEXT LANGUAGE sql AS $$
    SELECT coalesce(json_agg(json_build_array(rs.speaker_id, s.full_name, s.credentials, rs.role)
                             ORDER BY rs.position)::text, '[]')
    FROM round_speakers AS rs JOIN speakers AS s ON s.id = rs.speaker_id
    WHERE rs.round_id = round
$$;

CREATE FUNCTION round_departments_doc(round INTEGER) RETURNS TEXT LANGUAGE sql AS $$
    SELECT coalesce(json_agg(json_build_array(d.id, d.name, d.abbreviation)
                             ORDER BY rd.position)::text, '[]')
    FROM round_departments AS rd JOIN departments AS d ON d.id = rd.department_id
    WHERE rd.round_id = round
$$;

CREATE OR REPLACE FUNCTION bump_round_versions_of_speaker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.full_name IS DISTINCT FROM OLD.full_name OR NEW.credentials IS DISTINCT FROM OLD.credentials THEN
        UPDATE rounds SET version = version + 1, speakers_doc = round_speakers_doc(id)
            WHERE id IN (SELECT round_id FROM round_speakers WHERE speaker_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION bump_round_versions_of_department() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name OR NEW.abbreviation IS DISTINCT FROM OLD.abbreviation THEN
        UPDATE rounds SET version = version + 1, departments_doc = round_departments_doc(id)
            WHERE id IN (SELECT round_id FROM round_departments WHERE department_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$;

-- A statement that writes links now bumps each round's version once per link row, as before,
-- but rewrites the round once, from the statement's transition tables, rather than once per row:
-- creating rounds with three speakers and two departments each measured 492-519 per second,
-- against 378-402 with a rewrite per row and 529-603 before this migration (BENCHMARKS.md). A
-- trigger with transition tables serves one event, hence three per table.
DROP TRIGGER round_speakers_bump_round_version ON round_speakers;
DROP TRIGGER round_departments_bump_round_version ON round_departments;
DROP FUNCTION bump_round_version_of_link();

CREATE FUNCTION refresh_rounds_of_links() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The round of each link row the statement wrote or removed (an update: both its rows).
    touched INTEGER[];
BEGIN
    -- plpgsql plans a statement when it first runs it, so each branch names only the
    -- transition tables its event has.
    IF TG_OP = 'INSERT' THEN
        touched := ARRAY(SELECT round_id FROM new_links);
    ELSIF TG_OP = 'DELETE' THEN
        touched := ARRAY(SELECT round_id FROM old_links);
    ELSE
        touched := ARRAY(SELECT round_id FROM old_links UNION ALL SELECT round_id FROM new_links);
    END IF;
    IF TG_TABLE_NAME = 'round_speakers' THEN
        UPDATE rounds AS r SET version = r.version + c.n, speakers_doc = round_speakers_doc(r.id)
            FROM (SELECT t.id, count(*) AS n FROM unnest(touched) AS t (id) GROUP BY t.id) AS c
            WHERE r.id = c.id;
    ELSE
        UPDATE rounds AS r
            SET version = r.version + c.n, departments_doc = round_departments_doc(r.id)
            FROM (SELECT t.id, count(*) AS n FROM unnest(touched) AS t (id) GROUP BY t.id) AS c
            WHERE r.id = c.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER round_speakers_insert_refreshes_rounds AFTER INSERT ON round_speakers
    REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_rounds_of_links();
CREATE TRIGGER round_speakers_update_refreshes_rounds AFTER UPDATE ON round_speakers
    REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_rounds_of_links();
CREATE TRIGGER round_speakers_delete_refreshes_rounds AFTER DELETE ON round_speakers
    REFERENCING OLD TABLE AS old_links
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_rounds_of_links();
CREATE TRIGGER round_departments_insert_refreshes_rounds AFTER INSERT ON round_departments
    REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_rounds_of_links();
CREATE TRIGGER round_departments_update_refreshes_rounds AFTER UPDATE ON round_departments
    REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_rounds_of_links();
CREATE TRIGGER round_departments_delete_refreshes_rounds AFTER DELETE ON round_departments
    REFERENCING OLD TABLE AS old_links
    FOR EACH STATEMENT EXECUTE FUNCTION refresh_rounds_of_links();

-- Rounds written before this migration: a bulk update fires no link trigger.
UPDATE rounds SET speakers_doc = round_speakers_doc(id), departments_doc = round_departments_doc(id);
