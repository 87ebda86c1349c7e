package fake

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Clients is a client source (oauth.ClientSource, token.ClientSource) over
// a map, client_id → client, which a test may change between calls: Client
// returns the map's own *authz.Client, and an error wrapping
// authz.ErrNotFound for a client_id it does not hold. Err, if set, fails
// every lookup.
type Clients struct {
	ByID map[string]*authz.Client
	Err  error

	calls atomic.Int64
}

// Client returns the client of id, or Err.
func (c *Clients) Client(_ context.Context, id string) (*authz.Client, error) {
	c.calls.Add(1)
	if c.Err != nil {
		return nil, c.Err
	}
	cl, ok := c.ByID[id]
	if !ok {
		return nil, fmt.Errorf("application %s: %w", id, authz.ErrNotFound)
	}
	return cl, nil
}

// Calls returns how many times Client was called.
func (c *Clients) Calls() int { return int(c.calls.Load()) }
