package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/denylist"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/rs"
)

// introspect asks /oauth/introspect about tok as clientID, with
// client_secret_basic, and returns the answer; anything but 200 fails.
func (e *testEnv) introspect(clientID, secret, tok string) oauth.Introspection {
	e.t.Helper()
	status, body := e.postForm(oauth.PathIntrospect, url.Values{"token": {tok}}, basicAuth(clientID, secret))
	if status != http.StatusOK {
		e.t.Fatalf("introspection: %d %s", status, body)
	}
	var out oauth.Introspection
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// active is introspect by a resource server, reduced to the verdict.
func (e *testEnv) active(rs admin.CreatedApplication, tok string) bool {
	e.t.Helper()
	return e.introspect(rs.ClientID, rs.ClientSecret, tok).Active
}

// revokeAs posts tok to /oauth/revoke as clientID with client_secret_post
// and returns the status and body.
func (e *testEnv) revokeAs(clientID, secret, tok string) (int, []byte) {
	e.t.Helper()
	return e.postForm(oauth.PathRevoke, url.Values{"token": {tok}, "client_id": {clientID}, "client_secret": {secret}}, nil)
}

func basicAuth(id, secret string) http.Header {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return http.Header{"Authorization": req.Header["Authorization"]}
}

// createResourceServer creates an application that may introspect every
// token (can_introspect) and has no grants.
func (e *testEnv) createResourceServer(adminToken, name string) admin.CreatedApplication {
	e.t.Helper()
	var out admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adminToken, map[string]any{"name": name, "can_introspect": true}, &out)
	e.addSecret(out.ClientSecret)
	if !out.CanIntrospect {
		e.t.Fatalf("created %+v without can_introspect", out.ApplicationResource)
	}
	return out
}

