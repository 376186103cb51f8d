-- Speakers who confirm. A speaker's place on a round is `invited`, `confirmed` or `declined`
-- (confirmed by default, so that rounds written before this and clients that never send it keep
-- working), with when the invitation went out and when it was answered, both set by the service.
-- A speaker record may carry the identity provider's `sub`, so that the speaker, signed in, may
-- answer for their own place; one record per `sub`.
ALTER TABLE speakers ADD COLUMN sub TEXT;
CREATE UNIQUE INDEX speakers_sub ON speakers (sub);

ALTER TABLE round_speakers ADD COLUMN status TEXT NOT NULL DEFAULT 'confirmed'
    CHECK (status IN ('invited', 'confirmed', 'declined'));
ALTER TABLE round_speakers ADD COLUMN invited_at TIMESTAMP;
ALTER TABLE round_speakers ADD COLUMN responded_at TIMESTAMP;

-- The copy of a round's speakers carries each place's status and its two times:
-- `[[speaker_id, full_name, credentials, role, status, invited_at, responded_at], ...]`. The
-- triggers of 2026-12-07-000001 read the copy from this view by name, so they need no change.
DROP VIEW round_speakers_docs;
CREATE VIEW round_speakers_docs AS
    SELECT round_id, json_group_array(json(item)) AS doc FROM (
        SELECT rs.round_id AS round_id,
               json_array(rs.speaker_id, s.full_name, s.credentials, rs.role, rs.status,
                          rs.invited_at, rs.responded_at) AS item
        FROM round_speakers AS rs JOIN speakers AS s ON s.id = rs.speaker_id
        ORDER BY rs.round_id, rs.position
    ) GROUP BY round_id;

UPDATE rounds SET
    speakers_doc = coalesce((SELECT doc FROM round_speakers_docs AS d WHERE d.round_id = rounds.id), '[]');
