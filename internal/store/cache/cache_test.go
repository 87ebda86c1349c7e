package cache_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/store/cache"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T) (*sqlite.Store, *cache.Store, *clock) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m2mauth.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	now := authz.StoreTime(clk.t)
	api := authz.API{ID: "api_1", Identifier: "https://api/", Name: "api", Scopes: []authz.Scope{{Value: "a"}, {Value: "b"}}, TokenLifetime: time.Hour, SigningAlg: "ES256", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	app := authz.Application{ClientID: "c1", Name: "one", CreatedAt: now, UpdatedAt: now}
	sec := authz.Secret{ID: "s1", ClientID: "c1", Hash: []byte("h"), Prefix: "m2ms_s1", CreatedAt: now, UpdatedAt: now}
	g := authz.Grant{ID: "g1", ClientID: "c1", APIID: "api_1", Scopes: []string{"a"}, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateApplication(ctx, app, []authz.Secret{sec}, []authz.Grant{g}); err != nil {
		t.Fatal(err)
	}
	return db, cache.New(db, cache.Options{TTL: 2 * time.Second, MaxStale: time.Minute, Now: clk.now}), clk
}

func TestWritesThroughTheCacheShowAtOnce(t *testing.T) {
	ctx := context.Background()
	_, c, _ := setup(t)
	cl, err := c.Client(ctx, "c1")
	if err != nil || cl.Application.Disabled {
		t.Fatalf("%+v %v", cl, err)
	}
	tests := []struct {
		name  string
		write func() error
		check func(*authz.Client) bool
	}{
		{"disable", func() error {
			a := cl.Application
			a.Disabled = true
			return c.UpdateApplication(ctx, a)
		}, func(c *authz.Client) bool { return c.Application.Disabled }},
		{"add a secret", func() error {
			return c.CreateSecret(ctx, authz.Secret{ID: "s2", ClientID: "c1", Hash: []byte("h2"), Prefix: "m2ms_s2", CreatedAt: authz.StoreTime(time.Unix(1, 0)), UpdatedAt: authz.StoreTime(time.Unix(1, 0))})
		}, func(c *authz.Client) bool { return c.Secret("s2") != nil }},
		{"expire other secrets", func() error {
			return c.ExpireSecrets(ctx, "c1", "s2", authz.StoreTime(time.Unix(5, 0)), authz.StoreTime(time.Unix(2, 0)))
		}, func(c *authz.Client) bool { return !c.Secret("s1").ExpiresAt.IsZero() }},
		{"delete a secret", func() error { return c.DeleteSecret(ctx, "c1", "s1") }, func(c *authz.Client) bool { return c.Secret("s1") == nil }},
		{"change a grant", func() error {
			g := cl.Grants[0].Grant
			g.Scopes = []string{"a", "b"}
			return c.UpdateGrant(ctx, g)
		}, func(c *authz.Client) bool { return len(c.Grants) == 1 && len(c.Grants[0].Grant.Scopes) == 2 }},
		{"change the API", func() error {
			a := cl.Grants[0].API
			a.TokenLifetime = time.Minute
			return c.UpdateAPI(ctx, a)
		}, func(c *authz.Client) bool { return c.Grants[0].API.TokenLifetime == time.Minute }},
		{"delete the grant", func() error { return c.DeleteGrant(ctx, "c1", "g1") }, func(c *authz.Client) bool { return len(c.Grants) == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Client(ctx, "c1"); err != nil { // warm
				t.Fatal(err)
			}
			if err := tc.write(); err != nil {
				t.Fatal(err)
			}
			got, err := c.Client(ctx, "c1")
			if err != nil || !tc.check(got) {
				t.Fatalf("the cache did not see the write: %+v %v", got, err)
			}
		})
	}
	t.Run("delete the application", func(t *testing.T) {
		if err := c.DeleteApplication(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client(ctx, "c1"); !errors.Is(err, authz.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestWritesElsewhereShowAfterTTL(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	reread := make(chan struct{}, 10)
	c := cache.New(db, cache.WithAfterRevalidate(cache.Options{TTL: 2 * time.Second, MaxStale: time.Minute, Now: clk.now}, func() { reread <- struct{}{} }))
	cl, _ := c.Client(ctx, "c1")
	a := cl.Application
	a.Disabled = true
	if err := db.UpdateApplication(ctx, a); err != nil { // behind the cache's back
		t.Fatal(err)
	}
	if got, _ := c.Client(ctx, "c1"); got.Application.Disabled {
		t.Fatal("a write elsewhere showed before the TTL: the cache is not caching")
	}
	clk.add(2 * time.Second)
	// Past the TTL the old entry answers at once while it is reread.
	if got, _ := c.Client(ctx, "c1"); got.Application.Disabled {
		t.Fatal("the request after the TTL waited for the reread")
	}
	select {
	case <-reread:
	case <-time.After(5 * time.Second):
		t.Fatal("no background reread")
	}
	if got, _ := c.Client(ctx, "c1"); !got.Application.Disabled {
		t.Fatal("a write elsewhere did not show after the reread")
	}
	a.Disabled = false
	db.UpdateApplication(ctx, a)
	c.Invalidate("c1")
	if got, _ := c.Client(ctx, "c1"); got.Application.Disabled {
		t.Fatal("Invalidate did not drop the entry")
	}
}

func TestServesStaleWhileTheStoreFails(t *testing.T) {
	ctx := context.Background()
	db, c, clk := setup(t)
	if _, err := c.Client(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	db.Close() // every read fails from now on
	clk.add(30 * time.Second)
	if got, err := c.Client(ctx, "c1"); err != nil || got.Application.ClientID != "c1" {
		t.Fatalf("within MaxStale: %v", err)
	}
	clk.add(time.Minute)
	if _, err := c.Client(ctx, "c1"); err == nil {
		t.Fatal("served an entry older than MaxStale")
	}
	if _, err := c.Client(ctx, "unknown"); err == nil || errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("an uncached client during an outage: %v", err)
	}
}

func TestBoundedSize(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	c := cache.New(db, cache.Options{MaxEntries: 1, Now: clk.now})
	now := authz.StoreTime(clk.t)
	db.CreateApplication(ctx, authz.Application{ClientID: "c2", Name: "two", CreatedAt: now, UpdatedAt: now}, nil, nil)
	c.Client(ctx, "c1")
	c.Client(ctx, "c2")
	if c.Len() != 1 {
		t.Fatalf("%d entries, max 1", c.Len())
	}
}

func BenchmarkClientHit(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "m2mauth.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := authz.StoreTime(time.Now())
	db.CreateApplication(ctx, authz.Application{ClientID: "c1", Name: "one", CreatedAt: now, UpdatedAt: now}, nil, nil)
	c := cache.New(db, cache.Options{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Client(ctx, "c1"); err != nil {
			b.Fatal(err)
		}
	}
}
