-- Corpus and gold files uploaded to storage and imported by the import job (a Step Functions
-- state machine: plan, batches, finish): one row per uploaded object, its progress and counts.

CREATE TABLE imports (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    kind        text NOT NULL CHECK (kind IN ('corpus', 'gold')),
    -- gold only (practice or qa); NULL for corpus files, or for a gold file uploaded without
    -- one (that import fails and says so)
    purpose     text CHECK (purpose IN ('practice', 'qa')),
    filename    text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    key         text NOT NULL UNIQUE,               -- the object's key in the imports bucket
    size        bigint CHECK (size >= 0),           -- bytes, as declared or as stored
    status      text NOT NULL DEFAULT 'waiting'
                CHECK (status IN ('waiting', 'planning', 'importing', 'finishing', 'succeeded',
                                  'failed')),
    run         text,                               -- the current execution's name
    batches     integer CHECK (batches >= 0),       -- planned batches of the current run
    rows_total  bigint CHECK (rows_total >= 0),     -- rows the plan counted (non-blank)
    rows_read   bigint NOT NULL DEFAULT 0,
    inserted    bigint NOT NULL DEFAULT 0,          -- corpus: new posts; gold: new gold rows
    updated     bigint NOT NULL DEFAULT 0,
    unchanged   bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    posts_created bigint NOT NULL DEFAULT 0,        -- gold: posts added to the corpus
    rejects_key text,                               -- <key>.rejects.csv, when rows were rejected
    error       text,
    created_by  bigint REFERENCES coders (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    CHECK (kind = 'gold' OR purpose IS NULL)
);
CREATE INDEX imports_newest ON imports (created_at DESC, id);

-- What each batch of a run did; a retried or re-run batch replaces its row, so the sums are
-- the run's counts however often a batch ran.
CREATE TABLE import_batches (
    import_id   text NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    run         text NOT NULL,
    batch       integer NOT NULL CHECK (batch >= 1),
    rows_read   bigint NOT NULL,
    inserted    bigint NOT NULL,
    updated     bigint NOT NULL,
    unchanged   bigint NOT NULL,
    rejected    bigint NOT NULL,
    posts_created bigint NOT NULL DEFAULT 0,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (import_id, run, batch)
);
