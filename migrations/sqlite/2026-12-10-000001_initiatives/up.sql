-- The learning loop, part one: initiatives (the improvement work the rounds design, implement
-- and evaluate), their teams, departments and links to rounds, and the series' loop alert.
-- Measured values and targets are DOUBLE PRECISION (SQLite reads the name as REAL), calendar
-- dates DATE (SQLite keeps them as 'YYYY-MM-DD' text, which sorts as dates do).

-- An active initiative whose loop stays open longer than this many days is flagged.
ALTER TABLE series ADD COLUMN loop_alert_days INTEGER NOT NULL DEFAULT 90
    CHECK (loop_alert_days BETWEEN 1 AND 3650);

CREATE TABLE initiatives (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    title TEXT NOT NULL,
    problem_statement TEXT,
    aim_statement TEXT,
    aim_target DOUBLE PRECISION,
    aim_target_date DATE,
    stage TEXT NOT NULL DEFAULT 'problem',
    status TEXT NOT NULL DEFAULT 'proposed',
    closing_note TEXT,
    progress_score DOUBLE PRECISION,
    determination TEXT NOT NULL DEFAULT 'undetermined',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    CHECK (stage IN ('problem', 'evidence', 'design', 'testing', 'implementation', 'evaluation',
                     'sustain')),
    CHECK (status IN ('proposed', 'active', 'on_hold', 'completed', 'abandoned')),
    CHECK (determination IN ('undetermined', 'quality_improvement', 'research_irb')),
    CHECK (progress_score IS NULL OR progress_score BETWEEN 0.5 AND 5.0),
    -- An aim is a number by a date, and an active initiative has one.
    CHECK (status <> 'active' OR (aim_target IS NOT NULL AND aim_target_date IS NOT NULL)),
    -- Closing says why.
    CHECK (status NOT IN ('completed', 'abandoned') OR closing_note IS NOT NULL)
);
CREATE INDEX initiatives_status ON initiatives (status);
CREATE INDEX initiatives_stage ON initiatives (stage);
CREATE INDEX initiatives_updated_at ON initiatives (updated_at, id);

-- The team, in order. People are named as written; `speaker_id` links one to a speaker.
CREATE TABLE initiative_team (
    initiative_id INTEGER NOT NULL REFERENCES initiatives (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    speaker_id INTEGER REFERENCES speakers (id),
    role TEXT NOT NULL,
    PRIMARY KEY (initiative_id, position),
    CHECK (role IN ('sponsor', 'lead', 'facilitator', 'member', 'analyst', 'informaticist',
                    'patient_partner'))
);
CREATE INDEX initiative_team_speaker_id ON initiative_team (speaker_id);

CREATE TABLE initiative_departments (
    initiative_id INTEGER NOT NULL REFERENCES initiatives (id),
    department_id INTEGER NOT NULL REFERENCES departments (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (initiative_id, department_id)
);
CREATE INDEX initiative_departments_department_id ON initiative_departments (department_id);

-- Which rounds discussed an initiative, and what for.
CREATE TABLE initiative_rounds (
    initiative_id INTEGER NOT NULL REFERENCES initiatives (id),
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    purpose TEXT NOT NULL,
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (initiative_id, round_id),
    CHECK (purpose IN ('introduce', 'design', 'review', 'results'))
);
CREATE INDEX initiative_rounds_round_id ON initiative_rounds (round_id);

-- A round's answer lists its initiatives' ids and titles from a copy on its row, as it does its
-- speakers and departments (2026-12-07-000001_one_read_and_one_writer_on_both_backends):
-- `[[initiative_id, title], ...]` by initiative id. The link table is the record; these
-- triggers keep the copy, and bump the round's version (its answer changed) and so the
-- schedule's revision (the rounds table's own triggers).
ALTER TABLE rounds ADD COLUMN initiatives_doc TEXT NOT NULL DEFAULT '[]';

CREATE VIEW round_initiatives_docs AS
    SELECT round_id, json_group_array(json(item)) AS doc FROM (
        SELECT ir.round_id AS round_id, json_array(i.id, i.title) AS item
        FROM initiative_rounds AS ir JOIN initiatives AS i ON i.id = ir.initiative_id
        ORDER BY ir.round_id, i.id
    ) GROUP BY round_id;

CREATE TRIGGER initiative_rounds_insert_refreshes_round AFTER INSERT ON initiative_rounds
BEGIN
    UPDATE rounds SET version = version + 1,
        initiatives_doc = coalesce((SELECT doc FROM round_initiatives_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id = NEW.round_id;
END;
CREATE TRIGGER initiative_rounds_update_refreshes_rounds AFTER UPDATE OF initiative_id, round_id ON initiative_rounds
BEGIN
    UPDATE rounds SET version = version + 1,
        initiatives_doc = coalesce((SELECT doc FROM round_initiatives_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id IN (OLD.round_id, NEW.round_id);
END;
CREATE TRIGGER initiative_rounds_delete_refreshes_round AFTER DELETE ON initiative_rounds
BEGIN
    UPDATE rounds SET version = version + 1,
        initiatives_doc = coalesce((SELECT doc FROM round_initiatives_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id = OLD.round_id;
END;
CREATE TRIGGER initiatives_title_refreshes_rounds AFTER UPDATE OF title ON initiatives
    WHEN OLD.title IS NOT NEW.title
BEGIN
    UPDATE rounds SET version = version + 1,
        initiatives_doc = coalesce((SELECT doc FROM round_initiatives_docs AS d WHERE d.round_id = rounds.id), '[]')
        WHERE id IN (SELECT round_id FROM initiative_rounds WHERE initiative_id = NEW.id);
END;
