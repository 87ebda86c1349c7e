package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/rs"
)

// TestGrantClaims: a grant's custom claims are in every token for its
// audience (verified against the JWKS and by rs), introspection shows them,
// a PATCH replaces them, and reserved names, management grants and actors
// without update:applications are refused.
func TestGrantClaims(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	var app admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name": "tenant worker",
		"grants": []map[string]any{{"audience": usageAPI,
			"claims": map[string]any{"tenant_id": "t-42", "tier": 3, "regions": []string{"eu", "us"}}}},
	}, &app)
	e.addSecret(app.ClientSecret)
	if got := app.Grants[0].Claims; string(got["tenant_id"]) != `"t-42"` || string(got["tier"]) != "3" {
		t.Fatalf("created grant claims = %v", got)
	}

	tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	claims := e.verifyWithJWKS(tok)
	if claims["tenant_id"] != "t-42" || claims["tier"] != float64(3) || claims["client_id"] != app.ClientID {
		t.Fatalf("token claims = %v", claims)
	}

	v, err := rs.New(t.Context(), rs.Config{Issuer: e.url, Audience: usageAPI})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := v.Validate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	var tenant string
	var regions []string
	if ok, err := rc.Claim("tenant_id", &tenant); !ok || err != nil || tenant != "t-42" {
		t.Fatalf("rs Claim(tenant_id) = %v, %v, %q", ok, err, tenant)
	}
	if ok, err := rc.Claim("regions", &regions); !ok || err != nil || strings.Join(regions, ",") != "eu,us" {
		t.Fatalf("rs Claim(regions) = %v, %v, %v", ok, err, regions)
	}
	if ok, _ := rc.Claim("org", &tenant); ok {
		t.Fatal("rs Claim(org): found a claim the token lacks")
	}

	status, body := e.postForm(oauth.PathIntrospect, url.Values{"token": {tok}}, basicAuth(app.ClientID, app.ClientSecret))
	var intro map[string]any
	if err := json.Unmarshal(body, &intro); status != http.StatusOK || err != nil {
		t.Fatalf("introspection: %d %s", status, body)
	}
	if intro["active"] != true || intro["tenant_id"] != "t-42" || intro["tier"] != float64(3) {
		t.Fatalf("introspection = %s", body)
	}

	grantPath := "/admin/v1/applications/" + app.ClientID + "/grants/" + app.Grants[0].ID
	var g admin.GrantResource
	e.mustCall(http.StatusOK, "PATCH", grantPath, adm, map[string]any{"claims": map[string]any{"org": "acme"}}, &g)
	if len(g.Claims) != 1 || string(g.Claims["org"]) != `"acme"` || len(g.Scopes) != len(usageScopes) {
		t.Fatalf("patched grant = %+v", g)
	}
	claims = e.verifyWithJWKS(e.tokenFor(app.ClientID, app.ClientSecret, usageAPI))
	if claims["org"] != "acme" || claims["tenant_id"] != nil {
		t.Fatalf("token after PATCH = %v", claims)
	}
	if ev := e.auditEvents("grant.update"); len(ev) == 0 || !strings.Contains(ev[0].Details, `"claims":{"org":"acme"}`) {
		t.Fatalf("grant.update audit = %+v", ev)
	}

	t.Run("refused at configuration time", func(t *testing.T) {
		e := e.with(t)
		for _, c := range []struct {
			name   string
			claims map[string]any
			detail string
		}{
			{"registered claim", map[string]any{"sub": "someone"}, `claim "sub" is reserved`},
			{"protocol claim", map[string]any{"scope": "admin"}, `claim "scope" is reserved`},
			{"introspection member", map[string]any{"active": true}, `claim "active" is reserved`},
			{"confirmation", map[string]any{"cnf": map[string]any{}}, `claim "cnf" is reserved`},
			{"null value", map[string]any{"tenant_id": nil}, "null"},
			{"name with a space", map[string]any{"tenant id": "x"}, "printable"},
			{"too large", map[string]any{"blob": strings.Repeat("x", 5000)}, "at most 4096"},
		} {
			p := e.refused(http.StatusBadRequest, "PATCH", grantPath, adm, map[string]any{"claims": c.claims})
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("%s: detail %q, want it to say %q", c.name, p.Detail, c.detail)
			}
		}
		mgmt := "/admin/v1/applications/" + e.admin.ClientID + "/grants"
		var list admin.List[admin.GrantResource]
		e.mustCall(http.StatusOK, "GET", mgmt, adm, nil, &list)
		p := e.refused(http.StatusBadRequest, "PATCH", mgmt+"/"+list.Items[0].ID, adm, map[string]any{"claims": map[string]any{"tenant_id": "x"}})
		if !strings.Contains(p.Detail, "management API tokens carry no custom claims") {
			t.Errorf("management grant: %q", p.Detail)
		}
	})

	t.Run("needs update:applications", func(t *testing.T) {
		e := e.with(t)
		_, creator := e.adminWith(adm, "creator", authz.ScopeCreateApplications, authz.ScopeReadApplications)
		p := e.refused(http.StatusForbidden, "POST", "/admin/v1/applications", creator, map[string]any{
			"name": "sneaky", "grants": []map[string]any{{"audience": usageAPI, "claims": map[string]any{"tenant_id": "t-1"}}},
		})
		if len(p.MissingScopes) != 1 || p.MissingScopes[0] != authz.ScopeUpdateApplications {
			t.Fatalf("create with claims: %+v", p)
		}
		for path, body := range map[string]any{
			grantPath:                                map[string]any{"claims": map[string]any{"tenant_id": "t-1"}},
			"/admin/v1/applications/" + app.ClientID: map[string]any{"policy": map[string]any{"allowed_ips": []string{"10.0.0.0/8"}}},
		} {
			if resp := e.call("PATCH", path, creator, body, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("PATCH %s without update:applications: %d", path, resp.StatusCode)
			}
		}
	})
}

