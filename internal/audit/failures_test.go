package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/limits"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newLoggedRecorder(st *auditStore, c *testClock) (*Recorder, *lockedBuffer) {
	logs := &lockedBuffer{}
	rc := New(nil, c.now, rand.Reader, slog.New(slog.NewTextHandler(logs, nil)))
	rc.store = st
	return rc, logs
}

type details struct {
	Reason      string
	Count       int
	First, Last time.Time
}

func detailsOf(t *testing.T, e authz.AuditEvent) details {
	t.Helper()
	var d details
	if err := json.Unmarshal([]byte(e.Details), &d); err != nil {
		t.Fatalf("details %s: %v", e.Details, err)
	}
	return d
}

func TestFailuresAggregatePerClientAddressAndReason(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	c := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rc, logs := newLoggedRecorder(st, c)
	start := c.now()
	for range 500 {
		rc.ClientAuthFailed(ctx, "app_1", "192.0.2.1", "wrong client secret")
		c.add(time.Millisecond)
	}
	rc.ClientAuthFailed(ctx, "app_1", "192.0.2.1", "client secret expired")
	rc.ClientAuthFailed(ctx, "app_1", "192.0.2.2", "wrong client secret")
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(st.events) != 3 {
		t.Fatalf("%d events, want 3: %v", len(st.events), st.actions())
	}
	var wrong *authz.AuditEvent
	for i, e := range st.events {
		if e.RemoteAddr == "192.0.2.1" && strings.Contains(e.Details, "wrong") {
			wrong = &st.events[i]
		}
	}
	if wrong == nil {
		t.Fatal("no event for the wrong secrets from 192.0.2.1")
	}
	d := detailsOf(t, *wrong)
	if d.Count != 500 || !d.First.Equal(start) || !d.Last.Equal(start.Add(499*time.Millisecond)) || d.Reason != "wrong client secret" {
		t.Errorf("aggregate = %+v", d)
	}
	if wrong.Actor != "app_1" || wrong.Target != "app_1" || !wrong.Time.Equal(start) {
		t.Errorf("event = %+v", wrong)
	}
	if n := strings.Count(logs.String(), `msg="client authentication failed"`); n != 3 {
		t.Errorf("%d log lines for 502 failures in 3 aggregates, want 3", n)
	}
	if !strings.Contains(logs.String(), "log_lines_suppressed=499") {
		t.Errorf("no summary line: %s", logs)
	}
	// The next interval starts afresh.
	rc.ClientAuthFailed(ctx, "app_1", "192.0.2.1", "wrong client secret")
	rc.Flush(ctx)
	if len(st.events) != 4 || detailsOf(t, st.events[3]).Count != 1 {
		t.Errorf("next interval: %d events", len(st.events))
	}
}

func TestFailuresFloodIsBounded(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	c := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rc, logs := newLoggedRecorder(st, c)
	const flood = 100_000
	rc.ClientAuthFailed(ctx, "app_real", "192.0.2.9", "wrong client secret")
	for i := range flood {
		rc.ClientAuthFailed(ctx, fmt.Sprint("random_", i), fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), "unknown client_id")
		if i%10_000 == 0 { // ten flush intervals of 2 s
			c.add(flushInterval)
			rc.Flush(ctx)
		}
	}
	rc.Flush(ctx)
	// 11 intervals: the first keeps maxFailureKeys aggregates and spends
	// the burst; the others get their interval's refill, 2 rows; each
	// ends with one overflow event.
	total := 0
	for _, e := range st.events {
		total += detailsOf(t, e).Count
	}
	if total != flood+1 {
		t.Errorf("the events count %d failures, want %d", total, flood+1)
	}
	if max := failureRowBurst + 11*(1+int(flushInterval.Seconds()*failureRowRate)); len(st.events) > max {
		t.Errorf("%d events for %d failures, want at most %d", len(st.events), flood, max)
	}
	if st.events[0].Actor != "app_real" {
		t.Errorf("the failure of an existing application is not the first kept: %+v", st.events[0])
	}
	if n := strings.Count(logs.String(), `msg="client authentication failed"`); n > 11*maxFailureLogLines {
		t.Errorf("%d log lines", n)
	}
	t.Logf("%d failures: %d audit events, %d bytes of log", flood, len(st.events), len(logs.String()))
}

