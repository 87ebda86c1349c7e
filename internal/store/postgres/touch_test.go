package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// TestConcurrentTouchesFromReplicas: replicas flushing overlapping batches
// of last uses at once (each its own Store on one database, 8 flushes of
// 300 secrets each, half of them shared) all succeed (within write's
// retries of a deadlock), and each secret ends at the latest time any
// flush gave it: a later flush never lowers an earlier one's time.
func TestConcurrentTouchesFromReplicas(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	replicas := []*Store{open(t, dsn), open(t, dsn)}
	ctx := t.Context()
	at := authz.StoreTime(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	app := authz.Application{ClientID: "app_1", Name: "A", CreatedAt: at, UpdatedAt: at}
	var secrets []authz.Secret
	for i := range 450 {
		id := fmt.Sprintf("sec_%03d", i)
		secrets = append(secrets, authz.Secret{ID: id, ClientID: app.ClientID, Hash: []byte("h" + id), Prefix: "m2ms_" + id, CreatedAt: at, UpdatedAt: at})
	}
	if err := replicas[0].CreateApplication(ctx, app, secrets, nil); err != nil {
		t.Fatal(err)
	}
	// Flush f touches secrets [150·(f%2), 150·(f%2)+300) at minute f+1.
	const flushes = 8
	var wg sync.WaitGroup
	errs := make(chan error, flushes)
	for f := range flushes {
		wg.Go(func() {
			used := map[string]time.Time{}
			start := 150 * (f % 2)
			for _, sec := range secrets[start : start+300] {
				used[sec.ID] = at.Add(time.Duration(f+1) * time.Minute)
			}
			errs <- replicas[f%2].TouchSecrets(ctx, used)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a flush failed: %v", err)
		}
	}
	got, err := replicas[1].ListSecrets(ctx, app.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range got {
		var i int
		fmt.Sscanf(sec.ID, "sec_%d", &i)
		// The last flush covering i: odd flushes cover 150…449, even 0…299.
		last := 0
		for f := range flushes {
			if start := 150 * (f % 2); i >= start && i < start+300 {
				last = f + 1
			}
		}
		if want := at.Add(time.Duration(last) * time.Minute); !sec.LastUsedAt.Equal(want) {
			t.Errorf("%s last used %v, want %v", sec.ID, sec.LastUsedAt, want)
		}
	}
}
