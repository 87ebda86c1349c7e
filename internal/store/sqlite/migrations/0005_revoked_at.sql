-- 0005: when each deny-list entry was written (or last extended), in
-- microseconds since the epoch by the database's clock, so that replicas
-- read only the entries written since their last read
-- (ListRevokedSince) instead of the whole deny-list. Entries from before
-- this migration have 0: a full read (at start) has them.

ALTER TABLE revoked_tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
