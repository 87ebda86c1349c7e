package server

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestAPIPolicyJSON: the management API takes "dpop", "dpop_nonce",
// "mtls_bound" and "profile" at POST /admin/v1/apis and PATCH
// /admin/v1/apis/{id}, answers all four with their effective values on
// every read, changes only those a PATCH names, and refuses values outside
// their sets, RS256 under fapi2 and any change of the management API with
// problem details.
func TestAPIPolicyJSON(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()

	policy := func(raw json.RawMessage) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return map[string]any{"dpop": m["dpop"], "dpop_nonce": m["dpop_nonce"], "mtls_bound": m["mtls_bound"], "profile": m["profile"]}
	}
	want := func(what string, got map[string]any, dpop string, nonce bool, mtls, profile string) {
		t.Helper()
		if got["dpop"] != dpop || got["dpop_nonce"] != nonce || got["mtls_bound"] != mtls || got["profile"] != profile {
			t.Errorf("%s: %v, want dpop %s, dpop_nonce %v, mtls_bound %s, profile %s", what, got, dpop, nonce, mtls, profile)
		}
	}

	var raw json.RawMessage
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/apis", adm, map[string]any{"identifier": "https://plain.example.com"}, &raw)
	want("created without the fields", policy(raw), "optional", false, "optional", "none")
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/apis", adm, map[string]any{"identifier": "https://strict.example.com",
		"signing_alg": "ES256", "dpop": "required", "dpop_nonce": true, "mtls_bound": "required", "profile": "fapi2"}, &raw)
	want("created with every field", policy(raw), "required", true, "required", "fapi2")
	var strict struct{ ID string }
	if err := json.Unmarshal(raw, &strict); err != nil {
		t.Fatal(err)
	}
	e.mustCall(http.StatusOK, "GET", "/admin/v1/apis/"+strict.ID, adm, nil, &raw)
	want("read back", policy(raw), "required", true, "required", "fapi2")

	e.mustCall(http.StatusOK, "PATCH", "/admin/v1/apis/"+strict.ID, adm, map[string]any{"dpop_nonce": false}, &raw)
	want("patched dpop_nonce", policy(raw), "required", false, "required", "fapi2")
	e.mustCall(http.StatusOK, "PATCH", "/admin/v1/apis/"+strict.ID, adm, map[string]any{"mtls_bound": "optional", "profile": "none"}, &raw)
	want("patched mtls_bound and profile", policy(raw), "required", false, "optional", "none")

	var list struct{ Items []json.RawMessage }
	e.mustCall(http.StatusOK, "GET", "/admin/v1/apis", adm, nil, &list)
	for _, it := range list.Items {
		if p := policy(it); p["dpop"] == nil || p["dpop_nonce"] == nil || p["mtls_bound"] == nil || p["profile"] == nil {
			t.Errorf("listed API %s lacks a policy field", it)
		}
	}

	var mgmt struct{ Items []struct{ ID string } }
	e.mustCall(http.StatusOK, "GET", "/admin/v1/apis?identifier=urn:m2mauth:admin", adm, nil, &mgmt)
	if len(mgmt.Items) != 1 {
		t.Fatalf("management API: %+v", mgmt)
	}
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		status             int
		detail             string
	}{
		{"dpop outside its set", "POST", "/admin/v1/apis", map[string]any{"identifier": "https://x.example.com", "dpop": "sometimes"}, 400, "dpop must be optional or required"},
		{"dpop_nonce not a boolean", "POST", "/admin/v1/apis", map[string]any{"identifier": "https://x.example.com", "dpop_nonce": "yes"}, 400, ""},
		{"fapi2 with RS256", "POST", "/admin/v1/apis", map[string]any{"identifier": "https://x.example.com", "signing_alg": "RS256", "profile": "fapi2"}, 400,
			"an API with profile fapi2 signs its tokens with PS256, ES256 or EdDSA (FAPI 2.0 Security Profile §5.4.1), not RS256"},
		{"profile outside its set", "PATCH", "/admin/v1/apis/" + strict.ID, map[string]any{"profile": "fapi"}, 400, "profile must be none or fapi2"},
		{"the management API", "PATCH", "/admin/v1/apis/" + mgmt.Items[0].ID, map[string]any{"dpop": "required"}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var problem struct{ Detail string }
			resp := e.call(tc.method, tc.path, adm, tc.body, &problem)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d (%s), want %d with problem details", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
			}
			if tc.detail != "" && problem.Detail != tc.detail {
				t.Errorf("detail = %q, want %q", problem.Detail, tc.detail)
			}
		})
	}
}
