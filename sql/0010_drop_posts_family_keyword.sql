-- Only a campaign draw reads posts by family (its counts and candidates), and it reads every
-- post of the family: for a family that is a third of the table or more PostgreSQL scans the
-- table with or without this index. It helped only a small family's draw (1,000,000 posts,
-- a family of 3,333: 0.1 s instead of 0.01 s), while every imported post paid for it: without
-- it a bulk import's PostgreSQL time falls from about 4.2 to 2.5 s per million posts.
DROP INDEX IF EXISTS posts_family_keyword;
