package cache_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
	"github.com/m2mauth/m2mauth/internal/store/cache"
	"github.com/m2mauth/m2mauth/internal/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestOnPostgreSQL checks, on the store several replicas share, that
// nothing cached refers to request memory, that what is cached equals
// what the store returns, and that an entry is reread after TTL while the
// old one answers (stale-while-revalidate).
func TestOnPostgreSQL(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.Shared(t).NewDatabase(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := fixture(t, db)
	st := &countingStore{Store: db}
	reread := make(chan struct{}, 10)
	c := cache.New(st, cache.WithAfterRevalidate(cache.Options{TTL: 2 * time.Second, MaxStale: time.Minute, Now: clk.Now}, func() { reread <- struct{}{} }))

	id, buf := requestString("c1", ":m2ms_the_plaintext_secret")
	got, err := c.Client(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	overwrite(buf)
	if got.Secrets[0].ClientID != "c1" || got.Grants[0].Grant.ClientID != "c1" {
		t.Errorf("the cached application refers to the request's memory")
	}
	if _, err := c.Client(ctx, "c1"); err != nil || st.reads.Load() != 1 {
		t.Errorf("%d reads (%v), want 1: the key was request memory", st.reads.Load(), err)
	}
	want, err := db.Client(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cached %+v\nstored %+v", got, want)
	}

	yes := true
	if _, err := db.UpdateApplication(ctx, "c1", authz.ApplicationPatch{Disabled: &yes, UpdatedAt: authz.StoreTime(clk.Now())}); err != nil { // another replica
		t.Fatal(err)
	}
	clk.Add(2 * time.Second)
	if got, _ := c.Client(ctx, "c1"); got.Application.Disabled {
		t.Fatal("the request after the TTL waited for the reread")
	}
	select {
	case <-reread:
	case <-time.After(5 * time.Second):
		t.Fatal("no background reread")
	}
	if got, _ := c.Client(ctx, "c1"); !got.Application.Disabled {
		t.Fatal("the write elsewhere did not show after the reread")
	}
	if _, err := c.Client(ctx, "nosuch"); !errors.Is(err, authz.ErrNotFound) {
		t.Fatal(err)
	}
}
