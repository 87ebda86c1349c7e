// Package cache keeps the token endpoint's reads in memory: it wraps an
// authz.Store so that Client (an application with its secrets and grants)
// is answered from a map, and every write made through it drops what it
// changed. Writes made elsewhere (another replica) reach it through
// Invalidate or, at the latest, after the entry's time to live.
package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Defaults of Options.
const (
	DefaultTTL        = 30 * time.Second
	DefaultMaxStale   = 5 * time.Minute
	DefaultMaxEntries = 200_000
)

// Options tune a Store. Zero fields take the defaults.
type Options struct {
	// TTL is how long an entry is used before it is reread: the bound on
	// staleness for writes this process was not told about (plus the
	// reread's own time, as the first request after TTL still gets the old
	// entry while it is reread).
	TTL time.Duration
	// MaxStale is how old an entry may be and still answer: while the
	// database cannot be read, known applications keep getting tokens for
	// this long.
	MaxStale time.Duration
	// MaxEntries bounds memory; past it an arbitrary entry is evicted.
	MaxEntries int
	Now        func() time.Time

	afterRevalidate func() // tests: called when a background reread ends
}

// Store is an authz.Store whose Client reads come from memory. Every other
// method passes through; writes invalidate what they touch. It is safe for
// concurrent use.
type Store struct {
	authz.Store
	opt Options

	mu         sync.RWMutex
	entries    map[string]entry
	refreshing map[string]bool // clients being reread in the background
	gen        uint64          // bumped by every invalidation, so a load racing one is not kept
}

type entry struct {
	client   *authz.Client
	loadedAt time.Time
}

// New wraps s.
func New(s authz.Store, opt Options) *Store {
	if opt.TTL <= 0 {
		opt.TTL = DefaultTTL
	}
	if opt.MaxStale <= 0 {
		opt.MaxStale = DefaultMaxStale
	}
	if opt.MaxEntries <= 0 {
		opt.MaxEntries = DefaultMaxEntries
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Store{Store: s, opt: opt, entries: map[string]entry{}, refreshing: map[string]bool{}}
}

// Client returns the application clientID with its secrets and grants from
// memory. A missing entry is read from the store (the caller waits). An
// entry older than TTL is still returned, and reread in the background
// (stale-while-revalidate), so a token request never waits on the database
// for an application it already knows; an entry older than MaxStale is not
// returned unless the store cannot be read. The returned value is shared:
// callers must not modify it. Returns authz.ErrNotFound if there is no
// such application (not cached).
func (s *Store) Client(ctx context.Context, clientID string) (*authz.Client, error) {
	now := s.opt.Now()
	s.mu.RLock()
	e, ok := s.entries[clientID]
	gen := s.gen
	s.mu.RUnlock()
	if ok {
		age := now.Sub(e.loadedAt)
		if age < s.opt.TTL {
			return e.client, nil
		}
		if age < s.opt.MaxStale {
			s.revalidate(clientID)
			return e.client, nil
		}
	}
	c, err := s.load(ctx, clientID, gen, now)
	if err != nil && ok && !isNotFound(err) && now.Sub(e.loadedAt) < s.opt.MaxStale {
		return e.client, nil
	}
	return c, err
}

// load reads clientID from the store and caches it unless an invalidation
// happened since gen was read.
func (s *Store) load(ctx context.Context, clientID string, gen uint64, now time.Time) (*authz.Client, error) {
	c, err := s.Store.Client(ctx, clientID)
	if err != nil {
		if isNotFound(err) {
			s.Invalidate(clientID)
		}
		return nil, err
	}
	s.mu.Lock()
	if s.gen == gen { // no invalidation raced this load
		if _, had := s.entries[clientID]; !had && len(s.entries) >= s.opt.MaxEntries {
			for k := range s.entries {
				delete(s.entries, k)
				break
			}
		}
		s.entries[clientID] = entry{client: c, loadedAt: now}
	}
	s.mu.Unlock()
	return c, nil
}

// revalidate rereads clientID in the background, once at a time per
// client. A failure keeps the stale entry (the database may be down).
func (s *Store) revalidate(clientID string) {
	s.mu.Lock()
	if s.refreshing[clientID] {
		s.mu.Unlock()
		return
	}
	s.refreshing[clientID] = true
	gen := s.gen
	s.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = s.load(ctx, clientID, gen, s.opt.Now())
		s.mu.Lock()
		delete(s.refreshing, clientID)
		s.mu.Unlock()
		if s.opt.afterRevalidate != nil {
			s.opt.afterRevalidate()
		}
	}()
}

