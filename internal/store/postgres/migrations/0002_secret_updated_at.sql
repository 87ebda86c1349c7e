-- 0002: client secrets get updated_at, the last change of their own
-- settings (their expiry; a use moves last_used_at only). No earlier change
-- is known, so existing secrets take their created_at. No default: every
-- insert names the column.

ALTER TABLE client_secrets ADD COLUMN updated_at timestamptz;
UPDATE client_secrets SET updated_at = created_at;
ALTER TABLE client_secrets ALTER COLUMN updated_at SET NOT NULL;
