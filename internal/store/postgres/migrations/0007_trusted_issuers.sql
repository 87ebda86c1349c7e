-- 0007: workload identity federation. Trusted issuers (authz.TrustedIssuer)
-- are the external issuers whose JWTs federated credentials match; issuer
-- is the key of every lookup (the token endpoint's, by a JWT's iss), so it
-- is unique, compared byte for byte (COLLATE "C", as every text column).
-- jwks is the inline JWKS or SPIFFE bundle as JSON text, kept as given
-- (not jsonb, which would rewrite it), NULL if there is none; '' stands
-- for an absent jwks_uri, trust_domain or bundle_url.

CREATE TABLE trusted_issuers (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    name         text COLLATE "C" NOT NULL,
    kind         text COLLATE "C" NOT NULL,
    issuer       text COLLATE "C" NOT NULL UNIQUE,
    jwks_uri     text COLLATE "C" NOT NULL DEFAULT '',
    jwks         text COLLATE "C",
    trust_domain text COLLATE "C" NOT NULL DEFAULT '',
    bundle_url   text COLLATE "C" NOT NULL DEFAULT '',
    single_use   boolean          NOT NULL DEFAULT false,
    created_at   timestamptz      NOT NULL,
    updated_at   timestamptz      NOT NULL
);

-- The trusted issuer a federated credential names; NULL for the other
-- types and for every credential from before this migration. No cascade:
-- an issuer that a credential names cannot be deleted. The index serves
-- ListFederatedCredentials in its order and the foreign-key check of a
-- delete.
ALTER TABLE credentials ADD COLUMN trusted_issuer_id text COLLATE "C" REFERENCES trusted_issuers (id);
CREATE INDEX credentials_trusted_issuer ON credentials (trusted_issuer_id, client_id, created_at, id);
