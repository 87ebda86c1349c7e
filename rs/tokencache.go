package rs

import (
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and bounds of the verified-token cache (Config.TokenCacheEntries,
// Config.TokenCacheMaxAge).
const (
	// DefaultTokenCacheEntries bounds the verified-token cache when
	// Config.TokenCacheEntries is zero: 10000 tokens, about 5 MB.
	DefaultTokenCacheEntries = 10_000
	// DefaultTokenCacheMaxAge is how long a verified token is reused when
	// Config.TokenCacheMaxAge is zero: 60 s.
	DefaultTokenCacheMaxAge = 60 * time.Second
	// MaxTokenCacheMaxAge is the largest Config.TokenCacheMaxAge New
	// accepts: 10 min.
	MaxTokenCacheMaxAge = 10 * time.Minute
)

// tokenCache remembers tokens whose signature and claims Validate has
// verified, so that a repeated token costs a SHA-256 and a map lookup
// instead of a parse and a signature verification. Entries are keyed by
// the SHA-256 of the token, so the cache holds nothing a client could
// present, and hold the verified Claims until the token's exp or maxAge
// after the verification, whichever comes first. It holds at most max
// entries and evicts with the CLOCK (second chance) algorithm: a hit only
// sets a flag under the read lock, and an insertion into a full cache
// drops an expired entry or one not hit since the hand last passed it.
// It is safe for concurrent use.
type tokenCache struct {
	max    int
	maxAge time.Duration

	mu    sync.RWMutex
	index map[[sha256.Size]byte]*cachedToken
	ring  []*cachedToken // len ≤ max; the CLOCK's slots
	hand  int            // next slot the CLOCK looks at
}

// cachedToken is one verified token. Its fields other than used change only
// under tokenCache.mu held for writing.
type cachedToken struct {
	key    [sha256.Size]byte
	kid    string // the key that verified it, which must still be published
	claims *Claims
	until  time.Time   // min(exp, verified + maxAge)
	used   atomic.Bool // hit since the CLOCK hand last passed
}

// newTokenCache returns a cache of max entries (max > 0).
func newTokenCache(max int, maxAge time.Duration) *tokenCache {
	return &tokenCache{max: max, maxAge: maxAge, index: make(map[[sha256.Size]byte]*cachedToken)}
}

// tokenKey is the cache key of token.
func tokenKey(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// get returns a copy of the cached claims of key and the kid that verified
// them, if an entry is there and usable at now.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (*Claims, string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.index[key]
	if !ok || !now.Before(e.until) {
		return nil, "", false
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e.claims.clone(), e.kid, true
}

// put caches a copy of claims, verified at now with the key kid.
func (c *tokenCache) put(key [sha256.Size]byte, kid string, claims *Claims, now time.Time) {
	until := now.Add(c.maxAge)
	if claims.ExpiresAt.Before(until) {
		until = claims.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	claims = claims.clone()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[key]; ok {
		e.kid, e.claims, e.until = kid, claims, until
		return
	}
	var e *cachedToken
	if len(c.ring) < c.max {
		e = &cachedToken{}
		c.ring = append(c.ring, e)
	} else {
		e = c.victim(now)
		delete(c.index, e.key)
	}
	e.key, e.kid, e.claims, e.until = key, kid, claims, until
	e.used.Store(false)
	c.index[key] = e
}

// victim advances the CLOCK hand to the first slot that is expired or was
// not hit since the hand last passed, clearing the flags it passes, and
// returns that slot. It ends within two turns of the ring. The caller holds
// mu for writing and the ring is full.
func (c *tokenCache) victim(now time.Time) *cachedToken {
	for {
		e := c.ring[c.hand]
		c.hand = (c.hand + 1) % len(c.ring)
		if !now.Before(e.until) || !e.used.Swap(false) {
			return e
		}
	}
}

// len is the number of cached entries, expired ones included.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.index)
}

// clone returns a copy of c that shares no mutable memory with it, so that
// a handler changing the Claims it got cannot change another request's.
// (payload is never written.)
func (c *Claims) clone() *Claims {
	d := *c
	d.Audience = slices.Clone(c.Audience)
	d.Scopes = slices.Clone(c.Scopes)
	return &d
}
