package server

import (
	"testing"
	"time"
)

// TestPurgeJTIs: the purge step of the replay store removes expired uses
// and keeps live ones.
func TestPurgeJTIs(t *testing.T) {
	e := newTestEnv(t)
	ctx := t.Context()
	for key, exp := range map[string]time.Time{"c:old": time.Now().Add(-time.Minute), "c:live": time.Now().Add(time.Hour)} {
		if fresh, err := e.srv.db.UseJTI(ctx, key, exp); err != nil || !fresh {
			t.Fatalf("UseJTI(%s) = %v, %v", key, fresh, err)
		}
	}
	if err := e.srv.purgeJTIs(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := e.srv.db.PurgeJTIs(ctx); err != nil || n != 0 {
		t.Errorf("after the purge step another purge removed %d (%v), want 0", n, err)
	}
	if fresh, err := e.srv.db.UseJTI(ctx, "c:live", time.Now().Add(time.Hour)); err != nil || fresh {
		t.Errorf("live use after the purge = %v, %v; want refused", fresh, err)
	}
}
