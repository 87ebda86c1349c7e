package denylist

import (
	"sync"
	"time"
)

// DefaultMaxRevocationsPerHour is the default of Cap's limit: 1000
// revocations per client per hour.
const DefaultMaxRevocationsPerHour = 1000

// Cap bounds how many tokens each client may deny-list itself (RFC 7009,
// /oauth/revoke) per window: a fixed window per client that opens with its
// first revocation counted and lasts Window. Once a client has made Limit
// revocations in its window, Take refuses until the window closes. Only
// the revocations that write the deny-list are counted (a token of the
// caller's that verifies), so the cap bounds the deny-list's growth, not
// the endpoint's traffic.
//
// The count is this replica's: N replicas behind a load balancer allow up
// to N × Limit per window. Memory is one small entry per client that
// revoked within the last window; only authenticated clients get one, so
// the map is bounded by the number of applications, and closed windows are
// swept once a window. It is safe for concurrent use.
type Cap struct {
	limit  int
	window time.Duration
	now    func() time.Time
	// onLimit, if set, is called (without the lock held) the first time a
	// client is refused in a window, with the window's end: once per
	// client and window, so that a client hammering the cap cannot grow
	// the audit log.
	onLimit func(clientID string, until time.Time)

	mu        sync.Mutex
	clients   map[string]*capWindow
	lastSweep time.Time
}

type capWindow struct {
	start    time.Time
	n        int
	reported bool
}

// NewCap returns a Cap of limit revocations per client per window (limit
// and window positive), on clock now. onLimit, if not nil, is told of each
// client's first refusal in a window.
func NewCap(limit int, window time.Duration, now func() time.Time, onLimit func(clientID string, until time.Time)) *Cap {
	return &Cap{limit: limit, window: window, now: now, onLimit: onLimit, clients: map[string]*capWindow{}}
}

// Limit returns the cap's limit per window.
func (c *Cap) Limit() int { return c.limit }

// Window returns the cap's window.
func (c *Cap) Window() time.Duration { return c.window }

// Take counts one revocation by clientID if it is within the cap and
// reports ok. Otherwise it counts nothing and returns how long until the
// client's window closes (positive): the Retry-After.
func (c *Cap) Take(clientID string) (retryAfter time.Duration, ok bool) {
	now := c.now()
	c.mu.Lock()
	c.sweep(now)
	w := c.clients[clientID]
	if w == nil || !now.Before(w.start.Add(c.window)) {
		c.clients[clientID] = &capWindow{start: now, n: 1}
		c.mu.Unlock()
		return 0, true
	}
	if w.n < c.limit {
		w.n++
		c.mu.Unlock()
		return 0, true
	}
	until := w.start.Add(c.window)
	report := !w.reported
	w.reported = true
	c.mu.Unlock()
	if report && c.onLimit != nil {
		c.onLimit(clientID, until)
	}
	return until.Sub(now), false
}

// Len returns how many clients have an open or unswept window.
func (c *Cap) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.clients)
}

// sweep drops the windows that have closed, at most once a window;
// c.mu is held.
func (c *Cap) sweep(now time.Time) {
	if now.Before(c.lastSweep.Add(c.window)) {
		return
	}
	c.lastSweep = now
	for id, w := range c.clients {
		if !now.Before(w.start.Add(c.window)) {
			delete(c.clients, id)
		}
	}
}
