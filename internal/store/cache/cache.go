// Package cache keeps the token endpoint's reads in memory: it wraps an
// authz.Store so that Client (an application with its secrets and grants)
// is answered from a map, and every write made through it drops what it
// changed. Writes made elsewhere (another replica) reach it through
// Invalidate or, at the latest, after the entry's time to live.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Defaults of Options.
const (
	DefaultTTL        = 30 * time.Second
	DefaultMaxStale   = 5 * time.Minute
	DefaultMaxEntries = 200_000
	// DefaultNegativeTTL and DefaultMaxNegative are NegativeTTL's and
	// MaxNegative's defaults.
	DefaultNegativeTTL = 5 * time.Second
	DefaultMaxNegative = 10_000
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
	// NegativeTTL is how long a client_id the store does not know is
	// answered authz.ErrNotFound from memory, without a store read. An
	// application created through this Store, or announced by the change
	// feed (Invalidate), is known at once; one whose notification was lost
	// after at most NegativeTTL.
	NegativeTTL time.Duration
	// MaxNegative bounds the unknown client_ids remembered; past it an
	// arbitrary one is forgotten.
	MaxNegative int
	Now         func() time.Time
	// OnLookup, if set, is told each Client lookup's result (metrics):
	// LookupHit, LookupStale, LookupNegativeHit or LookupMiss.
	OnLookup func(result string)
	// OnStoreError, if set, is told of each failed store read other than
	// authz.ErrNotFound (metrics).
	OnStoreError func()

	afterRevalidate func() // tests: called when a background reread ends
}

// Results of a Client lookup, as Options.OnLookup is told them.
const (
	LookupHit         = "hit"          // a fresh entry
	LookupStale       = "stale"        // an entry past TTL, answered while it is reread
	LookupNegativeHit = "negative_hit" // a client_id remembered as unknown
	LookupMiss        = "miss"         // read from the store
)

func (s *Store) lookup(result string) {
	if s.opt.OnLookup != nil {
		s.opt.OnLookup(result)
	}
}

