package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// fedEnv is a server that trusts a test issuer's Kubernetes cluster,
// GitHub-Actions-shaped OIDC issuer and SPIFFE trust domain, with one
// application ("billing", no secret) holding a federated credential for
// each.
type fedEnv struct {
	*testEnv
	clk      *fake.Clock
	iss      *testIssuer
	clientID string
	issuers  map[string]string // "k8s", "gh", "spiffe" → trusted issuer id
	creds    map[string]string // same keys → credential id
}

const fedAPI = "https://api.example.com"

func newFedEnv(t *testing.T, opts ...envOption) *fedEnv {
	t.Helper()
	clk := fake.NewClock(time.Now().Truncate(time.Second))
	iss := newTestIssuer(t, false)
	opts = append([]envOption{withClock(clk.Now), func(c *Config, _ *Deps) {
		c.FetchRootCAs = iss.pool()
		c.AuthMaxFailures = 1000 // the refusals below would lock the address out
	}}, opts...)
	f := &fedEnv{testEnv: newTestEnv(t, opts...), clk: clk, iss: iss, issuers: map[string]string{}, creds: map[string]string{}}
	adm := f.adminToken()
	f.createAPI(adm, fedAPI, "ES256", "read")
	f.clientID = f.createSecretless("billing")
	for name, body := range map[string]map[string]any{
		"k8s":    {"name": "prod cluster", "kind": "kubernetes", "issuer": iss.k8sIssuer()},
		"gh":     {"name": "GitHub Actions", "kind": "oidc", "issuer": iss.ghIssuer()},
		"spiffe": {"name": "example.org", "kind": "spiffe", "trust_domain": "example.org", "bundle_url": iss.URL + "/bundle"},
	} {
		var ti admin.TrustedIssuerResource
		f.mustCall(http.StatusCreated, "POST", "/admin/v1/trusted-issuers", adm, body, &ti)
		f.issuers[name] = ti.ID
	}
	f.creds["k8s"] = f.addFederated(f.clientID, map[string]any{"trusted_issuer": f.issuers["k8s"],
		"subject": "system:serviceaccount:prod:billing", "claims": map[string]any{"kubernetes.io.namespace": "prod"}})
	f.creds["gh"] = f.addFederated(f.clientID, map[string]any{"trusted_issuer": f.issuers["gh"],
		"subject": "repo:acme/billing:ref:refs/heads/*", "audience": "api://m2mauth",
		"claims": map[string]any{"repository_owner": "acme", "environment": []string{"prod", "staging"}}})
	f.creds["spiffe"] = f.addFederated(f.clientID, map[string]any{"trusted_issuer": f.issuers["spiffe"],
		"subject": "spiffe://example.org/ns/prod/sa/billing"})
	return f
}

// createSecretless creates an application without a secret, granted fedAPI.
func (f *fedEnv) createSecretless(name string) string {
	f.t.Helper()
	var app admin.CreatedApplication
	f.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", f.adminToken(), map[string]any{
		"name": name, "client_secret": false, "grants": []map[string]any{{"audience": fedAPI}},
	}, &app)
	return app.ClientID
}

func (f *fedEnv) addFederated(clientID string, body map[string]any) string {
	f.t.Helper()
	body["type"] = "federated"
	var cred admin.CredentialResource
	f.mustCall(http.StatusCreated, "POST", "/admin/v1/applications/"+clientID+"/credentials", f.adminToken(), body, &cred)
	return cred.ID
}

