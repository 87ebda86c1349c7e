// Package cache keeps the token endpoint's reads in memory: it wraps an
// authz.Store so that Client (an application with its secrets and grants)
// is answered from a bounded table, and every write made through it drops
// what it changed. Writes made elsewhere (another replica) reach it
// through Invalidate (the change feed). An entry has a time to live only
// while nothing confirms that no change was missed: a store with no other
// writer (Options.SoleWriter) has none, and on a shared store each Synced
// (the change feed's version check) makes every entry as good as new.
//
// Nothing cached refers to the memory of the request that caused a read:
// the client_id a lookup is given is often a substring of the decoded
// "id:secret" of a Basic header or of a form body holding the secret, so
// the cache keeps its own copy, and the store is read with that copy.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// SoleWriter says that every write to the store goes through this
	// Store, or is announced by Invalidate: SQLite, whose data directory
	// one process holds locked. Entries then never go stale by age (TTL,
	// MaxStale and NegativeTTL are not used): an unchanged application
	// costs no store read after its first, and a write through this Store
	// drops what it changed at once.
	SoleWriter bool
	// TTL is how long an entry is used before it is reread, counted from
	// when it was read or from the last Synced, whichever is later: the
	// bound on staleness for writes this process was not told about while
	// no Synced comes (plus the reread's own time, as the first request
	// after TTL still gets the old entry while it is reread). While Synced
	// comes more often than TTL, no entry is reread by age.
	TTL time.Duration
	// MaxStale is how old an entry may be (counted as for TTL) and still
	// answer: while the database cannot be read, known applications keep
	// getting tokens for this long.
	MaxStale time.Duration
	// MaxEntries bounds the applications kept; past it the least recently
	// used one is evicted (approximately: a second-chance clock, so that a
	// hit takes no write lock).
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

	mu sync.RWMutex
	// index and slots are the cached applications: slots is a ring, at
	// most MaxEntries long, that the clock hand sweeps to evict; free are
	// the slots that invalidations emptied, reused first.
	index      map[string]int32 // client_id → slot
	slots      []slot
	free       []int32
	hand       int32
	negative   map[string]int64 // unknown client_id → when it was found unknown (Unix ns)
	refreshing map[string]bool  // clients being reread in the background
	gen        uint64           // bumped by every invalidation, so a load racing one is not kept
	shared     sharedValues

	// synced is when Synced was last called (Unix ns, 0 for never):
	// entries read before are as current as if read then.
	synced atomic.Int64
}

