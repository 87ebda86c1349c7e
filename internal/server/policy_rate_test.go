package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// createLimitedApp creates an application granted the usage API with
// policy.
func (e *testEnv) createLimitedApp(adm, name string, policy map[string]any) admin.CreatedApplication {
	e.t.Helper()
	var app admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name": name, "grants": []map[string]any{{"audience": usageAPI}}, "policy": policy,
	}, &app)
	e.addSecret(app.ClientSecret)
	return app
}

// tokenResponse posts a client_secret_post token request and returns the
// answer's status and headers.
func (e *testEnv) tokenResponse(app admin.CreatedApplication) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth/token", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "audience": {usageAPI},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := e.send(req)
	return resp.StatusCode, resp.Header, body
}

// TestRateLimit: rate 5/s burst 5 hit at 50 requests a second (an injected
// clock, 20 ms a request): the burst passes, then about one in ten, and
// every answer carries RateLimit-Policy and RateLimit; each 429 says when
// the next token comes, in Retry-After and in RateLimit's t.
func TestRateLimit(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createLimitedApp(adm, "bursty", map[string]any{"rate": map[string]any{"per_second": 5, "burst": 5}})
	if app.Policy.Rate == nil || app.Policy.Rate.Burst != 5 || app.Policy.Mode != "enforce" {
		t.Fatalf("created policy = %+v", app.Policy)
	}

	ok, refused := 0, 0
	for i := range 50 { // one simulated second
		status, h, body := e.tokenResponse(app)
		if got := h.Get("RateLimit-Policy"); got != `"rate";q=5;w=1` {
			t.Fatalf("request %d: RateLimit-Policy %q", i, got)
		}
		state := h.Get("RateLimit")
		switch status {
		case http.StatusOK:
			ok++
			want := `"rate";r=` + strconv.Itoa(4-i) + `;t=0`
			if i == 4 { // 0.4 left: the next whole token in 120 ms
				want = `"rate";r=0;t=1`
			}
			if i < 5 && state != want {
				t.Errorf("request %d of the burst: RateLimit %q", i, state)
			}
		case http.StatusTooManyRequests:
			refused++
			if h.Get("Retry-After") != "1" || !strings.HasPrefix(state, `"rate";r=0;t=1`) {
				t.Errorf("request %d: 429 with Retry-After %q, RateLimit %q", i, h.Get("Retry-After"), state)
			}
			var oe struct{ Error string }
			if json.Unmarshal(body, &oe); oe.Error != "temporarily_unavailable" {
				t.Errorf("request %d: 429 body %s", i, body)
			}
		default:
			t.Fatalf("request %d: %d %s", i, status, body)
		}
		if i < 5 && status != http.StatusOK {
			t.Fatalf("request %d of the burst refused", i)
		}
		clk.Add(20 * time.Millisecond)
	}
	// 5 at once, then 5 a second: 9 or 10 in the second (float rounding
	// at the last refill).
	if ok < 9 || ok > 10 || ok+refused != 50 {
		t.Fatalf("%d issued, %d refused at 50 requests/s; want 9 or 10 issued", ok, refused)
	}
	clk.Add(time.Second)
	if status, _, body := e.tokenResponse(app); status != http.StatusOK {
		t.Fatalf("after a quiet second: %d %s", status, body)
	}
	if ev := e.waitAudit("application.limit_crossed", app.ClientID, 1); !strings.Contains(ev[0].Details, `"mode":"enforce"`) || !strings.Contains(ev[0].Details, `"limit":"rate"`) {
		t.Fatalf("crossing audit = %+v", ev)
	}

	// An application without a policy gets no rate-limit headers.
	plain := e.createApp(adm, "plain", map[string][]string{usageAPI: nil})
	if _, h, _ := e.tokenResponse(plain); h.Get("RateLimit") != "" || h.Get("RateLimit-Policy") != "" {
		t.Fatalf("unlimited application got %q / %q", h.Get("RateLimit-Policy"), h.Get("RateLimit"))
	}
}

