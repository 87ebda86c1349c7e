package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOpsCORS: discovery and JWKS are readable from any origin; the token
// endpoint from none by default, and from a configured origin only.
func TestOpsCORS(t *testing.T) {
	const allowed = "https://app.example.com"
	request := func(e *testEnv, method, path, origin string, header http.Header) *http.Response {
		t.Helper()
		var body *strings.Reader
		if method == http.MethodPost {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.admin.ClientID}, "client_secret": {e.admin.ClientSecret}, "audience": {e.admin.Audience}}
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		req, err := http.NewRequest(method, e.url+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Origin", origin)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, _ := e.send(req)
		return resp
	}
	preflight := func(method string) http.Header {
		return http.Header{"Access-Control-Request-Method": {method}, "Access-Control-Request-Headers": {"authorization, content-type"}}
	}
	plain := newTestEnv(t)
	configured := newTestEnv(t, func(c *Config, _ *Deps) { c.CORSAllowedOrigins = allowed + ", https://other.example.com" })

	for _, tc := range []struct {
		name         string
		env          *testEnv
		method, path string
		origin       string
		header       http.Header
		status       int
		allowOrigin  string // "" none
		allowMethods string
	}{
		{"JWKS from any origin", plain, "GET", "/.well-known/jwks.json", "https://anywhere.example", nil, 200, "*", ""},
		{"discovery from any origin", plain, "GET", "/.well-known/oauth-authorization-server", "https://anywhere.example", nil, 200, "*", ""},
		{"OpenID discovery from any origin", plain, "GET", "/.well-known/openid-configuration", "https://anywhere.example", nil, 200, "*", ""},
		{"JWKS preflight", plain, "OPTIONS", "/.well-known/jwks.json", "https://anywhere.example", preflight("GET"), 204, "*", "GET, HEAD"},
		{"token endpoint by default: no CORS", plain, "POST", "/oauth/token", allowed, nil, 200, "", ""},
		{"token preflight by default: no CORS", plain, "OPTIONS", "/oauth/token", allowed, preflight("POST"), 405, "", ""},
		{"token endpoint from a configured origin", configured, "POST", "/oauth/token", allowed, nil, 200, allowed, ""},
		{"token preflight from a configured origin", configured, "OPTIONS", "/oauth/token", allowed, preflight("POST"), 204, allowed, "POST"},
		{"token endpoint from another origin", configured, "POST", "/oauth/token", "https://evil.example", nil, 200, "", ""},
		{"token preflight from another origin", configured, "OPTIONS", "/oauth/token", "https://evil.example", preflight("POST"), 405, "", ""},
		{"management API never", configured, "GET", "/admin/v1/apis", allowed, nil, 401, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := request(tc.env, tc.method, tc.path, tc.origin, tc.header)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if got := resp.Header.Get("Access-Control-Allow-Methods"); got != tc.allowMethods {
				t.Errorf("Access-Control-Allow-Methods %q, want %q", got, tc.allowMethods)
			}
			if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("Access-Control-Allow-Credentials set: no endpoint takes cookies")
			}
		})
	}
}
