-- Export jobs (the Step Functions state machine, or its local run): status and output.
CREATE TABLE export_jobs (
    id          text PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    families    text[] NOT NULL,
    started_by  bigint REFERENCES coders (id),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    output      jsonb,
    error       text
);
