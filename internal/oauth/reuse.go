package oauth

import (
	"encoding/binary"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// DefaultReuseMaxEntries is the default bound of a ReuseCache: 100 000
// tokens. Each costs about 750 bytes with an ES256 token of two scopes
// (440 bytes of it the token; TestReuseCacheMemory measures it), about
// 1 KB with RS256's longer signature: some 75–100 MB when full.
const DefaultReuseMaxEntries = 100_000

// Results of a reuse lookup, as ReuseCache.OnLookup is told them.
const (
	ReuseHit  = "hit"  // the cached token was answered: no signature
	ReuseMiss = "miss" // no cached token: one was issued and cached
	// ReuseInvalidated: a cached token failed a check at the hit
	// (revoked, the application changed, key rotation, too little
	// left): it was dropped, and a new one issued and cached.
	ReuseInvalidated = "invalidated"
)

// ReuseCache holds the tokens issued under opt-in token reuse
// (authz.TokenReuse, docs/token-reuse.md), per replica and in memory: one
// per client_id, audience, granted scope set and sender-constraint key.
// It is bounded by a count (approximately least recently used: a
// second-chance clock, so that a hit takes no write lock); an entry that
// can no longer be answered is dropped when it is next looked up or the
// clock passes it. Its keys and entries are its own memory, never the
// request's, and hold no secret. It is safe for concurrent use.
type ReuseCache struct {
	max int
	// OnLookup, if set before the first request, is told each lookup's
	// result: ReuseHit, ReuseMiss or ReuseInvalidated (metrics).
	OnLookup func(result string)

	mu    sync.RWMutex
	index map[string]int32 // reuse key → slot
	slots []reuseEntry
	free  []int32
	hand  int32
	swept int32 // where sweep goes on
}

// reuseEntry is one cached token with what a hit checks. client is the
// *authz.Client the application cache returned when the token was issued:
// that cache replaces the value on every write that touches the
// application or its APIs (grants, disable, secrets, revoke-all, API
// settings), so a hit that sees the same pointer knows none happened (and
// one that sees another pointer compares the two: sameClient).
type reuseEntry struct {
	key      string // the cache's own copy (reuseKey)
	client   *authz.Client
	kid      string // the key that signed token
	token    string
	typ      string // token_type
	scope    string
	jti      string
	iat, exp int64  // NumericDate seconds
	deadline int64  // exp − min_remaining: after it the token is not answered
	used     uint32 // atomic: 1 if hit since the clock hand last passed
}

// NewReuseCache returns an empty cache of at most maxEntries tokens
// (DefaultReuseMaxEntries if maxEntries ≤ 0).
func NewReuseCache(maxEntries int) *ReuseCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReuseMaxEntries
	}
	maxEntries = min(maxEntries, 1<<31-1) // slots are numbered by int32
	return &ReuseCache{max: maxEntries, index: map[string]int32{}}
}

// Len returns the number of cached tokens.
func (c *ReuseCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.index)
}

func (c *ReuseCache) lookup(result string) {
	if c.OnLookup != nil {
		c.OnLookup(result)
	}
}

// reuseKeys are the buffers reuse keys are built in.
var reuseKeys = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// appendReuseKey appends to b the reuse key of iss: the client_id, the
// audience, the granted scopes as a set (sorted: the order asked does not
// matter, RFC 6749 §3.3), and the sender-constraint key (the DPoP key's
// thumbprint, RFC 9449 §6.1, and the client certificate's, RFC 8705
// §3.1), each length-prefixed so no two requests share a key. The grant's
// custom claims and the lifetime come from the application, which the
// entry's client pointer pins. No secret is part of it.
func appendReuseKey(b []byte, iss *token.Request) []byte {
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	field(iss.ClientID)
	field(iss.Audience)
	var small [8]string
	scopes := append(small[:0], iss.Scopes...)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	b = binary.AppendUvarint(b, uint64(len(scopes)))
	for _, sc := range scopes {
		field(sc)
	}
	if cnf := iss.Confirmation; cnf != nil {
		field(cnf.JKT)
		field(cnf.X5TS256)
	} else {
		field("")
		field("")
	}
	return b
}

// reuseHit is what a lookup found.
type reuseHit struct {
	token, typ, scope string
	exp               int64
}

// get returns the cached token of key if it may be answered at now (Unix
// seconds) to a request whose lookup returned client and whose API's
// algorithm signs with kid: the same client pointer (or, after the
// application cache reread an unchanged application, an equal one:
// sameClient), the same kid, at least min_remaining left (deadline), not
// revoked by jti (denied, RFC 7009) or by the application's revoke-all
// (authz.Application.TokenRevoked), and, when notAfter is not 0, expiring
// no later than it (a token issued on a federated JWT). A cached token
// that fails is dropped; found says whether there was one.
func (c *ReuseCache) get(key []byte, client *authz.Client, kid string, now, notAfter int64, denied DenyList) (hit reuseHit, ok, found bool) {
	c.mu.RLock()
	i, found := c.index[string(key)] // no allocation: the conversion is only for the lookup
	var e reuseEntry
	if found {
		sl := &c.slots[i]
		e = reuseEntry{client: sl.client, kid: sl.kid, token: sl.token, typ: sl.typ, scope: sl.scope, jti: sl.jti,
			iat: sl.iat, exp: sl.exp, deadline: sl.deadline}
		if atomic.LoadUint32(&sl.used) == 0 { // a store only when it changes
			atomic.StoreUint32(&sl.used, 1)
		}
	}
	c.mu.RUnlock()
	if !found {
		return reuseHit{}, false, false
	}
	if e.client != client && !sameClient(e.client, client) {
		c.dropToken(key, e.jti)
		return reuseHit{}, false, true
	}
	valid := e.kid == kid && now <= e.deadline &&
		(notAfter == 0 || e.exp <= notAfter) &&
		!client.Application.TokenRevoked(e.iat) &&
		(denied == nil || !denied.Revoked(e.jti))
	if !valid {
		c.dropToken(key, e.jti)
		return reuseHit{}, false, true
	}
	if e.client != client {
		c.repin(key, e.jti, client)
	}
	return reuseHit{token: e.token, typ: e.typ, scope: e.scope, exp: e.exp}, true, true
}

