package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/jwks"
	"github.com/m2mauth/m2mauth/m2mclient"
)

// pkjwtApp creates an API and an application without a secret whose
// inline jwks credential holds key's public half as kid.
func pkjwtApp(e *testEnv, key *ecdsa.PrivateKey, kid string) (clientID, credID string) {
	e.t.Helper()
	tok := e.adminToken()
	e.createAPI(tok, "https://api.example.com", "ES256", "read")
	var app admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", tok, map[string]any{
		"name": "keyed", "client_secret": false,
		"grants": []map[string]any{{"audience": "https://api.example.com"}},
	}, &app)
	return app.ClientID, addJWKSCredential(e, app.ClientID, key, kid)
}

func addJWKSCredential(e *testEnv, clientID string, key *ecdsa.PrivateKey, kid string) string {
	e.t.Helper()
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		e.t.Fatal(err)
	}
	var cred admin.CredentialResource
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications/"+clientID+"/credentials", e.adminToken(),
		map[string]any{"type": "jwks", "jwks": json.RawMessage(raw)}, &cred)
	return cred.ID
}

// assertion signs claims as a client assertion with header typ
// client-authentication+jwt (RFC 7523bis) and kid.
func assertion(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("client-authentication+jwt")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
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

// unsigned builds an alg none JWT by hand (go-jose will not make one).
func unsigned(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "client-authentication+jwt", "kid": "k1"})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func tokenWithAssertion(e *testEnv, a string, extra url.Values) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"audience":              {"https://api.example.com"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {a},
	}
	for k, v := range extra {
		form[k] = v
	}
	status, body := e.postForm("/oauth/token", form, nil)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatalf("body %s: %v", body, err)
	}
	return status, out
}