// TestIntrospection: who may introspect what, and the shape of the answers.
func TestIntrospection(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	owner := e.createApp(adm, "owner", map[string][]string{usageAPI: {"read:meters", "create:meters"}})
	other := e.createApp(adm, "other", map[string][]string{usageAPI: nil})
	rs := e.createResourceServer(adm, "usage api")
	tok := e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)
	_, claims := jwtParts(t, tok)

	t.Run("discovery advertises both endpoints", func(t *testing.T) {
		e := e.with(t)
		for _, path := range []string{oauth.PathASMetadata, oauth.PathOpenIDConfig} {
			_, body := e.send(mustRequest("GET", e.url+path))
			var md oauth.Metadata
			if err := json.Unmarshal(body, &md); err != nil {
				t.Fatal(err)
			}
			if md.IntrospectionEndpoint != e.url+"/oauth/introspect" || md.RevocationEndpoint != e.url+"/oauth/revoke" ||
				strings.Join(md.IntrospectionAuthMethods, " ") != "client_secret_basic client_secret_post private_key_jwt federated_jwt spiffe_jwt" ||
				strings.Join(md.RevocationAuthMethods, " ") != "client_secret_basic client_secret_post private_key_jwt federated_jwt spiffe_jwt" {
				t.Fatalf("%s: %+v", path, md)
			}
		}
	})

	t.Run("an active token's answer", func(t *testing.T) {
		e := e.with(t)
		status, body := e.postForm(oauth.PathIntrospect, url.Values{"token": {tok}}, basicAuth(rs.ClientID, rs.ClientSecret))
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"active": true, "scope": "create:meters read:meters", "client_id": owner.ClientID, "sub": owner.ClientID,
			"aud": usageAPI, "iss": e.url, "exp": claims["exp"], "iat": claims["iat"], "jti": claims["jti"], "token_type": "Bearer",
		}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s = %v, want %v", k, got[k], v)
			}
		}
	})

	tests := []struct {
		name       string
		caller     admin.CreatedApplication
		useJSON    bool
		wantActive bool
	}{
		{"the owner introspects its own token", owner, false, true},
		{"the owner with a JSON body", owner, true, true},
		{"a resource server with can_introspect sees another application's token", rs, false, true},
		{"an application without can_introspect sees active:false", other, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			req, _ := http.NewRequest("POST", e.url+oauth.PathIntrospect, strings.NewReader(url.Values{
				"token": {tok}, "client_id": {tc.caller.ClientID}, "client_secret": {tc.caller.ClientSecret},
			}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.useJSON {
				b, _ := json.Marshal(map[string]string{"token": tok, "token_type_hint": "access_token", "client_id": tc.caller.ClientID, "client_secret": tc.caller.ClientSecret})
				req, _ = http.NewRequest("POST", e.url+oauth.PathIntrospect, strings.NewReader(string(b)))
				req.Header.Set("Content-Type", "application/json")
			}
			resp, body := e.send(req)
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("%d, Cache-Control %q: %s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
			}
			var got oauth.Introspection
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Active != tc.wantActive {
				t.Fatalf("active = %v, want %v", got.Active, tc.wantActive)
			}
			if !tc.wantActive && strings.TrimSpace(string(body)) != `{"active":false}` {
				t.Fatalf("an inactive answer says more: %s", body)
			}
		})
	}

	errTests := []struct {
		name       string
		method     string
		form       url.Values
		header     http.Header
		wantStatus int
		wantCode   string
	}{
		{"a wrong secret is 401 invalid_client", "POST", url.Values{"token": {tok}}, basicAuth(rs.ClientID, other.ClientSecret), 401, oauth.ErrInvalidClient},
		{"an unknown client is 401 invalid_client", "POST", url.Values{"token": {tok}}, basicAuth("nobody", rs.ClientSecret), 401, oauth.ErrInvalidClient},
		{"no client authentication is 401 invalid_client", "POST", url.Values{"token": {tok}}, nil, 401, oauth.ErrInvalidClient},
		{"no token is 400 invalid_request", "POST", url.Values{}, basicAuth(rs.ClientID, rs.ClientSecret), 400, oauth.ErrInvalidRequest},
		{"GET is 405", "GET", nil, nil, 405, oauth.ErrInvalidRequest},
	}
	for endpoint, path := range map[string]string{"introspect": oauth.PathIntrospect, "revoke": oauth.PathRevoke} {
		for _, tc := range errTests {
			t.Run(endpoint+": "+tc.name, func(t *testing.T) {
				e := e.with(t)
				req, _ := http.NewRequest(tc.method, e.url+path, strings.NewReader(tc.form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range tc.header {
					req.Header[k] = v
				}
				resp, body := e.send(req)
				var got struct {
					Error string `json:"error"`
				}
				_ = json.Unmarshal(body, &got)
				if resp.StatusCode != tc.wantStatus || got.Error != tc.wantCode {
					t.Fatalf("%d %s, want %d %s", resp.StatusCode, body, tc.wantStatus, tc.wantCode)
				}
				// RFC 6749 §5.2: a Basic challenge exactly when the client
				// used HTTP Basic.
				if basic := tc.header.Get("Authorization") != ""; tc.wantStatus == 401 && (resp.Header.Get("WWW-Authenticate") != "") != basic {
					t.Fatalf("401 with WWW-Authenticate %q (credentials by Basic: %v)", resp.Header.Get("WWW-Authenticate"), basic)
				}
			})
		}
	}
}

// TestRevocation: /oauth/revoke by the token's owner makes it inactive at
// once; by anyone else it does nothing; every well-formed request is 200
// with an empty body (RFC 7009 §2.2).
func TestRevocation(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	owner := e.createApp(adm, "owner", map[string][]string{usageAPI: nil})
	other := e.createApp(adm, "other", map[string][]string{usageAPI: nil})
	rs := e.createResourceServer(adm, "usage api")

	t.Run("the owner revokes its token: inactive at once", func(t *testing.T) {
		e := e.with(t)
		tok := e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)
		if !e.active(rs, tok) {
			t.Fatal("a fresh token is inactive")
		}
		if status, body := e.revokeAs(owner.ClientID, owner.ClientSecret, tok); status != 200 || len(body) != 0 {
			t.Fatalf("revoke: %d %q", status, body)
		}
		if e.active(rs, tok) {
			t.Fatal("a revoked token is active for the resource server")
		}
		if e.introspect(owner.ClientID, owner.ClientSecret, tok).Active {
			t.Fatal("a revoked token is active for its owner")
		}
		// A new token of the same application is unaffected.
		if !e.active(rs, e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)) {
			t.Fatal("revoking one token killed the next")
		}
	})

	t.Run("another application's revocation is a no-op", func(t *testing.T) {
		e := e.with(t)
		tok := e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)
		for _, caller := range []admin.CreatedApplication{other, rs} {
			if status, body := e.revokeAs(caller.ClientID, caller.ClientSecret, tok); status != 200 || len(body) != 0 {
				t.Fatalf("revoke by %s: %d %q", caller.Name, status, body)
			}
		}
		if !e.active(rs, tok) {
			t.Fatal("another application revoked the token")
		}
	})

	tok := e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)
	wellFormed := []struct {
		name string
		form url.Values
	}{
		{"garbage", url.Values{"token": {"garbage"}}},
		{"a tampered token", url.Values{"token": {tok[:len(tok)-4] + "AAAA"}}},
		{"a refresh_token hint", url.Values{"token": {"opaque"}, "token_type_hint": {"refresh_token"}}},
		{"an unknown hint", url.Values{"token": {"opaque"}, "token_type_hint": {"saml"}}},
	}
	for _, tc := range wellFormed {
		t.Run("200 for "+tc.name, func(t *testing.T) {
			e := e.with(t)
			tc.form.Set("client_id", owner.ClientID)
			tc.form.Set("client_secret", owner.ClientSecret)
			if status, body := e.postForm(oauth.PathRevoke, tc.form, nil); status != 200 || len(body) != 0 {
				t.Fatalf("%d %q", status, body)
			}
		})
	}
	if !e.active(rs, tok) {
		t.Fatal("revoking a tampered copy revoked the token")
	}

	t.Run("a refresh_token hint still revokes the access token", func(t *testing.T) {
		e := e.with(t)
		tok := e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)
		form := url.Values{"token": {tok}, "token_type_hint": {"refresh_token"}}
		if status, _ := e.postForm(oauth.PathRevoke, form, basicAuth(owner.ClientID, owner.ClientSecret)); status != 200 {
			t.Fatalf("%d", status)
		}
		if e.active(rs, tok) {
			t.Fatal("still active")
		}
	})

	t.Run("a revocation written by another replica arrives within the refresh interval", func(t *testing.T) {
		e := e.with(t)
		tok := e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)
		_, claims := jwtParts(t, tok)
		// Straight to the store, as another replica sharing it would.
		if err := e.srv.store.RevokeToken(context.Background(), claims["jti"].(string), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(denylist.RefreshInterval + 3*time.Second)
		for e.active(rs, tok) {
			if time.Now().After(deadline) {
				t.Fatalf("still active after %v", denylist.RefreshInterval+3*time.Second)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	if strings.Contains(e.logs.String(), tok) {
		t.Fatal("a token reached the server log")
	}
}

// TestIntrospectionAfterChanges: a token stops introspecting active as soon
// as what authorized it goes away.
func TestIntrospectionAfterChanges(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	rs := e.createResourceServer(adm, "usage api")

	tests := []struct {
		name   string
		change func(e *testEnv, app admin.CreatedApplication, tok string) string // returns the token to introspect
	}{
		{"application disabled", func(e *testEnv, app admin.CreatedApplication, tok string) string {
			e.mustCall(200, "PATCH", "/admin/v1/applications/"+app.ClientID, adm, map[string]any{"disabled": true}, nil)
			return tok
		}},
		{"application deleted", func(e *testEnv, app admin.CreatedApplication, tok string) string {
			e.mustCall(204, "DELETE", "/admin/v1/applications/"+app.ClientID, adm, nil, nil)
			return tok
		}},
		{"grant removed", func(e *testEnv, app admin.CreatedApplication, tok string) string {
			e.mustCall(204, "DELETE", "/admin/v1/applications/"+app.ClientID+"/grants/"+app.Grants[0].ID, adm, nil, nil)
			return tok
		}},
		{"a scope of the token no longer granted", func(e *testEnv, app admin.CreatedApplication, tok string) string {
			e.mustCall(200, "PATCH", "/admin/v1/applications/"+app.ClientID+"/grants/"+app.Grants[0].ID, adm, map[string]any{"scopes": []string{"read:meters"}}, nil)
			return tok
		}},
		{"every token of the application revoked", func(e *testEnv, app admin.CreatedApplication, tok string) string {
			e.mustCall(200, "POST", "/admin/v1/applications/"+app.ClientID+"/revoke-tokens", adm, nil, nil)
			return tok
		}},
		{"revoked through the management API", func(e *testEnv, _ admin.CreatedApplication, tok string) string {
			e.mustCall(200, "POST", "/admin/v1/tokens/revoke", adm, map[string]any{"token": tok}, nil)
			return tok
		}},
		{"tampered", func(_ *testEnv, _ admin.CreatedApplication, tok string) string {
			return tok[:len(tok)-4] + "AAAA"
		}},
		{"signature from another token", func(e *testEnv, app admin.CreatedApplication, tok string) string {
			other := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI, "read:meters")
			return tok[:strings.LastIndex(tok, ".")] + other[strings.LastIndex(other, "."):]
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			app := e.createApp(adm, tc.name, map[string][]string{usageAPI: {"read:meters", "create:meters"}})
			tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
			if !e.active(rs, tok) {
				t.Fatal("inactive before the change")
			}
			if e.active(rs, tc.change(e, app, tok)) {
				t.Fatal("still active after the change")
			}
		})
	}

	t.Run("can_introspect granted and withdrawn with PATCH", func(t *testing.T) {
		e := e.with(t)
		owner := e.createApp(adm, "owner", map[string][]string{usageAPI: nil})
		peer := e.createApp(adm, "peer", nil)
		tok := e.tokenFor(owner.ClientID, owner.ClientSecret, usageAPI)
		for _, allow := range []bool{true, false} {
			var got admin.ApplicationResource
			e.mustCall(200, "PATCH", "/admin/v1/applications/"+peer.ClientID, adm, map[string]any{"can_introspect": allow}, &got)
			if got.CanIntrospect != allow {
				t.Fatalf("PATCH answered can_introspect %v, want %v", got.CanIntrospect, allow)
			}
			e.mustCall(200, "GET", "/admin/v1/applications/"+peer.ClientID, adm, nil, &got)
			if got.CanIntrospect != allow {
				t.Fatalf("GET answered can_introspect %v, want %v", got.CanIntrospect, allow)
			}
			if active := e.introspect(peer.ClientID, peer.ClientSecret, tok).Active; active != allow {
				t.Fatalf("can_introspect %v: active = %v", allow, active)
			}
		}
	})
}

// TestIntrospectionExpiry: a token is active until the second of its exp.
func TestIntrospectionExpiry(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	adm := e.adminToken()
	api := e.createAPI(adm, usageAPI, "", usageScopes...)
	e.mustCall(200, "PATCH", "/admin/v1/apis/"+api.ID, adm, map[string]any{"token_lifetime": 60}, nil)
	app := e.createApp(adm, "short-lived", map[string][]string{usageAPI: nil})
	rs := e.createResourceServer(adm, "usage api")
	tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)

	clk.Add(59 * time.Second)
	if !e.active(rs, tok) {
		t.Fatal("inactive a second before exp")
	}
	clk.Add(time.Second)
	if e.active(rs, tok) {
		t.Fatal("active at exp")
	}
	// Revoking an expired token is a well-formed no-op.
	if status, _ := e.revokeAs(app.ClientID, app.ClientSecret, tok); status != 200 {
		t.Fatalf("revoking an expired token: %d", status)
	}
}

// TestRevokeApplicationTokens: revoke-tokens kills every token issued to
// the application before the call, including within the same second, and
// none issued after the answer.
func TestRevokeApplicationTokens(t *testing.T) {
	t.Run("the cutoff under an injected clock", func(t *testing.T) {
		clk := newTestClock() // a whole second
		e := newTestEnv(t, withClock(clk.Now))
		adm := e.adminToken()
		e.createAPI(adm, usageAPI, "", usageScopes...)
		app := e.createApp(adm, "worker", map[string][]string{usageAPI: nil})
		rs := e.createResourceServer(adm, "usage api")
		path := "/admin/v1/applications/" + app.ClientID + "/revoke-tokens"

		earlier := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI) // iat = T
		clk.Add(700 * time.Millisecond)
		sameSecond := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI) // iat = T, issued at T+0.7

		var got admin.RevokedTokens
		start := time.Now()
		e.mustCall(200, "POST", path, adm, nil, &got) // at T+0.7: cutoff T+1
		if want := clk.Now().Truncate(time.Second).Add(time.Second); !got.TokensNotBefore.Equal(want) || got.ClientID != app.ClientID {
			t.Fatalf("answer %+v, want tokens_not_before %v", got, want)
		}
		if waited := time.Since(start); waited < 250*time.Millisecond {
			t.Fatalf("answered after %v, before the cutoff", waited)
		}
		for name, tok := range map[string]string{"issued earlier": earlier, "issued earlier in the same second": sameSecond} {
			if e.active(rs, tok) {
				t.Fatalf("a token %s is active", name)
			}
		}
		clk.Add(300 * time.Millisecond) // T+1: the cutoff
		if after := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI); !e.active(rs, after) {
			t.Fatal("a token issued at the cutoff is inactive")
		}

		// At a whole second the cutoff is that second: nothing issued in
		// it is lost.
		clk.Add(time.Second)
		before := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
		clk.Add(time.Second)
		start = time.Now()
		e.mustCall(200, "POST", path, adm, nil, &got)
		if !got.TokensNotBefore.Equal(clk.Now()) || time.Since(start) > 500*time.Millisecond {
			t.Fatalf("tokens_not_before %v, want %v, answered after %v", got.TokensNotBefore, clk.Now(), time.Since(start))
		}
		if e.active(rs, before) {
			t.Fatal("a token issued a second before is active")
		}
		if !e.active(rs, e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)) {
			t.Fatal("a token issued at the cutoff is inactive")
		}
	})

	t.Run("a token asked for after the answer works", func(t *testing.T) {
		e := newTestEnv(t)
		adm := e.adminToken()
		e.createAPI(adm, usageAPI, "", usageScopes...)
		app := e.createApp(adm, "worker", map[string][]string{usageAPI: nil})
		rs := e.createResourceServer(adm, "usage api")
		old := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
		e.mustCall(200, "POST", "/admin/v1/applications/"+app.ClientID+"/revoke-tokens", adm, nil, nil)
		fresh := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
		if e.active(rs, old) || !e.active(rs, fresh) {
			t.Fatalf("old active %v, fresh active %v; want false, true", e.active(rs, old), e.active(rs, fresh))
		}
		e.mustCall(404, "POST", "/admin/v1/applications/nosuch/revoke-tokens", adm, nil, nil)
	})
}

