package server

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestTokenReuseE2E: "token_reuse" through the management API and the
// token endpoint of a real server over loopback HTTP: set on an API, the
// same token comes back; a bad value is a problem and changes nothing;
// revoking the token, revoking all of the application's and removing the
// setting (null) each end the reuse.
func TestTokenReuseE2E(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	var api map[string]any
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/apis", adm, map[string]any{"identifier": usageAPI,
		"scopes": []map[string]string{{"value": "read:usage"}}, "token_reuse": map[string]any{"min_remaining": 300}}, &api)
	if tr, _ := api["token_reuse"].(map[string]any); tr["min_remaining"] != float64(300) {
		t.Fatalf("created API shows token_reuse %v", api["token_reuse"])
	}
	apiID, _ := api["id"].(string)
	app := e.createApp(adm, "reuser", map[string][]string{usageAPI: nil})
	var got map[string]any
	e.mustCall(http.StatusOK, "GET", "/admin/v1/applications/"+app.ClientID, adm, nil, &got)
	if v, present := got["token_reuse"]; !present || v != nil {
		t.Fatalf("application without a setting shows token_reuse %v (present %v), want null", v, present)
	}

	tok := func() string { return e.tokenFor(app.ClientID, app.ClientSecret, usageAPI) }
	first := tok()
	if tok() != first {
		t.Fatal("not reused")
	}

	for _, tc := range []struct{ path, body string }{
		{"/admin/v1/applications/" + app.ClientID, `{"token_reuse": {"min_remaining": 0}}`},
		{"/admin/v1/apis/" + apiID, `{"token_reuse": {"min_remaining": 3600}}`},
		{"/admin/v1/apis/" + apiID, `{"token_reuse": {"min_remaining": 300, "extra": 1}}`},
	} {
		var problem struct {
			Status int
			Detail string
		}
		resp := e.call("PATCH", tc.path, adm, json.RawMessage(tc.body), &problem)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("PATCH %s %s: %d %s %+v, want a 400 problem", tc.path, tc.body, resp.StatusCode, resp.Header.Get("Content-Type"), problem)
		}
	}
	e.mustCall(http.StatusOK, "GET", "/admin/v1/apis/"+apiID, adm, nil, &got)
	if tr, _ := got["token_reuse"].(map[string]any); tr["min_remaining"] != float64(300) {
		t.Fatalf("a refused PATCH changed token_reuse to %v", got["token_reuse"])
	}
	if tok() != first {
		t.Fatal("a refused PATCH ended the reuse")
	}

	e.mustCall(http.StatusOK, "POST", "/admin/v1/tokens/revoke", adm, map[string]string{"token": first}, nil)
	second := tok()
	if second == first {
		t.Fatal("the revoked token was answered")
	}
	if tok() != second {
		t.Fatal("the new token not reused")
	}
	e.mustCall(http.StatusOK, "POST", "/admin/v1/applications/"+app.ClientID+"/revoke-tokens", adm, nil, nil)
	third := tok()
	if third == second {
		t.Fatal("a token revoked by revoke-tokens was answered")
	}

	e.mustCall(http.StatusOK, "PATCH", "/admin/v1/apis/"+apiID, adm, json.RawMessage(`{"token_reuse": null}`), &got)
	if v, present := got["token_reuse"]; !present || v != nil {
		t.Fatalf("after null: token_reuse %v", v)
	}
	if a, b := tok(), tok(); a == third || a == b {
		t.Fatal("reused after the setting was removed")
	}
}
