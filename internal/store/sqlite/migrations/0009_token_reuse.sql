-- 0009: opt-in token reuse (authz.Application.TokenReuse,
-- authz.API.TokenReuse; docs/token-reuse.md). token_reuse_min_remaining is
-- TokenReuse.MinRemaining in whole seconds; 0 is off. Every application
-- and API from before this migration has it off.
--
-- The defaults let replicas still running a version that does not name
-- these columns insert rows.

ALTER TABLE applications ADD COLUMN token_reuse_min_remaining INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apis ADD COLUMN token_reuse_min_remaining INTEGER NOT NULL DEFAULT 0;