func isNotFound(err error) bool { return errors.Is(err, authz.ErrNotFound) }

// Invalidate drops the entry of clientID, or every entry if clientID is "".
func (s *Store) Invalidate(clientID string) {
	s.mu.Lock()
	s.gen++
	if clientID == "" {
		clear(s.entries)
	} else {
		delete(s.entries, clientID)
	}
	s.mu.Unlock()
}

// Len returns the number of cached applications.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// after runs a write and, if it succeeded, invalidates clientID ("" for all).
func (s *Store) after(err error, clientID string) error {
	if err == nil {
		s.Invalidate(clientID)
	}
	return err
}

// Writes that change what Client returns. API changes touch every
// application granted the API, so they drop everything: they are rare.

// UpdateAPI writes through and invalidates what it changed.
func (s *Store) UpdateAPI(ctx context.Context, a authz.API) error {
	return s.after(s.Store.UpdateAPI(ctx, a), "")
}

// DeleteAPI writes through and invalidates what it changed.
func (s *Store) DeleteAPI(ctx context.Context, id string) error {
	return s.after(s.Store.DeleteAPI(ctx, id), "")
}

// UpdateApplication writes through and invalidates what it changed.
func (s *Store) UpdateApplication(ctx context.Context, app authz.Application) error {
	return s.after(s.Store.UpdateApplication(ctx, app), app.ClientID)
}

// DeleteApplication writes through and invalidates what it changed.
func (s *Store) DeleteApplication(ctx context.Context, clientID string) error {
	return s.after(s.Store.DeleteApplication(ctx, clientID), clientID)
}

// CreateGrant writes through and invalidates what it changed.
func (s *Store) CreateGrant(ctx context.Context, g authz.Grant) error {
	return s.after(s.Store.CreateGrant(ctx, g), g.ClientID)
}

// UpdateGrant writes through and invalidates what it changed.
func (s *Store) UpdateGrant(ctx context.Context, g authz.Grant) error {
	return s.after(s.Store.UpdateGrant(ctx, g), g.ClientID)
}

// DeleteGrant writes through and invalidates what it changed.
func (s *Store) DeleteGrant(ctx context.Context, clientID, id string) error {
	return s.after(s.Store.DeleteGrant(ctx, clientID, id), clientID)
}

// CreateSecret writes through and invalidates what it changed.
func (s *Store) CreateSecret(ctx context.Context, sec authz.Secret) error {
	return s.after(s.Store.CreateSecret(ctx, sec), sec.ClientID)
}

// DeleteSecret writes through and invalidates what it changed.
func (s *Store) DeleteSecret(ctx context.Context, clientID, id string) error {
	return s.after(s.Store.DeleteSecret(ctx, clientID, id), clientID)
}

// ExpireSecrets writes through and invalidates what it changed.
func (s *Store) ExpireSecrets(ctx context.Context, clientID, exceptID string, at, now time.Time) error {
	return s.after(s.Store.ExpireSecrets(ctx, clientID, exceptID, at, now), clientID)
}

// RotateSecret writes through and invalidates what it changed.
func (s *Store) RotateSecret(ctx context.Context, sec authz.Secret, expireOthersAt time.Time) error {
	return s.after(s.Store.RotateSecret(ctx, sec, expireOthersAt), sec.ClientID)
}