// put caches e under key (copied), replacing what key had, in a free slot,
// a new one while there are fewer than the bound, or else one the clock
// finds expired or not hit since it last passed.
func (c *ReuseCache) put(key []byte, e reuseEntry, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now, 2)
	if i, ok := c.index[string(key)]; ok {
		e.key = c.slots[i].key
		c.slots[i] = e
		return
	}
	e.key = string(key) // a copy: the cache's own memory
	var i int32
	switch {
	case len(c.free) > 0:
		i = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
	case len(c.slots) < c.max:
		c.slots = append(c.slots, reuseEntry{})
		i = int32(len(c.slots) - 1)
	default:
		i = c.evict(now)
	}
	c.slots[i] = e
	c.index[e.key] = i
}

// evict frees and returns the slot the clock hand finds first that is
// past its deadline or was not hit since the hand last passed it, giving
// each other one it passes a second chance. Every slot is in use. Runs
// under c.mu.
func (c *ReuseCache) evict(now int64) int32 {
	for {
		i := c.hand
		if c.hand++; int(c.hand) == len(c.slots) {
			c.hand = 0
		}
		sl := &c.slots[i]
		if now <= sl.deadline && atomic.LoadUint32(&sl.used) != 0 {
			atomic.StoreUint32(&sl.used, 0)
			continue
		}
		delete(c.index, sl.key)
		return i
	}
}

// dropToken removes the entry of key if it still holds the token jti
// (another request may have replaced it since).
func (c *ReuseCache) dropToken(key []byte, jti string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[string(key)]
	if !ok || c.slots[i].jti != jti {
		return
	}
	delete(c.index, c.slots[i].key)
	c.slots[i] = reuseEntry{}
	c.free = append(c.free, i)
}

// repin makes the entry of key, if it still holds the token jti, keep
// client: an application reread unchanged (sameClient), so that the next
// hits compare pointers only.
func (c *ReuseCache) repin(key []byte, jti string, client *authz.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[string(key)]; ok && c.slots[i].jti == jti {
		c.slots[i].client = client
	}
}

// sameClient reports whether a and b, two reads of one application, hold
// the same application, secrets and grants with their APIs, last-use times
// of secrets apart: the application cache rereads an application when it
// was evicted, when its entry ages past --cache-ttl (PostgreSQL, only
// while the change version cannot be checked), or when
// another replica's change to something else about it (a credential)
// arrives, and each reread is a new pointer. Every write that could
// change a token moves an updated_at, a cutoff or a list, so an equal
// reread means none happened. Anything it cannot tell equal (time
// locations, say) counts as a change: a new token, never a wrong one.
func sameClient(a, b *authz.Client) bool {
	if a == nil || b == nil || len(a.Secrets) != len(b.Secrets) || len(a.Grants) != len(b.Grants) ||
		!reflect.DeepEqual(a.Application, b.Application) {
		return false
	}
	for i := range a.Secrets {
		x, y := a.Secrets[i], b.Secrets[i]
		x.LastUsedAt, y.LastUsedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	for i := range a.Grants {
		if !reflect.DeepEqual(a.Grants[i], b.Grants[i]) {
			return false
		}
	}
	return true
}

// sweep drops the entries past their deadline among the next n slots,
// going round them: expired tokens leave without waiting for the bound.
// put calls it, so each cached token costs O(n) of sweeping. Runs under
// c.mu.
func (c *ReuseCache) sweep(now int64, n int) {
	for range min(n, len(c.slots)) {
		if int(c.swept) >= len(c.slots) {
			c.swept = 0
		}
		j := c.swept
		c.swept++
		if sl := &c.slots[j]; sl.key != "" && now > sl.deadline {
			delete(c.index, sl.key)
			c.slots[j] = reuseEntry{}
			c.free = append(c.free, j)
		}
	}
}

// reuseWindow returns the min_remaining, in whole seconds, under which a
// token of iss for api may be answered from s.Reuse, or 0 if it may not:
// no cache, the setting off for the application and the API, or a
// lifetime that does not exceed it.
func (s *Server) reuseWindow(client *authz.Client, api *authz.API, iss *token.Request) int64 {
	if s.Reuse == nil {
		return 0
	}
	r := authz.EffectiveTokenReuse(&client.Application, api)
	if !r.Enabled() || iss.Lifetime <= r.MinRemaining {
		return 0
	}
	return int64(r.MinRemaining / time.Second)
}
