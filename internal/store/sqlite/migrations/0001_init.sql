-- 0001: the initial schema.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL stands for
-- the zero time.Time of optional fields. Scope lists are JSON text. Booleans
-- are INTEGER 0/1.

CREATE TABLE apis (
    id             TEXT    NOT NULL PRIMARY KEY,
    identifier     TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    scopes         TEXT    NOT NULL, -- JSON array of {"value","description"}
    token_lifetime INTEGER NOT NULL, -- seconds
    signing_alg    TEXT    NOT NULL,
    system         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX apis_created ON apis (created_at, id);

CREATE TABLE applications (
    client_id         TEXT    NOT NULL PRIMARY KEY,
    name              TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    disabled          INTEGER NOT NULL,
    can_introspect    INTEGER NOT NULL,
    tokens_not_before INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX applications_created ON applications (created_at, client_id);

CREATE TABLE client_secrets (
    id           TEXT    NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    hash         BLOB    NOT NULL,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX client_secrets_client ON client_secrets (client_id, created_at, id);

CREATE TABLE grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    api_id     TEXT    NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL, -- JSON array of scope values
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (client_id, api_id)
);
CREATE INDEX grants_api ON grants (api_id);

CREATE TABLE signing_keys (
    kid          TEXT    NOT NULL PRIMARY KEY,
    alg          TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    private      BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER,
    remove_after INTEGER
);

CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE revoked_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

CREATE TABLE audit_events (
    id          TEXT    NOT NULL PRIMARY KEY,
    time        INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    remote_addr TEXT    NOT NULL,
    details     TEXT    NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time, id);

-- Counters of issued access tokens per application, audience and UTC hour.
-- No foreign key: the counts outlive deleted applications and APIs.
CREATE TABLE token_issuance (
    client_id      TEXT    NOT NULL,
    audience       TEXT    NOT NULL,
    hour           INTEGER NOT NULL,
    count          INTEGER NOT NULL,
    last_issued_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, audience, hour)
);
CREATE INDEX token_issuance_hour ON token_issuance (hour);