// Kubernetes-shaped service-account token claims (a projected token with
// our issuer as audience).
func (f *fedEnv) k8sClaims(mod func(map[string]any)) map[string]any {
	now := f.clk.Now()
	c := map[string]any{
		"iss": f.iss.k8sIssuer(), "sub": "system:serviceaccount:prod:billing", "aud": []string{f.url},
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "prod",
			"pod":            map[string]any{"name": "billing-7d9f", "uid": "0b9c"},
			"serviceaccount": map[string]any{"name": "billing", "uid": "5f2e"},
		},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// GitHub-Actions-shaped OIDC token claims.
func (f *fedEnv) ghClaims(mod func(map[string]any)) map[string]any {
	now := f.clk.Now()
	c := map[string]any{
		"iss": f.iss.ghIssuer(), "sub": "repo:acme/billing:ref:refs/heads/main", "aud": "api://m2mauth",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "jti": rand.Text(),
		"repository": "acme/billing", "repository_owner": "acme", "ref": "refs/heads/main", "environment": "prod",
		"workflow": "deploy", "event_name": "push", "run_id": "4242", "run_attempt": "1",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// JWT-SVID-shaped claims: no iss, no jti.
func (f *fedEnv) svidClaims(mod func(map[string]any)) map[string]any {
	c := map[string]any{"sub": "spiffe://example.org/ns/prod/sa/billing", "aud": []string{f.url}, "exp": f.clk.Now().Add(5 * time.Minute).Unix(), "iat": f.clk.Now().Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

// present asks for a token with assertion as client_assertion of typ,
// without client_id unless extra has one.
func (f *fedEnv) present(assertion, typ string, extra url.Values) (int, map[string]any) {
	f.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {fedAPI}, "client_assertion_type": {typ}, "client_assertion": {assertion}}
	for k, v := range extra {
		form[k] = v
	}
	return f.tokenForm(form)
}

// grant asks for a token with the jwt-bearer grant (RFC 7523 §2.1).
func (f *fedEnv) grant(assertion string, extra url.Values) (int, map[string]any) {
	f.t.Helper()
	form := url.Values{"grant_type": {oauth.GrantTypeJWTBearer}, "audience": {fedAPI}, "assertion": {assertion}}
	for k, v := range extra {
		form[k] = v
	}
	return f.tokenForm(form)
}

func (f *fedEnv) tokenForm(form url.Values) (int, map[string]any) {
	f.t.Helper()
	status, body := f.postForm(oauth.PathToken, form, nil)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		f.t.Fatalf("body %s: %v", body, err)
	}
	return status, out
}

func (f *fedEnv) with(t *testing.T) *fedEnv {
	c := *f
	c.testEnv = f.testEnv.with(t)
	return &c
}

// fresh reports whether the single-use issuer's jti was never recorded:
// it records it now, through the server's own replay store.
func (f *fedEnv) fresh(jti string) bool {
	f.t.Helper()
	ok, err := f.srv.db.UseJTI(context.Background(), "fed:"+f.iss.ghIssuer()+":"+jti, f.clk.Now().Add(time.Hour))
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// appCount is how many applications the server holds.
func (f *fedEnv) appCount() int {
	f.t.Helper()
	var list admin.List[json.RawMessage]
	f.mustCall(200, "GET", "/admin/v1/applications?limit=100", f.adminToken(), nil, &list)
	return len(list.Items)
}

// noneJWT is an alg none JWT, built by hand (go-jose will not make one).
func noneJWT(claims map[string]any, kid string) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// hs256JWT is claims signed with HMAC under kid, as an attacker who
// takes a public key for a shared secret would.
func hs256JWT(t *testing.T, claims map[string]any, kid string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: make([]byte, 32)}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(claims)
	jws, err := sig.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// checkToken checks that a token response is a token for clientID that
// expires no later than the assertion's exp.
func (f *fedEnv) checkToken(status int, body map[string]any, clientID string, assertionExp int64) {
	f.t.Helper()
	if status != http.StatusOK {
		f.t.Fatalf("%d %v", status, body)
	}
	tok, _ := body["access_token"].(string)
	claims := f.verifyWithJWKS(tok)
	if claims["client_id"] != clientID || claims["aud"] != fedAPI {
		f.t.Fatalf("claims %v", claims)
	}
	if exp := int64(claims["exp"].(float64)); exp > assertionExp {
		f.t.Fatalf("access token exp %d after the assertion's %d", exp, assertionExp)
	}
}

func TestFederatedE2E(t *testing.T) {
	f := newFedEnv(t)

	t.Run("discovery lists the methods and the grant", func(t *testing.T) {
		var m map[string]any
		f.with(t).mustCall(200, "GET", "/.well-known/oauth-authorization-server", "", nil, &m)
		methods, _ := json.Marshal(m["token_endpoint_auth_methods_supported"])
		grants, _ := json.Marshal(m["grant_types_supported"])
		if string(methods) != `["client_secret_basic","client_secret_post","private_key_jwt","federated_jwt","spiffe_jwt"]` ||
			string(grants) != `["client_credentials","urn:ietf:params:oauth:grant-type:jwt-bearer"]` {
			t.Fatalf("methods %s, grants %s", methods, grants)
		}
	})

	t.Run("a token by each method, client_id omitted", func(t *testing.T) {
		f := f.with(t)
		k8s := f.k8sClaims(nil)
		status, body := f.present(f.iss.mint("k8s", k8s, ""), oauth.AssertionTypeJWTBearer, nil)
		f.checkToken(status, body, f.clientID, k8s["exp"].(int64))

		gh := f.ghClaims(nil)
		status, body = f.present(f.iss.mint("gh", gh, ""), oauth.AssertionTypeJWTBearer, nil)
		f.checkToken(status, body, f.clientID, gh["exp"].(int64))

		svid := f.svidClaims(nil)
		status, body = f.present(f.iss.mint("bundle", svid, ""), oauth.AssertionTypeJWTSPIFFE, nil)
		f.checkToken(status, body, f.clientID, svid["exp"].(int64))
	})

	t.Run("the jwt-bearer grant", func(t *testing.T) {
		f := f.with(t)
		k8s := f.k8sClaims(nil)
		status, body := f.grant(f.iss.mint("k8s", k8s, ""), nil)
		f.checkToken(status, body, f.clientID, k8s["exp"].(int64))
		gh := f.ghClaims(nil)
		status, body = f.grant(f.iss.mint("gh", gh, ""), url.Values{"client_id": {f.clientID}})
		f.checkToken(status, body, f.clientID, gh["exp"].(int64))
		// Refusals are invalid_grant (RFC 7523 §3.1).
		status, body = f.grant(f.iss.mint("k8s", f.k8sClaims(func(c map[string]any) { c["sub"] = "system:serviceaccount:prod:other" }), ""), nil)
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("wrong sub by the grant: %d %v", status, body)
		}
	})

	t.Run("the access token never outlives the assertion", func(t *testing.T) {
		f := f.with(t)
		c := f.k8sClaims(func(c map[string]any) { c["exp"] = f.clk.Now().Add(90 * time.Second).Unix() })
		status, body := f.present(f.iss.mint("k8s", c, ""), oauth.AssertionTypeJWTBearer, nil)
		f.checkToken(status, body, f.clientID, c["exp"].(int64))
		if in := body["expires_in"].(float64); in > 90 {
			t.Fatalf("expires_in %v", in)
		}
	})

	now := f.clk.Now()
	refusals := []struct {
		name      string
		assertion func() (string, string) // assertion, jti of a GitHub-shaped one ("" if none)
		typ       string
	}{
		{"wrong sub", ghWith(f, func(c map[string]any) { c["sub"] = "repo:acme/other:ref:refs/heads/main" }), oauth.AssertionTypeJWTBearer},
		{"wrong claim", ghWith(f, func(c map[string]any) { c["repository_owner"] = "evil" }), oauth.AssertionTypeJWTBearer},
		{"claim not in the list", ghWith(f, func(c map[string]any) { c["environment"] = "dev" }), oauth.AssertionTypeJWTBearer},
		{"wrong nested claim", k8sWith(f, func(c map[string]any) { c["kubernetes.io"] = map[string]any{"namespace": "dev"} }), oauth.AssertionTypeJWTBearer},
		{"wrong aud", ghWith(f, func(c map[string]any) { c["aud"] = "https://elsewhere.example" }), oauth.AssertionTypeJWTBearer},
		{"token endpoint URL as aud (strict)", k8sWith(f, func(c map[string]any) { c["aud"] = f.url + oauth.PathToken }), oauth.AssertionTypeJWTBearer},
		{"expired", ghWith(f, func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }), oauth.AssertionTypeJWTBearer},
		{"exp more than 24 h ahead", ghWith(f, func(c map[string]any) { c["exp"] = now.Add(25 * time.Hour).Unix() }), oauth.AssertionTypeJWTBearer},
		{"iat more than 10 s ahead", ghWith(f, func(c map[string]any) { c["iat"] = now.Add(11 * time.Second).Unix() }), oauth.AssertionTypeJWTBearer},
		{"nbf more than 10 s ahead", ghWith(f, func(c map[string]any) { c["nbf"] = now.Add(11 * time.Second).Unix() }), oauth.AssertionTypeJWTBearer},
		{"alg none", func() (string, string) { c := f.ghClaims(nil); return noneJWT(c, "gh-1"), c["jti"].(string) }, oauth.AssertionTypeJWTBearer},
		{"HS256", func() (string, string) { c := f.ghClaims(nil); return hs256JWT(t, c, "gh-1"), c["jti"].(string) }, oauth.AssertionTypeJWTBearer},
		{"SVID of another workload", func() (string, string) {
			return f.iss.mint("bundle", f.svidClaims(func(c map[string]any) { c["sub"] = "spiffe://example.org/ns/prod/sa/other" }), ""), ""
		}, oauth.AssertionTypeJWTSPIFFE},
		{"SVID of another trust domain", func() (string, string) {
			return f.iss.mint("bundle", f.svidClaims(func(c map[string]any) { c["sub"] = "spiffe://evil.example/ns/prod/sa/billing" }), ""), ""
		}, oauth.AssertionTypeJWTSPIFFE},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			f := f.with(t)
			apps := f.appCount()
			a, jti := tc.assertion()
			status, body := f.present(a, tc.typ, nil)
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Fatalf("%d %v, want 401 invalid_client", status, body)
			}
			if jti != "" && !f.fresh(jti) {
				t.Fatal("a refused assertion's jti was recorded")
			}
			if f.appCount() != apps {
				t.Fatal("a refused assertion created an application")
			}
		})
	}

	t.Run("refused: a replayed jti on a single-use issuer", func(t *testing.T) {
		f := f.with(t)
		a := f.iss.mint("gh", f.ghClaims(nil), "")
		if status, body := f.present(a, oauth.AssertionTypeJWTBearer, nil); status != 200 {
			t.Fatalf("first use: %d %v", status, body)
		}
		if status, body := f.present(a, oauth.AssertionTypeJWTBearer, nil); status != 401 || body["error"] != "invalid_client" {
			t.Fatalf("second use: %d %v", status, body)
		}
		// A reusable issuer's token (Kubernetes) and a JWT-SVID may be presented again.
		k8s, svid := f.iss.mint("k8s", f.k8sClaims(nil), ""), f.iss.mint("bundle", f.svidClaims(nil), "")
		for range 2 {
			if status, body := f.present(k8s, oauth.AssertionTypeJWTBearer, nil); status != 200 {
				t.Fatalf("Kubernetes token again: %d %v", status, body)
			}
			if status, body := f.present(svid, oauth.AssertionTypeJWTSPIFFE, nil); status != 200 {
				t.Fatalf("JWT-SVID again: %d %v", status, body)
			}
		}
	})

	t.Run("refused: an unknown kid, after one refetch", func(t *testing.T) {
		f := f.with(t)
		f.clk.Add(11 * time.Second) // past the refetch interval of earlier fetches
		before := f.iss.fetches("/k8s/jwks")
		for i := range 3 {
			status, body := f.present(f.iss.mint("k8s", f.k8sClaims(nil), "made-up"), oauth.AssertionTypeJWTBearer, nil)
			if status != 401 || body["error"] != "invalid_client" {
				t.Fatalf("attempt %d: %d %v", i, status, body)
			}
		}
		if n := f.iss.fetches("/k8s/jwks") - before; n != 1 {
			t.Fatalf("%d JWKS fetches for three unknown-kid assertions, want 1", n)
		}
	})

	t.Run("key rotation at the issuer, without a restart", func(t *testing.T) {
		f := f.with(t)
		f.clk.Add(11 * time.Second)
		before := f.iss.fetches("/k8s/jwks")
		f.iss.rotate("k8s", "k8s-2")
		c := f.k8sClaims(nil)
		status, body := f.present(f.iss.mint("k8s", c, ""), oauth.AssertionTypeJWTBearer, nil)
		f.checkToken(status, body, f.clientID, c["exp"].(int64))
		if n := f.iss.fetches("/k8s/jwks") - before; n != 1 {
			t.Fatalf("%d JWKS fetches for the new kid, want 1", n)
		}
		f.clk.Add(11 * time.Second)
		before = f.iss.fetches("/bundle")
		f.iss.rotate("bundle", "bundle-2")
		svid := f.svidClaims(nil)
		status, body = f.present(f.iss.mint("bundle", svid, ""), oauth.AssertionTypeJWTSPIFFE, nil)
		f.checkToken(status, body, f.clientID, svid["exp"].(int64))
		if n := f.iss.fetches("/bundle") - before; n != 1 {
			t.Fatalf("%d bundle fetches for the new kid, want 1", n)
		}
	})

	t.Run("ambiguity: two applications match", func(t *testing.T) {
		f := f.with(t)
		second := f.createSecretless("billing-2")
		credID := f.addFederated(second, map[string]any{"trusted_issuer": f.issuers["k8s"], "subject": "system:serviceaccount:prod:*"})
		a := f.iss.mint("k8s", f.k8sClaims(nil), "")
		if status, body := f.present(a, oauth.AssertionTypeJWTBearer, nil); status != 401 || body["error"] != "invalid_client" {
			t.Fatalf("without client_id: %d %v", status, body)
		}
		if !strings.Contains(f.logs.String(), "ambiguous: 2 applications match; send client_id") {
			t.Fatal("the ambiguity is not logged")
		}
		for _, id := range []string{f.clientID, second} {
			status, body := f.present(a, oauth.AssertionTypeJWTBearer, url.Values{"client_id": {id}})
			f.checkToken(status, body, id, f.k8sClaims(nil)["exp"].(int64))
		}
		f.mustCall(http.StatusNoContent, "DELETE", "/admin/v1/applications/"+second+"/credentials/"+credID, f.adminToken(), nil, nil)
	})

	t.Run("refused: a deleted credential", func(t *testing.T) {
		f := f.with(t)
		f.mustCall(http.StatusNoContent, "DELETE", "/admin/v1/applications/"+f.clientID+"/credentials/"+f.creds["gh"], f.adminToken(), nil, nil)
		c := f.ghClaims(nil)
		if status, body := f.present(f.iss.mint("gh", c, ""), oauth.AssertionTypeJWTBearer, nil); status != 401 || body["error"] != "invalid_client" {
			t.Fatalf("%d %v", status, body)
		}
		if !f.fresh(c["jti"].(string)) {
			t.Fatal("the refused assertion's jti was recorded")
		}
	})

	t.Run("the audit log names the external issuer and subject", func(t *testing.T) {
		f := f.with(t)
		if err := f.srv.recorder.FlushAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		var log admin.List[admin.AuditEventResource]
		f.mustCall(200, "GET", "/admin/v1/audit?limit=500&action=client.federated_authentication", f.adminToken(), nil, &log)
		var seen []string
		for _, ev := range log.Items {
			var d struct{ Issuer, Subject string }
			json.Unmarshal(ev.Details, &d)
			if ev.Target == f.clientID {
				seen = append(seen, d.Issuer+" "+d.Subject)
			}
		}
		for _, want := range []string{
			f.iss.k8sIssuer() + " system:serviceaccount:prod:billing",
			f.iss.ghIssuer() + " repo:acme/billing:ref:refs/heads/main",
			"spiffe://example.org spiffe://example.org/ns/prod/sa/billing",
		} {
			if !slices.Contains(seen, want) {
				t.Errorf("no client.federated_authentication event for %q in %q", want, seen)
			}
		}
	})
}

