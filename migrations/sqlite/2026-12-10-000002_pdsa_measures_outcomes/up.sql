-- The learning loop, part two: the PDSA cycles that test an initiative's changes, its measures
-- with their data points (aggregate numbers only, never patient-level data), and what each
-- round decided (round outcomes: information, decisions and action items).

CREATE TABLE pdsa_cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    initiative_id INTEGER NOT NULL REFERENCES initiatives (id),
    -- 1, 2, 3... within the initiative.
    number INTEGER NOT NULL,
    change_idea TEXT NOT NULL,
    objective TEXT,
    prediction TEXT,
    -- {who, what, when, where, data_collection} as JSON, or NULL.
    plan TEXT,
    do_notes TEXT,
    carried_out_as_planned BOOLEAN,
    study_notes TEXT,
    prediction_confirmed TEXT,
    act_decision TEXT,
    next_steps TEXT,
    round_id INTEGER REFERENCES rounds (id),
    stage TEXT NOT NULL DEFAULT 'plan',
    -- When `act_decision` was first set.
    decided_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (initiative_id, number),
    CHECK (stage IN ('plan', 'do', 'study', 'act', 'closed')),
    CHECK (prediction_confirmed IS NULL OR prediction_confirmed IN ('yes', 'no', 'partly')),
    CHECK (act_decision IS NULL OR act_decision IN ('adopt', 'adapt', 'abandon')),
    -- A test without a prediction is not a test; a cycle closes on a decision.
    CHECK (stage = 'plan' OR prediction IS NOT NULL),
    CHECK (stage <> 'closed' OR act_decision IS NOT NULL)
);
CREATE INDEX pdsa_cycles_round_id ON pdsa_cycles (round_id);

CREATE TABLE measures (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    initiative_id INTEGER NOT NULL REFERENCES initiatives (id),
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    operational_definition TEXT,
    data_type TEXT NOT NULL,
    unit TEXT,
    multiplier DOUBLE PRECISION NOT NULL DEFAULT 1,
    frequency TEXT NOT NULL,
    improvement_direction TEXT NOT NULL,
    target DOUBLE PRECISION,
    baseline_from DATE,
    baseline_to DATE,
    -- [{start_period, reason}, ...] in order: re-baselines a person decided on.
    phases TEXT NOT NULL DEFAULT '[]',
    rules TEXT NOT NULL DEFAULT 'ihi',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    CHECK (type IN ('outcome', 'process', 'balancing')),
    CHECK (data_type IN ('count', 'proportion', 'rate', 'continuous')),
    CHECK (frequency IN ('week', 'month', 'quarter')),
    CHECK (improvement_direction IN ('increase', 'decrease')),
    CHECK (rules IN ('ihi', 'anhoej')),
    CHECK (multiplier > 0),
    CHECK ((baseline_from IS NULL) = (baseline_to IS NULL) AND (baseline_from IS NULL OR baseline_from <= baseline_to))
);
CREATE INDEX measures_initiative_id ON measures (initiative_id);

-- One point per period: aggregate numbers, with the numerator and denominator they come from
-- for proportions and rates.
CREATE TABLE data_points (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    measure_id INTEGER NOT NULL REFERENCES measures (id),
    period DATE NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    numerator DOUBLE PRECISION,
    denominator DOUBLE PRECISION,
    excluded BOOLEAN NOT NULL DEFAULT 0,
    exclusion_reason TEXT,
    astronomical BOOLEAN NOT NULL DEFAULT 0,
    note TEXT,
    pdsa_cycle_id INTEGER REFERENCES pdsa_cycles (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (measure_id, period),
    CHECK ((numerator IS NULL) = (denominator IS NULL)),
    CHECK (denominator IS NULL OR (denominator > 0 AND numerator >= 0)),
    CHECK (NOT excluded OR exclusion_reason IS NOT NULL)
);
CREATE INDEX data_points_pdsa_cycle_id ON data_points (pdsa_cycle_id);
CREATE INDEX data_points_updated_at ON data_points (measure_id, updated_at);

-- What a round decided, in the order it was recorded. Action items carry an owner, a due date
-- and a status. Decisions are kept as written: a correction is a new outcome (`corrects_id`).
CREATE TABLE round_outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    round_id INTEGER NOT NULL REFERENCES rounds (id),
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    rationale TEXT,
    initiative_id INTEGER REFERENCES initiatives (id),
    pdsa_cycle_id INTEGER REFERENCES pdsa_cycles (id),
    corrects_id INTEGER REFERENCES round_outcomes (id),
    owner_name TEXT,
    owner_email TEXT,
    -- The address lowercased (in Rust: SQLite's lower() folds ASCII only), for the filters.
    owner_email_key TEXT,
    owner_speaker_id INTEGER REFERENCES speakers (id),
    due_date DATE,
    status TEXT,
    completed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    CHECK (kind IN ('information', 'decision', 'action_item')),
    CHECK (status IS NULL OR status IN ('open', 'in_progress', 'done', 'cancelled')),
    CHECK (kind = 'action_item' OR (owner_name IS NULL AND owner_email IS NULL
        AND owner_email_key IS NULL AND owner_speaker_id IS NULL AND due_date IS NULL AND status IS NULL AND completed_at IS NULL)),
    CHECK (kind <> 'action_item' OR (owner_name IS NOT NULL AND owner_email IS NOT NULL
        AND due_date IS NOT NULL AND status IS NOT NULL)),
    CHECK (completed_at IS NULL OR status = 'done')
);
CREATE INDEX round_outcomes_initiative_id ON round_outcomes (initiative_id);
CREATE INDEX round_outcomes_pdsa_cycle_id ON round_outcomes (pdsa_cycle_id);
CREATE INDEX round_outcomes_corrects_id ON round_outcomes (corrects_id);
CREATE INDEX round_outcomes_owner_speaker_id ON round_outcomes (owner_speaker_id);
CREATE INDEX round_outcomes_action_items ON round_outcomes (status, due_date, id);
CREATE INDEX round_outcomes_owner_email_key ON round_outcomes (owner_email_key);
-- A round's outcomes in the order they were recorded (two recorded at once may share a
-- position: the id then orders them).
CREATE INDEX round_outcomes_round_id ON round_outcomes (round_id, position, id);
