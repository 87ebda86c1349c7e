package dpop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// opaqueKey hides the key's type, as a KMS key does.
type opaqueKey struct{ crypto.Signer }

// TestSignerIndependently checks Signer's proofs against RFC 9449 §4.2
// with go-jose directly, not with Verify.
func TestSignerIndependently(t *testing.T) {
	keys(t)
	for _, tt := range []struct {
		name string
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
	}{
		{"ECDSA P-256", ecKey, jose.ES256},
		{"ECDSA P-384", p384Key, jose.ES384},
		{"Ed25519", edKey, jose.EdDSA},
		{"RSA", rsaKey, jose.PS256},
		{"opaque ECDSA P-256", opaqueKey{ecKey}, jose.ES256},
		{"opaque Ed25519", opaqueKey{edKey}, jose.EdDSA},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jti := bytes.Repeat([]byte{0xfb}, 16)
			s, err := NewSigner(tt.key, bytes.NewReader(jti), func() time.Time { return testNow })
			if err != nil {
				t.Fatal(err)
			}
			if s.Alg() != string(tt.alg) {
				t.Errorf("Alg = %s, want %s", s.Alg(), tt.alg)
			}
			proof, err := s.Proof("GET", "https://rs.example.com/meters?page=2#top", "at-1", "n-1")
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{tt.alg})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Protected
			if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
				t.Errorf("typ = %v", h.ExtraHeaders[jose.HeaderType])
			}
			if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
				t.Fatalf("jwk = %+v, want the public key", h.JSONWebKey)
			}
			if h.KeyID != "" {
				t.Errorf("kid = %q: the jwk identifies the key", h.KeyID)
			}
			// The signature is by the key we hold, and the embedded jwk is it.
			payload, err := jws.Verify(tt.key.Public())
			if err != nil {
				t.Fatalf("signature: %v", err)
			}
			pub := jose.JSONWebKey{Key: tt.key.Public()}
			want, _ := pub.Thumbprint(crypto.SHA256)
			got, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
			if !bytes.Equal(got, want) || s.Thumbprint() != base64.RawURLEncoding.EncodeToString(want) {
				t.Error("the jwk or the thumbprint is not of the key")
			}
			var c map[string]any
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Fatal(err)
			}
			ath := sha256.Sum256([]byte("at-1"))
			for k, v := range map[string]any{
				"jti":   base64.RawURLEncoding.EncodeToString(jti),
				"htm":   "GET",
				"htu":   "https://rs.example.com/meters",
				"iat":   float64(testNow.Unix()),
				"ath":   base64.RawURLEncoding.EncodeToString(ath[:]),
				"nonce": "n-1",
			} {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			if len(c) != 6 {
				t.Errorf("claims %v", c)
			}
		})
	}
}

func TestSignerOmitsEmptyClaims(t *testing.T) {
	keys(t)
	s, _ := NewSigner(ecKey, nil, nil)
	proof, err := s.Proof("POST", testURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256})
	var c map[string]any
	json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
	if _, ok := c["ath"]; ok {
		t.Error("ath without an access token")
	}
	if _, ok := c["nonce"]; ok {
		t.Error("nonce without a nonce")
	}
	if jti, _ := c["jti"].(string); len(jti) < 22 {
		t.Errorf("jti %q shorter than 16 bytes", jti)
	}
}

func TestSignerVerifyRoundTrip(t *testing.T) {
	keys(t)
	for _, key := range []crypto.Signer{ecKey, edKey, rsaKey} {
		s, err := NewSigner(key, nil, func() time.Time { return testNow })
		if err != nil {
			t.Fatal(err)
		}
		nonces := NewNonces(make([]byte, 32), time.Minute, func() time.Time { return testNow })
		proof, _ := s.Proof("GET", "https://rs.example.com/meters?x=1", "at-1", nonces.Current())
		p, err := Verify(context.Background(), []string{proof}, VerifyOptions{
			Method: "GET", URL: "https://rs.example.com/meters", Now: testNow,
			AccessToken: "at-1", Nonces: nonces, Replay: &memReplay{},
		})
		if err != nil {
			t.Fatalf("%s: %v", s.Alg(), err)
		}
		if p.JKT != s.Thumbprint() || p.Alg != s.Alg() {
			t.Errorf("%s: proof %+v", s.Alg(), p)
		}
	}
}

func TestSignerProofsDiffer(t *testing.T) {
	keys(t)
	s, _ := NewSigner(edKey, nil, func() time.Time { return testNow })
	a, _ := s.Proof("GET", testURL, "", "")
	b, _ := s.Proof("GET", testURL, "", "")
	if a == b {
		t.Error("two proofs are equal: the jti is not random")
	}
}

func TestNewSignerErrors(t *testing.T) {
	keys(t)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for name, key := range map[string]crypto.Signer{
		"nil":          nil,
		"RSA 1024":     rsa1024,
		"P-521":        p521,
		"unknown type": fakeSigner{},
	} {
		if _, err := NewSigner(key, nil, nil); err == nil {
			t.Errorf("%s: NewSigner succeeded", name)
		}
	}
	s, _ := NewSigner(ecKey, io.LimitReader(rand.Reader, 0), nil)
	if _, err := s.Proof("GET", testURL, "", ""); err == nil {
		t.Error("Proof with an empty random source succeeded")
	}
}

type fakeSigner struct{}

func (fakeSigner) Public() crypto.PublicKey                                  { return "not a key" }
func (fakeSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

var (
	_ crypto.Signer = ed25519.PrivateKey(nil)
	_ crypto.Signer = (*rsa.PrivateKey)(nil)
)