func ghWith(f *fedEnv, mod func(map[string]any)) func() (string, string) {
	return func() (string, string) {
		c := f.ghClaims(mod)
		return f.iss.mint("gh", c, ""), c["jti"].(string)
	}
}

func k8sWith(f *fedEnv, mod func(map[string]any)) func() (string, string) {
	return func() (string, string) { return f.iss.mint("k8s", f.k8sClaims(mod), ""), "" }
}

// TestFederatedLenientAudienceE2E: in lenient mode the token endpoint URL
// stands for the issuer.
func TestFederatedLenientAudienceE2E(t *testing.T) {
	f := newFedEnv(t, func(c *Config, _ *Deps) { c.ClientAssertionAudience = "lenient" })
	for _, aud := range []any{f.url + oauth.PathToken, []string{f.url, "https://other.example"}} {
		c := f.k8sClaims(func(c map[string]any) { c["aud"] = aud })
		status, body := f.present(f.iss.mint("k8s", c, ""), oauth.AssertionTypeJWTBearer, nil)
		f.checkToken(status, body, f.clientID, c["exp"].(int64))
	}
	c := f.k8sClaims(func(c map[string]any) { c["aud"] = "https://elsewhere.example" })
	if status, _ := f.present(f.iss.mint("k8s", c, ""), oauth.AssertionTypeJWTBearer, nil); status != 401 {
		t.Fatalf("another audience in lenient mode: %d", status)
	}
}

