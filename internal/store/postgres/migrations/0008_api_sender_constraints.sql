-- 0008: an API's sender-constraint policies and security profile
-- (authz.API.DPoP, DPoPNonce, MTLSBound, Profile). dpop and mtls_bound are
-- 'optional' or 'required' (RFC 9449, RFC 8705 §3); dpop_nonce is RFC 9449
-- §8's server nonce requirement; profile is 'none' or 'fapi2'. Every API
-- from before this migration takes the defaults: proofs and certificates
-- bind a token when they are sent, and no profile applies.
--
-- The defaults let replicas still running a version that does not name
-- these columns insert rows.

ALTER TABLE apis ADD COLUMN dpop       text COLLATE "C" NOT NULL DEFAULT 'optional';
ALTER TABLE apis ADD COLUMN dpop_nonce boolean          NOT NULL DEFAULT false;
ALTER TABLE apis ADD COLUMN mtls_bound text COLLATE "C" NOT NULL DEFAULT 'optional';
ALTER TABLE apis ADD COLUMN profile    text COLLATE "C" NOT NULL DEFAULT 'none';
