DROP VIEW round_speakers_docs;
CREATE VIEW round_speakers_docs AS
    SELECT round_id, json_group_array(json(item)) AS doc FROM (
        SELECT rs.round_id AS round_id,
               json_array(rs.speaker_id, s.full_name, s.credentials, rs.role) AS item
        FROM round_speakers AS rs JOIN speakers AS s ON s.id = rs.speaker_id
        ORDER BY rs.round_id, rs.position
    ) GROUP BY round_id;

ALTER TABLE round_speakers DROP COLUMN responded_at;
ALTER TABLE round_speakers DROP COLUMN invited_at;
ALTER TABLE round_speakers DROP COLUMN status;
DROP INDEX speakers_sub;
ALTER TABLE speakers DROP COLUMN sub;

UPDATE rounds SET
    speakers_doc = coalesce((SELECT doc FROM round_speakers_docs AS d WHERE d.round_id = rounds.id), '[]');
