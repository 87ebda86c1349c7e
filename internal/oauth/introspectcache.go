package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4/json"

	"github.com/m2mauth/m2mauth/internal/token"
)

// Bounds of the introspection endpoint's cache of verified tokens.
const (
	// introspectCacheEntries bounds the cache: 10000 tokens, a few MB.
	introspectCacheEntries = 10_000
	// introspectCacheMaxAge is how long a verified token is reused at
	// most, even if its exp is later: 5 min.
	introspectCacheMaxAge = 5 * time.Minute
)

// verifiedTokens remembers the tokens the introspection endpoint has
// verified (token.Issuer.Verify: parse, signature, claims), so that a
// repeated introspection costs a SHA-256 and a map lookup instead of a
// signature verification. It caches only what cannot change for a given
// token: its verified claims, the kid that signed it and its custom
// claims' JSON. Everything that can change is checked on every hit, as on
// a miss: exp against the server's clock, the kid still published, and
// then, in introspect, the caller's right to see it and Checker's
// liveness rule (deny-list, application deleted or disabled, revoke-all,
// grants). Entries are keyed by the SHA-256 of the token, so the cache
// holds nothing a client could present, and last until the token's exp or
// introspectCacheMaxAge after the verification, whichever comes first. It
// holds at most max entries, evicting with the CLOCK (second chance)
// algorithm as rs's token cache does. Safe for concurrent use.
type verifiedTokens struct {
	max    int
	maxAge time.Duration

	mu    sync.RWMutex
	index map[[sha256.Size]byte]*verifiedToken
	ring  []*verifiedToken // len ≤ max
	hand  int
}

// verifiedToken is one cached token. Its fields other than used change
// only under verifiedTokens.mu held for writing; claims is never written.
type verifiedToken struct {
	key    [sha256.Size]byte
	kid    string
	claims *token.Claims
	extra  string    // the custom claims as Introspection.extra holds them
	until  time.Time // min(exp, verified + maxAge)
	used   atomic.Bool
}

func newVerifiedTokens(max int, maxAge time.Duration) *verifiedTokens {
	return &verifiedTokens{max: max, maxAge: maxAge, index: make(map[[sha256.Size]byte]*verifiedToken)}
}

// get returns the entry of key if it is there and usable at now.
func (c *verifiedTokens) get(key [sha256.Size]byte, now time.Time) (claims *token.Claims, kid, extra string, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.index[key]
	if !ok || !now.Before(e.until) {
		return nil, "", "", false
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e.claims, e.kid, e.extra, true
}

// put caches claims, verified at now and signed with kid.
func (c *verifiedTokens) put(key [sha256.Size]byte, kid string, claims *token.Claims, extra string, now time.Time) {
	until := now.Add(c.maxAge)
	if exp := time.Unix(claims.Expiry, 0); exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.index[key]
	if !ok {
		if len(c.ring) < c.max {
			e = &verifiedToken{}
			c.ring = append(c.ring, e)
		} else {
			e = c.victim(now)
			delete(c.index, e.key)
		}
		e.used.Store(false)
		c.index[key] = e
	}
	e.key, e.kid, e.claims, e.extra, e.until = key, kid, claims, extra, until
}

// victim advances the CLOCK hand to the first slot that is expired or was
// not hit since the hand last passed it, and returns it; it ends within
// two turns of the ring. The caller holds mu for writing; the ring is full.
func (c *verifiedTokens) victim(now time.Time) *verifiedToken {
	for {
		e := c.ring[c.hand]
		c.hand = (c.hand + 1) % len(c.ring)
		if !now.Before(e.until) || !e.used.Swap(false) {
			return e
		}
	}
}

// len is the number of cached entries, expired ones included.
func (c *verifiedTokens) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.index)
}

// headerKID returns the "kid" of a compact JWS's protected header (RFC
// 7515 §4.1.4), read with go-jose's JSON decoder as token.Issuer.Verify
// read it; "" if there is none. tok has passed Verify.
func headerKID(tok string) string {
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.KID
}

// verifiedTokenCache returns s's cache of verified tokens, made on first
// use with the default bounds.
func (s *Server) verifiedTokenCache() *verifiedTokens {
	if c := s.verified.Load(); c != nil {
		return c
	}
	s.verified.CompareAndSwap(nil, newVerifiedTokens(introspectCacheEntries, introspectCacheMaxAge))
	return s.verified.Load()
}