func TestPrivateKeyJWT(t *testing.T) {
	// Many failures of one client_id from one address: the limiter would
	// answer 429 before the method runs.
	e := newTestEnv(t, func(c *Config, _ *Deps) { c.AuthMaxFailures = 100 })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientID, _ := pkjwtApp(e, key, "k1")
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": clientID, "sub": clientID, "aud": e.url,
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
		}
		if mod != nil {
			mod(c)
		}
		return c
	}

	t.Run("discovery", func(t *testing.T) {
		var m map[string]any
		e.with(t).mustCall(200, "GET", "/.well-known/oauth-authorization-server", "", nil, &m)
		methods, _ := json.Marshal(m["token_endpoint_auth_methods_supported"])
		algs, _ := json.Marshal(m["token_endpoint_auth_signing_alg_values_supported"])
		if !strings.HasPrefix(string(methods), `["client_secret_basic","client_secret_post","private_key_jwt"`) || string(algs) != `["PS256","ES256","EdDSA"]` {
			t.Fatalf("methods %s, algs %s", methods, algs)
		}
	})

	t.Run("m2mclient ES256 assertion", func(t *testing.T) {
		signer, err := m2mclient.NewSigner(key, "ES256", "k1")
		if err != nil {
			t.Fatal(err)
		}
		src, err := m2mclient.Config{Issuer: e.url, ClientID: clientID, Audience: "https://api.example.com"}.PrivateKeyJWT(context.Background(), signer)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		got := e.with(t).verifyWithJWKS(tok.AccessToken)
		if got["client_id"] != clientID || got["aud"] != "https://api.example.com" {
			t.Fatalf("claims %v", got)
		}
	})

	t.Run("untyped, no kid, no client_id in the body", func(t *testing.T) {
		payload, _ := json.Marshal(claims(nil))
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
		jws, _ := sig.Sign(payload)
		a, _ := jws.CompactSerialize()
		if status, body := tokenWithAssertion(e.with(t), a, nil); status != 200 {
			t.Fatalf("%d %v", status, body)
		}
	})

	hmacKey := make([]byte, 32)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sharedJTI := rand.Text()
	replayed := assertion(t, jose.ES256, key, "k1", claims(nil))
	for _, tc := range []struct {
		name      string
		assertion string
		extra     url.Values
		want      string
	}{
		{"wrong sub", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["sub"] = "other-client" })), nil, "invalid_client"},
		{"client_id differs from sub", assertion(t, jose.ES256, key, "k1", claims(nil)), url.Values{"client_id": {"other-client"}}, "invalid_client"},
		{"wrong iss", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["iss"] = "someone" })), nil, "invalid_client"},
		{"wrong aud", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["aud"] = "https://elsewhere.example" })), nil, "invalid_client"},
		{"token endpoint as aud (strict)", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["aud"] = e.url + "/oauth/token" })), nil, "invalid_client"},
		{"array with the issuer and more (strict)", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["aud"] = []string{e.url, "x"} })), nil, "invalid_client"},
		{"expired", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), nil, "invalid_client"},
		{"no exp", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { delete(c, "exp") })), nil, "invalid_client"},
		{"lifetime too long", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["exp"] = now.Add(10 * time.Minute).Unix() })), nil, "invalid_client"},
		{"iat too far in the future", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() })), nil, "invalid_client"},
		{"nbf too far in the future", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), nil, "invalid_client"},
		{"no jti", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { delete(c, "jti") })), nil, "invalid_client"},
		{"alg none", unsigned(claims(func(c map[string]any) { c["jti"] = sharedJTI })), nil, "invalid_client"},
		{"HS256", assertion(t, jose.HS256, hmacKey, "k1", claims(func(c map[string]any) { c["jti"] = sharedJTI })), nil, "invalid_client"},
		{"signed by another key", assertion(t, jose.ES256, other, "k1", claims(func(c map[string]any) { c["jti"] = sharedJTI })), nil, "invalid_client"},
		{"unknown kid", assertion(t, jose.ES256, key, "nope", claims(nil)), nil, "invalid_client"},
		{"secret plus assertion", assertion(t, jose.ES256, key, "k1", claims(nil)), url.Values{"client_id": {clientID}, "client_secret": {"s"}}, "invalid_request"},
		{"replay: first use", replayed, nil, ""},
		{"replay: second use", replayed, nil, "invalid_client"},
		{"forged assertions stored no jti", assertion(t, jose.ES256, key, "k1", claims(func(c map[string]any) { c["jti"] = sharedJTI })), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tokenWithAssertion(e.with(t), tc.assertion, tc.extra)
			switch {
			case tc.want == "" && status != 200:
				t.Fatalf("%d %v", status, body)
			case tc.want == "invalid_client" && (status != 401 || body["error"] != tc.want):
				t.Fatalf("%d %v, want 401 %s", status, body, tc.want)
			case tc.want == "invalid_request" && (status != 400 || body["error"] != tc.want):
				t.Fatalf("%d %v, want 400 %s", status, body, tc.want)
			}
		})
	}

	t.Run("deleted credential", func(t *testing.T) {
		key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		id := addJWKSCredential(e.with(t), clientID, key2, "k2")
		if status, body := tokenWithAssertion(e.with(t), assertion(t, jose.ES256, key2, "k2", claims(nil)), nil); status != 200 {
			t.Fatalf("before delete: %d %v", status, body)
		}
		e.with(t).mustCall(http.StatusNoContent, "DELETE", "/admin/v1/applications/"+clientID+"/credentials/"+id, e.adminToken(), nil, nil)
		if status, body := tokenWithAssertion(e.with(t), assertion(t, jose.ES256, key2, "k2", claims(nil)), nil); status != 401 || body["error"] != "invalid_client" {
			t.Fatalf("after delete: %d %v", status, body)
		}
	})
}

