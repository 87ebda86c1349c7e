// Package limits defends client authentication against guessing (RFC 6819
// §4.4.4.1 and §5.1.4.2.3, OWASP ASVS V2.2.1): it locks out a client_id
// after consecutive failures from one source address, limits the failures
// of each source address, and, when one client_id is attacked from many
// addresses, locks it out everywhere for a bounded time. It is asked
// before any hash or store work, and keeps a bounded amount of memory
// whatever client_ids and addresses an attacker sends.
package limits

import (
	"context"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxFailures       = 10
	DefaultWindow            = time.Minute
	DefaultAddrBurst         = 30
	DefaultAddrRate          = 0.5 // failures per second: 30 a minute
	DefaultClientMaxFailures = 100 // with DefaultMaxFailures: 10 × MaxFailures
	DefaultMaxKeys           = 1 << 16
)

// Config tunes a Limiter. Zero fields take the defaults.
type Config struct {
	// MaxFailures consecutive failed authentications of one client_id
	// from one source address, within Window of the first, lock that
	// client_id out from that address for Window. A success from the
	// address starts the count again.
	MaxFailures int
	// Window is the failure-counting window and the lockout's length.
	Window time.Duration
	// AddrBurst and AddrRate limit the failed authentications of one
	// source address, whatever client_ids it names: a token bucket of
	// AddrBurst failures refilled at AddrRate a second. An empty bucket
	// refuses every authentication from the address until it refills.
	// IPv6 addresses count per /64.
	AddrBurst int
	AddrRate  float64
	// ClientMaxFailures failures of one client_id within Window, from any
	// addresses, lock it out from every address for Window (an attack
	// from many addresses). Default 10 × MaxFailures; at least
	// 2 × MaxFailures, so that one address alone cannot do it. After such a lockout the client_id cannot be
	// locked out everywhere again for another Window, so the right secret
	// from an address that has not failed works at least every other
	// Window, whatever an attacker does.
	ClientMaxFailures int
	// MaxKeys bounds each of the three tables (client_id and address
	// pairs, client_ids, addresses); past it the least recently failed
	// entry is forgotten.
	MaxKeys int
	Now     func() time.Time
	// OnLockout, if set, is told when a lockout starts and when it ends
	// (or its entry is forgotten), outside the Limiter's lock. It must
	// not block.
	OnLockout func(Lockout)
}

// Scope is what a lockout applies to.
type Scope string

const (
	// ScopeClientAddr: one client_id from one source address.
	ScopeClientAddr Scope = "client_address"
	// ScopeClient: one client_id from every address.
	ScopeClient Scope = "client"
	// ScopeAddr: every client_id from one source address.
	ScopeAddr Scope = "address"
)

// Lockout is a lockout starting or ending.
type Lockout struct {
	Scope    Scope
	ClientID string     // as Failed was given it to show; "" for ScopeAddr
	Addr     netip.Addr // the address (the /64 of an IPv6 one); zero for ScopeClient
	Started  bool       // true when it starts, false when it ends
	Until    time.Time  // when it ends (ends, for an ending one)
	Failures int        // the failures that started it
}

// Limiter is the failed-authentication limiter. It is safe for concurrent
// use.
type Limiter struct {
	cfg  Config
	seed maphash.Seed

	mu      sync.Mutex
	pairs   *lru[failures]
	clients *lru[clientState]
	addrs   *lru[bucket]
	// locked are the lockouts in force, by table and key, to announce
	// their end; bounded by the tables.
	locked    map[lockKey]Lockout
	forgotten []Lockout // lockouts whose entry was evicted, to announce
	refused   uint64

	evictPair, evictClient, evictAddr func(key uint64)
}

type lockKey struct {
	scope Scope
	key   uint64
}

// failures counts the consecutive failures of one key within a window.
type failures struct {
	count       int32
	first       int64 // unix nanoseconds of the window's first failure
	lockedUntil int64 // unix nanoseconds; 0 if not locked
}

type clientState struct {
	failures
	quietUntil int64 // no lockout everywhere before this (after one ended)
}

// bucket is a token bucket of failures.
type bucket struct {
	tokens      float64
	last        int64 // unix nanoseconds of the last refill
	lockedUntil int64
}

