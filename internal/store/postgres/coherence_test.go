package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/pgtest"
	"github.com/m2mauth/m2mauth/internal/store/cache"
)

// Cache coherence between replicas on one database: the change feed
// drops what another replica's writes change, and its version check
// (change_version, migration 0010) finds a lost notification and tells
// caches, while none is lost, that their entries need no reread by age.

func TestParseChange(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    authz.Change
		version uint64
	}{
		{"client@17:3kq4", authz.Change{Kind: authz.ChangeClient, Key: "3kq4"}, 17},
		{"client@17:a:b", authz.Change{Kind: authz.ChangeClient, Key: "a:b"}, 17},
		{"revoked@3:jti-1", authz.Change{Kind: authz.ChangeRevoked, Key: "jti-1"}, 3},
		{"keys@4:", authz.Change{Kind: authz.ChangeKeys}, 4},
		{"settings@5:", authz.Change{Kind: authz.ChangeSettings}, 5},
		{"all@6:", authz.Change{Kind: authz.ChangeAll}, 6},
		{"later@7:x", authz.Change{Kind: authz.ChangeAll}, 7}, // a kind a newer replica sends
		// Payloads of replicas from before migration 0010.
		{"client:3kq4", authz.Change{Kind: authz.ChangeClient, Key: "3kq4"}, 0},
		{"keys:", authz.Change{Kind: authz.ChangeKeys}, 0},
		{"all:", authz.Change{Kind: authz.ChangeAll}, 0},
		// Malformed: always safe.
		{"client@x:3kq4", authz.Change{Kind: authz.ChangeAll}, 0},
		{"client@0:3kq4", authz.Change{Kind: authz.ChangeAll}, 0},
		{"client@-1:3kq4", authz.Change{Kind: authz.ChangeAll}, 0},
		{"", authz.Change{Kind: authz.ChangeAll}, 0},
		{"synced@8:", authz.Change{Kind: authz.ChangeAll}, 8}, // never notified: not trusted from the wire
	} {
		t.Run(tc.payload, func(t *testing.T) {
			got, v := parseChange(tc.payload)
			if got != tc.want || v != tc.version {
				t.Errorf("parseChange(%q) = %+v, %d; want %+v, %d", tc.payload, got, v, tc.want, tc.version)
			}
		})
	}
}

// TestVersionCheck drives the feed's bookkeeping of versions with an
// injected time.
func TestVersionCheck(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const grace = 5 * time.Second
	type step struct {
		received []uint64
		current  uint64
		after    time.Duration // since t0
		want     int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"nothing written", []step{{nil, 10, 0, checkSynced}, {nil, 10, time.Second, checkSynced}}},
		{"every write delivered", []step{{[]uint64{11, 12}, 12, 0, checkSynced}}},
		{"out of order", []step{{[]uint64{12, 11}, 12, 0, checkSynced}}},
		{"in flight, then delivered", []step{
			{[]uint64{11}, 12, 0, checkSynced}, // all up to the previous check (10)
			{nil, 12, time.Second / 2, checkPending},
			{[]uint64{12}, 12, time.Second, checkSynced},
		}},
		{"steady writes, each in flight at its check", []step{
			{nil, 11, 0, checkSynced},
			{[]uint64{11}, 12, 1 * time.Second, checkSynced},
			{[]uint64{12}, 13, 2 * time.Second, checkSynced},
			{[]uint64{13}, 14, 3 * time.Second, checkSynced},
		}},
		{"lost", []step{
			{[]uint64{12}, 12, 0, checkSynced}, // 11 missing, but it may be in flight
			{nil, 12, time.Second, checkPending},
			{nil, 12, grace, checkLost},
			{nil, 12, grace + time.Second, checkSynced}, // the ChangeAll covers it
		}},
		{"gap filled, a newer one in flight", []step{
			{nil, 11, 0, checkSynced},
			{[]uint64{11}, 12, 4 * time.Second, checkSynced},
			{nil, 12, 6 * time.Second, checkPending}, // 12 missing since 4 s only
			{[]uint64{12}, 12, 7 * time.Second, checkSynced},
		}},
		{"the count went back", []step{{nil, 3, 0, checkLost}, {nil, 3, time.Second, checkSynced}}},
		{"duplicates and old versions", []step{{[]uint64{0, 5, 11, 11}, 11, 0, checkSynced}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &versions{}
			v.reset(10)
			for i, st := range tc.steps {
				for _, n := range st.received {
					v.received(n)
				}
				if got := v.check(st.current, t0.Add(st.after), grace); got != st.want {
					t.Fatalf("step %d: check = %d, want %d", i, got, st.want)
				}
			}
		})
	}
}

