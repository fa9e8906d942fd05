-- The manager's console: adjudications (a manager's answer for a post, its truth in the next
-- quality run), the settings an export job was started with, and looking skips up by post.

-- Append-only like labels: a later adjudication of the same post and family supersedes the
-- earlier one (the newest id is the truth), and every one is kept with its author and time.
CREATE TABLE adjudications (
    id         bigserial PRIMARY KEY,
    post_id    text NOT NULL REFERENCES posts (id),
    family     text NOT NULL CHECK (family IN ('place', 'child', 'health')),
    answers    jsonb NOT NULL,
    note       text NOT NULL DEFAULT '' CHECK (length(note) <= 1000),
    author_id  bigint NOT NULL REFERENCES coders (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX adjudications_by_post ON adjudications (family, post_id, id DESC);
CREATE TRIGGER adjudications_append_only BEFORE UPDATE OR DELETE ON adjudications
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- The thresholds a manager started an export with (the quality run's rules); NULL: defaults.
ALTER TABLE export_jobs ADD COLUMN settings jsonb;

CREATE INDEX skips_by_post ON skips (post_id, family);
