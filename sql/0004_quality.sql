-- Label quality: each run of gold scoring + consensus + screening is kept, with its settings,
-- its screening log and every post's consensus per binary item.

CREATE TABLE quality_runs (
    id         bigserial PRIMARY KEY,
    family     text NOT NULL CHECK (family IN ('place', 'child', 'health')),
    rules      jsonb NOT NULL,
    summary    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE consensus_items (
    run_id     bigint NOT NULL REFERENCES quality_runs (id) ON DELETE CASCADE,
    post_id    text NOT NULL,
    item       text NOT NULL,
    value      boolean NOT NULL,
    posterior  real NOT NULL,
    confidence real NOT NULL,
    n_labels   integer NOT NULL,
    PRIMARY KEY (run_id, post_id, item)
);

-- Which posts of a run passed screening, and why the others did not.
CREATE TABLE screened_posts (
    run_id     bigint NOT NULL REFERENCES quality_runs (id) ON DELETE CASCADE,
    post_id    text NOT NULL,
    kept       boolean NOT NULL,
    reason     text,
    confidence real,
    n_labels   integer NOT NULL,
    PRIMARY KEY (run_id, post_id)
);

-- Why a task slot exists beyond the campaign's labels per post (e.g. a re-label request).
ALTER TABLE tasks ADD COLUMN reason text;
