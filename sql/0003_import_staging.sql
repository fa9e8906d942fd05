-- Bulk import: batches are COPied into this shared, unlogged staging table by one connection
-- while another merges the previous batch into posts. Rows are removed as they are merged.
CREATE UNLOGGED TABLE import_staging (
    import_id  uuid NOT NULL,
    batch      integer NOT NULL,
    seq        integer NOT NULL,
    id         text,
    text       text,
    image_key  text,
    keyword    text,
    family     text,
    author     text,
    created_at timestamptz,
    text_hash  text,
    extra      jsonb
);
CREATE INDEX import_staging_batch ON import_staging (import_id, batch);

-- Nothing looks posts up by text hash (duplicate filters group hashes in memory), and
-- maintaining a random-order index costs every bulk import dearly.
DROP INDEX posts_text_hash;
