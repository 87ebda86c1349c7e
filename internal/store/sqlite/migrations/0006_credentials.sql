-- 0006: secretless credentials (below) and the replay store (authz.Replay): one row per used one-time key
-- (a client assertion's jti, scoped by its client), refused again until
-- expires_at (microseconds since the epoch) by the database's clock.
-- Expired rows are reused by UseJTI and removed by PurgeJTIs.

CREATE TABLE used_jtis (
	jti        TEXT NOT NULL PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

-- Applications' secretless credentials (authz.Credential), one table for
-- every type: the type's configuration is a JSON object.
CREATE TABLE credentials (
    id           TEXT    NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    type         TEXT    NOT NULL,
    config       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX credentials_client ON credentials (client_id, created_at, id);
