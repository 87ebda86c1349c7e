package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// testIssuer is an external workload identity issuer on loopback: an
// httptest TLS server on 127.0.0.1 (or plain http, for the insecure-issuer
// test) serving
//
//	/k8s/.well-known/openid-configuration and /k8s/jwks  a Kubernetes cluster (RS256)
//	/gh/.well-known/openid-configuration and /gh/jwks    a GitHub-Actions-shaped OIDC issuer (RS256)
//	/bundle                                              a SPIFFE bundle of trust domain example.org (ES256 jwt-svid keys)
//
// Each path's fetches are counted; keys rotate with rotate.
type testIssuer struct {
	t   testing.TB
	srv *httptest.Server
	URL string

	mu   sync.Mutex
	keys map[string][]issuerKey // "k8s", "gh", "bundle" → published keys, newest last
	hits map[string]int
}

// issuerKey is one signing key of the test issuer.
type issuerKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// newTestIssuer starts a test issuer over TLS, or plain http if insecure.
func newTestIssuer(t testing.TB, insecure bool) *testIssuer {
	t.Helper()
	ti := &testIssuer{t: t, keys: map[string][]issuerKey{}, hits: map[string]int{}}
	for _, name := range []string{"k8s", "gh", "bundle"} {
		ti.keys[name] = []issuerKey{ti.newKey(name, name+"-1")}
	}
	h := http.HandlerFunc(ti.serve)
	if insecure {
		ti.srv = httptest.NewServer(h)
	} else {
		ti.srv = httptest.NewTLSServer(h)
	}
	ti.URL = ti.srv.URL
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) newKey(name, kid string) issuerKey {
	if name == "bundle" {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			ti.t.Fatal(err)
		}
		return issuerKey{kid, jose.ES256, k}
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		ti.t.Fatal(err)
	}
	return issuerKey{kid, jose.RS256, k}
}

// pool trusts the test issuer's certificate (Config.FetchRootCAs).
func (ti *testIssuer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ti.srv.Certificate())
	return p
}

// k8sIssuer and ghIssuer are the iss of the two OIDC-shaped issuers.
func (ti *testIssuer) k8sIssuer() string { return ti.URL + "/k8s" }
func (ti *testIssuer) ghIssuer() string  { return ti.URL + "/gh" }

func (ti *testIssuer) serve(w http.ResponseWriter, r *http.Request) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.hits[r.URL.Path]++
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	var body any
	switch {
	case (name == "k8s" || name == "gh") && rest == ".well-known/openid-configuration":
		body = map[string]any{"issuer": ti.URL + "/" + name, "jwks_uri": ti.URL + "/" + name + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}}
	case (name == "k8s" || name == "gh") && rest == "jwks":
		body = map[string]any{"keys": ti.published(name, "sig")}
	case name == "bundle" && rest == "":
		body = map[string]any{"keys": ti.published(name, "jwt-svid"), "spiffe_sequence": len(ti.keys[name]), "spiffe_refresh_hint": 300}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	json.NewEncoder(w).Encode(body)
}

// published are the public JWKs of name's keys; the caller holds mu.
func (ti *testIssuer) published(name, use string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range ti.keys[name] {
		out = append(out, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: use})
	}
	return out
}

// rotate replaces name's keys with a new one of kid; it is what mint
// signs with from then on.
func (ti *testIssuer) rotate(name, kid string) {
	k := ti.newKey(name, kid)
	ti.mu.Lock()
	ti.keys[name] = []issuerKey{k}
	ti.mu.Unlock()
}

// fetches is how often path was requested.
func (ti *testIssuer) fetches(path string) int {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.hits[path]
}

// mint signs claims with name's current key (its kid in the header), or
// with kid overriding the header if not "".
func (ti *testIssuer) mint(name string, claims map[string]any, kid string) string {
	ti.t.Helper()
	ti.mu.Lock()
	k := ti.keys[name][len(ti.keys[name])-1]
	ti.mu.Unlock()
	if kid == "" {
		kid = k.kid
	}
	typ := "JWT"
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", kid))
	if err != nil {
		ti.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		ti.t.Fatal(err)
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		ti.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		ti.t.Fatal(err)
	}
	return out
}
