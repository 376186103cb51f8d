-- Disclosures (ACCME Standard 3): every financial relationship with an ineligible company of
-- the people who control a round's content, judged per round, mitigated, and disclosed to
-- learners before the round in a frozen, versioned statement.
--
-- The series names its planners and reviewers (`[{"speaker_id": 7, "role": "planner"}, ...]`,
-- in order) and how many months an attestation stays current.
ALTER TABLE series ADD COLUMN planners TEXT NOT NULL DEFAULT '[]';
ALTER TABLE series ADD COLUMN disclosure_valid_months INTEGER NOT NULL DEFAULT 12;

-- Every attestation a speaker made, kept as history: the latest by `attested_at` is the one
-- that counts. `no_relationships` is the person's own statement that they have none, so that an
-- empty list is never mistaken for a form not filled in.
CREATE TABLE disclosures (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    speaker_id INTEGER NOT NULL REFERENCES speakers (id) ON DELETE CASCADE,
    attested_at TIMESTAMP NOT NULL,
    no_relationships BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT
);
CREATE INDEX disclosures_speaker ON disclosures (speaker_id, attested_at, id);

-- The relationships of one attestation, in the order given. Dates are `YYYY-MM-DD`.
CREATE TABLE disclosure_relationships (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    disclosure_id INTEGER NOT NULL REFERENCES disclosures (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    company TEXT NOT NULL,
    nature TEXT NOT NULL CHECK (nature IN ('employee', 'researcher', 'consultant', 'advisor',
        'speaker', 'contractor', 'royalties_or_patent', 'executive_role', 'ownership_interest',
        'other')),
    other_detail TEXT,
    started_on TEXT NOT NULL,
    ended_on TEXT
);
CREATE INDEX disclosure_relationships_disclosure ON disclosure_relationships (disclosure_id, position);

-- A round's judgement of one relationship: relevant or not, and how a relevant one was
-- mitigated; who judged it and when. A new attestation has new relationships, judged afresh.
CREATE TABLE disclosure_reviews (
    round_id INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    relationship_id INTEGER NOT NULL REFERENCES disclosure_relationships (id) ON DELETE CASCADE,
    relevant BOOLEAN NOT NULL,
    mitigation TEXT CHECK (mitigation IN ('peer_review_of_content',
        'attestation_of_evidence_base', 'recusal', 'divestiture', 'other')),
    note TEXT,
    reviewed_at TIMESTAMP NOT NULL,
    reviewed_by TEXT,
    PRIMARY KEY (round_id, relationship_id)
);
CREATE INDEX disclosure_reviews_relationship ON disclosure_reviews (relationship_id);

-- What learners were shown: each published version of a round's statement, frozen (its text
-- and its structured content as JSON). The evidence outlives the round on purpose: no foreign
-- key, so deleting a round never deletes what its learners were told.
CREATE TABLE disclosure_statements (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    round_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    published_at TIMESTAMP NOT NULL,
    published_by TEXT,
    text TEXT NOT NULL,
    content TEXT NOT NULL,
    UNIQUE (round_id, version)
);
