package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// testReplay: UseJTI and PurgeJTIs, the replay store. Expiry is judged by
// the database's clock, so these tests use the wall clock, not base.
func testReplay(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("first use fresh, second refused", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		exp := time.Now().Add(time.Minute)
		fresh, err := s.UseJTI(ctx, "client-1:jti-1", exp)
		noErr(t, err)
		if !fresh {
			t.Fatal("first use not fresh")
		}
		fresh, err = s.UseJTI(ctx, "client-1:jti-1", exp.Add(time.Hour))
		noErr(t, err)
		if fresh {
			t.Fatal("second use fresh")
		}
	})

	t.Run("keys are independent", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		exp := time.Now().Add(time.Minute)
		for _, k := range []string{"client-1:jti", "client-2:jti", "client-1:jti-2"} {
			fresh, err := s.UseJTI(ctx, k, exp)
			noErr(t, err)
			if !fresh {
				t.Errorf("%s: not fresh", k)
			}
		}
	})

	t.Run("an expired use may be made again, once", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		fresh, err := s.UseJTI(ctx, "k", time.Now().Add(-time.Second))
		noErr(t, err)
		if !fresh {
			t.Fatal("first use not fresh")
		}
		exp := time.Now().Add(time.Minute)
		fresh, err = s.UseJTI(ctx, "k", exp)
		noErr(t, err)
		if !fresh {
			t.Fatal("use after expiry not fresh")
		}
		fresh, err = s.UseJTI(ctx, "k", exp)
		noErr(t, err)
		if fresh {
			t.Fatal("the renewed use was not kept")
		}
	})

	t.Run("purge removes only expired uses", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.UseJTI(ctx, "old-1", time.Now().Add(-time.Minute))
		noErr(t, err)
		_, err = s.UseJTI(ctx, "old-2", time.Now().Add(-time.Second))
		noErr(t, err)
		_, err = s.UseJTI(ctx, "live", time.Now().Add(time.Hour))
		noErr(t, err)
		n, err := s.PurgeJTIs(ctx)
		noErr(t, err)
		if n != 2 {
			t.Errorf("purged %d, want 2", n)
		}
		fresh, err := s.UseJTI(ctx, "live", time.Now().Add(time.Hour))
		noErr(t, err)
		if fresh {
			t.Error("purge removed a live use")
		}
		n, err = s.PurgeJTIs(ctx)
		noErr(t, err)
		if n != 0 {
			t.Errorf("second purge removed %d, want 0", n)
		}
	})

	t.Run("concurrent uses of one key: exactly one fresh", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		UseJTIOnce(t, []authz.Replay{s}, "client-1:race")
		// And again after the first use expired.
		_, err := s.UseJTI(ctx, "client-1:race-2", time.Now().Add(-time.Second))
		noErr(t, err)
		UseJTIOnce(t, []authz.Replay{s}, "client-1:race-2")
	})
}

// UseJTIOnce calls UseJTI with key from 32 goroutines spread over the
// stores (replicas of one database) at once, and fails t unless exactly one
// call reports it fresh.
func UseJTIOnce(t *testing.T, stores []authz.Replay, key string) {
	t.Helper()
	const n = 32
	var (
		wg    sync.WaitGroup
		fresh atomic.Int32
		start = make(chan struct{})
		errs  = make(chan error, n)
		exp   = time.Now().Add(time.Minute)
		ctx   = t.Context()
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := stores[i%len(stores)].UseJTI(ctx, key, exp)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				fresh.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("UseJTI: %v", err)
	}
	if got := fresh.Load(); got != 1 {
		t.Errorf("%d of %d concurrent uses of %q fresh, want exactly 1", got, n, key)
	}
}