func TestLockoutsAreAudited(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	c := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rc, _ := newLoggedRecorder(st, c)
	until := c.now().Add(time.Minute)
	addr := netip.MustParseAddr("192.0.2.66")
	rc.Lockout(limits.Lockout{Scope: limits.ScopeClientAddr, ClientID: "app_1", Addr: addr, Started: true, Until: until, Failures: 10})
	rc.Lockout(limits.Lockout{Scope: limits.ScopeClientAddr, ClientID: "app_1", Addr: addr, Until: until})
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := st.actions()
	if len(got) != 2 || got[0] != "client.lockout_started" || got[1] != "client.lockout_ended" {
		t.Fatalf("actions %v", got)
	}
	e := st.events[0]
	if e.Target != "app_1" || e.RemoteAddr != "192.0.2.66" || !strings.Contains(e.Details, `"scope":"client_address"`) || !strings.Contains(e.Details, `"failures":10`) {
		t.Errorf("event %+v", e)
	}
}

func TestPurgeKeepsTheRetentionPeriod(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	c := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rc, _ := newLoggedRecorder(st, c)
	rc.Retention = 90 * 24 * time.Hour
	old := authz.AuditEvent{ID: "evt_old", Time: c.now().Add(-91 * 24 * time.Hour), Action: "api.create"}
	recent := authz.AuditEvent{ID: "evt_recent", Time: c.now().Add(-89 * 24 * time.Hour), Action: "api.create"}
	st.events = []authz.AuditEvent{old, recent}
	var leased []string
	rc.Lead = func(_ context.Context, name string, fn func() error) error {
		leased = append(leased, name)
		return fn()
	}
	if err := rc.Lead(ctx, "audit-purge", func() error { return rc.Purge(ctx) }); err != nil {
		t.Fatal(err)
	}
	got := st.actions()
	if len(got) != 2 || st.events[0].ID != "evt_recent" || got[1] != "audit.purged" || !strings.Contains(st.events[1].Details, `"count":1`) {
		t.Fatalf("after the purge: %+v", st.events)
	}
	if len(leased) != 1 {
		t.Errorf("leases %v", leased)
	}
	rc.Retention = 0
	st.events = []authz.AuditEvent{old}
	if err := rc.Purge(ctx); err != nil || len(st.events) != 1 {
		t.Errorf("retention 0 purged: %v, %d left", err, len(st.events))
	}
}

func TestLockoutsShareTheRowBudget(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	c := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	rc, logs := newLoggedRecorder(st, c)
	const n = 5000
	for i := range n { // an address lockout flapping on many addresses
		rc.Lockout(limits.Lockout{Scope: limits.ScopeAddr, Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Started: i%2 == 0})
	}
	rc.Lockout(limits.Lockout{Scope: limits.ScopeClient, ClientID: "app_1", Started: true})
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(st.events) > failureRowBurst+1 {
		t.Errorf("%d events for %d lockouts, want at most %d", len(st.events), n+1, failureRowBurst+1)
	}
	if st.events[0].Target != "app_1" {
		t.Errorf("the client_id's lockout is not kept first: %+v", st.events[0])
	}
	last := st.events[len(st.events)-1]
	if d := detailsOf(t, last); d.Reason != overflowReason || d.Count != n+1-failureRowBurst {
		t.Errorf("overflow event %+v", d)
	}
	if n := strings.Count(logs.String(), "lockout started"); n > maxFailureLogLines {
		t.Errorf("%d log lines", n)
	}
}
