package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
)

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// TestManagementAPIAuthorization: the management API refuses no token,
// another API's token and a token without the needed scope; a read-only
// auditor holding a subset of its scopes can read but not write.
func TestManagementAPIAuthorization(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	worker := e.createApp(adm, "worker", map[string][]string{usageAPI: nil})
	auditor := e.createApp(adm, "auditor", map[string][]string{"urn:m2mauth:admin": {"read:apis", "read:applications"}})
	audTok := e.tokenFor(auditor.ClientID, auditor.ClientSecret, "urn:m2mauth:admin")
	usageTok := e.tokenFor(worker.ClientID, worker.ClientSecret, usageAPI)

	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		wantStatus int
		wantCode   string
		wantChall  string
	}{
		{"no token", "GET", "/admin/v1/apis", "", 401, "invalid_token", `Bearer realm="m2mauth-admin"`},
		{"garbage token", "GET", "/admin/v1/apis", "abc.def.ghi", 401, "invalid_token", `error="invalid_token"`},
		{"another API's token", "GET", "/admin/v1/apis", usageTok, 401, "invalid_token", `error="invalid_token"`},
		{"tampered admin token", "GET", "/admin/v1/apis", adm[:len(adm)-3] + "AAA", 401, "invalid_token", `error="invalid_token"`},
		{"auditor reads APIs", "GET", "/admin/v1/apis", audTok, 200, "", ""},
		{"auditor reads applications", "GET", "/admin/v1/applications", audTok, 200, "", ""},
		{"auditor cannot create an API", "POST", "/admin/v1/apis", audTok, 403, "insufficient_scope", `scope="create:apis"`},
		{"auditor cannot disable an application", "PATCH", "/admin/v1/applications/" + worker.ClientID, audTok, 403, "insufficient_scope", `scope="update:applications"`},
		{"auditor cannot delete an application", "DELETE", "/admin/v1/applications/" + worker.ClientID, audTok, 403, "insufficient_scope", `scope="delete:applications"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			var body any
			if tc.method != "GET" && tc.method != "DELETE" {
				body = map[string]any{"identifier": "x", "disabled": true}
			}
			var p problemBody
			resp := e.call(tc.method, tc.path, tc.token, body, &p)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tc.wantStatus, p)
			}
			if tc.wantCode == "" {
				return
			}
			if p.Code != tc.wantCode || p.Status != tc.wantStatus || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("problem %+v, content type %s", p, resp.Header.Get("Content-Type"))
			}
			if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, tc.wantChall) {
				t.Fatalf("WWW-Authenticate %q lacks %q", ch, tc.wantChall)
			}
		})
	}

	t.Run("a disabled administrator's token stops working at once", func(t *testing.T) {
		e := e.with(t)
		second := e.createApp(adm, "second admin", map[string][]string{"urn:m2mauth:admin": nil})
		tok := e.tokenFor(second.ClientID, second.ClientSecret, "urn:m2mauth:admin")
		e.mustCall(200, "GET", "/admin/v1/apis", tok, nil, nil)
		e.mustCall(200, "PATCH", "/admin/v1/applications/"+second.ClientID, adm, map[string]any{"disabled": true}, nil)
		e.mustCall(401, "GET", "/admin/v1/apis", tok, nil, nil)
	})
	t.Run("a scope removed from the grant stops working at once", func(t *testing.T) {
		e := e.with(t)
		third := e.createApp(adm, "third admin", map[string][]string{"urn:m2mauth:admin": nil})
		tok := e.tokenFor(third.ClientID, third.ClientSecret, "urn:m2mauth:admin")
		var app admin.ApplicationResource
		e.mustCall(200, "GET", "/admin/v1/applications/"+third.ClientID, tok, nil, &app)
		e.mustCall(200, "PATCH", "/admin/v1/applications/"+third.ClientID+"/grants/"+app.Grants[0].ID, adm, map[string]any{"scopes": []string{"read:apis"}}, nil)
		// The token carries a scope its grant no longer holds: it is no
		// longer live at all (the liveness rule introspection applies).
		e.mustCall(401, "GET", "/admin/v1/apis", tok, nil, nil)
		narrow := e.tokenFor(third.ClientID, third.ClientSecret, "urn:m2mauth:admin")
		e.mustCall(403, "GET", "/admin/v1/applications/"+third.ClientID, narrow, nil, nil)
		e.mustCall(200, "GET", "/admin/v1/apis", narrow, nil, nil)
	})
	t.Run("an administrator cannot disable or delete itself", func(t *testing.T) {
		e := e.with(t)
		me := e.admin.ClientID
		e.mustCall(409, "PATCH", "/admin/v1/applications/"+me, adm, map[string]any{"disabled": true}, nil)
		e.mustCall(409, "DELETE", "/admin/v1/applications/"+me, adm, nil, nil)
	})
}

// TestManagementAPIResources walks the APIs, applications and grants
// resources: create, read, list with pagination, update, delete, and the
// validation errors.
func TestManagementAPIResources(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()

	t.Run("APIs", func(t *testing.T) {
		e := e.with(t)
		api := e.createAPI(adm, "https://api.example.com/", "", "read:things", "write:things")
		if api.TokenLifetime != 3600 || api.SigningAlg != "ES256" || len(api.Scopes) != 2 || api.CreatedAt.IsZero() {
			t.Fatalf("created %+v", api)
		}
		var got admin.APIResource
		e.mustCall(200, "GET", "/admin/v1/apis/"+api.ID, adm, nil, &got)
		if got.Identifier != api.Identifier {
			t.Fatalf("got %+v", got)
		}
		var list admin.List[admin.APIResource]
		e.mustCall(200, "GET", "/admin/v1/apis?identifier=https://api.example.com/", adm, nil, &list)
		if len(list.Items) != 1 || list.Items[0].ID != api.ID {
			t.Fatalf("filtered list %+v", list)
		}
		e.mustCall(409, "POST", "/admin/v1/apis", adm, map[string]any{"identifier": "https://api.example.com/"}, nil)

		var upd admin.APIResource
		e.mustCall(200, "PATCH", "/admin/v1/apis/"+api.ID, adm, map[string]any{"name": "Things", "token_lifetime": 600, "signing_alg": "EdDSA"}, &upd)
		if upd.Name != "Things" || upd.TokenLifetime != 600 || upd.SigningAlg != "EdDSA" || upd.Identifier != api.Identifier {
			t.Fatalf("updated %+v", upd)
		}
		e.mustCall(400, "PATCH", "/admin/v1/apis/"+api.ID, adm, map[string]any{"identifier": "https://other/"}, nil)
		e.mustCall(204, "DELETE", "/admin/v1/apis/"+api.ID, adm, nil, nil)
		e.mustCall(404, "GET", "/admin/v1/apis/"+api.ID, adm, nil, nil)
		e.mustCall(404, "DELETE", "/admin/v1/apis/"+api.ID, adm, nil, nil)
	})

	t.Run("API validation", func(t *testing.T) {
		e := e.with(t)
		for name, body := range map[string]any{
			"no identifier":            map[string]any{"name": "x"},
			"identifier with space":    map[string]any{"identifier": "a b"},
			"bad scope value":          map[string]any{"identifier": "v1", "scopes": []map[string]string{{"value": "a b"}}},
			"duplicate scope":          map[string]any{"identifier": "v2", "scopes": []map[string]string{{"value": "a"}, {"value": "a"}}},
			"lifetime too long":        map[string]any{"identifier": "v3", "token_lifetime": 999999},
			"unknown algorithm":        map[string]any{"identifier": "v4", "signing_alg": "HS256"},
			"unknown field":            map[string]any{"identifier": "v5", "audience": "typo"},
			"scopes too long together": map[string]any{"identifier": "v6", "scopes": manyScopes(40, 120)},
		} {
			t.Run(name, func(t *testing.T) {
				e := e.with(t)
				var p problemBody
				if resp := e.call("POST", "/admin/v1/apis", adm, body, &p); resp.StatusCode != 400 || p.Code != "validation_failed" || p.Detail == "" {
					t.Fatalf("%d %+v", resp.StatusCode, p)
				}
			})
		}
		var list admin.List[admin.APIResource]
		e.mustCall(200, "GET", "/admin/v1/apis", adm, nil, &list)
		if len(list.Items) != 1 { // only the management API
			t.Fatalf("invalid requests created APIs: %d", len(list.Items))
		}
	})

	t.Run("the management API cannot be deleted or rescoped", func(t *testing.T) {
		e := e.with(t)
		var list admin.List[admin.APIResource]
		e.mustCall(200, "GET", "/admin/v1/apis?identifier=urn:m2mauth:admin", adm, nil, &list)
		id := list.Items[0].ID
		e.mustCall(409, "DELETE", "/admin/v1/apis/"+id, adm, nil, nil)
		// Immutable through the API: no scope allows it (a privilege bound).
		e.mustCall(403, "PATCH", "/admin/v1/apis/"+id, adm, map[string]any{"scopes": []map[string]string{}}, nil)
	})

	t.Run("pagination", func(t *testing.T) {
		e := e.with(t)
		for i := 0; i < 7; i++ {
			e.createAPI(adm, "https://page"+string(rune('a'+i))+"/", "", "s")
		}
		seen := map[string]bool{}
		cursor := ""
		pages := 0
		for {
			var list admin.List[admin.APIResource]
			e.mustCall(200, "GET", "/admin/v1/apis?limit=3&cursor="+cursor, adm, nil, &list)
			pages++
			for _, a := range list.Items {
				if seen[a.ID] {
					t.Fatal("item repeated across pages")
				}
				seen[a.ID] = true
			}
			if list.NextCursor == "" {
				break
			}
			cursor = list.NextCursor
		}
		if len(seen) != 8 || pages != 3 {
			t.Fatalf("%d items in %d pages", len(seen), pages)
		}
		e.mustCall(400, "GET", "/admin/v1/apis?limit=0", adm, nil, nil)
		e.mustCall(400, "GET", "/admin/v1/apis?cursor=bm90LWEtY3Vyc29y", adm, nil, nil)
	})

	t.Run("applications and grants", func(t *testing.T) {
		e := e.with(t)
		e.createAPI(adm, usageAPI, "", usageScopes...)
		e.createAPI(adm, "https://billing/", "", "read:invoices", "pay:invoices")
		app := e.createApp(adm, "svc", map[string][]string{usageAPI: {"read:meters"}})
		if !strings.HasPrefix(app.ClientSecret, "m2ms_"+app.Secret.ID+"_") || app.Secret.Prefix != "m2ms_"+app.Secret.ID {
			t.Fatalf("secret shape: prefix %q", app.Secret.Prefix)
		}
		if len(app.Grants) != 1 || app.Grants[0].Audience != usageAPI || strings.Join(app.Grants[0].Scopes, " ") != "read:meters" {
			t.Fatalf("grants %+v", app.Grants)
		}
		var got map[string]any
		e.mustCall(200, "GET", "/admin/v1/applications/"+app.ClientID, adm, nil, &got)
		if _, ok := got["client_secret"]; ok {
			t.Fatal("GET shows the client secret")
		}

		var g admin.GrantResource
		e.mustCall(201, "POST", "/admin/v1/applications/"+app.ClientID+"/grants", adm, map[string]any{"audience": "https://billing/"}, &g)
		if strings.Join(g.Scopes, " ") != "read:invoices pay:invoices" {
			t.Fatalf("omitted scopes should grant all: %v", g.Scopes)
		}
		e.mustCall(409, "POST", "/admin/v1/applications/"+app.ClientID+"/grants", adm, map[string]any{"audience": "https://billing/"}, nil)
		e.mustCall(400, "POST", "/admin/v1/applications/"+app.ClientID+"/grants", adm, map[string]any{"audience": usageAPI, "scopes": []string{"nope"}}, nil)
		e.mustCall(400, "POST", "/admin/v1/applications/"+app.ClientID+"/grants", adm, map[string]any{"audience": "https://unknown/"}, nil)
		e.mustCall(404, "POST", "/admin/v1/applications/nosuch/grants", adm, map[string]any{"audience": "https://billing/"}, nil)
		e.tokenFor(app.ClientID, app.ClientSecret, "https://billing/", "pay:invoices")

		e.mustCall(204, "DELETE", "/admin/v1/applications/"+app.ClientID+"/grants/"+g.ID, adm, nil, nil)
		status, _ := e.postForm("/oauth/token", formOf(app.ClientID, app.ClientSecret, "https://billing/"), nil)
		if status != 400 {
			t.Fatalf("token after the grant was removed: %d", status)
		}

		// Removing a scope from the API removes it from grants.
		var apis admin.List[admin.APIResource]
		e.mustCall(200, "GET", "/admin/v1/apis?identifier="+usageAPI, adm, nil, &apis)
		e.mustCall(200, "PATCH", "/admin/v1/apis/"+apis.Items[0].ID, adm, map[string]any{"scopes": []map[string]string{{"value": "create:meters"}}}, nil)
		var after admin.ApplicationResource
		e.mustCall(200, "GET", "/admin/v1/applications/"+app.ClientID, adm, nil, &after)
		if len(after.Grants) != 1 || len(after.Grants[0].Scopes) != 0 {
			t.Fatalf("grant scopes after the API dropped them: %+v", after.Grants)
		}

		var list admin.List[admin.ApplicationResource]
		e.mustCall(200, "GET", "/admin/v1/applications?name_prefix=sv", adm, nil, &list)
		if len(list.Items) != 1 || list.Items[0].ClientID != app.ClientID {
			t.Fatalf("name filter %+v", list.Items)
		}
		e.mustCall(200, "PATCH", "/admin/v1/applications/"+app.ClientID, adm, map[string]any{"disabled": true, "description": "off"}, nil)
		e.mustCall(200, "GET", "/admin/v1/applications?disabled=true", adm, nil, &list)
		if len(list.Items) != 1 || !list.Items[0].Disabled || list.Items[0].Description != "off" {
			t.Fatalf("disabled filter %+v", list.Items)
		}
		e.mustCall(204, "DELETE", "/admin/v1/applications/"+app.ClientID, adm, nil, nil)
		e.mustCall(404, "GET", "/admin/v1/applications/"+app.ClientID, adm, nil, nil)
		status, _ = e.postForm("/oauth/token", formOf(app.ClientID, app.ClientSecret, usageAPI), nil)
		if status != 401 {
			t.Fatalf("token after delete: %d", status)
		}
	})

	t.Run("application validation", func(t *testing.T) {
		e := e.with(t)
		e.mustCall(400, "POST", "/admin/v1/applications", adm, map[string]any{}, nil)
		e.mustCall(400, "POST", "/admin/v1/applications", adm, map[string]any{"name": "x", "grants": []map[string]any{{"audience": "https://unknown/"}}}, nil)
		e.mustCall(400, "POST", "/admin/v1/applications", adm, map[string]any{"name": "x", "grants": []map[string]any{{"audience": usageAPI}, {"audience": usageAPI}}}, nil)
		req, _ := http.NewRequest("POST", e.url+"/admin/v1/applications", strings.NewReader("{not json"))
		req.Header.Set("Authorization", "Bearer "+adm)
		if resp, _ := e.send(req); resp.StatusCode != 400 {
			t.Fatalf("bad JSON: %d", resp.StatusCode)
		}
		big := strings.Repeat("x", 2<<20)
		req, _ = http.NewRequest("POST", e.url+"/admin/v1/applications", strings.NewReader(`{"name":"`+big+`"}`))
		req.Header.Set("Authorization", "Bearer "+adm)
		if resp, _ := e.send(req); resp.StatusCode != 413 {
			t.Fatalf("oversized body: %d", resp.StatusCode)
		}
	})
}

// manyScopes returns n distinct scope definitions of size bytes each.
func manyScopes(n, size int) []map[string]string {
	var out []map[string]string
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("s%03d:", i)
		out = append(out, map[string]string{"value": v + strings.Repeat("x", size-len(v))})
	}
	return out
}