// Store is an authz.Store whose Client reads come from memory. Every other
// method passes through; writes invalidate what they touch. It is safe for
// concurrent use.
type Store struct {
	authz.Store
	opt Options

	mu         sync.RWMutex
	entries    map[string]entry
	negative   map[string]time.Time // unknown client_id → when it was found unknown
	refreshing map[string]bool      // clients being reread in the background
	gen        uint64               // bumped by every invalidation, so a load racing one is not kept
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
	if opt.NegativeTTL <= 0 {
		opt.NegativeTTL = DefaultNegativeTTL
	}
	if opt.MaxNegative <= 0 {
		opt.MaxNegative = DefaultMaxNegative
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Store{Store: s, opt: opt, entries: map[string]entry{}, negative: map[string]time.Time{}, refreshing: map[string]bool{}}
}

// Client returns the application clientID with its secrets and grants from
// memory. A missing entry is read from the store (the caller waits). An
// entry older than TTL is still returned, and reread in the background
// (stale-while-revalidate), so a token request never waits on the database
// for an application it already knows; an entry older than MaxStale is not
// returned unless the store cannot be read. The returned value is shared:
// callers must not modify it. Returns authz.ErrNotFound if there is no
// such application; that answer is remembered for NegativeTTL, so that a
// repeated unknown client_id costs no store read.
func (s *Store) Client(ctx context.Context, clientID string) (*authz.Client, error) {
	now := s.opt.Now()
	s.mu.RLock()
	e, ok := s.entries[clientID]
	unknownAt, unknown := s.negative[clientID]
	gen := s.gen
	s.mu.RUnlock()
	if !ok && unknown && now.Sub(unknownAt) < s.opt.NegativeTTL {
		s.lookup(LookupNegativeHit)
		return nil, errUnknown
	}
	if ok {
		age := now.Sub(e.loadedAt)
		if age < s.opt.TTL {
			s.lookup(LookupHit)
			return e.client, nil
		}
		if age < s.opt.MaxStale {
			s.lookup(LookupStale)
			s.revalidate(clientID)
			return e.client, nil
		}
	}
	s.lookup(LookupMiss)
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
		if !isNotFound(err) && s.opt.OnStoreError != nil {
			s.opt.OnStoreError()
		}
		if isNotFound(err) {
			s.mu.Lock()
			s.gen++
			delete(s.entries, clientID)
			if s.gen == gen+1 { // no invalidation raced this load: remember it is unknown
				if _, had := s.negative[clientID]; !had && len(s.negative) >= s.opt.MaxNegative {
					for k := range s.negative {
						delete(s.negative, k)
						break
					}
				}
				s.negative[clientID] = now
			}
			s.mu.Unlock()
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

// errUnknown answers a client_id remembered as unknown: one value, so the
// answer allocates nothing.
var errUnknown = fmt.Errorf("client: %w (remembered as unknown)", authz.ErrNotFound)

func isNotFound(err error) bool { return errors.Is(err, authz.ErrNotFound) }

// Invalidate drops the entry of clientID, or every entry if clientID is "".
func (s *Store) Invalidate(clientID string) {
	s.mu.Lock()
	s.gen++
	if clientID == "" {
		clear(s.entries)
		clear(s.negative)
	} else {
		delete(s.entries, clientID)
		delete(s.negative, clientID)
	}
	s.mu.Unlock()
}

// Len returns the number of cached applications.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// NegativeLen returns the number of unknown client_ids remembered.
func (s *Store) NegativeLen() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.negative)
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

// CreateAPI writes through and invalidates what it changed.
func (s *Store) CreateAPI(ctx context.Context, a authz.API) error {
	return s.after(s.Store.CreateAPI(ctx, a), "")
}

// UpdateAPI writes through and invalidates what it changed.
func (s *Store) UpdateAPI(ctx context.Context, id string, p authz.APIPatch) (authz.API, error) {
	a, err := s.Store.UpdateAPI(ctx, id, p)
	return a, s.after(err, "")
}

// DeleteAPI writes through and invalidates what it changed.
func (s *Store) DeleteAPI(ctx context.Context, id string) error {
	return s.after(s.Store.DeleteAPI(ctx, id), "")
}

// CreateApplication writes through and invalidates what it changed.
func (s *Store) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return s.after(s.Store.CreateApplication(ctx, app, secrets, grants), app.ClientID)
}

// UpdateApplication writes through and invalidates what it changed.
func (s *Store) UpdateApplication(ctx context.Context, clientID string, p authz.ApplicationPatch) (authz.Application, error) {
	a, err := s.Store.UpdateApplication(ctx, clientID, p)
	return a, s.after(err, clientID)
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

// Manage runs fn in the wrapped store's Manage, through a Tx that notes
// which applications its writes touch (every one, for a write to an API),
// and then invalidates their entries, bumping the generation so that a
// load racing the transaction is not kept. It invalidates them whatever
// Manage returns: a commit that failed on a lost connection may still have
// happened, and a needless invalidation costs only a reread. fn's error is
// returned as it is.
func (s *Store) Manage(ctx context.Context, fn func(tx authz.Tx) error) error {
	var w touched
	err := s.Store.Manage(ctx, func(t authz.Tx) error {
		w = touched{} // fn may run again: only the last run's writes commit
		return fn(&tx{Tx: t, touched: &w})
	})
	switch {
	case w.all:
		s.Invalidate("")
	case len(w.clients) > 0:
		s.mu.Lock()
		s.gen++
		for id := range w.clients {
			delete(s.entries, id)
			delete(s.negative, id)
		}
		s.mu.Unlock()
	}
	return err
}

// touched is what the writes of one management transaction changed.
type touched struct {
	all     bool                // an API: every application granted it
	clients map[string]struct{} // by client_id
}

// tx is the authz.Tx that Manage gives fn: the wrapped store's, noting
// what its writes touch. A write method added to authz.Tx must be added
// here too, or its writes go unnoticed until the entries' TTL.
type tx struct {
	authz.Tx
	touched *touched
}

// note records that a write to clientID ("" for every application)
// succeeded, and returns err.
func (t *tx) note(err error, clientID string) error {
	if err != nil {
		return err
	}
	if clientID == "" {
		t.touched.all = true
		return nil
	}
	if t.touched.clients == nil {
		t.touched.clients = map[string]struct{}{}
	}
	t.touched.clients[clientID] = struct{}{}
	return nil
}

func (t *tx) CreateAPI(ctx context.Context, a authz.API) error {
	return t.note(t.Tx.CreateAPI(ctx, a), "")
}

func (t *tx) UpdateAPI(ctx context.Context, id string, p authz.APIPatch) (authz.API, error) {
	a, err := t.Tx.UpdateAPI(ctx, id, p)
	return a, t.note(err, "")
}

func (t *tx) DeleteAPI(ctx context.Context, id string) error {
	return t.note(t.Tx.DeleteAPI(ctx, id), "")
}

func (t *tx) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return t.note(t.Tx.CreateApplication(ctx, app, secrets, grants), app.ClientID)
}

func (t *tx) UpdateApplication(ctx context.Context, clientID string, p authz.ApplicationPatch) (authz.Application, error) {
	a, err := t.Tx.UpdateApplication(ctx, clientID, p)
	return a, t.note(err, clientID)
}

func (t *tx) DeleteApplication(ctx context.Context, clientID string) error {
	return t.note(t.Tx.DeleteApplication(ctx, clientID), clientID)
}

func (t *tx) CreateGrant(ctx context.Context, g authz.Grant) error {
	return t.note(t.Tx.CreateGrant(ctx, g), g.ClientID)
}

func (t *tx) UpdateGrant(ctx context.Context, g authz.Grant) error {
	return t.note(t.Tx.UpdateGrant(ctx, g), g.ClientID)
}

func (t *tx) DeleteGrant(ctx context.Context, clientID, id string) error {
	return t.note(t.Tx.DeleteGrant(ctx, clientID, id), clientID)
}

func (t *tx) CreateSecret(ctx context.Context, sec authz.Secret) error {
	return t.note(t.Tx.CreateSecret(ctx, sec), sec.ClientID)
}

func (t *tx) RotateSecret(ctx context.Context, sec authz.Secret, expireOthersAt time.Time) error {
	return t.note(t.Tx.RotateSecret(ctx, sec, expireOthersAt), sec.ClientID)
}

func (t *tx) ExpireSecrets(ctx context.Context, clientID, exceptID string, at, now time.Time) error {
	return t.note(t.Tx.ExpireSecrets(ctx, clientID, exceptID, at, now), clientID)
}

func (t *tx) DeleteSecret(ctx context.Context, clientID, id string) error {
	return t.note(t.Tx.DeleteSecret(ctx, clientID, id), clientID)
}