func TestPrivateKeyJWTLenientAudience(t *testing.T) {
	e := newTestEnv(t, func(c *Config, _ *Deps) { c.ClientAssertionAudience = "lenient" })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientID, _ := pkjwtApp(e, key, "k1")
	now := time.Now()
	for _, aud := range []any{e.url + "/oauth/token", []string{e.url, "https://other.example"}, e.url} {
		c := map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
		if status, body := tokenWithAssertion(e, assertion(t, jose.ES256, key, "k1", c), nil); status != 200 {
			t.Errorf("aud %v: %d %v", aud, status, body)
		}
	}
	c := map[string]any{"iss": clientID, "sub": clientID, "aud": "https://elsewhere.example", "exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
	if status, _ := tokenWithAssertion(e, assertion(t, jose.ES256, key, "k1", c), nil); status != 401 {
		t.Errorf("wrong aud under lenient: %d", status)
	}
}

// clientAssertionClaims are valid claims of clientID's assertion for e at
// now, with a fresh jti.
func clientAssertionClaims(e *testEnv, clientID string, now time.Time) map[string]any {
	return map[string]any{
		"iss": clientID, "sub": clientID, "aud": e.url,
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
	}
}

// TestPrivateKeyJWTCredentialLastUsed: after a token request, the
// credential whose key signed the assertion has last_used_at (written in
// the recorder's batch), and the application's other credential has none.
func TestPrivateKeyJWTCredentialLastUsed(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spare, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientID, usedID := pkjwtApp(e, key, "k1")
	spareID := addJWKSCredential(e, clientID, spare, "k2")
	clk.Add(time.Minute) // the use comes after the credentials' creation
	if status, body := tokenWithAssertion(e, assertion(t, jose.ES256, key, "k1", clientAssertionClaims(e, clientID, clk.Now())), nil); status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	// Last use reaches the store in a batch, not per token.
	if err := e.srv.recorder.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var list admin.List[admin.CredentialResource]
	e.mustCall(http.StatusOK, "GET", "/admin/v1/applications/"+clientID+"/credentials", e.adminToken(), nil, &list)
	if len(list.Items) != 2 {
		t.Fatalf("%d credentials, want 2", len(list.Items))
	}
	for _, c := range list.Items {
		switch c.ID {
		case usedID:
			if c.LastUsedAt == nil || !c.LastUsedAt.Equal(clk.Now()) {
				t.Errorf("used credential: last_used_at %v, want %v", c.LastUsedAt, clk.Now())
			}
		case spareID:
			if c.LastUsedAt != nil {
				t.Errorf("unused credential: last_used_at %v, want none", c.LastUsedAt)
			}
		default:
			t.Errorf("unexpected credential %s", c.ID)
		}
	}
}

// TestPrivateKeyJWTConfiguredAlgsAndTyp: --client-assertion-algs decides
// the algorithms accepted and the ones discovery lists (RS256 only when
// listed); --client-assertion-typ required refuses an untyped assertion.
func TestPrivateKeyJWTConfiguredAlgsAndTyp(t *testing.T) {
	e := newTestEnv(t, func(c *Config, _ *Deps) {
		c.ClientAssertionAlgs, c.ClientAssertionTyp, c.AuthMaxFailures = "ES256,RS256", "required", 100
	})
	var m map[string]any
	e.mustCall(200, "GET", "/.well-known/oauth-authorization-server", "", nil, &m)
	if algs, _ := json.Marshal(m["token_endpoint_auth_signing_alg_values_supported"]); string(algs) != `["ES256","RS256"]` {
		t.Fatalf("discovery lists %s, want [ES256 RS256]", algs)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	clientID, _ := pkjwtApp(e, ec, "ec")
	raw, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rk.PublicKey, KeyID: "rsa", Use: "sig"}}})
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications/"+clientID+"/credentials", e.adminToken(),
		map[string]any{"type": "jwks", "jwks": json.RawMessage(raw)}, nil)

	untyped := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(clientAssertionClaims(e, clientID, time.Now()))
		jws, _ := sig.Sign(payload)
		out, _ := jws.CompactSerialize()
		return out
	}
	for _, tc := range []struct {
		name      string
		assertion string
		want      int
	}{
		{"ES256, typed", assertion(t, jose.ES256, ec, "ec", clientAssertionClaims(e, clientID, time.Now())), 200},
		{"RS256, typed", assertion(t, jose.RS256, rk, "rsa", clientAssertionClaims(e, clientID, time.Now())), 200},
		{"PS256, not listed", assertion(t, jose.PS256, rk, "rsa", clientAssertionClaims(e, clientID, time.Now())), 401},
		{"ES256, untyped", untyped(jose.ES256, ec, "ec"), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tokenWithAssertion(e.with(t), tc.assertion, nil)
			if status != tc.want || (tc.want == 401 && body["error"] != "invalid_client") {
				t.Fatalf("%d %v, want %d", status, body, tc.want)
			}
		})
	}
}

