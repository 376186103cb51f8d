-- Each round carries its speakers and departments, as the JSON that the read of a round needs:
-- `[[speaker_id, full_name, credentials, role], ...]` and `[[department_id, name,
-- abbreviation], ...]`, each in the order of its places. A round read on PostgreSQL is then one
-- row found by its key, as a `pgbench -S` select is, instead of a round plus two joins: measured
-- on one server with pgbench, the statement with the joins ran at a quarter to a third of the
-- rate of the round's lookup alone (BENCHMARKS.md).
--
-- The link tables stay the record; these columns are kept from them by the triggers that
-- already bump a round's version whenever its links, or a linked speaker's or department's
-- names, change. Two writers never race to write them: every write to the schedule's tables
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

CREATE OR REPLACE FUNCTION bump_round_version_of_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'round_speakers' THEN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE rounds SET version = version + 1, speakers_doc = round_speakers_doc(id)
                WHERE id = OLD.round_id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            UPDATE rounds SET version = version + 1, speakers_doc = round_speakers_doc(id)
                WHERE id = NEW.round_id;
        END IF;
    ELSE
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE rounds SET version = version + 1, departments_doc = round_departments_doc(id)
                WHERE id = OLD.round_id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            UPDATE rounds SET version = version + 1, departments_doc = round_departments_doc(id)
                WHERE id = NEW.round_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Rounds written before this migration: a bulk update fires no link trigger.
UPDATE rounds SET speakers_doc = round_speakers_doc(id), departments_doc = round_departments_doc(id);