// New returns a Limiter with cfg, defaults filled.
func New(cfg Config) *Limiter {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.AddrBurst <= 0 {
		cfg.AddrBurst = DefaultAddrBurst
	}
	if cfg.AddrRate <= 0 {
		cfg.AddrRate = DefaultAddrRate
	}
	if cfg.ClientMaxFailures <= 0 {
		cfg.ClientMaxFailures = DefaultClientMaxFailures * cfg.MaxFailures / DefaultMaxFailures
	}
	// Below this, one address could lock a client_id out everywhere
	// before it is locked out itself: per address first would not hold.
	cfg.ClientMaxFailures = max(cfg.ClientMaxFailures, 2*cfg.MaxFailures)
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Limiter{
		cfg: cfg, seed: maphash.MakeSeed(),
		pairs: newLRU[failures](cfg.MaxKeys), clients: newLRU[clientState](cfg.MaxKeys), addrs: newLRU[bucket](cfg.MaxKeys),
		locked: map[lockKey]Lockout{},
	}
	l.evictPair = func(k uint64) { l.forget(ScopeClientAddr, k) }
	l.evictClient = func(k uint64) { l.forget(ScopeClient, k) }
	l.evictAddr = func(k uint64) { l.forget(ScopeAddr, k) }
	return l
}

// Config returns the configuration in force, defaults filled.
func (l *Limiter) Config() Config { return l.cfg }

// keys are the hashed table keys of one request. Hashing with a random
// seed keeps every entry the same small size whatever the client_id's
// length, and keeps collisions out of an attacker's reach.
type keys struct {
	pair, client, addr uint64
	hasClient          bool
}

func (l *Limiter) keysOf(clientID string, addr netip.Addr) keys {
	a := addrKey(addr)
	k := keys{addr: maphash.Comparable(l.seed, a)}
	if clientID != "" {
		k.hasClient = true
		k.client = maphash.String(l.seed, clientID)
		k.pair = maphash.Comparable(l.seed, [2]uint64{k.client, k.addr})
	}
	return k
}

// addrKey is the address an address's failures count against: an IPv4
// address itself, an IPv6 one's /64 (what one host is usually given).
func addrKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// Attempt is one authentication that Allow let through: tell it how it
// ended.
type Attempt struct {
	l    *Limiter
	k    keys
	addr netip.Addr
}

// Allow reports whether an authentication of clientID ("" if the request
// named none that could be valid) from addr may be tried now, and if not,
// how long until it may (whole seconds, at least one): ask it before any
// hash or store work. Report the outcome of an allowed one to the Attempt.
func (l *Limiter) Allow(clientID string, addr netip.Addr) (a Attempt, retryAfter time.Duration, ok bool) {
	k := l.keysOf(clientID, addr)
	now := l.cfg.Now().UnixNano()
	l.mu.Lock()
	until := int64(0)
	if b := l.addrs.get(k.addr); b != nil && b.lockedUntil > now {
		until = b.lockedUntil
	}
	if k.hasClient {
		if f := l.pairs.get(k.pair); f != nil && f.lockedUntil > until {
			until = f.lockedUntil
		}
		if c := l.clients.get(k.client); c != nil && c.lockedUntil > until {
			until = c.lockedUntil
		}
	}
	if until <= now {
		l.mu.Unlock()
		return Attempt{l: l, k: k, addr: addr}, 0, true
	}
	l.refused++
	l.mu.Unlock()
	return Attempt{}, wholeSeconds(time.Duration(until - now)), false
}

