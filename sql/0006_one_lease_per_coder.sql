-- One live lease per coder and family, enforced by the database.
--
-- A coder holds at most one work lease per family (a task slot with status 'leased' or an
-- undone QA gold lease) and at most one undone practice lease per family. Expired leases still
-- count until released: the leasing transaction frees the coder's own expired leases first
-- (trainset.store.labeling.LabelingStore.free_expired_leases). Leasing code serialises on
-- lock_coder_leases(coder, family); the indexes and triggers below hold whatever code path.

-- Keep writers out while existing data is brought into line, so the indexes always build.
LOCK TABLE tasks, gold_leases IN SHARE ROW EXCLUSIVE MODE;

-- Leases a coder may no longer hold under the status rules (status changes now release them).
UPDATE tasks t SET status = 'open', coder_id = NULL, leased_at = NULL, lease_expires_at = NULL
FROM coders c
WHERE t.coder_id = c.id AND t.status = 'leased' AND c.status <> 'certified';

DELETE FROM gold_leases g USING coders c
WHERE g.coder_id = c.id AND g.done_at IS NULL
  AND (c.status = 'revoked' OR (c.status <> 'certified' AND g.purpose = 'qa'));

-- Extra work leases (task slots and QA gold together): keep each coder's newest per family.
WITH work AS (
    SELECT 'task' AS source, t.id AS task_id, NULL::text AS post_id, t.coder_id, t.family,
           t.leased_at
    FROM tasks t WHERE t.status = 'leased'
    UNION ALL
    SELECT 'qa', NULL::bigint, g.post_id, g.coder_id, g.family, g.leased_at
    FROM gold_leases g WHERE g.purpose = 'qa' AND g.done_at IS NULL
),
ranked AS (
    SELECT w.*, row_number() OVER (
        PARTITION BY w.coder_id, w.family
        ORDER BY w.leased_at DESC NULLS LAST, w.source DESC, w.task_id DESC NULLS LAST,
                 w.post_id DESC NULLS LAST) AS rank
    FROM work w
),
freed_tasks AS (
    UPDATE tasks t SET status = 'open', coder_id = NULL, leased_at = NULL,
                       lease_expires_at = NULL
    FROM ranked r
    WHERE r.rank > 1 AND r.source = 'task' AND t.id = r.task_id
    RETURNING t.id
)
DELETE FROM gold_leases g USING ranked r
WHERE r.rank > 1 AND r.source = 'qa' AND g.coder_id = r.coder_id AND g.post_id = r.post_id
  AND g.family = r.family AND g.done_at IS NULL;

-- Extra practice leases: keep each coder's newest per family.
DELETE FROM gold_leases g
WHERE g.purpose = 'practice' AND g.done_at IS NULL
  AND EXISTS (SELECT 1 FROM gold_leases n
              WHERE n.coder_id = g.coder_id AND n.family = g.family
                AND n.purpose = 'practice' AND n.done_at IS NULL
                AND (n.leased_at, n.post_id) > (g.leased_at, g.post_id));

CREATE UNIQUE INDEX tasks_one_lease_per_coder ON tasks (coder_id, family)
    WHERE status = 'leased';
CREATE UNIQUE INDEX gold_leases_one_per_coder ON gold_leases (coder_id, family, purpose)
    WHERE done_at IS NULL;

-- The lock every leasing transaction takes first, so one coder's concurrent requests in a
-- family queue up and the later one finds the lease the earlier one made.
CREATE FUNCTION lock_coder_leases(p_coder bigint, p_family text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(720135502, hashtext(p_coder::text || '/' || p_family));
$$;

-- A task lease and a QA gold lease live in two tables, so no index can keep them apart: this
-- trigger does. It takes the coder's lock first, and a VOLATILE function's query sees a fresh
-- snapshot at READ COMMITTED, so a lease committed by a concurrent transaction is seen.
CREATE FUNCTION one_work_lease() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held boolean;
BEGIN
    PERFORM lock_coder_leases(NEW.coder_id, NEW.family);
    IF TG_TABLE_NAME = 'tasks' THEN
        SELECT EXISTS (SELECT 1 FROM gold_leases g
                       WHERE g.coder_id = NEW.coder_id AND g.family = NEW.family
                         AND g.purpose = 'qa' AND g.done_at IS NULL) INTO held;
    ELSE
        SELECT EXISTS (SELECT 1 FROM tasks t
                       WHERE t.coder_id = NEW.coder_id AND t.family = NEW.family
                         AND t.status = 'leased') INTO held;
    END IF;
    IF held THEN
        RAISE EXCEPTION 'coder % already holds a work lease in family %', NEW.coder_id,
            NEW.family
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'one_work_lease_per_coder';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_one_work_lease AFTER INSERT OR UPDATE OF status, coder_id ON tasks
    FOR EACH ROW WHEN (NEW.status = 'leased') EXECUTE FUNCTION one_work_lease();
CREATE TRIGGER gold_leases_one_work_lease AFTER INSERT OR UPDATE ON gold_leases
    FOR EACH ROW WHEN (NEW.purpose = 'qa' AND NEW.done_at IS NULL)
    EXECUTE FUNCTION one_work_lease();
