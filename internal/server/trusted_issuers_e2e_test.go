package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
)

// spiffeBundle is an inline SPIFFE bundle with one jwt-svid key.
func spiffeBundle(t *testing.T) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jose.JSONWebKey{Key: &k.PublicKey, KeyID: "svid-1"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(jwk, &m)
	m["use"] = "jwt-svid"
	b, _ := json.Marshal(map[string]any{"keys": []any{m}, "spiffe_sequence": 1})
	return b
}

// TestTrustedIssuersOverHTTP: the shapes of /admin/v1/trusted-issuers and
// of federated credentials (created alone or with their application), the
// status of each refusal, and 403 for a token without the scope.
func TestTrustedIssuersOverHTTP(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()

	// Create: 201 with Location; defaults filled in.
	var gh admin.TrustedIssuerResource
	resp := e.call("POST", "/admin/v1/trusted-issuers", adm, map[string]any{"name": "GitHub Actions", "kind": "oidc", "issuer": "https://token.actions.githubusercontent.com"}, &gh)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/admin/v1/trusted-issuers/"+gh.ID {
		t.Fatalf("create: %d, Location %q, %+v", resp.StatusCode, resp.Header.Get("Location"), gh)
	}
	if !strings.HasPrefix(gh.ID, "tis_") || gh.Kind != "oidc" || !gh.SingleUse || gh.CreatedAt.IsZero() || gh.JWKS != nil {
		t.Fatalf("created %+v", gh)
	}
	var mesh admin.TrustedIssuerResource
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/trusted-issuers", adm, map[string]any{"name": "mesh", "kind": "spiffe", "trust_domain": "prod.example.org", "jwks": spiffeBundle(t)}, &mesh)
	if mesh.Issuer != "spiffe://prod.example.org" || mesh.TrustDomain != "prod.example.org" || mesh.SingleUse || !strings.Contains(string(mesh.JWKS), "jwt-svid") {
		t.Fatalf("created %+v", mesh)
	}

	// The raw answer has the contract's member names, and no empty ones.
	var raw map[string]any
	e.mustCall(http.StatusOK, "GET", "/admin/v1/trusted-issuers/"+gh.ID, adm, nil, &raw)
	for _, k := range []string{"id", "name", "kind", "issuer", "single_use", "created_at", "updated_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("GET trusted issuer: no %q in %v", k, raw)
		}
	}
	for _, k := range []string{"jwks", "jwks_uri", "trust_domain", "bundle_url"} {
		if _, ok := raw[k]; ok {
			t.Errorf("GET trusted issuer: %q present in %v", k, raw)
		}
	}

	for name, body := range map[string]map[string]any{
		"http issuer":   {"name": "x", "kind": "oidc", "issuer": "http://issuer.example.com"},
		"unknown kind":  {"name": "x", "kind": "saml", "issuer": "https://issuer.example.com"},
		"unknown field": {"name": "x", "kind": "oidc", "issuer": "https://issuer.example.com", "audience": "x"},
		"oidc jwks":     {"name": "x", "kind": "oidc", "issuer": "https://issuer.example.com", "jwks": spiffeBundle(t)},
	} {
		if p := e.refused(http.StatusBadRequest, "POST", "/admin/v1/trusted-issuers", adm, body); p.Code != admin.CodeValidation {
			t.Errorf("%s: %+v", name, p)
		}
	}
	if p := e.refused(http.StatusConflict, "POST", "/admin/v1/trusted-issuers", adm, map[string]any{"name": "again", "kind": "oidc", "issuer": gh.Issuer}); p.Code != admin.CodeConflict {
		t.Errorf("the same issuer twice: %+v", p)
	}

	// List, oldest first, paged like every list.
	var page admin.List[admin.TrustedIssuerResource]
	e.mustCall(http.StatusOK, "GET", "/admin/v1/trusted-issuers?limit=1", adm, nil, &page)
	if len(page.Items) != 1 || page.Items[0].ID != gh.ID || page.NextCursor == "" {
		t.Fatalf("first page %+v", page)
	}
	var second admin.List[admin.TrustedIssuerResource]
	e.mustCall(http.StatusOK, "GET", "/admin/v1/trusted-issuers?limit=1&cursor="+page.NextCursor, adm, nil, &second)
	if len(second.Items) != 1 || second.Items[0].ID != mesh.ID || second.NextCursor != "" {
		t.Fatalf("second page %+v", second)
	}
	e.refused(http.StatusNotFound, "GET", "/admin/v1/trusted-issuers/tis_nosuch", adm, nil)

	// A federated credential, as the shape has it.
	app := e.createApp(adm, "billing-deployer", nil)
	credPath := "/admin/v1/applications/" + app.ClientID + "/credentials"
	var cred admin.CredentialResource
	resp = e.call("POST", credPath, adm, map[string]any{
		"type": "federated", "trusted_issuer": gh.ID, "subject": "repo:acme/billing:environment:prod",
		"claims": map[string]any{"repository_owner": "acme", "workflow": []string{"deploy", "release"}},
	}, &cred)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != credPath+"/"+cred.ID {
		t.Fatalf("federated credential: %d %+v", resp.StatusCode, cred)
	}
	if cred.Type != "federated" || cred.TrustedIssuer != gh.ID || cred.Subject != "repo:acme/billing:environment:prod" || cred.Audience != "" ||
		len(cred.Claims) != 2 || cred.JWKS != nil || cred.JWKSURI != "" {
		t.Fatalf("federated credential %+v", cred)
	}
	var listed map[string]any
	e.mustCall(http.StatusOK, "GET", credPath, adm, nil, &listed)
	item := listed["items"].([]any)[0].(map[string]any)
	claims, _ := json.Marshal(item["claims"])
	if string(claims) != `{"repository_owner":"acme","workflow":["deploy","release"]}` {
		t.Fatalf("claims listed as %s", claims)
	}
	if _, ok := item["audience"]; ok {
		t.Fatalf("an empty audience is shown: %v", item)
	}
	for name, body := range map[string]map[string]any{
		"GitHub wildcard owner":  {"type": "federated", "trusted_issuer": gh.ID, "subject": "repo:*/billing:environment:prod"},
		"unknown trusted issuer": {"type": "federated", "trusted_issuer": "tis_nosuch", "subject": "x"},
		"SPIFFE other domain":    {"type": "federated", "trusted_issuer": mesh.ID, "subject": "spiffe://other.example.org/x"},
		"claim not a string":     {"type": "federated", "trusted_issuer": gh.ID, "subject": "repo:acme/x:ref:y", "claims": map[string]any{"environment": 1}},
	} {
		p := e.refused(http.StatusBadRequest, "POST", credPath, adm, body)
		if p.Code != admin.CodeValidation {
			t.Errorf("%s: %+v", name, p)
		}
		if name == "GitHub wildcard owner" && !strings.Contains(p.Detail, "GitHub") {
			t.Errorf("%s: detail %q does not explain", name, p.Detail)
		}
	}

	// An issuer a credential names cannot go.
	p := e.refused(http.StatusConflict, "DELETE", "/admin/v1/trusted-issuers/"+gh.ID, adm, nil)
	if p.Code != admin.CodeConflict || !strings.Contains(p.Detail, "credential") {
		t.Fatalf("deleting an issuer in use: %+v", p)
	}
	e.mustCall(http.StatusNoContent, "DELETE", credPath+"/"+cred.ID, adm, nil, nil)
	e.mustCall(http.StatusNoContent, "DELETE", "/admin/v1/trusted-issuers/"+gh.ID, adm, nil, nil)
	e.refused(http.StatusNotFound, "GET", "/admin/v1/trusted-issuers/"+gh.ID, adm, nil)

	// An application created with a credential and no secret.
	var created admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name": "spire-workload", "client_secret": false,
		"credentials": []any{map[string]any{"type": "federated", "trusted_issuer": mesh.ID, "subject": "spiffe://prod.example.org/ns/billing/sa/worker"}},
	}, &created)
	if created.ClientSecret != "" || created.Secret != nil || len(created.Credentials) != 1 || created.Credentials[0].TrustedIssuer != mesh.ID || created.Credentials[0].ID == "" {
		t.Fatalf("created %+v", created)
	}
	// Credentials without client_secret: no secret either; client_secret
	// true asks for one beside them.
	var implicit, both admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name":        "spire-implicit",
		"credentials": []any{map[string]any{"type": "federated", "trusted_issuer": mesh.ID, "subject": "spiffe://prod.example.org/ns/billing/sa/implicit"}},
	}, &implicit)
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name": "spire-both", "client_secret": true,
		"credentials": []any{map[string]any{"type": "federated", "trusted_issuer": mesh.ID, "subject": "spiffe://prod.example.org/ns/billing/sa/both"}},
	}, &both)
	if implicit.ClientSecret != "" || implicit.Secret != nil || both.ClientSecret == "" || both.Secret == nil {
		t.Fatalf("secrets: implicit %q, both %q", implicit.ClientSecret, both.ClientSecret)
	}
	if p := e.refused(http.StatusBadRequest, "POST", "/admin/v1/applications", adm, map[string]any{
		"name": "bad", "credentials": []any{map[string]any{"type": "federated", "trusted_issuer": "tis_nosuch", "subject": "x"}},
	}); !strings.Contains(p.Detail, "credentials[0]") {
		t.Fatalf("a refused credential at creation: %+v", p)
	}

	// Tokens without the scope: refused at the route (RFC 6750 §3.1
	// insufficient_scope, with the scope in the challenge).
	noScope := func(method, path, tok string, body any, scope string) {
		t.Helper()
		var p refusal
		resp := e.call(method, path, tok, body, &p)
		ch := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusForbidden || p.Code != admin.CodeInsufficientScope || !strings.Contains(ch, `scope="`+scope+`"`) {
			t.Fatalf("%s %s: %d %+v, challenge %q; want 403 insufficient_scope naming %s", method, path, resp.StatusCode, p, ch, scope)
		}
	}
	_, reader := e.adminWith(adm, "issuer-reader", authz.ScopeReadTrustedIssuers)
	noScope("POST", "/admin/v1/trusted-issuers", reader, map[string]any{"name": "x", "kind": "oidc", "issuer": "https://x.example.com"}, authz.ScopeUpdateTrustedIssuers)
	noScope("DELETE", "/admin/v1/trusted-issuers/"+mesh.ID, reader, nil, authz.ScopeUpdateTrustedIssuers)
	e.mustCall(http.StatusOK, "GET", "/admin/v1/trusted-issuers/"+mesh.ID, reader, nil, nil)
	_, appAdmin := e.adminWith(adm, "app-admin", authz.ScopeReadApplications, authz.ScopeUpdateApplications)
	noScope("GET", "/admin/v1/trusted-issuers", appAdmin, nil, authz.ScopeReadTrustedIssuers)
	noScope("GET", "/admin/v1/trusted-issuers/"+mesh.ID, appAdmin, nil, authz.ScopeReadTrustedIssuers)
	_, issuerAdmin := e.adminWith(adm, "issuer-admin", authz.ScopeUpdateTrustedIssuers)
	noScope("POST", credPath, issuerAdmin, map[string]any{"type": "federated", "trusted_issuer": mesh.ID, "subject": "spiffe://prod.example.org/x"}, authz.ScopeUpdateApplications)
	// Nor can app-admin grant the scope it lacks (refused by manage).
	wantMissing(t, e.refused(http.StatusForbidden, "POST", "/admin/v1/applications/"+app.ClientID+"/grants", appAdmin,
		map[string]any{"audience": authz.ManagementAudience, "scopes": []string{authz.ScopeUpdateTrustedIssuers}}), authz.ScopeUpdateTrustedIssuers)

	if got := e.auditEvents("trusted_issuer.create"); len(got) != 2 {
		t.Fatalf("%d trusted_issuer.create events, want 2", len(got))
	}
	if got := e.auditEvents("trusted_issuer.delete"); len(got) != 1 {
		t.Fatalf("%d trusted_issuer.delete events, want 1", len(got))
	}
}
