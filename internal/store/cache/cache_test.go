package cache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/store/cache"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
)

func setup(t *testing.T) (*sqlite.Store, *cache.Store, *fake.Clock) {
	t.Helper()
	return setupWith(t, cache.Options{TTL: 2 * time.Second, MaxStale: time.Minute})
}

// setupWith is setup with the cache's options opt (and the fake clock).
func setupWith(t *testing.T, opt cache.Options) (*sqlite.Store, *cache.Store, *fake.Clock) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m2mauth.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := fixture(t, db)
	opt.Now = clk.Now
	return db, cache.New(db, opt), clk
}

// fixture creates API api_1 (scopes a and b) and application c1 with
// secret s1 and a grant g1 of scope a in db, and returns the clock.
func fixture(t *testing.T, db authz.Store) *fake.Clock {
	t.Helper()
	ctx := context.Background()
	clk := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	now := authz.StoreTime(clk.Now())
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
	return clk
}

func TestWritesThroughTheCacheShowAtOnce(t *testing.T) {
	for _, soleWriter := range []bool{false, true} {
		t.Run(fmt.Sprint("sole writer ", soleWriter), func(t *testing.T) {
			testWritesShowAtOnce(t, cache.Options{SoleWriter: soleWriter, TTL: 2 * time.Second, MaxStale: time.Minute})
		})
	}
}

func testWritesShowAtOnce(t *testing.T, opt cache.Options) {
	ctx := context.Background()
	_, c, _ := setupWith(t, opt)
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
			yes := true
			_, err := c.UpdateApplication(ctx, "c1", authz.ApplicationPatch{Disabled: &yes, UpdatedAt: authz.StoreTime(time.Unix(1, 0))})
			return err
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
			lifetime := time.Minute
			_, err := c.UpdateAPI(ctx, cl.Grants[0].API.ID, authz.APIPatch{TokenLifetime: &lifetime, UpdatedAt: authz.StoreTime(time.Unix(1, 0))})
			return err
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

func TestManageInvalidatesWhatItTouched(t *testing.T) {
	ctx := context.Background()
	db, c, clk := setup(t)
	now := authz.StoreTime(clk.Now())
	if err := db.CreateApplication(ctx, authz.Application{ClientID: "c2", Name: "two", CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
		t.Fatal(err)
	}
	warm := func() {
		t.Helper()
		for _, id := range []string{"c1", "c2"} {
			if _, err := c.Client(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	yes := true
	disable := func(tx authz.Tx, clientID string) error {
		_, err := tx.UpdateApplication(ctx, clientID, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: now})
		return err
	}

	t.Run("an application's write drops its entry only", func(t *testing.T) {
		warm()
		if err := c.Manage(ctx, func(tx authz.Tx) error { return disable(tx, "c1") }); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Client(ctx, "c1"); !got.Application.Disabled {
			t.Error("the cache did not see the transaction's write")
		}
		if c.Len() != 2 {
			t.Errorf("%d entries, want 2: c1 reread and c2 kept", c.Len())
		}
	})

	t.Run("an API's write drops every entry", func(t *testing.T) {
		warm()
		lifetime := time.Minute
		err := c.Manage(ctx, func(tx authz.Tx) error {
			_, err := tx.UpdateAPI(ctx, "api_1", authz.APIPatch{TokenLifetime: &lifetime, UpdatedAt: now})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() != 0 {
			t.Errorf("%d entries after an API's change, want 0", c.Len())
		}
		if got, _ := c.Client(ctx, "c1"); got.Grants[0].API.TokenLifetime != time.Minute {
			t.Error("the cache did not see the API's change")
		}
	})

	t.Run("a load racing the transaction is not kept", func(t *testing.T) {
		c.Invalidate("")
		err := c.Manage(ctx, func(tx authz.Tx) error {
			if err := tx.DeleteSecret(ctx, "c1", "s1"); err != nil {
				return err
			}
			// Read outside the transaction: the old secret, cached.
			if got, err := c.Client(ctx, "c1"); err != nil || got.Secret("s1") == nil {
				t.Errorf("Client during the transaction: %+v, %v; want the committed state", got, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Client(ctx, "c1"); got.Secret("s1") != nil {
			t.Error("the entry loaded during the transaction outlived its commit")
		}
	})

	t.Run("fn's error comes back as it is", func(t *testing.T) {
		warm()
		stop := errors.New("stop")
		if err := c.Manage(ctx, func(tx authz.Tx) error {
			if err := disable(tx, "c2"); err != nil {
				return err
			}
			return stop
		}); err != stop {
			t.Fatalf("Manage = %v, want fn's error", err)
		}
		if got, _ := c.Client(ctx, "c2"); got.Application.Disabled {
			t.Error("a rolled-back write shows")
		}
	})
}

func TestWritesElsewhereShowAfterTTL(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	reread := make(chan struct{}, 10)
	c := cache.New(db, cache.WithAfterRevalidate(cache.Options{TTL: 2 * time.Second, MaxStale: time.Minute, Now: clk.Now}, func() { reread <- struct{}{} }))
	c.Client(ctx, "c1")
	yes, no := true, false
	if _, err := db.UpdateApplication(ctx, "c1", authz.ApplicationPatch{Disabled: &yes, UpdatedAt: clk.Now()}); err != nil { // behind the cache's back
		t.Fatal(err)
	}
	if got, _ := c.Client(ctx, "c1"); got.Application.Disabled {
		t.Fatal("a write elsewhere showed before the TTL: the cache is not caching")
	}
	clk.Add(2 * time.Second)
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
	db.UpdateApplication(ctx, "c1", authz.ApplicationPatch{Disabled: &no, UpdatedAt: clk.Now()})
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
	clk.Add(30 * time.Second)
	if got, err := c.Client(ctx, "c1"); err != nil || got.Application.ClientID != "c1" {
		t.Fatalf("within MaxStale: %v", err)
	}
	clk.Add(time.Minute)
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
	c := cache.New(db, cache.Options{MaxEntries: 1, Now: clk.Now})
	now := authz.StoreTime(clk.Now())
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