// shortChecks makes s's feed check the version every 20 ms and count a
// version lost after 200 ms, so that tests need not wait seconds.
func shortChecks(s *Store) *Store {
	s.feedPoll, s.feedGrace = 20*time.Millisecond, 200*time.Millisecond
	return s
}

// countingStore counts the Client reads that reach the real store.
type countingStore struct {
	authz.Store
	reads atomic.Int64
}

func (c *countingStore) Client(ctx context.Context, id string) (*authz.Client, error) {
	c.reads.Add(1)
	return c.Store.Client(ctx, id)
}

// replica is one m2mauth replica's view of the database: its store, its
// cache over a read-counting wrapper of the store, and its change feed
// applied to the cache as the server applies it (server.followChanges).
type replica struct {
	db      *Store
	store   *countingStore
	cache   *cache.Store
	applied chan authz.Change // every change, after it was applied
}

func newReplica(t *testing.T, dsn string, opt cache.Options) *replica {
	t.Helper()
	db := shortChecks(open(t, dsn))
	r := &replica{db: db, store: &countingStore{Store: db}, applied: make(chan authz.Change, 1<<14)}
	r.cache = cache.New(r.store, opt)
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Add(1)
	feed := db.Changes(ctx)
	go func() {
		defer done.Done()
		for ch := range feed {
			switch ch.Kind {
			case authz.ChangeClient:
				r.cache.Invalidate(ch.Key)
			case authz.ChangeAll:
				r.cache.Invalidate("")
			case authz.ChangeSynced:
				r.cache.Synced()
			}
			select {
			case r.applied <- ch:
			default: // nobody waits for it
			}
		}
	}()
	t.Cleanup(func() { cancel(); done.Wait() })
	r.await(t, func(c authz.Change) bool { return c.Kind == authz.ChangeAll }) // listening
	return r
}

// await waits, at most 10 s, until r has applied a change for which ok
// returns true.
func (r *replica) await(t *testing.T, ok func(authz.Change) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-r.applied:
			if ok(c) {
				return
			}
		case <-timeout:
			t.Fatal("the change did not arrive within 10 s")
		}
	}
}

// drain forgets the changes r applied so far.
func (r *replica) drain() {
	for {
		select {
		case <-r.applied:
		default:
			return
		}
	}
}

// awaitSyncedAfterNow waits until r has applied a ChangeSynced from a
// version check that began after awaitSyncedAfterNow was called.
func (r *replica) awaitSyncedAfterNow(t *testing.T) {
	t.Helper()
	r.drain()
	// The first may come from a check already under way: the second began
	// after it was sent, since a feed checks one at a time.
	for range 2 {
		r.await(t, func(c authz.Change) bool { return c.Kind == authz.ChangeSynced })
	}
}

