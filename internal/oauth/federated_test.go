package oauth

import (
	"context"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// fedIssuers is an in-memory TrustedIssuerSource.
type fedIssuers map[string]authz.TrustedIssuer

func (m fedIssuers) TrustedIssuerByIssuer(_ context.Context, issuer string) (authz.TrustedIssuer, error) {
	ti, ok := m[issuer]
	if !ok {
		return authz.TrustedIssuer{}, fmt.Errorf("trusted issuer %q: %w", issuer, authz.ErrNotFound)
	}
	return ti, nil
}

// fedCreds is an in-memory FederatedCredentialSource.
type fedCreds struct {
	mu    sync.Mutex
	creds []authz.Credential
}

func (m *fedCreds) ListFederatedCredentials(_ context.Context, id string) ([]authz.Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []authz.Credential
	for _, c := range m.creds {
		if c.TrustedIssuerID == id {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *fedCreds) add(t *testing.T, id, clientID, issuerID string, cfg authz.FederatedCredentialConfig, expires time.Time) {
	t.Helper()
	cfg.TrustedIssuer = issuerID
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.creds = append(m.creds, authz.Credential{ID: id, ClientID: clientID, Type: authz.CredentialFederated, TrustedIssuerID: issuerID, Config: raw, ExpiresAt: expires})
	m.mu.Unlock()
}

// fedKeys is an in-memory FederatedKeySource: JWKS by URL, discovered by
// issuer and bundles by URL, each lookup counted.
type fedKeys struct {
	mu      sync.Mutex
	sets    map[string][]jose.JSONWebKey
	lookups int
	fail    error // set: every lookup fails so (the issuer cannot be reached)
}

func (k *fedKeys) find(key, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lookups++
	if k.fail != nil {
		return nil, k.fail
	}
	keys := jwks.Set{Keys: k.sets[key]}.Lookup(kid)
	if len(keys) == 0 {
		return nil, jwks.ErrUnknownKey
	}
	return keys, nil
}

func (k *fedKeys) Lookup(_ context.Context, u, kid string) ([]jose.JSONWebKey, error) {
	return k.find("jwks "+u, kid)
}

func (k *fedKeys) LookupDiscovered(_ context.Context, iss, kid string) ([]jose.JSONWebKey, error) {
	return k.find("discovered "+iss, kid)
}

func (k *fedKeys) LookupBundle(_ context.Context, u, kid string) ([]jose.JSONWebKey, error) {
	return k.find("bundle "+u, kid)
}

// fedReplay is an in-memory ReplayStore.
type fedReplay struct {
	mu   sync.Mutex
	used map[string]time.Time
}

func (r *fedReplay) UseJTI(_ context.Context, key string, exp time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.used[key]; ok {
		return false, nil
	}
	r.used[key] = exp
	return true, nil
}

const (
	k8sIssuer = "https://k8s.example/cluster"
	ghIssuer  = "https://token.actions.githubusercontent.com"
	inlineIss = "https://private-cluster.example"
)

// fedFixture is newFixture with the federated methods and three trusted
// issuers: a Kubernetes cluster found by discovery (reusable tokens),
// GitHub Actions at a jwks_uri (single-use), a private cluster with an
// inline JWKS, and the SPIFFE trust domain example.org with a bundle
// endpoint.
type fedFixture struct {
	*fixture
	fed    *Federated
	creds  *fedCreds
	keys   *fedKeys
	replay *fedReplay
	events *fake.Events
	rsa    *rsa.PrivateKey // kid "r1": Kubernetes, GitHub, inline
	ec     *ecdsa.PrivateKey
}

func newFedFixture(t *testing.T) *fedFixture {
	t.Helper()
	f := &fedFixture{fixture: newFixture(t), creds: &fedCreds{}, replay: &fedReplay{used: map[string]time.Time{}}, events: &fake.Events{}}
	f.srv.Events = f.events
	var err error
	if f.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	rsaJWK := jose.JSONWebKey{Key: &f.rsa.PublicKey, KeyID: "r1", Use: "sig"}
	ecJWK := jose.JSONWebKey{Key: &f.ec.PublicKey, KeyID: "e1", Use: "sig"}
	f.keys = &fedKeys{sets: map[string][]jose.JSONWebKey{
		"discovered " + k8sIssuer:            {rsaJWK},
		"jwks https://gh.example/jwks":       {rsaJWK},
		"bundle https://spiffe.example/bndl": {ecJWK},
	}}
	inline, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaJWK}})
	issuers := fedIssuers{
		k8sIssuer:              {ID: "ti-k8s", Kind: authz.TrustedIssuerKubernetes, Issuer: k8sIssuer},
		ghIssuer:               {ID: "ti-gh", Kind: authz.TrustedIssuerOIDC, Issuer: ghIssuer, JWKSURI: "https://gh.example/jwks", SingleUse: true},
		inlineIss:              {ID: "ti-inline", Kind: authz.TrustedIssuerKubernetes, Issuer: inlineIss, JWKS: inline},
		"spiffe://example.org": {ID: "ti-spiffe", Kind: authz.TrustedIssuerSPIFFE, Issuer: "spiffe://example.org", TrustDomain: "example.org", BundleURL: "https://spiffe.example/bndl"},
	}
	f.fed = &Federated{S: f.srv, Issuers: issuers, Credentials: f.creds, Keys: f.keys, Replay: f.replay}
	f.srv.ClientAuth = append(SecretAuthenticators(f.srv), f.fed.Authenticators()...)
	f.creds.add(t, "c-k8s", "owner", "ti-k8s", authz.FederatedCredentialConfig{
		Subject: "system:serviceaccount:prod:billing",
		Claims:  map[string]authz.ClaimCondition{"kubernetes.io.namespace": {Values: []string{"prod"}}},
	}, time.Time{})
	f.creds.add(t, "c-gh", "owner", "ti-gh", authz.FederatedCredentialConfig{
		Subject: "repo:acme/billing:ref:refs/heads/*", Audience: "https://m2mauth.example",
		Claims: map[string]authz.ClaimCondition{"repository_owner": {Values: []string{"acme"}}, "environment": {Values: []string{"prod", "staging"}, List: true}, "run_attempt": {Values: []string{"1"}}},
	}, time.Time{})
	f.creds.add(t, "c-inline", "owner", "ti-inline", authz.FederatedCredentialConfig{Subject: "system:serviceaccount:*:billing"}, time.Time{})
	f.creds.add(t, "c-spiffe", "owner", "ti-spiffe", authz.FederatedCredentialConfig{Subject: "spiffe://example.org/ns/prod/sa/billing"}, time.Time{})
	return f
}

