package admin

import (
	"encoding/base64"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// listPage cuts one page out of a short list read whole (an application's
// grants or secrets, the signing keys), so that every list endpoint takes
// ?limit= and ?cursor= alike, and shows each item as resource does. The
// cursor is the last item's id; one that names no item is a validation
// problem.
func listPage[T, R any](items []T, id func(T) string, resource func(T) R, pg authz.Page) (List[R], error) {
	start := 0
	if pg.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(pg.Cursor)
		if err != nil {
			return List[R]{}, invalid("cursor is not one this server gave")
		}
		start = -1
		for i, it := range items {
			if id(it) == string(b) {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return List[R]{}, invalid("cursor is not one this server gave")
		}
	}
	end := min(start+pg.Limit, len(items))
	out := List[R]{Items: make([]R, 0, end-start)}
	for _, it := range items[start:end] {
		out.Items = append(out.Items, resource(it))
	}
	if end < len(items) {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(id(items[end-1])))
	}
	return out, nil
}
