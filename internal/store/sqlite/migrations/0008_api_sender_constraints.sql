-- 0008: an API's sender-constraint policies and security profile
-- (authz.API.DPoP, DPoPNonce, MTLSBound, Profile). dpop and mtls_bound are
-- 'optional' or 'required' (RFC 9449, RFC 8705 §3); dpop_nonce is 0 or 1
-- (RFC 9449 §8); profile is 'none' or 'fapi2'. Every API from before this
-- migration takes the defaults: proofs and certificates bind a token when
-- they are sent, and no profile applies.
--
-- The defaults let replicas still running a version that does not name
-- these columns insert rows.

ALTER TABLE apis ADD COLUMN dpop TEXT NOT NULL DEFAULT 'optional';
ALTER TABLE apis ADD COLUMN dpop_nonce INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apis ADD COLUMN mtls_bound TEXT NOT NULL DEFAULT 'optional';
ALTER TABLE apis ADD COLUMN profile TEXT NOT NULL DEFAULT 'none';
