package denylist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// memRevocations is an in-memory authz.Revocations; err, if set, fails
// every call.
type memRevocations struct {
	mu      sync.Mutex
	entries map[string]time.Time
	// stamps are the entries' revoked_at by the store's clock, now (nil:
	// the zero time); an entry set in entries directly has none.
	stamps map[string]time.Time
	now    func() time.Time
	purged []time.Time // the now of each PurgeRevoked
	sinces []time.Time // the since of each ListRevokedSince
	read   int         // entries ListRevokedSince returned, in all
	err    error
}

func (m *memRevocations) clock() time.Time {
	if m.now == nil {
		return time.Time{}
	}
	return m.now()
}

func (m *memRevocations) RevokeToken(_ context.Context, jti string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if cur, ok := m.entries[jti]; !ok || exp.After(cur) {
		m.entries[jti] = exp
	}
	if m.stamps == nil {
		m.stamps = map[string]time.Time{}
	}
	m.stamps[jti] = m.clock()
	return nil
}

func (m *memRevocations) ListRevoked(context.Context) (map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	out := make(map[string]time.Time, len(m.entries))
	for k, v := range m.entries {
		out[k] = v
	}
	return out, nil
}

func (m *memRevocations) ListRevokedSince(_ context.Context, since time.Time) (map[string]time.Time, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sinces = append(m.sinces, since)
	if m.err != nil {
		return nil, time.Time{}, m.err
	}
	out := map[string]time.Time{}
	for k, v := range m.entries {
		if since.IsZero() || !m.stamps[k].Before(since) {
			out[k] = v
		}
	}
	m.read += len(out)
	return out, m.clock(), nil
}

func (m *memRevocations) PurgeRevoked(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	m.purged = append(m.purged, now)
	n := 0
	for k, v := range m.entries {
		if !v.After(now) {
			delete(m.entries, k)
			n++
		}
	}
	return n, nil
}

