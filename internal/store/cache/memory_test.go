package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/store/cache"
)

// requestString returns s as a string that shares the memory of a larger
// buffer, as a client_id cut from a decoded "id:secret" Basic header or
// from a form body does, and the buffer.
func requestString(s, rest string) (string, []byte) {
	buf := []byte(s + rest)
	return unsafe.String(&buf[0], len(s)), buf
}

func overwrite(buf []byte) {
	for i := range buf {
		buf[i] = 'x'
	}
}

func TestNothingCachedRefersToRequestMemory(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	for _, soleWriter := range []bool{false, true} {
		t.Run(fmt.Sprint("sole writer ", soleWriter), func(t *testing.T) {
			st := &countingStore{Store: db}
			c := cache.New(st, cache.Options{SoleWriter: soleWriter, TTL: time.Minute, MaxStale: time.Hour, NegativeTTL: time.Minute, Now: clk.Now})

			id, buf := requestString("c1", ":m2ms_the_plaintext_secret")
			got, err := c.Client(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			overwrite(buf) // the request's memory is reused
			if got.Application.ClientID != "c1" || got.Secrets[0].ClientID != "c1" || got.Grants[0].Grant.ClientID != "c1" {
				t.Errorf("the cached application refers to the request's memory: client_id %q, secret's %q, grant's %q",
					got.Application.ClientID, got.Secrets[0].ClientID, got.Grants[0].Grant.ClientID)
			}
			if _, err := c.Client(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			if n := st.reads.Load(); n != 1 {
				t.Errorf("%d store reads, want 1: the cache's key was the request's memory, overwritten", n)
			}

			id, buf = requestString("nosuch", ":m2ms_the_plaintext_secret")
			if _, err := c.Client(ctx, id); !errors.Is(err, authz.ErrNotFound) {
				t.Fatal(err)
			}
			overwrite(buf)
			c.Client(ctx, "nosuch")
			if n := st.reads.Load(); n != 2 {
				t.Errorf("%d store reads, want 2: the unknown client_id's key was the request's memory, overwritten", n)
			}
		})
	}
}

func TestSoleWriterEntriesDoNotAge(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	st := &countingStore{Store: db}
	results := map[string]int{}
	c := cache.New(st, cache.WithAfterRevalidate(cache.Options{
		SoleWriter: true, TTL: 2 * time.Second, MaxStale: time.Minute, Now: clk.Now,
		OnLookup: func(r string) { results[r]++ },
	}, func() { t.Error("a background reread") }))
	for range 10 {
		if _, err := c.Client(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client(ctx, "nosuch"); !errors.Is(err, authz.ErrNotFound) {
			t.Fatal(err)
		}
		clk.Add(time.Hour) // past TTL, MaxStale and NegativeTTL
	}
	if n := st.reads.Load(); n != 2 {
		t.Errorf("%d store reads over 10 hours of lookups, want 2 (one per client_id)", n)
	}
	if results[cache.LookupHit] != 9 || results[cache.LookupNegativeHit] != 9 || results[cache.LookupStale] != 0 {
		t.Errorf("lookups %v, want 9 hits, 9 negative hits, no stale", results)
	}

	t.Run("a write through the cache shows at once", func(t *testing.T) {
		yes := true
		if _, err := c.UpdateApplication(ctx, "c1", authz.ApplicationPatch{Disabled: &yes, UpdatedAt: authz.StoreTime(clk.Now())}); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Client(ctx, "c1"); !got.Application.Disabled {
			t.Error("the cache did not see the write")
		}
		now := authz.StoreTime(clk.Now())
		if err := c.Manage(ctx, func(tx authz.Tx) error {
			return tx.CreateApplication(ctx, authz.Application{ClientID: "nosuch", Name: "new", CreatedAt: now, UpdatedAt: now}, nil, nil)
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client(ctx, "nosuch"); err != nil {
			t.Errorf("an application created through the cache: %v", err)
		}
	})
}

func TestEvictsTheLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	now := authz.StoreTime(clk.Now())
	for _, id := range []string{"c2", "c3"} {
		if err := db.CreateApplication(ctx, authz.Application{ClientID: id, Name: id, CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := &countingStore{Store: db}
	c := cache.New(st, cache.Options{SoleWriter: true, MaxEntries: 2, Now: clk.Now})
	read := func(id string) int64 {
		t.Helper()
		before := st.reads.Load()
		if _, err := c.Client(ctx, id); err != nil {
			t.Fatal(err)
		}
		return st.reads.Load() - before
	}
	read("c1")
	read("c2")
	read("c1") // c2 is now the least recently used
	read("c3")
	if c.Len() != 2 {
		t.Fatalf("%d entries, max 2", c.Len())
	}
	if n := read("c1"); n != 0 {
		t.Error("the recently used c1 was evicted")
	}
	if n := read("c2"); n != 1 {
		t.Error("the least recently used c2 was kept")
	}
	if err := cache.CheckInvariants(c); err != nil {
		t.Fatal(err)
	}
}

// TestBoundedUnderChurn mixes lookups, invalidations and evictions and
// checks the table after each step.
func TestBoundedUnderChurn(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	now := authz.StoreTime(clk.Now())
	ids := []string{"c1"}
	for i := range 20 {
		id := fmt.Sprint("churn_", i)
		if err := db.CreateApplication(ctx, authz.Application{ClientID: id, Name: id, CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, soleWriter := range []bool{false, true} {
		c := cache.New(db, cache.Options{SoleWriter: soleWriter, MaxEntries: 5, TTL: time.Second, MaxStale: time.Hour, Now: clk.Now})
		r := rand.New(rand.NewPCG(1, 2))
		for step := range 2000 {
			id := ids[r.IntN(len(ids))]
			switch n := r.IntN(100); {
			case n < 10:
				c.Invalidate(id)
			case n < 12:
				c.Invalidate("")
			case n < 14:
				clk.Add(2 * time.Second) // stale: reread in the background
				fallthrough
			default:
				got, err := c.Client(ctx, id)
				if err != nil || got.Application.ClientID != id {
					t.Fatalf("step %d: Client(%q) = %+v, %v", step, id, got, err)
				}
			}
			if err := cache.CheckInvariants(c); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if c.Len() > 5 {
				t.Fatalf("step %d: %d entries, max 5", step, c.Len())
			}
		}
	}
}

// TestCompactedEntriesEqualTheStore checks that what the cache keeps,
// sharing memory among applications, equals what the store returns.
func TestCompactedEntriesEqualTheStore(t *testing.T) {
	ctx := context.Background()
	db, c, clk := setupWith(t, cache.Options{SoleWriter: true})
	now := authz.StoreTime(clk.Now())
	sec := authz.Secret{ID: "0123456789abcdef0123", ClientID: "c2", Hash: []byte("h2"), Prefix: "m2ms_0123456789abcdef0123", CreatedAt: now, UpdatedAt: now}
	g := authz.Grant{ID: "g2", ClientID: "c2", APIID: "api_1", Scopes: []string{"a", "b"}, Claims: []byte(`{"tier":"gold"}`), CreatedAt: now, UpdatedAt: now}
	if err := db.CreateApplication(ctx, authz.Application{ClientID: "c2", Name: "two", CreatedAt: now, UpdatedAt: now}, []authz.Secret{sec}, []authz.Grant{g}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second round reads from memory
		for _, id := range []string{"c1", "c2"} {
			got, err := c.Client(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want, err := db.Client(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("cached %+v\nstored %+v", got, want)
			}
		}
	}
}
