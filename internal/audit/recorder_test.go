package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/limits"
)

// auditStore is an in-memory audit store that can be down, and that
// refuses events whose action is "bad" (data it can never take).
type auditStore struct {
	mu      sync.Mutex
	down    bool
	events  []authz.AuditEvent
	touched map[string]time.Time
	creds   map[string]time.Time
	issued  int64
}

var errDown = errors.New("database unreachable")

func (s *auditStore) AppendAudit(_ context.Context, events []authz.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	for _, e := range events {
		if e.Action == "bad" {
			return errors.New("invalid byte sequence")
		}
	}
	s.events = append(s.events, events...)
	return nil
}

func (s *auditStore) PurgeAudit(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, errDown
	}
	kept := s.events[:0]
	for _, e := range s.events {
		if !e.Time.Before(before) {
			kept = append(kept, e)
		}
	}
	n := len(s.events) - len(kept)
	s.events = kept
	return n, nil
}

func (s *auditStore) ListAudit(context.Context, authz.AuditFilter, authz.Page) ([]authz.AuditEvent, string, error) {
	return nil, "", nil
}

func (s *auditStore) AddIssuance(_ context.Context, counts []authz.Issuance) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	for _, c := range counts {
		s.issued += c.Count
	}
	return nil
}

func (s *auditStore) ListIssuance(context.Context, string, time.Time) ([]authz.Issuance, error) {
	return nil, nil
}

func (s *auditStore) TouchSecrets(_ context.Context, used map[string]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	for id, t := range used {
		s.touched[id] = t
	}
	return nil
}

func (s *auditStore) TouchCredentials(_ context.Context, used map[string]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	if s.creds == nil {
		s.creds = map[string]time.Time{}
	}
	for id, t := range used {
		s.creds[id] = t
	}
	return nil
}

func (s *auditStore) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

func (s *auditStore) actions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.Action)
	}
	return out
}

func newTestRecorder(st *auditStore, now func() time.Time) *Recorder {
	rc := New(nil, now, rand.Reader, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rc.store = st
	return rc
}

func TestRecorderKeepsEverythingThroughAnOutage(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rc := newTestRecorder(st, func() time.Time { return at })
	st.setDown(true)
	rc.Record(ctx, authz.AuditEvent{Action: "application.update"})
	rc.ClientAuthFailed(ctx, "c1", "127.0.0.1:1", "wrong client secret")
	rc.SecretUsed("c1", "s1", at)
	rc.TokenIssued("c1", "aud", "j1", at)
	rc.TokenIssued("c1", "aud", "j2", at)
	if err := rc.Flush(ctx); err == nil {
		t.Fatal("flush during the outage reported success")
	}
	st.setDown(false)
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := st.actions()
	if len(got) != 2 || got[0] != "application.update" || got[1] != "client.authentication_failed" {
		t.Fatalf("audit after the outage: %v", got)
	}
	if st.issued != 2 || !st.touched["s1"].Equal(at) {
		t.Fatalf("issued %d, touched %v", st.issued, st.touched)
	}
}

func TestRecorderDropsAnEventTheDatabaseNeverTakes(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	rc := newTestRecorder(st, time.Now)
	rc.mu.Lock()
	rc.events = append(rc.events, authz.AuditEvent{ID: "e1", Action: "bad"}, authz.AuditEvent{ID: "e2", Action: "good"})
	rc.mu.Unlock()
	rc.Flush(ctx)
	rc.Record(ctx, authz.AuditEvent{Action: "later"})
	rc.Flush(ctx)
	got := st.actions()
	if len(got) != 2 || got[0] != "good" || got[1] != "later" {
		t.Fatalf("audit %v: a bad event must not hold back the others", got)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.events) != 0 {
		t.Fatalf("%d events still buffered", len(rc.events))
	}
}

func TestRecorderBoundsBufferedEvents(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	rc := newTestRecorder(st, time.Now)
	st.setDown(true)
	rc.mu.Lock()
	for i := range maxBuffered {
		rc.events = append(rc.events, authz.AuditEvent{ID: fmt.Sprint("evt_", i), Action: "application.update"})
	}
	rc.mu.Unlock()
	for i := range 5 {
		rc.ClientAuthFailed(ctx, fmt.Sprint("c", i), "192.0.2.1", "wrong client secret")
	}
	rc.Lockout(limits.Lockout{Scope: limits.ScopeAddr, Started: true})
	if err := rc.Flush(ctx); err == nil {
		t.Fatal("flush during the outage reported success")
	}
	st.setDown(false)
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := st.actions()
	if len(got) != maxBuffered+1 || got[len(got)-1] != "audit.events_dropped" {
		t.Fatalf("%d events, last %q", len(got), got[len(got)-1])
	}
	if d := st.events[len(st.events)-1].Details; d != `{"count":6}` {
		t.Fatalf("dropped details %s", d)
	}
}

func TestRecorderWritesLastUseAtMostOnceAMinute(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rc := newTestRecorder(st, func() time.Time { return at })
	rc.SecretUsed("c1", "s1", at)
	rc.SecretUsed("c1", "s1", at.Add(30*time.Second))
	rc.Flush(ctx)
	if !st.touched["s1"].Equal(at) {
		t.Fatalf("touched %v, want the first use only", st.touched["s1"])
	}
	rc.SecretUsed("c1", "s1", at.Add(time.Minute))
	rc.Flush(ctx)
	if !st.touched["s1"].Equal(at.Add(time.Minute)) {
		t.Fatalf("touched %v after a minute", st.touched["s1"])
	}
}
