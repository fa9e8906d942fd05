-- Honest sampling: what each campaign drew from, its filters, its strata, and each sampled
-- post's stratum (inclusion probabilities live in campaign_posts since 0001).

ALTER TABLE campaigns
    ADD COLUMN snapshot jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN filters  jsonb NOT NULL DEFAULT '{}'::jsonb;

ALTER TABLE campaign_posts ADD COLUMN stratum text;

CREATE TABLE campaign_strata (
    campaign_id        bigint NOT NULL REFERENCES campaigns (id),
    stratum            text NOT NULL,
    population         integer NOT NULL CHECK (population >= 0),
    sampled            integer NOT NULL CHECK (sampled >= 0 AND sampled <= population),
    pilot_yield        double precision,
    expected_positives double precision,
    PRIMARY KEY (campaign_id, stratum)
);

-- Design weights for every sampled post: what a labeled-dataset export carries.
CREATE VIEW post_weights AS
SELECT cp.campaign_id, cp.post_id, cp.stratum, cp.inclusion_prob,
       1.0 / cp.inclusion_prob AS weight
FROM campaign_posts cp
WHERE cp.inclusion_prob IS NOT NULL;