// TestManagementTokenRevocation: POST /admin/v1/tokens/revoke revokes any
// valid token; revoked admin tokens and admin tokens issued before
// revoke-tokens are refused by the management API; both endpoints need
// revoke:tokens and are audited without the token.
func TestManagementTokenRevocation(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "worker", map[string][]string{usageAPI: nil})
	rs := e.createResourceServer(adm, "usage api")
	var tokens []string

	t.Run("revoke any token", func(t *testing.T) {
		e := e.with(t)
		tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
		tokens = append(tokens, tok)
		_, claims := jwtParts(t, tok)
		var raw map[string]any
		e.mustCall(200, "POST", "/admin/v1/tokens/revoke", adm, map[string]any{"token": tok}, &raw)
		wantExp := time.Unix(int64(claims["exp"].(float64)), 0).UTC().Format(time.RFC3339)
		if raw["revoked"] != true || raw["jti"] != claims["jti"] || raw["client_id"] != app.ClientID || raw["expires_at"] != wantExp || len(raw) != 4 {
			t.Fatalf("answer %v", raw)
		}
		if e.active(rs, tok) {
			t.Fatal("still active")
		}
		// Again: still 200, the token is valid but already deny-listed.
		e.mustCall(200, "POST", "/admin/v1/tokens/revoke", adm, map[string]any{"token": tok}, nil)
	})

	bad := []struct {
		name string
		body any
	}{
		{"no token", map[string]any{}},
		{"empty token", map[string]any{"token": ""}},
		{"garbage", map[string]any{"token": "garbage"}},
		{"tampered", map[string]any{"token": adm[:len(adm)-4] + "AAAA"}},
		{"unknown field", map[string]any{"token": adm, "jti": "x"}},
	}
	for _, tc := range bad {
		t.Run("400 for "+tc.name, func(t *testing.T) {
			e := e.with(t)
			var p problemBody
			if resp := e.call("POST", "/admin/v1/tokens/revoke", adm, tc.body, &p); resp.StatusCode != 400 || p.Code != "validation_failed" {
				t.Fatalf("%d %+v", resp.StatusCode, p)
			}
		})
	}

	t.Run("a revoked admin token gets 401", func(t *testing.T) {
		e := e.with(t)
		second := e.createApp(adm, "second admin", map[string][]string{"urn:m2mauth:admin": nil})
		tok := e.tokenFor(second.ClientID, second.ClientSecret, "urn:m2mauth:admin")
		tokens = append(tokens, tok)
		e.mustCall(200, "GET", "/admin/v1/apis", tok, nil, nil)
		e.mustCall(200, "POST", "/admin/v1/tokens/revoke", adm, map[string]any{"token": tok}, nil)
		var p problemBody
		if resp := e.call("GET", "/admin/v1/apis", tok, nil, &p); resp.StatusCode != 401 || p.Code != "invalid_token" || !strings.Contains(p.Detail, "revoked") {
			t.Fatalf("%d %+v", resp.StatusCode, p)
		}
		// Its application still works with a new token.
		e.mustCall(200, "GET", "/admin/v1/apis", e.tokenFor(second.ClientID, second.ClientSecret, "urn:m2mauth:admin"), nil, nil)
	})

	t.Run("an admin token issued before revoke-tokens gets 401", func(t *testing.T) {
		e := e.with(t)
		second := e.createApp(adm, "third admin", map[string][]string{"urn:m2mauth:admin": nil})
		tok := e.tokenFor(second.ClientID, second.ClientSecret, "urn:m2mauth:admin")
		e.mustCall(200, "POST", "/admin/v1/applications/"+second.ClientID+"/revoke-tokens", adm, nil, nil)
		var p problemBody
		if resp := e.call("GET", "/admin/v1/apis", tok, nil, &p); resp.StatusCode != 401 || p.Code != "invalid_token" {
			t.Fatalf("%d %+v", resp.StatusCode, p)
		}
		e.mustCall(200, "GET", "/admin/v1/apis", e.tokenFor(second.ClientID, second.ClientSecret, "urn:m2mauth:admin"), nil, nil)
	})

	t.Run("an administrator can revoke its own token", func(t *testing.T) {
		e := e.with(t)
		mine := e.adminToken()
		e.mustCall(200, "POST", "/admin/v1/tokens/revoke", mine, map[string]any{"token": mine}, nil)
		e.mustCall(401, "GET", "/admin/v1/apis", mine, nil, nil)
	})

	t.Run("both endpoints need revoke:tokens", func(t *testing.T) {
		e := e.with(t)
		ro := e.createApp(adm, "reader", map[string][]string{"urn:m2mauth:admin": {"read:apis", "update:applications"}})
		tok := e.tokenFor(ro.ClientID, ro.ClientSecret, "urn:m2mauth:admin")
		for _, path := range []string{"/admin/v1/tokens/revoke", "/admin/v1/applications/" + app.ClientID + "/revoke-tokens"} {
			var p problemBody
			resp := e.call("POST", path, tok, map[string]any{"token": adm}, &p)
			if resp.StatusCode != 403 || p.Code != "insufficient_scope" || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="revoke:tokens"`) {
				t.Fatalf("%s: %d %+v", path, resp.StatusCode, p)
			}
		}
	})

	t.Run("audited by jti, never with the token", func(t *testing.T) {
		e := e.with(t)
		e.mustCall(200, "POST", "/admin/v1/applications/"+app.ClientID+"/revoke-tokens", adm, nil, nil)
		if err := e.srv.recorder.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		var log admin.List[admin.AuditEventResource]
		e.mustCall(200, "GET", "/admin/v1/audit?limit=500", e.adminToken(), nil, &log)
		_, claims := jwtParts(t, tokens[0])
		var revoked, revokedAll bool
		for _, ev := range log.Items {
			switch {
			case ev.Action == "token.revoke" && ev.Target == claims["jti"]:
				var d map[string]any
				_ = json.Unmarshal(ev.Details, &d)
				revoked = d["client_id"] == app.ClientID && ev.Actor == e.admin.ClientID
			case ev.Action == "application.revoke_tokens" && ev.Target == app.ClientID:
				revokedAll = true
			}
		}
		if !revoked || !revokedAll {
			t.Fatalf("token.revoke recorded %v, application.revoke_tokens recorded %v", revoked, revokedAll)
		}
		raw, _ := json.Marshal(log)
		for _, tok := range tokens {
			sig := tok[strings.LastIndex(tok, ".")+1:]
			if strings.Contains(string(raw), sig) || strings.Contains(e.logs.String(), sig) {
				t.Fatal("a revoked token reached the audit log or the server log")
			}
		}
	})
}

// TestResourceServerIntrospectionMode: an rs.Validator in introspection
// mode refuses a revoked token at once, while one validating locally still
// accepts it until it expires.
func TestResourceServerIntrospectionMode(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "worker", map[string][]string{usageAPI: nil})
	api := e.createResourceServer(adm, "usage api")
	ctx := context.Background()
	local, err := rs.New(ctx, rs.Config{Issuer: e.url, Audience: usageAPI})
	if err != nil {
		t.Fatal(err)
	}
	newIntrospecting := func(id, secret string) *rs.Validator {
		v, err := rs.New(ctx, rs.Config{Issuer: e.url, Audience: usageAPI, Introspection: &rs.IntrospectionConfig{ClientID: id, ClientSecret: secret}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	introspecting := newIntrospecting(api.ClientID, api.ClientSecret)

	seen := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	for name, v := range map[string]*rs.Validator{"local": local, "introspecting": introspecting} {
		if _, err := v.Validate(ctx, seen); err != nil {
			t.Fatalf("%s validation of a fresh token: %v", name, err)
		}
	}

	tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	if status, _ := e.revokeAs(app.ClientID, app.ClientSecret, tok); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if _, err := local.Validate(ctx, tok); err != nil {
		t.Fatalf("local validation refused a revoked but unexpired token: %v", err)
	}
	if _, err := introspecting.Validate(ctx, tok); !errors.Is(err, rs.ErrInactive) {
		t.Fatalf("introspection mode accepted a revoked token: %v", err)
	}

	t.Run("through the middleware", func(t *testing.T) {
		h := introspecting.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		for _, tc := range []struct {
			name string
			tok  string
			want int
		}{{"valid", seen, http.StatusNoContent}, {"revoked", tok, http.StatusUnauthorized}} {
			req := httptest.NewRequest("GET", "/meters", nil)
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("%s token: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
			}
		}
	})

	t.Run("a resource server without can_introspect sees no one's tokens", func(t *testing.T) {
		e := e.with(t)
		plain := e.createApp(adm, "not a resource server", nil)
		v := newIntrospecting(plain.ClientID, plain.ClientSecret)
		if _, err := v.Validate(ctx, e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)); !errors.Is(err, rs.ErrInactive) {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("wrong resource server credentials fail closed", func(t *testing.T) {
		v := newIntrospecting(api.ClientID, app.ClientSecret)
		if _, err := v.Validate(ctx, e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)); !errors.Is(err, rs.ErrIntrospectionUnavailable) {
			t.Fatalf("error %v", err)
		}
	})
}
