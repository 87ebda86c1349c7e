package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// behindProxy makes the test's own loopback address a trusted proxy, so
// that a request's X-Forwarded-For names its source address.
func behindProxy() envOption {
	return func(c *Config, _ *Deps) { c.TrustedProxies = "127.0.0.1/32" }
}

// from returns the header of a request forwarded for addr.
func from(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }

// wrongSecret returns secret with its last character changed.
func wrongSecret(secret string) string {
	if strings.HasSuffix(secret, "x") {
		return secret[:len(secret)-1] + "y"
	}
	return secret[:len(secret)-1] + "x"
}

// TestAbuseLockout: one client_id hammered with wrong secrets from one
// address is locked out from that address after AuthMaxFailures failures —
// 429 with Retry-After, and no hash computed — while the right secret
// from another address still gets a token; after the window the right
// secret works from everywhere. Attacked from many addresses, the
// client_id is locked out everywhere, for one window only.
func TestAbuseLockout(t *testing.T) {
	clk := fake.NewClock(time.Now())
	e := newTestEnv(t, withClock(clk.Now), behindProxy())
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "hammered", map[string][]string{usageAPI: nil})
	e.addSecret(app.ClientSecret)
	right := formOf(app.ClientID, app.ClientSecret, usageAPI)
	wrong := formOf(app.ClientID, wrongSecret(app.ClientSecret), usageAPI)
	const attacker, owner = "203.0.113.66", "198.51.100.7"
	n := e.srv.cfg.AuthMaxFailures
	window := e.srv.cfg.AuthLockoutWindow

	for i := range n {
		if status, body := e.postForm(oauth.PathToken, wrong, from(attacker)); status != 401 {
			t.Fatalf("wrong secret %d: %d %s", i+1, status, body)
		}
	}
	hashes := e.srv.oauth.HashesComputed()
	for i := range 20 {
		form := wrong
		if i%2 == 1 {
			form = right // the right secret too: the address is locked out for this client_id
		}
		req, _ := http.NewRequest(http.MethodPost, e.url+oauth.PathToken, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", attacker)
		resp, body := e.send(req)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("attempt %d after %d failures: %d %s", n+i+1, n, resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("Retry-After"), fmt.Sprint(int(window.Seconds())); got != want {
			t.Errorf("Retry-After %q, want %q", got, want)
		}
		var eb struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error != oauth.ErrTemporarilyUnavailable || eb.Description == "" {
			t.Errorf("429 body %s (%v)", body, err)
		}
	}
	if got := e.srv.oauth.HashesComputed(); got != hashes {
		t.Errorf("%d hashes computed for 20 refused attempts, want none", got-hashes)
	}
	t.Run("the right secret from another address gets a token", func(t *testing.T) {
		e := e.with(t)
		if status, body := e.postForm(oauth.PathToken, right, from(owner)); status != 200 {
			t.Errorf("from %s: %d %s", owner, status, body)
		}
		if status, body := e.postForm(oauth.PathToken, right, nil); status != 200 { // the proxy's own address
			t.Errorf("from 127.0.0.1: %d %s", status, body)
		}
	})
	t.Run("introspection and revocation are held back too", func(t *testing.T) {
		e := e.with(t)
		for _, path := range []string{oauth.PathIntrospect, oauth.PathRevoke} {
			form := url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "token": {"x"}}
			if status, body := e.postForm(path, form, from(attacker)); status != http.StatusTooManyRequests {
				t.Errorf("%s from the attacker: %d %s", path, status, body)
			}
		}
	})
	t.Run("after the window the right secret works from everywhere", func(t *testing.T) {
		e := e.with(t)
		clk.Add(window)
		if status, body := e.postForm(oauth.PathToken, right, from(attacker)); status != 200 {
			t.Errorf("from the attacker's address after the window: %d %s", status, body)
		}
	})
	t.Run("attacked from many addresses: locked out everywhere for one window", func(t *testing.T) {
		e := e.with(t)
		clk.Add(window)
		addrs := e.srv.limiter.Config().ClientMaxFailures / n
		for a := range addrs {
			for range n {
				e.postForm(oauth.PathToken, wrong, from(fmt.Sprintf("192.0.2.%d", a+1)))
			}
		}
		if status, _ := e.postForm(oauth.PathToken, right, from(owner)); status != http.StatusTooManyRequests {
			t.Errorf("from the owner's address during an attack from %d addresses: %d, want 429", addrs, status)
		}
		clk.Add(window)
		if status, body := e.postForm(oauth.PathToken, right, from(owner)); status != 200 {
			t.Errorf("after the window: %d %s", status, body)
		}
		if status, body := e.postForm(oauth.PathToken, right, from("192.0.2.1")); status != 200 {
			t.Errorf("from an attacking address after the window: %d %s", status, body)
		}
	})
	t.Run("lockouts and aggregated failures are audited", func(t *testing.T) {
		e := e.with(t)
		e.srv.limiter.Sweep()
		if err := e.srv.recorder.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		adm := e.adminToken()
		count := func(action string) (int, []admin.AuditEventResource) {
			var log admin.List[admin.AuditEventResource]
			e.mustCall(200, "GET", "/admin/v1/audit?limit=500&action="+action, adm, nil, &log)
			return len(log.Items), log.Items
		}
		if n, items := count("client.lockout_started"); n < 2 {
			t.Errorf("%d lockouts started recorded: %+v", n, items)
		}
		if n, _ := count("client.lockout_ended"); n < 2 {
			t.Errorf("%d lockouts ended recorded", n)
		}
		_, items := count("client.authentication_failed")
		var fromAttacker int
		for _, ev := range items {
			if ev.RemoteAddr == attacker && ev.Target == app.ClientID {
				var d struct{ Count int }
				json.Unmarshal(ev.Details, &d)
				fromAttacker += d.Count
			}
		}
		if fromAttacker != n {
			t.Errorf("the audit log counts %d failures from the attacker, want %d", fromAttacker, n)
		}
	})
}
