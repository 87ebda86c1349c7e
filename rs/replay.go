package rs

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// ErrReplayCacheFull is returned by ReplayCache.UseJTI when the cache holds
// its maximum of unexpired entries: the proof can be neither accepted nor
// refused, and Middleware answers 503 with Retry-After. Evicting an
// unexpired entry instead would let its proof be replayed.
var ErrReplayCacheFull = errors.New("rs: DPoP replay cache full")

// replayShards spreads a large cache over independently locked maps, so
// that concurrent requests seldom wait for each other; a cache smaller
// than minShardedEntries has one map, so that its bound is exact.
const (
	replayShards      = 16
	minShardedEntries = 16 << 10
)

// ReplayCache is a bounded in-memory record of used jti values, the default
// dpop.Replay of a Validator (RFC 9449 §11.1). Entries are kept until their
// expiry and then dropped. It holds at most its maximum number of entries,
// each a 32-byte SHA-256 of the key and an 8-byte expiry (about 100 bytes
// with the map's overhead), whatever the keys' length. It is safe for
// concurrent use.
//
// The cache belongs to one process: replicas of an API each have their
// own, so a proof replayed to another replica is not caught. Such APIs
// share a store instead (any dpop.Replay), or use DPoP nonces.
type ReplayCache struct {
	now      func() time.Time
	perShard int
	shards   []replayShard
}

type replayShard struct {
	mu        sync.Mutex
	entries   map[[sha256.Size]byte]int64 // key hash → expiry, Unix ns
	nextSweep int64                       // no full sweep before this, Unix ns
}

// NewReplayCache returns a cache of at most maxEntries entries (at least
// one). A cache of 16384 entries or more is split into 16 shards of
// maxEntries/16 each, and may refuse an entry when one shard is full. now
// is its clock; nil means time.Now.
func NewReplayCache(maxEntries int, now func() time.Time) *ReplayCache {
	if now == nil {
		now = time.Now
	}
	n := 1
	if maxEntries >= minShardedEntries {
		n = replayShards
	}
	c := &ReplayCache{now: now, perShard: max(maxEntries/n, 1), shards: make([]replayShard, n)}
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]int64)
	}
	return c
}

// UseJTI records key until exp and reports whether it was new: false if it
// is recorded and not expired. A key whose exp has already passed is not
// recorded (true). When the cache is full of unexpired entries it returns
// ErrReplayCacheFull. It implements dpop.Replay.
func (c *ReplayCache) UseJTI(_ context.Context, key string, exp time.Time) (bool, error) {
	now := c.now().UnixNano()
	until := exp.UnixNano()
	if until <= now {
		return true, nil
	}
	h := sha256.Sum256([]byte(key))
	s := &c.shards[int(h[0])%len(c.shards)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[h]; ok {
		if old > now {
			return false, nil
		}
		s.entries[h] = until
		return true, nil
	}
	if len(s.entries) >= c.perShard {
		// A full sweep is O(entries): at most one per second per shard,
		// so a cache full of live entries costs a map lookup per call.
		if now >= s.nextSweep {
			for k, e := range s.entries {
				if e <= now {
					delete(s.entries, k)
				}
			}
			s.nextSweep = now + int64(time.Second)
		}
		if len(s.entries) >= c.perShard {
			return false, ErrReplayCacheFull
		}
	}
	s.entries[h] = until
	return true, nil
}

// Len returns the number of entries held, expired ones not yet dropped
// included.
func (c *ReplayCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
