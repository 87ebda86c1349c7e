-- 0007: workload identity federation. Trusted issuers (authz.TrustedIssuer)
-- are the external issuers whose JWTs federated credentials match; issuer
-- is the key of every lookup (the token endpoint's, by a JWT's iss), so it
-- is unique. jwks is the inline JWKS or SPIFFE bundle as JSON text, NULL if
-- there is none; "" stands for an absent jwks_uri, trust_domain or
-- bundle_url; single_use is 0 or 1; times are microseconds since the epoch.

CREATE TABLE trusted_issuers (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    issuer       TEXT    NOT NULL UNIQUE,
    jwks_uri     TEXT    NOT NULL DEFAULT '',
    jwks         TEXT,
    trust_domain TEXT    NOT NULL DEFAULT '',
    bundle_url   TEXT    NOT NULL DEFAULT '',
    single_use   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- The trusted issuer a federated credential names; NULL for the other
-- types and for every credential from before this migration. No cascade:
-- an issuer that a credential names cannot be deleted. The index serves
-- ListFederatedCredentials in its order and the foreign-key check of a
-- delete.
ALTER TABLE credentials ADD COLUMN trusted_issuer_id TEXT REFERENCES trusted_issuers (id);
CREATE INDEX credentials_trusted_issuer ON credentials (trusted_issuer_id, client_id, created_at, id);
