//go:build !fastcrypto

package token

import "crypto"

// Backend names the code that signs access tokens, as `m2mauth version`
// shows it: Go for every algorithm in the default build, ES256 through the
// direct P-256 signer (p256Signer: filippo.io/nistec and filippo.io/bigmod),
// EdDSA through the direct Ed25519 signer (ed25519Signer:
// filippo.io/edwards25519).
func Backend() string {
	return "Go crypto (the pure Go build; ES256 with filippo.io/nistec + bigmod, direct; EdDSA with filippo.io/edwards25519, direct; -tags fastcrypto signs RS256 and PS256 with OpenSSL)"
}

// backendErr returns nil: the default build needs no library.
func backendErr() error { return nil }

// backendSigner returns priv: the default build signs with Go's crypto.
func backendSigner(_ string, priv crypto.Signer) (crypto.Signer, error) { return priv, nil }

// signerOwnsRandomness reports whether alg's signer draws randomness of its
// own rather than from the issuer's injected source: none does here.
func signerOwnsRandomness(string) bool { return false }
