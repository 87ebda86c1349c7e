package quota

import (
	"context"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func TestTakeWithoutPolicyCostsNothing(t *testing.T) {
	l := New(time.Now, authz.Policy{}, nil)
	app := &authz.Application{ClientID: "c"}
	if allocs := testing.AllocsPerRun(100, func() { l.Take(app) }); allocs != 0 {
		t.Fatalf("Take without a policy: %v allocations", allocs)
	}
	if d := l.Take(app); d.Limited || d.Refused {
		t.Fatalf("Take without a policy = %+v", d)
	}
}

func TestQuotaRollsOverAtTheHour(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 59, 0, 0, time.UTC)
	l := New(func() time.Time { return now }, authz.Policy{}, nil)
	app := &authz.Application{ClientID: "c", Policy: authz.Policy{Quota: &authz.Quota{PerHour: 2}, Mode: authz.PolicyEnforce}}
	for i, want := range []bool{false, false, true} {
		if d := l.Take(app); d.Refused != want {
			t.Fatalf("take %d: refused %v", i, d.Refused)
		}
	}
	if d := l.Take(app); d.RetryAfter != time.Minute || d.State != `"hour";r=0;t=60` {
		t.Fatalf("over the quota: %+v", d)
	}
	now = now.Add(time.Minute)
	if d := l.Take(app); d.Refused || d.State != `"hour";r=1;t=3600` {
		t.Fatalf("the next hour: %+v", d)
	}
}

// TestDecisionCounted: Counted is set for a token counted against an
// hourly or daily quota (its own or the server's default, enforced or
// observed), and for no other: none without a quota, a rate only, or a
// request refused.
func TestDecisionCounted(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	quota := func(h, d int64, mode authz.PolicyMode) authz.Policy {
		return authz.Policy{Quota: &authz.Quota{PerHour: h, PerDay: d}, Mode: mode}
	}
	tests := []struct {
		name     string
		defaults authz.Policy
		policy   authz.Policy
		want     []bool // one per Take
	}{
		{"no policy", authz.Policy{}, authz.Policy{}, []bool{false, false}},
		{"a rate only", authz.Policy{}, authz.Policy{Rate: &authz.Rate{PerSecond: 100, Burst: 100}, Mode: authz.PolicyEnforce}, []bool{false, false}},
		{"an hourly quota, refused past it", authz.Policy{}, quota(1, 0, authz.PolicyEnforce), []bool{true, false}},
		{"a daily quota observed", authz.Policy{}, quota(0, 1, authz.PolicyObserve), []bool{true, true}},
		{"the server's default quota", quota(0, 5, authz.PolicyEnforce), authz.Policy{}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(clock, tt.defaults, nil)
			app := &authz.Application{ClientID: "c", Policy: tt.policy}
			for i, want := range tt.want {
				if d := l.Take(app); d.Counted != want {
					t.Fatalf("take %d: Counted %v, want %v (%+v)", i, d.Counted, want, d)
				}
			}
		})
	}
}

func BenchmarkTake(b *testing.B) {
	l := New(time.Now, authz.Policy{}, nil)
	b.Run("no-policy", func(b *testing.B) {
		app := &authz.Application{ClientID: "c"}
		b.ReportAllocs()
		for b.Loop() {
			l.Take(app)
		}
	})
	b.Run("rate+quota", func(b *testing.B) {
		app := &authz.Application{ClientID: "d", Policy: authz.Policy{Rate: &authz.Rate{PerSecond: 1e9, Burst: 1e9}, Quota: &authz.Quota{PerDay: 1e12}, Mode: authz.PolicyEnforce}}
		b.ReportAllocs()
		for b.Loop() {
			l.Take(app)
		}
	})
}

type fakeUsage map[string][]authz.Issuance

func (f fakeUsage) ListIssuance(_ context.Context, clientID string, since time.Time) ([]authz.Issuance, error) {
	var out []authz.Issuance
	for _, c := range f[clientID] {
		if !c.Hour.Before(since) {
			out = append(out, c)
		}
	}
	return out, nil
}

// TestReconcile: the store's counts (every replica's) become the base,
// what was issued here since stays on top, and idle states are dropped.
func TestReconcile(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 30, 0, 0, time.UTC)
	l := New(func() time.Time { return now }, authz.Policy{}, nil)
	app := &authz.Application{ClientID: "c", Policy: authz.Policy{Quota: &authz.Quota{PerHour: 10, PerDay: 100}, Mode: authz.PolicyEnforce}}
	l.Take(app) // issued here, and (say) flushed: the store counts it below
	src := fakeUsage{"c": {
		{ClientID: "c", Audience: "a", Hour: now.Truncate(time.Hour), Count: 8},                  // this hour, both replicas
		{ClientID: "c", Audience: "a", Hour: now.Truncate(time.Hour).Add(-time.Hour), Count: 50}, // earlier today
		{ClientID: "c", Audience: "a", Hour: now.Add(-24 * time.Hour).Truncate(time.Hour), Count: 500},
	}}
	if err := l.Reconcile(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if d := l.Take(app); d.Refused || d.State != `"hour";r=1;t=1800, "day";r=41;t=48600` {
		t.Fatalf("after reconciling: %+v", d)
	}
	l.Take(app)
	if d := l.Take(app); !d.Refused {
		t.Fatalf("over the reconciled hourly quota: %+v", d)
	}
	now = now.Add(2 * time.Hour)
	if err := l.Reconcile(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if len(l.apps) != 0 {
		t.Fatalf("%d idle states kept", len(l.apps))
	}
}
