package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
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
	// counters, if not nil, gets the issuance counts by "client_id
	// audience hour" (a string built per row: not for the benchmark).
	counters map[string]int64
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
		if s.counters != nil {
			s.counters[c.ClientID+" "+c.Audience+" "+c.Hour.Format(time.RFC3339)] += c.Count
		}
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
	rc.TokenIssued("c1", "aud", "j1", at, false)
	rc.TokenIssued("c1", "aud", "j2", at, true)
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

// TestRecorderDropsIdleClients: the per-application entry outlives the
// flush while the client is active, and is dropped once none of its
// secrets' uses is younger than a minute and it has nothing to write;
// dropping it changes no write (its next use is written, as it would be).
func TestRecorderDropsIdleClients(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	clock := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rc := newTestRecorder(st, clock.Now)
	t0 := clock.Now()
	rc.SecretUsed("idle", "s_idle", t0)
	rc.TokenIssued("idle", "https://a", "", t0, true)
	rc.SecretUsed("busy", "s_busy", t0)
	noErr(t, rc.Flush(ctx))
	if n := len(rc.clients); n != 2 {
		t.Fatalf("%d entries right after the flush, want both kept", n)
	}
	clock.Add(61 * time.Second)
	rc.SecretUsed("busy", "s_busy", clock.Now())
	st.setDown(true)
	rc.TokenIssued("pending", "https://a", "", clock.Now(), true)
	if err := rc.Flush(ctx); err == nil {
		t.Fatal("flush with the database down succeeded")
	}
	if _, ok := rc.clients["idle"]; ok {
		t.Fatal("the idle application's entry was kept")
	}
	if _, ok := rc.clients["busy"]; !ok {
		t.Fatal("the active application's entry was dropped")
	}
	if u := rc.clients["pending"]; u == nil || !u.urgent {
		t.Fatal("an entry with a counter not yet written was dropped")
	}
	st.setDown(false)
	clock.Add(time.Second)
	rc.SecretUsed("idle", "s_idle", clock.Now())
	noErr(t, rc.Flush(ctx))
	if got := st.touched["s_idle"]; !got.Equal(clock.Now()) {
		t.Fatalf("the idle secret's next use wrote %v, want %v", got, clock.Now())
	}
	if st.issued != 2 {
		t.Fatalf("%d tokens counted, want 2", st.issued)
	}
}

// TestRecorderHoldsUsageForTheInterval: a token not counted against a
// quota is written at the first flush UsageInterval or more after its
// application's first token not yet written, summed with those after it;
// a token counted against a quota, at the next flush, with what its
// application had held; FlushAll writes everything however young.
func TestRecorderHoldsUsageForTheInterval(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}, counters: map[string]int64{}}
	clock := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rc := newTestRecorder(st, clock.Now)
	rc.UsageInterval = 10 * time.Second
	issue := func(id string, quota bool) { rc.TokenIssued(id, "https://a", "", clock.Now(), quota) }
	want := func(step string, n int64) {
		t.Helper()
		noErr(t, rc.Flush(ctx))
		if st.issued != n {
			t.Fatalf("%s: %d tokens written, want %d", step, st.issued, n)
		}
	}
	issue("early", false)
	clock.Add(4 * time.Second)
	issue("late", false)
	issue("early", false)
	want("4 s after the first token", 0)
	clock.Add(6 * time.Second)
	want("10 s after early's first token", 2)
	if st.counters["early https://a 2030-01-01T00:00:00Z"] != 2 || st.counters["late https://a 2030-01-01T00:00:00Z"] != 0 {
		t.Fatalf("counters %v, want early's two tokens only", st.counters)
	}
	issue("early", false) // held anew: its entry left the queue
	clock.Add(4 * time.Second)
	want("10 s after late's first token", 3)
	issue("late", true)
	want("a token counted against a quota", 4)
	issue("quota", true)
	issue("quota", false) // after one counted: written with it
	want("a quota'd application", 6)
	clock.Add(5 * time.Second)
	want("early's second token, 9 s old", 6)
	issue("fresh", false)
	noErr(t, rc.FlushAll(ctx))
	if st.issued != 8 || len(rc.queue) != 0 || len(rc.urgent) != 0 {
		t.Fatalf("FlushAll wrote %d tokens, want 8, and left %d queued and %d urgent", st.issued, len(rc.queue), len(rc.urgent))
	}
}