// jwksServer is a client's JWKS on an httptest TLS server on 127.0.0.1,
// counting its fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	j.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		j.fetches.Add(1)
		j.mu.Lock()
		b, _ := json.Marshal(j.set)
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	}))
	t.Cleanup(j.Close)
	return j
}

// publish replaces the served keys with keys (kid → key).
func (j *jwksServer) publish(keys map[string]*ecdsa.PrivateKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.set.Keys = nil
	for kid, k := range keys {
		j.set.Keys = append(j.set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
}

// TestPrivateKeyJWTJWKSURI: a jwks_uri credential served over https (the
// server trusting the test CA through FetchRootCAs): a token is obtained,
// the JWKS is cached, a new kid at the client's JWKS is picked up without
// a restart, and an unknown kid makes one refetch, then is refused, and
// within the refetch interval costs no fetch at all.
func TestPrivateKeyJWTJWKSURI(t *testing.T) {
	j := newJWKSServer(t)
	if !strings.HasPrefix(j.URL, "https://127.0.0.1:") {
		t.Fatalf("JWKS server at %s, want https on 127.0.0.1", j.URL)
	}
	pool := x509.NewCertPool()
	pool.AddCert(j.Certificate())
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now), func(c *Config, _ *Deps) { c.FetchRootCAs, c.AuthMaxFailures = pool, 100 })

	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	j.publish(map[string]*ecdsa.PrivateKey{"k1": k1})
	tok := e.adminToken()
	e.createAPI(tok, "https://api.example.com", "ES256", "read")
	var app admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", tok, map[string]any{
		"name": "jwks_uri client", "client_secret": false,
		"grants": []map[string]any{{"audience": "https://api.example.com"}},
	}, &app)
	var cred admin.CredentialResource
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications/"+app.ClientID+"/credentials", tok,
		map[string]any{"type": "jwks_uri", "jwks_uri": j.URL + "/jwks.json"}, &cred)
	if cred.JWKSURI != j.URL+"/jwks.json" {
		t.Fatalf("credential %+v", cred)
	}

	request := func(t *testing.T, key *ecdsa.PrivateKey, kid string) (int, map[string]any) {
		return tokenWithAssertion(e.with(t), assertion(t, jose.ES256, key, kid, clientAssertionClaims(e, app.ClientID, clk.Now())), nil)
	}
	wantFetches := func(t *testing.T, n int32) {
		t.Helper()
		if got := j.fetches.Load(); got != n {
			t.Fatalf("%d fetches of the JWKS, want %d", got, n)
		}
	}
	t.Run("token obtained, JWKS fetched once", func(t *testing.T) {
		for range 3 {
			if status, body := request(t, k1, "k1"); status != 200 {
				t.Fatalf("%d %v", status, body)
			}
		}
		wantFetches(t, 1)
	})
	t.Run("rotation: a new kid is picked up without a restart", func(t *testing.T) {
		j.publish(map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2}) // overlap
		clk.Add(jwks.DefaultRefetchInterval + time.Second)
		if status, body := request(t, k2, "k2"); status != 200 {
			t.Fatalf("new kid: %d %v", status, body)
		}
		wantFetches(t, 2)
		if status, body := request(t, k1, "k1"); status != 200 {
			t.Fatalf("old kid during the overlap: %d %v", status, body)
		}
		wantFetches(t, 2)
	})
	t.Run("unknown kid: refetched once, then refused", func(t *testing.T) {
		clk.Add(jwks.DefaultRefetchInterval + time.Second)
		if status, body := request(t, k2, "k9"); status != 401 || body["error"] != "invalid_client" {
			t.Fatalf("%d %v, want 401 invalid_client", status, body)
		}
		wantFetches(t, 3)
		for range 5 {
			if status, body := request(t, k2, "k9"); status != 401 || body["error"] != "invalid_client" {
				t.Fatalf("%d %v, want 401 invalid_client", status, body)
			}
		}
		wantFetches(t, 3) // within the refetch interval: no fetch
		if status, body := request(t, k2, "k2"); status != 200 {
			t.Fatalf("known kid after the unknown ones: %d %v", status, body)
		}
		wantFetches(t, 3)
	})
}
