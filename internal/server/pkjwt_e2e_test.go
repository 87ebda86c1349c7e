package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
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
		if string(methods) != `["client_secret_basic","client_secret_post","private_key_jwt"]` || string(algs) != `["PS256","ES256","EdDSA"]` {
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
