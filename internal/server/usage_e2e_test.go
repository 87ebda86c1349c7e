package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// TestUsageInterval: the issuance counters of an application without a
// quota (none of its own, a rate only, and no server default) reach the
// usage endpoint at the first flush --usage-interval (30 s by default)
// after its first token not yet written; an application with a quota
// (enforced or observed) has its counters written at the next flush, as
// quota reconciliation across replicas needs; shutdown writes every
// counter however young.
func TestUsageInterval(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	plain := e.createLimitedApp(adm, "plain", nil)
	rated := e.createLimitedApp(adm, "rated", map[string]any{"rate": map[string]any{"per_second": 100, "burst": 100}})
	quota := e.createLimitedApp(adm, "metered", map[string]any{"quota": map[string]any{"per_hour": 1000}})
	observed := e.createLimitedApp(adm, "watched", map[string]any{"quota": map[string]any{"per_day": 1000}, "mode": "observe"})
	apps := []admin.CreatedApplication{plain, rated, quota, observed}

	used := func(app admin.CreatedApplication) int64 {
		t.Helper()
		var u admin.List[admin.IssuanceResource]
		e.mustCall(http.StatusOK, "GET", "/admin/v1/applications/"+app.ClientID+"/usage", adm, nil, &u)
		var n int64
		for _, c := range u.Items {
			n += c.Count
		}
		return n
	}
	flush := func() {
		t.Helper()
		if err := e.srv.recorder.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := func(step string, counts ...int64) {
		t.Helper()
		flush()
		for i, app := range apps {
			if got := used(app); got != counts[i] {
				t.Fatalf("%s: %s has %d tokens counted, want %d", step, app.ClientID, got, counts[i])
			}
		}
	}
	issue := func(app admin.CreatedApplication, n int) {
		t.Helper()
		for range n {
			if status, _, body := e.tokenResponse(app); status != http.StatusOK {
				t.Fatalf("token request: %d %s", status, body)
			}
		}
	}

	for _, app := range apps {
		issue(app, 3)
	}
	want("at once", 0, 0, 3, 3)
	clk.Add(20 * time.Second)
	issue(plain, 2)
	want("after 20 s", 0, 0, 3, 3)
	clk.Add(10 * time.Second)
	want("after 30 s", 5, 3, 3, 3)
	issue(plain, 1)
	issue(quota, 1)
	want("a token more each", 5, 3, 4, 3)
	clk.Add(30 * time.Second)
	want("30 s after the next token", 6, 3, 4, 3)

	// Shutdown writes what is held, however young: a restart on the same
	// data shows it.
	issue(plain, 4)
	e.stop()
	e = newTestEnv(t, withClock(clk.Now), withDataDir(e.dataDir))
	adm = e.adminToken()
	if got := used(plain); got != 10 {
		t.Fatalf("after a restart %d tokens counted, want 10", got)
	}
}
