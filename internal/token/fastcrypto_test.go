//go:build fastcrypto

package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-fips/openssl/v2"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestOpenSSLSigns: in the fastcrypto build the active RS256 and PS256
// keys sign through OpenSSL, ES256 through p256Signer (measured faster
// than OpenSSL), EdDSA through Go, and every token
// OpenSSL signs (a hundred per algorithm, so that PSS salts and
// both primes' paths vary) verifies with go-jose's parser, allow-list
// and the published key.
func TestOpenSSLSigns(t *testing.T) {
	if err := backendErr(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.ensure(t, authz.SigningAlgs...)
	want := map[string]bool{authz.RS256: true, authz.PS256: true, authz.ES256: false, authz.EdDSA: false}
	for _, alg := range authz.SigningAlgs {
		t.Run(alg, func(t *testing.T) {
			sk, err := f.keys.signer(alg)
			if err != nil {
				t.Fatal(err)
			}
			if isOpenSSL := isOpenSSLSigner(sk.signer.key); isOpenSSL != want[alg] {
				t.Fatalf("%s signs with %T, want OpenSSL: %t", alg, sk.signer.key, want[alg])
			}
			if direct := sk.signer.p256 != nil; direct != (alg == authz.ES256) {
				t.Fatalf("%s through p256Signer: %t", alg, direct)
			}
			var public jose.JSONWebKey
			if err := public.UnmarshalJSON(mustJWK(t, f.keys, sk.meta.KID)); err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				tok, c, err := f.issuer.Issue(Request{ClientID: "client-1", Audience: "https://api.example.com",
					Scopes: []string{"read:things"}, Lifetime: time.Minute, Alg: alg})
				if err != nil {
					t.Fatal(err)
				}
				jws, err := jose.ParseSignedCompact(tok, allowedAlgs)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := jws.Verify(public.Key); err != nil {
					t.Fatalf("token %d: go-jose does not verify OpenSSL's %s signature: %v", i, alg, err)
				}
				if got, err := f.issuer.Verify(tok); err != nil || got.JTI != c.JTI {
					t.Fatalf("token %d: Verify = %v, %v", i, got, err)
				}
			}
		})
	}
}

// TestOpenSSLRSARefuses: the OpenSSL signer signs SHA-256 digests only,
// with PKCS #1 v1.5 or PSS with the hash's salt length, and refuses a key
// of more than two primes.
func TestOpenSSLRSARefuses(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newOpenSSLRSA(k)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	for _, opts := range []crypto.SignerOpts{crypto.SHA384, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}} {
		if _, err := s.Sign(nil, d[:], opts); !errors.Is(err, errOpenSSLOpts) {
			t.Errorf("Sign with %#v: %v", opts, err)
		}
	}
	three, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 2048) //nolint:staticcheck // the refusal is the point
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newOpenSSLRSA(three); err == nil || !strings.Contains(err.Error(), "3 primes") {
		t.Errorf("three-prime key: %v", err)
	}
	if _, err := backendSigner(authz.RS256, mustEd25519(t)); err == nil {
		t.Error("an Ed25519 key as RS256 was accepted")
	}
}

func mustEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openSSLEd25519 signs EdDSA with OpenSSL, for BenchmarkSignBackend
// alone: it measured slower than crypto/ed25519, so the server does not
// use it.
type openSSLEd25519 struct {
	pub  ed25519.PublicKey
	priv *openssl.PrivateKeyEd25519
}

func (k *openSSLEd25519) Public() crypto.PublicKey { return k.pub }
func (k *openSSLEd25519) Sign(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	return openssl.SignEd25519(k.priv, msg)
}

// openSSLSigner returns an OpenSSL signer of priv, any of the server's
// key types.
func openSSLSigner(t testing.TB, priv crypto.Signer) crypto.Signer {
	t.Helper()
	var s crypto.Signer
	var err error
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		s, err = newOpenSSLRSA(k)
	case *ecdsa.PrivateKey:
		s, err = newOpenSSLECDSA(k)
	case ed25519.PrivateKey:
		var p *openssl.PrivateKeyEd25519
		p, err = openssl.NewPrivateKeyEd25519FromSeed(k.Seed())
		s = &openSSLEd25519{pub: k.Public().(ed25519.PublicKey), priv: p}
	default:
		t.Fatalf("key type %T", priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenSSLSignerCrossCheck: the OpenSSL signers of every algorithm,
// the ones the benchmark measures too, make JWS that go-jose verifies.
func TestOpenSSLSignerCrossCheck(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.SigningAlgs...)
	for _, alg := range authz.SigningAlgs {
		sk, err := f.keys.signer(alg)
		if err != nil {
			t.Fatal(err)
		}
		k, err := newJWSKey(alg, sk.meta.KID, openSSLSigner(t, f.privateKey(t, sk.meta.KID)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			input := append([]byte(k.header), "eyJzdWIiOiJ4In0"...)
			sig, err := k.appendSignature(nil, rand.Reader, input)
			if err != nil {
				t.Fatal(err)
			}
			compact := string(input) + "." + base64.RawURLEncoding.EncodeToString(sig)
			jws, err := jose.ParseSignedCompact(compact, allowedAlgs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(sk.public.Key); err != nil {
				t.Fatalf("%s signature %d: %v", alg, i, err)
			}
		}
	}
}

// BenchmarkSignBackend measures one JWS signature (SHA-256 included) per
// algorithm with Go's crypto and with OpenSSL, side by side in one run:
// the figures that chose OpenSSL for RS256 and PS256 only. For ES256 "go"
// is p256Signer, "go-stdlib" crypto/ecdsa through crypto.Signer.
func BenchmarkSignBackend(b *testing.B) {
	f := newFixture(b)
	f.ensure(b, authz.SigningAlgs...)
	input := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbGllbnQtMSJ9")
	for _, alg := range authz.SigningAlgs {
		sk, err := f.keys.signer(alg)
		if err != nil {
			b.Fatal(err)
		}
		priv := f.privateKey(b, sk.meta.KID)
		backends := []struct {
			name string
			key  crypto.Signer
		}{{"go", priv}, {"openssl", openSSLSigner(b, priv)}}
		if alg == authz.ES256 {
			// "go" is p256Signer; "go-stdlib" crypto/ecdsa's Sign and ASN.1.
			backends = append(backends, struct {
				name string
				key  crypto.Signer
			}{"go-stdlib", stdlibSigner{priv}})
		}
		for _, backend := range backends {
			k, err := newJWSKey(alg, sk.meta.KID, backend.key)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(alg+"/"+backend.name, func(b *testing.B) {
				b.ReportAllocs()
				buf := make([]byte, 0, 1024)
				for b.Loop() {
					if _, err := k.appendSignature(buf[:0], rand.Reader, input); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// stdlibSigner hides its key's type from newJWSKey, which then signs
// through crypto.Signer (crypto/ecdsa for ES256) instead of p256Signer.
type stdlibSigner struct{ crypto.Signer }

func isOpenSSLSigner(s crypto.Signer) bool {
	switch s.(type) {
	case *openSSLRSA, *openSSLECDSA:
		return true
	}
	return false
}