// coherenceFixture creates API api_1 and application app_1 with one
// secret and one grant.
func coherenceFixture(t *testing.T, db authz.Store, at time.Time) {
	t.Helper()
	ctx := t.Context()
	api := authz.API{ID: "api_1", Identifier: "https://api.example.com", Scopes: []authz.Scope{{Value: "read"}},
		TokenLifetime: time.Hour, SigningAlg: authz.ES256, CreatedAt: at, UpdatedAt: at}
	if err := db.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	app := authz.Application{ClientID: "app_1", Name: "A", CreatedAt: at, UpdatedAt: at}
	sec := authz.Secret{ID: "sec_1", ClientID: app.ClientID, Hash: []byte("h"), Prefix: "m2ms_sec_1", CreatedAt: at, UpdatedAt: at}
	grant := authz.Grant{ID: "grant_1", ClientID: app.ClientID, APIID: api.ID, Scopes: []string{"read"}, CreatedAt: at, UpdatedAt: at}
	if err := db.CreateApplication(ctx, app, []authz.Secret{sec}, []authz.Grant{grant}); err != nil {
		t.Fatal(err)
	}
}

func clientName(t *testing.T, c authz.Store) string {
	t.Helper()
	got, err := c.Client(t.Context(), "app_1")
	if err != nil {
		t.Fatal(err)
	}
	return got.Application.Name
}

