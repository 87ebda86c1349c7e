-- 0006: secretless credentials (below) and the replay store (authz.Replay): one row per used one-time key
-- (a client assertion's jti, scoped by its client), refused again until
-- expires_at by the database's clock. One table with a unique key, so it
-- holds across replicas; expired rows are reused by UseJTI and removed by
-- PurgeJTIs under the cluster lease.

CREATE TABLE used_jtis (
	jti        text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

-- Applications' secretless credentials (authz.Credential), one table for
-- every type: the type's configuration is a JSON object.
CREATE TABLE credentials (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    client_id    text COLLATE "C" NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    type         text COLLATE "C" NOT NULL,
    config       text             NOT NULL,
    created_at   timestamptz      NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX credentials_client ON credentials (client_id, created_at, id);