// waitAudit flushes and waits (bounded) for at least n events of action
// on target, and returns them: crossings are written off the token path.
func (e *testEnv) waitAudit(action, target string, n int) []authz.AuditEvent {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []authz.AuditEvent
		for _, ev := range e.auditEvents(action) {
			if ev.Target == target {
				out = append(out, ev)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) < n {
				e.t.Fatalf("%d %s events for %s, want %d", len(out), action, target, n)
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestObserveMode: in observe mode nothing is refused, the headers still
// go out, and each limit's crossing is recorded once per window.
func TestObserveMode(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createLimitedApp(adm, "watched", map[string]any{
		"rate": map[string]any{"per_second": 5, "burst": 5}, "quota": map[string]any{"per_hour": 20}, "mode": "observe",
	})
	for i := range 50 {
		status, h, body := e.tokenResponse(app)
		if status != http.StatusOK {
			t.Fatalf("request %d refused in observe mode: %d %s", i, status, body)
		}
		if h.Get("RateLimit-Policy") != `"rate";q=5;w=1, "hour";q=20;w=3600` || !strings.Contains(h.Get("RateLimit"), `"hour";r=`) {
			t.Fatalf("request %d: %q / %q", i, h.Get("RateLimit-Policy"), h.Get("RateLimit"))
		}
		if i >= 20 && !strings.Contains(h.Get("RateLimit"), `"hour";r=0;`) {
			t.Fatalf("request %d past the quota: RateLimit %q", i, h.Get("RateLimit"))
		}
		clk.Add(20 * time.Millisecond)
	}
	events := e.waitAudit("application.limit_crossed", app.ClientID, 2)
	time.Sleep(50 * time.Millisecond) // any duplicate would be written by now
	events = e.waitAudit("application.limit_crossed", app.ClientID, 2)
	limits := map[string]int{}
	for _, ev := range events {
		var d struct{ Limit, Mode string }
		if err := json.Unmarshal([]byte(ev.Details), &d); err != nil || d.Mode != "observe" {
			t.Fatalf("crossing %+v", ev)
		}
		limits[d.Limit]++
	}
	if len(events) != 2 || limits["rate"] != 1 || limits["hour"] != 1 {
		t.Fatalf("crossings %v, want the rate and the hour once each", limits)
	}
}

// TestDefaultPolicy: the server's default rate applies to applications
// without a rate or quota of their own, and a policy of its own replaces it.
func TestDefaultPolicy(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now), func(c *Config, _ *Deps) { c.DefaultRate, c.DefaultQuotaDay = "2/s", 1000 })
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "defaulted", map[string][]string{usageAPI: nil})
	var statuses []int
	for range 3 {
		status, h, _ := e.tokenResponse(app)
		statuses = append(statuses, status)
		if h.Get("RateLimit-Policy") != `"rate";q=2;w=1, "day";q=1000;w=86400` {
			t.Fatalf("RateLimit-Policy %q", h.Get("RateLimit-Policy"))
		}
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Fatalf("statuses %v under the default 2/s", statuses)
	}
	var usage admin.UsageResource
	e.mustCall(http.StatusOK, "GET", "/admin/v1/applications/"+app.ClientID+"/usage", adm, nil, &usage)
	if usage.Policy.Quota == nil || usage.Policy.Quota.PerDay != 1000 || !usage.PolicyIsDefault {
		t.Fatalf("usage = %+v", usage)
	}
	e.mustCall(http.StatusOK, "PATCH", "/admin/v1/applications/"+app.ClientID, adm,
		map[string]any{"policy": map[string]any{"quota": map[string]any{"per_hour": 50}}}, nil)
	if _, h, _ := e.tokenResponse(app); h.Get("RateLimit-Policy") != `"hour";q=50;w=3600` {
		t.Fatalf("own policy: RateLimit-Policy %q", h.Get("RateLimit-Policy"))
	}
}