// TestWriteOnOneReplicaShowsOnAnother: a write through replica A's cache
// drops replica B's entry as soon as B's feed delivers it, with no wait
// for an age (B's TTL is an hour).
func TestWriteOnOneReplicaShowsOnAnother(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	clk := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	opt := cache.Options{TTL: time.Hour, MaxStale: 2 * time.Hour, Now: clk.Now}
	a, b := newReplica(t, dsn, opt), newReplica(t, dsn, opt)
	at := authz.StoreTime(clk.Now())
	coherenceFixture(t, a.cache, at)
	b.awaitSyncedAfterNow(t) // the fixture's own notifications are in
	ctx := t.Context()
	for i := range 5 {
		if got := clientName(t, b.cache); i == 0 && got != "A" {
			t.Fatalf("B reads %q, want A", got)
		}
		name := fmt.Sprint("renamed-", i)
		if _, err := a.cache.UpdateApplication(ctx, "app_1", authz.ApplicationPatch{Name: &name, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
		b.await(t, func(c authz.Change) bool { return c == authz.Change{Kind: authz.ChangeClient, Key: "app_1"} })
		if got := clientName(t, b.cache); got != name {
			t.Fatalf("after A's write %d, B reads %q, want %q", i, got, name)
		}
		if got := clientName(t, a.cache); got != name {
			t.Fatalf("after its own write %d, A reads %q, want %q", i, got, name)
		}
	}
	if r := b.store.reads.Load(); r != 6 {
		t.Errorf("B read the store %d times, want 6: the first, and one per write", r)
	}
}

// TestLostNotificationIsFound: a write that changes the version without
// notifying (a notification lost, made by real SQL) is found by the
// version check, which drops every entry, past the grace.
func TestLostNotificationIsFound(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	clk := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	r := newReplica(t, dsn, cache.Options{TTL: time.Hour, MaxStale: 2 * time.Hour, Now: clk.Now})
	coherenceFixture(t, r.db, authz.StoreTime(clk.Now()))
	r.awaitSyncedAfterNow(t)
	if clientName(t, r.cache) != "A" || r.cache.Len() != 1 {
		t.Fatal("app_1 is not cached")
	}

	// Another replica renames app_1, and its notification is lost.
	err := pgx.BeginFunc(t.Context(), inspect(t, dsn), func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `UPDATE applications SET name = 'lost' WHERE client_id = 'app_1'`); err != nil {
			return err
		}
		_, err := tx.Exec(t.Context(), `UPDATE change_version SET v = v + 1`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if clientName(t, r.cache) != "A" {
		t.Fatal("the cache saw the write without a notification")
	}
	r.await(t, func(c authz.Change) bool { return c.Kind == authz.ChangeAll })
	if n := r.cache.Len(); n != 0 {
		t.Fatalf("after the lost notification was found, %d entries are cached", n)
	}
	if got := clientName(t, r.cache); got != "lost" {
		t.Fatalf("after the lost notification was found, the cache reads %q", got)
	}
	// The check is in step again.
	r.awaitSyncedAfterNow(t)
}

// TestConcurrentWritersLeaveNoStaleEntry: two replicas write the same
// application at once while both read it; once both writes are
// acknowledged and each feed has delivered what committed before a later
// marker write, neither cache holds an old value.
func TestConcurrentWritersLeaveNoStaleEntry(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	clk := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	opt := cache.Options{TTL: time.Hour, MaxStale: 2 * time.Hour, Now: clk.Now}
	a, b := newReplica(t, dsn, opt), newReplica(t, dsn, opt)
	at := authz.StoreTime(clk.Now())
	coherenceFixture(t, a.db, at)
	ctx := t.Context()
	const rounds = 20
	for i := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, r := range []*replica{a, b} {
			name := fmt.Sprintf("%p-%d", r, i)
			wg.Go(func() {
				_, err := r.cache.UpdateApplication(ctx, "app_1", authz.ApplicationPatch{Name: &name, UpdatedAt: at})
				errs <- err
			})
			wg.Go(func() { // loads racing the writes
				for range 10 {
					if _, err := r.cache.Client(ctx, "app_1"); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		marker := fmt.Sprint("marker-", i)
		if err := a.db.RevokeToken(ctx, marker, at); err != nil {
			t.Fatal(err)
		}
		want := clientName(t, a.db)
		for _, r := range []*replica{a, b} {
			r.await(t, func(c authz.Change) bool { return c == authz.Change{Kind: authz.ChangeRevoked, Key: marker} })
			if got := clientName(t, r.cache); got != want {
				t.Fatalf("round %d: a replica's cache reads %q, the store %q", i, got, want)
			}
		}
	}
}

// TestUnchangedApplicationNoReadByAge: while the version check finds
// nothing lost, an entry is never reread however old it is, past TTL and
// MaxStale.
func TestUnchangedApplicationNoReadByAge(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	clk := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var stale atomic.Int64
	r := newReplica(t, dsn, cache.Options{TTL: 2 * time.Second, MaxStale: time.Minute, Now: clk.Now,
		OnLookup: func(result string) {
			if result == cache.LookupStale {
				stale.Add(1)
			}
		}})
	coherenceFixture(t, r.db, authz.StoreTime(clk.Now()))
	r.awaitSyncedAfterNow(t)
	clientName(t, r.cache)
	for range 10 {
		clk.Add(10 * time.Minute)
		r.awaitSyncedAfterNow(t)
		clientName(t, r.cache)
	}
	if n := r.store.reads.Load(); n != 1 {
		t.Errorf("%d store reads over 100 minutes, want 1", n)
	}
	if n := stale.Load(); n != 0 {
		t.Errorf("%d stale lookups, want 0", n)
	}
}

// TestCachedGrantsShareTheirAPI: read from PostgreSQL, two applications
// granted one API hold one copy of it in the cache.
func TestCachedGrantsShareTheirAPI(t *testing.T) {
	s := newStore(t)
	at := authz.StoreTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	coherenceFixture(t, s, at)
	g := authz.Grant{ID: "grant_2", ClientID: "app_2", APIID: "api_1", Scopes: []string{"read"}, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateApplication(t.Context(), authz.Application{ClientID: "app_2", Name: "B", CreatedAt: at, UpdatedAt: at}, nil, []authz.Grant{g}); err != nil {
		t.Fatal(err)
	}
	c := cache.New(s, cache.Options{})
	var apis []*authz.API
	for _, id := range []string{"app_1", "app_2"} {
		got, err := c.Client(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		apis = append(apis, got.Grants[0].API)
	}
	if apis[0] != apis[1] {
		t.Errorf("two applications granted one API hold two copies of it: %+v and %+v", apis[0], apis[1])
	}
}
