//go:build fastcrypto

package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/golang-fips/openssl/v2"
	"github.com/golang-fips/openssl/v2/bbig"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// libcrypto is the shared library the fastcrypto build loads with dlopen
// at startup: OpenSSL 3's ABI, which stays stable within the major version.
const libcrypto = "libcrypto.so.3"

// backendInitErr is why libcrypto could not be loaded, nil if it was.
// Loading it once, at package initialisation, makes every later call
// cheap; Keys.Load reports the failure, so the server refuses to start.
var backendInitErr = initOpenSSL()

func initOpenSSL() error {
	if err := openssl.Init(libcrypto); err != nil {
		return fmt.Errorf("token: this is a fastcrypto build (-tags fastcrypto), which signs RS256 and PS256 tokens with OpenSSL, "+
			"and it cannot load %s (install libssl3, or run the default build): %w", libcrypto, err)
	}
	return nil
}

// backendErr returns the error of loading libcrypto, nil once it is loaded.
func backendErr() error { return backendInitErr }

// Backend names the code that signs access tokens, as `m2mauth version`
// shows it: the OpenSSL library loaded for RS256 and PS256, the direct
// P-256 signer (p256Signer: filippo.io/nistec and filippo.io/bigmod) for
// ES256, and the direct Ed25519 signer (ed25519Signer) for EdDSA; OpenSSL
// measured slower for both
// (BenchmarkSignBackend; docs/benchmarks.md, "RS256 and fastcrypto").
func Backend() string {
	if backendInitErr != nil {
		return "fastcrypto build, OpenSSL not loaded: " + backendInitErr.Error()
	}
	v := openssl.VersionText()
	if openssl.FIPS() {
		v += ", FIPS mode"
	}
	return "RS256 and PS256 with " + v + " (" + libcrypto + "); ES256 with Go (filippo.io/nistec + bigmod, direct); EdDSA with Go (filippo.io/edwards25519, direct)"
}

// backendSigner returns the signer of the active key priv for alg: an
// OpenSSL key for RS256 and PS256, priv itself for ES256 (which newJWSKey
// signs with p256Signer) and EdDSA (ed25519Signer). Returns
// the load error if libcrypto is missing, or OpenSSL's if it refuses the
// key.
func backendSigner(alg string, priv crypto.Signer) (crypto.Signer, error) {
	if err := backendErr(); err != nil {
		return nil, err
	}
	switch alg {
	case authz.RS256, authz.PS256:
		k, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("token: %s wants an RSA key, not %T", alg, priv)
		}
		return newOpenSSLRSA(k)
	}
	// ES256 signs with p256Signer (about 15.6 µs and 10 allocations against
	// OpenSSL's 24 µs and 4), EdDSA with ed25519Signer: OpenSSL measured
	// slower for both (BenchmarkSignBackend). newOpenSSLECDSA stays for
	// that benchmark.
	return priv, nil
}

// openSSLRSA is an RSA private key held by OpenSSL. Its Public is the Go
// public key, which newJWSKey and the JWKS read.
type openSSLRSA struct {
	pub  *rsa.PublicKey
	priv *openssl.PrivateKeyRSA
}

func newOpenSSLRSA(k *rsa.PrivateKey) (*openSSLRSA, error) {
	if len(k.Primes) != 2 {
		return nil, fmt.Errorf("token: OpenSSL signs with two-prime RSA keys, this one has %d primes", len(k.Primes))
	}
	k.Precompute()
	priv, err := openssl.NewPrivateKeyRSA(
		bbig.Enc(k.N), bbig.Enc(bigE(k.E)), bbig.Enc(k.D),
		bbig.Enc(k.Primes[0]), bbig.Enc(k.Primes[1]),
		bbig.Enc(k.Precomputed.Dp), bbig.Enc(k.Precomputed.Dq), bbig.Enc(k.Precomputed.Qinv))
	if err != nil {
		return nil, fmt.Errorf("token: OpenSSL refuses the RSA key: %w", err)
	}
	return &openSSLRSA{pub: &k.PublicKey, priv: priv}, nil
}

func (k *openSSLRSA) Public() crypto.PublicKey { return k.pub }

var errOpenSSLOpts = errors.New("token: OpenSSL signs SHA-256 digests only")

// Sign signs the SHA-256 digest with PKCS #1 v1.5 (RS256, RFC 7518 §3.3)
// or, for *rsa.PSSOptions, PSS with a salt as long as the hash (PS256,
// §3.5). OpenSSL draws the PSS salt from its own DRBG, so r is not read.
func (k *openSSLRSA) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, errOpenSSLOpts
	}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		if pss.SaltLength != rsa.PSSSaltLengthEqualsHash {
			return nil, errOpenSSLOpts
		}
		return openssl.SignRSAPSS(k.priv, crypto.SHA256, digest, rsa.PSSSaltLengthEqualsHash)
	}
	return openssl.SignRSAPKCS1v15(k.priv, crypto.SHA256, digest)
}

// signerOwnsRandomness reports whether alg's signer draws randomness of its
// own rather than from the issuer's injected source: PS256's salt, in
// this build.
func signerOwnsRandomness(alg string) bool { return alg == authz.PS256 }

// bigE is the public exponent as a big.Int, as OpenSSL takes it.
func bigE(e int) *big.Int { return big.NewInt(int64(e)) }

// openSSLECDSA is a P-256 private key held by OpenSSL. Its Sign returns
// ASN.1 DER, as crypto/ecdsa's does, which the JWS turns into r||s. The
// server does not sign with it (p256Signer measured faster); it is the
// "openssl" case of BenchmarkSignBackend.
type openSSLECDSA struct {
	pub  *ecdsa.PublicKey
	priv *openssl.PrivateKeyECDSA
}

func newOpenSSLECDSA(k *ecdsa.PrivateKey) (*openSSLECDSA, error) {
	if k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token: ES256 wants a P-256 key, not %s", k.Curve.Params().Name)
	}
	priv, err := openssl.NewPrivateKeyECDSA("P-256", bbig.Enc(k.X), bbig.Enc(k.Y), bbig.Enc(k.D))
	if err != nil {
		return nil, fmt.Errorf("token: OpenSSL refuses the ECDSA key: %w", err)
	}
	return &openSSLECDSA{pub: &k.PublicKey, priv: priv}, nil
}

func (k *openSSLECDSA) Public() crypto.PublicKey { return k.pub }

// Sign signs the SHA-256 digest (ES256, RFC 7518 §3.4); OpenSSL draws the
// nonce from its own DRBG, so r is not read.
func (k *openSSLECDSA) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, errOpenSSLOpts
	}
	return openssl.SignMarshalECDSA(k.priv, digest)
}
