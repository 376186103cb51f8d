-- Same schema as migrations/sqlite; see its comments. The status is a domain, as the other
-- single-column checks are (2026-12-02-000001_checks_as_domains).
ALTER TABLE speakers ADD COLUMN sub TEXT;
CREATE UNIQUE INDEX speakers_sub ON speakers (sub);

CREATE DOMAIN speaker_status AS TEXT CHECK (VALUE IN ('invited', 'confirmed', 'declined'));
ALTER TABLE round_speakers ADD COLUMN status speaker_status NOT NULL DEFAULT 'confirmed',
    ADD COLUMN invited_at TIMESTAMP, ADD COLUMN responded_at TIMESTAMP;

-- The one definition of the copy, read by the link and rename triggers of
-- 2026-12-03-000001_round_link_documents: each place now carries its status and two times.
CREATE OR REPLACE FUNCTION round_speakers_doc(round INTEGER) RETURNS TEXT LANGUAGE sql AS $$
    SELECT coalesce(json_agg(json_build_array(rs.speaker_id, s.full_name, s.credentials, rs.role,
                                              rs.status, rs.invited_at, rs.responded_at)
                             ORDER BY rs.position)::text, '[]')
    FROM round_speakers AS rs JOIN speakers AS s ON s.id = rs.speaker_id
    WHERE rs.round_id = round
$$;

UPDATE rounds SET speakers_doc = round_speakers_doc(id);
