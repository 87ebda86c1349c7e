package postgres

import (
	"slices"
	"sync"
)

// maxCachedLists bounds a listCache; when full it starts over.
const maxCachedLists = 1024

// listCache memoizes unmarshalList by the stored JSON text. The token
// endpoint decodes the scopes of every granted API on each request, and
// they change rarely; since the key is the text itself, a cached list can
// never be stale.
type listCache[T any] struct {
	mu sync.Mutex
	m  map[string][]T
}

// decode returns unmarshalList(text), as a copy the caller may change.
func (c *listCache[T]) decode(text []byte) ([]T, error) {
	c.mu.Lock()
	list, ok := c.m[string(text)]
	c.mu.Unlock()
	if !ok {
		var err error
		if list, err = unmarshalList[T](text); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedLists {
			c.m = make(map[string][]T)
		}
		c.m[string(text)] = list
		c.mu.Unlock()
	}
	return slices.Clone(list), nil
}