// slot is one cached application, under the key client.Application.ClientID:
// the cache's own copy of the client_id, never request memory.
type slot struct {
	client   *authz.Client
	loadedAt int64  // Unix ns
	used     uint32 // atomic: 1 if looked up since the clock hand last passed
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
	opt.MaxEntries = min(opt.MaxEntries, math.MaxInt32) // slots are numbered by int32
	if opt.NegativeTTL <= 0 {
		opt.NegativeTTL = DefaultNegativeTTL
	}
	if opt.MaxNegative <= 0 {
		opt.MaxNegative = DefaultMaxNegative
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Store{Store: s, opt: opt, index: map[string]int32{}, negative: map[string]int64{}, refreshing: map[string]bool{}}
}

// Client returns the application clientID with its secrets and grants from
// memory. A missing entry is read from the store (the caller waits). Unless
// the store has no other writer (Options.SoleWriter), an entry older than
// TTL (counted from its read or the last Synced, whichever is later) is
// still returned, and reread in the background (stale-while-revalidate),
// so a token request never waits on the database for an application it
// already knows; an entry older than MaxStale is not returned unless the
// store cannot be read. The returned value is shared: callers must not
// modify it. Returns authz.ErrNotFound if there is no such application;
// that answer is remembered (for NegativeTTL, counted likewise, unless the
// store has no other writer), so that a repeated unknown client_id costs
// no store read.
func (s *Store) Client(ctx context.Context, clientID string) (*authz.Client, error) {
	var now int64 // Unix ns; not needed, so not read, for a hit on a sole writer's store
	if !s.opt.SoleWriter {
		now = s.opt.Now().UnixNano()
	}
	var (
		c         *authz.Client
		key       string
		loadedAt  int64
		unknown   bool
		unknownAt int64
	)
	s.mu.RLock()
	i, ok := s.index[clientID]
	if ok {
		sl := &s.slots[i]
		c, key, loadedAt = sl.client, sl.client.Application.ClientID, sl.loadedAt
		if atomic.LoadUint32(&sl.used) == 0 { // a store only when it changes: no shared write per hit
			atomic.StoreUint32(&sl.used, 1)
		}
	} else {
		unknownAt, unknown = s.negative[clientID]
	}
	gen := s.gen
	s.mu.RUnlock()
	if !s.opt.SoleWriter {
		synced := s.synced.Load()
		loadedAt, unknownAt = max(loadedAt, synced), max(unknownAt, synced)
	}
	if ok {
		age := time.Duration(now - loadedAt)
		if s.opt.SoleWriter || age < s.opt.TTL {
			s.lookup(LookupHit)
			return c, nil
		}
		if age < s.opt.MaxStale {
			s.lookup(LookupStale)
			s.revalidate(key)
			return c, nil
		}
	} else if unknown && (s.opt.SoleWriter || time.Duration(now-unknownAt) < s.opt.NegativeTTL) {
		s.lookup(LookupNegativeHit)
		return nil, errUnknown
	}
	s.lookup(LookupMiss)
	if s.opt.SoleWriter {
		now = s.opt.Now().UnixNano()
	}
	if !ok {
		key = strings.Clone(clientID) // the caller's string may share memory with the secret
	}
	got, err := s.load(ctx, key, gen, now)
	if err != nil && ok && !isNotFound(err) && time.Duration(now-loadedAt) < s.opt.MaxStale {
		return c, nil
	}
	return got, err
}

// load reads key (a client_id in the cache's own memory) from the store
// and caches it unless an invalidation happened since gen was read.
func (s *Store) load(ctx context.Context, key string, gen uint64, now int64) (*authz.Client, error) {
	c, err := s.Store.Client(ctx, key)
	if err != nil {
		if !isNotFound(err) && s.opt.OnStoreError != nil {
			s.opt.OnStoreError()
		}
		if isNotFound(err) {
			s.mu.Lock()
			s.gen++
			s.drop(key)
			if s.gen == gen+1 { // no invalidation raced this load: remember it is unknown
				if _, had := s.negative[key]; !had && len(s.negative) >= s.opt.MaxNegative {
					for k := range s.negative {
						delete(s.negative, k)
						break
					}
				}
				s.negative[key] = now
			}
			s.mu.Unlock()
		}
		return nil, err
	}
	s.mu.Lock()
	if s.gen == gen && c.Application.ClientID == key { // no invalidation raced this load
		c = s.compact(c, key)
		s.insert(key, c, now)
	}
	s.mu.Unlock()
	return c, nil
}

// compact returns a copy of from, equal to it, that takes less memory to
// keep: every client_id in it is the one string key (from's
// Application.ClientID equals key), its secrets and grants lists have no
// spare capacity, a secret's id shares the memory of its prefix
// ("m2ms_<id>"), the strings and scope lists of grants are shared through
// s.shared, and so is each grant's API: one *authz.API per API, which
// every application granted it points to. from is left as it is: the
// wrapped store may share it. Runs under s.mu.
func (s *Store) compact(from *authz.Client, key string) *authz.Client {
	in := &s.shared
	c := &authz.Client{Application: from.Application, Secrets: slices.Clone(from.Secrets), Grants: slices.Clone(from.Grants)}
	c.Application.ClientID = key
	for i := range c.Secrets {
		sec := &c.Secrets[i]
		if sec.ClientID == key {
			sec.ClientID = key
		}
		if strings.HasSuffix(sec.Prefix, sec.ID) {
			sec.ID = sec.Prefix[len(sec.Prefix)-len(sec.ID):]
		}
	}
	for i := range c.Grants {
		g := &c.Grants[i].Grant
		if g.ClientID == key {
			g.ClientID = key
		}
		g.APIID, g.Audience, g.Scopes = in.str(g.APIID), in.str(g.Audience), in.scopeSet(g.Scopes)
		c.Grants[i].API = in.api(c.Grants[i].API)
	}
	return c
}

// maxShared bounds each table of a sharedValues; a full table starts
// again empty (what entries already share stays shared).
const maxShared = 4096

// sharedValues are the strings and lists that cached applications share,
// each kept once. Only values read from the store are kept.
type sharedValues struct {
	strs      map[string]string
	scopeSets map[string][]string   // a grant's scopes, by their values joined with " "
	apis      map[string]*authz.API // an API as last read, by its id
}

func (in *sharedValues) str(v string) string {
	if v == "" {
		return v
	}
	if w, ok := in.strs[v]; ok {
		return w
	}
	if in.strs == nil || len(in.strs) >= maxShared {
		in.strs = map[string]string{}
	}
	in.strs[v] = v
	return v
}

func (in *sharedValues) scopeSet(v []string) []string {
	if len(v) == 0 {
		return v
	}
	k := strings.Join(v, " ")
	if w, ok := in.scopeSets[k]; ok && slices.Equal(w, v) {
		return w
	}
	if in.scopeSets == nil || len(in.scopeSets) >= maxShared {
		in.scopeSets = map[string][]string{}
	}
	w := make([]string, len(v))
	for i := range v {
		w[i] = in.str(v[i])
	}
	in.scopeSets[k] = w
	return w
}

// api returns the shared copy of a, an API as the store read it: the one
// kept if it equals a in every field (reflect.DeepEqual, so that a field
// added to authz.API is compared too), else a new copy, kept in its place
// (the API changed: entries holding the older copy are being dropped).
func (in *sharedValues) api(a *authz.API) *authz.API {
	if a == nil {
		return nil
	}
	if w, ok := in.apis[a.ID]; ok && reflect.DeepEqual(w, a) {
		return w
	}
	if in.apis == nil || len(in.apis) >= maxShared {
		in.apis = map[string]*authz.API{}
	}
	w := *a
	w.ID, w.Identifier, w.Name, w.SigningAlg = in.str(w.ID), in.str(w.Identifier), in.str(w.Name), in.str(w.SigningAlg)
	w.DPoP, w.MTLSBound, w.Profile = in.str(w.DPoP), in.str(w.MTLSBound), in.str(w.Profile)
	w.Scopes = slices.Clip(slices.Clone(w.Scopes))
	in.apis[w.ID] = &w
	return &w
}

// insert caches c under key, replacing the entry key has or taking a free
// slot, a new one while there are fewer than MaxEntries, or else the
// least recently used one. Runs under s.mu.
func (s *Store) insert(key string, c *authz.Client, now int64) {
	if i, ok := s.index[key]; ok {
		sl := &s.slots[i]
		sl.client, sl.loadedAt = c, now
		return
	}
	var i int32
	switch {
	case len(s.free) > 0:
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
	case len(s.slots) < s.opt.MaxEntries:
		s.slots = append(s.slots, slot{})
		i = int32(len(s.slots) - 1)
	default:
		i = s.evict()
	}
	s.slots[i] = slot{client: c, loadedAt: now}
	s.index[key] = i
}

// evict frees the slot the clock hand finds first that was not looked up
// since the hand last passed it, giving each one it passes a second
// chance, and returns it. Every slot is in use. Runs under s.mu.
func (s *Store) evict() int32 {
	for {
		i := s.hand
		if s.hand++; int(s.hand) == len(s.slots) {
			s.hand = 0
		}
		sl := &s.slots[i]
		if atomic.LoadUint32(&sl.used) != 0 {
			atomic.StoreUint32(&sl.used, 0)
			continue
		}
		delete(s.index, sl.client.Application.ClientID)
		return i
	}
}

// drop removes the entry of clientID, if any. Runs under s.mu.
func (s *Store) drop(clientID string) {
	i, ok := s.index[clientID]
	if !ok {
		return
	}
	delete(s.index, clientID)
	s.slots[i] = slot{}
	s.free = append(s.free, i)
}

// revalidate rereads key (the cache's own client_id) in the background,
// once at a time per client. A failure keeps the stale entry (the database
// may be down).
func (s *Store) revalidate(key string) {
	s.mu.Lock()
	if s.refreshing[key] {
		s.mu.Unlock()
		return
	}
	s.refreshing[key] = true
	gen := s.gen
	s.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = s.load(ctx, key, gen, s.opt.Now().UnixNano())
		s.mu.Lock()
		delete(s.refreshing, key)
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

// Synced tells the cache that every write committed before now that changed
// what it holds has been announced through Invalidate (the change feed
// checked that none of its notifications was lost, and delivered
// authz.ChangeSynced after them): every entry and remembered unknown
// client_id is then as current as one read now, and its TTL, MaxStale and
// NegativeTTL count from now. It takes no lock.
func (s *Store) Synced() {
	now := s.opt.Now().UnixNano()
	for {
		old := s.synced.Load()
		if old >= now || s.synced.CompareAndSwap(old, now) {
			return
		}
	}
}

// Invalidate drops the entry of clientID, or every entry if clientID is "".
func (s *Store) Invalidate(clientID string) {
	s.mu.Lock()
	s.gen++
	if clientID == "" {
		s.dropAll()
	} else {
		s.drop(clientID)
		delete(s.negative, clientID)
	}
	s.mu.Unlock()
}

// dropAll empties the cache, keeping its slots' memory for the rereads
// that follow. Runs under s.mu.
func (s *Store) dropAll() {
	clear(s.index)
	clear(s.slots)
	s.slots, s.free, s.hand = s.slots[:0], s.free[:0], 0
	clear(s.negative)
}

// Len returns the number of cached applications.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.index)
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

// Bootstrap writes through and, if it created anything, invalidates
// everything: the client_id it created may be remembered as unknown.
func (s *Store) Bootstrap(ctx context.Context, b authz.Bootstrap) (bool, error) {
	created, err := s.Store.Bootstrap(ctx, b)
	if created {
		s.Invalidate("")
	}
	return created, err
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
			s.drop(id)
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
// here too, or its writes go unnoticed until the entries' TTL, and on a
// SoleWriter store until the entry is evicted.
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