func TestDenyList(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	setup := func() (*DenyList, *memRevocations, *time.Time) {
		now := t0
		st := &memRevocations{entries: map[string]time.Time{}}
		return New(st, func() time.Time { return now }, slog.New(slog.DiscardHandler)), st, &now
	}
	ctx := context.Background()

	t.Run("a revocation goes to the store and to memory", func(t *testing.T) {
		d, st, _ := setup()
		if err := d.Revoke(ctx, "a", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !d.Revoked("a") || d.Revoked("b") {
			t.Fatalf("Revoked(a) = %v, Revoked(b) = %v", d.Revoked("a"), d.Revoked("b"))
		}
		if !st.entries["a"].Equal(t0.Add(time.Hour)) {
			t.Fatalf("store holds %v", st.entries)
		}
	})

	t.Run("a revocation the store refuses is not kept", func(t *testing.T) {
		d, st, _ := setup()
		st.err = errors.New("disk full")
		if err := d.Revoke(ctx, "a", t0.Add(time.Hour)); err == nil {
			t.Fatal("no error")
		}
		if d.Revoked("a") {
			t.Fatal("revoked in memory only")
		}
	})

	t.Run("refresh brings in other replicas' revocations and keeps its own", func(t *testing.T) {
		d, st, _ := setup()
		if err := d.Revoke(ctx, "mine", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		delete(st.entries, "mine") // as if the store's read raced the write
		st.entries["theirs"] = t0.Add(time.Hour)
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if !d.Revoked("mine") || !d.Revoked("theirs") {
			t.Fatalf("mine %v, theirs %v", d.Revoked("mine"), d.Revoked("theirs"))
		}
	})

	t.Run("a failed refresh keeps what is in memory", func(t *testing.T) {
		d, st, _ := setup()
		if err := d.Revoke(ctx, "a", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		st.err = errors.New("database is down")
		if err := d.Refresh(ctx); err == nil {
			t.Fatal("no error")
		}
		if !d.Revoked("a") {
			t.Fatal("lost an entry")
		}
	})

	t.Run("expired entries leave the store and memory", func(t *testing.T) {
		d, st, now := setup()
		for jti, exp := range map[string]time.Time{"past": t0.Add(time.Minute), "at": t0.Add(2 * time.Minute), "future": t0.Add(time.Hour)} {
			if err := d.Revoke(ctx, jti, exp); err != nil {
				t.Fatal(err)
			}
		}
		*now = t0.Add(2 * time.Minute)
		if err := d.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		if d.Revoked("past") || d.Revoked("at") || !d.Revoked("future") || len(d.jti) != 1 {
			t.Fatalf("past %v, at %v, future %v, %d entries", d.Revoked("past"), d.Revoked("at"), d.Revoked("future"), len(d.jti))
		}
		if len(st.entries) != 1 || len(st.purged) != 1 || !st.purged[0].Equal(*now) {
			t.Fatalf("store %v, purged at %v", st.entries, st.purged)
		}
	})

	t.Run("refresh drops what expired", func(t *testing.T) {
		d, st, now := setup()
		st.entries["old"] = t0.Add(time.Second)
		*now = t0.Add(time.Second)
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if d.Revoked("old") {
			t.Fatal("an expired entry was loaded")
		}
	})

	t.Run("the later expiry wins", func(t *testing.T) {
		d, st, now := setup()
		if err := d.Revoke(ctx, "a", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		st.entries["a"] = t0.Add(2 * time.Hour)
		if err := d.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		*now = t0.Add(90 * time.Minute)
		st.entries["a"] = t0.Add(2 * time.Hour)
		if err := d.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		if !d.Revoked("a") {
			t.Fatal("dropped at the earlier expiry")
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		d, _, _ := setup()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				jti := string(rune('a' + i))
				if err := d.Revoke(ctx, jti, t0.Add(time.Hour)); err != nil {
					t.Error(err)
				}
				_ = d.Refresh(ctx)
				_ = d.Revoked(jti)
				_ = d.Purge(ctx)
			})
		}
		wg.Wait()
		if len(d.jti) != 8 {
			t.Fatalf("%d entries", len(d.jti))
		}
	})
}

// TestDenyListLoopsStop: the background loops return when their context
// ends, so Serve can stop.
func TestDenyListLoopsStop(t *testing.T) {
	d := New(&memRevocations{entries: map[string]time.Time{}}, time.Now, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, loop := range []func(context.Context){d.RefreshLoop, d.PurgeLoop} {
		go func() { loop(ctx); done <- struct{}{} }()
	}
	cancel()
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a loop did not stop")
		}
	}
}

// TestRefreshIsIncremental: after the first, full read, a refresh reads
// only what was written since the previous one (less RefreshOverlap), so
// another replica's revocation arrives without the deny-list being reread;
// an entry stamped before the watermark but committed after it is caught
// by the overlap; RefreshAll reads everything again.
func TestRefreshIsIncremental(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := &memRevocations{entries: map[string]time.Time{}, now: clock}
	other := st // another replica writes to the same store
	ctx := context.Background()
	const old = 100
	for i := range old {
		if err := other.RevokeToken(ctx, fmt.Sprint("old-", i), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * RefreshOverlap) // the old entries are older than the overlap
	d := New(st, clock, slog.New(slog.DiscardHandler))
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if len(st.sinces) != 1 || !st.sinces[0].IsZero() || st.read != old {
		t.Fatalf("first refresh: sinces %v, %d read; want one full read of %d", st.sinces, st.read, old)
	}
	mark := now

	now = now.Add(RefreshInterval)
	if err := other.RevokeToken(ctx, "new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !d.Revoked("new") {
		t.Fatal("another replica's revocation did not arrive")
	}
	if got := st.sinces[1]; !got.Equal(mark.Add(-RefreshOverlap)) {
		t.Errorf("second refresh read since %v, want the watermark less the overlap %v", got, mark.Add(-RefreshOverlap))
	}
	if st.read != old+1 {
		t.Errorf("second refresh read %d entries, want 1", st.read-old)
	}

	// Stamped before the last watermark, committed only now.
	now = now.Add(time.Minute)
	st.mu.Lock()
	st.entries["late"], st.stamps["late"] = now.Add(time.Hour), now.Add(-time.Minute+time.Second)
	st.mu.Unlock()
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !d.Revoked("late") {
		t.Error("an entry committed after its stamp was missed")
	}

	st.err = errors.New("database is down")
	if err := d.Refresh(ctx); err == nil {
		t.Fatal("no error")
	}
	st.err = nil
	before := st.sinces[len(st.sinces)-1]
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.sinces[len(st.sinces)-1]; !got.Equal(before) {
		t.Errorf("after a failed refresh read since %v, want %v again", got, before)
	}

	read := st.read
	if err := d.RefreshAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.sinces[len(st.sinces)-1]; !got.IsZero() || st.read-read != old+2 {
		t.Errorf("RefreshAll read since %v, %d entries; want everything (%d)", got, st.read-read, old+2)
	}
}
