-- Core labeling schema: coders, posts, campaigns, tasks (one row per label slot), gold posts,
-- labels (append-only), skips, and the audit trail of manager actions.

CREATE TABLE coders (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
    role          text NOT NULL DEFAULT 'coder' CHECK (role IN ('coder', 'manager')),
    status        text NOT NULL DEFAULT 'trainee' CHECK (status IN ('trainee', 'certified', 'revoked')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    status_changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posts (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    text        text NOT NULL,
    image_key   text,
    keyword     text,
    family      text CHECK (family IN ('place', 'child', 'health')),
    author      text,
    created_at  timestamptz,
    text_hash   text NOT NULL,
    extra       jsonb NOT NULL DEFAULT '{}'::jsonb,
    imported_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_text_hash ON posts (text_hash);
CREATE INDEX posts_family_keyword ON posts (family, keyword);

CREATE TABLE campaigns (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    family          text NOT NULL CHECK (family IN ('place', 'child', 'health')),
    labels_per_post integer NOT NULL DEFAULT 1 CHECK (labels_per_post BETWEEN 1 AND 20),
    strategy        text NOT NULL DEFAULT 'manual',
    params          jsonb NOT NULL DEFAULT '{}'::jsonb,
    seed            bigint,
    budget          integer,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Posts sampled into a campaign, with the probability the sampling design gave them.
CREATE TABLE campaign_posts (
    campaign_id      bigint NOT NULL REFERENCES campaigns (id),
    post_id          text NOT NULL REFERENCES posts (id),
    inclusion_prob   double precision CHECK (inclusion_prob > 0 AND inclusion_prob <= 1),
    PRIMARY KEY (campaign_id, post_id)
);

-- One row per label wanted: a post asking for k labels has k rows (slots). A slot is open,
-- leased to one coder until lease_expires_at, or done. An expired lease is free to take again.
CREATE TABLE tasks (
    id               bigserial PRIMARY KEY,
    campaign_id      bigint NOT NULL REFERENCES campaigns (id),
    post_id          text NOT NULL REFERENCES posts (id),
    family           text NOT NULL CHECK (family IN ('place', 'child', 'health')),
    slot             integer NOT NULL CHECK (slot >= 1),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'leased', 'done')),
    coder_id         bigint REFERENCES coders (id),
    leased_at        timestamptz,
    lease_expires_at timestamptz,
    done_at          timestamptz,
    UNIQUE (campaign_id, post_id, slot),
    CHECK (status = 'open' OR coder_id IS NOT NULL)
);
CREATE INDEX tasks_available ON tasks (family, id) WHERE status <> 'done';
CREATE INDEX tasks_by_coder ON tasks (coder_id, family, status);
CREATE INDEX tasks_by_post ON tasks (post_id, coder_id);

-- Posts with known answers: 'practice' ones train new coders, 'qa' ones are mixed into real work.
CREATE TABLE gold_posts (
    post_id    text NOT NULL REFERENCES posts (id),
    family     text NOT NULL CHECK (family IN ('place', 'child', 'health')),
    purpose    text NOT NULL CHECK (purpose IN ('practice', 'qa')),
    answers    jsonb NOT NULL,
    rationale  text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, family)
);

-- A gold or practice post handed to a coder; the label answering it must match a lease here.
CREATE TABLE gold_leases (
    coder_id         bigint NOT NULL REFERENCES coders (id),
    post_id          text NOT NULL,
    family           text NOT NULL,
    purpose          text NOT NULL CHECK (purpose IN ('practice', 'qa')),
    leased_at        timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz NOT NULL,
    done_at          timestamptz,
    PRIMARY KEY (coder_id, post_id, family),
    FOREIGN KEY (post_id, family) REFERENCES gold_posts (post_id, family)
);

-- Append-only: a revision adds a row with the next revision number; nothing is overwritten.
CREATE TABLE labels (
    id              bigserial PRIMARY KEY,
    submission_id   uuid NOT NULL UNIQUE,
    post_id         text NOT NULL REFERENCES posts (id),
    family          text NOT NULL CHECK (family IN ('place', 'child', 'health')),
    coder_id        bigint NOT NULL REFERENCES coders (id),
    revision        integer NOT NULL CHECK (revision >= 1),
    kind            text NOT NULL CHECK (kind IN ('task', 'qa', 'practice')),
    task_id         bigint REFERENCES tasks (id),
    answers         jsonb NOT NULL,
    coder_status    text NOT NULL,
    seconds_spent   real CHECK (seconds_spent IS NULL OR seconds_spent >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, family, coder_id, revision)
);
CREATE INDEX labels_by_coder ON labels (coder_id, created_at DESC);

CREATE VIEW current_labels AS
SELECT DISTINCT ON (post_id, family, coder_id) *
FROM labels
ORDER BY post_id, family, coder_id, revision DESC;

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE TRIGGER labels_append_only BEFORE UPDATE OR DELETE ON labels
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

CREATE TABLE skips (
    id         bigserial PRIMARY KEY,
    post_id    text NOT NULL REFERENCES posts (id),
    family     text NOT NULL,
    coder_id   bigint NOT NULL REFERENCES coders (id),
    reason     text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX skips_by_coder ON skips (coder_id, post_id);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    actor_id   bigint REFERENCES coders (id),
    action     text NOT NULL,
    target     text,
    details    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
