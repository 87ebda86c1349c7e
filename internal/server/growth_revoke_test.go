package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRevocationCap: a client may revoke MaxRevocationsPerHour of its
// tokens at /oauth/revoke in an hour; the next is 429 with Retry-After and
// an RFC 6749 §5.2 body, and stays unrevoked; requests that revoke nothing
// (a token that is not valid) are not counted and stay 200; the management
// API's revocations are not capped; the refusal is audited once; after the
// hour the client revokes again.
func TestRevocationCap(t *testing.T) {
	const limit = 3
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now), func(c *Config, _ *Deps) { c.MaxRevocationsPerHour = limit })
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "revoker", map[string][]string{usageAPI: nil})
	other := e.createApp(adm, "bystander", map[string][]string{usageAPI: nil})

	revoke := func(clientID, secret, tok string) *http.Response {
		t.Helper()
		form := url.Values{"client_id": {clientID}, "client_secret": {secret}, "token": {tok}}
		req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := e.send(req)
		if resp.StatusCode == http.StatusTooManyRequests {
			var b struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(body, &b); err != nil || b.Error != "temporarily_unavailable" || b.Description == "" {
				t.Errorf("429 body %s: want an RFC 6749 error body", body)
			}
		}
		return resp
	}
	clk.Add(time.Minute) // the window opens a minute into the hour
	for i := range limit {
		if resp := revoke(app.ClientID, app.ClientSecret, e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)); resp.StatusCode != http.StatusOK {
			t.Fatalf("revocation %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp := revoke(app.ClientID, app.ClientSecret, "not-a-token"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a request that revokes nothing: %d, want 200 (RFC 7009 §2.2)", resp.StatusCode)
	}
	over := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	clk.Add(10 * time.Minute)
	resp := revoke(app.ClientID, app.ClientSecret, over)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("revocation over the cap: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra != 50*60 {
		t.Errorf("Retry-After %q, want %d (the window's end)", resp.Header.Get("Retry-After"), 50*60)
	}
	if e.srv.denyList.Revoked(jtiOf(t, over)) {
		t.Error("the refused revocation deny-listed the token")
	}
	revoke(app.ClientID, app.ClientSecret, over) // refused again, audited once
	if resp := revoke(other.ClientID, other.ClientSecret, e.tokenFor(other.ClientID, other.ClientSecret, usageAPI)); resp.StatusCode != http.StatusOK {
		t.Errorf("another client's revocation: %d; the cap is per client", resp.StatusCode)
	}
	for range limit + 1 {
		e.mustCall(http.StatusOK, "POST", "/admin/v1/tokens/revoke", adm, map[string]string{"token": e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)}, nil)
	}
	if got := e.auditEvents("token.revoke_limited"); len(got) != 1 || got[0].Actor != app.ClientID || got[0].Target != app.ClientID {
		t.Errorf("token.revoke_limited events %+v, want one for %s", got, app.ClientID)
	}

	clk.Add(50 * time.Minute) // the window closes
	fresh := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	if resp := revoke(app.ClientID, app.ClientSecret, fresh); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the hour: %d, want 200", resp.StatusCode)
	}
	if !e.srv.denyList.Revoked(jtiOf(t, fresh)) {
		t.Error("after the hour the token was not revoked")
	}
}

// jtiOf returns the jti claim of a JWT, unverified.
func jtiOf(t testing.TB, tok string) string {
	t.Helper()
	_, c := jwtParts(t, tok)
	jti, _ := c["jti"].(string)
	if jti == "" {
		t.Fatalf("no jti in %v", c)
	}
	return jti
}
