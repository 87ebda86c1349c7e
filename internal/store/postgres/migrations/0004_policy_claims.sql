-- 0004: an application's token policy (rate, quotas, mode, allowed source
-- networks) as JSON text, '' for none (the server's default applies); a
-- grant's custom claims as a compact JSON object with sorted members
-- (text, not jsonb, so the bytes signed are the bytes stored), '' for
-- none, and its token lifetime in seconds, 0 for the API's.
--
-- The defaults let replicas still running a version that does not name
-- these columns insert rows.

ALTER TABLE applications ADD COLUMN policy text NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN claims text NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN token_lifetime bigint NOT NULL DEFAULT 0;
