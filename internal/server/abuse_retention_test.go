package server

import (
	"context"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
)

// TestAbuseAuditRetention: the server's purge, under the cluster lease,
// removes the events older than --audit-retention (90 days by default)
// and records how many it removed.
func TestAbuseAuditRetention(t *testing.T) {
	clk := fake.NewClock(time.Now())
	e := newTestEnv(t, withClock(clk.Now))
	if e.srv.cfg.AuditRetention != DefaultAuditRetention || DefaultAuditRetention != 90*24*time.Hour {
		t.Fatalf("retention %v, want 90 days", e.srv.cfg.AuditRetention)
	}
	ctx := context.Background()
	old := authz.AuditEvent{ID: "evt_old", Time: authz.StoreTime(clk.Now().Add(-91 * 24 * time.Hour)), Action: "client.authentication_failed"}
	recent := authz.AuditEvent{ID: "evt_recent", Time: authz.StoreTime(clk.Now().Add(-89 * 24 * time.Hour)), Action: "client.authentication_failed"}
	if err := e.srv.db.AppendAudit(ctx, []authz.AuditEvent{old, recent}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.lead(ctx, "audit-purge", func() error { return e.srv.recorder.Purge(ctx) }); err != nil {
		t.Fatal(err)
	}
	got, _, err := e.srv.db.ListAudit(ctx, authz.AuditFilter{Action: "client.authentication_failed"}, authz.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "evt_recent" {
		t.Errorf("after the purge: %+v, want the recent event only", got)
	}
	purged, _, err := e.srv.db.ListAudit(ctx, authz.AuditFilter{Action: "audit.purged"}, authz.Page{})
	if err != nil || len(purged) != 1 || purged[0].Details[:10] != `{"count":1` {
		t.Errorf("audit.purged events %+v (%v)", purged, err)
	}
}
