-- Prior labels: labels made elsewhere (the study's own, another tool's export) stored beside
-- live work, append-only, with where each came from. They are never live work: no task, no
-- lease, kind 'imported'. Each source coder is a coder row (so consensus, agreement and
-- exports treat them like anyone else) registered in source_coders, which is how the product
-- tells them apart from people who sign in.

-- A named origin of labels (``--source``): one tool, export or study.
CREATE TABLE label_sources (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The coder rows made for a source's coders (named <source> or <source>.<coder>).
CREATE TABLE source_coders (
    coder_id     bigint PRIMARY KEY REFERENCES coders (id),
    source_id    bigint NOT NULL REFERENCES label_sources (id),
    source_coder text NOT NULL,
    UNIQUE (source_id, source_coder)
);

-- One row per import that stored something: which file (and its hash), format, family, when.
CREATE TABLE label_imports (
    id          bigserial PRIMARY KEY,
    source_id   bigint NOT NULL REFERENCES label_sources (id),
    family      text NOT NULL CHECK (family IN ('place', 'child', 'health')),
    format      text NOT NULL CHECK (format IN ('long', 'wide', 'labelstudio')),
    file        text NOT NULL,
    file_sha256 text NOT NULL,
    summary     jsonb NOT NULL DEFAULT '{}'::jsonb,
    imported_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER label_imports_append_only BEFORE UPDATE OR DELETE ON label_imports
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Each imported label names its import and where in the file it was ("line 12",
-- "lines 4-5", "task 7 annotation 31"); a live label has neither.
ALTER TABLE labels
    ADD COLUMN import_id bigint REFERENCES label_imports (id),
    ADD COLUMN import_location text;

ALTER TABLE labels DROP CONSTRAINT labels_kind_check;
ALTER TABLE labels
    ADD CONSTRAINT labels_kind_check
        CHECK (kind IN ('task', 'qa', 'practice', 'imported')),
    ADD CONSTRAINT labels_imported_provenance
        CHECK ((kind = 'imported') = (import_id IS NOT NULL AND import_location IS NOT NULL)),
    ADD CONSTRAINT labels_imported_not_work CHECK (kind <> 'imported' OR task_id IS NULL);
CREATE INDEX labels_by_import ON labels (import_id) WHERE import_id IS NOT NULL;

-- The view's column list was fixed when it was made; recreate it so it carries the new
-- columns (appended at the end, as CREATE OR REPLACE VIEW requires).
CREATE OR REPLACE VIEW current_labels AS
SELECT DISTINCT ON (post_id, family, coder_id) *
FROM labels
ORDER BY post_id, family, coder_id, revision DESC;
