package fake

import (
	"context"
	"sync"
	"time"
)

// DenyList is a deny-list (oauth.DenyList, token.DenyList,
// manage.DenyList) over a map, jti → the token's exp. Err, if set, fails
// every Revoke, which then changes nothing. Its methods are safe for
// concurrent use; a test may read and write JTI directly while none runs.
type DenyList struct {
	JTI map[string]time.Time
	Err error

	mu sync.Mutex
}

// NewDenyList returns an empty DenyList.
func NewDenyList() *DenyList { return &DenyList{JTI: map[string]time.Time{}} }

// Revoked reports whether jti is deny-listed.
func (d *DenyList) Revoked(jti string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.JTI[jti]
	return ok
}

// Revoke deny-lists jti until expiresAt, or returns Err.
func (d *DenyList) Revoke(_ context.Context, jti string, expiresAt time.Time) error {
	if d.Err != nil {
		return d.Err
	}
	d.Add(jti, expiresAt)
	return nil
}

// Add deny-lists jti until expiresAt.
func (d *DenyList) Add(jti string, expiresAt time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.JTI[jti] = expiresAt
}
