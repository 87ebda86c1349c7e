package rs_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/rs"
)

// audience is the API identifier the test tokens are for.
const audience = "https://api.example.com/"

// clock is an injectable clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testIssuer is a tiny authorization server on a loopback port: RFC 8414
// discovery and a JWKS, with keys the test adds and tokens it signs.
type testIssuer struct {
	t     testing.TB
	srv   *httptest.Server
	URL   string
	clock *clock

	mu        sync.Mutex
	private   map[string]jose.JSONWebKey // by kid, for signing
	published []jose.JSONWebKey          // public keys served in the JWKS
	maxAge    int                        // Cache-Control max-age of the JWKS, seconds

	jwksHits atomic.Int64
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	iss := &testIssuer{t: t, clock: newClock(), private: map[string]jose.JSONWebKey{}, maxAge: 300}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", iss.metadata)
	mux.HandleFunc("GET /jwks.json", iss.jwks)
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.URL = iss.srv.URL
	return iss
}

func (iss *testIssuer) metadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"issuer":   iss.URL,
		"jwks_uri": iss.URL + "/jwks.json",
	})
}

func (iss *testIssuer) jwks(w http.ResponseWriter, _ *http.Request) {
	iss.jwksHits.Add(1)
	iss.mu.Lock()
	set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), iss.published...)}
	maxAge := iss.maxAge
	iss.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", maxAge))
	_ = json.NewEncoder(w).Encode(set)
}

// addKey generates a key for alg, publishes its public half under kid in the
// JWKS and returns the private key.
func (iss *testIssuer) addKey(kid, alg string) crypto.Signer {
	iss.t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		iss.t.Fatalf("addKey: no generator for %s", alg)
	}
	if err != nil {
		iss.t.Fatal(err)
	}
	iss.publish(kid, alg, priv)
	return priv
}

// publish adds priv's public key to the JWKS as kid with alg.
func (iss *testIssuer) publish(kid, alg string, priv crypto.Signer) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.private[kid] = jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: alg, Use: "sig"}
	iss.published = append(iss.published, jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
}

// unpublish removes kid from the JWKS.
func (iss *testIssuer) unpublish(kid string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	var keep []jose.JSONWebKey
	for _, k := range iss.published {
		if k.KeyID != kid {
			keep = append(keep, k)
		}
	}
	iss.published = keep
}

// claims returns a valid claims set: issued now, valid for an hour.
func (iss *testIssuer) claims(scope string) map[string]any {
	now := iss.clock.Now()
	c := map[string]any{
		"iss":       iss.URL,
		"sub":       "app_123",
		"aud":       audience,
		"client_id": "app_123",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "tok_1",
	}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}

// token signs claims with the private key kid. alg is the header's alg and
// may differ from the key's; typ is the header's typ ("" for none).
func (iss *testIssuer) token(kid, alg, typ string, claims map[string]any) string {
	iss.t.Helper()
	iss.mu.Lock()
	key, ok := iss.private[kid]
	iss.mu.Unlock()
	if !ok {
		iss.t.Fatalf("token: no private key %q", kid)
	}
	return iss.sign(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, typ, claims)
}

// sign signs claims with an arbitrary signing key.
func (iss *testIssuer) sign(key jose.SigningKey, typ string, claims map[string]any) string {
	iss.t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		iss.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		iss.t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		iss.t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		iss.t.Fatal(err)
	}
	return s
}

// validator builds a Validator for iss with its clock; edit adjusts the Config.
func (iss *testIssuer) validator(edit func(*rs.Config)) *rs.Validator {
	iss.t.Helper()
	cfg := rs.Config{Issuer: iss.URL, Audience: audience, Now: iss.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	v, err := rs.New(context.Background(), cfg)
	if err != nil {
		iss.t.Fatalf("rs.New: %v", err)
	}
	return v
}