// TestRecorderCountsEveryTokenUnderConcurrentFlushes: writers on the same
// applications while flushes run, some of them failing (the database
// down), lose and double no count.
func TestRecorderCountsEveryTokenUnderConcurrentFlushes(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}, counters: map[string]int64{}}
	clock := fake.NewClock(time.Date(2030, 1, 1, 0, 59, 59, 0, time.UTC))
	rc := newTestRecorder(st, clock.Now)
	const writers, perWriter, clients = 8, 2000, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("app_%d", (w+i)%clients)
				at := clock.Now().Add(time.Duration(i%3) * time.Second) // across the hour's end
				rc.SecretUsed(id, "sec_"+id, at)
				rc.TokenIssued(id, "https://a", "", at, i%2 == 0)
			}
		})
	}
	done := make(chan struct{})
	flushes := make(chan int)
	go func() {
		n := 0
		defer func() { flushes <- n }()
		for ; ; n++ {
			select {
			case <-done:
				return
			default:
			}
			st.setDown(n%3 == 1)
			_ = rc.Flush(ctx)
		}
	}()
	wg.Wait()
	close(done)
	t.Logf("%d flushes during the writes", <-flushes)
	st.setDown(false)
	noErr(t, rc.FlushAll(ctx))
	if st.issued != writers*perWriter {
		t.Fatalf("%d tokens counted, want %d", st.issued, writers*perWriter)
	}
	var sum int64
	for k, n := range st.counters {
		if !strings.HasPrefix(k, "app_") {
			t.Fatalf("counter %q", k)
		}
		sum += n
	}
	if len(st.counters) != 2*clients || sum != writers*perWriter {
		t.Fatalf("%d counters summing to %d, want %d (each client, two hours) summing to %d", len(st.counters), sum, 2*clients, writers*perWriter)
	}
}

// TestRecorderTokenAllocatesNothing: a token request's two events cost no
// allocation for a client the recorder holds, its counter written since.
func TestRecorderTokenAllocatesNothing(t *testing.T) {
	st := &auditStore{touched: map[string]time.Time{}}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rc := newTestRecorder(st, func() time.Time { return at })
	rc.SecretUsed("app_1", "sec_1", at)
	rc.TokenIssued("app_1", "https://a", "", at, false)
	noErr(t, rc.Flush(context.Background()))
	if n := testing.AllocsPerRun(100, func() {
		rc.SecretUsed("app_1", "sec_1", at)
		rc.TokenIssued("app_1", "https://a", "", at, false)
	}); n != 0 {
		t.Fatalf("%v allocations per token", n)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRecorderToken: what a token request costs the recorder (a
// secret's use, then the token counted) for one client asking again and
// again and for 100 000 taking turns, with a flush to an in-memory store
// every 60 000 requests (2 s at 30 000 tokens/s), its time included.
func BenchmarkRecorderToken(b *testing.B) {
	for _, n := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			ctx := context.Background()
			st := &auditStore{touched: map[string]time.Time{}}
			at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			rc := newTestRecorder(st, func() time.Time { return at })
			ids, secrets := make([]string, n), make([]string, n)
			for i := range ids {
				ids[i], secrets[i] = fmt.Sprintf("app_%020d", i), fmt.Sprintf("sec_%020d", i)
			}
			b.ReportAllocs()
			i, k := 0, 0
			for b.Loop() {
				rc.SecretUsed(ids[i], secrets[i], at)
				rc.TokenIssued(ids[i], "https://api/", "", at, false)
				if i++; i == n {
					i = 0
				}
				if k++; k == 60_000 {
					k = 0
					if err := rc.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