// TestGrantTokenLifetime: a grant's token_lifetime sets exp, is bounded by
// the API's, and the smaller wins once the API's is lowered below it.
func TestGrantTokenLifetime(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	api := e.createAPI(adm, usageAPI, "", usageScopes...) // 3600 s
	app := e.createApp(adm, "short-lived", map[string][]string{usageAPI: nil})
	grantPath := "/admin/v1/applications/" + app.ClientID + "/grants/" + app.Grants[0].ID
	lifetime := func() int64 {
		c := e.verifyWithJWKS(e.tokenFor(app.ClientID, app.ClientSecret, usageAPI))
		return int64(c["exp"].(float64) - c["iat"].(float64))
	}

	var g admin.GrantResource
	e.mustCall(http.StatusOK, "PATCH", grantPath, adm, map[string]any{"token_lifetime": 600}, &g)
	if g.TokenLifetime != 600 {
		t.Fatalf("grant token_lifetime = %d", g.TokenLifetime)
	}
	if got := lifetime(); got != 600 {
		t.Fatalf("token lifetime %d s, want 600", got)
	}
	for _, bad := range []int64{59, 3601} {
		p := e.refused(http.StatusBadRequest, "PATCH", grantPath, adm, map[string]any{"token_lifetime": bad})
		if !strings.Contains(p.Detail, "60 to 3600 seconds") {
			t.Errorf("token_lifetime %d: %q", bad, p.Detail)
		}
	}

	e.mustCall(http.StatusOK, "PATCH", "/admin/v1/apis/"+api.ID, adm, map[string]any{"token_lifetime": 300}, nil)
	if got := lifetime(); got != 300 {
		t.Fatalf("after lowering the API's lifetime: token lifetime %d s, want 300", got)
	}
	g = admin.GrantResource{}
	e.mustCall(http.StatusOK, "PATCH", grantPath, adm, map[string]any{"token_lifetime": 0}, &g)
	if g.TokenLifetime != 0 || lifetime() != 300 {
		t.Fatalf("token_lifetime 0: grant %d, token %d", g.TokenLifetime, lifetime())
	}
}
