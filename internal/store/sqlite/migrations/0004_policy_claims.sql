-- 0004: an application's token policy (rate, quotas, mode, allowed source
-- networks) as JSON, '' for none (the server's default applies); a
-- grant's custom claims as a compact JSON object with sorted members, ''
-- for none, and its token lifetime in seconds, 0 for the API's.
--
-- The defaults let replicas still running a version that does not name
-- these columns insert rows.

ALTER TABLE applications ADD COLUMN policy TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN claims TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN token_lifetime INTEGER NOT NULL DEFAULT 0;
