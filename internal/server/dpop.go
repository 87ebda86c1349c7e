package server

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// dpopNonceKeyInfo is the HKDF info that derives the DPoP nonce key from
// the master key: a fixed label, so that every replica holding the master
// key derives the same key and accepts the nonces the others issue (RFC
// 9449 §8) without sharing state, and no other use of the master key
// yields it.
const dpopNonceKeyInfo = "m2mauth dpop nonce key v1"

// dpopNonceKey derives the 32-byte key of the token endpoint's DPoP
// nonces (dpop.Nonces) from the master key, with HKDF-SHA-256 (RFC 5869).
// It follows the primary master key: during a master-key rotation the
// replicas still on the old key refuse the new key's nonces (and the
// other way round) with use_dpop_nonce, which a client answers by
// retrying once with the nonce it was sent.
func dpopNonceKey(masterKey []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, masterKey, nil, dpopNonceKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the DPoP nonce key: %w", err)
	}
	return k, nil
}