// TestFederatedTokenLifetimeAPIE2E: with --federated-token-lifetime api
// the token gets the API's lifetime.
func TestFederatedTokenLifetimeAPIE2E(t *testing.T) {
	f := newFedEnv(t, func(c *Config, _ *Deps) { c.FederatedTokenLifetime = "api" })
	c := f.k8sClaims(func(c map[string]any) { c["exp"] = f.clk.Now().Add(time.Minute).Unix() })
	status, body := f.present(f.iss.mint("k8s", c, ""), oauth.AssertionTypeJWTBearer, nil)
	if status != 200 || body["expires_in"].(float64) <= 60 {
		t.Fatalf("%d %v", status, body)
	}
}

// TestFederatedInsecureIssuerE2E: an http issuer on loopback is refused
// unless --allow-insecure-issuers, and then works.
func TestFederatedInsecureIssuerE2E(t *testing.T) {
	iss := newTestIssuer(t, true)
	body := map[string]any{"name": "dev cluster", "kind": "kubernetes", "issuer": iss.k8sIssuer()}

	t.Run("refused by default", func(t *testing.T) {
		e := newTestEnv(t)
		e.mustCall(http.StatusBadRequest, "POST", "/admin/v1/trusted-issuers", e.adminToken(), body, nil)
	})
	t.Run("allowed with AllowInsecureIssuers", func(t *testing.T) {
		clk := fake.NewClock(time.Now().Truncate(time.Second))
		e := newTestEnv(t, withClock(clk.Now), func(c *Config, _ *Deps) { c.AllowInsecureIssuers = true })
		f := &fedEnv{testEnv: e, clk: clk, iss: iss}
		adm := e.adminToken()
		e.createAPI(adm, fedAPI, "ES256", "read")
		f.clientID = f.createSecretless("dev")
		var ti admin.TrustedIssuerResource
		e.mustCall(http.StatusCreated, "POST", "/admin/v1/trusted-issuers", adm, body, &ti)
		f.addFederated(f.clientID, map[string]any{"trusted_issuer": ti.ID, "subject": "system:serviceaccount:prod:billing"})
		c := f.k8sClaims(nil)
		status, out := f.present(iss.mint("k8s", c, ""), oauth.AssertionTypeJWTBearer, nil)
		f.checkToken(status, out, f.clientID, c["exp"].(int64))
	})
}
