-- Both backends now read a round the same way and write the change log the same way.
--
-- A round's row carries copies of its speakers and departments, as PostgreSQL's has since
-- 2026-12-03-000001_round_link_documents: `[[speaker_id, full_name, credentials, role], ...]` and
-- `[[department_id, name, abbreviation], ...]`, each in the order of its places. The link tables
-- stay the record; the triggers that bump a round's version when its links, or a linked name,
-- change now also write the copies, from the two views below (the one place each copy is
-- defined on SQLite). A TRUNCATE-like bulk delete fires them too: SQLite has no TRUNCATE.
ALTER TABLE rounds ADD COLUMN speakers_doc TEXT NOT NULL DEFAULT '[]';
ALTER TABLE rounds ADD COLUMN departments_doc TEXT NOT NULL DEFAULT '[]';

-- The order of json_group_array's elements is that of the rows it is fed: the subquery's.
CREATE VIEW round_speakers_docs AS
    SELECT round_id, json_group_array(json(item)) AS doc FROM (
        SELECT rs.round_id AS round_id,
               json_array(rs.speaker_id, s.full_name, s.credentials, rs.role) AS item
        FROM round_speakers AS rs JOIN speakers AS s ON s.id = rs.speaker_id
        ORDER BY rs.round_id, rs.position
    ) GROUP BY round_id;
CREATE VIEW round_departments_docs AS
    SELECT round_id, json_group_array(json(item)) AS doc FROM (
        SELECT rd.round_id AS round_id, json_array(d.id, d.name, d.abbreviation) AS item
        FROM round_departments AS rd JOIN departments AS d ON d.id = rd.department_id
        ORDER BY rd.round_id, rd.position
    ) GROUP BY round_id;

DROP TRIGGER speakers_update_bumps_round_versions;
DROP TRIGGER departments_update_bumps_round_versions;
DROP TRIGGER round_speakers_insert_bumps_round_version;
DROP TRIGGER round_speakers_update_bumps_round_version;
DROP TRIGGER round_speakers_delete_bumps_round_version;
DROP TRIGGER round_departments_insert_bumps_round_version;
DROP TRIGGER round_departments_update_bumps_round_version;
DROP TRIGGER round_departments_delete_bumps_round_version;

CREATE TRIGGER speakers_update_bumps_round_versions AFTER UPDATE OF full_name, credentials ON speakers
    WHEN OLD.full_name IS NOT NEW.full_name OR OLD.credentials IS NOT NEW.credentials
BEGIN
    UPDATE rounds SET version = version + 1,
        speakers_doc = coalesce((SELECT doc FROM round_speakers_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id IN (SELECT round_id FROM round_speakers WHERE speaker_id = NEW.id);
END;
CREATE TRIGGER departments_update_bumps_round_versions AFTER UPDATE OF name, abbreviation ON departments
    WHEN OLD.name IS NOT NEW.name OR OLD.abbreviation IS NOT NEW.abbreviation
BEGIN
    UPDATE rounds SET version = version + 1,
        departments_doc = coalesce((SELECT doc FROM round_departments_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id IN (SELECT round_id FROM round_departments WHERE department_id = NEW.id);
END;
CREATE TRIGGER round_speakers_insert_bumps_round_version AFTER INSERT ON round_speakers
BEGIN
    UPDATE rounds SET version = version + 1,
        speakers_doc = coalesce((SELECT doc FROM round_speakers_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id = NEW.round_id;
END;
CREATE TRIGGER round_speakers_update_bumps_round_version AFTER UPDATE ON round_speakers
BEGIN
    UPDATE rounds SET version = version + 1,
        speakers_doc = coalesce((SELECT doc FROM round_speakers_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id IN (OLD.round_id, NEW.round_id);
END;
CREATE TRIGGER round_speakers_delete_bumps_round_version AFTER DELETE ON round_speakers
BEGIN
    UPDATE rounds SET version = version + 1,
        speakers_doc = coalesce((SELECT doc FROM round_speakers_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id = OLD.round_id;
END;
CREATE TRIGGER round_departments_insert_bumps_round_version AFTER INSERT ON round_departments
BEGIN
    UPDATE rounds SET version = version + 1,
        departments_doc = coalesce((SELECT doc FROM round_departments_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id = NEW.round_id;
END;
CREATE TRIGGER round_departments_update_bumps_round_version AFTER UPDATE ON round_departments
BEGIN
    UPDATE rounds SET version = version + 1,
        departments_doc = coalesce((SELECT doc FROM round_departments_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id IN (OLD.round_id, NEW.round_id);
END;
CREATE TRIGGER round_departments_delete_bumps_round_version AFTER DELETE ON round_departments
BEGIN
    UPDATE rounds SET version = version + 1,
        departments_doc = coalesce((SELECT doc FROM round_departments_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id = OLD.round_id;
END;

UPDATE rounds SET
    speakers_doc = coalesce((SELECT doc FROM round_speakers_docs AS d WHERE d.round_id = rounds.id), '[]'),
    departments_doc = coalesce((SELECT doc FROM round_departments_docs AS d WHERE d.round_id = rounds.id), '[]');

-- The change log's numbers come from this row on both backends (see src/platform/changelog.rs):
-- on SQLite writers take turns anyway, but one writer of the log serves both.
CREATE TABLE change_log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO change_log_head (id, seq) SELECT 1, coalesce(max(seq), 0) FROM changes;
