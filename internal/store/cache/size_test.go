package cache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/store/cache"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
)

// TestMemoryPerApplication measures the live heap each cached application
// costs (runtime.MemStats.HeapAlloc after a GC, before and after caching
// 100 000 of them), with 1 and with 5 secrets and one grant each. It takes
// a minute, so it runs only with M2MAUTH_CACHE_MEMORY=1:
//
//	M2MAUTH_CACHE_MEMORY=1 go test -run MemoryPerApplication -v ./internal/store/cache
func TestMemoryPerApplication(t *testing.T) {
	if os.Getenv("M2MAUTH_CACHE_MEMORY") == "" {
		t.Skip("set M2MAUTH_CACHE_MEMORY=1 to measure")
	}
	const n = 100_000
	for _, secrets := range []int{1, 5} {
		t.Run(fmt.Sprint(secrets, " secrets"), func(t *testing.T) {
			ctx := context.Background()
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m2mauth.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			now := authz.StoreTime(time.Now())
			api := authz.API{ID: "api_0123456789abcdef", Identifier: "https://api.example.com/orders", Name: "orders",
				Scopes:        []authz.Scope{{Value: "orders:read", Description: "read orders"}, {Value: "orders:write", Description: "write orders"}},
				TokenLifetime: time.Hour, SigningAlg: "ES256", CreatedAt: now, UpdatedAt: now}
			if err := db.CreateAPI(ctx, api); err != nil {
				t.Fatal(err)
			}
			ids := make([]string, n)
			rnd := rand.NewChaCha8([32]byte{})
			err = db.Manage(ctx, func(tx authz.Tx) error {
				for i := range n {
					// Identifiers as manage makes them.
					id, err := authz.NewClientID(rnd)
					if err != nil {
						return err
					}
					ids[i] = id
					var secs []authz.Secret
					for range secrets {
						sid, _, err := clientsecret.Generate(rnd)
						if err != nil {
							return err
						}
						secs = append(secs, authz.Secret{ID: sid, ClientID: id, Hash: make([]byte, 32), Prefix: clientsecret.DisplayPrefix(sid), CreatedAt: now, UpdatedAt: now})
					}
					gid, err := authz.NewID(rnd, "grt_")
					if err != nil {
						return err
					}
					g := authz.Grant{ID: gid, ClientID: id, APIID: api.ID, Scopes: []string{"orders:read"}, CreatedAt: now, UpdatedAt: now}
					if err := tx.CreateApplication(ctx, authz.Application{ClientID: id, Name: fmt.Sprint("billing-", i), CreatedAt: now, UpdatedAt: now}, secs, []authz.Grant{g}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			c := cache.New(db, cache.Options{SoleWriter: true, MaxEntries: n})
			for _, id := range ids[:100] { // warm the store's own caches
				c.Client(ctx, id)
			}
			c.Invalidate("")
			before := heap()
			for _, id := range ids {
				if _, err := c.Client(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			after := heap()
			if c.Len() != n {
				t.Fatalf("%d cached, want %d", c.Len(), n)
			}
			t.Logf("%d secrets: %.0f bytes of live heap per cached application", secrets, float64(after-before)/n)
			runtime.KeepAlive(ids)
		})
	}
}

func heap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// generated is a store whose every client_id names an application with
// one secret and one grant, made on each read.
type generated struct {
	authz.Store
	reads atomic.Int64
}

func (g *generated) Client(_ context.Context, id string) (*authz.Client, error) {
	g.reads.Add(1)
	now := time.Unix(1_900_000_000, 0).UTC()
	api := authz.API{ID: "api_1", Identifier: "https://api/", Name: "api", Scopes: []authz.Scope{{Value: "a"}}, TokenLifetime: time.Hour, SigningAlg: "ES256", CreatedAt: now, UpdatedAt: now}
	return &authz.Client{
		Application: authz.Application{ClientID: strings.Clone(id), Name: "app", CreatedAt: now, UpdatedAt: now},
		Secrets:     []authz.Secret{{ID: "s_" + id, ClientID: id, Hash: make([]byte, 32), Prefix: "m2ms_s_" + id, CreatedAt: now, UpdatedAt: now}},
		Grants:      []authz.ClientGrant{{Grant: authz.Grant{ID: "g_" + id, ClientID: id, APIID: "api_1", Audience: "https://api/", Scopes: []string{"a"}, CreatedAt: now, UpdatedAt: now}, API: &api}},
	}, nil
}

// BenchmarkClientSpread looks up 1 or 100 000 applications taking turns,
// all cached, on a store with no other writer (SQLite) and on a shared one
// whose change feed reports every version check that found nothing lost
// (Synced, PostgreSQL): the cost per lookup, and no store read after each
// application's first however long it runs (the clock moves an hour per
// round, past TTL and MaxStale).
func BenchmarkClientSpread(b *testing.B) {
	for _, shared := range []bool{false, true} {
		for _, n := range []int{1, 100_000} {
			name := fmt.Sprint("sole writer/", n, " clients")
			if shared {
				name = fmt.Sprint("shared synced/", n, " clients")
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				st := &generated{}
				var clk atomic.Int64
				clk.Store(time.Unix(1_900_000_000, 0).UnixNano())
				now := func() time.Time { return time.Unix(0, clk.Load()) }
				c := cache.New(st, cache.Options{SoleWriter: !shared, MaxEntries: n, Now: now})
				ids := make([]string, n)
				for i := range ids {
					ids[i] = fmt.Sprintf("%026d", i)
					c.Client(ctx, ids[i])
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := c.Client(ctx, ids[i]); err != nil {
						b.Fatal(err)
					}
					if i++; i == n {
						i = 0
						clk.Add(int64(time.Hour))
						if shared {
							c.Synced() // the feed's check, which runs twice a second
						}
					}
				}
				if r := st.reads.Load(); r != int64(n) {
					b.Fatalf("%d store reads for %d applications", r, n)
				}
			})
		}
	}
}
