package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// TestAllowedIPs: an application with an allow-list gets tokens only from
// its networks. From elsewhere its token, introspection and revocation
// requests are invalid_client, audited with the reason. Behind a trusted
// proxy the forwarded address counts; from an untrusted peer the header is
// ignored.
func TestAllowedIPs(t *testing.T) {
	tokenReq := func(app admin.CreatedApplication) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID},
			"client_secret": {app.ClientSecret}, "audience": {usageAPI}}
	}
	forwardedFor := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
	setup := func(e *testEnv) (adm string, app admin.CreatedApplication) {
		adm = e.adminToken()
		e.createAPI(adm, usageAPI, "", usageScopes...)
		app = e.createApp(adm, "fenced", map[string][]string{usageAPI: nil})
		tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI) // before the fence
		var got admin.ApplicationResource
		e.mustCall(http.StatusOK, "PATCH", "/admin/v1/applications/"+app.ClientID, adm,
			map[string]any{"policy": map[string]any{"allowed_ips": []string{"10.0.0.0/8", "2001:db8::/32"}}}, &got)
		if strings.Join(got.Policy.AllowedIPs, ",") != "10.0.0.0/8,2001:db8::/32" {
			t.Fatalf("policy = %+v", got.Policy)
		}
		// The held token's introspection by its own application, from
		// outside: refused too.
		status, body := e.postForm(oauth.PathIntrospect, url.Values{"token": {tok}}, basicAuth(app.ClientID, app.ClientSecret))
		if status != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
			t.Fatalf("introspection from outside: %d %s", status, body)
		}
		status, body = e.revokeAs(app.ClientID, app.ClientSecret, tok)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
			t.Fatalf("revocation from outside: %d %s", status, body)
		}
		return adm, app
	}

	t.Run("direct peer", func(t *testing.T) {
		e := newTestEnv(t)
		adm, app := setup(e)
		status, body := e.postForm("/oauth/token", tokenReq(app), nil)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) {
			t.Fatalf("token from 127.0.0.1: %d %s", status, body)
		}
		// The header of an untrusted peer is ignored.
		if status, body := e.postForm("/oauth/token", tokenReq(app), forwardedFor("10.1.2.3")); status != http.StatusUnauthorized {
			t.Fatalf("X-Forwarded-For from an untrusted peer counted: %d %s", status, body)
		}
		if err := e.srv.recorder.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range e.auditEvents("client.authentication_failed") {
			if ev.Target == app.ClientID && strings.Contains(ev.Details, oauth.ReasonSourceNotAllowed) && ev.RemoteAddr == "127.0.0.1" {
				found = true
			}
		}
		if !found {
			t.Fatalf("no audit event %q from 127.0.0.1: %+v", oauth.ReasonSourceNotAllowed, e.auditEvents("client.authentication_failed"))
		}
		// Loopback allowed: tokens again.
		e.mustCall(http.StatusOK, "PATCH", "/admin/v1/applications/"+app.ClientID, adm,
			map[string]any{"policy": map[string]any{"allowed_ips": []string{"127.0.0.1"}}}, nil)
		e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
		// {} clears the policy.
		var got admin.ApplicationResource
		e.mustCall(http.StatusOK, "PATCH", "/admin/v1/applications/"+app.ClientID, adm, map[string]any{"policy": map[string]any{}}, &got)
		if got.Policy.AllowedIPs != nil {
			t.Fatalf("cleared policy = %+v", got.Policy)
		}
		for _, bad := range []string{"10.0.0.1/8", "not-an-ip", "10.0.0.0/33", "fe80::1%eth0"} {
			p := e.refused(http.StatusBadRequest, "PATCH", "/admin/v1/applications/"+app.ClientID, adm,
				map[string]any{"policy": map[string]any{"allowed_ips": []string{bad}}})
			if !strings.Contains(p.Detail, "allowed_ips") {
				t.Errorf("allowed_ips %q: %q", bad, p.Detail)
			}
		}
	})

	t.Run("behind a trusted proxy", func(t *testing.T) {
		e := newTestEnv(t, func(c *Config, _ *Deps) { c.TrustedProxies = "127.0.0.0/8" })
		_, app := setup(e)
		if status, body := e.postForm("/oauth/token", tokenReq(app), forwardedFor("10.1.2.3")); status != http.StatusOK {
			t.Fatalf("forwarded from 10.1.2.3: %d %s", status, body)
		}
		if status, body := e.postForm("/oauth/token", tokenReq(app), http.Header{"Forwarded": {`for="[2001:db8::7]"`}}); status != http.StatusOK {
			t.Fatalf("Forwarded from 2001:db8::7: %d %s", status, body)
		}
		if status, body := e.postForm("/oauth/token", tokenReq(app), forwardedFor("192.0.2.9")); status != http.StatusUnauthorized {
			t.Fatalf("forwarded from 192.0.2.9: %d %s", status, body)
		}
		if status, _ := e.postForm("/oauth/token", tokenReq(app), nil); status != http.StatusUnauthorized {
			t.Fatalf("the proxy itself: %d", status)
		}
	})
}
