package fake

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Keys is an in-memory authz.Keys that keeps the stores' contract:
// ListKeys ordered by (CreatedAt, KID), times as stores keep them
// (authz.StoreTime), ErrConflict for a taken kid, and UpdateKeys as one
// compare-and-set. It is safe for concurrent use. (It spares the tests of
// token and oauth a database.)
type Keys struct {
	mu   sync.Mutex
	keys map[string]authz.SigningKey
}

// NewKeys returns an empty Keys.
func NewKeys() *Keys { return &Keys{keys: map[string]authz.SigningKey{}} }

// storeTime is authz.StoreTime, keeping a zero time zero.
func storeTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return authz.StoreTime(t)
}

// CreateKey inserts k. Returns authz.ErrConflict if k.KID is taken.
func (m *Keys) CreateKey(_ context.Context, k authz.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.KID]; ok {
		return fmt.Errorf("key %s: %w", k.KID, authz.ErrConflict)
	}
	k.Private = bytes.Clone(k.Private)
	k.CreatedAt, k.ActivatedAt, k.RetiredAt, k.RemoveAfter = storeTime(k.CreatedAt), storeTime(k.ActivatedAt), storeTime(k.RetiredAt), storeTime(k.RemoveAfter)
	m.keys[k.KID] = k
	return nil
}

// ListKeys returns every key ordered by (CreatedAt, KID).
func (m *Keys) ListKeys(context.Context) ([]authz.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]authz.SigningKey, 0, len(m.keys))
	for _, k := range m.keys {
		k.Private = bytes.Clone(k.Private)
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b authz.SigningKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.KID, b.KID)
	})
	return out, nil
}

// UpdateKeys saves the states and times of ks if every key is still in
// the state from gives it. Returns authz.ErrConflict if one is not, and
// authz.ErrNotFound for a key that does not exist; either way it changes
// nothing.
func (m *Keys) UpdateKeys(_ context.Context, from map[string]authz.KeyState, ks []authz.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range ks {
		cur, ok := m.keys[k.KID]
		if !ok {
			return fmt.Errorf("key %s: %w", k.KID, authz.ErrNotFound)
		}
		if cur.State != from[k.KID] {
			return fmt.Errorf("key %s is no longer %q: %w", k.KID, from[k.KID], authz.ErrConflict)
		}
	}
	for _, k := range ks {
		cur := m.keys[k.KID]
		cur.State, cur.ActivatedAt, cur.RetiredAt, cur.RemoveAfter = k.State, storeTime(k.ActivatedAt), storeTime(k.RetiredAt), storeTime(k.RemoveAfter)
		m.keys[k.KID] = cur
	}
	return nil
}

// DeleteKey removes the key kid. Returns authz.ErrNotFound if there is
// none.
func (m *Keys) DeleteKey(_ context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[kid]; !ok {
		return fmt.Errorf("key %s: %w", kid, authz.ErrNotFound)
	}
	delete(m.keys, kid)
	return nil
}

// UpdateKeyPrivate replaces the sealed private key of kid. Returns
// authz.ErrNotFound if there is no such key.
func (m *Keys) UpdateKeyPrivate(_ context.Context, kid string, sealed []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[kid]
	if !ok {
		return fmt.Errorf("key %s: %w", kid, authz.ErrNotFound)
	}
	k.Private = bytes.Clone(sealed)
	m.keys[kid] = k
	return nil
}