// k8sClaims are Kubernetes-shaped service-account token claims for f's
// issuer, valid for an hour.
func (f *fedFixture) k8sClaims(mod func(map[string]any)) map[string]any {
	now := f.clock.Now()
	c := map[string]any{
		"iss": k8sIssuer, "sub": "system:serviceaccount:prod:billing", "aud": []string{f.srv.Issuer.URL()},
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"kubernetes.io": map[string]any{"namespace": "prod", "serviceaccount": map[string]any{"name": "billing", "uid": "u-1"}},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func (f *fedFixture) ghClaims(mod func(map[string]any)) map[string]any {
	now := f.clock.Now()
	c := map[string]any{
		"iss": ghIssuer, "sub": "repo:acme/billing:ref:refs/heads/main", "aud": "https://m2mauth.example",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
		"repository": "acme/billing", "repository_owner": "acme", "ref": "refs/heads/main", "environment": "prod", "run_attempt": 1,
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func (f *fedFixture) svidClaims(mod func(map[string]any)) map[string]any {
	now := f.clock.Now()
	c := map[string]any{"sub": "spiffe://example.org/ns/prod/sa/billing", "aud": f.srv.Issuer.URL(), "exp": now.Add(5 * time.Minute).Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

// signJWT signs claims with alg and key, with header kid if given.
func signJWT(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts.WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsignedJWT is an alg none JWT, built by hand.
func unsignedJWT(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "kid": "r1"})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// post sends a token request with form (grant_type client_credentials
// and audience testAudience unless form sets them).
func (f *fedFixture) post(form url.Values) *httptest.ResponseRecorder {
	if form.Get("grant_type") == "" {
		form.Set("grant_type", "client_credentials")
	}
	if form.Get("audience") == "" {
		form.Set("audience", testAudience)
	}
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.srv.HandleToken(w, r)
	return w
}

func (f *fedFixture) assert(assertion, typ string, extra url.Values) *httptest.ResponseRecorder {
	form := url.Values{"client_assertion_type": {typ}, "client_assertion": {assertion}}
	for k, v := range extra {
		form[k] = v
	}
	return f.post(form)
}

func TestFederatedJWT(t *testing.T) {
	f := newFedFixture(t)
	hmacKey := make([]byte, 32)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	now := f.clock.Now()
	rs := func(mod func(map[string]any)) string { return signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(mod)) }
	gh := func(mod func(map[string]any)) string { return signJWT(t, jose.RS256, f.rsa, "r1", f.ghClaims(mod)) }
	for _, tc := range []struct {
		name      string
		assertion string
		extra     url.Values
		want      string // "" for a token, else the reason logged
	}{
		{"Kubernetes token, no client_id", rs(nil), nil, ""},
		{"Kubernetes token, client_id", rs(nil), url.Values{"client_id": {"owner"}}, ""},
		{"PS256", signJWT(t, jose.PS256, f.rsa, "r1", f.k8sClaims(nil)), nil, ""},
		{"no kid: every key is tried", signJWT(t, jose.RS256, f.rsa, "", f.k8sClaims(nil)), nil, ""},
		{"GitHub Actions token", gh(nil), nil, ""},
		{"inline JWKS, subject glob", signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(func(c map[string]any) {
			c["iss"], c["sub"] = inlineIss, "system:serviceaccount:dev:billing"
		})), nil, ""},
		{"client_id of another application", rs(nil), url.Values{"client_id": {"other"}}, "no federated credential matches"},
		{"wrong sub", rs(func(c map[string]any) { c["sub"] = "system:serviceaccount:prod:intruder" }), nil, "no federated credential matches"},
		{"a glob does not cross a colon", gh(func(c map[string]any) { c["sub"] = "repo:acme/billing:ref:refs/heads/x:y" }), nil, "no federated credential matches"},
		{"wrong nested claim", rs(func(c map[string]any) { c["kubernetes.io"] = map[string]any{"namespace": "dev"} }), nil, "no federated credential matches"},
		{"claim missing", rs(func(c map[string]any) { delete(c, "kubernetes.io") }), nil, "no federated credential matches"},
		{"claim not one of the list", gh(func(c map[string]any) { c["environment"] = "dev" }), nil, "no federated credential matches"},
		{"number claim compared as JSON text", gh(func(c map[string]any) { c["run_attempt"] = 2 }), nil, "no federated credential matches"},
		{"a string is not the number", gh(func(c map[string]any) { c["run_attempt"] = true }), nil, "no federated credential matches"},
		{"wrong aud", rs(func(c map[string]any) { c["aud"] = "https://elsewhere.example" }), nil, "no federated credential matches"},
		{"token endpoint as aud (strict)", rs(func(c map[string]any) { c["aud"] = f.srv.Issuer.URL() + PathToken }), nil, "no federated credential matches"},
		{"aud array with more (strict)", rs(func(c map[string]any) { c["aud"] = []string{f.srv.Issuer.URL(), "x"} }), nil, "no federated credential matches"},
		{"expired", rs(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }), nil, "assertion expired"},
		{"no exp", rs(func(c map[string]any) { delete(c, "exp") }), nil, "assertion without exp"},
		{"exp over 24 h ahead", rs(func(c map[string]any) { c["exp"] = now.Add(25 * time.Hour).Unix() }), nil, "assertion lifetime too long"},
		{"iat 11 s ahead", rs(func(c map[string]any) { c["iat"] = now.Add(11 * time.Second).Unix() }), nil, "assertion issued in the future"},
		{"nbf 11 s ahead", rs(func(c map[string]any) { c["nbf"] = now.Add(11 * time.Second).Unix() }), nil, "assertion not yet valid"},
		{"iat 10 s ahead is within the skew", rs(func(c map[string]any) { c["iat"] = now.Add(10 * time.Second).Unix() }), nil, ""},
		{"alg none", unsignedJWT(f.k8sClaims(nil)), nil, "assertion malformed or its alg not allowed"},
		{"HS256", signJWT(t, jose.HS256, hmacKey, "r1", f.k8sClaims(nil)), nil, "assertion malformed or its alg not allowed"},
		{"ES512 not allowed", signJWT(t, jose.ES512, mustEC(t, elliptic.P521()), "r1", f.k8sClaims(nil)), nil, "assertion malformed or its alg not allowed"},
		{"RSA 1024", signJWT(t, jose.RS256, smallRSA, "r1", f.k8sClaims(nil)), nil, "assertion signature"},
		{"signed by another key", signJWT(t, jose.RS256, otherRSA, "r1", f.k8sClaims(nil)), nil, "assertion signature"},
		{"unknown kid", signJWT(t, jose.RS256, f.rsa, "r2", f.k8sClaims(nil)), nil, "assertion key unknown"},
		{"alg does not fit the key", signJWT(t, jose.ES256, f.ec, "r1", f.k8sClaims(nil)), nil, "assertion key unknown"},
		{"issuer not trusted", rs(func(c map[string]any) { c["iss"] = "https://unknown.example" }), nil, "issuer not trusted"},
		{"SPIFFE issuer as iss", rs(func(c map[string]any) { c["iss"] = "spiffe://example.org" }), nil, "assertion type does not fit the trusted issuer's kind"},
		{"no jti on a single-use issuer", gh(func(c map[string]any) { delete(c, "jti") }), nil, "assertion without jti (single-use issuer)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fails := len(f.events.AuthFailures())
			used := len(f.replay.used)
			w := f.assert(tc.assertion, AssertionTypeJWTBearer, tc.extra)
			if tc.want == "" {
				if w.Code != http.StatusOK {
					t.Fatalf("%d %s; failures %v", w.Code, w.Body, f.events.AuthFailures()[fails:])
				}
				return
			}
			code, _ := oauthError(t, w)
			if w.Code != http.StatusUnauthorized || code != ErrInvalidClient {
				t.Fatalf("%d %s, want 401 invalid_client", w.Code, w.Body)
			}
			got := f.events.AuthFailures()
			if len(got) != fails+1 || got[fails].Reason != tc.want {
				t.Fatalf("failures %v, want reason %q", got[fails:], tc.want)
			}
			if len(f.replay.used) != used {
				t.Fatal("a refused assertion recorded a jti")
			}
		})
	}

	t.Run("replayed jti on a single-use issuer", func(t *testing.T) {
		a := gh(nil)
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusOK {
			t.Fatalf("first use: %d %s", w.Code, w.Body)
		}
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("second use: %d %s", w.Code, w.Body)
		}
		if r := f.events.AuthFailures(); r[len(r)-1].Reason != "assertion replayed" {
			t.Fatalf("reason %q", r[len(r)-1].Reason)
		}
	})

	t.Run("a Kubernetes token is reusable", func(t *testing.T) {
		a := rs(nil)
		for i := range 2 {
			if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusOK {
				t.Fatalf("use %d: %d %s", i, w.Code, w.Body)
			}
		}
	})

	t.Run("events: the credential, issuer and subject", func(t *testing.T) {
		n := len(f.events.FederatedAuthentications())
		if w := f.assert(rs(nil), AssertionTypeJWTBearer, nil); w.Code != http.StatusOK {
			t.Fatal(w.Body)
		}
		got := f.events.FederatedAuthentications()[n]
		if got.ClientID != "owner" || got.CredentialID != "c-k8s" || got.Issuer != k8sIssuer || got.Subject != "system:serviceaccount:prod:billing" {
			t.Fatalf("event %+v", got)
		}
		uses := f.events.CredentialUses()
		if uses[len(uses)-1].CredentialID != "c-k8s" {
			t.Fatalf("credential uses %+v", uses)
		}
	})
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFederatedMatching(t *testing.T) {
	f := newFedFixture(t)
	f.srv.Clients.(*fake.Clients).ByID["second"] = &authz.Client{Application: authz.Application{ClientID: "second"}, Grants: f.srv.Clients.(*fake.Clients).ByID["owner"].Grants}
	a := signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(nil))

	t.Run("two credentials of one application are one match", func(t *testing.T) {
		f.creds.add(t, "c-k8s-2", "owner", "ti-k8s", authz.FederatedCredentialConfig{Subject: "system:serviceaccount:prod:*"}, time.Time{})
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("an expired credential does not match", func(t *testing.T) {
		f.creds.add(t, "c-old", "second", "ti-k8s", authz.FederatedCredentialConfig{Subject: "system:serviceaccount:prod:billing"}, f.clock.Now())
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("two applications: ambiguous without client_id", func(t *testing.T) {
		f.creds.add(t, "c-second", "second", "ti-k8s", authz.FederatedCredentialConfig{Subject: "system:serviceaccount:prod:billing"}, time.Time{})
		w := f.assert(a, AssertionTypeJWTBearer, nil)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if r := f.events.AuthFailures(); r[len(r)-1].Reason != "ambiguous: 2 applications match; send client_id" {
			t.Fatalf("reason %q", r[len(r)-1].Reason)
		}
		for _, id := range []string{"owner", "second"} {
			w := f.assert(a, AssertionTypeJWTBearer, url.Values{"client_id": {id}})
			if w.Code != http.StatusOK {
				t.Fatalf("client_id %s: %d %s", id, w.Code, w.Body)
			}
			_, claims := parseAccessToken(t, w)
			if claims["client_id"] != id {
				t.Fatalf("token of %v, want %s", claims["client_id"], id)
			}
		}
	})
}

func TestFederatedLenientAudience(t *testing.T) {
	f := newFedFixture(t)
	f.fed.Audience = AudienceLenient
	iss := f.srv.Issuer.URL()
	for _, tc := range []struct {
		name string
		aud  any
		ok   bool
	}{
		{"token endpoint", iss + PathToken, true},
		{"array with the issuer", []string{iss, "https://other.example"}, true},
		{"array with the token endpoint", []string{"x", iss + PathToken}, true},
		{"another audience", "https://elsewhere.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(func(c map[string]any) { c["aud"] = tc.aud }))
			if w := f.assert(a, AssertionTypeJWTBearer, nil); (w.Code == http.StatusOK) != tc.ok {
				t.Fatalf("%d %s, want ok=%v", w.Code, w.Body, tc.ok)
			}
		})
	}
	t.Run("a credential audience other than the issuer: the token endpoint does not stand for it", func(t *testing.T) {
		a := signJWT(t, jose.RS256, f.rsa, "r1", f.ghClaims(func(c map[string]any) { c["aud"] = iss + PathToken }))
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		a = signJWT(t, jose.RS256, f.rsa, "r1", f.ghClaims(func(c map[string]any) { c["aud"] = []string{"https://m2mauth.example", "x"} }))
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestSPIFFEJWT(t *testing.T) {
	f := newFedFixture(t)
	svid := func(mod func(map[string]any)) string { return signJWT(t, jose.ES256, f.ec, "e1", f.svidClaims(mod)) }

	t.Run("JWT-SVID without jti, twice, no client_id", func(t *testing.T) {
		a := svid(nil)
		for i := range 2 {
			if w := f.assert(a, AssertionTypeJWTSPIFFE, nil); w.Code != http.StatusOK {
				t.Fatalf("use %d: %d %s", i, w.Code, w.Body)
			}
		}
		if len(f.replay.used) != 0 {
			t.Fatal("a JWT-SVID's jti was recorded")
		}
		ev := f.events.FederatedAuthentications()
		if got := ev[len(ev)-1]; got.Issuer != "spiffe://example.org" || got.Subject != "spiffe://example.org/ns/prod/sa/billing" || got.CredentialID != "c-spiffe" {
			t.Fatalf("event %+v", got)
		}
	})
	for _, tc := range []struct {
		name, assertion, typ, reason string
	}{
		{"another workload", svid(func(c map[string]any) { c["sub"] = "spiffe://example.org/ns/prod/sa/other" }), AssertionTypeJWTSPIFFE, "no federated credential matches"},
		{"another trust domain", svid(func(c map[string]any) { c["sub"] = "spiffe://evil.example/ns/prod/sa/billing" }), AssertionTypeJWTSPIFFE, "issuer not trusted"},
		{"sub not a SPIFFE ID", svid(func(c map[string]any) { c["sub"] = "spiffe://Example.org/x" }), AssertionTypeJWTSPIFFE, "JWT-SVID sub is not a SPIFFE ID"},
		{"no path", svid(func(c map[string]any) { c["sub"] = "spiffe://example.org" }), AssertionTypeJWTSPIFFE, "JWT-SVID sub is not a SPIFFE ID"},
		{"expired", svid(func(c map[string]any) { c["exp"] = f.clock.Now().Unix() }), AssertionTypeJWTSPIFFE, "assertion expired"},
		{"a JWT-SVID as jwt-bearer", svid(nil), AssertionTypeJWTBearer, "assertion without iss"},
		{"a Kubernetes token as jwt-spiffe", signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(nil)), AssertionTypeJWTSPIFFE, "JWT-SVID sub is not a SPIFFE ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.assert(tc.assertion, tc.typ, nil)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if r := f.events.AuthFailures(); r[len(r)-1].Reason != tc.reason {
				t.Fatalf("reason %q, want %q", r[len(r)-1].Reason, tc.reason)
			}
		})
	}
}

func TestJWTBearerGrant(t *testing.T) {
	f := newFedFixture(t)
	k8s := signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(nil))
	grant := func(assertion string, extra url.Values) *httptest.ResponseRecorder {
		form := url.Values{"grant_type": {GrantTypeJWTBearer}, "assertion": {assertion}}
		for k, v := range extra {
			form[k] = v
		}
		return f.post(form)
	}
	for _, tc := range []struct {
		name      string
		assertion string
		extra     url.Values
		status    int
		code      string
	}{
		{"Kubernetes token", k8s, nil, 200, ""},
		{"with a matching client_id", k8s, url.Values{"client_id": {"owner"}}, 200, ""},
		{"JWT-SVID", signJWT(t, jose.ES256, f.ec, "e1", f.svidClaims(nil)), nil, 200, ""},
		{"client_id of another application", k8s, url.Values{"client_id": {"other"}}, 400, ErrInvalidGrant},
		{"wrong sub", signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(func(c map[string]any) { c["sub"] = "x" })), nil, 400, ErrInvalidGrant},
		{"alg none", unsignedJWT(f.k8sClaims(nil)), nil, 400, ErrInvalidGrant},
		{"no assertion", "", nil, 400, ErrInvalidRequest},
		{"and a client secret", k8s, url.Values{"client_id": {"owner"}, "client_secret": {f.secrets["owner"]}}, 400, ErrInvalidRequest},
		{"and a client assertion", k8s, url.Values{"client_assertion_type": {AssertionTypeJWTBearer}, "client_assertion": {k8s}}, 400, ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := grant(tc.assertion, tc.extra)
			if w.Code != tc.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.status)
			}
			if tc.code != "" {
				if code, _ := oauthError(t, w); code != tc.code {
					t.Fatalf("error %s, want %s", code, tc.code)
				}
			}
		})
	}
	t.Run("with HTTP Basic", func(t *testing.T) {
		form := url.Values{"grant_type": {GrantTypeJWTBearer}, "assertion": {k8s}, "audience": {testAudience}}
		r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", basic("owner", f.secrets["owner"]))
		w := httptest.NewRecorder()
		f.srv.HandleToken(w, r)
		if code, _ := oauthError(t, w); w.Code != 400 || code != ErrInvalidRequest {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("discovery lists the grant", func(t *testing.T) {
		m, err := (&Discovery{Issuer: "https://issuer", APIs: &countingAPIs{}, AuthMethods: f.srv.AuthMethods()}).metadata(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(m.GrantTypesSupported, " ") != "client_credentials "+GrantTypeJWTBearer {
			t.Fatalf("grant_types_supported %q", m.GrantTypesSupported)
		}
		if strings.Join(m.TokenEndpointAuthMethodsSupported, " ") != "client_secret_basic client_secret_post federated_jwt spiffe_jwt" {
			t.Fatalf("methods %q", m.TokenEndpointAuthMethodsSupported)
		}
	})
}

// parseAccessToken returns the response's access token claims.
func parseAccessToken(t *testing.T, w *httptest.ResponseRecorder) (expiresIn int64, claims map[string]any) {
	t.Helper()
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tr.AccessToken, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return tr.ExpiresIn, claims
}

func TestFederatedTokenLifetime(t *testing.T) {
	f := newFedFixture(t)
	f.clock.Add(300 * time.Millisecond) // not on a whole second
	now := f.clock.Now()
	exp := now.Add(90 * time.Second).Truncate(time.Second)
	a := signJWT(t, jose.RS256, f.rsa, "r1", f.k8sClaims(func(c map[string]any) { c["exp"] = exp.Unix() }))

	w := f.assert(a, AssertionTypeJWTBearer, nil)
	if w.Code != http.StatusOK {
		t.Fatal(w.Body)
	}
	expiresIn, claims := parseAccessToken(t, w)
	if got := int64(claims["exp"].(float64)); got > exp.Unix() || got < exp.Unix()-1 || expiresIn > 90 {
		t.Fatalf("token exp %d (expires_in %d), assertion exp %d", got, expiresIn, exp.Unix())
	}

	t.Run("a secret-authenticated token keeps the API lifetime", func(t *testing.T) {
		w := f.post(url.Values{"client_id": {"owner"}, "client_secret": {f.secrets["owner"]}})
		if expiresIn, _ := parseAccessToken(t, w); expiresIn != 3600 {
			t.Fatalf("expires_in %d", expiresIn)
		}
	})
	t.Run("FederatedLifetimeFull: the API lifetime", func(t *testing.T) {
		f.srv.FederatedLifetimeFull = true
		defer func() { f.srv.FederatedLifetimeFull = false }()
		if expiresIn, _ := parseAccessToken(t, f.assert(a, AssertionTypeJWTBearer, nil)); expiresIn != 3600 {
			t.Fatalf("expires_in %d", expiresIn)
		}
	})
	t.Run("less than a second left is expired", func(t *testing.T) {
		f.clock.Set(exp.Add(-500 * time.Millisecond))
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestClaimValue(t *testing.T) {
	var raw map[string]json.RawMessage
	json.Unmarshal([]byte(`{"kubernetes.io":{"namespace":"prod","serviceaccount":{"name":"billing"}},"a.b":"literal","a":{"b":"nested"},"n":42,"f":false,"nil":null,"obj":{},"arr":["x"]}`), &raw)
	for name, want := range map[string]string{
		"kubernetes.io.namespace":           "prod",
		"kubernetes.io.serviceaccount.name": "billing",
		"a.b":                               "literal", // the top-level name first
		"n":                                 "42",
		"f":                                 "false",
	} {
		v, ok := claimValue(raw, name, 0)
		text, tok := claimText(v)
		if !ok || !tok || text != want {
			t.Errorf("%s = %q (%v %v), want %q", name, text, ok, tok, want)
		}
	}
	for _, name := range []string{"nil", "obj", "arr", "missing", "kubernetes.io.pod", "kubernetes"} {
		v, ok := claimValue(raw, name, 0)
		if _, tok := claimText(v); ok && tok {
			t.Errorf("%s meets a condition", name)
		}
	}
}

func TestSPIFFETrustDomain(t *testing.T) {
	for id, want := range map[string]string{
		"spiffe://example.org/ns/prod/sa/billing": "example.org",
		"spiffe://td-1_x/w":                       "td-1_x",
		"spiffe://example.org":                    "",
		"spiffe://example.org/":                   "",
		"spiffe://example.org/a//b":               "",
		"spiffe://example.org/a/../b":             "",
		"spiffe://Example.org/a":                  "",
		"spiffe://ex ample/a":                     "",
		"spiffe:///a":                             "",
		"https://example.org/a":                   "",
		"spiffe://example.org/a?b":                "",
		"spiffe://user@example.org/a":             "",
	} {
		got, ok := SPIFFETrustDomain(id)
		if got != want || ok != (want != "") {
			t.Errorf("SPIFFETrustDomain(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
}

func TestAssertionMethod(t *testing.T) {
	key := mustEC(t, elliptic.P256())
	sign := func(c map[string]any) string { return signJWT(t, jose.ES256, key, "", c) }
	for _, tc := range []struct {
		name      string
		assertion string
		spiffe    bool
		method    string
	}{
		{"iss = sub", sign(map[string]any{"iss": "c", "sub": "c"}), false, MethodPrivateKeyJWT},
		{"iss ≠ sub", sign(map[string]any{"iss": "https://k8s", "sub": "system:serviceaccount:a:b"}), false, MethodFederatedJWT},
		{"no iss, SPIFFE sub, grant", sign(map[string]any{"sub": "spiffe://td/w"}), true, MethodSPIFFEJWT},
		{"no iss, SPIFFE sub, client assertion", sign(map[string]any{"sub": "spiffe://td/w"}), false, MethodFederatedJWT},
		{"unreadable", "a.b.c", false, MethodPrivateKeyJWT},
	} {
		if got, _ := assertionMethod(tc.assertion, tc.spiffe); got != tc.method {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.method)
		}
	}
}

// FuzzUnverifiedIssuerSubject: any assertion yields strings, never a panic.
func FuzzUnverifiedIssuerSubject(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOjEsInN1YiI6InMifQ.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, a string) { _, _ = unverifiedIssuerSubject(a) })
}

// warnCounter is a slog.Handler counting records at Warn and above.
type warnCounter struct{ n atomic.Int64 }

func (w *warnCounter) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.n.Add(1)
	}
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

// An unauthenticated caller naming a trusted issuer whose keys cannot be
// had costs no warning per request: the fetcher warns once per fetch
// attempt, which it rate-limits.
func TestFederatedUnreachableIssuerLogsNoWarningPerRequest(t *testing.T) {
	f := newFedFixture(t)
	warns := &warnCounter{}
	f.srv.Log = slog.New(warns)
	f.keys.fail = errors.New("dial tcp: connection refused")
	a := signJWT(t, jose.RS256, f.rsa, "r1", f.ghClaims(nil))
	for range 20 {
		if w := f.assert(a, AssertionTypeJWTBearer, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", w.Code)
		}
	}
	if n := warns.n.Load(); n != 0 {
		t.Fatalf("%d warnings for 20 requests, want none", n)
	}
}
