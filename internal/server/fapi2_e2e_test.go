package server

import (
	"crypto/ecdsa"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/m2mclient"
)

// fapi2App registers usageAPI under the FAPI 2.0 profile and an
// application granted it with a client secret and an ES256 key (inline
// jwks credential "k1").
func fapi2App(e *testEnv, key *ecdsa.PrivateKey) admin.CreatedApplication {
	e.t.Helper()
	adm := e.adminToken()
	e.createPolicyAPI(adm, senderPolicy{Profile: "fapi2"})
	app := e.createApp(adm, "fapi client", map[string][]string{usageAPI: nil})
	addJWKSCredential(e, app.ClientID, key, "k1")
	return app
}

// TestFAPI2Profile: under the FAPI 2.0 profile, through a TLS-terminating
// trusted proxy (the loopback peer), a client_secret_basic request is
// refused (401 invalid_client) even with a DPoP proof, a private_key_jwt
// request without a sender constraint is refused (400 invalid_request),
// and private_key_jwt with DPoP gets a DPoP-bound token through
// m2mclient. Without the trusted proxy, the plain-HTTP request is refused.
func TestFAPI2Profile(t *testing.T) {
	e := newTestEnv(t, func(c *Config, _ *Deps) { c.TrustedProxies = "127.0.0.1/32" })
	ecKey := mustECKey(t)
	app := fapi2App(e, ecKey)
	key, signer := newDPoPKey(t, nil)

	// client_secret_basic, with a DPoP proof.
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {usageAPI}}
	status, body := e.postForm(oauth.PathToken, form, http.Header{
		"Authorization": {basicAuth(app.ClientID, app.ClientSecret).Get("Authorization")},
		"DPoP":          {tokenProof(t, e, signer, "")},
	})
	if status != http.StatusUnauthorized || !strings.Contains(string(body), `"error":"invalid_client"`) {
		t.Fatalf("client_secret_basic: %d %s, want 401 invalid_client", status, body)
	}

	// private_key_jwt without DPoP (and without mutual TLS).
	a := assertion(t, jose.ES256, ecKey, "k1", clientAssertionClaims(e, app.ClientID, e.srv.now()))
	status, got := tokenWithAssertion(e, a, url.Values{"audience": {usageAPI}})
	if status != http.StatusBadRequest || got["error"] != "invalid_request" {
		t.Fatalf("private_key_jwt without a sender constraint: %d %v, want 400 invalid_request", status, got)
	}

	// private_key_jwt with DPoP, through m2mclient.
	s, err := m2mclient.NewSigner(ecKey, "", "k1")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := m2mclient.Config{Issuer: e.url, ClientID: app.ClientID, Audience: usageAPI, DPoP: key}.PrivateKeyJWT(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("private_key_jwt with DPoP: %v", err)
	}
	if tok.TokenType != oauth.TokenTypeDPoP {
		t.Fatalf("token_type %q", tok.TokenType)
	}
	if cnf, _ := e.verifyWithJWKS(tok.AccessToken)["cnf"].(map[string]any); cnf["jkt"] != key.Thumbprint() {
		t.Fatalf("cnf %v", cnf)
	}

	// The same server without a trusted proxy: plain HTTP is refused.
	plain := newTestEnv(t)
	app2 := fapi2App(plain, ecKey)
	ts2, err := m2mclient.Config{Issuer: plain.url, ClientID: app2.ClientID, Audience: usageAPI, DPoP: key}.PrivateKeyJWT(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts2.Token(); err == nil || !strings.Contains(err.Error(), "TLS 1.2") {
		t.Fatalf("over plain HTTP without a trusted proxy: %v, want a TLS 1.2 refusal", err)
	}
}
