-- 0001: the initial schema.
--
-- Times are timestamptz (microseconds, UTC); NULL stands for the zero
-- time.Time of optional fields. Every text column uses the "C" collation:
-- orderings and list cursors compare bytes, whatever the database's locale.

CREATE TABLE apis (
    id             text COLLATE "C" NOT NULL PRIMARY KEY,
    identifier     text COLLATE "C" NOT NULL UNIQUE,
    name           text COLLATE "C" NOT NULL,
    scopes         jsonb            NOT NULL CHECK (jsonb_typeof(scopes) = 'array'), -- [{"value","description"}]
    token_lifetime bigint           NOT NULL, -- seconds
    signing_alg    text COLLATE "C" NOT NULL,
    system         boolean          NOT NULL,
    created_at     timestamptz      NOT NULL,
    updated_at     timestamptz      NOT NULL
);
CREATE INDEX apis_created ON apis (created_at, id);

CREATE TABLE applications (
    client_id         text COLLATE "C" NOT NULL PRIMARY KEY,
    name              text COLLATE "C" NOT NULL,
    description       text COLLATE "C" NOT NULL,
    disabled          boolean          NOT NULL,
    can_introspect    boolean          NOT NULL,
    tokens_not_before timestamptz,
    created_at        timestamptz      NOT NULL,
    updated_at        timestamptz      NOT NULL
);
CREATE INDEX applications_created ON applications (created_at, client_id);

CREATE TABLE client_secrets (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    client_id    text COLLATE "C" NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    hash         bytea            NOT NULL,
    prefix       text COLLATE "C" NOT NULL,
    created_at   timestamptz      NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX client_secrets_client ON client_secrets (client_id, created_at, id);

CREATE TABLE grants (
    id         text COLLATE "C"   NOT NULL PRIMARY KEY,
    client_id  text COLLATE "C"   NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    api_id     text COLLATE "C"   NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    scopes     text[] COLLATE "C" NOT NULL, -- scope values, in the order granted
    created_at timestamptz        NOT NULL,
    updated_at timestamptz        NOT NULL,
    UNIQUE (client_id, api_id)
);
CREATE INDEX grants_api ON grants (api_id);

CREATE TABLE signing_keys (
    kid          text COLLATE "C" NOT NULL PRIMARY KEY,
    alg          text COLLATE "C" NOT NULL,
    state        text COLLATE "C" NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    private      bytea            NOT NULL, -- sealed PKCS #8 DER
    created_at   timestamptz      NOT NULL,
    activated_at timestamptz,
    retired_at   timestamptz,
    remove_after timestamptz
);

CREATE TABLE settings (
    name  text COLLATE "C" NOT NULL PRIMARY KEY,
    value bytea            NOT NULL
);

CREATE TABLE revoked_tokens (
    jti        text COLLATE "C" NOT NULL PRIMARY KEY,
    expires_at timestamptz      NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

CREATE TABLE audit_events (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    time        timestamptz      NOT NULL,
    actor       text COLLATE "C" NOT NULL,
    action      text COLLATE "C" NOT NULL,
    target      text COLLATE "C" NOT NULL,
    remote_addr text COLLATE "C" NOT NULL,
    details     text COLLATE "C" NOT NULL -- JSON object, or '' for none
);
CREATE INDEX audit_events_time ON audit_events (time, id);

-- Counters of issued access tokens per application, audience and UTC hour.
-- No foreign key: the counts outlive deleted applications and APIs.
CREATE TABLE token_issuance (
    client_id      text COLLATE "C" NOT NULL,
    audience       text COLLATE "C" NOT NULL,
    hour           timestamptz      NOT NULL,
    count          bigint           NOT NULL,
    last_issued_at timestamptz      NOT NULL,
    PRIMARY KEY (client_id, audience, hour)
);
CREATE INDEX token_issuance_hour ON token_issuance (hour);
