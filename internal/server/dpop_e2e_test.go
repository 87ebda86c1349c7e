package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/m2mclient"
	"github.com/m2mauth/m2mauth/rs"
)

// senderPolicy is the sender-constraint fields of an API, as the admin API
// takes them (nil: left alone).
type senderPolicy struct {
	DPoP      string `json:"dpop,omitempty"`
	DPoPNonce *bool  `json:"dpop_nonce,omitempty"`
	Profile   string `json:"profile,omitempty"`
}

// createPolicyAPI registers usageAPI with policy p through the admin API
// (POST, then PATCH: both take the fields) and returns its id.
func (e *testEnv) createPolicyAPI(adm string, p senderPolicy) string {
	e.t.Helper()
	api := e.createAPI(adm, usageAPI, "", usageScopes...)
	var out map[string]any
	e.mustCall(http.StatusOK, "PATCH", "/admin/v1/apis/"+api.ID, adm, p, &out)
	if p.DPoP != "" && out["dpop"] != p.DPoP || p.Profile != "" && out["profile"] != p.Profile ||
		p.DPoPNonce != nil && out["dpop_nonce"] != *p.DPoPNonce {
		e.t.Fatalf("PATCH answered %v, want %+v", out, p)
	}
	return api.ID
}

func yes() *bool { b := true; return &b }

