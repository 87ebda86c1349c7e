-- 0005: when each deny-list entry was written (or last extended), by the
-- database's clock (clock_timestamp(): every replica's writes are stamped
-- by one clock, whatever the replicas' own clocks say), so that replicas
-- read only the entries written since their last read (ListRevokedSince)
-- instead of the whole deny-list. The default stamps existing entries, and
-- the inserts of replicas still running a version that does not name the
-- column.

ALTER TABLE revoked_tokens ADD COLUMN revoked_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