// TestQuotaAcrossReplicas: an hourly quota of 100 holds across two
// replicas on one PostgreSQL database within the documented bound: each
// replica may overshoot by what it issues between two reconciliations (here
// 7 per round each), so at most 100 + 2 × 7 tokens are issued.
func TestQuotaAcrossReplicas(t *testing.T) {
	pg := pgtest.Start(t)
	dbURL, masterKey := pg.NewDatabase(t), randomMasterKey(t)
	start := time.Now().UTC().Truncate(time.Second)
	if start.Add(5*time.Minute).Hour() != start.Hour() {
		start = start.Add(-10 * time.Minute) // stay inside one UTC hour
	}
	clk := fake.NewClock(start)
	onPG := func(c *Config, d *Deps) { c.DatabaseURL, c.MasterKey, d.Now = dbURL, masterKey, clk.Now }
	a := newTestEnv(t, onPG)
	dir := t.TempDir()
	creds, err := os.ReadFile(filepath.Join(a.dataDir, CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CredentialsFile), creds, 0o600); err != nil {
		t.Fatal(err)
	}
	b := newTestEnv(t, onPG, withDataDir(dir))

	adm := a.adminToken()
	a.createAPI(adm, usageAPI, "", usageScopes...)
	app := a.createLimitedApp(adm, "metered", map[string]any{"quota": map[string]any{"per_hour": 100}})
	b.addSecret(app.ClientSecret)

	const perRound, quota = 7, 100
	issued := 0
	sync := func() {
		for _, e := range []*testEnv{a, b} {
			if err := e.srv.recorder.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range []*testEnv{a, b} {
			if err := e.srv.quota.Reconcile(context.Background(), e.srv.store); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := 0; round < 20; round++ {
		got := 0
		for _, e := range []*testEnv{a, b} {
			for range perRound {
				status, h, body := e.tokenResponse(app)
				switch status {
				case http.StatusOK:
					got++
				case http.StatusTooManyRequests:
					if h.Get("Retry-After") == "" || !strings.Contains(h.Get("RateLimit"), `"hour";r=0;`) {
						t.Fatalf("429 headers: Retry-After %q, RateLimit %q", h.Get("Retry-After"), h.Get("RateLimit"))
					}
				default:
					t.Fatalf("token: %d %s", status, body)
				}
			}
		}
		issued += got
		sync()
		if got == 0 {
			break
		}
	}
	if issued < quota || issued > quota+2*perRound {
		t.Fatalf("%d tokens issued across two replicas under an hourly quota of %d; want %d to %d", issued, quota, quota, quota+2*perRound)
	}
	var usage admin.UsageResource
	a.mustCall(http.StatusOK, "GET", "/admin/v1/applications/"+app.ClientID+"/usage", adm, nil, &usage)
	if usage.HourUsed != int64(issued) || usage.Policy.Quota == nil || usage.Policy.Quota.PerHour != quota {
		t.Fatalf("usage = %+v, want hour_used %d", usage, issued)
	}
	t.Logf("%d tokens issued across two replicas under a quota of %d", issued, quota)
}

// TestDefaultPolicyConfig: the default policy's settings are checked at
// start.
func TestDefaultPolicyConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{DefaultRate: "5/d"}, "default-rate"},
		{Config{DefaultRate: "0/s"}, "default-rate"},
		{Config{DefaultBurst: 3}, "needs --default-rate"},
	} {
		c.cfg.DataDir = t.TempDir()
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.want)
		}
	}
	ok := Config{DefaultRate: "300/m", DefaultQuotaDay: 10, DataDir: t.TempDir()}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	p, _ := ok.defaultPolicy()
	if p.Rate.PerSecond != 5 || p.Rate.Burst != 5 || p.Quota.PerDay != 10 || p.Mode != authz.PolicyEnforce {
		t.Fatalf("default policy %+v", p)
	}
}