// wholeSeconds rounds d up to whole seconds, at least one: Retry-After's
// unit (RFC 9110 §10.2.3).
func wholeSeconds(d time.Duration) time.Duration {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

// Failed counts the attempt as a failed authentication; shown is its
// client_id as lockout events may show it (bounded, redacted).
func (a Attempt) Failed(shown string) {
	l, k := a.l, a.k
	if l == nil {
		return
	}
	now := l.cfg.Now().UnixNano()
	window := int64(l.cfg.Window)
	var events []Lockout
	lock := func(scope Scope, key uint64, lo Lockout) {
		lo.Scope, lo.Started = scope, true
		l.locked[lockKey{scope, key}] = lo
		events = append(events, lo)
	}
	l.mu.Lock()
	b := l.addrs.put(k.addr, l.evictAddr)
	if b.last == 0 {
		b.tokens, b.last = float64(l.cfg.AddrBurst), now
	}
	b.tokens = min(float64(l.cfg.AddrBurst), b.tokens+float64(now-b.last)/1e9*l.cfg.AddrRate)
	b.last = now
	b.tokens--
	if b.tokens < 1 && b.lockedUntil <= now {
		b.lockedUntil = now + int64((1-b.tokens)/l.cfg.AddrRate*1e9)
		lock(ScopeAddr, k.addr, Lockout{Addr: addrKey(a.addr), Until: time.Unix(0, b.lockedUntil), Failures: l.cfg.AddrBurst})
	}
	if k.hasClient {
		f := l.pairs.put(k.pair, l.evictPair)
		if f.count == 0 || now-f.first > window {
			f.count, f.first = 0, now
		}
		f.count++
		if int(f.count) >= l.cfg.MaxFailures && f.lockedUntil <= now {
			f.lockedUntil = now + window
			lock(ScopeClientAddr, k.pair, Lockout{ClientID: shown, Addr: addrKey(a.addr), Until: time.Unix(0, f.lockedUntil), Failures: int(f.count)})
			f.count = 0
		}
		c := l.clients.put(k.client, l.evictClient)
		if c.count == 0 || now-c.first > window {
			c.count, c.first = 0, now
		}
		c.count++
		if int(c.count) >= l.cfg.ClientMaxFailures && c.lockedUntil <= now && now >= c.quietUntil {
			c.lockedUntil = now + window
			c.quietUntil = c.lockedUntil + window
			lock(ScopeClient, k.client, Lockout{ClientID: shown, Until: time.Unix(0, c.lockedUntil), Failures: int(c.count)})
			c.count = 0
		}
	}
	events = append(events, l.forgotten...)
	l.forgotten = l.forgotten[:0]
	l.mu.Unlock()
	l.announce(events)
}

// forget is the eviction callback of scope's table: a lockout whose entry
// is forgotten has ended, and is announced so. Runs under l.mu.
func (l *Limiter) forget(scope Scope, key uint64) {
	k := lockKey{scope, key}
	if lo, ok := l.locked[k]; ok {
		delete(l.locked, k)
		lo.Started = false
		l.forgotten = append(l.forgotten, lo)
	}
}

// Succeeded notes the attempt's success: the count of consecutive failures
// of its client_id from its address starts again.
func (a Attempt) Succeeded() {
	l := a.l
	if l == nil || !a.k.hasClient {
		return
	}
	l.mu.Lock()
	if l.pairs.len() > 0 {
		if f := l.pairs.get(a.k.pair); f != nil && f.lockedUntil <= l.cfg.Now().UnixNano() {
			l.pairs.remove(a.k.pair)
		}
	}
	l.mu.Unlock()
}

// Sweep announces the end of every lockout that has ended by now.
func (l *Limiter) Sweep() {
	now := l.cfg.Now()
	var events []Lockout
	l.mu.Lock()
	for k, lo := range l.locked {
		if !lo.Until.After(now) {
			delete(l.locked, k)
			lo.Started = false
			events = append(events, lo)
		}
	}
	l.mu.Unlock()
	l.announce(events)
}

// SweepInterval is how often Run announces ended lockouts.
const SweepInterval = time.Second

// Run sweeps every SweepInterval until ctx is done.
func (l *Limiter) Run(ctx context.Context) {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Sweep()
		}
	}
}

func (l *Limiter) announce(events []Lockout) {
	if l.cfg.OnLockout == nil {
		return
	}
	for _, e := range events {
		l.cfg.OnLockout(e)
	}
}

// Stats are counters for tests and metrics.
type Stats struct {
	Refused               uint64 // authentications Allow refused
	Pairs, Clients, Addrs int    // entries in each table
	Locked                int    // lockouts in force (or ended and not yet swept)
}

// Stats returns the current counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Refused: l.refused, Pairs: l.pairs.len(), Clients: l.clients.len(), Addrs: l.addrs.len(), Locked: len(l.locked)}
}