// newDPoPKey returns a client's DPoP key of a new P-256 key, and a proof
// signer of the same key on the clock now (nil: time.Now), for proofs made
// by hand.
func newDPoPKey(t *testing.T, now func() time.Time) (*m2mclient.DPoPKey, *dpop.Signer) {
	t.Helper()
	key := mustECKey(t)
	k, err := m2mclient.NewDPoPKey(key, now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

// dpopToken gets app's token for usageAPI bound to key, through m2mclient
// (which retries once with the server's nonce, if asked).
func (e *testEnv) dpopToken(app admin.CreatedApplication, key *m2mclient.DPoPKey) string {
	e.t.Helper()
	ts, err := m2mclient.Config{Issuer: e.url, ClientID: app.ClientID, Audience: usageAPI, DPoP: key}.ClientSecret(e.t.Context(), app.ClientSecret)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		e.t.Fatal(err)
	}
	if tok.TokenType != oauth.TokenTypeDPoP {
		e.t.Fatalf("token_type %q", tok.TokenType)
	}
	return tok.AccessToken
}

// tokenWithProof posts app's client_secret_post token request for
// usageAPI with the DPoP header proof ("" for none), returning the status,
// the DPoP-Nonce header and the decoded body.
func (e *testEnv) tokenWithProof(base string, app admin.CreatedApplication, proof string) (int, string, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "audience": {usageAPI}}
	req, _ := http.NewRequest(http.MethodPost, base+oauth.PathToken, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, body := e.send(req)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	return resp.StatusCode, resp.Header.Get("DPoP-Nonce"), out
}

// tokenProof is signer's proof for a token request to e, with nonce.
func tokenProof(t *testing.T, e *testEnv, signer *dpop.Signer, nonce string) string {
	t.Helper()
	p, err := signer.Proof(http.MethodPost, e.url+oauth.PathToken, "", nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDPoPTokenIssued: m2mclient with Config.DPoP gets from the real
// server a token with token_type DPoP whose cnf.jkt is the key's
// thumbprint (signed as the JWKS says); introspection shows the cnf and
// token_type DPoP; a request without a proof still gets a Bearer token
// without cnf; discovery lists the proof algorithms.
func TestDPoPTokenIssued(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "dpop client", map[string][]string{usageAPI: nil})
	key, _ := newDPoPKey(t, nil)

	tok := e.dpopToken(app, key)
	claims := e.verifyWithJWKS(tok)
	cnf, _ := claims["cnf"].(map[string]any)
	if cnf["jkt"] != key.Thumbprint() || len(cnf) != 1 {
		t.Fatalf("cnf %v, want jkt %s", claims["cnf"], key.Thumbprint())
	}
	in := e.introspect(app.ClientID, app.ClientSecret, tok)
	if !in.Active || in.TokenType != "DPoP" || in.Confirmation.JKT != key.Thumbprint() {
		t.Fatalf("introspection %+v", in)
	}

	status, _, body := e.tokenWithProof(e.url, app, "")
	if status != http.StatusOK || body["token_type"] != "Bearer" {
		t.Fatalf("without a proof: %d %v", status, body)
	}
	if _, bound := e.verifyWithJWKS(body["access_token"].(string))["cnf"]; bound {
		t.Fatal("a token issued without a proof has cnf")
	}
	if in := e.introspect(app.ClientID, app.ClientSecret, body["access_token"].(string)); in.TokenType != "Bearer" || in.Confirmation.JKT != "" {
		t.Fatalf("bearer token's introspection %+v", in)
	}

	var meta map[string]any
	e.mustCall(http.StatusOK, "GET", oauth.PathASMetadata, "", nil, &meta)
	if algs, _ := json.Marshal(meta["dpop_signing_alg_values_supported"]); string(algs) != `["ES256","PS256","EdDSA","RS256"]` {
		t.Errorf("dpop_signing_alg_values_supported %s", algs)
	}
}

// resourceServer is an API on rs, on a loopback server, as
// examples/usage-api builds it (that example is a main package, so it
// cannot be started in process): GET /meters takes any valid token, GET
// /meters/export sender-constrained ones only.
func resourceServer(t *testing.T, e *testEnv) *httptest.Server {
	t.Helper()
	v, err := rs.New(t.Context(), rs.Config{Issuer: e.url, Audience: usageAPI})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "[]") })
	mux := http.NewServeMux()
	mux.Handle("GET /meters", v.Middleware(rs.RequireScope("read:meters")(ok)))
	mux.Handle("POST /meters", v.Middleware(rs.RequireScope("create:meters")(ok)))
	mux.Handle("GET /meters/export", v.WithPolicy(rs.SenderConstrained).Middleware(rs.RequireScope("read:meters")(ok)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

var challengeError = regexp.MustCompile(`error="([^"]*)"`)

// dpopRefusal is the scheme of the challenge that carries the error, and the
// error, of a 401.
func dpopRefusal(t *testing.T, resp *http.Response) (scheme, code string) {
	t.Helper()
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if m := challengeError.FindStringSubmatch(v); m != nil {
			s, _, _ := strings.Cut(v, " ")
			return s, m[1]
		}
	}
	return "", ""
}

// TestDPoPTokenAtResourceServer: rs accepts a DPoP-bound token m2mauth
// issued with a fresh proof by its key (m2mclient.DPoPTransport), and
// refuses it, with the challenge RFC 9449 §7.1 and RFC 6750 §3 ask for,
// as Bearer, with a proof from another key, a replayed proof, a proof for
// another method or URL, without ath or with a wrong one, and too old.
func TestDPoPTokenAtResourceServer(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "dpop client", map[string][]string{usageAPI: nil})
	raw := mustECKey(t)
	key, err := m2mclient.NewDPoPKey(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dpop.NewSigner(raw, rand.Reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := e.dpopToken(app, key)
	api := resourceServer(t, e)

	// The client package: a token source and the transport.
	ts, err := m2mclient.Config{Issuer: e.url, ClientID: app.ClientID, Audience: usageAPI, DPoP: key}.ClientSecret(t.Context(), app.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &m2mclient.DPoPTransport{Source: ts, Key: key}}
	for _, path := range []string{"/meters", "/meters/export"} {
		resp, err := client.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s with DPoPTransport: %d", path, resp.StatusCode)
		}
	}

	_, otherKey := newDPoPKey(t, nil)
	// The token's own key, on a clock two minutes behind.
	oldSigner, err := dpop.NewSigner(raw, rand.Reader, func() time.Time { return time.Now().Add(-2 * time.Minute) })
	if err != nil {
		t.Fatal(err)
	}
	replayed := mustProof(t, signer, "GET", api.URL+"/meters", tok)
	get(t, api.URL+"/meters", "DPoP "+tok, replayed) // its first use

	tests := []struct {
		name, method, path, auth, proof string
		wantScheme, wantCode            string
	}{
		{"as Bearer", "GET", "/meters", "Bearer " + tok, "", "Bearer", "invalid_token"},
		{"as Bearer with a proof", "GET", "/meters", "Bearer " + tok, mustProof(t, signer, "GET", api.URL+"/meters", tok), "Bearer", "invalid_token"},
		{"no proof", "GET", "/meters", "DPoP " + tok, "", "DPoP", "invalid_dpop_proof"},
		{"proof from another key", "GET", "/meters", "DPoP " + tok, mustProof(t, otherKey, "GET", api.URL+"/meters", tok), "DPoP", "invalid_token"},
		{"replayed proof", "GET", "/meters", "DPoP " + tok, replayed, "DPoP", "invalid_dpop_proof"},
		{"proof for another method", "GET", "/meters", "DPoP " + tok, mustProof(t, signer, "POST", api.URL+"/meters", tok), "DPoP", "invalid_dpop_proof"},
		{"proof for another URL", "GET", "/meters", "DPoP " + tok, mustProof(t, signer, "GET", api.URL+"/meters/export", tok), "DPoP", "invalid_dpop_proof"},
		{"proof without ath", "GET", "/meters", "DPoP " + tok, mustProof(t, signer, "GET", api.URL+"/meters", ""), "DPoP", "invalid_dpop_proof"},
		{"proof with a wrong ath", "GET", "/meters", "DPoP " + tok, mustProof(t, signer, "GET", api.URL+"/meters", tok+"x"), "DPoP", "invalid_dpop_proof"},
		{"proof too old", "GET", "/meters", "DPoP " + tok, mustProof(t, oldSigner, "GET", api.URL+"/meters", tok), "DPoP", "invalid_dpop_proof"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, api.URL+tc.path, tc.auth, tc.proof)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if s, c := dpopRefusal(t, resp); s != tc.wantScheme || c != tc.wantCode {
				t.Fatalf("challenge %q: error %s on %s, want %s on %s", resp.Header.Values("WWW-Authenticate"), c, s, tc.wantCode, tc.wantScheme)
			}
			if dpopCh := slices.IndexFunc(resp.Header.Values("WWW-Authenticate"), func(v string) bool { return strings.HasPrefix(v, "DPoP ") }); dpopCh < 0 ||
				!strings.Contains(resp.Header.Values("WWW-Authenticate")[dpopCh], `algs="ES256 PS256 EdDSA RS256"`) {
				t.Errorf("no DPoP challenge with algs: %q", resp.Header.Values("WWW-Authenticate"))
			}
		})
	}

	// A bearer token m2mauth issued passes the route that allows bearer
	// tokens and is refused by the sender-constrained one.
	_, _, body := e.tokenWithProof(e.url, app, "")
	bearer := body["access_token"].(string)
	if resp := get(t, api.URL+"/meters", "Bearer "+bearer, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("bearer token on /meters: %d", resp.StatusCode)
	}
	if resp := get(t, api.URL+"/meters/export", "Bearer "+bearer, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bearer token on /meters/export: %d, want 401", resp.StatusCode)
	} else if s, c := dpopRefusal(t, resp); c != "invalid_token" {
		t.Errorf("bearer token on /meters/export: error %s on %s", c, s)
	}
}

func mustECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustProof(t *testing.T, s *dpop.Signer, method, u, accessToken string) string {
	t.Helper()
	p, err := s.Proof(method, u, accessToken, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// get sends GET u with Authorization auth and DPoP proof ("" for none).
func get(t *testing.T, u, auth, proof string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", auth)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestDPoPNonceFlow: for an API that requires nonces, the first token
// request gets 400 use_dpop_nonce and a DPoP-Nonce header, and the retry
// with that nonce gets a DPoP-bound token (m2mclient does both by
// itself); a nonce another replica sharing the master key issued is
// accepted; so is the previous window's nonce, answered with the current
// one; an older one is refused again.
func TestDPoPNonceFlow(t *testing.T) {
	clk := newTestClock()
	masterKey := randomMasterKey(t)
	a := newTestEnv(t, withClock(clk.Now), withMasterKeys(masterKey, ""))
	app := a.createApp(a.adminToken(), "dpop client", nil)
	a.createPolicyAPI(a.adminToken(), senderPolicy{DPoPNonce: yes()})
	a.mustCall(http.StatusCreated, "POST", "/admin/v1/applications/"+app.ClientID+"/grants", a.adminToken(), map[string]any{"audience": usageAPI}, nil)
	key, signer := newDPoPKey(t, clk.Now)

	status, nonce, body := a.tokenWithProof(a.url, app, tokenProof(t, a, signer, ""))
	if status != http.StatusBadRequest || body["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("first request: %d %v, DPoP-Nonce %q: want 400 use_dpop_nonce with a nonce", status, body, nonce)
	}
	status, next, body := a.tokenWithProof(a.url, app, tokenProof(t, a, signer, nonce))
	if status != http.StatusOK || body["token_type"] != "DPoP" || next != "" {
		t.Fatalf("retry with the nonce: %d %v, DPoP-Nonce %q", status, body, next)
	}
	a.dpopToken(app, key) // m2mclient: the nonce retry by itself

	// Another replica, sharing only the master key (its own database).
	b := newTestEnv(t, withClock(clk.Now), withMasterKeys(masterKey, ""))
	appB := b.createApp(b.adminToken(), "dpop client", nil)
	b.createPolicyAPI(b.adminToken(), senderPolicy{DPoPNonce: yes()})
	b.mustCall(http.StatusCreated, "POST", "/admin/v1/applications/"+appB.ClientID+"/grants", b.adminToken(), map[string]any{"audience": usageAPI}, nil)
	_, nonceB, _ := b.tokenWithProof(b.url, appB, tokenProof(t, b, signer, ""))
	if nonceB == "" {
		t.Fatal("replica B sent no nonce")
	}
	if status, _, body := a.tokenWithProof(a.url, app, tokenProof(t, a, signer, nonceB)); status != http.StatusOK {
		t.Fatalf("replica B's nonce at replica A: %d %v", status, body)
	}

	// The previous window's nonce, minted by dpop.Nonces keyed as the
	// servers are, is accepted and answered with the current nonce.
	nonceKey, err := masterkey.Parse(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := dpopNonceKey(nonceKey)
	if err != nil {
		t.Fatal(err)
	}
	previous := dpop.NewNonces(derived, dpop.DefaultNonceWindow, func() time.Time { return clk.Now().Add(-dpop.DefaultNonceWindow) }).Current()
	status, next, body = a.tokenWithProof(a.url, app, tokenProof(t, a, signer, previous))
	if status != http.StatusOK || next != nonce {
		t.Fatalf("previous window's nonce: %d %v, DPoP-Nonce %q, want the current %q", status, body, next, nonce)
	}

	// Two windows on, the first nonce is stale.
	clk.Add(2 * dpop.DefaultNonceWindow)
	status, fresh, body := a.tokenWithProof(a.url, app, tokenProof(t, a, signer, nonce))
	if status != http.StatusBadRequest || body["error"] != "use_dpop_nonce" || fresh == "" || fresh == nonce {
		t.Fatalf("stale nonce: %d %v, DPoP-Nonce %q", status, body, fresh)
	}
	if status, _, body := a.tokenWithProof(a.url, app, tokenProof(t, a, signer, fresh)); status != http.StatusOK {
		t.Fatalf("with the fresh nonce: %d %v", status, body)
	}
}

// TestDPoPRequired: an API with dpop required refuses a token request
// without a proof (400 invalid_dpop_proof) and serves one with a proof.
func TestDPoPRequired(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createPolicyAPI(adm, senderPolicy{DPoP: "required"})
	app := e.createApp(adm, "dpop client", map[string][]string{usageAPI: nil})
	status, _, body := e.tokenWithProof(e.url, app, "")
	if status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("without a proof: %d %v, want 400 invalid_dpop_proof", status, body)
	}
	key, _ := newDPoPKey(t, nil)
	e.dpopToken(app, key)
	// A refused proof is answered invalid_dpop_proof too.
	_, signer := newDPoPKey(t, nil)
	p, _ := signer.Proof(http.MethodGet, e.url+oauth.PathToken, "", "")
	if status, _, body := e.tokenWithProof(e.url, app, p); status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("a proof for GET: %d %v", status, body)
	}
}
