CREATE OR REPLACE FUNCTION round_speakers_doc(round INTEGER) RETURNS TEXT LANGUAGE sql AS $$
    SELECT coalesce(json_agg(json_build_array(rs.speaker_id, s.full_name, s.credentials, rs.role)
                             ORDER BY rs.position)::text, '[]')
    FROM round_speakers AS rs JOIN speakers AS s ON s.id = rs.speaker_id
    WHERE rs.round_id = round
$$;

ALTER TABLE round_speakers DROP COLUMN responded_at, DROP COLUMN invited_at, DROP COLUMN status;
DROP DOMAIN speaker_status;
DROP INDEX speakers_sub;
ALTER TABLE speakers DROP COLUMN sub;

UPDATE rounds SET speakers_doc = round_speakers_doc(id);
