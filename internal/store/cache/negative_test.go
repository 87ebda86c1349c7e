package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/store/cache"
)

// countingStore counts the Client reads that reach the store.
type countingStore struct {
	authz.Store
	reads atomic.Int64
}

func (s *countingStore) Client(ctx context.Context, clientID string) (*authz.Client, error) {
	s.reads.Add(1)
	return s.Store.Client(ctx, clientID)
}

func TestUnknownClientIDsAreRememberedBriefly(t *testing.T) {
	ctx := context.Background()
	db, _, clk := setup(t)
	st := &countingStore{Store: db}
	c := cache.New(st, cache.Options{TTL: 2 * time.Second, MaxStale: time.Minute, NegativeTTL: 5 * time.Second, MaxNegative: 100, Now: clk.Now})
	for range 10 {
		if _, err := c.Client(ctx, "nosuch"); !errors.Is(err, authz.ErrNotFound) {
			t.Fatalf("err %v, want not found", err)
		}
	}
	if n := st.reads.Load(); n != 1 {
		t.Errorf("%d store reads for 10 lookups of one unknown client_id, want 1", n)
	}
	clk.Add(5 * time.Second)
	c.Client(ctx, "nosuch")
	if n := st.reads.Load(); n != 2 {
		t.Errorf("%d store reads after the negative TTL, want 2", n)
	}

	t.Run("an application created through the cache is known at once", func(t *testing.T) {
		c.Client(ctx, "c2")
		now := authz.StoreTime(clk.Now())
		if err := c.CreateApplication(ctx, authz.Application{ClientID: "c2", Name: "two", CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client(ctx, "c2"); err != nil {
			t.Fatalf("created application: %v", err)
		}
	})
	t.Run("an application created in a management transaction is known at once", func(t *testing.T) {
		c.Client(ctx, "c3")
		now := authz.StoreTime(clk.Now())
		if err := c.Manage(ctx, func(tx authz.Tx) error {
			return tx.CreateApplication(ctx, authz.Application{ClientID: "c3", Name: "three", CreatedAt: now, UpdatedAt: now}, nil, nil)
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client(ctx, "c3"); err != nil {
			t.Fatalf("created application: %v", err)
		}
	})
	t.Run("an application another replica created is known on its notification", func(t *testing.T) {
		c.Client(ctx, "c4")
		now := authz.StoreTime(clk.Now())
		if err := db.CreateApplication(ctx, authz.Application{ClientID: "c4", Name: "four", CreatedAt: now, UpdatedAt: now}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client(ctx, "c4"); !errors.Is(err, authz.ErrNotFound) {
			t.Fatalf("before the notification: %v, want still unknown", err)
		}
		c.Invalidate("c4")
		if _, err := c.Client(ctx, "c4"); err != nil {
			t.Fatalf("after the notification: %v", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		before := st.reads.Load()
		for i := range 1000 {
			c.Client(ctx, fmt.Sprint("random_", i))
		}
		c.Client(ctx, "random_999")
		if n := st.reads.Load() - before; n != 1000 {
			t.Errorf("%d reads, want 1000 (the last one remembered)", n)
		}
		if n := c.NegativeLen(); n > 100 {
			t.Errorf("%d unknown client_ids remembered, want at most 100", n)
		}
	})
}
