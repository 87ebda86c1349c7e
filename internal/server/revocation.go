package server

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
	// denyListRefresh is how often the deny-list reads the store for
	// revocations made by other replicas: 2 s, the longest a token revoked
	// elsewhere may still introspect active here.
	denyListRefresh = 2 * time.Second
	// denyListPurge is how often expired entries leave the store and
	// memory: 1 min. An expired token fails verification anyway, so a late
	// purge costs only memory.
	denyListPurge = time.Minute
)

// denyList is the set of revoked access tokens (RFC 7009) in memory: jti →
// the token's exp, after which the entry is useless. The store is the
// source of truth: a revocation is written there first, then here; the set
// is loaded from it at start and merged with it periodically, so
// revocations made through other replicas reach this one. It is safe for
// concurrent use.
type denyList struct {
	store authz.Revocations
	now   func() time.Time
	log   *slog.Logger

	// lead runs the store purge on one replica of a cluster (Server.lead);
	// nil runs it here.
	lead func(ctx context.Context, name string, fn func() error) error

	mu  sync.RWMutex
	jti map[string]time.Time
}

func newDenyList(store authz.Revocations, now func() time.Time, log *slog.Logger) *denyList {
	return &denyList{store: store, now: now, log: log, jti: map[string]time.Time{}}
}

// Revoked reports whether jti is deny-listed.
func (d *denyList) Revoked(jti string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.jti[jti]
	return ok
}

// Revoke deny-lists jti until expiresAt: in the store first, so that the
// revocation survives a restart and reaches other replicas, then in
// memory. Returns the store's error, and then nothing changed here.
func (d *denyList) Revoke(ctx context.Context, jti string, expiresAt time.Time) error {
	expiresAt = authz.StoreTime(expiresAt)
	if err := d.store.RevokeToken(ctx, jti, expiresAt); err != nil {
		return fmt.Errorf("deny-list: %w", err)
	}
	d.add(jti, expiresAt)
	return nil
}

// add keeps the later expiry of jti, as the store does.
func (d *denyList) add(jti string, expiresAt time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.jti[jti]; !ok || expiresAt.After(cur) {
		d.jti[jti] = expiresAt
	}
}

// refresh merges every entry of the store into memory and drops the
// expired ones. It merges rather than replaces: a revocation written to the
// store after the read must not vanish from memory until the next one.
func (d *denyList) refresh(ctx context.Context) error {
	stored, err := d.store.ListRevoked(ctx)
	if err != nil {
		return fmt.Errorf("deny-list: %w", err)
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for jti, exp := range stored {
		if cur, ok := d.jti[jti]; !ok || exp.After(cur) {
			d.jti[jti] = exp
		}
	}
	d.dropExpired(now)
	return nil
}

// purge removes the entries whose token has expired, from the store and
// from memory.
func (d *denyList) purge(ctx context.Context) error {
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
func (d *denyList) dropExpired(now time.Time) {
	for jti, exp := range d.jti {
		if !exp.After(now) {
			delete(d.jti, jti)
		}
	}
}

// refreshLoop refreshes the deny-list every denyListRefresh until ctx is
// done. A failed refresh is logged; the entries in memory stay in use.
func (d *denyList) refreshLoop(ctx context.Context) {
	d.every(ctx, denyListRefresh, func() {
		if err := d.refresh(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("deny-list refresh failed; revocations made by other replicas may be missed until the next one", "error", err)
		}
	})
}

// purgeLoop purges expired entries every denyListPurge until ctx is done.
func (d *denyList) purgeLoop(ctx context.Context) {
	d.every(ctx, denyListPurge, func() {
		purge := func() error { return d.purge(ctx) }
		var err error
		if d.lead != nil {
			err = d.lead(ctx, "deny-list-purge", purge)
		} else {
			err = purge()
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("deny-list purge failed", "error", err)
		}
	})
}

// every runs fn every interval until ctx is done.
func (d *denyList) every(ctx context.Context, interval time.Duration, fn func()) {
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

// initRevocation loads the deny-list and gives it to the introspection and
// revocation endpoints (RFC 7662, RFC 7009), which discovery then
// advertises, and to the management API's bearer check; its refresh and
// purge loops run with the server.
func (s *Server) initRevocation(ctx context.Context) error {
	s.denyList = newDenyList(s.store, s.now, s.log)
	s.denyList.lead = s.lead
	if err := s.denyList.refresh(ctx); err != nil {
		return err
	}
	s.background = append(s.background, s.denyList.refreshLoop, s.denyList.purgeLoop)
	s.oauth.DenyList = s.denyList
	s.admin.DenyList = s.denyList
	s.discovery.Introspection = true
	s.discovery.Revocation = true
	return nil
}
