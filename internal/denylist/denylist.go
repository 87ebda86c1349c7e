// Package denylist keeps the set of revoked access tokens (RFC 7009) in
// memory, backed by the store (DenyList).
package denylist

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Intervals of the deny-list's background loops.
const (
	// RefreshInterval is how often the deny-list reads the store for
	// revocations made by other replicas: 2 s, the longest a token revoked
	// elsewhere may still introspect active here.
	RefreshInterval = 2 * time.Second
	// PurgeInterval is how often expired entries leave the store and
	// memory: 1 min. An expired token fails verification anyway, so a late
	// purge costs only memory.
	PurgeInterval = time.Minute
	// RefreshOverlap is how far before the previous read's watermark an
	// incremental refresh reads again: 1 min. An entry is stamped by the
	// database's clock when it is written but seen only once its
	// transaction commits; the overlap catches entries whose commit came up
	// to a minute after their stamp. Entries read twice are merged, so the
	// overlap costs only the rereading of the last minute's revocations.
	RefreshOverlap = time.Minute
)

// DenyList is the set of revoked access tokens (RFC 7009) in memory: jti →
// the token's exp, after which the entry is useless. The store is the
// source of truth: a revocation is written there first, then here; the set
// is loaded from it at start and merged with it periodically, so
// revocations made through other replicas reach this one. It is safe for
// concurrent use.
type DenyList struct {
	store authz.Revocations
	now   func() time.Time
	log   *slog.Logger

	// Overlap is how far before the previous read's watermark an
	// incremental refresh reads again; New sets RefreshOverlap. Set it
	// before the first Refresh.
	Overlap time.Duration

	// Lead, if set, runs the store purge on one replica of a cluster (the
	// server's cluster lease); nil runs it here. Set it before PurgeLoop
	// runs.
	Lead func(ctx context.Context, name string, fn func() error) error

	mu  sync.RWMutex
	jti map[string]time.Time

	// refreshMu serialises refreshes, which move mark.
	refreshMu sync.Mutex
	// mark is the database's time at the last refresh's read; zero until
	// the first (full) one and after RefreshAll is asked for.
	mark time.Time
}

// Len returns the number of revoked tokens held in memory.
func (d *DenyList) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.jti)
}

// New returns an empty DenyList over store; Refresh loads it.
func New(store authz.Revocations, now func() time.Time, log *slog.Logger) *DenyList {
	return &DenyList{store: store, now: now, log: log, jti: map[string]time.Time{}, Overlap: RefreshOverlap}
}

// Revoked reports whether jti is deny-listed.
func (d *DenyList) Revoked(jti string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.jti[jti]
	return ok
}

// Revoke deny-lists jti until expiresAt: in the store first, so that the
// revocation survives a restart and reaches other replicas, then in
// memory. Returns the store's error, and then nothing changed here.
func (d *DenyList) Revoke(ctx context.Context, jti string, expiresAt time.Time) error {
	expiresAt = authz.StoreTime(expiresAt)
	if err := d.store.RevokeToken(ctx, jti, expiresAt); err != nil {
		return fmt.Errorf("deny-list: %w", err)
	}
	d.add(jti, expiresAt)
	return nil
}

// Add deny-lists jti until expiresAt in memory only: for a revocation a
// management transaction has already stored (manage.DenyList).
func (d *DenyList) Add(jti string, expiresAt time.Time) { d.add(jti, authz.StoreTime(expiresAt)) }

// add keeps the later expiry of jti, as the store does.
func (d *DenyList) add(jti string, expiresAt time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.jti[jti]; !ok || expiresAt.After(cur) {
		d.jti[jti] = expiresAt
	}
}

// Refresh merges into memory the entries of the store written since the
// previous refresh (ListRevokedSince from its watermark less
// Overlap); the first refresh reads every entry, as RefreshAll does.
// It merges rather than replaces: a revocation written to the store after
// the read must not vanish from memory until the next one. Expired entries
// leave memory at the next Purge. On error nothing changes, and the next
// refresh reads from the same watermark.
func (d *DenyList) Refresh(ctx context.Context) error { return d.refresh(ctx, false) }

// RefreshAll rereads every entry of the store and merges it into memory,
// dropping what expired: at start, and when the change feed lost
// notifications (authz.ChangeAll), so that nothing an incremental read
// could have missed stays missed.
func (d *DenyList) RefreshAll(ctx context.Context) error { return d.refresh(ctx, true) }

func (d *DenyList) refresh(ctx context.Context, full bool) error {
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	var since time.Time
	if !full && !d.mark.IsZero() {
		since = d.mark.Add(-d.Overlap)
	}
	stored, mark, err := d.store.ListRevokedSince(ctx, since)
	if err != nil {
		return fmt.Errorf("deny-list: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for jti, exp := range stored {
		if cur, ok := d.jti[jti]; !ok || exp.After(cur) {
			d.jti[jti] = exp
		}
	}
	if since.IsZero() {
		d.dropExpired(d.now())
	}
	if mark.After(d.mark) {
		d.mark = mark
	}
	return nil
}

// Purge removes the entries whose token has expired, from the store and
// from memory.
func (d *DenyList) Purge(ctx context.Context) error {
	now := d.now()
	n, err := d.store.PurgeRevoked(ctx, now)
	if err != nil {
		return fmt.Errorf("deny-list: %w", err)
	}
	if n > 0 {
		d.log.Debug("deny-list purged", "removed", n)
	}
	d.mu.Lock()
	d.dropExpired(now)
	d.mu.Unlock()
	return nil
}

// dropExpired removes entries whose expiry is at or before now; d.mu must
// be held.
func (d *DenyList) dropExpired(now time.Time) {
	for jti, exp := range d.jti {
		if !exp.After(now) {
			delete(d.jti, jti)
		}
	}
}

// RefreshLoop refreshes the deny-list every RefreshInterval until ctx is
// done. A failed refresh is logged; the entries in memory stay in use.
func (d *DenyList) RefreshLoop(ctx context.Context) {
	d.every(ctx, RefreshInterval, func() {
		if err := d.Refresh(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("deny-list refresh failed; revocations made by other replicas may be missed until the next one", "error", err)
		}
	})
}

// PurgeLoop purges expired entries every PurgeInterval until ctx is done.
func (d *DenyList) PurgeLoop(ctx context.Context) {
	d.every(ctx, PurgeInterval, func() {
		purge := func() error { return d.Purge(ctx) }
		var err error
		if d.Lead != nil {
			err = d.Lead(ctx, "deny-list-purge", purge)
		} else {
			err = purge()
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("deny-list purge failed", "error", err)
		}
	})
}

// every runs fn every interval until ctx is done.
func (d *DenyList) every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
